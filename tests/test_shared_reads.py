"""Shared cluster reads (remediator/shared_reads.py): the decisions of one cluster that ask
at once share one whole-cluster read, and none is served a read sent before its alert.

The rules are checked on :class:`SharedReads` with reads the test finishes itself (the
order of events is then exact); the sharing itself against the simulator: two failed hosts
of one cluster alerted together read that cluster once, and every step restarting their
VMs reads only its own VM and hosts, never the whole cluster again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from remediator.model import Snapshot
from remediator.shared_reads import SHARE_SECONDS, BatchedReads, Ids, SharedReads, share_not_before

from .remediator_fixtures import alert, host, snapshot, vm
from .remediator_sim import host_labels, inventory, metric, send, settled, start, steps


class Reads:
    """Reads the test answers itself, and a clock it moves."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sent: list[asyncio.Future[str]] = []
        self.shared: SharedReads[str] = SharedReads(lambda: self.now)

    def start(self) -> asyncio.Future[str]:
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.sent.append(fut)
        return fut

    def ask(self, not_before: float, key: str = "c1") -> asyncio.Task[tuple[str, float, bool]]:
        return asyncio.ensure_future(self.shared.get(key, not_before, self.start))


async def test_callers_asking_at_once_share_the_read_in_flight() -> None:
    r = Reads()
    first = r.ask(99.0)
    await asyncio.sleep(0)
    r.now = 100.5
    second = r.ask(99.5)  # its alert arrived before the read was sent: it may share it
    other = r.ask(99.5, key="c2")  # another cluster: a read of its own
    await asyncio.sleep(0)
    assert len(r.sent) == 2
    r.sent[0].set_result("cluster c1")
    r.sent[1].set_result("cluster c2")
    assert await first == ("cluster c1", 100.0, False)
    assert await second == ("cluster c1", 100.0, True)
    assert (await other)[2] is False


async def test_a_read_sent_before_the_callers_alert_is_never_shared() -> None:
    r = Reads()
    first = r.ask(99.0)
    await asyncio.sleep(0)
    r.now = 101.0
    late = r.ask(100.5)  # alert arrived at 100.5, after the read in flight was sent (100.0)
    await asyncio.sleep(0)
    assert len(r.sent) == 2, "the late caller must get a read of its own"
    r.sent[1].set_result("newer")
    r.sent[0].set_result("older")
    assert await late == ("newer", 101.0, False)
    assert (await first)[0] == "older"


async def test_an_answered_read_is_never_reused() -> None:
    r = Reads()
    first = r.ask(0.0)
    await asyncio.sleep(0)
    r.sent[0].set_result("answered")
    await first
    again = r.ask(0.0)  # same moment, same bound: still a new read, nothing is cached
    await asyncio.sleep(0)
    assert len(r.sent) == 2
    r.sent[1].set_result("new")
    assert await again == ("new", 100.0, False)
    assert r.shared.in_flight() == 0


async def test_a_failed_read_fails_every_sharer_and_a_cancelled_one_cancels_no_other() -> None:
    r = Reads()
    a, b, c = r.ask(0.0), r.ask(0.0), r.ask(0.0)
    await asyncio.sleep(0)
    assert len(r.sent) == 1
    a.cancel()  # the engine stopping under one decision
    await asyncio.sleep(0)
    assert not r.sent[0].cancelled()
    r.sent[0].set_exception(TimeoutError("vCenter did not answer"))
    for task in (b, c):
        with pytest.raises(TimeoutError):
            await task
    with pytest.raises(asyncio.CancelledError):
        await a


async def turns() -> None:
    """Let every task ready to run take its turns."""
    for _ in range(10):
        await asyncio.sleep(0)


