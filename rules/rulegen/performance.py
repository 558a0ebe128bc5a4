"""The performance group: hosts and VMs that run, but slowly.

Built on the exporter's performance counters rather than on vCenter's state, so it has its
own ``performance:`` section in the config, its own averaging window and its own staleness
alert (the counters come from a separate, slower collection than the inventory). Every VM
counts here, HA-protected or not; only VsphereHostPerformanceDegraded may remediate, and
only when ``performance.host_degraded_remediation`` says so.
"""

from __future__ import annotations

from .config import Duration, Performance, Settings
from .model import Alert
from .promql import (
    HOST,
    HOST_,
    VM,
    VM_ON_MAINTENANCE_HOST,
    VM_PLACEMENT,
    degraded_action,
    host_alert_expr,
    indent,
    pct,
    q,
)

GROUP = "vsphere-performance"


def vm_perf_expr(value: str) -> str:
    """``value`` (one series per vcenter/vm_id/vm, perhaps a ``direction``) for VMs not on a
    host in maintenance mode, with the VM's placement joined in from ``vsphere_vm_info``.
    Unlike the failure alerts, every VM counts, HA-protected or not."""
    return (
        "(\n"
        f"{indent(value)}\n"
        f"  unless on (vcenter, vm_id) {VM_ON_MAINTENANCE_HOST}\n"
        ")\n"
        "* on (vcenter, vm_id) group_left (host_id, host, cluster, fault_domain)\n"
        f"  {VM_PLACEMENT}"
    )


_PERF_ID = {"vm": "vcenter, vm_id, vm", "host": "vcenter, host_id, host"}


def _perf(kind: str, metric: str, op: str, threshold: float, window: Duration) -> str:
    """``<op>_over_time`` of a performance counter over ``window``, per object, above
    ``threshold`` (aggregated so two scrapes of one exporter count once)."""
    return (
        f"max by ({_PERF_ID[kind]}) ({op}_over_time(vsphere_{kind}_{metric}[{window.text}]))"
        f" > {threshold:g}"
    )


