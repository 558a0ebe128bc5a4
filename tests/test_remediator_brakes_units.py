"""Brakes as pure functions and journal rules (issue 9 items 5 and 10's orphans)."""

from __future__ import annotations

import json
from pathlib import Path

from remediator.alerts import parse_payload
from remediator.journal import Journal
from remediator.policy import DEFER, Request, decide_host_failure, implausible_start

from .remediator_fixtures import alert, host, payload, rconfig, snapshot, vm

NOW = 1_800_000_000.0
ZERO_TIME = -62135596800.0  # 0001-01-01T00:00:00Z, Alertmanager's "no time"


def test_implausible_starts_are_named() -> None:
    seen = {"host-1": NOW - 30}
    req = Request("restart_host_vms", "vc1", host_id="host-1", last_connected=seen)
    assert implausible_start(Request("x", "vc1", since=ZERO_TIME), NOW) == "zero time"
    assert implausible_start(Request("x", "vc1", since=0.0), NOW) == "zero time"
    assert implausible_start(Request("x", "vc1", since=NOW + 3600), NOW) == "in the future"
    assert implausible_start(Request("x", "vc1", since=NOW + 60), NOW) == ""  # clock skew
    old = Request("x", "vc1", since=NOW - 3600, last_connected=seen)
    assert implausible_start(old, NOW, "host-1") == "before last connected"
    assert implausible_start(old, NOW, "host-2") == ""  # never seen connected: no verdict
    assert implausible_start(req, NOW) == "zero time"


def _failed_host_snapshot() -> object:
    hosts = [
        host("host-1", connection_state="notResponding", das_state="hostDown"),
        host("host-2", "fd-b"),
    ]
    return snapshot(hosts, [vm("vm-1", "host-1", power_state="poweredOn")])


def test_a_future_start_does_not_stretch_or_skip_the_confirmation() -> None:
    cfg = rconfig(host_failure={"confirm_seconds": 60})
    req = Request("restart_host_vms", "vc1", host_id="host-1", since=NOW + 86400)
    d = decide_host_failure(req, _failed_host_snapshot(), cfg, NOW)  # type: ignore[arg-type]
    assert d.outcome == DEFER and d.retry_at == NOW + 60
    assert d.memory["start_clamped"]["reason"] == "in the future"
    assert d.memory["failure_seen"] == NOW


def test_a_decision_planned_without_steps_ends_skipped(tmp_path: Path) -> None:
    j = Journal(str(tmp_path / "j.sqlite"))
    body = json.dumps(payload(alert("restart_host_vms", host_id="host-1")))
    j.record_delivery(
        body, parse_payload(body.encode()), remote="t", now=100.0, vcenters={"vc1"}, dry_run=False
    )
    [decision] = j.claim_due(101.0, 10)
    ids, settled = j.plan(decision, [], "nothing on the host", 102.0, {})
    assert ids == [] and settled == ("restart_host_vms", "skipped")
    row = j.get(decision.id)
    assert row is not None and row.state == "skipped" and "nothing to do" in row.reason
    j.close()
