"""The stack's YAML configuration: loaded once, validated completely, errors name the key.

One file configures the exporter and the remediator (``remediator:``) and later sections;
this module validates the parts the exporter owns and keeps every top-level section in
``Config.raw`` so other components validate their own.  Secrets are read from files or the
environment only, and are wrapped in :class:`Secret` so they never reach a log line.
"""

from __future__ import annotations

import math
import os
import re
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import yaml

RESTART_PRIORITIES = ("disabled", "lowest", "low", "medium", "high", "highest")
DEFAULT_LISTEN = "127.0.0.1:9272"
KNOWN_SECTIONS = {
    "listen",
    "vcenters",
    "fault_domains",
    "protection",
    "restart_priority",
    "sync",
    "remediator",
    "performance",
    "cost",
    "demo",
    "collectors",
    "exposition",
}


class ConfigError(ValueError):
    """A configuration problem, always naming the offending key.

    One error, or several (``errors``): a check collects every problem of a file so a user
    fixes them in one round instead of one per run.  ``key`` is the first error's key.
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key
        self.errors: list[ConfigError] = [self]

    @classmethod
    def combine(cls, errors: Iterable[ConfigError]) -> ConfigError:
        """One error carrying all of ``errors`` (flattened); its text is one line each."""
        flat = [e for err in errors for e in err.errors]
        if len(flat) == 1:
            return flat[0]
        combined = cls(flat[0].key, "\n".join(str(e) for e in flat))
        combined.args = ("\n".join(str(e) for e in flat),)
        combined.errors = flat
        return combined


_T = TypeVar("_T")


class Collector:
    """Runs validators and keeps every :class:`ConfigError` instead of stopping at the first."""

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []

    def run(self, default: _T, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            self.errors.extend(exc.errors)
            return default

    def add(self, error: ConfigError) -> None:
        self.errors.extend(error.errors)

    def raise_if_any(self) -> None:
        if self.errors:
            raise ConfigError.combine(self.errors)


class Secret:
    """A string that prints as ``***`` so it cannot leak into logs or reprs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class VCenterConfig:
    name: str
    url: str
    user: str
    password: Secret
    verify_tls: bool = True
    ca_file: str | None = None
    timeout_seconds: float = 60.0
    insecure_http: bool = False

    @property
    def host(self) -> str:
        return urlparse(self.url).hostname or ""

    @property
    def port(self) -> int:
        parsed = urlparse(self.url)
        return parsed.port or (443 if parsed.scheme == "https" else 80)

    @property
    def path(self) -> str:
        return urlparse(self.url).path or "/sdk"


@dataclass(frozen=True)
class FaultDomainRule:
    pattern: re.Pattern[str]
    fault_domain: str


@dataclass(frozen=True)
class FaultDomainConfig:
    """Where a host's fault domain (shared power feed, switch, rack) comes from.

    Precedence: static lists, then the custom attribute, then name rules; first match wins.
    """

    custom_attribute: str | None = None
    rules: tuple[FaultDomainRule, ...] = ()
    static: Mapping[str, str] = field(default_factory=dict)  # host name -> fault domain

    def resolve(self, host_name: str, attributes: Mapping[str, str]) -> str:
        if host_name in self.static:
            return self.static[host_name]
        if self.custom_attribute and attributes.get(self.custom_attribute):
            return attributes[self.custom_attribute]
        for rule in self.rules:
            if rule.pattern.search(host_name):
                return rule.fault_domain
        return ""


_FALSE_WORDS = {"false", "no", "off", "0", "disabled", "unprotected"}


@dataclass(frozen=True)
class ProtectionConfig:
    """Which VMs the stack protects: all, minus name patterns and an opt-out attribute."""

    exclude_names: tuple[re.Pattern[str], ...] = ()
    custom_attribute: str | None = None

    def is_protected(self, vm_name: str, attributes: Mapping[str, str]) -> bool:
        if any(p.search(vm_name) for p in self.exclude_names):
            return False
        if self.custom_attribute:
            value = attributes.get(self.custom_attribute, "").strip().lower()
            if value in _FALSE_WORDS:
                return False
        return True


