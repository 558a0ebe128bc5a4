"""The thresholds: ``rules/config.yml`` loaded, merged with a profile and overrides, validated.

This is the only module that reads config files. Validation happens here, before any rule is
built, so a bad value fails with a message naming its key and nothing is written; the group
modules get a typed :class:`Settings` and never see raw YAML. Cross-group constraints (the
inhibiting alerts must fire before the hosts' VMs restart) live here too, because no single
group owns them. A new group may keep its thresholds out of this module entirely and read
its own section with :attr:`Settings.read` (see ``rules/rulegen/__init__.py``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vcenter.mass_failure import FAULT_DOMAIN_MIN_HOSTS, MAX_FAILED_HOSTS, MAX_FAILED_SHARE
from vha.report import rightsizing

ROOT = Path(__file__).resolve().parent.parent.parent
RULES_DIR = ROOT / "rules"
CONFIG_FILE = RULES_DIR / "config.yml"
PROFILES_DIR = RULES_DIR / "profiles"

# vSphere HA's VM-monitoring sensitivity presets: failure interval and minimum uptime in
# seconds, and the reset budget (enforced by the remediator, documented here for reference).
PRESETS: dict[str, dict[str, Any]] = {
    "high": {"failure_interval": 30, "min_uptime": 120, "max_resets": 3, "reset_window": "1h"},
    "medium": {"failure_interval": 60, "min_uptime": 240, "max_resets": 3, "reset_window": "24h"},
    "low": {"failure_interval": 120, "min_uptime": 480, "max_resets": 3, "reset_window": "7d"},
}


class ConfigError(Exception):
    """A bad value in the config; the message names the key."""


# --- durations ---------------------------------------------------------------------------------

_UNITS = (("y", 365 * 86400), ("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_DURATION_RE = re.compile(r"^(?:\d+(?:y|w|d|h|m|s|ms))+$")
_PART_RE = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")


@dataclass(frozen=True)
class Duration:
    """A Prometheus duration, kept both as seconds (for expressions) and as text."""

    seconds: float

    @property
    def text(self) -> str:
        rest = int(self.seconds)
        if rest != self.seconds or rest == 0:
            return f"{round(self.seconds * 1000)}ms" if self.seconds else "0s"
        out = ""
        for unit, size in _UNITS:
            if rest >= size:
                out += f"{rest // size}{unit}"
                rest %= size
        return out

    @property
    def number(self) -> str:
        """The seconds as a PromQL number literal."""
        return f"{self.seconds:g}"


def parse_duration(value: Any, key: str) -> Duration:
    if isinstance(value, bool) or not isinstance(value, str) or not _DURATION_RE.match(value):
        raise ConfigError(f"{key}: must be a Prometheus duration such as 30s or 5m, got {value!r}")
    total = 0.0
    for amount, unit in _PART_RE.findall(value):
        total += int(amount) / 1000 if unit == "ms" else int(amount) * dict(_UNITS)[unit]
    return Duration(total)


# --- config ------------------------------------------------------------------------------------

# Keys whose value is replaced wholesale by an override instead of merged key by key.
_OPAQUE = {("alertmanager", "people")}


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a mapping at the top level")
    return data


def merge(base: dict[str, Any], override: Mapping[str, Any], source: str) -> dict[str, Any]:
    """``override`` applied over ``base``; every key of ``override`` must exist in ``base``."""

    def walk(dst: dict[str, Any], src: Mapping[str, Any], path: tuple[str, ...]) -> None:
        for key, value in src.items():
            here = (*path, str(key))
            dotted = ".".join(here)
            if key not in dst:
                raise ConfigError(f"{source}: unknown key {dotted}")
            if isinstance(dst[key], dict) and here not in _OPAQUE:
                if not isinstance(value, Mapping):
                    raise ConfigError(f"{source}: {dotted} must be a mapping")
                walk(dst[key], value, here)
            else:
                dst[key] = copy.deepcopy(value)

    out = copy.deepcopy(base)
    walk(out, override, ())
    return out


def load_raw(profile: str | None = None, overrides: Sequence[Path] = ()) -> dict[str, Any]:
    raw = _load_yaml(CONFIG_FILE)
    if profile:
        path = PROFILES_DIR / f"{profile}.yml"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in PROFILES_DIR.glob("*.yml"))) or "none"
            raise ConfigError(f"--profile {profile}: no {path} (known profiles: {known})")
        raw = merge(raw, _load_yaml(path), str(path))
    for path in overrides:
        raw = merge(raw, _load_yaml(path), str(path))
    return raw


class Reader:
    """Typed, validated access to the merged config; every error names the key."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw

    def get(self, key: str) -> Any:
        node: Any = self.raw
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise ConfigError(f"{key}: missing")
            node = node[part]
        return node

    def duration(self, key: str) -> Duration:
        return parse_duration(self.get(key), key)

    def positive_duration(self, key: str) -> Duration:
        d = self.duration(key)
        if d.seconds <= 0:
            raise ConfigError(f"{key}: must be longer than 0s")
        return d

    def number(self, key: str, low: float, high: float) -> float:
        value = self.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: must be a number, got {value!r}")
        if not low <= value <= high:
            raise ConfigError(f"{key}: must be between {low:g} and {high:g}, got {value!r}")
        return float(value)

    def integer(self, key: str, low: int) -> int:
        value = self.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{key}: must be an integer >= {low}, got {value!r}")
        return value

    def boolean(self, key: str) -> bool:
        value = self.get(key)
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: must be true or false, got {value!r}")
        return value

    def string(self, key: str, choices: Sequence[str] = ()) -> str:
        value = self.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{key}: must be a non-empty string, got {value!r}")
        if choices and value not in choices:
            raise ConfigError(f"{key}: must be one of {', '.join(choices)}, got {value!r}")
        return value


