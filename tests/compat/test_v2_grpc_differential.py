"""Differential test over gRPC: the real tritonserver 2.51 and the platform must agree.

The same model directories on both; the same requests through ``tritonclient.grpc`` and the raw
``GRPCInferenceService`` stub (for requests the client cannot build: garbage, mis-sized raw
contents, unknown datatypes, huge shapes). Responses, status codes and messages are compared;
after every bad request both keep serving.
"""

from __future__ import annotations

import queue
import shutil
import subprocess

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc

from tests.compat.tritonserver import TritonUnavailable, start_tritonserver
from tests.grpc_platform import ensure_grpc_ingress
from tests.model_repos import write_add_sub, write_echo_all_types
from tests.pipeline_repos import write_decoupled_words

pytestmark = [pytest.mark.ray, pytest.mark.compat]

MODELS = ("gd_add_sub", "gd_echo", "gd_dec")
OPTIONS = [("grpc.max_receive_message_length", 2**31 - 1)]


@pytest.fixture(scope="module", name="servers")
def servers_fixture(platform, tmp_path_factory):
    repo = tmp_path_factory.mktemp("grpc_diff_repo")
    write_add_sub(repo, name="gd_add_sub")
    write_echo_all_types(repo, name="gd_echo")
    write_decoupled_words(repo, name="gd_dec")
    platform_repo = platform.data_dir / "store" / "models"
    platform_repo.mkdir(parents=True, exist_ok=True)
    for name in MODELS:
        shutil.copytree(repo / name, platform_repo / name, dirs_exist_ok=True)
    try:
        real = start_tritonserver(repo)
    except (TritonUnavailable, OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"real tritonserver unavailable: {exc}")
    urls = {"triton": f"127.0.0.1:{real.grpc_port}", "platform": ensure_grpc_ingress(platform)}
    clients = {k: grpcclient.InferenceServerClient(u) for k, u in urls.items()}
    channels = {k: grpc.insecure_channel(u, options=OPTIONS) for k, u in urls.items()}
    stubs = {k: pb_grpc.GRPCInferenceServiceStub(c) for k, c in channels.items()}
    for client in clients.values():
        for name in MODELS:
            client.load_model(name)
    yield clients, stubs
    for name, client in clients.items():
        if name == "platform":
            for model in MODELS:
                client.unload_model(model)
        client.close()
    for channel in channels.values():
        channel.close()
    real.stop()


def _both(servers, fn):
    clients, _ = servers
    return {k: fn(c) for k, c in clients.items()}


def _rpc(stub, method, request):
    """``(code name, message, response)`` of one raw stub call."""
    try:
        return ("OK", "", getattr(stub, method)(request, timeout=120))
    except grpc.RpcError as exc:
        return (exc.code().name, exc.details(), None)


def _add_sub(shape=(1, 4), datatype="FP32", names=("INPUT0", "INPUT1"), raw=b"\0" * 16):
    request = pb.ModelInferRequest(model_name="gd_add_sub")
    for name in names:
        request.inputs.add(name=name, datatype=datatype, shape=list(shape))
        if raw is not None:
            request.raw_input_contents.append(raw)
    return request


def test_metadata_and_config_match(servers):
    for name in MODELS:
        got = _both(servers, lambda c, n=name: c.get_model_metadata(n, as_json=True))
        assert got["platform"] == got["triton"], name
    got = _both(servers, lambda c: c.get_model_config("gd_add_sub", as_json=True)["config"])
    for key in ("name", "backend", "max_batch_size", "input", "output"):
        assert got["platform"][key] == got["triton"][key], key
    delay = "max_queue_delay_microseconds"  # Triton also fills in preferred_batch_size
    assert got["platform"]["dynamic_batching"][delay] == got["triton"]["dynamic_batching"][delay]


@pytest.mark.parametrize("kind", ["FP32", "INT64", "BYTES", "BOOL", "UINT16", "FP16"])
def test_outputs_match(servers, kind):
    if kind == "BYTES":
        data = np.array([b"x", b"", b"yz"], dtype=object)
    elif kind == "BOOL":
        data = np.array([True, False])
    else:
        data = np.arange(5).astype(kind.lower().replace("fp", "float"))

    def infer(client):
        tensor = grpcclient.InferInput(f"IN_{kind}", list(data.shape), kind)
        tensor.set_data_from_numpy(data)
        response = client.infer("gd_echo", [tensor], request_id="same").get_response(as_json=True)
        return response

    got = _both(servers, infer)
    assert got["platform"] == got["triton"]


