"""Datastores: capacity, free, provisioned and uncommitted space, maintenance mode, mounts,
accessibility and how many VMs live on them."""

from __future__ import annotations

from ..families import Family, labels
from .context import RenderContext

MAINTENANCE_MODES = ("normal", "enteringMaintenance", "inMaintenance")


def collect(ctx: RenderContext) -> list[Family]:
    info = Family("vsphere_datastore_info", "Datastore identity, type and mounts; always 1.")
    cap = Family("vsphere_datastore_capacity_bytes", "Datastore capacity.")
    free = Family("vsphere_datastore_free_bytes", "Datastore free space.")
    uncommitted = Family(
        "vsphere_datastore_uncommitted_bytes",
        "Space thin-provisioned VMs may still grow into (summary.uncommitted).",
    )
    provisioned = Family(
        "vsphere_datastore_provisioned_bytes",
        "Space promised to VMs: capacity - free + uncommitted.",
    )
    maintenance = Family("vsphere_datastore_maintenance_mode", "Datastore maintenance mode.")
    mounted = Family(
        "vsphere_datastore_hosts_mounted", "Hosts that have the datastore mounted and accessible."
    )
    ok = Family("vsphere_datastore_accessible", "1 when the datastore is accessible.")
    vms = Family("vsphere_datastore_vms", "VMs with files on the datastore.")
    for ds in ctx.objects("Datastore"):
        base = ctx.base("datastore", ds)
        hosts = ds.get("host")
        info.add(
            base
            + ","
            + labels(
                (
                    ("datacenter", ctx.topology.datacenter(ds.moid)),
                    ("type", str(ds.get("summary.type") or "")),
                    ("hosts_mounted", str(hosts) if hosts is not None else ""),
                )
            ),
            1,
        )
        capacity, free_space = ds.get("summary.capacity"), ds.get("summary.freeSpace")
        if capacity is not None:
            cap.add(base, float(capacity))
        if free_space is not None:
            free.add(base, float(free_space))
        thin = float(ds.get("summary.uncommitted") or 0)  # absent: nothing thin to grow
        uncommitted.add(base, thin)
        if capacity is not None and free_space is not None:
            provisioned.add(base, float(capacity) - float(free_space) + thin)
        maintenance.add_enum(
            base, "mode", MAINTENANCE_MODES, ds.get("summary.maintenanceMode") or "normal"
        )
        if hosts is not None:
            mounted.add(base, hosts)
        ok.add(base, 1 if ds.get("summary.accessible") else 0)
        vms.add(base, ds.get("vm") or 0)
    return [info, cap, free, uncommitted, provisioned, maintenance, mounted, ok, vms]
