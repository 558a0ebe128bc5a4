"""``vha report``: rightsizing and cost, from Prometheus, as tables, Markdown and CSV.

Reads the recording rules of :mod:`vha.report.rightsizing` through the Prometheus HTTP API
(standard library only). When those rules are not loaded it sends the same PromQL with the
rules inlined (``--source raw``), which is fine for small estates and for trying the report
before installing the rules; at thousands of VMs load the rules.

Money is computed here from the ``cost:`` section of ``--config`` (or, without one, from
the exporter's ``vsphere_cluster_price_*`` series): the rules say how many vCPUs, GiB of
memory and GiB of storage each VM could give back; prices turn that into savings.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter.cost import GIB, CostConfig, Prices, parse_cost_config
from vcenter.config import ConfigError, load_config

from . import licenses as lic_mod
from .licenses import LicenseCost, gather_licenses
from .rightsizing import Settings, duration_seconds, expand, recording_rules

DEFAULT_URL = "http://127.0.0.1:9090"
VM_RULES = (
    "vsphere_vm:cpu_usage_ratio:p95",
    "vsphere_vm:memory_usage_ratio:p95",
    "vsphere_vm:network_bytes_per_second:p95",
    "vsphere_vm:disk_ops_per_second:p95",
    "vsphere_vm:cpu_count:recommended",
    "vsphere_vm:memory_size_bytes:recommended",
    "vsphere_vm:idle",
    "vsphere_vm:oversized",
    "vsphere_vm:powered_off:window",
    "vsphere_vm:cpu_count:reclaimable",
    "vsphere_vm:memory_size_bytes:reclaimable",
    "vsphere_vm:storage_committed_bytes:reclaimable",
)
CLUSTER_RULES = (
    "vsphere_cluster:vcpus_per_core:ratio",
    "vsphere_cluster:vms_per_host:ratio",
    "vsphere_cluster:hosts:needed",
    "vsphere_cluster:hosts:freeable",
    "vsphere_cluster:failover_capacity:ratio",
)
VM_FACTS = {
    "cpus": "max by (vcenter, vm_id, vm) (vsphere_vm_cpu_count)",
    "memory": "max by (vcenter, vm_id, vm) (vsphere_vm_memory_size_bytes)",
    "storage": "max by (vcenter, vm_id, vm) (vsphere_vm_storage_committed_bytes)",
    "on": 'max by (vcenter, vm_id, vm) (vsphere_vm_power_state{state="poweredOn"})',
    "snapshots": "max by (vcenter, vm_id, vm) (vsphere_vm_snapshots)",
    "snapshot_oldest": "min by (vcenter, vm_id, vm) (vsphere_vm_snapshot_oldest_timestamp_seconds)",
    "snapshot_bytes": "max by (vcenter, vm_id, vm) (vsphere_vm_snapshot_size_bytes)",
}
CLUSTER_HOSTS = (
    'count by (vcenter, cluster_id, cluster) (vsphere_host_info{cluster_id!=""} '
    'and on (vcenter, host_id) (vsphere_host_connection_state{state="connected"} == 1) '
    'and on (vcenter, host_id) (vsphere_host_power_state{state="poweredOn"} == 1) '
    "unless on (vcenter, host_id) (vsphere_host_maintenance_mode == 1))"
)
PRICE_SERIES = {
    "per_vcpu_month": "vsphere_cluster_price_per_vcpu_month",
    "per_gb_memory_month": "vsphere_cluster_price_per_memory_gib_month",
    "per_gb_storage_month": "vsphere_cluster_price_per_storage_gib_month",
}


class ReportError(RuntimeError):
    """Prometheus could not be asked, or answered with an error."""


# --- Prometheus ------------------------------------------------------------------------------

Labels = dict[str, str]


class Prometheus:
    """The few Prometheus HTTP API calls the report needs (POST, so long PromQL fits)."""

    def __init__(self, url: str, *, timeout: float = 120.0, at: float | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.at = at
        self.queries = 0
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _call(self, path: str, params: dict[str, str] | None = None) -> Any:
        data = urllib.parse.urlencode(params).encode() if params is not None else None
        request = urllib.request.Request(self.url + path, data=data)
        try:
            with self._opener.open(request, timeout=self.timeout) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as exc:
            try:
                body = json.load(exc)
            except ValueError:
                raise ReportError(f"{self.url}{path}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            why = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise ReportError(f"cannot reach Prometheus at {self.url}: {why}") from None
        if body.get("status") != "success":
            raise ReportError(f"Prometheus: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[tuple[Labels, float]]:
        """An instant query's vector as (labels, value) pairs."""
        params = {"query": expr}
        if self.at is not None:
            params["time"] = f"{self.at:.3f}"
        self.queries += 1
        data = self._call("/api/v1/query", params)
        if data.get("resultType") != "vector":
            raise ReportError(f"expected a vector from {expr[:60]}..., got {data['resultType']}")
        return [(r["metric"], float(r["value"][1])) for r in data["result"]]

    def recording_rules(self) -> dict[str, str]:
        """The loaded recording rules: name -> PromQL."""
        data = self._call("/api/v1/rules?type=record")
        return {
            r["name"]: r.get("query", "")
            for g in data.get("groups", [])
            for r in g.get("rules", [])
        }


