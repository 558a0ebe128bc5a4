"""/readyz (issue 15): 200 only once the body shows every vCenter's complete synced image
and the first performance-counter collection; never before."""

from __future__ import annotations

import os
import time
from typing import Any

from pyVim.connect import Disconnect, SmartConnect

from exporter.app import EXPORTER, Exporter, create_app
from exporter.inventory import Inventory
from exporter.perf import PerfCollector, parse_performance_config
from exporter.pollers import HOLD_INTERVALS, QuickStats
from exporter.render import HEAD_START

from .exporter_fixtures import exporter_config, first_ready, sim_vcenter
from .metrics_helpers import parse, select

PERF = {"enabled": True, "interval_seconds": 20}


async def test_ready_only_once_the_body_shows_the_counters(sim: Any, aiohttp_client: Any) -> None:
    app = create_app(exporter_config(sim_vcenter(sim), performance=PERF))
    client = await aiohttp_client(app)
    ready = await first_ready(client)
    samples = parse(await (await client.get("/metrics")).text())
    inv = sim.inventory()
    # The whole synced image...
    assert {s.labels["vm"] for s in select(samples, "vsphere_vm_info")} == {
        v["name"] for v in inv["vms"]
    }
    # ...and the first counter collection: every host's counters are there.
    counted = {s.labels["host"] for s in select(samples, "vsphere_host_cpu_usage_ratio")}
    assert counted == {h["name"] for h in inv["hosts"]}
    assert ready["counters_shown"] is True
    assert app[EXPORTER].perf[0].collections_total >= 1


async def test_counters_off_ready_without_them(sim: Any, aiohttp_client: Any) -> None:
    app = create_app(exporter_config(sim_vcenter(sim), performance={"enabled": False}))
    client = await aiohttp_client(app)
    ready = await first_ready(client)
    assert ready["counters_shown"] is True  # nothing to wait for
    assert app[EXPORTER].perf == []


def test_the_counters_are_resolved_while_the_inventory_syncs(sim: Any) -> None:
    """The login, the counters' look-up and the parse worker's start are done before the
    sync ends (seconds at 40,000 VMs that came after it), never a query: no targets yet."""
    config = exporter_config(sim_vcenter(sim), performance=PERF)
    inventory = Inventory("vc1")  # not synced
    collector = PerfCollector(config.vcenters[0], inventory, parse_performance_config(config))
    try:
        assert collector.collect_once() is False
        assert collector.counter_ids  # resolved by name on the simulator
        assert collector.worker is not None and collector.worker.pid not in (None, os.getpid())
        assert collector.queries_total == 0 and collector.collections_total == 0
        assert collector.errors_total == dict.fromkeys(collector.errors_total, 0)
    finally:
        collector.stop(timeout=5)


def test_no_quickstats_poll_before_the_sync_nor_within_an_interval_of_it(sim: Any) -> None:
    """A poll before the image exists folds nothing (every object unknown) and, at 40,000
    VMs, cost the simulator and the parse worker 430 pages during the initial sync; the
    sync reads the same properties, so the first poll is an interval after it."""
    config = exporter_config(sim_vcenter(sim), sync={"poll_interval_seconds": 1})
    quickstats = QuickStats(config.vcenters[0], config.sync)
    si = SmartConnect(**sim.connection_kwargs())
    inv = Inventory("vc1")
    try:
        content = si.RetrieveContent()
        quickstats(content, inv)
        assert inv.polls_total == 0  # no image yet
        inv.replace({}, {})
        quickstats(content, inv)
        assert inv.polls_total == 0  # the image is as fresh as a poll
        time.sleep(1.0)
        quickstats(content, inv)
        assert inv.polls_total == 1
    finally:
        quickstats.close()
        Disconnect(si)


def test_until_ready_a_full_render_never_waits_out_a_storm(sim: Any) -> None:
    """After a long first render, the render that brings the counters into the body (the
    last step to /readyz) starts after the detection lane's head start, not after the
    storm's wait (the last render's time, up to 5 s); once ready, the storm's wait again."""
    exporter = Exporter(exporter_config(sim_vcenter(sim), performance=PERF))  # not started
    renderer = exporter.renderer
    renderer._render_seconds = 20.0  # noqa: SLF001 - a first render at 40,000 VMs
    assert renderer.not_ready()  # nothing synced
    assert renderer.pause(quiet=0.0) == HEAD_START
    renderer.not_ready = lambda: False
    assert renderer.pause(quiet=0.0) == 5.0
    assert renderer.pause(quiet=10.0) == HEAD_START


def test_until_ready_the_first_quickstats_poll_waits_a_bounded_time(sim: Any) -> None:
    """While the exporter is not ready, the poll's pages would queue in the counters'
    worker with the first collection /readyz waits for: no poll then, for at most
    HOLD_INTERVALS intervals after the sync (a vCenter never ready must not freeze them)."""
    config = exporter_config(sim_vcenter(sim), sync={"poll_interval_seconds": 1})
    quickstats = QuickStats(config.vcenters[0], config.sync, waiting=lambda: True)
    si = SmartConnect(**sim.connection_kwargs())
    inv = Inventory("vc1")
    try:
        content = si.RetrieveContent()
        inv.replace({}, {})
        time.sleep(1.0)
        quickstats(content, inv)
        assert inv.polls_total == 0  # an interval after the sync, but not ready
        time.sleep(HOLD_INTERVALS - 1.0)
        quickstats(content, inv)
        assert inv.polls_total == 1  # the hold is over
    finally:
        quickstats.close()
        Disconnect(si)
