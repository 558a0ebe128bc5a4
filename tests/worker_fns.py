"""Functions a test hands to the parse worker (a spawned process imports them by name)."""

from __future__ import annotations

import os
import time


def sleep_then(seconds: float, value: int) -> tuple[int, int]:
    time.sleep(seconds)
    return os.getpid(), value


_KEPT: list[bytearray] = []


def fragment_heap(count: int) -> tuple[int, int]:
    """What a batch's parse leaves: ``count`` 60 KB blocks from the heap, freed but for
    one in fifty (which keeps glibc from handing the heap's top back by itself)."""
    transient = []
    for i in range(count):
        transient.append(bytearray(60_000))
        if i % 50 == 0:
            _KEPT.append(bytearray(60_000))
    del transient
    return os.getpid(), count


def rss_kib() -> tuple[int, int]:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return os.getpid(), int(line.split()[1])
    raise AssertionError("no VmRSS")
