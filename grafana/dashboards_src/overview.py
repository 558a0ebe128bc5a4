"""The Overview dashboard (vha-overview): clusters, hosts, HA masters, fault domains, VM
heartbeats, firing alerts and the exporter's view of each vCenter.

docs/dashboards.md describes every panel.
"""

from __future__ import annotations

from typing import Any

from .common import (
    APP_HEARTBEAT,
    CELL_BG,
    CELL_TEXT,
    HA_STATE,
    HOST_CONNECTION,
    HOST_LINK,
    OK_IF_ZERO,
    ONE_MASTER,
    STATUS,
    UP_MAP,
    UP_STEPS,
    VAR_CLUSTER,
    VAR_VCENTER,
    VM_LINK,
    VM_POWER,
    Board,
    Col,
    bargauge,
    bool_map,
    column,
    name_colors,
    stat,
    steps,
    table,
    timeseries,
)
from .promql import (
    CL,
    CLUSTER_KEY,
    CONNECTED,
    EXPORTER_JOB,
    FIRING,
    HA_HEALTHY,
    HOST_KEY,
    NOT_CONNECTED,
    POWERED_ON,
    RED,
    REMEDIATOR_JOB,
    VC,
    VM_KEY,
    fd_none,
    host_labels,
    hosts_in,
    m,
    paren,
    powered_on,
    problem,
    since,
    state_label,
    vm_labels,
    vms_in,
)


def host_problems() -> str:
    """One series per (host, problem): everything about a host that is not as it should be."""
    conn = m("vsphere_host_connection_state", VC, NOT_CONNECTED)
    power = m("vsphere_host_power_state", VC, 'state!="poweredOn"')
    ha = m("vsphere_host_ha_state", VC, f'state!~"{HA_HEALTHY}"')
    status = m("vsphere_host_overall_status", VC, 'status=~"red|yellow"')
    parts = [
        problem(f"{conn} == 1", "connection: $1", "state", "(.*)"),
        problem(f"{power} == 1", "power: $1", "state", "(.*)"),
        problem(f"{ha} == 1", "HA agent: $1", "state", "(.*)"),
        problem(f"{status} == 1", "overall status: $1", "status", "(.*)"),
        problem(f"{m('vsphere_host_maintenance_mode', VC)} == 1", "maintenance mode", "host_id"),
        problem(f"{m('vsphere_host_quarantine_mode', VC)} == 1", "quarantine mode", "host_id"),
    ]
    union = f"max by ({HOST_KEY}, problem) ({' or '.join(parts)})"
    return host_labels(union, "cluster, fault_domain")


def vm_problems() -> str:
    """One series per (VM, problem): heartbeats and Tools of powered-on VMs, connection of all."""
    guest = m("vsphere_vm_guest_heartbeat_status", VC, 'status=~"red|yellow"')
    app = m("vsphere_vm_app_heartbeat_status", VC, 'status="red"')
    tools = m("vsphere_vm_tools_running", VC)
    conn = m("vsphere_vm_connection_state", VC, NOT_CONNECTED)
    parts = [
        powered_on(problem(f"{guest} == 1", "guest heartbeat: $1", "status", "(.*)")),
        powered_on(problem(f"{app} == 1", "application heartbeat: red", "vm_id")),
        powered_on(problem(f"{tools} == 0", "VMware Tools not running", "vm_id")),
        problem(f"{conn} == 1", "connection: $1", "state", "(.*)"),
    ]
    union = f"max by ({VM_KEY}, problem) ({' or '.join(paren(p) for p in parts)})"
    return vm_labels(union, "cluster, host, ha_protected, restart_priority")


