"""The Performance dashboard (vha-performance): CPU ready and co-stop, memory pressure, disk
latency and dropped packets of hosts and VMs, coloured at the performance alerts' thresholds.

docs/dashboards.md describes every panel.
"""

from __future__ import annotations

from .common import (
    CELL_TEXT,
    HOST_LINK,
    USE,
    VAR_CLUSTER,
    VAR_HOST_ALL,
    VAR_VCENTER,
    VAR_VM_ALL,
    VM_LINK,
    Board,
    Col,
    column,
    stat,
    steps,
    table,
    timeseries,
)
from .promql import (
    HOST,
    VC,
    VM,
    VM_CHOICE,
    VM_KEY,
    hosts_in,
    m,
    only,
    rules_config,
    since,
    vm_labels,
    vms_in,
)

# Thresholds of the performance panels: those of the performance alerts (rules/config.yml
# performance), so a panel turns orange where an alert would start its `for` clock. Ready and
# co-stop are per vCPU (docs/performance.md), so one scale fits every VM size.
CPU_READY_HIGH = rules_config("performance", "cpu_ready_ratio", 0.05)
COSTOP_HIGH = rules_config("performance", "cpu_costop_ratio", 0.03)
DISK_LATENCY_HIGH = rules_config("performance", "disk_latency_seconds", 0.03)
DROPPED_HIGH = rules_config("performance", "dropped_packets_per_second", 1)
SWAP_IN_HIGH = rules_config("performance", "swap_in_bytes_per_second", 0)
TOP = 10  # series per "top N" panel

READY_STEPS = steps(("green", None), ("orange", CPU_READY_HIGH), ("red", 2 * CPU_READY_HIGH))
COSTOP_STEPS = steps(("green", None), ("orange", COSTOP_HIGH), ("red", 2 * COSTOP_HIGH))
LATENCY_STEPS = steps(
    ("green", None), ("orange", DISK_LATENCY_HIGH), ("red", 2 * DISK_LATENCY_HIGH)
)
SWAP_IN_STEPS = steps(("green", None), ("red", SWAP_IN_HIGH or 1e-9))

# Why a performance panel may be empty: a real vCenter reports no disk counters without
# datastore I/O. Counters that are 0 (co-stop, memory pressure, drops) are sent as zeros, by
# vCenter and by the simulator (sim/perfzeros.go), so their panels need no marker.
NO_DISK = "no host or VM reports datastore I/O"


def host_perf(metric: str, cond: str = "") -> str:
    """A host performance metric of the selected hosts; ``cond`` (``> 0``) applies before the
    join, where PromQL's precedence would otherwise bind it to the info metric."""
    return hosts_in(f"{m(metric, HOST)} {cond}".strip())


def vm_perf(metric: str, cond: str = "") -> str:
    """A VM performance metric of the selected VMs (narrowed by cluster and host)."""
    return vms_in(f"{m(metric, VM)} {cond}".strip(), VM_CHOICE)


def vm_perf_sum(a: str, b: str) -> str:
    """``a + b`` per VM (same labels), of the selected VMs."""
    return vms_in(f"{m(a, VM)} + {m(b, VM)}", VM_CHOICE)


def top(expr: str, k: int = TOP) -> str:
    return f"topk({k}, {expr})"


