"""The ``collectors:`` section: which of the exporter's optional collectors run, and how.

Tags, alarms, licences, hardware sensors, guest disks and custom attributes are each
switchable because each costs something a user pays for (series in Prometheus, calls to
vCenter); the exporter owns these settings, so they live beside its collectors rather than
in the shared :mod:`vcenter.config`, which validates only what both daemons read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from vcenter.config import Config, ConfigError, _bool, _mapping, _number, _unknown_keys


@dataclass(frozen=True)
class TagsConfig:
    """vSphere tags read through the vAPI REST endpoint, off the scrape path."""

    enabled: bool = True
    refresh_seconds: float = 300.0  # tags rarely change
    categories: tuple[str, ...] = ()  # allow-list of category names; empty = all
    vms: bool = True  # per-VM tags: one series per VM and tag
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class AlarmsConfig:
    """Triggered vCenter alarms, polled (``triggeredAlarmState`` does not notify)."""

    enabled: bool = True
    interval_seconds: float = 60.0


@dataclass(frozen=True)
class LicensesConfig:
    """Licences (LicenseManager), polled; details need the Global.Licenses privilege."""

    enabled: bool = True
    interval_seconds: float = 300.0


@dataclass(frozen=True)
class SnapshotSizesConfig:
    """Space held by snapshots: ``layoutEx`` of the VMs with snapshots, polled (it may not
    notify, and it lists every file of a VM)."""

    enabled: bool = True
    interval_seconds: float = 300.0


@dataclass(frozen=True)
class HostSensorsConfig:
    """Host hardware sensors: about 5 series per sensor, 50-200 sensors per real host.

    ``include_green: false`` leaves green sensors out of ``vsphere_host_sensor_status``
    (four fifths of the series at scale); not-green sensors keep their four series.
    """

    enabled: bool = True
    include_green: bool = True


@dataclass(frozen=True)
class GuestDisksConfig:
    """Guest filesystems (``guest.disk``): two series per VM and filesystem, so off by default."""

    enabled: bool = False


@dataclass(frozen=True)
class CustomAttributesConfig:
    """Custom attributes as info metrics: opt-in, optionally limited to some attributes."""

    enabled: bool = False
    attributes: tuple[str, ...] = ()  # allow-list of attribute names; empty = all


@dataclass(frozen=True)
class CollectorsConfig:
    """Optional and switchable metric families (see docs/metrics.md for their cost)."""

    tags: TagsConfig = field(default_factory=TagsConfig)
    alarms: AlarmsConfig = field(default_factory=AlarmsConfig)
    licenses: LicensesConfig = field(default_factory=LicensesConfig)
    host_sensors: HostSensorsConfig = field(default_factory=HostSensorsConfig)
    guest_disks: GuestDisksConfig = field(default_factory=GuestDisksConfig)
    custom_attributes: CustomAttributesConfig = field(default_factory=CustomAttributesConfig)
    snapshot_sizes: SnapshotSizesConfig = field(default_factory=SnapshotSizesConfig)


def _str_list(value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(key, "must be a list of non-empty strings")
    return tuple(value)


def _tags(section: Any) -> TagsConfig:
    key = "collectors.tags"
    section = _mapping(section, key)
    _unknown_keys(
        section, {"enabled", "refresh_seconds", "categories", "vms", "timeout_seconds"}, key
    )
    return TagsConfig(
        enabled=_bool(section.get("enabled"), f"{key}.enabled", True),
        refresh_seconds=_number(
            section.get("refresh_seconds"), f"{key}.refresh_seconds", 300.0, minimum=0.1
        ),
        categories=_str_list(section.get("categories"), f"{key}.categories"),
        vms=_bool(section.get("vms"), f"{key}.vms", True),
        timeout_seconds=_number(
            section.get("timeout_seconds"), f"{key}.timeout_seconds", 30.0, minimum=1
        ),
    )


def _polled(section: Any, key: str, interval: float) -> tuple[bool, float]:
    """``enabled`` and ``interval_seconds`` of a collector that polls on a schedule (alarms,
    licences and snapshot sizes share this shape and differ in their default interval)."""
    section = _mapping(section, key)
    _unknown_keys(section, {"enabled", "interval_seconds"}, key)
    return (
        _bool(section.get("enabled"), f"{key}.enabled", True),
        _number(section.get("interval_seconds"), f"{key}.interval_seconds", interval, minimum=0.1),
    )


def _alarms(section: Any) -> AlarmsConfig:
    return AlarmsConfig(*_polled(section, "collectors.alarms", AlarmsConfig.interval_seconds))


def _licenses(section: Any) -> LicensesConfig:
    return LicensesConfig(*_polled(section, "collectors.licenses", LicensesConfig.interval_seconds))


def _snapshot_sizes(section: Any) -> SnapshotSizesConfig:
    return SnapshotSizesConfig(
        *_polled(section, "collectors.snapshot_sizes", SnapshotSizesConfig.interval_seconds)
    )


def _host_sensors(section: Any) -> HostSensorsConfig:
    key = "collectors.host_sensors"
    section = _mapping(section, key)
    _unknown_keys(section, {"enabled", "include_green"}, key)
    return HostSensorsConfig(
        enabled=_bool(section.get("enabled"), f"{key}.enabled", True),
        include_green=_bool(section.get("include_green"), f"{key}.include_green", True),
    )


def _guest_disks(section: Any) -> GuestDisksConfig:
    key = "collectors.guest_disks"
    section = _mapping(section, key)
    _unknown_keys(section, {"enabled"}, key)
    return GuestDisksConfig(enabled=_bool(section.get("enabled"), f"{key}.enabled", False))


def _custom_attributes(section: Any) -> CustomAttributesConfig:
    key = "collectors.custom_attributes"
    section = _mapping(section, key)
    _unknown_keys(section, {"enabled", "attributes"}, key)
    return CustomAttributesConfig(
        enabled=_bool(section.get("enabled"), f"{key}.enabled", False),
        attributes=_str_list(section.get("attributes"), f"{key}.attributes"),
    )


def parse_collectors_config(source: Config | Mapping[str, Any] | None) -> CollectorsConfig:
    """Validate ``collectors:`` (a :class:`Config` or the section); errors name the key."""
    key = "collectors"
    raw = source.raw.get(key) if isinstance(source, Config) else source
    section = _mapping(raw, key)
    allowed = {f.name for f in fields(CollectorsConfig)}
    _unknown_keys(section, allowed, key)
    return CollectorsConfig(
        tags=_tags(section.get("tags")),
        alarms=_alarms(section.get("alarms")),
        licenses=_licenses(section.get("licenses")),
        host_sensors=_host_sensors(section.get("host_sensors")),
        guest_disks=_guest_disks(section.get("guest_disks")),
        custom_attributes=_custom_attributes(section.get("custom_attributes")),
        snapshot_sizes=_snapshot_sizes(section.get("snapshot_sizes")),
    )
