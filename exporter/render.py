"""Turns the inventories into the ``/metrics`` body, off the request path.

A background thread re-renders when an inventory changes (debounced, and never sooner after
the previous render than that render took, so a flood of updates costs at most half a core,
while a change after a quiet spell is rendered at once), and
``/metrics`` always answers with the latest body from memory.

The body is one :class:`~exporter.exposition.Piece` per family.  A family whose sources
are the very objects of the previous render (the performance counters' snapshot, between
two collections) is not rendered again, and a piece whose bytes did not change is the
previous piece itself, so its gzip member and shard splits are never rebuilt: a change
costs the families it touches, and a scrape only concatenates.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest

from vcenter.config import Config

from . import __version__, exposition, heap
from .collectors import COLLECTORS, CollectorUnavailable, RenderContext
from .exposition import MAX_MEMBERS, Chunks, Piece, chunks, fit_members, reuse
from .families import Family, escape
from .inventory import KIND_OF_TYPE, Inventory
from .lag import LagHistogram
from .packing import UnitPacker
from .patch import Patch, build_patch
from .shard_asks import ShardAsks, ShardPending
from .topology import Topology
from .wire import answer_families

log = logging.getLogger(__name__)
HEAD_START = 0.2  # seconds the detection lane has a change to itself before a full render
PATCH_YIELD = 2.0  # at most this long a full render waits for a patch still running
ERROR_REASONS = ("connect", "auth", "session", "fault", "timeout", "other")


def status_families(
    inventories: Sequence[Inventory],
    hold_seconds: float = 0.0,
    counts: dict[str, dict[str, int]] | None = None,
) -> list[Family]:
    """Per-vCenter sync health; always present, even when a vCenter is down.

    ``counts``: object counts by vCenter, filled in (or, when present, reused: the
    detection lane shows the last full render's, a pass over 40,000 objects saved).
    """
    up = Family("vsphere_up", "1 while the exporter holds a live, synced vCenter session.")
    last = Family(
        "vsphere_sync_last_success_timestamp_seconds",
        "When the last successful round trip with the vCenter completed, Unix seconds.",
    )
    duration = Family("vsphere_sync_duration_seconds", "Duration of the last full sync.")
    updates = Family("vsphere_sync_updates_total", "Update sets applied.", "counter")
    errors = Family("vsphere_sync_errors_total", "Sync failures by reason.", "counter")
    resyncs = Family("vsphere_sync_resyncs_total", "Full syncs, the first included.", "counter")
    fallbacks = Family(
        "vsphere_sync_plain_fallbacks_total",
        "Initial syncs whose pages could not be read as plain XML, redone through pyVmomi.",
        "counter",
    )
    objects = Family("vsphere_inventory_objects", "Objects in the in-memory inventory.")
    about = Family("vsphere_vcenter_info", "What the vCenter says about itself; always 1.")
    held = Family(
        "vsphere_inventory_held",
        "1 while a down vCenter's last inventory is still served (an outage shorter than "
        "sync.hold_seconds); vsphere_sync_last_success_timestamp_seconds tells its age.",
    )
    polls = Family(
        "vsphere_sync_polls_total",
        "Polls of the properties vCenter does not announce (quickStats, overallStatus).",
        "counter",
    )
    poll_duration = Family("vsphere_sync_poll_duration_seconds", "Duration of the last poll.")
    unknown = Family(
        "vsphere_unknown_enum_values_total",
        "Values seen that the exporter's list of the enum lacks, by metric and value.",
        "counter",
    )
    now = time.time()
    for inv in inventories:
        base = f'vcenter="{escape(inv.vcenter)}"'
        with inv.lock:
            up.add(base, 1 if inv.up and inv.synced else 0)
            if inv.last_success is not None:
                last.add(base, inv.last_success)
            if inv.sync_duration is not None:
                duration.add(base, inv.sync_duration)
            updates.add(base, inv.updates_total)
            resyncs.add(base, inv.resyncs_total)
            fallbacks.add(base, inv.plain_sync_fallbacks_total)
            holding = inv.holding(hold_seconds, now)
            held.add(base, 1 if holding else 0)
            polls.add(base, inv.polls_total)
            if inv.poll_duration is not None:
                poll_duration.add(base, inv.poll_duration)
            for (metric, raw), n in sorted(inv.unknown_enums.items()):
                unknown.add(f'{base},metric="{metric}",value="{escape(raw)}"', n)
            for reason in ERROR_REASONS:
                errors.add(f'{base},reason="{reason}"', inv.errors_total.get(reason, 0))
            if inv.about:
                about.add(
                    base + "".join(f',{k}="{escape(v)}"' for k, v in sorted(inv.about.items())),
                    1,
                )
        shown = inv.up or holding
        known = counts.get(inv.vcenter) if counts is not None else None
        if known is None:
            known = inv.counts() if shown else dict.fromkeys(KIND_OF_TYPE.values(), 0)
            if counts is not None:
                counts[inv.vcenter] = known
        elif not shown:
            known = dict.fromkeys(KIND_OF_TYPE.values(), 0)
        for kind, n in known.items():
            objects.add(f'{base},type="{kind}"', n)
    return [
        up,
        last,
        duration,
        updates,
        errors,
        resyncs,
        fallbacks,
        objects,
        about,
        held,
        polls,
        poll_duration,
        unknown,
        *answer_families(inventories),
    ]


def inventory_families(
    inventories: Sequence[Inventory],
    config: Config,
    collector_results: dict[tuple[str, str], tuple[float, float]],
    on_snapshots: Callable[[], None] | None = None,
    topologies: dict[str, Topology] | None = None,
    checkpoint: Callable[[], None] | None = None,
) -> list[Family]:
    """Every collector over every live vCenter; a failing collector is reported, not fatal.

    ``topologies`` receives each vCenter's topology (the detection lane reuses it);
    ``checkpoint`` is called before each collector (the render loop's yield to a patch)."""
    out: list[Family] = []
    now = time.time()
    snaps: list[tuple[str, Inventory]] = []
    for inv in inventories:
        with inv.lock:
            if not (inv.up and inv.synced) and not inv.holding(config.sync.hold_seconds, now):
                # A blind watcher claims nothing beyond a short outage: then only
                # vsphere_up 0 is served.  Within the hold the last image stays, so a 2 s
                # reconnect does not resolve and re-fire every alert (rules inhibit on
                # vsphere_up 0, so nothing acts on the held image).
                continue
            # Detection first: the collectors run on a snapshot, outside the lock, so the
            # follower applies the next update while this render runs.
            snaps.append((inv.vcenter, inv.snapshot()))
    if on_snapshots is not None:
        on_snapshots()  # every snapshot taken: the detection lane's later patches are newer
    for vcenter, snap in snaps:
        topo = Topology(snap, config)
        if topologies is not None:
            topologies[vcenter] = topo
        ctx = RenderContext(vcenter, snap, topo, config, now)
        for name, fn in COLLECTORS.items():
            if checkpoint is not None:
                checkpoint()
            start = time.perf_counter()
            ok = 1.0
            try:
                out.extend(fn(ctx))
            except CollectorUnavailable as exc:  # known and logged once by its source
                ok = 0.0
                out.extend(exc.families)
            except Exception:  # noqa: BLE001 - one bad object must not blank the scrape
                ok = 0.0
                log.exception("collector %s failed for vCenter %s", name, vcenter)
            collector_results[(vcenter, name)] = (ok, time.perf_counter() - start)
    return out


class Body:
    """A rendered ``/metrics`` body: one piece per metric family; iterating gives each
    piece's bytes.  Holds the pieces, not their bytes, so a piece that let its plain bytes
    go (gzip only, see :meth:`Piece.release_plain`) frees them."""

    __slots__ = ("covered", "pieces", "seq")

    def __init__(
        self, pieces: Iterable[Piece], seq: int = 0, covered: float = float("-inf")
    ) -> None:
        self.pieces: tuple[Piece, ...] = tuple(pieces)
        # publication order: a newer body (full render or patch) has a higher one
        self.seq = seq
        # every inventory change before this (monotonic) is in it: see Renderer._observe_served
        self.covered = covered

    def __iter__(self) -> Iterator[bytes]:
        return (p.plain for p in self.pieces)

    def __len__(self) -> int:
        return len(self.pieces)

    def decode(self) -> str:
        return b"".join(self).decode()

    @property
    def size(self) -> int:
        return sum(p.size for p in self.pieces)


class Renderer:
    """Keeps the latest ``/metrics`` body (plain, gzip members, shards) in memory."""

    def __init__(
        self,
        config: Config,
        inventories: Sequence[Inventory],
        extra_sources: Sequence[Callable[[], list[Family]]] = (),
        shard_totals: Sequence[int] = (),
    ) -> None:
        self.config = config
        self.inventories = list(inventories)
        # Other in-memory sources (e.g. performance counters) rendered into the same body;
        # each returns families from its own snapshot and must not block, and must not
        # change a family after handing it out (an unchanged family is not rendered again).
        self.extra_sources = list(extra_sources)
        self._cond = threading.Condition()
        self._dirty = True
        self._stop = False
        self._body: Body | None = None
        # name -> (weak references to the families it was rendered from: a family its
        # source keeps and hands out again is recognised, one built afresh dies with its
        # render instead of being held beside the body; their sizes; the piece)
        self._by_sources: dict[str, tuple[list[weakref.ref[Family]], tuple[int, ...], Piece]] = {}
        self._gzip_wanted = False
        self._plain_shards_wanted = False  # plain shards asked: keep their parts built
        # total_shards asked recently (and ``shard_totals``, a replica's: always), kept split
        self._asks = ShardAsks(shard_totals)
        self._split_seconds = 1.0  # the last build that split pieces: a 503's Retry-After
        self._ready: dict[tuple[bool, int], Body] = {}  # (gzip, total) -> newest built
        self._render_seconds = 0.0
        self.renders_total = 0
        self.families_rendered_total = 0  # families whose text was built (not reused)
        self.last_built: frozenset[str] = frozenset()  # their names, in the last render
        self.rendered_generations = [-1] * len(self.inventories)
        # When (monotonic) the published full render read its extra sources (the counters):
        # what they had handed out by then is in the body (Exporter.ready).
        self.extras_read_at = float("-inf")
        self._process = CollectorRegistry()
        ProcessCollector(registry=self._process)
        self._thread: threading.Thread | None = None
        self._packer: threading.Thread | None = None
        self._to_pack: Body | None = None  # the newest body the packer has not prepared
        # Detection latency, the exporter's own share: from the first inventory change
        # after a render started to the body that shows it being published.
        self._changed_since: float | None = None
        self.lag = LagHistogram()
        # The detection lane (patch.py): changed objects spliced into the published body.
        self._publish_lock = threading.Lock()  # one publisher at a time: full or patch
        self._patches: list[Patch] = []  # applied since the running full render began
        self._patch_wanted = False
        self._patching = False  # a patch is being built (the full render yields to it)
        self._patcher: threading.Thread | None = None
        self._seq = itertools.count(1)
        self.patches_total = 0
        # The last full render's object counts and topologies, which a patch reuses.
        self.last_counts: dict[str, dict[str, int]] = {}
        self.last_topologies: dict[str, Topology] = {}
        self.extra_names: frozenset[str] = frozenset()
        self.packer = UnitPacker()  # many-member families' units, full render and patch
        # True while /readyz would answer 503 (the exporter's): renders without the storm's
        # wait until then (pause).
        self.not_ready: Callable[[], bool] = lambda: False
        for inv in self.inventories:
            inv.add_listener(self._inventory_changed)

    def mark_dirty(self) -> None:
        with self._cond:
            self._dirty = True
            self._cond.notify_all()

    def _inventory_changed(self) -> None:
        # From the update set read off the wire (the follower's conversion and apply are
        # the exporter's share too), else from now.
        received = [t for inv in self.inventories if (t := inv.received_at) is not None]
        for inv in self.inventories:
            inv.received_at = None
        since = min(received, default=time.monotonic())
        with self._cond:
            if self._changed_since is None or since < self._changed_since:
                self._changed_since = since
            self._dirty = True
            self._patch_wanted = True
            self._cond.notify_all()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="vha-render", daemon=True)
        self._thread.start()
        self._packer = threading.Thread(target=self._pack_loop, name="vha-pack", daemon=True)
        self._packer.start()
        self._patcher = threading.Thread(target=self._patch_loop, name="vha-patch", daemon=True)
        self._patcher.start()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        for thread in (self._thread, self._packer, self._patcher):
            if thread is not None:
                thread.join(timeout=5)

    def _loop(self) -> None:
        ended = 0.0  # monotonic time the last render finished
        while True:
            with self._cond:
                while not self._dirty and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
            # Let a burst of updates land in one render; and in a storm (a change within a
            # render's time of the last one) wait out that time, so rendering takes at most
            # half a core. A change after a quiet spell goes through the detection lane
            # first (patch.py), which gets a head start instead of sharing the GIL.
            time.sleep(self.pause(time.monotonic() - ended))
            try:
                body = self.render_now()
                self._hand_to_packer(body)
            except Exception:  # noqa: BLE001 - keep serving the previous body
                log.exception("rendering /metrics failed")
            ended = time.monotonic()

    def _yield_to_patch(self, limit: float) -> float:
        """Wait (at most ``limit`` seconds) while the detection lane has a patch wanted or
        running; returns the seconds waited. Before a full render: once idle round trips
        stopped rendering, a change usually found the renderer idle, and its full render
        began after the head start, sharing the GIL with a patch that at 40,000 VMs under
        load takes longer than that. Then between its collectors (:meth:`_checkpoint`)."""
        begun = time.monotonic()
        deadline = begun + limit
        with self._cond:
            while (self._patch_wanted or self._patching) and not self._stop:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
        return time.monotonic() - begun

    def _checkpoint(self) -> Callable[[], None] | None:
        """For a render on the render loop's thread: a yield to the detection lane before
        it and between its collectors, at most PATCH_YIELD over the whole render. A change
        landing while a full render of 40,000 VMs ran (seconds, most of the time under
        load) had its patch share the GIL with it: 38 ms of CPU took 120 ms. A scrape's or
        a test's render never waits."""
        if threading.current_thread() is not self._thread:
            return None
        budget = [PATCH_YIELD]

        def checkpoint() -> None:
            if budget[0] > 0:
                budget[0] -= self._yield_to_patch(budget[0])

        return checkpoint

    def pause(self, quiet: float) -> float:
        """Seconds before the next full render, ``quiet`` seconds after the last one ended:
        the detection lane's head start, or in a storm the last render's time. Not the
        storm's while ``not_ready()``: the render that brings the body to /readyz's 200
        (the counters after the first full render at 40,000 VMs) waited 5 s for nothing."""
        if self.not_ready():
            return HEAD_START
        return max(HEAD_START, min(self._render_seconds, 5.0) - quiet)

    def _pack_loop(self) -> None:
        """Compress and split new pieces on a thread of their own (zlib releases the GIL),
        so the next inventory change is never rendered behind the last one's gzip."""
        while True:
            with self._cond:
                while self._to_pack is None and not self._stop:
                    self._cond.wait()
                body, self._to_pack = self._to_pack, None
                if self._stop or body is None:
                    return
            try:
                self.prepare(body)
                self._observe_served()
            except Exception:  # noqa: BLE001 - a scrape builds what is missing itself
                log.exception("compressing /metrics failed")

    def _pieces(self, families: list[Family]) -> list[Piece]:
        """One piece per family name (several vCenters' families joined, first-seen order);
        a name whose source families are the same objects as last time keeps its piece."""
        groups: dict[str, list[Family]] = {}
        for fam in families:
            groups.setdefault(fam.name, []).append(fam)
        previous = self._by_sources
        cache: dict[str, tuple[list[weakref.ref[Family]], tuple[int, ...], Piece]] = {}
        out = []
        built = []
        for name, group in groups.items():
            sizes = tuple(len(f.lines) + len(f.members) for f in group)
            old = previous.get(name)
            if (
                old is not None
                and old[1] == sizes
                and len(old[0]) == len(group)
                and all(a() is b for a, b in zip(old[0], group, strict=True))
            ):
                piece = old[2]
            else:
                merged = group[0]
                if len(group) > 1:  # several vCenters' families: one piece
                    merged = Family(merged.name, merged.help, merged.type, [])
                    for fam in group:
                        merged.lines.extend(fam.lines)
                        merged.members.extend(fam.members)
                piece = self.family_piece(merged)
                self.families_rendered_total += 1
                built.append(name)
            cache[name] = ([weakref.ref(f) for f in group], sizes, piece)
            out.append(piece)
        with self._cond:
            old_body = self._body
        out = reuse(out, old_body.pieces if old_body is not None else ())
        for name, piece in zip(groups, out, strict=True):
            refs, sizes, _ = cache[name]
            cache[name] = (refs, sizes, piece)
        self._by_sources = cache
        self.last_built = frozenset(built)
        return out

    def family_piece(self, fam: Family) -> Piece:
        """A family's piece. A family with cached members is its members (a host's change
        compresses that host's lines, not the ~100 MB sensor family), never decompressed
        whole; with many, they are one member of per-unit deflate segments (packing.py),
        for every client, of which a change deflates again the unit(s) holding what
        changed."""
        if not fam.members:
            return Piece(fam.name, fam.encode())
        if len(fam.members) >= MAX_MEMBERS:
            head = (fam.header() + "".join(fam.lines)).encode()
            members = tuple(fam.members)
            gzip, size = self.packer.pack(fam.name, head, members)
            return Piece.packed(fam.name, gzip, size, 1, (head, members))
        count = 1 + len(fam.members)  # the head's member, then the cached ones
        return Piece.packed(fam.name, fam.gzip(), fam.encoded_size(), count)

    def render_now(self) -> Body:
        checkpoint = self._checkpoint()
        if checkpoint is not None:  # the render loop's: a patch first
            checkpoint()
        with self._cond:
            self._dirty = False
        begun = time.monotonic()
        snapped = [begun]
        start = time.perf_counter()
        generations = [inv.generation for inv in self.inventories]
        per_collector: dict[tuple[str, str], tuple[float, float]] = {}
        counts: dict[str, dict[str, int]] = {}
        topologies: dict[str, Topology] = {}
        families = status_families(self.inventories, self.config.sync.hold_seconds, counts)
        families += inventory_families(
            self.inventories,
            self.config,
            per_collector,
            on_snapshots=lambda: snapped.append(time.monotonic()),
            topologies=topologies,
            checkpoint=checkpoint,
        )
        self.last_counts, self.last_topologies = counts, topologies
        extra: list[Family] = []
        extras_read = time.monotonic()
        for source in self.extra_sources:
            try:
                extra += source()
            except Exception:  # noqa: BLE001 - an extra source must not blank the scrape
                log.exception("metrics source %r failed", source)
        # A family the counters also feed is one piece of both: never spliced by a patch.
        self.extra_names = frozenset(f.name for f in extra)
        families += extra
        ok = Family(
            "vsphere_scrape_collector_success", "1 when the collector succeeded for the vCenter."
        )
        dur = Family(
            "vsphere_scrape_collector_duration_seconds", "Time the collector took last render."
        )
        for (vcenter, name), (success, seconds) in per_collector.items():
            block = f'vcenter="{escape(vcenter)}",collector="{name}"'
            ok.add(block, success)
            dur.add(block, seconds)
        build = Family("vsphere_exporter_build_info", "Exporter version; always 1.")
        build.add(f'version="{__version__}"', 1)
        took = Family(
            "vsphere_scrape_duration_seconds", "How long rendering the previous body took."
        )
        took.add("", self._render_seconds)
        renders = Family(
            "vsphere_exporter_renders_total", "Full renders of the body before this one.", "counter"
        )
        renders.add("", self.renders_total)
        lag, last_lag = self.lag.family(), self.lag.last_family()
        with self._cond:
            shards = self._asks.families()
        if checkpoint is not None:
            checkpoint()
        pieces = self._pieces([*families, ok, dur, build, took, renders, lag, last_lag, *shards])
        with self._publish_lock:
            # What the detection lane published while this render ran is newer than this
            # render's snapshot: applied again, so a slow render never hides a change.
            with self._cond:
                old_body = self._body
            patched = False
            for patch in self._patches:
                if patch.begun >= begun:
                    pieces = patch.apply(
                        pieces,
                        whole=patch.begun >= snapped[-1],
                        packed=patch.snapped >= snapped[-1],
                    )
                    patched = True
            self._patches = []
            if patched:
                pieces = reuse(pieces, old_body.pieces if old_body is not None else ())
            body = Body(pieces, next(self._seq), begun)
            with self._cond:
                self._body = body
        self._render_seconds = time.perf_counter() - start
        heap.trim()  # the render's transients back to the system (rate-limited)
        self.renders_total += 1
        self.extras_read_at = extras_read
        shown = [
            inv.vcenter
            for old, new, inv in zip(
                self.rendered_generations, generations, self.inventories, strict=True
            )
            if old < inv.synced_generation <= new
        ]
        self.rendered_generations = generations
        if shown:  # a step of the timeline to /readyz (docs/exporter.md)
            log.info(
                "full render showing the latest sync of %s: %.2fs",
                ", ".join(shown),
                self._render_seconds,
            )
        self._observe_served()
        return body

    def _observe_served(self) -> None:
        """Observe the lag once every variant a scrape is served (plain, and the gzip and
        shard bodies scrapes asked for) shows every change before some time: the earliest
        change before it is shown. Taken at publication, it left out the gzip members and
        shard splits built after it, which Prometheus's gzip scrapes wait for."""
        with self._cond:
            if self._body is None:
                return
            wanted: list[tuple[bool, int]] = [(True, 1)] if self._gzip_wanted else []
            for total in self._asks.totals(time.monotonic()):
                wanted.append((self._gzip_wanted, total))
                if self._plain_shards_wanted and self._gzip_wanted:
                    wanted.append((False, total))
            # A variant not built yet is served from the published body (gzip compressed
            # by the scrape) or not at all (a shard's 503): no older body to wait for.
            served = [self._body, *(b for k in wanted if (b := self._ready.get(k)) is not None)]
            covered = min(b.covered for b in served)
            since = self._changed_since
            if since is None or since > covered:
                return
            self._changed_since = None
        self.lag.observe(time.monotonic() - since)

    def _patch_loop(self) -> None:
        while True:
            with self._cond:
                while not self._patch_wanted and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                self._patch_wanted = False
                self._patching = True
            try:
                self.patch_now()
            except Exception:  # noqa: BLE001 - the full render follows anyway
                log.exception("patching /metrics failed")
            finally:
                with self._cond:
                    self._patching = False
                    self._cond.notify_all()

    def patch_now(self) -> Body | None:
        """Splice the objects changed since the last patch into the published body (see
        patch.py); the gzip members of the pieces it changed are built right after."""
        begun = time.monotonic()
        with self._cond:
            if self._body is None:
                return None  # the first full render comes first
        if not self.shows_latest_sync():
            # The body predates a (re)sync: a patch would show vsphere_up 1 over the old
            # (or no) image, or splice a few objects into it. The full render comes first.
            return None
        patch, complete = build_patch(self, begun)
        with self._publish_lock:
            with self._cond:
                current = self._body
            if current is None:
                return None
            spliced_seq = next(self._seq)  # below the patched body's: see _prepare_patch
            # All of a burst's objects in it: every change before it began is shown.
            covered = max(begun, current.covered) if complete else current.covered
            body = Body(patch.apply(current.pieces), next(self._seq), covered)
            with self._cond:
                self._body = body
            # Only the newest packed piece of a family can go onto a full render (later
            # patches are applied later, and snapped later): an older patch's is dropped,
            # or a burst of patches during a long render would hold a copy of the VM
            # families each.
            for older in self._patches:
                for name in patch.pieces.keys() & older.pieces.keys():
                    del older.pieces[name]
            self._patches.append(patch)
            self.patches_total += 1
        if not complete:
            with self._cond:
                self._patch_wanted = True  # the rest of a burst: right after this one
        self._prepare_patch(patch, current, body, spliced_seq)
        self._observe_served()
        return body

    def _prepare_patch(self, patch: Patch, current: Body, body: Body, spliced_seq: int) -> None:
        """Make the patch reach every variant scrapes asked for (gzip, shards) without
        waiting for the compression of the body it was spliced into.

        ``current`` may be a full render the packer is still compressing (135 MB at 10,000
        VMs: seconds). Building ``body``'s variants here would compress all of it on the
        detection lane, and the next change would wait behind it. So for a variant whose
        newest built body is ``current``, only ``body``'s new pieces are built; for one
        still on an older body, the patch is spliced into that older body too (its other
        families stay as they were for a few seconds more) and only the patch's pieces are
        built. The packer then prepares ``body`` whole, which replaces those.
        """
        with self._cond:
            ready = dict(self._ready)
        for key, old in ready.items():
            if old is current:
                target = body
            elif old.seq < current.seq:
                # Shows the patch's objects, not what ``current`` brought over ``old``.
                target = Body(patch.apply(old.pieces), spliced_seq, old.covered)
            else:
                continue
            self._build(target, key, "patch")
            self._set_ready(key, target)
        self._hand_to_packer(body)

    def _hand_to_packer(self, body: Body) -> None:
        """Queue ``body`` for the packer, unless a newer one is already queued."""
        with self._cond:
            if self._to_pack is None or self._to_pack.seq < body.seq:
                self._to_pack = body
                self._cond.notify_all()

    def _build(self, body: Body, key: tuple[bool, int], where: str = "packer") -> None:
        """Build ``body``'s variant ``key`` (gzip members, or the parts of ``total``
        shards, plain or gzipped); pieces that have it already cost nothing. ``where``
        counts the pieces split (vsphere_exposition_shard_splits_total)."""
        gzipped, total = key
        start = time.perf_counter()
        with self._cond:
            plain_shards = self._plain_shards_wanted
            # As prepare() does: with gzip asked, the shards' gzip members are what is kept.
            gzipped = gzipped or (total > 1 and self._gzip_wanted)
        missing = 0
        if total > 1:
            missing = sum(
                not p.has_split(total, gzipped=gzipped)
                or (plain_shards and not p.has_split(total, gzipped=False))
                for p in body.pieces
            )
            with self._cond:
                self._asks.count(where, missing)
        for piece in body.pieces:
            if total == 1:
                if gzipped:
                    piece.gzip()
                continue
            for i in range(total):
                piece.shard(i, total, gzipped=gzipped)
            if plain_shards:  # their plain parts too (let go before plain shards were asked)
                piece.shard(0, total)
            elif gzipped:
                piece.drop_plain_split(total)
        if gzipped and total == 1:
            fit_members(body.pieces)  # at most MAX_BODY_MEMBERS for aiohttp's client
        elif missing:
            self._split_seconds = time.perf_counter() - start

    def prepare(self, body: Body) -> None:
        """Build, after publishing ``body``, what scrapes asked for before: the gzip member
        of every new piece, then its shard splits for every total asked for recently (a
        total not asked for a while is forgotten and its splits freed, see shard_asks.py);
        each variant, once built, is what its scrapes are served (see :meth:`body`)."""
        with self._cond:
            gzipped, totals = self._gzip_wanted, self._asks.totals(time.monotonic())
            plain_shards = self._plain_shards_wanted
            kept = {1, *totals}
            self._ready = {k: v for k, v in self._ready.items() if k[1] in kept}
        for piece in body.pieces:
            piece.forget_splits(kept)
        if gzipped:
            self._build(body, (True, 1))
            self._set_ready((True, 1), body)
        for n in totals:
            self._build(body, (gzipped, n))
            if plain_shards or not gzipped:  # else the plain parts were let go
                self._set_ready((False, n), body)
            if gzipped:
                self._set_ready((True, n), body)
        if gzipped:  # Prometheus's way: the gzip members are the body now
            for piece in body.pieces:
                piece.release_plain(exposition.KEEP_PLAIN_BELOW)

    def _set_ready(self, key: tuple[bool, int], body: Body) -> None:
        """``body`` is what scrapes of ``key`` get, unless a newer body is already built
        (the packer and the detection lane prepare bodies side by side)."""
        with self._cond:
            old = self._ready.get(key)
            if old is None or old.seq < body.seq:
                self._ready[key] = body

    def shows_latest_sync(self) -> bool:
        """True once the served body was rendered after every vCenter's last full sync."""
        return all(
            rendered >= inv.synced_generation
            for rendered, inv in zip(self.rendered_generations, self.inventories, strict=True)
        )

    def body(
        self,
        *,
        gzipped: bool = False,
        shard: tuple[int, int] | None = None,
        own_process: bool = False,
    ) -> Chunks:
        """The latest body (or shard ``(i, n)`` of it) as chunks, plus process metrics.

        Chunks (one per family) are written to the client one after the other, so a 35 MB
        body at 10,000 VMs is never copied into one buffer per scrape; gzipped, each chunk
        is the family's gzip member, compressed once per change of that family; plain, a
        family kept as its gzip member only is decompressed as it is written.
        """
        total = shard[1] if shard is not None else 1
        with self._cond:
            if total > 1:  # first: a refused total (ShardRefused) wants nothing built
                self._asks.ask(total, time.monotonic())
            current = body = self._body
            self._gzip_wanted = self._gzip_wanted or gzipped
            self._plain_shards_wanted = self._plain_shards_wanted or (total > 1 and not gzipped)
            if gzipped or total > 1:
                # The newest body whose gzip members / splits the packer has built, so a
                # scrape never waits on compression or splitting (only the very first gzip
                # one compresses; a shard's first waits for the packer, see app.py).
                body = self._ready.get((gzipped, total)) or body
            pending = total > 1 and (gzipped, total) not in self._ready
        packer = self._packer is not None and self._packer.is_alive()
        if pending and packer:
            # Now, not at the next change; queued again while it waits (the packer may be
            # on a body it began before this ask), which costs a look-up per piece. Before
            # the first render, the render loop hands that body over.
            if current is not None:
                self._hand_to_packer(current)
            raise ShardPending(total, self._split_seconds)
        if body is None:
            body = self.render_now()
        if total > 1:  # 0 but for a renderer whose threads do not run (tests, tools)
            missing = sum(not p.has_split(total, gzipped=gzipped) for p in body.pieces)
            if missing:
                with self._cond:
                    self._asks.count("request", missing)
        process = Piece("process", generate_latest(self._process), shard0=True)
        out = chunks(body.pieces, gzipped=gzipped, shard=shard)
        if own_process:  # a replica's shard: its process metrics are its own, in every shard
            return out + Chunks([process.gzip() if gzipped else process.plain])
        return out + chunks([process], gzipped=gzipped, shard=shard)
