"""The Alertmanager webhook payload (version 4): parsed strictly, described precisely.

A payload that breaks the schema is refused whole with a 400 naming the field, because
Alertmanager retries 5xx but not 4xx and a malformed sender will not get better by
retrying.  An alert that parses but cannot be acted on (no ``vcenter`` label, an unknown
``remediation``) is accepted and journaled as skipped, so a person sees it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vcenter.moid import valid_moid

HOST_KINDS = ("restart_host_vms", "evacuate_host")
VM_KINDS = ("restart_vm", "reset_vm")
# A whole fault domain failed (VsphereFaultDomainDown): restarted only once every host of
# it is confirmed down by a live read (remediator/domain_failure.py).
DOMAIN_KINDS = ("restart_fault_domain_vms",)
KINDS = HOST_KINDS + VM_KINDS + DOMAIN_KINDS

# Labels that name a managed object: they become managed-object references in SOAP
# requests, which pyVmomi does not escape, so they must look like vCenter's ids.
MOID_LABELS = ("host_id", "vm_id", "cluster_id", "datastore_id")
MAX_LABEL_CHARS = 4096  # a label is a name or an id; more is an attack or a bug
MAX_ANNOTATION_CHARS = 65536


class PayloadError(ValueError):
    """The payload does not follow the webhook schema; the message names the field."""


def parse_time(value: Any, where: str) -> tuple[str, float]:
    """An RFC 3339 timestamp as (canonical UTC text, Unix seconds).

    Alertmanager sends nanoseconds; Python keeps microseconds, which is plenty to tell
    two firings of one alert apart and keeps the idempotency key stable across replicas.
    """
    if not isinstance(value, str) or not value.strip():
        raise PayloadError(f"{where}: must be an RFC 3339 timestamp string")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    head, sep, rest = text.partition(".")
    if sep:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        frac, tail = rest[:digits], rest[digits:]
        text = f"{head}.{(frac + '000000')[:6]}{tail}" if frac else head + tail
    shown = _shown(value)
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        # Year 1 east of UTC or year 9999 west of it does not fit a datetime in UTC.
        parsed = parsed.astimezone(UTC)
        return parsed.isoformat(timespec="microseconds"), parsed.timestamp()
    except (ValueError, OverflowError):
        raise PayloadError(f"{where}: not a usable RFC 3339 timestamp: {shown}") from None


def _shown(value: Any, limit: int = 60) -> str:
    """A value for an error message: printable, one line, short."""
    text = ascii(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _text(value: Any, where: str, limit: int) -> str:
    """A string SQLite, logs and vCenter can carry: UTF-8 encodable and of sane length."""
    if not isinstance(value, str):
        raise PayloadError(f"{where}: must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PayloadError(f"{where}: not valid Unicode (lone surrogate)") from None
    if len(value) > limit:
        raise PayloadError(f"{where}: longer than {limit} characters")
    return value


@dataclass(frozen=True)
class Alert:
    fingerprint: str
    status: str  # firing | resolved
    starts_at: str
    starts_ts: float
    labels: Mapping[str, str]
    annotations: Mapping[str, str] = field(default_factory=dict)
    ends_at: str = ""

    @property
    def key(self) -> str:
        """Idempotency key: one alert firing, however often and by whichever replica sent."""
        return f"{self.fingerprint}@{self.starts_at}"

    @property
    def remediation(self) -> str:
        return self.labels.get("remediation", "").strip()

    def label(self, name: str) -> str:
        return self.labels.get(name, "").strip()

    @property
    def wants_action(self) -> bool:
        """Whether the alert asks for remediation at all (``none`` and unlabelled do not)."""
        return self.remediation not in ("", "none")

    def unusable(self, vcenters: set[str]) -> str:
        """Why an alert that asks for remediation cannot be acted on, or ``""``."""
        kind = self.remediation
        if kind not in KINDS:
            return f"unknown remediation {kind!r} (known: {', '.join(KINDS)})"
        vc = self.label("vcenter")
        if not vc:
            return "the alert has no vcenter label"
        if vc not in vcenters:
            return f"vcenter {vc!r} is not in the configuration"
        if kind in HOST_KINDS and not (self.label("host_id") or self.label("host")):
            return "the alert has neither a host_id nor a host label"
        if kind in VM_KINDS and not (self.label("vm_id") or self.label("vm")):
            return "the alert has neither a vm_id nor a vm label"
        if kind in DOMAIN_KINDS and not (self.label("cluster_id") and self.label("fault_domain")):
            return "the alert needs both a cluster_id and a fault_domain label"
        return ""


@dataclass(frozen=True)
class Delivery:
    receiver: str
    status: str
    group_key: str
    alerts: tuple[Alert, ...]


def _labels(
    value: Any, where: str, limit: int = MAX_LABEL_CHARS, *, moids: bool = True
) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PayloadError(f"{where}: must be an object of strings")
    out: dict[str, str] = {}
    for k, v in value.items():
        name = _text(k, f"{where}: a label name", 256)
        out[name] = _text(v, f"{where}.{name}", limit)
    for name in MOID_LABELS if moids else ():
        moid = out.get(name, "")
        if moid and not valid_moid(moid.strip()):
            raise PayloadError(
                f"{where}.{name}: {_shown(moid)} is not a vCenter managed-object id "
                "(letters, digits and _.:- only)"
            )
    return out


def _fingerprint(labels: Mapping[str, str]) -> str:
    """Stand-in for Alertmanager's fingerprint when a hand-written alert lacks one."""
    canon = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return "h" + hashlib.sha256(canon.encode()).hexdigest()[:16]


