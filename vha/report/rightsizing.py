"""Rightsizing, idle-VM, consolidation and cost recording rules: one definition, two uses.

:func:`recording_rules` is the single source of the PromQL: ``rules/generate.py`` writes it
into ``rules/recording.yml`` and ``vha report`` queries the recorded series; when the rules
are not loaded, the report asks Prometheus for :func:`expand`\\ ed expressions instead (the
same PromQL with every recorded series inlined, ranges over recorded series becoming
subqueries), so both give the same answers.

Two stages keep the window cheap at 10,000 VMs: ``vsphere-performance.rules`` averages the
20 s counters over 5 minutes at the normal evaluation interval, and
``vsphere-rightsizing.rules`` (every 5 minutes) takes percentiles of those averages over the
window (2,016 points per VM for 7 days instead of 30,240 raw samples).

Standard library only, so the rules generator can import it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from string import Template
from typing import Any

GIB = 1073741824  # 2^30
STEP = "5m"  # the resolution of the 5-minute averages, and of subqueries over them
PERFORMANCE_GROUP = "vsphere-performance.rules"
RIGHTSIZING_GROUP = "vsphere-rightsizing.rules"
RIGHTSIZING_INTERVAL = "5m"

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION = re.compile(r"^(\d+[smhdwy])+$")


def duration_seconds(text: str) -> int:
    """A Prometheus duration without milliseconds (``7d``, ``1w``, ``36h``) in seconds."""
    if not isinstance(text, str) or not _DURATION.match(text):
        raise ValueError(f"must be a Prometheus duration such as 7d or 14d, got {text!r}")
    return sum(int(n) * _UNITS[u] for n, u in re.findall(r"(\d+)([smhdwy])", text))


@dataclass(frozen=True)
class Settings:
    """The thresholds; each has a key of the same name under ``rightsizing:`` in
    ``rules/config.yml``."""

    # The window percentiles, idleness and power state are judged over.
    window: str = "7d"
    # Recommended vCPUs keep the VM's p95 CPU use at or below this share of them.
    cpu_target_ratio: float = 0.7
    # Recommended memory keeps p95 active memory at or below this share of it. Active memory
    # counts only recently touched pages and understates the working set, hence lower.
    memory_target_ratio: float = 0.5
    # Idle: p95 CPU, network and disk all below these over the window.
    idle_cpu_ratio: float = 0.03
    idle_network_bytes_per_second: float = 4096
    idle_disk_ops_per_second: float = 5
    # Share of the window a VM needs samples for (checked hourly) before it is judged.
    min_coverage_ratio: float = 0.8
    # The share of a host's CPU and memory VMs may use (rules: capacity.max_utilization).
    max_utilization: float = 0.9

    @property
    def window_seconds(self) -> int:
        return duration_seconds(self.window)

    @property
    def window_hours(self) -> int:
        return max(1, self.window_seconds // 3600)


@dataclass(frozen=True)
class Rule:
    record: str
    expr: str
    group: str


def _q(text: str, **values: object) -> str:
    """Dedent, fill ``$name`` placeholders, trim."""
    lines = text.strip("\n").splitlines()
    indent = min((len(ln) - len(ln.lstrip()) for ln in lines if ln.strip()), default=0)
    body = "\n".join(ln[indent:].rstrip() for ln in lines).strip("\n")
    return Template(body).substitute({k: str(v) for k, v in values.items()})


def _g(value: float) -> str:
    return f"{value:g}"


VM_CPUS = "max by (vcenter, vm_id, vm) (vsphere_vm_cpu_count)"
VM_MEMORY = "max by (vcenter, vm_id, vm) (vsphere_vm_memory_size_bytes)"
VM_STORAGE = "max by (vcenter, vm_id, vm) (vsphere_vm_storage_committed_bytes)"
VM_ON = 'max by (vcenter, vm_id) (vsphere_vm_power_state{state="poweredOn"}) == 1'
VM_CLUSTER = "max by (vcenter, vm_id, cluster_id, cluster) (vsphere_vm_info)"
VM_IN_CLUSTER = 'max by (vcenter, vm_id, cluster_id, cluster) (vsphere_vm_info{cluster_id!=""})'
HOST_UP = _q(
    """
    max by (vcenter, host_id, cluster_id, cluster) (vsphere_host_info{cluster_id!=""})
    and on (vcenter, host_id) (vsphere_host_connection_state{state="connected"} == 1)
    and on (vcenter, host_id) (vsphere_host_power_state{state="poweredOn"} == 1)
    unless on (vcenter, host_id) (vsphere_host_maintenance_mode == 1)
    """
)


def _host_capacity(metric: str) -> str:
    """Per host in a cluster, up: the capacity metric with the cluster's labels."""
    return _q(
        """
        max by (vcenter, host_id) ($metric)
        * on (vcenter, host_id) group_left (cluster_id, cluster) (
        $hosts
        )
        """,
        metric=metric,
        hosts=_indent(HOST_UP),
    )


