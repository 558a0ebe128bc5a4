"""Per-datastore latency and IOPS, built from the hosts' per-datastore performance samples."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from exporter.families import render
from exporter.inventory import Inventory, ManagedObject
from exporter.perf import PerfConfig, Target, build_families, convert_metrics
from exporter.perf_datastores import datastore_index, instance_of
from sim.harness import Simulator

from .metrics_helpers import parse, select, value
from .test_perf import ALL, NAMES, Running, entity_metric

READ_LAT = "datastore.totalReadLatency.average"
WRITE_LAT = "datastore.totalWriteLatency.average"
READS = "datastore.numberReadAveraged.average"
WRITES = "datastore.numberWriteAveraged.average"


def test_instance_is_the_last_path_component_of_the_url() -> None:
    assert instance_of("ds:///vmfs/volumes/5a69b18a-c03cd88c-36ae-5254001249ce/") == (
        "5a69b18a-c03cd88c-36ae-5254001249ce"
    )
    assert instance_of("ds:///vmfs/volumes/vsan:52654c2aa8e79416-8ea7a3309e82c7b7/") == (
        "vsan:52654c2aa8e79416-8ea7a3309e82c7b7"
    )
    assert instance_of("/tmp/govcsim-DC0-LocalDS_0-1") == "govcsim-DC0-LocalDS_0-1"
    assert instance_of("") == "" and instance_of(None) == ""


def _inventory() -> Inventory:
    inv = Inventory("vc1")
    for moid, name, url in (
        ("datastore-1", "fast", "ds:///vmfs/volumes/uuid-a/"),
        ("datastore-2", "slow", "ds:///vmfs/volumes/uuid-b/"),
        ("datastore-3", "idle", "ds:///vmfs/volumes/uuid-c/"),
        ("datastore-4", "no-url", None),
    ):
        props = {"name": name, "summary.url": url}
        inv.objects[moid] = ManagedObject(moid, "Datastore", props)
    return inv


def test_hosts_samples_aggregate_per_datastore() -> None:
    """Reads and writes summed over hosts; latency weighted by each host's operations."""
    hosts = {m: Target("host", m, m.replace("host", "esx"), 0) for m in ("host-1", "host-2")}
    result = [
        entity_metric(
            "host-1",
            "host",
            {
                (READ_LAT, "uuid-a"): [10],
                (READ_LAT, "uuid-b"): [30],
                (READS, "uuid-a"): [300],
                (READS, "uuid-b"): [50],
                (WRITE_LAT, "uuid-a"): [4],
                (WRITES, "uuid-a"): [0],
                (READ_LAT, "uuid-c"): [0],
                (READS, "uuid-c"): [0],
                (READS, "uuid-unknown"): [7],  # a datastore the inventory does not hold
            },
        ),
        entity_metric(
            "host-2",
            "host",
            {
                (READ_LAT, "uuid-a"): [40],
                (READS, "uuid-a"): [100],
                (WRITE_LAT, "uuid-a"): [9],
                (WRITES, "uuid-a"): [0],
                (READ_LAT, "uuid-b"): [5],  # reads without a read count: weight 0
            },
        ),
    ]
    samples = {s.target.moid: s for s in convert_metrics(result, hosts, NAMES, ALL, 1000.0)}
    index = datastore_index(_inventory())
    assert index == {
        "uuid-a": ("datastore-1", "fast"),
        "uuid-b": ("datastore-2", "slow"),
        "uuid-c": ("datastore-3", "idle"),
    }
    parsed = parse(render(build_families("vc1", samples, PerfConfig(), index)))

    def get(name: str, ds: str) -> float:
        return value(parsed, name, vcenter="vc1", datastore=ds)

    assert get("vsphere_datastore_reads_per_second", "fast") == 400
    assert get("vsphere_datastore_read_latency_seconds", "fast") == pytest.approx(
        (10 * 300 + 40 * 100) / 400 / 1000
    )
    # No writes anywhere: the worst host's latency, as for a host over its datastores.
    assert get("vsphere_datastore_write_latency_seconds", "fast") == pytest.approx(0.009)
    assert get("vsphere_datastore_writes_per_second", "fast") == 0
    assert get("vsphere_datastore_reads_per_second", "slow") == 50
    assert get("vsphere_datastore_read_latency_seconds", "slow") == pytest.approx(0.030)
    assert get("vsphere_datastore_reads_per_second", "idle") == 0
    assert get("vsphere_datastore_read_latency_seconds", "idle") == 0
    for s in select(parsed, "vsphere_datastore_reads_per_second"):
        assert set(s.labels) == {"vcenter", "datastore_id", "datastore"}, s
    ids = {s.labels["datastore_id"] for s in select(parsed, "vsphere_datastore_reads_per_second")}
    assert ids == {"datastore-1", "datastore-2", "datastore-3"}
    # The hosts' own disk metrics are unchanged by keeping the per-datastore values.
    assert value(parsed, "vsphere_host_disk_reads_per_second", host_id="host-1") == 357


