"""The ``/metrics`` body as per-family pieces: gzip paid once per change, shards on demand.

A body is a sequence of :class:`Piece` objects, one per metric family.  The renderer keeps
a piece whose bytes did not change since the previous render (the same object, so whatever
was derived from it stays valid), which makes two things cheap:

* **gzip**: each piece carries its own gzip member, compressed once, when the piece is new.
  RFC 1952 (2.2) defines a gzip file as a series of members, and decoders (Go's
  ``compress/gzip`` in Prometheus, Python's ``gzip``, curl) read concatenated members as
  one stream, so a gzip body is the members of its pieces one after the other: a scrape
  never compresses a byte of an unchanged family, and never the whole body.
* **shards** (``/metrics?shard=i&total_shards=n``, the kube-state-metrics way): a sample
  whose label block starts with ``vcenter="...",host_id|vm_id|datastore_id="..."`` belongs
  to shard ``crc32(vcenter + NUL + id) % n`` (zlib's CRC-32: stable across processes and
  Python versions, unlike the salted ``hash()``); every other sample (the vCenter-level and
  cluster-level families, the exporter's own) belongs to shard 0.  A piece is split at
  most once per ``n`` and each split compressed once, like the piece itself, by the
  renderer's packer ahead of the scrapes (render.py), never by a scrape.
* **members per body**: aiohttp's client refuses more than 1,024 gzip members in what one
  read hands it (``MAX_DECOMPRESS_MEMBERS``), so no gzip body, whole or shard, is served of
  more than :data:`MAX_BODY_MEMBERS` (:func:`fit_members`).
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import zlib
from collections.abc import Iterable, Iterator, Sequence

from .shard_groups import LAST, GroupSplit, split_units, units

MAX_SHARDS = 256
# Pieces smaller than this keep their plain bytes beside their gzip member once gzip is
# served (Renderer.prepare): the detection lane splices a host's lines into the host
# families (0.2-1 MB each at 2,500 hosts) and renders the cluster families whole, and with
# their gzip members only it decompressed 4.6 MB per host change. The pieces under it hold
# ~20 MB at 40,000 VMs; the large ones (the VM and sensor families) are let go.
KEEP_PLAIN_BELOW = 1 << 20
# Plain bytes per block when a gzip-only piece is decompressed for a plain scrape: the
# scrape holds a block or two, never the piece (the ~100 MB sensor family) or the body.
STREAM_BLOCK = 1 << 20
# The identity label block every per-object family starts with (collectors/context.py and
# perf.py build it): the vCenter, then the object's moid.
_OBJECT = re.compile(
    rb'[^{\s]*\{vcenter="((?:[^"\\]|\\.)*)",(?:host|vm|datastore)_id="((?:[^"\\]|\\.)*)"'
)


class ShardError(ValueError):
    """Bad ``shard``/``total_shards`` parameters; the message is the HTTP 400 body."""


def parse_shard(shard: str | None, total: str | None) -> tuple[int, int] | None:
    """``(shard, total_shards)`` from query parameters; None when neither is given."""
    if shard is None and total is None:
        return None
    if shard is None or total is None:
        raise ShardError("shard and total_shards go together: give both or neither")
    try:
        i, n = int(shard), int(total)
    except ValueError:
        raise ShardError(
            f"shard and total_shards must be whole numbers, got shard={shard!r} "
            f"total_shards={total!r}"
        ) from None
    if not 1 <= n <= MAX_SHARDS:
        raise ShardError(f"total_shards must be between 1 and {MAX_SHARDS}, got {n}")
    if not 0 <= i < n:
        raise ShardError(f"shard must be between 0 and total_shards-1 ({n - 1}), got {i}")
    return i, n


def shard_of(vcenter: bytes, object_id: bytes, total: int) -> int:
    """The shard of one object (its labels as they appear in the body, escaped)."""
    return zlib.crc32(vcenter + b"\0" + object_id) % total


def inflate(data: bytes, block: int = STREAM_BLOCK) -> Iterator[bytes]:
    """The bytes of the gzip member(s) ``data``, at most ``block`` at a time.

    Fed in 64 KiB slices: zlib's ``unconsumed_tail`` is a copy of the input left, which
    for a whole 7 MB body was a copy per block. Several members (a piece built from
    cached ones, Family.gzip) are read one after the other, as RFC 1952 2.2 reads them.
    """
    view = memoryview(data)
    step = 1 << 16
    inflater = zlib.decompressobj(31)
    for start in range(0, len(view), step):
        pending: bytes | memoryview = view[start : start + step]
        while pending:
            out = inflater.decompress(pending, block)
            if out:
                yield out
            if inflater.eof:  # a member ended: the next starts in what is left
                pending = inflater.unused_data
                inflater = zlib.decompressobj(31)
            else:
                pending = inflater.unconsumed_tail
    while not inflater.eof and (tail := inflater.decompress(b"", block)):
        yield tail  # output zlib still held


def member_size(member: bytes) -> int:
    """The decompressed size of one gzip member, from its trailer (ISIZE, RFC 1952 2.3.1:
    the size modulo 2**32; a host's lines are far below 4 GiB)."""
    return int.from_bytes(member[-4:], "little") if member else 0


def gzip_member(data: bytes) -> bytes:
    """One complete gzip member (header, deflate at level 1, CRC-32 and size trailer)."""
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)
    return packer.compress(data) + packer.flush()


