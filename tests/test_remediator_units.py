"""The remediator's pure parts: config, payload parsing, journal, placement, policy, guard."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from remediator.alerts import PayloadError, parse_payload, parse_time
from remediator.config import GuardConfig, RateLimitConfig, parse_remediator
from remediator.drs_rules import DrsRules, VmHostRule
from remediator.guard import MassFailureGuard, RateLimiter
from remediator.journal import Journal
from remediator.model import VMMonitoring
from remediator.placement import place
from remediator.policy import (
    BY_HA,
    DEFER,
    PLAN,
    REFUSE,
    SKIP,
    Request,
    decide_evacuation,
    decide_host_failure,
    decide_reset,
    decide_vm_failure,
    reset_limits,
)
from vcenter.config import ConfigError

from .remediator_fixtures import (
    TOKEN_ENV,
    alert,
    host,
    payload,
    rconfig,
    remediator_section,
    resolved,
    snapshot,
    vm,
)

# --- config ----------------------------------------------------------------------------


def test_config_defaults_are_safe() -> None:
    os.environ[TOKEN_ENV] = "x"
    cfg = parse_remediator({"bearer_token_env": TOKEN_ENV})
    assert cfg.dry_run is True
    assert cfg.listen == "127.0.0.1:9273"
    assert cfg.auth == "bearer"
    assert cfg.host_failure.require_fdm_host_down is True
    assert cfg.vm_monitoring.max_resets == 3 and cfg.vm_monitoring.window_seconds == 3600
    assert cfg.journal_path.endswith("run/remediator.sqlite")


@pytest.mark.parametrize(
    ("section", "key", "fragment"),
    [
        ({}, "remediator", "authentication is required"),
        ({"auth": "none", "bearer_token_env": TOKEN_ENV}, "remediator.auth", "credentials"),
        ({"bearer_token": "inline"}, "remediator.bearer_token", "inline secrets"),
        ({"auth": "none", "dry_run": "no"}, "remediator.dry_run", "true or false"),
        ({"auth": "none", "listen": "nope"}, "remediator.listen", "HOST:PORT"),
        ({"auth": "none", "workers": 0}, "remediator.workers", ">= 1"),
        ({"auth": "none", "colour": 1}, "remediator.colour", "unknown key"),
        (
            {"auth": "none", "guard": {"max_failed_share": 2}},
            "remediator.guard.max_failed_share",
            "<= 1",
        ),
        (
            {"auth": "none", "host_failure": {"move_method": "teleport"}},
            "remediator.host_failure.move_method",
            "auto, relocate, register",
        ),
        (
            {"auth": "none", "host_failure": {"fencing_command": ""}},
            "remediator.host_failure.fencing_command",
            "",
        ),
        (
            {"auth": "none", "tls": {"cert_file": "/nonexistent.pem"}},
            "remediator.tls.cert_file",
            "no such file",
        ),
        ({"auth": "basic", "basic_auth": {"user": "am"}}, "remediator.basic_auth", "password_file"),
        (
            {"auth": "none", "vm_monitoring": {"max_resets": 1.5}},
            "remediator.vm_monitoring.max_resets",
            "whole",
        ),
    ],
)
def test_config_errors_name_the_key(section: dict[str, Any], key: str, fragment: str) -> None:
    os.environ[TOKEN_ENV] = "x"
    with pytest.raises(ConfigError) as info:
        parse_remediator(section)
    assert info.value.key == key
    assert fragment in str(info.value)


def test_config_basic_auth_and_tls(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("secret\n")
    # A real pair: the config loads the certificate and key at check time.
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(tmp_path / "k.pem"),
         "-out", str(tmp_path / "c.pem")],
        check=True,
        capture_output=True,
    )  # fmt: skip
    cfg = parse_remediator(
        {
            "basic_auth": {"user": "am", "password_file": "pw"},
            "tls": {"cert_file": "c.pem", "key_file": "k.pem"},
            "journal": "state/j.sqlite",
        },
        tmp_path,
    )
    assert cfg.auth == "basic" and cfg.basic_user == "am"
    assert cfg.basic_password is not None and cfg.basic_password.get() == "secret"
    assert cfg.tls is not None and cfg.tls.cert_file == str(tmp_path / "c.pem")
    assert cfg.journal_path == str(tmp_path / "state/j.sqlite")


# --- payload ---------------------------------------------------------------------------


def test_timestamps_canonical_across_precisions() -> None:
    a, ta = parse_time("2024-05-01T10:00:00.123456789Z", "x")
    b, tb = parse_time("2024-05-01T12:00:00.123456+02:00", "x")
    assert a == b and ta == tb


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "malformed JSON"),
        (b"[]", "JSON object"),
        (json.dumps({"version": "3", "alerts": []}).encode(), "version"),
        (json.dumps({"version": "4"}).encode(), "alerts: must be a list"),
        (json.dumps({"version": "4", "alerts": [{"status": "x"}]}).encode(), "alerts[0].status"),
        (
            json.dumps(
                {"version": "4", "alerts": [{"status": "firing", "labels": {"a": 1}}]}
            ).encode(),
            "alerts[0].labels.a",
        ),
        (
            json.dumps(
                {
                    "version": "4",
                    "alerts": [{"status": "firing", "labels": {"a": "b"}, "startsAt": "soon"}],
                }
            ).encode(),
            "alerts[0].startsAt",
        ),
        (b"\xff\xfe", "UTF-8"),
    ],
)
def test_payload_errors(body: bytes, fragment: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse_payload(body)
    assert fragment in str(info.value)


def test_unusable_alerts_say_why() -> None:
    vcs = {"vc1"}
    d = parse_payload(
        json.dumps(
            payload(
                alert("restart_vm", vm_id="vm-1"),
                alert("restart_vm"),
                alert("restart_host_vms", vcenter="other", host_id="host-1"),
                alert("teleport", host="h"),
                alert("none"),
                alert("restart_fault_domain_vms", cluster_id="domain-c7", fault_domain="fd-a"),
                alert("restart_fault_domain_vms", cluster_id="domain-c7"),
            )
        ).encode()
    )
    assert [a.unusable(vcs) for a in d.alerts[:4]] == [
        "",
        "the alert has neither a vm_id nor a vm label",
        "vcenter 'other' is not in the configuration",
        "unknown remediation 'teleport' (known: restart_host_vms, evacuate_host, restart_vm,"
        " reset_vm, restart_fault_domain_vms)",
    ]
    assert not d.alerts[4].wants_action
    assert [a.unusable(vcs) for a in d.alerts[5:]] == [
        "",
        "the alert needs both a cluster_id and a fault_domain label",
    ]


# --- journal ---------------------------------------------------------------------------


def _record(j: Journal, *alerts: dict[str, Any], now: float = 100.0) -> Any:
    body = json.dumps(payload(*alerts))
    return j.record_delivery(
        body, parse_payload(body.encode()), remote="t", now=now, vcenters={"vc1"}, dry_run=False
    )


def test_journal_is_idempotent_per_firing(tmp_path: Path) -> None:
    j = Journal(str(tmp_path / "j.sqlite"))
    a = alert("restart_vm", vm_id="vm-1")
    first = _record(j, a)
    again = _record(j, a)  # a retry, or the second Alertmanager replica
    assert len(first.created) == 1 and again.created == [] and again.duplicates == 1
    other_rule = alert("restart_vm", vm_id="vm-1")  # another rule, same VM, still pending
    attached = _record(j, other_rule)
    assert attached.created == [] and attached.attached == 1
    assert len(j.list_actions()) == 1
    # Resolving one of the two alerts keeps the work; resolving both cancels it.
    assert _record(j, resolved(a)).cancelled == 0
    assert _record(j, resolved(other_rule)).cancelled == 1
    assert j.list_actions()[0].state == "cancelled"
    # A late firing of a resolved alert does not revive it.
    assert _record(j, a).created == []


def test_journal_resolved_before_firing_and_unusable(tmp_path: Path) -> None:
    j = Journal(str(tmp_path / "j.sqlite"))
    a = alert("reset_vm", vm_id="vm-2")
    _record(j, resolved(a))
    assert _record(j, a).created == []
    bad = _record(j, alert("restart_vm"))
    assert bad.created == []
    [row] = j.list_actions(state="skipped")
    assert "neither a vm_id nor a vm" in row.reason


def test_journal_recovers_running_and_plans_idempotently(tmp_path: Path) -> None:
    path = str(tmp_path / "j.sqlite")
    j = Journal(path)
    _record(j, alert("restart_host_vms", host_id="host-1"))
    [parent] = j.claim_due(200.0, 10)
    steps = [{"kind": "restart", "vm_id": f"vm-{i}", "rank": i} for i in range(3)]
    assert len(j.plan(parent, steps, "planned", 201.0, {})[0]) == 3
    assert j.plan(parent, steps, "planned", 202.0, {})[0] == []  # a replay adds nothing
    claimed = j.claim_due(203.0, 2)
    assert [c.vm_id for c in claimed] == ["vm-2", "vm-1"]  # highest rank first
    j.start_attempt(claimed[0].id, 204.0, "relocate")
    j.close()
    j2 = Journal(path)  # a restart after a crash
    assert j2.recover(300.0) == 2
    assert j2.counts() == {"planned": 1, "pending": 3}
    events = j2.events(claimed[0].id)
    assert [e["state"] for e in events][-2:] == ["running", "pending"]
    assert j2.get(claimed[0].id).attempts == 1  # type: ignore[union-attr]


def test_journal_write_failure_is_a_journal_error(tmp_path: Path) -> None:
    from remediator.journal import JournalError

    j = Journal(str(tmp_path / "j.sqlite"))
    j.db.execute("PRAGMA query_only=ON")
    with pytest.raises(JournalError):
        _record(j, alert("restart_vm", vm_id="vm-1"))


# --- placement -------------------------------------------------------------------------


def test_placement_prefers_other_fault_domain_spreads_and_orders() -> None:
    hosts = [
        host("host-1", "fd-a", connection_state="notResponding", das_state="hostDown"),
        host("host-2", "fd-a"),
        host("host-3", "fd-b"),
        host("host-4", "fd-b"),
        host("host-5", "fd-b", maintenance=True),
    ]
    vms = [
        vm(f"vm-{i}", "host-1", priority=p)
        for i, p in enumerate(["low", "high", "medium", "highest"])
    ]
    snap = snapshot(hosts, vms)
    racks = rconfig(placement={"fault_domains": "racks"}).placement
    out = place(vms, snap, racks, avoid_fault_domain="fd-a", exclude=["host-1"])
    assert [p.priority for p in out] == ["highest", "high", "medium", "low"]
    assert {p.target_id for p in out} == {"host-3", "host-4"}  # other FD, spread, no maintenance
    assert sum(p.target_id == "host-3" for p in out) == 2


def test_placement_honours_reservations_and_reports_unplaced() -> None:
    hosts = [
        host("host-1", "fd-a", connection_state="notResponding"),
        host("host-2", "fd-b", memory_capacity_mb=4096.0),
    ]
    big = vm("vm-big", "host-1", "high", memory_reservation_mb=3000.0)
    small = vm("vm-small", "host-1", "low", memory_reservation_mb=2000.0)
    out = place(
        [small, big], snapshot(hosts, [big, small]), rconfig().placement, exclude=["host-1"]
    )
    assert out[0].vm_id == "vm-big" and out[0].target_id == "host-2"
    assert not out[1].placed and "memory reservations full" in out[1].reason


def test_placement_falls_back_to_same_fault_domain() -> None:
    hosts = [host("host-1", "fd-a", connection_state="notResponding"), host("host-2", "fd-a")]
    out = place(
        [vm("vm-1", "host-1")],
        snapshot(hosts, []),
        rconfig(placement={"fault_domains": "racks"}).placement,
        avoid_fault_domain="fd-a",
        exclude=["host-1"],
    )
    assert out[0].target_id == "host-2" and "no room outside fault domain fd-a" in out[0].reason


def test_placement_keeps_vms_in_their_site_while_it_has_room() -> None:
    """Sites (the default): a single host failure keeps its VMs in their own fault domain,
    even onto the busier survivor there; only what no longer fits there crosses over."""
    hosts = [
        host("host-1", "fd-a", connection_state="notResponding"),
        host("host-2", "fd-a", memory_capacity_mb=4096.0),
        host("host-3", "fd-b"),
    ]
    busy = vm("vm-busy", "host-2", memory_reservation_mb=1000.0)
    first = vm("vm-1", "host-1", "high", memory_reservation_mb=2000.0)
    second = vm("vm-2", "host-1", "low", memory_reservation_mb=2000.0)
    out = place(
        [first, second],
        snapshot(hosts, [busy, first, second]),
        rconfig().placement,
        avoid_fault_domain="fd-a",
        exclude=["host-1"],
    )
    assert [(p.vm_id, p.target_id) for p in out] == [("vm-1", "host-2"), ("vm-2", "host-3")]
    assert "in its own fault domain (fd-a)" in out[0].reason
    assert "no room in its own fault domain fd-a" in out[1].reason


def test_placement_site_should_rule_wins_over_the_home_domain() -> None:
    """A VM-Host "should" rule (the VM belongs to site fd-b's hosts) weighs before the
    home-domain preference: a VM that (by vMotion) ran on an fd-a host goes back to its
    rule's site; a VM without a rule stays in fd-a."""
    hosts = [
        host("host-1", "fd-a", connection_state="notResponding"),
        host("host-2", "fd-a"),
        host("host-3", "fd-b"),
    ]
    ruled, free = vm("vm-ruled", "host-1", "high"), vm("vm-free", "host-1", "low")
    rule = VmHostRule("site-b-vms", frozenset({"vm-ruled"}), frozenset({"host-3"}), True, False)
    snap = snapshot(hosts, [ruled, free], rules=DrsRules(vm_host=(rule,)))
    out = place(
        [ruled, free], snap, rconfig().placement, avoid_fault_domain="fd-a", exclude=["host-1"]
    )
    assert [(p.vm_id, p.target_id) for p in out] == [("vm-ruled", "host-3"), ("vm-free", "host-2")]


def test_placement_fault_domains_config_and_deprecated_alias() -> None:
    assert rconfig().placement.fault_domains == "sites"
    legacy = rconfig(placement={"prefer_other_fault_domain": True}).placement
    assert legacy.fault_domains == "racks"
    assert rconfig(placement={"prefer_other_fault_domain": False}).placement.fault_domains == (
        "sites"
    )
    with pytest.raises(ConfigError, match="prefer_other_fault_domain: is deprecated"):
        rconfig(placement={"fault_domains": "sites", "prefer_other_fault_domain": True})
    with pytest.raises(ConfigError, match="must be sites or racks"):
        rconfig(placement={"fault_domains": "continents"})


# --- policy ----------------------------------------------------------------------------

FAILED = {"connection_state": "notResponding", "power_state": "unknown", "das_state": "hostDown"}


def _host_failure(**failed: Any) -> Any:
    return snapshot(
        [
            host("host-1", "fd-a", **(FAILED | failed)),
            host("host-2", "fd-a"),
            host("host-3", "fd-b"),
        ],
        [
            vm("vm-1", "host-1", "high"),
            vm("vm-2", "host-1", "low"),
            vm("vm-3", "host-1", power_state="poweredOff"),
            vm("vm-4", "host-1", priority="disabled"),
            vm("vm-5", "host-2"),
        ],
    )


def test_host_failure_waits_for_confirmation_then_plans() -> None:
    cfg = rconfig(host_failure={"confirm_seconds": 60})
    req = Request("restart_host_vms", "vc1", host_id="host-1", since=1000.0)
    # The alert says the failure began at 1000; this remediator first sees it at 1030,
    # and confirmation counts from the later of the two.
    wait = decide_host_failure(req, _host_failure(), cfg, 1030.0)
    assert wait.outcome == DEFER and wait.retry_at == 1090.0
    assert wait.memory["failure_seen"] == 1030.0
    assert set(wait.memory["vms"]) == {"vm-1", "vm-2", "vm-3", "vm-4"}
    req = replace(req, memory=wait.memory)  # what the engine journals between looks
    assert decide_host_failure(req, _host_failure(), cfg, 1061.0).outcome == DEFER
    plan = decide_host_failure(req, _host_failure(), cfg, 1091.0)
    assert plan.outcome == PLAN
    pending = [s for s in plan.steps if s.state == "pending"]
    assert [s.vm_id for s in pending] == ["vm-1", "vm-2"]
    # fault domains are sites by default: the VMs stay in theirs (fd-a) while it has room
    assert all(s.target_host_id == "host-2" for s in pending)
    assert all("in its own fault domain (fd-a)" in s.reason for s in pending)
    skipped = {s.vm_id: s.reason for s in plan.steps if s.state == "skipped"}
    assert "powered off" in skipped["vm-3"] and "not protected" in skipped["vm-4"]


def test_host_failure_split_brain_guard() -> None:
    cfg = rconfig(host_failure={"max_unconfirmed_seconds": 100})
    req = Request("restart_host_vms", "vc1", host_id="host-1", since=1000.0)
    isolated = _host_failure(das_state="networkIsolated")
    first = decide_host_failure(req, isolated, cfg, 1010.0)
    assert first.outcome == DEFER
    refused = decide_host_failure(replace(req, memory=first.memory), isolated, cfg, 1200.0)
    assert refused.outcome == REFUSE and "networkIsolated" in refused.reason
    # Without HA on the cluster there is no FDM verdict: the confirmation time decides.
    no_ha = snapshot(list(isolated.hosts.values()), list(isolated.vms.values()), ha=False)
    assert decide_host_failure(req, no_ha, cfg, 1010.0).outcome == PLAN
    back = _host_failure(connection_state="connected", das_state="connectedToMaster")
    assert decide_host_failure(req, back, cfg, 1010.0).outcome == SKIP
    # A host vCenter saw power off needs no confirmation: nothing can run there.
    off = _host_failure(connection_state="connected", power_state="poweredOff", das_state="")
    slow = rconfig(host_failure={"confirm_seconds": 600})
    assert decide_host_failure(req, off, slow, 1010.0).outcome == PLAN


def test_host_failure_gives_ha_its_grace_and_credits_it() -> None:
    cfg = rconfig(ha_grace_seconds=120)
    req = Request("restart_host_vms", "vc1", host_id="host-1", since=1000.0)
    first = decide_host_failure(req, _host_failure(), cfg, 1001.0)
    assert first.outcome == DEFER and "giving it 120s" in first.reason
    # During the grace period vSphere HA restarted vm-1 on host-2.
    snap = _host_failure()
    moved = dict(snap.vms)
    moved["vm-1"] = vm("vm-1", "host-2", "high")
    snap2 = snapshot(list(snap.hosts.values()), list(moved.values()))
    later = decide_host_failure(
        Request("restart_host_vms", "vc1", host_id="host-1", since=1000.0, memory=first.memory),
        snap2,
        cfg,
        1121.0,
    )
    by = {s.vm_id: s for s in later.steps}
    assert by["vm-1"].state == "skipped" and by["vm-1"].restarted_by == BY_HA
    assert by["vm-2"].state == "pending"


def test_vm_failure_paths() -> None:
    cfg = rconfig()
    hosts = [host("host-1"), host("host-2", "fd-b")]
    off = vm("vm-1", "host-1", power_state="poweredOff")
    req = Request("restart_vm", "vc1", vm_id="vm-1", since=1000.0)
    plan = decide_vm_failure(req, snapshot(hosts, [off]), cfg, 1001.0)
    assert plan.outcome == PLAN and plan.steps[0].target_host_id == "host-1"
    person = decide_vm_failure(req, snapshot(hosts, [off]), cfg, 1001.0, powered_off_by="alice")
    assert person.outcome == SKIP and "alice" in person.reason
    running = decide_vm_failure(req, snapshot(hosts, [vm("vm-1", "host-1")]), cfg, 1001.0)
    assert running.outcome == SKIP
    maint = [host("host-1", maintenance=True), host("host-2", "fd-b")]
    elsewhere = decide_vm_failure(req, snapshot(maint, [off]), cfg, 1001.0)
    assert elsewhere.outcome == PLAN and elsewhere.steps[0].target_host_id == "host-2"


def test_reset_limits_and_uptime() -> None:
    cfg = rconfig(
        vm_monitoring={"min_uptime_seconds": 120, "max_resets": 3, "window_seconds": 3600}
    )
    hosts = [host("host-1")]
    bad = vm("vm-1", "host-1", guest_heartbeat="red", boot_time=900.0)
    req = Request("reset_vm", "vc1", vm_id="vm-1", since=950.0)
    young = decide_reset(req, snapshot(hosts, [bad], ha=False), cfg, 960.0, [])
    assert young.outcome == DEFER and young.retry_at == 1020.0
    ok = decide_reset(req, snapshot(hosts, [bad], ha=False), cfg, 4000.0, [10.0])
    assert ok.outcome == PLAN and "reset 1 of 3" in ok.reason  # the old reset left the window
    over = decide_reset(
        req, snapshot(hosts, [bad], ha=False), cfg, 1100.0, [1000.0, 1010.0, 1020.0]
    )
    assert over.outcome == REFUSE and "reset limit reached" in over.reason
    green = vm("vm-1", "host-1", boot_time=900.0)
    assert decide_reset(req, snapshot(hosts, [green]), cfg, 1100.0, []).outcome == SKIP
    app = vm("vm-1", "host-1", app_heartbeat="appStatusRed", boot_time=900.0)
    assert decide_reset(req, snapshot(hosts, [app], ha=False), cfg, 1100.0, []).outcome == PLAN


def test_reset_uses_cluster_settings_and_yields_to_ha() -> None:
    mon = VMMonitoring("vmMonitoringOnly", 30, 120, 3, 3600)
    cfg = rconfig(
        ha_grace_seconds=60, vm_monitoring={"prefer_cluster_settings": True, "max_resets": 9}
    )
    snap = snapshot(
        [host("host-1")],
        [vm("vm-1", "host-1", guest_heartbeat="red", boot_time=1.0)],
        vm_monitoring=mon,
    )
    assert reset_limits(snap, cfg) == (3, 3600.0, 120.0)
    req = Request("reset_vm", "vc1", vm_id="vm-1", since=1000.0)
    assert decide_reset(req, snap, cfg, 1010.0, []).outcome == DEFER  # HA's grace
    rebooted = snapshot(
        [host("host-1")],
        [vm("vm-1", "host-1", guest_heartbeat="red", boot_time=1030.0)],
        vm_monitoring=mon,
    )
    by_ha = decide_reset(req, rebooted, cfg, 1070.0, [])
    assert by_ha.outcome == SKIP and by_ha.restarted_by == BY_HA


def test_evacuation_plans_vmotion_and_maintenance() -> None:
    cfg = rconfig(evacuate={"enter_maintenance": True})
    hosts = [host("host-1", "fd-a"), host("host-2", "fd-a"), host("host-3", "fd-b")]
    vms = [
        vm("vm-1", "host-1"),
        vm("vm-2", "host-1", power_state="poweredOff"),
        vm("vm-3", "host-1", protected=False),
    ]
    d = decide_evacuation(
        Request("evacuate_host", "vc1", host_id="host-1"), snapshot(hosts, vms), cfg, 1.0
    )
    assert d.outcome == PLAN
    assert [(s.kind, s.vm_id, s.target_host_id) for s in d.steps] == [
        ("migrate", "vm-1", "host-2"),  # its own fault domain (a site, by default)
        ("enter_maintenance", "", ""),
    ]
    assert "1 unprotected left in place" in d.reason
    dead = snapshot([host("host-1", **FAILED)], vms)
    assert (
        decide_evacuation(Request("evacuate_host", "vc1", host_id="host-1"), dead, cfg, 1.0).outcome
        == SKIP
    )


# --- guard -----------------------------------------------------------------------------


def test_mass_failure_guard() -> None:
    g = MassFailureGuard(GuardConfig(max_failed_hosts=2, max_failed_share=0.5, window_seconds=60))
    hosts = [host(f"host-{i}") for i in range(6)]
    g.observe("vc1", "c", hosts, 0.0)
    assert not g.verdict("vc1", "c", 0.0).tripped
    g.observe("vc1", "c", [host("host-0", **FAILED), *hosts[1:]], 1.0)
    assert not g.verdict("vc1", "c", 1.0).tripped  # one failure never trips by share
    three = [host(f"host-{i}", **FAILED) for i in range(3)]
    g.observe("vc1", "c", [*three, *hosts[3:]], 2.0)
    v = g.verdict("vc1", "c", 3.0)
    assert v.tripped and "3 of 6 hosts" in v.reason
    assert not g.verdict("vc1", "c", 100.0).tripped  # the window passed and they are back
    small = MassFailureGuard(
        GuardConfig(max_failed_hosts=5, max_failed_share=0.5, window_seconds=60)
    )
    small.observe("vc1", "c", [host("a", **FAILED), host("b", **FAILED), host("c")], 0.0)
    assert small.verdict("vc1", "c", 0.0).tripped  # 2 of 3 is more than half


def test_rate_limiter() -> None:
    r = RateLimiter(RateLimitConfig(max_actions=2, window_seconds=10))
    r.seed([("vc1", "c", 0.0)])
    assert r.acquire("vc1", "c", 1.0) is None
    assert r.acquire("vc1", "c", 2.0) == 10.0
    assert r.acquire("vc1", "other", 2.0) is None
    assert r.acquire("vc1", "c", 10.5) is None


def test_section_helper_is_valid() -> None:
    assert parse_remediator(remediator_section(":memory:")).dry_run is False


def test_every_metric_is_documented_and_every_documented_metric_exists() -> None:
    import re

    from prometheus_client import generate_latest

    from remediator.metrics import Metrics

    text = generate_latest(Metrics().registry).decode()
    served = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    doc = (Path(__file__).resolve().parent.parent / "docs" / "remediator.md").read_text()
    documented = set(re.findall(r"^\| `(vha_remediator_[a-z_]+)` \|", doc, re.M))
    assert served == documented
