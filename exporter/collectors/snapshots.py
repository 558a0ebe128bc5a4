"""Snapshot space: ``vsphere_vm_snapshot_size_bytes`` per VM with snapshots
(``exporter/snapshot_sizes.py`` polls ``layoutEx`` for them).

A VM is rendered only while the followed ``snapshot`` property still counts a snapshot, so
removing the last one drops the series at once; a new snapshot gets its size at the next
check (``snapshot_sizes.CHECK_SECONDS``, 5 s).
"""

from __future__ import annotations

from ..families import Family
from .context import CollectorUnavailable, RenderContext


def collect(ctx: RenderContext) -> list[Family]:
    polled = ctx.inventory.snapshot_sizes
    if polled is None:
        return []
    fam = Family(
        "vsphere_vm_snapshot_size_bytes",
        "Bytes held by the VM's snapshots: delta disks, .vmsn and .vmem files (layoutEx).",
    )
    for moid, size in polled.sizes:
        vm = ctx.inventory.objects.get(moid)
        if vm is None or vm.type != "VirtualMachine":
            continue
        if not (vm.get("snapshot") or {}).get("count"):
            continue
        fam.add(ctx.base("vm", vm), size)
    if not polled.ok:
        raise CollectorUnavailable(polled.error, [fam])
    return [fam]
