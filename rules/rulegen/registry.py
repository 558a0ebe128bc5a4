"""The groups the generator knows: register a new group here, in the one list it belongs to.

Kept apart from ``render.py`` so that adding a group is a one-line change in a file that
holds nothing else. The order is the output's order: ``alerts.yml`` lists its groups (and
``--list`` its alerts) in ``ALERT_GROUPS`` order, ``recording.yml`` its groups in
``RECORDING_GROUPS`` order; append new groups at the end so the existing output is unchanged.
"""

from __future__ import annotations

from typing import Protocol

from . import (
    applications,
    capacity,
    fault_domains,
    ha_master,
    health,
    hosts,
    performance,
    recording,
    remediator,
    rightsizing,
    vms,
    watcher,
)
from .config import Settings
from .model import Alert, RecordingGroup


class AlertGroup(Protocol):
    """A module of alerts: ``GROUP`` names its rule group in alerts.yml, ``alerts`` builds
    them (each with ``group=GROUP``) from the validated settings."""

    GROUP: str

    def alerts(self, s: Settings) -> list[Alert]: ...


class RecordingRules(Protocol):
    """A module of recording rules, in one or more groups of recording.yml."""

    def recording(self, s: Settings) -> list[RecordingGroup]: ...


ALERT_GROUPS: tuple[AlertGroup, ...] = (
    watcher,
    hosts,
    ha_master,
    vms,
    applications,
    fault_domains,
    capacity,
    performance,
    remediator,
    health,
)

RECORDING_GROUPS: tuple[RecordingRules, ...] = (
    recording,
    rightsizing,
)
