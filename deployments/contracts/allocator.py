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
"""

from __future__ import annotations

import ctypes
import sys

M_MMAP_THRESHOLD = -3  # <malloc.h>
MMAP_THRESHOLD_BYTES = 1024 * 1024


def pin_mmap_threshold(threshold_bytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Serve every allocation of ``threshold_bytes`` or more with its own mmap (glibc only).

    Args:
        threshold_bytes: the fixed threshold; glibc's own starts at 128 KiB and may grow to
            32 MiB.

    Returns:
        True when the C library took the setting; False where there is no glibc ``mallopt``
        (macOS; musl, whose ``mallopt`` does nothing), which keep their allocator's behaviour.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the libc this process already runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold_bytes))
