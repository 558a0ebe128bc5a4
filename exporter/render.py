"""Turns the inventories into the ``/metrics`` body, off the request path.

A background thread re-renders when an inventory changes (debounced, and never sooner after
the previous render than that render took, so a flood of updates costs at most half a core), and
``/metrics`` always answers with the latest body from memory.
"""

from __future__ import annotations

import gzip
import logging
import threading
import time
import zlib
from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest

from vcenter.config import Config

from . import __version__
from .collectors import COLLECTORS, CollectorUnavailable, RenderContext
from .families import Family, escape, merge
from .inventory import KIND_OF_TYPE, Inventory
from .topology import Topology

log = logging.getLogger(__name__)
ERROR_REASONS = ("connect", "auth", "session", "fault", "timeout", "other")


def status_families(inventories: Sequence[Inventory], hold_seconds: float = 0.0) -> list[Family]:
    """Per-vCenter sync health; always present, even when a vCenter is down."""
    up = Family("vsphere_up", "1 while the exporter holds a live, synced vCenter session.")
    last = Family(
        "vsphere_sync_last_success_timestamp_seconds",
        "When the last successful round trip with the vCenter completed, Unix seconds.",
    )
    duration = Family("vsphere_sync_duration_seconds", "Duration of the last full sync.")
    updates = Family("vsphere_sync_updates_total", "Update sets applied.", "counter")
    errors = Family("vsphere_sync_errors_total", "Sync failures by reason.", "counter")
    resyncs = Family("vsphere_sync_resyncs_total", "Full syncs, the first included.", "counter")
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
        counts = inv.counts() if shown else dict.fromkeys(KIND_OF_TYPE.values(), 0)
        for kind, n in counts.items():
            objects.add(f'{base},type="{kind}"', n)
    return [
        up,
        last,
        duration,
        updates,
        errors,
        resyncs,
        objects,
        about,
        held,
        polls,
        poll_duration,
        unknown,
    ]


def inventory_families(
    inventories: Sequence[Inventory],
    config: Config,
    collector_results: dict[tuple[str, str], tuple[float, float]],
) -> list[Family]:
    """Every collector over every live vCenter; a failing collector is reported, not fatal."""
    out: list[Family] = []
    now = time.time()
    for inv in inventories:
        with inv.lock:
            if not (inv.up and inv.synced) and not inv.holding(config.sync.hold_seconds, now):
                # A blind watcher claims nothing beyond a short outage: then only
                # vsphere_up 0 is served.  Within the hold the last image stays, so a 2 s
                # reconnect does not resolve and re-fire every alert (rules inhibit on
                # vsphere_up 0, so nothing acts on the held image).
                continue
            ctx = RenderContext(inv.vcenter, inv, Topology(inv, config), config, now)
            for name, fn in COLLECTORS.items():
                start = time.perf_counter()
                ok = 1.0
                try:
                    out.extend(fn(ctx))
                except CollectorUnavailable as exc:  # known and logged once by its source
                    ok = 0.0
                    out.extend(exc.families)
                except Exception:  # noqa: BLE001 - one bad object must not blank the scrape
                    ok = 0.0
                    log.exception("collector %s failed for vCenter %s", name, inv.vcenter)
                collector_results[(inv.vcenter, name)] = (ok, time.perf_counter() - start)
    return out


class Body(tuple[bytes, ...]):
    """A rendered ``/metrics`` body: one bytes chunk per metric family."""

    def decode(self) -> str:
        return b"".join(self).decode()

    @property
    def size(self) -> int:
        return sum(len(c) for c in self)


class Renderer:
    """Keeps the latest ``/metrics`` body (plain and gzipped) in memory."""

    def __init__(
        self,
        config: Config,
        inventories: Sequence[Inventory],
        extra_sources: Sequence[Callable[[], list[Family]]] = (),
    ) -> None:
        self.config = config
        self.inventories = list(inventories)
        # Other in-memory sources (e.g. performance counters) rendered into the same body;
        # each returns families from its own snapshot and must not block.
        self.extra_sources = list(extra_sources)
        self._cond = threading.Condition()
        self._dirty = True
        self._stop = False
        self._body: Body | None = None
        self._gzip: tuple[Body, bytes] | None = None
        self._render_seconds = 0.0
        self.renders_total = 0
        self.rendered_generations = [-1] * len(self.inventories)
        self._process = CollectorRegistry()
        ProcessCollector(registry=self._process)
        self._thread: threading.Thread | None = None
        for inv in self.inventories:
            inv.add_listener(self.mark_dirty)

    def mark_dirty(self) -> None:
        with self._cond:
            self._dirty = True
            self._cond.notify()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="vha-render", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._dirty and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
            time.sleep(0.02)  # let a burst of updates land in one render
            try:
                self.render_now()
            except Exception:  # noqa: BLE001 - keep serving the previous body
                log.exception("rendering /metrics failed")
            time.sleep(max(0.0, min(self._render_seconds, 5.0) - 0.02))

    def render_now(self) -> Body:
        with self._cond:
            self._dirty = False
        start = time.perf_counter()
        generations = [inv.generation for inv in self.inventories]
        per_collector: dict[tuple[str, str], tuple[float, float]] = {}
        families = status_families(self.inventories, self.config.sync.hold_seconds)
        families += inventory_families(self.inventories, self.config, per_collector)
        for source in self.extra_sources:
            try:
                families += source()
            except Exception:  # noqa: BLE001 - an extra source must not blank the scrape
                log.exception("metrics source %r failed", source)
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
        body = Body(f.render().encode() for f in merge([*families, ok, dur, build, took]))
        self._render_seconds = time.perf_counter() - start
        self.renders_total += 1
        self.rendered_generations = generations
        with self._cond:
            self._body = body
            self._gzip = None
        return body

    def shows_latest_sync(self) -> bool:
        """True once the served body was rendered after every vCenter's last full sync."""
        return all(
            rendered >= inv.synced_generation
            for rendered, inv in zip(self.rendered_generations, self.inventories, strict=True)
        )

    def body(self, *, gzipped: bool = False) -> list[bytes]:
        """The latest body as chunks, plus process metrics; renders only the first time.

        Chunks (one per family) are written to the client one after the other, so a 35 MB
        body at 10,000 VMs is never copied into one buffer per scrape.
        """
        with self._cond:
            body = self._body
        if body is None:
            body = self.render_now()
        process = generate_latest(self._process)
        if not gzipped:
            return [*body, process]
        with self._cond:
            cached = self._gzip
        if cached is None or cached[0] is not body:
            packer = zlib.compressobj(1, zlib.DEFLATED, 31)  # one gzip member over all chunks
            packed = b"".join([*(packer.compress(c) for c in body), packer.flush()])
            cached = (body, packed)
            with self._cond:
                self._gzip = cached
        return [cached[1], gzip.compress(process, compresslevel=1)]
