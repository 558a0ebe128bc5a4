"""shard_groups.py: the gzip shards of a piece of cached members, built unit by unit."""

from __future__ import annotations

import gzip
import os
import random
import zlib

import pytest

from exporter import shard_groups
from exporter.exposition import Piece, _Router, gzip_member, shard_of, split_lines
from exporter.families import Family
from exporter.render import Renderer
from exporter.shard_groups import crc32_combine, py_crc32_combine
from vcenter.config import parse_config

HEAD = "# HELP vsphere_host_sensor_reading x\n# TYPE vsphere_host_sensor_reading gauge\n"


def _host(i: int, salt: str = "") -> bytes:
    """One host's sensor lines, as the sensor collector caches them: a member per host."""
    lines = "".join(
        f'vsphere_host_sensor_reading{{vcenter="vc",host_id="host-{i}",sensor="s{j}{salt}"}} {j}\n'
        for j in range(40)
    )
    return gzip_member(lines.encode())


@pytest.fixture
def small_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    """Units of ~8 KB of text (a host's lines are ~3 KB), so 300 hosts make dozens."""
    monkeypatch.setattr(shard_groups, "UNIT", 8000)


def _units(piece: Piece) -> int:
    source = piece._source  # noqa: SLF001
    assert source is not None
    return len(shard_groups.units(source[1]))


def _piece(renderer: Renderer, members: list[bytes], lines: list[str] | None = None) -> Piece:
    fam = Family("vsphere_host_sensor_reading", "x", lines=list(lines or []))
    fam.members = list(members)
    return renderer.family_piece(fam)


def _renderer() -> Renderer:
    return Renderer(parse_config({}), [])


def _one_member(data: bytes) -> bytes:
    """The text of ``data``, asserting it is exactly one gzip member."""
    inflater = zlib.decompressobj(31)
    text = inflater.decompress(data)
    assert inflater.eof and inflater.unused_data == b""
    return text


@pytest.mark.parametrize("combine", [crc32_combine, py_crc32_combine])
def test_crc32_combine_is_zlibs(combine: object) -> None:
    rng = random.Random(7)
    for _ in range(50):
        a = os.urandom(rng.randrange(0, 3000))
        b = os.urandom(rng.randrange(0, 70000))
        assert combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)  # type: ignore[operator]


def test_the_split_combines_with_libz_here() -> None:
    """Debian's libz is there: the pure-Python fallback (~30x slower) is not what runs."""
    assert crc32_combine is not py_crc32_combine


@pytest.mark.usefixtures("small_groups")
@pytest.mark.parametrize("total", [2, 3, 4, 7])
def test_the_shards_are_the_whole_familys_split(total: int) -> None:
    """Each shard is one gzip member of exactly what the line-by-line split gives."""
    renderer = _renderer()
    piece = _piece(renderer, [_host(i) for i in range(300)], ["vsphere_host_sensor_reading 1\n"])
    assert _units(piece) > 10
    expected = split_lines(piece.plain, total)
    for i in range(total):
        data = piece.shard(i, total, gzipped=True)
        assert (_one_member(data) if data else b"") == expected[i]
        assert gzip.decompress(data) == expected[i] if data else expected[i] == b""
    assert total in piece._splits  # noqa: SLF001 - the unit path, not the whole one


@pytest.mark.usefixtures("small_groups")
def test_a_shard_without_lines_is_empty_and_the_others_have_the_header() -> None:
    hosts = [i for i in range(400) if shard_of(b"vc", f"host-{i}".encode(), 3) != 1][:200]
    piece = _piece(_renderer(), [_host(i) for i in hosts])
    assert _units(piece) > 10
    parts = [piece.shard(i, 3, gzipped=True) for i in range(3)]
    assert parts[1] == b""
    for i in (0, 2):
        assert gzip.decompress(parts[i]).startswith(HEAD.encode())
    assert [gzip.decompress(p) if p else b"" for p in parts] == split_lines(piece.plain, 3)


