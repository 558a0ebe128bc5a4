"""A many-member family's gzip body as one member built from per-unit deflate segments.

A family of cached gzip members (the VM families: one per block of VMs; the sensor
families: one per host) has too many members for aiohttp's client (it refuses a stream of
more than 1,024), so its members are compressed again into one. Compressed again whole,
a change of one host's sensors recompressed the ~100 MB family (1,000 hosts), which was
most of a host change's way to ``/metrics`` (issue 15, item 2).

So the members are cut into units of ~16 KB of text (shard_groups.units: where a group
ends is decided by the members themselves, so a member changed, added or removed moves
only the cuts around it), each unit compressed once into a raw deflate segment ended by a
full flush, and the family's member is the gzip header, the head's segment, every unit's
segment, the final empty block and a trailer combined from the segments' CRC-32s
(shard_groups.py, which splits shards the same way). A change re-deflates the unit(s)
holding the changed member(s), ~16 KB of text, and copies the other segments: the whole
family is one member, so the body's member count no longer grows with the inventory.

Until 2026-12-04 the members were packed in content-defined groups of ~1 MiB of text,
each a gzip member compressed again whole when one of its members changed: a host failure
at 40,000 VMs recompressed ~1 MiB in each of ~9 changed families (~150 ms of its patch).
Segments of a 16 KB unit compress about as well as a 1 MiB stream at level 1 (a 32 KB
window): 0.97-1.06x the bytes, measured on VM- and sensor-like families.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Sequence

from .exposition import inflate
from .shard_groups import Cut, GroupSplit, Place, Shard, segment, units


class UnitPacker:
    """The families' packs by name, each kept with its last two (the full render's and the
    detection lane's packs alternate), whose units' segments a new pack copies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: dict[str, tuple[GroupSplit, GroupSplit | None]] = {}
        self.units_packed = 0  # units deflated (a miss): the work a change costs
        self.units_reused = 0

    def pack(self, name: str, head: bytes, members: Sequence[bytes]) -> tuple[bytes, int]:
        """One gzip member of ``head`` (the header and plain lines) and the text of
        ``members``, and the size of that text."""
        with self._lock:
            last, before = self._kept.get(name, (None, None))
        shard = Shard()
        if head:
            shard.add(segment(head), zlib.crc32(head), len(head))
        places: dict[object, tuple[Place, ...]] = {}
        for unit in units(members):
            cut = _kept_cut(unit, last, before)
            if cut is None:
                text = b"".join(block for member in unit for block in inflate(member))
                cut = (segment(text), zlib.crc32(text), len(text))
                self.units_packed += 1
            else:
                self.units_reused += 1
            places[unit] = (shard.add(*cut),)
        split = GroupSplit([shard.member()], places)
        with self._lock:
            self._kept[name] = (split, last)
        return split.members[0], shard.size


def _kept_cut(
    unit: tuple[bytes, ...], last: GroupSplit | None, before: GroupSplit | None
) -> Cut | None:
    for split in (last, before):
        if split is not None and (row := split.cuts(unit)) is not None:
            return row[0]
    return None
