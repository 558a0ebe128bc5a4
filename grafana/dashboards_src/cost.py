"""The Capacity and cost dashboard (vha-cost): monthly cost, savings if rightsized,
consolidation per cluster and the rightsizing findings of the recording rules.

docs/dashboards.md describes every panel.
"""

from __future__ import annotations

from .common import (
    CELL_BG,
    CELL_TEXT,
    HOST_LINK,
    OK_IF_ZERO,
    VAR_CLUSTER,
    VAR_VCENTER,
    VM_LINK,
    Board,
    Col,
    bargauge,
    column,
    stat,
    steps,
    table,
    timeseries,
)
from .promql import (
    CL,
    CLUSTER_KEY,
    IN_CLUSTER,
    VC,
    VM_KEY,
    m,
    only,
    paren,
    ratio,
    rule,
    rules_config,
    since,
    vm_labels,
    vms_in,
)

SNAPSHOT_OLD_DAYS = 3  # as vha report --snapshot-days
MONEY = "short"  # amounts in the currency of vsphere_cost_info, shown as 12.3 K
NO_COST = "the exporter's config has no cost: section"
YOUNG = "no VM has a finding, or the rules have less than their window (7 days) of data"
# rules/config.yml rightsizing: the recording rules' settings, quoted in descriptions.
MIN_COVERAGE = rules_config("rightsizing", "min_coverage_ratio", 0.8)
CPU_TARGET = rules_config("rightsizing", "cpu_target_ratio", 0.7)
MEMORY_TARGET = rules_config("rightsizing", "memory_target_ratio", 0.5)


def with_currency(expr: str) -> str:
    """Money series with the ``currency`` label of ``vsphere_cost_info`` joined in."""
    return f"{paren(expr)} * on () group_left (currency) max by (currency) (vsphere_cost_info)"


def vm_rule(name: str) -> str:
    """A per-VM recording rule of the selected vCenters and clusters."""
    return vms_in(m(name, VC))


