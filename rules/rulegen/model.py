"""What a group module hands back: alerts and recording rules, and the labels' vocabulary.

The group modules only describe rules; this module fixes the shape they describe them in,
so that the Alertmanager config (routes by ``remediation``, inhibitions by ``scope`` and
``host_failure``) and the checks in ``render.py`` work for any group, present or future,
without knowing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import Duration
from .emit import Expr

SEVERITIES = ("critical", "warning")
# What the remediator may do; anything but ``none`` routes the alert to the remediator.
REMEDIATIONS = (
    "restart_host_vms",
    "restart_vm",
    "reset_vm",
    "evacuate_host",
    "restart_fault_domain_vms",
    "none",
)
ACTIONS = tuple(r for r in REMEDIATIONS if r != "none")


@dataclass(frozen=True)
class Alert:
    name: str
    group: str
    expr: str
    for_: Duration
    severity: str
    remediation: str
    summary: str
    description: str
    # What the alert is about: watcher, host, vm, cluster, fault_domain, datastore or vcenter
    # (an object of the vCenter itself: its alarms, its licences).
    scope: str
    # A host alert that makes the host's VM data meaningless (its VMs' alerts are inhibited).
    host_failure: bool = False

    def rule(self, runbook_base_url: str) -> dict[str, Any]:
        rule: dict[str, Any] = {"alert": self.name, "expr": Expr(self.expr)}
        if self.for_.seconds:
            rule["for"] = self.for_.text
        rule["labels"] = {"severity": self.severity, "remediation": self.remediation}
        rule["annotations"] = {
            "summary": self.summary,
            "description": self.description,
            "runbook_url": f"{runbook_base_url}#{self.name.lower()}",
        }
        return rule


@dataclass(frozen=True)
class Record:
    record: str
    expr: str


@dataclass(frozen=True)
class RecordingGroup:
    """One group of recording.yml; rules are evaluated in order, so each rule only uses rules
    defined above it (or plain metrics). ``interval`` defaults to ``evaluation_interval``."""

    name: str
    rules: list[Record]
    interval: str | None = None

    def doc(self, evaluation_interval: str) -> dict[str, Any]:
        return {
            "name": self.name,
            "interval": evaluation_interval if self.interval is None else self.interval,
            "rules": [{"record": r.record, "expr": Expr(r.expr)} for r in self.rules],
        }
