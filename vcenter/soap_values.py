"""A SOAP ``val`` element as the plain stand-in of the value pyVmomi would build, type-aware.

Shared by the poll's plain-XML pages (poll_soap.py) and the initial sync's (sync_soap.py),
so both hand :func:`inventory.expand` what pyVmomi's deserialiser would. vim writes a data
object's array field as repeated elements with no ``ArrayOf`` wrapper and no ``xsi:type``
(``<dasVmConfig>..</dasVmConfig><dasVmConfig>..</dasVmConfig>``), so one such element
looks exactly like a scalar field; and a field without ``xsi:type`` (``<key>101</key>``)
may be a string or a number. Only the type's declaration tells: the type of an element is
its ``xsi:type`` when present, else the field's declared type in pyVmomi's own type table
(``VmomiSupport.GetWsdlType`` and the class's property list), exactly the information
pyVmomi's deserialiser uses. A field pyVmomi does not know (a newer API) is read the way
it looks (a number when it parses as one, repeated elements as a list).

Data objects become instances of a class named after their WSDL type (the converters
read ``type(policy).__name__``), with every declared field defaulting to None (an array
to ``()``), as pyVmomi's objects read unset fields.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from pyVmomi import VmomiSupport

XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_XSD = "http://www.w3.org/2001/XMLSchema"
_VIM = "urn:vim25"
_MOREF = "ManagedObjectReference"

# Resolved kinds of a type: how an element of it is read.
_UNKNOWN, _BOOL, _INT, _FLOAT, _DATE, _TEXT, _REF, _ARRAY, _DATA = range(9)

_types: dict[str, type | None] = {}
_fields: dict[type, dict[str, tuple[type, bool]]] = {}
_standins: dict[type, type] = {}


def wsdl_type(name: str) -> type | None:
    """The pyVmomi type called ``name`` in vim25 or XML Schema (cached; None: unknown)."""
    try:
        return _types[name]
    except KeyError:
        pass
    found: type | None = None
    if name == "ArrayOf" + _MOREF:  # not in the table under that name
        found = VmomiSupport.GetVmodlType("vmodl.ManagedObject[]")
    for ns in (_VIM, _XSD) if found is None else ():
        try:
            found = VmomiSupport.GetWsdlType(ns, name)
            break
        except KeyError:
            continue
    _types[name] = found
    return found


def _kind(cls: type | None) -> int:
    if cls is None or cls is object:
        return _UNKNOWN
    if issubclass(cls, list):
        return _ARRAY
    if issubclass(cls, bool):
        return _BOOL
    if issubclass(cls, int):
        return _INT
    if issubclass(cls, float):
        return _FLOAT
    if issubclass(cls, datetime):
        return _DATE
    if issubclass(cls, VmomiSupport.ManagedObject):
        return _REF
    if issubclass(cls, VmomiSupport.DataObject):
        return _DATA
    return _TEXT  # str, enums, binary, type names


def _field_map(cls: type) -> dict[str, tuple[type, bool]]:
    """``cls``'s declared fields: name -> (type, whether it is an array)."""
    try:
        return _fields[cls]
    except KeyError:
        pass
    get: Any = cls._GetPropertyList  # type: ignore[attr-defined]  # noqa: SLF001
    out = {p.name: (p.type, issubclass(p.type, list)) for p in get()}
    _fields[cls] = out
    return out


def _standin(cls: type) -> type:
    """A plain class named after ``cls``'s WSDL type, unset fields reading as pyVmomi's."""
    try:
        return _standins[cls]
    except KeyError:
        pass
    name = str(getattr(cls, "_wsdlName", cls.__name__))
    defaults = {f: (() if is_array else None) for f, (_t, is_array) in _field_map(cls).items()}
    made = type(name, (SimpleNamespace,), defaults)
    _standins[cls] = made
    return made


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _scalar(text: str) -> Any:
    """A field of unknown type: a number if it reads as one (as the untyped parse did)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def boolean(text: str) -> bool:
    """An ``xsd:boolean``'s text (the scanners, poll_scan.py and sync_scan.py, read it so too)."""
    return text.strip() in ("true", "1")


def value(element: ET.Element, declared: type | None = None) -> Any:
    """``element`` (a ``val``, or a field of a data object declared as ``declared``) read
    as pyVmomi would: its ``xsi:type`` when it has one, else the declared type."""
    xsi = element.get(XSI_TYPE)
    cls = declared
    if xsi:
        name = xsi.rsplit(":", 1)[-1]
        if name == _MOREF:
            return SimpleNamespace(_moId=element.text or "", type=element.get("type"))
        cls = wsdl_type(name) or declared
        if cls is None and name.startswith("ArrayOf"):  # an array of a type pyVmomi lacks
            return [value(child, None) for child in element]
    kind = _kind(cls)
    text = element.text or ""
    if kind == _TEXT:
        return text
    if kind == _INT:
        return int(text)
    if kind == _FLOAT:
        return float(text)
    if kind == _BOOL:
        return boolean(text)
    if kind == _DATE:
        return datetime.fromisoformat(text.strip())
    if kind == _REF:
        return SimpleNamespace(_moId=text, type=element.get("type"))
    if kind == _ARRAY:
        item = getattr(cls, "Item", None)
        return [value(child, item) for child in element]
    if kind == _DATA:
        assert cls is not None
        return _data(element, cls)
    return _untyped(element, text, bool(xsi))


def _data(element: ET.Element, cls: type) -> Any:
    fields = _field_map(cls)
    bag = _standin(cls)()
    own = bag.__dict__
    for child in element:
        name = _local(child.tag)
        declared = fields.get(name)
        if declared is None:  # not in pyVmomi's table: read it the way it looks
            _add_untyped(own, name, value(child, None))
            continue
        field_type, is_array = declared
        if is_array:
            item = getattr(field_type, "Item", None)
            own.setdefault(name, []).append(value(child, item))
        else:
            own[name] = value(child, field_type)
    return bag


def _add_untyped(own: dict[str, Any], name: str, item: Any) -> None:
    previous = own.get(name)
    if previous is None:
        own[name] = item
    elif isinstance(previous, list):
        previous.append(item)
    else:
        own[name] = [previous, item]


def _untyped(element: ET.Element, text: str, typed: bool) -> Any:
    children = list(element)
    if not children:
        return text if typed else _scalar(text)
    bag = SimpleNamespace()
    for child in children:
        _add_untyped(bag.__dict__, _local(child.tag), value(child, None))
    return bag


def is_a(obj: Any, cls: type) -> bool:
    """``isinstance(obj, cls)`` for pyVmomi's objects and for the stand-ins :func:`value`
    makes (named after their WSDL type, so the class table says what they are a kind of:
    a ``ClusterAntiAffinityRuleSpec`` stand-in is a ``vim.cluster.RuleInfo``)."""
    if isinstance(obj, cls):
        return True
    if not isinstance(obj, SimpleNamespace):
        return False
    found = wsdl_type(type(obj).__name__)
    return found is not None and issubclass(found, cls)
