"""Host-failure restart: move a VM off its host (relocate or re-register) and power it on.

vCenter will not relocate a VM off a host it cannot reach, so a VM of a down host is
unregistered and registered again from its datastore on the target.  What is needed to
register it again is journaled *before* it leaves the inventory, so a crash in between
cannot lose it; a later pass adopts a registration a dead pass already made.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

from .. import actions as act
from .. import live, policy, preflight
from ..journal import DONE, FAILED, PENDING, UNPLACED, Action
from ..model import HostState, Snapshot, VMState
from ..placement import place
from ..stranded import is_stranded
from . import reidentify

if TYPE_CHECKING:
    from ..engine import Engine

log = logging.getLogger("remediator")


async def rehome(
    engine: Engine,
    s: Action,
    snap: Snapshot,
    vm: VMState | None,
    source: HostState | None,
    cluster_id: str,
) -> None:
    """Move the VM off its (failed) host onto the planned or a re-chosen target, power it on."""
    # The VM must leave its host.  Pre-flight first: nothing irreversible happens to a VM
    # that no host can run, and the planned target must still pass (or another is chosen).
    if vm is not None and vm.host_tied:
        await engine.finish(s, UNPLACED, f"not moved: the VM {vm.host_tied}")
        return
    target = snap.hosts.get(s.target_host_id)
    excluded = set(s.detail.get("excluded", []))
    if target is not None and vm is not None and target.moid not in excluded:
        why = preflight.check(vm, target)
        if why:
            log.info("action %d: %s fails pre-flight: %s", s.id, target.name, why)
            excluded.add(target.moid)
    if target is None or not target.healthy or target.moid in excluded:
        if not cluster_id:
            await engine.finish(
                s, FAILED, "the planned target is unusable and the VM cannot be re-placed"
            )
            return
        full = await engine.read_cluster(s, cluster_id)
        if full is None:
            return
        # A VM half-way through re-registering is in no inventory: place its name.
        candidate = vm or VMState(moid=s.vm_id, name=s.vm, priority=s.priority)
        placed = place(
            [full.vms.get(candidate.moid, candidate)],
            full,
            engine.rcfg.placement,
            avoid_fault_domain=source.fault_domain if source else "",
            exclude={s.host_id, *excluded},
        )[0]
        if not placed.placed:
            if is_stranded(s.detail):
                # Every target was tried: wait, then try them all again.
                delay = engine.rcfg.retry.delay(max(1, s.attempts))
                detail = {k: v for k, v in s.detail.items() if k != "excluded"}
                await engine.finish(
                    s,
                    PENDING,
                    f"VM not registered in vCenter and no host took it ({placed.reason});"
                    f" trying every host again in {delay:.0f}s",
                    detail=detail,
                    not_before=engine.clock() + delay,
                )
                return
            await engine.finish(s, UNPLACED, placed.reason)
            return
        target = full.hosts[placed.target_id]
        await engine.db(
            engine.j.finish,
            s.id,
            "running",
            f"re-placed on {target.name}: {placed.reason}",
            engine.clock(),
            target_host_id=target.moid,
            target_host=target.name,
        )
        cluster_id = target.cluster_id or cluster_id
    name = vm.name if vm is not None else s.vm
    if not await engine.admit(s, f"move {name} to {target.name} and power it on"):
        return
    try:
        pool = await engine.pool(s, target.cluster_id or cluster_id)
        cur = snap.hosts.get(vm.host_id) if vm is not None else None
        new_id = await move(
            engine, s, vm, target.moid, pool, cur is None or cur.down, target.cluster_id
        )
        # A re-registered VM asks whether it was moved or copied before it boots.
        reregistered = vm is None or new_id != vm.moid
        note = await reidentify.ensure(engine, s, new_id, target.cluster_id or cluster_id)
        await engine.change(
            s,
            f"power on on {target.name}",
            functools.partial(act.power_on, answer=reregistered),
            new_id,
            engine.rcfg.action_timeout_seconds,
        )
    except act.StepError as err:
        await engine.failed_change(s, err, target=target.moid)
        return
    await engine.finish(
        s,
        DONE,
        f"restarted on {target.name}{note}",
        restarted_by=policy.BY_REMEDIATOR,
        target_host_id=target.moid,
        target_host=target.name,
    )


async def move(
    engine: Engine,
    s: Action,
    vm: Any,
    target_id: str,
    pool: str,
    source_down: bool,
    cluster_id: str = "",
) -> str:
    """Relocate the VM, or re-register it from its datastore, onto ``target_id``.

    vCenter will not relocate a VM off a host it cannot reach, so ``auto`` re-registers
    VMs of a down host and relocates the rest (and still falls back to re-registering
    when a relocation is refused because of the source host).  Returns the moid the VM
    has afterwards: re-registering makes a new one.
    """
    method = engine.rcfg.host_failure.move_method
    timeout = engine.rcfg.action_timeout_seconds
    if s.detail.get("unregistered"):
        return await register(engine, s, target_id, pool, adopt=True)
    assert vm is not None
    if method == "relocate" or (method == "auto" and not source_down):
        try:
            await engine.change(
                s,
                f"relocate to {target_id}",
                act.relocate,
                vm.moid,
                target_id,
                pool,
                timeout,
                vm.host_id,
            )
            return str(vm.moid)
        except act.StepError as err:
            if err.category == act.FALLBACK and method == "relocate":
                raise act.StepError(
                    act.FATAL,
                    f"vCenter will not relocate off a host it cannot reach ({err.message}); "
                    "host_failure.move_method auto or register re-registers the VM instead",
                ) from err
            if err.category != act.FALLBACK:
                raise
            log.info(
                "action %d: relocation refused (%s); re-registering instead", s.id, err.message
            )
    if not vm.vmx_path or not vm.folder_id:
        raise act.StepError(
            act.FATAL, "cannot re-register: the VM's .vmx path or folder is unknown"
        )
    detail = dict(s.detail)
    # Everything that names the VM besides its object: restored after registering.
    detail["identity"] = await reidentify.capture(engine, s, vm.moid, cluster_id)
    detail["unregistered"] = {
        "vmx_path": vm.vmx_path,
        "folder_id": vm.folder_id,
        "name": vm.name,
        "attributes": dict(vm.custom_values),
    }
    if source_down:
        # A host that is down never hears of the unregister: it may come back with the VM
        # still registered (duplicates.py watches it).
        detail["left_down_host"] = True
    # Record what is needed to register again *before* the VM leaves the inventory,
    # so a crash in between cannot lose it.
    await engine.db(
        engine.j.finish,
        s.id,
        "running",
        "re-registering from the datastore",
        engine.clock(),
        detail=detail,
    )
    s.detail = detail
    await engine.change(s, "unregister from the failed host", act.unregister, vm.moid)
    return await register(engine, s, target_id, pool, adopt=False)


async def register(engine: Engine, s: Action, target_id: str, pool: str, *, adopt: bool) -> str:
    """Register the unregistered VM on ``target_id``; journal its new moid.

    ``adopt``: a previous pass got this far and may have registered the VM before it
    died, in which case that VM is taken over instead of registering the files twice.
    """
    info = s.detail["unregistered"]
    attrs = info.get("attributes") or {}
    # Straight back into its own resource pool or vApp, when it had one.
    pool = (s.detail.get("identity") or {}).get("pool_id") or pool
    found = ""
    if adopt:
        found = await engine.vc(
            s.vcenter, live.find_registered, info["name"], info["vmx_path"], s.vm_id, s.host_id
        )
    if found:
        log.info("action %d: adopting %s, registered before a restart", s.id, found)
        new_id = found
    else:
        new_id = await engine.change(
            s,
            f"register on {target_id}",
            functools.partial(
                act.register,
                name=info["name"],
                vmx_path=info["vmx_path"],
                folder_id=info["folder_id"],
                host_id=target_id,
                pool_id=pool,
                timeout=engine.rcfg.action_timeout_seconds,
            ),
        )
    # Attributes belong to the inventory object; what cannot be copied is reported with
    # the rest of the identity (reidentify.ensure), never dropped.
    attr_errors = await engine.vc(s.vcenter, act.set_attributes, new_id, attrs) if attrs else []
    detail = dict(s.detail)
    detail.pop("unregistered", None)
    detail["new_vm_id"] = new_id
    detail["vmx_path"] = info["vmx_path"]  # its old host may come back with it (duplicates.py)
    if attr_errors:
        detail["attribute_errors"] = attr_errors
    await engine.db(
        engine.j.finish, s.id, "running", f"registered as {new_id}", engine.clock(), detail=detail
    )
    s.detail = detail
    return str(new_id)
