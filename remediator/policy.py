"""Alert -> plan, as a pure function of a live snapshot.

The alert is only a trigger; every decision here is taken from the snapshot of vCenter read
just before, so a stale or duplicated alert cannot make the remediator act on something
that has already healed.  A decision is one of:

* ``skip``   — nothing to do, and why (host back, VM running, already moved, powered off
  by a person);
* ``defer``  — not yet: waiting for confirmation of a host failure, for vSphere HA's grace
  period, or for a VM's minimum uptime; ``retry_at`` says when to look again;
* ``refuse`` — a limit says no (reset limit, an unconfirmed failure that never confirmed);
* ``plan``   — the steps to run, highest restart priority first, plus what could not be
  placed.

Nothing here talks to vCenter or the journal; ``engine.py`` feeds it and carries it out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .config import RemediatorConfig
from .confirm import Confirmation, hook_says
from .ha_settings import DEFAULT_IO_STATS_INTERVAL, HAView, IOActivity, ToolsMonitoring, VmHAFacts
from .ha_watch import WATCH_KEY, annotate, next_look, watch_detail, watch_look
from .model import HostState, Snapshot, VMState
from .placement import Placement, place
from .power_off_cause import PowerOffVerdict
from .responsibility import reset_responsibility, reset_verdict

PLAN, SKIP, DEFER, REFUSE = "plan", "skip", "defer", "refuse"
RESTART, RESET, MIGRATE, ENTER_MAINTENANCE = "restart", "reset", "migrate", "enter_maintenance"
WATCH_HA = "watch_ha"  # a VM vSphere HA restarts, watched next to our own (steps/watch_ha.py)
BY_REMEDIATOR, BY_HA = "remediator", "vsphere-ha"
NEED_RESET = "appStateNeedReset"  # GuestInfoAppStateType: the application agent asks


@dataclass(frozen=True)
class Request:
    """What a decision row in the journal asks for, without the journal."""

    kind: str
    vcenter: str
    host_id: str = ""
    host: str = ""
    vm_id: str = ""
    vm: str = ""
    since: float = 0.0  # the alert's startsAt: what the sender claims, not what we saw
    memory: Mapping[str, Any] = field(default_factory=dict)  # what earlier looks recorded
    # When this remediator's own live reads last saw each host connected (host moid ->
    # Unix time): a failure cannot have started before that.
    last_connected: Mapping[str, float] = field(default_factory=dict)
    # The confirmation hook's answers (host moid -> answer) the engine got for this look
    confirmations: Mapping[str, Confirmation] = field(default_factory=dict)


@dataclass
class Step:
    kind: str
    vm_id: str = ""
    vm: str = ""
    host_id: str = ""
    host: str = ""
    target_host_id: str = ""
    target_host: str = ""
    fault_domain: str = ""
    priority: str = ""
    rank: int = 0
    reason: str = ""
    state: str = "pending"
    restarted_by: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    not_before: float | None = None

    def as_row(self, cluster: str) -> dict[str, Any]:
        extra: dict[str, Any] = {"detail": self.detail} if self.detail else {}
        if self.not_before is not None:
            extra["not_before"] = self.not_before
        return extra | {
            "kind": self.kind,
            "cluster": cluster,
            "vm_id": self.vm_id,
            "vm": self.vm,
            "host_id": self.host_id,
            "host": self.host,
            "target_host_id": self.target_host_id,
            "target_host": self.target_host,
            "fault_domain": self.fault_domain,
            "priority": self.priority,
            "rank": self.rank,
            "reason": self.reason,
            "state": self.state,
            "restarted_by": self.restarted_by,
        }


@dataclass
class Decision:
    outcome: str
    reason: str
    steps: list[Step] = field(default_factory=list)
    retry_at: float | None = None
    memory: dict[str, Any] = field(default_factory=dict)
    restarted_by: str = ""
    needs_fencing: bool = False
    # What the decision row should show once resolved against live state.
    labels: dict[str, str] = field(default_factory=dict)


def find_host(snap: Snapshot, req: Request) -> HostState | None:
    if req.host_id and req.host_id in snap.hosts:
        return snap.hosts[req.host_id]
    return snap.host_named(req.host) if req.host else None


def find_vm(snap: Snapshot, req: Request) -> VMState | None:
    if req.vm_id and req.vm_id in snap.vms:
        return snap.vms[req.vm_id]
    return snap.vm_named(req.vm) if req.vm else None


def _labels(snap: Snapshot, host: HostState | None, vm: VMState | None = None) -> dict[str, str]:
    out = {"cluster": snap.cluster.name if snap.cluster else ""}
    if host is not None:
        out.update(host_id=host.moid, host=host.name, fault_domain=host.fault_domain)
    if vm is not None:
        out.update(vm_id=vm.moid, vm=vm.name, priority=vm.priority)
    return out


def _memory(req: Request, now: float) -> dict[str, Any]:
    """The decision's memory from earlier looks, stamped with when it was first seen."""
    memory: dict[str, Any] = dict(req.memory)
    memory.setdefault("first_seen", now)
    return memory


