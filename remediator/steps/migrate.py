"""Migrate step (host evacuation): vMotion a running VM off a degraded host that still responds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import actions as act
from .. import policy
from ..journal import DONE, SKIPPED, UNPLACED, Action
from ..placement import place
from . import reread

if TYPE_CHECKING:
    from ..engine import Engine


async def run(engine: Engine, s: Action) -> None:
    found = await reread.step_vm(engine, s, [s.host_id, s.target_host_id])
    if found is None:
        return
    snap, vm = found
    source = snap.hosts.get(s.host_id)
    if vm.host_id != s.host_id:
        where = vm.host_id
        if s.attempts > 0 and vm.host_id == s.target_host_id:
            await engine.finish(
                s, DONE, f"moved to {s.target_host}", restarted_by=policy.BY_REMEDIATOR
            )
        else:
            await engine.finish(s, SKIPPED, f"already moved off {s.host} (now on {where})")
        return
    if not vm.running:
        await engine.finish(s, SKIPPED, f"VM is {vm.power_state}: nothing to vMotion")
        return
    if source is None or not source.responding:
        await engine.finish(
            s, SKIPPED, "the source host stopped responding: host failure handling applies"
        )
        return
    target = snap.hosts.get(s.target_host_id)
    excluded = set(s.detail.get("excluded", []))
    if target is None or not target.healthy or target.moid in excluded:
        full = await engine.read_cluster(s, source.cluster_id)
        if full is None:
            return
        placed = place(
            [full.vms.get(vm.moid, vm)],
            full,
            engine.rcfg.placement,
            avoid_fault_domain=source.fault_domain,
            exclude={source.moid, *excluded},
        )[0]
        if not placed.placed:
            await engine.finish(s, UNPLACED, placed.reason)
            return
        target = full.hosts[placed.target_id]
    if not await engine.admit(s, f"vMotion {vm.name} to {target.name}"):
        return
    try:
        pool = await engine.pool(s, target.cluster_id or source.cluster_id)
        await engine.change(
            s,
            f"vMotion to {target.name}",
            act.relocate,
            vm.moid,
            target.moid,
            pool,
            engine.rcfg.action_timeout_seconds,
        )
    except act.StepError as err:
        await engine.failed_change(s, err, target=target.moid)
        return
    await engine.finish(
        s,
        DONE,
        f"moved live to {target.name}",
        restarted_by=policy.BY_REMEDIATOR,
        target_host_id=target.moid,
        target_host=target.name,
    )
