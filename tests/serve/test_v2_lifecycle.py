"""Desired state survives restarts; killed replicas are replaced; overrides and version policy."""

from __future__ import annotations

import json
import time

import httpx
import numpy as np
import pytest
import ray
import tritonclient.http as httpclient
from ray import serve

from tests.model_repos import ADD_SUB_MODEL, write_add_sub

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module", name="triton")
def triton_fixture(platform):
    client = httpclient.InferenceServerClient(platform.host_port, network_timeout=180)
    yield client
    client.close()


def _infer(client, name, version=""):
    a = np.ones((1, 4), dtype=np.float32)
    inputs = [
        httpclient.InferInput("INPUT0", [1, 4], "FP32"),
        httpclient.InferInput("INPUT1", [1, 4], "FP32"),
    ]
    inputs[0].set_data_from_numpy(a)
    inputs[1].set_data_from_numpy(a)
    return client.infer(name, inputs, model_version=version)


def _wait_ready(client, name, timeout_s=90.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if client.is_model_ready(name):
                return
        except Exception:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{name} not ready after {timeout_s}s")


def test_loaded_models_come_back_after_platform_restart(platform, triton):
    write_add_sub(platform.data_dir / "store" / "models", name="survivor")
    triton.load_model("survivor")
    # Simulate losing the whole Serve state (cluster restart): every app disappears...
    for name in list(serve.status().applications):
        serve.delete(name)
    assert "p-v2-survivor" not in serve.status().applications
    # ...then `serve run` deploys the control plane again; no load call is made.
    platform.redeploy_control_plane()
    _wait_ready(triton, "survivor")
    np.testing.assert_allclose(_infer(triton, "survivor").as_numpy("OUTPUT0"), [[2, 2, 2, 2]])


def test_killed_replica_is_replaced_and_model_keeps_answering(platform, triton):
    write_add_sub(platform.data_dir / "store" / "models", name="phoenix")
    triton.load_model("phoenix")
    replicas = [
        a for a in ray.util.list_named_actors(all_namespaces=True)
        if "p-v2-phoenix" in a["name"] and "TritonModel" in a["name"]
    ]
    assert replicas, ray.util.list_named_actors(all_namespaces=True)
    victim = ray.get_actor(replicas[0]["name"], namespace=replicas[0]["namespace"])
    ray.kill(victim, no_restart=True)
    deadline = time.monotonic() + 90
    while True:
        try:
            result = _infer(triton, "phoenix")
            np.testing.assert_allclose(result.as_numpy("OUTPUT0"), [[2, 2, 2, 2]])
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_load_with_config_and_file_overrides(platform, triton):
    config = {
        "name": "pushed",
        "backend": "python",
        "max_batch_size": 8,
        "input": [{"name": n, "data_type": "TYPE_FP32", "dims": [4]} for n in ("INPUT0", "INPUT1")],
        "output": [
            {"name": n, "data_type": "TYPE_FP32", "dims": [4]} for n in ("OUTPUT0", "OUTPUT1")
        ],
    }
    triton.load_model(
        "pushed", config=json.dumps(config), files={"file:1/model.py": ADD_SUB_MODEL.encode()}
    )
    assert triton.is_model_ready("pushed")
    np.testing.assert_allclose(_infer(triton, "pushed").as_numpy("OUTPUT1"), [[0, 0, 0, 0]])
    assert triton.get_model_config("pushed")["max_batch_size"] == 8


def test_version_policy_all_serves_every_version(platform, triton):
    model = write_add_sub(
        platform.data_dir / "store" / "models", name="versioned", versions=(1, 2, 3)
    )
    text = (model / "config.pbtxt").read_text() + "\nversion_policy: { all { } }\n"
    (model / "config.pbtxt").write_text(text)
    triton.load_model("versioned")
    assert triton.get_model_metadata("versioned")["versions"] == ["1", "2", "3"]
    assert _infer(triton, "versioned").get_response()["model_version"] == "3"
    np.testing.assert_allclose(_infer(triton, "versioned", "1").as_numpy("OUTPUT0"), [[2, 2, 2, 2]])
    np.testing.assert_allclose(_infer(triton, "versioned", "2").as_numpy("OUTPUT0"), [[3, 3, 3, 3]])
    assert triton.is_model_ready("versioned", "1")


def test_version_policy_specific(platform, triton):
    model = write_add_sub(
        platform.data_dir / "store" / "models", name="specific", versions=(1, 2, 3)
    )
    policy = "\nversion_policy: { specific { versions: [1, 3] } }\n"
    text = (model / "config.pbtxt").read_text() + policy
    (model / "config.pbtxt").write_text(text)
    triton.load_model("specific")
    assert triton.get_model_metadata("specific")["versions"] == ["1", "3"]
    assert not triton.is_model_ready("specific", "2")


def test_repository_index_ready_filter(platform, triton):
    write_add_sub(platform.data_dir / "store" / "models", name="idx_model")
    triton.load_model("idx_model")
    entries = httpx.post(
        platform.url + "/v2/repository/index", json={"ready": True}, timeout=30
    ).json()
    assert all(e["state"] == "READY" for e in entries)
    assert "idx_model" in {e["name"] for e in entries}
