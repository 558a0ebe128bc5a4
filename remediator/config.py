"""The ``remediator:`` section of the shared config file, validated completely up front.

Every knob that decides whether the remediator may touch a VM lives here, with defaults
that favour doing nothing: ``dry_run`` is on until a user turns it off, authentication is
required unless ``auth: none`` is written out, and the guards are on.  Every error names
the key, as the exporter's config does, so a typo never turns into a silently unsafe
default.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vcenter.config import Config, ConfigError, Secret, parse_listen, read_secret

SECTION = "remediator"
DEFAULT_LISTEN = "127.0.0.1:9273"
DEFAULT_JOURNAL = "run/remediator.sqlite"
MOVE_METHODS = ("auto", "relocate", "register")
AUTH_MODES = ("bearer", "basic", "none")


@dataclass(frozen=True)
class TLSConfig:
    cert_file: str
    key_file: str


@dataclass(frozen=True)
class RetryConfig:
    """Backoff for transient vCenter faults (TaskInProgress, lost connection)."""

    max_attempts: int = 5
    backoff_initial_seconds: float = 2.0
    backoff_max_seconds: float = 60.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff after the ``attempt``-th failure (1-based)."""
        return min(
            self.backoff_max_seconds, self.backoff_initial_seconds * 2 ** max(0, attempt - 1)
        )


@dataclass(frozen=True)
class RateLimitConfig:
    """At most ``max_actions`` vCenter-changing actions per cluster per ``window_seconds``."""

    max_actions: int = 500
    window_seconds: float = 600.0


@dataclass(frozen=True)
class GuardConfig:
    """The mass-failure guard: above either bound, the cluster is left alone."""

    max_failed_hosts: int = 2
    max_failed_share: float = 0.5
    window_seconds: float = 600.0
    max_hold_seconds: float = 3600.0


@dataclass(frozen=True)
class HostFailureConfig:
    """When a silent host counts as dead, and how its VMs leave it."""

    confirm_seconds: float = 60.0
    require_fdm_host_down: bool = True
    max_unconfirmed_seconds: float = 900.0
    fencing_command: tuple[str, ...] = ()
    fencing_timeout_seconds: float = 60.0
    move_method: str = "auto"


@dataclass(frozen=True)
class VMMonitoringConfig:
    """Reset limits; the defaults are vSphere HA's high-sensitivity VM-monitoring preset."""

    max_resets: int = 3
    window_seconds: float = 3600.0
    min_uptime_seconds: float = 120.0
    prefer_cluster_settings: bool = True


@dataclass(frozen=True)
class PlacementConfig:
    """Headroom kept free on a target, as a share of its capacity."""

    max_cpu_utilization: float = 0.9
    max_memory_utilization: float = 0.9
    prefer_other_fault_domain: bool = True


@dataclass(frozen=True)
class RemediatorConfig:
    listen_host: str
    listen_port: int
    auth: str
    bearer_token: Secret | None
    basic_user: str | None
    basic_password: Secret | None
    tls: TLSConfig | None
    dry_run: bool
    journal_path: str
    max_body_bytes: int
    header_timeout_seconds: float
    body_timeout_seconds: float
    workers: int
    max_concurrent_tasks: int
    action_timeout_seconds: float
    ha_grace_seconds: float
    enter_maintenance: bool
    retry: RetryConfig
    rate_limit: RateLimitConfig
    guard: GuardConfig
    host_failure: HostFailureConfig
    vm_monitoring: VMMonitoringConfig
    placement: PlacementConfig
    state_refresh_seconds: float

    @property
    def listen(self) -> str:
        return f"{self.listen_host}:{self.listen_port}"


_TOP_KEYS = {
    "listen",
    "auth",
    "bearer_token",
    "bearer_token_file",
    "bearer_token_env",
    "basic_auth",
    "tls",
    "dry_run",
    "journal",
    "max_body_bytes",
    "header_timeout_seconds",
    "body_timeout_seconds",
    "workers",
    "max_concurrent_tasks",
    "action_timeout_seconds",
    "ha_grace_seconds",
    "retry",
    "rate_limit",
    "guard",
    "host_failure",
    "vm_monitoring",
    "evacuate",
    "placement",
    "state_refresh_seconds",
}


