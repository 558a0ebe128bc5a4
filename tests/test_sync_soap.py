"""The initial sync read as plain XML, pipelined (exporter/sync_soap.py, sync_plain.py):
the same image as through pyVmomi, object by object, over vCenter-style paging; a change
between pages, a fault mid-sync and an unreadable page behave as the pyVmomi path."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

from exporter import sync
from exporter.inventory import Inventory, ManagedObject, apply_object_updates
from exporter.properties_extra import SENSORS
from exporter.render import status_families
from exporter.sync import Follower, convert_update_set, create_follow_filter, inventory_view
from exporter.sync_plain import PlainSync
from exporter.sync_scan import scan_updates
from exporter.sync_soap import _change, parse_updates_xml, pipelined_pages, scan_head
from exporter.wire import install
from sim.harness import Simulator
from vcenter.config import ConfigError, parse_config

from .exporter_fixtures import exporter_config, sim_vcenter

PC = vmodl.query.PropertyCollector
Image = tuple[dict[str, tuple[str, dict[str, Any]]], dict[int, str]]


def image(objects: dict[str, ManagedObject], fields: dict[int, str]) -> Image:
    return {m: (o.type, dict(o.props)) for m, o in objects.items()}, dict(fields)


class Live:
    """A session on ``sim`` and the exporter's config for it."""

    def __init__(self, sim: Simulator, **sync: Any) -> None:
        self.sim = sim
        self.config = exporter_config(sim_vcenter(sim), sync={"max_wait_seconds": 1, **sync})
        self.vc = self.config.vcenters[0]
        self.si = SmartConnect(**sim.connection_kwargs())
        self.content = self.si.RetrieveContent()

    def moid(self, kind: str, index: int = 0) -> str:
        return str(self.sim.inventory()[kind][index]["moid"])

    def pyvmomi(self) -> tuple[Image, str]:
        collector, _view = create_follow_filter(self.content)
        follower = Follower(self.vc, Inventory("vc1"), self.config.sync)
        objects, fields, version = follower._pyvmomi_sync(collector, install(self.si))
        return image(objects, fields), version

    def plain(self, hook: Any = None, warm: bool = False) -> tuple[Image, str, Any]:
        """A plain sync; ``warm``: its worker started first (else the small inventory's
        sync would end before the worker is up, and no page would go to it)."""
        collector, _view = create_follow_filter(self.content)
        reader = PlainSync.open(self.vc, self.si, self.config.sync, threading.Event())
        assert reader is not None
        self.reader = reader
        if warm:
            assert reader.wait_warm(60)
        if hook is not None:
            parse = reader.parse

            def hooked(body: bytes) -> Any:
                page = parse(body)
                hook()
                return page

            reader.parse = hooked  # type: ignore[method-assign]
        try:
            objects, fields, version = reader.run(collector, Inventory("vc1"))
        finally:
            reader.close()
        return image(objects, fields), version, collector

    def close(self) -> None:
        Disconnect(self.si)


