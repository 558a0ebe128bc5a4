"""Restart orchestration across decisions: one cluster's failed VMs ordered together.

vSphere HA orders *all* of a cluster's failed VMs by restart priority. The remediator has
one decision per alert (one failed host's ``restart_host_vms``, one fault domain, one
``restart_vm``), each with its own :class:`~.tiers.Orchestration`; this gate joins them:

* every orchestrated decision registers here when it is planned (``orchestrate.prepare``,
  under the cluster's lock, so two decisions prepared at once see each other), and after a
  restart of the remediator when its orchestration is rebuilt from the journal;
* a tier of rank *p* of one decision does not open while a tier of higher rank of another
  live decision of the same cluster, planned within ``cluster_window_seconds`` of it, is
  not done (every VM ready, or its timeout passed; a VM whose restart failed holds no one);
* a VM-VM dependency on a VM another decision restarts is answered from that decision;
* a decision accepted within ``batch_seconds`` of an alert of the same cluster that is not
  decided yet waits (at most that long) for it to be planned, so that alerts arriving
  together (one delivery, or close together) are tiered as one failure;
* a decision whose task ended (every tier done, its alerts resolved, or a failure) is
  dropped, so it never holds anyone; one registered but never started (its plan failed)
  expires after :data:`UNSTARTED_TTL`.

The members are in memory, in the event loop's thread: nothing here blocks or awaits
except the per-cluster lock.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from .tiers import RANK, Foreign, Orchestration

UNSTARTED_TTL = 60.0  # s a registered decision may go without its task before it is ignored


@dataclass
class Member:
    """One decision's orchestration, as its peers in the cluster see it."""

    parent_id: int
    label: str  # "host esx-2", "VM web-1", "fault domain fd-a"
    planned_at: float
    orch: Orchestration
    running: bool = False  # its task runs (Orchestrators._spawn)
    awaiting: tuple[str, ...] = ()  # undecided alerts of the cluster it waits for
    await_until: float = 0.0
    registered_at: float = 0.0
    wake: asyncio.Event | None = None  # set when a peer joins, ends, or finishes a tier

    @property
    def where(self) -> str:
        return f"decision {self.parent_id} ({self.label})"


def label(kind: str, host: str, vm: str, fault_domain: str) -> str:
    if kind == "restart_vm":
        return f"VM {vm}"
    if fault_domain and not host:
        return f"fault domain {fault_domain}"
    return f"host {host}" if host else f"VM {vm}"


class ClusterGate:
    """The live orchestrated decisions of every cluster, keyed ``vcenter/cluster moid``."""

    def __init__(self, window: float = 600.0) -> None:
        self.window = window
        self._members: dict[str, dict[int, Member]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def register(self, key: str, m: Member, now: float) -> None:
        """Join the cluster; ``m.orch`` then consults its peers."""
        m.planned_at = m.planned_at or now
        self._members.setdefault(key, {})[m.parent_id] = m
        m.registered_at = now
        self.poke(key, m.parent_id)
        m.orch.gate = lambda rank, t: self.hold(key, m.parent_id, rank, t)
        m.orch.foreign = lambda vm, t: self.foreign(key, m.parent_id, vm, t)

    def member(self, parent_id: int) -> Member | None:
        for members in self._members.values():
            if parent_id in members:
                return members[parent_id]
        return None

    def known(self, key: str) -> set[int]:
        return set(self._members.get(key, {}))

    def running(self, parent_id: int) -> None:
        m = self.member(parent_id)
        if m is not None:
            m.running = True

    def drop(self, parent_id: int) -> None:
        """The decision no longer holds anyone: its task ended, or nothing waits on it."""
        for key, members in list(self._members.items()):
            if members.pop(parent_id, None) is not None:
                self.poke(key, parent_id)
                if not members:
                    del self._members[key]

    def poke(self, key: str, parent_id: int) -> None:
        """Something the cluster's other decisions may wait on changed: look now."""
        for pid, m in self._members.get(key, {}).items():
            if pid != parent_id and m.wake is not None:
                m.wake.set()

    def _live(self, m: Member, now: float) -> bool:
        return m.running or now - m.registered_at < UNSTARTED_TTL

    def peers(self, key: str, parent_id: int, now: float) -> list[Member]:
        """The other live decisions of the cluster planned within the window of this one."""
        members = self._members.get(key, {})
        me = members.get(parent_id)
        if me is None:
            return []
        return [
            m
            for pid, m in sorted(members.items())
            if pid != parent_id
            and self._live(m, now)
            and abs(m.planned_at - me.planned_at) <= self.window
        ]

    def has_peers(self, key: str, now: float) -> bool:
        return any(self._live(m, now) for m in self._members.get(key, {}).values())

    def hold(self, key: str, parent_id: int, rank: int, now: float) -> str | None:
        """Why a tier of ``rank`` of this decision may not open now, or None."""
        me = self._members.get(key, {}).get(parent_id)
        if me is not None and me.awaiting and now < me.await_until:
            return f"waits for {', '.join(me.awaiting)} of the same cluster to be planned"
        for m in self.peers(key, parent_id, now):
            o = m.orch
            for j in range(len(o.tiers)):
                prio = o.priority_of(j)
                if RANK.get(prio, 0) <= rank:
                    break  # tiers run highest first: the rest are not above this one
                if not o.tier_done(j, now):
                    return f"tier {prio} of {m.where} not ready"
        return None

    def foreign(self, key: str, parent_id: int, vm: str, now: float) -> Foreign | None:
        """A VM of another live decision of the cluster (a dependency), or None."""
        for m in self.peers(key, parent_id, now):
            if vm in m.orch.priorities and RANK.get(m.orch.priorities[vm], 0) > 0:
                return m.orch.state_of(vm, now, m.where)
        return None
