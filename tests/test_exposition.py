"""The body as per-family pieces: gzip members reused, shards that add up to the body.

Against the real simulator (performance counters on, the default), and Prometheus (the
Debian package) scraping gzip and two shards.
"""

from __future__ import annotations

import asyncio
import gzip
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter import exposition
from exporter.app import EXPORTER, create_app
from exporter.collectors import COLLECTORS
from exporter.exposition import chunks, parse_shard, shard_of
from exporter.shard_asks import ShardPending
from vha.demo.stack import Process, free_port, get_json

from .exporter_fixtures import exporter_config, sim_vcenter, wait_for
from .metrics_helpers import Sample, parse, select


def up(samples: list[Sample]) -> bool:
    return any(s.value == 1 for s in select(samples, "vsphere_up", vcenter="vc1"))


def keyed(samples: list[Sample]) -> Counter[tuple[str, tuple[tuple[str, str], ...], float]]:
    """A multiset of samples without the exporter's process metrics (measured per scrape)."""
    return Counter(
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for s in samples
        if not s.name.startswith("process_")
    )


async def _exporter(sim: Any, aiohttp_client: Any) -> tuple[Any, Any]:
    client = await aiohttp_client(create_app(exporter_config(sim_vcenter(sim))))
    await wait_for(
        client,
        lambda s: up(s) and any(x.name == "vsphere_perf_entities" and x.value > 0 for x in s),
        timeout=60,
    )
    return client, client.server.app[EXPORTER]


async def test_gzip_body_is_the_plain_body_and_unchanged_pieces_are_reused(
    sim: Any, aiohttp_client: Any
) -> None:
    _client, exporter = await _exporter(sim, aiohttp_client)
    renderer = exporter.renderer
    body = await asyncio.to_thread(renderer.render_now)
    packed = chunks(body.pieces, gzipped=True)
    assert gzip.decompress(b"".join(packed)) == b"".join(body)  # members concatenate
    assert len(packed) == len([p for p in body.pieces if p.plain])  # one member per family
    # One host changes: only the families it touches get new pieces.
    host = sim.inventory()["hosts"][0]["name"]
    before = {p.name: p for p in body.pieces}
    members = {p.name: p.gzip() for p in body.pieces}
    sim.set_host(host, inMaintenanceMode=True)
    deadline = time.monotonic() + 10
    while True:
        after = await asyncio.to_thread(renderer.render_now)
        shown = select(parse(after.decode()), "vsphere_host_maintenance_mode", host=host)
        if shown and shown[0].value == 1:
            break
        assert time.monotonic() < deadline, "the change never reached the body"
        await asyncio.sleep(0.1)
    pieces = {p.name: p for p in after.pieces}
    assert pieces["vsphere_host_maintenance_mode"] is not before["vsphere_host_maintenance_mode"]
    for name in ("vsphere_host_info", "vsphere_vm_info", "vsphere_cluster_info"):
        assert pieces[name] is before[name], name
        assert pieces[name].gzip() is members[name], name  # never compressed again
    assert gzip.decompress(b"".join(chunks(after.pieces, gzipped=True))) == b"".join(after)


