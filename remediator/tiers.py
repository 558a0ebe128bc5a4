"""Orchestrated restarts, as vSphere HA orders them: priority tiers and VM-VM dependencies.

vSphere HA (ClusterOrchestrationInfo) restarts failed VMs highest priority first; a lower
tier starts once every VM of the tier above is *ready* — its readiness condition met
(``ClusterVmReadiness.readyCondition``: ``none``, ``poweredOn``, ``guestHbStatusGreen``,
``appHbStatusGreen``; the vSphere Client's "start next priority VMs when") plus
``postReadyDelay`` ("additional delay") — or once ``restartPriorityTimeout`` has passed
since the tier started. A VM-VM dependency rule (ClusterDependencyRuleInfo) holds the VMs
of ``vmGroup`` until every VM of ``dependsOnVmGroup`` is ready; a mandatory rule waits
without the timeout.

:class:`Orchestration` is a pure state machine over a clock the caller passes in: the
engine asks :meth:`Orchestration.due` which VMs may start now, reports each start and
each VM's state, and sleeps :meth:`Orchestration.next_check` at most. Tests drive it with
a fake clock; the engine with ``time.monotonic()``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .ha_settings import PRIORITIES, Dependency, Readiness

RANK = {p: i for i, p in enumerate(PRIORITIES)}  # disabled 0 ... highest 5


@dataclass(frozen=True)
class VmReady:
    """What readiness is judged on: one live read of the VM."""

    power_state: str = "poweredOff"
    guest_heartbeat: str = "gray"
    app_heartbeat: str = ""


def condition_met(condition: str, state: VmReady) -> bool:
    if condition in ("", "none"):
        return True
    if state.power_state != "poweredOn":
        return False
    if condition == "poweredOn":
        return True
    if condition == "guestHbStatusGreen":
        return state.guest_heartbeat == "green"
    if condition == "appHbStatusGreen":
        return state.app_heartbeat in ("appStatusGreen", "green")
    return False


@dataclass
class _Track:
    tier: int
    started: float | None = None
    met_at: float | None = None  # when its condition was first seen met
    failed: bool = False


@dataclass
class Orchestration:
    """The restart order of one failure: tiers by priority, dependencies, readiness."""

    priorities: Mapping[str, str]  # VM -> restart priority (disabled VMs are dropped)
    readiness: Callable[[str], Readiness] = lambda _vm: Readiness()
    timeout: Callable[[str], float] = lambda _vm: 600.0
    dependencies: Sequence[Dependency] = ()
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        ranks = sorted(
            {RANK[p] for p in self.priorities.values() if RANK.get(p, 0) > 0}, reverse=True
        )
        self.tiers: list[list[str]] = [
            sorted(vm for vm, p in self.priorities.items() if RANK.get(p, 0) == r) for r in ranks
        ]
        self._track = {vm: _Track(i) for i, tier in enumerate(self.tiers) for vm in tier}
        self._tier_started: dict[int, float] = {}
        self._timed_out: set[int] = set()
        self._waits: dict[str, list[tuple[frozenset[str], bool, str]]] = {}
        for d in self.dependencies:
            needed = frozenset(v for v in d.depends_on if v in self._track)
            for vm in d.vms:
                if vm not in self._track:
                    continue
                lower = {n for n in needed if self._track[n].tier > self._track[vm].tier}
                if lower:
                    # vSphere refuses a higher-priority VM depending on a lower one
                    self.notes.append(
                        f"dependency rule {d.name!r}: {vm} may not wait for lower-priority "
                        f"{', '.join(sorted(lower))}: ignored for them"
                    )
                if needed - {vm} - lower:
                    self._waits.setdefault(vm, []).append(
                        (needed - {vm} - lower, d.mandatory, d.name)
                    )
        self._drop_cycles()

    def _drop_cycles(self) -> None:
        """vSphere refuses cyclic dependencies; one that slipped through is ignored, noted."""
        for vm in sorted(self._waits):
            seen: set[str] = set()
            stack = [n for needed, _, _ in self._waits.get(vm, []) for n in needed]
            while stack:
                cur = stack.pop()
                if cur == vm:
                    names = ", ".join(sorted({w[2] for w in self._waits[vm]}))
                    self.notes.append(
                        f"dependency rules ({names}) are cyclic through {vm}: ignored for it"
                    )
                    del self._waits[vm]
                    break
                if cur in seen:
                    continue
                seen.add(cur)
                stack.extend(n for needed, _, _ in self._waits.get(cur, []) for n in needed)

    # --- state -------------------------------------------------------------------------

    def started(self, vm: str, now: float) -> None:
        t = self._track[vm]
        t.started = now
        self._tier_started.setdefault(t.tier, now)
        if self.readiness(vm).condition in ("", "none"):
            t.met_at = now  # ready as soon as its start is issued

    def failed(self, vm: str, now: float, why: str = "could not be started") -> None:
        """A VM that could not be started no longer holds anyone back (noted)."""
        self._track[vm].failed = True
        self._tier_started.setdefault(self._track[vm].tier, now)
        self.notes.append(f"{vm} {why}: it no longer holds later tiers")

    def observe(self, states: Mapping[str, VmReady], now: float) -> None:
        for vm, state in states.items():
            t = self._track.get(vm)
            if t is None or t.started is None or t.met_at is not None:
                continue
            if condition_met(self.readiness(vm).condition, state):
                t.met_at = now

    def ready(self, vm: str, now: float) -> bool:
        t = self._track[vm]
        if t.failed:
            return True
        if t.started is None or t.met_at is None:
            return False
        return now >= t.met_at + max(0.0, self.readiness(vm).post_ready_delay)

    def _tier_done(self, i: int, now: float) -> tuple[bool, str]:
        tier = self.tiers[i]
        if all(self.ready(vm, now) for vm in tier):
            return True, "ready"
        begun = self._tier_started.get(i)
        if begun is not None and all(
            self._track[vm].started is not None or self._track[vm].failed for vm in tier
        ):
            limit = max(self.timeout(vm) for vm in tier)
            if now >= begun + limit:
                return True, f"timeout after {limit:.0f} s"
        return False, ""

    def _deps_ok(self, vm: str, now: float) -> bool:
        for needed, mandatory, _ in self._waits.get(vm, []):
            if all(self.ready(n, now) for n in needed):
                continue
            starts = [self._track[n].started for n in needed if self._track[n].started is not None]
            if not mandatory and starts and len(starts) == len(needed):
                if now >= max(s for s in starts if s is not None) + self.timeout(vm):
                    continue
            return False
        return True

    def due(self, now: float) -> list[str]:
        """VMs to start now (their tier is open, their dependencies ready); each is marked
        started at ``now`` — report a start that failed with :meth:`failed`."""
        out: list[str] = []
        for i, tier in enumerate(self.tiers):
            for vm in tier:
                t = self._track[vm]
                if t.started is None and not t.failed and self._deps_ok(vm, now):
                    out.append(vm)
                    self.started(vm, now)
            done, how = self._tier_done(i, now)
            if not done:
                break
            if how.startswith("timeout") and i not in self._timed_out and i + 1 < len(self.tiers):
                self._timed_out.add(i)  # tiers count from 1 in what people read
                self.notes.append(f"tier {i + 1} ({self.priority_of(i)}): {how}, next tier started")
        return out

    # --- what the engine's orchestrator (remediator/orchestrate.py) asks ---------------

    def tier_of(self, vm: str) -> int:
        return self._track[vm].tier

    def is_started(self, vm: str) -> bool:
        return self._track[vm].started is not None

    def settled(self, vm: str) -> bool:
        """Its readiness is known: its condition was seen met, or it could not start."""
        t = self._track[vm]
        return t.failed or t.met_at is not None

    @property
    def has_dependencies(self) -> bool:
        return bool(self._waits)

    def waits_for(self, vm: str) -> list[str]:
        """Names of the dependency rules this VM waits on."""
        return sorted({name for _, _, name in self._waits.get(vm, [])})

    def why_open(self, i: int, now: float) -> str:
        """Why tier ``i`` may start: the tier above it is ready, or its timeout passed."""
        if i == 0:
            return "highest tier, started first"
        done, how = self._tier_done(i - 1, now)
        above = f"tier {i} ({self.priority_of(i - 1)})"
        if done and how.startswith("timeout"):
            return f"{above} not ready: {how}"
        return f"{above} ready"

    def priority_of(self, i: int) -> str:
        return self.priorities[self.tiers[i][0]] if self.tiers[i] else ""

    def finished(self) -> bool:
        return all(t.started is not None or t.failed for t in self._track.values())

    def next_check(self, now: float, poll: float = 1.0) -> float:
        """Seconds until something can change without a new observation (at most ``poll``)."""
        times = [
            t.met_at + self.readiness(vm).post_ready_delay - now
            for vm, t in self._track.items()
            if t.met_at is not None and t.met_at + self.readiness(vm).post_ready_delay > now
        ]
        return max(0.0, min([poll, *times]))


def plan(priorities: Mapping[str, str], dependencies: Iterable[Dependency] = ()) -> list[list[str]]:
    """The tiers alone (no clock): VM lists, highest priority first, disabled left out."""
    return Orchestration(priorities, dependencies=list(dependencies)).tiers
