"""The follower's plain-XML initial sync (sync_soap.py) on its session and parse workers.

Kept apart from sync.py's loop: it owns a SOAP session on the follower's cookie and, with
``sync.poll_worker_process``, ``sync.initial_sync_workers`` worker processes of its own
that live only for the sync (the sync is rare; afterwards the follower's small answers go
through pyVmomi, and ~37 MiB a worker would idle). They parse that many pages at once: at
40,000 VMs one worker was the sync's bottleneck, at ~0.9 core while vCenter (the
simulator) and the exporter's process waited on it. Without workers the same XML is
parsed in the follower's process, still pipelined with the next page's request.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import BrokenExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from functools import partial
from typing import Any

from vcenter.config import SyncConfig, VCenterConfig

from .inventory import Inventory, ManagedObject, apply_object_updates
from .perf_soap import SoapSession
from .perf_worker import ParseWorker, worker_pid
from .sync_soap import (
    PlainSyncFailed,
    UpdatePage,
    interned,
    parse_updates,
    parse_updates_traced,
    pipelined_pages,
    wait_body,
)

log = logging.getLogger(__name__)
PAGE_OBJECTS = 500  # as sync.PAGE_OBJECTS: vCenter caps a page at 100 anyway


class PlainSync:
    """One initial sync as plain XML; :meth:`close` ends its session and workers."""

    def __init__(
        self,
        si: Any,
        session: SoapSession,
        workers: list[ParseWorker],
        stop: threading.Event,
    ) -> None:
        self.si = si
        self.session = session
        self.workers = workers
        self.stop = stop
        self._free: queue.Queue[ParseWorker] = queue.Queue()  # workers up and idle
        self._up = threading.Event()  # some worker is up: pages wait for one, not parse here
        self._starting = threading.Lock()
        self._warming: list[threading.Thread] = []

    @classmethod
    def open(
        cls, vc: VCenterConfig, si: Any, sync: SyncConfig, stop: threading.Event
    ) -> PlainSync | None:
        """None when ``si``'s session has no cookie to reuse (pyVmomi then syncs)."""
        if not SoapSession.usable(si):
            return None
        session = SoapSession.for_vcenter(si, vc)
        count = sync.initial_sync_workers if sync.poll_worker_process else 0
        workers = [ParseWorker(4 * vc.timeout_seconds) for _ in range(count)]
        return cls(si, session, workers, stop)

    def parse(self, body: bytes) -> UpdatePage | None:
        """One page in an idle worker once one is up, else here; any failure to read it is
        PlainSyncFailed. Thread-safe: the pages are parsed ``len(workers)`` at a time
        (sync_soap.pipelined_pages). Spawning a worker (a process importing pyVmomi) takes
        a second or more on a loaded machine, longer than a small inventory's whole sync:
        the workers are started only when the first page says more follow, and pages are
        parsed here until one answers, so their start never delays a page."""
        try:
            if not self.workers or self._free.empty() and not self._up.is_set():
                page = parse_updates(body)
                if page is not None and page[1]:
                    self._start_worker()
                return page
            worker = self._free.get()
            try:
                got: UpdatePage | None = worker.call(parse_updates_traced, body)
            finally:
                self._free.put(worker)
            return got
        except (BrokenExecutor, FutureTimeout) as exc:
            raise PlainSyncFailed(f"parse worker died or hung: {exc!r}") from exc
        except Exception as exc:  # noqa: BLE001 - unreadable XML, an unexpected shape
            raise PlainSyncFailed(f"page not readable as plain XML: {exc!r}") from exc

    def _start_worker(self) -> None:
        with self._starting:
            if self._warming or not self.workers:
                return
            for worker in self.workers:
                thread = threading.Thread(
                    target=self._warm, args=(worker,), name="vha-sync-worker-start", daemon=True
                )
                self._warming.append(thread)
                thread.start()

    def _warm(self, worker: ParseWorker) -> None:
        try:
            worker.call(worker_pid)
        except Exception:  # noqa: BLE001 - not this worker: the others, or this process
            return
        self._free.put(worker)
        self._up.set()

    def wait_warm(self, timeout: float) -> bool:
        """Start the workers and wait until every one is up (tests, benchmarks)."""
        self._start_worker()
        deadline = time.monotonic() + timeout
        for thread in list(self._warming):
            thread.join(max(0.0, deadline - time.monotonic()))
        return self._free.qsize() == len(self.workers)

    def run(
        self, collector: Any, inventory: Inventory
    ) -> tuple[dict[str, ManagedObject], dict[int, str], str]:
        """Every page folded into a new image: (objects, custom field names, version)."""
        from pyVmomi import vmodl  # noqa: PLC0415

        options = vmodl.query.PropertyCollector.WaitOptions(
            maxWaitSeconds=0, maxObjectUpdates=PAGE_OBJECTS
        )
        objects: dict[str, ManagedObject] = {}
        fields: dict[int, str] = {}
        version = ""
        request = partial(wait_body, collector, options=options)
        begun = time.monotonic()
        for page, size, parse_seconds in self._timed(request):
            version, _truncated, updates = page
            del page
            if not objects:  # the start of the timeline to /readyz (docs/exporter.md)
                log.info(
                    "vcenter=%s initial sync: first page (%d objects) after %.2fs",
                    inventory.vcenter,
                    len(updates),
                    time.monotonic() - begun,
                )
            with inventory.lock:
                inventory.answers.observe(time.time(), parse_seconds, size)
            apply_object_updates(objects, fields, interned(updates), inventory.observe)
            del updates
        return objects, fields, version

    def _timed(self, request: Any) -> Any:
        """The pages with their size and the seconds their parse took."""
        timings: dict[int, float] = {}  # id(page) -> its parse's seconds

        def parse(body: bytes) -> UpdatePage | None:
            begun = time.monotonic()
            page = self.parse(body)
            if page is not None:
                timings[id(page)] = time.monotonic() - begun
            return page

        parallel = max(1, len(self.workers))
        for page, size in pipelined_pages(self.session, request, parse, self.stop, parallel):
            yield page, size, timings.pop(id(page), 0.0)

    def close(self) -> None:
        """Ends the session's connections and the worker, and drops pyVmomi's pooled
        connections: idle through the whole sync, the server may have closed them, and
        pyVmomi would send the follower's next call on one (SSLEOFError on the simulator
        after a 10,000-VM sync); emptied, its next call opens a fresh one."""
        self.session.close()
        drop = getattr(getattr(self.si, "_stub", None), "DropConnections", None)
        if callable(drop):
            drop()
        for worker in self.workers:
            worker.close()
