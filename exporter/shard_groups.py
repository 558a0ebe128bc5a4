"""A group-packed piece's shards, built group by group: a change re-splits only its groups.

The VM and sensor families are pieces of group members (packing.py: ~1 MiB of text each,
a change recompresses the group holding it). Their shard split was one pass over the whole
family (exposition.split_members): with 4 shards asked, each change of a VM (a host
failure changes all of its VMs) or of a host's sensors decompressed, routed and
compressed again every VM family, or the ~125 MB sensor families, on the detection lane:
at 40,000 VMs 2.4 s of CPU per host failure, and the next change waited behind it.

Here each group's lines go to their shards as raw deflate *segments*, each ended by a
full flush (byte-aligned, no reference back into another segment), and a shard's member
of the piece is the gzip header, the head's segment, the shard's segment of every group,
the final empty block and a trailer whose CRC-32 is combined from the segments' (zlib's
``crc32_combine``, below). That is one gzip member, as the split of the whole family is,
byte for byte the same once decompressed (tests/test_shard_groups.py). The split keeps,
per group and shard, where its segment lies in the shard's member, and a later piece of
the same name takes the segments of the groups it shares with the last one split (by the
token packing.py gives a group when it compresses it: the same token, the same bytes)
from that piece's members, so only the changed groups are decompressed and compressed
again.
"""

from __future__ import annotations

import threading
import weakref
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .exposition import _Router

# What zlib's gzip writer (wbits 31) puts in front of a member: no name, no mtime, Unix.
HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"
FINAL = b"\x03\x00"  # an empty final block with fixed codes: the deflate stream's end
LEVEL = 1  # as exposition.gzip_member


def _times(matrix: Sequence[int], vector: int) -> int:
    out = 0
    i = 0
    while vector:
        if vector & 1:
            out ^= matrix[i]
        vector >>= 1
        i += 1
    return out


def _square(matrix: Sequence[int]) -> list[int]:
    return [_times(matrix, row) for row in matrix]


def _operators() -> list[list[int]]:
    """zlib's crc32_combine operators: the CRC-32 register after 2**k zero bytes."""
    one_bit = [0xEDB88320] + [1 << n for n in range(31)]  # the reflected polynomial
    matrix = _square(_square(_square(one_bit)))  # 2, 4, then 8 zero bits: one byte
    out = []
    for _ in range(64):
        out.append(matrix)
        matrix = _square(matrix)
    return out


_OPERATORS = _operators()


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """The CRC-32 of A + B from A's, B's and B's length (Python's zlib has no
    ``crc32_combine``): A's register run over B's length of zero bytes, xor B's."""
    k = 0
    while len2:
        if len2 & 1:
            crc1 = _times(_OPERATORS[k], crc1)
        len2 >>= 1
        k += 1
    return crc1 ^ crc2


def segment(text: bytes) -> bytes:
    """Raw deflate of ``text``, full-flushed: it can be followed by any other segment."""
    packer = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
    return packer.compress(text) + packer.flush(zlib.Z_FULL_FLUSH)


# One shard's part of one group: (offset in the shard's member, length, CRC-32, text size).
Place = tuple[int, int, int, int]
NOWHERE: Place = (0, 0, 0, 0)  # the group has no line of that shard
Cut = tuple[bytes, int, int]  # a segment, the CRC-32 and size of its text


class GroupSplit:
    """A piece's members for one total of shards, and where each group's segments lie in
    them (by the group's token, packing.py), for the next piece of its name to reuse."""

    __slots__ = ("__weakref__", "head", "members", "places")

    def __init__(
        self, head: Cut | None, members: list[bytes], places: dict[int, tuple[Place, ...]]
    ) -> None:
        self.head = head  # the family's HELP and TYPE, as a segment
        self.members = members
        self.places = places  # token -> per shard

    def cuts(self, token: int) -> list[Cut | None] | None:
        """The segments of the group ``token`` (copied out of the members), if it had it."""
        places = self.places.get(token)
        if places is None:
            return None
        return [
            (member[at : at + length], crc, size) if length else None
            for member, (at, length, crc, size) in zip(self.members, places, strict=True)
        ]


