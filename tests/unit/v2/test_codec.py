import gzip
import json

import numpy as np
import pytest

from deployments.contracts.datatypes import decode_bytes_tensor, encode_bytes_tensor
from deployments.contracts.errors import InvalidInput
from deployments.contracts.specs import load_model_spec
from deployments.v2_codec import decode_request, decompress, encode_response
from tests.model_repos import write_add_sub, write_echo_all_types


@pytest.fixture(name="spec")
def spec_fixture(tmp_path):
    write_add_sub(tmp_path)
    return load_model_spec(tmp_path / "add_sub", "add_sub")


@pytest.fixture(name="echo")
def echo_fixture(tmp_path):
    write_echo_all_types(tmp_path)
    return load_model_spec(tmp_path / "echo_types", "echo_types")


def _json_body(shape=(1, 4)):
    n = int(np.prod(shape))
    nested = [[1] * shape[1]] * shape[0]
    return json.dumps({"inputs": [
        {"name": "INPUT0", "shape": list(shape), "datatype": "FP32", "data": list(range(n))},
        {"name": "INPUT1", "shape": list(shape), "datatype": "FP32", "data": nested},
    ]}).encode()


def test_decode_json_flat_and_nested(spec):
    decoded = decode_request(_json_body((2, 4)), None, spec)
    assert decoded.batch_size == 2
    assert decoded.request.inputs["INPUT0"].shape == (2, 4)
    assert decoded.request.inputs["INPUT1"].dtype == np.float32
    assert decoded.outputs == ["OUTPUT0", "OUTPUT1"]
    assert decoded.request.requested_outputs is None


def test_decode_binary_tail(spec):
    a = np.arange(4, dtype=np.float32).reshape(1, 4)
    header = json.dumps({"inputs": [
        {"name": n, "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": 16}}
        for n in ("INPUT0", "INPUT1")], "parameters": {"binary_data_output": True}}).encode()
    decoded = decode_request(header + a.tobytes() + (a * 2).tobytes(), len(header), spec)
    np.testing.assert_array_equal(decoded.request.inputs["INPUT1"], a * 2)
    assert decoded.binary == {"OUTPUT0": True, "OUTPUT1": True}


def test_bytes_tensor_round_trip():
    values = np.array([b"a", b"", "\u00fc".encode()], dtype=object)
    raw = encode_bytes_tensor(values)
    assert list(decode_bytes_tensor(raw, 3)) == list(values)
    with pytest.raises(InvalidInput, match="truncated"):
        decode_bytes_tensor(raw[:-1], 3)
    with pytest.raises(InvalidInput, match="expected 2"):
        decode_bytes_tensor(raw, 2)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b.update(inputs=[]), "non-empty 'inputs'"),
        (
            lambda b: b["inputs"][0].update(shape=[1, 3], data=[1, 2, 3]),
            "Expected [-1,4], got [1,3]",
        ),
        (lambda b: b["inputs"][0].update(datatype="INT32"), "data-type is 'INT32'"),
        (lambda b: b["inputs"][0].update(name="Z"), "unexpected inference input 'Z'"),
        (lambda b: b["inputs"].pop(), "missing required input(s) ['INPUT1']"),
        (lambda b: b["inputs"][0].update(data=[1, 2]), "unexpected number of elements"),
        (lambda b: b["inputs"][0].update(data=["x", "y", "z", "w"]), "unable to parse 'data'"),
        (lambda b: b["inputs"][0].update(shape=[1, -4]), "non-negative integers"),
        (lambda b: b.update(outputs=[{"name": "Q"}]), "unexpected inference output 'Q'"),
        (lambda b: b["inputs"][0].update(datatype="BF16"), "data-type is 'BF16'"),
    ],
)
def test_decode_rejects_bad_requests(spec, mutate, message):
    body = json.loads(_json_body())
    mutate(body)
    with pytest.raises(InvalidInput) as err:
        decode_request(json.dumps(body).encode(), None, spec)
    assert message in err.value.message


def test_decode_rejects_malformed_json_and_lengths(spec):
    with pytest.raises(InvalidInput, match="failed to parse the request JSON"):
        decode_request(b"{nope", None, spec)
    with pytest.raises(InvalidInput, match="exceeds the body size"):
        decode_request(b"{}", 10, spec)
    body = _json_body()
    with pytest.raises(InvalidInput, match="unused trailing bytes"):
        decode_request(body + b"xx", len(body), spec)


def test_decompress_gzip_and_deflate():
    import zlib

    assert decompress(gzip.compress(b"abc"), "gzip") == b"abc"
    assert decompress(zlib.compress(b"abc"), "deflate") == b"abc"
    with pytest.raises(InvalidInput):
        decompress(b"not gzip", "gzip")


def test_encode_response_json_and_binary(spec):
    decoded = decode_request(_json_body(), None, spec)
    out = {"OUTPUT0": np.ones((1, 4), np.float32), "OUTPUT1": np.zeros((1, 4), np.float32)}
    body, headers = encode_response("add_sub", 1, decoded, out)
    parsed = json.loads(body)
    assert headers == {"content-type": "application/json"}
    assert parsed["outputs"][0] == {
        "name": "OUTPUT0",
        "datatype": "FP32",
        "shape": [1, 4],
        "data": [1.0] * 4,
    }
    decoded.binary["OUTPUT1"] = True
    body, headers = encode_response("add_sub", 1, decoded, out)
    head_len = int(headers["inference-header-content-length"])
    header = json.loads(body[:head_len])
    assert header["outputs"][1]["parameters"] == {"binary_data_size": 16}
    assert body[head_len:] == np.zeros(4, np.float32).tobytes()


def test_bytes_outputs_in_json_are_strings(echo):
    body = json.dumps(
        {"inputs": [{"name": "IN_BYTES", "shape": [2], "datatype": "BYTES", "data": ["hi", "yo"]}]}
    )
    decoded = decode_request(body.encode(), None, echo)
    assert list(decoded.request.inputs["IN_BYTES"]) == [b"hi", b"yo"]
    out = {"OUT_BYTES": decoded.request.inputs["IN_BYTES"]}
    payload, _ = encode_response("echo_types", 1, decoded, out)
    assert json.loads(payload)["outputs"] == [
        {"name": "OUT_BYTES", "datatype": "BYTES", "shape": [2], "data": ["hi", "yo"]}
    ]
