"""The exposition text we render parses as Prometheus text and keeps enum semantics."""

from __future__ import annotations

import math

from exporter.families import Family, escape, fmt, labels, render

from .metrics_helpers import current_state, parse, value


def test_escape_and_format() -> None:
    assert escape('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert labels([("vm", 'x"y')]) == 'vm="x\\"y"'
    assert fmt(1.0) == "1" and fmt(2) == "2" and fmt(True) == "1"
    assert fmt(0.25) == "0.25" and fmt(float("nan")) == "NaN" and fmt(math.inf) == "+Inf"


def test_render_round_trips_through_the_official_parser() -> None:
    gauge = Family("vsphere_test_state", "A test enum.")
    gauge.add_enum('vcenter="vc1",vm="we\\"ird"', "state", ("on", "off"), "off")
    counter = Family("vsphere_test_events_total", "A counter.", "counter")
    counter.add('vcenter="vc1"', 3)
    other_vc = Family("vsphere_test_state", "A test enum.")
    other_vc.add_enum('vcenter="vc2",vm="b"', "state", ("on", "off"), None)
    samples = parse(render([gauge, counter, other_vc]))
    assert current_state(samples, "vsphere_test_state", "state", vcenter="vc1") == "off"
    assert current_state(samples, "vsphere_test_state", "state", vcenter="vc2") is None
    assert value(samples, "vsphere_test_state", vcenter="vc2", state="on") == 0
    assert value(samples, "vsphere_test_events_total", vcenter="vc1") == 3
    assert {s.labels["vm"] for s in samples if "vm" in s.labels} == {'we"ird', "b"}
