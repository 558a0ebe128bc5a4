"""A patch re-renders only the blocks of the objects changed since the full render's
block cache (collectors/cache.py, ``select``), not every object's key.

Why (issue 15 item 2, bench/patch_bench.py): at 40,000 VMs a host failure's patch walked
every VM in each of the six block-cached collectors (0.4 s of CPU), and split the two
last-green timestamp families whole into their shards (0.25 s). A patch must still never
show an object older than the body it goes onto: every object changed since the cache's
snapshot (its own and the earlier patches') is rendered as it is now.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Hashable

import pytest

from exporter import inventory
from exporter.collectors import RenderContext
from exporter.collectors.cache import block_key, block_of, packed_blocks
from exporter.inventory import Inventory, ManagedObject
from exporter.patch import build_patch
from exporter.render import Renderer
from exporter.topology import Topology
from vcenter.config import parse_config

from .test_render_reuse import _estate

CONFIG = parse_config({})
HOSTS = 40


def _vm(moid: str, host: str, value: int, *, template: bool = False) -> ManagedObject:
    props: dict[str, object] = {"name": moid, "runtime.host": host, "v": value}
    if template:
        props["config.template"] = True
    return ManagedObject(moid, "VirtualMachine", props)


def _inventory(vms: int = 400) -> Inventory:
    inv = Inventory("vc1")
    for i in range(vms):
        vm = _vm(f"vm-{i}", f"host-{i % HOSTS}", 0)
        inv.objects[vm.moid] = vm
    return inv


def _select(obj: ManagedObject) -> bool:
    return obj.type == "VirtualMachine" and not obj.props.get("config.template")


class Counted:
    """The render and key callbacks, counting the objects each saw."""

    def __init__(self) -> None:
        self.rendered: list[str] = []
        self.keyed = 0

    def render(self, obj: ManagedObject) -> tuple[str, str]:
        self.rendered.append(obj.moid)
        return (f'x{{id="{obj.moid}"}} {obj.props["v"]}\n', obj.moid)

    def key(self, obj: ManagedObject) -> Hashable:
        self.keyed += 1
        return obj.followed


def _run(inv: Inventory, counted: Counted, *, patch: bool) -> set[str]:
    """The family's lines as packed_blocks gives them, on the inventory as it is now."""
    changed = frozenset({"VirtualMachine"}) if patch else None
    ctx = RenderContext("vc1", inv, Topology(inv, CONFIG), CONFIG, 0.0, changed_types=changed)
    objects = lambda: [o for o in inv.objects.values() if _select(o)]  # noqa: E731
    (members,), _kept = packed_blocks(
        ctx, "x_blocks", objects, counted.render, 1, "vc1", counted.key, _select
    )
    return set(gzip.decompress(b"".join(members)).decode().splitlines())


def _expected(inv: Inventory) -> set[str]:
    return {f'x{{id="{o.moid}"}} {o.props["v"]}' for o in inv.objects.values() if _select(o)}


def _change(inv: Inventory, moid: str, **props: object) -> None:
    old = inv.objects[moid]
    inv.objects[moid] = ManagedObject(moid, old.type, {**old.props, **props})


def _patch_view(inv: Inventory) -> Inventory:
    """The patch's own view: the inventory's objects now, a copy of the render cache (as
    build_patch makes it: a patch's cache is never the full render's)."""
    view = Inventory("vc1")
    view.objects = dict(inv.objects)
    view.render_cache = dict(inv.render_cache)
    return view


def test_a_patch_renders_the_changed_blocks_and_keys_no_unchanged_object() -> None:
    inv = _inventory()
    assert _run(inv, Counted(), patch=False) == _expected(inv)  # the full render's cache
    inv.objects = dict(inv.objects)  # the next snapshot (the cache keeps the last one's)
    _change(inv, "vm-7", v=1)
    counted = Counted()
    assert _run(_patch_view(inv), counted, patch=True) == _expected(inv)
    block = block_of(block_key(inv.objects["vm-7"]))
    same_block = {m for m, o in inv.objects.items() if block_of(block_key(o)) == block}
    assert set(counted.rendered) == same_block  # the host's VMs (and its block-mates)
    assert counted.keyed == len(same_block)  # no walk over the other 390 VMs' keys


