"""A spliced piece takes its gzip shards from the piece it was spliced from (patch.py
``spliced_shards``): only the shards holding a changed object are compressed again.

Why (issue 15 item 2, bench/patch_bench.py): at 40,000 VMs / 2,500 hosts with 4 shards
asked, a host failure's patch split each of the eight host families whole again (7-20 ms
each) for one host's lines.
"""

from __future__ import annotations

import gzip

import pytest

from exporter import exposition
from exporter.exposition import Piece, shard_of, split_lines
from exporter.patch import Patch, ident

NAME = "vsphere_host_connection_state"
HEAD = f"# HELP {NAME} x\n# TYPE {NAME} gauge\n"
STATES = ("connected", "disconnected", "notResponding")


def _lines(host: str, state: str) -> bytes:
    return "".join(
        f'{NAME}{{vcenter="vc1",host_id="{host}",host="esx-{host}",state="{s}"}} '
        f"{int(s == state)}\n"
        for s in STATES
    ).encode()


def _piece(hosts: list[str], totals: tuple[int, ...] = (2, 3, 4)) -> Piece:
    plain = HEAD.encode() + b"".join(_lines(h, "connected") for h in hosts)
    piece = Piece(NAME, plain)
    for total in totals:
        for i in range(total):
            piece.shard(i, total, gzipped=True)
    return piece


def _key(host: str) -> bytes:
    key = ident("vc1", "HostSystem", host)
    assert key is not None
    return key


def _apply(piece: Piece, changes: dict[bytes, bytes]) -> Piece:
    patch = Patch(begun=0.0)
    patch.objects[NAME] = changes
    (out,) = patch.apply([piece])
    assert out is not piece
    return out


def _shards(piece: Piece, total: int) -> list[bytes]:
    return [
        gzip.decompress(m) if (m := piece.shard(i, total, gzipped=True)) else b""
        for i in range(total)
    ]


def test_a_changed_added_and_removed_host_reuses_the_other_shards(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hosts = [f"host-{i}" for i in range(300)]
    old = _piece(hosts)
    changes = {
        _key("host-5"): _lines("host-5", "notResponding"),
        _key("host-new"): _lines("host-new", "connected"),
        _key("host-9"): b"",
    }
    new = _apply(old, changes)

    def no_route(*_: object) -> None:
        raise AssertionError("split whole")

    with monkeypatch.context() as patched:
        patched.setattr(exposition._Router, "route", no_route)  # noqa: SLF001
        got = {total: _shards(new, total) for total in (2, 3, 4)}
    before = old.gzip_splits()
    for total in (2, 3, 4):
        assert got[total] == split_lines(new.plain, total)
        touched = {shard_of(b"vc1", h.encode(), total) for h in ("host-5", "host-new", "host-9")}
        for i in set(range(total)) - touched:
            assert new.shard(i, total, gzipped=True) is before[total][i]  # kept, not rebuilt


def test_a_shard_left_without_lines_is_split_whole_and_right() -> None:
    """A changed shard that loses its last line (its header goes) is left to the split."""
    hosts = [f"host-{i}" for i in range(12)]
    old = _piece(hosts, (4,))
    alone = {h for h in hosts if shard_of(b"vc1", h.encode(), 4) == 1}
    new = _apply(old, {_key(h): b"" for h in alone})
    assert 4 not in new.gzip_splits()
    assert _shards(new, 4) == split_lines(new.plain, 4)
    assert _shards(new, 4)[1] == b""


def test_lines_not_in_one_run_are_split_whole_and_right() -> None:
    """A family whose object's lines are not one run is filtered (the changed object's
    lines appended): its shards are not spliced, whose runs could be one per shard."""
    plain = (
        HEAD.encode()
        + _lines("host-1", "connected")[:60]
        + _lines("host-2", "connected")
        + _lines("host-1", "connected")[60:]
    )
    old = Piece(NAME, plain)
    for i in range(2):
        old.shard(i, 2, gzipped=True)
    new = _apply(old, {_key("host-1"): _lines("host-1", "disconnected")})
    assert 2 not in new.gzip_splits()
    assert _shards(new, 2) == split_lines(new.plain, 2)
