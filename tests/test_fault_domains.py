"""remediator.fault_domains: a rack confirmed down is restarted elsewhere, a partition never."""

from __future__ import annotations

from typing import Any

from remediator.config import GuardConfig
from remediator.domain_failure import plan_domain
from remediator.fault_domains import (
    DOWN,
    PARTITIONED,
    UNKNOWN,
    UP,
    domain_state,
    prefer_other_domain,
)
from remediator.guard import MassFailureGuard
from remediator.model import HostState
from remediator.policy import DEFER, PLAN
from vcenter.mass_failure import MAX_FAILED_HOSTS, MAX_FAILED_SHARE

from .remediator_fixtures import host as rhost
from .remediator_fixtures import rconfig, snapshot, vm


def host(
    name: str, fd: str, conn: str = "notResponding", power: str = "unknown", das: str = ""
) -> HostState:
    return HostState(
        name, name, fault_domain=fd, connection_state=conn, power_state=power, das_state=das
    )


def test_domain_states() -> None:
    down = [
        host("a1", "a", das="hostDown"),
        host("a2", "a", power="poweredOff"),
        host("b1", "b", "connected", "poweredOn", "master"),
    ]
    v = domain_state("a", down)
    assert v.state == DOWN and v.restart_elsewhere and v.hosts == ("a1", "a2")
    part = [host("a1", "a", das="hostDown"), host("a2", "a", das="networkPartitionedFromMaster")]
    v = domain_state("a", part)
    assert (
        v.state == PARTITIONED
        and not v.restart_elsewhere
        and "a2 (networkPartitionedFromMaster)" in v.reason
    )
    silent = [host("a1", "a"), host("a2", "a", das="hostDown")]
    assert domain_state("a", silent).state == UNKNOWN  # no HA state to confirm a1
    assert domain_state("b", down).state == UP
    assert domain_state("z", down).state == UNKNOWN


def test_sites_keep_vms_at_home() -> None:
    assert not prefer_other_domain("sites")
    assert not prefer_other_domain("sites", True)
    assert prefer_other_domain("racks")
    assert not prefer_other_domain("racks", False)


def test_guard_leaves_a_confirmed_down_domain_out_of_its_count() -> None:
    """3 of 6 hosts failed trips the guard, unless they are one fault domain confirmed
    down; a partitioned domain, or one more failed host elsewhere, still counts."""
    cfg = GuardConfig()  # the shared defaults: 2 hosts, 34 %
    assert (cfg.max_failed_hosts, cfg.max_failed_share) == (MAX_FAILED_HOSTS, MAX_FAILED_SHARE)
    up = [
        HostState(f"b{i}", f"b{i}", fault_domain="b", das_state="connectedToMaster")
        for i in range(3)
    ]
    down = [host(f"a{i}", "a", das="hostDown") for i in range(3)]
    g = MassFailureGuard(cfg)
    g.observe("vc", "c", down + up, 100.0, ha_enabled=True)
    assert not g.verdict("vc", "c", 100.0).tripped
    # HA disabled: dasHostState proves nothing (stale), so the domain is unconfirmed
    g.observe("vc", "c", down + up, 101.0, ha_enabled=False)
    assert g.verdict("vc", "c", 101.0).tripped
    part = [host("a0", "a", das="hostDown"), host("a1", "a", das="networkPartitionedFromMaster")]
    part.append(host("a2", "a", das="hostDown"))
    g = MassFailureGuard(cfg)
    g.observe("vc", "c", part + up, 100.0, ha_enabled=True)
    v = g.verdict("vc", "c", 100.0)
    assert v.tripped and v.failed == 3
    # the domain down, and 2 of the 3 others failed as well: those 2 trip it (67 % > 34 %)
    g = MassFailureGuard(cfg)
    others = [host("b0", "b"), host("b1", "b"), up[2]]
    g.observe("vc", "c", down + others, 100.0, ha_enabled=True)
    v = g.verdict("vc", "c", 100.0)
    assert v.tripped and (v.failed, v.total) == (2, 3) and "confirmed down" in v.reason


def test_a_one_host_domain_is_a_host_for_the_guard() -> None:
    """Two failed hosts, one of them a one-host "domain" confirmed down: both count (the
    rules leave such a domain to the per-host alerts: fault_domains.min_hosts)."""
    hosts = [host("a0", "a", das="hostDown"), host("b0", "b", das="hostDown")]
    hosts.append(HostState("b1", "b1", fault_domain="b", das_state="master"))
    g = MassFailureGuard(GuardConfig())
    g.observe("vc", "c", hosts, 100.0, ha_enabled=True)
    v = g.verdict("vc", "c", 100.0)
    assert v.tripped and (v.failed, v.total) == (2, 3)


def test_a_down_domain_shares_the_survivors_capacity() -> None:
    """Two hosts of fd-a confirmed down, one VM each reserving 3 GB, one survivor with
    4 GB: the first VM (by host name) fits, the second does not, because the plan carries
    the first placement into the second host's decision (planned host by host, each would
    fit alone)."""
    down = {"connection_state": "notResponding", "das_state": "hostDown"}
    hosts = [
        rhost("host-1", "fd-a", **down),
        rhost("host-2", "fd-a", **down),
        rhost("host-3", "fd-b", memory_capacity_mb=4096.0),
    ]
    vms = [
        vm("vm-1", "host-1", memory_reservation_mb=3000.0),
        vm("vm-2", "host-2", memory_reservation_mb=3000.0),
    ]
    snap = snapshot(hosts, vms)
    assert domain_state("fd-a", hosts, True).state == DOWN
    memory: dict[str, Any] = {}
    d = plan_domain("vc1", 1000.0, snap, hosts[:2], rconfig(), 1010.0, None, memory, {})
    assert d.outcome == PLAN, d.reason
    assert "fault domain fd-a confirmed down (2 hosts)" in d.reason
    got = {s.vm_id: (s.state, s.target_host_id) for s in d.steps}
    assert got == {"vm-1": ("pending", "host-3"), "vm-2": ("unplaced", "")}
    assert set(memory["hosts"]) == {"host-1", "host-2"}
    # confirmation still applies to every host: the whole domain waits
    slow = rconfig(host_failure={"confirm_seconds": 60})
    wait = plan_domain("vc1", 1000.0, snap, hosts[:2], slow, 1010.0, None, {}, {})
    assert wait.outcome == DEFER and "esx-1: confirming failure" in wait.reason