# --- the data --------------------------------------------------------------------------------


@dataclass
class Vm:
    vcenter: str
    vm_id: str
    vm: str
    cluster: str = ""
    values: dict[str, float] = field(default_factory=dict)  # fact or rule name -> value
    savings: float | None = None
    cost: float | None = None

    def get(self, key: str) -> float | None:
        return self.values.get(key)

    def has(self, rule: str) -> bool:
        return self.values.get(rule, 0.0) > 0

    @property
    def reason(self) -> str:
        if self.has("vsphere_vm:idle"):
            return "idle"
        if self.has("vsphere_vm:oversized"):
            return "oversized"
        if self.has("vsphere_vm:powered_off:window"):
            return "powered off"
        return ""

    @property
    def reclaim(self) -> tuple[float, float, float]:
        return (
            self.get("vsphere_vm:cpu_count:reclaimable") or 0.0,
            self.get("vsphere_vm:memory_size_bytes:reclaimable") or 0.0,
            self.get("vsphere_vm:storage_committed_bytes:reclaimable") or 0.0,
        )


@dataclass
class Cluster:
    vcenter: str
    cluster_id: str
    cluster: str
    values: dict[str, float] = field(default_factory=dict)
    cost: float | None = None
    savings: float | None = None

    @property
    def status(self) -> str:
        ratio = self.values.get("vsphere_cluster:failover_capacity:ratio")
        freeable = self.values.get("vsphere_cluster:hosts:freeable") or 0
        if ratio is not None and ratio > 1:
            return "short of N+1"
        if freeable >= 1:
            return f"{freeable:g} host{'s' if freeable != 1 else ''} could be freed"
        return "ok"


@dataclass
class Report:
    source: str  # "rules" or "raw"
    window: str
    currency: str | None
    generated: float
    vms: list[Vm]
    clusters: list[Cluster]
    snapshot_days: float
    top: int
    queries: int = 0
    licenses: list[LicenseCost] = field(default_factory=list)  # vha/report/licenses.py

    def with_reason(self, reason: str) -> list[Vm]:
        return [v for v in self.vms if v.reason == reason]

    @property
    def top_savings(self) -> list[Vm]:
        return [v for v in self.vms if v.reason][: self.top]

    @property
    def old_snapshots(self) -> list[Vm]:
        limit = self.generated - self.snapshot_days * 86400
        old = [v for v in self.vms if (v.get("snapshot_oldest") or limit + 1) <= limit]
        return sorted(old, key=lambda v: (v.get("snapshot_oldest") or 0, v.vcenter, v.vm))


def _key(labels: Labels, *names: str) -> tuple[str, ...]:
    return tuple(labels.get(n, "") for n in names)


def _cluster(labels: Labels) -> Cluster:
    return Cluster(
        labels.get("vcenter", ""), labels.get("cluster_id", ""), labels.get("cluster", "")
    )


