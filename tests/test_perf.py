"""Performance counters: configuration, conversions, and the collector against the simulator."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim, vmodl

from exporter.cost import CostSource, parse_cost_config
from exporter.families import Family, render
from exporter.inventory import Inventory
from exporter.perf import (
    PerfCollector,
    PerfConfig,
    Sample,
    Target,
    build_families,
    convert_metrics,
    parse_performance_config,
)
from exporter.perf_counters import BY_KEY, COUNTERS, KINDS, counters_for
from exporter.render import Renderer
from exporter.sync import Follower
from sim.harness import Simulator
from vcenter.config import ConfigError, parse_config

from .exporter_fixtures import exporter_config, sim_vcenter
from .metrics_helpers import Sample as Scraped
from .metrics_helpers import parse, select, value
from .test_inventory import _image

DOC = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"
PerfMetric = vim.PerformanceManager


# --- configuration ---------------------------------------------------------------------------


def test_defaults_and_every_key() -> None:
    assert parse_performance_config(parse_config({})) == PerfConfig()
    perf = parse_performance_config(
        {
            "enabled": False,
            "interval_seconds": 60,
            "hosts": False,
            "vms": False,
            "counters": ["cpu_ready", "cpu_usage", "cpu_ready"],
            "batch_size": 50,
            "max_concurrent_queries": 2,
            "timeout_seconds": 10,
            "worker_process": False,
        }
    )
    assert not perf.enabled and not perf.hosts and not perf.vms and not perf.worker_process
    assert perf.counters == ("cpu_ready", "cpu_usage")
    assert (perf.interval_seconds, perf.batch_size, perf.max_concurrent_queries) == (60, 50, 2)
    assert perf.stale_after_seconds == 180


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"intervall_seconds": 20}, "performance.intervall_seconds"),
        ({"enabled": "yes"}, "performance.enabled"),
        ({"counters": ["cpu_usage", "cpu_rdy"]}, "performance.counters[1]"),
        ({"counters": []}, "performance.counters"),
        ({"batch_size": 0}, "performance.batch_size"),
        ({"batch_size": 2.5}, "performance.batch_size"),
        ({"max_concurrent_queries": 100}, "performance.max_concurrent_queries"),
        ({"interval_seconds": 0}, "performance.interval_seconds"),
        ({"timeout_seconds": "30"}, "performance.timeout_seconds"),
        ({"worker_process": "yes"}, "performance.worker_process"),
    ],
)
def test_errors_name_the_key(section: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_performance_config(parse_config({"performance": section}))
    assert err.value.key == key


def test_cost_config_and_price_series() -> None:
    cost = parse_cost_config(
        {
            "currency": "CHF",
            "per_vcpu_month": 20,
            "per_gb_memory_month": 5,
            "per_gb_storage_month": 0.1,
            "clusters": {"C0": {"per_vcpu_month": 30}},
        }
    )
    assert cost.prices("C0").per_vcpu_month == 30
    assert cost.prices("C0").per_gb_memory_month == 5  # inherited from the defaults
    assert cost.prices("").per_vcpu_month == 20
    samples = parse(render(CostSource(cost, [_image()]).families()))
    assert value(samples, "vsphere_cost_info", currency="CHF") == 1
    assert value(samples, "vsphere_cluster_price_per_vcpu_month", cluster="C0") == 30
    assert value(samples, "vsphere_cluster_price_per_vcpu_month", cluster_id="") == 20
    assert value(samples, "vsphere_cluster_price_per_storage_gib_month", cluster="C0") == 0.1
    assert CostSource(parse_cost_config(None), [_image()]).families() == []
    for section, key in [
        ({"per_cpu_month": 1}, "cost.per_cpu_month"),
        ({"per_vcpu_month": -1}, "cost.per_vcpu_month"),
        ({"clusters": {"C0": {"currency": "EUR"}}}, "cost.clusters.C0.currency"),
        (
            {"clusters": {"C0": {"per_gb_memory_month": "5"}}},
            "cost.clusters.C0.per_gb_memory_month",
        ),
    ]:
        with pytest.raises(ConfigError) as err:
            parse_cost_config(parse_config({"cost": section}))
        assert err.value.key == key


# --- conversions -----------------------------------------------------------------------------

IDS = {
    "cpu.usage.average": 2,
    "cpu.ready.summation": 12,
    "cpu.costop.summation": 399,
    "mem.active.average": 33,
    "mem.consumed.average": 98,
    "mem.vmmemctl.average": 90,
    "mem.swapped.average": 70,
    "mem.swapused.average": 49,
    "mem.swapinRate.average": 85,
    "mem.compressed.average": 105,
    "datastore.totalReadLatency.average": 182,
    "datastore.totalWriteLatency.average": 183,
    "datastore.numberReadAveraged.average": 178,
    "datastore.numberWriteAveraged.average": 179,
    "net.received.average": 148,
    "net.transmitted.average": 149,
    "net.droppedRx.summation": 460,
    "net.droppedTx.summation": 461,
}
NAMES = {v: k for k, v in IDS.items()}
ALL = {kind: counters_for(kind, tuple(BY_KEY)) for kind in KINDS}


def entity_metric(moid: str, kind: str, values: dict[tuple[str, str], list[int]]) -> Any:
    entity = vim.VirtualMachine(moid) if kind == "vm" else vim.HostSystem(moid)
    return PerfMetric.EntityMetric(
        entity=entity,
        sampleInfo=[PerfMetric.SampleInfo(timestamp=datetime.now(UTC), interval=20)],
        value=[
            PerfMetric.IntSeries(
                id=PerfMetric.MetricId(counterId=IDS[name], instance=instance), value=v
            )
            for (name, instance), v in values.items()
        ],
    )


def test_counters_become_base_units() -> None:
    vm = Target("vm", "vm-1", "web", 4)
    host = Target("host", "host-1", "esx1", 10)
    result = [
        entity_metric(
            "vm-1",
            "vm",
            {
                ("cpu.usage.average", ""): [1000, 2500],  # newest last: 25 %
                ("cpu.ready.summation", ""): [8000],  # 8 s of 4 x 20 s
                ("cpu.costop.summation", ""): [-1],  # vCenter's "no value"
                ("mem.active.average", ""): [1048576],  # 1 GiB in KiB
                ("mem.vmmemctl.average", ""): [0],
                ("mem.swapped.average", ""): [512],
                ("datastore.totalReadLatency.average", "ds-a"): [10],
                ("datastore.totalReadLatency.average", "ds-b"): [40],
                ("datastore.numberReadAveraged.average", "ds-a"): [300],
                ("datastore.numberReadAveraged.average", "ds-b"): [100],
                ("datastore.totalWriteLatency.average", "ds-a"): [3],
                ("datastore.totalWriteLatency.average", "ds-b"): [7],
                ("net.received.average", ""): [100],
                ("net.droppedRx.summation", ""): [30],
                ("net.droppedTx.summation", ""): [10],
            },
        ),
        entity_metric(
            "host-1",
            "host",
            {
                ("cpu.ready.summation", ""): [500000],  # more than the vCPUs' time: clamped
                ("mem.consumed.average", ""): [2],
                ("mem.swapused.average", ""): [4],
                ("mem.swapinRate.average", ""): [8],
                ("datastore.numberWriteAveraged.average", "ds-a"): [5],
                ("datastore.numberWriteAveraged.average", "ds-b"): [7],
            },
        ),
        entity_metric("vm-gone", "vm", {("cpu.usage.average", ""): [1]}),
    ]
    samples = convert_metrics(result, {"vm-1": vm, "host-1": host}, NAMES, ALL, 1000.0)
    by_moid = {s.target.moid: s.values for s in samples}
    assert set(by_moid) == {"vm-1", "host-1"}
    v = by_moid["vm-1"]
    assert v["cpu_usage"] == 0.25
    assert v["cpu_ready"] == 0.1
    assert "cpu_costop" not in v
    assert v["memory_active"] == 1024**3
    assert v["memory_balloon"] == 0
    assert v["memory_swapped"] == 512 * 1024
    assert v["disk_read_latency"] == pytest.approx((10 * 300 + 40 * 100) / 400 / 1000)
    assert v["disk_write_latency"] == 0.007  # no write counts: the worst datastore
    assert v["disk_reads"] == 400
    assert v["network_received"] == 100 * 1024
    assert v["network_dropped"] == 2.0
    h = by_moid["host-1"]
    assert h["cpu_ready"] == 1.0
    assert h["memory_consumed"] == 2048 and h["memory_swapped"] == 4096
    assert h["memory_swap_in"] == 8192 and h["disk_writes"] == 12


def test_csv_format_is_read_too() -> None:
    metric = PerfMetric.EntityMetricCSV(
        entity=vim.VirtualMachine("vm-1"),
        sampleInfoCSV="20,2025-01-01T00:00:00Z",
        value=[
            PerfMetric.MetricSeriesCSV(
                id=PerfMetric.MetricId(counterId=2, instance=""), value="1200,5000"
            )
        ],
    )
    (sample,) = convert_metrics([metric], {"vm-1": Target("vm", "vm-1", "a", 1)}, NAMES, ALL, 0)
    assert sample.values == {"cpu_usage": 0.5}


def fake_samples() -> dict[str, Sample]:
    """One host and one VM with a value for every counter."""
    out = {}
    for kind, moid, name in (("host", "host-1", "esx1"), ("vm", "vm-1", 'web "one"')):
        sample = Sample(Target(kind, moid, name, 2), 0.0)
        for counter in ALL[kind]:
            sample.values[counter.key] = 0.5
        out[moid] = sample
    return out


def documented(section: str) -> set[str]:
    names, current = set(), ""
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
        m = re.match(r"\|\s*`(vsphere_[a-z0-9_]+)`\s*\|", line)
        if m and current == section:
            names.add(m.group(1))
    return names


def test_every_performance_family_is_documented_and_every_documented_one_rendered() -> None:
    inv = _image()
    vc = exporter_config(
        {"name": "vc1", "url": "https://vc1/sdk", "user": "u", "password_env": "HOME"}
    ).vcenters[0]
    collector = PerfCollector(vc, inv, PerfConfig())
    collector._families = build_families("vc1", fake_samples(), PerfConfig())  # noqa: SLF001
    collector._families_at = time.time()  # noqa: SLF001
    collector.last_duration = collector.last_success = 1.0
    body = render(collector.families())
    code = set(re.findall(r"^# TYPE (vsphere_\w+) ", body, re.M))
    docs = documented("Performance counters")
    assert code - docs == set(), f"undocumented: {sorted(code - docs)}"
    assert docs - code == set(), f"documented but never rendered: {sorted(docs - code)}"
    cost = CostSource(parse_cost_config({"per_vcpu_month": 1}), [inv]).families()
    assert {f.name for f in cost} == documented("Cost")
    # Help strings are one line; every sample line parses (label escaping included).
    samples = parse(body)
    assert value(samples, "vsphere_vm_cpu_ready_ratio", vm='web "one"') == 0.5
    # Stale data is not served; the collector's own series are.
    collector._families_at = time.time() - 61  # noqa: SLF001
    names = {f.name for f in collector.families()}
    assert names == {n for n in docs if n.startswith("vsphere_perf_")}


def test_vm_counters_can_be_switched_off() -> None:
    perf = PerfConfig(vms=False, counters=("cpu_usage", "memory_consumed", "cpu_costop"))
    names = {f.name for f in build_families("vc1", fake_samples(), perf)}
    assert names == {"vsphere_host_cpu_usage_ratio", "vsphere_host_memory_consumed_bytes"}


# --- the collector against the simulator ----------------------------------------------------


class Running:
    """A simulator, its inventory follower and a perf collector (not yet started)."""

    def __init__(self, sim: Simulator, **perf: Any) -> None:
        self.sim = sim
        self.config = exporter_config(
            sim_vcenter(sim), performance={"interval_seconds": 1, "batch_size": 4, **perf}
        )
        self.vc = self.config.vcenters[0]
        self.inventory = Inventory(self.vc.name)
        self.follower = Follower(self.vc, self.inventory, self.config.sync)
        self.perf = parse_performance_config(self.config)
        self.collector = PerfCollector(self.vc, self.inventory, self.perf)
        self.renderer = Renderer(self.config, [self.inventory], [self.collector.families])

    def __enter__(self) -> Running:
        self.follower.start()
        deadline = time.monotonic() + 30
        while not (self.inventory.synced and self.inventory.up):
            assert time.monotonic() < deadline, "inventory did not sync"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.collector.stop(timeout=5)
        self.follower.stop(timeout=5)

    def scrape(self) -> list[Scraped]:
        return parse(self.renderer.render_now().decode())


@pytest.fixture(scope="module")
def perf_sim(sim_binary: Path) -> Iterator[Simulator]:
    sim = Simulator(
        clusters=2, hosts=2, vms=5, standalone_hosts=1, standalone_vms=1, binary=sim_binary
    )
    sim.start()
    yield sim
    sim.stop()


def test_collects_hosts_and_vms_end_to_end(perf_sim: Simulator) -> None:
    inv = perf_sim.inventory()
    with Running(perf_sim) as run:
        assert run.collector.collect_once()
        c = run.collector
        # Counter ids resolved by name, from the vCenter's own catalogue.
        pm = c._si.RetrieveContent().perfManager  # noqa: SLF001
        catalogue = {
            f"{i.groupInfo.key}.{i.nameInfo.key}.{i.rollupType}": i.key for i in pm.perfCounter
        }
        assert c.counter_ids and all(catalogue[n] == k for n, k in c.counter_ids.items())
        # 5 hosts + 11 VMs in batches of 4: 4 queries.
        assert c.queries_total == 4
        samples = run.scrape()
    hosts = {h["moid"]: h["name"] for h in inv["hosts"]}
    vms = {v["moid"]: v["name"] for v in inv["vms"] if v["powerState"] == "poweredOn"}
    assert value(samples, "vsphere_perf_entities", vcenter="vc1", type="host") == len(hosts)
    assert value(samples, "vsphere_perf_entities", vcenter="vc1", type="vm") == len(vms)
    assert value(samples, "vsphere_perf_counters", vcenter="vc1") == len(c.counter_ids)
    assert value(samples, "vsphere_perf_queries_total", vcenter="vc1") == 4
    for kind, objects in (("host", hosts), ("vm", vms)):
        for name in ("cpu_usage_ratio", "cpu_ready_ratio", "memory_active_bytes"):
            series = select(samples, f"vsphere_{kind}_{name}")
            assert {s.labels[f"{kind}_id"]: s.labels[kind] for s in series} == objects, name
    perf_names = {f"vsphere_{k}_{c.metric}" for k in KINDS for c in COUNTERS}
    served = [s for s in samples if s.name in perf_names]
    assert len(served) >= 3 * (len(hosts) + len(vms))
    for s in served:
        kind = s.name.split("_")[1]
        assert set(s.labels) == {"vcenter", f"{kind}_id", kind}, s
        assert s.value >= 0, s
        if s.name.endswith("_ratio"):
            assert 0 <= s.value <= 1, s
        if s.name.endswith("_bytes") or s.name.endswith("bytes_per_second"):
            assert s.value % 1024 == 0, s  # KiB counters scaled to bytes
        if s.name.endswith("_latency_seconds"):
            assert s.value < 10, s  # seconds, not milliseconds
    consumed = select(samples, "vsphere_host_memory_consumed_bytes")
    assert consumed and all(s.value > 2**30 for s in consumed)  # GiB of host memory
    # The quickStats metric of the same name is the only VM consumed-memory series.
    assert select(samples, "vsphere_vm_memory_consumed_bytes") == [] or all(
        s.labels.keys() == {"vcenter", "vm_id", "vm"}
        for s in select(samples, "vsphere_vm_memory_consumed_bytes")
    )


def test_per_vm_counters_switched_off(perf_sim: Simulator) -> None:
    with Running(perf_sim, vms=False, counters=["cpu_usage", "cpu_ready"]) as run:
        assert run.collector.collect_once()
        assert run.collector.queries_total == 2  # 5 hosts in batches of 4
        samples = run.scrape()
    assert select(samples, "vsphere_vm_cpu_usage_ratio") == []
    assert value(samples, "vsphere_perf_entities", type="vm") == 0
    assert len(select(samples, "vsphere_host_cpu_ready_ratio")) == 5
    assert select(samples, "vsphere_host_memory_active_bytes") == []
    assert select(samples, "vsphere_vm_info")  # the inventory is untouched


def test_a_failing_query_is_counted_and_the_last_values_kept(perf_sim: Simulator) -> None:
    with Running(perf_sim) as run:
        assert run.collector.collect_once()
        before = len(select(run.scrape(), "vsphere_vm_cpu_usage_ratio"))
        perf_sim.inject_fault("QueryPerf", "SystemError", count=1)
        try:
            assert run.collector.collect_once()
        finally:
            perf_sim.clear_faults()
        samples = run.scrape()
        assert value(samples, "vsphere_perf_errors_total", reason="fault") == 1
        # The failed batch's entities keep their previous sample (fresh enough).
        assert len(select(samples, "vsphere_vm_cpu_usage_ratio")) == before
        last = value(samples, "vsphere_perf_last_success_timestamp_seconds")
        assert run.collector.collect_once()
        assert value(run.scrape(), "vsphere_perf_last_success_timestamp_seconds") > last


def test_a_powered_off_vm_loses_its_series(perf_sim: Simulator) -> None:
    with Running(perf_sim) as run:
        assert run.collector.collect_once()
        vm = select(run.scrape(), "vsphere_vm_cpu_usage_ratio")[0].labels["vm"]
        perf_sim.set_vm(vm, powerState="poweredOff")
        try:
            deadline = time.monotonic() + 10
            while any(
                o.name == vm and o.get("runtime.powerState") == "poweredOn"
                for o in list(run.inventory.objects.values())
            ):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert run.collector.collect_once()
            assert select(run.scrape(), "vsphere_vm_cpu_usage_ratio", vm=vm) == []
        finally:
            perf_sim.set_vm(vm, powerState="poweredOn")


def families_latency(collector: PerfCollector, seconds: float) -> float:
    """The slowest families() call over ``seconds`` of calling it in a loop."""
    worst = 0.0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.perf_counter()
        collector.families()
        worst = max(worst, time.perf_counter() - start)
        time.sleep(0.01)
    return worst


def test_a_stopped_vcenter_is_counted_without_blocking_families(sim_binary: Path) -> None:
    sim = Simulator(clusters=1, hosts=1, vms=2, binary=sim_binary)
    sim.start()
    try:
        with Running(sim) as run:
            run.collector.start()
            deadline = time.monotonic() + 10
            while run.collector.collections_total == 0:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert select(parse(render(run.collector.families())), "vsphere_vm_cpu_usage_ratio")
            # Freeze the inventory as last synced (its follower would mark the vCenter down
            # and the collector would then not even try), then kill the vCenter.
            run.follower.stop(timeout=5)
            sim.stop()
            deadline = time.monotonic() + 15
            while sum(run.collector.errors_total.values()) == 0:
                assert families_latency(run.collector, 0.2) < 0.05
                assert time.monotonic() < deadline, "no error counted"
            errors = run.collector.errors_total
            assert errors["connect"] + errors["session"] + errors["timeout"] >= 1
            # The inventory going down hides the performance series too.
            run.inventory.record_error("connect", "refused")
            names = {f.name for f in run.collector.families()}
            assert names and all(n.startswith("vsphere_perf_") for n in names)
    finally:
        sim.stop()


def test_a_hanging_vcenter_times_out_without_blocking_families() -> None:
    """A vCenter that accepts connections and never answers: logins time out, counted."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    config = exporter_config(
        {
            "name": "vc1",
            "url": f"https://127.0.0.1:{port}/sdk",
            "user": "u",
            "password_env": "HOME",
            "verify_tls": False,
        },
        performance={"interval_seconds": 1, "timeout_seconds": 1},
    )
    collector = PerfCollector(config.vcenters[0], _image(), parse_performance_config(config))
    collector.start()
    try:
        assert families_latency(collector, 1.5) < 0.05
        deadline = time.monotonic() + 10
        while collector.errors_total["timeout"] == 0:
            assert time.monotonic() < deadline, collector.errors_total
            time.sleep(0.05)
        body = render(collector.families())
        assert 'vsphere_perf_errors_total{vcenter="vc1",reason="timeout"}' in body
    finally:
        collector.stop(timeout=3)
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


