"""The exporter's HTTP side: an aiohttp app factory with the followers tied to its lifetime."""

from __future__ import annotations

import asyncio
import html
import json
import logging
import math
import sys
import time
from collections.abc import AsyncIterator, Iterable, Iterator

from aiohttp import web

from exporter.collectors_config import parse_collectors_config
from vcenter.config import Config

from . import heap
from .cost import CostSource, parse_cost_config
from .exposition import ShardError, parse_shard
from .exposition_config import parse_exposition_config
from .families import CONTENT_TYPE
from .inventory import Inventory
from .perf import collectors_for
from .pollers import Poller, tasks_for
from .render import Renderer
from .shard_asks import ShardAnswer, ShardPending
from .sync import Follower
from .tagging import TagSource

log = logging.getLogger(__name__)


class Exporter:
    """Everything one exporter process runs: an inventory and follower per vCenter."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._was_ready = False  # to log each turn to ready once
        self.inventories = [
            Inventory(vc.name, config.sync.alive_render_seconds) for vc in config.vcenters
        ]
        # The replica's shard on plain /metrics (exposition_config.py); query parameters win.
        self.default_shard = parse_exposition_config(config).default_shard
        self.followers = [
            Follower(vc, inv, config.sync)
            for vc, inv in zip(config.vcenters, self.inventories, strict=True)
        ]
        # Performance counters and prices: their own threads and snapshots, rendered into the
        # same body, so a slow QueryPerf never delays inventory updates or /metrics.
        self.perf = collectors_for(config, self.inventories)
        self.cost = CostSource(parse_cost_config(config), self.inventories)
        self.renderer = Renderer(
            config,
            self.inventories,
            extra_sources=[*(p.families for p in self.perf), self.cost.families],
            # A replica's own shard is split ahead of its first scrape (shard_asks.py).
            shard_totals=[self.default_shard[1]] if self.default_shard else (),
        )
        for collector in self.perf:
            collector.add_listener(self.renderer.mark_dirty)
        self.renderer.not_ready = self.not_ready
        # vSphere tags (the vAPI REST endpoint) triggered alarms (not notified) and licences: each
        # refreshed on a schedule in threads of their own, never on the scrape path.
        collectors = parse_collectors_config(config)
        self.tags = TagSource(config.vcenters, self.inventories, collectors.tags)
        # The poll parses its pages in the counters' worker process where there is one.
        workers = {c.vc.name: c.worker for c in self.perf if c.worker is not None}
        self.pollers = [  # quickStats, alarms and licences: polled, a session per vCenter
            Poller(
                vc,
                inv,
                tasks_for(collectors, config.sync, vc, workers.get(vc.name), self.not_ready),
                config.sync,
            )
            for vc, inv in zip(config.vcenters, self.inventories, strict=True)
        ]

    def start(self) -> None:
        self.renderer.start()
        for follower in self.followers:
            follower.start()
        for collector in self.perf:
            collector.start()
        self.tags.start()
        for poller in self.pollers:
            poller.start()

    def stop(self) -> None:
        # Pollers first: a poll may share a counters collector's parse worker, and one still
        # in flight after the collector closed it would start a new worker nobody stops.
        for poller in self.pollers:
            poller.signal_stop()
        for collector in self.perf:
            collector.signal_stop()
        for follower in self.followers:
            follower.signal_stop()  # signal all first, then wait for each
        for follower in self.followers:
            follower.stop(timeout=2.0)
        for poller in self.pollers:
            poller.stop(timeout=2.0)
        for collector in self.perf:
            collector.stop(timeout=2.0)
        self.tags.stop(timeout=2.0)
        self.renderer.stop()

    def is_ready(self) -> bool:
        """Every vCenter synced, and /metrics already shows it and the counters."""
        synced = all(inv.up and inv.synced for inv in self.inventories)
        return synced and self.renderer.shows_latest_sync() and self.counters_shown()

    def not_ready(self) -> bool:
        return not self.is_ready()

    def ready(self) -> bool:
        """:meth:`is_ready`, each turn to ready logged (the end of the start's timeline)."""
        ready = self.is_ready()
        if ready and not self._was_ready:
            log.info("ready: every vCenter synced, and /metrics shows it")
        self._was_ready = ready
        return ready

    def counters_shown(self) -> bool:
        """Every counters collector's first collection is in the published body (issue 15:
        a /readyz 200 before them let a fresh replica serve a body without counters). A
        collector whose first collection has not ended (a login retried at the next
        interval) keeps /readyz at 503; a collection whose queries failed counts (its
        errors are in the body)."""
        shown = self.renderer.extras_read_at
        return all((at := c.first_collected_at) is not None and shown >= at for c in self.perf)

    def status(self) -> list[dict[str, object]]:
        out = []
        for vc, inv in zip(self.config.vcenters, self.inventories, strict=True):
            out.append(
                {
                    "name": vc.name,
                    "url": vc.url,
                    "up": inv.up and inv.synced,
                    "last_success": inv.last_success,
                    "last_error": inv.last_error,
                    "sync_duration_seconds": inv.sync_duration,
                    "objects": inv.counts() if inv.up else {},
                }
            )
        return out


EXPORTER = web.AppKey("exporter", Exporter)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    exporter = app[EXPORTER]
    exporter.start()
    yield
    await asyncio.to_thread(exporter.stop)


async def metrics(request: web.Request) -> web.StreamResponse:
    """The latest body, or one shard of it with ``?shard=i&total_shards=n`` (see
    exposition.py); bad shard parameters are a 400 with a one-line reason.  Without them,
    a replica started with a shard (``--shard``/``exposition.shard``) serves that shard,
    with its own process metrics (each replica is a process of its own)."""
    exporter = request.app[EXPORTER]
    try:
        shard = parse_shard(request.query.get("shard"), request.query.get("total_shards"))
    except ShardError as exc:
        return web.Response(status=400, text=f"{exc}\n")
    replica = shard is None and exporter.default_shard is not None
    if replica:
        shard = exporter.default_shard
    gzipped = "gzip" in request.headers.get("Accept-Encoding", "")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + first_split_wait(request)
    while True:
        try:
            chunks = await asyncio.to_thread(
                exporter.renderer.body, gzipped=gzipped, shard=shard, own_process=replica
            )
            break
        except ShardAnswer as exc:  # 503 while a new total is first split, 429 if refused
            if isinstance(exc, ShardPending) and loop.time() < deadline:
                await asyncio.sleep(min(PENDING_POLL, max(0.0, deadline - loop.time())))
                continue
            return web.Response(
                status=exc.status, text=f"{exc}\n", headers={"Retry-After": str(exc.retry_after)}
            )
    headers = {"Content-Type": CONTENT_TYPE}
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    resp = web.StreamResponse(headers=headers)
    resp.content_length = chunks.length
    await resp.prepare(request)
    blocks = coalesce(chunks)
    if chunks.lazy:  # decompressed as written (a plain scrape of a gzip-only body): off the loop
        while (block := await asyncio.to_thread(next, blocks, None)) is not None:
            await resp.write(block)
    else:
        for block in blocks:
            await resp.write(block)
    await resp.write_eof()
    return resp


# How long a shard's first scrape waits for the packer's split: the scrape's own timeout
# (Prometheus sends it) less an offset to write the answer (the blackbox exporter's 0.5 s),
# else Prometheus' default 10 s timeout's; then a 503 that says why, before Prometheus
# gives up with a bare "context deadline exceeded".
TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"
TIMEOUT_OFFSET = 0.5
DEFAULT_SCRAPE_TIMEOUT = 10.0
PENDING_POLL = 0.05  # seconds between looks at the packer's progress (no thread held)
MAX_SCRAPE_TIMEOUT = 120.0  # a header beyond (or "inf") is a sender's, not a wait to honour


def first_split_wait(request: web.Request) -> float:
    try:
        timeout = float(request.headers.get(TIMEOUT_HEADER, DEFAULT_SCRAPE_TIMEOUT))
    except ValueError:
        timeout = DEFAULT_SCRAPE_TIMEOUT
    if not math.isfinite(timeout):
        timeout = DEFAULT_SCRAPE_TIMEOUT
    return min(MAX_SCRAPE_TIMEOUT, max(0.0, timeout - TIMEOUT_OFFSET))


WRITE_BLOCK = 4 << 20


def coalesce(chunks: Iterable[bytes], size: int = WRITE_BLOCK) -> Iterator[bytes]:
    """The chunks joined into blocks of about ``size`` bytes, one block at a time.

    Every write gives the GIL up and takes it back; while a busy thread holds it (a
    collection being parsed) each take waits a switch interval (5 ms), so 200 family-sized
    writes cost a scrape about a second. A few MB-sized blocks bound both that and the copy;
    made one by one as they are written, so a scrape never holds a second copy of the body
    (135 MB plain at 10,000 VMs with sensors).
    """
    group: list[bytes] = []
    n = 0
    for chunk in chunks:
        group.append(chunk)
        n += len(chunk)
        if n >= size:
            yield b"".join(group)
            group, n = [], 0
    if group:
        yield b"".join(group)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    exporter = request.app[EXPORTER]
    status = exporter.status()
    code = 200 if exporter.ready() else 503
    body = {"ready": code == 200, "counters_shown": exporter.counters_shown(), "vcenters": status}
    return web.json_response(body, status=code)


def _when(ts: object) -> str:
    if not isinstance(ts, float):
        return "never"
    return f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(ts))} UTC"


