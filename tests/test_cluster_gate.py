"""remediator.cluster_gate: decisions of one cluster ordered together, on a fake clock."""

from __future__ import annotations

from remediator.cluster_gate import UNSTARTED_TTL, ClusterGate, Member
from remediator.ha_settings import Dependency, Readiness
from remediator.tiers import Orchestration, VmReady

KEY = "vc1/domain-c1"
ON = VmReady("poweredOn", "green", "appStatusGreen")


def orch(prios: dict[str, str], delay: float = 0.0, **kw: object) -> Orchestration:
    return Orchestration(
        prios,
        readiness=lambda _vm: Readiness("poweredOn", delay),
        **kw,  # type: ignore[arg-type]
    )


def joined(gate: ClusterGate, pid: int, o: Orchestration, now: float = 0.0) -> Orchestration:
    gate.register(KEY, Member(pid, f"host h{pid}", now, o), now)
    gate.running(pid)
    return o


def test_a_lower_tier_waits_for_a_higher_tier_of_another_decision() -> None:
    gate = ClusterGate()
    a = joined(gate, 1, orch({"a-hi": "high", "a-lo": "low"}))
    b = joined(gate, 2, orch({"b-hi": "high"}, delay=10))
    assert b.due(0) == ["b-hi"]
    assert a.due(0) == ["a-hi"]
    a.observe({"a-hi": ON}, 1)
    b.observe({"b-hi": ON}, 1)
    assert a.due(2) == []  # a's own high tier is ready, b's is not (10 s additional delay)
    assert a.gated == {1: "tier high of decision 2 (host h2) not ready"}
    assert a.why_held("a-lo", 2) == "held: tier high of decision 2 (host h2) not ready"
    assert a.due(11) == ["a-lo"]
    assert "no longer held (tier high of decision 2 (host h2) not ready before)" in a.why_open(
        1, 11
    )


def test_equal_tiers_do_not_wait_and_an_ended_peer_holds_no_one() -> None:
    gate = ClusterGate()
    a = joined(gate, 1, orch({"a-lo": "low"}))
    b = joined(gate, 2, orch({"b-hi": "high", "b-lo": "low"}))
    assert b.due(0) == ["b-hi"]
    assert a.due(0) == []  # a's only tier is low: b's high tier first
    gate.drop(2)  # b's task ended (its alerts resolved, or it failed)
    assert a.due(1) == ["a-lo"]
    c = joined(gate, 3, orch({"c-lo": "low"}))
    assert c.due(1) == ["c-lo"]  # low waits for no low


def test_a_peer_outside_the_window_or_never_started_is_ignored() -> None:
    gate = ClusterGate(window=60)
    b = orch({"b-hi": "high"})
    gate.register(KEY, Member(2, "host h2", 0.0, b), 0.0)  # planned, its task not started
    b.due(0)
    a = orch({"a-lo": "low"})
    gate.register(KEY, Member(1, "host h1", 30.0, a), 30.0)
    assert a.due(30) == []  # b is live (just planned) and within the window
    assert a.due(UNSTARTED_TTL + 1) == ["a-lo"]  # its task never came: released
    late = orch({"l-lo": "low"})
    gate.running(2)
    gate.register(KEY, Member(3, "host h3", 100.0, late), 100.0)
    assert late.due(100) == ["l-lo"]  # planned 100 s after b: another failure


def test_a_dependency_on_a_vm_of_another_decision_is_waited_for() -> None:
    gate = ClusterGate()
    dep = Dependency("app-after-db", frozenset({"app"}), frozenset({"db"}), mandatory=False)
    a = joined(gate, 1, orch({"app": "medium", "other": "medium"}, dependencies=[dep]))
    b = joined(gate, 2, orch({"db": "medium"}, delay=5))
    assert b.due(0) == ["db"]
    assert a.due(0) == ["other"]
    assert a.why_held("app", 0) == (
        "held: waits for db of decision 2 (host h2) to be ready (rule 'app-after-db')"
    )
    b.observe({"db": ON}, 1)
    assert a.due(5) == []
    assert a.due(6) == ["app"]


def test_a_dependency_on_a_vm_no_decision_restarts_or_of_lower_priority_is_not_waited_for() -> None:
    gate = ClusterGate()
    deps = [
        Dependency("on-running", frozenset({"x"}), frozenset({"running-vm"})),
        Dependency("on-lower", frozenset({"y"}), frozenset({"b-lo"})),
    ]
    a = joined(gate, 1, orch({"x": "high", "y": "high"}, dependencies=deps))
    b = joined(gate, 2, orch({"b-lo": "low"}))
    assert sorted(a.due(0)) == ["x", "y"]
    assert any("'on-lower'" in n and "lower-priority b-lo" in n for n in a.notes), a.notes
    assert b.due(0) == []  # and b's low tier waits for a's high one


def test_joining_or_leaving_wakes_the_other_decisions_of_the_cluster() -> None:
    import asyncio

    gate = ClusterGate()
    joined(gate, 1, orch({"a-lo": "low"}))
    member = gate.member(1)
    assert member is not None
    member.wake = asyncio.Event()
    joined(gate, 2, orch({"b-hi": "high"}))
    assert member.wake.is_set()  # a new peer: look again now (it may hold this one)
    member.wake.clear()
    gate.drop(2)
    assert member.wake.is_set()  # a peer gone: what it held may start now
