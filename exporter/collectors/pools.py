"""Resource pools and vApps: usage, reservations, limits and shares, with cluster and parent.

Every cluster has a root pool (``Resources``); child pools and vApps hang below it.  Usage
comes from ``summary.quickStats`` (refreshed by vCenter every few minutes for pools), the
settings from ``config.cpuAllocation`` / ``config.memoryAllocation``.  A limit of -1
(unlimited) is exported as an absent ``..._limit_...`` series.
"""

from __future__ import annotations

from ..families import Family, labels
from ..inventory import ManagedObject
from .context import RenderContext

MHZ = 1e6
MIB = 1024.0 * 1024.0
POOL_TYPES = ("ResourcePool", "VirtualApp")


def collect(ctx: RenderContext) -> list[Family]:
    info = Family("vsphere_resource_pool_info", "Resource pool or vApp identity; always 1.")
    fams = {
        name: Family(f"vsphere_resource_pool_{name}", text)
        for name, text in (
            ("cpu_usage_hertz", "CPU used by the pool's VMs (quickStats)."),
            ("memory_usage_bytes", "Guest active memory of the pool's VMs (quickStats)."),
            ("memory_consumed_bytes", "Host memory consumed by the pool's VMs (quickStats)."),
            ("cpu_reservation_hertz", "CPU reservation."),
            ("cpu_limit_hertz", "CPU limit; absent when unlimited."),
            ("cpu_shares", "CPU shares."),
            ("memory_reservation_bytes", "Memory reservation."),
            ("memory_limit_bytes", "Memory limit; absent when unlimited."),
            ("memory_shares", "Memory shares."),
        )
    }
    objects = ctx.inventory.objects
    pools = [o for o in ctx.inventory.objects.values() if o.type in POOL_TYPES]
    for pool in pools:
        base = ctx.base("resource_pool", pool)
        owner = objects.get(str(pool.get("owner") or ""))
        parent = objects.get(str(pool.get("parent") or ""))
        cpu, mem = pool.get("config.cpuAllocation") or {}, pool.get("config.memoryAllocation") or {}
        info.add(
            base
            + ","
            + labels(
                (
                    ("type", "vApp" if pool.type == "VirtualApp" else "resourcePool"),
                    ("cluster_id", owner.moid if owner is not None else ""),
                    ("cluster", owner.name if owner is not None else ""),
                    ("parent_id", parent.moid if parent is not None else ""),
                    ("parent", parent.name if parent is not None else ""),
                    ("cpu_shares_level", str(cpu.get("level", ""))),
                    ("memory_shares_level", str(mem.get("level", ""))),
                )
            ),
            1,
        )
        _usage(fams, base, pool)
        for prefix, alloc, scale in (("cpu", cpu, MHZ), ("memory", mem, MIB)):
            unit = "hertz" if prefix == "cpu" else "bytes"
            if not alloc:
                continue
            fams[f"{prefix}_reservation_{unit}"].add(base, alloc["reservation"] * scale)
            if alloc.get("limit") is not None:
                fams[f"{prefix}_limit_{unit}"].add(base, alloc["limit"] * scale)
            fams[f"{prefix}_shares"].add(base, alloc["shares"])
    return [info, *fams.values()]


def _usage(fams: dict[str, Family], base: str, pool: ManagedObject) -> None:
    for name, path, scale in (
        ("cpu_usage_hertz", "summary.quickStats.overallCpuUsage", MHZ),
        ("memory_usage_bytes", "summary.quickStats.guestMemoryUsage", MIB),
        ("memory_consumed_bytes", "summary.quickStats.hostMemoryUsage", MIB),
    ):
        if pool.get(path) is not None:
            fams[name].add(base, float(pool.get(path)) * scale)
