"""The Datastores dashboard (vha-datastore): capacity, free space and use over time, the VMs
with files on each datastore, and whether vCenter can reach it (issue 13).

Built from the datastore metrics the exporter serves (docs/metrics.md, "Datastores"),
coloured at the free-space alert's threshold (rules/config.yml ``datastores``). Datastore
series carry no datacenter: it is joined in from ``vsphere_datastore_info``, which the
``datacenter`` and ``datastore`` variables also read. docs/dashboards.md describes every panel.
"""

from __future__ import annotations

from .common import (
    CELL_TEXT,
    OK_IF_ZERO,
    VAR_DATACENTER_DS,
    VAR_DATASTORE,
    VAR_VCENTER,
    Board,
    Col,
    bargauge,
    bool_map,
    column,
    stat,
    steps,
    table,
    timeline,
    timeseries,
)
from .promql import DATASTORE, DATASTORE_INFO, DATASTORE_KEY, m, paren, ratio, rules_config

#: rules/config.yml datastores.free_space_min_ratio: VsphereDatastoreFreeSpaceLow's threshold.
FREE_MIN = rules_config("datastores", "free_space_min_ratio", 0.1)
USED_STEPS = steps(("green", None), ("orange", 1 - 2 * FREE_MIN), ("red", 1 - FREE_MIN))
FREE_STEPS = steps(("red", None), ("orange", FREE_MIN), ("green", 2 * FREE_MIN))
#: rules/config.yml health.datastore_overcommit_ratio: VsphereDatastoreOvercommitted's threshold.
OVERCOMMIT = rules_config("health", "datastore_overcommit_ratio", 1.5)
#: rules/config.yml performance.disk_latency_seconds: the disk latency alerts' threshold.
LATENCY = rules_config("performance", "disk_latency_seconds", 0.03)


def ds_in(expr: str) -> str:
    """Datastore series of the selected vCenters, datacenters and datastores."""
    info = m("vsphere_datastore_info", DATASTORE_INFO)
    return f"{paren(expr)} and on (vcenter, datastore_id) {info}"


def ds(metric: str) -> str:
    return ds_in(m(metric, DATASTORE))


def build() -> Board:
    d = Board(
        "vha-datastore",
        "vSphere HA / Datastores",
        "Datastores: capacity, free space and use over time, the VMs with files on each, and "
        "whether vCenter can reach them.",
        [VAR_VCENTER, VAR_DATACENTER_DS, VAR_DATASTORE],
    )
    cap, free = ds("vsphere_datastore_capacity_bytes"), ds("vsphere_datastore_free_bytes")
    cap_sel = m("vsphere_datastore_capacity_bytes", DATASTORE)
    free_sel = m("vsphere_datastore_free_bytes", DATASTORE)
    used = ds_in(f"{cap_sel} - {free_sel}")
    used_share = ds_in(f"1 - {free_sel} / {cap_sel}")
    free_share = ds_in(ratio(free_sel, cap_sel))
    vms = ds("vsphere_datastore_vms")
    accessible = ds("vsphere_datastore_accessible")
    pct_free = f"{FREE_MIN:.0%}"

    d.row("Summary")
    d.add(
        4,
        4,
        stat(
            "Datastores",
            "Selected datastores vCenter reports.",
            [(f"count({m('vsphere_datastore_info', DATASTORE_INFO)})", "")],
        ),
        stat(
            "Capacity",
            "Total capacity of the selected datastores.",
            [(f"sum({cap})", "")],
            unit="bytes",
        ),
        stat(
            "Free",
            "Free space left on the selected datastores.",
            [(f"sum({free})", "")],
            unit="bytes",
        ),
        stat(
            "Used",
            "Share of the selected datastores' total capacity in use.",
            [(f"1 - sum({free}) / sum({cap})", "")],
            unit="percentunit",
            thresholds=USED_STEPS,
            decimals=1,
        ),
        stat(
            "Lowest free share",
            f"Free space of the fullest selected datastore, as a share of its capacity; "
            f"VsphereDatastoreFreeSpaceLow fires below {pct_free}.",
            [(f"min({free_share})", "")],
            unit="percentunit",
            thresholds=FREE_STEPS,
            decimals=1,
        ),
        stat(
            "Inaccessible",
            "Selected datastores vCenter cannot reach (VsphereDatastoreInaccessible).",
            [(f"count(({accessible}) == 0) or vector(0)", "")],
            thresholds=OK_IF_ZERO,
        ),
    )
    d.add(
        24,
        8,
        table(
            "Datastores",
            "Every selected datastore: type, capacity, free space, use, the VMs with files on "
            f"it and whether it is accessible. Used turns red where less than {pct_free} is free.",
            [
                Col(m("vsphere_datastore_info", DATASTORE_INFO), None, "datacenter, type"),
                Col(cap, "Capacity"),
                Col(free, "Free"),
                Col(used_share, "Used"),
                Col(vms, "VMs"),
                Col(accessible, "Accessible"),
            ],
            key=DATASTORE_KEY,
            order=["vcenter", "datastore", "datacenter", "type", "Capacity", "Free", "Used"],
            overrides=[
                column("Capacity", ("unit", "bytes")),
                column("Free", ("unit", "bytes")),
                column(
                    "Used",
                    ("unit", "percentunit"),
                    ("decimals", 1),
                    ("thresholds", USED_STEPS),
                    CELL_TEXT,
                ),
                column("Accessible", ("mappings", bool_map("no", "yes")), CELL_TEXT),
            ],
            sort="Used",
            desc=True,
        ),
    )

    d.row("Space over time")
    d.add(
        8,
        8,
        timeseries(
            "Used share",
            f"Share of each datastore's capacity in use; the line is where less than {pct_free} "
            "is left (VsphereDatastoreFreeSpaceLow).",
            [(used_share, "{{datastore}}")],
            unit="percentunit",
            thresholds=steps(("green", None), ("red", 1 - FREE_MIN)),
        ),
        timeseries(
            "Free space",
            "Free space per datastore: a steady slope is growth, a cliff is a snapshot, a "
            "clone or a restore.",
            [(free, "{{datastore}}")],
            unit="bytes",
        ),
        timeseries(
            "Used space and capacity",
            "Used space per datastore, and the total capacity of the selected datastores "
            "(a step up is a datastore added or grown).",
            [(used, "{{datastore}}"), (f"sum({cap})", "capacity (all selected)")],
            unit="bytes",
        ),
    )
    provisioning_and_performance(d)

    d.row("VMs")
    d.add(
        12,
        8,
        bargauge(
            "VMs per datastore",
            "VMs with files on each datastore now (a VM with disks on two datastores counts on "
            "both): what a datastore outage would take down.",
            [(vms, "{{datastore}}")],
        ),
        timeseries(
            "VMs per datastore over time",
            "VMs with files on each datastore: Storage vMotion and new VMs show here.",
            [(vms, "{{datastore}}")],
        ),
    )

    d.row("State")
    d.add(
        24,
        5,
        timeline(
            "Accessible",
            "Whether vCenter could reach each datastore (summary.accessible) over time.",
            [(accessible, "{{datastore}}")],
            bool_map("inaccessible", "accessible"),
        ),
    )
    return d