def _finisher(memory: dict[str, Any], labels: dict[str, str]) -> Callable[[Decision], Decision]:
    """Every outcome of one decision carries the same memory and resolved labels."""

    def out(d: Decision) -> Decision:
        d.memory, d.labels = memory, labels
        return d

    return out


# Alertmanager's zero time (0001-01-01T00:00:00Z) and anything before 1970 is no start.
_EPOCH_FLOOR = 0.0
_FUTURE_SLACK = 300.0  # clock skew between Prometheus, Alertmanager and us


def implausible_start(req: Request, now: float, host_id: str = "") -> str:
    """Why the alert's ``startsAt`` cannot be when the failure began, or ``""``."""
    if req.since <= _EPOCH_FLOOR:
        return "zero time"
    if req.since > now + _FUTURE_SLACK:
        return "in the future"
    connected = req.last_connected.get(host_id, 0.0) if host_id else 0.0
    if connected and req.since < connected:
        return "before last connected"
    return ""


def _alert_start(req: Request, memory: dict[str, Any], now: float, host_id: str) -> float:
    """The alert's start if plausible, else 0; an implausible one is noted in ``memory``
    (the engine turns the first note into a metric and a log line)."""
    problem = implausible_start(req, now, host_id)
    if problem:
        memory.setdefault("start_clamped", {"reason": problem, "starts_ts": req.since})
        return 0.0
    return req.since


def brake_start(req: Request, memory: dict[str, Any], now: float, host_id: str) -> float:
    """Where confirmation and HA grace count from: the later of the alert's start and the
    first time this remediator saw the failure by a live read (journaled in ``memory`` as
    ``failure_seen``).  Call only when the live read shows the failure.

    The alert's start alone is what the sender says: Alertmanager's zero time, an old
    ``startsAt`` or a forged one would otherwise make a restart immediate.
    """
    seen = float(memory.setdefault("failure_seen", now))
    return min(max(_alert_start(req, memory, now, host_id), seen), now)


def _since(req: Request, memory: dict[str, Any], now: float, host_id: str = "") -> float:
    """When the failure began as far as anyone says (the earlier of a plausible alert start
    and our first look): for "did someone already act after it began" checks, not brakes."""
    first = float(memory.get("first_seen", now))
    start = _alert_start(req, memory, now, host_id)
    return min(start or first, first, now)


def _ha_facts(view: HAView, vm: VMState) -> VmHAFacts:
    found = view.vms.get(vm.moid)
    return found or VmHAFacts(vm.moid, vm.name, vm.host_id, vm.power_state)


def _ha_on(snap: Snapshot) -> bool:
    return bool(snap.cluster and snap.cluster.ha_enabled)


