"""shard_groups.py: a group-packed piece's gzip shards, built group by group."""

from __future__ import annotations

import gzip
import os
import random
import zlib

import pytest

from exporter import packing, shard_groups
from exporter.exposition import Piece, gzip_member, shard_of, split_lines
from exporter.families import Family
from exporter.render import Renderer
from exporter.shard_groups import crc32_combine
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
    """Groups of ~8 KB of text (a host's lines are ~3 KB), so 300 hosts make dozens."""
    monkeypatch.setattr(packing, "TARGET", 8000)
    monkeypatch.setattr(packing, "MAX_GROUP", 32000)


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


def test_crc32_combine_is_zlibs() -> None:
    rng = random.Random(7)
    for _ in range(50):
        a = os.urandom(rng.randrange(0, 3000))
        b = os.urandom(rng.randrange(0, 70000))
        assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


@pytest.mark.usefixtures("small_groups")
@pytest.mark.parametrize("total", [2, 3, 4, 7])
def test_the_shards_are_the_whole_familys_split(total: int) -> None:
    """Each shard is one gzip member of exactly what the line-by-line split gives."""
    renderer = _renderer()
    piece = _piece(renderer, [_host(i) for i in range(300)], ["vsphere_host_sensor_reading 1\n"])
    assert piece._groups is not None and len(piece._groups) > 10  # noqa: SLF001
    expected = split_lines(piece.plain, total)
    for i in range(total):
        data = piece.shard(i, total, gzipped=True)
        assert (_one_member(data) if data else b"") == expected[i]
        assert gzip.decompress(data) == expected[i] if data else expected[i] == b""
    assert total in piece._splits  # noqa: SLF001 - the group path, not the whole one


@pytest.mark.usefixtures("small_groups")
def test_a_shard_without_lines_is_empty_and_the_others_have_the_header() -> None:
    hosts = [i for i in range(400) if shard_of(b"vc", f"host-{i}".encode(), 3) != 1][:200]
    piece = _piece(_renderer(), [_host(i) for i in hosts])
    assert piece._groups is not None and len(piece._groups) > 10  # noqa: SLF001
    parts = [piece.shard(i, 3, gzipped=True) for i in range(3)]
    assert parts[1] == b""
    for i in (0, 2):
        assert gzip.decompress(parts[i]).startswith(HEAD.encode())
    assert [gzip.decompress(p) if p else b"" for p in parts] == split_lines(piece.plain, 3)


@pytest.mark.usefixtures("small_groups")
def test_a_changed_host_resplits_only_its_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """The patch's new piece takes the other groups' segments from the last piece split:
    one host changed, removed or added costs the group(s) packing.py compressed again."""
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
    assert first._groups is not None and len(calls) == len(first._groups)  # noqa: SLF001
    pieces = [first]
    for edit in ("change", "remove", "add"):
        if edit == "change":
            members[150] = _host(150, "x")
        elif edit == "remove":
            del members[80]
        else:
            members.insert(200, _host(1000))
        calls.clear()
        packed = renderer.packer.groups_packed
        piece = _piece(renderer, members)
        expected = split_lines(piece.plain, 4)
        assert [gzip.decompress(piece.shard(i, 4, gzipped=True)) for i in range(4)] == expected
        assert 1 <= len(calls) == renderer.packer.groups_packed - packed <= 2, edit
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
    """A group after the first with a comment declines (only a hand-made body has one):
    the piece is split whole, as before, and still right."""
    renderer = _renderer()
    members = [_host(i) for i in range(100)]
    members[60] = gzip_member(b"# a comment\n" + zlib.decompress(members[60], 31))
    piece = _piece(renderer, members)
    assert piece._groups is not None and len(piece._groups) > 2  # noqa: SLF001
    parts = [piece.shard(i, 2, gzipped=True) for i in range(2)]
    assert 2 not in piece._splits  # noqa: SLF001
    assert [gzip.decompress(p) for p in parts] == split_lines(piece.plain, 2)


@pytest.mark.usefixtures("small_groups")
def test_a_repacked_piece_is_split_whole() -> None:
    piece = _piece(_renderer(), [_host(i) for i in range(100)])
    piece.repack()
    parts = [piece.shard(i, 3, gzipped=True) for i in range(3)]
    assert 3 not in piece._splits  # noqa: SLF001
    assert [gzip.decompress(p) for p in parts] == split_lines(piece.plain, 3)
