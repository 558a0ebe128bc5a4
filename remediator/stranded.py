"""VMs out of every inventory: unregistered from their host and not yet registered again.

Between ``UnregisterVM`` and a successful ``RegisterVM_Task`` a VM exists only as files
on a datastore and a row in the journal.  The remediator never lets such a step end
(:meth:`Engine.finish` keeps it pending and retrying), and this module makes the VM
impossible to miss while it is out: ``vha_remediator_vms_unregistered`` and one
``vha_remediator_vm_unregistered_info`` series per VM (name and ``.vmx`` path) on
/metrics, ``GET /api/v1/unregistered`` and a banner on the page, until it is registered
again (by the remediator, or by a person, whose registration the step then adopts).
"""

from __future__ import annotations

import json
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from .journal import Journal

KEY = "unregistered"  # the step detail that holds what is needed to register again


def is_stranded(detail: dict[str, Any] | None) -> bool:
    return bool((detail or {}).get(KEY))


def find(journal: Journal) -> list[dict[str, Any]]:
    """Every step whose VM is out of the inventory now (any state: a final one is a bug)."""
    with journal._lock:  # noqa: SLF001 - one read on the journal's own connection
        rows = journal.db.execute(
            "SELECT id, parent_id, vcenter, cluster, vm_id, vm, host, target_host, state,"
            " reason, updated_at, detail FROM actions"
            " WHERE parent_id IS NOT NULL AND detail LIKE '%\"unregistered\"%'"
            " ORDER BY id"
        ).fetchall()
    out = []
    for row in rows:
        (aid, parent, vcenter, cluster, vm_id, vm, host, target, state, reason, at, raw) = row
        info = json.loads(raw or "{}").get(KEY)
        if not info:
            continue
        out.append(
            {
                "action_id": aid,
                "parent_id": parent,
                "vcenter": vcenter,
                "cluster": cluster,
                "vm": info.get("name") or vm,
                "old_vm_id": vm_id,
                "vmx_path": info.get("vmx_path", ""),
                "host": host,
                "target_host": target,
                "state": state,
                "reason": reason,
                "updated_at": at,
            }
        )
    return out


class StrandedMetrics:
    """The two families, set from :func:`find` at scrape time (so they are exact)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.count = Gauge(
            "vha_remediator_vms_unregistered",
            "VMs the remediator unregistered and has not registered again yet",
            registry=registry,
        )
        self.info = Gauge(
            "vha_remediator_vm_unregistered_info",
            "One series per VM out of vCenter's inventory: its name and .vmx path",
            ["vcenter", "cluster", "vm", "vmx_path", "action_id"],
            registry=registry,
        )

    def set(self, stranded: list[dict[str, Any]]) -> None:
        self.count.set(len(stranded))
        self.info.clear()
        for v in stranded:
            self.info.labels(
                vcenter=v["vcenter"],
                cluster=v["cluster"],
                vm=v["vm"],
                vmx_path=v["vmx_path"],
                action_id=str(v["action_id"]),
            ).set(1)


def banner(stranded: list[dict[str, Any]]) -> str:
    """The page's warning: every VM out of the inventory, by name and .vmx path (HTML)."""
    if not stranded:
        return ""
    from html import escape as e

    items = "".join(
        f"<li>{e(v['vm'])} (<code>{e(v['vmx_path'])}</code>, {e(v['vcenter'])}, action "
        f"{v['action_id']}): {e(v['reason'])}</li>"
        for v in stranded
    )
    return (
        f'<div class="failed"><b>{len(stranded)} VM(s) not registered in vCenter</b>'
        " (the remediator keeps trying; register the .vmx by hand to end it):"
        f"<ul>{items}</ul></div>"
    )
