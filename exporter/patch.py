"""The detection lane: a changed object reaches ``/metrics`` without waiting for a full render.

A full render of 10,000 VMs with host sensors takes seconds (every collector over every
object, then every family's text).  The follower's changes are few objects at a time, and
detection (a host disconnected, a VM powered off) is exactly those changes.  So a thread of
its own takes the objects the follower changed since it last looked, runs the per-object
collectors over only those objects (the same code as the full render, on a snapshot whose
``objects`` iterates just them), and splices their lines into the published body's pieces:
each object's lines of a family are contiguous (a collector adds them in one pass over the
objects), found by their identity label block (``{vcenter="..",host_id=".."``), and
replaced; a family whose bytes come out equal keeps its piece, so its gzip member and shard
splits are reused.  The families that are not per-object and cheap (the sync status, the
clusters' host counts) are rendered whole.  The families held as cached gzip members (per
block of VMs, per host: the VM families, the ~100 MB sensor family) are not spliced, which
would read and compress them whole: their collectors run on a copy of the full render's
cache and render again only the blocks of the objects changed since its snapshot
(collectors/cache.py), and only the units of members holding them are compressed again
(packing.py).  Everything else (performance counters, tags, pools, quickStats) follows
with the next full render, which keeps running as before; when it publishes, the patches
made since it took its snapshot are applied onto it again, so a full render started
before a change never hides it.

A patch is bounded (:data:`MAX_OBJECTS` objects, hosts first; a larger burst, such as a
resync, is left to the full render), so the lane never turns into a second full render.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .collectors import COLLECTORS, RenderContext
from .exposition import Piece, gzip_member, inflate, shard_of
from .families import Family, escape
from .inventory import Inventory, ManagedObject
from .topology import Topology

if TYPE_CHECKING:
    from .render import Renderer

log = logging.getLogger(__name__)

# Collectors whose every line starts with the identity block of one host, VM or datastore.
PER_OBJECT = ("host", "vm", "datastore", "hardware", "tools", "guest_disks", "custom_attributes")
# Collectors rendered whole in a patch when a host or cluster changed (cheap: per cluster).
WHOLE = ("cluster",)
# Per-object collectors whose families are cached gzip members (per block of VMs, per
# host): run on a copy of the full render's render cache when an object of these types
# changed, so only the changed objects' members are rendered and only the units holding
# them compressed again (packing.py). Splicing their lines instead read the
# whole family (the ~100 MB sensor family at 1,000 hosts) and compressed it again.
PACKED = {
    "vm": ("VirtualMachine",),
    "tools": ("VirtualMachine",),
    "guest_disks": ("VirtualMachine",),
    "custom_attributes": ("VirtualMachine", "HostSystem"),
    "hardware": ("HostSystem",),
}
KIND = {"HostSystem": "host", "VirtualMachine": "vm", "Datastore": "datastore"}
MAX_OBJECTS = 32  # per patch; the rest wait for the next patch
STORM_OBJECTS = 2000  # more changed than this at once: the full render's job, not a patch's
_VALUE = rb'"(?:[^"\\]|\\.)*"'
_LINE = re.compile(
    rb"[^{\s]+\{(vcenter=" + _VALUE + rb",(?:host|vm|datastore)_id=" + _VALUE + rb")"
)
_KEY = re.compile(rb'vcenter="((?:[^"\\]|\\.)*)",(?:host|vm|datastore)_id="((?:[^"\\]|\\.)*)"')


class NotContiguous(Exception):
    """An object's lines of a family are not in one run: the piece is filtered line by line."""


def ident(vcenter: str, type_name: str, moid: str) -> bytes | None:
    """The identity block an object's lines start with (as collectors/context.py builds it)."""
    kind = KIND.get(type_name)
    if kind is None:
        return None
    return f'vcenter="{escape(vcenter)}",{kind}_id="{escape(moid)}"'.encode()


