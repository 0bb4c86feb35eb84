"""glibc malloc tuning for processes that check passwords: large buffers go back to the OS.

Used by the control plane (its lifespan) and the apps gateway's replicas, which both verify
argon2 password hashes in worker threads.

Every uncached password check (``services/mlserve/security.py``) makes argon2 allocate a
19 MiB buffer in the worker thread running it. glibc serves the first such buffer with mmap,
then raises its mmap threshold to that size (its "dynamic threshold"), so later buffers are
carved from the calling thread's arena, and a thread arena keeps its freed top: each of up to
8 arenas per core ends up holding 19 MiB or more. In the soak the control-plane replica grew
222 -> 590 MiB this way while Python's own heap (tracemalloc) stayed flat. A fixed threshold
turns the dynamic one off: allocations above it are always mmapped and unmapped on free.

Bursts leave free memory in arenas too: under an overloaded soak the control plane ran up to
35 threads at once, each with an arena, and glibc's free arena memory went 15 -> 46 MiB while
the memory in use stayed at 54-58 MiB. ``trim_loop`` hands the free pages of every arena back
to the OS (``malloc_trim``) once a minute. Capping the arenas instead (``M_ARENA_MAX`` 4) cost
the torc hot path ~25% on SQLite (threads queueing on arena locks), so the arenas stay.
"""

from __future__ import annotations

import asyncio
import ctypes
import sys
from typing import Any

M_MMAP_THRESHOLD = -3  # <malloc.h>
MMAP_THRESHOLD_BYTES = 1024 * 1024
TRIM_INTERVAL_S = 60.0


def _glibc(symbol: str) -> Any | None:
    """A function of the C library this process runs on, on Linux; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return getattr(ctypes.CDLL(None), symbol)
    except (OSError, AttributeError):
        return None


def pin_mmap_threshold(threshold_bytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Serve every allocation of ``threshold_bytes`` or more with its own mmap (glibc only).

    Args:
        threshold_bytes: the fixed threshold; glibc's own starts at 128 KiB and may grow to
            32 MiB.

    Returns:
        True when the C library took the setting; False where there is no glibc ``mallopt``
        (macOS; musl, whose ``mallopt`` does nothing), which keep their allocator's behaviour.
    """
    mallopt = _glibc("mallopt")
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold_bytes))


def trim_free_memory() -> bool | None:
    """Give the free pages of every arena back to the OS (glibc ``malloc_trim(0)``).

    Returns:
        True when some memory was released, False when none was; None without glibc.
    """
    malloc_trim = _glibc("malloc_trim")
    if malloc_trim is None:
        return None
    malloc_trim.argtypes = [ctypes.c_size_t]
    malloc_trim.restype = ctypes.c_int
    return bool(malloc_trim(0))


async def trim_loop(interval_s: float = TRIM_INTERVAL_S) -> None:
    """``trim_free_memory`` every ``interval_s`` seconds, in a worker thread, until cancelled."""
    while True:
        await asyncio.sleep(interval_s)
        await asyncio.to_thread(trim_free_memory)
