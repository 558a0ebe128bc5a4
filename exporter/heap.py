"""Hand the free heap back to the system after the transients of a render.

A full render, a counter collection or a plain scrape allocates and frees tens of MB at
a time; CPython returns its own small-object arenas, but glibc keeps freed ``malloc``
memory below the top of each heap (and one heap per thread that allocated) for reuse,
so the RSS stays at the high-water mark of the last transients: 34-64 MiB at 10,000 VMs
(``bench/memory_bench.py`` prints it). ``malloc_trim(0)`` gives those pages back
(``madvise(MADV_DONTNEED)``); it takes milliseconds, so the renderer calls it at most
every :data:`MIN_INTERVAL` seconds. Elsewhere than glibc it does nothing.

And :func:`configure` fixes glibc's mmap threshold at 1 MiB, so a block of that size or
more (an inflated 1 MiB block of a plain scrape, a joined 4 MiB write, a family's text)
is its own mapping, handed back when freed. glibc raises the threshold by itself after
each such free (up to 32 MiB), and the next blocks then come from the thread's heap and
stay: at 40,000 VMs a plain scrape of the whole body raised VmHWM by 60 MiB and the RSS
by 30 MiB for good. With it fixed, the same steps ended 67 MiB lower (548 -> 481 MiB)
for the same CPU.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
MIN_INTERVAL = 10.0  # seconds between two trims
MMAP_THRESHOLD = 1 << 20
_M_MMAP_THRESHOLD = -3  # malloc.h


def _libc(symbol: str) -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return getattr(ctypes.CDLL(name), symbol)
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None


def _load() -> Callable[[int], int] | None:
    fn = _libc("malloc_trim")
    if fn is not None:
        fn.argtypes = [ctypes.c_size_t]
        fn.restype = ctypes.c_int
    return fn


def configure(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold (see the module's doc); True when set. Left alone when
    ``MALLOC_MMAP_THRESHOLD_`` is in the environment (glibc read it: an admin's choice)."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    fn = _libc("mallopt")
    if fn is None:
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_int]
    fn.restype = ctypes.c_int
    return bool(fn(_M_MMAP_THRESHOLD, threshold))


_TRIM = _load()
_lock = threading.Lock()
_last = float("-inf")
trims_total = 0


def trim(now: float | None = None, min_interval: float = MIN_INTERVAL) -> bool:
    """``malloc_trim(0)`` unless one ran within ``min_interval`` seconds; True when run."""
    global _last, trims_total
    if _TRIM is None:
        return False
    now = time.monotonic() if now is None else now
    with _lock:
        if now - _last < min_interval:
            return False
        _last = now
    _TRIM(0)
    trims_total += 1
    return True
