"""The detection lane's whole-family pieces (the VM families, host sensors: patch.PACKED)
go onto a full render only when they are newer than its snapshot, and only the newest
patch's piece of a family is kept for that (review findings 2 and 4 of 2026-12-02, fixed
then without a test).

A packed piece shows every object as of the patch's ``snapped``; put on a full render
whose inventories were snapshotted later, it would bring back the older values of every
VM the render had newer. Against the real simulator; the full render is held open where a
test needs the lane to itself, as in test_detection.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from exporter import render
from exporter.app import EXPORTER, create_app
from exporter.collectors import COLLECTORS
from exporter.exposition import Piece
from exporter.patch import Patch

from .exporter_fixtures import exporter_config, sim_vcenter, wait_for
from .metrics_helpers import select

STALE = b'vsphere_vm_info{vcenter="vc1",vm_id="vm-stale"} 1\n'
FRESH = b'vsphere_vm_cpu_count{vcenter="vc1",vm_id="vm-fresh"} 64\n'


def test_packed_pieces_follow_their_own_flag() -> None:
    pieces = [Piece("a", b"a 0\n"), Piece("vsphere_vm_info", b"old 1\n")]
    patch = Patch(
        0.0, whole={"a": b"a 1\n"}, pieces={"vsphere_vm_info": Piece("vsphere_vm_info", STALE)}
    )
    only_whole = patch.apply(pieces, whole=True, packed=False)
    assert only_whole[0].plain == b"a 1\n" and only_whole[1] is pieces[1]
    only_packed = patch.apply(pieces, whole=False, packed=True)
    assert only_packed[0] is pieces[0] and only_packed[1].plain == STALE
    default = patch.apply(pieces, whole=False)  # packed defaults to whole
    assert default[0] is pieces[0] and default[1] is pieces[1]


async def _exporter(sim: Any, aiohttp_client: Any) -> tuple[Any, Any]:
    client = await aiohttp_client(create_app(exporter_config(sim_vcenter(sim))))
    await wait_for(
        client,
        lambda s: any(x.value == 1 for x in select(s, "vsphere_up", vcenter="vc1")),
        timeout=60,
    )
    return client, client.server.app[EXPORTER].renderer


async def test_a_packed_piece_snapped_before_the_renders_snapshot_stays_off_it(
    sim: Any, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two patches begun while a full render runs, after its snapshots: the one snapped
    before them keeps its packed piece off the render, the one snapped after puts it on."""
    _, renderer = await _exporter(sim, aiohttp_client)
    real = render.inventory_families
    mine = threading.get_ident()

    def with_patches(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)  # the inventories' snapshots are taken in here
        if threading.get_ident() == mine:
            now = time.monotonic()
            stale = Patch(
                now, snapped=0.0, pieces={"vsphere_vm_info": Piece("vsphere_vm_info", STALE)}
            )
            fresh = Patch(
                now,
                snapped=now,
                pieces={"vsphere_vm_cpu_count": Piece("vsphere_vm_cpu_count", FRESH)},
            )
            with renderer._publish_lock:  # noqa: SLF001 - as patch_now appends
                renderer._patches += [stale, fresh]  # noqa: SLF001
        return out

    def rendered() -> dict[str, bytes]:
        nonlocal mine
        mine = threading.get_ident()
        body = renderer.render_now()
        return {p.name: p.plain for p in body.pieces}

    monkeypatch.setattr(render, "inventory_families", with_patches)
    pieces = await asyncio.to_thread(rendered)
    assert pieces["vsphere_vm_cpu_count"] == FRESH
    assert STALE not in pieces["vsphere_vm_info"]
    assert b"vsphere_vm_info{" in pieces["vsphere_vm_info"]  # the render's own


async def test_only_the_newest_patchs_packed_piece_of_a_family_is_kept(
    sim: Any, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A burst of patches during a long full render would otherwise each hold a copy of the
    VM families until it publishes."""
    _, renderer = await _exporter(sim, aiohttp_client)
    entered, release = threading.Event(), threading.Event()

    def held(ctx: Any) -> list[Any]:  # the full render held open: the lane alone
        if threading.current_thread().name == "vha-render":
            entered.set()
            release.wait(60)
        return []

    monkeypatch.setitem(COLLECTORS, "held", held)
    renderer.mark_dirty()
    try:
        assert await asyncio.to_thread(entered.wait, 20), "no full render started"
        inv = renderer.inventories[0]
        vm = next(o for o in inv.objects.values() if o.type == "VirtualMachine")
        older = Patch(
            time.monotonic(),
            snapped=time.monotonic(),
            pieces={
                "vsphere_vm_info": Piece("vsphere_vm_info", STALE),
                "other": Piece("other", FRESH),
            },
        )
        with renderer._publish_lock:  # noqa: SLF001
            renderer._patches.append(older)  # noqa: SLF001
        with inv.lock:
            inv.changed[vm.moid] = "VirtualMachine"
        body = await asyncio.to_thread(renderer.patch_now)
        assert body is not None
        newest = renderer._patches[-1]  # noqa: SLF001
        assert newest is not older and "vsphere_vm_info" in newest.pieces
        assert "vsphere_vm_info" not in older.pieces  # the newer patch's is the one kept
        assert "other" in older.pieces  # a family the newer patch did not make stays
    finally:
        release.set()
