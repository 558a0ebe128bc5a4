"""Properties the breadth collectors read (issue 13), kept apart from the core PROPERTIES.

``inventory.PROPERTIES`` merges these in one block, and ``inventory.convert`` hands these
paths to the converters below, so the core list and its converter stay as they were.  Each
entry was checked against the vSphere Web Services API reference: every one is a plain
property that the PropertyCollector notifies (not ``triggeredAlarmState``, which is polled,
see ``exporter/alarms.py``), readable with System.View (any read-only role).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

GUEST_DISKS = "guest.disk"
SENSORS = "runtime.healthSystemRuntime.systemHealthInfo.numericSensorInfo"

EXTRA_PROPERTIES: dict[str, list[str]] = {
    # DatastoreSummary.uncommitted (optional: absent without thin provisioning support),
    # .maintenanceMode (normal / enteringMaintenance / inMaintenance, vSphere 5.0+);
    # Datastore.host: DatastoreHostMount[] (hosts and their mount state); summary.url, the
    # datastore's unique locator, whose last path component names it in the hosts'
    # datastore performance counters (exporter/perf_datastores.py).
    "Datastore": ["summary.uncommitted", "summary.maintenanceMode", "host", "summary.url"],
    # HostRuntimeInfo.healthSystemRuntime.systemHealthInfo.numericSensorInfo: the IPMI/CIM
    # sensors (HostNumericSensorInfo: name, healthState.key green/yellow/red/unknown, optional
    # "populated only for sensors that support threshold settings"; currentReading x 10^
    # unitModifier in baseUnits); HostHardwareSummary vendor/model/cpuModel; BIOS version.
    # GuestInfo.toolsVersionStatus2 (VirtualMachineToolsVersionStatus, vSphere 5.0+),
    # .toolsVersion (string), .disk (GuestDiskInfo[]: diskPath, capacity, freeSpace; reported
    # by VMware Tools, empty without it).
    "VirtualMachine": ["guest.toolsVersionStatus2", "guest.toolsVersion", GUEST_DISKS],
    # ResourcePool (VirtualApp is a subtype: the same spec covers it): owner is the cluster;
    # summary.quickStats is ResourcePoolQuickStats (MHz, MB; vSphere 4.0+); config.*Allocation
    # is ResourceAllocationInfo (reservation, limit -1 = unlimited, shares.level/.shares).
    "ResourcePool": [
        "name",
        "parent",
        "owner",
        "summary.quickStats.overallCpuUsage",
        "summary.quickStats.guestMemoryUsage",
        "summary.quickStats.hostMemoryUsage",
        "config.cpuAllocation",
        "config.memoryAllocation",
    ],
    "HostSystem": [
        SENSORS,
        "summary.hardware.vendor",
        "summary.hardware.model",
        "summary.hardware.cpuModel",
        "hardware.biosInfo.biosVersion",
    ],
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


# baseUnits as ESXi reports them -> (unit label, factor, offset) to base units.
_UNITS: dict[str, tuple[str, float, float]] = {
    "degrees c": ("celsius", 1.0, 0.0),
    "degrees f": ("celsius", 5.0 / 9.0, -32.0 * 5.0 / 9.0),
    "volts": ("volts", 1.0, 0.0),
    "amps": ("amperes", 1.0, 0.0),
    "watts": ("watts", 1.0, 0.0),
    "rpm": ("rpm", 1.0, 0.0),
    "percent": ("ratio", 0.01, 0.0),
}
SensorReading = tuple[str, str, str, float | None, str]  # name, type, status, value, unit


def _sensors(value: Any) -> tuple[SensorReading, ...]:
    """HostNumericSensorInfo[] -> (name, type, status, value in base units or None, unit).

    Discrete sensors (no ``baseUnits``, or ``unspecified``) keep their status only.
    """
    out: list[SensorReading] = []
    for sensor in value or []:
        health = getattr(getattr(sensor, "healthState", None), "key", None)
        status = str(health).lower() if health else "unknown"
        units = str(getattr(sensor, "baseUnits", "") or "").strip().lower()
        reading: float | None = None
        unit = ""
        if units and units != "unspecified" and not getattr(sensor, "rateUnits", None):
            raw = float(getattr(sensor, "currentReading", 0) or 0)
            scaled = raw * 10.0 ** int(getattr(sensor, "unitModifier", 0) or 0)
            unit, factor, offset = _UNITS.get(units, (units.replace(" ", "_"), 1.0, 0.0))
            reading = scaled * factor + offset
        # Interned: 1,000 hosts of one model report the same names, types and units, and
        # every poll converts them again.
        out.append(
            (
                sys.intern(str(getattr(sensor, "name", ""))),
                sys.intern(str(getattr(sensor, "sensorType", "") or "other")),
                sys.intern(status),
                reading,
                sys.intern(unit),
            )
        )
    return tuple(out)


def _guest_disks(value: Any) -> tuple[tuple[str, float, float], ...]:
    """GuestDiskInfo[] -> ((mount, capacity, free), ...), one entry per mount point."""
    seen: dict[str, tuple[str, float, float]] = {}
    for disk in value or []:
        path = str(getattr(disk, "diskPath", "") or "")
        if path:
            capacity = float(getattr(disk, "capacity", 0) or 0)
            seen[path] = (path, capacity, float(getattr(disk, "freeSpace", 0) or 0))
    return tuple(sorted(seen.values()))


def _allocation(value: Any) -> dict[str, Any]:
    """ResourceAllocationInfo -> {reservation, limit (None = unlimited), shares, level}."""
    shares = getattr(value, "shares", None)
    limit = getattr(value, "limit", None)
    return {
        "reservation": float(getattr(value, "reservation", 0) or 0),
        "limit": None if limit is None or limit < 0 else float(limit),
        "shares": float(getattr(shares, "shares", 0) or 0),
        "level": str(getattr(shares, "level", "") or ""),
        "expandable": bool(getattr(value, "expandableReservation", False)),
    }


EXTRA_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "config.cpuAllocation": _allocation,
    "config.memoryAllocation": _allocation,
    GUEST_DISKS: _guest_disks,
    "host": _mounted_hosts,
    SENSORS: _sensors,
}
