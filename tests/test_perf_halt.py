"""A vCenter lost in the middle of a performance collection ends it: the batches not yet
sent are not sent, and one log line per reason says so (issue 15 at 40,000 VMs: a
warning per batch, hundreds per collection of a vCenter that restarted, and the same
again every interval). A simulator of its own (conftest's): test_perf.py's shared one compares two
reads of time-varying sample data, which the extra queries here moved about."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from exporter.perf import targets_of
from sim.harness import Simulator

from .test_perf import Running


@pytest.mark.parametrize("concurrent", [1, 3])
def test_a_lost_connection_ends_the_collection_with_one_log_line(
    sim: Simulator,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    concurrent: int,
) -> None:
    """Every batch in flight fails with a reset connection; none is sent after."""
    with Running(sim, batch_size=1, max_concurrent_queries=concurrent) as run:
        assert run.collector.collect_once()
        targets = targets_of(run.inventory, hosts=run.perf.hosts, vms=run.perf.vms) or []
        batches = len(run.collector._batches(targets))  # noqa: SLF001
        assert batches > concurrent + 1
        calls: list[int] = []
        gate = threading.Barrier(concurrent, timeout=5)

        def lost(*_args: Any) -> Any:
            calls.append(1)
            if len(calls) <= concurrent:
                gate.wait()  # the first batches are all in flight, as they would be
            raise ConnectionResetError("Connection reset by peer")

        monkeypatch.setattr(run.collector, "_samples", lost)
        caplog.set_level(logging.WARNING, logger="exporter.perf")
        last = run.collector.last_success
        assert run.collector.collect_once()
        assert len(calls) == concurrent  # those in flight; none sent after the first failed
        lines = [r.getMessage() for r in caplog.records if "QueryPerf failed" in r.getMessage()]
        assert len(lines) == 1, lines
        assert "reason=connect" in lines[0]
        assert f"{concurrent} of {batches} batches" in lines[0]
        assert f"{batches - concurrent} not sent" in lines[0]
        assert run.collector.errors_total["connect"] == concurrent
        assert run.collector.last_success == last  # not a success
