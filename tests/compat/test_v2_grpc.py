"""``tritonclient.grpc`` unchanged against the platform's gRPC endpoint.

Health and metadata, load by name and with ``config`` + ``file:`` overrides, metadata/config,
infer of every datatype (typed and raw contents), ``async_infer``, a bidirectional stream with
many requests and a decoupled model, statistics, index and unload, all with the real client.
"""

from __future__ import annotations

import json
import queue
import shutil
import time

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from tests.grpc_platform import ensure_grpc_ingress
from tests.model_repos import ADD_SUB_MODEL, ALL_TYPES, write_add_sub, write_echo_all_types
from tests.pipeline_repos import write_decoupled_words, write_text_generator

pytestmark = [pytest.mark.ray, pytest.mark.compat]

MODELS = ("g_add_sub", "g_echo", "g_dec", "g_gen")


@pytest.fixture(scope="module", name="client")
def client_fixture(platform):
    repo = platform.data_dir / "store" / "models"
    repo.mkdir(parents=True, exist_ok=True)
    write_add_sub(repo, name="g_add_sub", versions=(1, 2))
    write_echo_all_types(repo, name="g_echo")
    write_decoupled_words(repo, name="g_dec")
    write_text_generator(repo, name="g_gen")
    url = ensure_grpc_ingress(platform)
    client = grpcclient.InferenceServerClient(url)
    for name in MODELS:
        client.load_model(name)
    yield client
    for name in MODELS:
        client.unload_model(name)
    client.close()
    for name in MODELS:
        shutil.rmtree(repo / name, ignore_errors=True)


def _add_sub_inputs(a, b):
    inputs = [grpcclient.InferInput(n, list(a.shape), "FP32") for n in ("INPUT0", "INPUT1")]
    inputs[0].set_data_from_numpy(a)
    inputs[1].set_data_from_numpy(b)
    return inputs


def test_server_health_and_metadata(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    meta = client.get_server_metadata(as_json=True)
    assert meta["name"] == "rayserve-platform"
    assert "model_repository" in meta["extensions"]
    assert not {"system_shared_memory", "cuda_shared_memory", "trace"} & set(meta["extensions"])


def test_model_ready_metadata_config(client):
    assert client.is_model_ready("g_add_sub")
    assert client.is_model_ready("g_add_sub", "2")
    assert not client.is_model_ready("g_add_sub", "1")  # the default policy serves the latest
    assert not client.is_model_ready("g_add_sub", "9")
    assert not client.is_model_ready("no_such_model")
    meta = client.get_model_metadata("g_add_sub", as_json=True)
    assert meta["name"] == "g_add_sub"
    assert meta["versions"] == ["2"]
    assert meta["platform"] == "python"
    assert meta["inputs"][0] == {"name": "INPUT0", "datatype": "FP32", "shape": ["-1", "4"]}
    config = client.get_model_config("g_add_sub", as_json=True)["config"]
    assert config["name"] == "g_add_sub"
    assert config["max_batch_size"] == 8
    assert config["dynamic_batching"]["max_queue_delay_microseconds"] == "2000"


def test_infer_fp32_versions_and_requested_outputs(client):
    a = np.arange(8, dtype=np.float32).reshape(2, 4)
    b = np.ones((2, 4), dtype=np.float32)
    result = client.infer("g_add_sub", _add_sub_inputs(a, b), request_id="r1")
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), a * 2 + b)  # version 2
    np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), a * 2 - b)
    response = result.get_response(as_json=True)
    assert response["id"] == "r1"
    assert response["model_version"] == "2"
    only = client.infer(
        "g_add_sub",
        _add_sub_inputs(a, b),
        model_version="2",
        outputs=[grpcclient.InferRequestedOutput("OUTPUT1")],
    )
    assert only.as_numpy("OUTPUT0") is None
    np.testing.assert_array_equal(only.as_numpy("OUTPUT1"), a * 2 - b)
    with pytest.raises(InferenceServerException) as info:
        client.infer("g_add_sub", _add_sub_inputs(a, b), model_version="9")
    assert info.value.status() == "StatusCode.NOT_FOUND"
    assert "Request for unknown model: 'g_add_sub' version 9 is not found" in str(info.value)


def _typed(kind):
    if kind == "BYTES":
        return np.array([b"a", b"", "\u00e9".encode()], dtype=object)
    if kind == "BOOL":
        return np.array([True, False, True])
    dtype = np.dtype(kind.lower().replace("fp", "float"))
    return np.array([1, 2, 3], dtype=dtype)


@pytest.mark.parametrize("kind", ALL_TYPES)
def test_infer_every_datatype_round_trips(client, kind):
    data = _typed(kind)
    tensor = grpcclient.InferInput(f"IN_{kind}", list(data.shape), kind)
    tensor.set_data_from_numpy(data)  # raw_input_contents, as tritonclient sends it
    result = client.infer("g_echo", [tensor])
    out = result.as_numpy(f"OUT_{kind}")
    assert out.dtype == data.dtype or kind == "BYTES"
    np.testing.assert_array_equal(out, data)


