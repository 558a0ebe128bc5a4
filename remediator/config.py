"""The ``remediator:`` section of the shared config file, validated completely up front.

Every knob that decides whether the remediator may touch a VM lives here, with defaults
that favour doing nothing: ``dry_run`` is on until a user turns it off, authentication is
required unless ``auth: none`` is written out, and the guards are on.  Every error names
the key, as the exporter's config does, so a typo never turns into a silently unsafe
default.
"""

from __future__ import annotations

import math
import shlex
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vcenter.config import Collector, Config, ConfigError, Secret, parse_listen, read_secret
from vcenter.mass_failure import MAX_FAILED_HOSTS, MAX_FAILED_SHARE

SECTION = "remediator"
DEFAULT_LISTEN = "127.0.0.1:9273"
DEFAULT_JOURNAL = "run/remediator.sqlite"
MOVE_METHODS = ("auto", "relocate", "register")
# vSphere HA's ClusterDasConfigInfoVmMonitoringState values (remediator.vm_monitoring.mode)
VM_MONITORING_MODES = ("vmMonitoringDisabled", "vmMonitoringOnly", "vmAndAppMonitoring")
AUTH_MODES = ("bearer", "basic", "none")
# The token files the project ships (deploy/secrets/*.example) start with this: they are
# public, so a remediator that may change vCenter (dry_run false) refuses them.
EXAMPLE_TOKEN_PREFIX = "example-"


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

    max_failed_hosts: int = MAX_FAILED_HOSTS
    max_failed_share: float = MAX_FAILED_SHARE
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
    # Out-of-band power status (IPMI/iLO/iDRAC/Redfish): exit 0 off, 1 alive, else unknown
    confirm_command: tuple[str, ...] = ()
    confirm_timeout_seconds: float = 30.0
    confirm_max_age_seconds: float = 60.0
    # A successful fence counts as "confirmed down": kills a partitioned host's VMs
    fence_to_confirm: bool = False


@dataclass(frozen=True)
class VMMonitoringConfig:
    """Reset limits; the defaults are vSphere HA's high-sensitivity VM-monitoring preset."""

    # The stack's own VM-monitoring mode where no vSphere HA applies (vSphere's values):
    # vmAndAppMonitoring resets on guest and application heartbeat loss and on
    # appStateNeedReset, vmMonitoringOnly on guest heartbeat loss only, vmMonitoringDisabled
    # never. A VM's own override in the cluster's dasVmConfig wins.
    mode: str = "vmAndAppMonitoring"
    max_resets: int = 3
    window_seconds: float = 3600.0
    min_uptime_seconds: float = 120.0
    prefer_cluster_settings: bool = True


@dataclass(frozen=True)
class HAWatchConfig:
    """How the remediator relates to vSphere HA (docs/remediator.md, "Acting like vSphere
    HA"): on by default it defers to HA where HA protects a VM, watches it, and only
    alerts when HA is overdue."""

    defer_to_ha: bool = True
    overdue_seconds: float | None = None  # None: HA's whole retry schedule
    act_when_overdue: bool = False
    io_check_required: bool = True


@dataclass(frozen=True)
class PlacementConfig:
    """Headroom kept free on a target, as a share of its capacity."""

    max_cpu_utilization: float = 0.9
    max_memory_utilization: float = 0.9
    # What a fault domain is (remediator/fault_domains.py): "sites" keeps a VM in its own
    # domain while it has room there; "racks" of one site prefers another domain.
    fault_domains: str = "sites"


@dataclass(frozen=True)
class OrchestrationConfig:
    """Restart orchestration where the cluster itself sets none (vSphere HA off and the
    cluster's ``orchestration.defaultVmReadiness`` at vSphere's default, ``none``): when a
    tier counts as ready (``ready_condition``, ``post_ready_delay_seconds``) and how long a
    tier may hold the next (``timeout_seconds``, vSphere's restartPriorityTimeout)."""

    ready_condition: str = "none"
    post_ready_delay_seconds: float = 0.0
    timeout_seconds: float = 600.0
    poll_seconds: float = 1.0
    # Across decisions (remediator/cluster_gate.py): decisions of one cluster planned
    # within this long of each other are ordered together, as vSphere HA orders all of a
    # cluster's failed VMs; and a decision waits at most this long for alerts of its
    # cluster accepted within as long of it to be decided first.
    cluster_window_seconds: float = 600.0
    batch_seconds: float = 5.0


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
    ha: HAWatchConfig = HAWatchConfig()
    orchestration: OrchestrationConfig = OrchestrationConfig()

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
    "ha",
    "orchestration",
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
    if not math.isfinite(value):
        raise ConfigError(f"{key}.{name}", f"must be a finite number, got {value}")
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


