"""exporter/heap.py: the free heap a render's transients leave goes back to the system."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter import heap


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(heap._TRIM is None, reason="not glibc")  # noqa: SLF001
def test_freed_heap_is_returned_and_trims_are_spaced(monkeypatch: pytest.MonkeyPatch) -> None:
    # The test's fake clock must not stay behind for the renderer's trims in later tests.
    monkeypatch.setattr(heap, "_last", heap._last)  # noqa: SLF001
    kept, transient = [], []
    for i in range(2000):  # 120 MB in blocks glibc serves from its heap, a few kept
        transient.append(bytearray(60_000))
        if i % 50 == 0:
            kept.append(bytearray(60_000))
    del transient
    before = _rss_mib()
    assert heap.trim(now=1e9, min_interval=0)
    assert before - _rss_mib() > 60, "the freed blocks stayed in the process"
    assert not heap.trim(now=1e9 + 1, min_interval=10)  # within the interval: not again
    assert heap.trim(now=1e9 + 11, min_interval=10)
    assert kept
