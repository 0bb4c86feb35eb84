"""Delete means gone: once a delete or unload returns, no request reaches the old replicas.

Each surface is checked on the session platform and on the drill platform, which run in the
two ingress modes (HAProxy direct ingress and Serve's Python proxy). Right after the call
returns, and for a few seconds after (while Serve drains and removes the replicas and the
route falls through to the control plane), every request must get the surface's answer for an
unknown name: TorchServe's 404, Triton's 404 (400 for readiness).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.drill_platform import wait_until
from tests.integration.torchserve.builders import CLASS_HANDLER, ECHO_HANDLER, make_mar, make_war
from tests.model_repos import write_add_sub

pytestmark = [pytest.mark.ray, pytest.mark.slow]

WATCH_AFTER_S = 3.0  # longer than the tests' draining period (0.5 s) plus Serve's removal

WF_SPEC = """
models:
  retry-attempts: 0
  timeout-ms: 10000
dag:
  first: [second]
"""
WF_FUNCTIONS = """
def first(data, context):
    if data is None:
        return None
    return [{"first": True} for _ in data]


def second(data, context):
    if data is None:
        return None
    return [{"second": True} for _ in data]
"""


@pytest.fixture(params=["session", "drill"], name="target")
def target_fixture(request):
    """Both platforms, hence both ingress modes."""
    name = "platform" if request.param == "session" else "drill_platform"
    return request.getfixturevalue(name)


def _store(target) -> Path:
    return Path(target.data_dir) / "store"


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:6]}"


def _watch(send, expect_status: int, check=None) -> int:
    """Send requests for WATCH_AFTER_S; each must answer ``expect_status`` (and pass ``check``)."""
    count = 0
    deadline = time.monotonic() + WATCH_AFTER_S
    while True:
        resp = send()
        count += 1
        assert resp.status_code == expect_status, (count, resp.status_code, resp.text)
        if check is not None:
            check(resp)
        if time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def _served(send) -> httpx.Response:
    return wait_until(
        lambda: (r := send()).status_code == 200 and r, 120, "the new route answering 200"
    )


def test_unregistered_workflow_answers_404_at_once(target, tmp_path):
    name = _unique("gone_wf")
    make_war(_store(target) / "wf-store", name, WF_SPEC, WF_FUNCTIONS, work=tmp_path / "wf")
    resp = httpx.post(f"{target.url}/workflows", params={"url": f"{name}.war"}, timeout=180)
    assert resp.status_code == 200, resp.text

    def send() -> httpx.Response:
        return httpx.post(f"{target.url}/wfpredict/{name}", content=b"{}", timeout=30)

    _served(send)
    assert httpx.delete(f"{target.url}/workflows/{name}", timeout=120).status_code == 200

    def check(resp: httpx.Response) -> None:
        assert resp.json() == {
            "code": 404, "type": "WorkflowNotFoundException",
            "message": f"Workflow not found: {name}",
        }

    assert _watch(send, 404, check) > 1


def test_unregistered_model_and_version_answer_404_at_once(target, tmp_path):
    name = _unique("gone_ts")
    store = _store(target) / "model-store"
    make_mar(store, name, ECHO_HANDLER, work=tmp_path / "v1")
    make_mar(tmp_path / "v2", name, CLASS_HANDLER, version="2.0", work=tmp_path / "w2")
    (store / f"{name}_v2.mar").write_bytes((tmp_path / "v2" / f"{name}.mar").read_bytes())
    for archive in (f"{name}.mar", f"{name}_v2.mar"):
        resp = httpx.post(
            f"{target.url}/models", params={"url": archive, "initial_workers": 1}, timeout=180
        )
        assert resp.status_code == 200, resp.text

    def send(version: str = "") -> httpx.Response:
        suffix = f"/{version}" if version else ""
        return httpx.post(f"{target.url}/predictions/{name}{suffix}", content=b"21", timeout=30)

    wait_until(
        lambda: send("1.0").status_code == 200 and send("2.0").status_code == 200,
        120, "both versions answering",
    )
    resp = httpx.delete(f"{target.url}/models/{name}/2.0", timeout=120)
    assert resp.status_code == 200, resp.text

    def version_gone(resp: httpx.Response) -> None:
        assert resp.json()["message"] == f"Model version: 2.0 does not exist for model: {name}"

    _watch(lambda: send("2.0"), 404, version_gone)
    assert send("1.0").status_code == 200  # the other version still serves

    assert httpx.delete(f"{target.url}/models/{name}", timeout=120).status_code == 200

    def model_gone(resp: httpx.Response) -> None:
        body = resp.json()
        assert (body["type"], body["message"]) == ("ModelNotFoundException",
                                                   f"Model not found: {name}")

    _watch(send, 404, model_gone)


def test_unloaded_v2_model_is_not_ready_and_unknown_at_once(target):
    name = _unique("gone_v2")
    write_add_sub(_store(target) / "models", name)
    resp = httpx.post(f"{target.url}/v2/repository/models/{name}/load", timeout=180)
    assert resp.status_code == 200, resp.text
    body = {
        "inputs": [
            {"name": n, "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}
            for n in ("INPUT0", "INPUT1")
        ]
    }

    def infer() -> httpx.Response:
        return httpx.post(f"{target.url}/v2/models/{name}/infer", json=body, timeout=30)

    def ready() -> httpx.Response:
        return httpx.get(f"{target.url}/v2/models/{name}/ready", timeout=30)

    _served(infer)
    resp = httpx.post(f"{target.url}/v2/repository/models/{name}/unload", timeout=120)
    assert resp.status_code == 200, resp.text

    def unknown(resp: httpx.Response) -> None:
        assert resp.json() == {
            "error": f"Request for unknown model: '{name}' has no available versions"
        }

    deadline = time.monotonic() + WATCH_AFTER_S
    while time.monotonic() < deadline:
        assert ready().status_code == 400
        resp = infer()
        assert resp.status_code == 404, resp.text
        unknown(resp)
