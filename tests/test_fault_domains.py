"""remediator.fault_domains: a rack confirmed down is restarted elsewhere, a partition never."""

from __future__ import annotations

from remediator.fault_domains import (
    DOWN,
    PARTITIONED,
    UNKNOWN,
    UP,
    domain_state,
    prefer_other_domain,
)
from remediator.model import HostState


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