def build() -> Board:
    d = Board(
        "vha-overview",
        "vSphere HA / Overview",
        "Clusters, hosts, HA masters, fault domains, VM heartbeats, firing alerts and the "
        "exporter's view of each vCenter.",
        [VAR_VCENTER, VAR_CLUSTER],
    )
    alerts = f"ALERTS{{{FIRING}, {CL}}}"
    connected = m("vsphere_host_connection_state", VC, CONNECTED)
    hosts_not_connected = hosts_in(f"{m('vsphere_host_connection_state', VC, NOT_CONNECTED)} == 1")
    vms_on = vms_in(m("vsphere_vm_power_state", VC, POWERED_ON))
    red_vms = powered_on(vms_in(f"{m('vsphere_vm_guest_heartbeat_status', VC, RED)} == 1"))

    d.row("Summary")
    d.add(
        3,
        4,
        stat(
            "vCenters synced",
            "vCenters the exporter holds a live, synced session to (vsphere_up).",
            [(f"sum({m('vsphere_up', VC)})", "")],
        ),
        stat(
            "vCenters not synced",
            "vCenters without a live, synced session: everything shown for them is stale.",
            [(f"count({m('vsphere_up', VC)} == 0) or vector(0)", "")],
            thresholds=OK_IF_ZERO,
        ),
        stat(
            "Clusters",
            "Clusters in the selection.",
            [(f"count({m('vsphere_cluster_info', CL)}) or vector(0)", "")],
        ),
        stat(
            "Hosts connected",
            "Hosts vCenter reports connected.",
            [
                (
                    f"sum({hosts_in(connected)}) or vector(0)",
                    "",
                )
            ],
        ),
        stat(
            "Hosts not connected",
            "Hosts disconnected or not responding: a host failure, or an isolated vCenter.",
            [(f"count({hosts_not_connected}) or vector(0)", "")],
            thresholds=OK_IF_ZERO,
        ),
        stat(
            "VMs powered on",
            "Powered-on VMs (templates are not exported).",
            [(f"sum({vms_on}) or vector(0)", "")],
        ),
        stat(
            "Guest heartbeat red",
            "Powered-on VMs whose VMware Tools heartbeat is red: VM monitoring resets them.",
            [(f"count({red_vms}) or vector(0)", "")],
            thresholds=OK_IF_ZERO,
        ),
        stat(
            "Firing alerts",
            "Alerts firing in Prometheus for the selection (ALERTS).",
            [(f"count({alerts}) or vector(0)", "")],
            thresholds=steps(("green", None), ("orange", 1)),
        ),
    )

    d.row("vSphere HA")
    master = m("vsphere_cluster_ha_master_info", CL)
    d.add(
        24,
        8,
        table(
            "Clusters",
            "Every cluster with its vSphere HA configuration, its HA master and its hosts. A "
            "healthy HA cluster has exactly one master; the others are connectedToMaster.",
            [
                Col(m("vsphere_cluster_ha_enabled", CL), "HA"),
                Col(f'label_replace({master}, "master", "$1", "host", "(.*)")', None, "master"),
                Col(m("vsphere_cluster_ha_masters", CL), "HA masters"),
                Col(m("vsphere_cluster_hosts", CL, CONNECTED), "Hosts connected", agg="sum"),
                Col(m("vsphere_cluster_hosts", CL), "Hosts", agg="sum"),
                Col(m("vsphere_cluster_ha_admission_control_enabled", CL), "Admission control"),
                Col(m("vsphere_cluster_ha_failover_level", CL), "Failover level"),
                Col(
                    state_label("vsphere_cluster_ha_vm_monitoring", "mode", "vm_monitoring", CL),
                    None,
                    "vm_monitoring",
                ),
                Col(m("vsphere_cluster_drs_enabled", CL), "DRS"),
            ],
            key=CLUSTER_KEY,
            order=["vcenter", "cluster", "HA", "master", "HA masters", "Hosts connected"],
            overrides=[
                column("HA", ("mappings", bool_map("off", "on")), CELL_TEXT),
                column("HA masters", ("thresholds", ONE_MASTER), CELL_TEXT),
                column("master", HOST_LINK),
                column(
                    "Admission control", ("mappings", bool_map("off", "on", "orange")), CELL_TEXT
                ),
                column("DRS", ("mappings", bool_map("off", "on", "text")), CELL_TEXT),
            ],
            sort="cluster",
        ),
    )
    d.add(
        6,
        8,
        bargauge(
            "Hosts by connection state",
            "Hosts per vCenter connection state.",
            [(f"sum by (state) ({hosts_in(m('vsphere_host_connection_state', VC))})", "{{state}}")],
            overrides=name_colors(HOST_CONNECTION),
        ),
        bargauge(
            "Hosts by HA state",
            "Hosts per vSphere HA agent (FDM) state: one master per cluster, the others "
            "connectedToMaster (slaves).",
            [(f"sum by (state) ({hosts_in(m('vsphere_host_ha_state', VC))})", "{{state}}")],
            overrides=name_colors(HA_STATE),
        ),
    )
    d.add(
        12,
        8,
        timeseries(
            "HA masters per cluster",
            "Hosts reporting HA state master: 0 during an election or an outage, more than 1 "
            "when the cluster is partitioned.",
            [(m("vsphere_cluster_ha_masters", CL), "{{cluster}}")],
            thresholds=ONE_MASTER,
        ),
    )
    d.add(
        24,
        8,
        table(
            "Host problems",
            "Hosts not connected, not powered on, with an HA agent state other than master or "
            "connectedToMaster, a red or yellow overall status, or in maintenance or quarantine "
            "mode. Click a host for its detail.",
            host_problems(),
            order=["vcenter", "cluster", "fault_domain", "host", "problem"],
            overrides=[column("host", HOST_LINK)],
            sort="host",
            empty="every host is connected, powered on and healthy in vSphere HA",
        ),
    )

    d.row("Fault domains")
    fd_key = "vcenter, cluster, fault_domain"

    def per_fd(expr: str, join: Any = host_labels) -> str:
        return fd_none(join(expr, "cluster, fault_domain"))

    d.add(
        12,
        9,
        table(
            "Fault domains",
            "Hosts of each fault domain (hosts that share a power feed, switch or rack; hosts "
            "without one are under (none)): how many are connected, how many are healthy in "
            "vSphere HA, and the powered-on VMs that run there.",
            [
                Col(fd_none(m("vsphere_host_info", CL)), "Hosts", agg="count"),
                Col(
                    per_fd(m("vsphere_host_connection_state", VC, CONNECTED)),
                    "Connected",
                    agg="sum",
                ),
                Col(
                    per_fd(m("vsphere_host_ha_state", VC, f'state=~"{HA_HEALTHY}"')),
                    "HA healthy",
                    agg="sum",
                ),
                Col(
                    per_fd(m("vsphere_vm_power_state", VC, POWERED_ON), vm_labels),
                    "VMs on",
                    agg="sum",
                ),
            ],
            key=fd_key,
            order=["vcenter", "cluster", "fault_domain", "Hosts", "Connected", "HA healthy"],
            overrides=[column("Connected", CELL_TEXT)],
            sort="fault_domain",
        ),
        timeseries(
            "Connected hosts per fault domain",
            "A whole fault domain dropping at once is a power, switch or rack failure.",
            [
                (
                    f"sum by ({fd_key}) ({per_fd(connected)})",
                    "{{cluster}} / {{fault_domain}}",
                )
            ],
        ),
    )

    d.row("Virtual machines")
    guest_on = powered_on(vms_in(m("vsphere_vm_guest_heartbeat_status", VC)))
    app_on = powered_on(vms_in(m("vsphere_vm_app_heartbeat_status", VC)))
    d.add(
        8,
        7,
        bargauge(
            "Powered-on VMs by guest heartbeat",
            "VMware Tools heartbeat of powered-on VMs: red means VM monitoring sees the guest "
            "as failed; gray means no Tools heartbeat.",
            [(f"sum by (status) ({guest_on})", "{{status}}")],
            overrides=name_colors(STATUS),
        ),
        bargauge(
            "Powered-on VMs by application heartbeat",
            "Application heartbeats (vSphere HA application monitoring); gray means the "
            "application does not send them.",
            [(f"sum by (status) ({app_on})", "{{status}}")],
            overrides=name_colors(APP_HEARTBEAT),
        ),
        bargauge(
            "VMs by power state",
            "All VMs by power state.",
            [(f"sum by (state) ({vms_in(m('vsphere_vm_power_state', VC))})", "{{state}}")],
            overrides=name_colors(VM_POWER),
        ),
    )
    d.add(
        12,
        8,
        timeseries(
            "Guest heartbeat over time",
            "Powered-on VMs per guest heartbeat status.",
            [(f"sum by (status) ({guest_on})", "{{status}}")],
            stack=True,
            overrides=name_colors(STATUS),
        ),
        table(
            "VM problems",
            "Powered-on VMs with a red or yellow guest heartbeat, a red application heartbeat "
            "or VMware Tools not running, and VMs not connected. Click a VM for its detail.",
            vm_problems(),
            order=["vcenter", "cluster", "host", "vm", "problem"],
            overrides=[column("vm", VM_LINK), column("host", HOST_LINK)],
            sort="vm",
            empty="every powered-on VM's heartbeats are green",
        ),
    )

    d.row("Alerts")
    d.add(
        16,
        8,
        table(
            "Firing alerts",
            "Alerts firing now (rules/alerts.yml) for the selected vCenters and clusters; "
            "alerts without those labels show only when All is selected.",
            alerts,
            order=["alertname", "severity", "remediation", "vcenter", "cluster", "host", "vm"],
            hide=["alertstate"],
            overrides=[column("vm", VM_LINK), column("host", HOST_LINK)],
            sort="alertname",
            empty="nothing is firing",
        ),
        timeseries(
            "Firing alerts by severity",
            "Firing alerts over time.",
            [(f"count by (severity) ({alerts})", "{{severity}}")],
            stack=True,
            bars=True,
            empty="nothing fired in the time range",
        ),
    )

    d.row("Exporter and vCenter sync")
    last = m("vsphere_sync_last_success_timestamp_seconds", VC)
    d.add(
        12,
        7,
        table(
            "vCenters",
            "Each vCenter the exporter follows: session, age of the last applied update, how "
            "long the last full sync took, and what the vCenter reports about itself.",
            [
                Col(m("vsphere_up", VC), "Synced"),
                Col(since(last), "Last update"),
                Col(m("vsphere_sync_duration_seconds", VC), "Full sync took"),
                Col(m("vsphere_vcenter_info", VC), None, "version, api_version"),
            ],
            key="vcenter",
            order=["vcenter", "Synced", "Last update", "Full sync took", "version"],
            overrides=[
                column("Synced", ("mappings", bool_map("no", "yes")), CELL_BG),
                column(
                    "Last update",
                    ("unit", "s"),
                    ("thresholds", steps(("green", None), ("orange", 60), ("red", 300))),
                    CELL_TEXT,
                ),
                column("Full sync took", ("unit", "s")),
            ],
            sort="vcenter",
        ),
        timeseries(
            "Time since the last update from vCenter",
            "Seconds since the exporter last applied an update (or confirmed an empty wait); "
            "it grows while a vCenter is unreachable.",
            [(since(last), "{{vcenter}}")],
            unit="s",
        ),
    )
    errors = m("vsphere_sync_errors_total", VC)
    d.add(
        8,
        7,
        timeseries(
            "Sync errors",
            "Failed connects, lost sessions, invalidated filters and faults, by reason.",
            [
                (
                    f"sum by (vcenter, reason) (increase({errors}[$__rate_interval]))",
                    "{{vcenter}} {{reason}}",
                )
            ],
            bars=True,
        ),
        timeseries(
            "Resyncs and update sets",
            "Full resyncs (the first sync included) and property-collector update sets "
            "applied per second.",
            [
                (
                    f"increase({m('vsphere_sync_resyncs_total', VC)}[$__rate_interval])",
                    "{{vcenter}} resyncs",
                ),
                (
                    f"rate({m('vsphere_sync_updates_total', VC)}[$__rate_interval])",
                    "{{vcenter}} update sets/s",
                ),
            ],
        ),
        timeseries(
            "Inventory objects",
            "Objects in the exporter's in-memory inventory, by kind.",
            [(m("vsphere_inventory_objects", VC), "{{vcenter}} {{type}}")],
        ),
    )
    d.add(
        12,
        5,
        stat(
            "Scrape targets",
            "Prometheus' view of the exporter and the remediator (up).",
            [(f'up{{job=~"{EXPORTER_JOB}|{REMEDIATOR_JOB}"}}', "{{job}} {{instance}}")],
            mappings=UP_MAP,
            thresholds=UP_STEPS,
            color_mode="background",
        ),
        stat(
            "Exporter",
            "The exporter's version and how long rendering its last /metrics took.",
            [
                ("count by (version) (vsphere_exporter_build_info)", "version {{version}}"),
                ("max(vsphere_scrape_duration_seconds)", "render time"),
            ],
            text_mode="value_and_name",
            overrides=[column("render time", ("unit", "s"))],
        ),
    )
    return d
