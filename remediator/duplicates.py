"""Duplicate registrations: a failed host comes back still holding VMs restarted elsewhere.

The remediator moves a VM off a dead host by ``UnregisterVM`` + ``RegisterVM_Task``.  The
dead host never hears of the unregister: when it reconnects, vCenter imports what its
hostd still has registered (adding or reconnecting a host "imports existing virtual
machines"), so the VM shows twice: the running copy the remediator registered and, on the
returning host, a new inventory object for the same ``.vmx``.  vCenter keeps instance
UUIDs unique (``VmInstanceUuidConflictEvent``), so the copy that came back may carry a
new ``config.instanceUuid``: the ``.vmx`` path (``config.files.vmPathName``) is what ties
the two.

What this module does about it, first doing no harm:

* the watcher (:meth:`Engine._watch`) looks, on every pass, at the hosts the remediator
  re-registered VMs away from (journal steps of the last :data:`WATCH_SECONDS` carrying
  ``new_vm_id`` and ``vmx_path``) that are connected again, for VMs registered from a
  watched ``.vmx`` other than the remediator's copy;
* a copy that is **clearly stale** (powered off, on the returning host, while the
  remediator's copy of the same ``.vmx`` runs on another host) becomes a journaled action
  ``unregister_duplicate`` (key ``duplicate@<vcenter>/<moid>``, so a second sighting or a
  crash adds nothing) that re-reads both copies and removes the stale one from the
  inventory with ``UnregisterVM``: never ``Destroy_Task``, the files are the running VM's;
* anything less clear (both copies powered on: a split brain; the stale copy suspended;
  the remediator's copy not running) is left alone and shown to a person:
  ``vha_remediator_vms_duplicated`` and one ``vha_remediator_vm_duplicated_info`` series
  per copy (alert ``VsphereRemediatorVmDuplicated``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Gauge
from pyVmomi import vim, vmodl

from . import actions as act
from .journal import DONE, PENDING, REFUSED, Journal
from .live import Session

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("remediator")

KIND = "unregister_duplicate"
# How long after re-registering a VM the remediator watches its old host for a stale copy:
# a failed host may be repaired days later.
WATCH_SECONDS = 7 * 86400
# ...and how long after that host is seen connected again: vCenter imports the host's VMs
# while it reconnects, so a copy shows within seconds; after this the host is not read.
SETTLE_SECONDS = 600.0
VM_PROPS = [
    "name",
    "config.files.vmPathName",
    "config.instanceUuid",
    "runtime.host",
    "runtime.powerState",
    "runtime.connectionState",
]
# Why a duplicate is left to a person (the ``why`` label).
BOTH_ON = "both_powered_on"
STALE_NOT_OFF = "stale_copy_not_powered_off"
RUNNING_NOT_ON = "registered_copy_not_running"
SAME_HOST = "same_host"


@dataclasses.dataclass(frozen=True)
class Watch:
    """A VM the remediator re-registered: where it left from, what it became."""

    vcenter: str
    cluster: str
    vm: str
    source_host_id: str
    new_vm_id: str
    vmx_path: str
    action_id: int


@dataclasses.dataclass(frozen=True)
class Copy:
    moid: str
    name: str
    vmx_path: str
    host_id: str
    power: str
    connection: str
    instance_uuid: str


@dataclasses.dataclass(frozen=True)
class Duplicate:
    watch: Watch
    stale: Copy
    running: Copy | None  # None: the remediator's copy is gone (then nothing is a duplicate)

    @property
    def why(self) -> str:
        """Empty when the stale copy may be removed, else why a person must decide."""
        r, s = self.running, self.stale
        if r is None:
            return RUNNING_NOT_ON
        if r.host_id == s.host_id:
            return SAME_HOST
        if s.power == "poweredOn" and r.power == "poweredOn":
            return BOTH_ON
        if r.power != "poweredOn":
            return RUNNING_NOT_ON
        if s.power != "poweredOff":
            return STALE_NOT_OFF
        return ""


def watches(journal: Journal, since: float) -> list[Watch]:
    """Steps that re-registered a VM since ``since`` (newest last)."""
    with journal._lock:  # noqa: SLF001 - one read on the journal's own connection
        rows = journal.db.execute(
            "SELECT id, vcenter, cluster, vm, host_id, detail FROM actions"
            " WHERE parent_id IS NOT NULL AND created_at >= ?"
            " AND detail LIKE '%\"left_down_host\": true%' AND detail LIKE '%\"new_vm_id\"%'"
            " ORDER BY id",
            (since,),
        ).fetchall()
    out = []
    for aid, vcenter, cluster, vm, host_id, raw in rows:
        detail = json.loads(raw or "{}")
        new_id, vmx = detail.get("new_vm_id"), detail.get("vmx_path")
        if new_id and vmx and host_id:
            out.append(Watch(vcenter, cluster, vm, host_id, str(new_id), str(vmx), int(aid)))
    return out


def _copy(content: Any) -> Copy:
    p = {prop.name: prop.val for prop in (content.propSet or [])}
    host = p.get("runtime.host")
    return Copy(
        moid=str(content.obj._moId),
        name=str(p.get("name", "")),
        vmx_path=str(p.get("config.files.vmPathName", "")),
        host_id=str(getattr(host, "_moId", "")) if host is not None else "",
        power=str(p.get("runtime.powerState", "")),
        connection=str(p.get("runtime.connectionState", "")),
        instance_uuid=str(p.get("config.instanceUuid", "")),
    )


def vms_on_hosts(session: Session, host_ids: Iterable[str]) -> list[Copy]:
    """Every VM registered on the given hosts (one property-collector call)."""
    OS = vmodl.query.PropertyCollector.ObjectSpec
    TS = vmodl.query.PropertyCollector.TraversalSpec
    PS = vmodl.query.PropertyCollector.PropertySpec
    objs = [
        OS(
            obj=session.stub_obj(vim.HostSystem, h),
            skip=True,
            selectSet=[TS(name="host2vm", type=vim.HostSystem, path="vm", skip=False)],
        )
        for h in sorted(set(host_ids))
    ]
    if not objs:
        return []
    found = session.retrieve([PS(type=vim.VirtualMachine, pathSet=VM_PROPS)], objs)
    return [_copy(c) for c in found if isinstance(c.obj, vim.VirtualMachine)]


def read_vms(session: Session, vm_ids: Iterable[str]) -> dict[str, Copy]:
    """The given VMs by moid; a VM no longer in the inventory is simply absent."""
    OS = vmodl.query.PropertyCollector.ObjectSpec
    PS = vmodl.query.PropertyCollector.PropertySpec
    objs = [OS(obj=session.stub_obj(vim.VirtualMachine, v)) for v in sorted(set(vm_ids))]
    if not objs:
        return {}
    found = session.retrieve([PS(type=vim.VirtualMachine, pathSet=VM_PROPS)], objs)
    return {c.moid: c for c in map(_copy, found)}


def find(session: Session, watched: Sequence[Watch], connected: set[str]) -> list[Duplicate]:
    """Stale copies of watched VMs on their (connected again) source hosts."""
    by_vmx: dict[str, list[Watch]] = {}
    for w in watched:
        if w.source_host_id in connected:
            by_vmx.setdefault(w.vmx_path, []).append(w)
    if not by_vmx:
        return []
    hosts = {w.source_host_id for ws in by_vmx.values() for w in ws}
    candidates = []
    for c in vms_on_hosts(session, hosts):
        for w in by_vmx.get(c.vmx_path, []):
            # The newest re-registration of that .vmx is the copy that counts.
            if c.moid != w.new_vm_id and c.host_id == w.source_host_id:
                candidates.append((max(by_vmx[c.vmx_path], key=lambda x: x.action_id), c))
                break
    if not candidates:
        return []
    running = read_vms(session, {w.new_vm_id for w, _ in candidates})
    out = []
    for w, c in candidates:
        r = running.get(w.new_vm_id)
        if r is not None and r.vmx_path != w.vmx_path:
            r = None
        out.append(Duplicate(w, c, r))
    return out


class DuplicateMetrics:
    """Duplicates left for a person, set after every watcher pass."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.count = Gauge(
            "vha_remediator_vms_duplicated",
            "VMs registered twice (a copy on a host that came back) that the remediator"
            " left for a person to settle",
            registry=registry,
        )
        self.info = Gauge(
            "vha_remediator_vm_duplicated_info",
            "One series per such copy: its .vmx path, both moids and why it was left",
            ["vcenter", "cluster", "vm", "vmx_path", "stale_vm_id", "running_vm_id", "why"],
            registry=registry,
        )

    def set(self, unsure: Iterable[Duplicate]) -> None:
        items = list(unsure)
        self.count.set(len(items))
        self.info.clear()
        for d in items:
            self.info.labels(
                vcenter=d.watch.vcenter,
                cluster=d.watch.cluster,
                vm=d.stale.name or d.watch.vm,
                vmx_path=d.watch.vmx_path,
                stale_vm_id=d.stale.moid,
                running_vm_id=d.running.moid if d.running else "",
                why=d.why,
            ).set(1)