def enrich(live: Live) -> None:
    """HA/DRS settings, snapshot trees, custom values and guest disks, with one-element
    arrays inside data objects (one root snapshot with one child, one failover host)."""
    sim, si = live.sim, live.si
    inv = sim.inventory()
    clusters = [vim.ClusterComputeResource(c["moid"], si._stub) for c in inv["clusters"]]
    hosts = [vim.HostSystem(h["moid"], si._stub) for h in inv["hosts"]]
    vms = [vim.VirtualMachine(v["moid"], si._stub) for v in inv["vms"]]
    tools = vim.cluster.VmToolsMonitoringSettings(
        failureInterval=45, minUpTime=120, maxFailures=2, maxFailureWindow=3600
    )
    spec = vim.cluster.ConfigSpecEx(
        dasConfig=vim.cluster.DasConfigInfo(
            enabled=True,
            admissionControlEnabled=True,
            admissionControlPolicy=vim.cluster.FailoverLevelAdmissionControlPolicy(failoverLevel=2),
            vmMonitoring="vmMonitoringOnly",
            defaultVmSettings=vim.cluster.DasVmSettings(vmToolsMonitoringSettings=tools),
        ),
        drsConfig=vim.cluster.DrsConfigInfo(enabled=True, defaultVmBehavior="fullyAutomated"),
        dasVmConfigSpec=[
            vim.cluster.DasVmConfigSpec(
                operation="add",
                info=vim.cluster.DasVmConfigInfo(
                    key=vms[0], dasSettings=vim.cluster.DasVmSettings(restartPriority="high")
                ),
            )
        ],
    )
    WaitForTask(clusters[0].ReconfigureComputeResource_Task(spec=spec, modify=True))
    one_host = vim.cluster.FailoverHostAdmissionControlPolicy(failoverHosts=[hosts[-1]])
    spec = vim.cluster.ConfigSpecEx(
        dasConfig=vim.cluster.DasConfigInfo(
            enabled=True, admissionControlEnabled=True, admissionControlPolicy=one_host
        )
    )
    WaitForTask(clusters[1].ReconfigureComputeResource_Task(spec=spec, modify=True))
    WaitForTask(vms[1].CreateSnapshot_Task("root", "only root", False, False))
    WaitForTask(vms[1].CreateSnapshot_Task("12345", "a child named like a number", False, False))
    for name in ("a", "b", "c"):
        WaitForTask(vms[2].CreateSnapshot_Task(name, "", False, False))
    fields = live.content.customFieldsManager
    env = fields.AddCustomFieldDef(name="Env", moType=vim.VirtualMachine)
    domain = fields.AddCustomFieldDef(name="Rack", moType=vim.HostSystem)
    fields.SetField(entity=vms[3], key=env.key, value="prod")
    fields.SetField(entity=hosts[0], key=domain.key, value="42")  # a number-like string
    names = [v["name"] for v in inv["vms"]]
    sim.set_guest(names[4], disks=[{"path": "/", "capacity": 40 << 30, "free": 1 << 30}])
    sim.set_guest(
        names[5],
        disks=[
            {"path": "/", "capacity": 20 << 30, "free": 2 << 30},
            {"path": "/data", "capacity": 80 << 30, "free": 8 << 30},
        ],
    )


@pytest.fixture
def live(sim_factory: Any) -> Iterator[Live]:
    sim = sim_factory(clusters=2, hosts=3, vms=14)
    session = Live(sim)
    try:
        enrich(session)
        sim.set_paging(max_object_updates=7)  # many pages of the small inventory
        yield session
    finally:
        session.close()


@pytest.mark.parametrize("worker", [True, False], ids=["worker", "in-process"])
def test_the_plain_sync_builds_the_image_pyvmomi_builds(live: Live, worker: bool) -> None:
    live.config = exporter_config(
        sim_vcenter(live.sim), sync={"max_wait_seconds": 1, "poll_worker_process": worker}
    )
    expected, _ = live.pyvmomi()
    pages = live.sim.paging_state()["truncatedPages"]
    got, version, _ = live.plain(warm=worker)
    pages = live.sim.paging_state()["truncatedPages"] - pages
    assert pages >= 4
    if worker:  # every page went to a worker (the calls that started them, one more each)
        workers = live.reader.workers
        assert len(workers) == 2 and all(w.pid not in (None, os.getpid()) for w in workers)
        assert workers[0].pid != workers[1].pid
        assert sum(w.parsed_total for w in workers) == pages + 1 + len(workers)
    assert version
    objects, fields = expected
    assert got[1] == fields and any(v == "Env" for v in fields.values())
    assert set(got[0]) == set(objects)
    for moid, (type_name, props) in objects.items():
        assert got[0][moid] == (type_name, props), moid
    # The shapes that a type-blind parse reads wrongly are really there.
    vm1, vm2, host0 = (live.moid("vms", 1), live.moid("vms", 2), live.moid("hosts", 0))
    assert objects[vm1][1]["snapshot"]["count"] == 2.0
    assert objects[vm2][1]["snapshot"]["count"] == 3.0
    assert "42" in objects[host0][1]["customValue"].values()
    policies = [
        p[1].get("configuration.dasConfig.admissionControlPolicy")
        for p in objects.values()
        if p[0] == "ClusterComputeResource"
    ]
    assert {"policy": "failover_hosts", "level": 1} in policies
    assert {"policy": "failover_level", "level": 2} in policies


