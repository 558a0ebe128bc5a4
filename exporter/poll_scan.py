"""A poll's ``RetrievePropertiesEx`` page read by one regular expression, not an XML parser.

Profiled at 40,000 VMs (py-spy over 90 s of the steady state, counters and host sensors
on), the poll's parse was a third of the parse worker's CPU, some 6 s a minute: 43,006
objects in pages of 1,000 every 20 s, ElementTree's ``XMLPullParser.feed`` alone half of it,
walking the elements and the type-aware reader (soap_values.py) the rest. Almost every
object in a poll is one flat shape (``objects/{obj, propSet/{name, val}*}`` with scalar
values: the quickStats' ``xsd:int``/``xsd:long``, ``overallStatus``'s enum), so one
compiled pattern scanning the bytes in C, and one Python step per property, does the
same for a fraction of the work (as perf_scan.py does for ``QueryPerf``).

What it reads it reads as :func:`vcenter.soap_values.value` would: the ``xsi:type``'s
kind in pyVmomi's type table (text, enum, integer, float, boolean; any other kind, such as
a date or a reference, and the object is read by the XML parser), entities unescaped.
An object with any value that is not one scalar element (a cluster's ``summary``, a data
object) is cut out of the page and read by the XML parser, wrapped in the page's own
envelope, so its namespaces are the page's. The page checks itself: every ``objects``,
``propSet`` and ``token`` element in it must be one the pattern read, whatever its
prefix; otherwise (a prefix on the vim elements, whitespace between them, a
``missingSet``, a CDATA section, a numeric character reference, a carriage return) it
returns None and the whole page goes to the XML parser (poll_soap.parse_page), as before.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from xml.sax.saxutils import unescape

from vcenter.soap import retrieved
from vcenter.soap_values import _BOOL, _FLOAT, _INT, _TEXT, _kind, boolean, wsdl_type

from .inventory import expand, plain_path

Row = tuple[str, str, dict[str, Any]]  # type, moid, {path: converted value}
Missing = tuple[str, str, list[tuple[str, str, str]]]  # type, moid, [(path, fault, message)]
Page = tuple[str | None, list[Row], list[Missing]]  # token, rows, objects with a missingSet
Polled = Mapping[str, Sequence[str]]  # type name -> the paths asked for
# The XML parser's reader of one ObjectContent element (poll_soap._object).
ObjectReader = Callable[[Any, Polled, list[Row], list[Missing]], None]

_TOKEN = re.compile(  # findall: a group that did not take part reads b""
    rb'<objects><obj type="([^"]+)">([^<]*)</obj>'  # 1, 2: an object's type and moid
    rb"|<propSet><name>([^<]+)</name><val(?: xmlns:[\w.-]+=\"[^\"]*\")*"
    rb' (?:xsi|XMLSchema-instance):type="([^"]+)">([^<]*)</val></propSet>'  # 3-5: a scalar
    rb"|<propSet><name>([^<]+)</name>"  # 6: a property whose value is not one scalar
    rb"|<token>([^<]+)</token>"  # 7: the paging token
)
_READERS: dict[int, Callable[[str], Any]] = {
    _TEXT: str,
    _INT: int,
    _FLOAT: float,
    _BOOL: boolean,
}
_kinds: dict[bytes, Callable[[str], Any] | None] = {}
_names: dict[bytes, tuple[str, bool]] = {}  # a propSet name -> (path, plain_path(path))
_DECLINE = (b"&#", b"<![CDATA[", b"missingSet", b"\r")  # \r: the parser normalises it


def _reader(xsi: bytes) -> Callable[[str], Any] | None:
    """How a scalar of this ``xsi:type`` reads (cached; None: not a scalar kind)."""
    try:
        return _kinds[xsi]
    except KeyError:
        pass
    found = _READERS.get(_kind(wsdl_type(xsi.decode().rsplit(":", 1)[-1])))
    _kinds[xsi] = found
    return found


def path_of(raw: bytes) -> tuple[str, bool]:
    """A property's name as written -> (its path, ``plain_path(path)``), cached (the
    initial sync's scanner reads its names so too)."""
    try:
        return _names[raw]
    except KeyError:
        pass
    path = text_of(raw)
    if len(_names) >= 1024:  # the followed paths are a few dozen; bounded all the same
        _names.clear()
    found = _names[raw] = (path, plain_path(path))
    return found