def confirm_host_failure(
    host: HostState,
    snap: Snapshot,
    cfg: RemediatorConfig,
    now: float,
    since: float,
    confirmed: Confirmation | None = None,
) -> Decision | None:
    """``None`` once a silent host may be treated as dead; else why not (yet).

    A host that stopped answering vCenter may still be running its VMs (network isolation
    or a partition).  Restarting them elsewhere then gives two copies writing the same
    disks.  So a failure counts only after ``confirm_seconds`` of silence and, where the
    cluster's HA agents report on the host, once they too say ``hostDown`` (HA's master
    declares that only after datastore heartbeats stop as well).

    With a confirmation hook, its answer counts too (:func:`.confirm.hook_says`).
    """
    hf = cfg.host_failure
    if host.power_state == "poweredOff":
        return None  # vCenter saw it power off: nothing can still be running there
    if host.connection_state == "disconnected":
        return Decision(
            SKIP,
            f"host {host.name} is disconnected (an administrator's act, not a failure); "
            "its VMs may still run",
        )
    elapsed = now - since
    if elapsed < hf.confirm_seconds:
        return Decision(
            DEFER,
            f"confirming failure of {host.name}: not responding for {elapsed:.0f}s of "
            f"{hf.confirm_seconds:.0f}s",
            retry_at=since + hf.confirm_seconds,
        )

    def unconfirmed(why: str) -> Decision:
        if elapsed >= hf.max_unconfirmed_seconds:
            return Decision(
                REFUSE,
                f"failure never confirmed after {elapsed:.0f}s; {why}; leaving it to a person",
            )
        return Decision(DEFER, why, retry_at=now + cfg.state_refresh_seconds)

    if (
        hf.require_fdm_host_down
        and _ha_on(snap)
        and host.das_state
        and host.das_state != "hostDown"
    ):
        return unconfirmed(
            f"vSphere HA reports {host.name} as {host.das_state}, not hostDown: it may be "
            "isolated or partitioned and still running its VMs"
        )
    hook_why = hook_says(host, confirmed, hf, _ha_on(snap))
    if hook_why:
        return unconfirmed(hook_why)
    return None


def ha_grace(
    snap: Snapshot, cfg: RemediatorConfig, now: float, since: float, what: str
) -> Decision | None:
    """Let vSphere HA act first on its own clusters; we take only what it leaves undone."""
    if not _ha_on(snap) or cfg.ha_grace_seconds <= 0:
        return None
    until = since + cfg.ha_grace_seconds
    if now >= until:
        return None
    name = snap.cluster.name if snap.cluster else "the cluster"
    return Decision(
        DEFER,
        f"vSphere HA is enabled on {name}: giving it "
        f"{cfg.ha_grace_seconds:.0f}s to {what} itself ({until - now:.0f}s left)",
        retry_at=until,
    )


def _restart_steps(
    placements: Sequence[Placement], source: HostState, vms: Mapping[str, VMState]
) -> list[Step]:
    steps = []
    for p in placements:
        vm = vms[p.vm_id]
        steps.append(
            Step(
                RESTART,
                vm_id=p.vm_id,
                vm=p.vm,
                host_id=source.moid,
                host=source.name,
                target_host_id=p.target_id,
                target_host=p.target,
                fault_domain=p.fault_domain,
                priority=p.priority,
                rank=vm.rank,
                reason=(f"restart on {p.target}: {p.reason}" if p.placed else p.reason),
                state="pending" if p.placed else "unplaced",
            )
        )
    return steps