def test_every_page_of_the_simulator_is_scanned_as_the_xml_parser_reads_it(live: Live) -> None:
    """The scanner (sync_scan.py) reads every page of a real sync, none declined, exactly
    as the XML parser does: HA/DRS data objects, snapshot trees, custom values, guest
    disks, host sensors, references and dates, as the simulator writes them."""
    bodies: list[bytes] = []
    reader = PlainSync.open(live.vc, live.si, live.config.sync, threading.Event())
    assert reader is not None
    post = reader.session.post

    def kept(body: bytes) -> bytes:
        got = post(body)
        bodies.append(got)
        return got

    reader.session.post = kept  # type: ignore[method-assign]
    collector, _view = create_follow_filter(live.content)
    try:
        reader.run(collector, Inventory("vc1"))
    finally:
        reader.close()
    assert len(bodies) >= 4
    for body in bodies:
        head = scan_head(body)
        assert head is not None
        scanned = scan_updates(body, _change)
        assert scanned is not None
        assert (*head, scanned) == parse_updates_xml(body)
    kinds = {path for body in bodies for u in parse_updates_xml(body)[2] for _o, path, _v in u[3]}
    assert {"runtime.dasHostState", "snapshot", "guest.disk", "customValue", SENSORS} <= kinds


def test_a_change_between_pages_is_followed_from_the_version(live: Live) -> None:
    """A VM renamed while the pages are read: the version the plain sync ends on, followed
    through pyVmomi, gives the image of a sync after the change."""
    vm = vim.VirtualMachine(live.moid("vms", -1), live.si._stub)
    done: list[bool] = []

    def rename() -> None:
        if not done:
            done.append(True)
            WaitForTask(vm.Rename_Task("renamed-between-pages"))

    got, version, collector = live.plain(rename)
    objects = {m: ManagedObject(m, t, dict(p)) for m, (t, p) in got[0].items()}
    fields = dict(got[1])
    while True:
        result = collector.WaitForUpdatesEx(version, PC.WaitOptions(maxWaitSeconds=1))
        if result is None:
            break
        apply_object_updates(objects, fields, convert_update_set(result))
        version = result.version
        if not result.truncated:
            break
    expected, _ = live.pyvmomi()
    assert expected[0][vm._moId][1]["name"] == "renamed-between-pages"
    assert image(objects, fields) == expected


@pytest.mark.parametrize(
    ("fault", "raised"),
    [
        ("InvalidCollectorVersion", vmodl.query.InvalidCollectorVersion),
        ("NotAuthenticated", vim.fault.NotAuthenticated),
    ],
)
def test_a_fault_mid_sync_raises_as_pyvmomi_does(live: Live, fault: str, raised: type) -> None:
    def inject() -> None:
        live.sim.inject_fault("WaitForUpdatesEx", fault)

    live.sim.inject_fault("WaitForUpdatesEx", fault)
    with pytest.raises(raised):  # the pyVmomi path, for the class it raises
        live.pyvmomi()
    live.sim.clear_faults()
    with pytest.raises(raised):
        live.plain(inject)


def _follow(live: Live, **sync: Any) -> tuple[Inventory, Follower]:
    config = exporter_config(sim_vcenter(live.sim), sync={"max_wait_seconds": 1, **sync})
    inv = Inventory("vc1")
    follower = Follower(config.vcenters[0], inv, config.sync)
    return inv, follower


def _synced(inv: Inventory, resyncs: int = 1) -> None:
    deadline = time.monotonic() + 30
    while not (inv.synced and inv.up and inv.resyncs_total >= resyncs):
        assert time.monotonic() < deadline, "inventory did not sync"
        time.sleep(0.05)


def _run_with_parse(inv: Inventory, follower: Follower, parse: Any) -> None:
    """Run ``follower`` to its first sync with ``PlainSync.parse`` replaced by ``parse``."""
    original = PlainSync.parse
    PlainSync.parse = parse  # type: ignore[method-assign]
    try:
        follower.start()
        _synced(inv)
    finally:
        follower.stop()
        PlainSync.parse = original  # type: ignore[method-assign]