@dataclass(frozen=True)
class PriorityRule:
    pattern: re.Pattern[str]
    priority: str


@dataclass(frozen=True)
class RestartPriorityConfig:
    """Restart priority: the VM's custom attribute, else name rules, else the default."""

    custom_attribute: str | None = "HA-RestartPriority"
    rules: tuple[PriorityRule, ...] = ()
    default: str = "medium"

    def resolve(self, vm_name: str, attributes: Mapping[str, str]) -> str:
        if self.custom_attribute:
            value = attributes.get(self.custom_attribute, "").strip().lower()
            for known in RESTART_PRIORITIES:
                if value == known.lower():
                    return known
        for rule in self.rules:
            if rule.pattern.search(vm_name):
                return rule.priority
        return self.default


@dataclass(frozen=True)
class SyncConfig:
    """How the property-collector follower waits and backs off."""

    max_wait_seconds: int = 10
    backoff_initial_seconds: float = 1.0
    backoff_max_seconds: float = 60.0
    # Properties that never notify (quickStats, overallStatus) are re-read this often.
    poll_interval_seconds: float = 20.0
    # Keep serving the last inventory (with vsphere_up 0) through outages this short.
    hold_seconds: float = 30.0
    # A WaitForUpdatesEx silent for max_wait_seconds plus this long means a hung vCenter.
    hung_margin_seconds: float = 10.0
    # A round trip that changed nothing re-renders /metrics at most this often (the sync's
    # and the healthy objects' last-seen timestamps; docs/exporter.md). 0: every round trip.
    alive_render_seconds: float = 30.0
    # Parse the poll's pages in a worker process, off the exporter's GIL (docs/exporter.md).
    poll_worker_process: bool = True
    # Read the initial sync's pages as plain XML, pipelined (exporter/sync_soap.py).
    initial_sync_plain: bool = True
    # Worker processes parsing the plain sync's pages at once (with poll_worker_process).
    initial_sync_workers: int = 2


@dataclass(frozen=True)
class Config:
    listen_host: str
    listen_port: int
    vcenters: tuple[VCenterConfig, ...]
    fault_domains: FaultDomainConfig
    protection: ProtectionConfig
    restart_priority: RestartPriorityConfig
    sync: SyncConfig
    raw: Mapping[str, Any]
    path: str | None = None

    @property
    def listen(self) -> str:
        return f"{self.listen_host}:{self.listen_port}"

    def section(self, name: str) -> Mapping[str, Any]:
        """A top-level section other components validate themselves (``{}`` when absent)."""
        value = self.raw.get(name) or {}
        if not isinstance(value, Mapping):
            raise ConfigError(name, "must be a mapping")
        return value


# --- helpers -------------------------------------------------------------------------