def add_action(journal: Journal, d: Duplicate, now: float, dry_run: bool) -> int:
    """Journal the removal of a stale copy; the same copy seen again adds nothing."""
    key = f"duplicate@{d.watch.vcenter}/{d.stale.moid}"
    detail = {
        "vmx_path": d.watch.vmx_path,
        "running_vm_id": d.running.moid if d.running else "",
        "running_host_id": d.running.host_id if d.running else "",
        "restart_action_id": d.watch.action_id,
    }
    reason = (
        f"{d.stale.name or d.watch.vm} is registered twice: a powered-off copy on the host"
        f" that came back ({d.stale.host_id}), the running copy {detail['running_vm_id']}"
    )
    with journal._tx():  # noqa: SLF001 - one insert in the journal's own transaction
        cur = journal.db.execute(
            "INSERT OR IGNORE INTO actions (key, kind, target, vcenter, cluster, host_id, vm_id,"
            " vm, target_host_id, state, reason, dry_run, not_before, created_at, updated_at,"
            " detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                KIND,
                d.stale.moid,
                d.watch.vcenter,
                d.watch.cluster,
                d.stale.host_id,
                d.stale.moid,
                d.stale.name or d.watch.vm,
                detail["running_host_id"],
                PENDING,
                reason,
                int(dry_run),
                now,
                now,
                now,
                json.dumps(detail, sort_keys=True),
            ),
        )
        if not cur.rowcount:
            return 0
        aid = int(cur.lastrowid or 0)
        journal._event(aid, now, PENDING, reason)  # noqa: SLF001
        return aid


