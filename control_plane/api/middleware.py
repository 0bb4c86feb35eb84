"""Pure-ASGI middleware: request ids and the loopback guard for management endpoints."""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from control_plane.api.errors import error_response
from control_plane.api.request_context import new_request_id

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Paths that change platform state; everything else (inference, health, metrics) is open.
MANAGEMENT_PREFIXES = (
    "/workflows",
    "/models",
    "/token",
    "/v2/repository",
    "/torc-service",
    "/api",
    "/status",
)

AdminCheck = Callable[[dict[str, str]], bool]


class RequestIdMiddleware:
    """Sets the request id contextvar and echoes it as ``x-request-id``.

    Also names the control-plane process that answered (``x-served-by: <host>:<pid>``), so
    operators running several control-plane replicas can tell which one served a request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.served_by = f"{socket.gethostname()}:{os.getpid()}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI event: tag HTTP responses with the request id and the server name."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for key, value in scope.get("headers", ()):
            if key == b"x-request-id":
                incoming = value.decode("latin-1")[:128]
                break
        request_id = new_request_id(incoming)

        async def send_with_id(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(k == b"x-request-id" for k, _ in headers):
                    headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"x-served-by", self.served_by))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and unix-socket peers."""
    if not host:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def is_management_path(path: str) -> bool:
    """True when the path belongs to a management API."""
    return any(path == p or path.startswith(p + "/") for p in MANAGEMENT_PREFIXES)


class ManagementGuardMiddleware:
    """Management endpoints answer loopback callers; others must present admin credentials.

    The admin check is looked up on ``app.state.admin_check`` at request time so the MLServe
    user service can provide it; without one, remote management calls get 403.
    """

    def __init__(self, app: ASGIApp, *, allow_remote: bool, require_auth: bool, state: Any) -> None:
        self.app = app
        self.allow_remote = allow_remote
        self.require_auth = require_auth
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI event: let management calls through only from allowed callers."""
        if scope["type"] != "http" or self.allow_remote or not is_management_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        local = is_loopback(client[0] if client else None)
        if local and not self.require_auth:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        check: AdminCheck | None = getattr(self.state, "admin_check", None)
        if check is not None and check(headers):
            await self.app(scope, receive, send)
            return
        status = 401 if check is not None else 403
        message = (
            "management API needs admin credentials from this address"
            if check is not None
            else "management API is only reachable from localhost"
        )
        response = error_response(scope["path"], status, "management_forbidden", message)
        await response(scope, receive, send)


class MetricsMiddleware:
    """Counts requests by route template and status in ``app.state.metrics`` (if present)."""

    def __init__(self, app: ASGIApp, *, state: Any) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI event: time HTTP requests and record them by route and status."""
        metrics = getattr(self.state, "metrics", None)
        if scope["type"] != "http" or metrics is None:
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def capture(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            from control_plane.metrics import route_template

            metrics.observe_request(
                scope["method"], route_template(dict(scope)), status, time.perf_counter() - start
            )