def gather(
    prom: Prometheus,
    *,
    source: str = "auto",
    settings: Settings | None = None,
    cost: CostConfig | None = None,
    snapshot_days: float = 3.0,
    top: int = 10,
) -> Report:
    """Ask Prometheus everything the report shows; compute costs and savings."""
    settings = settings or Settings()
    rules = recording_rules(settings)
    needed = set(VM_RULES) | set(CLUSTER_RULES)
    window = settings.window
    if source in ("auto", "rules"):
        loaded = prom.recording_rules()
        if source == "auto":
            source = "rules" if needed <= loaded.keys() else "raw"
        # The rules' own window, from the percentile rule's range.
        found = re.search(r"\[(\w+)\]", loaded.get("vsphere_vm:cpu_usage_ratio:p95", ""))
        if source == "rules" and found:
            seconds = duration_seconds(found.group(1))  # Prometheus writes 7d as 1w
            window = f"{seconds // 86400}d" if seconds % 86400 == 0 else found.group(1)

    def ask(rule: str) -> list[tuple[Labels, float]]:
        return prom.query(rule if source == "rules" else expand(rule, rules))

    vms: dict[tuple[str, ...], Vm] = {}
    info = prom.query("max by (vcenter, vm_id, vm, cluster) (vsphere_vm_info)")
    for labels, _ in info:
        key = _key(labels, "vcenter", "vm_id")
        vms[key] = Vm(labels.get("vcenter", ""), labels.get("vm_id", ""), labels.get("vm", ""))
        vms[key].cluster = labels.get("cluster", "")
    for name, expr in VM_FACTS.items():
        for labels, value in prom.query(expr):
            vm = vms.get(_key(labels, "vcenter", "vm_id"))
            if vm is not None:
                vm.values[name] = value
    for rule in VM_RULES:
        for labels, value in ask(rule):
            vm = vms.get(_key(labels, "vcenter", "vm_id"))
            if vm is not None:
                vm.values[rule] = value

    clusters: dict[tuple[str, ...], Cluster] = {}
    for labels, value in prom.query(CLUSTER_HOSTS):
        key = _key(labels, "vcenter", "cluster_id")
        clusters[key] = _cluster(labels)
        clusters[key].values["hosts"] = value
    for rule in CLUSTER_RULES:
        for labels, value in ask(rule):
            key = _key(labels, "vcenter", "cluster_id")
            if key not in clusters:
                clusters[key] = _cluster(labels)
            clusters[key].values[rule] = value

    currency, price_of = _prices(prom, cost)
    if price_of is not None:
        for vm in vms.values():
            prices = price_of(vm.vcenter, vm.cluster)
            vcpus, memory, storage = vm.reclaim
            vm.savings = prices.monthly(vcpus, memory, storage)
            running = (vm.get("on") or 0) > 0
            vm.cost = prices.monthly(
                (vm.get("cpus") or 0) if running else 0,
                (vm.get("memory") or 0) if running else 0,
                vm.get("storage") or 0,
            )
        by_cluster: dict[tuple[str, str], list[Vm]] = {}
        for vm in vms.values():
            by_cluster.setdefault((vm.vcenter, vm.cluster), []).append(vm)
        for c in clusters.values():
            members = by_cluster.get((c.vcenter, c.cluster), [])
            c.cost = sum(v.cost or 0 for v in members)
            c.savings = sum(v.savings or 0 for v in members)

    licenses = gather_licenses(prom, cost)

    def order(vm: Vm) -> tuple[float, float, str, str]:
        vcpus, memory, storage = vm.reclaim
        units = vcpus * 1e6 + memory / GIB * 1e3 + storage / GIB
        return (-(vm.savings or 0.0), -units, vm.vcenter, vm.vm)

    return Report(
        source=source,
        window=window,
        currency=currency,
        generated=prom.at if prom.at is not None else time.time(),
        vms=sorted(vms.values(), key=order),
        clusters=sorted(clusters.values(), key=lambda c: (c.vcenter, c.cluster)),
        snapshot_days=snapshot_days,
        top=top,
        queries=prom.queries,
        licenses=licenses,
    )


