"""The pinned mmap threshold: argon2's 19 MiB buffers do not stay in glibc's thread arenas."""

from __future__ import annotations

import asyncio
import ctypes
import os
import sys
import threading

import pytest

from control_plane.services.mlserve.security import hash_password, verify_password
from deployments.contracts.allocator import (
    pin_mmap_threshold,
    trim_free_memory,
    trim_loop,
)

MIB = 2**20
_MALLINFO2_FIELDS = (
    "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
    "keepcost",
)  # fmt: skip


class _MallInfo2(ctypes.Structure):
    """``struct mallinfo2`` of <malloc.h>."""

    _fields_ = [(name, ctypes.c_size_t) for name in _MALLINFO2_FIELDS]


def _heap_bytes() -> int:
    """Bytes glibc holds in its arenas (in use or free), mmapped chunks apart."""
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        pytest.skip("needs glibc 2.33+ (mallinfo2)")
    mallinfo2.restype = _MallInfo2
    return int(mallinfo2().arena)


def test_pin_mmap_threshold_returns_argon2_buffers_to_the_os():
    before = _heap_bytes()
    if not pin_mmap_threshold():
        pytest.skip("no glibc mallopt")
    stored = hash_password("secret")
    for _ in range(4):  # each check in a fresh worker thread, as the threadpool runs them
        worker = threading.Thread(target=verify_password, args=(stored, "secret"))
        worker.start()
        worker.join()
    # Unpinned, the second and later checks leave 19 MiB each in the arena of their thread.
    assert _heap_bytes() - before < 19 * MIB


def test_pin_mmap_threshold_is_a_no_op_without_glibc(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("deployments.contracts.allocator.sys.platform", "darwin")
    assert pin_mmap_threshold() is False


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_trim_free_memory_gives_freed_arena_pages_back():
    if not sys.platform.startswith("linux"):
        pytest.skip("glibc only")
    pin_mmap_threshold()
    kept: list[bytes] = []

    def fragment() -> None:
        # 64 MiB written in 100 KiB blocks (below the mmap threshold: from this thread's
        # arena), then 7 blocks in 8 freed: the kept ones pin the free space between them.
        blocks = [b"x" * (100 * 1024) for _ in range(640)]
        kept.extend(blocks[::8])
        del blocks

    worker = threading.Thread(target=fragment)
    worker.start()
    worker.join()
    before = _rss_bytes()
    assert trim_free_memory() is True
    assert before - _rss_bytes() > 32 * MIB


def test_trim_is_a_no_op_without_glibc(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("deployments.contracts.allocator.sys.platform", "darwin")
    assert trim_free_memory() is None


def test_trim_loop_trims_until_cancelled(monkeypatch: pytest.MonkeyPatch):
    calls: list[int] = []
    monkeypatch.setattr(
        "deployments.contracts.allocator.trim_free_memory", lambda: calls.append(1) or True
    )

    async def run() -> None:
        task = asyncio.create_task(trim_loop(0.01))
        while len(calls) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert len(calls) >= 3
