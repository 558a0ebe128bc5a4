"""The Capacity and headroom dashboard (vha-capacity): failover capacity and headroom from
the recording rules of rules/recording.yml, the numbers the capacity alerts test.

docs/dashboards.md describes every panel.
"""

from __future__ import annotations

from .common import (
    CELL_BG,
    CELL_TEXT,
    HEADROOM,
    USE,
    VAR_CLUSTER,
    VAR_VCENTER,
    VM_LINK,
    Board,
    Col,
    bargauge,
    bool_map,
    column,
    stat,
    steps,
    table,
    timeseries,
)
from .promql import (
    CLUSTER_KEY,
    IN_CLUSTER,
    POWERED_OFF,
    VC,
    VM_KEY,
    cluster_sum,
    host_labels,
    hosts_in,
    m,
    max_utilization,
    powered_on,
    ratio,
    rule,
    state_label,
    vm_labels,
    vms_in,
)


def build() -> Board:
    d = Board(
        "vha-capacity",
        "vSphere HA / Capacity and headroom",
        "Cluster CPU and memory capacity against use, N+1 failover headroom (could the "
        "cluster restart the VMs of its largest host, or of its largest fault domain?), host "
        "balance, efficiency and datastores. Capacity and headroom come from the recording "
        "rules in rules/recording.yml, the numbers the capacity alerts test.",
        [VAR_VCENTER, VAR_CLUSTER],
    )
    limit = max_utilization()

    d.row("Cluster capacity")
    for res, unit, total, effective in (
        (
            "cpu",
            "hertz",
            "vsphere_cluster_cpu_capacity_hertz",
            "vsphere_cluster_effective_cpu_hertz",
        ),
        (
            "memory",
            "bytes",
            "vsphere_cluster_memory_capacity_bytes",
            "vsphere_cluster_effective_memory_bytes",
        ),
    ):
        base = "host_cpu_capacity_hertz" if res == "cpu" else "host_memory_capacity_bytes"
        used = "host_cpu_usage_hertz" if res == "cpu" else "host_memory_usage_bytes"
        d.add(
            12,
            8,
            timeseries(
                "CPU" if res == "cpu" else "Memory",
                f"Total {res} of all hosts, {res} vCenter counts as available to VMs on healthy "
                f"hosts (effective), capacity of the hosts that are up (connected, powered on, "
                f"not in maintenance), and what those hosts use.",
                [
                    (m(total, IN_CLUSTER), "{{cluster}} total"),
                    (m(effective, IN_CLUSTER), "{{cluster}} effective"),
                    (rule(f"vsphere_cluster:{base}:sum"), "{{cluster}} hosts up"),
                    (rule(f"vsphere_cluster:{used}:sum"), "{{cluster}} used"),
                ],
                unit=unit,
            ),
        )
    d.add(
        12,
        6,
        bargauge(
            "CPU used",
            "CPU the hosts use as a share of the capacity of the hosts that are up.",
            [(rule("vsphere_cluster:cpu_utilization:ratio"), "{{cluster}}")],
            unit="percentunit",
            thresholds=USE,
            max_value=1,
        ),
        bargauge(
            "Memory used",
            "Memory the hosts use as a share of the memory of the hosts that are up.",
            [(rule("vsphere_cluster:memory_utilization:ratio"), "{{cluster}}")],
            unit="percentunit",
            thresholds=USE,
            max_value=1,
        ),
    )

    d.row("Failover headroom (N+1)")
    headroom_cols = [
        ("CPU after largest host", "hertz", "vsphere_cluster:cpu_headroom_hertz:n_plus_1"),
        ("Memory after largest host", "bytes", "vsphere_cluster:memory_headroom_bytes:n_plus_1"),
        (
            "CPU after largest fault domain",
            "hertz",
            "vsphere_cluster:cpu_headroom_hertz:fault_domain",
        ),
        (
            "Memory after largest fault domain",
            "bytes",
            "vsphere_cluster:memory_headroom_bytes:fault_domain",
        ),
    ]
    policy = state_label(
        "vsphere_cluster_ha_admission_control_policy", "policy", "admission_control", IN_CLUSTER
    )
    d.add(
        24,
        8,
        table(
            "Could each cluster restart the VMs of its largest host / fault domain?",
            "Capacity of the hosts that are up, minus the largest host (or the largest fault "
            "domain), minus what the hosts use now. Green: the survivors can take every "
            "restarted VM. Red: the shortfall. Fault-domain columns stay empty without fault "
            "domains. Compare with the HA failover level (host failures the cluster is "
            "configured to tolerate).",
            [
                *[Col(rule(metric), name) for name, _, metric in headroom_cols],
                Col(rule("vsphere_cluster:host_up:sum"), "Hosts up"),
                Col(rule("vsphere_cluster:fault_domains:count"), "Fault domains"),
                Col(m("vsphere_cluster_ha_failover_level", IN_CLUSTER), "Failover level"),
                Col(policy, None, "admission_control"),
            ],
            key=CLUSTER_KEY,
            order=["vcenter", "cluster", *[name for name, _, _ in headroom_cols]],
            overrides=[
                column(name, ("unit", unit), ("thresholds", HEADROOM), CELL_BG)
                for name, unit, _ in headroom_cols
            ],
            sort="cluster",
        ),
    )
    need_thresholds = steps(("green", None), ("orange", limit * 0.9), ("red", limit))
    for res, base, used in (
        ("CPU", "host_cpu_capacity_hertz", "host_cpu_usage_hertz"),
        ("Memory", "host_memory_capacity_bytes", "host_memory_usage_bytes"),
    ):
        res_lower = "cpu" if res == "CPU" else "memory"
        total, use = rule(f"vsphere_cluster:{base}:sum"), rule(f"vsphere_cluster:{used}:sum")
        largest_host = rule(f"vsphere_cluster:{base}:max")
        largest_fd = rule(f"vsphere_cluster:{base.replace('host_', 'fault_domain_', 1)}:max")
        d.add(
            12,
            8,
            timeseries(
                f"{res} the survivors would need",
                f"The {res_lower} the cluster uses as a share of what is left after losing its "
                f"largest host or fault domain. Above {limit:g} (rules/config.yml "
                "capacity.max_utilization) the capacity alerts fire after their delay.",
                [
                    (ratio(use, f"{total} - {largest_host}"), "{{cluster}} without largest host"),
                    (
                        ratio(use, f"{total} - {largest_fd}"),
                        "{{cluster}} without largest fault domain",
                    ),
                ],
                unit="percentunit",
                thresholds=need_thresholds,
            ),
        )

    d.row("Hosts")
    host_cpu = ratio(
        m("vsphere_host_cpu_usage_hertz", VC), m("vsphere_host_cpu_capacity_hertz", VC)
    )
    host_mem = ratio(
        m("vsphere_host_memory_usage_bytes", VC), m("vsphere_host_memory_capacity_bytes", VC)
    )
    d.add(
        12,
        8,
        bargauge(
            "Host CPU utilisation",
            "CPU used as a share of each host's capacity; an unbalanced cluster loses more "
            "when its busiest host fails.",
            [(hosts_in(host_cpu), "{{host}}")],
            unit="percentunit",
            thresholds=USE,
            max_value=1,
        ),
        bargauge(
            "Host memory utilisation",
            "Memory used as a share of each host's physical memory.",
            [(hosts_in(host_mem), "{{host}}")],
            unit="percentunit",
            thresholds=USE,
            max_value=1,
        ),
    )

    d.row("Efficiency")
    vcpus = cluster_sum(
        powered_on(vm_labels(m("vsphere_vm_cpu_count", VC), "cluster_id, cluster", IN_CLUSTER))
    )
    cores = cluster_sum(
        host_labels(m("vsphere_host_cpu_cores", VC), "cluster_id, cluster", IN_CLUSTER)
    )
    vm_mem = cluster_sum(
        powered_on(
            vm_labels(m("vsphere_vm_memory_size_bytes", VC), "cluster_id, cluster", IN_CLUSTER)
        )
    )
    physical = m("vsphere_cluster_memory_capacity_bytes", IN_CLUSTER)
    off = f"({m('vsphere_vm_power_state', VC, POWERED_OFF)} == 1)"
    off_storage = f"{m('vsphere_vm_storage_committed_bytes', VC)} and on (vcenter, vm_id) {off}"
    d.add(
        8,
        7,
        bargauge(
            "vCPUs per physical core",
            "vCPUs of powered-on VMs per physical core: high ratios mean CPU contention, low "
            "ones idle hardware.",
            [(f"{vcpus} / on ({CLUSTER_KEY}) {cores}", "{{cluster}}")],
            thresholds=steps(("blue", None), ("green", 1), ("orange", 4), ("red", 8)),
        ),
        bargauge(
            "Memory configured / physical",
            "Configured memory of powered-on VMs per byte of physical memory: above 100 % the "
            "cluster relies on memory overcommitment.",
            [
                (
                    f"{vm_mem} / on ({CLUSTER_KEY}) {physical}",
                    "{{cluster}}",
                )
            ],
            unit="percentunit",
            thresholds=steps(("green", None), ("orange", 1), ("red", 1.5)),
        ),
        stat(
            "Powered-off VMs",
            "Powered-off VMs and the storage they keep: candidates for clean-up.",
            [
                (f"count({vms_in(off)}) or vector(0)", "VMs"),
                (f"sum({vms_in(off_storage)}) or vector(0)", "storage"),
            ],
            overrides=[column("storage", ("unit", "bytes"))],
            text_mode="value_and_name",
        ),
    )
    for title, metric, name, unit in (
        ("Top 10 VMs by CPU", "vsphere_vm_cpu_usage_hertz", "CPU", "hertz"),
        (
            "Top 10 VMs by memory consumed",
            "vsphere_vm_memory_consumed_bytes",
            "Memory consumed",
            "bytes",
        ),
    ):
        top = f"topk(10, {vm_labels(m(metric, VC), 'cluster, host')})"
        d.add(
            12,
            8,
            table(
                title,
                "The VMs using the most now. Click a VM for its detail.",
                [Col(top, name, "cluster, host")],
                key=VM_KEY,
                order=["vm", "host", "cluster", name],
                hide=["vcenter"],
                overrides=[column(name, ("unit", unit)), column("vm", VM_LINK)],
            ),
        )

    d.row("Datastores")
    d.add(
        24,
        8,
        table(
            "Datastores",
            "Capacity and free space of each datastore (VM files, snapshots, and the "
            "datastores vSphere HA uses for heartbeating). Filtered by vCenter only.",
            [
                Col(m("vsphere_datastore_info", VC), None, "datacenter, type"),
                Col(m("vsphere_datastore_capacity_bytes", VC), "Capacity"),
                Col(m("vsphere_datastore_free_bytes", VC), "Free"),
                Col(m("vsphere_datastore:free:ratio", VC), "Free %"),
                Col(m("vsphere_datastore_accessible", VC), "Accessible"),
                Col(m("vsphere_datastore_vms", VC), "VMs"),
            ],
            key="vcenter, datastore_id, datastore",
            order=["vcenter", "datastore", "datacenter", "type", "Capacity", "Free", "Free %"],
            overrides=[
                column("Capacity", ("unit", "bytes")),
                column("Free", ("unit", "bytes")),
                column(
                    "Free %",
                    ("unit", "percentunit"),
                    ("thresholds", steps(("red", None), ("orange", 0.1), ("green", 0.2))),
                    CELL_TEXT,
                ),
                column("Accessible", ("mappings", bool_map("no", "yes")), CELL_BG),
            ],
            sort="datastore",
        ),
    )
    return d
