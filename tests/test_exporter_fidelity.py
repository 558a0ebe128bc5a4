"""The exporter against a simulator that behaves like a real vCenter (issue 14).

Properties that never notify, short outages, backoff after a long outage, a hung vCenter,
values no enum lists, and following only the configuration fields that are used.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

from exporter.app import create_app
from exporter.inventory import PROPERTIES

from .exporter_fixtures import exporter_config, scrape, sim_vcenter, wait_for
from .metrics_helpers import Sample, select, value

POLL = 2  # sync.poll_interval_seconds in these tests


def up(samples: list[Sample]) -> bool:
    return value(samples, "vsphere_up", vcenter="vc1") == 1


def sync(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "max_wait_seconds": 1,
        "backoff_initial_seconds": 0.2,
        "backoff_max_seconds": 1,
        "poll_interval_seconds": POLL,
    }
    base.update(extra)
    return base


def test_real_vcenter_mode_changes_quick_stats_without_notifying(sim_factory: Any) -> None:
    """The simulator itself: a silent change reaches RetrievePropertiesEx, not WaitForUpdatesEx."""
    sim = sim_factory(clusters=1, hosts=1, vms=1, real_vcenter=True)
    vm_name = sim.inventory()["vms"][0]["name"]
    si = SmartConnect(**sim.connection_kwargs())
    try:
        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(
            content.rootFolder, [vim.VirtualMachine], True
        )
        pc = content.propertyCollector.CreatePropertyCollector()
        spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[
                vmodl.query.PropertyCollector.ObjectSpec(
                    obj=view,
                    skip=True,
                    selectSet=[
                        vmodl.query.PropertyCollector.TraversalSpec(
                            name="v", type=vim.view.ContainerView, path="view"
                        )
                    ],
                )
            ],
            propSet=[
                vmodl.query.PropertyCollector.PropertySpec(
                    type=vim.VirtualMachine, pathSet=["summary.quickStats.overallCpuUsage"]
                )
            ],
        )
        pc.CreateFilter(spec, partialUpdates=True)
        version = pc.WaitForUpdatesEx("", None).version
        sim.set_vm_raw(vm_name, overallCpuUsage=4321)
        opts = vmodl.query.PropertyCollector.WaitOptions(maxWaitSeconds=1)
        assert pc.WaitForUpdatesEx(version, opts) is None  # vCenter says nothing
        result = pc.RetrievePropertiesEx([spec], vmodl.query.PropertyCollector.RetrieveOptions())
        vals = [p.val for o in result.objects for p in o.propSet]
        assert vals == [4321]
    finally:
        Disconnect(si)


async def test_quick_stats_and_overall_status_change_silently_show_within_poll(
    sim_factory: Any, aiohttp_client: Any
) -> None:
    sim = sim_factory(clusters=1, hosts=2, vms=2, real_vcenter=True)
    inv = sim.inventory()
    vm_name, host = inv["vms"][0]["name"], inv["hosts"][0]["name"]
    client = await aiohttp_client(create_app(exporter_config(sim_vcenter(sim), sync=sync())))
    await wait_for(client, up, timeout=30)
    sim.set_vm_raw(vm_name, overallCpuUsage=1234, hostMemoryUsage=2048)
    sim.set_host_raw(host, overallCpuUsage=7777, overallStatus="yellow")
    start = time.monotonic()
    _, waited = await wait_for(
        client,
        lambda s: (
            value(s, "vsphere_vm_cpu_usage_hertz", vm=vm_name) == 1234e6
            and value(s, "vsphere_vm_memory_consumed_bytes", vm=vm_name) == 2048 * 2**20
            and value(s, "vsphere_host_cpu_usage_hertz", host=host) == 7777e6
            and value(s, "vsphere_host_overall_status", host=host, status="yellow") == 1
        ),
        timeout=POLL + 3,
    )
    assert time.monotonic() - start <= POLL + 3
    samples = await scrape(client)
    assert (value(samples, "vsphere_sync_polls_total", vcenter="vc1") or 0) >= 1


async def test_two_second_restart_keeps_host_series_in_every_scrape(
    sim: Any, aiohttp_client: Any
) -> None:
    n_hosts = len(sim.inventory()["hosts"])
    client = await aiohttp_client(
        create_app(exporter_config(sim_vcenter(sim), sync=sync(hold_seconds=30)))
    )
    await wait_for(client, up, timeout=30)
    sim.stop_process()
    seen_down = False
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        samples = await scrape(client)
        seen_down = seen_down or not up(samples)
        assert len(select(samples, "vsphere_host_info")) == n_hosts
        await asyncio.sleep(0.1)
    sim.restart()
    while True:
        samples = await scrape(client)
        assert len(select(samples, "vsphere_host_info")) == n_hosts
        if up(samples):
            break
        seen_down = True
        await asyncio.sleep(0.1)
    assert seen_down


async def test_after_the_hold_the_object_series_go(sim: Any, aiohttp_client: Any) -> None:
    client = await aiohttp_client(
        create_app(exporter_config(sim_vcenter(sim), sync=sync(hold_seconds=1)))
    )
    await wait_for(client, up, timeout=30)
    sim.stop_process()
    samples, waited = await wait_for(
        client, lambda s: select(s, "vsphere_host_info") == [], timeout=6
    )
    assert not up(samples)
    assert waited >= 0.9  # held first
    assert value(samples, "vsphere_sync_last_success_timestamp_seconds", vcenter="vc1")


async def test_backoff_resets_after_a_resync(sim: Any, aiohttp_client: Any) -> None:
    """A long outage pushes the backoff to its maximum; a later blip must not pay it."""
    cfg = sync(backoff_initial_seconds=1, backoff_max_seconds=16, hold_seconds=0)
    client = await aiohttp_client(create_app(exporter_config(sim_vcenter(sim), sync=cfg)))
    await wait_for(client, up, timeout=30)
    sim.stop_process()
    await asyncio.sleep(20)  # retries at +1, +3, +7, +15: the next wait is the 16 s maximum
    sim.restart()
    await wait_for(client, up, timeout=25)
    await asyncio.sleep(1)
    sim.stop_process()
    await wait_for(client, lambda s: not up(s), timeout=5)
    await asyncio.sleep(1)
    sim.restart()
    await wait_for(client, up, timeout=5)


async def test_hung_vcenter_goes_down_within_max_wait_plus_margin(
    sim: Any, aiohttp_client: Any
) -> None:
    cfg = sync(max_wait_seconds=1, hung_margin_seconds=2)
    client = await aiohttp_client(create_app(exporter_config(sim_vcenter(sim), sync=cfg)))
    await wait_for(client, up, timeout=30)
    os.kill(sim.pid, signal.SIGSTOP)
    try:
        samples, waited = await wait_for(client, lambda s: not up(s), timeout=1 + 2 + 1.5)
        assert (
            value(samples, "vsphere_sync_errors_total", vcenter="vc1", reason="timeout") or 0
        ) >= 1
    finally:
        os.kill(sim.pid, signal.SIGCONT)
    await wait_for(client, up, timeout=15)


async def test_unknown_enum_value_is_counted_and_known_states_complete(
    sim: Any, aiohttp_client: Any
) -> None:
    inv = sim.inventory()
    host = next(h for h in inv["hosts"] if h["dasHostState"] == "connectedToMaster")
    client = await aiohttp_client(create_app(exporter_config(sim_vcenter(sim), sync=sync())))
    samples, _ = await wait_for(client, up, timeout=30)
    # Every documented ClusterDasFdmAvailabilityState, 8.0U1's retry included.
    assert value(samples, "vsphere_host_ha_state", host=host["name"], state="retry") == 0
    sim.set_host_raw(host["name"], dasHostState="someFutureState")
    samples, _ = await wait_for(
        client,
        lambda s: (
            value(
                s,
                "vsphere_unknown_enum_values_total",
                vcenter="vc1",
                metric="vsphere_host_ha_state",
                value="someFutureState",
            )
            == 1
        ),
        timeout=3,
    )
    # Who reported the state: the cluster's master.
    master = next(c["master"] for c in inv["clusters"] if c["name"] == host["cluster"])
    rep = select(samples, "vsphere_host_ha_state_reporter_info", host=host["name"])
    assert [s.labels["reporter"] for s in rep] == [master]
    info = select(samples, "vsphere_cluster_ha_master_info", cluster=host["cluster"])
    assert [s.labels["reporter"] for s in info] == [master]


def test_cluster_configuration_is_followed_field_by_field() -> None:
    paths = PROPERTIES["ClusterComputeResource"]
    assert "configurationEx" not in paths and "configuration" not in paths
    config_paths = [p for p in paths if p.startswith("configuration")]
    assert config_paths and all(
        p.startswith(("configuration.dasConfig.", "configuration.drsConfig.")) for p in config_paths
    )
