"""The initial sync's ``WaitForUpdatesEx`` pages as plain XML, parsed off the GIL, pipelined.

At 40,000 VMs the initial sync is ~430 pages of 100 objects; through pyVmomi each page was
deserialised in the follower's thread (one SAX callback per element, the GIL) while the
simulator or vCenter waited for the next request: 104 s, strictly one after the other.
Here the request is serialised by pyVmomi's own stub (the exact request it would send) and
posted over the follower's session (perf_soap.SoapSession, its cookie); the answer's
``version`` and ``truncated`` are read by a byte scan (the head and the tail of the body),
so the next page is requested at once by a fetch thread while a parse thread has the
parse worker (perf_worker.ParseWorker) turn the previous page into the ``(kind, type,
moid, [(op, path, value)])`` tuples :func:`sync.convert_update_set` makes, and the
follower's thread folds the page before with ``apply_object_updates``, unchanged.
Values are read type-aware (soap_values.py) and converted by the same
``inventory.expand``.

A SOAP fault (InvalidCollectorVersion, NotAuthenticated) is raised by the post as the
pyVmomi fault it stands for, so the follower's resync logic is the same; anything else
that goes wrong reading a page (a parse error, a scan that disagrees with the parse, a dead
worker) raises :class:`PlainSyncFailed`, after which the follower syncs through pyVmomi.
"""

from __future__ import annotations

import os
import queue
import re
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .inventory import expand
from .perf_soap import VIM, SoapSession, ended_elements
from .poll_soap import stub_request
from .soap_values import value as read_value
from .sync_scan import Change, Update, UpdatePage, scan_updates

_RETURNVAL, _VERSION, _TRUNCATED, _OBJECTSET = (
    f"{VIM}returnval",
    f"{VIM}version",
    f"{VIM}truncated",
    f"{VIM}objectSet",
)
_KIND, _OBJ, _CHANGESET, _NAME, _OP, _VAL = (
    f"{VIM}kind",
    f"{VIM}obj",
    f"{VIM}changeSet",
    f"{VIM}name",
    f"{VIM}op",
    f"{VIM}val",
)
QUEUE_PAGES = 2  # pages fetched ahead of the parse: bounds the bytes held
_HEAD_VERSION = re.compile(rb"<returnval[^>]*>\s*<version[^>]*>([^<]*)</version>")
_TAIL_TRUNCATED = re.compile(rb"<truncated[^>]*>\s*([^<]*?)\s*</truncated>\s*</returnval>")


class PlainSyncFailed(RuntimeError):
    """A page could not be read as plain XML (the follower falls back to pyVmomi)."""


def wait_body(collector: Any, version: str, options: Any) -> bytes:
    """``WaitForUpdatesEx(version, options)`` serialised by pyVmomi's stub itself."""
    return stub_request(collector, "WaitForUpdatesEx", [version, options])


def scan_head(body: bytes) -> tuple[str, bool] | None:
    """(version, truncated) of an answer, from its first and last bytes; None when the
    answer has no update set (nothing changed). Raises PlainSyncFailed if unreadable.

    An UpdateSet is ``version, filterSet*, truncated?``: the version opens the returnval
    and ``truncated``, when present, closes it; text never holds a raw ``<``."""
    head = _HEAD_VERSION.search(body, 0, 4096)
    if head is None:
        if b"<returnval" not in body:
            return None
        raise PlainSyncFailed("no version at the head of the update set")
    tail = _TAIL_TRUNCATED.search(body, max(0, len(body) - 512))
    truncated = tail is not None and tail.group(1) in (b"true", b"1")
    return head.group(1).decode(), truncated


def parse_updates(body: bytes) -> UpdatePage | None:
    """A WaitForUpdatesEx answer -> (version, truncated, object updates); None: no update
    set. Read by the scanner (sync_scan.py) when the page is in its shape, else by the
    XML parser (:func:`parse_updates_xml`)."""
    try:
        head = scan_head(body)
    except PlainSyncFailed:
        head = None
    if head is not None:
        updates = scan_updates(body, _change)
        if updates is not None:
            return head[0], head[1], updates
    return parse_updates_xml(body)


def parse_updates_xml(body: bytes) -> UpdatePage | None:
    """:func:`parse_updates` by the XML parser. Each objectSet is dropped from the tree
    once read; ``missingSet`` is ignored, as convert_update_set does."""
    updates: list[Update] = []
    head: dict[str, str] = {}
    for element in ended_elements(body):
        tag = element.tag
        if tag == _OBJECTSET:
            updates.append(_object_update(element))
            element.clear()
        elif tag == _VERSION and "returnval" not in head:
            head.setdefault("version", element.text or "")
        elif tag == _TRUNCATED:
            head["truncated"] = element.text or ""
        elif tag == _RETURNVAL:
            head["returnval"] = ""
    if "returnval" not in head:
        return None
    truncated = head.get("truncated", "false").strip() in ("true", "1")
    return head.get("version", ""), truncated, updates


