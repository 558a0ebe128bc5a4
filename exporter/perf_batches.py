"""A collection's ``QueryPerf`` batches, a few in flight at once, stopped as a whole when
vCenter is lost (perf.py's collector runs every batch of a collection through here)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

# Reasons a failed batch ends a collection's other batches.
HALTING = ("connect", "session")


class NotSent(Exception):
    """A batch not sent: one before it lost the connection or the session, or the
    collector is stopping. Counts as a failed batch, not as an error of vCenter's."""


def run_batches(
    batches: list[Any],
    fn: Callable[[Any], list[Any]],
    concurrent: int,
    name: str,
    *,
    stopping: threading.Event,
    halts: Callable[[BaseException], bool],
) -> list[list[Any] | BaseException]:
    """Each batch through ``fn``, at most ``concurrent`` at once (threads ``name-k``): its
    result, or the exception it raised.

    Once a batch's failure ``halts`` (the connection or the session lost: :data:`HALTING`)
    or ``stopping`` is set, no further batch is sent: each would fail the same way (at
    40,000 VMs, hundreds of failed calls and warnings per collection of a vCenter that
    restarted). Those left are :class:`NotSent`."""
    not_sent = NotSent()
    results: list[list[Any] | BaseException] = [not_sent] * len(batches)
    pending = iter(range(len(batches)))
    take = threading.Lock()
    halt = threading.Event()

    def worker() -> None:
        while True:
            with take:
                i = None if halt.is_set() or stopping.is_set() else next(pending, None)
            if i is None:
                return
            try:
                results[i] = fn(batches[i])
            except Exception as exc:  # noqa: BLE001 - reported by the caller
                results[i] = exc
                if halts(exc):
                    halt.set()

    n = min(concurrent, len(batches))
    if n <= 1:
        worker()
        return results
    threads = [threading.Thread(target=worker, name=f"{name}-{k}", daemon=True) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results
