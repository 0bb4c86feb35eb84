"""Decoupled models, the generate extension and the BLS callee, on the server class (no Ray)."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import numpy as np
import pytest
import ray

from deployments.backends import triton_python_backend_utils as pb_utils
from deployments.contracts.app_args import TritonModelAppArgs
from deployments.contracts.specs import load_model_spec
from deployments.model_server import TritonModelServer
from tests.model_repos import write_add_sub
from tests.pipeline_repos import write_decoupled_words, write_logger_model, write_text_generator


def _server(model, name):
    spec = load_model_spec(model, name)
    args = TritonModelAppArgs(spec=spec.to_json(), model_dir=str(model))
    server = TritonModelServer.func_or_class(args)  # type: ignore[attr-defined]
    server.batching = False  # @serve.batch needs a replica context
    return server


@pytest.fixture(name="servers")
def servers_fixture(tmp_path, monkeypatch):
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: [])
    made = {
        "gen": _server(write_text_generator(tmp_path), "gen"),
        "dec": _server(write_decoupled_words(tmp_path, delay_s=0.2), "dec"),
        "add_sub": _server(write_add_sub(tmp_path), "add_sub"),
        "logger": _server(write_logger_model(tmp_path), "logger"),
    }
    yield made
    for server in made.values():
        for backend in server.backends.values():
            backend.finalize()


def _client(server):
    async def asgi(scope, receive, send):
        from starlette.requests import Request

        response = await server(Request(scope, receive))
        await response(scope, receive, send)

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://m")


async def test_generate_on_a_plain_model_maps_inputs_and_outputs_by_name(servers):
    async with _client(servers["gen"]) as client:
        resp = await client.post(
            "/v2/models/gen/generate", json={"text_input": "hello world", "id": "abc", "p": 1}
        )
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"] == "application/json"
        assert resp.content == (
            b'{"id":"abc","model_name":"gen","model_version":"1","text_output":"HELLO WORLD"}'
        )
        resp = await client.post("/v2/models/gen/versions/1/generate", json={"text_input": "a"})
        assert resp.json()["text_output"] == "A"
        resp = await client.post("/v2/models/gen/versions/9/generate", json={"text_input": "a"})
        assert resp.status_code == 404
        assert resp.json() == {"error": "Request for unknown model: 'gen' version 9 is not found"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{}", "expected 1 inputs but got 0 inputs for model 'gen'"),
        (b'{"nope": "x"}', "missing required input(s) ['text_input']"),
        (b'{"text_input": ["a", "b"]}', "can not convert input 'text_input'"),
        (b'{"text_input": 12}', "Unable to parse input 'text_input'"),
        (b'{"text_input": null}', "Unable to parse input 'text_input'"),
        (b'{"text_input": "a", "extra": {"x": 1}}', "parameter 'extra' has invalid type"),
        (b'{"text_input": "a", "parameters": {"n": {"a": 1}}}', "Converting keyword"),
        (b'{"text_input": "a", "parameters": "notobj"}', "Expected JSON object"),
        (b"", "The document is empty"),
        (b"{bad json", "failed to parse the request JSON buffer"),
        (b"[1, 2]", "non-object"),
    ],
)
async def test_bad_generate_input_is_400_with_an_error_field(servers, body, message):
    async with _client(servers["gen"]) as client:
        for route in ("generate", "generate_stream"):
            resp = await client.post(f"/v2/models/gen/{route}", content=body)
            assert resp.status_code == 400, (route, resp.text)
            assert message in resp.json()["error"]


async def test_generate_stream_of_a_plain_model_is_one_event(servers):
    async with _client(servers["gen"]) as client:
        resp = await client.post("/v2/models/gen/generate_stream", json={"text_input": "one two"})
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert resp.content == (
            b'data: {"model_name":"gen","model_version":"1","text_output":"ONE TWO"}\n\n'
        )


async def test_decoupled_model_streams_each_response_as_it_is_sent(servers):
    from deployments.model_server import _request

    body = json.dumps({"text_input": "one two three"}).encode()
    request = _request("POST", "/v2/models/dec/generate_stream", "", [], body)
    response = await servers["dec"](request)
    assert response.status_code == 200
    assert response.media_type == "text/event-stream"
    arrivals: list[tuple[float, bytes]] = []
    start = time.monotonic()
    async for chunk in response.body_iterator:
        arrivals.append((time.monotonic() - start, chunk))
    assert [c for _, c in arrivals] == [
        b'data: {"model_name":"dec","model_version":"1","text_output":"%s"}\n\n' % w
        for w in (b"one", b"two", b"three")
    ]
    assert arrivals[0][0] < arrivals[-1][0] - 0.3  # the first event came before the end


async def test_decoupled_errors_mid_stream_end_it_with_an_error_event(servers):
    async with _client(servers["dec"]) as client:
        resp = await client.post("/v2/models/dec/generate_stream", json={"text_input": "a raise"})
        events = resp.content.split(b"\n\n")
        assert events[0] == b'data: {"model_name":"dec","model_version":"1","text_output":"a"}'
        assert json.loads(events[1][len(b"data: ") :])["error"].endswith("boom after responses")
        resp = await client.post("/v2/models/dec/generate_stream", json={"text_input": "a error"})
        assert resp.content.endswith(b'data: {"error":"error response"}\n\n')


async def test_infer_and_multi_response_generate_on_decoupled_models(servers):
    async with _client(servers["dec"]) as client:
        text = {"name": "text_input", "shape": [1], "datatype": "BYTES", "data": ["x"]}
        body = {"inputs": [text]}
        resp = await client.post("/v2/models/dec/infer", json=body)
        assert resp.status_code == 501
        assert resp.headers["content-type"].startswith("text/plain")
        assert resp.json() == {
            "error": "HTTP end point doesn't support models with decoupled transaction policy"
        }
        resp = await client.post("/v2/models/dec/generate", json={"text_input": "only"})
        assert resp.status_code == 200
        assert resp.json()["text_output"] == "only"
        resp = await client.post("/v2/models/dec/generate", json={"text_input": "a b"})
        assert resp.status_code == 400
        assert resp.json()["error"].startswith("generate expects model to produce exactly 1")


async def test_decoupled_stream_does_not_block_the_event_loop(servers):
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    task = asyncio.ensure_future(ticker())
    async with _client(servers["dec"]) as client:
        await client.post("/v2/models/dec/generate_stream", json={"text_input": "a b c"})
    task.cancel()
    assert ticks >= 8  # ~0.6 s of model sleeps, the loop kept running


async def test_bls_callee_validates_and_counts_like_triton(servers):
    server = servers["add_sub"]
    x = np.ones((1, 4), np.float32)
    kind, outputs = await server.infer_tensors(-1, {"INPUT0": x, "INPUT1": x}, ["OUTPUT0"])
    assert kind == "ok"
    assert list(outputs) == ["OUTPUT0"]
    np.testing.assert_allclose(outputs["OUTPUT0"], 2 * x)
    kind, message = await server.infer_tensors(-1, {"INPUT0": x.astype(np.int32)}, [])
    assert kind == "invalid"
    assert "data-type is 'INT32', but model 'add_sub' expects 'FP32'" in message
    kind, message = await server.infer_tensors(-1, {"INPUT0": x}, [])
    assert "missing required input(s) ['INPUT1']" in message
    kind, message = await server.infer_tensors(-1, {"INPUT0": x, "INPUT1": x}, ["NOPE"])
    assert message == "unexpected inference output 'NOPE' for model 'add_sub'"
    assert (await server.infer_tensors(7, {"INPUT0": x}, []))[0] == "not_ready"
    totals = server.book.drain()
    assert totals


def test_logger_writes_every_level_into_the_replica_log(servers, caplog):
    caplog.set_level("DEBUG", logger="ray.serve.triton_python_backend")
    backend = servers["logger"].backends[1]
    from deployments.backends.base import InferenceRequest

    text = np.array([b"hi"], dtype=object)
    [result] = backend.execute([InferenceRequest(inputs={"text_input": text})])
    assert result["text_output"][0] == b"hi"
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert ("INFO", "info line hi") in lines
    assert ("WARNING", "warn line") in lines
    assert ("ERROR", "error line") in lines
    assert ("DEBUG", "verbose line") in lines
    assert ("INFO", "plain log line") in lines


def test_response_sender_refuses_sends_after_final():
    sent = []
    sender = pb_utils.InferenceResponseSender(lambda r, f: sent.append((r, f)))
    sender.send(pb_utils.InferenceResponse(), flags=0)
    sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
    with pytest.raises(pb_utils.TritonModelException, match="closed"):
        sender.send(pb_utils.InferenceResponse())
    assert len(sent) == 2


def test_bls_without_a_runner_is_an_error_response(monkeypatch):
    monkeypatch.setattr(pb_utils.RUNTIME, "bls", None)
    response = pb_utils.InferenceRequest(model_name="x", inputs=[]).exec()
    assert response.has_error()
