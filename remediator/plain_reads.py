"""The property collector's ``RetrievePropertiesEx`` read as plain XML, without pyVmomi's
deserialiser, for the remediator's whole-cluster reads.

A decision reads its whole cluster (cluster -> hosts -> VMs, about 1,000 VMs) right after
its alert arrived; pyVmomi builds that answer as Python objects, one SAX callback per
element, 1.1-1.7 s of one core per read with the interpreter's lock held, while every
other decision and step waits (docs/remediator.md, "Benchmark"). The exporter reads the
same answers as plain XML (exporter/poll_soap.py); here the same request, serialised by
pyVmomi's own stub, is posted over the login's session (its cookie, vcenter/soap.py
SoapSession) and the answer is read with ElementTree's C parser, fed in slices so other
threads get the interpreter in between, each value read type-aware by the exporter's
vcenter/soap_values.py (the exporter's, moved down to be shared).

:class:`PlainCollector` stands in for the ``PropertyCollector`` object in
:func:`vcenter.properties.retrieve_pages` (``RetrievePropertiesEx``, ``Continue...``,
``Cancel...``), answering with objects shaped like pyVmomi's ``RetrieveResult``: each
``ObjectContent`` has ``obj`` (a reference: ``_moId`` and ``type``), ``propSet`` (``name``,
``val``) and ``missingSet`` (``path``, ``fault`` as the pyVmomi fault it names), so that
:func:`vcenter.faults.checked_contents` judges a missing property exactly as it does
pyVmomi's answer, and a SOAP fault is raised as the pyVmomi fault it stands for
(vcenter/soap.py fault_from). What is built from the answer is the same snapshot, object by
object and property by property (tests/test_plain_reads.py).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from types import SimpleNamespace
from typing import Any

from vcenter import soap
from vcenter.soap import (
    XSI_TYPE,
    SoapSession,
    cancel_body,
    continue_body,
    fault_named,
    retrieved,
    stub_request,
)
from vcenter.soap_values import value as read_value


class PlainReadFailed(RuntimeError):
    """An answer could not be read as plain XML (the caller reads it again via pyVmomi)."""


class PlainCollector:
    """``collector``'s paged retrieval over ``soap``, answers read as plain XML."""

    def __init__(self, collector: Any, soap: SoapSession) -> None:
        self.collector = collector
        self.moid = str(collector._moId)  # noqa: SLF001 - pyVmomi's reference
        self.soap = soap

    def RetrievePropertiesEx(self, specSet: Any, options: Any) -> Any:  # noqa: N802, N803
        body = stub_request(self.collector, "RetrievePropertiesEx", [specSet, options])
        return result(self.soap.post(body))

    def ContinueRetrievePropertiesEx(self, token: str) -> Any:  # noqa: N802
        return result(self.soap.post(continue_body(self.moid, token)))

    def CancelRetrievePropertiesEx(self, token: str) -> None:  # noqa: N802
        self.soap.post(cancel_body(self.moid, token))

    def close(self) -> None:
        self.soap.close()


def result(body: bytes) -> Any:
    """A ``RetrievePropertiesEx`` answer as a ``RetrieveResult`` look-alike (``token``,
    ``objects``); None for an empty answer, as pyVmomi returns. Anything unreadable is
    :class:`PlainReadFailed`."""
    objects: list[Any] = []
    try:
        token, returned = retrieved(body, lambda element: objects.append(_content(element)))
    except PlainReadFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - unreadable XML, a value of an unexpected shape
        raise PlainReadFailed(f"answer not readable as plain XML: {exc!r}") from exc
    if not returned:
        return None
    return SimpleNamespace(token=token, objects=objects)


def _content(element: ET.Element) -> Any:
    """One ``ObjectContent``: its reference, its properties and its missing ones."""
    obj = element.find(soap._OBJ)
    if obj is None:
        raise PlainReadFailed("an ObjectContent without obj")
    props: list[Any] = []
    missing: list[Any] = []
    for child in element:
        if child.tag == soap._PROPSET:
            val = child.find(soap._VAL)
            props.append(
                SimpleNamespace(
                    name=child.findtext(soap._NAME) or "",
                    val=read_value(val) if val is not None else None,
                )
            )
        elif child.tag == soap._MISSING:
            missing.append(
                SimpleNamespace(path=child.findtext(soap._PATH) or "", fault=_fault(child))
            )
    ref = SimpleNamespace(_moId=obj.text or "", type=obj.get("type") or "")
    return SimpleNamespace(obj=ref, propSet=props, missingSet=missing)


def _fault(missing: ET.Element) -> Exception:
    """A ``missingSet``'s ``LocalizedMethodFault`` as the pyVmomi fault it carries."""
    outer = missing.find(soap._FAULT)
    inner = outer.find(soap._FAULT) if outer is not None else None
    if inner is None:
        raise PlainReadFailed("a missingSet without a fault")
    name = (inner.get(XSI_TYPE) or "").rsplit(":", 1)[-1]
    message = (outer.findtext(soap._MESSAGE) if outer is not None else None) or ""
    return fault_named(name, message)
