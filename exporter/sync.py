"""Follows one vCenter with a PropertyCollector filter and ``WaitForUpdatesEx``.

One thread per vCenter (pyvmomi blocks), so a slow or dead vCenter never delays the others
or the event loop.  A fresh session gets a private PropertyCollector, a ContainerView over
the whole inventory and one filter; the initial sync is read in pages (as plain XML,
pipelined and parsed in a worker process: sync_soap.py, sync_plain.py; through pyVmomi when
that cannot be done) and swapped into the inventory whole, then updates are folded in as
they come (through pyVmomi: small answers).  The properties vCenter never
announces (quickStats, overallStatus) are re-read by the vCenter's poller thread
(pollers.py, poller.py), never here, so a long poll cannot hold back a change.  Any failure
(lost session, restarted vCenter, invalidated filter, or a ``WaitForUpdatesEx`` silent for
longer than ``max_wait_seconds`` plus ``hung_margin_seconds``: a hung vCenter) marks the
vCenter down, backs off, and starts over with a full resync, so the image can never drift
from vCenter's.  The backoff starts again from ``backoff_initial_seconds`` after every
successful resync, and the last image keeps being served (with ``vsphere_up 0``) for
``hold_seconds`` of an outage.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from pyVmomi import vim, vmodl

from vcenter.config import SyncConfig, VCenterConfig
from vcenter.session import classify, connect, describe, disconnect

from .enums import enum_observer
from .inventory import PROPERTIES, Inventory, ManagedObject, apply_object_updates, expand
from .sync_plain import PlainSync
from .sync_soap import PlainSyncFailed
from .wire import Recorder, install

log = logging.getLogger(__name__)
PAGE_OBJECTS = 500  # bounds the transient pyvmomi objects of one page
Synced = tuple[dict[str, ManagedObject], dict[int, str], str]  # objects, fields, version


def _filter_spec(content: Any, view: Any) -> Any:
    traverse = vmodl.query.PropertyCollector.TraversalSpec(
        name="view", type=vim.view.ContainerView, path="view", skip=False
    )
    objects = [vmodl.query.PropertyCollector.ObjectSpec(obj=view, skip=True, selectSet=[traverse])]
    props = [
        vmodl.query.PropertyCollector.PropertySpec(type=getattr(vim, t), pathSet=paths)
        for t, paths in PROPERTIES.items()
    ]
    if getattr(content, "customFieldsManager", None) is not None:
        objects.append(vmodl.query.PropertyCollector.ObjectSpec(obj=content.customFieldsManager))
        props.append(
            vmodl.query.PropertyCollector.PropertySpec(
                type=vim.CustomFieldsManager, pathSet=["field"]
            )
        )
    return vmodl.query.PropertyCollector.FilterSpec(objectSet=objects, propSet=props)


def inventory_view(content: Any) -> Any:
    """A ContainerView over every object type the exporter follows."""
    return content.viewManager.CreateContainerView(
        content.rootFolder, [getattr(vim, t) for t in PROPERTIES], True
    )


def create_follow_filter(content: Any) -> tuple[Any, Any]:
    """A private PropertyCollector with the exporter's filter: (collector, view). If a step
    fails, what it made is destroyed before the fault is raised: a view and a collector
    live until the session ends otherwise, and the session may well go on (a fallback)."""
    collector = content.propertyCollector.CreatePropertyCollector()
    view = None
    try:
        view = inventory_view(content)
        collector.CreateFilter(_filter_spec(content, view), partialUpdates=True)
    except BaseException:
        _destroy_view(view)
        _destroy(collector)
        raise
    return collector, view


def _intern(value: Any) -> Any:
    """Share the few distinct short strings (states, statuses) across 10,000 objects."""
    if isinstance(value, str) and len(value) <= 40:
        return sys.intern(str(value))  # pyvmomi enums are str subclasses
    return value


def convert_update_set(
    update_set: Any,
) -> Iterator[tuple[str, str, str, list[tuple[str, str, Any]]]]:
    """pyvmomi UpdateSet -> plain (kind, type, moid, [(op, path, value)]) tuples.

    Consumes the update set as it goes (each ObjectUpdate is popped once converted), so an
    initial sync that arrives in one piece (as from the simulator with ``-paging=false``,
    which then ignores ``maxObjectUpdates``) is freed while the inventory fills.
    """
    for filter_update in update_set.filterSet or []:
        pending = filter_update.objectSet or []
        pending.reverse()
        while pending:
            obj_update = pending.pop()
            obj = obj_update.obj
            changes = [
                (change.op, sys.intern(path), _intern(value))
                for change in obj_update.changeSet or []
                for path, value in expand(str(change.name), change.val)
            ]
            yield (str(obj_update.kind), obj._wsdlName, str(obj._moId), changes)


class Follower:
    """Keeps one :class:`Inventory` equal to one vCenter, forever, in a thread."""

    def __init__(self, vc: VCenterConfig, inventory: Inventory, sync: SyncConfig) -> None:
        self.vc = vc
        self.inventory = inventory
        self.sync = sync
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._collector: Any = None
        self._view: Any = None  # the ContainerView the collector's filter is rooted at
        self._resynced = False  # a full sync completed since the last failure
        inventory.observe = enum_observer(inventory)

    @property
    def hung_after(self) -> float:
        """Seconds without an answer to a WaitForUpdatesEx after which vCenter is hung."""
        return self.sync.max_wait_seconds + self.sync.hung_margin_seconds

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.run, name=f"vha-sync-{self.vc.name}", daemon=True
        )
        self._thread.start()

    def signal_stop(self) -> None:
        """Ask the loop to end; :meth:`stop` also waits for it."""
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        collector = self._collector
        if collector is not None:
            try:  # wakes a WaitForUpdatesEx blocked in another thread
                collector.CancelWaitForUpdates()
            except Exception:  # noqa: BLE001 - the session may already be gone
                pass
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    # --- the loop --------------------------------------------------------------------
    def run(self) -> None:
        backoff = self.sync.backoff_initial_seconds
        while not self._stop.is_set():
            si = None
            logged_in = False
            try:
                si = connect(self.vc, timeout=self.vc.timeout_seconds)
                logged_in = True
                self._follow(si)
            except Exception as exc:  # noqa: BLE001 - every failure means: resync later
                if self._stop.is_set():
                    break
                reason = classify(exc)
                if logged_in and isinstance(exc, vim.fault.NotAuthenticated):
                    reason = "session"
                if logged_in and reason == "timeout":
                    message = f"no answer within {self.hung_after:g}s (hung vCenter)"
                else:
                    message = describe(exc)
                if self._resynced:  # the last outage is over: start from the first step
                    backoff = self.sync.backoff_initial_seconds
                    self._resynced = False
                log.warning(
                    "vcenter=%s url=%s sync failed (reason=%s): %s; retrying in %.1fs",
                    self.vc.name,
                    self.vc.url,
                    reason,
                    message,
                    backoff,
                )
                self.inventory.record_error(reason, message)
                self._pause(backoff)
                backoff = min(backoff * 2, self.sync.backoff_max_seconds)
                continue
            finally:
                self._collector = self._view = None  # the logout destroys them
                disconnect(si)
            break
        log.info("vcenter=%s follower stopped", self.vc.name)

    def _pause(self, seconds: float) -> None:
        """Wait before retrying; wake the renderer when the hold of the last image ends."""
        deadline = time.monotonic() + seconds
        expiry = self.inventory.hold_expiry(self.sync.hold_seconds)
        if expiry is not None:
            until_expiry = expiry - time.time()
            if 0 <= until_expiry < seconds:
                if self._stop.wait(until_expiry + 0.01):
                    return
                self.inventory.touch()  # re-render: the held image is dropped now
        self._stop.wait(max(0.0, deadline - time.monotonic()))

    def _follow(self, si: Any) -> None:
        content = si.RetrieveContent()
        about = content.about
        self.inventory.about = {
            "version": str(getattr(about, "version", "") or ""),
            "api_version": str(getattr(about, "apiVersion", "") or ""),
            "instance_uuid": str(getattr(about, "instanceUuid", "") or ""),
        }
        collector, self._view = create_follow_filter(content)
        self._collector = collector
        start = time.monotonic()
        wire = install(si)
        synced = self._plain_sync(si, collector) if self.sync.initial_sync_plain else None
        if synced is None:
            collector = self._collector  # a fresh one when the plain sync failed
            synced = self._pyvmomi_sync(collector, wire)
        objects, fields, version = synced
        self.inventory.replace(objects, fields)
        self.inventory.sync_duration = time.monotonic() - start
        log.info(
            "vcenter=%s synced %d objects in %.2fs",
            self.vc.name,
            len(objects),
            self.inventory.sync_duration,
        )
        self._resynced = True
        self.inventory.mark_alive()
        # From here on every call must answer within max_wait + margin, or vCenter is hung.
        _set_socket_timeout(si, self.hung_after)
        # Only following here: the properties vCenter never announces are polled by the
        # vCenter's Poller thread (pollers.py) on a session of its own, so a poll of 40,000
        # VMs never delays the next change on its way to /metrics.
        options = vmodl.query.PropertyCollector.WaitOptions(
            maxWaitSeconds=self.sync.max_wait_seconds, maxObjectUpdates=PAGE_OBJECTS
        )
        while not self._stop.is_set():
            result = self._wait(collector, version, options, wire)
            if result is not None:
                received = time.monotonic()
                version = result.version
                self.inventory.apply(convert_update_set(result), received)
                del result
            self.inventory.mark_alive()

    def _pyvmomi_sync(self, collector: Any, wire: Recorder) -> Synced:
        """The initial sync through pyVmomi's deserialiser, page by page."""
        objects: dict[str, ManagedObject] = {}
        fields: dict[int, str] = {}
        version = ""
        options = vmodl.query.PropertyCollector.WaitOptions(
            maxWaitSeconds=0, maxObjectUpdates=PAGE_OBJECTS
        )
        while True:
            result = self._wait(collector, version, options, wire)
            if result is None:
                break
            version, truncated = result.version, result.truncated
            apply_object_updates(
                objects, fields, convert_update_set(result), self.inventory.observe
            )
            del result  # the raw page is the largest thing this process ever holds
            if not truncated:
                break
        return objects, fields, version

    def _plain_sync(self, si: Any, collector: Any) -> Synced | None:
        """The initial sync as plain XML, pipelined and parsed off the GIL (sync_soap.py);
        None when the session cannot be reused, or when a page could not be read that way
        (logged, counted: ``inventory.plain_sync_fallbacks_total``), after which a fresh
        collector (the truncated versions are spent) syncs through pyVmomi. A fault from
        vCenter is raised as pyVmomi raises it."""
        reader = PlainSync.open(self.vc, si, self.sync, self._stop)
        if reader is None:
            return None
        try:
            return reader.run(collector, self.inventory)
        except PlainSyncFailed as exc:
            failed = exc
        finally:
            reader.close()  # first: pyVmomi's idle connections go (sync_plain.py)
        log.warning(
            "vcenter=%s plain-XML initial sync failed (%s); syncing through pyVmomi",
            self.vc.name,
            failed,
        )
        with self.inventory.lock:
            self.inventory.plain_sync_fallbacks_total += 1
        _destroy(collector)
        _destroy_view(self._view)  # else it lives until the logout, with the fresh one
        self._view = None
        self._collector, self._view = create_follow_filter(si.RetrieveContent())
        return None

    def _wait(self, collector: Any, version: str, options: Any, wire: Recorder) -> Any:
        """One ``WaitForUpdatesEx``; an answer with an update set is recorded (arrival,
        read and parse time, size: exporter/wire.py) on the inventory."""
        wire.reset()
        result = collector.WaitForUpdatesEx(version, options)
        if result is not None:
            arrived, parse, size = wire.answer(time.monotonic())
            with self.inventory.lock:
                self.inventory.answers.observe(arrived, parse, size)
        return result


def _destroy(collector: Any) -> None:
    try:  # its filter and pending versions go with it
        collector.Destroy()
    except Exception:  # noqa: BLE001 - best effort; the next sync starts afresh anyway
        pass


def _destroy_view(view: Any) -> None:
    if view is None:
        return
    try:  # DestroyView; the logout would destroy it anyway
        view.DestroyView()
    except Exception:  # noqa: BLE001 - best effort, as _destroy
        pass


def _set_socket_timeout(si: Any, seconds: float) -> None:
    """Bound every later call of this session (new and pooled connections) to ``seconds``.

    pyvmomi applies ``httpConnectionTimeout`` as the socket timeout of the connections it
    opens; a vCenter that stops answering (SIGSTOP, a hung vpxd) then raises a timeout
    instead of blocking until ``timeout_seconds``.
    """
    stub = getattr(si, "_stub", None)
    if stub is None:
        return
    args = getattr(stub, "schemeArgs", None)
    if isinstance(args, dict):
        args["timeout"] = seconds
    for conn, _idle in list(getattr(stub, "pool", None) or []):
        conn.timeout = seconds
        sock = getattr(conn, "sock", None)
        if sock is not None:
            sock.settimeout(seconds)
