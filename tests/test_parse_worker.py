"""exporter/perf_worker.ParseWorker shared by the counters and the poll (issue 15)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import BrokenExecutor

import pytest

from exporter import heap
from exporter.perf_worker import TRIM_INTERVAL, ParseWorker

from .worker_fns import fragment_heap, rss_kib, sleep_then


def test_a_call_queued_behind_another_is_not_declared_hung() -> None:
    """The timeout is for one parse: waiting behind the other user's batch is not a hang
    (it used to time out and kill the worker in the middle of the other's batch)."""
    worker = ParseWorker(timeout=3.0)
    try:
        worker.call(sleep_then, 0, 0)  # the process is up before the timing starts
        results: dict[str, object] = {}

        def first() -> None:
            results["first"] = worker.call(sleep_then, 2.0, 1)

        t = threading.Thread(target=first)
        t.start()
        try:
            results["second"] = worker.call(sleep_then, 1.5, 2)
        except TimeoutError as exc:  # concurrent.futures.TimeoutError is TimeoutError
            results["second"] = exc
        t.join()
        assert results == {"first": 1, "second": 2}
    finally:
        worker.close()


def test_no_worker_is_started_after_close() -> None:
    worker = ParseWorker(timeout=5.0)
    worker.call(sleep_then, 0, 0)
    worker.close()
    with pytest.raises(BrokenExecutor, match="closed"):
        worker.call(sleep_then, 0, 1)
    assert worker._pool is None  # noqa: SLF001


@pytest.mark.skipif(heap._TRIM is None, reason="not glibc")  # noqa: SLF001
def test_the_worker_hands_a_calls_freed_heap_back() -> None:
    """A batch's parse frees what it built, and glibc keeps it: the worker trims its heap
    after a call (at most every TRIM_INTERVAL seconds), so its RSS falls back."""
    worker = ParseWorker(60.0)
    try:
        base = worker.call(rss_kib)
        time.sleep(TRIM_INTERVAL + 0.1)  # the first call's trim is not the last
        worker.call(fragment_heap, 2000)  # ~120 MB freed, 2.4 MB kept
        after = worker.call(rss_kib)
    finally:
        worker.close()
    assert after - base < 40_000, (base, after)
