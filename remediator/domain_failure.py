"""``restart_fault_domain_vms``: a whole fault domain failed (``VsphereFaultDomainDown``).

While a fault domain is down, Alertmanager inhibits its hosts' own alerts (one page for
the domain, not one per host), and ``VsphereClusterMassHostFailure`` inhibits the
cluster's ``restart_host_vms``: right while the cause may be a partition, wrong once the
hosts are confirmed dead, because a rack losing power is exactly what HA exists for. So
the fault-domain alert itself carries this remediation (it is never inhibited by the mass
alert, which targets ``restart_host_vms`` only), and the remediator decides on its own
live read of the cluster (:func:`.fault_domains.domain_state`):

* **down** (every host silent to vCenter *and* HA ``hostDown``, powered off, "off" by
  the out-of-band confirmation hook (:mod:`.confirm`), or fenced with
  ``fence_to_confirm``): each host's VMs are decided exactly as for
  ``restart_host_vms`` (:func:`.policy.decide_host_failure`: who is responsible, HA's
  priorities, "never make things worse"), one host after the other over one snapshot
  that carries the placements made so far, so the domain's VMs share the survivors'
  capacity instead of each host's VMs counting it afresh; the fencing hook, if
  configured, fences every host with VMs to restart;
* **partitioned** (silent, but HA or the confirmation hook sees a host alive) or
  **unknown** (silent, nothing confirms it; with ``fence_to_confirm`` fenced first):
  held and re-read every ``state_refresh_seconds``; after
  ``host_failure.max_unconfirmed_seconds`` refused, leaving it to the person the alert
  paged. Nothing is restarted: its VMs may still run;
* **up** (a host answers again): skipped; the hosts' own alerts, no longer inhibited,
  take over.

The guard leaves a confirmed-down domain's hosts out of its count (guard.py), so the
restart steps of a domain that is half the cluster are not held as a mass failure, while
any *other* failed host still counts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from . import confirm, orchestrate, policy
from .config import RemediatorConfig
from .confirm import DOWN_, FENCE, Confirmation
from .fault_domains import DOWN, UNKNOWN, UP, domain_state
from .ha_settings import HAView, read_ha
from .journal import PENDING, REFUSED, SKIPPED, Action
from .model import HostState, Snapshot
from .responsibility_metrics import count_domain

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("remediator")

Fence = Callable[["Engine", Action, dict[str, str]], Awaitable[tuple[bool, str]]]


async def decide_domain(engine: Engine, a: Action, fence: Fence) -> None:
    cluster_id, _, domain = a.target.partition("/")
    snap = await engine.read_cluster(a, cluster_id)
    if snap is None:
        return
    now = engine.clock()
    engine.health[a.vcenter].mark_up(now)
    ha_on = bool(snap.cluster and snap.cluster.ha_enabled)
    cluster = snap.cluster.name if snap.cluster else a.cluster
    members = [h for h in snap.hosts.values() if h.fault_domain == domain]
    memory: dict[str, Any] = dict(a.detail)
    memory.setdefault("first_seen", now)
    fields = {"cluster": cluster, "fault_domain": domain}
    confirmations = await _confirmations(engine, a, members, cluster)
    engine.guard.observe(a.vcenter, cluster, snap.hosts.values(), now, ha_on)
    if confirmations:
        engine.guard_metrics(now)  # the gauge shows at once what the answers confirmed
    # The verdict first: a partition is journaled as one, not as a tripped guard.
    verdict = domain_state(domain, snap.hosts.values(), ha_on, confirmations)
    fence_first = engine.rcfg.host_failure.fence_to_confirm and not ha_on  # not HA's hosts
    if verdict.state == UNKNOWN and fence_first and members:
        # Fencing is the one irreversible act here: only after confirm_seconds of silence,
        # and only if the guard, counting these hosts as unconfirmed failures, lets it.
        wait = _confirm_wait(engine, a, snap, members, confirmations, memory, now)
        if wait is not None:
            confirm.journal(memory, confirmations)
            await engine.finish(
                a, PENDING, wait.reason, not_before=wait.retry_at, detail=memory, **fields
            )
            return
        if not await engine.guarded(a, cluster, detail=memory):
            return
        fenced = await _fence_to_confirm(engine, a, members, confirmations, cluster, fence, memory)
        if fenced is None:
            return  # a fence failed: retried with backoff (fences done kept), nothing restarted
        if fenced:
            memory["fenced"] = "; ".join(fenced)
            engine.guard.observe(a.vcenter, cluster, snap.hosts.values(), now, ha_on)
            verdict = domain_state(domain, snap.hosts.values(), ha_on, confirmations)
        elif engine.rcfg.dry_run:
            verdict = replace(
                verdict, reason=verdict.reason + "; dry run: fence_to_confirm not run"
            )
    confirm.journal(memory, confirmations)
    memory["domain"] = {"state": verdict.state, "reason": verdict.reason}
    if verdict.state == UP:
        await engine.finish(
            a,
            SKIPPED,
            f"fault domain back: {verdict.reason}; its hosts' own alerts take over",
            detail=memory,
            **fields,
        )
        return
    if verdict.state != DOWN:
        waited = now - float(memory["first_seen"])
        limit = engine.rcfg.host_failure.max_unconfirmed_seconds
        if waited >= limit:
            await engine.finish(
                a,
                REFUSED,
                f"never confirmed down after {waited:.0f}s: {verdict.reason}; "
                "leaving it to a person",
                detail=memory,
                **fields,
            )
            return
        await engine.finish(
            a,
            PENDING,
            verdict.reason,
            not_before=now + engine.rcfg.state_refresh_seconds,
            detail=memory,
            **fields,
        )
        return
    if not await engine.guarded(a, cluster, detail=memory):  # other failed hosts can trip it
        return
    hosts = sorted((h for h in snap.hosts.values() if h.fault_domain == domain), key=_name)
    view = await _ha_view(engine, a, snap, hosts, memory)
    t0 = time.perf_counter()
    last_connected = engine.guard.last_connected(a.vcenter)
    decision = plan_domain(
        a.vcenter,
        a.starts_ts,
        snap,
        hosts,
        engine.rcfg,
        now,
        view,
        memory,
        last_connected,
        confirmations,
    )
    engine.metrics.decision_duration.labels(kind=a.kind).observe(time.perf_counter() - t0)
    count_domain(engine, a, a.detail, memory, cluster)  # who was responsible, per VM
    if decision.outcome != policy.PLAN:
        state = {policy.SKIP: SKIPPED, policy.REFUSE: REFUSED}.get(decision.outcome, PENDING)
        await engine.finish(
            a,
            state,
            decision.reason,
            not_before=decision.retry_at or now + 1,
            detail=memory,
            **fields,
        )
        return
    if engine.rcfg.host_failure.fencing_command and not memory.get("fenced"):
        # each fence journaled as it succeeds: a retry after another host's failed fence
        # fences only the hosts still unfenced
        done: dict[str, str] = dict(memory.get("fenced_hosts") or {})
        for h in hosts:
            if h.moid in done:
                continue
            if not any(s.host_id == h.moid and s.state == PENDING for s in decision.steps):
                continue
            if engine.rcfg.dry_run:
                done[h.moid] = f"{h.name}: dry run, fencing hook not run"
                continue
            ok, message = await fence(engine, a, {"host": h.name, "host_id": h.moid, **fields})
            if not ok:
                memory["fenced_hosts"] = done
                attempts = await engine.db(engine.j.start_attempt, a.id, engine.clock(), "fencing")
                await engine.retry(
                    a,
                    f"fencing {h.name} failed, no VM restarted: {message}",
                    attempts=attempts,
                    detail=memory,
                )
                return
            done[h.moid] = f"{h.name}: {message}"
        memory["fenced_hosts"] = done
        memory["fenced"] = "; ".join(done.values())
    rows = [s.as_row(cluster) for s in decision.steps]
    # the domain's VMs restart tier by tier, all of its hosts together (orchestrate.py)
    tiers = await orchestrate.prepare(engine, a, cluster_id, rows)
    _, settled = await engine.db(
        engine.j.plan, a, rows, decision.reason, engine.clock(), memory, **fields
    )
    engine.settled(a.id, settled)
    log.info("action %d %s %s planned: %s", a.id, a.kind, domain, decision.reason)
    if tiers is not None:
        await engine.orchestrators.started(engine, a, tiers)


def _name(h: HostState) -> str:
    return h.name


async def _confirmations(
    engine: Engine, a: Action, members: list[HostState], cluster: str
) -> dict[str, Confirmation]:
    """The out-of-band answers for a silent domain's hosts: the confirmation hook's (asked
    again at most every state_refresh_seconds) and the fences this remediator ran (kept
    in memory, and taken back from the decision's journal after a restart)."""
    if not members or any(h.responding for h in members):
        return {}  # a domain with a host answering is up: nothing to confirm
    journaled = a.detail.get("confirm") or {}
    for h in members:  # a fence this remediator ran before it restarted (its journal)
        seen = journaled.get(h.moid)
        if isinstance(seen, dict) and seen.get("source") == FENCE:
            if engine.confirms.fence(a.vcenter, h.moid) is None:
                engine.confirms.put(a.vcenter, Confirmation.from_detail(seen))
    out = await confirm.confirm_hosts(engine, a, members, cluster)
    for h in members:  # a fence stands until the hook says the host is alive
        best = confirm.merged(out.get(h.moid), engine.confirms.fence(a.vcenter, h.moid))
        if best is not None:
            out[h.moid] = best
    return out


def _confirm_wait(
    engine: Engine,
    a: Action,
    snap: Snapshot,
    members: list[HostState],
    confirmations: Mapping[str, Confirmation],
    memory: dict[str, Any],
    now: float,
) -> policy.Decision | None:
    """Why ``fence_to_confirm`` may not fence the domain yet (``confirm_seconds`` of
    silence not over), or ``None``. The silence counts, as for a single host
    (:func:`.policy.confirm_host_failure`), from the later of a plausible alert start and
    this remediator's first look at the failure; the hosts' own decisions then count from
    the same moment, so the wait is not paid twice."""
    req = policy.Request(
        kind=a.kind,
        vcenter=a.vcenter,
        since=a.starts_ts,
        last_connected=engine.guard.last_connected(a.vcenter),
    )
    per_host: dict[str, Any] = dict(memory.get("hosts") or {})
    for h in sorted(members, key=_name):
        since = policy.brake_start(req, memory, now, h.moid)
        seen = dict(per_host.get(h.moid) or {})
        seen.setdefault("failure_seen", memory["failure_seen"])
        per_host[h.moid] = seen
        d = policy.confirm_host_failure(h, snap, engine.rcfg, now, since, confirmations.get(h.moid))
        if d is not None and d.outcome == policy.DEFER:
            return d
    memory["hosts"] = per_host
    return None


async def _fence_to_confirm(
    engine: Engine,
    a: Action,
    members: list[HostState],
    confirmations: dict[str, Confirmation],
    cluster: str,
    fence: Fence,
    memory: dict[str, Any],
) -> list[str] | None:
    """``host_failure.fence_to_confirm``: fence every silent host of the domain that
    nothing else confirmed, and count each successful fence as "confirmed down" (a fenced
    host is off). The price: a rack that was only partitioned loses its running VMs (they
    restart elsewhere). Never reached for a partition (an "alive" answer, or HA seeing a
    host alive: the verdict is then partitioned, not unknown), never run in dry run.
    ``None`` when a fence failed (the action is retried with the fences that succeeded
    journaled in ``detail.confirm``, so they are not run again, nothing restarted)."""
    if engine.rcfg.dry_run:
        return []
    done: list[str] = []
    for h in sorted(members, key=_name):
        c = confirmations.get(h.moid)
        if h.responding or h.power_state == "poweredOff" or (c and c.result == DOWN_):
            continue
        labels = {"host": h.name, "host_id": h.moid, "cluster": cluster}
        ok, message = await fence(engine, a, labels)
        if not ok:
            confirm.journal(memory, confirmations)  # with the fences that succeeded
            attempts = await engine.db(engine.j.start_attempt, a.id, engine.clock(), "fencing")
            await engine.retry(
                a,
                f"fencing {h.name} to confirm it down failed, no VM restarted: {message}",
                attempts=attempts,
                detail=memory,
            )
            return None
        fenced = Confirmation(h.moid, h.name, DOWN_, message, engine.clock(), FENCE, a.id)
        engine.confirms.put(a.vcenter, fenced)
        confirmations[h.moid] = fenced
        done.append(f"{h.name}: {message}")
    return done


async def _ha_view(
    engine: Engine, a: Action, snap: Snapshot, hosts: list[HostState], memory: dict[str, Any]
) -> HAView | None:
    """vSphere HA's settings and VM facts for every VM of the domain (one more call)."""
    if not engine.rcfg.ha.defer_to_ha or snap.cluster is None:
        return None
    ids: set[str] = set()
    for h in hosts:
        ids |= set(((memory.get("hosts") or {}).get(h.moid) or {}).get("vms") or {})
        ids |= {v.moid for v in snap.vms_on(h.moid)}
    return await engine.vc(a.vcenter, read_ha, snap.cluster.moid, sorted(ids))


def plan_domain(
    vcenter: str,
    since: float,
    snap: Snapshot,
    hosts: list[HostState],
    cfg: RemediatorConfig,
    now: float,
    view: HAView | None,
    memory: dict[str, Any],
    last_connected: Mapping[str, float],
    confirmations: Mapping[str, Confirmation] | None = None,
) -> policy.Decision:
    """Every host of a confirmed-down domain decided as ``restart_host_vms``, in name
    order, each over the snapshot as the previous hosts' placements left it.

    Any host still waiting (confirmation, HA's grace or HA restarting) makes the whole
    domain wait: planning some hosts now and others never would strand their VMs."""
    per_host: dict[str, Any] = dict(memory.get("hosts") or {})
    steps: list[policy.Step] = []
    waits: list[tuple[float, str]] = []
    others: list[str] = []
    refused = False
    for h in hosts:
        req = policy.Request(
            kind="restart_host_vms",
            vcenter=vcenter,
            host_id=h.moid,
            host=h.name,
            since=since,
            memory=per_host.get(h.moid) or {},
            last_connected=last_connected,
            confirmations=confirmations or {},
        )
        d = policy.decide_host_failure(req, snap, cfg, now, view)
        per_host[h.moid] = d.memory
        if d.outcome == policy.DEFER:
            waits.append((d.retry_at or now + 1, f"{h.name}: {d.reason}"))
        elif d.outcome == policy.PLAN:
            steps.extend(d.steps)
            snap = _placed(snap, d.steps)
            others.append(f"{h.name}: {d.reason}")
        else:
            refused = refused or d.outcome == policy.REFUSE
            others.append(f"{h.name}: {d.reason}")
    memory["hosts"] = per_host
    head = f"fault domain {hosts[0].fault_domain} confirmed down ({len(hosts)} hosts)"
    if waits:
        return policy.Decision(
            policy.DEFER,
            f"{head}; waiting: " + "; ".join(w for _, w in waits),
            retry_at=min(t for t, _ in waits),
        )
    if not steps:
        outcome = policy.REFUSE if refused else policy.SKIP
        return policy.Decision(outcome, f"{head}: " + "; ".join(others))
    return policy.Decision(policy.PLAN, f"{head}: " + "; ".join(others), steps=steps)


def _placed(snap: Snapshot, steps: list[policy.Step]) -> Snapshot:
    """The snapshot with this batch's placed VMs on their targets, so the next host's
    VMs see the capacity they took."""
    vms = dict(snap.vms)
    for s in steps:
        vm = vms.get(s.vm_id)
        if s.state == PENDING and s.target_host_id and vm is not None:
            vms[s.vm_id] = replace(vm, host_id=s.target_host_id, power_state="poweredOn")
    return replace(snap, vms=vms)