def _key(*parts: str) -> str:
    return ".".join((SECTION, *parts))


def _mapping(value: Any, key: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(key, f"must be a mapping, got {type(value).__name__}")
    return value


def _only(section: Mapping[str, Any], allowed: set[str], key: str) -> None:
    extra = sorted(str(k) for k in section if k not in allowed)
    if extra:
        raise ConfigError(
            f"{key}.{extra[0]}", f"unknown key (allowed: {', '.join(sorted(allowed))})"
        )


def _bool(section: Mapping[str, Any], name: str, key: str, default: bool) -> bool:
    value = section.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ConfigError(f"{key}.{name}", "must be true or false")
    return value


def _num(
    section: Mapping[str, Any],
    name: str,
    key: str,
    default: float,
    *,
    minimum: float = 0.0,
    maximum: float | None = None,
) -> float:
    value = section.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key}.{name}", f"must be a number, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{key}.{name}", f"must be >= {minimum:g}, got {value:g}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{key}.{name}", f"must be <= {maximum:g}, got {value:g}")
    return float(value)


def _int(section: Mapping[str, Any], name: str, key: str, default: int, *, minimum: int = 0) -> int:
    value = section.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key}.{name}", f"must be a whole number, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{key}.{name}", f"must be >= {minimum}, got {value}")
    return value


def _str(section: Mapping[str, Any], name: str, key: str) -> str | None:
    value = section.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key}.{name}", "must be a non-empty string")
    return value


def _path(text: str, base: Path | None) -> Path:
    path = Path(text).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    return path


def _existing_file(section: Mapping[str, Any], name: str, key: str, base: Path | None) -> str:
    text = _str(section, name, key)
    if text is None:
        raise ConfigError(f"{key}.{name}", "is required")
    path = _path(text, base)
    if not path.is_file():
        raise ConfigError(f"{key}.{name}", f"no such file: {path}")
    return str(path)


def _auth(
    section: Mapping[str, Any], base: Path | None
) -> tuple[str, Secret | None, str | None, Secret | None]:
    key = SECTION
    mode = _str(section, "auth", key)
    if mode is not None and mode not in AUTH_MODES:
        raise ConfigError(_key("auth"), f"must be one of {', '.join(AUTH_MODES)}, got {mode!r}")
    has_bearer = any(
        k in section for k in ("bearer_token", "bearer_token_file", "bearer_token_env")
    )
    has_basic = section.get("basic_auth") is not None
    if mode is None:
        if has_bearer and has_basic:
            raise ConfigError(_key("auth"), "both a bearer token and basic_auth are set; pick one")
        if has_bearer:
            mode = "bearer"
        elif has_basic:
            mode = "basic"
        else:
            raise ConfigError(
                key,
                "authentication is required: set bearer_token_file, bearer_token_env or "
                "basic_auth (or auth: none to run unauthenticated on purpose)",
            )
    if mode == "none":
        if has_bearer or has_basic:
            raise ConfigError(_key("auth"), "is none but credentials are configured")
        return mode, None, None, None
    if mode == "bearer":
        return mode, read_secret(section, key, base, "bearer_token"), None, None
    basic = _mapping(section.get("basic_auth"), _key("basic_auth"))
    if not basic:
        raise ConfigError(_key("basic_auth"), "is required when auth is basic")
    bkey = _key("basic_auth")
    _only(basic, {"user", "password", "password_file", "password_env"}, bkey)
    user = _str(basic, "user", bkey)
    if user is None:
        raise ConfigError(f"{bkey}.user", "is required")
    if ":" in user:
        raise ConfigError(f"{bkey}.user", "must not contain ':'")
    return mode, None, user, read_secret(basic, bkey, base, "password")


