"""The TorchServe model replica as a plain class: timeouts, streams, handler metrics (no Ray)."""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import Request

from deployments.contracts.app_args import TorchServeModelAppArgs, TorchServeVersionArgs
from deployments.ts_model import StreamAborted, TSModelServer

HANDLER = """
import time

from ts.handler_utils.utils import send_intermediate_predict_response


def handle(data, context):
    if data is None:
        return None
    body = bytes(data[0]["body"])
    if body == b"slow":
        time.sleep(1.5)
    if body.startswith(b"stream"):
        for part in (b"a", b"b"):
            send_intermediate_predict_response([part], context.request_ids, "ok", 200, context)
        if body == b"stream-fail":
            raise RuntimeError("boom")
    context.metrics.add_counter("Calls", 1)
    return [b"done"]
"""


def _server(tmp_path) -> TSModelServer:
    (tmp_path / "handler.py").write_text(HANDLER)
    version = TorchServeVersionArgs(
        archive=str(tmp_path),
        model_dir=str(tmp_path),
        handler="handler.py",
        batch_size=1,
        max_batch_delay=0,
        response_timeout=1,
    )
    args = TorchServeModelAppArgs(
        name="rep",
        default_version="1.0",
        versions={"1.0": version},
        min_workers=1,
        max_workers=1,
        max_ongoing_requests=8,
    )
    return TSModelServer(args)


def _request(body: bytes) -> Request:
    sent = False

    async def receive():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/predictions/rep",
        "headers": [],
        "query_string": b"",
    }
    return Request(scope, receive)


async def _chunks(response) -> list[bytes]:
    return [chunk async for chunk in response.body_iterator]


@pytest.fixture(name="server")
def server_fixture(tmp_path):
    return _server(tmp_path)


async def test_reply_and_handler_metric(server):
    response = await server(_request(b"x"))
    assert (response.status_code, response.body) == (200, b"done")
    records = server.metrics.book.drain()
    assert {r["name"] for r in records} >= {"Calls", "PredictionTime"}


async def test_response_timeout_answers_worker_died(server):
    response = await server(_request(b"slow"))
    assert response.status_code == 500
    assert b'"message": "Worker died."' in response.body
    await asyncio.sleep(0.6)  # the abandoned handler thread finishes; the replica still serves
    assert (await server(_request(b"x"))).status_code == 200


async def test_stream_sends_parts_then_the_final_value(server):
    response = await server(_request(b"stream"))
    assert response.headers["ts_stream_next"] == "true"
    assert await _chunks(response) == [b"a", b"b", b"done"]


async def test_handler_raising_mid_stream_aborts_without_the_last_chunk(server):
    response = await server(_request(b"stream-fail"))
    got: list[bytes] = []

    async def drain() -> None:
        async for chunk in response.body_iterator:
            got.append(chunk)

    with pytest.raises(StreamAborted):
        await drain()
    assert got == [b"a", b"b"]