def _choice(
    section: Mapping[str, Any], name: str, key: str, choices: tuple[str, ...], default: str
) -> str:
    value = _str(section, name, key) or default
    if value not in choices:
        raise ConfigError(f"{key}.{name}", f"must be one of {', '.join(choices)}, got {value!r}")
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
    section: Mapping[str, Any], base: Path | None, read_secrets: bool = True
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
        return mode, read_secret(section, key, base, "bearer_token", read=read_secrets), None, None
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
    return mode, None, user, read_secret(basic, bkey, base, "password", read=read_secrets)


def _tls(
    section: Mapping[str, Any], base: Path | None, read_secrets: bool = True
) -> TLSConfig | None:
    """The listener's certificate and key, loaded now (not at bind time) so a wrong file is a
    check-config error naming the key.  Offline, the key (a secret) is not read."""
    raw = section.get("tls")
    if raw is None:
        return None
    key = _key("tls")
    tls = _mapping(raw, key)
    _only(tls, {"cert_file", "key_file"}, key)
    if not read_secrets:
        for name in ("cert_file", "key_file"):
            if _str(tls, name, key) is None:
                raise ConfigError(f"{key}.{name}", "is required")
        return TLSConfig(str(_path(tls["cert_file"], base)), str(_path(tls["key_file"], base)))
    config = TLSConfig(
        cert_file=_existing_file(tls, "cert_file", key, base),
        key_file=_existing_file(tls, "key_file", key, base),
    )
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            config.cert_file, config.key_file
        )
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(
            key, f"cannot load cert_file {config.cert_file} with key_file {config.key_file}: {exc}"
        ) from None
    return config


def _command(section: Mapping[str, Any], key: str, name: str) -> tuple[str, ...]:
    """A hook command: a string (split like a shell would) or a list of strings."""
    value = section.get(name)
    if value is None:
        return ()
    if isinstance(value, str):
        try:
            parts = shlex.split(value)
        except ValueError as exc:
            raise ConfigError(f"{key}.{name}", f"cannot be parsed: {exc}") from None
    elif isinstance(value, list) and all(isinstance(p, str) for p in value):
        parts = list(value)
    else:
        raise ConfigError(f"{key}.{name}", "must be a command string or a list of strings")
    if not parts or not parts[0].strip():
        raise ConfigError(f"{key}.{name}", "must not be empty")
    return tuple(parts)


