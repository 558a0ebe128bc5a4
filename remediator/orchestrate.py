"""Orchestrated restarts in the work loop: one failure's restarts start tier by tier.

vSphere HA restarts a failed host's VMs highest restart priority first and starts the next
tier only when every VM of the tier above is *ready* (the cluster's "start next priority
VMs when": ``ClusterOrchestrationInfo.defaultVmReadiness.readyCondition``, per VM
``vmOrchestration``), plus the additional delay (``postReadyDelay``), or when the tier's
``restartPriorityTimeout`` has passed; a VM-VM dependency rule (``ClusterDependencyRuleInfo``)
holds its VMs until the VMs they depend on are ready. :mod:`.tiers` is that state machine;
this module drives it for one decision's restart steps:

* at plan time (:func:`prepare`) the cluster's settings are read live and every restart
  step that may not start yet is journaled *held*: pending with a ``not_before`` far in the
  future, so the scheduler never claims it; its reason says what it waits for;
* one asyncio task per decision (:class:`Orchestrators`) then watches the started VMs'
  readiness live (``runtime.powerState``, ``guestHeartbeatStatus``,
  ``guest.appHeartbeatStatus``: one property-collector call for all of them), releases the
  next tier's steps when :class:`~.tiers.Orchestration` says so, and journals each tier's
  start on the decision with its reason (the tier above ready, or its timeout passed);
* a restarted remediator picks held steps up again (:meth:`Orchestrators.resume`);
* decisions of one cluster are ordered together, as vSphere HA orders all of a cluster's
  failed VMs (:mod:`.cluster_gate`): a lower tier of one waits for the higher tiers of the
  others, a dependency on another decision's VM is waited for.

Where the cluster sets no orchestration (readiness ``none``, vSphere's default) and the
remediator is the one restarting, the stack's ``remediator.orchestration`` section supplies
the defaults (docs/remediator.md, "Orchestrated restarts").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from vcenter.session import describe

from . import policy
from .cluster_gate import ClusterGate, Member, label
from .ha_settings import DEFAULT_PRIORITY_TIMEOUT, ClusterHA, Readiness, read_ha
from .journal import DONE, DRY_RUN, PENDING, SKIPPED, TERMINAL, Action
from .tiers import Orchestration, VmReady

if TYPE_CHECKING:
    from .config import RemediatorConfig
    from .engine import Engine

log = logging.getLogger("remediator")

HELD_FOR = 10 * 365 * 86400.0  # a held step's not_before lies this far ahead...
HELD_AFTER = 1e8  # ...and any not_before this far ahead of now marks a held step
KEY = "orchestration"  # the step detail that carries its tier
READY_PATHS = ["runtime.powerState", "guestHeartbeatStatus", "guest.appHeartbeatStatus"]
RESTART_KINDS = ("restart_host_vms", "restart_fault_domain_vms", "restart_vm")


def effective(cluster: ClusterHA | None, cluster_id: str, rcfg: RemediatorConfig) -> ClusterHA:
    """The cluster's orchestration settings, with the stack's defaults where it sets none
    and the remediator, not vSphere HA, restarts its VMs."""
    base = cluster or ClusterHA(moid=cluster_id, name="")
    remediator_restarts = not base.enabled or not rcfg.ha.defer_to_ha
    if not remediator_restarts or base.readiness != Readiness():
        return base
    cfg = rcfg.orchestration
    timeout = base.priority_timeout
    if timeout == DEFAULT_PRIORITY_TIMEOUT:
        timeout = cfg.timeout_seconds
    return replace(
        base,
        readiness=Readiness(cfg.ready_condition, cfg.post_ready_delay_seconds),
        priority_timeout=timeout,
    )


def build(cluster: ClusterHA, priorities: Mapping[str, str]) -> Orchestration:
    return Orchestration(
        dict(priorities),
        readiness=cluster.readiness_of,
        timeout=cluster.priority_timeout_of,
        dependencies=list(cluster.dependencies),
    )


def describe_readiness(cluster: ClusterHA, vm: str) -> str:
    r = cluster.readiness_of(vm)
    delay = f" + {r.post_ready_delay:g} s" if r.post_ready_delay else ""
    return f"{r.condition}{delay}, timeout {cluster.priority_timeout_of(vm):g} s"


def read_ready(session: Any, moids: Sequence[str]) -> dict[str, VmReady]:
    """Power state and heartbeats of ``moids`` (one call); a VM gone is left out."""
    from pyVmomi import vim, vmodl

    if not moids:
        return {}
    pc = vmodl.query.PropertyCollector
    objs = [pc.ObjectSpec(obj=session.stub_obj(vim.VirtualMachine, m), skip=False) for m in moids]
    specs = [pc.PropertySpec(type=vim.VirtualMachine, pathSet=READY_PATHS)]
    out: dict[str, VmReady] = {}
    # as plain XML (remediator/plain_reads.py): polled every second per failed host
    for content in session.retrieve(specs, objs, plain=True):
        if not content.propSet:
            continue
        p = {prop.name: prop.val for prop in content.propSet}
        out[str(content.obj._moId)] = VmReady(
            power_state=str(p.get("runtime.powerState") or "poweredOff"),
            guest_heartbeat=str(p.get("guestHeartbeatStatus") or "gray"),
            app_heartbeat=str(p.get("guest.appHeartbeatStatus") or ""),
        )
    return out


def _cluster_read(session: Any, cluster_id: str) -> ClusterHA | None:
    return read_ha(session, cluster_id, []).cluster


def orchestrated(cluster: ClusterHA, orch: Orchestration) -> bool:
    """Whether anything of the decision is ordered at all: a VM with a readiness condition
    (else every tier is done as soon as it starts), or a dependency rule on its VMs."""
    return orch.has_dependencies or any(
        cluster.readiness_of(vm).condition not in ("", "none") for vm in orch.priorities
    )


async def _undecided(
    engine: Engine, a: Action, cluster: str, gate: ClusterGate, key: str
) -> tuple[str, ...]:
    """Alerts of the cluster accepted within ``batch_seconds`` of this one and not decided
    yet (nor registered): this decision waits for them to be planned first."""
    batch = engine.rcfg.orchestration.batch_seconds
    if batch <= 0 or not cluster or engine.clock() >= a.created_at + batch:
        return ()
    rows = await engine.db(
        engine.j.undecided,
        a.vcenter,
        cluster,
        RESTART_KINDS,
        a.created_at - batch,
        a.created_at + batch,
    )
    known = gate.known(key) | {a.id}
    return tuple(
        f"decision {r.id} ({label(r.kind, r.host, r.vm, r.fault_domain)})"
        for r in rows
        if r.id not in known
    )


def _held_reason(orch: Orchestration, cluster: ClusterHA, vm: str, now: float) -> str:
    reason = orch.why_held(vm, now)
    return (
        f"{reason} ({describe_readiness(cluster, vm)})"
        if reason.endswith("to be ready")
        else reason
    )


async def prepare(
    engine: Engine, a: Action, cluster_id: str, rows: list[dict[str, Any]]
) -> Orchestration | None:
    """Tier the decision's restart rows in place (their tier in ``detail``; those that may
    not start yet held: due far in the future) and register the decision in the cluster
    gate; the orchestration, when anything is ordered."""
    restarts = [
        r for r in rows if r.get("kind") == policy.RESTART and r.get("state", PENDING) == PENDING
    ]
    if not restarts or not cluster_id:
        return None
    gate = engine.orchestrators.gate
    gate.window = engine.rcfg.orchestration.cluster_window_seconds
    key = f"{a.vcenter}/{cluster_id}"
    member = gate.member(a.id)
    if member is not None and member.running:
        return None  # a replay: its orchestration runs
    async with gate.lock(key):  # two decisions prepared at once see each other
        try:
            raw = await engine.vc(a.vcenter, _cluster_read, cluster_id)
        except Exception as exc:  # noqa: BLE001 - without its settings, vSphere's defaults
            log.warning(
                "action %d: reading cluster %s's orchestration settings failed (%s); "
                "restarting by vSphere's defaults (no wait between tiers)",
                a.id, cluster_id, describe(exc),
            )  # fmt: skip
            raw = None
        cluster = effective(raw, cluster_id, engine.rcfg)
        prios = {str(r["vm_id"]): str(r.get("priority") or "medium") for r in restarts}
        orch = build(cluster, prios)
        now = engine.clock()
        if not orch.tiers or not (orchestrated(cluster, orch) or gate.has_peers(key, now)):
            return None  # nothing ordered, nobody to order against: as vSphere's default
        name = str(restarts[0].get("cluster") or a.cluster)
        awaiting = await _undecided(engine, a, name, gate, key)
        m = Member(a.id, label(a.kind, a.host, a.vm, a.fault_domain), now, orch)
        m.awaiting, m.await_until = awaiting, a.created_at + engine.rcfg.orchestration.batch_seconds
        gate.register(key, m, now)
        due = set(orch.due(now))
    n = len(orch.tiers)
    for r in restarts:
        vm = str(r["vm_id"])
        if vm not in orch.priorities or orch.priorities[vm] == "disabled":
            continue
        i = orch.tier_of(vm)
        r["detail"] = {
            **(r.get("detail") or {}),
            KEY: {
                "tier": i + 1,
                "tiers": n,
                "priority": orch.priority_of(i),
                "cluster_id": cluster_id,
                "readiness": describe_readiness(cluster, vm),
            },
        }
        if vm not in due:
            r["not_before"] = now + HELD_FOR
            r["reason"] = _held_reason(orch, cluster, vm, now)
    return orch


@dataclass(frozen=True)
class _StepRow:
    """The columns of a step the orchestrator polls (Journal.step_states)."""

    id: int
    vm_id: str
    vm: str
    state: str
    reason: str
    new_vm_id: str


@dataclass
class Group:
    """One decision's orchestration in the engine."""

    parent_id: int
    vcenter: str
    orch: Orchestration
    names: dict[str, str] = field(default_factory=dict)
    announced: set[int] = field(default_factory=set)
    noted: int = 0
    key: str = ""  # its cluster in the gate
    created_at: float = 0.0  # when its alert was accepted (the batch window)
    cluster: str = ""  # the cluster's name, as its alerts carry it
    gate_noted: dict[int, str] = field(default_factory=dict)  # tier -> hold journaled
    done_tiers: int = 0  # tiers seen done (a new one wakes the peers)


