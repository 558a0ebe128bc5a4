"""Triggered vCenter alarms, polled from the root folder on a schedule.

``ManagedEntity.triggeredAlarmState`` (privilege System.View) holds the alarms triggered on
an entity *or its descendants* ("propagated up the inventory hierarchy"), and "vSphere
Servers might not generate property collector update notifications for this property"
(vSphere API reference), so following it with the inventory filter would miss changes.
Instead one thread per vCenter reads the root folder's ``triggeredAlarmState`` every
``collectors.alarms.interval_seconds`` (default 60 s): one ``RetrievePropertiesEx`` returns
every triggered alarm of the vCenter, each naming its own entity.  Alarm names
(``Alarm.info.name``) are read once per alarm definition and cached.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from pyVmomi import vim, vmodl

from vcenter.config import AlarmsConfig, SyncConfig, VCenterConfig
from vcenter.session import classify, connect, describe, disconnect

from .inventory import Inventory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlarmState:
    entity_type: str  # the managed object type: HostSystem, VirtualMachine, ...
    entity_id: str
    alarm_id: str
    status: str  # red, yellow (green and gray states are not triggered)
    acknowledged: bool


@dataclass(frozen=True)
class AlarmSnapshot:
    """What one poll found; ``ok`` False keeps the previous states (stale, reported)."""

    ok: bool
    states: tuple[AlarmState, ...] = ()
    names: dict[str, str] = field(default_factory=dict)  # alarm moid -> info.name
    error: str = ""


def _retrieve(content: Any, objects: list[Any], type_: Any, paths: list[str]) -> list[Any]:
    pc = vmodl.query.PropertyCollector
    spec = pc.FilterSpec(
        objectSet=[pc.ObjectSpec(obj=o) for o in objects],
        propSet=[pc.PropertySpec(type=type_, pathSet=paths)],
    )
    out: list[Any] = []
    result = content.propertyCollector.RetrievePropertiesEx([spec], pc.RetrieveOptions())
    while result is not None:
        out.extend(result.objects or [])
        if not result.token:
            break
        result = content.propertyCollector.ContinueRetrievePropertiesEx(result.token)
    return out


def read_alarms(
    content: Any, names: dict[str, str]
) -> tuple[tuple[AlarmState, ...], dict[str, str]]:
    """Every triggered alarm of the vCenter, and the names of their definitions."""
    states: dict[tuple[str, str], AlarmState] = {}
    alarms: dict[str, Any] = {}
    for obj in _retrieve(content, [content.rootFolder], vim.Folder, ["triggeredAlarmState"]):
        for prop in obj.propSet or []:
            for st in prop.val or []:
                entity, alarm = st.entity, st.alarm
                if entity is None or alarm is None:
                    continue
                key = (str(entity._moId), str(alarm._moId))
                states[key] = AlarmState(
                    entity_type=entity._wsdlName,
                    entity_id=key[0],
                    alarm_id=key[1],
                    status=str(st.overallStatus or "gray"),
                    acknowledged=bool(st.acknowledged),
                )
                alarms[key[1]] = alarm
    known = {k: v for k, v in names.items() if k in alarms}
    missing = [a for moid, a in alarms.items() if moid not in known]
    if missing:
        for obj in _retrieve(content, missing, vim.alarm.Alarm, ["info.name"]):
            for prop in obj.propSet or []:
                known[str(obj.obj._moId)] = str(prop.val)
    return tuple(sorted(states.values(), key=lambda s: (s.entity_id, s.alarm_id))), known


class AlarmPoller:
    """One vCenter's triggered alarms, polled in a thread with a session of its own."""

    def __init__(
        self, vc: VCenterConfig, inventory: Inventory, config: AlarmsConfig, sync: SyncConfig
    ) -> None:
        self.vc = vc
        self.inventory = inventory
        self.config = config
        self.sync = sync
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.config.enabled:
            return
        self._thread = threading.Thread(
            target=self.run, name=f"vha-alarms-{self.vc.name}", daemon=True
        )
        self._thread.start()

    def signal_stop(self) -> None:
        self._stop.set()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def _publish(self, snapshot: AlarmSnapshot) -> None:
        if snapshot != self.inventory.alarms:  # re-render only when something changed
            self.inventory.alarms = snapshot
            self.inventory.touch()

    def run(self) -> None:
        backoff = self.sync.backoff_initial_seconds
        reported = False
        while not self._stop.is_set():
            si = None
            try:
                si = connect(self.vc, timeout=self.vc.timeout_seconds)
                content = si.RetrieveContent()
                while not self._stop.is_set():
                    previous = self.inventory.alarms
                    names = previous.names if previous is not None else {}
                    states, names = read_alarms(content, names)
                    self._publish(AlarmSnapshot(ok=True, states=states, names=names))
                    if reported:
                        log.info("vcenter=%s triggered alarms readable again", self.vc.name)
                        reported = False
                    backoff = self.sync.backoff_initial_seconds
                    self._stop.wait(self.config.interval_seconds)
            except Exception as exc:  # noqa: BLE001 - report, keep the last states, retry
                if self._stop.is_set():
                    break
                message = describe(exc)
                if not reported:
                    log.warning(
                        "vcenter=%s reading triggered alarms failed (reason=%s): %s",
                        self.vc.name,
                        classify(exc),
                        message,
                    )
                    reported = True
                previous = self.inventory.alarms
                self._publish(
                    AlarmSnapshot(
                        ok=False,
                        states=previous.states if previous is not None else (),
                        names=previous.names if previous is not None else {},
                        error=message,
                    )
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.sync.backoff_max_seconds)
            finally:
                disconnect(si)