def parse_alert(raw: Any, where: str) -> Alert:
    if not isinstance(raw, Mapping):
        raise PayloadError(f"{where}: must be an object")
    status = raw.get("status")
    if status not in ("firing", "resolved"):
        raise PayloadError(f"{where}.status: must be 'firing' or 'resolved', got {status!r}")
    labels = _labels(raw.get("labels"), f"{where}.labels")
    if not labels:
        raise PayloadError(f"{where}.labels: must not be empty")
    starts_at, starts_ts = parse_time(raw.get("startsAt"), f"{where}.startsAt")
    ends_at = ""
    ends_raw = raw.get("endsAt")
    if ends_raw not in (None, "", "0001-01-01T00:00:00Z"):
        ends_at, _ = parse_time(ends_raw, f"{where}.endsAt")
    fingerprint = raw.get("fingerprint")
    if fingerprint is None or fingerprint == "":
        fingerprint = _fingerprint(labels)
    elif not isinstance(fingerprint, str) or len(fingerprint) > 128:
        raise PayloadError(f"{where}.fingerprint: must be a string of at most 128 characters")
    else:
        fingerprint = _text(fingerprint, f"{where}.fingerprint", 128)
    return Alert(
        fingerprint=fingerprint,
        status=status,
        starts_at=starts_at,
        starts_ts=starts_ts,
        labels=labels,
        annotations=_labels(
            raw.get("annotations"), f"{where}.annotations", MAX_ANNOTATION_CHARS, moids=False
        ),
        ends_at=ends_at,
    )


def parse_payload(body: bytes) -> Delivery:
    """Decode and validate a webhook body; raises :class:`PayloadError` with the reason."""
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise PayloadError("body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise PayloadError(
            f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise PayloadError("malformed JSON: nested too deeply") from None
    except ValueError as exc:  # an integer with more digits than Python converts
        raise PayloadError(f"malformed JSON: {str(exc).split(';')[0]}") from None
    if not isinstance(data, Mapping):
        raise PayloadError("body must be a JSON object")
    version = data.get("version")
    if version != "4":
        raise PayloadError(f'version: must be "4" (Alertmanager webhook), got {version!r}')
    alerts = data.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError("alerts: must be a list")
    for name in ("receiver", "status", "groupKey"):
        _text(data.get(name, ""), name, MAX_ANNOTATION_CHARS)
    return Delivery(
        receiver=str(data.get("receiver", "")),
        status=str(data.get("status", "")),
        group_key=str(data.get("groupKey", "")),
        alerts=tuple(parse_alert(a, f"alerts[{i}]") for i, a in enumerate(alerts)),
    )
