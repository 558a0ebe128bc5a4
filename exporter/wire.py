"""What each ``WaitForUpdatesEx`` answer cost the follower: when it arrived, its size, its parse.

Why: a change's way to ``/metrics`` has three legs: vCenter computing the answer, the
follower reading and deserialising it (pyvmomi, on a thread that shares the GIL with the
render, the counters and the poller), and the body being rebuilt
(``vsphere_render_lag_seconds``).  Only the last was measured, so seconds between the
simulator having a change and the follower holding it could not be told apart from the
simulator's own share (issue 15, item 2).  This module stamps the moment an answer's
headers arrive (vCenter has finished computing it), counts the bytes read and times the
read and parse up to the moment the update set is a Python object, per vCenter:

- ``vsphere_sync_last_update_timestamp_seconds``: when the last update set arrived;
- ``vsphere_sync_update_parse_seconds``: headers arrived -> update set deserialised;
- ``vsphere_sync_update_size_bytes``: the answer's body size.

The hook is a ``http.client.HTTPResponse`` subclass set as ``response_class`` on the
follower's own session's connections (pyvmomi reads every answer through ``getresponse``),
so nothing is re-implemented of pyvmomi's SOAP call.  One recorder per session, used by its
one follower thread only.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Sequence
from typing import Any

from .families import Family, escape

PARSE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SIZE_BUCKETS = tuple(float(1024 * 4**i) for i in range(10))  # 1 KiB .. 256 MiB


class Histogram:
    """A cumulative Prometheus histogram with fixed bounds (rendered per vCenter)."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * len(self.bounds)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1
        self.count += 1
        self.sum += value

    def add_to(self, fam: Family, base: str) -> None:
        """The ``_bucket``/``_sum``/``_count`` lines under labels ``base``."""
        for bound, n in zip(self.bounds, self.counts, strict=True):
            fam.lines.append(f'{fam.name}_bucket{{{base},le="{_le(bound)}"}} {n}\n')
        fam.lines.append(f'{fam.name}_bucket{{{base},le="+Inf"}} {self.count}\n')
        fam.lines.append(f"{fam.name}_sum{{{base}}} {self.sum!r}\n")
        fam.lines.append(f"{fam.name}_count{{{base}}} {self.count}\n")


def _le(bound: float) -> str:
    """Short where exact (``0.1``, ``1``), else the full value: ``%g`` alone would write
    1 MiB as ``1.04858e+06``, a bound no bucket has."""
    short = f"{bound:g}"
    return short if float(short) == bound else repr(float(bound))


class AnswerStats:
    """One vCenter's answers, kept on its :class:`~exporter.inventory.Inventory` (whose
    lock guards it: the follower writes, the renderer reads)."""

    def __init__(self) -> None:
        self.last_update: float | None = None  # Unix seconds the last update set arrived
        self.parse = Histogram(PARSE_BUCKETS)
        self.size = Histogram(SIZE_BUCKETS)

    def observe(self, arrived: float, parse_seconds: float, size: int) -> None:
        self.last_update = arrived
        self.parse.observe(max(0.0, parse_seconds))
        self.size.observe(float(size))


def answer_families(inventories: Sequence[Any]) -> list[Family]:
    """The three answer families for ``inventories`` (each with ``vcenter``, ``lock`` and
    ``answers``); a vCenter with no answer yet has no timestamp sample."""
    last = Family(
        "vsphere_sync_last_update_timestamp_seconds",
        "When the follower last received a WaitForUpdatesEx update set (its headers "
        "arrived), Unix seconds.",
    )
    parse = Family(
        "vsphere_sync_update_parse_seconds",
        "From a WaitForUpdatesEx answer's headers arriving to its update set deserialised.",
        "histogram",
    )
    size = Family(
        "vsphere_sync_update_size_bytes",
        "Body size of the WaitForUpdatesEx answers carrying an update set.",
        "histogram",
    )
    for inv in inventories:
        base = f'vcenter="{escape(inv.vcenter)}"'
        with inv.lock:
            stats: AnswerStats = inv.answers
            if stats.last_update is not None:
                last.add(base, stats.last_update)
            stats.parse.add_to(parse, base)
            stats.size.add_to(size, base)
    return [last, parse, size]


class Recorder:
    """Arrival time and size of the latest answer on one pyvmomi session's connections."""

    def __init__(self) -> None:
        self.arrived: float | None = None  # monotonic
        self.arrived_wall: float | None = None
        self.bytes = 0

    def reset(self) -> None:
        self.arrived = self.arrived_wall = None
        self.bytes = 0

    def answer(self, done: float) -> tuple[float, float, int]:
        """(arrived Unix seconds, seconds from arrival to ``done`` (monotonic), bytes) of
        the answer just read; without the hook, arrival is taken as ``done``."""
        if self.arrived is None or self.arrived_wall is None:
            return time.time(), 0.0, self.bytes
        return self.arrived_wall, done - self.arrived, self.bytes

    def response_class(self) -> type[http.client.HTTPResponse]:
        recorder = self

        class TimedResponse(http.client.HTTPResponse):
            """Stamps the headers' arrival and counts the body bytes pyvmomi reads."""

            def begin(self) -> None:
                super().begin()
                recorder.arrived = time.monotonic()
                recorder.arrived_wall = time.time()
                recorder.bytes = 0

            def read(self, amt: int | None = None) -> bytes:
                data = super().read(amt)
                recorder.bytes += len(data)
                return data

        return TimedResponse


def install(si: Any) -> Recorder:
    """A :class:`Recorder` hooked into ``si``'s connections, new and pooled (a stub without
    pyvmomi's pool, as in a fake, just gets an unhooked recorder)."""
    recorder = Recorder()
    stub = getattr(si, "_stub", None)
    scheme = getattr(stub, "scheme", None)
    if stub is None or scheme is None:
        return recorder
    cls = recorder.response_class()

    def hooked(*args: Any, **kwargs: Any) -> Any:
        conn = scheme(*args, **kwargs)
        conn.response_class = cls
        return conn

    stub.scheme = hooked
    for conn, _idle in list(getattr(stub, "pool", None) or []):
        conn.response_class = cls
    return recorder
