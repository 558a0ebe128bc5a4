"""Restart step: make a VM run on a healthy host (VM failure and host failure alike).

The step is evaluated against the VM's live state, never replayed: a VM already running
on a healthy host is done (or was restarted by vSphere HA), a VM powered off on a healthy
host is powered on where it is; only a VM that must leave its host goes on to
:mod:`.host_restart`.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from .. import actions as act
from .. import policy
from ..journal import DONE, SKIPPED, Action
from ..model import Snapshot
from . import host_restart, reidentify

if TYPE_CHECKING:
    from ..engine import Engine


async def run(engine: Engine, s: Action) -> None:
    """Make the VM run on a healthy host: power on where it is, or move it first."""
    vm_id = str(s.detail.get("new_vm_id") or s.vm_id)
    unregistered = s.detail.get("unregistered")
    snap = await engine.read_objects(s, [vm_id], [s.host_id, s.target_host_id])
    if snap is None:
        return
    vm = snap.vms.get(vm_id)
    if vm is None and not unregistered:
        await engine.finish(s, SKIPPED, "no longer in vCenter's inventory")
        return
    if vm is not None and unregistered:
        # The last pass died before the VM actually left the inventory: start over.
        s.detail = {k: v for k, v in s.detail.items() if k != "unregistered"}
    if vm is not None and vm.host_id and vm.host_id not in snap.hosts:
        more = await engine.read_objects(s, [], [vm.host_id])
        if more is None:
            return
        snap = Snapshot(snap.vcenter, snap.taken_at, None, {**snap.hosts, **more.hosts}, snap.vms)
    source = snap.hosts.get(s.host_id)
    cluster_id = source.cluster_id if source else ""
    if vm is not None:
        cur = snap.hosts.get(vm.host_id)
        if vm.running and cur is not None and not cur.down:
            if s.attempts > 0:
                await engine.finish(
                    s,
                    DONE,
                    f"running on {cur.name}",
                    restarted_by=policy.BY_REMEDIATOR,
                    target_host_id=cur.moid,
                    target_host=cur.name,
                )
            else:
                await engine.finish(
                    s,
                    SKIPPED,
                    f"already running on {cur.name}: restarted by vSphere HA (or a person)",
                    restarted_by=policy.BY_HA,
                    target_host_id=cur.moid,
                    target_host=cur.name,
                )
            return
        if (
            cur is not None
            and cur.healthy
            and (cur.moid != s.host_id or cur.moid == s.target_host_id)
        ):
            if not await engine.admit(s, f"power on {vm.name} on {cur.name}"):
                return
            # Registered again by an earlier pass that died before powering it on: its
            # identity may still be owed to it.
            note = await reidentify.ensure(engine, s, vm.moid, cur.cluster_id)
            try:
                await engine.change(
                    s,
                    f"power on on {cur.name}",
                    functools.partial(act.power_on, answer=vm.moid != s.vm_id),
                    vm.moid,
                    engine.rcfg.action_timeout_seconds,
                )
            except act.StepError as err:
                await engine.failed_change(s, err, target=cur.moid)
                return
            await engine.finish(
                s,
                DONE,
                f"powered on on {cur.name}{note}",
                restarted_by=policy.BY_REMEDIATOR,
                target_host_id=cur.moid,
                target_host=cur.name,
            )
            return
        cluster_id = cluster_id or (cur.cluster_id if cur else "")

    await host_restart.rehome(engine, s, snap, vm, source, cluster_id)
