"""``QueryPerf`` over the collector's session, without pyVmomi's object (de)serialisation.

At 10,000 VMs a collection returns some 200,000 metric series. pyVmomi builds and parses
them as Python objects, one callback per XML element, which took a whole core every 20 s on
the development machine; the same answer parsed by ElementTree's C parser into small tuples
takes a tenth of that. This module speaks exactly one method, with the session pyVmomi
logged in (its cookie and API version), on keep-alive connections of its own (one per
worker thread), and turns SOAP faults back into pyVmomi fault objects so error handling is
the same as through pyVmomi.
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from vcenter.config import VCenterConfig
from vcenter.soap import (  # noqa: F401 - shared with the remediator, re-exported here
    _END,
    _ENVELOPE,
    FEED_BYTES,
    SOAP_ENV,
    VIM,
    XSI_TYPE,
    SoapSession,
    ended_elements,
    fault_from,
    fault_named,
)

_PARSE_LOCK = threading.Lock()  # one parse at a time in the process (see query())


# The shapes convert_metrics() reads (the attribute names pyVmomi's objects have). Slotted
# and not frozen: a frozen dataclass's __init__ costs 2.5x as much, and a collection at
# 10,000 VMs builds some 400,000 of them.
@dataclass(slots=True)
class MoRef:
    _moId: str  # noqa: N815 - pyVmomi's attribute name


@dataclass(slots=True)
class SampleInfo:
    interval: int


@dataclass(slots=True)
class MetricId:
    counterId: int  # noqa: N815
    instance: str


@dataclass(slots=True)
class Series:
    id: MetricId
    value: list[float]


@dataclass(slots=True)
class EntityMetric:
    entity: MoRef
    sampleInfo: list[SampleInfo]  # noqa: N815
    value: list[Series]


def request_body(
    perf_manager: str, specs: Sequence[tuple[str, str, str]], interval_id: int
) -> bytes:
    """The SOAP request for ``specs``: (managed object type, moid, metricId XML)."""
    parts = [_ENVELOPE, f'<_this type="PerformanceManager">{escape(perf_manager)}</_this>']
    for type_name, moid, metric_ids in specs:
        parts.append(
            f"<querySpec><entity type={quoteattr(type_name)}>{escape(moid)}</entity>"
            f"<maxSample>1</maxSample>{metric_ids}<intervalId>{interval_id}</intervalId>"
            "<format>normal</format></querySpec>"
        )
    parts.append(_END)
    return "".join(parts).encode()


def metric_ids_xml(ids: Sequence[tuple[int, str]]) -> str:
    return "".join(
        f"<metricId><counterId>{cid}</counterId><instance>{escape(inst)}</instance></metricId>"
        for cid, inst in ids
    )


_RETURNVAL, _ENTITY, _SAMPLE_INFO, _INTERVAL = (
    f"{VIM}returnval",
    f"{VIM}entity",
    f"{VIM}sampleInfo",
    f"{VIM}interval",
)
_VALUE, _ID, _COUNTER_ID, _INSTANCE = f"{VIM}value", f"{VIM}id", f"{VIM}counterId", f"{VIM}instance"


def _series(element: ET.Element) -> Series | None:
    counter, instance = -1, ""
    values: list[float] = []
    for child in element:
        if child.tag == _VALUE:
            text = child.text or ""
            if "," in text:  # CSV format: one comma-separated string
                values.extend(float(x) for x in text.split(",") if x.strip())
            elif text:
                values.append(float(text))
        elif child.tag == _ID:
            for part in child:
                if part.tag == _COUNTER_ID:
                    counter = int(part.text or -1)
                elif part.tag == _INSTANCE:
                    instance = part.text or ""
    return Series(MetricId(counter, instance), values) if counter >= 0 else None


def _entity(rv: ET.Element) -> EntityMetric | None:
    moid: str | None = None
    infos: list[SampleInfo] = []
    series: list[Series] = []
    for child in rv:
        tag = child.tag
        if tag == _VALUE:
            s = _series(child)
            if s is not None:
                series.append(s)
        elif tag == _ENTITY:
            moid = child.text or ""
        elif tag == _SAMPLE_INFO:
            interval = next((c.text for c in child if c.tag == _INTERVAL), None)
            infos.append(SampleInfo(int(interval or 20)))
    return EntityMetric(MoRef(moid), infos, series) if moid is not None else None


def parse_response(body: bytes) -> list[EntityMetric]:
    """A QueryPerfResponse into :class:`EntityMetric` tuples (children walked directly:
    ElementTree's path queries cost more than the parse at this size).

    Fed to the C parser in 64 KB slices: one ``fromstring`` of a multi-megabyte answer held
    the GIL for its whole parse (expat never releases it), and every ``/metrics`` scrape in
    the process waited behind it; between slices other threads get their turn. Each entity
    is dropped from the tree once read, so the tree never holds the whole answer either.
    (The parse worker reads the usual answer with perf_scan.py instead, a fraction of
    the CPU, and this only where that declines.)
    """
    out: list[EntityMetric] = []
    for element in ended_elements(body):
        if element.tag == _RETURNVAL:
            entity = _entity(element)
            if entity is not None:
                out.append(entity)
            element.clear()
    return out


class SoapQueryPerf(SoapSession):
    """``QueryPerf`` on the session of ``si``; thread-safe (a connection per thread)."""

    perf_manager = ""  # the PerformanceManager's moid (for_manager)

    @classmethod
    def for_manager(
        cls, si: Any, vc: VCenterConfig, perf_manager: str, timeout: float
    ) -> SoapQueryPerf:
        """The session on ``vc`` (as :meth:`SoapSession.for_vcenter`) asking ``perf_manager``."""
        soap = cls.for_vcenter(si, vc, timeout)
        soap.perf_manager = perf_manager
        return soap

    def query(self, specs: Sequence[tuple[str, str, str]], interval_id: int) -> list[EntityMetric]:
        data = self.query_raw(specs, interval_id)
        # Queries wait on vCenter in parallel; parsing holds the GIL anyway, and one parser
        # at a time leaves the event loop (serving /metrics) a larger share of it.
        with _PARSE_LOCK:
            return parse_response(data)

    def query_raw(self, specs: Sequence[tuple[str, str, str]], interval_id: int) -> bytes:
        """The answer's bytes, unparsed (for the worker process); faults raised as in
        :meth:`query`."""
        return self.post(request_body(self.perf_manager, specs, interval_id))
