"""Shards are split off the request path, and no gzip body has more members than aiohttp
reads (issue 15: the first sharded scrape at 40,000 VMs took 65.9 s, all of it splitting;
review finding 7: the member bound was per piece, not per body).

Against the real simulator; the split is observed, not replaced: ``split_lines`` and
``split_members`` wrapped to note the thread they run on, and
``vsphere_exposition_shard_splits_total{where}``.
"""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
import zlib
from collections import Counter
from typing import Any

import pytest

from exporter import exposition
from exporter.app import EXPORTER, create_app
from exporter.exposition import chunks, gzip_member
from exporter.families import Family
from exporter.shard_asks import MOST_TOTALS

from .exporter_fixtures import exporter_config, sim_vcenter, wait_for
from .metrics_helpers import Sample, parse, select

GZIP = {"Accept-Encoding": "gzip"}
PLAIN = {"Accept-Encoding": "identity"}  # aiohttp's client asks gzip unless told
BUILDERS = {"vha-pack", "vha-patch"}  # the packer and the detection lane


def up(samples: list[Sample]) -> bool:
    return any(s.value == 1 for s in select(samples, "vsphere_up", vcenter="vc1"))


async def _exporter(sim: Any, aiohttp_client: Any, app: Any = None) -> tuple[Any, Any]:
    app = app or create_app(exporter_config(sim_vcenter(sim)))
    client = await aiohttp_client(app)
    await wait_for(client, up, timeout=60)
    return client, client.server.app[EXPORTER]


