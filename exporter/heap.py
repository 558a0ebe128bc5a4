"""Hand the free heap back to the system after the transients of a render.

A full render, a counter collection or a plain scrape allocates and frees tens of MB at
a time; CPython returns its own small-object arenas, but glibc keeps freed ``malloc``
memory below the top of each heap (and one heap per thread that allocated) for reuse,
so the RSS stays at the high-water mark of the last transients: 34-64 MiB at 10,000 VMs
(``bench/memory_bench.py`` prints it). ``malloc_trim(0)`` gives those pages back
(``madvise(MADV_DONTNEED)``); it takes milliseconds, so the renderer calls it at most
every :data:`MIN_INTERVAL` seconds. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)
MIN_INTERVAL = 10.0  # seconds between two trims


def _load() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        fn = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


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
