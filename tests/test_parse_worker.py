"""exporter/perf_worker.ParseWorker shared by the counters and the poll (issue 15)."""

from __future__ import annotations

import threading
from concurrent.futures import BrokenExecutor

import pytest

from exporter.perf_worker import ParseWorker

from .worker_fns import sleep_then


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
