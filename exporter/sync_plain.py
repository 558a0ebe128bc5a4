"""The follower's plain-XML initial sync (sync_soap.py) on its session and parse worker.

Kept apart from sync.py's loop: it owns a SOAP session on the follower's cookie and, with
``sync.poll_worker_process``, a worker process of its own that lives only for the sync
(the sync is rare; afterwards the follower's small answers go through pyVmomi, and ~37 MiB
of worker would idle). Without the worker the same XML is parsed in the follower's thread,
still pipelined with the next page's request.
"""

from __future__ import annotations

import logging
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
    """One initial sync as plain XML; :meth:`close` ends its session and worker."""

    def __init__(
        self, si: Any, session: SoapSession, worker: ParseWorker | None, stop: threading.Event
    ) -> None:
        self.si = si
        self.session = session
        self.worker = worker
        self.stop = stop
        self._warm = threading.Event()  # the worker process is up: pages go to it
        self._warming: threading.Thread | None = None

    @classmethod
    def open(
        cls, vc: VCenterConfig, si: Any, sync: SyncConfig, stop: threading.Event
    ) -> PlainSync | None:
        """None when ``si``'s session has no cookie to reuse (pyVmomi then syncs)."""
        if not SoapSession.usable(si):
            return None
        session = SoapSession.for_vcenter(si, vc)
        worker = ParseWorker(4 * vc.timeout_seconds) if sync.poll_worker_process else None
        return cls(si, session, worker, stop)

    def parse(self, body: bytes) -> UpdatePage | None:
        """One page in the worker once it is up, else here; any failure to read it is
        PlainSyncFailed. Spawning the worker (a process importing pyVmomi) takes a second
        or more on a loaded machine, longer than a small inventory's whole sync: it is
        started only when the first page says more follow, and pages are parsed here
        until it answers, so its start never delays a page."""
        try:
            if self.worker is None or not self._warm.is_set():
                page = parse_updates(body)
                if page is not None and page[1]:
                    self._start_worker()
                return page
            got: UpdatePage | None = self.worker.call(parse_updates_traced, body)
            return got
        except (BrokenExecutor, FutureTimeout) as exc:
            raise PlainSyncFailed(f"parse worker died or hung: {exc!r}") from exc
        except Exception as exc:  # noqa: BLE001 - unreadable XML, an unexpected shape
            raise PlainSyncFailed(f"page not readable as plain XML: {exc!r}") from exc

    def _start_worker(self) -> None:
        worker = self.worker
        if worker is None or self._warming is not None:
            return

        def warm() -> None:
            try:
                worker.call(worker_pid)
            except Exception:  # noqa: BLE001 - no worker: the pages stay in this process
                return
            self._warm.set()

        self._warming = threading.Thread(target=warm, name="vha-sync-worker-start", daemon=True)
        self._warming.start()

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
        timings: list[float] = []

        def parse(body: bytes) -> UpdatePage | None:
            begun = time.monotonic()
            page = self.parse(body)
            timings.append(time.monotonic() - begun)
            return page

        for page, size in pipelined_pages(self.session, request, parse, self.stop):
            yield page, size, timings.pop(0)  # the parse thread may be a page ahead

    def close(self) -> None:
        """Ends the session's connections and the worker, and drops pyVmomi's pooled
        connections: idle through the whole sync, the server may have closed them, and
        pyVmomi would send the follower's next call on one (SSLEOFError on the simulator
        after a 10,000-VM sync); emptied, its next call opens a fresh one."""
        self.session.close()
        drop = getattr(getattr(self.si, "_stub", None), "DropConnections", None)
        if callable(drop):
            drop()
        if self.worker is not None:
            self.worker.close()
