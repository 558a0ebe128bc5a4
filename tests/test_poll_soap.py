"""The poll's pages read as plain XML (exporter/poll_soap.py), in a worker process or not:
the same inventory as through pyVmomi, over vCenter-style paging, faults judged alike."""

from __future__ import annotations

import io
import os
import signal
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import SoapAdapter, vim, vmodl

from exporter.app import EXPORTER, create_app
from exporter.inventory import Inventory, apply_object_updates
from exporter.perf_soap import SoapSession
from exporter.perf_worker import ParseWorker
from exporter.poll_scan import scan_page
from exporter.poll_soap import _object, continue_body, parse_page, parse_page_xml, retrieve_body
from exporter.poller import POLLED, SoapPoll, poll
from exporter.pollers import QuickStats
from exporter.soap_values import value as soap_value
from exporter.sync import convert_update_set, create_follow_filter
from sim.harness import Simulator
from vcenter.config import ConfigError, parse_config
from vcenter.properties import view_filter_spec

from .exporter_fixtures import exporter_config, sim_vcenter, wait_for
from .metrics_helpers import value

PC = vmodl.query.PropertyCollector


class Session:
    """A pyVmomi session on ``sim`` with a followed inventory, for polling into copies."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.si = SmartConnect(**sim.connection_kwargs())
        self.content = self.si.RetrieveContent()
        collector, self.view = create_follow_filter(self.content)
        objects: dict[str, Any] = {}
        fields: dict[int, str] = {}
        version = ""
        while True:  # the simulator pages the initial sync like vCenter
            result = collector.WaitForUpdatesEx(version, PC.WaitOptions(maxWaitSeconds=0))
            apply_object_updates(objects, fields, convert_update_set(result))
            version = result.version
            if not result.truncated:
                break
        self.objects, self.fields = objects, fields
        self.soap = SoapSession(
            self.si,
            host=sim.host,
            port=sim.port,
            path="/sdk",
            context=sim.ssl_context(),
            timeout=30,
        )

    def inventory(self) -> Inventory:
        inv = Inventory("vc1")
        inv.replace(dict(self.objects), dict(self.fields))
        return inv

    def poll(self, soap: SoapPoll | None) -> tuple[Inventory, int]:
        inv = self.inventory()
        calls = poll(self.content.propertyCollector, self.view, inv, soap)
        return inv, calls

    def close(self) -> None:
        self.soap.close()
        Disconnect(self.si)


def props(inv: Inventory) -> dict[str, dict[str, Any]]:
    return {moid: dict(obj.props) for moid, obj in inv.objects.items()}


@pytest.fixture
def polled(sim_factory: Any) -> Iterator[Session]:
    sim = sim_factory(clusters=2, hosts=3, vms=14, real_vcenter=True)
    session = Session(sim)
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def worker() -> Iterator[ParseWorker]:
    w = ParseWorker(30)
    try:
        yield w
    finally:
        w.close()


def test_the_plain_xml_poll_reads_what_pyvmomi_reads(polled: Session, worker: ParseWorker) -> None:
    sim = polled.sim
    inv = sim.inventory()
    vm, host = inv["vms"][-1]["name"], inv["hosts"][0]["name"]
    # Silent changes (real-vCenter mode): only a poll sees them.
    sim.set_vm_raw(vm, overallCpuUsage=4321, guestMemoryUsage=77)
    sim.set_host_raw(host, overallStatus="red", overallCpuUsage=999)
    sim.set_paging(max_objects_cap=4)  # many pages through ContinueRetrievePropertiesEx
    before = sim.paging_state()["continuedPages"]
    expected, calls = polled.poll(None)
    vm_moid = next(v["moid"] for v in inv["vms"] if v["name"] == vm)
    host_moid = next(h["moid"] for h in inv["hosts"] if h["name"] == host)
    assert expected.objects[vm_moid].props["summary.quickStats.overallCpuUsage"] == 4321
    assert expected.objects[host_moid].props["overallStatus"] == "red"
    assert calls > 3 and sim.paging_state()["continuedPages"] - before == calls - 1
    for parser in (None, worker):
        got, got_calls = polled.poll(SoapPoll(polled.soap, parser))
        assert got_calls == calls
        assert props(got) == props(expected)
    assert worker.pid not in (None, os.getpid()) and worker.parsed_total == calls
    assert sim.paging_state()["pendingRetrievals"] == 0


def test_an_object_deleted_between_pages_reads_the_same(polled: Session) -> None:
    """vCenter may answer a deleted object's later page from its result set or without it;
    either way both paths fold the same rows (the follower removes the object)."""
    sim = polled.sim
    victim = sim.inventory()["vms"][-1]
    sim.set_paging(max_objects_cap=3, page_delay_ms=300)
    results: dict[str, Inventory] = {}

    def run(name: str, soap: SoapPoll | None) -> None:
        results[name], _ = polled.poll(soap)

    for name, soap in (("pyvmomi", None), ("soap", SoapPoll(polled.soap, None))):
        thread = threading.Thread(target=run, args=(name, soap))
        first = sim.paging_state()["continuedPages"]
        thread.start()
        deadline = time.monotonic() + 20
        while sim.paging_state()["continuedPages"] == first:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        if name == "pyvmomi":  # gone from vCenter before the poll's last pages
            vm = vim.VirtualMachine(victim["moid"], polled.si._stub)
            if vm.runtime.powerState == "poweredOn":
                _wait(vm.PowerOffVM_Task())
            _wait(vm.Destroy_Task())
        thread.join(timeout=60)
    assert props(results["soap"]) == props(results["pyvmomi"])


def _wait(task: Any) -> None:
    deadline = time.monotonic() + 20
    while task.info.state not in ("success", "error"):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def _page(polled: Session) -> bytes:
    """The first page of the poll's answer as the simulator sends it."""
    spec = view_filter_spec(polled.view, POLLED)
    return polled.soap.post(retrieve_body(polled.content.propertyCollector, spec, 1000))