async def index(request: web.Request) -> web.Response:
    exporter = request.app[EXPORTER]
    rows = []
    for s in exporter.status():
        objects = s["objects"] if isinstance(s["objects"], dict) else {}
        counts = ", ".join(f"{k}: {v}" for k, v in objects.items()) or "-"
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(c))}</td>"
                for c in (
                    s["name"],
                    s["url"],
                    "synced" if s["up"] else "DOWN",
                    _when(s["last_success"]),
                    s["last_error"] or "",
                    counts,
                )
            )
            + "</tr>"
        )
    page = (
        "<!doctype html><html><head><title>vsphere-ha-stack exporter</title></head><body>"
        "<h1>vsphere-ha-stack exporter</h1>"
        '<p><a href="/metrics">/metrics</a> · <a href="/readyz">/readyz</a> · '
        '<a href="/healthz">/healthz</a></p>'
        "<table border=1 cellpadding=4><tr><th>vCenter</th><th>URL</th><th>sync</th>"
        "<th>last success</th><th>last error</th><th>inventory</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
    return web.Response(text=page, content_type="text/html")


def create_app(config: Config) -> web.Application:
    app = web.Application()
    app[EXPORTER] = Exporter(config)
    app.cleanup_ctx.append(_lifecycle)
    app.router.add_get("/", index)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


SWITCH_INTERVAL = 0.001


def tune_interpreter() -> None:
    """Hand the GIL over every 1 ms instead of 5 ms.

    A scrape gives the GIL up and takes it back at every socket write and thread hop; while
    the renderer or a collection holds it, each take waits up to a switch interval, so the
    interval multiplies into scrape latency. Threads that never wait on I/O lose a little
    throughput to the extra switches. And glibc's arenas are capped (heap.configure),
    before the threads start, so their freed transients are not spread over one arena each.
    """
    sys.setswitchinterval(SWITCH_INTERVAL)
    heap.configure()


def run(config: Config) -> None:
    """Serve until interrupted."""
    tune_interpreter()
    log.info(
        "exporter listening on http://%s/metrics for %s",
        config.listen,
        json.dumps([vc.name for vc in config.vcenters]),
    )
    web.run_app(
        create_app(config),
        host=config.listen_host,
        port=config.listen_port,
        print=None,
        access_log=None,
    )