def test_a_later_patch_still_shows_what_an_earlier_one_did() -> None:
    """Both patches start from the same full render's cache: the second must render the
    first one's VM again (it changed since that snapshot), or it would show it older."""
    inv = _inventory()
    _run(inv, Counted(), patch=False)
    inv.objects = dict(inv.objects)
    _change(inv, "vm-3", v=5)
    assert 'x{id="vm-3"} 5' in _run(_patch_view(inv), Counted(), patch=True)
    _change(inv, "vm-250", v=6)
    second = _run(_patch_view(inv), Counted(), patch=True)
    assert {'x{id="vm-3"} 5', 'x{id="vm-250"} 6'} <= second
    assert second == _expected(inv)


def test_moved_removed_added_and_template_vms() -> None:
    inv = _inventory()
    _run(inv, Counted(), patch=False)
    inv.objects = dict(inv.objects)
    _change(inv, "vm-1", **{"runtime.host": "host-9", "v": 2})  # to another host's block
    del inv.objects["vm-2"]
    inv.objects["vm-new"] = _vm("vm-new", "host-5", 3)
    _change(inv, "vm-4", **{"config.template": True})  # no longer shown as a VM
    lines = _run(_patch_view(inv), Counted(), patch=True)
    assert lines == _expected(inv)
    assert sum('id="vm-1"' in line for line in lines) == 1
    assert not any('id="vm-2"' in line or 'id="vm-4"' in line for line in lines)


def test_a_full_render_after_patches_is_what_an_empty_cache_gives() -> None:
    inv = _inventory()
    _run(inv, Counted(), patch=False)
    inv.objects = dict(inv.objects)
    _change(inv, "vm-8", v=9)
    _run(_patch_view(inv), Counted(), patch=True)
    assert _run(inv, Counted(), patch=False) == _expected(inv)


TIMESTAMP = "vsphere_vm_guest_heartbeat_last_green_timestamp_seconds"
QUICKSTATS = "vsphere_vm_cpu_usage_hertz"


def _lines(plain: bytes, vm: str) -> list[bytes]:
    return [line for line in plain.splitlines() if f'vm_id="{vm}"'.encode() in line]


def test_a_patch_refreshes_the_changed_vms_timestamps_and_leaves_quickstats() -> None:
    """The timestamp families are block-packed: a patch carries the last round trip for
    the blocks it renders again (a VM shown red carries the last time it was green), the
    other VMs keep the full render's until the next one; the quickStats families (a
    poll's) are the full render's alone."""
    inv = _estate(vm_count=300, hosts=60)
    renderer = Renderer(CONFIG, [inv])
    inv.mark_alive(1000.0)
    renderer.render_now()
    build_patch(renderer, time.monotonic())  # the changes so far: the full render's
    inv.mark_alive(2000.0)  # a round trip: every green VM's timestamp moves
    vm = inv.objects["vm-x7"]
    inv.apply([("modify", vm.type, vm.moid, [("assign", "guestHeartbeatStatus", "red")])])
    patch, complete = build_patch(renderer, time.monotonic())
    assert complete
    assert QUICKSTATS not in patch.pieces
    plain = patch.pieces[TIMESTAMP].plain
    assert _lines(plain, "vm-x7") == [
        f'{TIMESTAMP}{{vcenter="vc1",vm_id="vm-x7",vm="app7"}} 2000'.encode()
    ]
    mine = block_of(block_key(inv.objects["vm-x7"]))
    other = next(
        o.moid
        for o in inv.objects.values()
        if o.type == "VirtualMachine" and block_of(block_key(o)) != mine
    )
    assert _lines(plain, other)[0].endswith(b" 1000")  # the full render's, as served


