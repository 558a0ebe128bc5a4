"""The initial sync's ``WaitForUpdatesEx`` pages read by one regular expression.

At 40,000 VMs the sync is bound by the parse worker: from the simulator's first page to the
last, the worker ran at ~0.9 core and the simulator and the exporter's own process idled
(38 s of the ~52 s sync; ``/readyz`` waits for it). ElementTree's feed and its element walk
were two thirds of the parse, the type-aware reader the rest. Nearly every property of a
page is one flat shape (``changeSet/{name, op, val}`` with a scalar ``val``: a name, a state
enum, an ``xsd:int``, a ``dateTime``, a ``ManagedObjectReference``), so one compiled
pattern scanning the bytes in C, and one Python step per property, reads them (as
poll_scan.py does for the polls, perf_scan.py for ``QueryPerf``).

What it reads it reads as :func:`vcenter.soap_values.value` would (the ``xsi:type``'s kind
in pyVmomi's type table; entities unescaped) and converts with the same
``inventory.expand``. A host's sensors (~40 KB a host, half a 10,000-VM sync's bytes) have
a pattern of their own, one match per sensor, made into the stand-ins ``value`` makes. A
property whose value is anything else (an array, a data object: a VM's guest disks and
custom values, an HA state) is cut out, with every other such property of the page, and
read by the XML parser inside the page's own envelope, so its namespaces are the page's.
The page checks itself: every ``objectSet`` and ``changeSet`` element in it, whatever its
prefix, must be one the pattern read; otherwise (a prefix on the vim elements, whitespace
between them, a ``missingSet``, a CDATA section, a numeric character reference, a
carriage return the parser would normalise) it returns None and sync_soap.py parses the
whole page, as before.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from vcenter.soap_values import (
    _BOOL,
    _DATE,
    _FLOAT,
    _INT,
    _TEXT,
    _kind,
    _standin,
    boolean,
    wsdl_type,
)

from .inventory import expand
from .poll_scan import path_of, returnval_of, text_of
from .properties_extra import SENSORS

Change = tuple[str, str, Any]  # op, path, converted value
Update = tuple[str, str, str, list[Change]]  # kind, type, moid, changes
UpdatePage = tuple[str, bool, list[Update]]  # version, truncated, object updates
# The XML parser's reader of one changeSet element (sync_soap): its changes.
ChangeReader = Callable[[ET.Element], list[Change]]

_TOKEN = re.compile(
    rb'<objectSet><kind>([^<]*)</kind><obj type="([^"]+)">([^<]*)</obj>'  # 1-3: an object
    rb"|<changeSet><name>([^<]+)</name><op>([^<]+)</op>"  # 4, 5: a property
    rb"(?:<val(?: xmlns:[\w.-]+=\"[^\"]*\")* (?:xsi|XMLSchema-instance):type=\"([^\"]+)\""
    rb'(?: type="([^"]+)")?>([^<]*)</val>)?'  # 6-8: a scalar's xsi:type, a reference's type
    rb"(</changeSet>)?"  # 9: closed here (a scalar, or no value); else read by the parser
)
_MOREF = b"ManagedObjectReference"
# A host's sensors (HostNumericSensorInfo[]): ~40 KB a host, half a 10,000-VM sync's bytes.
# One pattern per sensor, its fields in the WSDL's order; anything else (a ``fru``, an
# attribute, a field out of order) and the XML parser reads the value.
_SENSORS_VAL = re.compile(
    rb"<val(?: xmlns:[\w.-]+=\"[^\"]*\")* (?:xsi|XMLSchema-instance):type="
    rb'"ArrayOfHostNumericSensorInfo">(.*)</val></changeSet>$',
    re.S,
)
_SENSOR = re.compile(
    rb"<HostNumericSensorInfo><name>([^<]*)</name>"  # 1
    rb"(?:<healthState(?: (?:xsi|XMLSchema-instance):type=\"ElementDescription\")?>"
    rb"<label>([^<]*)</label><summary>([^<]*)</summary><key>([^<]*)</key></healthState>)?"  # 2-4
    rb"<currentReading>(-?\d+)</currentReading><unitModifier>(-?\d+)</unitModifier>"  # 5, 6
    rb"(?:<baseUnits>([^<]*)</baseUnits>)?(?:<rateUnits>([^<]*)</rateUnits>)?"  # 7, 8
    rb"(?:<sensorType>([^<]*)</sensorType>)?(?:<id>([^<]*)</id>)?"  # 9, 10
    rb"(?:<sensorNumber>(-?\d+)</sensorNumber>)?(?:<timeStamp>([^<]*)</timeStamp>)?"  # 11, 12
    rb"</HostNumericSensorInfo>"
)
# The sensor pattern's groups (0-based) that are text fields, by field name.
_SENSOR_TEXT = {
    0: "name",
    6: "baseUnits",
    7: "rateUnits",
    8: "sensorType",
    9: "id",
    11: "timeStamp",
}
_SENSORS_NAME = SENSORS.encode()
_SCALARS: dict[int, Callable[[bytes], Any]] = {
    _TEXT: text_of,
    _INT: int,
    _FLOAT: float,
    _BOOL: lambda raw: boolean(raw.decode()),
    _DATE: lambda raw: datetime.fromisoformat(text_of(raw).strip()),
}
# A value the XML parser reads: (its object's changes, its place there, the object's
# index, the changeSet's name and op as written).
Deferred = tuple[list[Any], int, int, bytes, bytes]
_kinds: dict[bytes, tuple[Callable[[bytes], Any] | None, bool]] = {}


def _reader(xsi: bytes) -> tuple[Callable[[bytes], Any] | None, bool]:
    """How a scalar of this ``xsi:type`` reads, and whether its value is kept as read by a
    plain path (text, numbers, booleans; a date is converted by ``expand``); cached."""
    try:
        return _kinds[xsi]
    except KeyError:
        pass
    kind = _kind(wsdl_type(xsi.decode().rsplit(":", 1)[-1]))
    found = (_SCALARS.get(kind), kind != _DATE)
    _kinds[xsi] = found
    return found


def scan_updates(body: bytes, read: ChangeReader) -> list[Update] | None:
    """The object updates of a page, in document order as sync_soap.parse_updates reads
    them (its version and truncated flag are sync_soap.scan_head's); None when the page is
    not in the shape read here. ``read`` is the XML parser's reader of one changeSet
    element, for the properties whose value is not one scalar."""
    bounds = returnval_of(body)
    if bounds is None:
        return None
    start, end = bounds
    updates: list[Update] = []
    anchors: list[bytes] = []  # each object's opening bytes, to find its deferred values
    changes: list[Any] = []
    deferred: list[Deferred] = []
    properties = 0
    try:
        for kind, type_name, moid, name, op, xsi, ref_type, raw, closed in _TOKEN.findall(
            body, start, end
        ):
            if type_name:
                changes = []
                updates.append((kind.decode(), type_name.decode(), text_of(moid), changes))
                anchors.append(_anchor(kind, type_name, moid))
                continue
            if not updates:
                return None  # a property before any object
            properties += 1
            read_here = _changes(name, op, xsi, ref_type, raw, closed)
            if read_here is None:  # a value the XML parser reads, in its place
                deferred.append((changes, len(changes), len(updates) - 1, name, op))
                changes.append(None)
            else:
                changes += read_here
    except ValueError:  # a number or a date that is not one: let the XML parser judge
        return None
    if body.count(b"objectSet>") != 2 * len(updates) or body.count(b"changeSet>") != 2 * properties:
        return None
    if deferred:
        reads = _reread(body, start, end, anchors, deferred, read)
        if reads is None:
            return None
        for (held, at, _object, _n, _op), got in zip(deferred, reads, strict=True):
            held[at] = got
        for held in {id(d[0]): d[0] for d in deferred}.values():
            held[:] = [c for item in held for c in (item if isinstance(item, list) else [item])]
    return updates


def _changes(
    name: bytes, op: bytes, xsi: bytes, ref_type: bytes, raw: bytes, closed: bytes
) -> list[Change] | None:
    """A scanned property's (op, path, value) changes; None when the XML parser must read
    its value (not closed by the pattern, or not a scalar kind). Raises ValueError for a
    number or a date that is not one."""
    if not closed:
        return None
    path, plain = path_of(name)
    operation = op.decode()
    if not xsi:  # no value: unset
        return [(operation, p, v) for p, v in expand(path, None)]
    if ref_type:
        if xsi.rsplit(b":", 1)[-1] != _MOREF:
            return None
        ref = SimpleNamespace(_moId=text_of(raw), type=ref_type.decode())
        return [(operation, p, v) for p, v in expand(path, ref)]
    reader, kept = _reader(xsi)
    if reader is None:
        return None
    value = reader(raw)
    if plain and kept:
        return [(operation, path, value)]
    return [(operation, p, v) for p, v in expand(path, value)]


def _standin_of(wsdl_name: str) -> type:
    """The stand-in class soap_values.value makes for a data object of this WSDL type."""
    cls = wsdl_type(wsdl_name)
    assert cls is not None
    return _standin(cls)


def _anchor(kind: bytes, type_name: bytes, moid: bytes) -> bytes:
    return (
        b"<objectSet><kind>" + kind + b'</kind><obj type="' + type_name + b'">' + moid + b"</obj>"
    )


def _locate(
    body: bytes, end: int, anchors: list[bytes], deferred: list[Deferred]
) -> list[int] | None:
    """Where each deferred changeSet element starts: after its object's opening, the first
    changeSet of its name and op that the scan left to the XML parser (one of the same
    name it read is passed over)."""
    found = []
    cursor, current = 0, -1
    for _held, _at, index, name, op in deferred:
        if index != current:
            cursor = body.find(anchors[index], cursor, end)
            current = index
            if cursor < 0:
                return None
        opening = b"<changeSet><name>" + name + b"</name><op>" + op + b"</op>"
        while True:
            cursor = body.find(opening, cursor, end)
            if cursor < 0:
                return None
            m = _TOKEN.match(body, cursor, end)
            cursor += 1
            if m is not None and _changes(*m.groups(b"")[3:]) is None:
                break
        found.append(cursor - 1)
    return found


def _reread(
    body: bytes,
    start: int,
    end: int,
    anchors: list[bytes],
    deferred: list[Deferred],
    read: ChangeReader,
) -> list[list[Change]] | None:
    """The ``deferred`` changeSet elements read by the XML parser, cut out and wrapped in
    the page's own envelope, in their order; None when the parser does not read back as
    many."""
    starts = _locate(body, end, anchors, deferred)
    if starts is None:
        return None
    fragments = []
    sensors: dict[int, list[Change]] = {}  # deferred index -> read here
    for i, at in enumerate(starts):
        close = body.find(b"</changeSet>", at, end)
        if close < 0:
            return None
        fragment = body[at : close + len(b"</changeSet>")]
        name, op = deferred[i][3], deferred[i][4]
        if name == _SENSORS_NAME and (read_here := _sensor_changes(fragment, op)) is not None:
            sensors[i] = read_here
        else:
            fragments.append(fragment)
    if not fragments:
        return [sensors[i] for i in range(len(deferred))]
    document = body[: start + len(b"<returnval>")] + b"".join(fragments) + body[end:]
    try:
        root = ET.fromstring(document)
    except ET.ParseError:
        return None
    returnval = next((e for e in root.iter() if e.tag.endswith("}returnval")), None)
    elements = iter(returnval) if returnval is not None else iter(())
    out = []
    for i in range(len(deferred)):
        if i in sensors:
            out.append(sensors[i])
            continue
        element = next(elements, None)
        if element is None:
            return None
        out.append(read(element))
    return None if next(elements, None) is not None else out


def _sensor_changes(fragment: bytes, op: bytes) -> list[Change] | None:
    """A sensors changeSet read by :data:`_SENSOR`, as stand-ins soap_values.value would
    make (the same class, the same fields set), converted by ``expand``; None when any
    byte of the value is not one of the sensors the pattern reads."""
    whole = _SENSORS_VAL.search(fragment)
    if whole is None:
        return None
    content = whole.group(1)
    sensors = []
    pos = 0
    for m in _SENSOR.finditer(content):
        if m.start() != pos:
            return None
        pos = m.end()
        sensor = _standin_of("HostNumericSensorInfo")()
        own = sensor.__dict__
        groups = m.groups()
        for i, field_name in _SENSOR_TEXT.items():  # when present
            if groups[i] is not None:
                own[field_name] = text_of(groups[i])
        if groups[1] is not None:
            health = _standin_of("ElementDescription")()
            health.__dict__.update(
                label=text_of(groups[1]), summary=text_of(groups[2]), key=text_of(groups[3])
            )
            own["healthState"] = health
        own["currentReading"], own["unitModifier"] = int(groups[4]), int(groups[5])
        if groups[10] is not None:
            own["sensorNumber"] = int(groups[10])
        sensors.append(sensor)
    if pos != len(content):
        return None
    operation = op.decode()
    return [(operation, p, v) for p, v in expand(SENSORS, sensors)]
