"""The poll's paged ``RetrievePropertiesEx`` as plain XML, without pyVmomi's deserialiser.

At 10,000 VMs a poll of the never-announced properties (poller.py) is some 11,000
ObjectContents every ``sync.poll_interval_seconds``; pyVmomi builds each as Python objects,
one SAX callback per element, and ``py-spy --gil`` showed that deserialising holding the
exporter's GIL 52 % of the time, ahead of the follower (detection) and of ``/metrics``.
Here the poller's thread sends the same request over the same session (the cookie and API
version pyVmomi logged in with, perf_soap.SoapSession) and reads the answer's bytes; the
parse into plain ``(type, moid, {path: value})`` rows runs in a worker process
(perf_worker.ParseWorker, ``sync.poll_worker_process``) or, switched off, in-process fed in
slices. Values come out exactly as :func:`inventory.expand` makes them from pyVmomi's
objects (the same converter runs on a plain stand-in of each value), and each object's
``missingSet`` travels back as ``(path, fault name, message)`` so that the poller judges it
with ``vcenter.faults.checked_contents``, as the pyVmomi path does.

Only the shapes a RetrievePropertiesEx answer has are read: ``returnval/token``,
``returnval/objects/{obj, propSet/{name, val}, missingSet/{path, fault/{fault,
localizedMessage}}}``. A ``val``'s ``xsi:type`` says how to read it (xsd scalars, enums as
strings, ManagedObjectReference as its moid, ``ArrayOf*`` as lists, any other data object
as an attribute bag its converter reads like pyVmomi's object); inside a data object the
field's declared type does (exporter/soap_values.py, shared with the initial sync).
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from typing import Any

from vcenter.soap import (  # noqa: F401 - shared with the remediator, re-exported here
    _FAULT,
    _MESSAGE,
    _MISSING,
    _NAME,
    _OBJ,
    _OBJECTS,
    _PATH,
    _PROPSET,
    _TOKEN,
    _VAL,
    XSI_TYPE,
    cancel_body,
    continue_body,
    ended_elements,
    method_body,
    retrieved,
    stub_request,
)

from .inventory import expand
from .poll_scan import Missing, Page, Polled, Row, scan_page
from .soap_values import value as read_value


def retrieve_body(collector: Any, spec: Any, page_objects: int) -> bytes:
    """``RetrievePropertiesEx(spec, maxObjects)`` serialised by pyVmomi itself (once a poll,
    a few hundred bytes), so the request is exactly the one the pyVmomi path sends."""
    from pyVmomi import vmodl  # noqa: PLC0415 - only the exporter's process needs it

    options = vmodl.query.PropertyCollector.RetrieveOptions(maxObjects=page_objects)
    return stub_request(collector, "RetrievePropertiesEx", [[spec], options])


def _object(element: ET.Element, polled: Polled, rows: list[Row], missing: list[Missing]) -> None:
    obj = element.find(_OBJ)
    if obj is None:
        return
    type_name, moid = obj.get("type") or "", obj.text or ""
    values: dict[str, Any] = dict.fromkeys(polled.get(type_name, ()))  # unset: None
    faults: list[tuple[str, str, str]] = []
    for child in element:
        if child.tag == _PROPSET:
            name = child.findtext(_NAME) or ""
            val = child.find(_VAL)
            for path, value in expand(name, read_value(val) if val is not None else None):
                values[path] = value
        elif child.tag == _MISSING:
            outer = child.find(_FAULT)
            inner = outer.find(_FAULT) if outer is not None else None
            fault = (inner.get(XSI_TYPE) or "").rsplit(":", 1)[-1] if inner is not None else ""
            message = (outer.findtext(_MESSAGE) if outer is not None else None) or ""
            faults.append((child.findtext(_PATH) or "", fault, message))
    rows.append((type_name, moid, values))
    if faults:
        missing.append((type_name, moid, faults))


def parse_page(body: bytes, polled: Polled) -> Page:
    """A RetrievePropertiesEx / ContinueRetrievePropertiesEx answer -> (token, rows, missing);
    each row has every path ``polled`` asks of its type, None where the answer has none.

    Scanned (poll_scan.py, a fraction of the XML parse's CPU), unless the page is not in
    the shape the scanner reads; then parsed as XML (:func:`parse_page_xml`)."""
    scanned = scan_page(body, polled, _object)
    return scanned if scanned is not None else parse_page_xml(body, polled)


def parse_page_xml(body: bytes, polled: Polled) -> Page:
    """:func:`parse_page` by the XML parser: fed to the C parser in 64 KB slices and each
    object dropped once read (as perf_soap.parse_response): in-process, other threads get
    the GIL between slices, and the tree never holds the whole page."""
    rows: list[Row] = []
    missing: list[Missing] = []
    token, _ = retrieved(body, lambda element: _object(element, polled, rows, missing))
    return token, rows, missing


def parse_page_traced(body: bytes, polled: Polled) -> tuple[int, Page]:
    """In the worker process: (its pid, the parsed page)."""
    return os.getpid(), parse_page(body, polled)
