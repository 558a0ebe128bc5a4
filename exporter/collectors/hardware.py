"""Host hardware: health sensors (what Proactive HA acts on) and hardware identity.

``vsphere_host_sensor_status{sensor,type,status}`` is an enum (green, yellow, red, unknown)
per sensor; ``vsphere_host_sensor_value{sensor,type,unit}`` the reading in base units, for
sensors with units (temperatures in celsius, fans in rpm, power in watts, volts, amperes);
``vsphere_host_sensors{status}`` how many sensors of a host are in each state.
A real host reports 50-200 sensors: about 5 series each, per host, never per VM.

At 1,000 hosts that is some 400,000 status series (80 % of a 10,000-VM body), so:

* each host's lines are cached on the properties they depend on (collectors/cache.py): a
  render after a VM change, a poll of quickStats or a performance collection does not
  rebuild 400,000 lines, nor re-join the family;
* ``collectors.host_sensors.include_green: false`` leaves green sensors out of the status
  enum (a sensor that is not green still has all four series, so ``status="red"} == 1``
  alerts as before); the per-host counts still say how many sensors are green.
"""

from __future__ import annotations

from exporter.collectors_config import parse_collectors_config

from ..exposition import gzip_member
from ..families import Family, labels
from ..inventory import ManagedObject
from ..properties_extra import SENSORS
from .cache import cached, previous_families, remember
from .context import RenderContext

SENSOR_STATUSES = ("green", "yellow", "red", "unknown")


def _families() -> tuple[Family, Family, Family, Family]:
    return (
        Family("vsphere_host_hardware_info", "Host hardware identity; always 1."),
        Family("vsphere_host_sensor_status", "Host hardware sensor health state."),
        Family("vsphere_host_sensor_value", "Host hardware sensor reading, base units."),
        Family(
            "vsphere_host_sensors",
            "Host hardware sensors in each health state (green ones included when their "
            "status series are left out).",
        ),
    )


def _render_host(
    ctx: RenderContext, host: ManagedObject, sensors_on: bool, include_green: bool
) -> tuple[str, bytes, bytes, str]:
    """One host's lines of each family of :func:`_families`, in that order (the sensor
    families' as gzip members)."""
    info, status, reading, counts = _families()
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
    # A disconnected host's sensors are its last known state: not claimed.
    if sensors_on and host.get("runtime.connectionState") == "connected":
        seen: set[str] = set()
        n = dict.fromkeys(SENSOR_STATUSES, 0)
        for name, kind, state, value, unit in host.get(SENSORS) or ():
            if name in seen:
                continue  # two sensors of one name would make duplicate series
            seen.add(name)
            n[state if state in n else "unknown"] += 1
            sensor = f"{base},{labels((('sensor', name), ('type', kind)))}"
            if include_green or state != "green":
                status.add_enum(sensor, "status", SENSOR_STATUSES, state)
            if value is not None:
                reading.add(f"{sensor},{labels((('unit', unit),))}", value)
        for state, count in n.items():
            counts.add(f'{base},status="{state}"', count)
    # The status and value lines (~100 KB per host on real hardware) are cached as gzip
    # members: ~5 % of their text, decompressed only when the family is encoded again.
    return (
        "".join(info.lines),
        _packed(status),
        _packed(reading),
        "".join(counts.lines),
    )


def _packed(fam: Family) -> bytes:
    text = "".join(fam.lines)
    return gzip_member(text.encode()) if text else b""


# What a host's lines of these families depend on (its identity block, the hardware
# identity, the sensors and whether they are claimed): not its quickStats, which a poll
# changes every 20 s, so a poll never re-renders 1,000 hosts' ~100 MB of sensor lines.
_HARDWARE_PATHS = (
    "name",
    "runtime.connectionState",
    SENSORS,
    "summary.hardware.vendor",
    "summary.hardware.model",
    "summary.hardware.cpuModel",
    "hardware.biosInfo.biosVersion",
)


def hardware_key(host: ManagedObject) -> tuple[object, ...]:
    """The values of :data:`_HARDWARE_PATHS` (a sensor tuple is the same object while
    unchanged, so comparing two keys is cheap)."""
    props = host.props
    return (host.moid, *(props.get(path) for path in _HARDWARE_PATHS))


def collect(ctx: RenderContext) -> list[Family]:
    """Every host, reusing a host's lines until its hardware changes; when no host's did,
    the very families of the previous render, which the renderer recognises and neither
    joins nor encodes again (the sensor family is ~100 MB at 1,000 hosts)."""
    cfg = parse_collectors_config(ctx.config).host_sensors
    hosts = ctx.objects("HostSystem")
    keys = [hardware_key(h) for h in hosts]
    signature = (ctx.vcenter, cfg, keys)
    if (previous := previous_families(ctx, "hardware_families", signature)) is not None:
        return previous
    families = _families()
    by_moid = dict(zip((h.moid for h in hosts), keys, strict=True))
    for parts in cached(
        ctx,
        "hardware",
        hosts,
        lambda host: _render_host(ctx, host, cfg.enabled, cfg.include_green),
        extra_key=(ctx.vcenter, cfg.enabled, cfg.include_green),
        key=lambda host: by_moid[host.moid],
    ):
        info, status, reading, counts = parts
        for fam, text in ((families[0], info), (families[3], counts)):
            if text:
                fam.lines.append(text)
        for fam, member in ((families[1], status), (families[2], reading)):
            if member:
                fam.members.append(member)
    return remember(ctx, "hardware_families", signature, list(families))
