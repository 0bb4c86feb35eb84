"""The apps gateway's routing snapshot cache: bounded staleness, newest read wins (Ray-free).

The contract with the control plane (``docs/mlserve.md``, "Freshness"): a request is never
routed with a snapshot whose database read *began* more than ``ttl_s`` before the request
arrived. A background loop re-reads every ``ttl_s / 4``, so the hot path normally finds a fresh
snapshot; when it does not (the loop stalled on a loaded machine), the request waits for a read.
The control plane answers a routing write (delete an app, a route, a consumer, a user, rotate a
key...) ``ttl_s`` after its commit, so every request that arrives after that answer is routed
with a read that began after the commit: delete means gone, in every ingress mode and with any
number of gateway replicas, without a per-request database query.

Reads may finish out of order (two threads, a slow one started first): a snapshot replaces the
current one only when its read began later.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

REFRESHES_PER_TTL = 4


class RoutingUnavailable(Exception):
    """There is no snapshot yet and the database cannot be read."""


@dataclass
class _Read(Generic[T]):
    started: float
    task: asyncio.Task[T]


class SnapshotCache(Generic[T]):
    """The newest routing snapshot, never older than ``ttl_s`` while the database answers.

    Args:
        load: reads a snapshot (blocking; run in a worker thread).
        ttl_s: the staleness bound (from the start of the read to the request).
        clock: monotonic seconds (tests inject one).
    """

    def __init__(
        self,
        load: Callable[[], T],
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.load = load
        self.ttl_s = ttl_s
        self.clock = clock
        self.snapshot: T | None = None
        self.started_at = float("-inf")  # when the read of ``snapshot`` began
        self._inflight: _Read[T] | None = None
        self._refresher: asyncio.Task[None] | None = None

    def _fresh(self, now: float) -> bool:
        return self.snapshot is not None and now - self.started_at <= self.ttl_s

    async def _run(self, started: float) -> T:
        snap = await asyncio.to_thread(self.load)
        if started > self.started_at:  # an older read finishing late never replaces a newer one
            self.snapshot, self.started_at = snap, started
        return snap

    def _read(self, now: float) -> _Read[T]:
        """The read in flight when it began within the bound, else a new one."""
        current = self._inflight
        if current is None or current.task.done() or now - current.started > self.ttl_s:
            started = self.clock()
            current = _Read(started, asyncio.ensure_future(self._run(started)))
            current.task.add_done_callback(_consume)
            self._inflight = current
        return current

    async def refresh(self) -> None:
        """Read now (or join a read that began within the bound).

        Raises:
            Exception: whatever the database read raised.
        """
        await asyncio.shield(self._read(self.clock()).task)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_s / REFRESHES_PER_TTL)
            try:
                await self.refresh()
            except Exception as exc:  # the hot path retries; the last snapshot stays
                logger.warning("routing refresh failed: %s", exc)

    async def get(self) -> T:
        """A snapshot whose read began at most ``ttl_s`` ago.

        While the database cannot be read the last snapshot is served (no routing write can
        commit then either).

        Raises:
            RoutingUnavailable: no snapshot yet and the database cannot be read.
        """
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.ensure_future(self._refresh_forever())
        now = self.clock()
        if not self._fresh(now):
            try:
                await self.refresh()
            except Exception as exc:
                if self.snapshot is None:
                    logger.warning("routing table unavailable: %s", exc)
                    raise RoutingUnavailable(str(exc)) from None
                logger.warning("routing refresh failed, serving the last snapshot: %s", exc)
        assert self.snapshot is not None
        return self.snapshot

    def close(self) -> None:
        """Stop the background refresh."""
        if self._refresher is not None:
            self._refresher.cancel()


def _consume(task: asyncio.Task[object]) -> None:
    """Retrieve a read's exception so an unawaited failure is not reported as never retrieved."""
    if not task.cancelled():
        task.exception()
