"""The VM detail dashboard (vha-vm): one VM's power, VMware Tools and application heartbeats,
HA protection, placement, utilisation and performance counters (perf_panels.py).

docs/dashboards.md describes every panel.
"""

from __future__ import annotations

from . import perf_panels
from .common import (
    APP_HEARTBEAT,
    CELL_TEXT,
    HOST_LINK,
    RESTART_PRIORITY,
    STATUS,
    VAR_CLUSTER_DC,
    VAR_DATACENTER,
    VAR_HOST_ALL_DC,
    VAR_VCENTER,
    VM_CONNECTION,
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
    value_map,
)
from .promql import FIRING, VM, VM_KEY, m, since, state_code, state_label
from .tag_vars import VAR_VM_TAGGED, tag_vars


def build() -> Board:
    d = Board(
        "vha-vm",
        "vSphere HA / VM detail",
        "One VM (or several): power, VMware Tools and application heartbeats, HA protection, "
        "placement history (vMotion, HA restarts) and resource use.",
        [
            VAR_VCENTER,
            VAR_DATACENTER,
            VAR_CLUSTER_DC,
            VAR_HOST_ALL_DC,
            *tag_vars("vm"),
            VAR_VM_TAGGED,
        ],
    )
    priorities = value_map(
        {str(i): (f"priority {p}", None) for i, p in enumerate(RESTART_PRIORITY)}
    )
    d.row("Status")
    d.add(
        4,
        4,
        enum_stat(
            "Power", "VM power state.", "vsphere_vm_power_state", "state", VM, "vm", VM_POWER
        ),
        enum_stat(
            "Guest heartbeat",
            "VMware Tools heartbeat: what vSphere HA VM monitoring watches.",
            "vsphere_vm_guest_heartbeat_status",
            "status",
            VM,
            "vm",
            STATUS,
        ),
        enum_stat(
            "Application heartbeat",
            "Application heartbeat (vSphere HA application monitoring); gray: not used.",
            "vsphere_vm_app_heartbeat_status",
            "status",
            VM,
            "vm",
            APP_HEARTBEAT,
        ),
        stat(
            "VMware Tools",
            "Whether VMware Tools runs in the guest.",
            [(m("vsphere_vm_tools_running", VM), "{{vm}}")],
            mappings=bool_map("not running", "running"),
        ),
        stat(
            "HA protection",
            "Whether this stack protects the VM, and its restart priority.",
            [
                (m("vsphere_vm_ha_protected", VM), "{{vm}} protection"),
                (m("vsphere_vm_restart_priority", VM), "{{vm}} priority"),
            ],
            overrides=[
                column(
                    ".* protection$",
                    ("mappings", bool_map("unprotected", "protected", "orange")),
                    regex=True,
                ),
                column(".* priority$", ("mappings", priorities), regex=True),
            ],
            text_mode="value",
        ),
        stat(
            "Uptime",
            "Time since the last power-on.",
            [(since(m("vsphere_vm_boot_time_seconds", VM)), "{{vm}}")],
            unit="dtdurations",
            empty="the VM is powered off",
        ),
    )
    d.add(
        24,
        5,
        table(
            "Placement",
            "Where the VM runs now and how it is configured. Click the host for its detail.",
            [
                Col(
                    m("vsphere_vm_info", VM),
                    None,
                    "host, cluster, fault_domain, datacenter, guest_os, ha_protected, "
                    "restart_priority",
                ),
                Col(
                    state_label("vsphere_vm_connection_state", "state", "connection", VM),
                    None,
                    "connection",
                ),
                Col(m("vsphere_vm_cpu_count", VM), "vCPUs"),
                Col(m("vsphere_vm_memory_size_bytes", VM), "Memory"),
                Col(m("vsphere_vm_snapshots", VM), "Snapshots"),
                Col(
                    since(m("vsphere_vm_guest_heartbeat_last_green_timestamp_seconds", VM)),
                    "Heartbeat last green",
                ),
            ],
            key=VM_KEY,
            order=["vcenter", "vm", "host", "cluster", "fault_domain", "datacenter", "connection"],
            overrides=[
                column("host", HOST_LINK),
                column("connection", ("mappings", text_map(VM_CONNECTION)), CELL_TEXT),
                column("Memory", ("unit", "bytes")),
                column("Heartbeat last green", ("unit", "s")),
            ],
        ),
    )

    d.row("History")
    here = value_map({"1": ("here", "blue")})
    d.add(
        24,
        5,
        timeline(
            "Host",
            "The host the VM was registered on over time: a change is a vMotion, an "
            "evacuation or an HA restart elsewhere.",
            [(m("vsphere_vm_info", VM), "{{vm}} on {{host}}")],
            here,
        ),
        timeline(
            "Power state",
            "Power state over time.",
            [(state_code("vsphere_vm_power_state", "state", list(VM_POWER), VM), "{{vm}}")],
            code_map(VM_POWER),
        ),
        timeline(
            "Guest heartbeat",
            "VMware Tools heartbeat over time.",
            [
                (
                    state_code("vsphere_vm_guest_heartbeat_status", "status", list(STATUS), VM),
                    "{{vm}}",
                )
            ],
            code_map(STATUS),
        ),
        timeline(
            "Application heartbeat",
            "Application heartbeat over time.",
            [
                (
                    state_code(
                        "vsphere_vm_app_heartbeat_status", "status", list(APP_HEARTBEAT), VM
                    ),
                    "{{vm}}",
                )
            ],
            code_map(APP_HEARTBEAT),
        ),
    )

    d.row("Resources")
    d.add(
        8,
        8,
        timeseries(
            "CPU",
            "CPU used and reserved (reservations count in HA admission control).",
            [
                (m("vsphere_vm_cpu_usage_hertz", VM), "{{vm}} used"),
                (m("vsphere_vm_cpu_reservation_hertz", VM), "{{vm}} reserved"),
            ],
            unit="hertz",
        ),
        timeseries(
            "Memory",
            "Guest active memory, host memory consumed, configured size and reservation.",
            [
                (m("vsphere_vm_memory_usage_bytes", VM), "{{vm}} active"),
                (m("vsphere_vm_memory_consumed_bytes", VM), "{{vm}} consumed"),
                (m("vsphere_vm_memory_size_bytes", VM), "{{vm}} configured"),
                (m("vsphere_vm_memory_reservation_bytes", VM), "{{vm}} reserved"),
            ],
            unit="bytes",
        ),
        timeseries(
            "Storage",
            "Storage the VM's files take.",
            [(m("vsphere_vm_storage_committed_bytes", VM), "{{vm}}")],
            unit="bytes",
        ),
    )
    d.row("Performance")
    cpu, costop, memory, disk, network, drops = perf_panels.vm_panels(VM)
    d.add(8, 8, cpu, costop, memory, disk, network, drops)

    d.row("Snapshots and alerts")
    d.add(
        8,
        6,
        stat(
            "Oldest snapshot",
            "Age of the VM's oldest snapshot; old snapshots slow the VM and fill datastores.",
            [(since(m("vsphere_vm_snapshot_oldest_timestamp_seconds", VM)), "{{vm}}")],
            unit="dtdurations",
            thresholds=steps(("green", None), ("orange", 3 * 86400), ("red", 7 * 86400)),
            empty="the VM has no snapshot",
        ),
    )
    d.add(
        16,
        6,
        table(
            "Firing alerts for the VM",
            "Alerts firing now that name the VM.",
            f"ALERTS{{{FIRING}, {VM}}}",
            order=["alertname", "severity", "remediation", "vm", "host", "cluster"],
            hide=["alertstate"],
            sort="alertname",
            empty="nothing is firing for the VM",
        ),
    )
    return d