def parse_remediator(
    section: Mapping[str, Any], base: Path | None = None, *, read_secrets: bool = True
) -> RemediatorConfig:
    """Validate the raw ``remediator:`` mapping; relative paths resolve against ``base``.

    Every error is reported (one per key or sub-section), not just the first."""
    section = _mapping(section, SECTION)
    c = Collector()
    c.run(None, _only, section, _TOP_KEYS, SECTION)
    listen_host, listen_port = c.run(
        ("127.0.0.1", 9273), parse_listen, section.get("listen", DEFAULT_LISTEN), _key("listen")
    )
    no_auth: tuple[str, Secret | None, str | None, Secret | None] = ("none", None, None, None)
    auth, bearer, basic_user, basic_password = c.run(no_auth, _auth, section, base, read_secrets)
    dry_run = c.run(True, _bool, section, "dry_run", SECTION, True)
    if bearer is not None and bearer.get().startswith(EXAMPLE_TOKEN_PREFIX) and not dry_run:
        c.add(
            ConfigError(
                _key("bearer_token_file"),
                "is the public example token shipped with the project; write a new one "
                "(python3 -c 'import secrets; print(secrets.token_urlsafe(32))') or keep "
                "dry_run: true",
            )
        )

    journal_text = c.run(None, _str, section, "journal", SECTION) or DEFAULT_JOURNAL
    journal_path = journal_text if journal_text == ":memory:" else str(_path(journal_text, base))

    workers = c.run(16, _int, section, "workers", SECTION, 16, minimum=1)
    max_tasks = c.run(8, _int, section, "max_concurrent_tasks", SECTION, 8, minimum=1)
    tls = c.run(None, _tls, section, base, read_secrets)
    max_body = c.run(4 << 20, _int, section, "max_body_bytes", SECTION, 4 << 20, minimum=1024)
    header_timeout = c.run(
        10.0, _num, section, "header_timeout_seconds", SECTION, 10.0, minimum=0.5, maximum=300.0
    )
    body_timeout = c.run(
        10.0, _num, section, "body_timeout_seconds", SECTION, 10.0, minimum=0.5, maximum=300.0
    )
    action_timeout = c.run(
        300.0, _num, section, "action_timeout_seconds", SECTION, 300.0, minimum=1.0
    )
    ha_grace = c.run(180.0, _num, section, "ha_grace_seconds", SECTION, 180.0)
    state_refresh = c.run(5.0, _num, section, "state_refresh_seconds", SECTION, 5.0, minimum=0.1)
    retry = c.run(RetryConfig(), _retry, section)
    rate = c.run(RateLimitConfig(), _rate_limit, section)
    guard = c.run(GuardConfig(), _guard, section)
    host_failure = c.run(HostFailureConfig(), _host_failure, section, state_refresh)
    vm_monitoring = c.run(VMMonitoringConfig(), _vm_monitoring, section)
    enter_maintenance = c.run(False, _evacuate, section)
    placement = c.run(PlacementConfig(), _placement, section)
    ha = c.run(HAWatchConfig(), _ha, section)
    orchestration = c.run(OrchestrationConfig(), _orchestration, section)
    c.raise_if_any()
    return RemediatorConfig(
        listen_host=listen_host,
        listen_port=listen_port,
        auth=auth,
        bearer_token=bearer,
        basic_user=basic_user,
        basic_password=basic_password,
        tls=tls,
        dry_run=dry_run,
        journal_path=journal_path,
        max_body_bytes=max_body,
        header_timeout_seconds=header_timeout,
        body_timeout_seconds=body_timeout,
        workers=workers,
        max_concurrent_tasks=max_tasks,
        action_timeout_seconds=action_timeout,
        ha_grace_seconds=ha_grace,
        enter_maintenance=enter_maintenance,
        retry=retry,
        rate_limit=rate,
        guard=guard,
        host_failure=host_failure,
        vm_monitoring=vm_monitoring,
        placement=placement,
        state_refresh_seconds=state_refresh,
        ha=ha,
        orchestration=orchestration,
    )


def _retry(section: Mapping[str, Any]) -> RetryConfig:
    retry_raw = _mapping(section.get("retry"), _key("retry"))
    rkey = _key("retry")
    _only(retry_raw, {"max_attempts", "backoff_initial_seconds", "backoff_max_seconds"}, rkey)
    return RetryConfig(
        max_attempts=_int(retry_raw, "max_attempts", rkey, 5, minimum=1),
        backoff_initial_seconds=_num(retry_raw, "backoff_initial_seconds", rkey, 2.0, minimum=0.01),
        backoff_max_seconds=_num(retry_raw, "backoff_max_seconds", rkey, 60.0, minimum=0.01),
    )


def _rate_limit(section: Mapping[str, Any]) -> RateLimitConfig:
    rate_raw = _mapping(section.get("rate_limit"), _key("rate_limit"))
    rlkey = _key("rate_limit")
    _only(rate_raw, {"max_actions", "window_seconds"}, rlkey)
    return RateLimitConfig(
        max_actions=_int(rate_raw, "max_actions", rlkey, 500, minimum=1),
        window_seconds=_num(rate_raw, "window_seconds", rlkey, 600.0, minimum=1.0),
    )