def spy_splits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The real ``split_lines`` and ``split_members``, noting the thread of every call."""
    threads: list[str] = []
    for name in ("split_lines", "split_members"):
        real = getattr(exposition, name)

        def noting(data: Any, total: int, real: Any = real) -> Any:
            threads.append(threading.current_thread().name)
            return real(data, total)

        monkeypatch.setattr(exposition, name, noting)
    return threads


def splits(samples: list[Sample]) -> dict[str, float]:
    return {
        s.labels["where"]: s.value or 0.0
        for s in select(samples, "vsphere_exposition_shard_splits_total")
    }


def members(data: bytes) -> int:
    """How many gzip members ``data`` is, walked as RFC 1952 2.2 reads them."""
    n = 0
    while data:
        inflater = zlib.decompressobj(31)
        inflater.decompress(data)
        assert inflater.eof, "a truncated member"
        data, n = inflater.unused_data, n + 1
    return n


async def test_a_new_total_is_split_by_the_packer_not_the_request(
    sim: Any, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, exporter = await _exporter(sim, aiohttp_client)
    renderer = exporter.renderer
    threads = spy_splits(monkeypatch)
    resp = await client.get("/metrics", headers=GZIP)  # Prometheus asks gzip
    assert resp.status == 200
    for i in range(4):  # the first ask of total_shards=4: answered once the packer split it
        resp = await client.get(f"/metrics?shard={i}&total_shards=4", headers=GZIP)
        assert resp.status == 200, await resp.text()
        assert select(parse(await resp.text()), "vsphere_vm_info") or i == 0
    assert threads and set(threads) <= BUILDERS, Counter(threads)
    # A plain shard after gzip ones (the packer had let the plain parts go): the same.
    resp = await client.get("/metrics?shard=1&total_shards=4", headers=PLAIN)
    assert resp.status == 200 and "Content-Encoding" not in resp.headers
    assert select(parse(await resp.text()), "vsphere_vm_info")
    assert set(threads) <= BUILDERS, Counter(threads)
    samples, _ = await wait_for(client, lambda s: splits(s).get("packer", 0) > 0, timeout=10)
    assert splits(samples)["request"] == 0

    # The prepared body's shards add up to it, and reading them splits nothing more.
    ready = renderer._ready[(True, 4)]  # noqa: SLF001
    before = len(threads)
    whole = b"".join(ready)
    union = b"".join(
        gzip.decompress(b"".join(chunks(ready.pieces, gzipped=True, shard=(i, 4))))
        for i in range(4)
    )
    assert threading.current_thread().name not in threads[before:]  # the packer's meanwhile

    def samples(data: bytes) -> Counter[bytes]:
        return Counter(line for line in data.splitlines() if not line.startswith(b"#"))

    assert samples(union) == samples(whole)

    # A change re-splits the pieces it changed only: the others keep their split.
    old = {id(p): p._packed.get(4) for p in ready.pieces}  # noqa: SLF001
    host = sim.inventory()["hosts"][0]["name"]
    sim.set_host(host, inMaintenanceMode=True)
    deadline = time.monotonic() + 20
    while True:
        shown = []
        for i in range(4):  # the host's shard
            resp = await client.get(f"/metrics?shard={i}&total_shards=4", headers=GZIP)
            assert resp.status == 200
            shown += select(parse(await resp.text()), "vsphere_host_maintenance_mode", host=host)
        if shown and shown[0].value == 1:
            break
        assert time.monotonic() < deadline, "the change never reached the shards"
        await asyncio.sleep(0.1)
    after = renderer._ready[(True, 4)]  # noqa: SLF001
    kept = [p for p in after.pieces if id(p) in old]
    assert len(kept) > len(after.pieces) // 2  # most families did not change
    for piece in kept:
        assert piece._packed.get(4) is old[id(piece)], piece.name  # noqa: SLF001
    assert set(threads) <= BUILDERS, Counter(threads)


async def test_a_split_not_ready_in_time_is_a_503_then_served(
    sim: Any, aiohttp_client: Any
) -> None:
    """Bounded by the scrape's own timeout (Prometheus' X-Prometheus-Scrape-Timeout-Seconds):
    a clear 503 before Prometheus gives up, never a scrape that splits the body itself."""
    client, exporter = await _exporter(sim, aiohttp_client)
    renderer = exporter.renderer
    held, release = threading.Event(), threading.Event()
    real = renderer.prepare

    def slow(body: Any) -> None:  # the real preparation, started late
        held.set()
        release.wait(30)
        real(body)

    renderer.prepare = slow  # type: ignore[method-assign]
    try:
        headers = {**GZIP, "X-Prometheus-Scrape-Timeout-Seconds": "1.5"}
        started = time.monotonic()
        resp = await client.get("/metrics?shard=0&total_shards=3", headers=headers)
        waited = time.monotonic() - started
        text = await resp.text()
        assert resp.status == 503, text
        assert int(resp.headers["Retry-After"]) >= 1
        assert "total_shards=3" in text and text.count("\n") == 1
        assert 0.5 <= waited < 1.5  # answered before the scrape's timeout
        assert held.is_set()  # the packer was asked at once
    finally:
        release.set()
    resp = await client.get("/metrics?shard=2&total_shards=3", headers=GZIP)
    assert resp.status == 200
    samples, _ = await wait_for(client, lambda s: splits(s).get("packer", 0) > 0, timeout=10)
    assert splits(samples)["request"] == 0


async def test_a_total_not_asked_for_a_while_is_forgotten(sim: Any, aiohttp_client: Any) -> None:
    """Its splits are another copy of the body: freed once no scrape asks (shard_asks.py),
    and split again (ahead of the answer) if it is asked for once more."""
    client, exporter = await _exporter(sim, aiohttp_client)
    renderer = exporter.renderer
    resp = await client.get("/metrics?shard=1&total_shards=3", headers=GZIP)
    assert resp.status == 200
    body = renderer._ready[(True, 3)]  # noqa: SLF001
    assert any(3 in p._packed for p in body.pieces)  # noqa: SLF001
    renderer._asks.ttl = 0.0  # noqa: SLF001 - "a while" is now
    await asyncio.to_thread(renderer.prepare, body)
    assert (True, 3) not in renderer._ready  # noqa: SLF001
    assert not any(3 in p._packed or 3 in p._shards for p in body.pieces)  # noqa: SLF001
    renderer._asks.ttl = 900.0  # noqa: SLF001
    resp = await client.get("/metrics?shard=1&total_shards=3", headers=GZIP)
    assert resp.status == 200 and select(parse(await resp.text()), "vsphere_vm_info")


def many_member_families(count: int, per_family: int) -> list[Family]:
    """Families of ``per_family`` cached members each (below the per-piece repack)."""
    out = []
    for f in range(count):
        fam = Family(f"vsphere_test_members_{f}", "Members of a test family.")
        fam.members = [
            gzip_member(f'vsphere_test_members_{f}{{vcenter="vc1",vm_id="vm-{m}"}} 1\n'.encode())
            for m in range(per_family)
        ]
        out.append(fam)
    return out


async def test_no_gzip_body_has_more_members_than_aiohttp_reads(
    sim: Any, aiohttp_client: Any
) -> None:
    """Each piece may be up to 16 members; 80 such families made a body of over 1,024,
    which aiohttp's client refuses (TooManyMembersError)."""
    app = create_app(exporter_config(sim_vcenter(sim)))
    families = many_member_families(80, exposition.MAX_MEMBERS - 1)
    app[EXPORTER].renderer.extra_sources.append(lambda: families)
    client, _exporter_obj = await _exporter(sim, aiohttp_client, app)
    await wait_for(client, lambda s: bool(select(s, "vsphere_test_members_79")), timeout=10)
    for query in ("", "?shard=0&total_shards=2", "?shard=1&total_shards=2"):
        raw = await client.get(f"/metrics{query}", headers=GZIP, auto_decompress=False)
        assert raw.status == 200
        data = await raw.read()
        assert members(data) <= exposition.MAX_BODY_MEMBERS, query
        resp = await client.get(f"/metrics{query}", headers=GZIP)  # aiohttp decompresses
        text = await resp.text()
        assert ("vsphere_up{" in text) == (query != "?shard=1&total_shards=2"), query
    text = await (await client.get("/metrics", headers=GZIP)).text()
    assert len(select(parse(text), "vsphere_test_members_42")) == exposition.MAX_MEMBERS - 1


