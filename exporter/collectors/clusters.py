"""Clusters: HA and DRS settings, the HA master, hosts by state, effective capacity."""

from __future__ import annotations

from ..families import Family, escape
from ..inventory import DAS_REPORTER, cluster_config
from .context import RenderContext
from .hosts import CONNECTION_STATES, HA_STATES

POLICIES = ("failover_level", "resource_percentage", "failover_hosts", "none")
VM_MONITORING = ("vmMonitoringDisabled", "vmMonitoringOnly", "vmAndAppMonitoring")
DRS_LEVELS = ("manual", "partiallyAutomated", "fullyAutomated")


def collect(ctx: RenderContext) -> list[Family]:
    info = Family("vsphere_cluster_info", "Cluster identity; always 1.")
    ha = Family("vsphere_cluster_ha_enabled", "1 when vSphere HA is turned on.")
    ac = Family(
        "vsphere_cluster_ha_admission_control_enabled", "1 when HA admission control is on."
    )
    policy = Family("vsphere_cluster_ha_admission_control_policy", "HA admission control policy.")
    level = Family(
        "vsphere_cluster_ha_failover_level", "Host failures the cluster is configured to tolerate."
    )
    monitoring = Family(
        "vsphere_cluster_ha_vm_monitoring", "HA VM and application monitoring mode."
    )
    interval = Family(
        "vsphere_cluster_ha_heartbeat_failure_interval_seconds",
        "VM monitoring: heartbeat failure interval.",
    )
    uptime = Family("vsphere_cluster_ha_min_uptime_seconds", "VM monitoring: minimum uptime.")
    masters = Family("vsphere_cluster_ha_masters", "Hosts reporting HA state master.")
    master_info = Family(
        "vsphere_cluster_ha_master_info",
        "The cluster's HA master host and who reported it (stateReporter); 1.",
    )
    drs = Family("vsphere_cluster_drs_enabled", "1 when DRS is on.")
    drs_level = Family("vsphere_cluster_drs_automation_level", "DRS automation level.")
    hosts = Family("vsphere_cluster_hosts", "Hosts by connection state.")
    hosts_ha = Family("vsphere_cluster_hosts_ha_state", "Hosts by HA (FDM) state.")
    eff_cpu = Family(
        "vsphere_cluster_effective_cpu_hertz", "CPU available to VMs on healthy hosts."
    )
    eff_mem = Family(
        "vsphere_cluster_effective_memory_bytes", "Memory available to VMs on healthy hosts."
    )
    cap_cpu = Family("vsphere_cluster_cpu_capacity_hertz", "Total CPU of all hosts.")
    cap_mem = Family("vsphere_cluster_memory_capacity_bytes", "Total memory of all hosts.")

    members: dict[str, list] = {}
    for host in ctx.objects("HostSystem"):
        cluster_id, _ = ctx.topology.host_cluster.get(host.moid, ("", ""))
        if cluster_id:
            members.setdefault(cluster_id, []).append(host)

    for cluster in ctx.objects("ClusterComputeResource"):
        base = ctx.base("cluster", cluster)
        info.add(f'{base},datacenter="{escape(ctx.topology.datacenter(cluster.moid))}"', 1)
        cfg = cluster_config(cluster)
        ha.add(base, 1 if cfg.get("ha_enabled") else 0)
        ac.add(base, 1 if cfg.get("admission_control_enabled") else 0)
        policy.add_enum(base, "policy", POLICIES, cfg.get("policy", "none"))
        level.add(base, cfg.get("failover_level", 0))
        monitoring.add_enum(base, "mode", VM_MONITORING, cfg.get("vm_monitoring"))
        if "failure_interval" in cfg:
            interval.add(base, cfg["failure_interval"])
        if "min_uptime" in cfg:
            uptime.add(base, cfg["min_uptime"])
        drs.add(base, 1 if cfg.get("drs_enabled") else 0)
        drs_level.add_enum(base, "level", DRS_LEVELS, cfg.get("drs_behavior"))
        by_conn = dict.fromkeys(CONNECTION_STATES, 0)
        by_ha = dict.fromkeys(HA_STATES, 0)
        n_masters = 0
        for host in members.get(cluster.moid, []):
            state = host.get("runtime.connectionState")
            if state in by_conn:
                by_conn[state] += 1
            das = host.get("runtime.dasHostState")
            if das in by_ha:
                by_ha[das] += 1
            if das == "master":
                n_masters += 1
                reporter_id = str(host.get(DAS_REPORTER) or "")
                reporter = ctx.inventory.objects.get(reporter_id)
                master_info.add(
                    f'{base},host_id="{escape(host.moid)}",host="{escape(host.name)}",'
                    f'reporter_id="{escape(reporter_id)}",'
                    f'reporter="{escape(reporter.name if reporter else "")}"',
                    1,
                )
        for state, n in by_conn.items():
            hosts.add(f'{base},state="{state}"', n)
        for state, n in by_ha.items():
            hosts_ha.add(f'{base},state="{state}"', n)
        masters.add(base, n_masters)
        summary = cluster.get("summary") or {}
        if summary:
            eff_cpu.add(base, summary["effective_cpu_hz"])
            eff_mem.add(base, summary["effective_memory_bytes"])
            cap_cpu.add(base, summary["total_cpu_hz"])
            cap_mem.add(base, summary["total_memory_bytes"])
    return [
        info,
        ha,
        ac,
        policy,
        level,
        monitoring,
        interval,
        uptime,
        masters,
        master_info,
        drs,
        drs_level,
        hosts,
        hosts_ha,
        eff_cpu,
        eff_mem,
        cap_cpu,
        cap_mem,
    ]
