"""How the apps gateway reaches one upstream node: a DeploymentHandle or keep-alive HTTP.

Models on the built-in server are Serve applications of their own (``p-v2-<model>``); the gateway
calls their replicas through a cached ``DeploymentHandle`` (``TritonModelServer.handle_raw``, the
same dispatch as its HTTP entry point) instead of going back out through the Serve ingress,
when that is the faster way (``use_handles``). External tritons, and built-in apps that cannot be
resolved, are called over HTTP (aiohttp).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from ray import serve
from ray.exceptions import RayActorError, RayTaskError
from ray.serve.exceptions import (
    BackPressureError,
    DeploymentUnavailableError,
    ReplicaUnavailableError,
    RequestCancelledError,
)

from deployments.contracts.app_args import GatewayAppArgs

logger = logging.getLogger(__name__)

# The replica or the application is gone or refusing work: the next upstream is tried, as for a
# refused TCP connection.
UNAVAILABLE = (
    RayActorError,
    DeploymentUnavailableError,
    ReplicaUnavailableError,
    BackPressureError,
    RequestCancelledError,
)
UNRESOLVED_RETRY_S = 5.0


class UpstreamDown(Exception):
    """The node did not answer (connection refused, timeout, replica or application gone)."""


@dataclass(frozen=True)
class Reply:
    """An upstream answer and where it came from (``X-MLServe-Upstream``).

    ``stream`` is set (and ``body`` empty) for a streamed answer (chunked or server-sent events):
    the chunks are relayed as they arrive; closing the iterator releases the connection.
    """

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    source: str
    stream: AsyncIterator[bytes] | None = None

    async def discard(self) -> None:
        """Release a streamed answer that will not be relayed (a retried 503)."""
        if self.stream is not None:
            await self.stream.aclose()  # type: ignore[attr-defined]


class Upstreams:
    """Sends one proxied request to one node: built-in models by handle, the rest over HTTP."""

    def __init__(self, args: GatewayAppArgs) -> None:
        self.builtin_url = args.builtin_url.rstrip("/")
        self.builtin_app = args.builtin_app
        self.builtin_deployment = args.builtin_deployment
        self.use_handles = use_handles(args.builtin_handles)
        self.timeout_s = args.upstream_timeout_s
        self.timeout = aiohttp.ClientTimeout(total=self.timeout_s, sock_connect=3.0)
        self._session: aiohttp.ClientSession | None = None
        self.handles: dict[str, Any] = {}
        self.unresolved: dict[str, float] = {}

    def _client(self) -> aiohttp.ClientSession:
        # aiohttp (measured ~2x httpx's request rate here) with raw bodies: no decompression, and
        # no automatic headers, so the upstream sees exactly what the caller sent.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=512, keepalive_timeout=60),
                timeout=self.timeout,
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            )
        return self._session

    async def send(
        self,
        node: str,
        model: str,
        method: str,
        path: str,
        query: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> Reply:
        """One attempt at ``node``.

        Raises:
            UpstreamDown: the node is unreachable or its replica/application is unavailable.
        """
        if node == self.builtin_url and self.use_handles and _model_path(path, model):
            app = self.builtin_app.replace("{model}", model)
            handle = await self._handle(app)
            if handle is not None:
                return await self._call(handle, app, method, path, query, headers, body)
        return await self._http(node, method, path, query, headers, body)

    async def _handle(self, app: str) -> Any:
        cached = self.handles.get(app)
        if cached is not None:
            return cached
        if self.unresolved.get(app, 0.0) > time.monotonic():
            return None
        try:
            # A controller round trip (blocking ray.get) the first time only: off the loop.
            found = await asyncio.to_thread(
                serve.get_deployment_handle, self.builtin_deployment, app
            )
        except Exception as exc:  # KeyError: no such app; RayServeException: no controller
            logger.info("no handle for %s (%s): using HTTP", app, exc)
            self.unresolved[app] = time.monotonic() + UNRESOLVED_RETRY_S
            return None
        # NOTE: ``handle.handle_raw`` builds a new handle object on every attribute access.
        handle = found.options(method_name="handle_raw")
        self.handles[app] = handle
        return handle

    async def _call(
        self,
        handle: Any,
        app: str,
        method: str,
        path: str,
        query: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> Reply:
        response = handle.remote(method, path, query, headers, body)
        try:
            async with asyncio.timeout(self.timeout_s):
                status, got, raw = await response
        except UNAVAILABLE as exc:
            raise UpstreamDown(f"serve:{app} {type(exc).__name__}") from exc
        except TimeoutError as exc:
            response.cancel()
            raise UpstreamDown(f"serve:{app} timed out") from exc
        except RayTaskError as exc:  # an exception the model server did not map: HTTP's 500
            logger.warning("serve:%s failed: %s", app, exc)
            got, raw = [("content-type", "text/plain; charset=utf-8")], b"Internal Server Error"
            return Reply(500, got, raw, f"serve:{app}")
        return Reply(status, got, raw, f"serve:{app}")

    async def _http(
        self,
        node: str,
        method: str,
        path: str,
        query: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> Reply:
        url = node + path + (f"?{query}" if query else "")
        source = node.removeprefix("http://")
        try:
            upstream = await self._client().request(
                method, url, data=body, headers=headers, allow_redirects=False
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise UpstreamDown(f"{node} {type(exc).__name__}") from exc
        got = list(upstream.headers.items())
        if streamed(upstream.headers):
            return Reply(upstream.status, got, b"", source, _chunks(upstream))
        try:
            raw = await upstream.read()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise UpstreamDown(f"{node} {type(exc).__name__}") from exc
        finally:
            upstream.release()
        return Reply(upstream.status, got, raw, source)


def streamed(headers: Mapping[str, str]) -> bool:
    """A response to relay chunk by chunk: server-sent events, or chunked without a length."""
    if headers.get("Content-Type", "").lower().startswith("text/event-stream"):
        return True
    chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
    return chunked and "Content-Length" not in headers


async def _chunks(upstream: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The body as it arrives; a broken stream ends the response (headers are already sent)."""
    try:
        async for chunk in upstream.content.iter_any():
            yield chunk
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        logger.warning("upstream stream broke: %s", exc)
    finally:
        upstream.release()


def use_handles(mode: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether built-in models are called by handle: ``on``, ``off`` or ``auto``.

    ``auto`` calls by handle unless Serve's HAProxy ingress is on. Measured on this 2-core
    machine (docs/mlserve.md, "Benchmark"): behind HAProxy with the throughput-optimized flags an
    HTTP keep-alive call back through the ingress beats a handle call (4.3-4.9 vs 5.6-6.3 ms p50
    at c=1 for a tiny model, ~1.3x the throughput at c=8/32), while behind Serve's Python proxy
    the handle wins (21 vs 28-30 ms p50 at c=1, ~1.4x the throughput).
    """
    if mode not in ("auto", "on", "off"):
        raise ValueError(f"Got {mode!r} for builtin_handles; expected auto, on or off")
    if mode == "auto":
        return environ.get("RAY_SERVE_ENABLE_HA_PROXY", "0") != "1"
    return mode == "on"


def _model_path(path: str, model: str) -> bool:
    """Only the model's own endpoints go by handle: the ingress routes exactly these to its app.

    ``generate_stream`` goes over HTTP: ``handle_raw`` returns a whole response, HTTP streams.
    """
    prefix = f"/v2/models/{model}"
    if path.endswith("/generate_stream"):
        return False
    return path == prefix or path.startswith(prefix + "/")
