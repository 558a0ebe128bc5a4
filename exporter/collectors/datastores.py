"""Datastores: capacity, free space, accessibility and how many VMs live on them."""

from __future__ import annotations

from ..families import Family, labels
from .context import RenderContext


def collect(ctx: RenderContext) -> list[Family]:
    info = Family("vsphere_datastore_info", "Datastore identity and type; always 1.")
    cap = Family("vsphere_datastore_capacity_bytes", "Datastore capacity.")
    free = Family("vsphere_datastore_free_bytes", "Datastore free space.")
    ok = Family("vsphere_datastore_accessible", "1 when the datastore is accessible.")
    vms = Family("vsphere_datastore_vms", "VMs with files on the datastore.")
    for ds in ctx.objects("Datastore"):
        base = ctx.base("datastore", ds)
        info.add(
            base
            + ","
            + labels(
                (
                    ("datacenter", ctx.topology.datacenter(ds.moid)),
                    ("type", str(ds.get("summary.type") or "")),
                )
            ),
            1,
        )
        if ds.get("summary.capacity") is not None:
            cap.add(base, float(ds.get("summary.capacity")))
        if ds.get("summary.freeSpace") is not None:
            free.add(base, float(ds.get("summary.freeSpace")))
        ok.add(base, 1 if ds.get("summary.accessible") else 0)
        vms.add(base, ds.get("vm") or 0)
    return [info, cap, free, ok, vms]
