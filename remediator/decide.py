"""Decisions: turn one alert firing into steps, after live state, the guard and the policy.

The pure policy (:mod:`.policy`) decides; this module gathers what it needs from vCenter,
the journal and the confirmation hook (:mod:`.confirm`: a silent host's power status, out
of band), times it, runs the fencing hook when a host-failure restart needs it, and
journals the plan.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from . import confirm, live, orchestrate, policy
from .alerts import DOMAIN_KINDS, HOST_KINDS
from .domain_failure import decide_domain
from .ha_settings import HAView, IOActivity, read_ha, read_io
from .journal import CANCELLED, PENDING, REFUSED, SKIPPED, UNPLACED, Action
from .model import HostState, Snapshot
from .power_off_cause import PowerOffVerdict, classify_live
from .responsibility_metrics import count as count_responsibility

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("remediator")


async def decide(engine: Engine, a: Action) -> None:
    if not await engine.db(engine.j.alerts_firing, a.id):
        await engine.finish(a, CANCELLED, "every alert for this action has resolved")
        return
    if not await engine.guarded(a, ""):
        return
    if a.kind in DOMAIN_KINDS:
        await decide_domain(engine, a, _fence)
        return
    if a.kind in HOST_KINDS:
        snap = await engine.read_host(a, a.host_id, a.host)
    else:
        snap = await engine.read_vm(a, a.vm_id, a.vm)
    if snap is None:
        return
    engine.health[a.vcenter].mark_up(engine.clock())
    cluster = snap.cluster.name if snap.cluster else ""
    req = policy.Request(
        kind=a.kind,
        vcenter=a.vcenter,
        host_id=a.host_id,
        host=a.host,
        vm_id=a.vm_id,
        vm=a.vm,
        since=a.starts_ts,
        memory=a.detail,
        last_connected=engine.guard.last_connected(a.vcenter),
    )
    # The out-of-band power status of a silent host (read-only: it runs in dry run too),
    # before the guard counts, so a confirmed host is counted as confirmed.
    confirmations = await confirm.confirm_hosts(engine, a, _silent_hosts(snap, req), cluster)
    req = replace(req, confirmations=confirmations)
    if snap.cluster is not None:
        engine.guard.observe(
            a.vcenter, cluster, snap.hosts.values(), engine.clock(), snap.cluster.ha_enabled
        )
    if not await engine.guarded(a, cluster):
        return

    now = engine.clock()
    decision = await _policy(engine, a, req, snap, now)
    memory = dict(decision.memory)
    confirm.journal(memory, confirmations)
    clamped = memory.get("start_clamped")
    if clamped and not a.detail.get("start_clamped"):
        engine.metrics.implausible_starts.labels(reason=clamped["reason"]).inc()
        log.warning(
            "action %d %s %s: alert startsAt %s is implausible (%s); brakes count from "
            "the failure this remediator saw itself",
            a.id, a.kind, a.vm or a.host, a.starts_at, clamped["reason"],
        )  # fmt: skip
    fields = {k: v for k, v in decision.labels.items() if v or k == "cluster"}
    if decision.outcome == policy.SKIP:
        await engine.finish(
            a,
            SKIPPED,
            decision.reason,
            detail=memory,
            restarted_by=decision.restarted_by,
            **fields,
        )
    elif decision.outcome == policy.DEFER:
        await engine.finish(
            a,
            PENDING,
            decision.reason,
            not_before=decision.retry_at or now + 1,
            detail=memory,
            **fields,
        )
    elif decision.outcome == policy.REFUSE:
        await engine.finish(a, REFUSED, decision.reason, detail=memory, **fields)
    else:
        if decision.needs_fencing and not memory.get("fenced"):
            if engine.rcfg.dry_run:
                memory["fenced"] = "dry run: fencing hook not run"
            else:
                ok, message = await _fence(engine, a, decision.labels)
                if not ok:
                    attempts = await engine.db(
                        engine.j.start_attempt, a.id, engine.clock(), "fencing"
                    )
                    await engine.retry(
                        a, f"fencing failed, no VM restarted: {message}", attempts=attempts
                    )
                    return
                memory["fenced"] = message
        rows = [s.as_row(cluster) for s in decision.steps]
        cluster_id = snap.cluster.moid if snap.cluster else ""
        tiers = await orchestrate.prepare(engine, a, cluster_id, rows)  # holds later tiers
        _, settled = await engine.db(
            engine.j.plan, a, rows, decision.reason, engine.clock(), memory, **fields
        )
        engine.settled(a.id, settled)
        if tiers is not None:
            await engine.orchestrators.started(engine, a, tiers)
        log.info("action %d %s %s planned: %s", a.id, a.kind, a.vm or a.host, decision.reason)
        for s in decision.steps:
            if s.state != PENDING:
                engine.metrics.actions.labels(kind=s.kind, result=s.state).inc()
            if s.state == UNPLACED:
                log.warning("action %d: %s (%s) unplaced: %s", a.id, s.vm, s.priority, s.reason)


def _silent_hosts(snap: Snapshot, req: policy.Request) -> list[HostState]:
    """The host whose failure a restart decision hinges on, for the confirmation hook."""
    if req.kind == "restart_host_vms":
        host = policy.find_host(snap, req)
    elif req.kind == "restart_vm":
        vm = policy.find_vm(snap, req)
        host = snap.hosts.get(vm.host_id) if vm is not None else None
    else:
        host = None
    return [host] if host is not None else []


async def _policy(
    engine: Engine, a: Action, req: policy.Request, snap: Snapshot, now: float
) -> policy.Decision:
    """Gather what the pure policy needs from vCenter and the journal, then time it."""
    powered_off_by = ""
    power_off: PowerOffVerdict | None = None
    resets: list[float] = []
    io: IOActivity | None = None
    defer = engine.rcfg.ha.defer_to_ha
    vm = policy.find_vm(snap, req) if a.kind not in HOST_KINDS else None
    # vSphere HA's settings and the VMs' HA facts: one more property-collector call
    view: HAView | None = None
    if defer and snap.cluster is not None and a.kind != "evacuate_host":
        if a.kind in HOST_KINDS:
            host = policy.find_host(snap, req)
            ids = set(a.detail.get("vms") or {}) | {
                v.moid for v in (snap.vms_on(host.moid) if host is not None else [])
            }
        else:
            ids = {vm.moid} if vm is not None else set()
        view = await engine.vc(a.vcenter, read_ha, snap.cluster.moid, sorted(ids))
    if a.kind == "restart_vm" and vm is not None and vm.power_state == "poweredOff":
        host = snap.hosts.get(vm.host_id)
        if host is not None and host.responding:
            if defer:
                power_off = await engine.vc(a.vcenter, classify_live, vm.moid, vm.host_id)
            else:
                powered_off_by = await engine.vc(a.vcenter, live.powered_off_by, vm.moid) or ""
    if a.kind == "reset_vm" and vm is not None:
        # every reset of the VM: the verdict applies the window, which may be none (-1)
        resets = await engine.db(engine.j.done_resets, a.vcenter, vm.moid, 0.0)
        if view is not None and vm.running:
            interval = view.cluster.io_stats_interval if view.cluster else 120.0
            io = await engine.vc(a.vcenter, read_io, vm.moid, interval)
    t0, cpu0 = time.perf_counter(), time.thread_time()
    if a.kind == "restart_host_vms":
        decision = policy.decide_host_failure(req, snap, engine.rcfg, now, view)
    elif a.kind == "evacuate_host":
        decision = policy.decide_evacuation(req, snap, engine.rcfg, now)
    elif a.kind == "restart_vm":
        decision = policy.decide_vm_failure(
            req, snap, engine.rcfg, now, powered_off_by, view, power_off
        )
    else:
        decision = policy.decide_reset(req, snap, engine.rcfg, now, resets, view, io)
    count_responsibility(
        engine, a, a.detail, decision.memory, decision.labels.get("cluster", a.cluster)
    )
    took = time.perf_counter() - t0
    engine.metrics.decision_duration.labels(kind=a.kind).observe(took)
    decision.memory["decision_ms"] = round(took * 1000, 3)
    # CPU time of the deciding thread: the decision's own cost, without the time it
    # waited for the interpreter while worker threads parsed vCenter replies.
    decision.memory["decision_cpu_ms"] = round((time.thread_time() - cpu0) * 1000, 3)
    decision.memory["live_vms"] = len(snap.vms)
    if snap.read_started:  # the shared cluster read it decided on: sent after the alert
        decision.memory["live_read_at"] = round(snap.read_started, 3)
    return decision


async def _fence(engine: Engine, a: Action, labels: dict[str, str]) -> tuple[bool, str]:
    """Run the fencing hook (power the failed host off out of band) before restarting.

    Restarting a VM while its old host might still run it is the split-brain risk;
    a fence that confirms the host is off removes it.  Non-zero exit or a timeout means
    no restart.
    """
    hf = engine.rcfg.host_failure
    cmd = hf.fencing_command
    env = {
        "VHA_VCENTER": a.vcenter,
        "VHA_HOST": labels.get("host", a.host),
        "VHA_HOST_ID": labels.get("host_id", a.host_id),
        "VHA_CLUSTER": labels.get("cluster", a.cluster),
        "VHA_ACTION_ID": str(a.id),
    }
    run = await confirm.run_hook(cmd, env, hf.fencing_timeout_seconds)
    if run.returncode is None:
        return False, run.error
    if run.returncode != 0:
        return False, f"{cmd[0]} exited {run.returncode}: {run.last}"
    return True, f"fenced by {cmd[0]}{': ' + run.last if run.last else ''}"
