"""Per-object render cache for per-object collectors: re-render only objects that changed.

At 10,000 VMs re-rendering every VM on each render costs tenths of a second; most renders
follow a handful of changed objects, so a collector keeps each object's lines keyed on
``ManagedObject.rev`` (or on just the properties its lines depend on) in the inventory's
``render_cache`` under its own name, as collectors/vms.py does.

The VMs' families (20 per VM, ~3 KB of text per VM, the largest thing held at 10,000 VMs)
are cached one level coarser, as gzip members per block of VMs (:func:`packed_blocks`): a
VM's block is fixed by its host, a changed VM re-renders its block (tens of VMs, a few ms)
and the family's gzip member is the blocks' members, so no VM's text is held between
renders, only its share of the members (~5 % of it). By host, because the host is what
fails: a host failure changes its VMs all at once, and blocked by moid they were in
nearly every block (a host's 16 VMs in 16 of 256 blocks at 40,000 VMs: 2,500 VMs
rendered again, and every ~1 MiB group of every VM family compressed and split again,
packing.py, shard_groups.py); blocked by host they are in one.

One level up, when none of a collector's objects changed (most renders are triggered by a
performance collection or a heartbeat round), the collector hands back the very family
objects of the previous render (:func:`previous_families`): the renderer recognises them
by identity and neither joins nor encodes them again, which was most of a full render's
time at 10,000 VMs (38 % of the GIL in py-spy).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from typing import TypeVar

from ..families import Family
from ..inventory import ManagedObject
from .context import RenderContext

# One object's fragments, one per family: its text, or a gzip member of it.
Fragments = TypeVar("Fragments", bound=tuple[str | bytes, ...])


def by_rev(obj: ManagedObject) -> Hashable:
    """The default cache key: the object's revision (any property changed)."""
    return obj.rev


def by_followed(obj: ManagedObject) -> Hashable:
    """The key of lines that show no polled property (quickStats, overallStatus): the
    revision of the object's last followed change, which a poll leaves alone."""
    return obj.followed


def cached(
    ctx: RenderContext,
    name: str,
    objects: Iterable[ManagedObject],
    render: Callable[[ManagedObject], Fragments],
    extra_key: Hashable = None,
    key: Callable[[ManagedObject], Hashable] = by_rev,
) -> Iterator[Fragments]:
    """Each object's rendered fragments (one per family: text, or a gzip member of it),
    cached on ``key(obj)`` (its revision by default) and ``extra_key``."""
    old: dict[str, tuple[Hashable, Fragments]] = ctx.inventory.render_cache.get(name, {})
    new: dict[str, tuple[Hashable, Fragments]] = {}
    for obj in objects:
        k = (key(obj), extra_key)
        entry = old.get(obj.moid)
        if entry is None or entry[0] != k:
            entry = (k, render(obj))
        new[obj.moid] = entry
        yield entry[1]
    ctx.inventory.render_cache[name] = new


def block_member(data: bytes) -> bytes:
    """One gzip member of a block's text, with a 4 KiB window and a small hash table: a
    block's lines repeat every ~100 bytes, so it compresses as well as with zlib's
    defaults (within 1-2 %), and setting up the defaults' 256 KiB of state took ~15 times
    longer than compressing a 4-15 KB block (5,120 members when every VM changed)."""
    packer = zlib.compressobj(1, zlib.DEFLATED, 16 + 12, 3)
    return packer.compress(data) + packer.flush()


BLOCKS = 1024  # fixed: a block never moves when VMs or hosts come and go (a CRC-32)


def block_of(moid: str) -> int:
    """The block of an object's lines by its key (stable across processes and renders)."""
    return zlib.crc32(moid.encode()) % BLOCKS


def block_key(obj: ManagedObject) -> str:
    """What an object's block is chosen by: a VM's host (its moid when it has none), so a
    host's VMs share a block; any other object's own moid."""
    if obj.type == "VirtualMachine":
        return str(obj.props.get("runtime.host") or obj.moid)
    return obj.moid


Entry = tuple[Hashable, tuple[bytes, ...], tuple[tuple[str, ...], ...]]


class Blocks:
    """A :func:`packed_blocks` cache: each block's (keys, members, kept), the
    ``extra_key`` they were rendered with, and the objects (a snapshot's dict, shared,
    never changed) they show, with that snapshot's journal and mark, which a patch tells
    its changes from."""

    __slots__ = ("base", "entries", "extra_key", "since")

    def __init__(self, ctx: RenderContext, extra_key: Hashable, entries: dict[int, Entry]) -> None:
        inv = ctx.inventory
        self.base = inv.objects
        self.since = (inv.journal, inv.journal_mark) if inv.journal_mark is not None else None
        self.extra_key = extra_key
        self.entries = entries