def build() -> Board:
    d = Board(
        "vha-performance",
        "vSphere HA / Performance",
        "vCenter's real-time performance counters of hosts and VMs (docs/performance.md): CPU "
        "usage, ready and co-stop, memory pressure, disk latency and operations, network, "
        "the worst VMs now, and the health of the collector.",
        [VAR_VCENTER, VAR_CLUSTER, VAR_HOST_ALL, VAR_VM_ALL],
    )
    ready = vm_perf("vsphere_vm_cpu_ready_ratio")
    costop = vm_perf("vsphere_vm_cpu_costop_ratio")
    swap_in = vm_perf("vsphere_vm_memory_swap_in_bytes_per_second")
    read_lat = vm_perf("vsphere_vm_disk_read_latency_seconds")
    write_lat = vm_perf("vsphere_vm_disk_write_latency_seconds")

    d.row("Summary")
    high_ready = vm_perf("vsphere_vm_cpu_ready_ratio", f"> {CPU_READY_HIGH:g}")
    swapping = vm_perf("vsphere_vm_memory_swap_in_bytes_per_second", f"> {SWAP_IN_HIGH:g}")
    dropping = host_perf("vsphere_host_network_dropped_packets_per_second", f"> {DROPPED_HIGH:g}")
    slow = f"> {DISK_LATENCY_HIGH:g}"
    slow_disk = vms_in(
        f"{m('vsphere_vm_disk_read_latency_seconds', VM)} {slow} "
        f"or {m('vsphere_vm_disk_write_latency_seconds', VM)} {slow}",
        VM_CHOICE,
    )
    d.add(
        4,
        4,
        stat(
            "Hosts sampled",
            "Selected hosts with a performance sample (connected and powered on).",
            [(f"count({host_perf('vsphere_host_cpu_usage_ratio')}) or vector(0)", "")],
        ),
        stat(
            "VMs sampled",
            "Selected VMs with a performance sample (powered on, performance.vms on).",
            [(f"count({vm_perf('vsphere_vm_cpu_usage_ratio')}) or vector(0)", "")],
        ),
        stat(
            "VMs with high CPU ready",
            f"VMs whose vCPUs waited for a physical CPU more than {CPU_READY_HIGH:.0%} of the "
            "last sample: the host is CPU-contended.",
            [(f"count({high_ready}) or vector(0)", "")],
            thresholds=steps(("green", None), ("orange", 1)),
        ),
        stat(
            "VMs swapping in",
            "VMs whose memory is being read back from hypervisor swap faster than the swapping "
            f"alerts' {SWAP_IN_HIGH / 1024:g} KiB/s now: the host ran out of memory, and the "
            "guest waits on disk.",
            [(f"count({swapping}) or vector(0)", "")],
            thresholds=steps(("green", None), ("red", 1)),
        ),
        stat(
            "VMs with slow disks",
            f"VMs whose mean read or write latency is above {DISK_LATENCY_HIGH * 1000:g} ms.",
            [(f"count({slow_disk}) or vector(0)", "")],
            thresholds=steps(("green", None), ("orange", 1)),
        ),
        stat(
            "Hosts dropping packets",
            f"Hosts that dropped more than {DROPPED_HIGH:g} packets per second (received plus "
            "transmitted) in the last sample.",
            [(f"count({dropping}) or vector(0)", "")],
            thresholds=steps(("green", None), ("orange", 1)),
        ),
    )

    d.row("CPU")
    d.add(
        12,
        8,
        timeseries(
            f"Host CPU usage (top {TOP})",
            "CPU in use as a share of each host's capacity.",
            [(top(host_perf("vsphere_host_cpu_usage_ratio")), "{{host}}")],
            unit="percentunit",
            thresholds=USE,
        ),
        timeseries(
            f"Host CPU ready (top {TOP})",
            "Share of time the vCPUs of the host's VMs were ready to run but not scheduled, "
            f"averaged per vCPU. Above {CPU_READY_HIGH:.0%} the VMs feel it.",
            [(top(host_perf("vsphere_host_cpu_ready_ratio")), "{{host}}")],
            unit="percentunit",
            thresholds=READY_STEPS,
        ),
        timeseries(
            f"VM CPU ready (top {TOP})",
            "Share of time a vCPU of the VM was ready to run but not scheduled (per vCPU). "
            "High ready with low host usage points to CPU limits or too many vCPUs.",
            [(top(ready), "{{vm}}")],
            unit="percentunit",
            thresholds=READY_STEPS,
        ),
        timeseries(
            f"VM co-stop (top {TOP})",
            "Share of time a vCPU was stopped so the VM's other vCPUs could catch up (per "
            "vCPU): a VM with more vCPUs than it uses. Fewer vCPUs usually help.",
            [(top(costop), "{{vm}}")],
            unit="percentunit",
            thresholds=COSTOP_STEPS,
        ),
    )

    d.row("Memory")
    reclaimed = [
        ("balloon", "memory_balloon_bytes"),
        ("swapped", "memory_swapped_bytes"),
        ("compressed", "memory_compressed_bytes"),
    ]
    d.add(
        12,
        8,
        timeseries(
            f"Host memory (top {TOP})",
            "Memory the host's VMs actively use, and memory consumed by the VMs and the "
            "hypervisor.",
            [
                (top(host_perf("vsphere_host_memory_active_bytes")), "{{host}} active"),
                (top(host_perf("vsphere_host_memory_consumed_bytes")), "{{host}} consumed"),
            ],
            unit="bytes",
        ),
        timeseries(
            f"VM active memory (top {TOP})",
            "Memory the guest actively uses, as the hypervisor estimates it (20 s average).",
            [(top(vm_perf("vsphere_vm_memory_active_bytes")), "{{vm}}")],
            unit="bytes",
        ),
        timeseries(
            "Ballooned, swapped and compressed memory",
            "Memory the hypervisor reclaimed from VMs, per host and for the top VMs: "
            "ballooning is mild, compression worse, swapping the worst.",
            [
                *[
                    (host_perf(f"vsphere_host_{metric}"), f"{{{{host}}}} {what}")
                    for what, metric in reclaimed
                ],
                *[
                    (top(vm_perf(f"vsphere_vm_{metric}")), f"VM {{{{vm}}}} {what}")
                    for what, metric in reclaimed
                ],
            ],
            unit="bytes",
        ),
        timeseries(
            "Swap-in rate",
            "Memory read back from hypervisor swap per second, per host and for the top VMs: "
            "the guest waits on disk for its own memory.",
            [
                (host_perf("vsphere_host_memory_swap_in_bytes_per_second"), "{{host}}"),
                (top(swap_in), "VM {{vm}}"),
            ],
            unit="Bps",
        ),
    )

    d.row("Disk")
    d.add(
        12,
        8,
        timeseries(
            "Disk latency",
            "Mean read and write latency over the datastores, weighted by operations (what an "
            f"average I/O waited), per host and for the top {TOP} VMs.",
            [
                (top(host_perf("vsphere_host_disk_read_latency_seconds")), "{{host}} read"),
                (top(host_perf("vsphere_host_disk_write_latency_seconds")), "{{host}} write"),
                (top(read_lat), "VM {{vm}} read"),
                (top(write_lat), "VM {{vm}} write"),
            ],
            unit="s",
            thresholds=LATENCY_STEPS,
            empty=NO_DISK,
        ),
        timeseries(
            "Disk operations",
            f"Read and write operations per second over all datastores, per host and for the "
            f"top {TOP} VMs (reads + writes).",
            [
                (top(host_perf("vsphere_host_disk_reads_per_second")), "{{host}} reads"),
                (top(host_perf("vsphere_host_disk_writes_per_second")), "{{host}} writes"),
                (
                    top(
                        vm_perf_sum(
                            "vsphere_vm_disk_reads_per_second", "vsphere_vm_disk_writes_per_second"
                        )
                    ),
                    "VM {{vm}}",
                ),
            ],
            unit="iops",
            empty=NO_DISK,
        ),
    )

    d.row("Network")
    d.add(
        8,
        8,
        timeseries(
            f"Host network throughput (top {TOP})",
            "Data received and transmitted by each host.",
            [
                (
                    top(host_perf("vsphere_host_network_received_bytes_per_second")),
                    "{{host}} received",
                ),
                (
                    top(host_perf("vsphere_host_network_transmitted_bytes_per_second")),
                    "{{host}} transmitted",
                ),
            ],
            unit="Bps",
        ),
        timeseries(
            f"VM network throughput (top {TOP})",
            "Data received plus transmitted by each VM.",
            [
                (
                    top(
                        vm_perf_sum(
                            "vsphere_vm_network_received_bytes_per_second",
                            "vsphere_vm_network_transmitted_bytes_per_second",
                        )
                    ),
                    "{{vm}}",
                )
            ],
            unit="Bps",
        ),
        timeseries(
            "Dropped packets",
            f"Packets dropped per second (received plus transmitted), per host and for the "
            f"top {TOP} VMs: full receive buffers in the guest, or a saturated uplink.",
            [
                (host_perf("vsphere_host_network_dropped_packets_per_second"), "{{host}}"),
                (top(vm_perf("vsphere_vm_network_dropped_packets_per_second")), "VM {{vm}}"),
            ],
            unit="pps",
        ),
    )

    d.row("Worst VMs now")
    worst = (
        "group by (vcenter, vm_id, vm) ("
        + " or ".join(top(x) for x in (ready, read_lat, write_lat, swap_in))
        + ")"
    )
    worst_cols = [
        ("CPU ready", ready, "percentunit", READY_STEPS),
        ("Co-stop", costop, "percentunit", COSTOP_STEPS),
        ("Read latency", read_lat, "s", LATENCY_STEPS),
        ("Write latency", write_lat, "s", LATENCY_STEPS),
        ("Swap-in", swap_in, "Bps", SWAP_IN_STEPS),
    ]
    d.add(
        24,
        9,
        table(
            "Worst VMs now",
            f"The top {TOP} VMs by CPU ready, by read latency, by write latency and by swap-in "
            "rate, with all four (and co-stop) side by side. Click a VM for its detail.",
            [
                Col(vm_labels(worst, "cluster, host", VM_CHOICE), None, "cluster, host"),
                *[Col(only(expr, worst), name) for name, expr, _, _ in worst_cols],
            ],
            key=VM_KEY,
            order=["vm", "host", "cluster", *[name for name, _, _, _ in worst_cols]],
            hide=["vcenter"],
            overrides=[
                column("vm", VM_LINK),
                column("host", HOST_LINK),
                *[
                    column(name, ("unit", unit), ("thresholds", th), CELL_TEXT)
                    for name, _, unit, th in worst_cols
                ],
            ],
            sort="CPU ready",
            desc=True,
            empty="latency cells stay empty where vCenter reports no datastore I/O",
        ),
    )

    d.row("Collector")
    last = m("vsphere_perf_last_success_timestamp_seconds", VC)
    d.add(
        6,
        7,
        timeseries(
            "Collection duration",
            "How long the last collection of every host and VM took; a collection longer "
            "than performance.interval_seconds (20 s) delays the next one.",
            [(m("vsphere_perf_collection_duration_seconds", VC), "{{vcenter}}")],
            unit="s",
        ),
        timeseries(
            "Collection errors",
            "Failed logins, counter look-ups and QueryPerf calls, by reason, per interval; the "
            "collector logs in again at the next round.",
            [
                (
                    "sum by (vcenter, reason) "
                    f"(increase({m('vsphere_perf_errors_total', VC)}[$__rate_interval]))",
                    "{{vcenter}} {{reason}}",
                )
            ],
            bars=True,
        ),
        timeseries(
            "Time since the last successful collection",
            "Seconds since a collection finished without a failed query. Values older than "
            "three intervals (at least 60 s) are no longer served.",
            [(since(last), "{{vcenter}}")],
            unit="s",
            thresholds=steps(("green", None), ("orange", 60), ("red", 300)),
        ),
        timeseries(
            "Sampled objects and counters",
            "Hosts and VMs with a sample in the last collection, and the vSphere counters "
            "resolved on the vCenter.",
            [
                (m("vsphere_perf_entities", VC), "{{vcenter}} {{type}}s"),
                (m("vsphere_perf_counters", VC), "{{vcenter}} counters"),
            ],
        ),
    )
    return d