def splice(plain: bytes, name: bytes, objects: dict[bytes, bytes]) -> bytes:
    """``plain`` (one family's text) with each object's lines replaced by ``objects[id]``.

    An object not in ``plain`` has its lines appended (a series's place inside its family
    does not matter to Prometheus); ``b""`` removes an object's lines.
    """
    spans: list[tuple[int, int, bytes]] = []
    tail: list[bytes] = []
    for key, new in objects.items():
        needle = b"\n" + name + b"{" + key
        start = plain.find(needle)
        if start < 0:
            if new:
                tail.append(new)
            continue
        start += 1
        end = start
        head = needle[1:]
        while plain.startswith(head, end):
            end = plain.index(b"\n", end) + 1
        if plain.find(needle, end - 1) >= 0:
            raise NotContiguous(name)
        if plain[start:end] != new:
            spans.append((start, end, new))
    if not spans and not tail:
        return plain
    spans.sort()
    # Views, not slices: a slice copies, and the parts of the ~100 MB sensor family were
    # a third copy of it beside the old and the new bytes while a host's change was spliced.
    view = memoryview(plain)
    parts: list[bytes | memoryview] = []
    pos = 0
    for start, end, new in spans:
        parts += (view[pos:start], new)
        pos = end
    parts.append(view[pos:])
    if tail and len(parts[-1]) and not plain.endswith(b"\n"):
        parts.append(b"\n")
    parts += tail
    return b"".join(parts)


def spliced_shards(old: Piece, new: Piece, changes: dict[bytes, bytes]) -> None:
    """Give ``new`` (``old`` spliced with ``changes``) the gzip shards of every total
    ``old`` has, from ``old``'s: a shard without a changed object keeps its member, one
    with them is decompressed, spliced the same way and compressed again. Split whole,
    each host family (one line per host, 2,500 at vCenter's maximum) was 7-20 ms of a host
    failure's patch with 4 shards asked, eight families, all for one host's lines.

    Left to the whole split (nothing adopted) when a changed shard had no lines or has
    none after (its header then comes or goes) or its object's lines are not one run."""
    name = new.name.encode()
    for total, members in old.gzip_splits().items():
        if total == 1 or len(members) != total:
            continue
        by_shard: dict[int, dict[bytes, bytes]] = {}
        for key, lines in changes.items():
            found = _KEY.fullmatch(key)
            if found is None:
                break
            by_shard.setdefault(shard_of(found[1], found[2], total), {})[key] = lines
        else:
            out = list(members)
            for index, part in by_shard.items():
                spliced = _splice_member(members[index], name, part)
                if spliced is None:
                    break
                out[index] = spliced
            else:
                new.adopt_split(total, out)


def _splice_member(member: bytes, name: bytes, changes: dict[bytes, bytes]) -> bytes | None:
    """One shard's gzip member spliced (None: see :func:`spliced_shards`)."""
    if not member:
        return None
    text = b"".join(inflate(member))
    try:
        spliced = splice(text, name, changes)
    except NotContiguous:
        return None
    if spliced is text:
        return member
    pos = 0  # past the header: a line of a sample must be left
    while spliced.startswith(b"#", pos) and (end := spliced.find(b"\n", pos)) >= 0:
        pos = end + 1
    if pos >= len(spliced) or spliced.startswith(b"#", pos):
        return None
    return gzip_member(spliced)


def filter_lines(plain: bytes, objects: dict[bytes, bytes]) -> bytes:
    """:func:`splice` the slow way (every line parsed), for a family whose lines of one
    object are not in one run."""
    kept = []
    for line in plain.splitlines(keepends=True):
        m = _LINE.match(line)
        if m is None or m.group(1) not in objects:
            kept.append(line)
    return b"".join(kept) + b"".join(objects.values())


def by_object(fam: Family) -> dict[bytes, bytes] | None:
    """A family's lines grouped by object identity; None when a line has none."""
    out: dict[bytes, list[bytes]] = {}
    for line in fam.sample_text().encode().splitlines(keepends=True):
        m = _LINE.match(line)
        if m is None:
            return None
        out.setdefault(m.group(1), []).append(line)
    return {k: b"".join(v) for k, v in out.items()}


