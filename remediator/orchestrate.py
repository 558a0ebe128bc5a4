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
* a restarted remediator picks held steps up again (:meth:`Orchestrators.resume`).

Where the cluster sets no orchestration (readiness ``none``, vSphere's default) and the
remediator is the one restarting, the stack's ``remediator.orchestration`` section supplies
the defaults (docs/remediator.md, "Orchestrated restarts").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from vcenter.session import describe

from . import policy
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
    for content in session.retrieve(specs, objs):
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


async def prepare(
    engine: Engine, a: Action, cluster_id: str, rows: list[dict[str, Any]]
) -> Orchestration | None:
    """Tier the decision's restart rows in place (their tier in ``detail``; those that may
    not start yet held: due far in the future); the orchestration, when anything waits."""
    restarts = [
        r for r in rows if r.get("kind") == policy.RESTART and r.get("state", PENDING) == PENDING
    ]
    if len(restarts) < 2 or not cluster_id:
        return None
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
    if len(orch.tiers) < 2 and not orch.has_dependencies:
        return None
    now = engine.clock()
    due = set(orch.due(now))
    if len(due) == len(orch.priorities):
        return None  # readiness none: every tier starts at once, as vSphere HA's default
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
            waits = orch.waits_for(vm)
            reason = (
                f"held: tier {i + 1} of {n} ({orch.priority_of(i)}) waits for tier {i} "
                f"({orch.priority_of(i - 1)}) to be ready ({describe_readiness(cluster, vm)})"
                if i > 0
                else f"held: waits for the VMs it depends on (rules {', '.join(waits)})"
            )
            r["reason"] = reason
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


class Orchestrators:
    """The engine's running orchestrations, one task per decision with held steps."""

    def __init__(self) -> None:
        self.tasks: dict[int, asyncio.Task[None]] = {}

    async def started(self, engine: Engine, a: Action, orch: Orchestration) -> None:
        """After :func:`prepare`'s rows were planned: watch the held ones."""
        steps = await engine.db(engine.j.siblings, a.id)
        if not held(steps, engine.clock()):
            return  # a replay: the rows were planned before
        group = Group(a.id, a.vcenter, orch, names={s.vm_id: s.vm for s in steps})
        now = engine.clock()
        for i, tier in enumerate(orch.tiers):
            if any(orch.is_started(vm) for vm in tier):
                await self._announce(engine, group, i, now)
        self._spawn(engine, group)

    async def resume(self, engine: Engine) -> None:
        """After a restart: pick up every decision that still holds steps."""
        for parent_id in await engine.db(engine.j.held_parents, engine.clock() + HELD_AFTER):
            steps = await engine.db(engine.j.siblings, parent_id)
            if steps:
                group = await self._group(engine, parent_id, steps[0].vcenter, steps)
                if group is not None:
                    log.info("action %d: resuming its restart orchestration", parent_id)
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
        task.add_done_callback(lambda _t: self.tasks.pop(group.parent_id, None))

    async def _group(
        self, engine: Engine, parent_id: int, vcenter: str, steps: Sequence[Action]
    ) -> Group | None:
        """Rebuild a decision's orchestration from the journal after a restart: released
        steps count as started when they were released."""
        tiered = [s for s in steps if KEY in (s.detail or {})]
        now = engine.clock()
        held = [s for s in tiered if s.state == PENDING and s.not_before > now + HELD_AFTER]
        if not held:
            return None
        cluster_id = str(tiered[0].detail[KEY].get("cluster_id") or "")
        try:
            raw = await engine.vc(vcenter, _cluster_read, cluster_id)
        except Exception as exc:  # noqa: BLE001 - the loop re-reads nothing: release all
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
        group = Group(parent_id, vcenter, orch, names={s.vm_id: s.vm for s in tiered})
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
            while engine.running:
                if await self._step(engine, g):
                    return
                await asyncio.sleep(max(0.05, g.orch.next_check(engine.clock(), poll)))
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
        due = o.due(now)
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
        return o.finished()


def tier_label(detail: Mapping[str, Any] | None) -> str:
    """ "tier 2/3" for the remediator's page, or "" for a step without orchestration."""
    info = (detail or {}).get(KEY) or {}
    return f"tier {info['tier']}/{info['tiers']}" if info.get("tier") else ""


def held(steps: Iterable[Action], now: float) -> list[Action]:
    return [s for s in steps if s.state == PENDING and s.not_before > now + HELD_AFTER]
