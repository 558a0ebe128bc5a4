"""How many ``total_shards`` values are kept split (review finding 3 of 2026-12-02: a fifth
total evicted the least recent one, so scrapers of five totals in turn re-split the body
on every ask and none was ever served; a replica's own total took one of the places)."""

from __future__ import annotations

import logging

import pytest

from exporter.shard_asks import MOST_TOTALS, TOTAL_TTL, ShardAsks, ShardRefused


def test_a_pinned_total_takes_no_place() -> None:
    asks = ShardAsks(pinned=[2])
    for total in range(3, 3 + MOST_TOTALS):
        assert asks.ask(total, 1.0) is True
    assert asks.ask(2, 2.0) is False  # already split: the replica's own
    assert asks.totals(3.0) == [2, *range(3, 3 + MOST_TOTALS)]


def test_a_new_total_past_the_most_is_refused_not_evicting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    asks = ShardAsks()
    kept = list(range(2, 2 + MOST_TOTALS))
    for at, total in enumerate(kept):
        asks.ask(total, float(at))
    caplog.set_level(logging.WARNING, "exporter.shard_asks")
    for _ in range(3):
        with pytest.raises(ShardRefused) as refused:
            asks.ask(99, 100.0)
    assert asks.totals(100.0) == kept  # none of them evicted
    assert asks.refusals == 3
    # the least recent (asked at 0) is let go TOTAL_TTL after its ask
    assert refused.value.retry_after == TOTAL_TTL - 100
    assert "total_shards=99" in str(refused.value) and "\n" not in str(refused.value)
    assert len(caplog.records) == 1  # one line per refused total, not per scrape
    samples = {f.name: f.lines for f in asks.families()}
    assert samples["vsphere_exposition_shard_refusals_total"] == [
        "vsphere_exposition_shard_refusals_total 3\n"
    ]
    # a place frees once the least recent total is let go: then it is taken
    assert asks.ask(99, TOTAL_TTL + 0.5) is True
    assert 2 not in asks.totals(TOTAL_TTL + 0.5) and 99 in asks.totals(TOTAL_TTL + 0.5)
