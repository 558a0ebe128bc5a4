"""Hand the free heap back to the system after the transients of a render.

A full render, a counter collection or a plain scrape allocates and frees tens of MB at
a time; CPython returns its own small-object arenas, but glibc keeps freed ``malloc``
memory below the top of each heap (and one heap per thread that allocated) for reuse,
so the RSS stays at the high-water mark of the last transients: 34-64 MiB at 10,000 VMs
(``bench/memory_bench.py`` prints it). ``malloc_trim(0)`` gives those pages back
(``madvise(MADV_DONTNEED)``); it takes milliseconds, so the renderer calls it at most
every :data:`MIN_INTERVAL` seconds. Elsewhere than glibc it does nothing.

And :func:`configure` caps glibc's arenas at :data:`ARENAS`. glibc gives each thread that
allocates while the others hold theirs an arena of its own, up to 8 per core; the
exporter's threads (render, packer, detection lane, follower, collectors, the event loop)
each leave their freed transients in their own, where the others cannot reuse them. The
threads take turns on the GIL anyway, so they seldom contend for an arena's lock. At
40,000 VMs, two arenas ended the same steps (ready, a gzip window, the first 4-shard ask,
a plain scrape, another window) 50-60 MiB lower for the same CPU.
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
ARENAS = 2
_M_ARENA_MAX = -8  # malloc.h


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


def configure(arenas: int = ARENAS) -> bool:
    """Cap glibc's arenas (see the module's doc) before the threads start; True when set.
    Left alone when ``MALLOC_ARENA_MAX`` is in the environment: glibc read it, an admin's
    choice."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    fn = _libc("mallopt") if _TRIM is not None else None  # glibc's, not another libc's
    if fn is None:
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_int]
    fn.restype = ctypes.c_int
    return bool(fn(_M_ARENA_MAX, arenas))


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
