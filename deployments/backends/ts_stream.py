"""Streaming responses of TorchServe handlers (``send_intermediate_predict_response``), Ray-free.

TorchServe's helper encodes each intermediate response with
``ts.protocol.otf_message_handler.create_predict_response`` and writes it to
``context.cl_socket``; here that socket is a :class:`StreamSocket` that decodes the frame and
hands each request's bytes to a callback (the replica turns them into HTTP chunks).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

PartCallback = Callable[[int, bytes], None]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def int(self) -> int:
        (value,) = struct.unpack_from("!i", self.data, self.pos)
        self.pos += 4
        return int(value)

    def blob(self) -> bytes:
        size = self.int()
        value = self.data[self.pos : self.pos + max(size, 0)]
        self.pos += max(size, 0)
        return value


def decode_predict_frame(msg: bytes) -> list[tuple[str, bytes]]:
    """``(request_id, body)`` of every request in one ``create_predict_response`` frame."""
    reader = _Reader(bytes(msg))
    reader.int()  # code
    reader.blob()  # message
    parts: list[tuple[str, bytes]] = []
    while True:
        size = reader.int()
        if size < 0:  # end of list
            return parts
        request_id = reader.data[reader.pos : reader.pos + size].decode("utf-8")
        reader.pos += size
        reader.blob()  # content type
        reader.int()  # http code
        reader.blob()  # reason phrase
        for _ in range(reader.int()):  # response headers
            reader.blob()
            reader.blob()
        parts.append((request_id, reader.blob()))


class StreamSocket:
    """Stands in for the worker socket: intermediate responses go to ``on_part(row, bytes)``."""

    def __init__(self, request_ids: dict[int, str], on_part: PartCallback | None) -> None:
        """Map TorchServe's request ids back to batch rows."""
        self.rows = {rid: idx for idx, rid in request_ids.items()}
        self.on_part = on_part

    def sendall(self, msg: bytes) -> None:
        """Decode one intermediate response and deliver its parts (dropped without a callback)."""
        if self.on_part is None:
            return
        for request_id, body in decode_predict_frame(msg):
            if request_id in self.rows:
                self.on_part(self.rows[request_id], body)
