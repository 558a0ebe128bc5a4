"""``vha report`` against a real Prometheus holding a week of known series.

The series are written as OpenMetrics and backfilled with ``promtool tsdb
create-blocks-from openmetrics``. One Prometheus answers from the raw series (the report
inlines the rules); a second one also has the 5-minute averages backfilled from the rules
(``promtool tsdb create-blocks-from rules``) and evaluates the rightsizing rules itself, so
the exact rule file handed to rules/ is tested too. Both must give the same, exact answers.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.cost import parse_cost_config
from vha.report import report as report_mod
from vha.report.report import Prometheus, Report, gather, markdown, terminal
from vha.report.rightsizing import (
    RIGHTSIZING_GROUP,
    expand,
    recording_rules,
    rule_file,
)

pytestmark = pytest.mark.skipif(
    not (shutil.which("prometheus") and shutil.which("promtool")),
    reason="needs the prometheus and promtool binaries (Debian package prometheus)",
)

GIB = 1024**3
STEP = 300
WEEK = 7 * 86400
COMMON = {"job": "vsphere-exporter", "instance": "127.0.0.1:9272"}
COST = {
    "currency": "EUR",
    "per_vcpu_month": 20,
    "per_gb_memory_month": 5,
    "per_gb_storage_month": 0.1,
    "clusters": {"C2": {"per_vcpu_month": 30}},
}


# --- the known estate ------------------------------------------------------------------------


@dataclass
class VmSpec:
    moid: str
    name: str
    cluster: str
    cpus: int
    memory_gib: float
    storage_gib: float
    cpu: float  # baseline CPU usage ratio
    active_gib: float
    net: float  # bytes per second, received + transmitted
    disk: float  # operations per second, reads + writes
    on: bool = True
    days: float = 7.1  # how long the VM has existed
    spikes: bool = False  # CPU 1.0 in 2 % of samples (below the p95)
    snapshot_days: float | None = None


VMS = [
    VmSpec("vm-1", "web-01", "C1", 8, 32, 200, 0.2, 6, 500_000, 50, spikes=True),
    VmSpec("vm-2", "db-01", "C1", 4, 16, 500, 0.6, 10, 2_000_000, 400, snapshot_days=1),
    VmSpec("vm-3", "old-app", "C1", 2, 8, 100, 0.01, 0.5, 1000, 0.5),
    VmSpec("vm-4", "batch-01", "C2", 2, 4, 40, 0.01, 1, 1_000_000, 20),
    VmSpec("vm-5", "new-01", "C2", 4, 8, 20, 0.01, 0.5, 10, 0, days=1),
    VmSpec("vm-6", "archive-01", "C1", 2, 4, 50, 0, 0, 0, 0, on=False),
    VmSpec("vm-7", "snap-01", "C2", 2, 8, 60, 0.5, 5, 300_000, 80, snapshot_days=10),
]
# host moid -> (cluster, cpu usage Hz, memory usage GiB, in maintenance)
HOSTS = {
    "host-11": ("C1", 5e9, 64, False),
    "host-12": ("C1", 5e9, 64, False),
    "host-13": ("C1", 5e9, 64, False),
    "host-14": ("C1", 5e9, 64, False),
    "host-15": ("C1", 0.0, 0, True),
    "host-21": ("C2", 30e9, 200, False),
    "host-22": ("C2", 30e9, 200, False),
}
CLUSTER_IDS = {"C1": "domain-c1", "C2": "domain-c2"}
# Licences as the exporter serves them (sim/licenses.go's three, 7 hosts of 2 packages):
# (license name, key suffix, edition, cost unit, used, total)
LICENSES = [
    (
        "VMware vSphere 8 Enterprise Plus",
        "1ESXP",
        "esx.enterprisePlus.cpuPackage",
        "cpuPackage",
        14,
        18,
    ),
    ("VMware vCenter Server 8 Standard", "2VCS0", "vc.standard.instance", "server", 1, 1),
    ("Evaluation Mode", "00000", "eval", "", 0, 0),
]
# Per unit and month: one by licence name, one by edition key; the evaluation has no price.
LICENSE_PRICES = {"VMware vSphere 8 Enterprise Plus": 150, "vc.standard.instance": 400}

# What the report must say (worked out by hand in docs/performance.md's example).
IDLE = ["old-app"]
OVERSIZED = {"web-01": (3, 12 * GIB), "batch-01": (1, 2 * GIB)}
POWERED_OFF = ["archive-01"]
SAVINGS = {"web-01": 200.0, "old-app": 90.0, "batch-01": 40.0, "archive-01": 5.0}
COSTS = {
    "web-01": 340.0,
    "db-01": 210.0,
    "old-app": 90.0,
    "batch-01": 84.0,
    "new-01": 162.0,
    "archive-01": 5.0,
    "snap-01": 106.0,
}


class OpenMetrics:
    """Samples grouped by family, as the OpenMetrics backfill wants them."""

    def __init__(self) -> None:
        self.families: dict[str, list[str]] = {}

    def add(
        self,
        name: str,
        labels: dict[str, str],
        value: Callable[[int, int], float] | float,
        times: range,
        *,
        scraped: bool = True,  # recorded series have no job and instance labels
    ) -> None:
        block = ",".join(f'{k}="{v}"' for k, v in {**labels, **(COMMON if scraped else {})}.items())
        lines = self.families.setdefault(name, [])
        for i, t in enumerate(times):
            v = value(i, t) if callable(value) else value
            lines.append(f"{name}{{{block}}} {v!r} {t}\n")

    def text(self) -> str:
        out = []
        for name, lines in self.families.items():
            out.append(f"# TYPE {name} gauge\n")
            out.extend(lines)
        out.append("# EOF\n")
        return "".join(out)


def estate(end: int) -> str:
    om = OpenMetrics()
    full = range(end - WEEK - 2 * 3600, end + 1, STEP)
    vc = {"vcenter": "vc1"}
    for cluster, cid in CLUSTER_IDS.items():
        om.add(
            "vsphere_cluster_ha_failover_level",
            {**vc, "cluster_id": cid, "cluster": cluster},
            1,
            full,
        )
    for host, (cluster, cpu, mem, maintenance) in HOSTS.items():
        ident = {**vc, "host_id": host, "host": f"esx-{host}"}
        placement = {"cluster_id": CLUSTER_IDS[cluster], "cluster": cluster, "datacenter": "DC0"}
        host_info = {**ident, **placement, "fault_domain": "", "version": "8.0.2"}
        om.add("vsphere_host_info", host_info, 1, full)
        om.add("vsphere_host_connection_state", {**ident, "state": "connected"}, 1, full)
        om.add("vsphere_host_connection_state", {**ident, "state": "notResponding"}, 0, full)
        om.add("vsphere_host_power_state", {**ident, "state": "poweredOn"}, 1, full)
        om.add("vsphere_host_maintenance_mode", ident, 1 if maintenance else 0, full)
        om.add("vsphere_host_cpu_cores", ident, 20, full)
        om.add("vsphere_host_cpu_capacity_hertz", ident, 50e9, full)
        om.add("vsphere_host_memory_capacity_bytes", ident, 256.0 * GIB, full)
        om.add("vsphere_host_cpu_usage_hertz", ident, cpu, full)
        om.add("vsphere_host_memory_usage_bytes", ident, float(mem * GIB), full)
    for vm in VMS:
        ident = {**vc, "vm_id": vm.moid, "vm": vm.name}
        times = range(end - int(vm.days * 86400) // STEP * STEP, end + 1, STEP)
        placement = {"cluster_id": CLUSTER_IDS[vm.cluster], "cluster": vm.cluster}
        vm_info = {**ident, **placement, "host_id": "", "host": "", "datacenter": "DC0"}
        vm_info |= {"fault_domain": "", "guest_os": "", "ha_protected": "true"}
        om.add("vsphere_vm_info", {**vm_info, "restart_priority": "medium"}, 1, times)
        om.add("vsphere_vm_cpu_count", ident, vm.cpus, times)
        om.add("vsphere_vm_memory_size_bytes", ident, float(vm.memory_gib * GIB), times)
        om.add("vsphere_vm_storage_committed_bytes", ident, float(vm.storage_gib * GIB), times)
        om.add("vsphere_vm_power_state", {**ident, "state": "poweredOn"}, int(vm.on), times)
        om.add("vsphere_vm_power_state", {**ident, "state": "poweredOff"}, int(not vm.on), times)
        om.add("vsphere_vm_snapshots", ident, 0 if vm.snapshot_days is None else 1, times)
        if vm.snapshot_days is not None:
            created = end - vm.snapshot_days * 86400
            om.add("vsphere_vm_snapshot_oldest_timestamp_seconds", ident, created, times)
            om.add("vsphere_vm_snapshot_size_bytes", ident, 12.0 * GIB, times)
        if not vm.on:
            continue

        def cpu(i: int, t: int, vm: VmSpec = vm) -> float:
            recent = t > end - 3600  # no spike in the last hour
            return 1.0 if vm.spikes and i % 50 == 7 and not recent else vm.cpu

        om.add("vsphere_vm_cpu_usage_ratio", ident, cpu, times)
        om.add("vsphere_vm_memory_active_bytes", ident, float(vm.active_gib * GIB), times)
        om.add("vsphere_vm_network_received_bytes_per_second", ident, vm.net * 0.75, times)
        om.add("vsphere_vm_network_transmitted_bytes_per_second", ident, vm.net * 0.25, times)
        om.add("vsphere_vm_disk_reads_per_second", ident, vm.disk * 0.5, times)
        om.add("vsphere_vm_disk_writes_per_second", ident, vm.disk * 0.5, times)
        # What the 5-minute averaging rules would have recorded: one sample per 5 minutes
        # averages to itself (tests below check the rules' PromQL against these).
        for record, v in (
            ("vsphere_vm:cpu_usage_ratio:avg5m", cpu),
            ("vsphere_vm:memory_active_bytes:avg5m", float(vm.active_gib * GIB)),
            ("vsphere_vm:network_bytes_per_second:avg5m", vm.net * 0.75 + vm.net * 0.25),
            ("vsphere_vm:disk_ops_per_second:avg5m", vm.disk * 0.5 + vm.disk * 0.5),
        ):
            om.add(record, ident, v, times, scraped=False)
    for cluster, cid in CLUSTER_IDS.items():
        members = [h for h in HOSTS.values() if h[0] == cluster]
        labels = {**vc, "cluster_id": cid, "cluster": cluster}
        cpu_sum = sum(h[1] for h in members)
        mem_sum = float(sum(h[2] for h in members) * GIB)
        om.add("vsphere_cluster:cpu_usage_hertz:avg5m", labels, cpu_sum, full, scraped=False)
        om.add("vsphere_cluster:memory_usage_bytes:avg5m", labels, mem_sum, full, scraped=False)
    om.add("vsphere_cost_info", {"currency": "EUR"}, 1, full)
    for name, suffix, edition, unit, used, total in LICENSES:
        base = {**vc, "license": name, "key_suffix": suffix}
        om.add("vsphere_license_info", {**base, "edition": edition, "cost_unit": unit}, 1, full)
        om.add("vsphere_license_used", base, used, full)
        om.add("vsphere_license_total", base, total, full)
    cost = parse_cost_config(COST)
    for cluster, cid in [("", ""), *CLUSTER_IDS.items()]:
        prices = cost.prices(cluster)
        labels = {**vc, "cluster_id": cid, "cluster": cluster}
        om.add("vsphere_cluster_price_per_vcpu_month", labels, prices.per_vcpu_month, full)
        om.add(
            "vsphere_cluster_price_per_memory_gib_month", labels, prices.per_gb_memory_month, full
        )
        om.add(
            "vsphere_cluster_price_per_storage_gib_month", labels, prices.per_gb_storage_month, full
        )
    return om.text()


# --- Prometheus ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrometheusProcess:
    def __init__(self, data: Path, rules: dict[str, Any] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config: dict[str, Any] = {"global": {"evaluation_interval": "1s"}}
        if rules is not None:
            (data.parent / f"{data.name}-rules.yml").write_text(yaml.safe_dump(rules))
            config["rule_files"] = [str(data.parent / f"{data.name}-rules.yml")]
        (data.parent / f"{data.name}.yml").write_text(yaml.safe_dump(config))
        self.log = open(data.parent / f"{data.name}.log", "wb")  # noqa: SIM115 - closed in stop
        self.proc = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={data.parent / f'{data.name}.yml'}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=30d",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError((data.parent / f"{data.name}.log").read_text())
            time.sleep(0.1)

    def query(self, expr: str) -> list[tuple[dict[str, str], float]]:
        return Prometheus(self.url).query(expr)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusProcess]:
    """Prometheus over the backfilled week, evaluating the rightsizing rules every second."""
    tmp = tmp_path_factory.mktemp("report")
    end = int(time.time())
    (tmp / "estate.om").write_text(estate(end))
    subprocess.run(
        [
            "promtool", "tsdb", "create-blocks-from", "openmetrics", "-q",
            "--max-block-duration=200h", "estate.om", "data",
        ],
        cwd=tmp,
        check=True,
        capture_output=True,
    )  # fmt: skip
    stage2 = [
        dict(g, interval="1s") for g in rule_file()["groups"] if g["name"] == RIGHTSIZING_GROUP
    ]
    server = PrometheusProcess(tmp / "data", {"groups": stage2})
    try:
        deadline = time.monotonic() + 30
        last = stage2[0]["rules"][-1]["record"]
        while not server.query(last) or not server.query("vsphere_vm:savings_per_month"):
            assert time.monotonic() < deadline, "the rules produced nothing"
            time.sleep(0.2)
        yield server
    finally:
        server.stop()


# --- the report ------------------------------------------------------------------------------


def check(report: Report) -> None:
    by_name = {v.vm: v for v in report.vms}
    assert [v.vm for v in report.with_reason("idle")] == IDLE
    assert {
        v.vm: (
            v.get("vsphere_vm:cpu_count:recommended"),
            v.get("vsphere_vm:memory_size_bytes:recommended"),
        )
        for v in report.with_reason("oversized")
    } == OVERSIZED
    assert [v.vm for v in report.with_reason("powered off")] == POWERED_OFF
    assert [v.vm for v in report.old_snapshots] == ["snap-01"]
    # Recommended sizes exist only for VMs with enough history, and only shrink when oversized.
    assert by_name["new-01"].get("vsphere_vm:cpu_count:recommended") is None
    assert by_name["db-01"].get("vsphere_vm:cpu_count:recommended") == 4
    assert by_name["db-01"].get("vsphere_vm:memory_size_bytes:recommended") == 20 * GIB
    assert by_name["web-01"].get("vsphere_vm:cpu_usage_ratio:p95") == pytest.approx(0.2)
    assert by_name["web-01"].get("vsphere_vm:memory_usage_ratio:p95") == pytest.approx(6 / 32)
    assert report.currency == "EUR"
    assert {v.vm: v.savings for v in report.vms if v.savings} == pytest.approx(SAVINGS)
    assert [v.vm for v in report.top_savings] == ["web-01", "old-app", "batch-01", "archive-01"]
    assert {v.vm: v.cost for v in report.vms} == pytest.approx(COSTS)
    c1, c2 = report.clusters
    assert (c1.cluster, c2.cluster) == ("C1", "C2")
    assert c1.values == pytest.approx(
        {
            "hosts": 4,
            "vsphere_cluster:vcpus_per_core:ratio": 14 / 80,
            "vsphere_cluster:vms_per_host:ratio": 3 / 4,
            "vsphere_cluster:hosts:needed": 3,
            "vsphere_cluster:hosts:freeable": 1,
            "vsphere_cluster:failover_capacity:ratio": 256 / (768 * 0.9),
        }
    )
    assert c2.values == pytest.approx(
        {
            "hosts": 2,
            "vsphere_cluster:vcpus_per_core:ratio": 8 / 40,
            "vsphere_cluster:vms_per_host:ratio": 3 / 2,
            "vsphere_cluster:hosts:needed": 3,
            "vsphere_cluster:hosts:freeable": 0,
            "vsphere_cluster:failover_capacity:ratio": 400 / (256 * 0.9),
        }
    )
    assert (c1.status, c2.status) == ("1 host could be freed", "short of N+1")
    assert (c1.cost, c1.savings, c2.cost, c2.savings) == pytest.approx((645, 295, 352, 40))


def test_from_raw_metrics_with_prices_from_the_config(prom: PrometheusProcess) -> None:
    report = gather(Prometheus(prom.url), source="raw", cost=parse_cost_config(COST))
    assert report.source == "raw"
    check(report)


def test_from_recording_rules_with_prices_from_the_exporter(prom: PrometheusProcess) -> None:
    report = gather(Prometheus(prom.url))
    assert report.source == "rules"
    check(report)
    # The cost rules (for Grafana) agree with the report's arithmetic.
    savings = {m["vm"]: v for m, v in prom.query("vsphere_vm:savings_per_month") if v}
    assert savings == pytest.approx(SAVINGS)
    costs = {m["vm"]: v for m, v in prom.query("vsphere_vm:cost_per_month")}
    assert costs == pytest.approx(COSTS)
    clusters = {m["cluster"]: v for m, v in prom.query("vsphere_cluster:savings_per_month")}
    assert clusters == pytest.approx({"C1": 295, "C2": 40})


def test_the_inlined_rules_are_the_rules(prom: PrometheusProcess) -> None:
    """Every recorded series equals its PromQL inlined down to the raw metrics."""

    def vector(expr: str) -> dict[str, float]:
        return {
            json.dumps({k: x for k, x in m.items() if k != "__name__"}, sort_keys=True): v
            for m, v in prom.query(expr)
        }

    rules = recording_rules()
    for rule in rules:
        recorded, inlined = vector(rule.record), vector(expand(rule.record, rules))
        assert recorded and recorded.keys() == inlined.keys(), rule.record
        for key, v in recorded.items():
            assert inlined[key] == pytest.approx(v, rel=1e-9), (rule.record, key)


def test_command_line_writes_markdown_and_csv(
    prom: PrometheusProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"cost": COST}))
    out = tmp_path / "out"
    code = report_mod.run(
        [
            "--prometheus-url", prom.url, "--config", str(config),
            "--out", str(out), "--top", "2", "--snapshot-days", "5",
        ]
    )  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    assert "Source: recording rules; window 7d; 7 VMs, 2 clusters" in text
    assert "Monthly cost 997.00 EUR; savings if rightsized 335.00 EUR." in text
    assert "== Top 2 savings" in text
    top = text.split("== Top 2 savings")[1].split("==")[0]
    assert "web-01" in top and "old-app" in top and "batch-01" not in top
    assert "8 vCPU / 32 GiB  3 vCPU / 12 GiB  200.00 EUR" in top
    md = (out / "report.md").read_text()
    assert "| batch-01 | C2 | 2 vCPU / 4 GiB | 1 vCPU / 2 GiB | 1.0 % | 25.0 % | 40.00 EUR |" in md
    assert (
        "| C2 | 2 | 0.20 | 1.50 | 173.6 % | 3 | 0 | short of N+1 | 352.00 EUR | 40.00 EUR |" in md
    )
    rows = list(csv.DictReader(io.StringIO((out / "report.csv").read_text())))
    findings = {(r["finding"], r["vm"] or r["cluster"]) for r in rows}
    assert findings == {
        ("oversized", "web-01"),
        ("idle", "old-app"),
        ("oversized", "batch-01"),
        ("powered_off", "archive-01"),
        ("snapshot", "snap-01"),
        ("cluster_1_host_could_be_freed", "C1"),
        ("cluster_short_of_Nplus1", "C2"),
    }
    web = next(r for r in rows if r["vm"] == "web-01")
    assert (web["recommended_vcpus"], web["recommended_memory_gib"]) == ("3", "12")
    assert web["savings_per_month"] == "200" and web["currency"] == "EUR"


def test_errors_are_reported_not_raised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()  # nothing listens there
    assert report_mod.run(["--prometheus-url", f"http://127.0.0.1:{port}"]) == 1
    assert "cannot reach Prometheus" in capsys.readouterr().err
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump({"cost": {"per_vcpu_month": "x"}}))
    assert report_mod.run(["--config", str(bad)]) == 2
    assert "cost.per_vcpu_month" in capsys.readouterr().err
    assert report_mod.run(["--window", "a week"]) == 2


def test_without_prices_the_savings_are_units(prom: PrometheusProcess) -> None:
    report = gather(Prometheus(prom.url), source="raw")
    # Prices come from the exporter's series when there is no config ...
    assert report.currency == "EUR"
    # ... and without either, the report still ranks by what could be given back.
    report.currency = None
    for vm in report.vms:
        vm.savings = vm.cost = None
    text = terminal(report) + markdown(report)
    assert "5 vCPU, 20 GiB mem, 0 GiB disk" in text
    assert "No prices" in text


def licence_rows(text: str) -> dict[str, list[str]]:
    """The terminal's licence table: licence name -> the other cells (columns are 2+ spaces)."""
    section = text.split("== Licences\n")[1].split("\n\n")[0].splitlines()[1:]
    cells = [re.split(r"\s{2,}", line.strip()) for line in section]
    return {row[0]: row[1:] for row in cells}


