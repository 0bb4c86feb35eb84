"""External Triton servers, driven only through ``tritonclient.http`` (the v2 HTTP protocol).

Every call builds its own client (geventhttpclient clients are not thread-safe) with short
timeouts, and turns transport failures into ``UpstreamUnavailableError`` and Triton error answers
into ``UpstreamError`` carrying Triton's message.

Every call runs on one long-lived pool of threads (``fan_out`` for several at once).
geventhttpclient gives each thread that uses it a gevent hub (an event loop, a thread pool, a
resolver: about 58 KiB) that is never freed when the thread exits. Calls from short-lived
threads (a ``ThreadPoolExecutor`` per request, anyio's workers, which exit after 10 s idle)
leaked one hub each: the control plane grew ~10 MiB a minute in the soak, where every
``GET /api/models`` asked the built-in server for statistics. The pool's threads live as long
as the process, so there are at most ``POOL_THREADS`` hubs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from control_plane.errors import UpstreamError, UpstreamUnavailableError

logger = logging.getLogger(__name__)

T = TypeVar("T")
U = TypeVar("U")

PROBE_TIMEOUT_S = 1.5
CALL_TIMEOUT_S = 10.0
LOAD_TIMEOUT_S = 300.0
POOL_THREADS = 16

_on_pool = threading.local()


def _mark_pool_thread() -> None:
    _on_pool.yes = True


_POOL = ThreadPoolExecutor(
    max_workers=POOL_THREADS, thread_name_prefix="tritonclient", initializer=_mark_pool_thread
)


def on_pool_thread() -> bool:
    """True on one of the pool's threads (where calls run inline)."""
    return bool(getattr(_on_pool, "yes", False))


def fan_out(fn: Callable[[U], T], items: Iterable[U]) -> list[T]:
    """``[fn(item) ...]`` run concurrently on the client threads, in order.

    ``fn`` may call this module's functions; they run inline there. On a pool thread itself
    the items run one after the other, so a pool thread never waits on the pool.
    """
    if on_pool_thread():
        return [fn(item) for item in items]
    return list(_POOL.map(fn, items))


def _client(url: str, timeout_s: float) -> Any:
    import tritonclient.http as httpclient

    return httpclient.InferenceServerClient(
        url, connection_timeout=min(timeout_s, 5.0), network_timeout=timeout_s
    )


def _is_triton_error(exc: Exception) -> bool:
    from tritonclient.utils import InferenceServerException

    return isinstance(exc, InferenceServerException) and exc.status() is not None


def _call(url: str, what: str, timeout_s: float, fn: Callable[[Any], T]) -> T:
    if not on_pool_thread():
        return _POOL.submit(_call_here, url, what, timeout_s, fn).result()
    return _call_here(url, what, timeout_s, fn)


def _call_here(url: str, what: str, timeout_s: float, fn: Callable[[Any], T]) -> T:
    client = None
    try:
        # Building the client parses the URL: a host it cannot parse is unreachable too.
        client = _client(url, timeout_s)
        return fn(client)
    except Exception as exc:
        if _is_triton_error(exc):
            raise UpstreamError(
                f"triton {url} failed to {what}: {exc.message()}",  # type: ignore[attr-defined]
                code="triton_error",
                triton=url,
                triton_status=int(exc.status()),  # type: ignore[attr-defined]
            ) from None
        raise UpstreamUnavailableError(
            f"triton {url} unreachable while trying to {what}: {exc or type(exc).__name__}",
            code="triton_unreachable",
            triton=url,
        ) from None
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()


def probe(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> str:
    """``ready`` (health/ready 200), ``live`` (only health/live 200) or ``offline``."""
    try:
        if _call(url, "probe readiness", timeout_s, lambda c: c.is_server_ready()):
            return "ready"
        if _call(url, "probe liveness", timeout_s, lambda c: c.is_server_live()):
            return "live"
        return "offline"
    except (UpstreamError, UpstreamUnavailableError):
        return "offline"


def load_model(
    url: str,
    name: str,
    *,
    config: dict[str, Any] | None = None,
    files: dict[str, bytes] | None = None,
    timeout_s: float = LOAD_TIMEOUT_S,
) -> None:
    """``POST /v2/repository/models/{name}/load`` with a JSON config and ``file:`` overrides.

    Raises:
        UpstreamError: Triton refused the load (its error text is in the message).
        UpstreamUnavailableError: Triton could not be reached.
    """
    config_text = json.dumps(config) if config is not None else None
    _call(
        url,
        f"load model '{name}'",
        timeout_s,
        lambda c: c.load_model(name, config=config_text, files=files or None),
    )


def unload_model(url: str, name: str, timeout_s: float = CALL_TIMEOUT_S) -> None:
    """``POST /v2/repository/models/{name}/unload`` (Triton answers 200 for unknown models)."""
    _call(url, f"unload model '{name}'", timeout_s, lambda c: c.unload_model(name))


def model_ready(url: str, name: str, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """True when ``/v2/models/{name}/ready`` answers 200."""
    return bool(_call(url, f"check model '{name}'", timeout_s, lambda c: c.is_model_ready(name)))


def model_metadata(url: str, name: str, timeout_s: float = CALL_TIMEOUT_S) -> dict[str, Any] | None:
    """``GET /v2/models/{name}``; None when the server has no such model (a 4xx)."""
    try:
        meta: dict[str, Any] = _call(
            url, f"read metadata of '{name}'", timeout_s, lambda c: c.get_model_metadata(name)
        )
    except UpstreamError as exc:
        if 400 <= int(exc.details.get("triton_status", 500)) < 500:
            return None
        raise
    return meta


def model_stats(url: str, name: str, timeout_s: float = CALL_TIMEOUT_S) -> list[dict[str, Any]]:
    """``GET /v2/models/{name}/stats`` entries; empty when the model is not available there."""
    try:
        stats: dict[str, Any] = _call(
            url, f"read stats of '{name}'", timeout_s, lambda c: c.get_inference_statistics(name)
        )
    except UpstreamError:
        return []
    return list(stats.get("model_stats", []))


def model_config(url: str, name: str, timeout_s: float = CALL_TIMEOUT_S) -> dict[str, Any]:
    """``GET /v2/models/{name}/config``."""
    config: dict[str, Any] = _call(
        url, f"read config of '{name}'", timeout_s, lambda c: c.get_model_config(name)
    )
    return config
