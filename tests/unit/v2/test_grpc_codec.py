"""The gRPC codec and the model server's ``grpc_*`` entry points, without Ray.

Bad input (garbage or mis-sized raw contents, unknown datatypes, huge declared shapes) must be
INVALID_ARGUMENT with Triton's texts, and a good request must be counted like an HTTP one.
"""

from __future__ import annotations

import numpy as np
import pytest
import ray
from tritonclient.grpc import service_pb2 as pb

from deployments.contracts.app_args import TritonModelAppArgs
from deployments.contracts.errors import InvalidInput
from deployments.contracts.specs import load_model_spec
from deployments.grpc_codec import decode_infer, encode_infer
from deployments.grpc_servicer import peek_model
from deployments.model_server import TritonModelServer
from tests.model_repos import write_add_sub, write_echo_all_types
from tests.pipeline_repos import write_decoupled_words

RID = "[request id: <id_unknown>] "


@pytest.fixture(name="spec")
def spec_fixture(tmp_path):
    return load_model_spec(write_add_sub(tmp_path), "add_sub")


def _request(raw=None, *, shape=(1, 4), datatype="FP32", names=("INPUT0", "INPUT1"), rid=""):
    request = pb.ModelInferRequest(model_name="add_sub", id=rid)
    for name in names:
        request.inputs.add(name=name, datatype=datatype, shape=list(shape))
        if raw is not None:
            request.raw_input_contents.append(raw)
    return request


def _error(request, spec):
    with pytest.raises(InvalidInput) as info:
        decode_infer(request, spec)
    return info.value.message


def test_decode_raw_fp32(spec):
    a = np.arange(8, dtype=np.float32).reshape(2, 4)
    decoded = decode_infer(_request(a.tobytes(), shape=(2, 4)), spec)
    np.testing.assert_array_equal(decoded.request.inputs["INPUT1"], a)
    assert decoded.batch_size == 2
    assert decoded.outputs == ["OUTPUT0", "OUTPUT1"]


@pytest.mark.parametrize("size", [12, 20, 0])
def test_raw_contents_of_wrong_length_are_rejected(spec, size):
    message = _error(_request(b"\x07" * size), spec)
    assert message == (
        f"{RID}input byte size mismatch for input 'INPUT1' for model 'add_sub'. "
        f"Expected 16, got {size}"
    )


def test_unknown_datatype_is_rejected(spec):
    message = _error(_request(b"\0" * 16, datatype="NOPE"), spec)
    assert message == (
        f"{RID}inference input 'INPUT1' data-type is 'NOPE', but model 'add_sub' expects 'FP32'"
    )


def test_huge_declared_shape_is_rejected_before_allocating(tmp_path):
    spec = load_model_spec(write_echo_all_types(tmp_path), "echo_types")
    request = pb.ModelInferRequest(model_name="echo_types")
    request.inputs.add(name="IN_FP32", datatype="FP32", shape=[2**40])
    request.raw_input_contents.append(b"\0" * 16)
    message = _error(request, spec)
    assert f"Expected {2**42}, got 16" in message
    negative = pb.ModelInferRequest(model_name="echo_types")
    negative.inputs.add(name="IN_FP32", datatype="FP32", shape=[-4])
    negative.raw_input_contents.append(b"\0" * 16)
    assert "unexpected shape for input 'IN_FP32'" in _error(negative, spec)


def test_garbage_bytes_tensor_is_rejected(tmp_path):
    spec = load_model_spec(write_echo_all_types(tmp_path), "echo_types")
    request = pb.ModelInferRequest(model_name="echo_types")
    request.inputs.add(name="IN_BYTES", datatype="BYTES", shape=[2])
    request.raw_input_contents.append(b"\xff\xff\xff\x7fgarbage")
    assert "truncated BYTES tensor" in _error(request, spec)


def test_shape_datatype_names_and_batch_use_tritons_texts(spec):
    wrong_shape = _error(_request(b"\0" * 20, shape=(1, 5), rid="x1"), spec)
    assert wrong_shape.startswith(
        "[request id: x1] unexpected shape for input 'INPUT1' for model 'add_sub'. "
        "Expected [-1,4], got [1,5]. NOTE: Setting a non-zero max_batch_size"
    )
    assert _error(_request(b"\0" * 16, names=("INPUT0", "NOPE")), spec) == (
        "unexpected inference input 'NOPE' for model 'add_sub'"
    )
    assert _error(_request(b"\0" * 16, names=("NOPE",)), spec) == (
        f"{RID}expected 2 inputs but got 1 inputs for model 'add_sub'. Got input(s) ['NOPE'], "
        "but missing required input(s) ['INPUT0','INPUT1']. Please provide all required input(s)."
    )
    missing = _error(_request(b"\0" * 16, names=("INPUT0",)), spec)
    assert missing == (
        f"{RID}expected 2 inputs but got 1 inputs for model 'add_sub'. Got input(s) ['INPUT0'], "
        "but missing required input(s) ['INPUT1']. Please provide all required input(s)."
    )
    assert _error(_request(b"\0" * 16 * 9, shape=(9, 4)), spec) == (
        f"{RID}inference request batch-size must be <= 8 for 'add_sub'"
    )
    unknown_out = _request(b"\0" * 16)
    unknown_out.outputs.add(name="NOPE")
    assert _error(unknown_out, spec) == "unexpected inference output 'NOPE' for model 'add_sub'"