def test_a_patch_keeps_every_family_its_change_left_as_it_was() -> None:
    """A block rendered again keeps its VMs' order, so the families whose lines did not
    change come out byte for byte as published and keep their pieces (their gzip groups
    and shard splits); a changed VM moved to its block's end had all 15 of them split
    again."""
    from exporter.patch import _same_piece  # noqa: PLC0415 - a look inside

    inv = _estate(vm_count=300, hosts=60)
    renderer = Renderer(CONFIG, [inv])
    renderer.render_now()
    build_patch(renderer, time.monotonic())
    vm = inv.objects["vm-x7"]
    inv.apply([("modify", vm.type, vm.moid, [("assign", "guestHeartbeatStatus", "red")])])
    patch, _ = build_patch(renderer, time.monotonic())
    assert renderer._body is not None  # noqa: SLF001
    published = {p.name: p for p in renderer._body.pieces}  # noqa: SLF001
    differ = [n for n, p in patch.pieces.items() if not _same_piece(published[n], p)]
    assert differ == ["vsphere_vm_guest_heartbeat_status"]


class NoWalk(dict):  # type: ignore[type-arg]
    """A snapshot's objects that fail the test if walked (looked up they may be)."""

    def items(self):  # type: ignore[no-untyped-def]
        raise AssertionError("walked every object")

    def __iter__(self):  # type: ignore[no-untyped-def]
        raise AssertionError("walked every object")


def _snapshot_view(inv: Inventory, cache_from: Inventory) -> Inventory:
    """A patch's view of a fresh snapshot, on a copy of ``cache_from``'s render cache."""
    snap = inv.snapshot()
    snap.render_cache = dict(cache_from.render_cache)
    return snap


def _modify(moid: str, **props: object) -> tuple[str, str, str, list[tuple[str, str, object]]]:
    return ("modify", "VirtualMachine", moid, [("assign", k, v) for k, v in props.items()])


def test_a_patch_reads_its_changes_from_the_journal_not_a_walk() -> None:
    """What changed between the full render's snapshot and the patch's is the slice of
    the inventory's journal between their marks: the patch never walks the objects."""
    inv = _inventory()
    full = inv.snapshot()
    _run(full, Counted(), patch=False)
    inv.apply([_modify("vm-7", v=1)])
    inv.apply(
        [
            ("enter", "VirtualMachine", "vm-new", [("assign", "name", "vm-new")]),
            ("leave", "VirtualMachine", "vm-2", []),
            _modify("vm-new", **{"runtime.host": "host-3", "v": 4}),
        ]
    )
    view = _snapshot_view(inv, full)
    expected = _expected(view)
    topo = Topology(view, CONFIG)
    view.objects = NoWalk(view.objects)
    ctx = RenderContext("vc1", view, topo, CONFIG, 0.0, changed_types=frozenset({"VirtualMachine"}))
    assert sorted(ctx.changed_since(full.objects, (full.journal, full.journal_mark or 0))) == [
        "vm-2",
        "vm-7",
        "vm-new",
    ]
    (members,), _ = packed_blocks(
        ctx, "x_blocks", lambda: [], Counted().render, 1, "vc1", Counted().key, _select
    )
    assert set(gzip.decompress(b"".join(members)).decode().splitlines()) == expected


def test_a_new_journal_walks_once_and_is_still_right(monkeypatch: pytest.MonkeyPatch) -> None:
    """A resync (or a journal grown to its limit) starts a new journal: a patch over a
    cache from the old one walks the objects instead, and shows the same."""
    monkeypatch.setattr(inventory, "JOURNAL_LIMIT", 3)
    inv = _inventory()
    full = inv.snapshot()
    _run(full, Counted(), patch=False)
    for i in range(5):  # the third apply starts a new journal
        inv.apply([_modify(f"vm-{i}", v=10 + i)])
    view = _snapshot_view(inv, full)
    assert view.journal is not full.journal
    assert _run(view, Counted(), patch=True) == _expected(view)
    assert {f'x{{id="vm-{i}"}} {10 + i}' for i in range(5)} <= _expected(view)