def _prices(
    prom: Prometheus, cost: CostConfig | None
) -> tuple[str | None, Callable[[str, str], Prices] | None]:
    """Prices from the config when it has a ``cost:`` section, else the exporter's series."""
    if cost is not None and cost.configured:
        return cost.currency, lambda vcenter, cluster: cost.prices(cluster)
    series: dict[tuple[str, str], dict[str, float]] = {}
    for key, metric in PRICE_SERIES.items():
        for labels, value in prom.query(f"max by (vcenter, cluster) ({metric})"):
            series.setdefault((labels.get("vcenter", ""), labels.get("cluster", "")), {})[key] = (
                value
            )
    if not series:
        return None, None
    currencies = prom.query("max by (currency) (vsphere_cost_info)")
    currency = currencies[0][0].get("currency", "") if currencies else ""

    def price_of(vcenter: str, cluster: str) -> Prices:
        found = series.get((vcenter, cluster)) or series.get((vcenter, "")) or {}
        return Prices(**found)

    return currency, price_of


# --- formatting ------------------------------------------------------------------------------


def _gib(value: float | None) -> str:
    return "-" if value is None else f"{value / GIB:,.0f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _money(value: float | None, currency: str | None) -> str:
    if value is None or currency is None:
        return "-"
    return f"{value:,.2f} {currency}".rstrip()


def _size(cpus: float | None, memory: float | None) -> str:
    return f"{_num(cpus)} vCPU / {_gib(memory)} GiB"


Table = tuple[str, list[str], list[list[str]]]


def tables(report: Report) -> list[Table]:
    """Every section as (title, header, rows)."""
    cur = report.currency

    def savings(vm: Vm) -> str:
        if vm.savings is not None:
            return _money(vm.savings, cur)
        vcpus, memory, storage = vm.reclaim
        return f"{vcpus:g} vCPU, {memory / GIB:,.0f} GiB mem, {storage / GIB:,.0f} GiB disk"

    top = [
        [
            v.vm,
            v.cluster or "(standalone)",
            v.reason,
            _size(v.get("cpus"), v.get("memory")),
            _size(
                v.get("vsphere_vm:cpu_count:recommended"),
                v.get("vsphere_vm:memory_size_bytes:recommended"),
            )
            if v.reason == "oversized"
            else "remove"
            if v.reason in ("idle", "powered off")
            else "-",
            savings(v),
        ]
        for v in report.top_savings
    ]
    idle = [
        [
            v.vm,
            v.cluster or "(standalone)",
            _size(v.get("cpus"), v.get("memory")),
            _pct(v.get("vsphere_vm:cpu_usage_ratio:p95")),
            _num(v.get("vsphere_vm:network_bytes_per_second:p95")),
            _num(v.get("vsphere_vm:disk_ops_per_second:p95"), 1),
            savings(v),
        ]
        for v in report.with_reason("idle")
    ]
    oversized = [
        [
            v.vm,
            v.cluster or "(standalone)",
            _size(v.get("cpus"), v.get("memory")),
            _size(
                v.get("vsphere_vm:cpu_count:recommended"),
                v.get("vsphere_vm:memory_size_bytes:recommended"),
            ),
            _pct(v.get("vsphere_vm:cpu_usage_ratio:p95")),
            _pct(v.get("vsphere_vm:memory_usage_ratio:p95")),
            savings(v),
        ]
        for v in report.with_reason("oversized")
    ]
    off = [
        [v.vm, v.cluster or "(standalone)", _gib(v.get("storage")), savings(v)]
        for v in report.with_reason("powered off")
    ]
    snapshots = [
        [
            v.vm,
            v.cluster or "(standalone)",
            _num(v.get("snapshots")),
            f"{(report.generated - (v.get('snapshot_oldest') or 0)) / 86400:.1f}",
            _gib(v.get("snapshot_bytes")),
            _gib(v.get("storage")),
        ]
        for v in report.old_snapshots
    ]
    clusters = [
        [
            c.cluster,
            _num(c.values.get("hosts")),
            _num(c.values.get("vsphere_cluster:vcpus_per_core:ratio"), 2),
            _num(c.values.get("vsphere_cluster:vms_per_host:ratio"), 2),
            _pct(c.values.get("vsphere_cluster:failover_capacity:ratio")),
            _num(c.values.get("vsphere_cluster:hosts:needed")),
            _num(c.values.get("vsphere_cluster:hosts:freeable")),
            c.status,
            _money(c.cost, cur),
            _money(c.savings, cur),
        ]
        for c in report.clusters
    ]
    w = report.window
    licences = [lic_mod.table(report.licenses, lambda v: _money(v, cur))] if report.licenses else []
    return [
        (
            f"Top {report.top} savings",
            ["VM", "cluster", "finding", "now", "recommended", "saving / month"],
            top,
        ),
        (
            f"Idle VMs (p95 over {w})",
            ["VM", "cluster", "size", "CPU p95", "net B/s p95", "disk IOPS p95", "saving / month"],
            idle,
        ),
        (
            f"Oversized VMs (p95 over {w})",
            ["VM", "cluster", "now", "recommended", "CPU p95", "memory p95", "saving / month"],
            oversized,
        ),
        (
            f"Powered off for all of {w}",
            ["VM", "cluster", "storage GiB", "saving / month"],
            off,
        ),
        (
            f"Snapshots older than {report.snapshot_days:g} days",
            [
                "VM",
                "cluster",
                "snapshots",
                "oldest (days)",
                "held by snapshots GiB",
                "VM storage GiB (incl. snapshots)",
            ],
            snapshots,
        ),
        (
            "Clusters: consolidation and failover capacity",
            [
                "cluster",
                "hosts up",
                "vCPU / core",
                "VMs / host",
                "p95 demand / N+1 capacity",
                "hosts needed",
                "hosts freeable",
                "status",
                "cost / month",
                "savings / month",
            ],
            clusters,
        ),
        *licences,
    ]


