"""The tags collector's reuse is keyed on the inventory's ``identity`` (bumped when an
object comes or goes, or a name or ``config.template`` changes), not on a walk of every
tagged object per full render: at 40,000 VMs that walk was ~40 % of a full render's time.
Counted by the object look-ups the collector makes, over a real inventory fed the way the
follower and the poller feed it."""

from __future__ import annotations

from typing import Any

from exporter.collectors import tags
from exporter.collectors.context import RenderContext
from exporter.inventory import Inventory, ManagedObject
from exporter.tagging import TagSnapshot
from exporter.topology import Topology
from vcenter.config import parse_config


class CountingObjects(dict[str, ManagedObject]):
    """The snapshot's objects, counting look-ups by moid (what the signature walk did)."""

    lookups = 0

    def get(self, key: Any, default: Any = None) -> Any:
        CountingObjects.lookups += 1
        return super().get(key, default)

    def __getitem__(self, key: str) -> ManagedObject:
        CountingObjects.lookups += 1
        return super().__getitem__(key)


def _inventory(vms: int = 50) -> Inventory:
    inv = Inventory("vc1")
    objects = {
        f"vm-{i}": ManagedObject(f"vm-{i}", "VirtualMachine", {"name": f"app{i}"})
        for i in range(vms)
    }
    objects["host-1"] = ManagedObject("host-1", "HostSystem", {"name": "esx1"})
    inv.replace(objects, {})
    inv.tags = TagSnapshot(
        ok=True, attachments={m: (("env", "prod"),) for m in [*objects, "vm-gone"]}
    )
    return inv


def _collect(inv: Inventory, config: Any) -> tuple[int, str]:
    """One full render's tags collector over a snapshot: (look-ups made, the text)."""
    snap = inv.snapshot()
    snap.objects = CountingObjects(snap.objects)
    ctx = RenderContext("vc1", snap, Topology(snap, config), config, 0.0)
    CountingObjects.lookups = 0  # the topology's own look-ups are not the collector's
    text = "".join(f.render() for f in tags.collect(ctx))
    return CountingObjects.lookups, text


def _modify(inv: Inventory, moid: str, path: str, value: Any) -> None:
    kind = inv.objects[moid].type
    inv.apply([("modify", kind, moid, [("assign", path, value)])])


def test_unchanged_names_cost_no_walk_and_a_rename_shows_next_render() -> None:
    config = parse_config({})
    inv = _inventory()
    walked, text = _collect(inv, config)
    assert walked >= 51 and 'vm="app7",category="env",tag="prod"' in text
    # Quick stats changed on every VM (the follower) and a host (the poller): no walk.
    for i in range(50):
        _modify(inv, f"vm-{i}", "summary.quickStats.overallCpuUsage", i)
    inv.apply_polled([("HostSystem", "host-1", {"overallStatus": "yellow"})])
    walked, again = _collect(inv, config)
    assert walked == 0 and again == text
    _modify(inv, "vm-7", "name", "renamed")
    walked, text = _collect(inv, config)
    assert walked > 0 and 'vm="renamed"' in text and 'vm="app7"' not in text


def test_a_template_an_arrival_a_departure_and_a_resync_each_show() -> None:
    config = parse_config({})
    inv = _inventory()
    _collect(inv, config)
    _modify(inv, "vm-3", "config.template", True)
    assert 'vm="app3"' not in _collect(inv, config)[1]
    inv.apply([("enter", "VirtualMachine", "vm-gone", [("assign", "name", "late")])])
    assert 'vm="late"' in _collect(inv, config)[1]
    inv.apply([("leave", "VirtualMachine", "vm-4", [])])
    assert 'vm="app4"' not in _collect(inv, config)[1]
    polled = ManagedObject("host-1", "HostSystem", {"name": "esx1"})
    inv.apply_polled([("HostSystem", polled.moid, {"name": "esx-renamed"})])
    assert 'host="esx-renamed"' in _collect(inv, config)[1]
    inv.replace({"vm-9": ManagedObject("vm-9", "VirtualMachine", {"name": "only"})}, {})
    text = _collect(inv, config)[1]
    assert 'vm="only"' in text and 'vm="app1"' not in text