@dataclass(frozen=True)
class Performance:
    """The ``performance:`` section: thresholds on the exporter's performance counters."""

    average_over: Duration
    cpu_ready_ratio: float
    cpu_ready_for: Duration
    cpu_costop_ratio: float
    cpu_costop_for: Duration
    swap_in_bytes_per_second: float
    swapping_for: Duration
    balloon_bytes: float
    ballooning_for: Duration
    disk_latency_seconds: float
    disk_latency_for: Duration
    dropped_packets_per_second: float
    dropped_packets_for: Duration
    host_degraded_for: Duration
    host_degraded_remediation: str
    stale_after: Duration
    stale_for: Duration


# Prometheus' lookback: a rule group evaluated less often leaves instant queries without its
# series between runs.
MAX_RIGHTSIZING_INTERVAL = 300


def _performance(r: Reader) -> Performance:
    inf = float("inf")
    p = "performance."
    return Performance(
        average_over=r.positive_duration(p + "average_over"),
        cpu_ready_ratio=r.number(p + "cpu_ready_ratio", 0.0, 1.0),
        cpu_ready_for=r.duration(p + "cpu_ready_for"),
        cpu_costop_ratio=r.number(p + "cpu_costop_ratio", 0.0, 1.0),
        cpu_costop_for=r.duration(p + "cpu_costop_for"),
        swap_in_bytes_per_second=r.number(p + "swap_in_bytes_per_second", 0.0, inf),
        swapping_for=r.duration(p + "swapping_for"),
        balloon_bytes=r.number(p + "balloon_bytes", 0.0, inf),
        ballooning_for=r.duration(p + "ballooning_for"),
        disk_latency_seconds=r.number(p + "disk_latency_seconds", 0.0, inf),
        disk_latency_for=r.duration(p + "disk_latency_for"),
        dropped_packets_per_second=r.number(p + "dropped_packets_per_second", 0.0, inf),
        dropped_packets_for=r.duration(p + "dropped_packets_for"),
        host_degraded_for=r.duration(p + "host_degraded_for"),
        host_degraded_remediation=r.string(
            p + "host_degraded_remediation", ("none", "evacuate_host")
        ),
        stale_after=r.positive_duration(p + "stale_after"),
        stale_for=r.duration(p + "stale_for"),
    )