def decide_host_failure(
    req: Request, snap: Snapshot, cfg: RemediatorConfig, now: float, view: HAView | None = None
) -> Decision:
    """``restart_host_vms``: restart the failed host's protected VMs on healthy hosts.

    With ``view`` (the cluster's vSphere HA settings, read live) each VM is HA's, the
    remediator's or nobody's (:mod:`.ha_watch`); HA's are watched, not restarted."""
    host = find_host(snap, req)
    memory = _memory(req, now)
    if host is None:
        return Decision(SKIP, f"host {req.host_id or req.host} is not in vCenter", memory=memory)
    labels = _labels(snap, host)
    # Remember what ran on the host when we first saw it fail: vSphere HA may move VMs
    # away during the grace period, and we must still be able to say who restarted them.
    seen: dict[str, dict[str, str]] = {k: dict(v) for k, v in memory.get("vms", {}).items()}
    for vm in snap.vms_on(host.moid):
        seen.setdefault(vm.moid, {"name": vm.name, "power": vm.power_state})
    memory["vms"] = seen

    out = _finisher(memory, labels)

    if not host.down:
        return out(Decision(SKIP, f"host back: {host.name} is connected and powered on"))
    since = brake_start(req, memory, now, host.moid)
    wait = confirm_host_failure(host, snap, cfg, now, since, req.confirmations.get(host.moid))
    watch = None
    if view is not None and cfg.ha.defer_to_ha:
        watch = annotate(snap, view, cfg.ha, now - since, list(seen))
        memory.update(watch.memory)
        snap = watch.snapshot  # vSphere's restart priorities; nobody's VMs unprotected
    else:
        wait = wait or ha_grace(snap, cfg, now, since, "restart the VMs")
    if wait is not None:
        return out(wait)
    ha_pending: list[Step] = []

    steps: list[Step] = []
    to_place: list[VMState] = []
    by_ha = 0
    for moid, info in sorted(seen.items(), key=lambda kv: kv[1]["name"]):
        found = snap.vms.get(moid)
        name = info["name"]
        base = Step(
            RESTART, vm_id=moid, vm=name, host_id=host.moid, host=host.name, state="skipped"
        )
        if found is None:
            base.reason = "no longer in vCenter's inventory"
            steps.append(base)
            continue
        vm = found
        base.priority, base.rank = vm.priority, vm.rank
        if vm.host_id != host.moid:
            where = snap.hosts.get(vm.host_id)
            if vm.running and where is not None and not where.down:
                base.reason = (
                    f"already running on {where.name}: restarted by vSphere HA (or a person)"
                )
                base.restarted_by = BY_HA
                base.target_host_id, base.target_host = where.moid, where.name
                by_ha += 1
                steps.append(base)
                continue
            if where is None:
                base.reason = "moved out of the cluster"
                steps.append(base)
                continue
        elif info.get("power") != "poweredOn":
            base.reason = (
                f"was {info.get('power')} before {host.name} failed: a VM a person powered off "
                "is not restarted"
            )
            steps.append(base)
            continue
        resp = watch.restart.get(moid) if watch is not None else None
        if watch is not None and resp is not None and not watch.may_restart(moid):
            if resp.actor == BY_HA and moid not in watch.overdue:
                base.kind, base.state = WATCH_HA, "pending"
                base.reason = "vSphere HA protects it and is restarting it: the remediator watches"
                base.detail = watch_detail(since, resp.overdue_after, resp.act_when_overdue)
                base.not_before = watch_look(base.detail[WATCH_KEY], now)
                ha_pending.append(base)
                continue
            if resp.actor == BY_HA:
                base.reason = (
                    f"vSphere HA has not restarted it within {resp.overdue_after:.0f}s of the "
                    "failure (overdue): alerting, not acting (remediator.ha.act_when_overdue "
                    "is off)"
                )
            else:
                base.reason = resp.reason
            steps.append(base)
            continue
        if not vm.restartable:
            base.reason = "not protected (protection rules, restart priority disabled, or template)"
            steps.append(base)
            continue
        to_place.append(vm)

    if ha_pending and watch is not None and not to_place:
        # Only vSphere HA's VMs are left to restart: the decision waits for HA as a whole.
        # With VMs of the remediator's own, those go ahead now and each of HA's is watched
        # by its own step (steps/watch_ha.py): ours never wait behind HA's (issue 10).
        look = next_look(watch, since, now)
        until = f", overdue at {look - since:.0f}s after the failure" if look else ""
        return out(
            Decision(
                DEFER,
                f"vSphere HA protects {len(ha_pending)} VMs of {host.name} and is restarting "
                f"them{until}: the remediator watches ({by_ha} restarted by HA so far)",
                retry_at=min(look or now + 30.0, now + 30.0),
            )
        )
    if not seen:
        # Nothing ran there when we first looked (a re-fired alert after the VMs were
        # restarted, or an empty host): a plan without steps would stay "planned".
        return out(Decision(SKIP, f"{host.name} failed but had no VMs to restart: nothing to do"))
    placements = place(
        to_place, snap, cfg.placement, avoid_fault_domain=host.fault_domain, exclude=[host.moid]
    )
    restart = _restart_steps(placements, host, snap.vms)
    placed = sum(1 for s in restart if s.state == "pending")
    unplaced = len(restart) - placed
    left = len(steps) - by_ha
    steps = ha_pending + steps
    reason = (
        f"{host.name} failed ({host.connection_state}"
        f"{', HA ' + host.das_state if host.das_state else ''}): {placed} VMs to restart"
        f"{f', {unplaced} unplaced' if unplaced else ''}"
        f"{f', {by_ha} already restarted by vSphere HA' if by_ha else ''}"
        f"{f', {len(ha_pending)} being restarted by vSphere HA (watched)' if ha_pending else ''}"
        f"{f', {left} left alone' if left else ''}"
    )
    return out(
        Decision(
            PLAN,
            reason,
            steps=restart + steps,
            needs_fencing=bool(cfg.host_failure.fencing_command) and placed > 0,
            restarted_by=BY_HA if by_ha and not placed else "",
        )
    )


