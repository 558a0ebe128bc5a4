"""One background thread and vCenter session per vCenter for what must be polled.

The properties vCenter never announces (quickStats, overallStatus: poller.py) every
``sync.poll_interval_seconds``, triggered alarms (not notified) and licences (not inventory)
are read with
``RetrievePropertiesEx`` on schedules of their own (``collectors.alarms.interval_seconds``,
``collectors.licenses.interval_seconds``); each result is published as an immutable
snapshot on the vCenter's :class:`Inventory` (which wakes the renderer only when it
changed) and read by a collector, never on the scrape path.  A failing task keeps its last
snapshot, marked stale, and the collector reports ``vsphere_scrape_collector_success`` 0.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from pyVmomi import vim

from exporter.collectors_config import CollectorsConfig
from vcenter.config import SyncConfig, VCenterConfig
from vcenter.session import classify, connect, describe, disconnect

from .alarms import AlarmSnapshot, read_alarms
from .inventory import Inventory
from .licenses import LicenseSnapshot, read_licenses
from .perf_soap import SoapSession
from .perf_worker import ParseWorker
from .poller import SoapPoll, poll
from .snapshot_sizes import CHECK_SECONDS, SizePoll, SnapshotSizes
from .sync import inventory_view

log = logging.getLogger(__name__)


@dataclass
class Task:
    name: str
    interval: float
    run: Callable[[Any, Inventory], None]  # (content, inventory); raises on failure
    fail: Callable[[Inventory, str], None]  # keep the last snapshot, marked stale
    due: float = 0.0
    reported: bool = False
    close: Callable[[], None] | None = None  # at stop: what the task started (a process)


def _publish(inv: Inventory, attr: str, snapshot: Any) -> None:
    if snapshot != getattr(inv, attr):  # re-render only when something changed
        setattr(inv, attr, snapshot)
        inv.touch()


def _alarms(content: Any, inv: Inventory) -> None:
    names = inv.alarms.names if inv.alarms is not None else {}
    states, names = read_alarms(content, names)
    _publish(inv, "alarms", AlarmSnapshot(ok=True, states=states, names=names))


def _alarms_failed(inv: Inventory, message: str) -> None:
    prev = inv.alarms
    stale = AlarmSnapshot(
        ok=False,
        states=prev.states if prev is not None else (),
        names=prev.names if prev is not None else {},
        error=message,
    )
    _publish(inv, "alarms", stale)


def _licenses(content: Any, inv: Inventory) -> None:
    _publish(inv, "licenses", LicenseSnapshot(ok=True, licenses=read_licenses(content)))


def _licenses_failed(inv: Inventory, message: str) -> None:
    prev = inv.licenses
    kept = prev.licenses if prev is not None else ()
    _publish(inv, "licenses", LicenseSnapshot(ok=False, licenses=kept, error=message))


def _snapshot_sizes_failed(inv: Inventory, message: str) -> None:
    prev = inv.snapshot_sizes
    kept = prev.sizes if prev is not None else ()
    _publish(inv, "snapshot_sizes", SnapshotSizes(ok=False, sizes=kept, error=message))


HOLD_INTERVALS = 3  # the first poll waits for /readyz at most this many intervals


class QuickStats:
    """The poll of never-announced properties (poller.py) on the poller's session: as plain
    XML over that session's cookie, parsed in a worker process when
    ``sync.poll_worker_process`` (exporter/poll_soap.py); through pyVmomi when the session
    has no cookie to reuse, or ``vc`` is not known (tests)."""

    def __init__(
        self,
        vc: VCenterConfig | None,
        sync: SyncConfig,
        shared: ParseWorker | None = None,
        waiting: Callable[[], bool] | None = None,
    ) -> None:
        self.vc = vc
        # The counters' worker when there is one (one process fewer, ~37 MiB at 10,000
        # VMs; the poll's pages queue between its batches), else one of its own. Nothing
        # parses a page for 4 x the timeout: a hung worker fails one poll and is replaced.
        timeout = 4 * (vc.timeout_seconds if vc is not None else 30.0)
        self.worker: ParseWorker | None = None
        if sync.poll_worker_process:
            self.worker = shared if shared is not None else ParseWorker(timeout)
        self._owns_worker = shared is None
        self._soap: SoapSession | None = None
        self.interval = sync.poll_interval_seconds
        # True while the exporter is not ready (app.py): the first poll then waits for the
        # way to /readyz, up to HOLD_INTERVALS intervals after the sync (see fresh).
        self.waiting: Callable[[], bool] = waiting or (lambda: False)

    def _session(self, content: Any) -> SoapPoll | None:
        vc = self.vc
        stub_owner = SimpleNamespace(_stub=getattr(content.propertyCollector, "_stub", None))
        if vc is None or not SoapSession.usable(stub_owner):
            return None
        cookie = str(stub_owner._stub.cookie)  # noqa: SLF001
        if self._soap is None or self._soap.cookie != cookie:  # a new login: a new session
            if self._soap is not None:
                self._soap.close()
            self._soap = SoapSession.for_vcenter(stub_owner, vc)
        return SoapPoll(self._soap, self.worker)

    def fresh(self, inv: Inventory) -> bool:
        """Nothing to poll: no image yet (every value of a poll would be dropped, the
        objects unknown), or one synced less than an interval ago (the sync read these
        properties too). At 40,000 VMs a poll is 430 pages for the simulator or vCenter and
        the parse worker; polled during the initial sync (every interval of its minute),
        they only slowed the sync and the way to /readyz. Until the exporter is ready
        (``waiting``), no poll either, within HOLD_INTERVALS of the sync: its pages queue in
        the counters' worker with the first collection /readyz waits for."""
        synced = inv.synced_at
        if synced is None:
            return True
        age = time.monotonic() - synced
        return age < self.interval or (age < HOLD_INTERVALS * self.interval and self.waiting())

    def __call__(self, content: Any, inv: Inventory) -> None:
        if self.fresh(inv):
            return
        view = inventory_view(content)
        try:
            poll(content.propertyCollector, view, inv, self._session(content))
        finally:
            view.DestroyView()

    def close(self) -> None:
        if self._soap is not None:
            self._soap.close()
        if self.worker is not None and self._owns_worker:  # a shared one: its owner's
            self.worker.close()


