"""Parse and convert ``QueryPerf`` answers in a worker process, off the exporter's GIL.

At 10,000 VMs a collection is some 200,000 metric series in ~40 MB of XML every 20 s.
ElementTree's C parser holds the GIL for each slice it is fed, and walking the elements
is Python; measured with ``py-spy --gil`` during collections, parsing held the exporter's
GIL 39 % of the time, and every ``/metrics`` scrape (the event loop, the socket writes)
queued behind it. A spawned process of its own does that work on the other core: the
collector's threads still talk to vCenter (the session, faults and retries stay where
they were) and hand the answer's bytes over; back come only the converted values, one
small dict per entity (the pickle is a fraction of the XML).

The poller uses the same worker class for the pages of its ``RetrievePropertiesEx``
(poll_soap.py, ``sync.poll_worker_process``): :meth:`ParseWorker.call` runs any
module-level function there.

Spawned, not forked: the exporter runs threads, and a forked child inherits their locks.
A worker that dies or hangs is replaced on the next batch; the batch counts as failed.
The worker ends with the exporter: the collector's ``stop`` terminates it, and it watches
its parent and exits when the exporter is gone (killed, or exited mid-collection), since a
``ProcessPoolExecutor`` worker otherwise waits on its queue forever.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

log = logging.getLogger(__name__)

TargetRow = tuple[str, str, str, int]  # kind, moid, name, vcpus (perf.Target's fields)
# moid, converted values, a host's raw datastore counters per instance (perf_datastores)
Rows = list[tuple[str, dict[str, float], dict[str, dict[str, float]]]]


def parse_and_convert(
    body: bytes,
    targets: Sequence[TargetRow],
    names: Mapping[int, str],
    counter_keys: Sequence[str],
) -> tuple[int, Rows]:
    """In the worker: a QueryPerf answer -> (worker pid, [(moid, values, datastores)]).

    The per-datastore values travel too: the per-datastore families are built from them
    in the exporter (dropping them here left those families empty). The answer is
    scanned (perf_scan.py, a fraction of an XML parse's CPU) unless it is not in the shape
    the scanner reads; then ElementTree parses it."""
    from .perf import Target, convert_entries, metric_entries  # noqa: PLC0415 - perf imports this module
    from .perf_counters import KINDS, counters_for  # noqa: PLC0415
    from .perf_scan import scan_entries  # noqa: PLC0415
    from .perf_soap import parse_response  # noqa: PLC0415

    by_moid = {row[1]: Target(*row) for row in targets}
    counters = {kind: counters_for(kind, tuple(counter_keys)) for kind in KINDS}
    entries = scan_entries(body, names)
    if entries is None:
        entries = list(metric_entries(parse_response(body), names))
    samples = convert_entries(entries, by_moid, counters, 0.0)
    return os.getpid(), [(s.target.moid, s.values, s.datastores) for s in samples]


TRIM_INTERVAL = 1.0  # seconds between two of the worker's heap trims


def run_and_trim(fn: Callable[..., tuple[int, Any]], *args: Any) -> tuple[int, Any]:
    """In the worker: ``fn(*args)``, then its freed heap back to the system (heap.trim, at
    most every :data:`TRIM_INTERVAL`: a collection's batches come in bursts, and what the
    last ones of a burst leave is a batch or two). A parse builds and frees MBs at a time,
    which glibc otherwise keeps in the worker for good (test: 16 -> 133 MB after 120 MB
    freed)."""
    from . import heap  # noqa: PLC0415 - the worker's, on its first call

    try:
        return fn(*args)
    finally:
        heap.trim(min_interval=TRIM_INTERVAL)


def worker_pid() -> tuple[int, int]:
    """In the worker process: its pid, twice (a call that only starts the process)."""
    return os.getpid(), os.getpid()


PARENT_CHECK_SECONDS = 1.0


def watch_parent(parent: int) -> None:
    """In the worker (its initializer): exit as soon as ``parent`` is no longer its parent."""

    def run() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=run, name="vha-perf-worker-parent", daemon=True).start()


class ParseWorker:
    """One worker process, started on first use; thread-safe (batches queue for it)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout  # a parse of one batch never takes this long
        self.pid: int | None = None  # the process that parsed the last batch
        self.parsed_total = 0
        self._lock = threading.Lock()
        # One call at a time: the counters and the poll may share this worker, and a call's
        # timeout must measure its own parse, not the wait behind the other's batch (which
        # would declare a healthy worker hung and kill it in the middle of that batch).
        self._calls = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:  # a call in flight at shutdown must not start a new process
                raise BrokenExecutor("parse worker closed")
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=watch_parent,
                    initargs=(os.getpid(),),
                )
            return self._pool

    def run(
        self,
        body: bytes,
        targets: Sequence[TargetRow],
        names: Mapping[int, str],
        counter_keys: Sequence[str],
    ) -> Rows:
        rows: Rows = self.call(parse_and_convert, body, list(targets), dict(names), counter_keys)
        return rows

    def call(self, fn: Callable[..., tuple[int, Any]], *args: Any) -> Any:
        """``fn(*args)`` in the worker; ``fn`` returns (the worker's pid, the result).

        Raises ``BrokenExecutor`` (the process died) or ``TimeoutError`` (it hung past
        ``timeout``), after which the next call starts a new process."""
        with self._calls:
            pool = self._executor()
            try:  # a pool whose process died refuses the submit itself
                future = pool.submit(run_and_trim, fn, *args)
                pid, result = future.result(timeout=self.timeout)
            except (BrokenExecutor, FutureTimeout):
                if not self._closed:  # closed under a call in flight: nothing to report
                    log.warning("parse worker died or hung; starting a new one")
                self._reset(pool)
                raise
        with self._lock:
            self.pid = pid
            self.parsed_total += 1
        return result

    def _reset(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        _kill(pool)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            _kill(pool)


def _kill(pool: ProcessPoolExecutor) -> None:
    """Shut a pool down without waiting, terminating its process (a hung parse)."""
    processes: dict[Any, Any] = dict(getattr(pool, "_processes", None) or {})
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes.values():
        if proc.is_alive():
            proc.terminate()
