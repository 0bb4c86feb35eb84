"""Pure-ASGI middleware: request context (id, served-by, metrics) and the management guard."""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from control_plane.api.errors import error_response
from control_plane.api.request_context import new_request_id
from control_plane.metrics import route_template

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


class RequestContextMiddleware:
    """Request id, ``x-served-by`` and the API request metrics, in one pure-ASGI layer.

    One layer instead of two: each ASGI layer wraps ``send`` in another closure, and on the
    control plane's hot routes the layers cost as much as the route (docs/benchmarks.md,
    "Control plane").

    * The request id is the caller's ``x-request-id`` (Serve's own ``RequestIdMiddleware``,
      outside the app in both ingress modes, puts one on every request) or a new one; it is
      kept in a contextvar for error envelopes and logs.
    * ``echo_request_id``: without Serve in front (uvicorn, tests) the response gets
      ``x-request-id`` here. Behind Serve it must not: Serve appends ``X-Request-ID`` itself, so
      this layer removes any the app set (error responses carry one) and the client sees it
      exactly once.
    * ``x-served-by: <host>:<pid>`` names the control-plane process that answered, so operators
      running several control-plane replicas can tell which one served a request.
    * Requests are counted by route template and status in ``state.metrics`` when present.
    """

    def __init__(self, app: ASGIApp, *, state: Any, echo_request_id: bool = True) -> None:
        self.app = app
        self.state = state
        self.echo_request_id = echo_request_id
        self.served_by = (b"x-served-by", f"{socket.gethostname()}:{os.getpid()}".encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI event: tag HTTP responses and count them."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                incoming = value.decode("latin-1")[:128]
                break
        request_id = new_request_id(incoming)
        echo = self.echo_request_id
        status = 500
        started = time.perf_counter()

        async def send_tagged(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k != b"x-request-id"]
                if echo:
                    headers.append((b"x-request-id", request_id.encode("latin-1")))
                headers.append(self.served_by)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_tagged)
        finally:
            metrics = getattr(self.state, "metrics", None)
            if metrics is not None:
                metrics.observe_request(
                    scope["method"], route_template(scope), status, time.perf_counter() - started
                )


@functools.lru_cache(maxsize=1024)
def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and unix-socket peers (cached: peers repeat, parsing costs)."""
    if not host or host == "127.0.0.1":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def is_management_path(path: str) -> bool:
    """True when the path belongs to a management API."""
    if not path.startswith(MANAGEMENT_PREFIXES):  # one C call rules out most paths
        return False
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
