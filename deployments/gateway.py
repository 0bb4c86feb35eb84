"""The apps gateway: ``/apps/<app>/<path>`` -> authenticate, authorise, proxy with retries.

One Serve application at route prefix ``/apps``. Routing data comes from the database through
``gateway_routing``, cached by ``gateway_cache`` (never older than ``routes_ttl_s``, refreshed in
the background), so the hot path is: Serve ingress ->
this replica -> the model: a DeploymentHandle call straight into the model's replica for the
built-in server, or HTTP keep-alive to an external triton (``gateway_upstream``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import logging
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from ray import serve
from ray.serve import Application
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from deployments.contracts.allocator import pin_mmap_threshold
from deployments.contracts.app_args import GatewayAppArgs
from deployments.contracts.security import api_key_digest
from deployments.gateway_cache import RoutingUnavailable, SnapshotCache
from deployments.gateway_routing import (
    Consumer,
    Credentials,
    GatewayError,
    Match,
    Snapshot,
    authorize,
    credentials,
    load_snapshot,
    match,
    response_headers,
    upstream_headers,
)
from deployments.gateway_upstream import Reply, UpstreamDown, Upstreams

logger = logging.getLogger(__name__)

ROUTE_PREFIX = "/apps"
RETRY_STATUSES = frozenset({502, 503, 504})
BAD_UPSTREAM = "An invalid response was received from the upstream server"
NODE_COOLDOWN_S = 2.0


def _error(err: GatewayError) -> Response:
    body = json.dumps({"message": err.message, "error": err.message}).encode()
    return Response(
        body, status_code=err.status, media_type="application/json", headers=err.headers
    )


def _make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        return sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    return sa.create_engine(url, pool_size=2, max_overflow=4, pool_pre_ping=True)


class PasswordCache:
    """Successful Basic-auth verifications, remembered briefly (argon2 is deliberately slow).

    Concurrent misses for the same credentials share one argon2 run (single flight).
    """

    def __init__(self, ttl_s: float = 60.0) -> None:
        self.ttl_s = ttl_s
        self.secret = secrets.token_bytes(32)
        self.entries: dict[bytes, float] = {}
        self.inflight: dict[bytes, asyncio.Future[bool]] = {}
        self.checks = 0  # argon2 verifications run

    async def verify(self, password_hash: str, password: str) -> bool:
        """argon2 verification off the event loop, cached by an HMAC of (hash, password)."""
        key = hmac.new(
            self.secret, f"{password_hash}\0{password}".encode(), hashlib.sha256
        ).digest()
        now = time.monotonic()
        if self.entries.get(key, 0.0) > now:
            return True
        running = self.inflight.get(key)
        if running is not None:
            return await asyncio.shield(running)  # one waiter's cancellation spares the rest
        task = asyncio.ensure_future(self._check(key, password_hash, password, now))
        self.inflight[key] = task
        task.add_done_callback(lambda _t: self.inflight.pop(key, None))
        return await asyncio.shield(task)

    async def _check(self, key: bytes, password_hash: str, password: str, now: float) -> bool:
        self.checks += 1

        def check() -> bool:
            from argon2 import PasswordHasher
            from argon2.exceptions import Argon2Error, InvalidHashError

            try:
                return bool(PasswordHasher().verify(password_hash, password))
            except (Argon2Error, InvalidHashError):
                return False

        if not await asyncio.to_thread(check):
            return False
        if len(self.entries) > 4096:
            self.entries.clear()
        self.entries[key] = now + self.ttl_s
        return True


@serve.deployment(name="AppsGateway", ray_actor_options={"num_cpus": 0}, max_ongoing_requests=256)
class AppsGateway:
    """Kong-like gateway for MLServe apps."""

    def __init__(self, args: GatewayAppArgs | dict[str, Any]) -> None:
        parsed = GatewayAppArgs.parse(args)
        engine = _make_engine(parsed.database_url)
        builtin_url = parsed.builtin_url
        self.cache: SnapshotCache[Snapshot] = SnapshotCache(
            lambda: load_snapshot(engine, builtin_url), parsed.routes_ttl_s
        )
        self.upstreams = Upstreams(parsed)
        self.passwords = PasswordCache()
        pin_mmap_threshold()  # argon2's 19 MiB buffers would otherwise stay in thread arenas
        self.round_robin: dict[int, itertools.count[int]] = {}
        self.cooldown: dict[str, float] = {}
        self._metrics()

    def _metrics(self) -> None:
        from ray.serve import metrics

        self.requests = metrics.Counter(
            "mlserve_gateway_requests",
            description="Gateway requests by app, model, consumer and status code.",
            tag_keys=("app", "model", "consumer", "code"),  # type: ignore[arg-type]
        )
        self.latency = metrics.Histogram(
            "mlserve_gateway_request_latency_ms",
            description="Gateway request latency (ms), upstream included.",
            boundaries=[1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000],
            tag_keys=("app", "model"),  # type: ignore[arg-type]
        )

    async def _consumer(self, snap: Snapshot, creds: Credentials) -> Consumer:
        if creds.key is not None:
            consumer = snap.users_by_key.get(api_key_digest(creds.key))
            if consumer is not None:
                return consumer
        elif creds.basic is not None:
            consumer = snap.users_by_name.get(creds.basic[0])
            if consumer is not None and await self.passwords.verify(
                consumer.password_hash, creds.basic[1]
            ):
                return consumer
        raise GatewayError(
            401, "Invalid authentication credentials", {"WWW-Authenticate": 'Key realm="mlserve"'}
        )

    def _nodes(self, snap: Snapshot, found: Match) -> list[str]:
        if found.app.override:
            return [found.app.override]
        assert found.route is not None
        nodes = list(snap.upstreams.get(found.route.model_id, ()))
        if not nodes:
            return []
        counter = self.round_robin.setdefault(found.route.model_id, itertools.count())
        start = next(counter) % len(nodes)
        ordered = nodes[start:] + nodes[:start]
        now = time.monotonic()
        healthy = [n for n in ordered if self.cooldown.get(n, 0.0) <= now]
        return healthy + [n for n in ordered if n not in healthy]

    async def __call__(self, request: Request) -> Response:
        """Handle one ``/apps/...`` request."""
        started = time.perf_counter()
        app_tag, model_tag, consumer_tag = "", "", ""
        try:
            response = await self._handle(request)
            found: Match | None = request.state.match if hasattr(request.state, "match") else None
            if found is not None:
                app_tag = found.app.name
                model_tag = found.route.model_name if found.route else ""
            consumer_tag = getattr(request.state, "consumer", "")
        except GatewayError as err:
            response = _error(err)
        except Exception:
            logger.exception("gateway failure")
            response = _error(GatewayError(500, "gateway internal error"))
        self.requests.inc(
            tags={
                "app": app_tag,
                "model": model_tag,
                "consumer": consumer_tag,
                "code": str(response.status_code),
            }
        )
        self.latency.observe(
            (time.perf_counter() - started) * 1000, tags={"app": app_tag, "model": model_tag}
        )
        return response

    async def _handle(self, request: Request) -> Response:
        scope = request.scope
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root + "/"):
            path = path[len(root) :]
        elif path.startswith(ROUTE_PREFIX + "/"):
            path = path[len(ROUTE_PREFIX) :]
        try:
            snap = await self.cache.get()
        except RoutingUnavailable:
            raise GatewayError(503, "routing table unavailable") from None
        method = scope["method"]
        found = match(snap, path, method)
        request.state.match = found
        # Straight from the ASGI scope: Starlette's URL, Headers and QueryParams objects cost
        # more than the routing itself (profiled), and names in scope["headers"] are lowercase.
        raw_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        headers = dict(raw_headers)
        if found.route is not None and found.route.protocols:
            scheme = headers.get("x-forwarded-proto") or scope.get("scheme", "http")
            if scheme not in found.route.protocols:
                raise GatewayError(426, "Please use HTTPS protocol")
        query = scope.get("query_string", b"").decode("latin-1")
        params: Mapping[str, str] = request.query_params if "apikey" in query else {}
        creds = credentials(headers, params)
        consumer = await self._consumer(snap, creds)
        authorize(found.app, consumer)
        request.state.consumer = consumer.name
        if found.route is None:
            return self._server_level(found.upstream_path)
        nodes = self._nodes(snap, found)
        if not nodes:
            raise GatewayError(503, f"no upstream available for model '{found.route.model_name}'")
        body = await request.body()
        forward = upstream_headers(raw_headers, creds)
        client = scope.get("client")
        client_ip = client[0] if client else ""
        prior = headers.get("x-forwarded-for")
        forward += [
            ("X-Consumer-ID", str(consumer.id)),
            ("X-Consumer-Username", consumer.name),
            ("X-Forwarded-For", f"{prior}, {client_ip}" if prior else client_ip),
            ("X-Forwarded-Prefix", found.prefix),
        ]
        if params:  # the key is hidden from the upstream (hide_credentials)
            query = urlencode(
                [(k, v) for k, v in request.query_params.multi_items() if k != "apikey"]
            )
        return await self._proxy(found, nodes, method, body, forward, query)

    def _server_level(self, path: str) -> Response:
        if path == "/v2":
            body = {"name": "mlserve-gateway", "version": "1", "extensions": ["binary_tensor_data"]}
            return Response(json.dumps(body).encode(), media_type="application/json")
        return Response(b"", status_code=200)

    async def _proxy(
        self,
        found: Match,
        nodes: list[str],
        method: str,
        body: bytes,
        headers: list[tuple[str, str]],
        query: str,
    ) -> Response:
        attempts = 1 + max(0, found.app.retries)
        last: Reply | None = None
        assert found.route is not None
        model = found.route.model_name
        for attempt in range(attempts):
            node = nodes[attempt % len(nodes)]
            sent = time.perf_counter()
            try:
                reply = await self.upstreams.send(
                    node, model, method, found.upstream_path, query, headers, body
                )
            except UpstreamDown as exc:
                self.cooldown[node] = time.monotonic() + NODE_COOLDOWN_S
                logger.info("upstream %s failed, attempt %d/%d", exc, attempt + 1, attempts)
                continue
            if reply.status in RETRY_STATUSES:
                if last is not None:
                    await last.discard()
                last = reply
                self.cooldown[node] = time.monotonic() + NODE_COOLDOWN_S
                continue
            if last is not None:
                await last.discard()
            return _relay(reply, sent)
        if last is not None:
            return _relay(last, time.perf_counter(), source=False)
        raise GatewayError(502, BAD_UPSTREAM)


def _relay(reply: Reply, sent: float, *, source: bool = True) -> Response:
    """The upstream answer as the gateway's response (hop-by-hop headers dropped).

    A streamed answer is relayed chunk by chunk (Serve sends it chunked); the latency header
    then measures the time to the upstream's headers.
    """
    latency = (b"x-mlserve-upstream-latency", f"{(time.perf_counter() - sent) * 1000:.2f}".encode())
    response: Response
    if reply.stream is not None:
        response = StreamingResponse(reply.stream, status_code=reply.status)
        extra = [latency]
    else:
        raw = reply.body
        response = Response(raw, status_code=reply.status)
        extra = [(b"content-length", str(len(raw)).encode()), latency]
    if source:
        extra.append((b"x-mlserve-upstream", reply.source.encode("latin-1")))
    response.raw_headers = [
        (k.lower().encode("latin-1"), v.encode("latin-1"))
        for k, v in response_headers(reply.headers)
    ] + extra
    return response


def build_gateway(args: GatewayAppArgs | dict[str, Any]) -> Application:
    """The gateway application (``deployments.gateway:build_gateway``).

    Args:
        args: :class:`GatewayAppArgs` (or its JSON, as Serve passes it).

    Raises:
        pydantic.ValidationError: the args do not fit the model.
    """
    parsed = GatewayAppArgs.parse(args)
    options: dict[str, Any] = {"max_ongoing_requests": parsed.max_ongoing_requests}
    if parsed.num_replicas:
        options["num_replicas"] = parsed.num_replicas
    app: Application = AppsGateway.options(**options).bind(parsed)  # type: ignore[attr-defined]
    return app
