"""Triggered vCenter alarms, polled from the root folder on a schedule.

``ManagedEntity.triggeredAlarmState`` (privilege System.View) holds the alarms triggered on
an entity *or its descendants* ("propagated up the inventory hierarchy"), and "vSphere
Servers might not generate property collector update notifications for this property"
(vSphere API reference), so following it with the inventory filter would miss changes.
Instead a poller reads the root folder's ``triggeredAlarmState`` every
``collectors.alarms.interval_seconds`` (default 60 s, exporter/pollers.py): one
``RetrievePropertiesEx`` returns
every triggered alarm of the vCenter, each naming its own entity.  Alarm names
(``Alarm.info.name``) are read once per alarm definition and cached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyVmomi import vim, vmodl

from vcenter.properties import retrieve_pages


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


def retrieve(content: Any, objects: list[Any], type_: Any, paths: list[str]) -> list[Any]:
    """``RetrievePropertiesEx`` of ``paths`` on ``objects``, every page (vcenter.properties)."""
    pc = vmodl.query.PropertyCollector
    spec = pc.FilterSpec(
        objectSet=[pc.ObjectSpec(obj=o) for o in objects],
        propSet=[pc.PropertySpec(type=type_, pathSet=paths)],
    )
    return [obj for page in retrieve_pages(content.propertyCollector, spec) for obj in page]


def read_alarms(
    content: Any, names: dict[str, str]
) -> tuple[tuple[AlarmState, ...], dict[str, str]]:
    """Every triggered alarm of the vCenter, and the names of their definitions."""
    states: dict[tuple[str, str], AlarmState] = {}
    alarms: dict[str, Any] = {}
    for obj in retrieve(content, [content.rootFolder], vim.Folder, ["triggeredAlarmState"]):
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
        for obj in retrieve(content, missing, vim.alarm.Alarm, ["info.name"]):
            for prop in obj.propSet or []:
                known[str(obj.obj._moId)] = str(prop.val)
    return tuple(sorted(states.values(), key=lambda s: (s.entity_id, s.alarm_id))), known
