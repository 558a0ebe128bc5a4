"""A family of cached members' shards, built unit by unit: a change re-splits only its units.

The VM and sensor families are pieces of cached gzip members (a member per block of VMs,
per host), compressed again in ~1 MiB groups for the unsharded body (packing.py). Their
shard split was one pass over the whole family (exposition.split_members): with 4 shards
asked, each change of a VM (a host failure changes all of its VMs) or of a host's sensors
decompressed, routed and compressed again every VM family, or the ~125 MB sensor
families, on the detection lane: at 40,000 VMs 2.4 s of CPU per host failure.

Here the members are cut into *units* of about :data:`UNIT` bytes of text (a host's
sensor member is one; a one-line VM family's block, ~4 KB, is a quarter of one), and each
unit's lines go to their shards as raw deflate *segments*, each ended by a full flush
(byte-aligned, no reference back into another segment). A shard's member of the piece is
the gzip header, the head's segment, the shard's segment of every unit, the final empty
block and a trailer whose CRC-32 is combined from the segments' (zlib's
``crc32_combine``, below). That is one gzip member, as the split of the whole family is,
byte for byte the same once decompressed (tests/test_shard_groups.py). The split keeps,
per unit and shard, where its segment lies in the shard's member, and a later piece of
the same name takes the segments of the units it shares with the last one split (the
same members: the render cache hands an unchanged block's member back as it was), so
only the changed units are decompressed and compressed again.

Units, not the unsharded body's ~1 MiB groups: a failed host's VMs share a block (~40 VMs
at 40,000), but its group holds ~6,000 VMs' lines of a one-line VM family, and the split
by group re-routed them all in each VM family: 110-270 ms of a host failure's patch at
40,000 VMs with 4 shards. Smaller units compress worse (each segment starts without a
dictionary): a one-line family split 4 ways in units of ~4 blocks is ~1.2x the bytes of
its split whole, in units of one block ~1.9x.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import weakref
import zlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from .exposition import _Router

# What zlib's gzip writer (wbits 31) puts in front of a member: no name, no mtime, Unix.
HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"
FINAL = b"\x03\x00"  # an empty final block with fixed codes: the deflate stream's end
LEVEL = 1  # as exposition.gzip_member
UNIT = 16 << 10  # bytes of text per unit, on average (a forced cut at 4x)


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


def py_crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """The CRC-32 of A + B from A's, B's and B's length: A's register run over B's length
    of zero bytes, xor B's (~15-30 us a call: the fallback, see :func:`_libz_combine`)."""
    k = 0
    while len2:
        if len2 & 1:
            crc1 = _times(_OPERATORS[k], crc1)
        len2 >>= 1
        k += 1
    return crc1 ^ crc2


def _libz_combine() -> Callable[[int, int, int], int] | None:
    """zlib's own ``crc32_combine64`` (~1 us a call), from the libz Python's zlib module
    is linked to; Python's zlib does not expose it. A split combines a CRC per unit and
    shard (~3,600 for a 15 MB VM family split 4 ways): in Python that was ~50 ms, most
    of a host failure's split at 40,000 VMs."""
    for name in ("libz.so.1", ctypes.util.find_library("z")):
        if not name:
            continue
        try:
            fn = ctypes.CDLL(name).crc32_combine64
        except (OSError, AttributeError):
            continue
        fn.argtypes = [ctypes.c_ulong, ctypes.c_ulong, ctypes.c_int64]
        fn.restype = ctypes.c_ulong
        if fn(zlib.crc32(b"a"), zlib.crc32(b"bc"), 2) == zlib.crc32(b"abc"):
            return cast("Callable[[int, int, int], int]", fn)
    return None


crc32_combine: Callable[[int, int, int], int] = _libz_combine() or py_crc32_combine


def segment(text: bytes) -> bytes:
    """Raw deflate of ``text``, full-flushed: it can be followed by any other segment."""
    packer = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
    return packer.compress(text) + packer.flush(zlib.Z_FULL_FLUSH)


# One shard's part of one group: (offset in the shard's member, length, CRC-32, text size).
Place = tuple[int, int, int, int]
NOWHERE: Place = (0, 0, 0, 0)  # the group has no line of that shard
Cut = tuple[bytes, int, int]  # a segment, the CRC-32 and size of its text