def _mapping(value: Any, key: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(key, f"must be a mapping, got {type(value).__name__}")
    return value


def _unknown_keys(section: Mapping[str, Any], allowed: set[str], key: str) -> None:
    extra = sorted(str(k) for k in section if k not in allowed)
    if extra:
        prefix = f"{key}." if key else ""
        raise ConfigError(
            f"{prefix}{extra[0]}",
            f"unknown key (allowed: {', '.join(sorted(allowed))})",
        )


def _str(value: Any, key: str, *, required: bool = True) -> str | None:
    if value is None:
        if required:
            raise ConfigError(key, "is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(key, "must be a non-empty string")
    return value


def _bool(value: Any, key: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ConfigError(key, "must be true or false")
    return value


def _number(value: Any, key: str, default: float, *, minimum: float = 0.0) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(key, "must be a number")
    if not math.isfinite(value):
        raise ConfigError(key, f"must be a finite number, got {value}")
    if value < minimum:
        raise ConfigError(key, f"must be >= {minimum:g}")
    return float(value)


def _whole(value: Any, key: str, default: int, minimum: int, maximum: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(key, "must be a whole number")
    if not minimum <= value <= maximum:
        raise ConfigError(key, f"must be between {minimum} and {maximum}, got {value}")
    return value


def _regex(value: Any, key: str) -> re.Pattern[str]:
    text = _str(value, key)
    assert text is not None
    try:
        return re.compile(text)
    except re.error as exc:
        raise ConfigError(key, f"invalid regular expression: {exc}") from None


def parse_listen(value: Any, key: str = "listen") -> tuple[str, int]:
    """``host:port`` (IPv6 as ``[::1]:port``) into its parts."""
    text = _str(value, key)
    assert text is not None
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ConfigError(key, f"must be HOST:PORT, got {text!r}")
    host = host.strip("[]")
    try:
        port_num = int(port)
    except ValueError:
        raise ConfigError(key, f"port must be a number, got {port!r}") from None
    if not 0 <= port_num <= 65535:
        raise ConfigError(key, f"port must be 0..65535, got {port_num}")
    return host, port_num


def read_secret(
    entry: Mapping[str, Any],
    key: str,
    base: Path | None,
    what: str,
    *,
    read: bool = True,
) -> Secret:
    """A secret from ``<what>_file`` or ``<what>_env``; inline values are refused.

    With ``read=False`` (``check-config --offline``) the shape is checked but neither the
    file nor the environment is looked at, so a config can be checked away from its secrets.
    """
    if what in entry:
        raise ConfigError(
            f"{key}.{what}",
            f"inline secrets are not accepted; use {what}_file or {what}_env",
        )
    file_key, env_key = f"{what}_file", f"{what}_env"
    if entry.get(file_key) is not None and entry.get(env_key) is not None:
        raise ConfigError(key, f"set only one of {file_key} and {env_key}")
    if entry.get(file_key) is not None:
        path_text = _str(entry[file_key], f"{key}.{file_key}")
        assert path_text is not None
        path = Path(path_text)
        if base is not None and not path.is_absolute():
            path = base / path
        if not read:
            return Secret("")
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{key}.{file_key}", f"cannot read {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{key}.{file_key}", f"{path} is not UTF-8 text") from None
        if not value:
            raise ConfigError(f"{key}.{file_key}", f"{path} is empty")
        return Secret(value)
    if entry.get(env_key) is not None:
        name = _str(entry[env_key], f"{key}.{env_key}")
        assert name is not None
        if not read:
            return Secret("")
        value = os.environ.get(name, "")
        if not value:
            raise ConfigError(f"{key}.{env_key}", f"environment variable {name} is not set")
        return Secret(value)
    raise ConfigError(key, f"{file_key} or {env_key} is required")


# --- sections -------------------------------------------------------------------------

_VCENTER_KEYS = {
    "name",
    "url",
    "user",
    "user_env",
    "password",
    "password_file",
    "password_env",
    "verify_tls",
    "ca_file",
    "timeout_seconds",
    "insecure_http",
}


def check_url(url: str, key: str, *, insecure_http: bool) -> None:
    """https:// (http:// only with ``insecure_http: true``), a host, a port 1..65535 and
    no user:password@ (it would be printed on /readyz and in every log line)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("https", "http") or not parsed.hostname:
        raise ConfigError(key, f"must be an https:// URL such as https://vc/sdk, got {url!r}")
    if "@" in parsed.netloc:
        raise ConfigError(
            key, "must not contain userinfo (user:password@); use user and password_file"
        )
    try:
        port = parsed.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(key, f"port must be 1..65535 in {url!r}")
    if parsed.scheme == "http" and not insecure_http:
        raise ConfigError(
            key,
            "http:// sends the password in clear; use https://, or set insecure_http: true "
            "for this vCenter (lab and simulator only)",
        )


def check_ca_file(path: Path, key: str) -> None:
    """The CA bundle is parsed now, so a wrong file fails the check, not the first connect."""
    if not path.is_file():
        raise ConfigError(key, f"no such file: {path}")
    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, ValueError, OSError) as exc:
        raise ConfigError(key, f"{path} is not a PEM CA bundle: {exc}") from None


def _user(entry: Mapping[str, Any], key: str, read: bool) -> str:
    """``user``, or ``user_env`` naming a variable: one config file serves two containers
    that log in with different accounts (compose gives each its own variable)."""
    if entry.get("user") is not None and entry.get("user_env") is not None:
        raise ConfigError(key, "set only one of user and user_env")
    if entry.get("user_env") is None:
        user = _str(entry.get("user"), f"{key}.user")
        assert user is not None
        return user
    name = _str(entry["user_env"], f"{key}.user_env")
    assert name is not None
    if not read:
        return f"${name}"
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"{key}.user_env", f"environment variable {name} is not set")
    return value


def _vcenter(entry: Any, key: str, base: Path | None, read_secrets: bool = True) -> VCenterConfig:
    entry = _mapping(entry, key)
    c = Collector()
    c.run(None, _unknown_keys, entry, _VCENTER_KEYS, key)
    name = c.run(None, _str, entry.get("name"), f"{key}.name")
    if name and not re.fullmatch(r"[A-Za-z0-9_.:-]+", name):
        c.add(ConfigError(f"{key}.name", "may contain only letters, digits and _ . : -"))
    insecure_http = c.run(False, _bool, entry.get("insecure_http"), f"{key}.insecure_http", False)
    url = c.run(None, _str, entry.get("url"), f"{key}.url")
    if url is not None:
        c.run(None, check_url, url, f"{key}.url", insecure_http=insecure_http)
    user = c.run(None, _user, entry, key, read_secrets)
    ca_file = c.run(None, _str, entry.get("ca_file"), f"{key}.ca_file", required=False)
    if ca_file is not None:
        ca_path = Path(ca_file)
        if base is not None and not ca_path.is_absolute():
            ca_path = base / ca_path
        # Offline (away from the deployment) an absent CA file is not an error; a present
        # one is parsed all the same.
        if read_secrets or ca_path.exists():
            c.run(None, check_ca_file, ca_path, f"{key}.ca_file")
        ca_file = str(ca_path)
    password = c.run(Secret(""), read_secret, entry, key, base, "password", read=read_secrets)
    verify_tls = c.run(True, _bool, entry.get("verify_tls"), f"{key}.verify_tls", True)
    timeout = c.run(
        60.0, _number, entry.get("timeout_seconds"), f"{key}.timeout_seconds", 60.0, minimum=1.0
    )
    c.raise_if_any()
    assert name is not None and url is not None and user is not None
    return VCenterConfig(
        name=name,
        url=url,
        user=user,
        password=password,
        verify_tls=verify_tls,
        ca_file=ca_file,
        timeout_seconds=timeout,
        insecure_http=insecure_http,
    )


def _fault_domains(section: Any) -> FaultDomainConfig:
    key = "fault_domains"
    section = _mapping(section, key)
    _unknown_keys(section, {"custom_attribute", "rules", "static"}, key)
    attr = _str(section.get("custom_attribute"), f"{key}.custom_attribute", required=False)
    rules = []
    raw_rules = section.get("rules") or []
    if not isinstance(raw_rules, list):
        raise ConfigError(f"{key}.rules", "must be a list of {match, fault_domain}")
    for i, rule in enumerate(raw_rules):
        rkey = f"{key}.rules[{i}]"
        rule = _mapping(rule, rkey)
        _unknown_keys(rule, {"match", "fault_domain"}, rkey)
        fd = _str(rule.get("fault_domain"), f"{rkey}.fault_domain")
        assert fd is not None
        rules.append(FaultDomainRule(_regex(rule.get("match"), f"{rkey}.match"), fd))
    static: dict[str, str] = {}
    for fd, hosts in _mapping(section.get("static"), f"{key}.static").items():
        skey = f"{key}.static.{fd}"
        if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
            raise ConfigError(skey, "must be a list of host names")
        for host in hosts:
            if host in static and static[host] != fd:
                raise ConfigError(
                    skey, f"host {host!r} is already in fault domain {static[host]!r}"
                )
            static[host] = str(fd)
    return FaultDomainConfig(custom_attribute=attr, rules=tuple(rules), static=static)


def _protection(section: Any) -> ProtectionConfig:
    key = "protection"
    section = _mapping(section, key)
    _unknown_keys(section, {"exclude_names", "custom_attribute"}, key)
    names = section.get("exclude_names") or []
    if not isinstance(names, list):
        raise ConfigError(f"{key}.exclude_names", "must be a list of regular expressions")
    return ProtectionConfig(
        exclude_names=tuple(_regex(n, f"{key}.exclude_names[{i}]") for i, n in enumerate(names)),
        custom_attribute=_str(
            section.get("custom_attribute"), f"{key}.custom_attribute", required=False
        ),
    )


def _priority(value: Any, key: str) -> str:
    text = _str(value, key)
    if text not in RESTART_PRIORITIES:
        raise ConfigError(key, f"must be one of {', '.join(RESTART_PRIORITIES)}, got {text!r}")
    assert text is not None
    return text


def _restart_priority(section: Any) -> RestartPriorityConfig:
    key = "restart_priority"
    section = _mapping(section, key)
    _unknown_keys(section, {"custom_attribute", "rules", "default"}, key)
    raw_rules = section.get("rules") or []
    if not isinstance(raw_rules, list):
        raise ConfigError(f"{key}.rules", "must be a list of {match, priority}")
    rules = []
    for i, rule in enumerate(raw_rules):
        rkey = f"{key}.rules[{i}]"
        rule = _mapping(rule, rkey)
        _unknown_keys(rule, {"match", "priority"}, rkey)
        rules.append(
            PriorityRule(
                _regex(rule.get("match"), f"{rkey}.match"),
                _priority(rule.get("priority"), f"{rkey}.priority"),
            )
        )
    attr = section.get("custom_attribute", "HA-RestartPriority")
    return RestartPriorityConfig(
        custom_attribute=_str(attr, f"{key}.custom_attribute", required=False),
        rules=tuple(rules),
        default=_priority(section.get("default", "medium"), f"{key}.default"),
    )


def _sync(section: Any) -> SyncConfig:
    key = "sync"
    section = _mapping(section, key)
    c = Collector()
    if "stale_after_seconds" in section:
        # Never read by anything: the rules' threshold is sync_stale_after in rules/config.yml.
        c.add(
            ConfigError(
                f"{key}.stale_after_seconds",
                "removed: nothing read it; the staleness alert's threshold is "
                "sync_stale_after in rules/config.yml (docs/alerts.md)",
            )
        )
    allowed = {
        "max_wait_seconds",
        "backoff_initial_seconds",
        "backoff_max_seconds",
        "poll_interval_seconds",
        "hold_seconds",
        "hung_margin_seconds",
        "alive_render_seconds",
        "poll_worker_process",
        "initial_sync_plain",
        "initial_sync_workers",
    }
    c.run(
        None,
        _unknown_keys,
        {k: v for k, v in section.items() if k != "stale_after_seconds"},
        allowed,
        key,
    )
    max_wait = c.run(
        10.0, _number, section.get("max_wait_seconds"), f"{key}.max_wait_seconds", 10, minimum=1
    )
    initial = c.run(
        1.0,
        _number,
        section.get("backoff_initial_seconds"),
        f"{key}.backoff_initial_seconds",
        1.0,
        minimum=0.05,
    )
    maximum = c.run(
        60.0,
        _number,
        section.get("backoff_max_seconds"),
        f"{key}.backoff_max_seconds",
        60.0,
        minimum=0.1,
    )
    poll = c.run(
        20.0,
        _number,
        section.get("poll_interval_seconds"),
        f"{key}.poll_interval_seconds",
        20.0,
        minimum=1,
    )
    hold = c.run(30.0, _number, section.get("hold_seconds"), f"{key}.hold_seconds", 30.0)
    margin = c.run(
        10.0,
        _number,
        section.get("hung_margin_seconds"),
        f"{key}.hung_margin_seconds",
        10.0,
        minimum=1,
    )
    alive = c.run(
        30.0,
        _number,
        section.get("alive_render_seconds"),
        f"{key}.alive_render_seconds",
        30.0,
        minimum=0,
    )
    worker = c.run(
        True,
        _bool,
        section.get("poll_worker_process"),
        f"{key}.poll_worker_process",
        True,
    )
    plain = c.run(True, _bool, section.get("initial_sync_plain"), f"{key}.initial_sync_plain", True)
    workers = c.run(
        2, _whole, section.get("initial_sync_workers"), f"{key}.initial_sync_workers", 2, 1, 8
    )
    c.raise_if_any()
    return SyncConfig(
        max_wait_seconds=int(max_wait),
        backoff_initial_seconds=initial,
        backoff_max_seconds=maximum,
        poll_interval_seconds=poll,
        hold_seconds=hold,
        hung_margin_seconds=margin,
        alive_render_seconds=alive,
        poll_worker_process=worker,
        initial_sync_plain=plain,
        initial_sync_workers=workers,
    )


def parse_config(
    data: Any,
    *,
    base: Path | None = None,
    path: str | None = None,
    read_secrets: bool = True,
) -> Config:
    """Validate a parsed YAML document; raises :class:`ConfigError` naming the key (every
    error found, see :meth:`ConfigError.combine`).  ``read_secrets=False`` checks the shape
    of secret references without reading files or the environment."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError("", "the configuration must be a YAML mapping at the top level")
    c = Collector()
    c.run(None, _unknown_keys, data, KNOWN_SECTIONS, "")
    host, port = c.run(("127.0.0.1", 9272), parse_listen, data.get("listen", DEFAULT_LISTEN))
    raw_vcenters = data.get("vcenters") or []
    if not isinstance(raw_vcenters, list):
        c.add(ConfigError("vcenters", "must be a list"))
        raw_vcenters = []
    vcenters: list[VCenterConfig] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_vcenters):
        vc = c.run(None, _vcenter, raw, f"vcenters[{i}]", base, read_secrets)
        if vc is None:
            continue
        if vc.name in seen:
            c.add(ConfigError(f"vcenters[{i}].name", f"duplicate vCenter name {vc.name!r}"))
        seen.add(vc.name)
        vcenters.append(vc)
    fault_domains = c.run(FaultDomainConfig(), _fault_domains, data.get("fault_domains"))
    protection = c.run(ProtectionConfig(), _protection, data.get("protection"))
    priority = c.run(RestartPriorityConfig(), _restart_priority, data.get("restart_priority"))
    sync = c.run(SyncConfig(), _sync, data.get("sync"))
    c.raise_if_any()
    return Config(
        listen_host=host,
        listen_port=port,
        vcenters=tuple(vcenters),
        fault_domains=fault_domains,
        protection=protection,
        restart_priority=priority,
        sync=sync,
        raw=dict(data),
        path=path,
    )


def load_config(path: str | os.PathLike[str], *, read_secrets: bool = True) -> Config:
    """Read and validate a config file; every failure is a :class:`ConfigError`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("", f"cannot read config file {p}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            "", f"{p}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError("", f"{p}: invalid YAML{where}: {problem}") from None
    return parse_config(data, base=p.parent, path=str(p), read_secrets=read_secrets)