def test_typed_contents_and_mixed_contents(spec):
    typed = _request()
    for tensor in typed.inputs:
        tensor.contents.fp32_contents.extend([1, 2, 3, 4])
    decoded = decode_infer(typed, spec)
    np.testing.assert_array_equal(decoded.request.inputs["INPUT0"], [[1, 2, 3, 4]])
    short = _request()
    for tensor in short.inputs:
        tensor.contents.fp32_contents.extend([1, 2, 3])
    assert _error(short, spec).endswith("Expected 16, got 12")
    mixed = _request(b"\0" * 16)
    mixed.inputs[0].contents.fp32_contents.extend([1, 2, 3, 4])  # INPUT1 is fine
    assert _error(mixed, spec) == (
        "contents field must not be specified when using raw_input_contents for 'INPUT0' for "
        "model 'add_sub'"
    )


def test_encode_uses_raw_output_contents(spec):
    decoded = decode_infer(_request(np.ones((1, 4), np.float32).tobytes(), rid="r"), spec)
    out = {"OUTPUT0": np.full((1, 4), 2, np.float32), "OUTPUT1": np.zeros((1, 4), np.float32)}
    response = encode_infer("add_sub", 1, decoded, out)
    assert response.id == "r"
    assert [o.name for o in response.outputs] == ["OUTPUT0", "OUTPUT1"]
    np.testing.assert_array_equal(
        np.frombuffer(response.raw_output_contents[0], np.float32), [2, 2, 2, 2]
    )


def test_peek_model_reads_name_and_version_and_refuses_garbage():
    request = _request(b"\0" * 16)
    request.model_version = "3"
    assert peek_model(request.SerializeToString()) == ("add_sub", "3")
    with pytest.raises(ValueError, match="truncated"):
        peek_model(b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")


@pytest.fixture(name="server")
def server_fixture(tmp_path, monkeypatch):
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: [])
    model = write_add_sub(tmp_path)
    spec = load_model_spec(model, "add_sub")
    server = TritonModelServer.func_or_class(  # type: ignore[attr-defined]
        TritonModelAppArgs(spec=spec.to_json(), model_dir=str(model))
    )
    server.batching = False
    server.reporter.ensure_started = lambda: None  # no loop task outside a replica
    yield server
    for backend in server.backends.values():
        backend.finalize()
    server.backends = {}


async def test_grpc_infer_answers_and_counts_like_http(server):
    a = np.ones((2, 4), np.float32)
    code, raw = await server.grpc_infer(_request(a.tobytes(), shape=(2, 4)).SerializeToString())
    assert code == "OK"
    response = pb.ModelInferResponse.FromString(raw)
    np.testing.assert_array_equal(
        np.frombuffer(response.raw_output_contents[0], np.float32).reshape(2, 4), a + a
    )
    code, message = await server.grpc_infer(_request(b"\0" * 12).SerializeToString())
    assert code == "INVALID_ARGUMENT"
    assert "Expected 16, got 12" in message
    assert (await server.grpc_infer(b"\xff\xff\xff"))[0] == "INVALID_ARGUMENT"
    stats = server.book.drain()["add_sub/1"]
    assert stats["inference_count"] == 2
    assert stats["durations"]["success"][0] == 1
    assert stats["durations"]["fail"][0] == 1
    bad_version = _request(a.tobytes(), shape=(2, 4))
    bad_version.model_version = "9"
    code, message = await server.grpc_infer(bad_version.SerializeToString())
    assert (code, message) == (
        "NOT_FOUND",
        "Request for unknown model: 'add_sub' version 9 is not found",
    )


async def test_grpc_stream_of_decoupled_model(tmp_path, monkeypatch):
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: [])
    model = write_decoupled_words(tmp_path)
    spec = load_model_spec(model, "dec")
    server = TritonModelServer.func_or_class(  # type: ignore[attr-defined]
        TritonModelAppArgs(spec=spec.to_json(), model_dir=str(model))
    )
    server.reporter.ensure_started = lambda: None
    request = pb.ModelInferRequest(model_name="dec", id="s")
    request.inputs.add(name="text_input", datatype="BYTES", shape=[1])
    request.raw_input_contents.append(b"\x07\x00\x00\x00one two")
    request.parameters["triton_enable_empty_final_response"].bool_param = True
    try:
        code, message = await server.grpc_infer(request.SerializeToString())
        assert code == "UNIMPLEMENTED"
        assert "decoupled transaction policy" in message
        items = [
            pb.ModelStreamInferResponse.FromString(raw)
            async for raw in server.grpc_stream(request.SerializeToString())
        ]
    finally:
        for backend in server.backends.values():
            backend.finalize()
    finals = [i.infer_response.parameters["triton_final_response"].bool_param for i in items]
    assert finals == [False, False, True]
    assert [i.infer_response.id for i in items] == ["s", "s", "s"]
    assert not items[-1].infer_response.outputs
    assert items[0].infer_response.raw_output_contents[0] == b"\x03\x00\x00\x00one"
