"""The Host detail dashboard (vha-host): one ESXi host's connection, power and HA agent state,
utilisation, performance counters (perf_panels.py), history and the VMs registered on it.

docs/dashboards.md describes every panel.
"""

from __future__ import annotations

from . import perf_panels
from .common import (
    APP_HEARTBEAT,
    CELL_TEXT,
    HA_STATE,
    HOST_CONNECTION,
    HOST_POWER,
    STATUS,
    VAR_CLUSTER_DC,
    VAR_DATACENTER,
    VAR_VCENTER,
    VM_LINK,
    VM_POWER,
    Board,
    Col,
    bool_map,
    code_map,
    column,
    enum_stat,
    stat,
    steps,
    table,
    text_map,
    timeline,
    timeseries,
)
from .promql import (
    HOST,
    HOST_KEY,
    VC,
    VM_KEY,
    m,
    max_utilization,
    ratio,
    since,
    state_code,
    state_label,
    vms_in,
)
from .tag_vars import VAR_HOST_TAGGED, tag_vars


def build() -> Board:
    d = Board(
        "vha-host",
        "vSphere HA / Host detail",
        "One ESXi host (or several): connection, power and HA agent state, utilisation, "
        "history, and the VMs registered on it.",
        [VAR_VCENTER, VAR_DATACENTER, VAR_CLUSTER_DC, *tag_vars("host"), VAR_HOST_TAGGED],
    )
    not_ha = "the host's cluster does not have vSphere HA turned on"
    d.row("Status")
    d.add(
        4,
        4,
        enum_stat(
            "Connection",
            "vCenter's connection state of the host.",
            "vsphere_host_connection_state",
            "state",
            HOST,
            "host",
            HOST_CONNECTION,
        ),
        enum_stat(
            "Power",
            "Host power state (standBy: put to sleep by DPM).",
            "vsphere_host_power_state",
            "state",
            HOST,
            "host",
            HOST_POWER,
        ),
        enum_stat(
            "HA agent (FDM)",
            "vSphere HA agent state: master, connectedToMaster (a slave), election, hostDown, "
            "networkIsolated, networkPartitionedFromMaster, ...",
            "vsphere_host_ha_state",
            "state",
            HOST,
            "host",
            HA_STATE,
            empty=not_ha,
        ),
        enum_stat(
            "Overall status",
            "vCenter's overall status of the host (alarms, hardware health).",
            "vsphere_host_overall_status",
            "status",
            HOST,
            "host",
            STATUS,
        ),
        stat(
            "Maintenance / quarantine",
            "Whether the host is in maintenance mode, or in Proactive HA quarantine mode.",
            [
                (m("vsphere_host_maintenance_mode", HOST), "{{host}} maintenance"),
                (m("vsphere_host_quarantine_mode", HOST), "{{host}} quarantine"),
            ],
            mappings=bool_map("no", "yes", "green", "orange"),
            text_mode="value_and_name",
        ),
        stat(
            "Uptime",
            "Time since the host booted.",
            [(since(m("vsphere_host_boot_time_seconds", HOST)), "{{host}}")],
            unit="dtdurations",
        ),
    )
    d.add(
        24,
        5,
        table(
            "Host",
            "Placement and size of the host, and when it was last seen connected.",
            [
                Col(
                    m("vsphere_host_info", HOST), None, "datacenter, cluster, fault_domain, version"
                ),
                Col(m("vsphere_host_cpu_cores", HOST), "Cores"),
                Col(m("vsphere_host_cpu_capacity_hertz", HOST), "CPU"),
                Col(m("vsphere_host_memory_capacity_bytes", HOST), "Memory"),
                Col(m("vsphere_host_vms", HOST), "VMs"),
                Col(
                    since(m("vsphere_host_last_connected_timestamp_seconds", HOST)),
                    "Last seen connected",
                ),
            ],
            key=HOST_KEY,
            order=["vcenter", "host", "datacenter", "cluster", "fault_domain", "version"],
            overrides=[
                column("CPU", ("unit", "hertz")),
                column("Memory", ("unit", "bytes")),
                column(
                    "Last seen connected",
                    ("unit", "s"),
                    ("thresholds", steps(("green", None), ("red", 120))),
                    CELL_TEXT,
                ),
            ],
        ),
    )

    d.row("Utilisation")
    cpu_used, cpu_cap = (
        m("vsphere_host_cpu_usage_hertz", HOST),
        m("vsphere_host_cpu_capacity_hertz", HOST),
    )
    mem_used = m("vsphere_host_memory_usage_bytes", HOST)
    mem_cap = m("vsphere_host_memory_capacity_bytes", HOST)
    d.add(
        12,
        8,
        timeseries(
            "CPU",
            "CPU used (quickStats.overallCpuUsage) against the host's capacity.",
            [(cpu_used, "{{host}} used"), (cpu_cap, "{{host}} capacity")],
            unit="hertz",
        ),
        timeseries(
            "Memory",
            "Memory used (quickStats.overallMemoryUsage) against physical memory.",
            [(mem_used, "{{host}} used"), (mem_cap, "{{host}} capacity")],
            unit="bytes",
        ),
        timeseries(
            "Utilisation",
            "CPU and memory used as a share of capacity.",
            [
                (ratio(cpu_used, cpu_cap), "{{host}} CPU"),
                (ratio(mem_used, mem_cap), "{{host}} memory"),
            ],
            unit="percentunit",
            thresholds=steps(("green", None), ("red", max_utilization())),
        ),
        timeseries(
            "Registered VMs",
            "VMs registered on the host: a drop here and a rise elsewhere is an HA restart or "
            "an evacuation.",
            [(m("vsphere_host_vms", HOST), "{{host}}")],
        ),
    )

    d.row("Performance")
    cpu, memory, disk, network, drops = perf_panels.host_panels(HOST)
    d.add(8, 8, cpu, memory, disk)
    d.add(12, 7, network, drops)

    d.row("History")
    conn_code = state_code("vsphere_host_connection_state", "state", list(HOST_CONNECTION), HOST)
    d.add(
        24,
        5,
        timeline(
            "Connection state",
            "Connection state over time.",
            [(conn_code, "{{host}}")],
            code_map(HOST_CONNECTION),
        ),
        timeline(
            "HA agent state",
            "vSphere HA agent (FDM) state over time: elections, isolation and partitions "
            "show here.",
            [(state_code("vsphere_host_ha_state", "state", list(HA_STATE), HOST), "{{host}}")],
            code_map(HA_STATE),
            empty=not_ha,
        ),
        timeline(
            "Power state",
            "Power state over time.",
            [(state_code("vsphere_host_power_state", "state", list(HOST_POWER), HOST), "{{host}}")],
            code_map(HOST_POWER),
        ),
    )

    d.row("VMs on the host")
    on_host = f'{VC}, host=~"$host"'
    d.add(
        24,
        10,
        table(
            "VMs",
            "The VMs registered on the host now, with power state, heartbeats and use. Click a "
            "VM for its detail.",
            [
                Col(
                    m("vsphere_vm_info", on_host),
                    None,
                    "host, cluster, ha_protected, restart_priority",
                ),
                Col(
                    vms_in(state_label("vsphere_vm_power_state", "state", "power", VC), on_host),
                    None,
                    "power",
                ),
                Col(
                    vms_in(
                        state_label(
                            "vsphere_vm_guest_heartbeat_status", "status", "guest_heartbeat", VC
                        ),
                        on_host,
                    ),
                    None,
                    "guest_heartbeat",
                ),
                Col(
                    vms_in(
                        state_label(
                            "vsphere_vm_app_heartbeat_status", "status", "app_heartbeat", VC
                        ),
                        on_host,
                    ),
                    None,
                    "app_heartbeat",
                ),
                Col(vms_in(m("vsphere_vm_cpu_usage_hertz", VC), on_host), "CPU"),
                Col(vms_in(m("vsphere_vm_memory_consumed_bytes", VC), on_host), "Memory consumed"),
            ],
            key=VM_KEY,
            order=["vm", "host", "power", "guest_heartbeat", "app_heartbeat", "ha_protected"],
            hide=["vcenter", "cluster"],
            overrides=[
                column("vm", VM_LINK),
                column("power", ("mappings", text_map(VM_POWER)), CELL_TEXT),
                column("guest_heartbeat", ("mappings", text_map(STATUS)), CELL_TEXT),
                column("app_heartbeat", ("mappings", text_map(APP_HEARTBEAT)), CELL_TEXT),
                column("CPU", ("unit", "hertz")),
                column("Memory consumed", ("unit", "bytes")),
            ],
            sort="vm",
        ),
    )
    return d