def _tls(section: Mapping[str, Any], base: Path | None) -> TLSConfig | None:
    raw = section.get("tls")
    if raw is None:
        return None
    key = _key("tls")
    tls = _mapping(raw, key)
    _only(tls, {"cert_file", "key_file"}, key)
    return TLSConfig(
        cert_file=_existing_file(tls, "cert_file", key, base),
        key_file=_existing_file(tls, "key_file", key, base),
    )


def _fencing(section: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = section.get("fencing_command")
    if value is None:
        return ()
    if isinstance(value, str):
        try:
            parts = shlex.split(value)
        except ValueError as exc:
            raise ConfigError(f"{key}.fencing_command", f"cannot be parsed: {exc}") from None
    elif isinstance(value, list) and all(isinstance(p, str) for p in value):
        parts = list(value)
    else:
        raise ConfigError(f"{key}.fencing_command", "must be a command string or a list of strings")
    if not parts or not parts[0].strip():
        raise ConfigError(f"{key}.fencing_command", "must not be empty")
    return tuple(parts)


def parse_remediator(section: Mapping[str, Any], base: Path | None = None) -> RemediatorConfig:
    """Validate the raw ``remediator:`` mapping; relative paths resolve against ``base``."""
    section = _mapping(section, SECTION)
    _only(section, _TOP_KEYS, SECTION)
    listen_host, listen_port = parse_listen(section.get("listen", DEFAULT_LISTEN), _key("listen"))
    auth, bearer, basic_user, basic_password = _auth(section, base)

    journal_text = _str(section, "journal", SECTION) or DEFAULT_JOURNAL
    journal_path = journal_text if journal_text == ":memory:" else str(_path(journal_text, base))

    workers = _int(section, "workers", SECTION, 16, minimum=1)
    max_tasks = _int(section, "max_concurrent_tasks", SECTION, 8, minimum=1)

    retry_raw = _mapping(section.get("retry"), _key("retry"))
    rkey = _key("retry")
    _only(retry_raw, {"max_attempts", "backoff_initial_seconds", "backoff_max_seconds"}, rkey)
    retry = RetryConfig(
        max_attempts=_int(retry_raw, "max_attempts", rkey, 5, minimum=1),
        backoff_initial_seconds=_num(retry_raw, "backoff_initial_seconds", rkey, 2.0, minimum=0.01),
        backoff_max_seconds=_num(retry_raw, "backoff_max_seconds", rkey, 60.0, minimum=0.01),
    )

    rate_raw = _mapping(section.get("rate_limit"), _key("rate_limit"))
    rlkey = _key("rate_limit")
    _only(rate_raw, {"max_actions", "window_seconds"}, rlkey)
    rate = RateLimitConfig(
        max_actions=_int(rate_raw, "max_actions", rlkey, 500, minimum=1),
        window_seconds=_num(rate_raw, "window_seconds", rlkey, 600.0, minimum=1.0),
    )

    guard_raw = _mapping(section.get("guard"), _key("guard"))
    gkey = _key("guard")
    _only(
        guard_raw,
        {"max_failed_hosts", "max_failed_share", "window_seconds", "max_hold_seconds"},
        gkey,
    )
    guard = GuardConfig(
        max_failed_hosts=_int(guard_raw, "max_failed_hosts", gkey, 2, minimum=1),
        max_failed_share=_num(guard_raw, "max_failed_share", gkey, 0.5, minimum=0.01, maximum=1.0),
        window_seconds=_num(guard_raw, "window_seconds", gkey, 600.0, minimum=1.0),
        max_hold_seconds=_num(guard_raw, "max_hold_seconds", gkey, 3600.0, minimum=1.0),
    )

    hf_raw = _mapping(section.get("host_failure"), _key("host_failure"))
    hkey = _key("host_failure")
    _only(
        hf_raw,
        {
            "confirm_seconds",
            "require_fdm_host_down",
            "max_unconfirmed_seconds",
            "fencing_command",
            "fencing_timeout_seconds",
            "move_method",
        },
        hkey,
    )
    move_method = _str(hf_raw, "move_method", hkey) or "auto"
    if move_method not in MOVE_METHODS:
        raise ConfigError(
            f"{hkey}.move_method", f"must be one of {', '.join(MOVE_METHODS)}, got {move_method!r}"
        )
    host_failure = HostFailureConfig(
        confirm_seconds=_num(hf_raw, "confirm_seconds", hkey, 60.0),
        require_fdm_host_down=_bool(hf_raw, "require_fdm_host_down", hkey, True),
        max_unconfirmed_seconds=_num(hf_raw, "max_unconfirmed_seconds", hkey, 900.0, minimum=1.0),
        fencing_command=_fencing(hf_raw, hkey),
        fencing_timeout_seconds=_num(hf_raw, "fencing_timeout_seconds", hkey, 60.0, minimum=1.0),
        move_method=move_method,
    )

    vm_raw = _mapping(section.get("vm_monitoring"), _key("vm_monitoring"))
    vkey = _key("vm_monitoring")
    _only(
        vm_raw,
        {"max_resets", "window_seconds", "min_uptime_seconds", "prefer_cluster_settings"},
        vkey,
    )
    vm_monitoring = VMMonitoringConfig(
        max_resets=_int(vm_raw, "max_resets", vkey, 3, minimum=1),
        window_seconds=_num(vm_raw, "window_seconds", vkey, 3600.0, minimum=1.0),
        min_uptime_seconds=_num(vm_raw, "min_uptime_seconds", vkey, 120.0),
        prefer_cluster_settings=_bool(vm_raw, "prefer_cluster_settings", vkey, True),
    )

    ev_raw = _mapping(section.get("evacuate"), _key("evacuate"))
    ekey = _key("evacuate")
    _only(ev_raw, {"enter_maintenance"}, ekey)

    pl_raw = _mapping(section.get("placement"), _key("placement"))
    pkey = _key("placement")
    _only(
        pl_raw, {"max_cpu_utilization", "max_memory_utilization", "prefer_other_fault_domain"}, pkey
    )
    placement = PlacementConfig(
        max_cpu_utilization=_num(
            pl_raw, "max_cpu_utilization", pkey, 0.9, minimum=0.05, maximum=1.0
        ),
        max_memory_utilization=_num(
            pl_raw, "max_memory_utilization", pkey, 0.9, minimum=0.05, maximum=1.0
        ),
        prefer_other_fault_domain=_bool(pl_raw, "prefer_other_fault_domain", pkey, True),
    )

    max_body = _int(section, "max_body_bytes", SECTION, 4 << 20, minimum=1024)
    return RemediatorConfig(
        listen_host=listen_host,
        listen_port=listen_port,
        auth=auth,
        bearer_token=bearer,
        basic_user=basic_user,
        basic_password=basic_password,
        tls=_tls(section, base),
        dry_run=_bool(section, "dry_run", SECTION, True),
        journal_path=journal_path,
        max_body_bytes=max_body,
        header_timeout_seconds=_num(
            section, "header_timeout_seconds", SECTION, 10.0, minimum=0.5, maximum=300.0
        ),
        body_timeout_seconds=_num(
            section, "body_timeout_seconds", SECTION, 10.0, minimum=0.5, maximum=300.0
        ),
        workers=workers,
        max_concurrent_tasks=max_tasks,
        action_timeout_seconds=_num(section, "action_timeout_seconds", SECTION, 300.0, minimum=1.0),
        ha_grace_seconds=_num(section, "ha_grace_seconds", SECTION, 180.0),
        enter_maintenance=_bool(ev_raw, "enter_maintenance", ekey, False),
        retry=retry,
        rate_limit=rate,
        guard=guard,
        host_failure=host_failure,
        vm_monitoring=vm_monitoring,
        placement=placement,
        state_refresh_seconds=_num(section, "state_refresh_seconds", SECTION, 5.0, minimum=0.1),
    )


def parse_remediator_config(config: Config) -> RemediatorConfig:
    """The remediator's settings from the shared config; relative paths follow the file."""
    base = Path(config.path).parent if config.path else None
    if not config.vcenters:
        raise ConfigError("vcenters", "the remediator needs at least one vCenter")
    return parse_remediator(config.section(SECTION), base)
