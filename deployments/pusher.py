"""Counters recorded on a replica's hot path, pushed to one cluster actor every second.

Replicas never make a remote call per request: they record into a local book, and one
fire-and-forget batch per period carries the increments to the actor that keeps the totals
(``StatsStore`` for inference statistics, ``HandlerMetricsStore`` for TorchServe handler
metrics).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import ray

logger = logging.getLogger(__name__)
FLUSH_PERIOD_S = 1.0


class Pusher:
    """``drain()``'s increments, merged into ``open_store()``'s actor every ``FLUSH_PERIOD_S``.

    ``drain`` returns what was recorded since its last call (falsy: nothing).
    """

    def __init__(
        self, drain: Callable[[], Any], open_store: Callable[[], Any], what: str
    ) -> None:
        self._drain = drain
        self._open_store = open_store
        self._what = what
        self._store: Any = None
        self._task: asyncio.Task[None] | None = None

    @property
    def store(self) -> Any:
        """The actor handle, looked up on first use (replicas run inside Ray)."""
        if self._store is None:
            self._store = self._open_store()
        return self._store

    def ensure_started(self) -> None:
        """Start the periodic flush on the running event loop (first request)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flush_forever())

    async def flush(self) -> None:
        """Push what was recorded since the last flush."""
        if not ray.is_initialized():
            return  # a deployment class used as a plain object (unit tests): keep it local
        increments = self._drain()
        if increments:
            await self.store.merge.remote(increments)

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_PERIOD_S)
            try:
                await self.flush()
            except Exception:
                logger.warning("%s flush failed", self._what, exc_info=True)