class Orchestrators:
    """The engine's running orchestrations: one task per decision that holds steps or
    whose tiers a peer of its cluster may wait for (until every tier is done)."""

    def __init__(self) -> None:
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.gate = ClusterGate()

    async def started(self, engine: Engine, a: Action, orch: Orchestration) -> None:
        """After :func:`prepare`'s rows were planned: watch them until every tier is done."""
        steps = await engine.db(engine.j.siblings, a.id)
        now = engine.clock()
        tiered = [s for s in steps if KEY in (s.detail or {})]
        if not tiered or (orch.finished() and orch.all_done(now)):
            self.gate.drop(a.id)  # a replay (planned before), or nothing left to order
            return
        info = tiered[0].detail[KEY]
        group = Group(
            a.id,
            a.vcenter,
            orch,
            names={s.vm_id: s.vm for s in steps},
            key=f"{a.vcenter}/{info.get('cluster_id', '')}",
            created_at=a.created_at,
            cluster=tiered[0].cluster or a.cluster,
        )
        for i, tier in enumerate(orch.tiers):
            if any(orch.is_started(vm) for vm in tier):
                await self._announce(engine, group, i, now)
        self._spawn(engine, group)

    async def resume(self, engine: Engine) -> None:
        """After a restart: pick up every decision that still holds steps, and every one
        planned within the cluster window (its tiers may hold a peer's): all of them join
        the gate before any task runs."""
        now = engine.clock()
        self.gate.window = window = engine.rcfg.orchestration.cluster_window_seconds
        ids = set(await engine.db(engine.j.held_parents, now + HELD_AFTER))
        ids |= set(await engine.db(engine.j.tiered_parents, now - window))
        groups: list[Group] = []
        for parent_id in sorted(ids):
            steps = await engine.db(engine.j.siblings, parent_id)
            if steps:
                group = await self._group(engine, parent_id, steps[0].vcenter, steps)
                if group is not None:
                    groups.append(group)
        for group in groups:
            log.info("action %d: resuming its restart orchestration", group.parent_id)
            self._spawn(engine, group)

    async def stop(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        self.tasks.clear()

    def _spawn(self, engine: Engine, group: Group) -> None:
        if group.parent_id in self.tasks:
            return
        task = asyncio.create_task(self._run(engine, group), name=f"vha-tiers-{group.parent_id}")
        self.tasks[group.parent_id] = task
        self.gate.running(group.parent_id)

        def ended(_t: asyncio.Task[None]) -> None:
            self.tasks.pop(group.parent_id, None)
            self.gate.drop(group.parent_id)  # an ended decision never holds a peer

        task.add_done_callback(ended)

    async def _group(
        self, engine: Engine, parent_id: int, vcenter: str, steps: Sequence[Action]
    ) -> Group | None:
        """Rebuild a decision's orchestration from the journal after a restart: released
        steps count as started when they were released."""
        tiered = [s for s in steps if KEY in (s.detail or {})]
        now = engine.clock()
        held = [s for s in tiered if s.state == PENDING and s.not_before > now + HELD_AFTER]
        if not tiered:
            return None
        cluster_id = str(tiered[0].detail[KEY].get("cluster_id") or "")
        try:
            raw = await engine.vc(vcenter, _cluster_read, cluster_id)
        except Exception as exc:  # noqa: BLE001 - the loop re-reads nothing: release all
            if not held:
                return None  # nothing held: nothing to release, it just holds no peer
            log.warning(
                "action %d: cannot read cluster %s's orchestration settings (%s): "
                "starting every held restart now", parent_id, cluster_id, describe(exc),
            )  # fmt: skip
            await engine.db(
                engine.j.release,
                {s.id: f"released: cluster settings unreadable ({describe(exc)})" for s in held},
                now,
            )
            engine.wake()
            return None
        cluster = effective(raw, cluster_id, engine.rcfg)
        orch = build(cluster, {s.vm_id: s.priority or "medium" for s in tiered})
        parent = await engine.db(engine.j.get, parent_id)
        key = f"{vcenter}/{cluster_id}"
        group = Group(
            parent_id,
            vcenter,
            orch,
            names={s.vm_id: s.vm for s in tiered},
            key=key,
            created_at=parent.created_at if parent else 0.0,
            cluster=tiered[0].cluster,
        )
        who = label(parent.kind, parent.host, parent.vm, parent.fault_domain) if parent else ""
        self.gate.register(
            key, Member(parent_id, who, min(s.created_at for s in tiered), orch), now
        )
        held_ids = {s.id for s in held}
        for s in tiered:
            if s.vm_id in orch.priorities and s.id not in held_ids:
                orch.started(s.vm_id, min(s.not_before, now))
                group.announced.add(orch.tier_of(s.vm_id))
        return group

    async def _announce(self, engine: Engine, g: Group, i: int, now: float) -> None:
        """Journal a tier's start on the decision, with why it may start."""
        g.announced.add(i)
        o = g.orch
        await self._note(
            engine,
            g,
            f"tier {i + 1} of {len(o.tiers)} ({o.priority_of(i)}, {len(o.tiers[i])} VMs) "
            f"started: {o.why_open(i, now)}",
        )

    async def _note(self, engine: Engine, g: Group, message: str) -> None:
        log.info("action %d: %s", g.parent_id, message)
        await engine.db(engine.j.note, g.parent_id, engine.clock(), message)

    async def _run(self, engine: Engine, g: Group) -> None:
        poll = engine.rcfg.orchestration.poll_seconds
        try:
            wake = asyncio.Event()
            while engine.running:
                m = self.gate.member(g.parent_id)
                if m is not None:
                    m.wake = wake  # a peer joining, ending or finishing a tier wakes it
                wake.clear()  # a poke while it looks makes it look again at once
                if await self._step(engine, g):
                    return
                try:
                    timeout = max(0.05, g.orch.next_check(engine.clock(), poll))
                    await asyncio.wait_for(wake.wait(), timeout)
                except TimeoutError:
                    pass
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - never leave steps held by a bug
            log.exception("action %d: restart orchestration failed; releasing", g.parent_id)
            steps = await engine.db(engine.j.siblings, g.parent_id)
            await engine.db(
                engine.j.release,
                {s.id: "released: orchestration failed" for s in steps if s.state == PENDING},
                engine.clock(),
            )
            engine.wake()

    async def _step(self, engine: Engine, g: Group) -> bool:
        """One look: observe, release what is due, journal. True when nothing is held."""
        o = g.orch
        now = engine.clock()
        rows = await engine.db(engine.j.step_states, g.parent_id)
        steps = {r[1]: _StepRow(*r) for r in rows}
        if not await engine.db(engine.j.alerts_firing, g.parent_id):
            held = [s for s in steps.values() if s.state == PENDING]
            await engine.db(
                engine.j.release, {s.id: "released: its alerts resolved" for s in held}, now
            )
            engine.wake()
            return True
        look: dict[str, str] = {}
        for vm in o.priorities:
            s = steps.get(vm)
            if s is None or not o.is_started(vm) or o.settled(vm):
                continue
            if s.state in (DONE, SKIPPED):
                look[vm] = s.new_vm_id or s.vm_id
            elif s.state == DRY_RUN:
                o.failed(vm, now, f"({s.vm}) was only planned (dry run)")
            elif s.state in TERMINAL:
                o.failed(vm, now, f"({s.vm}) could not be restarted ({s.state}: {s.reason})")
        if look:
            try:
                states = await engine.vc(g.vcenter, read_ready, sorted(set(look.values())))
            except Exception as exc:  # noqa: BLE001 - unknown readiness: the timeout holds
                log.warning("action %d: reading readiness failed: %s", g.parent_id, describe(exc))
                states = {}
            for vm, moid in look.items():
                if moid not in states and steps[vm].state == SKIPPED:
                    o.failed(vm, now, f"({steps[vm].vm}) is gone")  # nothing to wait for
            o.observe({vm: states[m] for vm, m in look.items() if m in states}, now)
            done = sum(o.tier_done(i, now) for i in range(len(o.tiers)))
            if done > g.done_tiers:
                g.done_tiers = done
                self.gate.poke(g.key, g.parent_id)  # a peer may wait for this tier
        await self._awaiting(engine, g, now)
        due = o.due(now)
        await self._rehold(engine, g, steps, set(due), now)
        if due:
            reasons: dict[int, str] = {}
            for i in sorted({o.tier_of(vm) for vm in due} - g.announced):
                await self._announce(engine, g, i, now)
            for vm in due:
                i = o.tier_of(vm)
                why = o.why_open(i, now)
                if o.waits_for(vm):
                    why += f"; its dependencies ready (rules {', '.join(o.waits_for(vm))})"
                s = steps.get(vm)
                if s is not None:
                    reasons[s.id] = f"tier {i + 1} ({o.priority_of(i)}) started: {why}"
            await engine.db(engine.j.release, reasons, now)
            engine.wake()
        for note in o.notes[g.noted :]:
            await self._note(engine, g, note)
        g.noted = len(o.notes)
        return o.finished() and o.all_done(now)

    async def _awaiting(self, engine: Engine, g: Group, now: float) -> None:
        """Undecided alerts of the cluster this decision still waits for (batch window)."""
        m = self.gate.member(g.parent_id)
        if m is None or not m.awaiting:
            return
        if now >= m.await_until:
            m.awaiting = ()
            return
        a = await engine.db(engine.j.get, g.parent_id)
        if a is not None:
            m.awaiting = await _undecided(engine, a, g.cluster, self.gate, g.key)

    async def _rehold(
        self, engine: Engine, g: Group, steps: Mapping[str, _StepRow], due: set[str], now: float
    ) -> None:
        """A held step whose reason to wait changed (now another decision's tier, or its
        dependency) says so: in its reason and its history."""
        o = g.orch
        reasons: dict[int, str] = {}
        held = {
            vm: s
            for vm in o.priorities
            if (s := steps.get(vm)) is not None
            and vm not in due
            and not o.is_started(vm)
            and s.state == PENDING
        }
        for vm, why in o.why_held_all(held, now).items():
            s = held[vm]
            if not s.reason.startswith(why):
                reasons[s.id] = why
        if reasons:
            await engine.db(engine.j.release, reasons, now, until=now + HELD_FOR)
        for i, why in sorted(o.gated.items()):
            if g.gate_noted.get(i) != why:
                g.gate_noted[i] = why
                n = len(o.tiers)
                await self._note(engine, g, f"tier {i + 1} of {n} ({o.priority_of(i)}) held: {why}")


def tier_label(detail: Mapping[str, Any] | None) -> str:
    """ "tier 2/3" for the remediator's page, or "" for a step without orchestration."""
    info = (detail or {}).get(KEY) or {}
    return f"tier {info['tier']}/{info['tiers']}" if info.get("tier") else ""
