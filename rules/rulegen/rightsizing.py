"""The rightsizing and cost recording rules, as ``vha/report/rightsizing.py`` defines them.

``vha report`` computes the same recommendations from the same PromQL, so the rules are
not written here: this module only wraps that module's groups (with the config's
``rightsizing:`` thresholds) into recording.yml's shape. The 5-minute averages run at the
evaluation interval, the percentiles over the window at ``rightsizing.interval``.
"""

from __future__ import annotations

from vha.report import rightsizing

from .config import Settings
from .model import Record, RecordingGroup


def recording(s: Settings) -> list[RecordingGroup]:
    doc = rightsizing.rule_file(s.rightsizing, interval=s.rightsizing_interval.text)
    return [
        RecordingGroup(
            name=g["name"],
            rules=[Record(r["record"], r["expr"]) for r in g["rules"]],
            interval=g.get("interval"),
        )
        for g in doc["groups"]
    ]