# A piece of more gzip members than this is compressed again as one member (repack):
# aiohttp's client refuses a stream of more than 1,024 members (a decompression-bomb
# guard), and a body of per-block or per-host members (the VM families: 256 blocks each;
# the sensor family: a member per host) would have thousands.
MAX_MEMBERS = 16
# The most gzip members a whole gzip body may have (a shard has one per family at most):
# MAX_MEMBERS bounds a piece, and 80 families of 15 members were a body aiohttp refused.
# aiohttp counts the members of each decompress call (one per chunk read), so a body of
# fewer than its 1,024 is safe however it is read. A many-member family is one member
# (packing.py); when it was ~1 MiB groups, at 40,000 VMs those families alone were ~430
# members, and a bound of 512 had every build repack the sensor families whole.
MAX_BODY_MEMBERS = 1000


def repack(head: bytes, members: Iterable[bytes]) -> bytes:
    """One gzip member of ``head`` followed by the text of ``members`` (gzip members),
    decompressed and compressed block by block into one buffer (zlib releases the GIL;
    neither the text whole nor a joined copy of the members is ever held)."""
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)
    out = io.BytesIO()  # its getvalue() hands over the buffer without a copy
    out.write(packer.compress(head))
    for member in members:
        for block in inflate(member):
            out.write(packer.compress(block))
    out.write(packer.flush())
    return out.getvalue()


# One object's run of lines: a line with its identity label block, then every line right
# after it with the same one (backreferences, closing quotes included, so vm-1 never runs
# into vm-10). A collector writes an object's lines of a family in one pass, so a family is
# a run per object, matched by the regex engine rather than line by line in Python.
_RUN = re.compile(
    rb'^[^{\s]*\{vcenter="((?:[^"\\]|\\.)*)",(?:host|vm|datastore)_id="((?:[^"\\]|\\.)*)"'
    rb"[^\n]*(?:\n|\Z)"
    rb'(?:[^{\s]*\{vcenter="\1",(?:host|vm|datastore)_id="\2"[^\n]*(?:\n|\Z))*',
    re.M,
)


