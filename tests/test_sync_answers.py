"""The follower's WaitForUpdatesEx answers are measured (exporter/wire.py): when the last
update set arrived, how long its read and parse took, how big it was, per vCenter.

Why: these split a change's way to /metrics into vCenter's share (change -> answer
arrived) and the exporter's (arrived -> parsed -> body), which the benchmark reports.
"""

from __future__ import annotations

import http.client
import time
from typing import Any

from exporter.app import create_app
from exporter.families import Family
from exporter.wire import Histogram, Recorder, install

from .exporter_fixtures import exporter_config, sim_vcenter, wait_for
from .metrics_helpers import Sample, select, value


def _one(samples: list[Sample], name: str, **labels: str) -> float:
    found = select(samples, name, vcenter="vc1", **labels)
    assert len(found) == 1, (name, labels, found)
    return float(found[0].value or 0.0)


async def test_a_change_stamps_the_last_update_and_counts_its_answer(
    sim: Any, aiohttp_client: Any
) -> None:
    client = await aiohttp_client(create_app(exporter_config(sim_vcenter(sim))))
    samples, _ = await wait_for(
        client, lambda s: value(s, "vsphere_up", vcenter="vc1") == 1, timeout=30
    )
    parsed0 = _one(samples, "vsphere_sync_update_parse_seconds_count")
    bytes0 = _one(samples, "vsphere_sync_update_size_bytes_sum")
    assert parsed0 >= 1  # the initial sync's pages are answers too
    host = sim.inventory()["hosts"][0]["name"]
    before = time.time()
    sim.set_host(host, inMaintenanceMode=True)
    samples, _ = await wait_for(
        client,
        lambda s: value(s, "vsphere_host_maintenance_mode", host=host) == 1,
        timeout=20,
    )
    last = _one(samples, "vsphere_sync_last_update_timestamp_seconds")
    assert before <= last <= time.time(), (before, last)
    assert _one(samples, "vsphere_sync_update_parse_seconds_count") > parsed0
    assert _one(samples, "vsphere_sync_update_size_bytes_sum") > bytes0
    count = _one(samples, "vsphere_sync_update_size_bytes_count")
    assert _one(samples, "vsphere_sync_update_size_bytes_bucket", le="+Inf") == count
    # Measured through the hook, not the fallback (which has no arrival, so parses in 0 s).
    assert _one(samples, "vsphere_sync_update_parse_seconds_sum") > 0


def test_histogram_lines_are_cumulative_with_sum_and_count() -> None:
    hist = Histogram((0.1, 1.0))
    for v in (0.05, 0.5, 2.0):
        hist.observe(v)
    fam = Family("x_seconds", "h", "histogram")
    hist.add_to(fam, 'vcenter="a"')
    assert fam.lines == [
        'x_seconds_bucket{vcenter="a",le="0.1"} 1\n',
        'x_seconds_bucket{vcenter="a",le="1"} 2\n',
        'x_seconds_bucket{vcenter="a",le="+Inf"} 3\n',
        'x_seconds_sum{vcenter="a"} 2.55\n',
        'x_seconds_count{vcenter="a"} 3\n',
    ]


def test_bucket_bounds_are_written_exactly() -> None:
    """The size buckets reach 256 MiB: a six-digit ``le`` would name a bound that is not one."""
    from exporter.wire import SIZE_BUCKETS

    hist = Histogram(SIZE_BUCKETS)
    fam = Family("x_bytes", "h", "histogram")
    hist.add_to(fam, 'vcenter="a"')
    les = [line.split('le="')[1].split('"')[0] for line in fam.lines if "_bucket" in line]
    assert [float(le) for le in les[:-1]] == list(SIZE_BUCKETS)


class _Stub:
    def __init__(self) -> None:
        self.scheme = http.client.HTTPConnection
        self.pool = [(http.client.HTTPConnection("127.0.0.1", 1), 0.0)]


class _SI:
    def __init__(self) -> None:
        self._stub = _Stub()


def test_install_hooks_new_and_pooled_connections() -> None:
    si = _SI()
    recorder = install(si)
    pooled = si._stub.pool[0][0]
    fresh = si._stub.scheme(host="127.0.0.1", port=1)
    assert pooled.response_class is fresh.response_class
    assert issubclass(fresh.response_class, http.client.HTTPResponse)
    assert fresh.response_class is not http.client.HTTPResponse
    # No answer read: arrival is the caller's "done", nothing parsed, nothing counted.
    arrived, parse, size = recorder.answer(time.monotonic())
    assert parse == 0.0 and size == 0 and abs(arrived - time.time()) < 5


def test_a_stub_without_a_pool_gets_an_unhooked_recorder() -> None:
    assert isinstance(install(object()), Recorder)
