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

vSphere HA orders *all* of a cluster's failed VMs together, while the remediator has one
decision per failed host. Two optional hooks make one decision's orchestration part of
the cluster's (remediator/cluster_gate.py supplies both): ``gate`` says why a tier of a
given rank may not open yet (a higher tier of another decision is not done), ``foreign``
reports on a VM another decision restarts, so a dependency on it is honoured.
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


@dataclass(frozen=True)
class Foreign:
    """A VM another live decision of the cluster restarts, as a dependency sees it."""

    rank: int
    ready: bool
    started: float | None
    where: str  # "decision 5 (host esx-2)"


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
    # rank of a tier about to open -> why it may not (another decision's tier), or None
    gate: Callable[[int, float], str | None] | None = None
    # a VM outside this decision -> its state in the decision restarting it, or None
    foreign: Callable[[str, float], Foreign | None] | None = None

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
        # on VMs outside this decision: resolved through ``foreign`` when asked
        self._outside: dict[str, list[tuple[frozenset[str], bool, str]]] = {}
        self.gated: dict[int, str] = {}  # tier -> why the gate holds it (last due())
        self.was_gated: dict[int, str] = {}  # tier -> the last reason the gate held it
        self.dep_held: dict[str, str] = {}  # VM -> the outside VM it waits on (last due())
        self._noted_outside: set[tuple[str, str]] = set()
        for d in self.dependencies:
            needed = frozenset(v for v in d.depends_on if v in self._track)
            outside = frozenset(v for v in d.depends_on if v not in self._track)
            for vm in d.vms:
                if vm not in self._track:
                    continue
                if outside - {vm}:
                    self._outside.setdefault(vm, []).append((outside - {vm}, d.mandatory, d.name))
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

    def _outside_ok(self, vm: str, now: float) -> bool:
        """Dependencies on VMs of other decisions: a VM no live decision restarts is not
        waited for; a lower-priority one is ignored, as vSphere refuses such a rule."""
        if self.foreign is None:
            return True
        mine = RANK.get(self.priorities[vm], 0)
        for needed, mandatory, name in self._outside.get(vm, []):
            for n in sorted(needed):
                st = self.foreign(n, now)
                if st is None or st.ready:
                    continue
                if st.rank < mine:
                    if (vm, n) not in self._noted_outside:
                        self._noted_outside.add((vm, n))
                        self.notes.append(
                            f"dependency rule {name!r}: {vm} may not wait for lower-priority "
                            f"{n} ({st.where}): ignored for it"
                        )
                    continue
                if (
                    not mandatory
                    and st.started is not None
                    and now >= st.started + self.timeout(vm)
                ):
                    continue
                self.dep_held[vm] = f"waits for {n} of {st.where} to be ready (rule {name!r})"
                return False
        return True

    def _deps_ok(self, vm: str, now: float) -> bool:
        if not self._outside_ok(vm, now):
            return False
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
        self.gated, self.dep_held = {}, {}
        for i, tier in enumerate(self.tiers):
            if self.gate is not None and any(
                self._track[vm].started is None and not self._track[vm].failed for vm in tier
            ):
                held = self.gate(RANK.get(self.priority_of(i), 0), now)
                if held:
                    self.gated[i] = self.was_gated[i] = held
                    break
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
        return bool(self._waits) or bool(self._outside)

    def waits_for(self, vm: str) -> list[str]:
        """Names of the dependency rules this VM waits on."""
        waits = [*self._waits.get(vm, []), *self._outside.get(vm, [])]
        return sorted({name for _, _, name in waits})

    def tier_done(self, i: int, now: float) -> bool:
        """Every VM of tier ``i`` ready, or its timeout passed (what a peer waits for)."""
        return self._tier_done(i, now)[0]

    def all_done(self, now: float) -> bool:
        return all(self._tier_done(i, now)[0] for i in range(len(self.tiers)))

    def state_of(self, vm: str, now: float, where: str) -> Foreign:
        """What a dependency of another decision sees of ``vm``."""
        t = self._track[vm]
        return Foreign(RANK.get(self.priorities[vm], 0), self.ready(vm, now), t.started, where)

    def why_held(
        self, vm: str, now: float, judged: dict[int, tuple[bool, str]] | None = None
    ) -> str:
        """Why ``vm`` was not started by the last :meth:`due` (a journal reason).
        ``judged``: tiers already judged at ``now`` (:meth:`why_held_all`), filled in."""
        i = self._track[vm].tier
        if i in self.gated:
            return f"held: {self.gated[i]}"
        if vm in self.dep_held:
            return f"held: {self.dep_held[vm]}"
        judged = {} if judged is None else judged
        if i > 0 and i - 1 not in judged:
            judged[i - 1] = self._tier_done(i - 1, now)
        if i > 0 and not judged[i - 1][0]:
            n, mine, above = len(self.tiers), self.priority_of(i), self.priority_of(i - 1)
            return f"held: tier {i + 1} of {n} ({mine}) waits for tier {i} ({above}) to be ready"
        if any(i2 in self.gated for i2 in range(i)):
            return f"held: {next(self.gated[i2] for i2 in range(i) if i2 in self.gated)}"
        return f"held: waits for the VMs it depends on (rules {', '.join(self.waits_for(vm))})"

    def why_held_all(self, vms: Iterable[str], now: float) -> dict[str, str]:
        """:meth:`why_held` of each of ``vms``, each tier above judged once: judged per VM,
        a pass over a decision's held VMs (every second, per failed host) cost time
        quadratic in a tier's size, on the interpreter every step also needs."""
        judged: dict[int, tuple[bool, str]] = {}
        return {vm: self.why_held(vm, now, judged) for vm in vms}

    def why_open(self, i: int, now: float) -> str:
        """Why tier ``i`` may start: the tier above it is ready, or its timeout passed."""
        after = f"; no longer held ({self.was_gated[i]} before)" if i in self.was_gated else ""
        if i == 0:
            return f"highest tier, started first{after}"
        done, how = self._tier_done(i - 1, now)
        above = f"tier {i} ({self.priority_of(i - 1)})"
        if done and how.startswith("timeout"):
            return f"{above} not ready: {how}{after}"
        return f"{above} ready{after}"

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
