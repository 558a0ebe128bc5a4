"""Re-reads the followed properties that vCenter never announces.

The vSphere API reference: VirtualMachineQuickStats and HostListSummaryQuickStats "do not
support notification, for scalability reasons", so their changes never reach a
``WaitForUpdatesEx`` client; for ``overallStatus`` (and the ``overallStatus`` inside a
cluster's ``summary``) "vSphere Servers might not generate property collector update
notifications".  Followed alone they would freeze at the last full sync.  The vCenter's
poller thread (pollers.py, its own session, never the event loop) calls :func:`poll` every
``sync.poll_interval_seconds``: one paged ``RetrievePropertiesEx`` over a ContainerView of
the followed types, one call per page of objects, folded into the same inventory.  It is
not the follower's thread: at 40,000 VMs a poll takes longer than its interval, and a
change must never wait behind it. Nor pyVmomi's deserialiser on the exporter's GIL, which
held it 52 % of the time at 10,000 VMs: the pages are read as plain XML and parsed in a
worker process (:class:`SoapPoll`, exporter/poll_soap.py), into the same rows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import BrokenExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from types import SimpleNamespace
from typing import Any

from vcenter.faults import checked_contents
from vcenter.properties import PAGE_OBJECTS, retrieve_pages, view_filter_spec

from .inventory import PROPERTIES, Inventory, expand, revision_mark
from .perf_soap import SoapSession, fault_named
from .perf_worker import ParseWorker
from .poll_soap import (
    Missing,
    Page,
    Row,
    cancel_body,
    continue_body,
    parse_page,
    parse_page_traced,
    retrieve_body,
)


def polled_path(type_name: str, path: str) -> bool:
    """Whether vCenter may change ``path`` without telling property collectors."""
    if path == "overallStatus" or path.startswith("summary.quickStats"):
        return True
    return type_name == "ClusterComputeResource" and path == "summary"


POLLED: dict[str, list[str]] = {
    t: [p for p in paths if polled_path(t, p)] for t, paths in PROPERTIES.items()
}
POLLED = {t: paths for t, paths in POLLED.items() if paths}


class SoapPoll:
    """The plain-XML path of :func:`poll` (exporter/poll_soap.py): the poller's session,
    and the worker process that parses the pages (None: parse in-process)."""

    def __init__(self, session: SoapSession, worker: ParseWorker | None) -> None:
        self.session = session
        self.worker = worker

    def parse(self, body: bytes) -> Page:
        if self.worker is None:
            return parse_page(body, POLLED)
        try:
            page: Page = self.worker.call(parse_page_traced, body, POLLED)
        except (BrokenExecutor, FutureTimeout) as exc:
            # This poll fails (its values stay, the next one has a new worker); not the
            # session: a TimeoutError would otherwise read as a hung vCenter and reconnect.
            raise PollWorkerFailed(f"poll parse worker died or hung: {exc!r}") from exc
        return page


class PollWorkerFailed(RuntimeError):
    """The worker process parsing the poll's pages died or hung (it is replaced)."""


def poll(collector: Any, view: Any, inventory: Inventory, soap: SoapPoll | None = None) -> int:
    """Read every polled property of every object in ``view``; returns the calls made.

    With ``soap``, the pages are read as plain XML and parsed off pyVmomi (and, with its
    worker, off this process's GIL); the same rows either way. An object whose
    ``missingSet`` proves it gone is left out, a property that does not apply is unset, and
    any other fault there (NotAuthenticated: the session ended) fails the poll, as
    ``checked_contents`` judges every property read: none of them may blank a value."""
    start = time.monotonic()
    mark = revision_mark()  # objects the follower changes from now on keep its values
    spec = view_filter_spec(view, POLLED)
    pages = (
        _soap_pages(collector, spec, soap) if soap is not None else _pyvmomi_pages(collector, spec)
    )
    calls = 0
    for rows in pages:
        calls += 1
        inventory.apply_polled(rows, newer_than=mark)
        del rows
    with inventory.lock:
        inventory.polls_total += 1
        inventory.poll_duration = time.monotonic() - start
    inventory.touch()
    return calls


def _pyvmomi_pages(collector: Any, spec: Any) -> Iterator[list[Row]]:
    for page in retrieve_pages(collector, spec):
        rows = []
        for content in checked_contents(page):
            obj = content.obj
            type_name = obj._wsdlName
            values: dict[str, Any] = dict.fromkeys(POLLED.get(type_name, ()))
            for prop in content.propSet or []:
                for path, value in expand(str(prop.name), prop.val):
                    values[path] = value
            rows.append((type_name, str(obj._moId), values))
        del page
        yield rows


def _soap_pages(collector: Any, spec: Any, soap: SoapPoll) -> Iterator[list[Row]]:
    """The pages of ``RetrievePropertiesEx`` + ``ContinueRetrievePropertiesEx`` as rows; a
    poll that stops early (a fault, a dead worker) cancels its token, as retrieve_pages."""
    pc = str(collector._moId)  # noqa: SLF001
    body = soap.session.post(retrieve_body(collector, spec, PAGE_OBJECTS))
    token: str | None = None
    try:
        while True:
            token, rows, missing = soap.parse(body)
            del body
            yield _checked(rows, missing)
            if not token:
                return
            body = soap.session.post(continue_body(pc, token))
            token = None
    finally:
        if token:
            try:
                soap.session.post(cancel_body(pc, token))
            except Exception:  # noqa: BLE001 - best effort; the session may be gone
                pass


def _checked(rows: list[Row], missing: list[Missing]) -> list[Row]:
    """``rows`` minus the objects their missingSet proves gone; raises a failed read."""
    if not missing:
        return rows
    contents = [
        SimpleNamespace(
            moid=moid,
            missingSet=[SimpleNamespace(path=p, fault=fault_named(f, m)) for p, f, m in faults],
        )
        for _type, moid, faults in missing
    ]
    kept = {c.moid for c in checked_contents(contents)}
    faulted = {moid for _type, moid, _faults in missing}
    return [row for row in rows if row[1] in kept or row[1] not in faulted]