def _guard(section: Mapping[str, Any]) -> GuardConfig:
    guard_raw = _mapping(section.get("guard"), _key("guard"))
    gkey = _key("guard")
    _only(
        guard_raw,
        {"max_failed_hosts", "max_failed_share", "window_seconds", "max_hold_seconds"},
        gkey,
    )
    return GuardConfig(
        max_failed_hosts=_int(guard_raw, "max_failed_hosts", gkey, MAX_FAILED_HOSTS, minimum=1),
        max_failed_share=_num(
            guard_raw, "max_failed_share", gkey, MAX_FAILED_SHARE, minimum=0.01, maximum=1.0
        ),
        window_seconds=_num(guard_raw, "window_seconds", gkey, 600.0, minimum=1.0),
        max_hold_seconds=_num(guard_raw, "max_hold_seconds", gkey, 3600.0, minimum=1.0),
    )


def _host_failure(section: Mapping[str, Any], state_refresh: float = 5.0) -> HostFailureConfig:
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
            "confirm_command",
            "confirm_timeout_seconds",
            "confirm_max_age_seconds",
            "fence_to_confirm",
        },
        hkey,
    )
    move_method = _str(hf_raw, "move_method", hkey) or "auto"
    if move_method not in MOVE_METHODS:
        raise ConfigError(
            f"{hkey}.move_method", f"must be one of {', '.join(MOVE_METHODS)}, got {move_method!r}"
        )
    fencing = _command(hf_raw, hkey, "fencing_command")
    fence_to_confirm = _bool(hf_raw, "fence_to_confirm", hkey, False)
    if fence_to_confirm and not fencing:
        raise ConfigError(
            f"{hkey}.fence_to_confirm", "needs host_failure.fencing_command (the fence to run)"
        )
    # The default follows the watcher period; only a given value next to a hook is checked
    # (without a hook there are no answers to age, and any period must load).
    confirm_command = _command(hf_raw, hkey, "confirm_command")
    default_age = max(60.0, state_refresh)
    max_age = _num(hf_raw, "confirm_max_age_seconds", hkey, default_age, minimum=1.0)
    if confirm_command and "confirm_max_age_seconds" in hf_raw and max_age < state_refresh:
        raise ConfigError(
            f"{hkey}.confirm_max_age_seconds",
            f"must be at least state_refresh_seconds ({state_refresh:g}): an answer would be "
            "too old before the next re-check",
        )
    return HostFailureConfig(
        confirm_seconds=_num(hf_raw, "confirm_seconds", hkey, 60.0),
        require_fdm_host_down=_bool(hf_raw, "require_fdm_host_down", hkey, True),
        max_unconfirmed_seconds=_num(hf_raw, "max_unconfirmed_seconds", hkey, 900.0, minimum=1.0),
        fencing_command=fencing,
        fencing_timeout_seconds=_num(hf_raw, "fencing_timeout_seconds", hkey, 60.0, minimum=1.0),
        move_method=move_method,
        confirm_command=confirm_command,
        confirm_timeout_seconds=_num(hf_raw, "confirm_timeout_seconds", hkey, 30.0, minimum=1.0),
        confirm_max_age_seconds=max_age,
        fence_to_confirm=fence_to_confirm,
    )


def _vm_monitoring(section: Mapping[str, Any]) -> VMMonitoringConfig:
    vm_raw = _mapping(section.get("vm_monitoring"), _key("vm_monitoring"))
    vkey = _key("vm_monitoring")
    _only(
        vm_raw,
        {"mode", "max_resets", "window_seconds", "min_uptime_seconds", "prefer_cluster_settings"},
        vkey,
    )
    return VMMonitoringConfig(
        mode=_choice(vm_raw, "mode", vkey, VM_MONITORING_MODES, "vmAndAppMonitoring"),
        max_resets=_int(vm_raw, "max_resets", vkey, 3, minimum=1),
        window_seconds=_num(vm_raw, "window_seconds", vkey, 3600.0, minimum=1.0),
        min_uptime_seconds=_num(vm_raw, "min_uptime_seconds", vkey, 120.0),
        prefer_cluster_settings=_bool(vm_raw, "prefer_cluster_settings", vkey, True),
    )


def _evacuate(section: Mapping[str, Any]) -> bool:
    ev_raw = _mapping(section.get("evacuate"), _key("evacuate"))
    ekey = _key("evacuate")
    _only(ev_raw, {"enter_maintenance"}, ekey)
    return _bool(ev_raw, "enter_maintenance", ekey, False)