class _Router:
    """Sends a family's lines to their shards: object runs by :data:`_RUN` (a run's shard
    is :func:`shard_of`, the CRC-32 carried on from its vCenter's), the lines between runs
    (the header, lines of no object) one by one, comments to ``header``, the rest to shard
    0. At 40,000 VMs the line-by-line loop was the whole of a shard's first split. 200,000
    lines (niced, load 7-8 on 2 cores): 1.8 -> 1.4 s at one line per object, 1.1 -> 0.3 s
    at five, 1.3 -> 0.2 s at forty (a host's sensors). A memoryview per run, rather than
    the run copied, made it 3x slower."""

    __slots__ = ("_vcenters", "total")

    def __init__(self, total: int) -> None:
        self.total = total
        self._vcenters: dict[bytes, int] = {}  # vcenter -> CRC-32 of vcenter + NUL

    def route(self, data: bytes, end: int, parts: list[list[bytes]], header: list[bytes]) -> None:
        """Route ``data[:end]`` (whole lines, or the family's end) into ``parts``."""

        def between(start: int, stop: int) -> None:  # lines of no object, and comments
            for line in data[start:stop].splitlines(keepends=True):
                (header if line.startswith(b"#") else parts[0]).append(line)

        vcenters, total = self._vcenters, self.total
        pos = 0
        for m in _RUN.finditer(data, 0, end):
            start = m.start()
            if start > pos:
                between(pos, start)
            vcenter, object_id = m.group(1, 2)
            crc = vcenters.get(vcenter)
            if crc is None:
                crc = vcenters[vcenter] = zlib.crc32(vcenter + b"\0")
            parts[zlib.crc32(object_id, crc) % total].append(m.group())
            pos = m.end()
        if pos < end:
            between(pos, end)


def split_lines(data: bytes, total: int) -> list[bytes]:
    """A family's bytes as ``total`` pieces: each with the header when it has samples.

    Shard 0 keeps the header of a family without samples (as the unsharded body has it).
    """
    header: list[bytes] = []
    parts: list[list[bytes]] = [[] for _ in range(total)]
    _Router(total).route(data, len(data), parts, header)
    head = b"".join(header)
    out = []
    for i, lines in enumerate(parts):
        if lines:
            out.append(head + b"".join(lines))
        elif i == 0 and not any(parts):
            out.append(head)
        else:
            out.append(b"")
    return out


def split_members(blocks: Iterable[bytes], total: int) -> list[bytes] | None:
    """The gzip members of :func:`split_lines`'s parts, from the family's bytes given a
    block at a time: each block's whole lines are routed and compressed into their shards'
    members at once, so neither the family nor a part is ever held whole (at 40,000 VMs
    the whole-piece split raised the peak RSS by ~500 MiB: a ~125 MB sensor family
    decompressed, split into runs, joined into parts, then compressed). A run cut by a
    block's end goes on in the next block's, to the same shard.

    None when a comment comes after a shard has begun (the header goes first in every
    part, so it must be whole by then): the caller splits the whole family instead. A
    family's HELP and TYPE come first, so only a hand-made body declines.
    """
    router = _Router(total)
    head: list[bytes] = []
    shards: list[tuple[zlib._Compress, io.BytesIO] | None] = [None] * total  # begun ones
    begun = False
    carry = b""

    def feed(data: bytes, end: int) -> bool:
        nonlocal begun
        header: list[bytes] = []
        parts: list[list[bytes]] = [[] for _ in range(total)]
        router.route(data, end, parts, header)
        if header:
            if begun:
                return False
            head.extend(header)
        for i, lines in enumerate(parts):
            if not lines:
                continue
            shard = shards[i]
            if shard is None:
                shard = shards[i] = (zlib.compressobj(1, zlib.DEFLATED, 31), io.BytesIO())
                shard[1].write(shard[0].compress(b"".join(head)))
            packer, out = shard
            out.write(packer.compress(b"".join(lines)))
            begun = True
        return True

    for block in blocks:
        data = carry + block if carry else block
        cut = data.rfind(b"\n") + 1
        if cut and not feed(data, cut):
            return None
        carry = data[cut:]
    if carry and not feed(carry, len(carry)):
        return None
    members = []
    for i, shard in enumerate(shards):
        if shard is not None:
            packer, out = shard
            out.write(packer.flush())
            members.append(out.getvalue())
        elif i == 0 and not begun and head:
            members.append(gzip_member(b"".join(head)))
        else:
            members.append(b"")
    return members


