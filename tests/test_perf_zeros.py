"""QueryPerf answers carry zero-valued samples, as vCenter's do (sim/perfzeros.go).

vcsim used to drop every 0 from PerfMetricIntSeries.value, so a VM that is not ballooning
had no balloon series at all; a real vCenter reports mem.vmmemctl 0. These tests read the
simulator's answer three ways: the raw XML (the shape), pyVmomi (the other client) and the
exporter (the series it serves).
"""

from __future__ import annotations

import ssl
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from exporter.perf_soap import XSI_TYPE, metric_ids_xml, parse_response, request_body
from sim.harness import Simulator

from .metrics_helpers import select
from .test_perf import Running

VIM = "{urn:vim25}"
# Counters vcsim has no sample data for on a VM: it fills them with 0 (healthy VM values).
# (cpu.costop.summation has canned data, mostly 0 with small spikes: present, not always 0.)
ZERO_COUNTERS = (
    "mem.vmmemctl.average",
    "mem.swapped.average",
    "mem.swapinRate.average",
    "net.droppedRx.summation",
    "net.droppedTx.summation",
)


@pytest.fixture(scope="module")
def zsim(sim_binary: Path) -> Iterator[Simulator]:
    sim = Simulator(clusters=1, hosts=2, vms=3, binary=sim_binary)
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def si(zsim: Simulator) -> Iterator[Any]:
    si = SmartConnect(**zsim.connection_kwargs())
    yield si
    Disconnect(si)


def _counter_ids(si: Any) -> dict[str, int]:
    pm = si.RetrieveContent().perfManager
    return {f"{c.groupInfo.key}.{c.nameInfo.key}.{c.rollupType}": c.key for c in pm.perfCounter}


def _a_vm(si: Any) -> vim.VirtualMachine:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return next(v for v in view.view if v.runtime.powerState == "poweredOn")
    finally:
        view.Destroy()


def _raw_query_perf(si: Any, zsim: Simulator, body: bytes) -> bytes:
    """POST a QueryPerf body on the pyVmomi session (the exporter's fast path does the same)."""
    ctx = ssl.create_default_context(cafile=zsim.ca_file) if zsim.ca_file else None
    if ctx is None:
        ctx = ssl._create_unverified_context()  # noqa: S323 - the simulator's own certificate
    req = urllib.request.Request(  # noqa: S310 - the simulator on 127.0.0.1
        zsim.sdk_url,
        data=body,
        headers={
            "Cookie": si._stub.cookie,  # noqa: SLF001
            "SOAPAction": si._stub.versionId,  # noqa: SLF001
            "Content-Type": "text/xml; charset=UTF-8",
        },
    )
    with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:  # noqa: S310
        data: bytes = resp.read()
    return data


def test_the_xml_answer_has_every_sample_zeros_included(si: Any, zsim: Simulator) -> None:
    ids = _counter_ids(si)
    vm = _a_vm(si)
    wanted = [(ids[n], "") for n in ("cpu.usage.average", *ZERO_COUNTERS)]
    pm = si.RetrieveContent().perfManager._moId  # noqa: SLF001
    body = request_body(pm, [("VirtualMachine", vm._moId, metric_ids_xml(wanted))], 20)  # noqa: SLF001
    body = body.replace(b"<maxSample>1</maxSample>", b"<maxSample>3</maxSample>")
    root = ET.fromstring(_raw_query_perf(si, zsim, body))
    (rv,) = root.iter(f"{VIM}returnval")
    assert rv.get(XSI_TYPE) == "PerfEntityMetric"
    stamps = [e.findtext(f"{VIM}timestamp") or "" for e in rv.findall(f"{VIM}sampleInfo")]
    assert len(stamps) == 3
    # oldest first, as vCenter lists them (a client reads the last sample as the newest)
    times = [datetime.fromisoformat(s.replace("Z", "+00:00")) for s in stamps]
    assert times == sorted(times) and times[0] < times[-1]
    series = rv.findall(f"{VIM}value")
    assert len(series) == len(wanted)
    by_counter = {}
    for s in series:
        assert s.get(XSI_TYPE) == "PerfMetricIntSeries"
        values = [v.text for v in s.findall(f"{VIM}value")]
        assert len(values) == 3, values  # one per sampleInfo, as the API reference requires
        by_counter[int(s.findtext(f"{VIM}id/{VIM}counterId") or -1)] = [
            int(v or "") for v in values
        ]
    for name in ZERO_COUNTERS:
        assert by_counter[ids[name]] == [0, 0, 0], name
    assert any(v > 0 for v in by_counter[ids["cpu.usage.average"]])
    # the exporter's ElementTree parser reads the zeros too
    (parsed,) = parse_response(ET.tostring(root))
    assert {s.id.counterId: s.value for s in parsed.value}[ids["mem.vmmemctl.average"]] == [0, 0, 0]