class Watcher:
    """What the watcher passes remember: when each watched host was first seen back."""

    def __init__(self) -> None:
        self.back_since: dict[tuple[str, str], float] = {}

    def due(
        self, vcenter: str, connected: set[str], watched: Sequence[Watch], now: float
    ) -> set[str]:
        """Watched hosts connected again and not yet settled (read them this pass)."""
        out = set()
        for h in {w.source_host_id for w in watched}:
            key = (vcenter, h)
            if h not in connected:
                self.back_since.pop(key, None)
                continue
            since = self.back_since.setdefault(key, now)
            if now - since <= SETTLE_SECONDS:
                out.add(h)
        return out


async def check(
    engine: Engine, watcher: Watcher, vcenter: str, connected: set[str], unsure_now: set[str]
) -> list[Duplicate]:
    """One watcher pass: journal removals for clear duplicates, return the unsure ones.

    Hosts with a duplicate still left for a person (``unsure_now``: their moids) keep being
    read past :data:`SETTLE_SECONDS`, so the alert clears when a person settles it.
    """
    now = engine.clock()
    watched = [
        w for w in await engine.db(watches, engine.j, now - WATCH_SECONDS) if w.vcenter == vcenter
    ]
    hosts = watcher.due(vcenter, connected, watched, now) | (unsure_now & connected)
    if not watched or not hosts:
        return []
    found = await engine.vc(vcenter, find, watched, hosts)
    unsure = []
    for d in found:
        if d.why:
            unsure.append(d)
            continue
        aid = await engine.db(add_action, engine.j, d, now, engine.rcfg.dry_run)
        if aid:
            log.warning(
                "action %d: %s is registered twice (%s): removing the stale powered-off copy"
                " %s on %s from the inventory; %s keeps running",
                aid, d.stale.name, d.watch.vmx_path, d.stale.moid, d.stale.host_id,
                d.running.moid if d.running else "?",
            )  # fmt: skip
            engine.wake()
    return unsure


async def run(engine: Engine, a: Any) -> None:
    """Remove a stale copy from the inventory, after proving again that it is stale."""
    if not await engine.guarded(a, a.cluster):
        return
    vmx = str(a.detail.get("vmx_path", ""))
    running_id = str(a.detail.get("running_vm_id", ""))
    now = await engine.read(a, read_vms, [a.vm_id, running_id])
    if now is None:
        return
    stale = now.get(a.vm_id)
    if stale is None:
        await engine.finish(a, DONE, "the stale copy is no longer in the inventory")
        return
    watch = Watch(a.vcenter, a.cluster, a.vm, stale.host_id, running_id, vmx, 0)
    d = Duplicate(watch, stale, now.get(running_id))
    if stale.vmx_path != vmx:
        await engine.finish(a, REFUSED, f"{a.vm_id} is no longer registered from {vmx}")
        return
    if d.why:
        await engine.finish(
            a, REFUSED, f"not clearly stale any more ({d.why.replace('_', ' ')}): left for a person"
        )
        return
    what = f"unregister the stale copy {a.vm_id} of {vmx} (files kept)"
    if not await engine.admit(a, what):
        return
    try:
        await engine.change(a, what, act.unregister, a.vm_id)
    except act.StepError as err:
        await engine.failed_change(a, err)
        return
    assert d.running is not None
    await engine.finish(
        a,
        DONE,
        f"removed the stale copy {a.vm_id} on {stale.host_id} from the inventory (files kept);"
        f" {d.running.moid} keeps running on {d.running.host_id}",
    )


def banner(unsure: Iterable[Duplicate]) -> str:
    """The page's warning: every VM registered twice that was left for a person (HTML)."""
    items = list(unsure)
    if not items:
        return ""
    from html import escape as e

    rows = "".join(
        f"<li>{e(d.stale.name or d.watch.vm)} (<code>{e(d.watch.vmx_path)}</code>, "
        f"{e(d.watch.vcenter)}): {e(d.stale.moid)} on {e(d.stale.host_id)} and "
        f"{e(d.running.moid if d.running else '?')}: {e(d.why.replace('_', ' '))}</li>"
        for d in items
    )
    return (
        f'<div class="failed"><b>{len(items)} VM(s) registered twice</b> (a failed host came'
        " back with a copy; left for a person: power off the copy that must not run, then"
        f" remove it from the inventory, never from disk):<ul>{rows}</ul></div>"
    )
