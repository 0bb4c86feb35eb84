"""The v2 protocol end to end with the real tritonclient against the running platform."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.model_repos import (
    ALL_TYPES,
    write_add_sub,
    write_echo_all_types,
    write_failing_model,
    write_onnx_add,
    write_torchscript_linear,
)

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module", name="repo")
def repo_fixture(platform):
    repo = platform.data_dir / "store" / "models"
    repo.mkdir(parents=True, exist_ok=True)
    write_add_sub(repo, versions=(1, 2))
    write_echo_all_types(repo)
    write_torchscript_linear(repo)
    write_onnx_add(repo)
    write_failing_model(repo)
    return repo


@pytest.fixture(scope="module", name="triton")
def triton_fixture(platform, repo):
    client = httpclient.InferenceServerClient(
        platform.host_port, network_timeout=180, connection_timeout=180
    )
    yield client
    client.close()


def _fp32_inputs(a, b, binary=True):
    inputs = [httpclient.InferInput("INPUT0", list(a.shape), "FP32"),
              httpclient.InferInput("INPUT1", list(b.shape), "FP32")]
    inputs[0].set_data_from_numpy(a, binary_data=binary)
    inputs[1].set_data_from_numpy(b, binary_data=binary)
    return inputs


def test_server_health_and_metadata(triton):
    assert triton.is_server_live()
    # Strict readiness: the session's platform is shared, and models other modules loaded (or
    # that a restart test is bringing back) must all be READY first.
    deadline = time.monotonic() + 120
    while not triton.is_server_ready() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert triton.is_server_ready(), triton.get_model_repository_index()
    meta = triton.get_server_metadata()
    assert "binary_tensor_data" in meta["extensions"]
    assert "model_repository" in meta["extensions"]


def test_load_infer_unload_python_model(triton):
    triton.load_model("add_sub")
    assert triton.is_model_ready("add_sub")
    meta = triton.get_model_metadata("add_sub")
    assert meta["platform"] == "python"
    assert meta["versions"] == ["2"]
    assert meta["inputs"][0] == {"name": "INPUT0", "datatype": "FP32", "shape": [-1, 4]}
    config = triton.get_model_config("add_sub")
    assert config["max_batch_size"] == 8
    assert config["input"][0]["dims"] == [4]
    a = np.arange(8, dtype=np.float32).reshape(2, 4)
    b = np.ones((2, 4), dtype=np.float32)
    for binary in (True, False):
        outputs = [httpclient.InferRequestedOutput("OUTPUT0", binary_data=binary),
                   httpclient.InferRequestedOutput("OUTPUT1", binary_data=binary)]
        result = triton.infer(
            "add_sub", _fp32_inputs(a, b, binary), outputs=outputs, request_id="r1"
        )
        np.testing.assert_allclose(result.as_numpy("OUTPUT0"), a * 2 + b)
        np.testing.assert_allclose(result.as_numpy("OUTPUT1"), a * 2 - b)
        assert result.get_response()["model_version"] == "2"
        assert result.get_response()["id"] == "r1"
    index = {(e["name"], e.get("version")): e for e in triton.get_model_repository_index()}
    assert index[("add_sub", "2")]["state"] == "READY"
    assert ("echo_types", None) in index  # present in the repository, never loaded
    triton.unload_model("add_sub")
    assert not triton.is_model_ready("add_sub")
    with pytest.raises(InferenceServerException) as err:
        triton.get_model_metadata("add_sub")
    assert err.value.status() == "404"
    assert "no available versions" in err.value.message()
    index = {e["name"]: e for e in triton.get_model_repository_index()}
    assert index["add_sub"]["state"] == "UNAVAILABLE"
    assert index["add_sub"]["reason"] == "unloaded"


def test_all_datatypes_round_trip_json_and_binary(triton):
    triton.load_model("echo_types")
    arrays = {
        "BOOL": np.array([True, False, True]),
        "BYTES": np.array([b"abc", "héllo".encode(), b""], dtype=np.object_),
    }
    for kind in ALL_TYPES:
        if kind not in arrays:
            floats = {"FP16": np.float16, "FP32": np.float32, "FP64": np.float64}
            dtype = floats.get(kind) or getattr(np, kind.lower())
            arrays[kind] = np.array([1, 2, 3], dtype=dtype)
    for binary in (True, False):
        inputs, outputs = [], []
        for kind, array in arrays.items():
            if kind == "FP16" and not binary:
                continue  # tritonclient refuses FP16 as JSON
            tensor = httpclient.InferInput(f"IN_{kind}", list(array.shape), kind)
            tensor.set_data_from_numpy(array, binary_data=binary)
            inputs.append(tensor)
            outputs.append(httpclient.InferRequestedOutput(f"OUT_{kind}", binary_data=binary))
        result = triton.infer("echo_types", inputs, outputs=outputs)
        for tensor in inputs:
            kind = tensor.name()[3:]
            got = result.as_numpy(f"OUT_{kind}")
            assert got is not None, kind
            if kind == "BYTES":  # JSON outputs come back as str, binary ones as bytes
                as_bytes = [v if isinstance(v, bytes) else v.encode() for v in got]
                assert as_bytes == list(arrays[kind])
            else:
                np.testing.assert_array_equal(got, arrays[kind])
                assert got.dtype == arrays[kind].dtype, kind


def test_torchscript_dynamic_batching_visible_in_stats(triton, platform):
    url = platform.host_port
    triton.load_model("linear_ts")
    x = np.ones((1, 4), dtype=np.float32)

    def call(results):
        client = httpclient.InferenceServerClient(url)
        tensor = httpclient.InferInput("INPUT__0", [1, 4], "FP32")
        tensor.set_data_from_numpy(x)
        results.append(client.infer("linear_ts", [tensor]).as_numpy("OUTPUT__0"))
        client.close()

    results: list = []
    threads = [threading.Thread(target=call, args=(results,)) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 16
    for out in results:
        np.testing.assert_allclose(out, [[5.0, 7.0]])
    stats = triton.get_inference_statistics("linear_ts")["model_stats"][0]
    assert stats["inference_count"] == 16
    assert stats["inference_stats"]["success"]["count"] == 16
    assert stats["execution_count"] < 16, stats  # requests were batched together
    assert any(b["batch_size"] > 1 for b in stats["batch_stats"])


def test_onnx_model_infers(triton):
    triton.load_model("add_onnx")
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    inputs = [
        httpclient.InferInput("X", [2, 3], "FP32"),
        httpclient.InferInput("Y", [2, 3], "FP32"),
    ]
    inputs[0].set_data_from_numpy(x)
    inputs[1].set_data_from_numpy(x)
    result = triton.infer("add_onnx", inputs)
    np.testing.assert_allclose(result.as_numpy("Z"), 2 * x)
    assert triton.get_model_metadata("add_onnx")["platform"] == "onnxruntime_onnx"


def test_statistics_of_all_models_answer_in_throughput_mode(triton):
    # GET /v2/models/stats runs in the control plane's threadpool and reads every loaded model's
    # replica through a DeploymentHandle: with RAY_SERVE_THROUGHPUT_OPTIMIZED=1 a handle called
    # from a thread without an event loop raised "No event loop running" (a 503 here).
    triton.load_model("add_sub")
    stats = triton.get_inference_statistics()  # no model name: all models
    names = {entry["name"] for entry in stats["model_stats"]}
    assert "add_sub" in names