def _indent(text: str, by: int = 2) -> str:
    return "\n".join((" " * by + ln) if ln else ln for ln in text.splitlines())


def _vm_price(metric: str) -> str:
    """A VM's price per unit: its cluster's (or its vCenter's standalone) price."""
    return _q(
        """
        max by (vcenter, vm_id) (
          $cluster
          * on (vcenter, cluster_id) group_left ()
            max by (vcenter, cluster_id) ($metric)
        )
        """,
        cluster=VM_CLUSTER,
        metric=metric,
    )


PRICES = {
    "vcpu": "vsphere_cluster_price_per_vcpu_month",
    "memory": "vsphere_cluster_price_per_memory_gib_month",
    "storage": "vsphere_cluster_price_per_storage_gib_month",
}


def _by_resource(agg: str, labels: str, parts: Mapping[str, str]) -> str:
    """``agg by (labels)`` over one term per resource, kept apart by a ``resource`` label."""
    lines = [f"{agg} by ({labels}) ("]
    for i, (name, expr) in enumerate(parts.items()):
        if i:
            lines.append("  or")
        lines += ["    label_replace(", _indent(expr, 6) + ","]
        lines += [f'      "resource", "{name}", "", ""', "    )"]
    return "\n".join([*lines, ")"])


def recording_rules(s: Settings | None = None) -> list[Rule]:
    """Every rule, in evaluation order (a rule only refers to rules before it)."""
    s = s or Settings()
    w = s.window
    cov = f"vsphere_vm:perf_coverage:ratio >= {_g(s.min_coverage_ratio)}"
    perf, size = PERFORMANCE_GROUP, RIGHTSIZING_GROUP

    def avg5m(*metrics: str) -> str:
        inner = "\n+ ".join(f"avg_over_time({m}[5m])" for m in metrics)
        if len(metrics) == 1:
            return f"max by (vcenter, vm_id, vm) ({inner})"
        return f"max by (vcenter, vm_id, vm) (\n{_indent(inner)}\n)"

    def cluster_avg5m(metric: str) -> str:
        return _q(
            """
            sum by (vcenter, cluster_id, cluster) (
              max by (vcenter, host_id) (avg_over_time($metric[5m]))
              * on (vcenter, host_id) group_left (cluster_id, cluster)
                max by (vcenter, host_id, cluster_id, cluster) (vsphere_host_info{cluster_id!=""})
            )
            """,
            metric=metric,
        )

    def p95(record: str) -> str:
        return f"quantile_over_time(0.95, {record}[{w}])"

    cpu_cap = _host_capacity("vsphere_host_cpu_capacity_hertz")
    mem_cap = _host_capacity("vsphere_host_memory_capacity_bytes")
    hosts_up = f"count by (vcenter, cluster_id, cluster) (\n{_indent(HOST_UP)}\n)"

    def per_host(usage: str, capacity: str) -> str:
        return _q(
            """
            $usage
            / on (vcenter, cluster_id) group_left () (
                sum by (vcenter, cluster_id) (
            $cap
                )
              / count by (vcenter, cluster_id) (
            $hosts
                )
              * $util
            )
            """,
            usage=usage,
            cap=_indent(capacity, 6),
            hosts=_indent(HOST_UP, 6),
            util=_g(s.max_utilization),
        )

    def without_largest(usage: str, capacity: str) -> str:
        return _q(
            """
            $usage
            / on (vcenter, cluster_id) group_left () (
                (
                    sum by (vcenter, cluster_id) (
            $cap
                    )
                  - max by (vcenter, cluster_id) (
            $cap
                    )
                )
              * $util
            )
            """,
            usage=usage,
            cap=_indent(capacity, 10),
            util=_g(s.max_utilization),
        )

    def reclaim(total: str, recommended: str) -> str:
        return _q(
            """
              $total and on (vcenter, vm_id) vsphere_vm:idle
            or
                clamp_min(
                  $total - on (vcenter, vm_id) group_left () $recommended,
                  0
                )
              and on (vcenter, vm_id) vsphere_vm:oversized
            """,
            total=total,
            recommended=recommended,
        )

    rules = [
        # --- stage 1: 5-minute averages --------------------------------------------------
        Rule("vsphere_vm:cpu_usage_ratio:avg5m", avg5m("vsphere_vm_cpu_usage_ratio"), perf),
        Rule("vsphere_vm:memory_active_bytes:avg5m", avg5m("vsphere_vm_memory_active_bytes"), perf),
        Rule(
            "vsphere_vm:network_bytes_per_second:avg5m",
            avg5m(
                "vsphere_vm_network_received_bytes_per_second",
                "vsphere_vm_network_transmitted_bytes_per_second",
            ),
            perf,
        ),
        Rule(
            "vsphere_vm:disk_ops_per_second:avg5m",
            avg5m("vsphere_vm_disk_reads_per_second", "vsphere_vm_disk_writes_per_second"),
            perf,
        ),
        Rule(
            "vsphere_cluster:cpu_usage_hertz:avg5m",
            cluster_avg5m("vsphere_host_cpu_usage_hertz"),
            perf,
        ),
        Rule(
            "vsphere_cluster:memory_usage_bytes:avg5m",
            cluster_avg5m("vsphere_host_memory_usage_bytes"),
            perf,
        ),
        # --- stage 2: percentiles over the window ------------------------------------------
        Rule("vsphere_vm:cpu_usage_ratio:p95", p95("vsphere_vm:cpu_usage_ratio:avg5m"), size),
        Rule(
            "vsphere_vm:memory_active_bytes:p95", p95("vsphere_vm:memory_active_bytes:avg5m"), size
        ),
        Rule(
            "vsphere_vm:network_bytes_per_second:p95",
            p95("vsphere_vm:network_bytes_per_second:avg5m"),
            size,
        ),
        Rule(
            "vsphere_vm:disk_ops_per_second:p95",
            p95("vsphere_vm:disk_ops_per_second:avg5m"),
            size,
        ),
        Rule(
            "vsphere_vm:perf_coverage:ratio",
            f"clamp_max(\n  count_over_time(vsphere_vm:cpu_usage_ratio:avg5m[{w}:1h])"
            f" / {s.window_hours},\n  1\n)",
            size,
        ),
        Rule(
            "vsphere_vm:memory_usage_ratio:p95",
            "vsphere_vm:memory_active_bytes:p95\n"
            "/ on (vcenter, vm_id) group_left ()\n"
            "  max by (vcenter, vm_id) (vsphere_vm_memory_size_bytes)",
            size,
        ),
        # --- recommendations ---------------------------------------------------------------
        Rule(
            "vsphere_vm:cpu_count:recommended",
            _q(
                """
                clamp_min(
                  ceil(round(
                      vsphere_vm:cpu_usage_ratio:p95
                    * on (vcenter, vm_id) group_left ()
                      max by (vcenter, vm_id) (vsphere_vm_cpu_count)
                    / $target,
                    0.001
                  )),
                  1
                )
                and on (vcenter, vm_id) ($cov)
                """,
                target=_g(s.cpu_target_ratio),
                cov=cov,
            ),
            size,
        ),
        Rule(
            "vsphere_vm:memory_size_bytes:recommended",
            _q(
                """
                clamp_min(
                  ceil(round(vsphere_vm:memory_active_bytes:p95 / $target / $gib, 0.001)),
                  1
                ) * $gib
                and on (vcenter, vm_id) ($cov)
                """,
                target=_g(s.memory_target_ratio),
                gib=GIB,
                cov=cov,
            ),
            size,
        ),
        Rule(
            "vsphere_vm:idle",
            _q(
                """
                (
                    vsphere_vm:cpu_usage_ratio:p95 < $cpu
                  and on (vcenter, vm_id) (vsphere_vm:network_bytes_per_second:p95 < $net)
                  and on (vcenter, vm_id) (vsphere_vm:disk_ops_per_second:p95 < $disk)
                  and on (vcenter, vm_id) ($cov)
                  and on (vcenter, vm_id) ($on)
                ) * 0 + 1
                """,
                cpu=_g(s.idle_cpu_ratio),
                net=_g(s.idle_network_bytes_per_second),
                disk=_g(s.idle_disk_ops_per_second),
                cov=cov,
                on=VM_ON,
            ),
            size,
        ),
        Rule(
            "vsphere_vm:oversized",
            _q(
                """
                (
                  (
                      vsphere_vm:cpu_count:recommended
                        < on (vcenter, vm_id) max by (vcenter, vm_id) (vsphere_vm_cpu_count)
                    or on (vcenter, vm_id)
                      vsphere_vm:memory_size_bytes:recommended
                        < on (vcenter, vm_id) max by (vcenter, vm_id) (vsphere_vm_memory_size_bytes)
                  )
                  and on (vcenter, vm_id) ($on)
                  unless on (vcenter, vm_id) vsphere_vm:idle
                ) * 0 + 1
                """,
                on=VM_ON,
            ),
            size,
        ),
        Rule(
            "vsphere_vm:powered_off:window",
            _q(
                """
                (
                  max_over_time(
                    (max by (vcenter, vm_id, vm) (vsphere_vm_power_state{state="poweredOn"}))[$w:1h]
                  ) == 0
                  and on (vcenter, vm_id)
                    (max by (vcenter, vm_id) (vsphere_vm_power_state{state="poweredOn"}) == 0)
                  and on (vcenter, vm_id)
                    max by (vcenter, vm_id) (vsphere_vm_power_state{state="poweredOn"} offset $w)
                ) * 0 + 1
                """,
                w=w,
            ),
            size,
        ),
        Rule(
            "vsphere_vm:cpu_count:reclaimable",
            reclaim(VM_CPUS, "vsphere_vm:cpu_count:recommended"),
            size,
        ),
        Rule(
            "vsphere_vm:memory_size_bytes:reclaimable",
            reclaim(VM_MEMORY, "vsphere_vm:memory_size_bytes:recommended"),
            size,
        ),
        Rule(
            "vsphere_vm:storage_committed_bytes:reclaimable",
            f"{VM_STORAGE}\nand on (vcenter, vm_id) "
            "(vsphere_vm:idle or vsphere_vm:powered_off:window)",
            size,
        ),
        # --- cost (needs the exporter's price series: a cost: section) ----------------------
        Rule(
            "vsphere_vm:cost_per_month",
            _by_resource(
                "sum",
                "vcenter, vm_id, vm",
                {
                    "vcpu": f"({VM_CPUS} and on (vcenter, vm_id) ({VM_ON}))\n"
                    f"* on (vcenter, vm_id) group_left () {_vm_price(PRICES['vcpu'])}",
                    "memory": f"({VM_MEMORY} and on (vcenter, vm_id) ({VM_ON})) / {GIB}\n"
                    f"* on (vcenter, vm_id) group_left () {_vm_price(PRICES['memory'])}",
                    "storage": f"{VM_STORAGE} / {GIB}\n"
                    f"* on (vcenter, vm_id) group_left () {_vm_price(PRICES['storage'])}",
                },
            ),
            size,
        ),
        Rule(
            "vsphere_vm:savings_per_month",
            _by_resource(
                "sum",
                "vcenter, vm_id, vm",
                {
                    "vcpu": "vsphere_vm:cpu_count:reclaimable\n"
                    f"* on (vcenter, vm_id) group_left () {_vm_price(PRICES['vcpu'])}",
                    "memory": f"vsphere_vm:memory_size_bytes:reclaimable / {GIB}\n"
                    f"* on (vcenter, vm_id) group_left () {_vm_price(PRICES['memory'])}",
                    "storage": f"vsphere_vm:storage_committed_bytes:reclaimable / {GIB}\n"
                    f"* on (vcenter, vm_id) group_left () {_vm_price(PRICES['storage'])}",
                },
            ),
            size,
        ),
        Rule(
            "vsphere_cluster:cost_per_month",
            "sum by (vcenter, cluster_id, cluster) (\n"
            "  vsphere_vm:cost_per_month\n"
            f"  * on (vcenter, vm_id) group_left (cluster_id, cluster) {VM_CLUSTER}\n)",
            size,
        ),
        Rule(
            "vsphere_cluster:savings_per_month",
            "sum by (vcenter, cluster_id, cluster) (\n"
            "  vsphere_vm:savings_per_month\n"
            f"  * on (vcenter, vm_id) group_left (cluster_id, cluster) {VM_CLUSTER}\n)",
            size,
        ),
        # --- clusters: consolidation and failover capacity ----------------------------------
        Rule(
            "vsphere_cluster:cpu_usage_hertz:p95",
            p95("vsphere_cluster:cpu_usage_hertz:avg5m"),
            size,
        ),
        Rule(
            "vsphere_cluster:memory_usage_bytes:p95",
            p95("vsphere_cluster:memory_usage_bytes:avg5m"),
            size,
        ),
        Rule(
            "vsphere_cluster:vcpus_per_core:ratio",
            _q(
                """
                sum by (vcenter, cluster_id, cluster) (
                  (max by (vcenter, vm_id) (vsphere_vm_cpu_count) and on (vcenter, vm_id) ($on))
                  * on (vcenter, vm_id) group_left (cluster_id, cluster) $vms
                )
                / on (vcenter, cluster_id) group_left ()
                sum by (vcenter, cluster_id, cluster) (
                $cores
                )
                """,
                on=VM_ON,
                vms=VM_IN_CLUSTER,
                cores=_indent(_host_capacity("vsphere_host_cpu_cores")),
            ),
            size,
        ),
        Rule(
            "vsphere_cluster:vms_per_host:ratio",
            _q(
                """
                count by (vcenter, cluster_id, cluster) (
                  $vms and on (vcenter, vm_id) ($on)
                )
                / on (vcenter, cluster_id) group_left ()
                $hosts
                """,
                vms=VM_IN_CLUSTER,
                on=VM_ON,
                hosts=hosts_up,
            ),
            size,
        ),
        Rule(
            "vsphere_cluster:hosts:needed",
            _q(
                """
                ceil(round(
                $demand,
                  0.001
                ))
                + on (vcenter, cluster_id) group_left ()
                  clamp_min(max by (vcenter, cluster_id) (vsphere_cluster_ha_failover_level), 1)
                """,
                demand=_indent(
                    _by_resource(
                        "max",
                        "vcenter, cluster_id, cluster",
                        {
                            "cpu": per_host("vsphere_cluster:cpu_usage_hertz:p95", cpu_cap),
                            "memory": per_host("vsphere_cluster:memory_usage_bytes:p95", mem_cap),
                        },
                    )
                ),
            ),
            size,
        ),
        Rule(
            "vsphere_cluster:hosts:freeable",
            f"clamp_min(\n{_indent(hosts_up)}\n  - on (vcenter, cluster_id) group_left () "
            "vsphere_cluster:hosts:needed,\n  0\n)",
            size,
        ),
        Rule(
            "vsphere_cluster:failover_capacity:ratio",
            _by_resource(
                "max",
                "vcenter, cluster_id, cluster",
                {
                    "cpu": without_largest("vsphere_cluster:cpu_usage_hertz:p95", cpu_cap),
                    "memory": without_largest("vsphere_cluster:memory_usage_bytes:p95", mem_cap),
                },
            )
            + f"\nand on (vcenter, cluster_id) (\n{_indent(hosts_up)} >= 2\n)",
            size,
        ),
    ]
    return rules


