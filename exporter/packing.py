"""A many-member family's gzip body as a few group members, each compressed once.

A family of cached gzip members (the VM families: one per block of VMs; the sensor
families: one per host) has too many members for aiohttp's client (it refuses a stream of
more than 1,024), so its members are compressed again into fewer.  Into one member, a
change of one host's sensors recompressed the whole ~100 MB family (1,000 hosts), which
was most of a host change's way to ``/metrics`` (issue 15, item 2).

So the members are cut into groups of about :data:`TARGET` bytes of text, each group's
member is kept keyed on its members (bytes, compared by identity first), and a change
recompresses only the group(s) holding the changed members: about a MiB of text, ~10 ms,
whatever the inventory's size.  A body has then about one member per MiB (135 at 10,000
VMs, ~430 at 40,000), well below aiohttp's 1,024.

Where a group ends is decided by the members themselves (content-defined, as rsync and
backup tools cut chunks): after a member with probability its size / TARGET, read from
its CRC-32 and size (its gzip trailer, RFC 1952 2.3.1: free).  A member changed, added or
removed moves at most the boundaries around it, so the other groups keep their keys;
positional groups (every n members) would all move behind a host whose sensor member
appears or disappears (a host disconnecting, the very change detection is about).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from .exposition import member_size, repack

TARGET = 1 << 20  # bytes of text per group, on average
MAX_GROUP = 4 * TARGET  # a forced cut (a run of that size without a boundary: ~e^-4)


def groups(members: Sequence[bytes]) -> list[tuple[bytes, ...]]:
    """``members`` (non-empty gzip members) cut where their trailers say (see above)."""
    out: list[tuple[bytes, ...]] = []
    run: list[bytes] = []
    size = 0
    for member in members:
        run.append(member)
        isize = member_size(member)
        size += isize
        crc = int.from_bytes(member[-8:-4], "little")
        if crc * TARGET < isize << 32 or size >= MAX_GROUP:
            out.append(tuple(run))
            run, size = [], 0
    if run:
        out.append(tuple(run))
    return out


class GroupPacker:
    """Group members by family name, kept from the last two packs of each name (the full
    render's and the detection lane's packs alternate)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # name -> (the last pack's groups, the one before): (head, group) -> member
        self._kept: dict[str, tuple[dict[object, bytes], dict[object, bytes]]] = {}
        self.groups_packed = 0  # groups compressed (a cache miss): the work a change costs
        self.groups_reused = 0

    def pack(self, name: str, head: bytes, members: Sequence[bytes]) -> bytes:
        """The gzip body of ``head`` (the header and plain lines) and ``members``: one
        member per group, the first group's with ``head`` in front."""
        return b"".join(self.pack_groups(name, head, members))

    def pack_groups(self, name: str, head: bytes, members: Sequence[bytes]) -> list[bytes]:
        """:meth:`pack`'s members one by one (a body counts its members: exposition's
        MAX_BODY_MEMBERS)."""
        with self._lock:
            last, before = self._kept.get(name, ({}, {}))
        used: dict[object, bytes] = {}
        out = []
        for i, group in enumerate(groups([m for m in members if m]) or [()]):
            key = (head if i == 0 else b"", group)
            packed = used.get(key) or last.get(key) or before.get(key)
            if packed is None:
                packed = repack(head if i == 0 else b"", group)
                self.groups_packed += 1
            else:
                self.groups_reused += 1
            used[key] = packed
            out.append(packed)
        with self._lock:
            self._kept[name] = (used, last)
        return out
