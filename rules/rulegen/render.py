"""The three generated files' text, from the registered groups.

Owns what holds across groups: the contract every alert keeps (unique names, known
severities and remediations, registered group), the grouping of alerts into rule groups,
and the header that marks each file as generated. ``rules/generate.py`` only decides
where the text goes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .alertmanager import NOTES, alertmanager
from .config import Settings
from .emit import HEADER, dump
from .model import REMEDIATIONS, SEVERITIES, Alert, RecordingGroup
from .registry import ALERT_GROUPS, RECORDING_GROUPS

ALERTS_FILE = "alerts.yml"
RECORDING_FILE = "recording.yml"
ALERTMANAGER_FILE = "alertmanager.yml"


def build_alerts(s: Settings) -> list[Alert]:
    """Every alert, in the order they appear in rules/alerts.yml and docs/alerts.md."""
    out: list[Alert] = []
    for group in ALERT_GROUPS:
        alerts = group.alerts(s)
        for a in alerts:
            assert a.group == group.GROUP, f"{a.name}: group {a.group!r}, not {group.GROUP!r}"
        out += alerts
    return out


def build_recording(s: Settings) -> list[RecordingGroup]:
    """Every recording group, in the order they appear in rules/recording.yml."""
    return [g for rules in RECORDING_GROUPS for g in rules.recording(s)]


def check_alerts(alerts: Sequence[Alert]) -> None:
    """The contract every alert keeps (tests/test_rules.py checks the output as well)."""
    groups = [g.GROUP for g in ALERT_GROUPS]
    assert len(set(groups)) == len(groups), "duplicate alert group names"
    names = [a.name for a in alerts]
    assert len(set(names)) == len(names), "duplicate alert names"
    for a in alerts:
        assert a.severity in SEVERITIES and a.remediation in REMEDIATIONS, a.name
        assert a.group in groups and a.summary and a.description, a.name


def render(s: Settings) -> dict[str, str]:
    """The three generated files' text, by file name."""
    header = HEADER.format(profile=f" + profile {s.profile}" if s.profile else "")
    alerts = build_alerts(s)
    check_alerts(alerts)
    by_group: dict[str, list[dict[str, Any]]] = {}
    for a in alerts:
        by_group.setdefault(a.group, []).append(a.rule(s.runbook_base_url))
    interval = s.evaluation_interval.text
    alerts_doc = {
        "groups": [{"name": n, "interval": interval, "rules": r} for n, r in by_group.items()]
    }
    recording_doc = {"groups": [g.doc(interval) for g in build_recording(s)]}
    return {
        ALERTS_FILE: header + dump(alerts_doc),
        RECORDING_FILE: header + dump(recording_doc),
        ALERTMANAGER_FILE: header + NOTES + dump(alertmanager(s, alerts)),
    }


def alerts_table(s: Settings) -> str:
    rows = ["| alert | group | severity | remediation | for |", "| --- | --- | --- | --- | --- |"]
    for a in build_alerts(s):
        rows.append(f"| `{a.name}` | {a.group} | {a.severity} | {a.remediation} | {a.for_.text} |")
    return "\n".join(rows)
