"""Ensembles on a real platform: a deployment graph over the step models' own applications."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient

from tests.pipeline_repos import (
    write_affine,
    write_ensemble,
    write_two_branch_ensemble,
    write_two_step_ensemble,
)

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module", name="triton")
def triton_fixture(platform):
    repo = platform.data_dir / "store" / "models"
    repo.mkdir(parents=True, exist_ok=True)
    # the graph over the steps' own applications (small CPU chains fuse by default)
    write_two_step_ensemble(repo, name="e_ens", pre="e_pre", post="e_post", ray_fused="false")
    write_two_step_ensemble(repo, name="e_auto", pre="e_apre", post="e_apost")
    write_two_step_ensemble(repo, name="e_fused", pre="e_pre", post="e_post", ray_fused="true")
    write_affine(repo, "e_ver", versions=(1, 2), policy="version_policy { all { } }")
    write_ensemble(repo, "e_pinned", [("e_ver", 1, {"INPUT0": "IN"}, {"OUTPUT0": "OUT"})])
    write_affine(repo, "e_slow_a", offset=1.0, sleep_s=1.0)
    write_affine(repo, "e_slow_b", offset=2.0, sleep_s=1.0)
    write_two_branch_ensemble(repo, "e_par", "e_slow_a", "e_slow_b")
    client = httpclient.InferenceServerClient(
        platform.host_port, network_timeout=180, connection_timeout=180
    )
    yield client
    client.close()


def _infer(client, model, x, outputs=("OUT",)):
    inp = httpclient.InferInput("IN", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    requested = [httpclient.InferRequestedOutput(o) for o in outputs]
    return client.infer(model, [inp], outputs=requested)


def _count(client, model):
    return client.get_inference_statistics(model)["model_stats"][0]["inference_count"]


def test_loading_an_ensemble_loads_its_steps_and_serves(triton, platform):
    triton.load_model("e_ens")  # e_pre and e_post are loaded from the repository too
    assert triton.is_model_ready("e_pre")
    assert triton.is_model_ready("e_post")
    meta = triton.get_model_metadata("e_ens")
    assert meta == {
        "name": "e_ens",
        "versions": ["1"],
        "platform": "ensemble",
        "inputs": [{"name": "IN", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": "OUT", "datatype": "FP32", "shape": [-1, 4]}],
    }
    config = triton.get_model_config("e_ens")
    assert config["platform"] == "ensemble"
    assert config["instance_group"] == []
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    before = {m: _count(triton, m) for m in ("e_ens", "e_pre", "e_post")}
    result = _infer(triton, "e_ens", x)
    np.testing.assert_allclose(result.as_numpy("OUT"), (x + 1) * 2)
    body = result.get_response()
    assert body["parameters"] == {"sequence_id": 0, "sequence_start": False, "sequence_end": False}
    after = {m: _count(triton, m) for m in ("e_ens", "e_pre", "e_post")}
    assert after == {m: before[m] + 2 for m in before}  # batch 2 counts 2 in every model
    # the steps stay independently addressable
    inp = httpclient.InferInput("INPUT0", [2, 4], "FP32")
    inp.set_data_from_numpy(x)
    np.testing.assert_allclose(triton.infer("e_pre", [inp]).as_numpy("OUTPUT0"), x + 1)
    with httpx.Client(base_url=platform.url, timeout=60) as http:
        resp = http.post("/v2/models/e_ens/generate", json={"IN": [1, 2, 3, 4]})
        assert resp.status_code == 200, resp.text
        assert resp.json()["OUT"] == [4.0, 6.0, 8.0, 10.0]


def test_concurrent_requests_through_coalesced_hops_get_their_own_outputs(triton, platform):
    """Step calls queued behind the ones in flight share a hop.

    Each request keeps its own result and counts once in every step's statistics.
    """
    triton.load_model("e_ens")
    before = {m: _count(triton, m) for m in ("e_ens", "e_pre", "e_post")}

    def one(i: int) -> np.ndarray:
        with httpx.Client(base_url=platform.url, timeout=60) as http:
            tensor = {"name": "IN", "shape": [1, 4], "datatype": "FP32", "data": [i] * 4}
            body = {"inputs": [tensor]}
            resp = http.post("/v2/models/e_ens/infer", json=body)
            assert resp.status_code == 200, resp.text
            return np.array(resp.json()["outputs"][0]["data"])

    with ThreadPoolExecutor(16) as pool:
        outputs = list(pool.map(one, range(48)))
    for i, out in enumerate(outputs):
        np.testing.assert_allclose(out, [(i + 1) * 2] * 4)
    deadline = time.monotonic() + 10
    while _count(triton, "e_post") < before["e_post"] + 48 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert {m: _count(triton, m) for m in before} == {m: before[m] + 48 for m in before}


def test_ensemble_pinned_to_a_version_uses_it(triton):
    triton.load_model("e_pinned")
    x = np.zeros((1, 4), dtype=np.float32)
    np.testing.assert_allclose(_infer(triton, "e_pinned", x).as_numpy("OUT"), x)  # not +100
    inp = httpclient.InferInput("INPUT0", [1, 4], "FP32")
    inp.set_data_from_numpy(x)
    latest = triton.infer("e_ver", [inp], model_version="2").as_numpy("OUTPUT0")
    np.testing.assert_allclose(latest, x + 100)


def test_independent_branches_run_concurrently(triton):
    triton.load_model("e_par")
    x = np.zeros((1, 4), dtype=np.float32)
    _infer(triton, "e_par", x, outputs=("A", "B"))  # warm the handles
    start = time.monotonic()
    result = _infer(triton, "e_par", x, outputs=("A", "B"))
    elapsed = time.monotonic() - start
    np.testing.assert_allclose(result.as_numpy("A"), x + 1)
    np.testing.assert_allclose(result.as_numpy("B"), x + 2)
    assert elapsed < 1.8, elapsed  # two 1 s steps side by side, not 2 s one after the other


def test_fused_ensemble_runs_steps_in_its_replica_and_counts_them(triton):
    triton.load_model("e_fused")
    x = np.ones((3, 4), dtype=np.float32)
    before = _count(triton, "e_pre")
    np.testing.assert_allclose(_infer(triton, "e_fused", x).as_numpy("OUT"), (x + 1) * 2)
    deadline = time.monotonic() + 10  # other replicas' counts arrive within a second
    while _count(triton, "e_pre") < before + 3 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert _count(triton, "e_pre") == before + 3


def test_a_fused_by_default_ensemble_sees_its_step_reloaded_with_new_code(triton, platform):
    triton.load_model("e_auto")
    x = np.ones((1, 4), dtype=np.float32)
    np.testing.assert_allclose(_infer(triton, "e_auto", x).as_numpy("OUT"), (x + 1) * 2)
    repo = platform.data_dir / "store" / "models"
    write_affine(repo, "e_apre", offset=5.0)  # new config and code for the first step
    triton.load_model("e_apre")  # returns once the ensemble holding a copy is reloaded too
    np.testing.assert_allclose(_infer(triton, "e_auto", x).as_numpy("OUT"), (x + 5) * 2)


def test_unloading_a_step_unloads_the_ensemble(triton):
    triton.load_model("e_pinned")
    triton.unload_model("e_ver")
    assert not triton.is_model_ready("e_pinned")