def _object_update(element: ET.Element) -> Update:
    kind, type_name, moid = "", "", ""
    changes: list[Change] = []
    for child in element:
        tag = child.tag
        if tag == _KIND:
            kind = child.text or ""
        elif tag == _OBJ:
            type_name, moid = child.get("type") or "", child.text or ""
        elif tag == _CHANGESET:
            changes.extend(_change(child))
    return kind, type_name, moid, changes


def _change(element: ET.Element) -> list[Change]:
    """One changeSet element's (op, path, value) changes."""
    name, op, val = "", "", None
    for part in element:
        if part.tag == _NAME:
            name = part.text or ""
        elif part.tag == _OP:
            op = part.text or ""
        elif part.tag == _VAL:
            val = part
    got = read_value(val) if val is not None else None
    return [(op, path, v) for path, v in expand(name, got)]


def parse_updates_traced(body: bytes) -> tuple[int, UpdatePage | None]:
    """In the worker process: (its pid, the parsed page)."""
    return os.getpid(), parse_updates(body)


def _intern(value: Any) -> Any:
    if isinstance(value, str) and len(value) <= 40:
        return sys.intern(value)
    return value


def interned(updates: list[Update]) -> Iterator[Update]:
    """The updates with paths and short strings interned, as convert_update_set does (a
    page unpickled from the worker has its own copies of every state and path)."""
    for kind, type_name, moid, changes in updates:
        yield (
            kind,
            sys.intern(type_name),
            moid,
            [(sys.intern(op), sys.intern(path), _intern(v)) for op, path, v in changes],
        )


Parse = Callable[[bytes], UpdatePage | None]


def pipelined_pages(
    session: SoapSession,
    request: Callable[[str], bytes],
    parse: Parse,
    stop: threading.Event,
    parallel: int = 1,
) -> Iterator[tuple[UpdatePage, int]]:
    """Every page of the initial sync, parsed, with its size in bytes, in three stages: a
    fetch thread posts ``request(version)`` for the next page as soon as a page's head is
    scanned; a parse thread hands each page to ``parse`` (the worker process) and queues
    the result; this generator's caller folds the pages. So the worker parses page n+1
    while the caller folds page n (they took turns before: at 40,000 VMs, 431 pages of a
    worker's parse and then a fold each). With ``parallel`` > 1 that many pages are
    parsed at once (``parse`` must then be thread-safe: one worker process each), and
    folded in their order. A fault from vCenter is raised here as it was raised to the
    fetch thread."""
    bodies: queue.Queue[tuple[bytes | None, BaseException | None]] = queue.Queue(QUEUE_PAGES)
    # Pages in their order, each being parsed (a future) or a last word (None, error).
    pages: queue.Queue[tuple[Future[tuple[UpdatePage, int] | None] | None, BaseException | None]]
    pages = queue.Queue(QUEUE_PAGES + parallel)
    halt = threading.Event()

    def put(into: queue.Queue[Any], item: Any) -> bool:
        while not halt.is_set() and not stop.is_set():
            try:
                into.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def fetch() -> None:
        version = ""
        try:
            while not halt.is_set() and not stop.is_set():
                body = session.post(request(version))
                head = scan_head(body)
                if not put(bodies, (body, None)) or head is None:
                    return
                version, truncated = head
                if not truncated:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put(bodies, (None, exc))
            return
        finally:
            put(bodies, (None, None))

    def parse_one(body: bytes) -> tuple[UpdatePage, int] | None:
        head = scan_head(body)
        page = parse(body)
        if page is None:
            return None
        if head != page[:2]:
            raise PlainSyncFailed(f"scanned head {head} but parsed {page[:2]}")
        return page, len(body)

    def parse_pages() -> None:
        try:
            with ThreadPoolExecutor(parallel, thread_name_prefix="vha-sync-parse") as pool:
                while not halt.is_set() and not stop.is_set():
                    try:
                        body, error = bodies.get(timeout=0.2)
                    except queue.Empty:
                        continue
                    if error is not None:
                        put(pages, (None, error))
                        return
                    if body is None:
                        return
                    if not put(pages, (pool.submit(parse_one, body), None)):
                        return
                    del body
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put(pages, (None, exc))
        finally:
            put(pages, (None, None))

    threads = [
        threading.Thread(target=fetch, name="vha-sync-fetch", daemon=True),
        threading.Thread(target=parse_pages, name="vha-sync-pages", daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        while True:
            try:
                future, error = pages.get(timeout=0.2)
            except queue.Empty:
                if stop.is_set():  # the threads end without a last word
                    raise InterruptedError("follower stopping") from None
                continue
            if error is not None:
                raise error
            if future is None:
                return
            parsed = future.result()  # the parse's own exception is raised here
            if parsed is None:
                return
            yield parsed
            del parsed, future
    finally:
        halt.set()
        for thread in threads:
            thread.join(timeout=5)
