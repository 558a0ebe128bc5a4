"""vCenter-style paging (issue 15 item 1): every paging code path against the simulator.

A real vCenter caps a WaitForUpdatesEx page at min(maxObjectUpdates, 100) ObjectUpdates
with ``truncated`` set, and pages RetrievePropertiesEx (maxObjects, or 100 when unset) with
tokens for ContinueRetrievePropertiesEx / CancelRetrievePropertiesEx.  The simulator does
the same (docs/simulator.md); small page sizes here make small inventories page many times.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

from exporter.app import create_app
from remediator.live import Session, cluster_snapshot
from vcenter.properties import retrieve_pages, view_filter_spec

from .exporter_fixtures import exporter_config, sim_vcenter, wait_for
from .metrics_helpers import Sample, select, value
from .remediator_sim import sim_config

PC = vmodl.query.PropertyCollector


def _view_spec(content: Any) -> tuple[Any, Any]:
    view = content.viewManager.CreateContainerView(
        content.rootFolder, [vim.VirtualMachine, vim.HostSystem], True
    )
    spec = view_filter_spec(view, {"VirtualMachine": ["name"], "HostSystem": ["name"]})
    return view, spec


def _model_counts(sim: Any) -> tuple[int, int]:
    inv = sim.inventory()
    return len(inv["hosts"]), len(inv["vms"])


def test_simulator_pages_like_vcenter(sim_factory: Any) -> None:
    sim = sim_factory(clusters=1, hosts=3, vms=20)
    n_hosts, n_vms = _model_counts(sim)
    sim.set_paging(max_object_updates=100, max_objects=100)
    si = SmartConnect(**sim.connection_kwargs())
    try:
        content = si.RetrieveContent()
        _, spec = _view_spec(content)
        pc = content.propertyCollector.CreatePropertyCollector()
        pc.CreateFilter(spec, partialUpdates=True)
        # WaitForUpdatesEx: pages of min(maxObjectUpdates, policy), truncated until the last
        sizes, version, used = [], "", []
        while True:
            result = pc.WaitForUpdatesEx(
                version, PC.WaitOptions(maxWaitSeconds=0, maxObjectUpdates=5)
            )
            sizes.append(sum(len(f.objectSet) for f in result.filterSet))
            if result.truncated:
                used.append(result.version)
            version = result.version
            if not result.truncated:
                break
        assert sum(sizes) == n_hosts + n_vms
        assert max(sizes) == 5 and len(sizes) == -(-(n_hosts + n_vms) // 5)
        with pytest.raises(vmodl.query.InvalidCollectorVersion):  # a truncated version is used once
            pc.WaitForUpdatesEx(used[0], PC.WaitOptions(maxWaitSeconds=0))
        # RetrievePropertiesEx: maxObjects honoured, the rest behind single-use tokens
        root = content.propertyCollector
        with pytest.raises(vmodl.fault.InvalidArgument):  # "<= 0 is illegal"
            root.RetrievePropertiesEx([spec], PC.RetrieveOptions(maxObjects=-1))
        result = root.RetrievePropertiesEx([spec], PC.RetrieveOptions(maxObjects=7))
        got, tokens = len(result.objects), [result.token]
        while result.token:
            result = root.ContinueRetrievePropertiesEx(token=result.token)
            got += len(result.objects)
            tokens.append(result.token)
        assert got == n_hosts + n_vms and len(tokens) == -(-got // 7)
        with pytest.raises(vmodl.query.InvalidProperty):
            root.ContinueRetrievePropertiesEx(token=tokens[0])
        # unset maxObjects: the policy limit (vCenter's is 100; 4 here) still pages
        sim.set_paging(max_objects=4)
        result = root.RetrievePropertiesEx([spec], PC.RetrieveOptions())
        assert len(result.objects) == 4 and result.token
        # another collector may not continue it; Cancel drops it, then it is gone
        with pytest.raises(vmodl.query.InvalidProperty):
            pc.ContinueRetrievePropertiesEx(token=result.token)
        root.CancelRetrievePropertiesEx(token=result.token)
        with pytest.raises(vmodl.query.InvalidProperty):
            root.ContinueRetrievePropertiesEx(token=result.token)
        assert sim.paging_state()["pendingRetrievals"] == 0
        # a logged-out session gets NotAuthenticated, never a page from memory
        result = root.RetrievePropertiesEx([spec], PC.RetrieveOptions(maxObjects=7))
        content.sessionManager.Logout()
        with pytest.raises(vim.fault.NotAuthenticated):
            root.ContinueRetrievePropertiesEx(token=result.token)
        si = SmartConnect(**sim.connection_kwargs())
        content = si.RetrieveContent()
        _, spec = _view_spec(content)  # views belong to the session that made them
        root = content.propertyCollector
        # the off switch: one piece, as Debian's govmomi answers
        sim.set_paging(enabled=False)
        result = root.RetrievePropertiesEx([spec], PC.RetrieveOptions(maxObjects=7))
        assert len(result.objects) == n_hosts + n_vms and not result.token
    finally:
        Disconnect(si)


@pytest.mark.slow
def test_retrievals_never_continued_are_bounded_oldest_first(sim_factory: Any) -> None:
    """A client that never comes back for the rest must not grow the simulator without
    bound: past 512 pending retrievals (sim/paging.go maxPending) the oldest is dropped."""
    sim = sim_factory(clusters=1, hosts=2, vms=2)
    si = SmartConnect(**sim.connection_kwargs())
    try:
        content = si.RetrieveContent()
        _, spec = _view_spec(content)
        root = content.propertyCollector
        tokens = [
            root.RetrievePropertiesEx([spec], PC.RetrieveOptions(maxObjects=1)).token
            for _ in range(514)
        ]
        assert all(tokens) and len(set(tokens)) == len(tokens)
        assert sim.paging_state()["pendingRetrievals"] == 512
        for dropped in tokens[:2]:
            with pytest.raises(vmodl.query.InvalidProperty):
                root.ContinueRetrievePropertiesEx(token=dropped)
        for kept in (tokens[2], tokens[-1]):
            assert root.ContinueRetrievePropertiesEx(token=kept).objects
    finally:
        Disconnect(si)


def _counts(samples: list[Sample]) -> dict[str, float]:
    return {
        s.labels["type"]: s.value
        for s in select(samples, "vsphere_inventory_objects")
        if s.labels.get("vcenter") == "vc1"
    }


async def test_exporter_initial_sync_over_truncated_pages_matches_the_model(
    sim_factory: Any, aiohttp_client: Any
) -> None:
    sim = sim_factory(clusters=2, hosts=4, vms=30)
    n_hosts, n_vms = _model_counts(sim)
    sim.set_paging(max_object_updates=7)
    client = await aiohttp_client(create_app(exporter_config(sim_vcenter(sim))))
    samples, _ = await wait_for(
        client, lambda s: value(s, "vsphere_up", vcenter="vc1") == 1, timeout=30
    )
    counts = _counts(samples)
    assert counts["host"] == n_hosts and counts["vm"] == n_vms and counts["cluster"] == 2
    assert len(select(samples, "vsphere_vm_info")) == n_vms
    assert len(select(samples, "vsphere_host_info")) == n_hosts
    assert sim.paging_state()["truncatedPages"] >= (n_hosts + n_vms) // 7


async def test_a_change_landing_between_pages_is_not_lost(
    sim_factory: Any, aiohttp_client: Any
) -> None:
    sim = sim_factory(clusters=1, hosts=2, vms=24)
    inv = sim.inventory()
    first, last = inv["vms"][0]["name"], inv["vms"][-1]["name"]
    sim.set_paging(max_object_updates=4, page_delay_ms=250)
    client = await aiohttp_client(create_app(exporter_config(sim_vcenter(sim))))
    deadline = time.monotonic() + 30
    while sim.paging_state()["truncatedPages"] < 1:  # the first page is out, the rest is not
        assert time.monotonic() < deadline, "the exporter never read a truncated page"
        time.sleep(0.02)
    sim.set_vm(first, power_state="poweredOff")
    sim.set_vm(last, power_state="poweredOff")
    assert sim.paging_state()["pendingUpdates"] == 1  # still paging when the changes landed

    def off(s: list[Sample]) -> bool:
        return all(
            value(s, "vsphere_vm_power_state", vm=vm, state="poweredOff") == 1
            for vm in (first, last)
        )

    samples, _ = await wait_for(client, off, timeout=30)
    assert _counts(samples)["vm"] == len(inv["vms"])


async def test_exporter_poller_reads_through_continue_retrieve(
    sim_factory: Any, aiohttp_client: Any
) -> None:
    sim = sim_factory(clusters=1, hosts=2, vms=12, real_vcenter=True)
    vm = sim.inventory()["vms"][-1]["name"]
    sim.set_paging(max_objects_cap=3)  # policy below the poller's maxObjects=1000
    sync = {"max_wait_seconds": 1, "poll_interval_seconds": 1}
    client = await aiohttp_client(create_app(exporter_config(sim_vcenter(sim), sync=sync)))
    await wait_for(client, lambda s: value(s, "vsphere_up", vcenter="vc1") == 1, timeout=30)
    before = sim.paging_state()["continuedPages"]
    sim.set_vm_raw(vm, overallCpuUsage=4321)  # silent: only a poll can see it
    await wait_for(
        client, lambda s: value(s, "vsphere_vm_cpu_usage_hertz", vm=vm) == 4321e6, timeout=10
    )
    assert sim.paging_state()["continuedPages"] > before


def test_retrieve_pages_yields_every_page_and_cancels_when_stopped(sim_factory: Any) -> None:
    sim = sim_factory(clusters=1, hosts=3, vms=20)
    n_hosts, n_vms = _model_counts(sim)
    si = SmartConnect(**sim.connection_kwargs())
    try:
        content = si.RetrieveContent()
        _, spec = _view_spec(content)
        pages = list(retrieve_pages(content.propertyCollector, spec, page_objects=6))
        assert len(pages) == -(-(n_hosts + n_vms) // 6)
        assert [len(p) for p in pages[:-1]] == [6] * (len(pages) - 1)
        names = Counter(o.obj._wsdlName for p in pages for o in p)
        assert names == {"HostSystem": n_hosts, "VirtualMachine": n_vms}
        for _ in retrieve_pages(content.propertyCollector, spec, page_objects=6):
            break  # stop early: the token must be cancelled, not left on the server
        assert sim.paging_state()["pendingRetrievals"] == 0
    finally:
        Disconnect(si)


def test_remediator_cluster_snapshot_reads_every_page(sim_factory: Any) -> None:
    sim = sim_factory(clusters=1, hosts=3, vms=15)
    inv = sim.inventory()
    # Session.retrieve asks for pages of 1,000 (vcenter.properties); vCenter may page smaller.
    sim.set_paging(max_objects_cap=4)
    config = sim_config(sim)
    session = Session(config.vcenters[0], config)
    try:
        cluster_id = inv["clusters"][0]["moid"]
        before = sim.paging_state()["continuedPages"]
        snap = cluster_snapshot(session, cluster_id)
        assert len(snap.hosts) == len(inv["hosts"]) and len(snap.vms) == len(inv["vms"])
        assert snap.cluster is not None
        assert sim.paging_state()["continuedPages"] - before >= (1 + 3 + 15) // 4
    finally:
        session.close()


async def test_a_change_never_waits_behind_a_long_poll(
    sim_factory: Any, aiohttp_client: Any
) -> None:
    """The poll of what vCenter never announces takes longer than its interval at 40,000
    VMs; it runs on the poller's own thread and session, so a change still reaches
    /metrics at once (it used to wait in the follower's thread behind the poll)."""
    sim = sim_factory(clusters=1, hosts=2, vms=12, real_vcenter=True)
    vm = sim.inventory()["vms"][0]["name"]
    sync = {"max_wait_seconds": 1, "poll_interval_seconds": 1}
    client = await aiohttp_client(create_app(exporter_config(sim_vcenter(sim), sync=sync)))
    await wait_for(client, lambda s: value(s, "vsphere_up", vcenter="vc1") == 1, timeout=30)
    # One object a page, 1 s before each further page: a poll of ~15 objects takes ~15 s.
    sim.set_paging(max_objects_cap=1, page_delay_ms=1000)
    first = sim.paging_state()["continuedPages"]
    deadline = time.monotonic() + 10
    while sim.paging_state()["continuedPages"] < first + 2:  # a slow poll is under way
        assert time.monotonic() < deadline, f"no poll started: {sim.paging_state()}"
        time.sleep(0.05)
    tokens = sim.paging_state()["tokensIssued"]
    sim.set_vm(vm, power_state="poweredOff")
    start = time.monotonic()
    await wait_for(
        client,
        lambda s: value(s, "vsphere_vm_power_state", vm=vm, state="poweredOff") == 1,
        timeout=3,
    )
    assert time.monotonic() - start < 3
    assert sim.paging_state()["tokensIssued"] == tokens  # still the same poll, not finished