class Piece:
    """One family's exposition bytes, with its gzip member and shard splits built once.

    ``shard0`` pieces (the exporter's process metrics) belong to shard 0 whole.

    Once its gzip member exists the plain bytes can be let go (:meth:`release_plain`):
    Prometheus asks for gzip only, and at 10,000 VMs the plain copy is the size of the
    whole body again (35-135 MB). ``plain`` then decompresses the member (zlib releases
    the GIL), which a plain scrape (curl) pays; ``digest`` and ``size`` stay, so an
    unchanged piece is still recognised without its bytes.
    """

    __slots__ = (
        "_gzip",
        "_lock",
        "_packed",
        "_plain",
        "_shards",
        "_source",
        "_splits",
        "_digest",
        "members",
        "name",
        "shard0",
        "size",
    )

    def __init__(
        self, name: str, plain: bytes, *, shard0: bool = False, gzip: bytes | None = None
    ) -> None:
        self.name = name
        self._plain: bytes | None = plain
        self.size = len(plain)
        self._init_rest(shard0, gzip)

    @classmethod
    def packed(
        cls,
        name: str,
        members: bytes,
        size: int,
        count: int = 1,
        source: tuple[bytes, Sequence[bytes]] | None = None,
    ) -> Piece:
        """A piece from its gzip member(s) alone (a family of cached members, see
        Family.gzip), its decompressed ``size`` and how many members they are (``count``):
        its bytes are never held whole unless a patch or a plain shard asks for them.
        ``source``: the family's head (header and plain lines) and its cached members,
        which ``members`` were compressed from: its gzip shards are then split unit by
        unit of them (shard_groups.py)."""
        piece = cls.__new__(cls)
        piece.name = name
        piece._plain = None
        piece.size = size
        piece._init_rest(False, members)
        piece.members = count
        piece._source = source
        return piece

    def _init_rest(self, shard0: bool, gzip: bytes | None) -> None:
        self._digest: bytes | None = None  # of the plain bytes, taken before they go
        self.shard0 = shard0
        self._gzip: bytes | None = gzip  # given: built from the family's cached members
        self.members = 1  # gzip members in _gzip (a packed piece says how many)
        self._shards: dict[int, list[bytes]] = {}  # total -> plain parts
        self._packed: dict[int, list[bytes]] = {}  # total -> gzip members of the parts
        self._source: tuple[bytes, Sequence[bytes]] | None = None  # see packed()
        self._splits: dict[int, GroupSplit] = {}  # total -> its unit-by-unit split
        self._lock = threading.Lock()

    @property
    def plain(self) -> bytes:
        """The piece's bytes (decompressed from its gzip member once released)."""
        data = self._plain
        if data is not None:
            return data
        member = self._gzip
        if not member:
            return b""
        # Every member (see Family.gzip), into one buffer: gzip.decompress joins a list of
        # the members' bytes, two copies of the ~100 MB sensor family at once.
        out = io.BytesIO()
        for block in inflate(member):
            out.write(block)
        return out.getvalue()

    @property
    def digest(self) -> bytes:
        """BLAKE2b of the plain bytes (releases the GIL on large buffers; 16 bytes keep a
        collision out of reach), computed when first needed."""
        if self._digest is None:
            if self._plain is not None:
                self._digest = hashlib.blake2b(self._plain, digest_size=16).digest()
            else:  # block by block: a gzip-only piece is never decompressed whole for it
                h = hashlib.blake2b(digest_size=16)
                for block in self.iter_plain():
                    h.update(block)
                self._digest = h.digest()
        return self._digest

    def same_bytes(self, other: Piece) -> bool:
        """True when ``other`` has this piece's bytes (compared directly while both have
        them, else by digest)."""
        if self is other:  # an unchanged family's piece handed back whole
            return True
        if self.size != other.size:
            return False
        mine, theirs = self._plain, other._plain
        if mine is not None and theirs is not None:
            return mine == theirs
        return self.digest == other.digest

    def iter_plain(self, block: int = STREAM_BLOCK) -> Iterator[bytes]:
        """The piece's bytes as they are written: its plain bytes while kept, else its
        gzip member decompressed ``block`` bytes at a time."""
        data = self._plain
        if data is not None:
            if data:
                yield data
            return
        member = self._gzip
        if not member:
            return
        yield from inflate(member, block)

    def built_gzip(self) -> bytes | None:
        """The gzip member(s) if built (or given), else None: never compresses."""
        return self._gzip

    def release_plain(self, keep_below: int = 0) -> None:
        """Keep only the gzip member (and what was split): a no-op until it exists, and
        for a piece of fewer than ``keep_below`` bytes."""
        if self._gzip is not None and self._plain is not None and self.size >= keep_below:
            _ = self.digest  # while the bytes are here
            self._plain = None

    def gzip(self) -> bytes:
        """The gzip member of the whole piece (compressed on first use, then kept)."""
        member = self._gzip
        if member is None:
            with self._lock:
                if self._gzip is None:
                    plain = self.plain
                    self._gzip = gzip_member(plain) if plain else b""
                member = self._gzip
        return member

    def repack(self) -> None:
        """Make the gzip of several members one member (:func:`fit_members`): the same
        bytes once decompressed, so a scrape reading the old or the new one is right."""
        with self._lock:
            member = self._gzip
            if member is None or self.members <= 1:
                return
            self._gzip = repack(b"", [member])
            self.members = 1

    def has_split(self, total: int, *, gzipped: bool) -> bool:
        """True when shard ``i`` of ``total`` costs a look-up (no split, no compression)."""
        if total == 1:
            return not gzipped or self._gzip is not None
        return total in (self._packed if gzipped else self._shards)

    def forget_splits(self, keep: Iterable[int]) -> None:
        """Free the splits of totals no longer asked for (the piece may live on, unchanged,
        for days, and each total's split is another copy of it)."""
        kept = set(keep)
        for parts in (self._shards, self._packed, self._splits):
            for total in [t for t in parts if t not in kept]:
                parts.pop(total, None)

    def _split(self, total: int) -> list[bytes]:
        """The plain parts of ``total`` shards (split on first use, kept until dropped)."""
        plain = self._shards.get(total)
        if plain is None:
            with self._lock:
                plain = self._shards.get(total)
                if plain is None:
                    if self.shard0:
                        plain = [self.plain] + [b""] * (total - 1)
                    else:
                        plain = split_lines(self.plain, total)
                    self._shards[total] = plain
        return plain

    def shard(self, index: int, total: int, *, gzipped: bool = False) -> bytes:
        """This piece's part of shard ``index`` of ``total`` (plain or as a gzip member)."""
        if total == 1:
            return self.gzip() if gzipped else self.plain
        if not gzipped:
            return self._split(total)[index]
        packed = self._packed.get(total)
        if packed is None:
            streamed = None
            if not self.shard0 and total not in self._shards:
                streamed = self._split_units(total)
            if streamed is None and not self.shard0 and total not in self._shards:
                streamed = split_members(self._blocks(), total)
            if streamed is None:  # the plain parts kept (plain shards asked), or declined
                streamed = [gzip_member(p) if p else b"" for p in self._split(total)]
            packed = self._packed[total] = streamed  # a race compresses twice, never wrongly
        return packed[index]

    def _split_units(self, total: int) -> list[bytes] | None:
        """The gzip shards of a piece of cached members, unit by unit, reusing the units
        the last split piece of this name had (None: no members, or declined)."""
        if self._source is None:
            return None
        head, members = self._source
        prior = LAST.get(self.name, total)
        split = split_units(head, units(members), total, _Router(total), prior)
        if split is None:
            return None
        LAST.put(self.name, total, split)
        self._splits[total] = split
        return split.members

    def _blocks(self) -> Iterator[bytes]:
        """The piece's bytes a block at a time, sliced from its plain bytes while kept
        (a block's copy, never the piece's), else decompressed from its gzip member."""
        data = self._plain
        if data is None:
            yield from self.iter_plain()
            return
        for start in range(0, len(data), STREAM_BLOCK):
            yield data[start : start + STREAM_BLOCK]

    def gzip_splits(self) -> dict[int, list[bytes]]:
        """The gzip shard members built so far, per total (a copy of the mapping)."""
        return dict(self._packed)

    def adopt_split(self, total: int, members: list[bytes]) -> None:
        """Take ``members`` as this piece's gzip shards of ``total`` (built from the piece
        this one was spliced from: patch.spliced_shards), unless it has them already."""
        self._packed.setdefault(total, members)

    def drop_plain_split(self, total: int) -> None:
        """Free the plain parts once their gzip members exist (Prometheus only asks for
        gzip; at 40,000 VMs the parts are another copy of the body per ``total``)."""
        if total in self._packed:
            self._shards.pop(total, None)


