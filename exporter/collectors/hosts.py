"""ESXi hosts: identity, connection, power, maintenance, HA agent state and capacity."""

from __future__ import annotations

from ..families import Family, escape, labels
from ..inventory import DAS_REPORTER, ManagedObject
from .cache import previous_families, remember
from .context import RenderContext

CONNECTION_STATES = ("connected", "disconnected", "notResponding")
POWER_STATES = ("poweredOn", "poweredOff", "standBy", "unknown")
OVERALL_STATUSES = ("green", "yellow", "red", "gray")
HA_STATES = (
    "master",
    "connectedToMaster",
    "election",
    "fdmUnreachable",
    "hostDown",
    "networkIsolated",
    "networkPartitionedFromMaster",
    "initializationError",
    "uninitializationError",
    "uninitialized",
    "retry",  # vSphere 8.0U1: the host's FDM is being retried
)
MHZ = 1e6
MIB = 1024.0 * 1024.0


def collect(ctx: RenderContext) -> list[Family]:
    """The hosts' families; all but the heartbeat timestamps are handed back as they were
    while no host, its placement, its VM count or its HA state reporter changed (most full
    renders follow a heartbeat round or a counter collection: rebuilding them every time
    was ~8 % of the exporter's busy samples at 20,000 VMs)."""
    topo = ctx.topology
    objects = ctx.inventory.objects
    hosts = ctx.objects("HostSystem")
    keys = []
    for host in hosts:
        reporter = objects.get(host.get(DAS_REPORTER) or "")
        keys.append(
            (
                host.rev,
                topo.host_cluster.get(host.moid),
                topo.datacenter(host.moid),
                topo.host_fault_domain.get(host.moid),
                topo.host_vm_count.get(host.moid),
                reporter.rev if reporter is not None else None,
            )
        )
    signature = (ctx.vcenter, ctx.config, tuple(keys))
    families = previous_families(ctx, "host_families", signature)
    if families is None:
        families = remember(ctx, "host_families", signature, _render(ctx, hosts))
    seen = Family(
        "vsphere_host_last_connected_timestamp_seconds",
        "Last time the exporter saw the host connected, Unix seconds.",
    )
    healthy = ctx.inventory.last_healthy
    for host in hosts:
        last = healthy.get((host.moid, "connected"))
        if last is not None:
            seen.add(ctx.base("host", host), last)
    families.insert(SEEN_AT, seen)
    return families


SEEN_AT = 9  # the heartbeat timestamps' place among the families (as always rendered)


def _render(ctx: RenderContext, hosts: list[ManagedObject]) -> list[Family]:
    info = Family("vsphere_host_info", "ESXi host identity and placement; always 1.")
    conn = Family("vsphere_host_connection_state", "Host connection state as vCenter sees it.")
    power = Family("vsphere_host_power_state", "Host power state.")
    maint = Family("vsphere_host_maintenance_mode", "1 when the host is in maintenance mode.")
    quar = Family("vsphere_host_quarantine_mode", "1 when the host is in quarantine mode.")
    status = Family("vsphere_host_overall_status", "Host overall status (alarm colour).")
    ha = Family("vsphere_host_ha_state", "vSphere HA agent (FDM) state of the host.")
    reporter_info = Family(
        "vsphere_host_ha_state_reporter_info",
        "Who reported the host's HA state (stateReporter: the master, or the host); 1.",
    )
    boot = Family("vsphere_host_boot_time_seconds", "Host boot time, Unix seconds.")
    cores = Family("vsphere_host_cpu_cores", "Physical CPU cores.")
    cpu_cap = Family("vsphere_host_cpu_capacity_hertz", "CPU capacity: cores x core frequency.")
    cpu_use = Family("vsphere_host_cpu_usage_hertz", "CPU in use.")
    mem_cap = Family("vsphere_host_memory_capacity_bytes", "Physical memory.")
    mem_use = Family("vsphere_host_memory_usage_bytes", "Memory in use.")
    vms = Family("vsphere_host_vms", "Virtual machines registered on the host.")
    topo = ctx.topology
    for host in hosts:
        base = ctx.base("host", host)
        cluster_id, cluster = topo.host_cluster.get(host.moid, ("", ""))
        info.add(
            base
            + ","
            + labels(
                (
                    ("cluster_id", cluster_id),
                    ("cluster", cluster),
                    ("datacenter", topo.datacenter(host.moid)),
                    ("fault_domain", topo.host_fault_domain.get(host.moid, "")),
                    ("version", str(host.get("summary.config.product.version") or "")),
                )
            ),
            1,
        )
        conn.add_enum(base, "state", CONNECTION_STATES, host.get("runtime.connectionState"))
        power.add_enum(base, "state", POWER_STATES, host.get("runtime.powerState"))
        maint.add(base, 1 if host.get("runtime.inMaintenanceMode") else 0)
        quar.add(base, 1 if host.get("runtime.inQuarantineMode") else 0)
        status.add_enum(base, "status", OVERALL_STATUSES, host.get("overallStatus"))
        ha.add_enum(base, "state", HA_STATES, host.get("runtime.dasHostState"))
        if (reporter_id := host.get(DAS_REPORTER)) is not None:
            reporter = ctx.inventory.objects.get(reporter_id)
            reporter_info.add(
                f'{base},reporter_id="{escape(reporter_id)}",'
                f'reporter="{escape(reporter.name if reporter else "")}"',
                1,
            )
        if host.get("runtime.bootTime") is not None:
            boot.add(base, host.get("runtime.bootTime"))
        n_cores = host.get("summary.hardware.numCpuCores")
        mhz = host.get("summary.hardware.cpuMhz")
        if n_cores is not None:
            cores.add(base, n_cores)
            if mhz is not None:
                cpu_cap.add(base, float(n_cores) * float(mhz) * MHZ)
        if host.get("summary.quickStats.overallCpuUsage") is not None:
            cpu_use.add(base, float(host.get("summary.quickStats.overallCpuUsage")) * MHZ)
        if host.get("summary.hardware.memorySize") is not None:
            mem_cap.add(base, float(host.get("summary.hardware.memorySize")))
        if host.get("summary.quickStats.overallMemoryUsage") is not None:
            mem_use.add(base, float(host.get("summary.quickStats.overallMemoryUsage")) * MIB)
        vms.add(base, topo.host_vm_count.get(host.moid, 0))
    return [
        info,
        conn,
        power,
        maint,
        quar,
        status,
        ha,
        reporter_info,
        boot,
        cores,
        cpu_cap,
        cpu_use,
        mem_cap,
        mem_use,
        vms,
    ]
