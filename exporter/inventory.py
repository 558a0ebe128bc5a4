"""The in-memory image of one vCenter, fed by property-collector updates.

Values are converted to plain Python (str, float, bool, moid strings) as they arrive, so
the pyvmomi objects can be freed and rendering never touches the SOAP layer.  Every
applied batch bumps ``generation``, which is what the renderer keys its cache on.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from vcenter.config import SyncConfig

from .properties_extra import EXTRA_CONVERTERS, EXTRA_PROPERTIES
from .wire import AnswerStats

# The HA and DRS fields the cluster collector renders.  Under ``configuration`` (a
# ClusterConfigInfo) rather than ``configurationEx``: the latter is declared as the base type
# ComputeResourceConfigInfo, which has no dasConfig, so a nested path into it is refused by
# vCenter's PropertyCollector (InvalidProperty); ClusterConfigInfo declares dasConfig and
# drsConfig, so these paths are valid and vCenter keeps both views of the same settings.
CLUSTER_CONFIG_PATHS = [
    "configuration.dasConfig.enabled",
    "configuration.dasConfig.admissionControlEnabled",
    "configuration.dasConfig.admissionControlPolicy",
    "configuration.dasConfig.failoverLevel",
    "configuration.dasConfig.vmMonitoring",
    "configuration.dasConfig.defaultVmSettings.vmToolsMonitoringSettings",
    "configuration.drsConfig.enabled",
    "configuration.drsConfig.defaultVmBehavior",
]
DAS_REPORTER = "runtime.dasHostState.stateReporter"  # kept beside the state by expand()

# What we ask vCenter for, per managed object type.  Short on purpose: every property here
# costs memory and update traffic at 10,000 VMs.
PROPERTIES: dict[str, list[str]] = {
    "Folder": ["parent"],
    "Datacenter": ["name", "parent"],
    "ComputeResource": ["name", "parent"],
    # Only the configuration fields used, not the whole configurationEx (every DRS rule,
    # group and VM override on every edit); see CLUSTER_CONFIG_PATHS.
    "ClusterComputeResource": ["name", "parent", "summary", *CLUSTER_CONFIG_PATHS],
    "HostSystem": [
        "name",
        "parent",
        "overallStatus",
        "customValue",
        "runtime.connectionState",
        "runtime.powerState",
        "runtime.inMaintenanceMode",
        "runtime.inQuarantineMode",
        "runtime.dasHostState",
        "runtime.bootTime",
        "summary.hardware.numCpuCores",
        "summary.hardware.cpuMhz",
        "summary.hardware.memorySize",
        "summary.quickStats.overallCpuUsage",
        "summary.quickStats.overallMemoryUsage",
        "summary.config.product.version",
    ],
    "VirtualMachine": [
        "name",
        "customValue",
        "config.template",
        "config.instanceUuid",
        "runtime.host",
        "runtime.powerState",
        "runtime.connectionState",
        "runtime.bootTime",
        "guestHeartbeatStatus",
        "guest.toolsRunningStatus",
        "guest.appHeartbeatStatus",
        "guest.appState",
        "summary.config.guestFullName",
        "summary.config.numCpu",
        "summary.config.memorySizeMB",
        "summary.config.cpuReservation",
        "summary.config.memoryReservation",
        "summary.quickStats.overallCpuUsage",
        "summary.quickStats.guestMemoryUsage",
        "summary.quickStats.hostMemoryUsage",
        "summary.storage.committed",
        "snapshot",
    ],
    "Datastore": [
        "name",
        "parent",
        "summary.capacity",
        "summary.freeSpace",
        "summary.accessible",
        "summary.type",
        "vm",
    ],
}

# --- issue 13 (observability breadth): extra properties, one contained block -----------
for _type, _paths in EXTRA_PROPERTIES.items():
    PROPERTIES.setdefault(_type, []).extend(p for p in _paths if p not in PROPERTIES[_type])

KIND_OF_TYPE = {
    "Datacenter": "datacenter",
    "ClusterComputeResource": "cluster",
    "HostSystem": "host",
    "VirtualMachine": "vm",
    "Datastore": "datastore",
}


_REVISIONS = itertools.count(1)
# The properties an object's identity labels and its being rendered at all depend on
# (``Inventory.identity``): a VM template is not rendered as a VM.
IDENTITY_PATHS = frozenset({"name", "config.template"})


def revision_mark() -> int:
    """A revision below every later change: objects changed afterwards have a higher ``rev``."""
    return next(_REVISIONS)


@dataclass(slots=True)
class ManagedObject:
    """One managed object: its type, moid and converted properties by path.

    ``rev`` changes whenever a property does (unique across objects and resyncs), so
    renderers can cache per-object output keyed on it.  ``followed`` changes whenever a
    property the follower delivers does, not when a poll refreshes a never-announced one
    (:meth:`Inventory.apply_polled`: quickStats, overallStatus): every poll changes every
    VM's quickStats, and output that does not show them, keyed on ``followed``, is not
    rendered again for it (at 40,000 VMs that was every VM's 20 families per poll).
    Slotted: no ``__dict__`` per object (40,000 VMs, and a copy per change).
    """

    moid: str
    type: str
    props: dict[str, Any] = field(default_factory=dict)
    rev: int = field(default_factory=lambda: next(_REVISIONS))
    followed: int = 0  # 0: as ``rev`` (set in __post_init__)

    def __post_init__(self) -> None:
        if not self.followed:
            self.followed = self.rev

    def get(self, path: str, default: Any = None) -> Any:
        return self.props.get(path, default)

    @property
    def name(self) -> str:
        return str(self.props.get("name") or self.moid)


def _timestamp(value: datetime) -> float:
    return value.timestamp()


def _snapshot_summary(info: Any) -> dict[str, float]:
    """Count snapshots and find the oldest, walking the snapshot tree once."""
    count = 0
    oldest: float | None = None
    stack = list(getattr(info, "rootSnapshotList", None) or [])
    while stack:
        node = stack.pop()
        count += 1
        created = getattr(node, "createTime", None)
        if isinstance(created, datetime):
            ts = created.timestamp()
            oldest = ts if oldest is None else min(oldest, ts)
        stack.extend(getattr(node, "childSnapshotList", None) or [])
    result: dict[str, float] = {"count": float(count)}
    if oldest is not None:
        result["oldest"] = oldest
    return result


def _policy_name(policy: Any) -> str:
    name = type(policy).__name__ if policy is not None else ""
    if "FailoverLevel" in name:
        return "failover_level"
    if "FailoverResources" in name:
        return "resource_percentage"
    if "FailoverHost" in name:
        return "failover_hosts"
    return "none"


def _cluster_config(cfg: Any) -> dict[str, Any]:
    """The HA and DRS settings an admin reasons about, out of ``configurationEx``."""
    das = getattr(cfg, "dasConfig", None)
    drs = getattr(cfg, "drsConfig", None)
    out: dict[str, Any] = {
        "ha_enabled": bool(getattr(das, "enabled", False)),
        "admission_control_enabled": bool(getattr(das, "admissionControlEnabled", False)),
        "vm_monitoring": getattr(das, "vmMonitoring", None) or "vmMonitoringDisabled",
        "drs_enabled": bool(getattr(drs, "enabled", False)),
        "drs_behavior": getattr(drs, "defaultVmBehavior", None) or "manual",
    }
    policy = getattr(das, "admissionControlPolicy", None)
    out["policy"] = _policy_name(policy) if out["admission_control_enabled"] else "none"
    level = getattr(policy, "failoverLevel", None)
    if level is None and policy is not None and out["policy"] == "failover_hosts":
        level = len(getattr(policy, "failoverHosts", None) or [])
    if level is None:
        level = getattr(das, "failoverLevel", None)
    out["failover_level"] = float(level or 0) if out["admission_control_enabled"] else 0.0
    tools = getattr(getattr(das, "defaultVmSettings", None), "vmToolsMonitoringSettings", None)
    out.update(_tools_settings(tools))
    return out


def _cluster_summary(summary: Any) -> dict[str, float]:
    mhz, mib = 1e6, 1024.0 * 1024.0
    return {
        "effective_cpu_hz": float(getattr(summary, "effectiveCpu", 0) or 0) * mhz,
        "effective_memory_bytes": float(getattr(summary, "effectiveMemory", 0) or 0) * mib,
        "total_cpu_hz": float(getattr(summary, "totalCpu", 0) or 0) * mhz,
        "total_memory_bytes": float(getattr(summary, "totalMemory", 0) or 0),
    }


def _tools_settings(tools: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for attr, key in (
        ("failureInterval", "failure_interval"),
        ("minUpTime", "min_uptime"),
        ("maxFailures", "max_failures"),
        ("maxFailureWindow", "max_failure_window"),
    ):
        value = getattr(tools, attr, None)
        if value is not None:
            out[key] = float(value)
    return out


def _policy(policy: Any) -> dict[str, Any]:
    name = _policy_name(policy)
    level = getattr(policy, "failoverLevel", None)
    if level is None and name == "failover_hosts":
        level = len(getattr(policy, "failoverHosts", None) or [])
    return {"policy": name, "level": level}


def cluster_config(obj: ManagedObject) -> dict[str, Any]:
    """The same settings as :func:`_cluster_config`, from the followed ``configuration.*``
    fields (or from a whole ``configurationEx``, as an older inventory image holds)."""
    whole = obj.get("configurationEx")
    if isinstance(whole, dict):
        return whole
    das, drs = "configuration.dasConfig.", "configuration.drsConfig."
    ac = bool(obj.get(das + "admissionControlEnabled", False))
    policy = obj.get(das + "admissionControlPolicy") or {}
    level = policy.get("level")
    if level is None:
        level = obj.get(das + "failoverLevel")
    out: dict[str, Any] = {
        "ha_enabled": bool(obj.get(das + "enabled", False)),
        "admission_control_enabled": ac,
        "vm_monitoring": obj.get(das + "vmMonitoring") or "vmMonitoringDisabled",
        "drs_enabled": bool(obj.get(drs + "enabled", False)),
        "drs_behavior": obj.get(drs + "defaultVmBehavior") or "manual",
        "policy": policy.get("policy", "none") if ac else "none",
        "failover_level": float(level or 0) if ac else 0.0,
    }
    out.update(obj.get(das + "defaultVmSettings.vmToolsMonitoringSettings") or {})
    return out


def expand(path: str, value: Any) -> list[tuple[str, Any]]:
    """One followed property as the (path, plain value) pairs the inventory keeps."""
    if path == "runtime.dasHostState":
        reporter = getattr(getattr(value, "stateReporter", None), "_moId", None)
        return [(path, convert(path, value)), (DAS_REPORTER, str(reporter) if reporter else None)]
    return [(path, convert(path, value))]


# The paths convert() reads in a way of their own; any other keeps a scalar as it is
# (plain_path, which the poll's scanner reads to skip the conversion).
_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "customValue": lambda value: {int(v.key): str(getattr(v, "value", "")) for v in value},
    "snapshot": _snapshot_summary,
    "runtime.dasHostState": lambda value: getattr(value, "state", None),
    "configurationEx": _cluster_config,
    "configuration.dasConfig.admissionControlPolicy": _policy,
    "configuration.dasConfig.defaultVmSettings.vmToolsMonitoringSettings": _tools_settings,
    "summary": _cluster_summary,
    "vm": len,
    "field": lambda value: {int(f.key): str(f.name) for f in value},
}


def plain_path(path: str) -> bool:
    """Whether :func:`expand` gives ``[(path, value)]`` for any bool, int, float or str
    ``value`` (the poll's scanner then skips it: poll_scan.py)."""
    return path not in _CONVERTERS and path not in EXTRA_CONVERTERS


def convert(path: str, value: Any) -> Any:
    """Turn a pyvmomi property value into the plain form the inventory keeps."""
    if value is None:
        return None
    if path in EXTRA_CONVERTERS:
        return EXTRA_CONVERTERS[path](value)
    special = _CONVERTERS.get(path)
    if special is not None:
        return special(value)
    if isinstance(value, datetime):
        return _timestamp(value)
    moid = getattr(value, "_moId", None)
    if moid is not None:
        return str(moid)
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


JOURNAL_LIMIT = 1 << 20  # moids (8 MB of references) before Inventory.journal starts anew


class Inventory:
    """One vCenter's objects plus its sync status; guarded by a lock for the renderer.

    The follower thread replaces or mutates it under ``lock``; the renderer reads a
    consistent view under the same lock and only while ``generation`` is unchanged.
    """

    def __init__(
        self, vcenter: str, alive_render_seconds: float = SyncConfig.alive_render_seconds
    ) -> None:
        self.vcenter = vcenter
        # A round trip that changed nothing wakes the renderer at most this often (mark_alive).
        self.alive_render_seconds = alive_render_seconds
        self._touched_at = float("-inf")  # monotonic: the last wake of the listeners
        self._unrendered = True  # something changed since that wake (set by replace, apply)
        self.lock = threading.RLock()
        self.objects: dict[str, ManagedObject] = {}
        self.custom_fields: dict[int, str] = {}
        self.generation = 0
        self.synced_generation = -1  # the generation of the last complete (re)sync
        self.synced_at: float | None = None  # when (monotonic) that sync was swapped in
        # A revision_mark() taken whenever an object comes or goes or a name or
        # config.template (IDENTITY_PATHS) changes: what depends on those alone (the tags
        # collector) is reused while it is unchanged, without walking 40,000 objects.
        self.identity = revision_mark()
        # Sync status.
        self.up = False
        self.synced = False
        self.last_success: float | None = None
        self.sync_duration: float | None = None
        self.updates_total = 0
        self.resyncs_total = 0
        self.errors_total: dict[str, int] = {}
        self.last_error: str | None = None
        self.down_since: float | None = None  # first failure of the current outage
        self.polls_total = 0
        self.plain_sync_fallbacks_total = 0  # plain-XML initial syncs redone via pyVmomi
        self.poll_duration: float | None = None
        # Values outside the documented enum of a rendered property: (metric, value) -> n.
        self.unknown_enums: dict[tuple[str, str], int] = {}
        # Called with (type, path, value) for every value stored that differs from before.
        self.observe: Callable[[str, str, Any], None] | None = None
        self.about: dict[str, str] = {}
        # Times the exporter last saw something healthy: (moid, what) -> timestamp.
        self.last_healthy: dict[tuple[str, str], float] = {}
        # Per-object rendered fragments, owned by the collectors (see collectors/vms.py).
        self.render_cache: dict[str, Any] = {}
        # The latest vAPI tag snapshot (exporter/tagging.py), replaced whole; None until read.
        self.tags: Any = None
        # The latest triggered-alarm snapshot (exporter/alarms.py), replaced whole.
        self.alarms: Any = None
        # The latest licence snapshot (exporter/licenses.py), replaced whole.
        self.licenses: Any = None
        # The latest snapshot-size poll (exporter/snapshot_sizes.py), replaced whole.
        self.snapshot_sizes: Any = None
        self._listeners: list[Callable[[], None]] = []
        # moid -> type of the objects the follower changed since the detection lane
        # (patch.py) last took them; a resync empties it (the full render has those).
        self.changed: dict[str, str] = {}
        # The moid of every followed change (an update, an object entering or leaving), in
        # order; append-only, replaced by a resync or once it holds JOURNAL_LIMIT. A
        # snapshot notes how long it was (``journal_mark``), so what changed between two
        # snapshots of one journal is a slice of it (RenderContext.changed_since), not a
        # walk of 43,000 objects (~40 ms of each patch at 40,000 VMs).
        self.journal: list[str] = []
        self.journal_mark: int | None = None  # a snapshot's len(journal); None: live
        self.received_at: float | None = None  # the oldest update set not yet rendered
        self.answers = AnswerStats()  # what the follower's WaitForUpdatesEx answers cost

    # --- change notification -------------------------------------------------------
    def add_listener(self, fn: Callable[[], None]) -> None:
        self._listeners.append(fn)

    def touch(self) -> None:
        """Bump the generation and wake listeners (the renderer)."""
        with self.lock:
            self.generation += 1
            self._touched_at = time.monotonic()
            self._unrendered = False
        for fn in list(self._listeners):
            fn()

    # --- status --------------------------------------------------------------------
    def record_error(self, reason: str, message: str) -> None:
        with self.lock:
            self.errors_total[reason] = self.errors_total.get(reason, 0) + 1
            self.last_error = message
            self.up = False
            if self.down_since is None:
                self.down_since = time.time()
        self.touch()

    def holding(self, hold_seconds: float, now: float | None = None) -> bool:
        """True while a down vCenter's last image is still served (a short outage)."""
        if self.up or not self.synced or self.down_since is None:
            return False
        now = time.time() if now is None else now
        return now - self.down_since < hold_seconds

    def hold_expiry(self, hold_seconds: float) -> float | None:
        """When the current hold ends (Unix seconds), None when nothing is held."""
        if self.up or not self.synced or self.down_since is None:
            return None
        return self.down_since + hold_seconds

    def mark_alive(self, now: float | None = None) -> None:
        """A successful round trip: everything connected/green is confirmed as of now.

        The renderer is woken when the round trip applied something, else at most every
        ``alive_render_seconds``: what such a wake re-renders is only the sync's timestamp
        and the last-seen-healthy timestamps of what is still healthy, which no alert reads
        while it is (a full render, ~0.5 s of CPU at 40,000 VMs, a dozen times a minute).
        The confirmation itself is never skipped: the render or patch that shows a host
        disconnected or a heartbeat red carries the last round trip that saw it healthy."""
        now = time.time() if now is None else now
        with self.lock:
            self.last_success = now
            self._confirm_healthy(now)
            quiet = (
                not self._unrendered
                and time.monotonic() - self._touched_at < self.alive_render_seconds
            )
        if not quiet:
            self.touch()

    def _confirm_healthy(self, now: float) -> None:
        # Every round trip, over every object (43,000 at 40,000 VMs): the props read
        # directly and the dictionary bound once, about half the time of obj.get.
        healthy = self.last_healthy
        for obj in self.objects.values():
            kind, props = obj.type, obj.props
            if kind == "VirtualMachine":
                if props.get("guestHeartbeatStatus") == "green":
                    healthy[(obj.moid, "guest")] = now
                if props.get("guest.appHeartbeatStatus") == "appStatusGreen":
                    healthy[(obj.moid, "app")] = now
            elif kind == "HostSystem" and props.get("runtime.connectionState") == "connected":
                healthy[(obj.moid, "connected")] = now

    # --- updates -------------------------------------------------------------------
    def replace(self, objects: dict[str, ManagedObject], custom_fields: dict[int, str]) -> None:
        """Swap in a complete, freshly synced image (initial sync or resync)."""
        with self.lock:
            self.objects = objects
            self.custom_fields = custom_fields
            live = set(objects)
            self.last_healthy = {k: v for k, v in self.last_healthy.items() if k[0] in live}
            self.synced = True
            self.up = True
            self.down_since = None
            self.resyncs_total += 1
            self.generation += 1
            self.synced_generation = self.generation
            self.synced_at = time.monotonic()
            self.changed = {}
            self.journal = []
            self.identity = revision_mark()
            self._unrendered = True

    def apply(
        self,
        updates: Iterable[tuple[str, str, str, list[tuple[str, str, Any]]]],
        received: float | None = None,
    ) -> None:
        """Apply one update set of (kind, type, moid, [(op, path, value)]) object updates.

        ``received``: when (monotonic) the follower read the update set from vCenter, where
        ``vsphere_render_lag_seconds`` (the exporter's own share) starts.
        """
        with self.lock:
            if received is not None and self.received_at is None:
                self.received_at = received
            noted = self._noted(updates)
            if apply_object_updates(self.objects, self.custom_fields, noted, self.observe):
                self.identity = revision_mark()
            self.updates_total += 1
            self._unrendered = True

    def _noted(
        self, updates: Iterable[tuple[str, str, str, list[tuple[str, str, Any]]]]
    ) -> Iterator[tuple[str, str, str, list[tuple[str, str, Any]]]]:
        """``updates``, each object noted in ``changed`` for the detection lane and in the
        journal."""
        if len(self.journal) >= JOURNAL_LIMIT:
            self.journal = []  # snapshots of the old one keep it; across the two they walk
        journal = self.journal
        for update in updates:
            self.changed[update[2]] = update[1]
            journal.append(update[2])
            yield update

    def apply_polled(
        self, rows: Iterable[tuple[str, str, dict[str, Any]]], newer_than: int | None = None
    ) -> int:
        """Fold polled values, (type, moid, {path: value}) rows, into known objects.

        Only values that changed bump an object's ``rev``, so a poll of 10,000 unchanged
        VMs does not invalidate their rendered lines.  The poll runs in its own thread:
        an object the follower updated after the poll began (``rev`` above ``newer_than``,
        from :func:`revision_mark`) is left as the follower made it, since the poll's read
        of a property vCenter does announce (``overallStatus``) may be the older one; the
        next poll refreshes it.  Returns the objects changed.
        """
        changed = 0
        with self.lock:
            for type_name, moid, values in rows:
                obj = self.objects.get(moid)
                if obj is None:
                    continue  # not followed (yet): the filter's enter update brings it
                if newer_than is not None and obj.rev > newer_than:
                    continue
                props: dict[str, Any] | None = None  # copy-on-write, as in apply_object_updates
                followed = obj.followed  # kept: only never-announced values are polled
                for path, value in values.items():
                    if obj.props.get(path) == value:
                        continue
                    if props is None:
                        props = dict(obj.props)
                    if path in IDENTITY_PATHS:
                        self.identity = revision_mark()
                        followed = 0  # a new one, as rev (never so: such rows are not polled)
                        self.journal.append(moid)
                    if value is None:
                        props.pop(path, None)
                    else:
                        props[path] = value
                        if self.observe is not None:
                            self.observe(type_name, path, value)
                if props is not None:
                    self.objects[moid] = ManagedObject(
                        moid=moid, type=obj.type, props=props, followed=followed
                    )
                    changed += 1
        return changed

    def snapshot(self) -> Inventory:
        """A consistent copy to render from without holding ``lock``.

        Objects are copy-on-write (an update replaces the object), so copying the dicts is
        enough: the follower keeps applying updates while a render of 40,000 VMs runs,
        instead of waiting for it. ``render_cache`` is shared (the collectors' own).
        """
        snap = Inventory.__new__(Inventory)
        with self.lock:
            snap.__dict__.update(self.__dict__)
            snap.objects = dict(self.objects)
            snap.custom_fields = dict(self.custom_fields)
            snap.last_healthy = dict(self.last_healthy)
            snap.unknown_enums = dict(self.unknown_enums)
            snap.errors_total = dict(self.errors_total)
            snap.journal_mark = len(self.journal)
        snap.lock = threading.RLock()
        snap._listeners = []
        return snap

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(KIND_OF_TYPE.values(), 0)
        with self.lock:
            for obj in self.objects.values():
                kind = KIND_OF_TYPE.get(obj.type)
                if kind is None:
                    continue
                if kind == "vm" and obj.get("config.template"):
                    continue
                out[kind] += 1
        return out


def apply_object_updates(
    objects: dict[str, ManagedObject],
    custom_fields: dict[int, str],
    updates: Iterable[tuple[str, str, str, list[tuple[str, str, Any]]]],
    observe: Callable[[str, str, Any], None] | None = None,
) -> bool:
    """Fold property-collector object updates into ``objects`` (and custom field names).

    ``observe(type, path, value)`` sees every value stored that differs from the old one.
    Returns whether an object came or went or an ``IDENTITY_PATHS`` value changed.
    """
    identity = False
    for kind, type_name, moid, changes in updates:
        if kind == "leave":
            identity |= objects.pop(moid, None) is not None
            continue
        if type_name == "CustomFieldsManager":
            for _op, path, value in changes:
                if path == "field":
                    custom_fields.clear()
                    custom_fields.update(value or {})
            continue
        old = objects.get(moid)
        # Copy-on-write: a render works on a shallow snapshot of ``objects`` outside the lock
        # (Inventory.snapshot), so a changed object is a new object, never mutated in place.
        obj = objects[moid] = ManagedObject(
            moid=moid, type=type_name, props=dict(old.props) if old is not None else {}
        )
        identity |= old is None
        for op, path, value in changes:
            if op in ("remove", "indirectRemove") or value is None:
                identity |= path in IDENTITY_PATHS and path in obj.props
                obj.props.pop(path, None)
            else:
                if obj.props.get(path) != value:
                    identity |= path in IDENTITY_PATHS
                    if observe is not None:
                        observe(type_name, path, value)
                obj.props[path] = value
        obj.rev = obj.followed = next(_REVISIONS)
    return identity