async def test_once_gzip_is_served_the_plain_copy_is_let_go(
    sim: Any, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15 item 5: after a gzip scrape the packer keeps each family's gzip member
    only (the plain copy was the size of the body again); a plain scrape decompresses it
    and serves the same bytes, and an unchanged family is still the same piece. (Every
    piece of the small test estate is let go here: the bound for small pieces, kept for
    the detection lane, is test_patch_types.py's.)"""
    monkeypatch.setattr(exposition, "KEEP_PLAIN_BELOW", 0)
    client, exporter = await _exporter(sim, aiohttp_client)
    renderer = exporter.renderer
    resp = await client.get("/metrics", headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert resp.status == 200
    body = await asyncio.to_thread(renderer.render_now)
    await asyncio.to_thread(renderer.prepare, body)
    assert all(p._plain is None for p in body.pieces if p.size)  # noqa: SLF001
    assert sum(len(p.gzip()) for p in body.pieces) < body.size
    whole = b"".join(body)  # decompressed from the members
    assert len(whole) == body.size
    assert gzip.decompress(b"".join(chunks(body.pieces, gzipped=True))) == whole
    assert select(parse(whole.decode()), "vsphere_up", vcenter="vc1")[0].value == 1
    plain = (await (await client.get("/metrics")).read()).decode()
    assert select(parse(plain), "vsphere_vm_info")
    again = await asyncio.to_thread(renderer.render_now)
    info = {p.name: p for p in again.pieces}["vsphere_vm_info"]
    assert info is {p.name: p for p in body.pieces}["vsphere_vm_info"]


async def test_gzip_over_http_is_the_same_body(sim: Any, aiohttp_client: Any) -> None:
    client, _exporter_obj = await _exporter(sim, aiohttp_client)
    resp = await client.get("/metrics", headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert resp.status == 200 and resp.headers["Content-Encoding"] == "gzip"
    raw = await resp.read()
    assert len(raw) == int(resp.headers["Content-Length"])
    text = gzip.decompress(raw).decode()
    assert select(parse(text), "vsphere_up", vcenter="vc1")[0].value == 1


async def test_union_of_shards_is_the_body(sim: Any, aiohttp_client: Any) -> None:
    _client, exporter = await _exporter(sim, aiohttp_client)
    renderer = exporter.renderer
    body = await asyncio.to_thread(renderer.render_now)  # one body, held still
    plain = b"".join(body)
    whole = keyed(parse(plain.decode()))
    vms = {s.labels["vm_id"] for s in parse(plain.decode()) if "vm_id" in s.labels}
    assert len(vms) > 4
    for n in (1, 2, 4):
        union: Counter[tuple[str, tuple[tuple[str, str], ...], float]] = Counter()
        vm_shard: dict[str, int] = {}
        for i in range(n):
            data = b"".join(chunks(body.pieces, gzipped=False, shard=(i, n)))
            packed = b"".join(chunks(body.pieces, gzipped=True, shard=(i, n)))
            assert gzip.decompress(packed) == data
            samples = parse(data.decode())
            union += keyed(samples)
            names = {s.name for s in samples}
            if i == 0:  # vCenter-level and cluster-level families live in shard 0
                assert {"vsphere_up", "vsphere_cluster_info", "vsphere_sync_updates_total"} <= names
            else:
                assert not names & {"vsphere_up", "vsphere_cluster_info"}
            for s in samples:
                if "vm_id" in s.labels and s.name.startswith("vsphere_vm_"):
                    assert vm_shard.setdefault(s.labels["vm_id"], i) == i  # one shard per VM
                    assert shard_of(b"vc1", s.labels["vm_id"].encode(), n) == i
        assert union == whole, n
        assert len(vm_shard) == len(vms)
        if n > 1:
            assert len(set(vm_shard.values())) > 1  # the VMs spread out
    # A shard's gzip member is built once per piece, then reused (and survives its plain
    # parts being freed, as the packer does when only gzip is asked).
    vm_info = next(p for p in body.pieces if p.name == "vsphere_vm_info")
    member = vm_info.shard(1, 4, gzipped=True)
    vm_info.drop_plain_split(4)
    assert vm_info.shard(1, 4, gzipped=True) is member
    assert gzip.decompress(member) == vm_info.shard(1, 4)
    # The exporter's process metrics: shard 0 only (a new total: once the packer split it).
    for i, expected in ((0, True), (1, False)):
        deadline = time.monotonic() + 10
        while True:
            try:
                text = b"".join(renderer.body(shard=(i, 2))).decode()
                break
            except ShardPending:
                assert time.monotonic() < deadline, "the packer never split total 2"
                await asyncio.sleep(0.05)
        assert ("process_resident_memory_bytes" in text) is expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("shard=0", "shard and total_shards go together"),
        ("total_shards=2", "shard and total_shards go together"),
        ("shard=a&total_shards=2", "must be whole numbers"),
        ("shard=2&total_shards=2", "shard must be between 0 and total_shards-1 (1), got 2"),
        ("shard=-1&total_shards=2", "shard must be between 0"),
        ("shard=0&total_shards=0", "total_shards must be between 1 and 256, got 0"),
        ("shard=0&total_shards=1000", "total_shards must be between 1 and 256"),
    ],
)
async def test_bad_shard_parameters_are_a_400(
    sim: Any, aiohttp_client: Any, query: str, message: str
) -> None:
    client = await aiohttp_client(create_app(exporter_config(sim_vcenter(sim))))
    resp = await client.get(f"/metrics?{query}")
    text = await resp.text()
    assert resp.status == 400, text
    assert message in text and "Traceback" not in text and text.count("\n") == 1


def test_parse_shard() -> None:
    assert parse_shard(None, None) is None
    assert parse_shard("3", "4") == (3, 4)
    assert shard_of(b"vc1", b"vm-42", 4) == shard_of(b"vc1", b"vm-42", 4)  # no salt


DOCS = Path(__file__).resolve().parent.parent / "docs" / "exporter.md"


def documented_scrape_configs() -> list[dict[str, Any]]:
    """The Prometheus scrape configs docs/exporter.md gives for 1, 2 and 4 shards."""
    blocks = re.findall(r"^```yaml\n(.*?)^```", DOCS.read_text(), re.S | re.M)
    return [d for d in map(yaml.safe_load, blocks) if isinstance(d, dict) and "scrape_configs" in d]


def test_documented_scrape_configs_pass_promtool(tmp_path: Path) -> None:
    configs = documented_scrape_configs()
    shards = [len(c["scrape_configs"][0]["static_configs"]) for c in configs]
    assert shards == [1, 2, 4]
    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed")
    for n, config in zip(shards, configs, strict=True):
        path = tmp_path / f"prometheus-{n}.yml"
        path.write_text(yaml.safe_dump(config))
        proc = subprocess.run(
            ["promtool", "check", "config", str(path)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus not installed")
async def test_prometheus_scrapes_the_documented_four_shards_with_gzip(
    sim: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    client, exporter = await _exporter(sim, aiohttp_client)
    config = documented_scrape_configs()[2]  # four shards, as documented
    text = yaml.safe_dump(config).replace("127.0.0.1:9272", f"127.0.0.1:{client.server.port}")
    config = yaml.safe_load(text)
    config["global"] = {"scrape_interval": "1s", "scrape_timeout": "1s"}
    port = free_port()
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    prom = Process(
        "prometheus",
        [
            "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        tmp_path / "prometheus.log",
        f"http://127.0.0.1:{port}/-/ready",
    )
    prom.start()
    try:
        await asyncio.to_thread(prom.wait_ready, 60)
        vms = len(sim.inventory()["vms"])

        def query(q: str) -> list[dict[str, Any]]:
            url = f"http://127.0.0.1:{port}/api/v1/query?query={urllib.parse.quote(q)}"
            return list(get_json(url)["data"]["result"])

        deadline = time.monotonic() + 30
        while True:
            ups = await asyncio.to_thread(query, 'up{job="vsphere-exporter"}')
            per_shard = await asyncio.to_thread(query, "count by (shard) (vsphere_vm_info)")
            counted = {r["metric"]["shard"]: int(r["value"][1]) for r in per_shard}
            if len(ups) == 4 and all(r["value"][1] == "1" for r in ups) and len(counted) == 4:
                break
            assert time.monotonic() < deadline, f"up={ups} counts={counted}\n{prom.tail()}"
            await asyncio.sleep(0.5)
        assert sum(counted.values()) == vms  # each VM in exactly one shard
        assert exporter.renderer._gzip_wanted  # Prometheus asked for gzip  # noqa: SLF001
        cluster = await asyncio.to_thread(query, "count by (shard) (vsphere_cluster_info)")
        assert [r["metric"]["shard"] for r in cluster] == ["0"]
        # A cross-shard join as the rules write them: every VM finds its host.
        joined = await asyncio.to_thread(
            query,
            "count(vsphere_vm_info * on (vcenter, host_id) group_left vsphere_host_info)",
        )
        assert int(joined[0]["value"][1]) == vms
    finally:
        prom.stop()


async def test_render_lag_histogram_counts_inventory_changes(sim: Any, aiohttp_client: Any) -> None:
    client, _exporter_obj = await _exporter(sim, aiohttp_client)

    def count(samples: list[Sample]) -> float:
        found = select(samples, "vsphere_render_lag_seconds_count")
        return found[0].value if found else -1

    samples, _ = await wait_for(client, lambda s: count(s) >= 1, timeout=10)
    before = count(samples)
    sim.set_host(sim.inventory()["hosts"][0]["name"], inMaintenanceMode=True)
    samples, _ = await wait_for(client, lambda s: count(s) > before, timeout=10)
    inf = select(samples, "vsphere_render_lag_seconds_bucket", le="+Inf")[0].value
    assert inf == count(samples)
    lag_sum = select(samples, "vsphere_render_lag_seconds_sum")[0].value or 0
    assert lag_sum > 0
    # The last change's own lag, for a bench that times one change at a time from outside.
    last = select(samples, "vsphere_render_last_lag_seconds")[0].value or 0
    assert 0 < last <= lag_sum


async def test_follower_applies_updates_while_a_render_runs(
    sim: Any, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Detection first: a slow render never holds the inventory, so vCenter's next update is
    applied (and rendered right after) instead of waiting behind it."""
    _client, exporter = await _exporter(sim, aiohttp_client)
    inv = exporter.inventories[0]
    entered, release = threading.Event(), threading.Event()

    def slow(ctx: Any) -> list[Any]:  # a collector that takes as long as the test says
        if threading.current_thread().name == "vha-render":
            entered.set()
            release.wait(30)
        return []

    monkeypatch.setitem(COLLECTORS, "slow", slow)
    host = sim.inventory()["hosts"][1]
    exporter.renderer.mark_dirty()
    try:
        assert await asyncio.to_thread(entered.wait, 10), "no render started"
        sim.set_host(host["name"], inMaintenanceMode=True)

        def applied() -> bool:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with inv.lock:
                    obj = next(o for o in inv.objects.values() if o.name == host["name"])
                    if obj.get("runtime.inMaintenanceMode") is True:
                        return True
                time.sleep(0.05)
            return False

        assert await asyncio.to_thread(applied), "the update waited behind the render"
        assert not release.is_set() and entered.is_set()
    finally:
        release.set()


def test_the_answer_is_joined_into_blocks_one_at_a_time() -> None:
    """A scrape's write blocks are made as they are written, never all at once (which
    held a second copy of a 135 MB body per plain scrape)."""
    from exporter.app import coalesce  # noqa: PLC0415

    blocks = coalesce([b"aaa", b"bb", b"c", b"dddd"], size=4)
    assert not isinstance(blocks, list)
    assert next(blocks) == b"aaabb"
    assert list(blocks) == [b"cdddd"]
