"""Triggered vCenter alarms: ``vsphere_alarm_triggered{entity_type,entity_id,entity,alarm,
status,acknowledged}`` = 1 per alarm and entity it is triggered on.

States come from :mod:`exporter.alarms` (a poller; the property does not notify).  An alarm
shows once, on the entity that triggered it, not on each ancestor it propagates to.
"""

from __future__ import annotations

from ..families import Family, labels
from ..inventory import KIND_OF_TYPE
from .context import CollectorUnavailable, RenderContext


def collect(ctx: RenderContext) -> list[Family]:
    snapshot = ctx.inventory.alarms
    if snapshot is None:
        return []
    fam = Family(
        "vsphere_alarm_triggered",
        "1 per vCenter alarm triggered on an entity, by status and acknowledgement.",
    )
    objects = ctx.inventory.objects
    for st in snapshot.states:
        obj = objects.get(st.entity_id)
        kind = KIND_OF_TYPE.get(st.entity_type, st.entity_type.lower())
        fam.add(
            labels(
                (
                    ("vcenter", ctx.vcenter),
                    ("entity_type", kind),
                    ("entity_id", st.entity_id),
                    ("entity", obj.name if obj is not None else st.entity_id),
                    ("alarm", snapshot.names.get(st.alarm_id, st.alarm_id)),
                    ("status", st.status),
                    ("acknowledged", "true" if st.acknowledged else "false"),
                )
            ),
            1,
        )
    if not snapshot.ok:
        raise CollectorUnavailable(snapshot.error, [fam])
    return [fam]
