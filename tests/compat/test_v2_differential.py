"""Differential test: a real tritonserver 2.51 and this platform must agree.

The same python-backend model directories on both must give the same metadata, outputs and
error statuses.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient

from tests.compat.tritonserver import TritonUnavailable, start_tritonserver
from tests.model_repos import write_add_sub, write_echo_all_types, write_failing_model

pytestmark = [pytest.mark.ray, pytest.mark.compat]

MODELS = ("diff_add_sub", "diff_echo", "diff_failing")


@pytest.fixture(scope="module", name="servers")
def servers_fixture(platform, tmp_path_factory):
    repo = tmp_path_factory.mktemp("diff_repo")
    write_add_sub(repo, name="diff_add_sub", versions=(1, 2))
    write_echo_all_types(repo, name="diff_echo")
    write_failing_model(repo, name="diff_failing")
    platform_repo = platform.data_dir / "store" / "models"
    platform_repo.mkdir(parents=True, exist_ok=True)
    for name in MODELS:
        shutil.copytree(repo / name, platform_repo / name, dirs_exist_ok=True)
    try:
        real = start_tritonserver(repo)
    except (TritonUnavailable, OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"real tritonserver unavailable: {exc}")
    clients = {
        "triton": httpclient.InferenceServerClient(real.url, network_timeout=120),
        "platform": httpclient.InferenceServerClient(platform.host_port, network_timeout=180),
    }
    bases = {"triton": real.base_url, "platform": platform.url}
    for client in clients.values():
        for name in MODELS:
            client.load_model(name)
    yield clients, bases
    for client in clients.values():
        client.close()
    real.stop()


def _both(servers, fn):
    clients, _ = servers
    return {k: fn(c) for k, c in clients.items()}


def test_metadata_matches(servers):
    for name in MODELS:
        got = _both(servers, lambda c, n=name: c.get_model_metadata(n))
        assert got["platform"] == got["triton"], name


def test_config_essentials_match(servers):
    got = _both(servers, lambda c: c.get_model_config("diff_add_sub"))
    for key in ("name", "backend", "max_batch_size", "input", "output", "version_policy"):
        assert got["platform"][key] == got["triton"][key], key
    assert got["platform"]["dynamic_batching"]["max_queue_delay_microseconds"] == 2000
    assert (
        got["platform"]["instance_group"][0]["kind"] == got["triton"]["instance_group"][0]["kind"]
    )


@pytest.mark.parametrize("binary", [True, False])
def test_outputs_match(servers, binary):
    a = np.random.default_rng(0).random((3, 4), dtype=np.float32)
    b = np.random.default_rng(1).random((3, 4), dtype=np.float32)

    def infer(client):
        inputs = [
            httpclient.InferInput("INPUT0", [3, 4], "FP32"),
            httpclient.InferInput("INPUT1", [3, 4], "FP32"),
        ]
        inputs[0].set_data_from_numpy(a, binary_data=binary)
        inputs[1].set_data_from_numpy(b, binary_data=binary)
        outputs = [
            httpclient.InferRequestedOutput(n, binary_data=binary) for n in ("OUTPUT0", "OUTPUT1")
        ]
        result = client.infer("diff_add_sub", inputs, outputs=outputs, request_id="same")
        response = result.get_response()
        return (
            result.as_numpy("OUTPUT0"),
            result.as_numpy("OUTPUT1"),
            response["model_version"],
            response["id"],
        )

    got = _both(servers, infer)
    for mine, theirs in zip(got["platform"], got["triton"], strict=True):
        if isinstance(mine, np.ndarray):
            np.testing.assert_allclose(mine, theirs, rtol=1e-6)
        else:
            assert mine == theirs


def test_bytes_and_int64_match(servers):
    words = np.array([b"alpha", b"", "\u00e9t\u00e9".encode()], dtype=np.object_)
    ints = np.array([-(2**40), 0, 7], dtype=np.int64)

    def infer(client):
        inputs = [
            httpclient.InferInput("IN_BYTES", [3], "BYTES"),
            httpclient.InferInput("IN_INT64", [3], "INT64"),
        ]
        inputs[0].set_data_from_numpy(words)
        inputs[1].set_data_from_numpy(ints)
        result = client.infer("diff_echo", inputs)
        return list(result.as_numpy("OUT_BYTES")), result.as_numpy("OUT_INT64").tolist()

    got = _both(servers, infer)
    assert got["platform"] == got["triton"]


BAD_REQUESTS = {
    "wrong_shape": (
        "diff_add_sub",
        {
            "inputs": [
                {"name": "INPUT0", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]},
                {"name": "INPUT1", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]},
            ]
        },
    ),
    "wrong_datatype": (
        "diff_add_sub",
        {
            "inputs": [
                {"name": "INPUT0", "shape": [1, 4], "datatype": "INT32", "data": [1, 2, 3, 4]},
                {"name": "INPUT1", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]},
            ]
        },
    ),
    "unknown_input": (
        "diff_add_sub",
        {
            "inputs": [
                {"name": "NOPE", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]},
                {"name": "INPUT1", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]},
            ]
        },
    ),
    "missing_input": (
        "diff_add_sub",
        {"inputs": [{"name": "INPUT0", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]},
    ),
    "batch_too_big": (
        "diff_add_sub",
        {
            "inputs": [
                {"name": n, "shape": [9, 4], "datatype": "FP32", "data": [0.0] * 36}
                for n in ("INPUT0", "INPUT1")
            ]
        },
    ),
    "unknown_output": (
        "diff_add_sub",
        {
            "inputs": [
                {"name": n, "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}
                for n in ("INPUT0", "INPUT1")
            ],
            "outputs": [{"name": "NOPE"}],
        },
    ),
    "unknown_model": ("diff_nope", {"inputs": []}),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_error_statuses_match(servers, case):
    _, bases = servers
    model, body = BAD_REQUESTS[case]
    got = {
        k: httpx.post(f"{base}/v2/models/{model}/infer", content=json.dumps(body), timeout=60)
        for k, base in bases.items()
    }
    assert got["platform"].status_code == got["triton"].status_code, (
        case, got["platform"].text, got["triton"].text)
    assert got["platform"].status_code in (400, 404)
    assert "error" in got["platform"].json()
    assert "error" in got["triton"].json()


def test_model_failure_is_an_error_on_both(servers):
    _, bases = servers
    body = json.dumps({"inputs": [{"name": "X", "shape": [1], "datatype": "FP32", "data": [1.0]}]})
    got = {
        k: httpx.post(f"{b}/v2/models/diff_failing/infer", content=body, timeout=60)
        for k, b in bases.items()
    }
    assert got["platform"].status_code >= 400
    assert got["triton"].status_code >= 400
    assert "model exploded" in got["platform"].json()["error"]
    assert "model exploded" in got["triton"].json()["error"]


def test_unknown_version_and_readiness_match(servers):
    _, bases = servers
    for path in ("/v2/models/diff_add_sub/versions/9", "/v2/models/diff_add_sub/versions/9/ready",
                 "/v2/models/diff_add_sub/ready", "/v2/models/diff_nope/ready", "/v2/health/ready"):
        got = {k: httpx.get(b + path, timeout=30).status_code for k, b in bases.items()}
        assert got["platform"] == got["triton"], (path, got)


def test_stats_shape_matches(servers):
    got = _both(servers, lambda c: c.get_inference_statistics("diff_add_sub")["model_stats"][0])
    assert set(got["platform"]) >= set(got["triton"]) - {"response_stats"}
    assert set(got["platform"]["inference_stats"]) == set(got["triton"]["inference_stats"])