def test_pyvmomi_reads_the_zero_samples(si: Any) -> None:
    ids = _counter_ids(si)
    vm = _a_vm(si)
    pm = si.RetrieveContent().perfManager
    spec = vim.PerformanceManager.QuerySpec(
        entity=vm,
        metricId=[
            vim.PerformanceManager.MetricId(counterId=ids[n], instance="") for n in ZERO_COUNTERS
        ],
        intervalId=20,
        maxSample=2,
    )
    (metric,) = pm.QueryPerf(querySpec=[spec])
    assert isinstance(metric, vim.PerformanceManager.EntityMetric)
    assert len(metric.sampleInfo) == 2
    for series in metric.value:
        assert isinstance(series, vim.PerformanceManager.IntSeries)
        assert list(series.value) == [0, 0], series.id.counterId


def test_format_csv_is_answered_in_csv(si: Any) -> None:
    ids = _counter_ids(si)
    vm = _a_vm(si)
    pm = si.RetrieveContent().perfManager
    spec = vim.PerformanceManager.QuerySpec(
        entity=vm,
        metricId=[
            vim.PerformanceManager.MetricId(counterId=ids[n], instance="")
            for n in ("cpu.usage.average", "mem.vmmemctl.average")
        ],
        intervalId=20,
        maxSample=2,
        format="csv",
    )
    (metric,) = pm.QueryPerf(querySpec=[spec])
    assert isinstance(metric, vim.PerformanceManager.EntityMetricCSV)
    info = metric.sampleInfoCSV.split(",")  # interval1,date1,interval2,date2
    assert len(info) == 4 and info[0] == info[2] == "20"
    assert datetime.fromisoformat(info[1]) < datetime.fromisoformat(info[3])
    values = {s.id.counterId: s.value for s in metric.value}
    assert values[ids["mem.vmmemctl.average"]] == "0,0"
    assert len(values[ids["cpu.usage.average"]].split(",")) == 2


@pytest.mark.parametrize("soap", [True, False], ids=["xml-path", "pyvmomi-path"])
def test_the_exporter_serves_zero_series_for_a_healthy_vm(zsim: Simulator, soap: bool) -> None:
    with Running(zsim) as run:
        run.collector.use_soap = soap
        assert run.collector.collect_once()
        assert (run.collector._soap is not None) == soap  # noqa: SLF001
        samples = run.scrape()
    vms = {s.labels["vm"] for s in select(samples, "vsphere_vm_cpu_usage_ratio")}
    assert vms
    # mostly 0 on the simulator: before zeros were kept, most collections had no series
    assert {s.labels["vm"] for s in select(samples, "vsphere_vm_cpu_costop_ratio")} == vms
    for name in (
        "vsphere_vm_memory_balloon_bytes",
        "vsphere_vm_memory_swapped_bytes",
        "vsphere_vm_memory_swap_in_bytes_per_second",
        "vsphere_vm_network_dropped_packets_per_second",
        "vsphere_host_memory_balloon_bytes",
        "vsphere_host_network_dropped_packets_per_second",
    ):
        series = select(samples, name)
        kind = name.split("_")[1]
        if kind == "vm":
            assert {s.labels["vm"] for s in series} == vms, name
        else:
            assert series, name
        assert all(s.value == 0 for s in series), name
