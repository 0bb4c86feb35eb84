"""A route whose sync endpoint and its response validation share one worker-thread hop.

FastAPI runs a sync (``def``) endpoint in the threadpool, then runs its ``response_model``
validation in the threadpool again, because it sees a sync endpoint: two hops per request,
each costing more than a simple query on a loaded machine. ``OneHopRoute`` hands FastAPI an
``async`` wrapper that runs the sync endpoint in one worker-thread call; FastAPI then
validates the answer on the event loop, where it was going to wait for it anyway (the GIL
serializes that CPU either way). Async endpoints are left as they are. The wrapper keeps the
endpoint's signature (``functools.wraps``), so parameters, dependencies and the OpenAPI
document do not change.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute


def in_one_hop(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """``endpoint`` as FastAPI should call it: a coroutine when it was a plain function."""
    if inspect.iscoroutinefunction(endpoint) or not inspect.isfunction(endpoint):
        return endpoint

    @functools.wraps(endpoint)
    async def threaded(*args: Any, **kwargs: Any) -> Any:
        return await run_in_threadpool(endpoint, *args, **kwargs)

    return threaded


class OneHopRoute(APIRoute):
    """An ``APIRoute`` whose sync endpoint runs in one worker-thread hop (see module doc)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, in_one_hop(endpoint), **kwargs)