def split_by_line(data: bytes, total: int) -> list[bytes]:
    """The split as the per-line loop did it (the reference the faster split must match)."""
    header: list[bytes] = []
    parts: list[list[bytes]] = [[] for _ in range(total)]
    for line in data.splitlines(keepends=True):
        if line.startswith(b"#"):
            header.append(line)
            continue
        m = exposition._OBJECT.match(line)  # noqa: SLF001
        i = 0 if m is None else exposition.shard_of(m.group(1), m.group(2), total)
        parts[i].append(line)
    head = b"".join(header)
    out = [head + b"".join(lines) if lines else b"" for lines in parts]
    if not any(parts):
        out[0] = head
    return out


def mixed_family() -> list[bytes]:
    """Runs of one object's lines, objects whose ids prefix each other (vm-1, vm-10),
    escaped quotes, lines without an object between and inside runs, a comment in the
    middle, and no newline at the end."""
    lines = [b"# HELP vsphere_x x\n", b"# TYPE vsphere_x gauge\n"]
    for v in (1, 10, 1, 100, 2, 2, 3):
        lines += [b'vsphere_x{vcenter="vc1",vm_id="vm-%d",d="a"} 1\n' % v] * (v % 3 + 1)
    lines += [
        b'vsphere_x{vcenter="vc1",cluster_id="c-1"} 1\n',
        b'vsphere_x{vcenter="v\\"c",host_id="host-\\"9"} 1\n',
        b'vsphere_x{vcenter="v\\"c",host_id="host-\\"9",s="b"} 2\n',
        b"vsphere_x 3\n",
        b'vsphere_x{vcenter="vc1",datastore_id="ds-1"} 1\n',
        b"# a comment\n",
        b'vsphere_x{vcenter="vc1",datastore_id="ds-1"} 2\n',
        b'vsphere_x{vcenter="vc2",vm_id="vm-1"} 1\n',
        b'vsphere_x{vcenter="vc1",vm_id="vm-5"} 9',
    ]
    return lines


@pytest.mark.parametrize("total", [2, 3, 4, 7])
def test_the_split_matches_the_per_line_split(total: int) -> None:
    lines = mixed_family()
    data = b"".join(lines)
    assert exposition.split_lines(data, total) == split_by_line(data, total)
    header = b"".join(lines[:2])
    assert exposition.split_lines(header, total) == split_by_line(header, total)
    assert exposition.split_lines(b"", total) == split_by_line(b"", total)


