"""The gateway's routing snapshot cache: staleness bound, newest read wins, database outages."""

from __future__ import annotations

import asyncio
import threading

import pytest

from deployments.gateway_cache import RoutingUnavailable, SnapshotCache

TTL_S = 100.0  # the background loop (ttl/4) never runs within a test: the clock is driven by hand


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Loader:
    """Returns 1, 2, 3... per read; ``gates`` make chosen reads block until released."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail = False
        self.gates: dict[int, threading.Event] = {}
        self.lock = threading.Lock()

    def __call__(self) -> int:
        with self.lock:
            self.calls += 1
            n = self.calls
        gate = self.gates.get(n)
        if gate is not None:
            assert gate.wait(10)
        if self.fail:
            raise OSError("database is away")
        return n


def _cache(loader: Loader, clock: Clock) -> SnapshotCache[int]:
    return SnapshotCache(loader, TTL_S, clock=clock)


async def test_get_serves_the_cached_snapshot_within_the_bound() -> None:
    loader, clock = Loader(), Clock()
    cache = _cache(loader, clock)
    assert await cache.get() == 1
    clock.now += TTL_S  # exactly the bound: still fresh
    assert await cache.get() == 1
    assert loader.calls == 1
    cache.close()


async def test_get_reads_again_when_the_snapshot_is_older_than_the_bound() -> None:
    # The delete-means-gone contract: a request never uses a read that began more than ttl_s
    # before it, even when the background refresh is stalled.
    loader, clock = Loader(), Clock()
    cache = _cache(loader, clock)
    assert await cache.get() == 1
    clock.now += TTL_S + 0.001
    assert await cache.get() == 2
    assert cache.started_at == clock.now
    cache.close()


async def test_an_older_read_finishing_late_does_not_replace_a_newer_snapshot() -> None:
    loader, clock = Loader(), Clock()
    cache = _cache(loader, clock)
    slow = threading.Event()
    loader.gates[1] = slow
    first = asyncio.ensure_future(cache.refresh())  # read 1 starts at t=1000 and blocks
    await asyncio.sleep(0.05)
    clock.now += TTL_S + 1  # read 1 is now too old to join: a second read starts
    assert await cache.get() == 2
    slow.set()
    await first  # read 1 finishes last
    assert cache.snapshot == 2
    assert await cache.get() == 2
    cache.close()


async def test_concurrent_requests_join_one_read_that_began_within_the_bound() -> None:
    loader, clock = Loader(), Clock()
    cache = _cache(loader, clock)
    gate = threading.Event()
    loader.gates[1] = gate
    waiting = [asyncio.ensure_future(cache.get()) for _ in range(5)]
    await asyncio.sleep(0.05)
    gate.set()
    assert await asyncio.gather(*waiting) == [1] * 5
    assert loader.calls == 1
    cache.close()


async def test_a_database_outage_keeps_the_last_snapshot_and_no_snapshot_is_503() -> None:
    loader, clock = Loader(), Clock()
    loader.fail = True
    cache = _cache(loader, clock)
    with pytest.raises(RoutingUnavailable):
        await cache.get()
    loader.fail = False
    assert await cache.get() == 2
    loader.fail = True
    clock.now += TTL_S + 1
    assert await cache.get() == 2  # the outage: the last snapshot is served
    loader.fail = False
    assert await cache.get() == 4  # and the next request reads again
    cache.close()


async def test_the_background_loop_refreshes_without_traffic() -> None:
    loader = Loader()
    cache = SnapshotCache(loader, 0.08)
    assert await cache.get() == 1
    await asyncio.sleep(0.5)
    assert loader.calls >= 3
    assert cache.snapshot == loader.calls or cache.snapshot == loader.calls - 1
    cache.close()
