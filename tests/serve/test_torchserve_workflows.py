"""TorchServe workflows on real Ray Serve.

Concurrent branches, fan-in, both execution modes,
errors after retries, shared models, and survival of a lost Serve state.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.integration.torchserve.builders import (
    DIAMOND_FUNCTIONS,
    DIAMOND_SPEC,
    SLEEPY_MODEL,
    make_mar,
    make_war,
)
from tests.serve.test_torchserve_models import wait_route

pytestmark = pytest.mark.ray

FAIL_SPEC = """
models:
  retry-attempts: 2
  timeout-ms: 3000
dag:
  pre: [fail]
"""


@pytest.fixture(scope="module", name="stores")
def stores_fixture(platform, tmp_path_factory):
    root = Path(platform.data_dir) / "store"
    work = tmp_path_factory.mktemp("wf-src")
    make_mar(root / "model-store", "sleepy1", SLEEPY_MODEL, work=work / "s1")
    make_mar(root / "model-store", "sleepy2", SLEEPY_MODEL, work=work / "s2")
    make_war(root / "wf-store", "diamond", DIAMOND_SPEC, DIAMOND_FUNCTIONS, work=work / "d")
    make_war(root / "wf-store", "failing", FAIL_SPEC, DIAMOND_FUNCTIONS, work=work / "f")
    return root


def overlap(a: dict, b: dict) -> float:
    return min(a["end"], b["end"]) - max(a["start"], b["start"])


@pytest.mark.parametrize("execution", ["fused", "separate"])
def test_diamond_runs_branches_concurrently_and_fans_in(platform, stores, execution):
    name = f"diamond_{execution}"
    resp = httpx.post(
        f"{platform.url}/workflows",
        timeout=180,
        params={"url": "diamond.war", "workflow_name": name, "execution": execution},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "status": f"Workflow {name} has been registered and scaled successfully."
    }
    resp = wait_route(f"{platform.url}/wfpredict/{name}", content=b"payload")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert body["parents"] == ["m1", "m2"]  # fan-in got both parents' outputs, keyed by node
    assert body["m1"]["model"] == f"{name}__m1"
    assert body["m2"]["model"] == f"{name}__m2"
    assert body["m1"]["x"] == body["m2"]["x"] == "payload"
    # each branch sleeps 0.4 s: concurrent branches overlap by most of that
    assert overlap(body["m1"], body["m2"]) > 0.25, body
    assert httpx.delete(f"{platform.url}/workflows/{name}", timeout=60).status_code == 200


def test_failing_node_answers_500_after_retries(platform, stores):
    resp = httpx.post(f"{platform.url}/workflows", params={"url": "failing.war"}, timeout=180)
    assert resp.status_code == 200, resp.text
    resp = wait_route(f"{platform.url}/wfpredict/failing", content=b"x")
    assert resp.status_code == 500
    assert resp.json() == {
        "code": 500,
        "type": "InternalServerException",
        "message": "Error executing fail",
    }
    resp = httpx.post(f"{platform.url}/wfpredict/never_registered", content=b"x")
    assert resp.status_code == 404
    assert resp.json()["message"] == "Workflow not found: never_registered"
    httpx.delete(f"{platform.url}/workflows/failing", timeout=60)


def test_shared_model_and_restart_survival(platform, stores):
    from ray import serve

    url = platform.url
    resp = httpx.post(
        f"{url}/models",
        params={"url": "sleepy1.mar", "model_name": "m1", "initial_workers": 1},
        timeout=180,
    )
    assert resp.status_code == 200, resp.text
    resp = httpx.post(
        f"{url}/workflows", params={"url": "diamond.war", "workflow_name": "kept"}, timeout=180
    )
    assert resp.status_code == 200, resp.text
    body = wait_route(f"{url}/wfpredict/kept", content=b"one").json()
    assert body["m1"]["model"] == "m1"  # the registered model served the node (shared, not copied)
    assert body["m2"]["model"] == "kept__m2"

    # lose every Serve application the platform created, then start the control plane again.
    # Non-blocking: the reconciler (2 s period here) may already be bringing them back.
    before = {
        name: serve.status().applications[name].last_deployed_time_s
        for name in ("p-ts-m1", "p-wf-kept")
    }
    for app in before:
        serve.delete(app, _blocking=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # each app is gone or re-created (newer deploy time)
        apps = serve.status().applications
        if all(n not in apps or apps[n].last_deployed_time_s > t for n, t in before.items()):
            break
        time.sleep(0.2)
    else:
        pytest.fail("Serve never dropped the deleted applications")
    platform.redeploy_control_plane()
    resp = wait_route(f"{url}/wfpredict/kept", content=b"two", timeout_s=90)
    assert resp.status_code == 200, resp.text
    assert resp.json()["m1"]["x"] == "two"
    resp = wait_route(f"{url}/predictions/m1", json={"x": "direct"}, timeout_s=60)
    assert resp.status_code == 200
    assert resp.json()["x"] == "direct"

    # scale the registered workflow (extension): the driver gets 2 replicas and keeps answering
    resp = httpx.put(f"{url}/workflows/kept", params={"min_worker": 2, "max_worker": 2}, timeout=60)
    assert resp.status_code == 202, resp.text
    deadline = time.monotonic() + 120
    replicas = 0
    while time.monotonic() < deadline:
        app = serve.status().applications.get("p-wf-kept")
        driver = app.deployments.get("WorkflowDriver") if app else None
        replicas = (
            sum(
                v
                for k, v in driver.replica_states.items()
                if str(getattr(k, "value", k)) == "RUNNING"
            )
            if driver
            else 0
        )
        if replicas == 2:
            break
        time.sleep(0.5)
    assert replicas == 2
    assert (
        httpx.post(f"{url}/wfpredict/kept", content=b"three", timeout=30).json()["m2"]["x"]
        == "three"
    )

    assert httpx.delete(f"{url}/workflows/kept", timeout=60).status_code == 200
    assert httpx.delete(f"{url}/models/m1", timeout=60).status_code == 200