def iec(n: float) -> str:
    """Bytes as the runbooks write them: ``256 KiB``, ``1 GiB``, ``0 B``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:g} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _disk_latency(kind: str, p: Performance) -> str:
    """Read or write latency above the threshold, told apart by a ``direction`` label
    (in parentheses: ``or`` binds more loosely than the ``unless`` that follows)."""
    either = "\nor\n".join(
        f"label_replace(\n"
        f"  {_perf(kind, f'disk_{d}_latency_seconds', 'avg', p.disk_latency_seconds, p.average_over)},\n"  # noqa: E501
        f'  "direction", "{d}", "", ""\n'
        ")"
        for d in ("read", "write")
    )
    return f"(\n{indent(either)}\n)"


def _datastore_latency(p: Performance) -> str:
    """A datastore's read or write latency (exporter/perf_datastores.py: the hosts' mean,
    weighted by their operations) above the threshold, by ``direction``."""
    return "\nor\n".join(
        "label_replace(\n"
        "  max by (vcenter, datastore_id, datastore) "
        f"(avg_over_time(vsphere_datastore_{d}_latency_seconds[{p.average_over.text}]))"
        f" > {p.disk_latency_seconds:g},\n"
        f'  "direction", "{d}", "", ""\n'
        ")"
        for d in ("read", "write")
    )


def alerts(s: Settings) -> list[Alert]:
    p = s.perf
    avg = p.average_over
    over = f"averaged over {avg.text}"
    ready = _perf("host", "cpu_ready_ratio", "avg", p.cpu_ready_ratio, avg)
    swap = _perf("host", "memory_swap_in_bytes_per_second", "avg", p.swap_in_bytes_per_second, avg)
    read = _perf("host", "disk_read_latency_seconds", "avg", p.disk_latency_seconds, avg)
    write = _perf("host", "disk_write_latency_seconds", "avg", p.disk_latency_seconds, avg)
    conditions = "\nor\n".join(
        f'label_replace({c}, "condition", "{name}", "", "")'
        for name, c in (
            ("cpu_ready", ready),
            ("swapping", swap),
            ("disk_read_latency", read),
            ("disk_write_latency", write),
        )
    )

    def vm(name: str, expr: str, for_: Duration, summary: str, description: str) -> Alert:
        return Alert(
            name=name,
            group=GROUP,
            scope="vm",
            expr=vm_perf_expr(expr),
            for_=for_,
            severity="warning",
            remediation="none",
            summary=summary,
            description=description,
        )

    def host(name: str, expr: str, for_: Duration, summary: str, description: str) -> Alert:
        return Alert(
            name=name,
            group=GROUP,
            scope="host",
            expr=host_alert_expr(expr),
            for_=for_,
            severity="warning",
            remediation="none",
            summary=summary,
            description=description,
        )

    pct_ready, pct_costop = pct(p.cpu_ready_ratio), pct(p.cpu_costop_ratio)
    swap_limit = f"{iec(p.swap_in_bytes_per_second)}/s"
    latency = f"{p.disk_latency_seconds * 1000:g} ms"
    drops = f"{p.dropped_packets_per_second:g} packets/s"
    return [
        vm(
            "VsphereVmCpuReadyHigh",
            _perf("vm", "cpu_ready_ratio", "avg", p.cpu_ready_ratio, avg),
            p.cpu_ready_for,
            "VM {{ $labels.vm }} waits for CPU ({{ $value | humanizePercentage }} ready)",
            f"The vCPUs of {VM} have been ready to run but not scheduled "
            f"{{{{ $value | humanizePercentage }}}} of the time ({over}; limit {pct_ready}) for "
            f"{p.cpu_ready_for.text}: its host's CPUs are overcommitted. Nothing is done "
            "automatically.",
        ),
        host(
            "VsphereHostCpuReadyHigh",
            ready,
            p.cpu_ready_for,
            "VMs on host {{ $labels.host }} wait for CPU ({{ $value | humanizePercentage }} ready)",
            f"The vCPUs of the VMs on {HOST} have been ready to run but not scheduled "
            f"{{{{ $value | humanizePercentage }}}} of the time ({over}; limit "
            f"{pct_ready}) for {p.cpu_ready_for.text}. Nothing is done automatically.",
        ),
        vm(
            "VsphereVmCpuCostopHigh",
            _perf("vm", "cpu_costop_ratio", "avg", p.cpu_costop_ratio, avg),
            p.cpu_costop_for,
            "VM {{ $labels.vm }} is held back by co-stop ({{ $value | humanizePercentage }})",
            f"The vCPUs of {VM} have been stopped to co-schedule the VM's other vCPUs "
            f"{{{{ $value | humanizePercentage }}}} of the time ({over}; limit {pct_costop}) for "
            f"{p.cpu_costop_for.text}: it probably has more vCPUs than it uses. Nothing is done "
            "automatically.",
        ),
        vm(
            "VsphereVmMemorySwapping",
            _perf("vm", "memory_swap_in_bytes_per_second", "avg", p.swap_in_bytes_per_second, avg),
            p.swapping_for,
            "VM {{ $labels.vm }} is swapping from hypervisor swap",
            f"The hypervisor has been reading memory of {VM} back from swap at "
            f"{{{{ $value | humanize1024 }}}}B/s ({over}; limit {swap_limit}) for "
            f"{p.swapping_for.text}: its host is short of memory and the VM runs at disk speed. "
            "Nothing is done automatically.",
        ),
        host(
            "VsphereHostMemorySwapping",
            swap,
            p.swapping_for,
            "Host {{ $labels.host }} is swapping VM memory",
            f"{HOST_} has been reading VM memory back from swap at "
            f"{{{{ $value | humanize1024 }}}}B/s ({over}; limit {swap_limit}) for "
            f"{p.swapping_for.text}: it is short of memory. Nothing is done automatically.",
        ),
        host(
            "VsphereHostMemoryBallooning",
            _perf("host", "memory_balloon_bytes", "min", p.balloon_bytes, avg),
            p.ballooning_for,
            "Host {{ $labels.host }} is reclaiming VM memory by ballooning",
            f"Balloon drivers on {HOST} have held at least {{{{ $value | humanize1024 }}}}B of "
            f"VM memory throughout the last {avg.text} (limit {iec(p.balloon_bytes)}), for "
            f"{p.ballooning_for.text}: the host is under memory pressure. Nothing is done "
            "automatically.",
        ),
        vm(
            "VsphereVmDiskLatencyHigh",
            _disk_latency("vm", p),
            p.disk_latency_for,
            "VM {{ $labels.vm }} waits for disk {{ $labels.direction }}s "
            "({{ $value | humanizeDuration }})",
            f"The mean {{{{ $labels.direction }}}} latency of {VM} has been "
            f"{{{{ $value | humanizeDuration }}}} ({over}; limit {latency}) for "
            f"{p.disk_latency_for.text}. Nothing is done automatically.",
        ),
        host(
            "VsphereHostDiskLatencyHigh",
            _disk_latency("host", p),
            p.disk_latency_for,
            "Host {{ $labels.host }} waits for disk {{ $labels.direction }}s "
            "({{ $value | humanizeDuration }})",
            f"The mean {{{{ $labels.direction }}}} latency over the datastores of {HOST} has "
            f"been {{{{ $value | humanizeDuration }}}} ({over}; limit {latency}) for "
            f"{p.disk_latency_for.text}. Nothing is done automatically.",
        ),
        Alert(
            name="VsphereDatastoreLatencyHigh",
            group=GROUP,
            scope="datastore",
            expr=_datastore_latency(p),
            for_=p.disk_latency_for,
            severity="warning",
            remediation="none",
            summary="Datastore {{ $labels.datastore }} is slow to {{ $labels.direction }}s "
            "({{ $value | humanizeDuration }})",
            description="The mean {{ $labels.direction }} latency of datastore "
            "{{ $labels.datastore }} (vCenter {{ $labels.vcenter }}), over the hosts using it, "
            f"has been {{{{ $value | humanizeDuration }}}} ({over}; limit {latency}) for "
            f"{p.disk_latency_for.text}: every VM with disks on it waits. Nothing is done "
            "automatically.",
        ),
        vm(
            "VsphereVmNetworkDroppedPackets",
            _perf(
                "vm",
                "network_dropped_packets_per_second",
                "avg",
                p.dropped_packets_per_second,
                avg,
            ),
            p.dropped_packets_for,
            "VM {{ $labels.vm }} drops packets",
            f"{VM} has dropped {{{{ $value | humanize }}}} packets/s, received plus "
            f"transmitted ({over}; limit {drops}), for {p.dropped_packets_for.text}. Nothing is "
            "done automatically.",
        ),
        host(
            "VsphereHostNetworkDroppedPackets",
            _perf(
                "host",
                "network_dropped_packets_per_second",
                "avg",
                p.dropped_packets_per_second,
                avg,
            ),
            p.dropped_packets_for,
            "Host {{ $labels.host }} drops packets",
            f"{HOST_} has dropped {{{{ $value | humanize }}}} packets/s, received plus "
            f"transmitted ({over}; limit {drops}), for {p.dropped_packets_for.text}. Nothing is "
            "done automatically.",
        ),
        Alert(
            name="VsphereHostPerformanceDegraded",
            group=GROUP,
            scope="host",
            expr=host_alert_expr(f"count by (vcenter, host_id, host) (\n{indent(conditions)}\n)"),
            for_=p.host_degraded_for,
            severity="warning",
            remediation=p.host_degraded_remediation,
            summary="Host {{ $labels.host }} has been slow for " + p.host_degraded_for.text,
            description=f"{HOST_} has had high CPU ready (above {pct_ready}), swapping or disk "
            f"latency (above {latency}), {over}, for {p.host_degraded_for.text} without a "
            "break; {{ $value }} of these 4 conditions (ready, swapping, read and write "
            f"latency) hold now. " + degraded_action(p.host_degraded_remediation),
        ),
        Alert(
            name="VspherePerfCollectionStale",
            group=GROUP,
            scope="vcenter",
            expr=q(
                """
                time() - max by (vcenter) (vsphere_perf_last_success_timestamp_seconds) > $stale
                and on (vcenter) (max by (vcenter) (vsphere_up) == 1)
                """,
                stale=p.stale_after.number,
            ),
            for_=p.stale_for,
            severity="warning",
            remediation="none",
            summary="Performance counters of vCenter {{ $labels.vcenter }} are stale",
            description="No performance collection without a failed query from vCenter "
            "{{ $labels.vcenter }} for {{ $value | humanizeDuration }} (limit "
            + p.stale_after.text
            + ") although its session is up. The performance alerts of its hosts and VMs "
            "go quiet as their series disappear; nothing is remediated.",
        ),
    ]