class GroupSplit:
    """A piece's members for one total of shards, and where each unit's segments lie in
    them (by the unit: its members, compared by identity first), for the next piece of
    its name to reuse. Holding the units keeps their members alive while the split is,
    so a unit's key is never another unit's."""

    __slots__ = ("__weakref__", "members", "places")

    def __init__(self, members: list[bytes], places: dict[object, tuple[Place, ...]]) -> None:
        self.members = members
        self.places = places  # unit -> per shard

    def cuts(self, unit: tuple[bytes, ...]) -> list[Cut | None] | None:
        """The segments of ``unit`` (copied out of the members), if it had it."""
        places = self.places.get(unit)
        if places is None:
            return None
        return [
            (member[at : at + length], crc, size) if length else None
            for member, (at, length, crc, size) in zip(self.members, places, strict=True)
        ]


class Shard:
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
        self.crc = crc32_combine(self.crc, crc, size)  # the module's: see _libz_combine
        self.size += size
        return place

    def member(self) -> bytes:
        if len(self.out) == 1:
            return b""
        trailer = self.crc.to_bytes(4, "little") + (self.size & 0xFFFFFFFF).to_bytes(4, "little")
        return b"".join([*self.out, FINAL, trailer])


def _cut(text: bytes, total: int, router: _Router) -> tuple[bytes, list[Cut | None]]:
    """Text's comments, and its lines as one segment per shard (None: no line there)."""
    header: list[bytes] = []
    parts: list[list[bytes]] = [[] for _ in range(total)]
    router.route(text, len(text), parts, header)
    row: list[Cut | None] = []
    for lines in parts:
        part = b"".join(lines)
        row.append((segment(part), zlib.crc32(part), len(part)) if part else None)
    return b"".join(header), row


def split_units(
    head: bytes,
    units: Sequence[tuple[bytes, ...]],
    total: int,
    router: _Router,
    prior: GroupSplit | None,
) -> GroupSplit | None:
    """The ``total`` shard members of a family of cached gzip members: ``head`` (its
    header and plain lines, text) then ``units`` (its members, cut as :func:`units`
    does), taking from ``prior`` the segments of the units it had (the same members).
    None when a unit holds a comment (the header must come first in every member): the
    caller then splits the family whole."""
    from .exposition import inflate  # noqa: PLC0415 - exposition imports this module

    if prior is not None and len(prior.members) != total:
        prior = None
    comments, head_row = _cut(head, total, router)
    first = (segment(comments), zlib.crc32(comments), len(comments)) if comments else None
    rows: list[tuple[tuple[bytes, ...] | None, list[Cut | None]]] = [(None, head_row)]
    for unit in units:
        row = prior.cuts(unit) if prior is not None else None
        if row is None:
            text = b"".join(block for member in unit for block in inflate(member))
            found, row = _cut(text, total, router)
            if found:
                return None
        rows.append((unit, row))
    shards = [Shard() for _ in range(total)]
    began = [any(row[i] is not None for _, row in rows) for i in range(total)]
    if first is not None:
        for i, shard in enumerate(shards):
            if began[i] or (i == 0 and not any(began)):  # as split_lines: see there
                shard.add(*first)
    places: dict[object, tuple[Place, ...]] = {}
    for key, row in rows:
        place = tuple(
            shard.add(*cut) if cut is not None else NOWHERE
            for shard, cut in zip(shards, row, strict=True)
        )
        if key is not None:
            places[key] = place
    return GroupSplit([shard.member() for shard in shards], places)


def units(members: Sequence[bytes]) -> list[tuple[bytes, ...]]:
    """A family's members cut into units of about :data:`UNIT` bytes of text, where their
    trailers say (as packing.groups cuts groups, and for the same reason: a member
    changed, added or removed moves only the cuts around it)."""
    out: list[tuple[bytes, ...]] = []
    run: list[bytes] = []
    size = 0
    for member in members:
        if not member:
            continue
        run.append(member)
        isize = int.from_bytes(member[-4:], "little")
        size += isize
        crc = int.from_bytes(member[-8:-4], "little")
        if crc * UNIT < isize << 32 or size >= 4 * UNIT:
            out.append(tuple(run))
            run, size = [], 0
    if run:
        out.append(tuple(run))
    return out


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
