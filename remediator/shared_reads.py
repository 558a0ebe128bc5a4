"""One cluster read for the decisions that ask for it at the same moment; one call for
the steps' re-reads asked together.

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

Steps re-read only their own VM and hosts, but there is one such read per VM restarted
(1,000 in a host failure), each a round trip whose answer repeats the same failed source
host and the same few targets with their datastores: :class:`BatchedReads` sends the
re-reads asked while one is in flight as the next single call, each host once.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from .model import Snapshot

T = TypeVar("T")

# How long before a caller asked a read may have been sent for the caller to share it.
SHARE_SECONDS = 1.0


def share_not_before(created_at: float, asked: float, *, step: bool) -> float:
    """The oldest send time of a read an action may join.

    A decision may join one sent since its alert arrived, at most :data:`SHARE_SECONDS`
    before it asked (the decisions of one failure are claimed together).  A step never
    joins one sent before it asked: a sibling step's relocation or power-on may have
    finished in between, and placing on capacity read before it could choose the same
    host twice (the rule :class:`BatchedReads` follows)."""
    if step:
        return asked
    return max(created_at, asked - SHARE_SECONDS)


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


Ids = tuple[frozenset[str], frozenset[str]]  # VM moids, host moids


@dataclass
class _Ask:
    vms: frozenset[str]
    hosts: frozenset[str]
    answer: asyncio.Future[Snapshot]


class BatchedReads:
    """Steps' re-reads of their own VM and hosts (:func:`.live.objects_snapshot`) asked
    while one is in flight go out together, in the next call: one property-collector
    round trip for a batch of steps, each host read once however many steps name it.

    Group commit, not a cache: a step's objects are always read by a call sent *after* it
    asked, so nothing it acts on predates its asking.  Each step is answered with only the
    VMs and hosts it asked for.  When a batch's call fails, each of its steps is read
    again on its own, so one VM's fault (a missing privilege, say) stays that step's.
    """

    def __init__(
        self,
        read: Callable[[Ids], Awaitable[Snapshot]],
        fails_all: Callable[[Exception], bool] = lambda exc: False,
    ) -> None:
        self.read = read
        # A failure no step's own objects can cause (vCenter unreachable, the session
        # gone): the whole batch fails with it, rather than each step waiting out its own
        # timeout alone, a thousand calls at once.
        self.fails_all = fails_all
        self._waiting: list[_Ask] = []
        self._running: asyncio.Task[None] | None = None
        self.calls = 0  # property-collector calls made (tests, docs)

    async def get(self, vm_ids: Iterable[str], host_ids: Iterable[str]) -> Snapshot:
        ask = _Ask(
            frozenset(m for m in vm_ids if m),
            frozenset(m for m in host_ids if m),
            asyncio.get_running_loop().create_future(),
        )
        self._waiting.append(ask)
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(self._drain())
        return await ask.answer  # cancelled with its step: _settle then skips it

    async def _drain(self) -> None:
        batch: list[_Ask] = []
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                vms = frozenset[str]().union(*(a.vms for a in batch))
                hosts = frozenset[str]().union(*(a.hosts for a in batch))
                self.calls += 1
                try:
                    snap = await self.read((vms, hosts))
                except Exception as exc:  # noqa: BLE001 - each step is read alone, fails alone
                    if len(batch) == 1 or self.fails_all(exc):
                        for ask in batch:
                            _settle(ask.answer, exc=exc)
                    else:
                        await asyncio.gather(*(self._alone(ask) for ask in batch))
                    continue
                for ask in batch:
                    _settle(ask.answer, _part(snap, ask))
        except BaseException:
            # Cancelled (the engine stopping) or worse: no step is left waiting forever.
            for ask in [*batch, *self._waiting]:
                if not ask.answer.done():
                    ask.answer.cancel()
            self._waiting = []
            raise

    async def close(self) -> None:
        """Cancel the batch in flight (the engine stopping); its steps are cancelled."""
        if self._running is not None and not self._running.done():
            self._running.cancel()
            await asyncio.gather(self._running, return_exceptions=True)

    async def _alone(self, ask: _Ask) -> None:
        self.calls += 1
        try:
            _settle(ask.answer, await self.read((ask.vms, ask.hosts)))
        except Exception as exc:  # noqa: BLE001 - the step's own failure, handed to it
            _settle(ask.answer, exc=exc)


def _settle(
    answer: asyncio.Future[Snapshot], snap: Snapshot | None = None, exc: Exception | None = None
) -> None:
    if answer.done():
        return  # its step was cancelled (the engine stopping)
    if exc is not None:
        answer.set_exception(exc)
    else:
        assert snap is not None
        answer.set_result(snap)


def _part(snap: Snapshot, ask: _Ask) -> Snapshot:
    """What one step asked for, out of a batch's answer."""
    return dataclasses.replace(
        snap,
        hosts={m: h for m, h in snap.hosts.items() if m in ask.hosts},
        vms={m: v for m, v in snap.vms.items() if m in ask.vms},
    )