def summary(report: Report) -> list[str]:
    cur = report.currency
    lines = [
        f"Source: {'recording rules' if report.source == 'rules' else 'raw metrics'}; "
        f"window {report.window}; {len(report.vms)} VMs, {len(report.clusters)} clusters; "
        f"generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(report.generated))}.",
        f"Idle: {len(report.with_reason('idle'))}, oversized: "
        f"{len(report.with_reason('oversized'))}, powered off: "
        f"{len(report.with_reason('powered off'))}, old snapshots: "
        f"{len(report.old_snapshots)}.",
    ]
    if cur is not None:
        total_cost = sum(v.cost or 0 for v in report.vms)
        total_savings = sum(v.savings or 0 for v in report.vms)
        lines.append(
            f"Monthly cost {_money(total_cost, cur)}; savings if rightsized "
            f"{_money(total_savings, cur)}."
        )
    else:
        lines.append("No prices (no cost: section and no vsphere_cluster_price_* series).")
    licences = lic_mod.summary_line(report.licenses, lambda v: _money(v, cur))
    if licences is not None:
        lines.append(licences)
    return lines


def terminal(report: Report) -> str:
    out = [*summary(report), ""]
    for title, header, rows in tables(report):
        out.append(f"== {title}")
        if not rows:
            out += ["(none)", ""]
            continue
        widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
        for row in [header, *rows]:
            out.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        out.append("")
    return "\n".join(out)


def markdown(report: Report) -> str:
    out = ["# Rightsizing and cost report", "", *summary(report), ""]
    for title, header, rows in tables(report):
        out += [f"## {title}", ""]
        if not rows:
            out += ["None.", ""]
            continue
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "|".join(" --- " for _ in header) + "|")
        for row in rows:
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
        out.append("")
    return "\n".join(out)


CSV_HEADER = [
    "finding",
    "vcenter",
    "vm_id",
    "vm",
    "cluster",
    "vcpus",
    "memory_gib",
    "storage_gib",
    "recommended_vcpus",
    "recommended_memory_gib",
    "cpu_p95_ratio",
    "memory_p95_ratio",
    "snapshots",
    "snapshot_age_days",
    "savings_per_month",
    "currency",
]