class Proxy:
    """A TCP proxy to the simulator that can start swallowing traffic (a vCenter that hangs)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.hang = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client = self.listener.accept()[0]
            except TimeoutError:
                continue
            upstream = socket.create_connection(("127.0.0.1", self.upstream))
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if not self.hang.is_set():
                    dst.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for sock in [*self.sockets, self.listener]:
            sock.close()


def test_a_slow_query_times_out_without_blocking_families(perf_sim: Simulator) -> None:
    proxy = Proxy(perf_sim.port)
    try:
        with Running(perf_sim, timeout_seconds=1) as run:
            run.collector.vc = dataclasses.replace(
                run.vc, url=f"https://127.0.0.1:{proxy.port}/sdk"
            )
            assert run.collector.collect_once()
            served = len(select(run.scrape(), "vsphere_vm_cpu_usage_ratio"))
            proxy.hang.set()  # every QueryPerf from now on waits for an answer that never comes
            worker = threading.Thread(target=run.collector.collect_once)
            worker.start()
            assert families_latency(run.collector, 0.5) < 0.05
            worker.join(timeout=10)
            assert not worker.is_alive()
            assert run.collector.errors_total["timeout"] >= 1
            samples = run.scrape()
            assert value(samples, "vsphere_perf_errors_total", reason="timeout") >= 1
            assert len(select(samples, "vsphere_vm_cpu_usage_ratio")) == served  # kept
    finally:
        proxy.close()


class FakePerfManager:
    """Fails the first query naming ``gone`` with ManagedObjectNotFound, as vCenter does."""

    def __init__(self, gone: str) -> None:
        self.gone = gone
        self.calls: list[list[str]] = []
        self.perfCounter = [
            PerfMetric.CounterInfo(
                key=2,
                nameInfo=vim.ElementDescription(key="usage"),
                groupInfo=vim.ElementDescription(key="cpu"),
                unitInfo=vim.ElementDescription(key="percent"),
                rollupType="average",
            ),
            PerfMetric.CounterInfo(  # reported in another unit: skipped
                key=12,
                nameInfo=vim.ElementDescription(key="ready"),
                groupInfo=vim.ElementDescription(key="cpu"),
                unitInfo=vim.ElementDescription(key="percent"),
                rollupType="summation",
            ),
        ]

    def QueryPerf(self, querySpec: list[Any]) -> list[Any]:  # noqa: N802, N803 - vSphere API
        moids = [str(s.entity._moId) for s in querySpec]
        self.calls.append(moids)
        if self.gone in moids:
            raise vmodl.fault.ManagedObjectNotFound(obj=vim.VirtualMachine(self.gone))
        return [entity_metric(m, "vm", {("cpu.usage.average", ""): [5000]}) for m in moids]


def test_a_vm_deleted_between_inventory_and_query_is_dropped_not_fatal() -> None:
    inv = Inventory("vc1")
    from exporter.inventory import ManagedObject  # noqa: PLC0415

    inv.replace(
        {
            m: ManagedObject(
                m,
                "VirtualMachine",
                {"name": m, "runtime.powerState": "poweredOn", "summary.config.numCpu": 1},
            )
            for m in ("vm-1", "vm-2", "vm-3")
        },
        {},
    )
    pm = FakePerfManager(gone="vm-2")

    class FakeSI:
        def RetrieveContent(self) -> Any:  # noqa: N802 - vSphere API
            return type("Content", (), {"perfManager": pm, "about": vim.AboutInfo()})()

    vc = exporter_config(
        {"name": "vc1", "url": "https://vc1/sdk", "user": "u", "password_env": "HOME"}
    ).vcenters[0]
    collector = PerfCollector(
        vc,
        inv,
        PerfConfig(counters=("cpu_usage", "cpu_ready")),
        connect_fn=lambda vc, timeout: FakeSI(),
    )
    assert collector.collect_once()
    assert collector.counter_ids == {"cpu.usage.average": 2}
    assert pm.calls == [["vm-1", "vm-2", "vm-3"], ["vm-1", "vm-3"]]
    assert sum(collector.errors_total.values()) == 0
    assert set(collector.samples) == {"vm-1", "vm-3"}
    assert collector.samples["vm-1"].values == {"cpu_usage": 0.5}
    assert isinstance(collector.families()[0], Family)


# --- the plain-XML QueryPerf path -----------------------------------------------------------


def test_the_xml_path_and_the_pyvmomi_path_read_the_same(perf_sim: Simulator) -> None:
    with Running(perf_sim) as run:
        fast = run.collector
        assert fast.collect_once() and fast._soap is not None  # noqa: SLF001
        slow = PerfCollector(run.vc, run.inventory, run.perf)
        slow.use_soap = False
        try:
            assert slow.collect_once() and slow._soap is None  # noqa: SLF001
            # The simulator adds noise to every answer: compare what was read, and its scale.
            for moid, sample in fast.samples.items():
                other = slow.samples[moid].values
                assert sample.values.keys() == other.keys(), moid
                for key, v in sample.values.items():
                    assert v == pytest.approx(other[key], rel=3, abs=1e-3), (moid, key)
        finally:
            slow.stop()


def test_the_worker_process_parses_and_reads_the_same(perf_sim: Simulator) -> None:
    """Issue 15 item 4: by default the answers are parsed in a process of its own (the
    parse no longer holds the GIL that scrapes wait on); it reads what the in-thread
    parse reads."""
    with Running(perf_sim) as run:
        worker = run.collector
        assert worker.collect_once() and worker.worker is not None
        assert worker.worker.pid not in (None, os.getpid())
        assert worker.worker.parsed_total > 0 and sum(worker.errors_total.values()) == 0
        local = PerfCollector(
            run.vc, run.inventory, dataclasses.replace(run.perf, worker_process=False)
        )
        try:
            assert local.collect_once() and local.worker is None
            assert worker.samples.keys() == local.samples.keys() and worker.samples
            for moid, sample in worker.samples.items():
                other = local.samples[moid]
                assert sample.target == other.target
                assert sample.values.keys() == other.values.keys(), moid
        finally:
            local.stop()


def test_a_dead_worker_process_fails_one_collection_and_is_replaced(perf_sim: Simulator) -> None:
    with Running(perf_sim) as run:
        collector = run.collector
        assert collector.collect_once() and collector.worker is not None
        first = collector.worker.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        time.sleep(0.5)
        assert collector.collect_once()
        assert collector.errors_total["other"] > 0  # that round's batches failed, counted
        assert collector.collect_once()
        assert collector.worker.pid not in (None, first)
        assert collector.samples


FAULT = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode>
<faultstring>{message}</faultstring><detail>{detail}</detail></soapenv:Fault></soapenv:Body>
</soapenv:Envelope>"""


