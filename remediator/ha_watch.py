"""Glue between the HA modules and the decision path: one call per decision.

``decide.py`` reads :func:`remediator.ha_settings.read_ha` next to its snapshot and calls
:func:`annotate`; the result says, per VM, who is responsible and why (journaled in the
decision's memory under ``"ha"``), gives the snapshot back with vSphere's restart
priorities (so placement and tiers order VMs as HA would), and lists the VMs vSphere HA
is overdue on. Pure: no vCenter, no journal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .config import HAWatchConfig
from .ha_settings import ClusterHA, HAView, VmHAFacts

__all__ = ["HAWatchConfig", "Annotated", "annotate", "next_look", "watch_detail", "watch_look"]
from .model import PRIORITY_RANK, Snapshot, VMState
from .responsibility import HA, NOBODY, REMEDIATOR, Responsibility, restart_responsibility


@dataclass(frozen=True)
class Annotated:
    snapshot: Snapshot
    restart: Mapping[str, Responsibility]
    overdue: tuple[str, ...] = ()  # VMs HA is overdue on
    memory: dict[str, Any] = field(default_factory=dict)

    def actor(self, vm_id: str) -> str:
        r = self.restart.get(vm_id)
        return r.actor if r is not None else REMEDIATOR

    def may_restart(self, vm_id: str) -> bool:
        """The remediator restarts this VM now: its own, or HA's and overdue with opt-in."""
        r = self.restart.get(vm_id)
        if r is None or r.actor == REMEDIATOR:
            return True
        return r.actor == HA and r.act_when_overdue and vm_id in self.overdue


def _facts(vm: VMState, view: HAView | None) -> VmHAFacts:
    """The HA facts of ``vm``; a VM the HA read did not see counts as unprotected."""
    if view is not None and vm.moid in view.vms:
        return view.vms[vm.moid]
    return VmHAFacts(moid=vm.moid, name=vm.name, host_id=vm.host_id, power_state=vm.power_state)


def annotate(
    snap: Snapshot,
    view: HAView | None,
    cfg: HAWatchConfig,
    failed_for: float,
    vm_ids: Any = None,
) -> Annotated:
    """Responsibility for ``vm_ids`` (default: every VM of the snapshot), after
    ``failed_for`` seconds of failure; VMs nobody may restart become unprotected in the
    returned snapshot, and every VM carries the restart priority vSphere resolves."""
    cluster: ClusterHA | None = view.cluster if view is not None else None
    ids = set(vm_ids) if vm_ids is not None else set(snap.vms)
    out: dict[str, Responsibility] = {}
    vms = dict(snap.vms)
    for moid in sorted(ids):
        vm = snap.vms.get(moid)
        if vm is None:
            continue
        r = restart_responsibility(
            cluster,
            _facts(vm, view),
            vm.priority,
            overdue_seconds=cfg.overdue_seconds,
            act_when_overdue=cfg.act_when_overdue,
        )
        out[moid] = r
        changed = replace(vm, priority=r.priority) if r.priority in PRIORITY_RANK else vm
        if r.actor == NOBODY:
            changed = replace(changed, protected=False)
        vms[moid] = changed
    overdue = tuple(
        m
        for m, r in out.items()
        if r.actor == HA and r.overdue_after is not None and failed_for >= r.overdue_after
    )
    memory: dict[str, Any] = {
        "ha": {
            m: {
                "actor": r.actor,
                "rule": r.rule,
                "reason": r.reason,
                "priority": r.priority,
                "source": r.priority_source,
            }
            for m, r in out.items()
        }
    }
    if overdue:
        memory["ha_overdue"] = list(overdue)
    return Annotated(replace(snap, vms=vms), out, overdue, memory)


def next_look(annotated: Annotated, since: float, now: float) -> float | None:
    """When to look again for HA-owned VMs that are not yet overdue (None: none are)."""
    times = [
        since + r.overdue_after
        for m, r in annotated.restart.items()
        if r.actor == HA and r.overdue_after is not None and m not in annotated.overdue
    ]
    future = [t for t in times if t > now]
    return min(future) if future else None


WATCH_KEY = "ha_watch"  # a watch step's detail: since, overdue_after, act_when_overdue
LOOK_SECONDS = 30.0  # how often HA's progress is re-read (a deferring decision, a watch step)


def watch_detail(since: float, overdue_after: float | None, act: bool) -> dict[str, Any]:
    """The detail of a watch step (steps/watch_ha.py) for a VM vSphere HA is restarting."""
    return {WATCH_KEY: {"since": since, "overdue_after": overdue_after, "act_when_overdue": act}}


def watch_look(info: Mapping[str, Any], now: float) -> float:
    """A watch step's next look: in :data:`LOOK_SECONDS`, or at the overdue time if sooner."""
    after = info.get("overdue_after")
    if after is None:
        return now + LOOK_SECONDS
    return max(now + 1.0, min(now + LOOK_SECONDS, float(info["since"]) + float(after)))