def blocks_of(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("total", [2, 3, 4, 7])
@pytest.mark.parametrize("block", [1, 7, 64, 1 << 20])
def test_the_streamed_split_is_the_split_compressed(total: int, block: int) -> None:
    """Fed in blocks that cut lines and runs anywhere, the shards' gzip members hold what
    the split's parts hold (the comment in the middle comes after samples only when the
    blocks are small: then the stream declines, and the piece splits as before)."""
    lines = mixed_family()
    late_comment = b"".join(lines)
    no_late = b"".join(line for line in lines if line != b"# a comment\n")
    for data in (no_late, b"".join(lines[:2]), b"", lines[2]):
        members = exposition.split_members(blocks_of(data, block), total)
        assert members is not None
        assert [gzip.decompress(m) if m else b"" for m in members] == split_by_line(data, total)
    streamed = exposition.split_members(blocks_of(late_comment, block), total)
    if block < len(late_comment):
        assert streamed is None
    else:  # one block: the comment is read before any shard has begun
        assert streamed is not None
        assert [gzip.decompress(m) if m else b"" for m in streamed] == split_by_line(
            late_comment, total
        )
    for piece in (  # a comment after samples: the whole split, then compressed
        exposition.Piece("x", late_comment),
        exposition.Piece.packed("x", gzip_member(late_comment), len(late_comment)),
    ):
        got = [piece.shard(i, total, gzipped=True) for i in range(total)]
        assert [gzip.decompress(m) if m else b"" for m in got] == split_by_line(late_comment, total)


def test_a_gzip_shard_of_a_released_piece_never_holds_its_bytes_whole() -> None:
    """At 40,000 VMs the first 4-shard ask raised the exporter's peak RSS by ~500 MiB: each
    gzip-only piece (the sensor families: ~125 MB each) was decompressed whole, split into
    lists of runs, joined into parts, and only then compressed. Streamed, a piece's gzip
    shards are built a block at a time."""
    import tracemalloc  # noqa: PLC0415

    line = b'vsphere_h{vcenter="vc1",host_id="host-%d",sensor="s%d"} 1\n'
    data = b"".join(line % (h, s) for h in range(8000) for s in range(40))  # ~19 MB
    piece = exposition.Piece.packed("vsphere_h", gzip_member(data), len(data))
    tracemalloc.start()
    try:
        members = [piece.shard(i, 4, gzipped=True) for i in range(4)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert b"".join(gzip.decompress(m) for m in members).count(b"\n") == 320_000
    # A few blocks in flight (a block, its lines, their join), whatever the piece's size.
    assert peak < 6 * exposition.STREAM_BLOCK < len(data) / 3, peak


def test_the_member_bound_repacks_the_smallest_pieces_first() -> None:
    """A body over the bound loses members from its pieces of few members, not from a
    group-packed family of many (large, and rebuilt with each change of its objects: its
    repack would be paid again on every build; at 40,000 VMs it was two ~125 MB sensor
    families, repacked whole by each build under the old most-members-first order)."""
    grouped = exposition.Piece.packed(
        "vsphere_big", b"".join(gzip_member(b"big %d\n" % i) for i in range(600)), 0, 600
    )
    small = [
        exposition.Piece.packed(
            f"vsphere_small_{n}", gzip_member(b"a\n") + gzip_member(b"b\n"), 4, 2
        )
        for n in range(300)
    ]
    pieces = [grouped, *small]
    assert sum(p.members for p in pieces) > exposition.MAX_BODY_MEMBERS
    exposition.fit_members(pieces)
    assert grouped.members == 600  # untouched
    assert sum(p.members for p in pieces) <= exposition.MAX_BODY_MEMBERS
    assert all(zlib.decompress(p.gzip(), 31) == b"a\nb\n" for p in small if p.members == 1)


@pytest.mark.parametrize(
    ("header", "wait"),
    [("10", 9.5), ("3", 2.5), ("0.2", 0.0), ("inf", 9.5), ("nan", 9.5), ("1e9", 120.0)],
)
def test_the_first_split_waits_no_longer_than_a_bounded_scrape_timeout(
    header: str, wait: float
) -> None:
    """The scrape-timeout header is a sender's: "inf" or 1e9 never holds a request open
    without end while a first split is prepared."""
    from aiohttp.test_utils import make_mocked_request  # noqa: PLC0415

    from exporter.app import TIMEOUT_HEADER, first_split_wait  # noqa: PLC0415

    request = make_mocked_request("GET", "/metrics", headers={TIMEOUT_HEADER: header})
    assert first_split_wait(request) == wait


async def test_a_total_past_the_most_kept_is_a_429_and_counted(
    sim: Any, aiohttp_client: Any
) -> None:
    """Each total kept split is another copy of the body: a new one while MOST_TOTALS are
    kept is refused with a one-line reason and Retry-After, counted, and the kept ones are
    still served (it used to evict one, so five scrapers in turn re-split on every ask)."""
    client, _ = await _exporter(sim, aiohttp_client)
    kept = list(range(2, 2 + MOST_TOTALS))
    for total in kept:
        resp = await client.get(f"/metrics?shard=0&total_shards={total}", headers=GZIP)
        assert resp.status == 200, await resp.text()
    resp = await client.get("/metrics?shard=0&total_shards=9", headers=GZIP)
    text = await resp.text()
    assert resp.status == 429, text
    assert int(resp.headers["Retry-After"]) >= 1
    assert "total_shards=9" in text and text.count("\n") == 1
    for total in kept:  # none was let go for it
        resp = await client.get(f"/metrics?shard=1&total_shards={total}", headers=GZIP)
        assert resp.status == 200
    await wait_for(  # the counter shows in the next body
        client,
        lambda s: any(x.value == 1 for x in select(s, "vsphere_exposition_shard_refusals_total")),
        timeout=10,
    )