def _missing(fault: str) -> str:
    return (
        "<missingSet><path>summary.quickStats.overallCpuUsage</path><fault>"
        f'<fault xsi:type="{fault}"></fault>'
        f"<localizedMessage>{fault} here</localizedMessage></fault></missingSet>"
    )


def _with_missing(body: bytes, moid: str, fault: str) -> bytes:
    """``body`` with ``moid``'s properties in missingSet, as vCenter sends a failed read."""
    text = body.decode()
    start = text.index(f">{moid}</obj>")
    end = text.index("</objects>", start)
    head = text[: start + len(f">{moid}</obj>")]
    return (head + _missing(fault) + text[end:]).encode()


class Canned:
    """A PropertyCollector answering RetrievePropertiesEx with fixed bytes, deserialised by
    pyVmomi as from the wire: today's path reads exactly what the plain path parses."""

    def __init__(self, real: Any, body: bytes) -> None:
        self.real, self.body = real, body
        self._moId = real._moId
        self._stub = real._stub

    def _GetMethodInfo(self, name: str) -> Any:  # noqa: N802 - pyVmomi's name
        return self.real._GetMethodInfo(name)

    def RetrievePropertiesEx(self, specSet: Any, options: Any) -> Any:  # noqa: N802, N803
        info = self.real._GetMethodInfo("RetrievePropertiesEx")
        deserializer = SoapAdapter.SoapResponseDeserializer(self._stub)
        return deserializer.Deserialize(io.BytesIO(self.body), info.result)


class CannedSession:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def post(self, request: bytes) -> bytes:
        return self.body