class Focus(dict[str, ManagedObject]):
    """All objects for look-ups (a VM's host, a reporter's name), but iterating only the
    focused ones, so unmodified collectors render just those."""

    def __init__(self, objects: dict[str, ManagedObject], focus: Iterable[str]) -> None:
        super().__init__(objects)
        self.focused = [objects[m] for m in focus if m in objects]

    def values(self) -> Any:
        return list(self.focused)

    def items(self) -> Any:
        return [(o.moid, o) for o in self.focused]

    def keys(self) -> Any:
        return [o.moid for o in self.focused]

    def __iter__(self) -> Iterator[str]:
        return iter([o.moid for o in self.focused])


@dataclass
class Patch:
    """What one patch changes: per family name, objects' new lines or the whole text."""

    begun: float  # monotonic time before anything was read
    objects: dict[str, dict[bytes, bytes]] = field(default_factory=dict)
    whole: dict[str, bytes] = field(default_factory=dict)
    # Whole families of the PACKED collectors, as pieces (their gzip members built): they
    # show every object as of ``snapped`` (taken before the inventories' snapshots, after
    # the status families), so they go onto a full render snapped no later than that.
    pieces: dict[str, Piece] = field(default_factory=dict)
    snapped: float = 0.0

    def apply(
        self,
        pieces: Sequence[Piece],
        *,
        objects: bool = True,
        whole: bool = True,
        packed: bool | None = None,
    ) -> list[Piece]:
        """``pieces`` with this patch applied; an unchanged piece is the same object.
        ``packed`` (default: as ``whole``) says whether :attr:`pieces` go on too."""
        packed = whole if packed is None else packed
        out = []
        for piece in pieces:
            # A piece the patch does not touch is passed on without reading its bytes: once
            # gzip is served a piece keeps only its gzip member, and reading ``plain`` would
            # decompress the whole body on every patch.
            if packed and (new := self.pieces.get(piece.name)) is not None:
                out.append(piece if _same_piece(piece, new) else new)
                continue
            spliced: dict[bytes, bytes] | None = None  # the changes, if spliced in place
            if whole and piece.name in self.whole:
                before, plain = piece.plain, self.whole[piece.name]
            elif objects and self.objects.get(piece.name):
                changes = self.objects[piece.name]
                before = piece.plain
                try:
                    plain = splice(before, piece.name.encode(), changes)
                    spliced = changes
                except NotContiguous:
                    plain = filter_lines(before, changes)
            else:
                out.append(piece)
                continue
            if plain == before:
                out.append(piece)
                continue
            fresh = Piece(piece.name, plain)
            if spliced is not None:
                spliced_shards(piece, fresh, spliced)
            out.append(fresh)
        return out


def _same_piece(old: Piece, new: Piece) -> bool:
    """True when ``new`` has ``old``'s bytes, compared on their gzip members when both have
    one (a packed family's is built with it: never decompressed for this), else plain."""
    if old is new:
        return True
    if old.size != new.size:
        return False
    mine, theirs = old.built_gzip(), new.built_gzip()
    if mine is not None and theirs is not None:
        return mine == theirs
    return old.same_bytes(new)


def take_focus(inv: Inventory) -> dict[str, str] | None:
    """Up to :data:`MAX_OBJECTS` changed objects (hosts first), the rest left for the next
    patch; None for a storm (the full render's job)."""
    with inv.lock:
        changed = inv.changed
        if len(changed) > STORM_OBJECTS:
            inv.changed = {}
            return None
        if len(changed) <= MAX_OBJECTS:
            inv.changed = {}
            return changed
        order = sorted(changed, key=lambda m: changed[m] != "HostSystem")
        taken = {m: changed.pop(m) for m in order[:MAX_OBJECTS]}
        return taken