def provisioning_and_performance(d: Board) -> None:
    """Overcommit (provisioned / capacity) and the per-datastore latency and operations the
    exporter builds from the hosts' performance samples (docs/metrics.md, vsphere_datastore_*:
    absent while performance collection is off)."""
    cap_sel = m("vsphere_datastore_capacity_bytes", DATASTORE)
    overcommit = ds_in(ratio(m("vsphere_datastore_provisioned_bytes", DATASTORE), cap_sel))
    over = f"{OVERCOMMIT:.0%}"
    d.row("Provisioning and performance")
    d.add(
        8,
        8,
        timeseries(
            "Provisioned / capacity",
            "Space promised to VMs (capacity - free + uncommitted thin-disk growth) per "
            "datastore, as a share of its capacity: above 100 % it is overcommitted; the line "
            f"is {over}, where VsphereDatastoreOvercommitted fires.",
            [(overcommit, "{{datastore}}")],
            unit="percentunit",
            thresholds=steps(("green", None), ("orange", 1.0), ("red", OVERCOMMIT)),
        ),
        timeseries(
            "Read latency",
            "Mean time a read of each datastore took, over the hosts using it weighted by "
            f"their reads (20 s samples); the line is the disk latency alerts' {LATENCY:g} s.",
            [(ds("vsphere_datastore_read_latency_seconds"), "{{datastore}}")],
            unit="s",
            thresholds=steps(("green", None), ("red", LATENCY)),
        ),
        timeseries(
            "Write latency",
            "Mean time a write to each datastore took, over the hosts using it weighted by "
            "their writes.",
            [(ds("vsphere_datastore_write_latency_seconds"), "{{datastore}}")],
            unit="s",
            thresholds=steps(("green", None), ("red", LATENCY)),
        ),
    )
    d.add(
        12,
        8,
        timeseries(
            "Reads per second",
            "Read operations per second on each datastore, summed over the hosts using it.",
            [(ds("vsphere_datastore_reads_per_second"), "{{datastore}}")],
            unit="iops",
        ),
        timeseries(
            "Writes per second",
            "Write operations per second on each datastore, summed over the hosts using it.",
            [(ds("vsphere_datastore_writes_per_second"), "{{datastore}}")],
            unit="iops",
        ),
    )
