"""A raw HTTP/1.1 client that keeps chunk boundaries and arrival times (streaming checks)."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class ChunkedReply:
    """One response: status, headers (lower-case names), and each chunk with its arrival time."""

    status: int
    headers: dict[str, str]
    chunks: list[bytes] = field(default_factory=list)
    arrivals_s: list[float] = field(default_factory=list)
    body: bytes = b""
    reset: bool = False
    trailing: bytes = b""

    @property
    def chunked(self) -> bool:
        """Whether the body came with ``Transfer-Encoding: chunked``."""
        return self.headers.get("transfer-encoding", "").lower() == "chunked"


def post_chunks(
    url: str, body: bytes, headers: dict[str, str] | None = None, timeout_s: float = 60
) -> ChunkedReply:
    """POST ``body`` and read the reply chunk by chunk (times relative to sending the request)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lines = [
        f"POST {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1",
        f"Host: {host}:{port}",
        f"Content-Length: {len(body)}",
        "Content-Type: text/plain",
        "Connection: close",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    sock = socket.create_connection((host, port), timeout=timeout_s)
    started = time.monotonic()
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    stream = sock.makefile("rb")
    try:
        status_line = stream.readline().decode()
        reply = ChunkedReply(int(status_line.split()[1]), {})
        while (line := stream.readline().decode()) not in ("\r\n", "\n", ""):
            name, _, value = line.partition(":")
            reply.headers[name.strip().lower()] = value.strip()
        if not reply.chunked:
            length = int(reply.headers.get("content-length", "0") or 0)
            reply.body = stream.read(length)
            return reply
        try:
            while True:
                size_line = stream.readline()
                if not size_line:  # closed without the last chunk
                    reply.reset = True
                    break
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    stream.readline()
                    break
                data = stream.read(size)
                stream.readline()
                reply.chunks.append(data)
                reply.arrivals_s.append(time.monotonic() - started)
        except ConnectionResetError:
            reply.reset = True
        reply.body = b"".join(reply.chunks)
        return reply
    finally:
        stream.close()
        sock.close()