class _Shard:
    """One shard's member as it is built: segments, and the CRC-32 and size so far."""

    __slots__ = ("crc", "length", "out", "size")

    def __init__(self) -> None:
        self.out: list[bytes] = [HEADER]
        self.length = len(HEADER)
        self.crc = 0
        self.size = 0

    def add(self, data: bytes, crc: int, size: int) -> Place:
        place = (self.length, len(data), crc, size)
        self.out.append(data)
        self.length += len(data)
        self.crc = crc32_combine(self.crc, crc, size)
        self.size += size
        return place

    def member(self) -> bytes:
        if len(self.out) == 1:
            return b""
        trailer = self.crc.to_bytes(4, "little") + (self.size & 0xFFFFFFFF).to_bytes(4, "little")
        return b"".join([*self.out, FINAL, trailer])


def _cut(group: bytes, total: int, router: _Router) -> tuple[bytes, list[Cut | None]]:
    """A group's comments and its lines as one segment per shard (None: no line there)."""
    from .exposition import inflate  # noqa: PLC0415 - exposition imports this module

    text = b"".join(inflate(group))
    header: list[bytes] = []
    parts: list[list[bytes]] = [[] for _ in range(total)]
    router.route(text, len(text), parts, header)
    row: list[Cut | None] = []
    for lines in parts:
        part = b"".join(lines)
        row.append((segment(part), zlib.crc32(part), len(part)) if part else None)
    return b"".join(header), row


def split_groups(
    gzip: bytes,
    groups: Sequence[tuple[int, int]],
    total: int,
    router: _Router,
    prior: GroupSplit | None,
) -> GroupSplit | None:
    """The ``total`` shard members of a piece whose gzip bytes are group members
    (``groups``: each one's token and end offset, the first holding the family's head),
    taking from ``prior`` the segments of the groups it had. None when a group after the
    first holds a comment (the header must come first in every member): the caller then
    splits the family whole."""
    if prior is not None and len(prior.members) != total:
        prior = None
    head: Cut | None = None
    rows: list[tuple[int, list[Cut | None]]] = []
    start = 0
    for g, (token, end) in enumerate(groups):
        row = prior.cuts(token) if prior is not None else None
        if row is not None:
            if g == 0:
                head = prior.head if prior is not None else None
        else:
            comments, row = _cut(gzip[start:end], total, router)
            if comments and g > 0:
                return None
            if g == 0 and comments:
                head = (segment(comments), zlib.crc32(comments), len(comments))
        rows.append((token, row))
        start = end
    shards = [_Shard() for _ in range(total)]
    began = [any(row[i] is not None for _, row in rows) for i in range(total)]
    if head is not None:
        for i, shard in enumerate(shards):
            if began[i] or (i == 0 and not any(began)):  # as split_lines: see there
                shard.add(*head)
    places = {
        token: tuple(
            shard.add(*cut) if cut is not None else NOWHERE
            for shard, cut in zip(shards, row, strict=True)
        )
        for token, row in rows
    }
    return GroupSplit(head, [shard.member() for shard in shards], places)


class LastSplits:
    """The last split of each piece name and total, by weak reference: the piece a patch
    or a render replaced stays alive in the bodies still served, and its split with it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: weakref.WeakValueDictionary[tuple[str, int], GroupSplit] = (
            weakref.WeakValueDictionary()
        )

    def get(self, name: str, total: int) -> GroupSplit | None:
        with self._lock:
            return self._last.get((name, total))

    def put(self, name: str, total: int, split: GroupSplit) -> None:
        with self._lock:
            self._last[(name, total)] = split


LAST = LastSplits()
