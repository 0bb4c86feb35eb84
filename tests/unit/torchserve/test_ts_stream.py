"""Intermediate responses of TorchServe handlers decoded from TorchServe's own wire frames."""

from __future__ import annotations

from ts.context import Context, RequestProcessor
from ts.protocol.otf_message_handler import create_predict_response

from deployments.backends.torchserve_handler import TorchServeHandler
from deployments.backends.ts_stream import StreamSocket, decode_predict_frame

STREAMER = """
from ts.handler_utils.utils import send_intermediate_predict_response


def handle(data, context):
    if data is None:
        return None
    for i in range(3):
        send_intermediate_predict_response(
            [f"part{i};" for _ in data], context.request_ids, "Intermediate", 200, context
        )
    dicts = [{"a": 1} for _ in data]
    send_intermediate_predict_response(dicts, context.request_ids, "x", 200, context)
    return ["final" for _ in data]
"""


def _context(request_ids):
    ctx = Context("m", "/tmp", None, 1, None, "0.12.0", True, None, {})
    ctx.request_ids = request_ids
    ctx.request_processor = [RequestProcessor({}) for _ in request_ids]
    return ctx


def test_decode_predict_frame_reads_every_request_of_torchserves_frame():
    ids = {0: "a", 1: "b"}
    ctx = _context(ids)
    ctx.set_response_header(0, "x-h", "v")
    frame = create_predict_response([b"raw", {"k": 1}], ids, "msg", 200, ctx, True)
    assert decode_predict_frame(frame) == [("a", b"raw"), ("b", b'{\n  "k": 1\n}')]


def test_stream_socket_maps_request_ids_to_rows():
    seen = []
    sock = StreamSocket({0: "a", 1: "b"}, lambda idx, body: seen.append((idx, body)))
    sock.sendall(
        create_predict_response(["x", "y"], {0: "a", 1: "b"}, "m", 200, _context({0: "a", 1: "b"}))
    )
    assert seen == [(0, b"x"), (1, b"y")]
    StreamSocket({0: "a"}, None).sendall(b"ignored without a callback")


def test_handler_intermediate_responses_reach_on_part_in_order(tmp_path):
    (tmp_path / "handler.py").write_text(STREAMER)
    handler = TorchServeHandler("streamer", tmp_path, "handler.py")
    parts = []
    outputs = handler.predict(
        [{"body": b"1"}, {"body": b"2"}], None, lambda i, b: parts.append((i, b))
    )
    assert [o.body for o in outputs] == [b"final", b"final"]
    assert parts[:2] == [(0, b"part0;"), (1, b"part0;")]
    assert [b for i, b in parts if i == 1] == [b"part0;", b"part1;", b"part2;", b'{\n  "a": 1\n}']
    # without a callback the parts are dropped and the final value still comes back
    assert handler.predict([{"body": b"1"}])[0].body == b"final"