def test_a_fault_mid_sync_makes_the_follower_resync(live: Live) -> None:
    expected, _ = live.pyvmomi()
    inv, follower = _follow(live)
    original = PlainSync.parse
    pages: list[int] = []

    def parse(self: PlainSync, body: bytes) -> Any:
        pages.append(1)
        if len(pages) == 2:  # the first sync's second page: its next requests fail
            live.sim.inject_fault("WaitForUpdatesEx", "InvalidCollectorVersion")
        return original(self, body)

    _run_with_parse(inv, follower, parse)
    assert sum(inv.errors_total.values()) == 1 and inv.plain_sync_fallbacks_total == 0
    assert image(inv.objects, inv.custom_fields) == expected


def test_an_unreadable_page_falls_back_to_pyvmomi(live: Live) -> None:
    expected, _ = live.pyvmomi()
    inv, follower = _follow(live, poll_worker_process=False)
    original = PlainSync.parse

    def parse(self: PlainSync, body: bytes) -> Any:
        return original(self, body.replace(b"</returnval>", b"</returnval"))

    _run_with_parse(inv, follower, parse)
    assert inv.plain_sync_fallbacks_total == 1 and not inv.errors_total
    assert image(inv.objects, inv.custom_fields) == expected
    lines = [line for f in status_families([inv]) for line in f.lines]
    assert 'vsphere_sync_plain_fallbacks_total{vcenter="vc1"} 1\n' in lines


def test_a_fallback_destroys_the_view_of_the_failed_sync(live: Live) -> None:
    """The fallback's fresh collector comes with a fresh ContainerView; the failed sync's
    view was left to the session's logout (vCenter keeps a view "until you terminate it by
    calling the DestroyView method, or until the end of the session")."""
    inv, follower = _follow(live, poll_worker_process=False)
    follower._collector, follower._view = create_follow_filter(live.content)
    old_view = follower._view
    original = PlainSync.parse

    def parse(self: PlainSync, body: bytes) -> Any:
        return original(self, body.replace(b"</returnval>", b"</returnval"))

    PlainSync.parse = parse  # type: ignore[method-assign]
    try:
        assert follower._plain_sync(live.si, follower._collector) is None
    finally:
        PlainSync.parse = original  # type: ignore[method-assign]
    assert inv.plain_sync_fallbacks_total == 1
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        old_view.view  # noqa: B018 - reading it is the check
    assert follower._view is not old_view and follower._view.view


def test_a_failed_create_follow_filter_destroys_its_view(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CreateFilter refused: the view made for it goes at once, not with the session (the
    fallback above goes on in the same session). The real view is only recorded here."""
    made: list[Any] = []

    def recorded(content: Any) -> Any:
        made.append(inventory_view(content))
        return made[-1]

    monkeypatch.setattr(sync, "inventory_view", recorded)
    live.sim.inject_fault("CreateFilter", "InvalidArgument")
    with pytest.raises(vmodl.fault.InvalidArgument):
        create_follow_filter(live.content)
    assert len(made) == 1
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        made[0].view  # noqa: B018 - reading it is the check


def test_initial_sync_plain_is_on_by_default_and_checked() -> None:
    def sync(section: dict[str, Any]) -> Any:
        data = {"listen": "127.0.0.1:0", "vcenters": [], "sync": section}
        return parse_config(data).sync

    assert sync({}).initial_sync_plain is True
    assert sync({"initial_sync_plain": False}).initial_sync_plain is False
    with pytest.raises(ConfigError, match="sync.initial_sync_plain"):
        sync({"initial_sync_plain": "yes"})
    assert sync({}).initial_sync_workers == 2
    assert sync({"initial_sync_workers": 1}).initial_sync_workers == 1
    for bad, why in ((0, "between 1 and 8"), (9, "between 1 and 8"), (2.5, "whole number")):
        with pytest.raises(ConfigError, match=f"sync.initial_sync_workers.*{why}"):
            sync({"initial_sync_workers": bad})
    with pytest.raises(ConfigError, match="sync.initial_sync_workers"):
        sync({"initial_sync_workers": True})


def test_pyvmomis_idle_connections_are_dropped_after_the_plain_sync(live: Live) -> None:
    """pyVmomi's pooled connection idles through the whole plain sync (minutes at 40,000
    VMs), and a server that closed it meanwhile made the follower's first WaitForUpdatesEx
    fail (SSLEOFError, seen on the simulator at 10,000 VMs): the pool is emptied, so the
    next call opens a fresh connection."""
    assert live.si._stub.pool  # RetrieveContent's connection, back in the pool
    live.plain()
    assert live.si._stub.pool == []
    assert live.content.about.name  # pyVmomi reconnects on its own


def test_a_one_page_sync_never_starts_the_worker(live: Live) -> None:
    """Spawning it would cost a small inventory's sync more than the whole parse."""
    live.sim.set_paging(max_object_updates=100)
    got, _version, _ = live.plain()
    assert live.reader.workers and all(w.parsed_total == 0 for w in live.reader.workers)
    assert got == live.pyvmomi()[0]


