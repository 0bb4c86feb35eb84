"""The step-call coalescer: calls queued behind the ones in flight share the next send."""

from __future__ import annotations

import asyncio

import pytest

from deployments.backends.coalesce import Coalescer


class Target:
    """A batched target that takes ``delay_s`` per send and records what each send carried."""

    def __init__(self, delay_s: float = 0.01, fail_on: int | None = None) -> None:
        self.delay_s = delay_s
        self.fail_on = fail_on
        self.sends: list[list[int]] = []
        self.outstanding = 0
        self.most_outstanding = 0

    async def send(self, items: list[int]) -> list[int]:
        self.sends.append(list(items))
        self.outstanding += 1
        self.most_outstanding = max(self.most_outstanding, self.outstanding)
        try:
            await asyncio.sleep(self.delay_s)
            if self.fail_on is not None and self.fail_on in items:
                raise RuntimeError(f"target failed on {self.fail_on}")
            return [i * 10 for i in items]
        finally:
            self.outstanding -= 1


async def test_a_lone_call_goes_alone_and_at_once():
    target = Target(delay_s=0)
    hop = Coalescer(target.send, in_flight=2)
    assert await hop.call(3) == 30
    assert target.sends == [[3]]


async def test_calls_behind_the_ones_in_flight_share_one_send_and_keep_their_results():
    target = Target(delay_s=0.02)
    hop = Coalescer(target.send, in_flight=1)
    first = asyncio.ensure_future(hop.call(0))
    await asyncio.sleep(0.005)  # the first send is in flight
    rest = [asyncio.ensure_future(hop.call(i)) for i in range(1, 6)]
    results = await asyncio.gather(first, *rest)
    assert results == [0, 10, 20, 30, 40, 50]
    assert target.sends == [[0], [1, 2, 3, 4, 5]]
    assert hop.sends == 2


async def test_no_more_sends_than_in_flight_are_outstanding():
    target = Target(delay_s=0.01)
    hop = Coalescer(target.send, in_flight=3)
    calls = []
    for i in range(40):
        calls.append(asyncio.ensure_future(hop.call(i)))
        await asyncio.sleep(0.001)
    assert await asyncio.gather(*calls) == [i * 10 for i in range(40)]
    assert target.most_outstanding <= 3
    assert len(target.sends) < 40  # some calls shared a send
    assert sorted(i for send in target.sends for i in send) == list(range(40))  # each once
    assert hop.senders == 0


async def test_max_items_splits_a_long_queue():
    target = Target(delay_s=0.01)
    hop = Coalescer(target.send, in_flight=1, max_items=4)
    first = asyncio.ensure_future(hop.call(0))
    await asyncio.sleep(0.002)
    rest = [asyncio.ensure_future(hop.call(i)) for i in range(1, 10)]
    await asyncio.gather(first, *rest)
    assert [len(s) for s in target.sends] == [1, 4, 4, 1]


async def test_a_failed_send_fails_only_its_own_calls():
    target = Target(delay_s=0.01, fail_on=2)
    hop = Coalescer(target.send, in_flight=1)
    first = asyncio.ensure_future(hop.call(0))
    await asyncio.sleep(0.002)
    batch = [asyncio.ensure_future(hop.call(i)) for i in (1, 2)]
    await asyncio.sleep(0.015)  # the batch [1, 2] is in flight now
    later = asyncio.ensure_future(hop.call(3))
    assert await first == 0
    for call in batch:
        with pytest.raises(RuntimeError, match="target failed on 2"):
            await call
    assert await later == 30  # the next send goes on
    assert target.sends == [[0], [1, 2], [3]]


async def test_a_cancelled_caller_is_left_out_of_the_next_send():
    target = Target(delay_s=0.01)
    hop = Coalescer(target.send, in_flight=1)
    first = asyncio.ensure_future(hop.call(0))
    await asyncio.sleep(0.002)
    gone = asyncio.ensure_future(hop.call(1))
    kept = asyncio.ensure_future(hop.call(2))
    await asyncio.sleep(0)
    gone.cancel()
    assert await first == 0
    assert await kept == 20
    assert target.sends == [[0], [2]]


async def test_a_wrong_number_of_results_fails_the_batch():
    async def short(items: list[int]) -> list[int]:
        return items[:-1]

    hop = Coalescer(short, in_flight=1)
    with pytest.raises(RuntimeError, match="answered 0 results for 1 items"):
        await hop.call(1)


def test_limits_must_be_positive():
    async def send(items: list[int]) -> list[int]:
        return items

    with pytest.raises(ValueError, match="at least 1"):
        Coalescer(send, in_flight=0)