_REFERENCE = re.compile(r"\b(vsphere_[a-z_]+:[a-z0-9_]+(?::[a-z0-9_]+)?)(\[([^\]:]+)\])?")


def expand(name: str, rules: list[Rule]) -> str:
    """The PromQL of recorded series ``name`` with every recorded series it uses inlined.

    A range over a recorded series (``x:avg5m[7d]``) becomes a subquery at the 5-minute
    resolution the rule would have had (``(...)[7d:5m]``).
    """
    by_name = {r.record: r for r in rules}
    cache: dict[str, str] = {}

    def inline(record: str) -> str:
        if record not in cache:
            cache[record] = _REFERENCE.sub(replace, by_name[record].expr)
        return cache[record]

    def replace(m: re.Match[str]) -> str:
        record, rng, window = m.group(1), m.group(2), m.group(3)
        if record not in by_name:
            return m.group(0)
        body = f"(\n{_indent(inline(record))}\n)"
        return f"{body}[{window}:{STEP}]" if rng else body

    return inline(name)


def rule_file(s: Settings | None = None, interval: str = RIGHTSIZING_INTERVAL) -> dict[str, Any]:
    """A Prometheus rule file (as data) holding every rule; ``interval`` for the second stage.

    The percentile stage needs no more than its 5 minute resolution; it must stay at or
    below Prometheus' 5 minute lookback, or instant queries miss its series between runs.
    """
    groups: dict[str, list[dict[str, str]]] = {}
    for rule in recording_rules(s):
        groups.setdefault(rule.group, []).append({"record": rule.record, "expr": rule.expr})
    out = []
    for name, rules in groups.items():
        group: dict[str, Any] = {"name": name}
        if name == RIGHTSIZING_GROUP:
            group["interval"] = interval
        group["rules"] = rules
        out.append(group)
    return {"groups": out}
