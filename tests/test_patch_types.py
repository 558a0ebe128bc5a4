"""A patch renders only the families of the object types that changed (issue 15: the
exporter's own lag at 40,000 VMs). The custom attributes collector covers VMs and hosts;
a host's change ran it over all 40,000 VMs too (24 ms of a ~53 ms patch), to hand back
the VM family the full render already had. And a patch's collectors share one index of
the inventory by type: five scans of the 43,000 objects per host change were one each.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from exporter import exposition, render
from exporter.collectors import RenderContext
from exporter.exposition import Piece
from exporter.inventory import Inventory
from exporter.patch import build_patch
from exporter.render import Body, Renderer
from exporter.topology import Topology
from vcenter.config import parse_config

from .test_render_reuse import _estate

CONFIG = parse_config({"collectors": {"custom_attributes": {"enabled": True}}})
VM_ATTRS = "vsphere_vm_custom_attribute_info"
HOST_ATTRS = "vsphere_host_custom_attribute_info"


def _renderer() -> tuple[Inventory, Renderer]:
    inv = _estate()
    vm = inv.objects["vm-x1"]
    inv.apply([("modify", vm.type, vm.moid, [("assign", "customValue", {1: "rack-b"})])])
    renderer = Renderer(CONFIG, [inv])
    renderer.render_now()
    build_patch(renderer, time.monotonic())  # the changes so far: the full render's
    return inv, renderer


def test_a_host_change_patches_the_host_attributes_only() -> None:
    inv, renderer = _renderer()
    host = inv.objects["host-1"]
    inv.apply([("modify", host.type, host.moid, [("assign", "customValue", {1: "rack-c"})])])
    patch, complete = build_patch(renderer, time.monotonic())
    assert complete
    assert HOST_ATTRS in patch.pieces and VM_ATTRS not in patch.pieces
    assert b'host_id="host-1"' in patch.pieces[HOST_ATTRS].plain
    assert b'value="rack-c"' in patch.pieces[HOST_ATTRS].plain


def test_a_vm_change_patches_the_vm_attributes() -> None:
    inv, renderer = _renderer()
    vm = inv.objects["vm-x1"]
    inv.apply([("modify", vm.type, vm.moid, [("assign", "customValue", {1: "rack-d"})])])
    patch, _ = build_patch(renderer, time.monotonic())
    assert VM_ATTRS in patch.pieces and HOST_ATTRS not in patch.pieces
    assert b'vm_id="vm-x1",vm="app1",attribute="HA-FaultDomain",value="rack-d"' in (
        patch.pieces[VM_ATTRS].plain
    )


def test_the_full_render_still_renders_both() -> None:
    _, renderer = _renderer()
    names = {p.name for p in renderer.render_now().pieces}
    assert {VM_ATTRS, HOST_ATTRS} <= names


def test_objects_by_type_keep_the_inventory_order() -> None:
    inv = _estate()
    ctx = RenderContext("vc1", inv, Topology(inv, CONFIG), CONFIG, 0.0)
    for type_name in ("VirtualMachine", "HostSystem", "Datastore", "Nothing"):
        want = [o for o in inv.objects.values() if o.type == type_name]
        assert ctx.objects(type_name) == want
        assert ctx.objects(type_name) is not ctx.objects(type_name)  # a caller's own list


def test_small_pieces_keep_their_plain_bytes_once_gzip_is_served() -> None:
    """The lane splices a host's lines into the host families (0.2-1 MB each at 2,500
    hosts) and renders the cluster families whole: with only their gzip members kept, each
    host change decompressed 4.6 MB of them (28 ms of a 118 ms patch on a loaded machine).
    Pieces under KEEP_PLAIN_BELOW keep their bytes; the large ones (the VM and sensor
    families, tens of MB) are still let go."""
    small = Piece("vsphere_host_power_state", b"s 1\n" * 1000)
    big = Piece("vsphere_vm_info", b"b 1\n" * (exposition.KEEP_PLAIN_BELOW // 4 + 1))
    renderer = Renderer(CONFIG, [])
    renderer._gzip_wanted = True  # noqa: SLF001 - as after a gzip scrape
    renderer.prepare(Body([small, big]))
    assert small.built_gzip() is not None and big.built_gzip() is not None
    assert small._plain is not None  # noqa: SLF001
    assert big._plain is None  # noqa: SLF001
    assert big.plain == b"b 1\n" * (exposition.KEEP_PLAIN_BELOW // 4 + 1)


def _noting_collectors(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The monotonic time each collector of a render began."""
    began: list[float] = []
    for name, fn in list(render.COLLECTORS.items()):

        def noting(ctx: Any, fn: Any = fn) -> Any:
            began.append(time.monotonic())
            return fn(ctx)

        monkeypatch.setitem(render.COLLECTORS, name, noting)
    return began


def test_a_full_render_waits_between_collectors_while_a_patch_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At 40,000 VMs a full render runs most of the time, and a patch beside it shared the
    GIL (38 ms of CPU took 120 ms): the render loop's render steps aside between its
    collectors while a patch runs."""
    _, renderer = _renderer()
    began = _noting_collectors(monkeypatch)
    renderer._patching = True  # noqa: SLF001 - a patch running
    ended: list[float] = []

    def patch_ends() -> None:
        time.sleep(0.3)
        with renderer._cond:  # noqa: SLF001
            renderer._patching = False  # noqa: SLF001
            ended.append(time.monotonic())
            renderer._cond.notify_all()  # noqa: SLF001

    def render_loop() -> None:
        renderer._thread = threading.current_thread()  # noqa: SLF001 - as the loop's own
        renderer.render_now()

    patcher = threading.Thread(target=patch_ends)
    loop = threading.Thread(target=render_loop)
    patcher.start()
    loop.start()
    loop.join(10)
    patcher.join(10)
    assert ended and began and min(began) >= ended[0]


def test_a_render_yields_at_most_its_budget_and_a_scrape_never(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A patch storm never holds a render back for more than PATCH_YIELD in all; a
    scrape's render (not the loop's) does not wait at all."""
    _, renderer = _renderer()
    monkeypatch.setattr(render, "PATCH_YIELD", 0.2)
    began = _noting_collectors(monkeypatch)
    renderer._patching = True  # noqa: SLF001 - and never done
    start = time.monotonic()
    renderer.render_now()  # this thread is not the loop's
    assert began and all(t - start < 0.2 for t in began)
    began.clear()
    done = threading.Event()
    waits: list[float] = []
    real = renderer._yield_to_patch  # noqa: SLF001

    def noting(limit: float) -> float:
        waits.append(limit)
        return real(limit)

    monkeypatch.setattr(renderer, "_yield_to_patch", noting)

    def render_loop() -> None:
        renderer._thread = threading.current_thread()  # noqa: SLF001
        renderer.render_now()
        done.set()

    start = time.monotonic()
    threading.Thread(target=render_loop, daemon=True).start()
    assert done.wait(10)  # the budget ran out: the render went on
    assert len(began) == len(render.COLLECTORS)
    assert max(began) - start >= 0.2
    assert waits == [0.2]  # the whole budget at the first checkpoint, then none
