"""A change reaches gzip scrapes (Prometheus's way) without waiting for the compression of
the full render it was patched onto.

Why (issue 15 item 2, bench/change_timeline.py): a patch is spliced into the published
body, whose pieces the packer may still be compressing (a full render at 10,000 VMs is 135
MB, seconds of zlib). Preparing the patched body's gzip variant compressed all of those
pieces too, so a gzip scrape kept the old body for seconds after the plain one showed the
change. The patch is applied onto the last gzip-ready body as well, and only its own
pieces are compressed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from exporter import exposition
from exporter.app import EXPORTER, create_app

from .exporter_fixtures import exporter_config, sim_vcenter, wait_for
from .metrics_helpers import Sample, parse, value

HELD = b"vsphere_scrape_collector_duration_seconds"  # new bytes in every full render


def _maintenance(samples: list[Sample], host: str) -> float | None:
    return value(samples, "vsphere_host_maintenance_mode", host=host)


async def _gzip_scrape(client: Any, query: str = "") -> list[Sample]:
    resp = await client.get("/metrics" + query, headers={"Accept-Encoding": "gzip"})
    assert resp.status == 200
    return parse(await resp.text())  # aiohttp decompresses


@pytest.mark.parametrize("query", ["", "?shard=0&total_shards=2"])
async def test_a_patch_reaches_gzip_scrapes_while_the_full_body_is_being_compressed(
    sim: Any, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch, query: str
) -> None:
    client = await aiohttp_client(create_app(exporter_config(sim_vcenter(sim))))
    await wait_for(client, lambda s: value(s, "vsphere_up", vcenter="vc1") == 1, timeout=30)
    renderer = client.server.app[EXPORTER].renderer
    await _gzip_scrape(client, query)  # gzip (and the shard split) wanted from now on
    inv = sim.inventory()
    host = next(h for h in inv["hosts"] if h["cluster"])
    if query:  # the host's series in shard 0 with the status families
        host = next(
            h for h in inv["hosts"] if exposition.shard_of(b"vc1", h["moid"].encode(), 2) == 0
        )
    name = host["name"]
    entered, release = threading.Event(), threading.Event()
    real = exposition.gzip_member

    def held(data: bytes) -> bytes:  # the packer compressing a full render, held open
        if threading.current_thread().name == "vha-pack" and HELD in data[:200]:
            entered.set()
            release.wait(60)
        return real(data)

    monkeypatch.setattr(exposition, "gzip_member", held)
    try:
        renderer.mark_dirty()
        assert await asyncio.to_thread(entered.wait, 20), "the packer never compressed"
        sim.set_host(name, inMaintenanceMode=True)
        await wait_for(client, lambda s: _maintenance(s, name) == 1, timeout=20)  # plain
        deadline = asyncio.get_running_loop().time() + 10
        while _maintenance(await _gzip_scrape(client, query), name) != 1:
            assert asyncio.get_running_loop().time() < deadline, "gzip scrapes lag the patch"
            await asyncio.sleep(0.05)
        assert not release.is_set()  # still compressing the full render
    finally:
        release.set()
    # Once the packer is done, the full render's content follows (a newer render shows it).
    renders = renderer.renders_total
    renderer.mark_dirty()
    await asyncio.to_thread(_until, lambda: renderer.renders_total > renders)
    samples = await _gzip_scrape(client, query)
    assert _maintenance(samples, name) == 1


def _until(cond: Any, timeout: float = 30) -> None:
    import time  # noqa: PLC0415

    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


MAINTENANCE = b"# HELP vsphere_host_maintenance_mode "


async def test_the_lag_is_observed_once_gzip_scrapes_show_the_change(
    sim: Any, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """vsphere_render_last_lag_seconds counts until the body a gzip scrape is served shows
    the change, not until the plain body does: the patch's gzip members (and the full
    render's, compressed by the packer) come after it is published, and Prometheus asks
    for gzip. Held here for HOLD seconds on every thread, so no way round it shows the
    change sooner; a lag taken at publication is shorter than that."""
    hold = 0.6
    client = await aiohttp_client(create_app(exporter_config(sim_vcenter(sim))))
    await wait_for(client, lambda s: value(s, "vsphere_up", vcenter="vc1") == 1, timeout=30)
    renderer = client.server.app[EXPORTER].renderer
    await _gzip_scrape(client)  # gzip wanted from now on
    await asyncio.to_thread(_until, lambda: renderer._ready.get((True, 1)) is not None)
    name = next(h for h in sim.inventory()["hosts"] if h["cluster"])["name"]
    holding = threading.Event()
    real = exposition.gzip_member

    def slow(data: bytes) -> bytes:  # the changed family's compression, on any thread
        if holding.is_set() and MAINTENANCE in data[:200]:
            time.sleep(hold)
        return real(data)

    monkeypatch.setattr(exposition, "gzip_member", slow)
    before = renderer.lag.count
    holding.set()
    sim.set_host(name, inMaintenanceMode=True)
    await asyncio.to_thread(_until, lambda: renderer.lag.count > before)
    last = renderer.lag.last
    assert last >= hold, f"lag {last:.3f}s taken before gzip scrapes showed the change"
    assert _maintenance(await _gzip_scrape(client), name) == 1
