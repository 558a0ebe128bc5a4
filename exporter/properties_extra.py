"""Properties the breadth collectors read (issue 13), kept apart from the core PROPERTIES.

``inventory.PROPERTIES`` merges these in one block, and ``inventory.convert`` hands these
paths to the converters below, so the core list and its converter stay as they were.  Each
entry was checked against the vSphere Web Services API reference: every one is a plain
property that the PropertyCollector notifies (not ``triggeredAlarmState``, which is polled,
see ``exporter/alarms.py``), readable with System.View (any read-only role).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

EXTRA_PROPERTIES: dict[str, list[str]] = {
    # DatastoreSummary.uncommitted (optional: absent without thin provisioning support),
    # .maintenanceMode (normal / enteringMaintenance / inMaintenance, vSphere 5.0+);
    # Datastore.host: DatastoreHostMount[] (hosts and their mount state).
    "Datastore": ["summary.uncommitted", "summary.maintenanceMode", "host"],
}


def _mounted_hosts(value: Any) -> int:
    """Hosts that have the datastore mounted and can reach it (``DatastoreHostMount[]``)."""
    count = 0
    for mount in value or []:
        info = getattr(mount, "mountInfo", None)
        mounted = getattr(info, "mounted", None)
        if getattr(info, "accessible", True) is not False and mounted is not False:
            count += 1
    return count


EXTRA_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "host": _mounted_hosts,
}
