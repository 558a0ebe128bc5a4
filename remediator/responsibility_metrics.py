"""Who was responsible, as metrics: one count per VM a decision looked at, first look only.

``restart_host_vms`` and ``reset_vm``/``restart_vm`` decisions keep their per-VM verdicts
(:mod:`.ha_watch`) in the decision's memory under ``"ha"``; a ``restart_fault_domain_vms``
decision keeps one such memory per host of the domain under ``"hosts"``.  Both are counted
the same way (``vha_remediator_responsibility_total{kind,actor,rule}``), and VMs vSphere HA
is overdue on once each (``vha_remediator_ha_restart_overdue_total``): a decision re-checked
every 30 s must not count its VMs again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import Engine
    from .journal import Action

log = logging.getLogger("remediator")


def count(
    engine: Engine, a: Action, before: Mapping[str, Any], after: Mapping[str, Any], cluster: str
) -> None:
    """Count the VMs ``after`` (this look's memory) knows and ``before`` (the journaled
    memory of earlier looks) did not."""
    seen = before.get("ha") or {}
    for vm_id, r in (after.get("ha") or {}).items():
        if vm_id not in seen:
            engine.metrics.responsibility.labels(
                kind=a.kind, actor=r.get("actor", ""), rule=r.get("rule", "")
            ).inc()
    earlier = set(before.get("ha_overdue") or [])
    late = [m for m in after.get("ha_overdue") or [] if m not in earlier]
    if late:
        engine.metrics.ha_overdue.labels(vcenter=a.vcenter, cluster=cluster).inc(len(late))
        log.warning(
            "action %d %s %s: vSphere HA is overdue on %d VMs (%s)",
            a.id, a.kind, a.vm or a.host or a.fault_domain, len(late), ", ".join(sorted(late)),
        )  # fmt: skip


def count_domain(
    engine: Engine, a: Action, before: Mapping[str, Any], after: Mapping[str, Any], cluster: str
) -> None:
    """:func:`count` for each host of a fault-domain decision (memory under ``"hosts"``)."""
    old = before.get("hosts") or {}
    for host_id, memory in (after.get("hosts") or {}).items():
        count(engine, a, old.get(host_id) or {}, memory or {}, cluster)