def packed_blocks(
    ctx: RenderContext,
    name: str,
    objects: Iterable[ManagedObject] | Callable[[], Iterable[ManagedObject]],
    render: Callable[[ManagedObject], Sequence[str]],
    width: int,
    extra_key: Hashable = None,
    key: Callable[[ManagedObject], Hashable] = by_rev,
    select: Callable[[ManagedObject], bool] | None = None,
) -> tuple[list[list[bytes]], list[tuple[str, ...]]]:
    """The gzip members of ``width`` families over ``objects`` (or what a callable of
    them gives), block by block (see :data:`BLOCKS`), each block cached on its objects'
    ``key`` and ``extra_key``.

    ``render(obj)`` gives an object's text of each family, then what the caller keeps per
    object (its identity block): returned in block order, as ``(moid, *kept)``, beside
    each family's members (an empty block of a family has none). A block whose objects
    and keys are unchanged hands back its members without rendering any of them.

    ``select`` (which objects ``objects`` holds) says that ``key`` is ``followed`` and
    that what else an object's lines show is in ``extra_key``: a patch's context then
    re-renders only the blocks of the objects changed since the cache's snapshot
    (:func:`_incremental`), instead of walking every object for its key (at 40,000 VMs
    the six block-cached collectors' walks were 0.4 s of a host failure's patch).
    """
    cache = ctx.inventory.render_cache.get(name)
    old = cache.entries if isinstance(cache, Blocks) and cache.extra_key == extra_key else {}
    if select is not None and old and ctx.changed_types is not None:
        assert isinstance(cache, Blocks)
        return _incremental(ctx, name, cache, render, width, key, select)
    blocks: dict[int, list[ManagedObject]] = {}
    index_of: dict[str, int] = {}  # a host's block, once per host
    for obj in objects() if callable(objects) else objects:
        by = block_key(obj)
        index = index_of.get(by)
        if index is None:
            index = index_of[by] = block_of(by)
        blocks.setdefault(index, []).append(obj)
    new: dict[int, Entry] = {}
    for index in sorted(blocks):
        group = blocks[index]
        cache_key = tuple(key(obj) for obj in group)
        entry = old.get(index)
        if entry is None or entry[0] != cache_key:
            entry = _render_block(group, render, width, cache_key)
        new[index] = entry
    ctx.inventory.render_cache[name] = Blocks(ctx, extra_key, new)
    return _members(new, width)


def _render_block(
    group: Sequence[ManagedObject],
    render: Callable[[ManagedObject], Sequence[str]],
    width: int,
    cache_key: Hashable,
) -> Entry:
    rendered = [render(obj) for obj in group]
    packed = tuple(
        block_member(text.encode()) if (text := "".join(r[k] for r in rendered)) else b""
        for k in range(width)
    )
    rest = tuple((obj.moid, *r[width:]) for obj, r in zip(group, rendered, strict=True))
    return (cache_key, packed, rest)


def _members(
    entries: dict[int, Entry], width: int
) -> tuple[list[list[bytes]], list[tuple[str, ...]]]:
    """Each family's members and the kept tuples, in block order."""
    members: list[list[bytes]] = [[] for _ in range(width)]
    kept: list[tuple[str, ...]] = []
    for entry in entries.values():
        for k, member in enumerate(entry[1]):
            if member:
                members[k].append(member)
        kept.extend(entry[2])
    return members, kept


def _incremental(
    ctx: RenderContext,
    name: str,
    cache: Blocks,
    render: Callable[[ManagedObject], Sequence[str]],
    width: int,
    key: Callable[[ManagedObject], Hashable],
    select: Callable[[ManagedObject], bool],
) -> tuple[list[list[bytes]], list[tuple[str, ...]]]:
    """:func:`packed_blocks` for a patch: the blocks of the objects whose followed
    revision changed since ``cache`` was rendered (added and removed ones too: their old
    and new blocks) are rendered again, the others handed back as cached.

    Never older than the body the patch goes onto: every object changed since the cache's
    snapshot is rendered as it is now (not only the patch's own, but those of the patches
    before it), and the rest show what that snapshot, and so the full render, had. A block
    keeps its objects' order; an object moved into it (or added) comes last (a series's place in its
    family does not matter to Prometheus)."""
    objects = ctx.inventory.objects
    base = cache.base
    changed = set(ctx.changed_since(base, cache.since))
    kept_in_place: set[str] = set()  # changed but in the same block: keeps its place
    arrivals: dict[int, list[ManagedObject]] = {}
    redo: set[int] = set()
    for moid in changed:
        was, now = base.get(moid), objects.get(moid)
        old_index = block_of(block_key(was)) if was is not None and select(was) else None
        if old_index is not None:
            redo.add(old_index)
        if now is not None and select(now):
            index = block_of(block_key(now))
            redo.add(index)
            if index == old_index:
                kept_in_place.add(moid)
            else:
                arrivals.setdefault(index, []).append(now)
    entries = dict(cache.entries)
    for index in redo:
        entry = entries.get(index)
        group = [
            objects[r[0]]
            for r in (entry[2] if entry else ())
            if r[0] not in changed or r[0] in kept_in_place
        ]
        group += arrivals.get(index, [])
        if group:
            keys = tuple(key(obj) for obj in group)
            entries[index] = _render_block(group, render, width, keys)
        else:
            entries.pop(index, None)
    entries = {i: entries[i] for i in sorted(entries)} if redo - cache.entries.keys() else entries
    ctx.inventory.render_cache[name] = Blocks(ctx, cache.extra_key, entries)
    return _members(entries, width)


def previous_families(ctx: RenderContext, name: str, signature: Hashable) -> list[Family] | None:
    """The families :func:`remember` stored under ``name`` with an equal ``signature``
    (a copy of the list: the family objects themselves, never to be changed), else None."""
    previous = ctx.inventory.render_cache.get(name)
    if previous is not None and previous[0] == signature:
        return list(previous[1])
    return None


def remember(
    ctx: RenderContext, name: str, signature: Hashable, families: list[Family]
) -> list[Family]:
    """Keep ``families`` for the next render with the same ``signature``; returns a copy
    of the list (the caller may extend its list, never the families)."""
    ctx.inventory.render_cache[name] = (signature, list(families))
    return list(families)


def revisions(objects: Iterable[ManagedObject]) -> tuple[int, ...]:
    """The objects' revisions in order: equal tuples mean the same objects, unchanged
    (a revision is unique across objects and resyncs, so it identifies one object image)."""
    return tuple(o.rev for o in objects)


def followed_revisions(objects: Iterable[ManagedObject]) -> tuple[int, ...]:
    """:func:`revisions` of what the follower changed only (:func:`by_followed`)."""
    return tuple(o.followed for o in objects)