def _rightsizing(r: Reader, max_utilization: float) -> tuple[rightsizing.Settings, Duration]:
    p = "rightsizing."
    r.positive_duration(p + "window")
    window = r.get(p + "window")  # as written: the report shows it
    try:
        rightsizing.duration_seconds(window)
    except ValueError:
        raise ConfigError(f"{p}window: whole seconds only (no ms), got {window!r}") from None
    interval = r.positive_duration(p + "interval")
    if interval.seconds > MAX_RIGHTSIZING_INTERVAL:
        raise ConfigError(
            f"{p}interval: at most 5m (Prometheus' lookback), or instant queries miss the "
            f"rightsizing series between evaluations; got {interval.text}"
        )
    if interval.seconds != int(interval.seconds):
        raise ConfigError(f"{p}interval: whole seconds only, got {r.get(p + 'interval')!r}")
    inf = float("inf")
    settings = rightsizing.Settings(
        window=window,
        cpu_target_ratio=r.number(p + "cpu_target_ratio", 0.01, 1.0),
        memory_target_ratio=r.number(p + "memory_target_ratio", 0.01, 1.0),
        idle_cpu_ratio=r.number(p + "idle_cpu_ratio", 0.0, 1.0),
        idle_network_bytes_per_second=r.number(p + "idle_network_bytes_per_second", 0.0, inf),
        idle_disk_ops_per_second=r.number(p + "idle_disk_ops_per_second", 0.0, inf),
        min_coverage_ratio=r.number(p + "min_coverage_ratio", 0.0, 1.0),
        max_utilization=max_utilization,
    )
    return settings, interval


@dataclass(frozen=True)
class Settings:
    """The validated config the generator works from."""

    raw: dict[str, Any]
    profile: str | None
    runbook_base_url: str
    evaluation_interval: Duration
    exporter_selector: str
    exporter_down_for: Duration
    vcenter_unreachable_for: Duration
    sync_stale_after: Duration
    sync_stale_for: Duration
    host_not_responding_for: Duration
    host_disconnected_for: Duration
    host_powered_off_for: Duration
    host_ha_state_for: Duration
    host_ha_agent_error_for: Duration
    host_degraded_for: Duration
    host_degraded_remediation: str
    mass_max_hosts: int
    mass_max_share: float
    mass_for: Duration
    no_master_for: Duration
    election_max: Duration
    multiple_masters_for: Duration
    sensitivity: str
    failure_interval: Duration
    min_uptime: Duration
    use_cluster_settings: bool
    vm_for: Duration
    vm_powered_off_for: Duration
    vm_powered_off_lookback: Duration
    app_for: Duration
    app_need_reset_for: Duration
    fd_down_for: Duration
    fd_min_hosts: int
    failover_level_exceeded_for: Duration
    max_utilization: float
    failover_headroom_for: Duration
    ds_free_min_ratio: float
    ds_free_for: Duration
    ds_inaccessible_for: Duration
    perf: Performance
    rightsizing: rightsizing.Settings
    rightsizing_interval: Duration
    am: dict[str, Any] = field(default_factory=dict)

    @property
    def read(self) -> Reader:
        """Validated access to any key of the merged config, for a group whose thresholds
        have no field here: ``s.read.duration("section.key")`` (errors name the key)."""
        return Reader(self.raw)