def test_licence_cost_from_the_configured_prices(prom: PrometheusProcess) -> None:
    cost = parse_cost_config({**COST, "licenses": LICENSE_PRICES})
    report = gather(Prometheus(prom.url), cost=cost)
    by_name = {lic.license: lic for lic in report.licenses}
    assert list(by_name) == [
        "Evaluation Mode",
        "VMware vCenter Server 8 Standard",
        "VMware vSphere 8 Enterprise Plus",
    ]
    esx = by_name["VMware vSphere 8 Enterprise Plus"]
    assert (esx.edition, esx.cost_unit, esx.used, esx.total) == (
        "esx.enterprisePlus.cpuPackage",
        "cpuPackage",
        14,
        18,
    )
    assert (esx.price, esx.used_cost, esx.total_cost, esx.unused_cost) == (150, 2100, 2700, 600)
    vcs = by_name["VMware vCenter Server 8 Standard"]  # priced by its edition key
    assert (vcs.price, vcs.used_cost, vcs.total_cost, vcs.unused_cost) == (400, 400, 400, 0)
    ev = by_name["Evaluation Mode"]
    assert (ev.price, ev.used_cost, ev.total_cost, ev.unused_cost) == (None, None, None, None)
    text = terminal(report)
    assert "Licences: 3,100.00 EUR / month for the capacity, 600.00 EUR of it unused." in text
    # The old snapshot's row says how much space the snapshots hold (layoutEx).
    assert "| snap-01 | C2 | 1 | 10.0 | 12 | 60 |" in markdown(report)
    assert licence_rows(text)["VMware vSphere 8 Enterprise Plus"] == [
        "esx.enterprisePlus.cpuPackage",
        "cpuPackage",
        "14",
        "18",
        "150.00 EUR",
        "2,100.00 EUR",
        "2,700.00 EUR",
        "600.00 EUR",
    ]
    md = markdown(report)
    assert (
        "| VMware vCenter Server 8 Standard | vc.standard.instance | server | 1 | 1 "
        "| 400.00 EUR | 400.00 EUR | 400.00 EUR | 0.00 EUR |" in md
    )
    assert "| Evaluation Mode | eval | - | 0 | unlimited | - | - | - | - |" in md