def decide_vm_failure(
    req: Request,
    snap: Snapshot,
    cfg: RemediatorConfig,
    now: float,
    powered_off_by: str = "",
    view: HAView | None = None,
    power_off: PowerOffVerdict | None = None,
) -> Decision:
    """``restart_vm``: power the VM on where it is if its host is healthy, else elsewhere.

    ``power_off`` (from the VM's events) restarts only a power-off nobody asked for;
    ``view`` leaves the VM to vSphere HA, or to nobody, as :mod:`.ha_watch` says."""
    memory = _memory(req, now)
    vm = find_vm(snap, req)
    if vm is None:
        return Decision(SKIP, f"VM {req.vm_id or req.vm} is not in vCenter", memory=memory)
    host = snap.hosts.get(vm.host_id)
    labels = _labels(snap, host, vm)

    out = _finisher(memory, labels)

    def ha_says(since: float) -> Decision | None:
        """HA's or nobody's VM: the decision that leaves it alone (None: ours)."""
        nonlocal snap, vm
        if view is None or not cfg.ha.defer_to_ha or vm is None:
            return None
        watch = annotate(snap, view, cfg.ha, now - since, [vm.moid])
        memory.update(watch.memory)
        snap, vm = watch.snapshot, watch.snapshot.vms[vm.moid]
        resp = watch.restart.get(vm.moid)
        if resp is None or watch.may_restart(vm.moid):
            return None
        if resp.actor != BY_HA:
            return Decision(SKIP, resp.reason)
        if vm.moid in watch.overdue:
            return Decision(
                SKIP,
                f"vSphere HA has not restarted it within {resp.overdue_after:.0f}s (overdue): "
                "alerting, not acting (remediator.ha.act_when_overdue is off)",
            )
        look = next_look(watch, since, now) or now + 30.0
        return Decision(DEFER, resp.reason, retry_at=min(look, now + 30.0))

    unprotected = "VM is not protected (protection rules or priority disabled)"
    if host is not None and not host.down:
        if vm.running:
            beat = f"guest heartbeat {vm.guest_heartbeat}"
            return out(Decision(SKIP, f"VM is running on {host.name} ({beat})"))
        if vm.power_state == "suspended":
            return out(Decision(SKIP, "VM is suspended (a deliberate act); not restarting"))
        if power_off is not None and not power_off.restart:
            left = "; left off for a person to decide" if power_off.alert else ""
            return out(Decision(SKIP, f"{power_off.reason}{left}"))
        if power_off is None and powered_off_by:
            return out(
                Decision(
                    SKIP,
                    f"powered off by {powered_off_by}: a VM a person powered off is not restarted",
                )
            )
        leave = ha_says(brake_start(req, memory, now, host.moid))
        if leave is not None:
            return out(leave)
        if not vm.restartable:
            return out(Decision(SKIP, unprotected))
        if host.healthy:
            step = Step(
                RESTART,
                vm_id=vm.moid,
                vm=vm.name,
                host_id=host.moid,
                host=host.name,
                target_host_id=host.moid,
                target_host=host.name,
                fault_domain=host.fault_domain,
                priority=vm.priority,
                rank=vm.rank,
                reason=f"power on on its own host {host.name}",
            )
            return out(Decision(PLAN, f"VM is powered off on healthy {host.name}", steps=[step]))
    else:
        if host is None:
            return out(Decision(SKIP, "the VM's host is not in vCenter"))
        since = brake_start(req, memory, now, host.moid)
        wait = confirm_host_failure(host, snap, cfg, now, since, req.confirmations.get(host.moid))
        if view is not None and cfg.ha.defer_to_ha:
            wait = wait or ha_says(since)
        else:
            wait = wait or ha_grace(snap, cfg, now, since, "restart the VM")
        if not vm.restartable and wait is None:
            return out(Decision(SKIP, unprotected))
        if wait is not None:
            return out(wait)
    placements = place(
        [vm], snap, cfg.placement, avoid_fault_domain=host.fault_domain, exclude=[host.moid]
    )
    steps = _restart_steps(placements, host, snap.vms)
    why = host.unhealthy_reason()
    if steps[0].state != "pending":
        return out(
            Decision(PLAN, f"{host.name} is unhealthy ({why}); VM cannot be placed", steps=steps)
        )
    return out(
        Decision(
            PLAN,
            f"{host.name} is unhealthy ({why}); restarting elsewhere",
            steps=steps,
            needs_fencing=not host.responding and bool(cfg.host_failure.fencing_command),
        )
    )