def test_the_next_page_is_parsed_while_a_page_is_folded(live: Live) -> None:
    """The worker parses page n+1 while the follower folds page n: the fold of the first
    page waits here until the next page's parse has begun (taking turns, it never would)."""
    collector, _view = create_follow_filter(live.content)
    reader = PlainSync.open(live.vc, live.si, live.config.sync, threading.Event())
    assert reader is not None
    begun: list[bytes] = []
    second = threading.Event()
    parse = reader.parse

    def counted(body: bytes) -> Any:
        begun.append(body)
        if len(begun) == 2:
            second.set()
        return parse(body)

    reader.parse = counted  # type: ignore[method-assign]
    waited: list[bool] = []
    inventory = Inventory("vc1")

    def fold_waits(*_: Any) -> None:
        if not waited:
            waited.append(second.wait(5))

    inventory.observe = fold_waits
    try:
        objects, fields, _version = reader.run(collector, inventory)
    finally:
        reader.close()
    assert waited == [True]
    assert len(begun) > 2  # many pages (7 objects each)
    assert image(objects, fields) == live.pyvmomi()[0]


def test_pages_are_parsed_two_at_a_time_by_default(live: Live) -> None:
    """``sync.initial_sync_workers`` (2) pages are in their workers' parse at once: at
    40,000 VMs one worker was the sync's bottleneck while the other core idled."""
    assert live.config.sync.initial_sync_workers == 2
    collector, _view = create_follow_filter(live.content)
    reader = PlainSync.open(live.vc, live.si, live.config.sync, threading.Event())
    assert reader is not None and reader.wait_warm(60)
    lock = threading.Lock()
    busy, most = [0], [0]
    parse = reader.parse

    def counted(body: bytes) -> Any:
        with lock:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
        try:
            time.sleep(0.1)  # long enough for the next page to arrive meanwhile
            return parse(body)
        finally:
            with lock:
                busy[0] -= 1

    reader.parse = counted  # type: ignore[method-assign]
    try:
        objects, fields, _version = reader.run(collector, Inventory("vc1"))
    finally:
        reader.close()
    assert most[0] == 2
    assert image(objects, fields) == live.pyvmomi()[0]


def test_pages_parsed_at_once_are_folded_in_their_order() -> None:
    """The first page's parse ends last; the pages still come out in the order fetched
    (the last page's version is the one the follower goes on from)."""

    def page(n: int, last: bool) -> bytes:
        truncated = b"" if last else b"<truncated>true</truncated>"
        return b"<returnval><version>%d</version>%s</returnval>" % (n, truncated)

    bodies = [page(n, n == 4) for n in range(5)]

    class Session:
        def post(self, request: bytes) -> bytes:
            return bodies[int(request or b"0")]

    def request(version: str) -> bytes:
        return str(int(version) + 1).encode() if version else b"0"

    def parse(body: bytes) -> Any:
        head = scan_head(body)
        assert head is not None
        time.sleep(0.3 if head[0] == "0" else 0.01)
        return head[0], head[1], []

    got = [p[0][0] for p in pipelined_pages(Session(), request, parse, threading.Event(), 3)]  # type: ignore[arg-type]
    assert got == ["0", "1", "2", "3", "4"]
