"""Inference answered by REAL TorchServe 0.12 and by this platform (real Ray Serve), side by side.

Same archives, same requests: the status, body and Content-Type of ``/predictions`` and
``/wfpredict`` must match (single-leaf bytes, multi-leaf JSON assembly, form and multipart
inputs, handler-set content types, "Error executing <node>" after retries).
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from bench.torchserve_peer import TorchServePeer, torchserve_available
from tests.integration.torchserve.builders import CLASS_HANDLER, ECHO_HANDLER, make_mar, make_war

pytestmark = [pytest.mark.ray, pytest.mark.compat, pytest.mark.slow]

FUNCTIONS = '''
import json


def _value(row):
    value = row.get("data") or row.get("body")
    if isinstance(value, (bytes, bytearray)):
        value = value.decode()
    return value


def pre(data, context):
    if data is None:
        return None
    return [{"seen": _value(row), "keys": sorted(row.keys())} for row in data]


def left(data, context):
    if data is None:
        return None
    return [{"left": json.loads(row["body"])} for row in data]


def right(data, context):
    if data is None:
        return None
    return [{"right": json.loads(row["body"])["seen"]} for row in data]


def post(data, context):
    if data is None:
        return None
    return ["post:" + bytes(row["body"]).decode() for row in data]


def fail(data, context):
    if data is None:
        return None
    raise ValueError("always")
'''

SPECS = {
    "fanout": "models:\n  timeout-ms: 5000\ndag:\n  pre: [left, right]\n",
    "chain": "models:\n  enode:\n    url: echo.mar\ndag:\n  pre: [enode]\n  enode: [post]\n",
    "broken": "models:\n  retry-attempts: 1\n  timeout-ms: 2000\ndag:\n  pre: [fail]\n",
}

REQUESTS = [
    ("/predictions/echo", {"content": b"plain bytes"}),
    ("/predictions/echo", {"json": {"a": 1}}),
    ("/predictions/echo", {"data": {"data": "form field"}}),
    ("/predictions/echo", {"files": {"data": ("x.txt", b"file part", "text/plain")}}),
    ("/predictions/dbl", {"content": b"21"}),
    ("/wfpredict/fanout", {"content": b"hello"}),
    ("/wfpredict/fanout", {"data": {"data": "form"}}),
    ("/wfpredict/chain", {"json": {"x": 1}}),
    ("/wfpredict/broken", {"content": b"x"}),
]


def _shape(resp: httpx.Response) -> tuple[int, object, str]:
    try:
        body: object = resp.json()
    except ValueError:
        body = resp.text
    return resp.status_code, body, resp.headers.get("content-type", "").split(";")[0]


def _build(root: Path) -> Path:
    store = root / "store"
    make_mar(store, "echo", ECHO_HANDLER, work=root / "e")
    make_mar(store, "dbl", CLASS_HANDLER, work=root / "d")
    for name, spec in SPECS.items():
        make_war(store, name, spec, FUNCTIONS, work=root / f"w-{name}")
    return store


def test_inference_matches_real_torchserve(platform, tmp_path):
    reason = torchserve_available()
    if reason:
        pytest.fail(f"real TorchServe needed for parity: {reason}")
    store = _build(tmp_path)
    ours = Path(platform.data_dir) / "store"
    for kind in ("model-store", "wf-store"):
        (ours / kind).mkdir(parents=True, exist_ok=True)
        for archive in store.iterdir():
            (ours / kind / f"parity_{archive.name}").write_bytes(archive.read_bytes())
            if kind == "model-store":  # what the workflow specs name (not a registered model:
                # a node naming a registered model would share it, a deliberate difference)
                (ours / kind / archive.name).write_bytes(archive.read_bytes())
    url = platform.url
    registrations = [
        ("/models", {"url": "parity_echo.mar", "model_name": "echo", "initial_workers": 1}),
        ("/models", {"url": "parity_dbl.mar", "model_name": "dbl", "initial_workers": 1}),
    ]
    registrations += [("/workflows", {"url": f"parity_{n}.war", "workflow_name": n}) for n in SPECS]
    with TorchServePeer(tmp_path / "ts", store) as peer:
        for path, params in registrations:
            real_params = {**params, "url": params["url"].removeprefix("parity_")}
            assert (
                httpx.post(peer.management_url + path, params=real_params, timeout=300).status_code
                == 200
            )
            assert httpx.post(url + path, params=params, timeout=300).status_code == 200
        mismatches = []
        for path, kwargs in REQUESTS:
            real = _shape(httpx.post(peer.inference_url + path, timeout=60, **kwargs))
            deadline = time.monotonic() + 30
            while True:  # the proxy may need a moment to route a new application
                mine = _shape(httpx.post(url + path, timeout=60, **kwargs))
                if mine[0] not in (404, 503) or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
            if real != mine:
                mismatches.append(f"{path} {kwargs}\n  real {real}\n  ours {mine}")
    for path, params in registrations:
        name = params.get("model_name") or params.get("workflow_name")
        httpx.delete(f"{url}{path}/{name}", timeout=60)
    assert not mismatches, "\n".join(mismatches)