@pytest.mark.parametrize("fault", ["NotAuthenticated", "ManagedObjectNotFound", "InvalidProperty"])
def test_a_missing_set_is_judged_alike_on_both_paths(polled: Session, fault: str) -> None:
    """NotAuthenticated (the session ended) fails the poll and leaves every value as it was
    (it used to blank that object's polled values); ManagedObjectNotFound leaves the object
    out; InvalidProperty leaves only that property unset."""
    sim = polled.sim
    sim.set_paging(enabled=False)  # one page: no token to continue
    host = sim.inventory()["hosts"][0]["moid"]
    body = _with_missing(_page(polled), host, fault)
    outcomes = []
    for soap in (None, SoapPoll(CannedSession(body), None)):  # type: ignore[arg-type]
        inv = polled.inventory()
        before = dict(inv.objects[host].props)
        collector = Canned(polled.content.propertyCollector, body)
        try:
            poll(collector, polled.view, inv, soap)
        except vmodl.MethodFault as exc:
            outcomes.append(type(exc).__name__)
            assert dict(inv.objects[host].props) == before
            continue
        outcomes.append(props(inv))
    assert outcomes[0] == outcomes[1]
    if fault == "NotAuthenticated":
        assert outcomes[0] == "vim.fault.NotAuthenticated"
    else:
        got = outcomes[0]
        assert isinstance(got, dict)
        cpu = got[host].get("summary.quickStats.overallCpuUsage")
        assert cpu is None if fault == "InvalidProperty" else cpu is not None


def test_the_parse_reads_every_polled_value_type() -> None:
    """The shapes in a poll's answer: xsd scalars, an enum, a data object with nested ones,
    an unset property (None), and the continuation token."""
    body = b"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>