@pytest.mark.parametrize(
    ("detail", "kind", "reason"),
    [
        (
            '<ManagedObjectNotFoundFault xmlns="urn:vim25" xsi:type="ManagedObjectNotFound">'
            '<obj type="VirtualMachine">vm-42</obj></ManagedObjectNotFoundFault>',
            vmodl.fault.ManagedObjectNotFound,
            "fault",
        ),
        (
            '<NotAuthenticatedFault xmlns="urn:vim25" xsi:type="NotAuthenticated">'
            "</NotAuthenticatedFault>",
            vim.fault.NotAuthenticated,
            "auth",
        ),
        (
            '<SystemErrorFault xmlns="urn:vim25" xsi:type="SystemError"><reason>x</reason>'
            "</SystemErrorFault>",
            vmodl.fault.SystemError,
            "fault",
        ),
        ("<SomethingNewFault xmlns='urn:vim25'/>", vmodl.MethodFault, "fault"),
    ],
)
def test_soap_faults_become_pyvmomi_faults(detail: str, kind: type, reason: str) -> None:
    from exporter.perf_soap import fault_from  # noqa: PLC0415
    from vcenter.session import classify  # noqa: PLC0415

    exc = fault_from(FAULT.format(message="it failed", detail=detail).encode(), 500)
    assert isinstance(exc, kind) and classify(exc) == reason
    if isinstance(exc, vmodl.fault.ManagedObjectNotFound):
        assert exc.obj._moId == "vm-42"
    assert classify(fault_from(b"<html>proxy error</html>", 502)) == "connect"


_ORPHAN = """
import os, sys
from exporter.perf_worker import ParseWorker
if __name__ == "__main__":
    worker = ParseWorker(30)
    worker.run(b"<a/>", [], {}, ())
    print(worker.pid, flush=True)
    os._exit(0)  # gone without stopping its collector: killed, or exited mid-collection
"""


def test_the_worker_process_ends_with_the_exporter(tmp_path: Path) -> None:
    """A ProcessPoolExecutor worker waits on its queue forever once its parent is gone;
    the parse worker watches its parent and exits (seen: 41 MB workers outliving their
    exporters after a stop during a collection)."""
    script = tmp_path / "orphan.py"
    script.write_text(_ORPHAN)
    out = tmp_path / "pid"
    with out.open("w") as stdout:  # a file, not a pipe: an orphan would hold a pipe open
        subprocess.run([sys.executable, str(script)], stdout=stdout, timeout=60, check=True)
    pid = int(out.read_text().split()[0])
    try:
        deadline = time.monotonic() + 15
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not Path(f"/proc/{pid}").exists(), "the worker outlived its parent"
    finally:
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)
