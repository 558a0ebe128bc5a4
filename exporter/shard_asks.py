"""Which ``total_shards`` values the renderer keeps split ahead of scrapes, and who split.

Splitting a body into ``n`` shards reads every line of every family (at 40,000 VMs the
first scrape of a shard that did it took 65.9 s under load, over Prometheus' 10 s
timeout). So the packer (render.py) splits each new piece for every total asked for
recently, after the body is published, and a scrape only looks the parts up. A total is
remembered from its first ask until it has not been asked for :data:`TOTAL_TTL` seconds
(then its splits are freed: each is another copy of the body), at most
:data:`MOST_TOTALS` of them; a replica's own total (``--total-shards``) is never forgotten
and takes none of those places.

A new total while :data:`MOST_TOTALS` others are in use is refused (HTTP 429, with the
time until the least recent of them may be forgotten), not split in the place of one:
evicting one for it made scrapers of five totals in turn each re-split the body on every
ask (~29 s of packer time each at 40,000 VMs), so none was ever served.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

from .families import Family

TOTAL_TTL = 900.0  # seconds: several of Prometheus' scrape intervals (1 min by default)
MOST_TOTALS = 4  # distinct totals kept split beside the pinned ones
WHERE = ("packer", "patch", "request")  # who built a split: see Renderer._build
log = logging.getLogger(__name__)


class ShardAnswer(Exception):  # noqa: N818 - an HTTP answer, not a failure
    """A shard ask answered without a body: :meth:`message` is the HTTP body."""

    status: int  # the HTTP status

    def __init__(self, total: int, retry_after: float) -> None:
        self.total = total
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(self.message())

    def message(self) -> str:
        raise NotImplementedError


class ShardPending(ShardAnswer):
    """The split for a new total is not built yet."""

    status = 503

    def message(self) -> str:
        return (
            f"shards of total_shards={self.total} are not split yet: the first ask of this "
            f"total (or of any, before the first body is rendered) waits for the exporter to "
            f"split the body, which it then does ahead of scrapes; retry in "
            f"{self.retry_after}s"
        )


class ShardRefused(ShardAnswer):
    """A new total while :data:`MOST_TOTALS` others are kept split."""

    status = 429

    def __init__(self, total: int, in_use: list[int], retry_after: float) -> None:
        self.in_use = in_use
        super().__init__(total, retry_after)

    def message(self) -> str:
        return (
            f"total_shards={self.total} refused: this exporter keeps at most {MOST_TOTALS} "
            f"total_shards values split beside its own, and "
            f"{', '.join(map(str, self.in_use))} are in use (each is another copy of the "
            f"body); a value not asked for {TOTAL_TTL:.0f}s is let go, the next in "
            f"{self.retry_after}s. Scrape with one of those totals, or start replicas with "
            f"--total-shards"
        )


class ShardAsks:
    """The totals asked for, when last, and the splits counted by who built them.

    Not thread-safe on its own: the renderer calls it under its condition's lock.
    """

    def __init__(self, pinned: Iterable[int] = (), ttl: float = TOTAL_TTL) -> None:
        self.pinned = frozenset(t for t in pinned if t > 1)
        self.ttl = ttl
        self._last: dict[int, float] = {}  # total -> monotonic time of the last ask
        self.splits = dict.fromkeys(WHERE, 0)
        self.refusals = 0
        self._refused: set[int] = set()  # logged once until asked again after a place frees

    def ask(self, total: int, now: float) -> bool:
        """Note an ask of ``total``; True when it is new (not kept split until now).

        Raises :class:`ShardRefused` for a new total while :data:`MOST_TOTALS` are kept."""
        if total in self.pinned:
            return False
        self._expire(now)
        new = total not in self._last
        if new and len(self._last) >= MOST_TOTALS:
            self.refusals += 1
            oldest = min(self._last.values())
            refused = ShardRefused(total, sorted(self._last), oldest + self.ttl - now)
            if total not in self._refused:
                self._refused.add(total)
                log.warning("%s", refused)
            raise refused
        self._refused.discard(total)
        self._last[total] = now
        return new

    def totals(self, now: float) -> list[int]:
        """The totals to keep split: the pinned ones and those asked within the TTL."""
        self._expire(now)
        return sorted(self.pinned | set(self._last))

    def _expire(self, now: float) -> None:
        for total in [t for t, at in self._last.items() if now - at > self.ttl]:
            del self._last[total]

    def count(self, where: str, pieces: int) -> None:
        self.splits[where] += pieces

    def families(self) -> list[Family]:
        splits = Family(
            "vsphere_exposition_shard_splits_total",
            "Families split into the shards of a total_shards value, by who split them: the "
            "packer or the detection lane (patch) ahead of scrapes, or a scrape itself "
            "(request: only when the renderer's threads do not run).",
            "counter",
        )
        for where, n in self.splits.items():
            splits.add(f'where="{where}"', n)
        refusals = Family(
            "vsphere_exposition_shard_refusals_total",
            f"Scrapes refused (HTTP 429) for asking a new total_shards value while "
            f"{MOST_TOTALS} others were kept split.",
            "counter",
        )
        refusals.add("", self.refusals)
        return [splits, refusals]