def build() -> Board:
    d = Board(
        "vha-cost",
        "vSphere HA / Capacity and cost",
        "Monthly cost and the savings if rightsized, consolidation per cluster (vCPUs per "
        "core, VMs per host, hosts needed and freeable, N+1), and the VMs behind the "
        "savings: idle, oversized, powered off, old snapshots. From the rightsizing and cost "
        "recording rules (docs/performance.md), which judge a window of data (7 days).",
        [VAR_VCENTER, VAR_CLUSTER],
    )
    cost_m, savings = (
        rule("vsphere_cluster:cost_per_month", CL),
        rule("vsphere_cluster:savings_per_month", CL),
    )
    # No finding means nothing to save: 0 wherever there is a cost, not an empty cell.
    saved = f"{savings} or {cost_m} * 0"
    idle, oversized = vm_rule("vsphere_vm:idle"), vm_rule("vsphere_vm:oversized")
    off = vm_rule("vsphere_vm:powered_off:window")
    snapshot_age = since(m("vsphere_vm_snapshot_oldest_timestamp_seconds", VC))
    old_snapshots = vms_in(f"{snapshot_age} > {SNAPSHOT_OLD_DAYS * 86400}")
    failover = rule("vsphere_cluster:failover_capacity:ratio")

    d.row("Summary")
    d.add(
        3,
        4,
        stat(
            "Monthly cost / savings",
            "What the selected VMs cost per month (vCPUs and memory of powered-on VMs, "
            "storage of all), and what rightsizing every finding would save.",
            [
                (with_currency(f"sum({cost_m})"), "cost {{currency}}"),
                (with_currency(f"sum({savings}) or sum({cost_m}) * 0"), "savings {{currency}}"),
            ],
            unit=MONEY,
            text_mode="value_and_name",
            empty=NO_COST,
        ),
        stat(
            "Hosts that could be freed",
            "Hosts up minus the hosts needed to carry the p95 demand with N+1, summed over "
            "the clusters.",
            [(f"sum({rule('vsphere_cluster:hosts:freeable')}) or vector(0)", "")],
            decimals=0,
        ),
        stat(
            "Clusters short of N+1",
            "Clusters whose p95 demand would not fit on the hosts left after losing the "
            "largest one (failover capacity ratio above 1).",
            [(f"count({failover} > 1) or vector(0)", "")],
            thresholds=OK_IF_ZERO,
        ),
        stat(
            "Idle VMs",
            "Powered-on VMs with p95 CPU, network and disk all near zero over the window.",
            [(f"count({idle}) or vector(0)", "")],
            thresholds=steps(("green", None), ("orange", 1)),
        ),
        stat(
            "Oversized VMs",
            "Powered-on VMs given more vCPUs or memory than their p95 use needs.",
            [(f"count({oversized}) or vector(0)", "")],
            thresholds=steps(("green", None), ("orange", 1)),
        ),
        stat(
            "Powered off all window",
            "VMs powered off for the whole window: they still hold their storage.",
            [(f"count({off}) or vector(0)", "")],
            thresholds=steps(("green", None), ("orange", 1)),
        ),
        stat(
            f"Snapshots older than {SNAPSHOT_OLD_DAYS} days",
            "VMs whose oldest snapshot is older than that.",
            [(f"count({old_snapshots}) or vector(0)", "")],
            thresholds=steps(("green", None), ("orange", 1)),
        ),
        stat(
            "Data coverage",
            "Average share of the window's hours the VMs have performance samples for. VMs "
            f"below rightsizing.min_coverage_ratio ({MIN_COVERAGE:g}) are not judged: a young "
            "estate has no findings. 0 until a VM has samples at an hour of the window.",
            [(f"avg({vm_rule('vsphere_vm:perf_coverage:ratio')}) or vector(0)", "")],
            unit="percentunit",
            thresholds=steps(("orange", None), ("green", MIN_COVERAGE)),
        ),
    )

    d.row("Cost per cluster")
    d.add(
        24,
        7,
        table(
            "Cost and savings per cluster",
            "Monthly cost of each cluster's VMs (standalone hosts under an empty cluster), "
            "what rightsizing its findings would save, and that share of its cost.",
            [
                Col(with_currency(cost_m), "Monthly cost", "currency"),
                Col(saved, "Savings if rightsized"),
                Col(ratio(saved, cost_m), "Savings share"),
            ],
            key=CLUSTER_KEY,
            order=["vcenter", "cluster", "currency", "Monthly cost", "Savings if rightsized"],
            overrides=[
                column("Monthly cost", ("unit", MONEY)),
                column("Savings if rightsized", ("unit", MONEY)),
                column(
                    "Savings share",
                    ("unit", "percentunit"),
                    ("thresholds", steps(("green", None), ("orange", 0.1), ("red", 0.3))),
                    CELL_TEXT,
                ),
            ],
            sort="Monthly cost",
            desc=True,
            empty=NO_COST,
        ),
    )

    d.row("Consolidation and N+1")
    hosts_up = rule("vsphere_cluster:host_up:sum")
    needed = rule("vsphere_cluster:hosts:needed")
    freeable = rule("vsphere_cluster:hosts:freeable")
    vcpus_per_core = rule("vsphere_cluster:vcpus_per_core:ratio")
    vms_per_host = rule("vsphere_cluster:vms_per_host:ratio")
    failover_steps = steps(("green", None), ("orange", 0.9), ("red", 1))
    d.add(
        24,
        7,
        table(
            "Clusters",
            "Per cluster: hosts up (connected, powered on, not in maintenance), hosts needed "
            "to carry the p95 demand at capacity.max_utilization plus the HA failover level "
            "(at least 1), hosts that could be freed, the consolidation ratios, and the N+1 "
            "ratio: p95 demand against the capacity left after losing the largest host (red "
            "above 1: short of N+1).",
            [
                Col(hosts_up, "Hosts up"),
                Col(needed, "Hosts needed"),
                Col(freeable, "Hosts freeable"),
                Col(failover, "N+1 demand"),
                Col(m("vsphere_cluster_ha_failover_level", IN_CLUSTER), "HA failover level"),
                Col(vcpus_per_core, "vCPUs per core"),
                Col(vms_per_host, "VMs per host"),
            ],
            key=CLUSTER_KEY,
            order=["vcenter", "cluster", "Hosts up", "Hosts needed", "Hosts freeable"],
            overrides=[
                column(
                    "N+1 demand",
                    ("unit", "percentunit"),
                    ("thresholds", failover_steps),
                    CELL_BG,
                ),
                column("vCPUs per core", ("decimals", 2)),
                column("VMs per host", ("decimals", 1)),
            ],
            sort="cluster",
        ),
    )
    d.add(
        6,
        8,
        bargauge(
            "vCPUs per physical core",
            "Consolidation ratio: vCPUs of powered-on VMs per physical core of the hosts up. "
            "High ratios mean CPU contention (watch CPU ready), low ones idle hardware.",
            [(vcpus_per_core, "{{cluster}}")],
            thresholds=steps(("blue", None), ("green", 1), ("orange", 4), ("red", 8)),
        ),
        bargauge(
            "VMs per host",
            "Powered-on VMs per host up: how many VMs one host failure restarts.",
            [(vms_per_host, "{{cluster}}")],
        ),
        timeseries(
            "Failover capacity (N+1)",
            "p95 demand (the larger of CPU and memory) as a share of what the hosts left "
            "after losing the largest one may carry at capacity.max_utilization; above 1 the "
            "cluster could not absorb its largest host's failure.",
            [(failover, "{{cluster}}")],
            unit="percentunit",
            thresholds=failover_steps,
        ),
        timeseries(
            "Hosts up and needed",
            "Hosts up against the hosts needed for the p95 demand with N+1; the gap is what "
            "could be freed.",
            [(hosts_up, "{{cluster}} up"), (needed, "{{cluster}} needed")],
        ),
    )

    d.row("Findings")
    top_savings = f"topk(20, {vm_rule('vsphere_vm:savings_per_month')})"
    finding = " or ".join(
        f'label_replace({m(name, VC)}, "finding", "{text}", "", "")'
        for name, text in (
            ("vsphere_vm:idle", "idle"),
            ("vsphere_vm:oversized", "oversized"),
            ("vsphere_vm:powered_off:window", "powered off"),
        )
    )
    size_cols = [
        ("vCPUs", "vsphere_vm_cpu_count"),
        ("Recommended vCPUs", "vsphere_vm:cpu_count:recommended"),
        ("Memory", "vsphere_vm_memory_size_bytes"),
        ("Recommended memory", "vsphere_vm:memory_size_bytes:recommended"),
    ]
    size_overrides = [
        column("Memory", ("unit", "bytes")),
        column("Recommended memory", ("unit", "bytes")),
    ]
    links = [column("vm", VM_LINK), column("host", HOST_LINK)]
    d.add(
        24,
        9,
        table(
            "Top savings",
            "The 20 VMs whose rightsizing saves most per month, with the finding (idle: "
            "remove it; oversized: shrink it to the recommendation; powered off: remove it "
            "and its storage), its size now and the recommended one.",
            [
                Col(
                    vm_labels(with_currency(top_savings), "cluster, host"),
                    "Savings",
                    "cluster, host, currency",
                ),
                Col(only(finding, top_savings), None, "finding"),
                Col(only(vm_rule("vsphere_vm:cost_per_month"), top_savings), "Cost"),
                *[Col(only(m(metric, VC), top_savings), name) for name, metric in size_cols],
                Col(only(m("vsphere_vm_storage_committed_bytes", VC), top_savings), "Storage"),
            ],
            key=VM_KEY,
            order=["vm", "finding", "Savings", "Cost", "currency", "cluster", "host"],
            hide=["vcenter"],
            overrides=[
                column("Savings", ("unit", MONEY)),
                column("Cost", ("unit", MONEY)),
                column("Storage", ("unit", "bytes")),
                *size_overrides,
                *links,
            ],
            sort="Savings",
            desc=True,
            empty=f"{NO_COST}, or {YOUNG}",
        ),
    )
    p95 = [
        ("p95 CPU", "vsphere_vm:cpu_usage_ratio:p95", "percentunit"),
        ("p95 network", "vsphere_vm:network_bytes_per_second:p95", "Bps"),
        ("p95 disk", "vsphere_vm:disk_ops_per_second:p95", "iops"),
    ]
    d.add(
        12,
        9,
        table(
            "Idle VMs",
            "Powered-on VMs whose p95 CPU, network and disk over the window are all below "
            "the idle thresholds (rules/config.yml rightsizing): candidates for removal.",
            [
                Col(vm_labels(idle, "cluster, host"), None, "cluster, host"),
                *[Col(only(m(metric, VC), idle), name) for name, metric, _ in p95],
                Col(only(m("vsphere_vm_cpu_count", VC), idle), "vCPUs"),
                Col(only(m("vsphere_vm_memory_size_bytes", VC), idle), "Memory"),
            ],
            key=VM_KEY,
            order=["vm", "cluster", "host", *[name for name, _, _ in p95]],
            hide=["vcenter"],
            overrides=[
                *[column(name, ("unit", unit)) for name, _, unit in p95],
                *size_overrides,
                *links,
            ],
            sort="vm",
            empty=YOUNG,
        ),
        table(
            "Oversized VMs",
            "Powered-on VMs given more vCPUs or memory than their p95 use needs: the "
            f"recommendation keeps p95 CPU at {CPU_TARGET:.0%} of the vCPUs and p95 active "
            f"memory at {MEMORY_TARGET:.0%} of the memory (rules/config.yml rightsizing).",
            [
                Col(vm_labels(oversized, "cluster, host"), None, "cluster, host"),
                *[Col(only(m(metric, VC), oversized), name) for name, metric in size_cols],
                Col(only(m("vsphere_vm:cpu_usage_ratio:p95", VC), oversized), "p95 CPU"),
                Col(
                    only(m("vsphere_vm:memory_usage_ratio:p95", VC), oversized),
                    "p95 active memory",
                ),
            ],
            key=VM_KEY,
            order=["vm", "cluster", "host", *[name for name, _ in size_cols]],
            hide=["vcenter"],
            overrides=[
                column("p95 CPU", ("unit", "percentunit")),
                column("p95 active memory", ("unit", "percentunit")),
                *size_overrides,
                *links,
            ],
            sort="vm",
            empty=YOUNG,
        ),
        table(
            "Powered-off VMs",
            "VMs powered off at every hour of the window (and present at its start), with "
            "the storage they keep.",
            [
                Col(vm_labels(off, "cluster, host"), None, "cluster, host"),
                Col(only(m("vsphere_vm_storage_committed_bytes", VC), off), "Storage"),
                Col(only(m("vsphere_vm_snapshots", VC), off), "Snapshots"),
            ],
            key=VM_KEY,
            order=["vm", "cluster", "host", "Storage"],
            hide=["vcenter"],
            overrides=[column("Storage", ("unit", "bytes")), *links],
            sort="Storage",
            desc=True,
            empty="no VM was powered off for the whole window",
        ),
        table(
            f"Snapshots older than {SNAPSHOT_OLD_DAYS} days",
            "VMs with an old snapshot: snapshots grow with every write, slow the VM and fill "
            "datastores.",
            [
                Col(vm_labels(old_snapshots, "cluster, host"), "Oldest snapshot", "cluster, host"),
                Col(only(m("vsphere_vm_snapshots", VC), old_snapshots), "Snapshots"),
                Col(only(m("vsphere_vm_storage_committed_bytes", VC), old_snapshots), "Storage"),
            ],
            key=VM_KEY,
            order=["vm", "cluster", "host", "Oldest snapshot"],
            hide=["vcenter"],
            overrides=[
                column(
                    "Oldest snapshot",
                    ("unit", "dtdurations"),
                    ("thresholds", steps(("orange", None), ("red", 7 * 86400))),
                    CELL_TEXT,
                ),
                column("Storage", ("unit", "bytes")),
                *links,
            ],
            sort="Oldest snapshot",
            desc=True,
            empty=f"no snapshot is older than {SNAPSHOT_OLD_DAYS} days",
        ),
    )
    return d
