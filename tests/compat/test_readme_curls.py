"""Every curl example of README.md and docs/*.md runs as written against a running platform.

The commands are extracted from the markdown's ``bash`` blocks in document order and executed
with the real curl, in the repository root (for ``-F @configs/...``), against the drill
platform (tests/drill_platform.py: its own fresh database, so the examples' names and the torc
ids they spell are free). Only ``localhost:8080``/``127.0.0.1:8080`` is rewritten to the test
port. What the non-curl lines of a block stand for (copying a model, running the archivers) is
done by the fixture with equivalent files. Each command must answer the status its comment
documents, otherwise a 2xx; a command that names a placeholder the reader fills in is skipped
and listed in PLACEHOLDERS.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.integration.torchserve.builders import (
    ECHO_HANDLER,
    PIPELINE_FUNCTIONS,
    TORCHSCRIPT_HANDLER,
    make_mar,
    make_torchscript,
    make_war,
)

pytestmark = [pytest.mark.compat, pytest.mark.slow, pytest.mark.ray]

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
HOSTS = ("localhost:8080", "127.0.0.1:8080")

# Substrings of commands whose values the reader supplies: these are not run.
PLACEHOLDERS = {
    "<bob's key>": "the key the users call returned",
    "<hex of the whole file>": "a digest of the reader's file",
    "@part1": "a chunk of the reader's own file",
    "10.0.0.5": "the address of the reader's external Triton server",
}
# Commands the README documents with a status other than 2xx, by substring.
DOCUMENTED_STATUS: dict[str, int] = {}

WF_SPEC = """
models:
  retry-attempts: 1
  timeout-ms: 60000
dag:
  greet: [answer]
"""
WF_FUNCTIONS = """
def greet(data, context):
    if data is None:
        return None
    return [{"greeting": True} for _ in data]


def answer(data, context):
    if data is None:
        return None
    return [{"answer": True} for _ in data]
"""
PIPELINE_SPEC = """
models:
  min-workers: 1
  max-workers: 1
  tiny:
    url: tiny.mar
dag:
  pre: [tiny]
  tiny: [post]
"""


@dataclass
class Example:
    """One curl command of the docs."""

    doc: str
    line: int
    text: str
    args: list[str]
    comment: str


def _commands(block: list[tuple[int, str]]) -> list[tuple[int, str, str]]:
    """Shell commands of a block: (first line, command text, trailing comment)."""
    found = []
    pending: list[str] = []
    start = 0
    for number, line in block:
        if not pending:
            start = number
        pending.append(line)
        text = "\n".join(pending)
        if text.rstrip().endswith("\\"):
            continue
        try:
            shlex.split(text, comments=True)
        except ValueError:  # an open quote: the command goes on
            continue
        found.append((start, text, _comment(text)))
        pending = []
    return found


def _comment(text: str) -> str:
    """The shell comment ending a command (the first `` #`` outside quotes), or ""."""
    for match in re.finditer(r"\s#", text):
        try:
            shlex.split(text[: match.start()])
        except ValueError:  # inside a quoted string
            continue
        return text[match.end() :].strip()
    return ""


def extract(doc: Path) -> list[Example]:
    """The curl commands of ``doc``'s bash blocks."""
    examples = []
    block: list[tuple[int, str]] | None = None
    for number, line in enumerate(doc.read_text().splitlines(), start=1):
        if line.startswith("```"):
            if block is None and line.strip() in ("```bash", "```sh", "```shell"):
                block = []
            elif block is not None:
                for start, text, comment in _commands(block):
                    args = shlex.split(text.replace("\\\n", " "), comments=True)
                    if args and args[0] == "curl":
                        examples.append(
                            Example(doc.name, start, text, args, comment)
                        )
                block = None
            continue
        if block is not None:
            block.append((number, line))
    return examples


ALL = [example for doc in DOCS for example in extract(doc)]


def test_extraction_finds_the_examples():
    """The extractor sees multi-line commands and comments, and every doc with curls."""
    assert len(ALL) >= 40
    infer = next(e for e in ALL if e.args[-1].startswith('{"inputs":[\n'))
    assert infer.args[:3] == ["curl", "-X", "POST"]
    ready = next(e for e in ALL if "/v2/health/ready" in e.text)
    assert ready.comment == "200"
    assert {e.doc for e in ALL} >= {"README.md", "torchserve.md"}


@pytest.fixture(scope="module", name="docs_platform")
def docs_platform_fixture(drill_platform, tmp_path_factory):
    """The drill platform with the files the docs' non-curl lines make."""
    work = tmp_path_factory.mktemp("docs-src")
    store = Path(drill_platform.data_dir) / "store"
    shutil.copytree(ROOT / "configs" / "models" / "add_sub", store / "models" / "add_sub")
    make_mar(store / "model-store", "echo", ECHO_HANDLER, work=work / "echo")
    make_war(store / "wf-store", "wf", WF_SPEC, WF_FUNCTIONS, work=work / "wf")
    weights = make_torchscript(work / "tiny.pt")
    for where in ("model-store", "wf-store"):
        make_mar(store / where, "tiny", TORCHSCRIPT_HANDLER, serialized=weights,
                 work=work / f"tiny-{where}")
    make_war(store / "wf-store", "pipeline", PIPELINE_SPEC, PIPELINE_FUNCTIONS,
             work=work / "pipeline")
    return drill_platform


def _expected(example: Example) -> int | None:
    for key, status in DOCUMENTED_STATUS.items():
        if key in example.text:
            return status
    match = re.match(r"(\d{3})\b", example.comment)
    return int(match.group(1)) if match else None


def test_every_curl_example_runs_as_written(docs_platform, tmp_path):
    port = str(docs_platform.port)
    failures = []
    ran = 0
    for example in ALL:
        if any(p in example.text for p in PLACEHOLDERS):
            continue
        args = list(example.args)
        for i, arg in enumerate(args):
            for host in HOSTS:
                arg = arg.replace(host, f"127.0.0.1:{port}")
            args[i] = arg
        assert any(port in a for a in args), f"{example.doc}:{example.line} names no host"
        body = tmp_path / "body"
        result = subprocess.run(
            [*args, "-sS", "-o", str(body), "-w", "%{http_code}", "--max-time", "300"],
            cwd=ROOT, capture_output=True, text=True, check=False,
        )
        ran += 1
        status = int(result.stdout[-3:] or 0) if result.stdout[-3:].isdigit() else 0
        expected = _expected(example)
        ok = status == expected if expected is not None else 200 <= status < 300
        if not ok:
            failures.append(
                f"{example.doc}:{example.line}: {example.text!r} -> {status} {result.stderr}"
                f" {body.read_text(errors='replace')[:500] if body.exists() else ''}"
            )
    assert ran >= 35
    assert not failures, "\n".join(failures)