@pytest.mark.usefixtures("small_groups")
def test_a_changed_host_resplits_only_its_unit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The patch's new piece takes the other units' segments from the last piece split:
    one host changed, removed or added costs the unit(s) around it (and the head)."""
    cut = shard_groups._cut  # noqa: SLF001
    calls: list[int] = []

    def counted(*args: object) -> object:
        calls.append(1)
        return cut(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(shard_groups, "_cut", counted)
    renderer = _renderer()
    members = [_host(i) for i in range(300)]
    first = _piece(renderer, members)
    for i in range(4):
        first.shard(i, 4, gzipped=True)
    assert len(calls) == 1 + _units(first)  # the head, then every unit
    pieces = [first]
    for edit in ("change", "remove", "add"):
        if edit == "change":
            members[150] = _host(150, "x")
        elif edit == "remove":
            del members[80]
        else:
            members.insert(200, _host(1000))
        calls.clear()
        packed = renderer.packer.units_packed
        piece = _piece(renderer, members)
        expected = split_lines(piece.plain, 4)
        assert [gzip.decompress(piece.shard(i, 4, gzipped=True)) for i in range(4)] == expected
        assert 1 <= len(calls) - 1 <= 2, edit
        assert 1 <= renderer.packer.units_packed - packed <= 2, edit
        pieces.append(piece)  # the bodies still served hold the pieces before


@pytest.mark.usefixtures("small_groups")
def test_the_last_split_goes_with_its_piece() -> None:
    """The reuse is by weak reference: a piece no body holds frees its split."""
    renderer = _renderer()
    piece = _piece(renderer, [_host(i) for i in range(50)])
    piece.shard(0, 4, gzipped=True)
    assert shard_groups.LAST.get(piece.name, 4) is not None
    del piece
    assert shard_groups.LAST.get("vsphere_host_sensor_reading", 4) is None


@pytest.mark.usefixtures("small_groups")
def test_a_comment_after_the_head_splits_the_family_whole() -> None:
    """A unit with a comment declines (only a hand-made body has one): the piece is split
    whole, as before, and still right."""
    renderer = _renderer()
    members = [_host(i) for i in range(100)]
    members[60] = gzip_member(b"# a comment\n" + zlib.decompress(members[60], 31))
    piece = _piece(renderer, members)
    assert _units(piece) > 2
    parts = [piece.shard(i, 2, gzipped=True) for i in range(2)]
    assert 2 not in piece._splits  # noqa: SLF001
    assert [gzip.decompress(p) for p in parts] == split_lines(piece.plain, 2)


@pytest.mark.usefixtures("small_groups")
def test_a_repacked_piece_is_still_split_by_unit() -> None:
    """Repacking (a body over its member bound) changes the gzip, not the members the
    units are cut from."""
    piece = _piece(_renderer(), [_host(i) for i in range(100)])
    piece.repack()
    parts = [piece.shard(i, 3, gzipped=True) for i in range(3)]
    assert 3 in piece._splits  # noqa: SLF001
    assert [gzip.decompress(p) for p in parts] == split_lines(piece.plain, 3)


def _block(b: int, salt: str = "") -> bytes:
    """A block of a one-line VM family as the VM collector caches it: ~40 VMs, ~4 KB."""
    lines = "".join(
        f'vsphere_vm_guest_heartbeat_status{{vcenter="vc",vm_id="vm-{b}-{i}",vm="VM{b}_{i}",'
        f'cluster="C{b % 10}",host="H{i % 16}{salt}"}} 1\n'
        for i in range(40)
    )
    return gzip_member(lines.encode())


def test_a_host_failure_resplits_its_vms_units_not_the_family(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failed host's VMs share a block (of ~40 VMs at 40,000), which sits in a ~1 MiB
    group of a one-line family (~6,000 VMs' lines): the split re-routes the block's unit
    (~16 KB at the real sizes), not its group (the split by group was 50-115 ms per VM
    family and failure at 40,000 VMs, for ~40 VMs' lines)."""
    routed: list[int] = []
    route = _Router.route

    def counted(self: _Router, data: bytes, end: int, *args: object) -> None:
        routed.append(end)
        route(self, data, end, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(_Router, "route", counted)
    renderer = _renderer()
    members = [_block(b) for b in range(1024)]
    fam = Family("vsphere_vm_guest_heartbeat_status", "x")
    fam.members = list(members)
    first = renderer.family_piece(fam)
    for i in range(4):
        first.shard(i, 4, gzipped=True)
    whole = sum(routed)
    assert whole >= first.size - 200  # the first split routes it all (not the HELP/TYPE)
    members[517] = _block(517, "x")
    fam = Family("vsphere_vm_guest_heartbeat_status", "x")
    fam.members = list(members)
    piece = renderer.family_piece(fam)
    expected = split_lines(piece.plain, 4)
    routed.clear()
    assert [gzip.decompress(piece.shard(i, 4, gzipped=True)) for i in range(4)] == expected
    assert 0 < sum(routed) < whole / 50, (sum(routed), whole)