def _ha(section: Mapping[str, Any]) -> HAWatchConfig:
    raw = _mapping(section.get("ha"), _key("ha"))
    key = _key("ha")
    _only(raw, {"defer_to_ha", "overdue_seconds", "act_when_overdue", "io_check_required"}, key)
    overdue = None
    if raw.get("overdue_seconds") is not None:
        overdue = _num(raw, "overdue_seconds", key, 2100.0, minimum=1.0)
    return HAWatchConfig(
        defer_to_ha=_bool(raw, "defer_to_ha", key, True),
        overdue_seconds=overdue,
        act_when_overdue=_bool(raw, "act_when_overdue", key, False),
        io_check_required=_bool(raw, "io_check_required", key, True),
    )


READY_CONDITIONS = ("none", "poweredOn", "guestHbStatusGreen", "appHbStatusGreen")


def _orchestration(section: Mapping[str, Any]) -> OrchestrationConfig:
    raw = _mapping(section.get("orchestration"), _key("orchestration"))
    key = _key("orchestration")
    _only(
        raw,
        {
            "ready_condition",
            "post_ready_delay_seconds",
            "timeout_seconds",
            "poll_seconds",
            "cluster_window_seconds",
            "batch_seconds",
        },
        key,
    )
    cond = _str(raw, "ready_condition", key) or "none"
    if cond not in READY_CONDITIONS:
        raise ConfigError(
            f"{key}.ready_condition", f"must be one of {', '.join(READY_CONDITIONS)}, got {cond!r}"
        )
    return OrchestrationConfig(
        ready_condition=cond,
        post_ready_delay_seconds=_num(raw, "post_ready_delay_seconds", key, 0.0),
        timeout_seconds=_num(raw, "timeout_seconds", key, 600.0, minimum=1.0),
        poll_seconds=_num(raw, "poll_seconds", key, 1.0, minimum=0.1, maximum=60.0),
        cluster_window_seconds=_num(raw, "cluster_window_seconds", key, 600.0, minimum=0.0),
        batch_seconds=_num(raw, "batch_seconds", key, 5.0, minimum=0.0, maximum=300.0),
    )


def _placement(section: Mapping[str, Any]) -> PlacementConfig:
    pl_raw = _mapping(section.get("placement"), _key("placement"))
    pkey = _key("placement")
    _only(
        pl_raw,
        {
            "max_cpu_utilization",
            "max_memory_utilization",
            "fault_domains",
            "prefer_other_fault_domain",
        },
        pkey,
    )
    return PlacementConfig(
        max_cpu_utilization=_num(
            pl_raw, "max_cpu_utilization", pkey, 0.9, minimum=0.05, maximum=1.0
        ),
        max_memory_utilization=_num(
            pl_raw, "max_memory_utilization", pkey, 0.9, minimum=0.05, maximum=1.0
        ),
        fault_domains=_fault_domain_kind(pl_raw, pkey),
    )


def _fault_domain_kind(pl_raw: Mapping[str, Any], pkey: str) -> str:
    """``placement.fault_domains``: sites (default) or racks.

    ``prefer_other_fault_domain`` (deprecated) still works: true is racks, false sites. Its
    old default (true) moved every VM of one failed host to the other domain, across
    sites where a domain is a site; so the default is now sites, and giving both keys
    with different meanings is an error rather than a guess."""
    kind = pl_raw.get("fault_domains")
    if kind is not None and kind not in ("sites", "racks"):
        raise ConfigError(f"{pkey}.fault_domains", f"must be sites or racks, got {kind!r}")
    if "prefer_other_fault_domain" not in pl_raw:
        return str(kind or "sites")
    legacy = "racks" if _bool(pl_raw, "prefer_other_fault_domain", pkey, True) else "sites"
    if kind is not None and kind != legacy:
        raise ConfigError(
            f"{pkey}.prefer_other_fault_domain",
            f"is deprecated and contradicts fault_domains: {kind}; remove it",
        )
    return legacy


def parse_remediator_config(config: Config) -> RemediatorConfig:
    """The remediator's settings from the shared config; relative paths follow the file."""
    base = Path(config.path).parent if config.path else None
    if not config.vcenters:
        raise ConfigError("vcenters", "the remediator needs at least one vCenter")
    return parse_remediator(config.section(SECTION), base)
