"""Reading ``/metrics`` text in tests: parse once, then query by name and labels."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def parse(text: str) -> list[Sample]:
    out = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.append(Sample(s.name, dict(s.labels), s.value))
    return out


def select(samples: list[Sample], name: str, **labels: str) -> list[Sample]:
    return [
        s
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def value(samples: list[Sample], name: str, **labels: str) -> float | None:
    """The value of the single matching sample, None when absent; fails when ambiguous."""
    found = select(samples, name, **labels)
    assert len(found) <= 1, f"{name}{labels} matches {len(found)} samples"
    return found[0].value if found else None


def current_state(samples: list[Sample], name: str, label: str, **labels: str) -> str | None:
    """For a one-series-per-state enum: the state whose series is 1."""
    ones = [s.labels[label] for s in select(samples, name, **labels) if s.value == 1]
    assert len(ones) <= 1, f"{name}{labels} has {len(ones)} current states: {ones}"
    return ones[0] if ones else None