def text_of(raw: bytes) -> str:
    """An element's text as the XML parser gives it (the predefined entities unescaped)."""
    text = raw.decode()
    return unescape(text, {"&quot;": '"', "&apos;": "'"}) if "&" in text else text


def returnval_of(body: bytes) -> tuple[int, int] | None:
    """Where the answer's ``<returnval>`` opens and closes; None for an answer a scanner
    declines whole (the marks the XML parser reads otherwise than a pattern would), an
    empty answer, or one in another shape. The initial sync's scanner asks it too."""
    if any(mark in body for mark in _DECLINE):
        return None
    head = body.find(b"<returnval>")
    tail = body.rfind(b"</returnval>")
    if head < 0 or tail < 0:
        return None
    return head, tail


def scan_page(body: bytes, polled: Polled, read: ObjectReader) -> Page | None:
    """A page as (token, rows, missing) like poll_soap.parse_page, or None when it is not in
    the shape read here. ``read`` is the XML parser's object reader, for the objects with
    a value that is not one scalar."""
    bounds = returnval_of(body)
    if bounds is None:
        return None
    head, tail = bounds
    rows: list[Row] = []
    missing: list[Missing] = []
    token: str | None = None
    values: dict[str, Any] | None = None
    objects = props = tokens = 0
    reparse: list[tuple[bytes, bytes]] = []  # (type, moid): objects for the XML parser
    current = (b"", b"")
    try:
        for type_name, moid, name, xsi, raw, _other, found in _TOKEN.findall(body, head, tail):
            if type_name:
                objects += 1
                current = (type_name, moid)
                values = dict.fromkeys(polled.get(type_name.decode(), ()))
                rows.append((type_name.decode(), text_of(moid), values))
            elif found:
                tokens += 1
                token = text_of(found)
            elif values is None:
                return None  # a property before any object
            else:
                props += 1
                reader = _reader(xsi) if xsi else None
                if reader is None:  # the whole object is read by the XML parser
                    if not reparse or reparse[-1] != current:
                        reparse.append(current)
                    continue
                path, plain = path_of(name)
                value = reader(raw) if reader is int else reader(text_of(raw))
                if plain:
                    values[path] = value
                else:
                    values.update(expand(path, value))
    except ValueError:  # a number that is not one: let the XML parser judge the page
        return None
    if (
        body.count(b"objects>") != 2 * objects
        or body.count(b"propSet>") != 2 * props
        or body.count(b"token>") != 2 * tokens
    ):
        return None
    if reparse:
        reread = _reread(body, head, reparse, rows, polled, read, missing)
        if reread is None:
            return None
        rows = reread
    return token, rows, missing


def _reread(
    body: bytes,
    head: int,
    objects: list[tuple[bytes, bytes]],
    rows: list[Row],
    polled: Polled,
    read: ObjectReader,
    missing: list[Missing],
) -> list[Row] | None:
    """``rows`` with ``objects`` (type, moid) read by the XML parser instead: cut
    out and parsed inside the page's own envelope (its namespace declarations); None when
    the parser does not read back exactly those objects."""
    opening = body[: head + len(b"<returnval>")]
    closing = body[body.rfind(b"</returnval>") :]
    fragments = []
    for type_name, moid in objects:
        at = body.find(b'<objects><obj type="' + type_name + b'">' + moid + b"</obj>", head)
        end = body.find(b"</objects>", at)
        if at < 0 or end < 0:
            return None
        fragments.append(body[at : end + len(b"</objects>")])
    reread: list[Row] = []
    retrieved(opening + b"".join(fragments) + closing, lambda e: read(e, polled, reread, missing))
    by_moid = {(row[0], row[1]): row for row in reread}
    if len(by_moid) != len(objects):
        return None
    out = [by_moid.pop((row[0], row[1]), row) for row in rows]
    return None if by_moid else out
