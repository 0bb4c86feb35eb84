"""Intermediate handler responses carried from the handler's thread to the HTTP response.

Shared by the model replica (``/predictions``) and the workflow driver (``/wfpredict``, last
node): the request races its handler task against the first intermediate response; when a part
comes first the reply becomes a chunked stream (one chunk per part, the final value last).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any


class PartQueue:
    """Parts put from any thread, read on the replica's event loop."""

    def __init__(self) -> None:
        """Bind to the running event loop."""
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def put(self, body: bytes) -> None:
        """Hand over one intermediate response (thread-safe)."""
        self.loop.call_soon_threadsafe(self.queue.put_nowait, body)

    async def first_part(self, task: asyncio.Future[Any]) -> asyncio.Future[bytes] | None:
        """Wait for the first part or the task; the first part's future when the reply streams."""
        first = asyncio.ensure_future(self.queue.get())
        racers: set[asyncio.Future[Any]] = {task, first}
        await asyncio.wait(racers, return_when=asyncio.FIRST_COMPLETED)
        if first.done() or not self.queue.empty():
            return first
        first.cancel()
        return None

    async def parts(
        self, first: asyncio.Future[bytes], task: asyncio.Future[Any]
    ) -> AsyncIterator[bytes]:
        """Every intermediate part, in order, until the task is done (its value is not read)."""
        yield await first
        while True:
            getter = asyncio.ensure_future(self.queue.get())
            racers: set[asyncio.Future[Any]] = {task, getter}
            await asyncio.wait(racers, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                yield getter.result()
                continue
            getter.cancel()
            while not self.queue.empty():
                yield self.queue.get_nowait()
            return
