"""One cluster read for the decisions that ask for it at the same moment.

A host failure brings one alert per failed host, and the decisions of one cluster are
claimed together: each used to read the whole cluster (cluster -> hosts -> VMs, about
1,000 VMs), and pyVmomi's deserialiser spends some 1.7 s of one Python core on each such
answer (docs/remediator.md, "Benchmark"), so two failed hosts of a cluster paid twice for
the same state, one after the other on the interpreter's lock.

:class:`SharedReads` lets a caller join a read of the same object that is *in flight*
(sent, not yet answered), never one that has completed: nothing is cached, and an answer
is always at least as new as its request.  A caller joins only a read started at or after
its ``not_before``: for a decision, the later of its alert's arrival and the moment this
pass asked minus :data:`SHARE_SECONDS` (engine.Engine.cluster_read), so no decision acts
on state read before its alert arrived, and none on a read begun more than a moment
before it looked.  Otherwise it starts a read of its own, which later callers may join.

A failed read fails every caller sharing it; each handles the failure as its own (held,
retried, skipped).  The read runs as a task of its own, so a caller that is cancelled
(the engine stopping) never cancels it for the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

# How long before a caller asked a read may have been sent for the caller to share it.
SHARE_SECONDS = 1.0


@dataclass
class _Read(Generic[T]):
    started: float
    task: asyncio.Future[T]


class SharedReads(Generic[T]):
    """In-flight reads by key (a vCenter and a cluster), shared by concurrent callers."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._reads: dict[Hashable, _Read[T]] = {}

    async def get(
        self, key: Hashable, not_before: float, start: Callable[[], Awaitable[T]]
    ) -> tuple[T, float, bool]:
        """The answer of a read of ``key`` started at or after ``not_before``: the one in
        flight, else a new one (``start()``).  Returns (answer, when that read was
        started, whether it was shared)."""
        read = self._reads.get(key)
        shared = read is not None and not read.task.done() and read.started >= not_before
        if not shared:
            read = _Read(self.clock(), asyncio.ensure_future(start()))
            self._reads[key] = read
            read.task.add_done_callback(self._ended(key, read))
        assert read is not None
        return await asyncio.shield(read.task), read.started, shared

    def _ended(self, key: Hashable, read: _Read[T]) -> Callable[[asyncio.Future[T]], None]:
        def done(task: asyncio.Future[T]) -> None:
            if self._reads.get(key) is read:
                del self._reads[key]
            if not task.cancelled():
                task.exception()  # every caller sees it; none may have been left to ask

        return done

    def in_flight(self) -> int:
        return len(self._reads)