def _quickstats_failed(inv: Inventory, message: str) -> None:
    """Nothing to mark: the last values read stay, and the next poll refreshes them."""


def tasks_for(
    config: CollectorsConfig,
    sync: SyncConfig | None = None,
    vc: VCenterConfig | None = None,
    worker: ParseWorker | None = None,
    waiting: Callable[[], bool] | None = None,
) -> list[Task]:
    """The vCenter's polled tasks; ``worker``: a parse worker to share (the counters');
    ``waiting``: True while the exporter is not ready (QuickStats.fresh)."""
    out = []
    if sync is not None:
        # First poll one interval after the follower's sync, which reads everything.
        quickstats = QuickStats(vc, sync, worker, waiting)
        out.append(
            Task(
                "quickstats",
                sync.poll_interval_seconds,
                quickstats,
                _quickstats_failed,
                due=time.monotonic() + sync.poll_interval_seconds,
                close=quickstats.close,
            )
        )
    if config.alarms.enabled:
        out.append(Task("alarms", config.alarms.interval_seconds, _alarms, _alarms_failed))
    if config.licenses.enabled:
        out.append(Task("licenses", config.licenses.interval_seconds, _licenses, _licenses_failed))
    if config.snapshot_sizes.enabled:
        sizes = SizePoll(config.snapshot_sizes.interval_seconds)

        def _snapshot_sizes(content: Any, inv: Inventory) -> None:
            if not (inv.up and inv.synced):
                return  # nothing to look at before the follower's first sync
            reading = sizes.run(content, inv)
            if reading is not None:
                _publish(inv, "snapshot_sizes", reading)

        check = min(CHECK_SECONDS, config.snapshot_sizes.interval_seconds)
        out.append(Task("snapshot_sizes", check, _snapshot_sizes, _snapshot_sizes_failed))
    return out


class Poller:
    """Runs the polled tasks of one vCenter in a thread with a session of its own."""

    def __init__(
        self, vc: VCenterConfig, inventory: Inventory, tasks: list[Task], sync: SyncConfig
    ) -> None:
        self.vc = vc
        self.inventory = inventory
        self.tasks = tasks
        self.sync = sync
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.tasks:
            return
        self._thread = threading.Thread(
            target=self.run, name=f"vha-poll-{self.vc.name}", daemon=True
        )
        self._thread.start()

    def signal_stop(self) -> None:
        self._stop.set()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        for task in self.tasks:
            if task.close is not None:
                task.close()

    def _fail_all(self, exc: BaseException) -> None:
        message = describe(exc)
        for task in self.tasks:
            self._report(task, f"(reason={classify(exc)}): {message}")
            task.fail(self.inventory, message)

    def _report(self, task: Task, message: str) -> None:
        if not task.reported:  # once per outage, not once per poll
            log.warning("vcenter=%s reading %s failed %s", self.vc.name, task.name, message)
            task.reported = True

    def run(self) -> None:
        backoff = self.sync.backoff_initial_seconds
        while not self._stop.is_set():
            si = None
            try:
                si = connect(self.vc, timeout=self.vc.timeout_seconds)
                content = si.RetrieveContent()
                backoff = self.sync.backoff_initial_seconds
                while not self._stop.is_set():
                    self._run_due(content)
                    nxt = min(t.due for t in self.tasks)
                    self._stop.wait(max(0.0, nxt - time.monotonic()))
            except Exception as exc:  # noqa: BLE001 - the session is gone: report, retry
                if self._stop.is_set():
                    break
                self._fail_all(exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.sync.backoff_max_seconds)
            finally:
                disconnect(si)

    def _run_due(self, content: Any) -> None:
        for task in self.tasks:
            now = time.monotonic()
            if now < task.due:
                continue
            task.due = now + task.interval
            try:
                task.run(content, self.inventory)
            except Exception as exc:  # noqa: BLE001 - one task's failure leaves the others
                if isinstance(exc, vim.fault.NotAuthenticated | ConnectionError | OSError):
                    raise  # the session or connection: reconnect
                self._report(task, f"(reason={classify(exc)}): {describe(exc)}")
                task.fail(self.inventory, describe(exc))
                continue
            if task.reported:
                log.info("vcenter=%s %s readable again", self.vc.name, task.name)
                task.reported = False
