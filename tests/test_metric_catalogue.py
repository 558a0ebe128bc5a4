"""The rules build on the exporter's metric catalogue (docs/metrics.md): every metric, label
and enum value they use must be in it, so renaming a metric breaks the build here rather
than silently blinding an alert.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "docs" / "metrics.md"
RULE_FILES = [ROOT / "rules" / "alerts.yml", ROOT / "rules" / "recording.yml"]
UNIT_TESTS = sorted((ROOT / "rules" / "tests").glob("*.yml"))
# Target labels Prometheus adds to every scraped series.
TARGET_LABELS = {"job", "instance"}
RECORDING_NAME = re.compile(r"^vsphere_[a-z_]+:[a-z0-9_]+(:[a-z0-9_]+)?$")
SELECTOR = re.compile(r"\b([a-zA-Z_][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"')


@dataclass(frozen=True)
class Metric:
    name: str
    labels: frozenset[str]
    values: frozenset[str]  # every `backticked` word of the meaning: the enum values


def parse_catalogue(text: str) -> dict[str, Metric]:
    """Rows of the catalogue's tables: | `name` | type | labels | meaning |."""
    metrics: dict[str, Metric] = {}
    for line in text.splitlines():
        m = re.match(r"^\|\s*`([a-z_:]+)`\s*\|([^|]*)\|([^|]*)\|(.*)\|\s*$", line)
        if not m:
            continue
        name, _type, labels, meaning = m.groups()
        names = {x.strip() for x in labels.split(",") if x.strip() not in {"", "—", "-"}}
        values = frozenset(re.findall(r"`([^`]+)`", meaning))
        metrics[name] = Metric(name, frozenset(names), values)
    # "states as `vsphere_host_ha_state`": an enum defined by another row
    for name, metric in metrics.items():
        inherited = {v for ref in metric.values if ref in metrics for v in metrics[ref].values}
        metrics[name] = Metric(name, metric.labels, metric.values | inherited)
    return metrics


CAT = parse_catalogue(CATALOGUE.read_text(encoding="utf-8"))
# The remediator's own metrics (rules/rulegen/remediator.py) are catalogued with it.
REMEDIATOR_CAT = parse_catalogue((ROOT / "docs" / "remediator.md").read_text(encoding="utf-8"))
# Alertmanager's own metrics, which the remediator alerts read too.
ALERTMANAGER_METRICS = {"alertmanager_notifications_failed_total": frozenset({"integration"})}


@functools.cache
def load(path: Path) -> Any:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)


def rules() -> list[dict[str, Any]]:
    return [r for path in RULE_FILES for g in load(path)["groups"] for r in g["rules"]]


RECORDED = {r["record"] for r in rules() if "record" in r}


def without_strings(expr: str) -> str:
    return re.sub(r'"[^"]*"', '""', expr)


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\bvsphere_[a-zA-Z0-9_:]*", without_strings(expr)))


def test_catalogue_parses() -> None:
    assert len(CAT) > 50
    assert CAT["vsphere_host_connection_state"].labels == {"vcenter", "host_id", "host", "state"}
    assert "notResponding" in CAT["vsphere_host_connection_state"].values


def test_recording_rules_are_named_level_metric_operations() -> None:
    for name in RECORDED:
        assert RECORDING_NAME.match(name), name
        assert name not in CAT, f"{name} shadows an exporter metric"


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r.get("alert") or r["record"])
def test_rule_uses_only_catalogued_metrics(rule: dict[str, Any]) -> None:
    for name in metric_names(rule["expr"]):
        if ":" in name:
            assert name in RECORDED, f"{name} is not a recording rule of rules/recording.yml"
        else:
            assert name in CAT, f"{name} is not in docs/metrics.md"


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r.get("alert") or r["record"])
def test_rule_selectors_use_catalogued_labels_and_values(rule: dict[str, Any]) -> None:
    for name, body in SELECTOR.findall(rule["expr"]):
        if name not in CAT:
            continue  # recording rules and `up`
        metric = CAT[name]
        for label, op, value in MATCHER.findall(body):
            assert label in metric.labels, f"{name} has no label {label}"
            if op in {"=", "=~"} and value and label not in {"vcenter", "cluster", "host"}:
                for alternative in value.split("|"):
                    assert alternative in metric.values, f"{name}{{{label}}}: {alternative}"


def test_unit_tests_feed_catalogued_series() -> None:
    """The promtool tests' input looks like what the exporter serves."""
    for path in UNIT_TESTS:
        for test in load(path)["tests"]:
            for series in test.get("input_series", []):
                m = re.fullmatch(r"([a-zA-Z_][a-zA-Z0-9_:]*)\{(.*)\}", series["series"])
                assert m, series["series"]
                name, body = m.groups()
                if name == "up":
                    continue
                labels = {label for label, _, _ in MATCHER.findall(body)}
                if name.startswith(("vha_remediator_", "alertmanager_")):
                    known = {
                        **{n: m.labels for n, m in REMEDIATOR_CAT.items()},
                        **ALERTMANAGER_METRICS,
                    }
                    assert name in known, f"{path.name}: {name} is not in docs/remediator.md"
                    extra = labels - known[name] - TARGET_LABELS
                    assert not extra, f"{path.name}: {name} has no labels {extra}"
                    continue
                assert name in CAT, f"{path.name}: {name} is not in docs/metrics.md"
                extra = labels - CAT[name].labels - TARGET_LABELS
                assert not extra, f"{path.name}: {name} has no labels {extra}"
