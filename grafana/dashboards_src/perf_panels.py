"""The performance-counter panels of the Host detail and VM detail dashboards (issue 13): one
host's or one VM's CPU ready, co-stop, memory pressure, disk latency and operations, network
throughput and drops, on the page users open for that object -- not only in the top-10 lists
of the Performance dashboard.

Counters and units are those of docs/performance.md; colours and threshold lines are the
performance alerts' thresholds (rules/config.yml ``performance``, read by performance.py), so a
panel turns orange where an alert would start its ``for`` clock. Co-stop, memory pressure and
drops are 0 on a healthy estate and vCenter (and the simulator, sim/perfzeros.go) sends the
zeros, so those panels always have data; only the disk panels carry the "No data is normal"
marker. docs/dashboards.md describes every panel.
"""

from __future__ import annotations

from .common import Panel, column, steps, timeseries
from .performance import (
    COSTOP_STEPS,
    DROPPED_HIGH,
    LATENCY_STEPS,
    NO_DISK,
    READY_STEPS,
)
from .promql import m

_WHOSE = {"host": "the host's VMs", "vm": "the VM"}
# Operations and rates share a panel with latencies and sizes, on a second axis.
_RIGHT = ("custom.axisPlacement", "right")


def _memory_pressure(kind: str, sel: str, who: str) -> Panel:
    """Ballooned and swapped memory (bytes) and the swap-in rate (bytes/s, right axis)."""
    return timeseries(
        "Ballooning and swapping",
        f"Memory the hypervisor reclaimed from {_WHOSE[kind]}: ballooned (the guest gave it "
        "back, mild) and swapped (on disk, bad), and the rate at which swapped memory is read "
        "back (right axis): the guest waits on disk for its own memory. The swapping alerts "
        "fire on a sustained swap-in rate, not on any at all (docs/alerts.md).",
        [
            (m(f"vsphere_{kind}_memory_balloon_bytes", sel), f"{who} ballooned"),
            (m(f"vsphere_{kind}_memory_swapped_bytes", sel), f"{who} swapped"),
            (m(f"vsphere_{kind}_memory_swap_in_bytes_per_second", sel), f"{who} swap-in rate"),
        ],
        unit="bytes",
        overrides=[column(".* swap-in rate$", ("unit", "Bps"), _RIGHT, regex=True)],
    )


def _disk(kind: str, sel: str, who: str) -> Panel:
    """Read and write latency (seconds) with read and write operations (right axis)."""
    return timeseries(
        "Disk latency and operations",
        "Mean read and write latency over the datastores, weighted by operations (what an "
        "average I/O waited), and read and write operations per second (right axis), from "
        "the datastore counters.",
        [
            (m(f"vsphere_{kind}_disk_read_latency_seconds", sel), f"{who} read latency"),
            (m(f"vsphere_{kind}_disk_write_latency_seconds", sel), f"{who} write latency"),
            (m(f"vsphere_{kind}_disk_reads_per_second", sel), f"{who} reads"),
            (m(f"vsphere_{kind}_disk_writes_per_second", sel), f"{who} writes"),
        ],
        unit="s",
        thresholds=LATENCY_STEPS,
        overrides=[column(".* (reads|writes)$", ("unit", "iops"), _RIGHT, regex=True)],
        empty=NO_DISK,
    )


def _network(kind: str, sel: str, who: str) -> list[Panel]:
    return [
        timeseries(
            "Network throughput",
            "Bytes received and transmitted per second over all of its network adapters.",
            [
                (m(f"vsphere_{kind}_network_received_bytes_per_second", sel), f"{who} received"),
                (
                    m(f"vsphere_{kind}_network_transmitted_bytes_per_second", sel),
                    f"{who} transmitted",
                ),
            ],
            unit="Bps",
        ),
        timeseries(
            "Dropped packets",
            "Packets dropped per second, received plus transmitted: a full receive ring in the "
            "guest, or a saturated uplink.",
            [(m(f"vsphere_{kind}_network_dropped_packets_per_second", sel), f"{who}")],
            unit="pps",
            thresholds=steps(("green", None), ("orange", DROPPED_HIGH)),
        ),
    ]


def host_panels(sel: str) -> list[Panel]:
    """One host's performance panels (``sel`` selects the host's series)."""
    who = "{{host}}"
    cpu = timeseries(
        "CPU usage and ready",
        "CPU in use as a share of the host's capacity, and CPU ready: the share of time the "
        "vCPUs of its VMs were ready to run but not scheduled, averaged per vCPU (the threshold "
        "lines are those of ready).",
        [
            (m("vsphere_host_cpu_usage_ratio", sel), f"{who} usage"),
            (m("vsphere_host_cpu_ready_ratio", sel), f"{who} ready"),
        ],
        unit="percentunit",
        thresholds=READY_STEPS,
    )
    return [
        cpu,
        _memory_pressure("host", sel, who),
        _disk("host", sel, who),
        *_network("host", sel, who),
    ]


def vm_panels(sel: str) -> list[Panel]:
    """One VM's performance panels (``sel`` selects the VM's series)."""
    who = "{{vm}}"
    cpu = timeseries(
        "CPU usage and ready",
        "CPU in use as a share of the VM's vCPUs, and CPU ready: the share of time a vCPU was "
        "ready to run but not scheduled (per vCPU, so one scale fits every VM size).",
        [
            (m("vsphere_vm_cpu_usage_ratio", sel), f"{who} usage"),
            (m("vsphere_vm_cpu_ready_ratio", sel), f"{who} ready"),
        ],
        unit="percentunit",
        thresholds=READY_STEPS,
    )
    costop = timeseries(
        "Co-stop",
        "Share of time a vCPU was stopped so the VM's other vCPUs could catch up (per vCPU): "
        "a VM with more vCPUs than it uses. Fewer vCPUs usually help.",
        [(m("vsphere_vm_cpu_costop_ratio", sel), who)],
        unit="percentunit",
        thresholds=COSTOP_STEPS,
    )
    return [
        cpu,
        costop,
        _memory_pressure("vm", sel, who),
        _disk("vm", sel, who),
        *_network("vm", sel, who),
    ]
