"""Host hardware: health sensors (what Proactive HA acts on) and hardware identity.

``vsphere_host_sensor_status{sensor,type,status}`` is an enum (green, yellow, red, unknown)
per sensor; ``vsphere_host_sensor_value{sensor,type,unit}`` the reading in base units, for
sensors with units (temperatures in celsius, fans in rpm, power in watts, volts, amperes).
A real host reports 50-200 sensors: about 5 series each, per host, never per VM.
"""

from __future__ import annotations

from exporter.collectors_config import parse_collectors_config

from ..families import Family, labels
from ..properties_extra import SENSORS
from .context import RenderContext

SENSOR_STATUSES = ("green", "yellow", "red", "unknown")


def collect(ctx: RenderContext) -> list[Family]:
    info = Family("vsphere_host_hardware_info", "Host hardware identity; always 1.")
    status = Family("vsphere_host_sensor_status", "Host hardware sensor health state.")
    reading = Family("vsphere_host_sensor_value", "Host hardware sensor reading, base units.")
    sensors_on = parse_collectors_config(ctx.config).host_sensors.enabled
    for host in ctx.objects("HostSystem"):
        base = ctx.base("host", host)
        info.add(
            base
            + ","
            + labels(
                (
                    ("vendor", str(host.get("summary.hardware.vendor") or "")),
                    ("model", str(host.get("summary.hardware.model") or "")),
                    ("cpu_model", str(host.get("summary.hardware.cpuModel") or "")),
                    ("bios", str(host.get("hardware.biosInfo.biosVersion") or "")),
                )
            ),
            1,
        )
        if not sensors_on or host.get("runtime.connectionState") != "connected":
            continue  # a disconnected host's sensors are its last known state: not claimed
        seen: set[str] = set()
        for name, kind, state, value, unit in host.get(SENSORS) or ():
            if name in seen:
                continue  # two sensors of one name would make duplicate series
            seen.add(name)
            sensor = f"{base},{labels((('sensor', name), ('type', kind)))}"
            status.add_enum(sensor, "status", SENSOR_STATUSES, state)
            if value is not None:
                reading.add(f"{sensor},{labels((('unit', unit),))}", value)
    return [info, status, reading]
