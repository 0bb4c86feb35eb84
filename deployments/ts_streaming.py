"""Intermediate handler responses carried from the handler's thread to the HTTP response.

Shared by the model replica (``/predictions``) and the workflow driver (``/wfpredict``, last
node): the request races its handler task against the first intermediate response; when a part
comes first the reply becomes a chunked stream (one chunk per part, the final value last).

The race costs one plain future per request (no extra task, no ``asyncio.wait``): parts go to a
deque on the event loop, and a part or the task's completion wakes the one waiter.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Any


class PartQueue:
    """Parts put from any thread, read on the replica's event loop."""

    def __init__(self) -> None:
        """Bind to the running event loop."""
        self.loop = asyncio.get_running_loop()
        self.buffer: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def put(self, body: bytes) -> None:
        """Hand over one intermediate response (thread-safe)."""
        self.loop.call_soon_threadsafe(self._push, body)

    def _push(self, body: bytes) -> None:
        self.buffer.append(body)
        self._wake()

    def _wake(self, _task: Any = None) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self, task: asyncio.Future[Any]) -> None:
        """Until a part is buffered or the task is done."""
        if self.buffer or task.done():
            return
        self._waiter = self.loop.create_future()
        task.add_done_callback(self._wake)
        try:
            await self._waiter
        finally:
            task.remove_done_callback(self._wake)
            self._waiter = None

    async def first_part(self, task: asyncio.Future[Any]) -> asyncio.Future[bytes] | None:
        """Wait for the first part or the task; the first part's future when the reply streams."""
        await self._wait(task)
        if not self.buffer:
            return None
        first: asyncio.Future[bytes] = self.loop.create_future()
        first.set_result(self.buffer.popleft())
        return first

    async def parts(
        self, first: asyncio.Future[bytes], task: asyncio.Future[Any]
    ) -> AsyncIterator[bytes]:
        """Every intermediate part, in order, until the task is done (its value is not read)."""
        yield await first
        while True:
            await self._wait(task)
            while self.buffer:
                yield self.buffer.popleft()
            if task.done():
                # parts put just before the task finished are already queued on the loop
                await asyncio.sleep(0)
                while self.buffer:
                    yield self.buffer.popleft()
                return
