"""SOAP calls without pyVmomi's object (de)serialisation, for both daemons.

pyVmomi builds every answer as Python objects, one callback per XML element, with the
interpreter's lock held; at the sizes both daemons read (a 10,000-VM poll, a 1,000-VM
cluster before each remediation decision) that was the bulk of their CPU. Here a request
(serialised by pyVmomi's own stub where it has one, :func:`stub_request`) is posted on the
session pyVmomi logged in (its cookie and API version, :class:`SoapSession`), the answer is
read with ElementTree's C parser in slices (:func:`ended_elements`), and a SOAP fault comes
back as the pyVmomi exception it stands for (:func:`fault_from`), so error handling is the
same as through pyVmomi. Moved here from exporter/perf_soap.py and exporter/poll_soap.py
when the remediator began reading its cluster snapshots so (remediator/plain_reads.py).
"""

from __future__ import annotations

import gzip
import http.client
import ssl
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from typing import Any, Self
from xml.sax.saxutils import escape

from pyVmomi import vim, vmodl

from . import session
from .config import VCenterConfig
from .session import ssl_context

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


FEED_BYTES = 64 << 10


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
    def for_vcenter(cls, si: Any, vc: VCenterConfig, timeout: float | None = None) -> Self:
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


_RETURNVAL = f"{VIM}returnval"
_OBJECTS, _TOKEN, _OBJ, _PROPSET, _MISSING = (
    f"{VIM}objects",
    f"{VIM}token",
    f"{VIM}obj",
    f"{VIM}propSet",
    f"{VIM}missingSet",
)


_NAME, _VAL, _PATH, _FAULT, _MESSAGE = (
    f"{VIM}name",
    f"{VIM}val",
    f"{VIM}path",
    f"{VIM}fault",
    f"{VIM}localizedMessage",
)


def retrieved(body: bytes, on_object: Callable[[ET.Element], None]) -> tuple[str | None, bool]:
    """Walk a ``(Continue)RetrievePropertiesEx`` answer: each ``ObjectContent`` handed to
    ``on_object`` as it ends, then dropped (the tree never holds the whole page); returns
    the answer's paging token and whether it had a ``returnval`` at all (an empty answer
    has none). One walk for the exporter's polls and the remediator's reads."""
    token: str | None = None
    returned = False
    for element in ended_elements(body):
        tag = element.tag
        if tag == _OBJECTS:
            on_object(element)
            element.clear()
        elif tag == _TOKEN:
            token = element.text or token
        elif tag == _RETURNVAL:
            returned = True
    return token, returned


def method_body(method: str, collector: str, inner: str) -> bytes:
    """A PropertyCollector method's SOAP request (``inner``: its arguments as XML)."""
    head = _ENVELOPE.replace("<QueryPerf ", f"<{method} ")
    end = _END.replace("</QueryPerf>", f"</{method}>")
    this = f'<_this type="PropertyCollector">{escape(collector)}</_this>'
    return f"{head}{this}{inner}{end}".encode()


def continue_body(collector: str, token: str) -> bytes:
    return method_body("ContinueRetrievePropertiesEx", collector, f"<token>{escape(token)}</token>")


def cancel_body(collector: str, token: str) -> bytes:
    return method_body("CancelRetrievePropertiesEx", collector, f"<token>{escape(token)}</token>")


def stub_request(collector: Any, method: str, args: list[Any]) -> bytes:
    """The SOAP request of ``collector.method(*args)`` as pyVmomi's own stub serialises it
    (the plain-XML poll and initial sync send exactly what the pyVmomi path would)."""
    from pyVmomi import vmodl  # noqa: PLC0415 - only the exporter's process needs it

    stub = collector._stub  # noqa: SLF001
    this = vmodl.query.PropertyCollector(str(collector._moId), stub)  # noqa: SLF001
    info = this._GetMethodInfo(method)  # noqa: SLF001
    body: bytes = stub.SerializeRequest(this, info, args)
    return body
