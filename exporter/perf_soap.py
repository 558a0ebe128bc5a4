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

import gzip
import http.client
import ssl
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from pyVmomi import vim, vmodl

from vcenter import session
from vcenter.config import VCenterConfig
from vcenter.session import ssl_context

VIM = "{urn:vim25}"
SOAP_ENV = "{http://schemas.xmlsoap.org/soap/envelope/}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_ENVELOPE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    '<soapenv:Body><QueryPerf xmlns="urn:vim25">'
)
_END = "</QueryPerf></soapenv:Body></soapenv:Envelope>"
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


FEED_BYTES = 64 << 10


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


def ended_elements(body: bytes) -> Iterator[ET.Element]:
    """The elements of ``body`` as each ends, the answer fed to the C parser in
    ``FEED_BYTES`` slices: in-process, other threads get the GIL between slices, and an
    element the caller clears once read never makes the tree hold the whole answer. The
    one reading loop of the QueryPerf, poll and initial-sync answers."""
    parser: Any = ET.XMLPullParser(events=("end",))
    for start in range(0, len(body), FEED_BYTES):
        parser.feed(body[start : start + FEED_BYTES])
        yield from _elements(parser)
    parser.close()
    yield from _elements(parser)


def _elements(parser: Any) -> Iterator[ET.Element]:
    for _event, element in parser.read_events():
        if isinstance(element, ET.Element):
            yield element


def fault_from(body: bytes, status: int) -> Exception:
    """A SOAP fault as the pyVmomi exception it stands for."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return http.client.HTTPException(f"HTTP {status} without a SOAP fault")
    fault = root.find(f"{SOAP_ENV}Body/{SOAP_ENV}Fault")
    if fault is None:
        return http.client.HTTPException(f"HTTP {status} without a SOAP fault")
    message = fault.findtext("faultstring") or ""
    details = fault.find("detail")
    detail = details[0] if details is not None and len(details) else None
    name = ""
    if detail is not None:
        name = detail.get(XSI_TYPE) or detail.tag.split("}")[-1].removesuffix("Fault")
        name = name.split(":")[-1]
    if name == "ManagedObjectNotFound" and detail is not None:
        obj = detail.find(f"{VIM}obj")
        if obj is None:
            obj = detail.find("obj")
        moid = obj.text if obj is not None and obj.text else ""
        cls = getattr(vim, obj.get("type", "ManagedEntity") if obj is not None else "", None)
        ref = cls(moid) if cls is not None else vim.ManagedEntity(moid)
        return vmodl.fault.ManagedObjectNotFound(msg=message, obj=ref)
    return fault_named(name, message)


def fault_named(name: str, message: str) -> Exception:
    """The pyVmomi fault class called ``name`` (vim.fault, vmodl.fault, vmodl.query: the
    property collector's InvalidProperty), or a MethodFault naming it."""
    cls: Any = (
        getattr(vim.fault, name, None)
        or getattr(vmodl.fault, name, None)
        or getattr(vmodl.query, name, None)
    )
    if not (isinstance(cls, type) and issubclass(cls, Exception)):
        return vmodl.MethodFault(msg=f"{name}: {message}" if name else message)
    make: Any = cls  # pyVmomi's faults take their fields as keywords
    exc: Exception = make(msg=message)
    return exc


class SoapSession:
    """SOAP calls on the session of ``si`` (its cookie and API version), over keep-alive
    connections of its own, one per thread; faults raised as pyVmomi's. Thread-safe."""

    def __init__(
        self,
        si: Any,
        *,
        host: str,
        port: int,
        path: str,
        context: ssl.SSLContext | None,
        timeout: float,
    ) -> None:
        stub = si._stub  # noqa: SLF001 - the session cookie and API version pyVmomi uses
        self.cookie = str(stub.cookie)
        self.version = str(stub.versionId)
        self.host, self.port, self.path = host, port, path
        self.context = context
        self.timeout = timeout
        self._local = threading.local()
        self._connections: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    @classmethod
    def for_vcenter(cls, si: Any, vc: VCenterConfig, timeout: float | None = None) -> SoapSession:
        """A session on ``vc``: its address, TLS settings and (unless given) timeout."""
        https = vc.url.lower().startswith("https")
        return cls(
            si,
            host=vc.host,
            port=vc.port,
            path=vc.path,
            context=ssl_context(vc) if https else None,
            timeout=vc.timeout_seconds if timeout is None else timeout,
        )

    @classmethod
    def usable(cls, si: Any) -> bool:
        cookie = getattr(getattr(si, "_stub", None), "cookie", None)
        return isinstance(cookie, str) and bool(cookie)

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        idle = time.monotonic() - getattr(self._local, "used", 0.0)
        if conn is not None and idle >= session.IDLE_REUSE_SECONDS:
            self._drop(conn)  # the server may have closed it meanwhile
            conn = None
        if conn is None:
            if self.context is not None:
                conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout, context=self.context
                )
            else:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _drop(self, conn: http.client.HTTPConnection) -> None:
        conn.close()
        self._local.conn = None
        with self._lock:
            if conn in self._connections:
                self._connections.remove(conn)

    def post(self, body: bytes) -> bytes:
        """One SOAP request; the answer's bytes, or its fault raised as pyVmomi's."""
        headers = {
            "Cookie": self.cookie,
            "SOAPAction": self.version,
            "Content-Type": "text/xml; charset=UTF-8",
            "Accept-Encoding": "identity",
        }
        conn = self._connection()
        try:
            conn.request("POST", self.path, body, headers)
            resp = conn.getresponse()
            data = resp.read()
        except BaseException:
            self._drop(conn)  # a broken keep-alive connection is reopened next time
            raise
        finally:
            self._local.used = time.monotonic()
        if resp.getheader("Content-Encoding", "").lower() == "gzip":
            data = gzip.decompress(data)
        if resp.status != 200:
            raise fault_from(data, resp.status)
        return data

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()


class SoapQueryPerf(SoapSession):
    """``QueryPerf`` on the session of ``si``; thread-safe (a connection per thread)."""

    def __init__(
        self,
        si: Any,
        perf_manager: str,
        *,
        host: str,
        port: int,
        path: str,
        context: ssl.SSLContext | None,
        timeout: float,
    ) -> None:
        super().__init__(si, host=host, port=port, path=path, context=context, timeout=timeout)
        self.perf_manager = perf_manager

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