def settings_from(raw: dict[str, Any], profile: str | None = None) -> Settings:
    r = Reader(raw)
    sensitivity = r.string("vm_monitoring.sensitivity", tuple(PRESETS))
    preset = PRESETS[sensitivity]

    def preset_or(key: str, name: str) -> Duration:
        if r.get(key) is None:
            return Duration(float(preset[name]))
        return r.positive_duration(key)

    selector = r.string("watcher.exporter_selector")
    if "{" in selector or "}" in selector:
        raise ConfigError("watcher.exporter_selector: label matchers only, without braces")

    people = r.get("alertmanager.people")
    if people is None:
        people = {}
    if not isinstance(people, Mapping) or "name" in people:
        raise ConfigError("alertmanager.people: must be a mapping of receiver settings, no name")
    am: dict[str, Any] = {
        "remediator_url": r.string("alertmanager.remediator_url"),
        "remediator_credentials_file": r.string("alertmanager.remediator_credentials_file"),
        "people": dict(people),
    }
    for who in ("remediator", "people"):
        for what in ("group_wait", "group_interval", "repeat_interval"):
            key = f"{who}_{what}"
            am[key] = r.positive_duration(f"alertmanager.{key}").text

    max_utilization = r.number("capacity.max_utilization", 0.01, 1.0)
    sizing, sizing_interval = _rightsizing(r, max_utilization)
    s = Settings(
        raw=raw,
        profile=profile,
        runbook_base_url=r.string("runbook_base_url").rstrip("#"),
        evaluation_interval=r.positive_duration("evaluation_interval"),
        exporter_selector=selector,
        exporter_down_for=r.duration("watcher.exporter_down_for"),
        vcenter_unreachable_for=r.duration("watcher.vcenter_unreachable_for"),
        sync_stale_after=r.positive_duration("watcher.sync_stale_after"),
        sync_stale_for=r.duration("watcher.sync_stale_for"),
        host_not_responding_for=r.duration("hosts.not_responding_for"),
        host_disconnected_for=r.duration("hosts.disconnected_for"),
        host_powered_off_for=r.duration("hosts.powered_off_for"),
        host_ha_state_for=r.duration("hosts.ha_state_for"),
        host_ha_agent_error_for=r.duration("hosts.ha_agent_error_for"),
        host_degraded_for=r.duration("hosts.degraded_for"),
        host_degraded_remediation=r.string("hosts.degraded_remediation", ("none", "evacuate_host")),
        mass_max_hosts=(
            MAX_FAILED_HOSTS
            if r.get("mass_failure.max_hosts") is None
            else r.integer("mass_failure.max_hosts", 1)
        ),
        mass_max_share=(
            MAX_FAILED_SHARE
            if r.get("mass_failure.max_share") is None
            else r.number("mass_failure.max_share", 0.0, 1.0)
        ),
        mass_for=r.duration("mass_failure.for"),
        no_master_for=r.duration("ha_master.no_master_for"),
        election_max=r.duration("ha_master.election_max"),
        multiple_masters_for=r.duration("ha_master.multiple_masters_for"),
        sensitivity=sensitivity,
        failure_interval=preset_or("vm_monitoring.failure_interval", "failure_interval"),
        min_uptime=preset_or("vm_monitoring.min_uptime", "min_uptime"),
        use_cluster_settings=r.boolean("vm_monitoring.use_cluster_settings"),
        vm_for=r.duration("vm_monitoring.for"),
        vm_powered_off_for=r.duration("vm_monitoring.powered_off_for"),
        vm_powered_off_lookback=r.positive_duration("vm_monitoring.powered_off_lookback"),
        app_for=r.duration("application_monitoring.for"),
        app_need_reset_for=r.duration("application_monitoring.need_reset_for"),
        fd_down_for=r.duration("fault_domains.down_for"),
        fd_min_hosts=(
            FAULT_DOMAIN_MIN_HOSTS
            if r.get("fault_domains.min_hosts") is None
            else r.integer("fault_domains.min_hosts", 1)
        ),
        failover_level_exceeded_for=r.duration("fault_domains.failover_level_exceeded_for"),
        max_utilization=max_utilization,
        failover_headroom_for=r.duration("capacity.failover_headroom_for"),
        ds_free_min_ratio=r.number("datastores.free_space_min_ratio", 0.0, 1.0),
        ds_free_for=r.duration("datastores.free_space_for"),
        ds_inaccessible_for=r.duration("datastores.inaccessible_for"),
        perf=_performance(r),
        rightsizing=sizing,
        rightsizing_interval=sizing_interval,
        am=am,
    )
    # The alerts that inhibit restart_host_vms read recording rules (one evaluation late) and
    # live in another group (another phase): they need two evaluations of lead.
    host_for = min(s.host_not_responding_for.seconds, s.host_powered_off_for.seconds)
    lead = 2 * s.evaluation_interval.seconds
    for key, value in (("mass_failure.for", s.mass_for), ("fault_domains.down_for", s.fd_down_for)):
        if value.seconds + lead > host_for:
            raise ConfigError(
                f"{key}: {value.text} + 2 x evaluation_interval must not exceed "
                "hosts.not_responding_for and hosts.powered_off_for "
                f"({Duration(host_for).text}), or hosts' VMs restart before it can inhibit them"
            )
    return s


def load_settings(profile: str | None = None, overrides: Sequence[Path] = ()) -> Settings:
    return settings_from(load_raw(profile, overrides), profile)
