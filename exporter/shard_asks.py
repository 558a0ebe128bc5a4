"""Which ``total_shards`` values the renderer keeps split ahead of scrapes, and who split.

Splitting a body into ``n`` shards reads every line of every family (at 40,000 VMs the
first scrape of a shard that did it took 65.9 s under load, over Prometheus' 10 s
timeout). So the packer (render.py) splits each new piece for every total asked for
recently, after the body is published, and a scrape only looks the parts up. A total is
remembered from its first ask until it has not been asked for :data:`TOTAL_TTL` seconds
(then its splits are freed: each is another copy of the body), at most
:data:`MOST_TOTALS` of them; a replica's own total (``--total-shards``) is never forgotten.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from .families import Family

TOTAL_TTL = 900.0  # seconds: several of Prometheus' scrape intervals (1 min by default)
MOST_TOTALS = 4  # distinct totals kept split beside the pinned ones
WHERE = ("packer", "patch", "request")  # who built a split: see Renderer._build


class ShardPending(Exception):  # noqa: N818 - a state, not a failure
    """The split for a new total is not built yet; the message is the HTTP 503 body."""

    def __init__(self, total: int, retry_after: float) -> None:
        self.total = total
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(
            f"shards of total_shards={total} are not split yet: the first ask of this total "
            f"(or of any, before the first body is rendered) waits for the exporter to split "
            f"the body, which it then does ahead of scrapes; retry in {self.retry_after}s"
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

    def ask(self, total: int, now: float) -> bool:
        """Note an ask of ``total``; True when it is new (not kept split until now)."""
        new = total not in self._last and total not in self.pinned
        self._last.pop(total, None)
        self._last[total] = now  # newest last
        while len(self._last) > MOST_TOTALS:
            del self._last[next(iter(self._last))]
        return new

    def totals(self, now: float) -> list[int]:
        """The totals to keep split: the pinned ones and those asked within the TTL."""
        for total in [t for t, at in self._last.items() if now - at > self.ttl]:
            del self._last[total]
        return sorted(self.pinned | set(self._last))

    def count(self, where: str, pieces: int) -> None:
        self.splits[where] += pieces

    def family(self) -> Family:
        fam = Family(
            "vsphere_exposition_shard_splits_total",
            "Families split into the shards of a total_shards value, by who split them: the "
            "packer or the detection lane (patch) ahead of scrapes, or a scrape itself "
            "(request: only when the renderer's threads do not run).",
            "counter",
        )
        for where, n in self.splits.items():
            fam.add(f'where="{where}"', n)
        return fam
