"""The exporter's own share of a change's way to ``/metrics``, as metrics of its own."""

from __future__ import annotations

from .families import Family


class LagHistogram:
    """``vsphere_render_lag_seconds``: how long an inventory change waited for the body.

    The exporter's own share of a change's way to ``/metrics`` (vCenter's share is before
    the update reaches the follower): from the update being applied to the first body
    rendered after it being published.  Observed after publishing, so a body shows the lag
    of the renders before it.
    """

    BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0)

    def __init__(self) -> None:
        self.counts = [0] * len(self.BUCKETS)
        self.count = 0
        self.sum = 0.0
        self.last = 0.0

    def observe(self, seconds: float) -> None:
        for i, bound in enumerate(self.BUCKETS):
            if seconds <= bound:
                self.counts[i] += 1
        self.count += 1
        self.sum += seconds
        self.last = seconds

    def family(self) -> Family:
        fam = Family(
            "vsphere_render_lag_seconds",
            "From a vCenter update set read by the follower (or another inventory change) to "
            "the first /metrics body showing it published.",
            "histogram",
        )
        for bound, n in zip(self.BUCKETS, self.counts, strict=True):
            fam.lines.append(f'vsphere_render_lag_seconds_bucket{{le="{bound}"}} {n}\n')
        fam.lines.append(f'vsphere_render_lag_seconds_bucket{{le="+Inf"}} {self.count}\n')
        fam.lines.append(f"vsphere_render_lag_seconds_sum {self.sum!r}\n")
        fam.lines.append(f"vsphere_render_lag_seconds_count {self.count}\n")
        return fam

    def last_family(self) -> Family:
        """The last observation alone: with one change at a time (bench/change_timeline.py)
        it is that change's own share, read from outside, which the buckets only bound."""
        fam = Family(
            "vsphere_render_last_lag_seconds",
            "The last observation of vsphere_render_lag_seconds: how long the most recent "
            "inventory change waited for the body.",
        )
        fam.add("", self.last)
        return fam