def reset_limits(snap: Snapshot, cfg: RemediatorConfig) -> tuple[int, float | None, float]:
    """(max resets, window seconds or ``None`` for no window, min uptime seconds) of the
    stack's own VM monitoring: the cluster's numbers where it sets them
    (``prefer_cluster_settings``); a cluster's ``maxFailureWindow: -1`` is no window."""
    vmc = cfg.vm_monitoring
    mon = snap.cluster.vm_monitoring if snap.cluster and vmc.prefer_cluster_settings else None
    max_resets = vmc.max_resets
    window: float | None = vmc.window_seconds
    uptime = vmc.min_uptime_seconds
    if mon is not None:
        max_resets = mon.max_failures or max_resets
        if mon.max_failure_window is not None:
            window = None if mon.max_failure_window < 0 else mon.max_failure_window
        uptime = mon.min_uptime if mon.min_uptime is not None else uptime
    return int(max_resets), window, float(uptime)


def stack_tools(snap: Snapshot, cfg: RemediatorConfig) -> ToolsMonitoring:
    """The stack's own VM-monitoring settings (``remediator.vm_monitoring``) as vSphere HA's
    ClusterVmToolsMonitoringSettings. Failure interval 0: the alert rules already waited it."""
    max_resets, window, uptime = reset_limits(snap, cfg)
    return ToolsMonitoring(cfg.vm_monitoring.mode, 0.0, uptime, max_resets, window)