def build_patch(renderer: Renderer, begun: float) -> tuple[Patch, bool]:
    """The patch of every inventory's changed objects: (patch, everything taken)."""
    from .render import status_families  # noqa: PLC0415 - render imports this module

    config = renderer.config
    patch = Patch(begun)
    counts = dict(renderer.last_counts)
    for fam in status_families(renderer.inventories, config.sync.hold_seconds, counts):
        patch.whole[fam.name] = fam.render().encode()
    complete = True
    now = time.time()
    patch.snapped = time.monotonic()
    for inv in renderer.inventories:
        focus = take_focus(inv)
        if inv.changed:
            complete = False
        if not focus:
            continue
        with inv.lock:
            live = (inv.up and inv.synced) or inv.holding(config.sync.hold_seconds, now)
            if not live:
                continue
            snap = inv.snapshot()
        # The last full render's topology (clusters, datacenters, fault domains of hosts):
        # a host moved between clusters shows with the next full render.
        topo = renderer.last_topologies.get(inv.vcenter) or Topology(snap, config)
        # Every object, on a copy of the full render's render cache (read only: the lane
        # runs beside it), indexed by type once for all the collectors below.
        full = _private(snap, snap.objects)
        full.render_cache = dict(snap.render_cache)
        changed = frozenset(focus.values())
        full_ctx = RenderContext(inv.vcenter, full, topo, config, now, changed_types=changed)
        _objects_patch(patch, inv.vcenter, snap, topo, focus, renderer, now, full_ctx)
        # Several vCenters share one piece per cluster family: the full render's.
        if changed & {"HostSystem", "ClusterComputeResource"} and len(renderer.inventories) == 1:
            for name in WHOLE:
                for fam in COLLECTORS[name](full_ctx):
                    patch.whole[fam.name] = fam.render().encode()
    return patch, complete


def _private(snap: Inventory, objects: dict[str, ManagedObject]) -> Inventory:
    """The snapshot with ``objects`` and a render cache of its own (the full render's is
    left alone: the lane runs beside it)."""
    view = Inventory.__new__(Inventory)
    view.__dict__.update(snap.__dict__)
    view.objects = objects
    view.render_cache = {}
    return view


def _objects_patch(
    patch: Patch,
    vcenter: str,
    snap: Inventory,
    topo: Topology,
    focus: dict[str, str],
    renderer: Renderer,
    now: float,
    full_ctx: RenderContext,
) -> None:
    keys = [(KIND[t], k) for m, t in focus.items() if (k := ident(vcenter, t, m)) is not None]
    if not keys:
        return
    view = _private(snap, Focus(snap.objects, focus))
    ctx = RenderContext(vcenter, view, topo, renderer.config, now)
    # One vCenter: a packed family's piece is this vCenter's family (several: one piece
    # of all theirs, spliced as the other families are).
    whole = len(renderer.inventories) == 1
    if whole:
        changed_types = full_ctx.changed_types or frozenset()
        for name, types in PACKED.items():
            fn = COLLECTORS.get(name)
            if fn is not None and changed_types.intersection(types):
                _packed_patch(patch, name, fn, full_ctx, renderer)
    for name in PER_OBJECT:
        fn = COLLECTORS.get(name)
        if fn is None or (whole and name in PACKED):
            continue
        for fam in _collect(name, fn, ctx):
            grouped = None if fam.name in renderer.extra_names else by_object(fam)
            if grouped is None:
                continue  # not a per-object family after all: the full render has it
            for kind, key in keys:
                # Families are named per kind (vsphere_vm_*): a VM is not looked for in a
                # host family, where it has no lines (a scan of the family saved); a family
                # with no change is not read at all.
                if key in grouped or fam.name.startswith(f"vsphere_{kind}_"):
                    patch.objects.setdefault(fam.name, {})[key] = grouped.get(key, b"")


def _packed_patch(patch: Patch, name: str, fn: Any, ctx: RenderContext, renderer: Renderer) -> None:
    """A PACKED collector's families over every object, as pieces (see :data:`PACKED`)."""
    for fam in _collect(name, fn, ctx):
        if fam.name in renderer.extra_names:
            continue  # a family the counters also feed: the full render's
        patch.pieces[fam.name] = renderer.family_piece(fam)


def _collect(name: str, fn: Any, ctx: RenderContext) -> list[Family]:
    """A collector's families, or none when it fails (the full render reports it)."""
    try:
        return list(fn(ctx))
    except Exception:  # noqa: BLE001 - the full render reports the collector
        log.debug("patch: collector %s failed", name, exc_info=True)
        return []