def test_no_datastore_families_without_host_counters() -> None:
    index = datastore_index(_inventory())
    names = {f.name for f in build_families("vc1", {}, PerfConfig(hosts=False), index)}
    assert not any(n.startswith("vsphere_datastore_") for n in names)
    only = PerfConfig(counters=("disk_reads", "cpu_usage"))
    names = {f.name for f in build_families("vc1", {}, only, index)}
    assert {n for n in names if n.startswith("vsphere_datastore_")} == {
        "vsphere_datastore_reads_per_second"
    }


# --- against the simulator ------------------------------------------------------------------


def set_datastore_perf(sim: Simulator, name: str, **model: int) -> dict[str, Any]:
    """POST /api/v1/datastores/{name}/perf (docs/simulator.md): what each host mounting the
    datastore reports for it (``readLatencyMs``, ``writeLatencyMs``, ``readsPerSecond``,
    ``writesPerSecond``)."""
    path = f"/api/v1/datastores/{urllib.parse.quote(name, safe='')}/perf"
    return cast(dict[str, Any], sim._request("POST", path, model))  # noqa: SLF001


@pytest.fixture(scope="module")
def ds_sim(sim_binary: Path) -> Iterator[Simulator]:
    sim = Simulator(datacenters=2, clusters=1, hosts=2, vms=2, binary=sim_binary)
    sim.start()
    yield sim
    sim.stop()


def test_per_datastore_families_end_to_end(ds_sim: Simulator) -> None:
    inv = ds_sim.inventory()
    datastores = ds_sim.datastores()
    assert len(datastores) == 2
    model = {"readsPerSecond": 100, "readLatencyMs": 12, "writesPerSecond": 7, "writeLatencyMs": 30}
    # Both datacenters' datastores are called LocalDS_0: the answer says which one was set.
    changed = set_datastore_perf(ds_sim, "LocalDS_0", **model)
    assert changed["instance"] and changed["moid"].split("@")[0].endswith(changed["instance"])
    busy = next(d for d in datastores if d["moid"] == changed["moid"])
    with Running(ds_sim) as run:
        assert run.collector.collect_once()
        samples = run.scrape()
    dc_of_busy = busy["moid"].split("govcsim-")[1].split("-")[0]  # DC0 / DC1
    hosts = [h for h in inv["hosts"] if h["name"].startswith(dc_of_busy + "_")]
    assert len(hosts) == 2
    got = {
        s.labels["datastore_id"]: s for s in select(samples, "vsphere_datastore_reads_per_second")
    }
    assert set(got) == {d["moid"] for d in datastores}
    b = got[busy["moid"]]
    assert b.labels == {"vcenter": "vc1", "datastore_id": busy["moid"], "datastore": busy["name"]}
    assert b.value == 100 * len(hosts)
    lat = {"datastore_id": busy["moid"]}
    assert value(samples, "vsphere_datastore_read_latency_seconds", **lat) == 0.012
    assert value(samples, "vsphere_datastore_write_latency_seconds", **lat) == 0.030
    assert value(samples, "vsphere_datastore_writes_per_second", **lat) == 7 * len(hosts)
    other = next(d for d in datastores if d["moid"] != busy["moid"])
    # The simulator's default load: 40 reads/s at 2 ms per host.
    assert got[other["moid"]].value == 40 * 2
    assert value(samples, "vsphere_datastore_read_latency_seconds", datastore_id=other["moid"]) == (
        0.002
    )


def test_a_host_that_unmounts_a_datastore_stops_adding_to_it(ds_sim: Simulator) -> None:
    """Operations are summed over the hosts that report the datastore, and only those."""
    changed = set_datastore_perf(ds_sim, "LocalDS_0", readsPerSecond=10)
    dc = changed["moid"].split("govcsim-")[1].split("-")[0]
    host = next(h["name"] for h in ds_sim.inventory()["hosts"] if h["name"].startswith(dc + "_"))
    ds_sim.set_mounts(host, datastores=[])
    try:
        with Running(ds_sim) as run:
            assert run.collector.collect_once()
            samples = run.scrape()
    finally:
        ds_sim.set_mounts(host, datastores=["LocalDS_0"])
    # Its datacenter's other host alone reports the datastore now.
    assert value(samples, "vsphere_datastore_reads_per_second", datastore_id=changed["moid"]) == 10