def decide_reset(
    req: Request,
    snap: Snapshot,
    cfg: RemediatorConfig,
    now: float,
    resets: Sequence[float],
    view: HAView | None = None,
    io: IOActivity | None = None,
) -> Decision:
    """``reset_vm``: reset a VM whose heartbeats failed, or whose application agent asks for
    it (``guest.appState`` = ``appStateNeedReset``), on vSphere HA's rules
    (:func:`remediator.responsibility.reset_verdict`, the one place for them).

    ``resets``: every reset of this VM in the journal (the verdict applies the window).
    With ``view``: a VM on an HA cluster is HA's VM monitoring's (or nobody's), and a
    heartbeat reset also needs HA's I/O check (``io``: no disk and no network I/O over the
    interval)."""
    memory = _memory(req, now)
    vm = find_vm(snap, req)
    if vm is None:
        return Decision(SKIP, f"VM {req.vm_id or req.vm} is not in vCenter", memory=memory)
    host = snap.hosts.get(vm.host_id)
    labels = _labels(snap, host, vm)

    out = _finisher(memory, labels)

    if not vm.running:
        return out(Decision(SKIP, f"VM is {vm.power_state}: nothing to reset"))
    if host is None or not host.responding:
        state = host.connection_state if host else "unknown"
        return out(Decision(SKIP, f"the VM's host is {state}: host failure handling applies"))
    beats = f"guest {vm.guest_heartbeat}, app {vm.app_heartbeat or 'n/a'}"
    asks = vm.app_state == NEED_RESET
    if not vm.heartbeat_failed and not asks:
        return out(
            Decision(
                SKIP,
                f"heartbeats recovered ({beats}) and no reset request (guest.appState "
                f"{vm.app_state})",
            )
        )
    since = _since(req, memory, now, host.moid)
    ha_monitors = _ha_on(snap) and snap.cluster is not None and snap.cluster.vm_monitoring.enabled
    if vm.boot_time is not None and vm.boot_time > since:
        who = "vSphere HA VM monitoring" if ha_monitors else "someone else"
        return out(
            Decision(
                SKIP,
                f"VM rebooted after the alert began (by {who}); waiting for a new alert",
                restarted_by=BY_HA if ha_monitors else "other",
            )
        )
    tools = stack_tools(snap, cfg)
    aware = view is not None and cfg.ha.defer_to_ha
    if view is not None and aware:
        resp, tools = reset_responsibility(view.cluster, _ha_facts(view, vm), tools)
        memory["ha"] = {vm.moid: {"actor": resp.actor, "reason": resp.reason}}
        if resp.actor != BY_REMEDIATOR:
            return out(Decision(SKIP, resp.reason, restarted_by=resp.actor))
    elif ha_monitors:
        wait = ha_grace(snap, cfg, now, brake_start(req, memory, now, host.moid), "reset the VM")
        if wait is not None:
            return out(wait)
    if not tools.enabled:
        return out(Decision(SKIP, f"VM monitoring is {tools.vm_monitoring}: no reset"))
    if vm.guest_heartbeat != "red" and not tools.app_monitoring:
        what = (
            "agent asks for a reset (appStateNeedReset)"
            if asks
            else f"heartbeat is {vm.app_heartbeat}"
        )
        return out(
            Decision(
                SKIP,
                f"the application {what}, but VM monitoring is {tools.vm_monitoring}: vSphere "
                "HA acts on application signals only with vmAndAppMonitoring",
            )
        )
    interval = (
        view.cluster.io_stats_interval if view and view.cluster else DEFAULT_IO_STATS_INTERVAL
    )
    started = brake_start(req, memory, now, host.moid)
    verdict = reset_verdict(
        tools,
        now=now,
        guest_heartbeat=vm.guest_heartbeat,
        app_heartbeat=vm.app_heartbeat,
        app_state=vm.app_state,
        failed_for=now - started,
        boot_time=vm.boot_time,
        recent_resets=resets,
        io=io,
        io_interval=interval,
        io_required=aware and cfg.ha.io_check_required,
    )
    window = tools.max_failure_window
    per = "ever (no failure window)" if window is None else f"per {window:.0f}s"
    if not verdict.reset:
        why = verdict.withheld
        if why == "max-resets":
            return out(
                Decision(
                    REFUSE, f"reset limit reached: {verdict.reason}; leaving the VM to a person"
                )
            )
        if why == "min-uptime" and vm.boot_time is not None:
            return out(Decision(DEFER, verdict.reason, retry_at=vm.boot_time + tools.min_uptime))
        if why == "failure-interval":
            return out(Decision(DEFER, verdict.reason, retry_at=started + tools.failure_interval))
        if why in ("io", "io-unknown"):
            if io is not None:
                memory["reset_withheld_io"] = {"disk_kbps": io.disk_kbps, "net_kbps": io.net_kbps}
            return out(
                Decision(DEFER, f"{verdict.reason}; no reset", retry_at=now + min(interval, 60.0))
            )
        return out(Decision(SKIP, verdict.reason))
    n = len([t for t in resets if window is None or now - t < window]) + 1
    step = Step(
        RESET,
        vm_id=vm.moid,
        vm=vm.name,
        host_id=host.moid,
        host=host.name,
        target_host_id=host.moid,
        target_host=host.name,
        fault_domain=host.fault_domain,
        priority=vm.priority,
        rank=vm.rank,
        reason=f"{verdict.reason} ({beats}); reset {n} of {tools.max_failures} {per}",
    )
    return out(Decision(PLAN, step.reason, steps=[step]))


