"""``TritonModelServer.handle_raw`` (the gateway's handle entry) answers exactly like HTTP."""

from __future__ import annotations

import gzip
import json

import httpx
import numpy as np
import pytest
import ray
import tritonclient.http as httpclient

from deployments.contracts.app_args import TritonModelAppArgs
from deployments.contracts.specs import load_model_spec
from deployments.model_server import TritonModelServer
from tests.model_repos import write_add_sub

PREFIX = "/v2/models/add_sub"


@pytest.fixture(name="server")
def server_fixture(tmp_path, monkeypatch):
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: [])
    model = write_add_sub(tmp_path, versions=(1, 2))
    spec = load_model_spec(model, "add_sub")
    args = TritonModelAppArgs(spec=spec.to_json(), model_dir=str(model))
    server = TritonModelServer.func_or_class(args)  # type: ignore[attr-defined]
    server.batching = False  # @serve.batch needs a replica context; dispatch is what is tested
    yield server
    for backend in server.backends.values():
        backend.finalize()
    server.backends = {}


async def _both(server, method, path, query="", headers=(), body=b""):
    """The same request over HTTP (Serve's ASGI call of ``__call__``) and through handle_raw."""

    async def asgi(scope, receive, send):
        from starlette.requests import Request

        response = await server(Request(scope, receive))
        await response(scope, receive, send)

    transport = httpx.ASGITransport(app=asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://m") as client:
        url = path + (f"?{query}" if query else "")
        over_http = await client.request(method, url, headers=list(headers), content=body)
    status, got, raw = await server.handle_raw(method, path, query, list(headers), body)
    assert status == over_http.status_code
    assert raw == over_http.content
    assert sorted((k.lower(), v) for k, v in got) == sorted(over_http.headers.items())
    return status, dict(got), raw


def _binary_request():
    a = np.arange(8, dtype=np.float32).reshape(2, 4)
    b = np.full((2, 4), 0.5, dtype=np.float32)
    inputs = [
        httpclient.InferInput("INPUT0", [2, 4], "FP32"),
        httpclient.InferInput("INPUT1", [2, 4], "FP32"),
    ]
    inputs[0].set_data_from_numpy(a)
    inputs[1].set_data_from_numpy(b)
    outputs = [httpclient.InferRequestedOutput("OUTPUT0", binary_data=True)]
    body, length = httpclient.InferenceServerClient.generate_request_body(inputs, outputs)
    return a, b, body, length


async def test_json_infer_metadata_ready_and_config_match_http(server):
    payload = {
        "inputs": [
            {"name": "INPUT0", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]},
            {"name": "INPUT1", "shape": [1, 4], "datatype": "FP32", "data": [1, 1, 1, 1]},
        ]
    }
    body = json.dumps(payload).encode()
    status, _, raw = await _both(server, "POST", PREFIX + "/infer", headers=[], body=body)
    assert status == 200
    assert json.loads(raw)["outputs"][0]["data"] == [3, 5, 7, 9]  # version 2 doubles INPUT0
    status, _, raw = await _both(server, "POST", PREFIX + "/versions/2/infer", body=body)
    assert json.loads(raw)["outputs"][0]["data"] == [3, 5, 7, 9]
    status, _, raw = await _both(server, "POST", PREFIX + "/versions/1/infer", body=body)
    assert status == 404  # not served (latest: 1 policy)
    assert (await _both(server, "GET", PREFIX))[0] == 200
    assert (await _both(server, "GET", PREFIX + "/ready"))[0] == 200
    assert (await _both(server, "GET", PREFIX + "/versions/9/ready"))[0] == 400
    assert (await _both(server, "GET", PREFIX + "/config"))[0] == 200
    assert (await _both(server, "DELETE", PREFIX))[0] == 405


async def test_binary_tensors_and_gzip_bodies_match_http(server):
    a, b, body, length = _binary_request()
    headers = [
        ("Inference-Header-Content-Length", str(length)),
        ("Content-Type", "application/octet-stream"),
    ]
    status, got, raw = await _both(server, "POST", PREFIX + "/infer", headers=headers, body=body)
    assert status == 200, raw
    header_length = int(got["inference-header-content-length"])
    result = httpclient.InferResult.from_response_body(raw, header_length=header_length)
    np.testing.assert_allclose(result.as_numpy("OUTPUT0"), a * 2 + b)
    zipped = [*headers, ("Content-Encoding", "gzip")]
    status, _, raw = await _both(
        server, "POST", PREFIX + "/infer", headers=zipped, body=gzip.compress(body)
    )
    assert status == 200
    bad = [("Inference-Header-Content-Length", "nope")]
    assert (await _both(server, "POST", PREFIX + "/infer", headers=bad, body=body))[0] == 400


async def test_handle_serves_only_this_models_paths(server):
    # The ingress routes only /v2/models/add_sub[/...] to this app; the handle refuses the rest.
    for path in ("/v2", "/v2/models/other/infer", "/v2/models/add_sub_x", "/predictions/add_sub"):
        status, _, raw = await server.handle_raw("GET", path, "", [], b"")
        assert status == 404, path
        assert "no route" in json.loads(raw)["error"]