def fit_members(pieces: Sequence[Piece], limit: int = MAX_BODY_MEMBERS) -> int:
    """Repack pieces of several gzip members into one member each, those of fewest
    members first, until the whole body is at most ``limit`` members; returns how many
    pieces were repacked.  Idempotent: a repacked piece stays so
    for as long as it is reused, so a scrape of a prepared body only sums counts."""
    total = sum(p.members for p in pieces)
    repacked = 0
    if total <= limit:  # every scrape of a prepared body: a sum, no sort
        return 0
    # Fewest members first: a family of a few cached members is small and stays repacked
    # while it is reused; a large one changes with its objects, which would undo the
    # repack at once and pay it again on the next build.
    for piece in sorted(pieces, key=lambda p: p.members):
        if total <= limit:
            break
        if piece.members <= 1:
            continue
        before = piece.members
        piece.repack()
        total -= before - piece.members
        repacked += 1
    return repacked


def reuse(pieces: Iterable[Piece], previous: Sequence[Piece]) -> list[Piece]:
    """``pieces`` with each one equal to a previous piece of the same name replaced by it,
    so its gzip member and shard splits are not built again."""
    before = {p.name: p for p in previous}
    out = []
    for piece in pieces:
        old = before.get(piece.name)
        out.append(old if old is not None and old.same_bytes(piece) else piece)
    return out


