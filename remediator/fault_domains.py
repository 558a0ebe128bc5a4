"""Fault domains: down, partitioned, or unknown — and whether they are racks or sites.

A whole rack losing power is what HA exists for; a network partition that makes a rack
silent is what restarting elsewhere must never follow (the VMs still run there: restarting
them makes two). ``VsphereFaultDomainDown`` and ``VsphereClusterMassHostFailure`` inhibit
every restart, which is right while the cause may be a partition and wrong once the hosts
are confirmed down. The verdict below comes from a live read of every host of the domain:

* **down**: every host is silent to vCenter *and* confirmed dead — vSphere HA's master
  reports it ``hostDown`` (no network *and* no datastore heartbeats), or vCenter reports
  it powered off;
* **partitioned**: some host is silent to vCenter but HA says it is alive
  (``networkPartitionedFromMaster``, ``networkIsolated``, ``master``, ``connectedToMaster``):
  its VMs may still run, nothing is restarted;
* **unknown**: silent with nothing to confirm either way (no HA state on a cluster without
  HA): held until a person, the confirmation hook or (with ``fence_to_confirm``) the
  fencing hook confirms.

On a cluster without HA, vCenter has no conclusive live read (see :mod:`.confirm`): the
out-of-band confirmation hook (``host_failure.confirm_command``, a BMC's power status)
supplies it. Its "off" confirms a host down like HA's ``hostDown``; its "alive" makes the
domain a partition, on HA clusters too (a veto: HA's ``hostDown`` after a BMC said the
host is on is the one case where two witnesses disagree, and the cautious one wins);
* **up**: some host still answers.

Where fault domains are *sites* (the default), a VM stays in its own domain while it has
room there and site "should" rules are kept; only where the config says domains are
*racks* of one site is another domain preferred (its power feed or switch may take its
neighbours next).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from vcenter.mass_failure import FAULT_DOMAIN_MIN_HOSTS

from .confirm import ALIVE, DOWN_, FENCE, Confirmation
from .model import HostState

DOWN, PARTITIONED, UNKNOWN, UP = "down", "partitioned", "unknown", "up"
ALIVE_DAS_STATES = frozenset(
    {"master", "connectedToMaster", "networkPartitionedFromMaster", "networkIsolated"}
)
SITES, RACKS = "sites", "racks"


@dataclass(frozen=True)
class DomainVerdict:
    domain: str
    state: str
    reason: str
    hosts: tuple[str, ...] = ()

    @property
    def restart_elsewhere(self) -> bool:
        """Only a domain confirmed down is restarted elsewhere."""
        return self.state == DOWN


NO_CONFIRMATIONS: Mapping[str, Confirmation] = {}


def host_confirmed_down(
    h: HostState, ha_enabled: bool | None = None, confirmed: Confirmation | None = None
) -> bool:
    """Silent to vCenter and confirmed dead: HA's master says ``hostDown`` (only after the
    host's datastore heartbeats stopped too), vCenter reports it powered off, or the
    out-of-band hook (or a fence) says it is off."""
    das = h.das_state if ha_enabled is not False else ""
    hook = confirmed is not None and confirmed.result == DOWN_
    return not h.responding and (das == "hostDown" or h.power_state == "poweredOff" or hook)


def domain_state(
    domain: str,
    hosts: Iterable[HostState],
    ha_enabled: bool | None = None,
    confirmed: Mapping[str, Confirmation] = NO_CONFIRMATIONS,
) -> DomainVerdict:
    """The verdict on one fault domain from a live read of its hosts, and the
    confirmation hook's answers (host moid -> answer, only those still trusted).

    ``ha_enabled=False`` ignores ``runtime.dasHostState``: vSphere describes it only for
    hosts of an HA-enabled cluster (ClusterDasFdmHostState), so a stale value left from
    before HA was disabled proves nothing either way. ``None``: use it where present.
    """
    members = [h for h in hosts if h.fault_domain == domain]
    if ha_enabled is False:
        members = [replace(h, das_state="") for h in members]
    names = tuple(sorted(h.name for h in members))
    if not members:
        return DomainVerdict(domain, UNKNOWN, f"no host in fault domain {domain}", names)
    answering = [h.name for h in members if h.responding]
    if answering:
        return DomainVerdict(domain, UP, f"{', '.join(sorted(answering))} still answer", names)
    alive = [h for h in members if h.das_state in ALIVE_DAS_STATES]
    if alive:
        who = ", ".join(f"{h.name} ({h.das_state})" for h in sorted(alive, key=lambda h: h.name))
        return DomainVerdict(
            domain,
            PARTITIONED,
            f"fault domain {domain} is silent to vCenter but vSphere HA sees {who} alive: "
            "a partition, its VMs may still run; nothing restarted",
            names,
        )
    said_alive = [confirmed[h.moid] for h in members if _said(confirmed, h, ALIVE)]
    if said_alive:
        who = "; ".join(c.describe() for c in sorted(said_alive, key=lambda c: c.host))
        return DomainVerdict(
            domain,
            PARTITIONED,
            f"fault domain {domain} is silent to vCenter but the confirmation hook says "
            f"{', '.join(sorted(c.host for c in said_alive))} alive ({who}): a partition, "
            "its VMs may still run; nothing restarted",
            names,
        )
    # On an HA cluster HA's hostDown stays the confirmation: an "off" there does not
    # replace it (each host's restart waits for hostDown anyway); "alive" vetoes, above.
    offs = confirmed if ha_enabled is not True else NO_CONFIRMATIONS
    unconfirmed = [h for h in members if not host_confirmed_down(h, None, offs.get(h.moid))]
    if unconfirmed:
        why = ", ".join(
            offs[h.moid].describe() if h.moid in offs else h.name
            for h in sorted(unconfirmed, key=lambda h: h.name)
        )
        return DomainVerdict(
            domain,
            UNKNOWN,
            f"fault domain {domain} is silent, but {why} cannot be confirmed down (no HA "
            "state, not reported powered off, no confirmation hook answer 'off'): held",
            names,
        )
    return DomainVerdict(
        domain,
        DOWN,
        f"every host of fault domain {domain} is confirmed down ({_how(members, offs)}): "
        "its VMs are restarted elsewhere",
        names,
    )


def _said(confirmed: Mapping[str, Confirmation], h: HostState, result: str) -> bool:
    c = confirmed.get(h.moid)
    return c is not None and c.result == result


def _how(members: list[HostState], confirmed: Mapping[str, Confirmation]) -> str:
    """Which witnesses confirmed the domain down, for the journal."""
    how: set[str] = set()
    for h in members:
        c = confirmed.get(h.moid)
        if h.das_state == "hostDown":
            how.add("HA hostDown")
        elif h.power_state == "poweredOff":
            how.add("powered off")
        elif c is not None and c.source == FENCE:
            how.add("fenced")
        else:
            how.add("confirmation hook: off")
    return ", ".join(sorted(how))


def confirmed_down_hosts(
    hosts: Iterable[HostState],
    ha_enabled: bool | None = None,
    min_hosts: int = FAULT_DOMAIN_MIN_HOSTS,
    confirmed: Mapping[str, Confirmation] = NO_CONFIRMATIONS,
) -> set[str]:
    """Moids of the hosts of every fault domain (of at least ``min_hosts`` hosts) that is
    confirmed down as a whole.

    The mass-failure guard leaves these out of its count: a rack that lost power is a
    real failure, not a sign that the remediator looks through a broken network. A
    one-host "domain" is just a host, counted like any other (as the rules leave it to
    the per-host alerts)."""
    hosts = list(hosts)
    out: set[str] = set()
    for d in {h.fault_domain for h in hosts if h.fault_domain}:
        members = {h.moid for h in hosts if h.fault_domain == d}
        verdict = domain_state(d, hosts, ha_enabled, confirmed)
        if len(members) >= min_hosts and verdict.state == DOWN:
            out |= members
    return out


def prefer_other_domain(domains_are: str, legacy_prefer_other: bool | None = None) -> bool:
    """Whether placement prefers a host outside the failed host's fault domain."""
    if domains_are == RACKS:
        return True if legacy_prefer_other is None else legacy_prefer_other
    return False