class Batches:
    """Step reads the test answers itself: each call's ids, answered in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Ids, asyncio.Future[Snapshot]]] = []
        self.batched = BatchedReads(self.read)

    async def read(self, ids: Ids) -> Snapshot:
        fut: asyncio.Future[Snapshot] = asyncio.get_running_loop().create_future()
        self.calls.append((ids, fut))
        return await fut

    def ask(self, vms: list[str], hosts: list[str]) -> asyncio.Task[Snapshot]:
        return asyncio.ensure_future(self.batched.get(vms, hosts))

    def answer(self, i: int, exc: Exception | None = None) -> None:
        (vm_ids, host_ids), fut = self.calls[i]
        if exc is not None:
            fut.set_exception(exc)
            return
        hosts = [host(h) for h in sorted(host_ids)]
        fut.set_result(snapshot(hosts, [vm(m, "h0") for m in sorted(vm_ids) if m != "gone"]))


async def test_step_reads_asked_during_a_call_go_out_together_in_the_next_one() -> None:
    b = Batches()
    first = b.ask(["vm-1"], ["h0", "h1"])
    await asyncio.sleep(0)
    # asked while the first call is in flight: not served by it, whose request predates them
    second, third = b.ask(["vm-2"], ["h0", "h2"]), b.ask(["gone"], ["h0"])
    await asyncio.sleep(0)
    assert len(b.calls) == 1
    b.answer(0)
    assert set((await first).vms) == {"vm-1"}
    await asyncio.sleep(0)
    assert [ids for ids, _ in b.calls[1:]] == [
        (frozenset({"vm-2", "gone"}), frozenset({"h0", "h2"}))  # h0 read once for both
    ]
    b.answer(1)
    two, three = await second, await third
    assert (set(two.vms), set(two.hosts)) == ({"vm-2"}, {"h0", "h2"})  # only its own
    assert (set(three.vms), set(three.hosts)) == (set(), {"h0"})  # its VM is gone


async def test_a_failed_batch_is_read_again_step_by_step() -> None:
    b = Batches()
    first = b.ask(["vm-0"], [])
    await turns()
    ok, denied = b.ask(["vm-1"], ["h0"]), b.ask(["vm-2"], ["h0"])
    await turns()
    b.answer(0)
    await first
    await turns()
    b.answer(1, PermissionError("no read privilege on vm-2"))
    await turns()
    assert [ids[0] for ids, _ in b.calls[2:]] == [frozenset({"vm-1"}), frozenset({"vm-2"})]
    b.answer(2)
    b.answer(3, PermissionError("no read privilege on vm-2"))
    assert set((await ok).vms) == {"vm-1"}
    with pytest.raises(PermissionError):
        await denied


@pytest.mark.slow
async def test_two_failed_hosts_of_a_cluster_read_it_once_and_no_step_reads_it(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    # 240 VMs: a whole-cluster read takes long enough that the second decision, claimed
    # with the first, asks while the first's read is in flight.
    sim = sim_factory(clusters=1, hosts=6, vms=240)
    hosts, _ = inventory(sim)
    failed = [hosts["DC0_C0_H0"], hosts["DC0_C0_H1"]]
    for h in failed:
        sim.fail_host(h["name"])
    client = await start(aiohttp_client, sim, tmp_path, workers=8, max_concurrent_tasks=8)
    await send(client, *(alert("restart_host_vms", **host_labels(h)) for h in failed))
    items = await settled(client, timeout=120)

    done = [s for s in steps(items).values() if s["state"] == "done"]
    assert len(done) == sum(len(h["vms"]) for h in failed)
    reads = await metric(client, "vha_remediator_cluster_reads_total", shared="false")
    joined = await metric(client, "vha_remediator_cluster_reads_total", shared="true")
    # one read for both decisions, none for the 80 steps
    assert (reads, joined) == (1.0, 1.0)
    # and the steps' own re-reads (one or two each) went out in batches
    calls = await metric(client, "vha_remediator_step_read_calls_total")
    assert calls is not None and calls < len(done), calls
    for d in (a for a in items if a["parent_id"] is None):
        # the read each decided on was sent after its alert arrived
        assert d["detail"]["live_read_at"] >= d["created_at"], d


def test_a_step_never_joins_a_read_sent_before_it_asked() -> None:
    """A decision may join a read sent since its alert, a moment before it asked; a step
    re-placing a VM never joins one sent before it asked (a sibling's relocation may have
    finished in between: placing on capacity read before it could pick one host twice)."""
    created, asked = 10.0, 500.0
    assert share_not_before(created, asked, step=True) == asked
    assert share_not_before(created, asked, step=False) == asked - SHARE_SECONDS
    assert share_not_before(499.5, asked, step=False) == 499.5


async def test_vcenter_unreachable_fails_the_batch_without_a_read_per_step() -> None:
    """A connection failure is no step's own: the whole batch fails with it, not one call
    per step, each waiting out its own timeout (a thousand at once in a host failure)."""
    calls: list[Ids] = []

    async def read(ids: Ids) -> Snapshot:
        calls.append(ids)
        await asyncio.sleep(0)
        raise ConnectionRefusedError("vCenter down")

    reads = BatchedReads(read, lambda exc: isinstance(exc, OSError))
    asks = [asyncio.ensure_future(reads.get([f"vm-{i}"], ["host-1"])) for i in range(5)]
    results = await asyncio.gather(*asks, return_exceptions=True)
    assert all(isinstance(r, ConnectionRefusedError) for r in results)
    assert len(calls) == 1


async def test_a_cancelled_batch_leaves_no_step_waiting() -> None:
    started = asyncio.Event()

    async def read(ids: Ids) -> Snapshot:
        started.set()
        await asyncio.sleep(3600)
        raise AssertionError("not reached")

    reads = BatchedReads(read)
    asks = [asyncio.ensure_future(reads.get([f"vm-{i}"], ["host-1"])) for i in range(3)]
    await started.wait()
    later = asyncio.ensure_future(reads.get(["vm-9"], ["host-1"]))  # waits for the next call
    await asyncio.sleep(0)
    await asyncio.wait_for(reads.close(), timeout=5)
    for ask in [*asks, later]:
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(ask, timeout=5)