class Chunks:
    """The body (or a shard) as the chunks to write one after the other, with its length.

    Gzipped or sharded, each chunk is bytes already built. Plain and unsharded, a piece
    that kept only its gzip member is decompressed block by block while it is written
    (``lazy``), so a plain scrape never holds a decompressed copy of the body.
    """

    __slots__ = ("_items", "lazy", "length")

    def __init__(self, items: Iterable[bytes | Piece]) -> None:
        self._items: list[bytes | Piece] = [
            i for i in items if (len(i) if isinstance(i, bytes) else i.size)
        ]
        self.length = sum(len(i) if isinstance(i, bytes) else i.size for i in self._items)
        self.lazy = any(isinstance(i, Piece) for i in self._items)

    def __iter__(self) -> Iterator[bytes]:
        for item in self._items:
            if isinstance(item, bytes):
                yield item
            else:
                yield from item.iter_plain()

    def __len__(self) -> int:
        """How many chunks (one per non-empty piece)."""
        return len(self._items)

    def __add__(self, other: Chunks) -> Chunks:
        return Chunks([*self._items, *other._items])


def chunks(
    pieces: Sequence[Piece], *, gzipped: bool, shard: tuple[int, int] | None = None
) -> Chunks:
    """The body (or one shard of it) as chunks to write one after the other."""
    i, n = shard or (0, 1)
    if n == 1 and not gzipped:
        return Chunks(pieces)
    if n == 1:  # a shard is a member per piece at most; the whole body is bounded here
        fit_members(pieces)
    return Chunks(p.shard(i, n, gzipped=gzipped) for p in pieces)
