"""Archive builders for TorchServe tests.

The REAL torch-model-archiver / torch-workflow-archiver
CLIs on handlers written here (torch-free, plus a tiny TorchScript model made on the spot).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

BIN = Path(sys.executable).parent

ECHO_HANDLER = """
import json

def handle(data, context):
    if data is None:
        return None
    out = []
    for row in data:
        value = row.get("data") or row.get("body")
        if isinstance(value, (bytes, bytearray)):
            value = value.decode("utf-8")
        out.append({"model": context.model_name, "echo": value,
                    "request_id": context.get_request_id(0) is not None})
    return out
"""

CLASS_HANDLER = """
class Doubler:
    def initialize(self, context):
        self.factor = 2
        self.name = context.model_name

    def handle(self, data, context):
        out = []
        for row in data:
            value = row.get("body")
            if isinstance(value, (bytes, bytearray)):
                value = float(value.decode())
            out.append(str(value * self.factor))
        context.set_response_content_type(0, "text/plain")
        return out
"""

TORCHSCRIPT_HANDLER = '''
import json

import torch
from ts.torch_handler.base_handler import BaseHandler


class TinyLinear(BaseHandler):
    """BaseHandler loads the TorchScript file named by serializedFile."""

    def preprocess(self, data):
        rows = []
        for row in data:
            value = row.get("data") or row.get("body")
            if isinstance(value, (bytes, bytearray)):
                value = json.loads(value)
            if isinstance(value, dict):
                value = value["input"]
            rows.append(value)
        return torch.tensor(rows, dtype=torch.float32)

    def postprocess(self, data):
        return [{"output": row} for row in data.tolist()]
'''

FAILING_HANDLER = """
def handle(data, context):
    if data is None:
        return None
    raise RuntimeError("boom")
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{cmd}: {result.stdout}{result.stderr}"


def make_mar(
    store: Path,
    name: str,
    handler_source: str,
    *,
    version: str = "1.0",
    serialized: Path | None = None,
    extra_files: list[Path] | None = None,
    requirements: str | None = None,
    config: str | None = None,
    work: Path | None = None,
) -> Path:
    """Build ``<store>/<name>.mar`` with torch-model-archiver (``config``: model-config.yaml)."""
    work = work or store.parent / f"src-{name}-{version}"
    handler = write(work / "handler.py", handler_source)
    cmd = [
        str(BIN / "torch-model-archiver"),
        "--model-name",
        name,
        "--version",
        version,
        "--handler",
        str(handler),
        "--export-path",
        str(store),
        "-f",
    ]
    if serialized is not None:
        cmd += ["--serialized-file", str(serialized)]
    if extra_files:
        cmd += ["--extra-files", ",".join(str(p) for p in extra_files)]
    if requirements is not None:
        cmd += ["-r", str(write(work / "requirements.txt", requirements))]
    if config is not None:
        cmd += ["--config-file", str(write(work / "model-config.yaml", config))]
    store.mkdir(parents=True, exist_ok=True)
    run(cmd)
    return store / f"{name}.mar"


def make_war(
    store: Path, name: str, spec_yaml: str, handler_source: str, work: Path | None = None
) -> Path:
    """Build ``<store>/<name>.war`` with torch-workflow-archiver."""
    work = work or store.parent / f"src-wf-{name}"
    spec = write(work / "spec.yaml", spec_yaml)
    handler = write(work / "workflow_handler.py", handler_source)
    store.mkdir(parents=True, exist_ok=True)
    run(
        [
            str(BIN / "torch-workflow-archiver"),
            "--workflow-name",
            name,
            "--spec-file",
            str(spec),
            "--handler",
            str(handler),
            "--export-path",
            str(store),
            "-f",
        ]
    )
    return store / f"{name}.war"


def make_torchscript(path: Path, in_features: int = 4, out_features: int = 2) -> Path:
    """A tiny TorchScript linear model with fixed weights (output = sum of inputs per unit)."""
    import torch

    model = torch.nn.Linear(in_features, out_features)
    with torch.no_grad():
        model.weight.fill_(1.0)
        model.bias.zero_()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.script(model).save(str(path))
    return path


# Workflow handler with pre/post functions and timing-recording branch functions.
DIAMOND_FUNCTIONS = """
import json
import time


def _parse(value):
    if isinstance(value, (bytes, bytearray)):
        return json.loads(value)
    return value


def pre(data, context):
    if data is None:
        return None
    out = []
    for row in data:
        value = row.get("data") or row.get("body")
        if isinstance(value, (bytes, bytearray)):
            value = value.decode()
        out.append({"x": value})
    return out


def _branch(data, name):
    out = []
    for row in data:
        start = time.time()
        time.sleep(0.4)
        parent = _parse(row["body"])
        out.append({"branch": name, "x": parent["x"], "start": start, "end": time.time()})
    return out


def m1(data, context):
    if data is None:
        return None
    return _branch(data, "m1")


def m2(data, context):
    if data is None:
        return None
    return _branch(data, "m2")


def post(data, context):
    if data is None:
        return None
    out = []
    for row in data:
        out.append({"parents": sorted(row.keys()),
                    "m1": _parse(row["m1"]), "m2": _parse(row["m2"])})
    return out


def fail(data, context):
    if data is None:
        return None
    raise RuntimeError("fail node always fails")
"""

PIPELINE_FUNCTIONS = """
import json


def pre(data, context):
    if data is None:
        return None
    out = []
    for row in data:
        value = row.get("data") or row.get("body")
        if isinstance(value, (bytes, bytearray)):
            value = json.loads(value)
        out.append({"input": value["input"]})
    return out


def post(data, context):
    if data is None:
        return None
    out = []
    for row in data:
        value = json.loads(row["body"])
        out.append({"result": value["output"], "total": sum(value["output"])})
    return out
"""

PIPELINE_SPEC = """
models:
  min-workers: 1
  max-workers: 1
  batch-size: 4
  max-batch-delay: 5
  retry-attempts: 1
  timeout-ms: 5000
  tiny:
    url: tiny.mar
dag:
  pre: [tiny]
  tiny: [post]
"""

# A model (.mar) that sleeps and records when it ran, to measure branch overlap.
SLEEPY_MODEL = """
import json
import time


def handle(data, context):
    if data is None:
        return None
    out = []
    for row in data:
        start = time.time()
        time.sleep(0.4)
        value = row.get("body")
        if isinstance(value, (bytes, bytearray)):
            value = json.loads(value)
        out.append({"model": context.model_name, "x": value["x"],
                    "start": start, "end": time.time()})
    return out
"""

DIAMOND_SPEC = """
models:
  retry-attempts: 0
  timeout-ms: 10000
  m1:
    url: sleepy1.mar
  m2:
    url: sleepy2.mar
dag:
  pre: [m1, m2]
  m1: [post]
  m2: [post]
"""

# Reports the size of the batch it was called with (batching proof).
BATCH_SIZE_MODEL = """
def handle(data, context):
    if data is None:
        return None
    size = context.system_properties["batch_size"]
    return [{"batch": len(data), "batch_size": size} for _ in data]
"""