def csv_text(report: Report) -> str:
    """One row per finding: idle, oversized, powered_off, snapshot, cluster."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_HEADER)

    def n(value: float | None, digits: int = 6) -> str:
        return "" if value is None else f"{round(value, digits):g}"

    def gib(value: float | None) -> str:
        return "" if value is None else n(value / GIB, 3)

    old = {id(v) for v in report.old_snapshots}
    for vm in report.vms:
        findings = [vm.reason.replace(" ", "_")] if vm.reason else []
        if id(vm) in old:
            findings.append("snapshot")
        for finding in findings:
            age = (report.generated - (vm.get("snapshot_oldest") or 0)) / 86400
            writer.writerow(
                [
                    finding,
                    vm.vcenter,
                    vm.vm_id,
                    vm.vm,
                    vm.cluster,
                    n(vm.get("cpus")),
                    gib(vm.get("memory")),
                    gib(vm.get("storage")),
                    n(vm.get("vsphere_vm:cpu_count:recommended")) if finding == "oversized" else "",
                    gib(vm.get("vsphere_vm:memory_size_bytes:recommended"))
                    if finding == "oversized"
                    else "",
                    n(vm.get("vsphere_vm:cpu_usage_ratio:p95"), 4),
                    n(vm.get("vsphere_vm:memory_usage_ratio:p95"), 4),
                    n(vm.get("snapshots")),
                    n(age, 1) if finding == "snapshot" else "",
                    n(vm.savings, 2) if finding != "snapshot" else "",
                    report.currency or "",
                ]
            )
    for c in report.clusters:
        writer.writerow(
            ["cluster_" + c.status.replace(" ", "_").replace("+", "plus"), c.vcenter, "", ""]
            + [c.cluster, "", "", "", "", "", "", "", "", ""]
            + [n(c.savings, 2), report.currency or ""]
        )
    return buf.getvalue()


# --- command line ----------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``vha report`` options (for vha/cli.py)."""
    p.add_argument(
        "--prometheus-url", default=DEFAULT_URL, help=f"Prometheus base URL ({DEFAULT_URL})"
    )
    p.add_argument("--config", help="YAML configuration whose cost: section has the prices")
    p.add_argument("--out", help="directory to write report.md and report.csv into")
    p.add_argument(
        "--window", default="7d", help="window for --source raw (the rules have their own)"
    )
    p.add_argument("--top", type=int, default=10, help="how many top savings to list (10)")
    p.add_argument(
        "--snapshot-days", type=float, default=3.0, help="list snapshots older than this (3)"
    )
    p.add_argument(
        "--source",
        choices=("auto", "rules", "raw"),
        default="auto",
        help="recording rules, raw metrics, or rules when loaded (auto)",
    )
    p.add_argument("--time", type=float, help="evaluate at this Unix time instead of now")


def main(args: argparse.Namespace) -> int:
    """Run the report; 0 on success, 2 on a configuration error, 1 when Prometheus fails."""
    try:
        duration_seconds(args.window)
    except ValueError as exc:
        print(f"vha report: --window: {exc}", file=sys.stderr)
        return 2
    if args.top < 1:
        print("vha report: --top must be at least 1", file=sys.stderr)
        return 2
    cost = None
    if args.config:
        try:
            cost = parse_cost_config(load_config(args.config))
        except ConfigError as exc:
            print(f"vha: configuration error: {exc}", file=sys.stderr)
            return 2
    prom = Prometheus(args.prometheus_url, at=args.time)
    try:
        report = gather(
            prom,
            source=args.source,
            settings=Settings(window=args.window),
            cost=cost,
            snapshot_days=args.snapshot_days,
            top=args.top,
        )
    except ReportError as exc:
        print(f"vha report: {exc}", file=sys.stderr)
        return 1
    print(terminal(report))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.md").write_text(markdown(report), encoding="utf-8")
        (out / "report.csv").write_text(csv_text(report), encoding="utf-8")
        licences = lic_mod.csv_text(report.licenses, report.currency)
        (out / "licenses.csv").write_text(licences, encoding="utf-8")
        print(f"wrote {out / 'report.md'}, {out / 'report.csv'} and {out / 'licenses.csv'}")
    return 0


def run(argv: Sequence[str] | None = None) -> int:
    """``python -m vha.report.report`` (the same options as ``vha report``)."""
    parser = argparse.ArgumentParser(prog="vha report", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(run())
