"""The work loop: journal -> live state -> guard -> policy -> placement -> vCenter -> journal.

A scheduler claims due actions from the journal and hands each to an asyncio worker;
blocking pyvmomi and SQLite calls run on thread pools (one thread for the journal, so its
writes never race), so a slow vCenter never blocks the webhook.  Every pass re-reads live
state first: the journal says what was asked and what was done, vCenter says what is true.

Decisions (one per alert firing) produce steps; steps are evaluated against the VM's live
state rather than replayed, so a step interrupted by a crash simply looks again: a VM
already relocated is only powered on, a VM already running is recorded as done.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from vcenter.config import Config
from vcenter.session import describe

from . import actions as act
from . import live, policy
from .alerts import HOST_KINDS, Delivery
from .config import RemediatorConfig
from .guard import MassFailureGuard, RateLimiter, VCenterHealth
from .journal import (
    CANCELLED,
    DONE,
    DRY_RUN,
    FAILED,
    PENDING,
    REFUSED,
    SKIPPED,
    STATES,
    TERMINAL,
    UNPLACED,
    Action,
    DeliveryResult,
    Journal,
    JournalError,
)
from .metrics import Metrics
from .model import Snapshot, VMState
from .placement import place

log = logging.getLogger("remediator")
T = TypeVar("T")


class Engine:
    def __init__(
        self,
        config: Config,
        rcfg: RemediatorConfig,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.rcfg = rcfg
        self.metrics = metrics
        self.clock = clock
        self.sessions = {
            vc.name: live.Session(vc, config, pool_size=rcfg.workers + 4) for vc in config.vcenters
        }
        self.health = {name: VCenterHealth() for name in self.sessions}
        self.guard = MassFailureGuard(rcfg.guard)
        self.limiter = RateLimiter(rcfg.rate_limit)
        self.journal: Journal | None = None
        self._db_pool = ThreadPoolExecutor(1, thread_name_prefix="vha-journal")
        self._vc_pool = ThreadPoolExecutor(
            rcfg.workers + 2 * len(self.sessions) + 2, thread_name_prefix="vha-vcenter"
        )
        self._tasks = asyncio.Semaphore(rcfg.max_concurrent_tasks)
        self._wake = asyncio.Event()
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._background: list[asyncio.Task[None]] = []
        self._pools: dict[tuple[str, str], str] = {}
        self._tasks_running = 0
        self.running = False
        metrics.dry_run.set(1 if rcfg.dry_run else 0)

    # --- plumbing --------------------------------------------------------------------

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db_pool, functools.partial(fn, *args, **kwargs))

    async def vc(self, vcenter: str, fn: Callable[..., T], *args: Any) -> T:
        session = self.sessions[vcenter]
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._vc_pool, session.call, fn, *args)

    @property
    def j(self) -> Journal:
        assert self.journal is not None, "engine not started"
        return self.journal

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Open the journal, recover what a crash left running, start the loops."""
        self.journal = await self.db(Journal, self.rcfg.journal_path)
        now = self.clock()
        recovered = await self.db(self.j.recover, now)
        if recovered:
            log.warning("recovered %d actions left running by a previous run", recovered)
        self.limiter.seed(
            await self.db(self.j.attempt_times, now - self.rcfg.rate_limit.window_seconds)
        )
        self.running = True
        self._background.append(asyncio.create_task(self._scheduler(), name="vha-scheduler"))
        for name in self.sessions:
            self._background.append(
                asyncio.create_task(self._watch(name), name=f"vha-watch-{name}")
            )
        log.info(
            "remediator started (dry_run=%s, workers=%d, max_concurrent_tasks=%d, journal=%s)",
            self.rcfg.dry_run,
            self.rcfg.workers,
            self.rcfg.max_concurrent_tasks,
            self.rcfg.journal_path,
        )

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming, let running work finish briefly, put the rest back to pending."""
        self.running = False
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()
        if self._in_flight:
            _, pending = await asyncio.wait(list(self._in_flight.values()), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self.journal is not None:
            try:
                await self.db(self.j.recover, self.clock())
            except JournalError as exc:
                log.error("journal: %s", exc)
            await self.db(self.j.close)
            self.journal = None
        for session in self.sessions.values():
            await asyncio.get_running_loop().run_in_executor(self._vc_pool, session.close)
        self._vc_pool.shutdown(wait=False, cancel_futures=True)
        self._db_pool.shutdown(wait=True)

    # --- intake ----------------------------------------------------------------------

    async def accept(self, body: str, delivery: Delivery, remote: str) -> DeliveryResult:
        """Journal a delivery durably; raises :class:`JournalError` when that fails."""
        now = self.clock()
        result = await self.db(
            self.j.record_delivery,
            body,
            delivery,
            remote=remote,
            now=now,
            vcenters=set(self.sessions),
            dry_run=self.rcfg.dry_run,
        )
        for alert in delivery.alerts:
            if (
                alert.status == "firing"
                and alert.remediation == "restart_host_vms"
                and alert.label("host_id")
            ):
                self.guard.note(
                    alert.label("vcenter"), alert.label("cluster"), alert.label("host_id"), now
                )
            outcome = "action" if alert.wants_action else "ignored"
            self.metrics.alerts_received.labels(status=alert.status, outcome=outcome).inc()
        self._wake.set()
        return result

    # --- loops -----------------------------------------------------------------------

    async def _scheduler(self) -> None:
        while self.running:
            self._wake.clear()
            free = self.rcfg.workers - len(self._in_flight)
            timeout = 1.0
            try:
                now = self.clock()
                if free > 0:
                    batch = await self.db(self.j.claim_due, now, free, list(self._in_flight))
                    for action in batch:
                        task = asyncio.create_task(
                            self._run(action), name=f"vha-action-{action.id}"
                        )
                        self._in_flight[action.id] = task
                    if len(batch) < free:
                        due = await self.db(self.j.next_due)
                        if due is not None:
                            timeout = max(0.02, min(1.0, due - self.clock()))
            except JournalError as exc:
                log.error("journal: %s", exc)
                timeout = 1.0
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass

    async def refresh_counts(self) -> None:
        """Journal backlog and states for /metrics, read at scrape time so they are exact."""
        if self.journal is None:
            return
        counts = await self.db(self.j.counts)
        for state in STATES:
            self.metrics.journal_actions.labels(state=state).set(counts.get(state, 0))
        self.metrics.backlog.set(counts.get(PENDING, 0) + counts.get("running", 0))

    async def _watch(self, vcenter: str) -> None:
        """Keep vCenter reachability and every cluster's failure count current for the guard."""
        health = self.health[vcenter]
        while self.running:
            now = self.clock()
            try:
                clusters = await self.vc(vcenter, live.all_hosts)
            except Exception as exc:  # noqa: BLE001 - any failure means unreachable
                if health.up or not health.checked_at:
                    log.warning("vCenter %s unreachable: %s", vcenter, describe(exc))
                health.mark_down(describe(exc), now)
                self.metrics.vcenter_errors.labels(vcenter=vcenter, category="unreachable").inc()
            else:
                if not health.up:
                    log.info("vCenter %s reachable", vcenter)
                    self._wake.set()
                health.mark_up(now)
                for name, hosts in clusters.values():
                    self.guard.observe(vcenter, name, hosts, now)
            self._guard_metrics(now)
            await asyncio.sleep(self.rcfg.state_refresh_seconds)

    def _guard_metrics(self, now: float) -> None:
        any_tripped = False
        for vcenter, cluster in self.guard.clusters():
            verdict = self.guard.verdict(vcenter, cluster, now)
            self.metrics.guard_tripped.labels(vcenter=vcenter, cluster=cluster).set(
                int(verdict.tripped)
            )
            self.metrics.guard_failed_hosts.labels(vcenter=vcenter, cluster=cluster).set(
                verdict.failed
            )
            if self.guard.first_trip(vcenter, cluster, verdict.tripped):
                log.warning("%s: acting on nothing in this cluster until it clears", verdict.reason)
            any_tripped |= verdict.tripped
        down = False
        for name, health in self.health.items():
            self.metrics.vcenter_up.labels(vcenter=name).set(int(health.up))
            down |= bool(health.checked_at) and not health.up
        state = "unreachable" if down else "tripped" if any_tripped else "ok"
        for s in ("ok", "tripped", "unreachable"):
            self.metrics.guard_state.labels(state=s).set(int(s == state))

    # --- one action ------------------------------------------------------------------

    async def _run(self, action: Action) -> None:
        try:
            if action.is_step:
                await self._step(action)
            else:
                await self._decide(action)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the loop
            log.exception("action %d (%s) failed unexpectedly", action.id, action.kind)
            try:
                await self._retry(action, f"internal error: {describe(exc)}")
            except Exception:  # noqa: BLE001
                log.exception("could not journal the failure of action %d", action.id)
        finally:
            self._in_flight.pop(action.id, None)
            self._wake.set()

    async def _finish(self, a: Action, state: str, reason: str, **kw: Any) -> None:
        quiet = state == PENDING and reason == a.reason
        settled = await self.db(self.j.finish, a.id, state, reason, self.clock(), quiet=quiet, **kw)
        if state in TERMINAL:
            self.metrics.actions.labels(kind=a.kind, result=state).inc()
            level = logging.WARNING if state in (FAILED, REFUSED, UNPLACED) else logging.INFO
            log.log(level, "action %d %s %s %s: %s", a.id, a.kind, a.vm or a.host, state, reason)
        self._settled(a.parent_id, settled)

    def _settled(self, parent_id: int | None, settled: tuple[str, str] | None) -> None:
        if settled is not None:
            kind, state = settled
            self.metrics.actions.labels(kind=kind, result=state).inc()
            log.info("action %s %s finished: %s", parent_id, kind, state)

    async def _hold(self, a: Action, reason: str) -> None:
        """Keep an action pending while a guard is up; past ``max_hold_seconds``, refuse it."""
        now = self.clock()
        if now - a.created_at > self.rcfg.guard.max_hold_seconds:
            await self._finish(a, REFUSED, f"held too long ({now - a.created_at:.0f}s): {reason}")
            return
        await self._finish(
            a, PENDING, f"held: {reason}", not_before=now + self.rcfg.state_refresh_seconds
        )

    async def _retry(self, a: Action, reason: str, *, attempts: int | None = None) -> None:
        n = a.attempts if attempts is None else attempts
        if n >= self.rcfg.retry.max_attempts:
            await self._finish(a, FAILED, f"{reason} (gave up after {n} attempts)")
            return
        delay = self.rcfg.retry.delay(max(1, n))
        await self._finish(
            a, PENDING, f"{reason}; retrying in {delay:.0f}s", not_before=self.clock() + delay
        )

    async def _guarded(self, a: Action, cluster: str) -> bool:
        """True when the action may proceed; otherwise it has been held."""
        health = self.health.get(a.vcenter)
        if health is None:
            await self._finish(a, SKIPPED, f"vCenter {a.vcenter} is no longer configured")
            return False
        if health.checked_at and not health.up:
            await self._hold(a, f"cannot reach vCenter {a.vcenter}: {health.error}")
            return False
        if cluster:
            verdict = self.guard.verdict(a.vcenter, cluster, self.clock())
            if verdict.tripped:
                self._guard_metrics(self.clock())
                await self._hold(a, verdict.reason)
                return False
        return True

    async def _read(self, a: Action, fn: Callable[..., T], *args: Any) -> T | None:
        """A live read; on failure the action is held, retried or skipped and None returned."""
        t0 = time.perf_counter()
        try:
            return await self.vc(a.vcenter, fn, *args)
        except live.NotFoundError as exc:
            await self._finish(a, SKIPPED, str(exc))
        except Exception as exc:  # noqa: BLE001 - every failure is journaled
            err = act.classify_fault(exc)
            self.metrics.vcenter_errors.labels(vcenter=a.vcenter, category=err.category).inc()
            if err.category == act.GONE:
                await self._finish(a, SKIPPED, f"no longer in vCenter: {err.message}")
            elif isinstance(exc, live.CONNECTION_ERRORS):
                self.health[a.vcenter].mark_down(describe(exc), self.clock())
                await self._hold(a, f"cannot reach vCenter {a.vcenter}: {describe(exc)}")
            else:
                attempts = await self.db(
                    self.j.start_attempt, a.id, self.clock(), "live read failed"
                )
                await self._retry(a, f"reading live state failed: {err.message}", attempts=attempts)
        finally:
            self.metrics.live_read_duration.observe(time.perf_counter() - t0)
        return None

    # --- decisions -------------------------------------------------------------------

    async def _decide(self, a: Action) -> None:
        if not await self.db(self.j.alerts_firing, a.id):
            await self._finish(a, CANCELLED, "every alert for this action has resolved")
            return
        if not await self._guarded(a, ""):
            return
        if a.kind in HOST_KINDS:
            snap = await self._read(a, live.snapshot_for_host, a.host_id, a.host)
        else:
            snap = await self._read(a, live.snapshot_for_vm, a.vm_id, a.vm)
        if snap is None:
            return
        self.health[a.vcenter].mark_up(self.clock())
        cluster = snap.cluster.name if snap.cluster else ""
        if snap.cluster is not None:
            self.guard.observe(a.vcenter, cluster, snap.hosts.values(), self.clock())
        if not await self._guarded(a, cluster):
            return

        now = self.clock()
        req = policy.Request(
            kind=a.kind,
            vcenter=a.vcenter,
            host_id=a.host_id,
            host=a.host,
            vm_id=a.vm_id,
            vm=a.vm,
            since=a.starts_ts,
            memory=a.detail,
        )
        decision = await self._policy(a, req, snap, now)
        memory = dict(decision.memory)
        fields = {k: v for k, v in decision.labels.items() if v or k == "cluster"}
        if decision.outcome == policy.SKIP:
            await self._finish(
                a,
                SKIPPED,
                decision.reason,
                detail=memory,
                restarted_by=decision.restarted_by,
                **fields,
            )
        elif decision.outcome == policy.DEFER:
            await self._finish(
                a,
                PENDING,
                decision.reason,
                not_before=decision.retry_at or now + 1,
                detail=memory,
                **fields,
            )
        elif decision.outcome == policy.REFUSE:
            await self._finish(a, REFUSED, decision.reason, detail=memory, **fields)
        else:
            if decision.needs_fencing and not memory.get("fenced"):
                if self.rcfg.dry_run:
                    memory["fenced"] = "dry run: fencing hook not run"
                else:
                    ok, message = await self._fence(a, decision.labels)
                    if not ok:
                        attempts = await self.db(
                            self.j.start_attempt, a.id, self.clock(), "fencing"
                        )
                        await self._retry(
                            a, f"fencing failed, no VM restarted: {message}", attempts=attempts
                        )
                        return
                    memory["fenced"] = message
            rows = [s.as_row(cluster) for s in decision.steps]
            _, settled = await self.db(
                self.j.plan, a, rows, decision.reason, self.clock(), memory, **fields
            )
            self._settled(a.id, settled)
            log.info("action %d %s %s planned: %s", a.id, a.kind, a.vm or a.host, decision.reason)
            for s in decision.steps:
                if s.state != PENDING:
                    self.metrics.actions.labels(kind=s.kind, result=s.state).inc()
                if s.state == UNPLACED:
                    log.warning("action %d: %s (%s) unplaced: %s", a.id, s.vm, s.priority, s.reason)

    async def _policy(
        self, a: Action, req: policy.Request, snap: Snapshot, now: float
    ) -> policy.Decision:
        """Gather what the pure policy needs from vCenter and the journal, then time it."""
        powered_off_by = ""
        resets: list[float] = []
        vm = policy.find_vm(snap, req) if a.kind not in HOST_KINDS else None
        if a.kind == "restart_vm" and vm is not None and vm.power_state == "poweredOff":
            host = snap.hosts.get(vm.host_id)
            if host is not None and host.responding:
                powered_off_by = await self.vc(a.vcenter, live.powered_off_by, vm.moid) or ""
        if a.kind == "reset_vm" and vm is not None:
            _, window, _ = policy.reset_limits(snap, self.rcfg)
            resets = await self.db(self.j.done_resets, a.vcenter, vm.moid, now - window)
        t0, cpu0 = time.perf_counter(), time.thread_time()
        if a.kind == "restart_host_vms":
            decision = policy.decide_host_failure(req, snap, self.rcfg, now)
        elif a.kind == "evacuate_host":
            decision = policy.decide_evacuation(req, snap, self.rcfg, now)
        elif a.kind == "restart_vm":
            decision = policy.decide_vm_failure(req, snap, self.rcfg, now, powered_off_by)
        else:
            decision = policy.decide_reset(req, snap, self.rcfg, now, resets)
        took = time.perf_counter() - t0
        self.metrics.decision_duration.labels(kind=a.kind).observe(took)
        decision.memory["decision_ms"] = round(took * 1000, 3)
        # CPU time of the deciding thread: the decision's own cost, without the time it
        # waited for the interpreter while worker threads parsed vCenter replies.
        decision.memory["decision_cpu_ms"] = round((time.thread_time() - cpu0) * 1000, 3)
        decision.memory["live_vms"] = len(snap.vms)
        return decision

    async def _fence(self, a: Action, labels: dict[str, str]) -> tuple[bool, str]:
        """Run the fencing hook (power the failed host off out of band) before restarting.

        Restarting a VM while its old host might still run it is the split-brain risk;
        a fence that confirms the host is off removes it.  Non-zero exit or a timeout means
        no restart.
        """
        cmd = self.rcfg.host_failure.fencing_command
        env = dict(os.environ)
        env.update(
            VHA_VCENTER=a.vcenter,
            VHA_HOST=labels.get("host", a.host),
            VHA_HOST_ID=labels.get("host_id", a.host_id),
            VHA_CLUSTER=labels.get("cluster", a.cluster),
            VHA_ACTION_ID=str(a.id),
        )
        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
            )
        except OSError as exc:
            return False, f"cannot run {cmd[0]}: {exc.strerror}"
        try:
            out, _ = await asyncio.wait_for(
                proc.communicate(), self.rcfg.host_failure.fencing_timeout_seconds
            )
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return (
                False,
                f"{cmd[0]} timed out after {self.rcfg.host_failure.fencing_timeout_seconds:.0f}s",
            )
        tail = (out or b"").decode(errors="replace").strip().splitlines()
        last = tail[-1][:200] if tail else ""
        if proc.returncode != 0:
            return False, f"{cmd[0]} exited {proc.returncode}: {last}"
        return True, f"fenced by {cmd[0]}{': ' + last if last else ''}"

    # --- steps -----------------------------------------------------------------------

    async def _step(self, s: Action) -> None:
        assert s.parent_id is not None
        if not await self.db(self.j.alerts_firing, s.parent_id):
            await self._finish(s, CANCELLED, "every alert for this action has resolved")
            return
        if not await self._guarded(s, s.cluster):
            return
        if s.kind == policy.RESTART:
            await self._restart(s)
        elif s.kind == policy.RESET:
            await self._reset(s)
        elif s.kind == policy.MIGRATE:
            await self._migrate(s)
        elif s.kind == policy.ENTER_MAINTENANCE:
            await self._maintenance(s)
        else:
            await self._finish(s, FAILED, f"unknown step kind {s.kind!r}")

    async def _pool(self, s: Action, cluster_id: str) -> str:
        """The cluster's root resource pool (cached: it does not change)."""
        key = (s.vcenter, cluster_id)
        if key not in self._pools:
            try:
                self._pools[key] = await self.vc(s.vcenter, live.cluster_pool, cluster_id)
            except Exception as exc:  # noqa: BLE001 - reported like any failed change
                raise act.classify_fault(exc) from exc
        return self._pools[key]

    async def _admit(self, s: Action, what: str) -> bool:
        """Rate limit and dry run, the last gates before vCenter changes."""
        if self.rcfg.dry_run:
            await self._finish(s, DRY_RUN, f"dry run: would {what}")
            return False
        retry_at = self.limiter.acquire(s.vcenter, s.cluster, self.clock())
        if retry_at is not None:
            lim = self.rcfg.rate_limit
            await self._finish(
                s,
                PENDING,
                f"rate limit: {lim.max_actions} actions per {lim.window_seconds:.0f}s in cluster "
                f"{s.cluster} reached",
                not_before=retry_at,
            )
            return False
        return True

    async def _change(self, s: Action, what: str, fn: Callable[..., T], *args: Any) -> T:
        """Run one vCenter change under the concurrency limit, journaling the attempt first."""
        attempts = await self.db(self.j.start_attempt, s.id, self.clock(), what, not s.counted)
        s.attempts, s.counted = attempts, True
        async with self._tasks:
            self._tasks_running += 1
            self.metrics.in_flight.set(self._tasks_running)
            t0 = time.perf_counter()
            try:
                return await self.vc(s.vcenter, fn, *args)
            finally:
                self._tasks_running -= 1
                self.metrics.in_flight.set(self._tasks_running)
                self.metrics.action_duration.labels(kind=s.kind).observe(time.perf_counter() - t0)

    async def _failed_change(self, s: Action, err: act.StepError, *, target: str = "") -> None:
        self.metrics.vcenter_errors.labels(vcenter=s.vcenter, category=err.category).inc()
        if err.category == act.GONE:
            await self._finish(s, SKIPPED, f"no longer in vCenter: {err.message}")
        elif err.category == act.REPLACE and target:
            detail = dict(s.detail)
            detail["excluded"] = sorted({*detail.get("excluded", []), target})
            if s.attempts >= self.rcfg.retry.max_attempts:
                await self._finish(
                    s, FAILED, f"{target} refused: {err.message} (gave up)", detail=detail
                )
            else:
                await self._finish(
                    s,
                    PENDING,
                    f"{target} refused: {err.message}; choosing another host",
                    detail=detail,
                    not_before=self.clock(),
                )
        elif err.category in (act.RETRY, act.TIMEOUT, act.REPLACE):
            await self._retry(s, err.message)
        else:
            await self._finish(s, FAILED, err.message)

    async def _restart(self, s: Action) -> None:
        """Make the VM run on a healthy host: power on where it is, or move it first."""
        vm_id = str(s.detail.get("new_vm_id") or s.vm_id)
        unregistered = s.detail.get("unregistered")
        snap = await self._read(s, live.objects_snapshot, [vm_id], [s.host_id, s.target_host_id])
        if snap is None:
            return
        vm = snap.vms.get(vm_id)
        if vm is None and not unregistered:
            await self._finish(s, SKIPPED, "no longer in vCenter's inventory")
            return
        if vm is not None and unregistered:
            # The last pass died before the VM actually left the inventory: start over.
            s.detail = {k: v for k, v in s.detail.items() if k != "unregistered"}
        if vm is not None and vm.host_id and vm.host_id not in snap.hosts:
            more = await self._read(s, live.objects_snapshot, [], [vm.host_id])
            if more is None:
                return
            snap = Snapshot(
                snap.vcenter, snap.taken_at, None, {**snap.hosts, **more.hosts}, snap.vms
            )
        source = snap.hosts.get(s.host_id)
        cluster_id = source.cluster_id if source else ""
        if vm is not None:
            cur = snap.hosts.get(vm.host_id)
            if vm.running and cur is not None and not cur.down:
                if s.attempts > 0:
                    await self._finish(
                        s,
                        DONE,
                        f"running on {cur.name}",
                        restarted_by=policy.BY_REMEDIATOR,
                        target_host_id=cur.moid,
                        target_host=cur.name,
                    )
                else:
                    await self._finish(
                        s,
                        SKIPPED,
                        f"already running on {cur.name}: restarted by vSphere HA (or a person)",
                        restarted_by=policy.BY_HA,
                        target_host_id=cur.moid,
                        target_host=cur.name,
                    )
                return
            if (
                cur is not None
                and cur.healthy
                and (cur.moid != s.host_id or cur.moid == s.target_host_id)
            ):
                if not await self._admit(s, f"power on {vm.name} on {cur.name}"):
                    return
                try:
                    await self._change(
                        s,
                        f"power on on {cur.name}",
                        act.power_on,
                        vm.moid,
                        self.rcfg.action_timeout_seconds,
                    )
                except act.StepError as err:
                    await self._failed_change(s, err, target=cur.moid)
                    return
                await self._finish(
                    s,
                    DONE,
                    f"powered on on {cur.name}",
                    restarted_by=policy.BY_REMEDIATOR,
                    target_host_id=cur.moid,
                    target_host=cur.name,
                )
                return
            cluster_id = cluster_id or (cur.cluster_id if cur else "")

        # The VM must leave its host: check the planned target, or choose again.
        target = snap.hosts.get(s.target_host_id)
        excluded = set(s.detail.get("excluded", []))
        if target is None or not target.healthy or target.moid in excluded:
            if not cluster_id:
                await self._finish(
                    s, FAILED, "the planned target is unusable and the VM cannot be re-placed"
                )
                return
            full = await self._read(s, live.cluster_snapshot, cluster_id)
            if full is None:
                return
            # A VM half-way through re-registering is in no inventory: place its name.
            candidate = vm or VMState(moid=s.vm_id, name=s.vm, priority=s.priority)
            placed = place(
                [full.vms.get(candidate.moid, candidate)],
                full,
                self.rcfg.placement,
                avoid_fault_domain=source.fault_domain if source else "",
                exclude={s.host_id, *excluded},
            )[0]
            if not placed.placed:
                await self._finish(s, UNPLACED, placed.reason)
                return
            target = full.hosts[placed.target_id]
            await self.db(
                self.j.finish,
                s.id,
                "running",
                f"re-placed on {target.name}: {placed.reason}",
                self.clock(),
                target_host_id=target.moid,
                target_host=target.name,
            )
            cluster_id = target.cluster_id or cluster_id
        name = vm.name if vm is not None else s.vm
        if not await self._admit(s, f"move {name} to {target.name} and power it on"):
            return
        try:
            pool = await self._pool(s, target.cluster_id or cluster_id)
            cur = snap.hosts.get(vm.host_id) if vm is not None else None
            new_id = await self._move(s, vm, target.moid, pool, cur is None or cur.down)
            # A re-registered VM asks whether it was moved or copied before it boots.
            reregistered = vm is None or new_id != vm.moid
            await self._change(
                s,
                f"power on on {target.name}",
                functools.partial(act.power_on, answer=reregistered),
                new_id,
                self.rcfg.action_timeout_seconds,
            )
        except act.StepError as err:
            await self._failed_change(s, err, target=target.moid)
            return
        await self._finish(
            s,
            DONE,
            f"restarted on {target.name}",
            restarted_by=policy.BY_REMEDIATOR,
            target_host_id=target.moid,
            target_host=target.name,
        )

    async def _move(self, s: Action, vm: Any, target_id: str, pool: str, source_down: bool) -> str:
        """Relocate the VM, or re-register it from its datastore, onto ``target_id``.

        vCenter will not relocate a VM off a host it cannot reach, so ``auto`` re-registers
        VMs of a down host and relocates the rest (and still falls back to re-registering
        when a relocation is refused because of the source host).  Returns the moid the VM
        has afterwards: re-registering makes a new one.
        """
        method = self.rcfg.host_failure.move_method
        timeout = self.rcfg.action_timeout_seconds
        if s.detail.get("unregistered"):
            return await self._register(s, target_id, pool, adopt=True)
        assert vm is not None
        if method == "relocate" or (method == "auto" and not source_down):
            try:
                await self._change(
                    s,
                    f"relocate to {target_id}",
                    act.relocate,
                    vm.moid,
                    target_id,
                    pool,
                    timeout,
                    vm.host_id,
                )
                return str(vm.moid)
            except act.StepError as err:
                if err.category == act.FALLBACK and method == "relocate":
                    raise act.StepError(
                        act.FATAL,
                        f"vCenter will not relocate off a host it cannot reach ({err.message}); "
                        "host_failure.move_method auto or register re-registers the VM instead",
                    ) from err
                if err.category != act.FALLBACK:
                    raise
                log.info(
                    "action %d: relocation refused (%s); re-registering instead", s.id, err.message
                )
        if not vm.vmx_path or not vm.folder_id:
            raise act.StepError(
                act.FATAL, "cannot re-register: the VM's .vmx path or folder is unknown"
            )
        detail = dict(s.detail)
        detail["unregistered"] = {
            "vmx_path": vm.vmx_path,
            "folder_id": vm.folder_id,
            "name": vm.name,
            "attributes": dict(vm.custom_values),
        }
        # Record what is needed to register again *before* the VM leaves the inventory,
        # so a crash in between cannot lose it.
        await self.db(
            self.j.finish,
            s.id,
            "running",
            "re-registering from the datastore",
            self.clock(),
            detail=detail,
        )
        s.detail = detail
        await self._change(s, "unregister from the failed host", act.unregister, vm.moid)
        return await self._register(s, target_id, pool, adopt=False)

    async def _register(self, s: Action, target_id: str, pool: str, *, adopt: bool) -> str:
        """Register the unregistered VM on ``target_id``; journal its new moid.

        ``adopt``: a previous pass got this far and may have registered the VM before it
        died, in which case that VM is taken over instead of registering the files twice.
        """
        info = s.detail["unregistered"]
        attrs = info.get("attributes") or {}
        found = ""
        if adopt:
            found = await self.vc(
                s.vcenter, live.find_registered, info["name"], info["vmx_path"], s.vm_id
            )
        if found:
            log.info("action %d: adopting %s, registered before a restart", s.id, found)
            await self.vc(s.vcenter, act.set_attributes, found, attrs)
            new_id = found
        else:
            new_id = await self._change(
                s,
                f"register on {target_id}",
                functools.partial(
                    act.register,
                    name=info["name"],
                    vmx_path=info["vmx_path"],
                    folder_id=info["folder_id"],
                    host_id=target_id,
                    pool_id=pool,
                    timeout=self.rcfg.action_timeout_seconds,
                    attributes=attrs,
                ),
            )
        detail = dict(s.detail)
        detail.pop("unregistered", None)
        detail["new_vm_id"] = new_id
        await self.db(
            self.j.finish, s.id, "running", f"registered as {new_id}", self.clock(), detail=detail
        )
        s.detail = detail
        return str(new_id)

    async def _reset(self, s: Action) -> None:
        snap = await self._read(s, live.objects_snapshot, [s.vm_id], [s.host_id])
        if snap is None:
            return
        vm = snap.vms.get(s.vm_id)
        if vm is None:
            await self._finish(s, SKIPPED, "no longer in vCenter's inventory")
            return
        if s.attempts > 0 and vm.boot_time and s.started_at and vm.boot_time >= s.started_at - 1:
            await self._finish(
                s,
                DONE,
                "reset (completed before a restart of the remediator)",
                restarted_by=policy.BY_REMEDIATOR,
            )
            return
        if not vm.running:
            await self._finish(s, SKIPPED, f"VM is {vm.power_state}: nothing to reset")
            return
        if not vm.heartbeat_failed:
            await self._finish(s, SKIPPED, f"heartbeats recovered (guest {vm.guest_heartbeat})")
            return
        if not await self._admit(s, f"reset {vm.name}"):
            return
        try:
            await self._change(s, "reset", act.reset, vm.moid, self.rcfg.action_timeout_seconds)
        except act.StepError as err:
            await self._failed_change(s, err)
            return
        await self._finish(s, DONE, f"reset {vm.name}", restarted_by=policy.BY_REMEDIATOR)

    async def _migrate(self, s: Action) -> None:
        snap = await self._read(s, live.objects_snapshot, [s.vm_id], [s.host_id, s.target_host_id])
        if snap is None:
            return
        vm = snap.vms.get(s.vm_id)
        if vm is None:
            await self._finish(s, SKIPPED, "no longer in vCenter's inventory")
            return
        source = snap.hosts.get(s.host_id)
        if vm.host_id != s.host_id:
            where = vm.host_id
            if s.attempts > 0 and vm.host_id == s.target_host_id:
                await self._finish(
                    s, DONE, f"moved to {s.target_host}", restarted_by=policy.BY_REMEDIATOR
                )
            else:
                await self._finish(s, SKIPPED, f"already moved off {s.host} (now on {where})")
            return
        if not vm.running:
            await self._finish(s, SKIPPED, f"VM is {vm.power_state}: nothing to vMotion")
            return
        if source is None or not source.responding:
            await self._finish(
                s, SKIPPED, "the source host stopped responding: host failure handling applies"
            )
            return
        target = snap.hosts.get(s.target_host_id)
        excluded = set(s.detail.get("excluded", []))
        if target is None or not target.healthy or target.moid in excluded:
            full = await self._read(s, live.cluster_snapshot, source.cluster_id)
            if full is None:
                return
            placed = place(
                [full.vms.get(vm.moid, vm)],
                full,
                self.rcfg.placement,
                avoid_fault_domain=source.fault_domain,
                exclude={source.moid, *excluded},
            )[0]
            if not placed.placed:
                await self._finish(s, UNPLACED, placed.reason)
                return
            target = full.hosts[placed.target_id]
        if not await self._admit(s, f"vMotion {vm.name} to {target.name}"):
            return
        try:
            pool = await self._pool(s, target.cluster_id or source.cluster_id)
            await self._change(
                s,
                f"vMotion to {target.name}",
                act.relocate,
                vm.moid,
                target.moid,
                pool,
                self.rcfg.action_timeout_seconds,
            )
        except act.StepError as err:
            await self._failed_change(s, err, target=target.moid)
            return
        await self._finish(
            s,
            DONE,
            f"moved live to {target.name}",
            restarted_by=policy.BY_REMEDIATOR,
            target_host_id=target.moid,
            target_host=target.name,
        )

    async def _maintenance(self, s: Action) -> None:
        assert s.parent_id is not None
        siblings = [x for x in await self.db(self.j.siblings, s.parent_id) if x.id != s.id]
        if any(x.state in (PENDING, "running") for x in siblings):
            await self._finish(
                s, PENDING, "waiting for the VMs to move off", not_before=self.clock() + 1
            )
            return
        snap = await self._read(s, live.snapshot_for_host, s.host_id, s.host)
        if snap is None:
            return
        host = snap.hosts.get(s.host_id)
        if host is None:
            await self._finish(s, SKIPPED, "host no longer in vCenter")
            return
        if host.maintenance:
            await self._finish(s, DONE if s.attempts else SKIPPED, "already in maintenance mode")
            return
        running = [v.name for v in snap.vms_on(host.moid) if v.running]
        if running and not self.rcfg.dry_run:
            await self._finish(
                s,
                SKIPPED,
                f"{len(running)} VMs still running ({', '.join(sorted(running)[:5])}); "
                "not entering maintenance",
            )
            return
        if not await self._admit(s, f"put {host.name} into maintenance mode"):
            return
        try:
            await self._change(
                s,
                "enter maintenance mode",
                act.enter_maintenance,
                host.moid,
                self.rcfg.action_timeout_seconds,
            )
        except act.StepError as err:
            await self._failed_change(s, err)
            return
        await self._finish(
            s, DONE, f"{host.name} entered maintenance mode", restarted_by=policy.BY_REMEDIATOR
        )