def test_async_infer(client):
    results: queue.Queue = queue.Queue()
    a = np.ones((1, 4), dtype=np.float32)
    for _ in range(4):
        client.async_infer(
            "g_add_sub", _add_sub_inputs(a, a), lambda result, error: results.put((result, error))
        )
    for _ in range(4):
        result, error = results.get(timeout=60)
        assert error is None
        np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), a * 3)  # version 2: 2a + a


def _text(words):
    tensor = grpcclient.InferInput("text_input", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([words.encode()], dtype=object))
    return [tensor]


def test_stream_many_requests_and_decoupled(platform):
    url = ensure_grpc_ingress(platform)
    client = grpcclient.InferenceServerClient(url)
    got: queue.Queue = queue.Queue()
    client.start_stream(callback=lambda result, error: got.put((result, error)))
    try:
        for i in range(5):
            client.async_stream_infer("g_gen", _text(f"w{i}"), request_id=f"g{i}")
        client.async_stream_infer(
            "g_dec", _text("one two three"), request_id="d1", enable_empty_final_response=True
        )
        client.async_stream_infer("no_such_model", _text("x"), request_id="bad")
        seen: dict[str, list] = {}
        errors = []
        deadline = time.monotonic() + 60
        while len([v for k, v in seen.items() if k.startswith("g")]) < 5 or not _dec_done(seen):
            result, error = got.get(timeout=max(1, deadline - time.monotonic()))
            if error is not None:
                errors.append(error)
                continue
            response = result.get_response()
            seen.setdefault(response.id, []).append(result)
        for i in range(5):
            [only] = seen[f"g{i}"]
            assert only.as_numpy("text_output").tolist() == [f"W{i}".encode()]
            assert only.get_response().parameters["triton_final_response"].bool_param
        words = [r.as_numpy("text_output") for r in seen["d1"][:-1]]
        assert [w.tolist() for w in words] == [[b"one"], [b"two"], [b"three"]]
        final = seen["d1"][-1].get_response()
        assert final.parameters["triton_final_response"].bool_param
        assert not final.outputs
        deadline = time.monotonic() + 30
        while not errors:
            _, error = got.get(timeout=max(1, deadline - time.monotonic()))
            if error is not None:
                errors.append(error)
        assert "Request for unknown model: 'no_such_model' is not found" in str(errors[0])
    finally:
        client.stop_stream()
        client.close()


def _dec_done(seen):
    responses = seen.get("d1", [])
    return (
        bool(responses)
        and responses[-1].get_response().parameters["triton_final_response"].bool_param
    )


def test_decoupled_model_over_unary_infer_is_unimplemented(client):
    with pytest.raises(InferenceServerException) as info:
        client.infer("g_dec", _text("a b"))
    assert info.value.status() == "StatusCode.UNIMPLEMENTED"
    assert "doesn't support models with decoupled transaction policy" in info.value.message()


def test_statistics_count_grpc_requests(client):
    before = client.get_inference_statistics("g_gen", as_json=True)["model_stats"][0]
    for _ in range(3):
        client.infer("g_gen", _text("x"))
    deadline = time.monotonic() + 20
    while True:
        stats = client.get_inference_statistics("g_gen", as_json=True)["model_stats"][0]
        done = int(stats.get("inference_count", 0)) - int(before.get("inference_count", 0))
        if done >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert done == 3
    every = client.get_inference_statistics(as_json=True)["model_stats"]
    assert "g_gen" in {s["name"] for s in every}
    with pytest.raises(InferenceServerException) as info:
        client.get_inference_statistics("no_such_model")
    assert info.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "requested model 'no_such_model' is not available" in info.value.message()


def test_index_load_override_and_unload(client):
    index = {m["name"]: m for m in client.get_model_repository_index(as_json=True)["models"]}
    assert index["g_add_sub"]["state"] == "READY"
    config = {
        "name": "g_override",
        "backend": "python",
        "max_batch_size": 8,
        "input": [{"name": n, "data_type": "TYPE_FP32", "dims": [4]} for n in ("INPUT0", "INPUT1")],
        "output": [
            {"name": n, "data_type": "TYPE_FP32", "dims": [4]} for n in ("OUTPUT0", "OUTPUT1")
        ],
    }
    client.load_model(
        "g_override",
        config=json.dumps(config),
        files={"file:1/model.py": ADD_SUB_MODEL.encode()},
    )
    try:
        assert client.is_model_ready("g_override")
        a = np.full((1, 4), 3, dtype=np.float32)
        result = client.infer("g_override", _add_sub_inputs(a, a))
        np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), a * 2)
    finally:
        client.unload_model("g_override")
    assert not client.is_model_ready("g_override")
    with pytest.raises(InferenceServerException) as info:
        client.infer("g_override", _add_sub_inputs(a, a))
    assert info.value.status() == "StatusCode.NOT_FOUND"
    client.unload_model("never_heard_of_it")  # OK, as on Triton