BAD_REQUESTS = {
    "wrong_shape": _add_sub(shape=(1, 5), raw=b"\0" * 20),
    "wrong_datatype": _add_sub(datatype="INT32"),
    "unknown_datatype": _add_sub(datatype="NOPE"),
    "unknown_input": _add_sub(names=("NOPE",)),
    "missing_input": _add_sub(names=("INPUT0",)),
    "no_inputs": _add_sub(names=()),
    "batch_too_big": _add_sub(shape=(9, 4), raw=b"\0" * 144),
    "raw_too_short": _add_sub(raw=b"\0" * 12),
    "raw_too_long": _add_sub(raw=b"\0" * 20),
    "huge_shape": _add_sub(shape=(8, 2**40)),
    "unknown_model": pb.ModelInferRequest(model_name="gd_nosuch"),
    "unknown_version": pb.ModelInferRequest(model_name="gd_add_sub", model_version="9"),
}


def _extra_bad():
    both = _add_sub()
    both.inputs[0].contents.fp32_contents.extend([1, 2, 3, 4])
    typed_short = _add_sub(raw=None)
    for tensor in typed_short.inputs:
        tensor.contents.fp32_contents.extend([1, 2, 3])
    unknown_output = _add_sub()
    unknown_output.outputs.add(name="NOPE")
    garbage_bytes = pb.ModelInferRequest(model_name="gd_echo")
    garbage_bytes.inputs.add(name="IN_BYTES", datatype="BYTES", shape=[2])
    garbage_bytes.raw_input_contents.append(b"\xff\xff\xff\x7fgarbage")
    return {
        "contents_and_raw": both,
        "typed_contents_short": typed_short,
        "unknown_output": unknown_output,
        "garbage_bytes_tensor": garbage_bytes,
    }


BAD_REQUESTS.update(_extra_bad())
# Where the platform's text differs on purpose or in detail (the code always matches).
MESSAGE_DIFFERS = {"unknown_datatype", "huge_shape", "garbage_bytes_tensor", "no_inputs"}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_requests_get_the_same_status(servers, case):
    _, stubs = servers
    got = {k: _rpc(s, "ModelInfer", BAD_REQUESTS[case]) for k, s in stubs.items()}
    assert got["platform"][0] == got["triton"][0], (case, got)
    assert got["platform"][0] != "OK" or case == "no_inputs", case
    assert got["platform"][0] not in ("UNKNOWN", "INTERNAL"), got
    assert got["platform"][1], case  # a message naming the problem
    if case not in MESSAGE_DIFFERS:
        assert got["platform"][1] == got["triton"][1], case
    ok = {k: _rpc(s, "ModelInfer", _add_sub())[0] for k, s in stubs.items()}
    assert ok == {"triton": "OK", "platform": "OK"}  # both keep serving


@pytest.mark.parametrize(
    ("method", "request_"),
    [
        ("ModelMetadata", pb.ModelMetadataRequest(name="gd_nosuch")),
        ("ModelConfig", pb.ModelConfigRequest(name="gd_nosuch")),
        ("ModelMetadata", pb.ModelMetadataRequest(name="gd_add_sub", version="9")),
        ("ModelStatistics", pb.ModelStatisticsRequest(name="gd_nosuch")),
        ("ModelReady", pb.ModelReadyRequest(name="gd_nosuch")),
        ("RepositoryModelUnload", pb.RepositoryModelUnloadRequest(model_name="gd_nosuch")),
        ("ModelInfer", pb.ModelInferRequest(model_name="gd_dec")),
        ("SystemSharedMemoryRegister", pb.SystemSharedMemoryRegisterRequest(name="r")),
    ],
)
def test_other_rpcs_answer_like_triton(servers, method, request_):
    _, stubs = servers
    got = {k: _rpc(s, method, request_) for k, s in stubs.items()}
    if method == "SystemSharedMemoryRegister":  # not implemented here, on purpose
        assert got["platform"][0] == "UNIMPLEMENTED"
        return
    assert got["platform"][:2] == got["triton"][:2], got
    if got["triton"][2] is not None and method == "ModelReady":
        assert got["platform"][2].ready == got["triton"][2].ready


def test_decoupled_stream_matches(servers):
    _clients, _ = servers

    def stream(client):
        got: queue.Queue = queue.Queue()
        client.start_stream(callback=lambda result, error: got.put((result, error)))
        tensor = grpcclient.InferInput("text_input", [1], "BYTES")
        tensor.set_data_from_numpy(np.array([b"one two"], dtype=object))
        client.async_stream_infer(
            "gd_dec", [tensor], request_id="s1", enable_empty_final_response=True
        )
        answers = []
        while True:
            result, error = got.get(timeout=60)
            assert error is None
            response = result.get_response()
            answers.append(
                (
                    response.id,
                    [o.name for o in response.outputs],
                    list(response.raw_output_contents),
                    response.parameters["triton_final_response"].bool_param,
                )
            )
            if answers[-1][3]:
                break
        client.stop_stream()
        return answers

    got = _both(servers, stream)
    assert got["platform"] == got["triton"]