def test_licences_without_prices_are_listed_without_money(prom: PrometheusProcess) -> None:
    report = gather(Prometheus(prom.url), cost=parse_cost_config(COST))
    assert [lic.used_cost for lic in report.licenses] == [None, None, None]
    text = terminal(report)
    esx = licence_rows(text)["VMware vSphere 8 Enterprise Plus"]
    assert esx == ["esx.enterprisePlus.cpuPackage", "cpuPackage", "14", "18", "-", "-", "-", "-"]
    assert "Licences: no prices (cost.licenses)." in text


def test_licence_prices_are_validated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_cost_config({"licenses": {"x": 1}}).licenses == {"x": 1.0}
    bad = tmp_path / "bad.yml"
    for section, key in (
        (
            {"licenses": {"VMware vSphere 8 Enterprise Plus": "cheap"}},
            "cost.licenses.VMware vSphere 8 Enterprise Plus",
        ),
        ({"licenses": {"x": -1}}, "cost.licenses.x"),
        ({"licenses": ["x"]}, "cost.licenses"),
    ):
        bad.write_text(yaml.safe_dump({"cost": section}))
        assert report_mod.run(["--config", str(bad)]) == 2
        err = capsys.readouterr().err
        assert f"vha: configuration error: {key}: must" in err and "Traceback" not in err


def test_command_line_writes_the_licence_csv(
    prom: PrometheusProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"cost": {**COST, "licenses": LICENSE_PRICES}}))
    out = tmp_path / "out"
    assert (
        report_mod.run(["--prometheus-url", prom.url, "--config", str(config), "--out", str(out)])
        == 0
    )
    assert "licenses.csv" in capsys.readouterr().out
    rows = list(csv.DictReader(io.StringIO((out / "licenses.csv").read_text())))
    esx = next(r for r in rows if r["key_suffix"] == "1ESXP")
    assert esx == {
        "vcenter": "vc1",
        "license": "VMware vSphere 8 Enterprise Plus",
        "key_suffix": "1ESXP",
        "edition": "esx.enterprisePlus.cpuPackage",
        "cost_unit": "cpuPackage",
        "used": "14",
        "total": "18",
        "price_per_unit_month": "150",
        "used_per_month": "2100",
        "total_per_month": "2700",
        "unused_per_month": "600",
        "currency": "EUR",
    }