<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><token>t-1</token>
<objects><obj type="HostSystem">host-1</obj>
<propSet><name>overallStatus</name><val xsi:type="ManagedEntityStatus">yellow</val></propSet>
<propSet><name>summary.quickStats.overallCpuUsage</name><val xsi:type="xsd:int">7</val></propSet>
</objects>
<objects><obj type="ClusterComputeResource">domain-c1</obj><propSet><name>summary</name>
<val xsi:type="ClusterComputeResourceSummary"><totalCpu>100</totalCpu>
<totalMemory>2048</totalMemory><effectiveCpu>90</effectiveCpu>
<effectiveMemory>1</effectiveMemory><usageSummary><cpuDemandMhz>3</cpuDemandMhz></usageSummary>
</val></propSet></objects>
</returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"""
    token, rows, missing = parse_page(body, POLLED)
    assert token == "t-1" and not missing
    by_moid = {moid: (t, values) for t, moid, values in rows}
    assert by_moid["host-1"] == (
        "HostSystem",
        {
            "overallStatus": "yellow",
            "summary.quickStats.overallCpuUsage": 7,
            "summary.quickStats.overallMemoryUsage": None,
        },
    )
    summary = by_moid["domain-c1"][1]["summary"]
    assert summary == {
        "effective_cpu_hz": 90e6,
        "effective_memory_bytes": 1024.0 * 1024.0,
        "total_cpu_hz": 100e6,
        "total_memory_bytes": 2048.0,
    }


def test_a_dead_or_hung_worker_fails_one_poll_and_is_replaced(
    polled: Session, worker: ParseWorker
) -> None:
    soap = SoapPoll(polled.soap, worker)
    expected, _ = polled.poll(None)
    polled.poll(soap)
    first = worker.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    time.sleep(0.5)
    with pytest.raises(RuntimeError, match="parse worker"):
        polled.poll(soap)
    assert polled.sim.paging_state()["pendingRetrievals"] == 0  # its token was cancelled
    got, _ = polled.poll(soap)
    assert worker.pid not in (None, first) and props(got) == props(expected)
    # Hung: nothing comes back within the timeout; the process is killed and replaced.
    hung = worker.pid
    worker.timeout = 0.5
    with pytest.raises(FutureTimeout):
        worker.call(time.sleep, 5)
    worker.timeout = 30
    got, _ = polled.poll(soap)
    assert worker.pid not in (None, first, hung) and props(got) == props(expected)


def test_the_poll_worker_switch_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VHA_TEST_PW", "pw")
    vc = {"name": "vc1", "url": "https://vc1/sdk", "user": "u", "password_env": "VHA_TEST_PW"}

    def sync(section: dict[str, Any]) -> Any:
        return parse_config({"vcenters": [vc], "sync": section}).sync

    assert sync({}).poll_worker_process is True
    assert sync({"poll_worker_process": False}).poll_worker_process is False
    with pytest.raises(ConfigError, match="sync.poll_worker_process"):
        sync({"poll_worker_process": "yes"})


@pytest.mark.parametrize(
    ("worker_process", "counters"), [(True, False), (True, True), (False, True)]
)
async def test_the_exporter_polls_through_the_switch(
    sim_factory: Any, aiohttp_client: Any, worker_process: bool, counters: bool
) -> None:
    """The exporter's poller reads silent changes over the plain-XML path, parsing in a
    worker process (the counters' when they are collected) or, switched off, in-process;
    the worker is gone when the exporter stops."""
    sim = sim_factory(clusters=1, hosts=2, vms=8, real_vcenter=True)
    vm = sim.inventory()["vms"][-1]["name"]
    sim.set_paging(max_objects_cap=3)
    sync = {"max_wait_seconds": 1, "poll_interval_seconds": 1}
    sync["poll_worker_process"] = worker_process
    perf = {"enabled": counters}
    config = exporter_config(sim_vcenter(sim), sync=sync, performance=perf)
    client = await aiohttp_client(create_app(config))
    await wait_for(client, lambda s: value(s, "vsphere_up", vcenter="vc1") == 1, timeout=30)
    sim.set_vm_raw(vm, overallCpuUsage=2468)  # silent: only a poll can see it
    await wait_for(
        client, lambda s: value(s, "vsphere_vm_cpu_usage_hertz", vm=vm) == 2468e6, timeout=15
    )
    exporter = client.server.app[EXPORTER]
    [task] = [t for t in exporter.pollers[0].tasks if t.name == "quickstats"]
    quickstats = task.run
    assert isinstance(quickstats, QuickStats) and quickstats._soap is not None  # noqa: SLF001
    if worker_process:
        assert quickstats.worker is not None and quickstats.worker.parsed_total > 0
        pid = quickstats.worker.pid
        assert pid not in (None, os.getpid())
        shared = exporter.perf[0].worker if counters else None
        assert (quickstats.worker is shared) is counters
    else:
        assert quickstats.worker is None
    await client.close()
    if worker_process:
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not os.path.exists(f"/proc/{pid}"), "the poll worker outlived the exporter"


def test_an_array_of_a_type_pyvmomi_lacks_is_still_a_list() -> None:
    """A newer vCenter's ``ArrayOfX`` for an X the installed pyVmomi does not know is read
    as a list (a converter iterating it would fail the whole poll or sync otherwise)."""
    element = ET.fromstring(
        '<val xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:type="ArrayOfNoSuchTypeYet"><NoSuchTypeYet>a</NoSuchTypeYet>'
        "<NoSuchTypeYet>b</NoSuchTypeYet></val>"
    )
    assert isinstance(soap_value(element), list) and len(soap_value(element)) == 2


def test_the_simulators_pages_are_scanned_as_the_xml_parser_reads_them(polled: Session) -> None:
    """Every page of a real poll (paged at 5 objects, so tokens and clusters are in it):
    equal to the XML parser's reading, and scanned, not declined."""
    collector = polled.content.propertyCollector
    spec = view_filter_spec(polled.view, POLLED)
    body = polled.soap.post(retrieve_body(collector, spec, 5))
    pages = scanned = 0
    types: set[str] = set()
    while True:
        pages += 1
        page = scan_page(body, POLLED, _object)
        assert page == parse_page_xml(body, POLLED)
        scanned += page is not None
        token, rows, _ = parse_page_xml(body, POLLED)
        types.update(row[0] for row in rows)
        if not token:
            break
        body = polled.soap.post(continue_body(str(collector._moId), token))  # noqa: SLF001
    assert pages > 3 and scanned == pages
    assert {"VirtualMachine", "HostSystem", "ClusterComputeResource"} <= types
