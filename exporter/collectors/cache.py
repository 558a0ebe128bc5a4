"""Per-object render cache for per-VM collectors: re-render only objects that changed.

At 10,000 VMs re-rendering every VM on each render costs tenths of a second; most renders
follow a handful of changed objects, so a collector keeps each object's lines keyed on
``ManagedObject.rev`` (plus whatever else its lines depend on) in the inventory's
``render_cache`` under its own name, as collectors/vms.py does.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator

from ..inventory import ManagedObject
from .context import RenderContext


def cached(
    ctx: RenderContext,
    name: str,
    objects: Iterable[ManagedObject],
    render: Callable[[ManagedObject], tuple[str, ...]],
    extra_key: Hashable = None,
) -> Iterator[tuple[str, ...]]:
    """Each object's rendered fragments (one string per family), cached by revision."""
    old: dict[str, tuple[Hashable, tuple[str, ...]]] = ctx.inventory.render_cache.get(name, {})
    new: dict[str, tuple[Hashable, tuple[str, ...]]] = {}
    for obj in objects:
        key = (obj.rev, extra_key)
        entry = old.get(obj.moid)
        if entry is None or entry[0] != key:
            entry = (key, render(obj))
        new[obj.moid] = entry
        yield entry[1]
    ctx.inventory.render_cache[name] = new
