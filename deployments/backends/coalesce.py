"""Group commit for calls to one target: calls that arrive while others are in flight go together.

A DeploymentHandle hop costs far more than a small model's execution (router, metadata,
serialization and gRPC on both sides: bare Serve's two-hop chain does 255 rps at c=1 on this
machine, one model over HTTP 1,994; docs/benchmarks.md "Pipelines"), so an
ensemble that sent each step call alone spent most of its time in hops. A :class:`Coalescer`
sends a call at once when fewer than ``in_flight`` sends are outstanding, and otherwise queues it;
when a send returns, everything queued leaves in the next one. No call waits for a timer: at low
load every call goes alone, under load the hop is shared by the calls that queued behind it.
Each call keeps its own result (the target still sees, executes and counts every call).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Coalescer(Generic[Item, Result]):
    """Sends items through ``send`` (a list in, one result per item out, in order).

    Args:
        send: the batched call; an exception fails every item of that batch.
        in_flight: sends outstanding at once (at least 1); more lets several target replicas
            work for one caller, fewer makes larger batches.
        max_items: the most items in one send.

    Used on one event loop only.
    """

    def __init__(
        self,
        send: Callable[[list[Item]], Awaitable[list[Result]]],
        *,
        in_flight: int = 2,
        max_items: int = 64,
    ) -> None:
        if in_flight < 1 or max_items < 1:
            raise ValueError("in_flight and max_items must be at least 1")
        self._send = send
        self._limit = in_flight
        self._max = max_items
        self._queue: list[tuple[Item, asyncio.Future[Result]]] = []
        self._senders = 0
        self._tasks: set[asyncio.Future[None]] = set()
        self.sends = 0  # batches sent so far (for tests and benchmarks)

    @property
    def senders(self) -> int:
        """Sends outstanding now."""
        return self._senders

    async def call(self, item: Item) -> Result:
        """``item``'s result, sent alone or with the items queued beside it."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._senders < self._limit:
            self._senders += 1
            task = asyncio.ensure_future(self._drain())  # next tick: same-tick calls join it
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[: self._max], self._queue[self._max :]
                live = [(item, future) for item, future in batch if not future.done()]
                if not live:
                    continue
                self.sends += 1
                try:
                    results = await self._send([item for item, _ in live])
                    if len(results) != len(live):
                        raise RuntimeError(
                            f"a batched call answered {len(results)} results for {len(live)} items"
                        )
                except asyncio.CancelledError:
                    for _, future in live:
                        future.cancel()
                    raise
                except Exception as exc:  # every caller of this batch sees the failure
                    for _, future in live:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), result in zip(live, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._senders -= 1