def decide_evacuation(req: Request, snap: Snapshot, cfg: RemediatorConfig, now: float) -> Decision:
    """``evacuate_host``: vMotion a degraded host's running VMs away while it still answers."""
    memory = _memory(req, now)
    host = find_host(snap, req)
    if host is None:
        return Decision(SKIP, f"host {req.host_id or req.host} is not in vCenter", memory=memory)
    labels = _labels(snap, host)

    out = _finisher(memory, labels)

    if not host.responding:
        return out(
            Decision(
                SKIP,
                f"{host.name} is {host.connection_state}: vMotion needs a responding host; "
                "host failure handling applies",
            )
        )
    running = [v for v in snap.vms_on(host.moid) if v.running and not v.template]
    movable = [v for v in running if v.protected]
    placements = place(
        movable, snap, cfg.placement, avoid_fault_domain=host.fault_domain, exclude=[host.moid]
    )
    steps = []
    for p in placements:
        vm = snap.vms[p.vm_id]
        steps.append(
            Step(
                MIGRATE,
                vm_id=vm.moid,
                vm=vm.name,
                host_id=host.moid,
                host=host.name,
                target_host_id=p.target_id,
                target_host=p.target,
                fault_domain=p.fault_domain,
                priority=vm.priority,
                rank=vm.rank,
                reason=f"vMotion to {p.target}: {p.reason}" if p.placed else p.reason,
                state="pending" if p.placed else "unplaced",
            )
        )
    if cfg.enter_maintenance and not host.maintenance:
        steps.append(
            Step(
                ENTER_MAINTENANCE,
                host_id=host.moid,
                host=host.name,
                fault_domain=host.fault_domain,
                reason="enter maintenance mode once the VMs are off",
            )
        )
    if not steps:
        return out(Decision(SKIP, f"{host.name} has no running protected VMs to move"))
    unplaced = sum(1 for s in steps if s.state == "unplaced")
    left = len(running) - len(movable)
    reason = (
        f"{host.name} degraded: {len(movable) - unplaced} VMs to vMotion"
        f"{f', {unplaced} unplaced' if unplaced else ''}"
        f"{f', {left} unprotected left in place' if left else ''}"
    )
    return out(Decision(PLAN, reason, steps=steps))
