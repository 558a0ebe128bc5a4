"""The work loop: journal -> live state -> guard -> policy -> placement -> vCenter -> journal.

A scheduler claims due actions from the journal and hands each to an asyncio worker;
blocking pyvmomi and SQLite calls run on thread pools (one thread for the journal, so its
writes never race), so a slow vCenter never blocks the webhook.  Every pass re-reads live
state first: the journal says what was asked and what was done, vCenter says what is true.

Decisions (one per alert firing, :mod:`.decide`) produce steps; steps are evaluated against
the VM's live state rather than replayed, so a step interrupted by a crash simply looks
again: a VM already relocated is only powered on, a VM already running is recorded as done.
Each step kind lives in its own module under :mod:`.steps`; this module is the work loop
and the gates every step goes through (guard, rate limit, dry run, concurrency, retries).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from vcenter.config import Config
from vcenter.session import describe

from . import actions as act
from . import confirm, duplicates, live, orchestrate
from .alerts import Delivery
from .config import RemediatorConfig
from .confirm import ConfirmStore
from .decide import decide
from .guard import MassFailureGuard, RateLimiter, VCenterHealth
from .journal import (
    CANCELLED,
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
from .model import Snapshot
from .shared_reads import BatchedReads, Ids, SharedReads, share_not_before
from .steps import STEPS
from .stranded import find as find_stranded
from .stranded import is_stranded
from .tags import Tags

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
        # the confirmation hook's answers: for decisions and the guard (remediator.confirm)
        self.confirms = ConfirmStore(rcfg.host_failure.confirm_max_age_seconds)
        self.guard = MassFailureGuard(rcfg.guard, self.confirms.fresh)
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
        self._refreshing: dict[str, asyncio.Task[None]] = {}  # confirmation refresh, per vCenter
        self._pools: dict[tuple[str, str], str] = {}
        # whole-cluster reads in flight, shared by the decisions asking at once
        self.shared: SharedReads[Snapshot] = SharedReads(clock)
        # steps' re-reads of their VM and hosts, batched while one is in flight
        self.batched = {
            name: BatchedReads(
                self._objects(name), lambda exc: isinstance(exc, live.CONNECTION_ERRORS)
            )
            for name in self.sessions
        }
        self._tasks_running = 0
        self._unsure: dict[str, list[duplicates.Duplicate]] = {}
        self._dup_watch = duplicates.Watcher()
        self.orchestrators = orchestrate.Orchestrators()  # restart tiers, one task a failure
        self.tags = Tags(list(config.vcenters))  # vAPI, for a re-registered VM's tags
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
        self._background.append(
            asyncio.create_task(self.orchestrators.resume(self), name="vha-tiers-resume")
        )
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
        await self.orchestrators.stop()
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()
        for task in self._refreshing.values():
            task.cancel()  # run_hook kills a hook it was waiting for
        await asyncio.gather(*self._refreshing.values(), return_exceptions=True)
        self._refreshing.clear()
        if self._in_flight:
            _, pending = await asyncio.wait(list(self._in_flight.values()), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for batched in self.batched.values():
            await batched.close()
        if self.journal is not None:
            try:
                await self.db(self.j.recover, self.clock())
            except JournalError as exc:
                log.error("journal: %s", exc)
            await self.db(self.j.close)
            self.journal = None
        await self.tags.close()
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
            # No guard count here: only a live read counts a host as failed (guard.observe).
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
        self.metrics.stranded.set(await self.db(find_stranded, self.j))
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
                self._refresh(vcenter, clusters)  # beside the loop: hooks may take a while
                for name, hosts in clusters.values():
                    self.guard.observe(vcenter, name, hosts, now)
                await self._duplicates(vcenter, clusters)
            self.guard_metrics(now)
            await asyncio.sleep(self.rcfg.state_refresh_seconds)

    def _refresh(self, vcenter: str, clusters: Any) -> None:
        """Re-ask the confirmation hook (:func:`.confirm.refresh`) as a task of its own, at
        most one per vCenter at a time: hooks run up to ``confirm_timeout_seconds``, and
        the guard's view must keep updating meanwhile (answers stay trusted for their max
        age, re-asked at half of it, so a slow hook does not let them lapse)."""
        running = self._refreshing.get(vcenter)
        if running is not None and not running.done():
            return
        self._refreshing[vcenter] = asyncio.create_task(
            self._refresh_once(vcenter, clusters), name=f"vha-confirm-refresh-{vcenter}"
        )

    async def _refresh_once(self, vcenter: str, clusters: Any) -> None:
        try:
            await confirm.refresh(self, vcenter, clusters)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the next pass asks again
            log.warning("vCenter %s: refreshing confirmation answers failed: %s",
                        vcenter, describe(exc))  # fmt: skip
            self.metrics.confirm_refresh_errors.labels(vcenter=vcenter).inc()

    async def _duplicates(self, vcenter: str, clusters: Any) -> None:
        """Stale copies on hosts that came back (:mod:`.duplicates`); never stops the watch."""
        connected = {h.moid for _, hosts in clusters.values() for h in hosts if h.responding}
        left = {d.stale.host_id for d in self._unsure.get(vcenter, [])}
        try:
            unsure = await duplicates.check(self, self._dup_watch, vcenter, connected, left)
        except Exception as exc:  # noqa: BLE001 - the next pass looks again
            log.warning("vCenter %s: looking for duplicate registrations failed: %s",
                        vcenter, describe(exc))  # fmt: skip
            return
        known = {d.stale.moid for d in self._unsure.get(vcenter, [])}
        for d in unsure:
            if d.stale.moid not in known:
                log.error(
                    "%s is registered twice (%s): %s on %s and %s; left for a person (%s)",
                    d.stale.name, d.watch.vmx_path, d.stale.moid, d.stale.host_id,
                    d.running.moid if d.running else "?", d.why,
                )  # fmt: skip
        self._unsure[vcenter] = unsure
        self.metrics.duplicates.set(self.duplicates_left())

    def duplicates_left(self) -> list[duplicates.Duplicate]:
        """VMs registered twice that the last watcher passes left for a person."""
        return [d for ds in self._unsure.values() for d in ds]

    def wake(self) -> None:
        """Make the scheduler look at the journal now (new work was added)."""
        self._wake.set()

    def guard_metrics(self, now: float) -> None:
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
            elif action.kind == duplicates.KIND:
                await duplicates.run(self, action)
            else:
                await decide(self, action)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the loop
            log.exception("action %d (%s) failed unexpectedly", action.id, action.kind)
            try:
                await self.retry(action, f"internal error: {describe(exc)}")
            except Exception:  # noqa: BLE001
                log.exception("could not journal the failure of action %d", action.id)
        finally:
            self._in_flight.pop(action.id, None)
            self._wake.set()

    async def finish(self, a: Action, state: str, reason: str, **kw: Any) -> None:
        if state in TERMINAL and is_stranded(kw.get("detail", a.detail)):
            # Register or recover, never neither: a VM out of every inventory keeps its
            # step alive (retrying with backoff) until it is registered again.
            delay = self.rcfg.retry.delay(max(1, a.attempts))
            info = (kw.get("detail", a.detail) or {}).get("unregistered", {})
            log.error(
                "action %d: %s is not registered in vCenter (%s); not %s: %s",
                a.id,
                a.vm,
                info.get("vmx_path", "?"),
                state,
                reason,
            )
            reason = f"VM not registered in vCenter: {reason}; retrying in {delay:.0f}s"
            state, kw["not_before"] = PENDING, self.clock() + delay
        quiet = state == PENDING and reason == a.reason
        settled = await self.db(self.j.finish, a.id, state, reason, self.clock(), quiet=quiet, **kw)
        if state in TERMINAL:
            self.metrics.actions.labels(kind=a.kind, result=state).inc()
            level = logging.WARNING if state in (FAILED, REFUSED, UNPLACED) else logging.INFO
            log.log(level, "action %d %s %s %s: %s", a.id, a.kind, a.vm or a.host, state, reason)
        self.settled(a.parent_id, settled)

    def settled(self, parent_id: int | None, settled: tuple[str, str] | None) -> None:
        if settled is not None:
            kind, state = settled
            self.metrics.actions.labels(kind=kind, result=state).inc()
            log.info("action %s %s finished: %s", parent_id, kind, state)

    async def hold(self, a: Action, reason: str, *, detail: dict[str, Any] | None = None) -> None:
        """Keep an action pending while a guard is up; past ``max_hold_seconds``, refuse it.
        ``detail``: the decision's memory so far (fences it ran), journaled with it."""
        now = self.clock()
        kw: dict[str, Any] = {} if detail is None else {"detail": detail}
        if now - a.created_at > self.rcfg.guard.max_hold_seconds:
            await self.finish(
                a, REFUSED, f"held too long ({now - a.created_at:.0f}s): {reason}", **kw
            )
            return
        await self.finish(
            a, PENDING, f"held: {reason}", not_before=now + self.rcfg.state_refresh_seconds, **kw
        )

    async def retry(
        self,
        a: Action,
        reason: str,
        *,
        attempts: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Back off and look again; ``detail`` as for :meth:`hold` (what already happened
        must not happen twice on the retry)."""
        n = a.attempts if attempts is None else attempts
        kw: dict[str, Any] = {} if detail is None else {"detail": detail}
        if n >= self.rcfg.retry.max_attempts:
            await self.finish(a, FAILED, f"{reason} (gave up after {n} attempts)", **kw)
            return
        delay = self.rcfg.retry.delay(max(1, n))
        await self.finish(
            a, PENDING, f"{reason}; retrying in {delay:.0f}s", not_before=self.clock() + delay, **kw
        )

    async def guarded(
        self, a: Action, cluster: str, *, detail: dict[str, Any] | None = None
    ) -> bool:
        """True when the action may proceed; otherwise it has been held (with ``detail``)."""
        health = self.health.get(a.vcenter)
        if health is None:
            await self.finish(a, SKIPPED, f"vCenter {a.vcenter} is no longer configured")
            return False
        if health.checked_at and not health.up:
            await self.hold(a, f"cannot reach vCenter {a.vcenter}: {health.error}", detail=detail)
            return False
        if cluster:
            verdict = self.guard.verdict(a.vcenter, cluster, self.clock())
            if verdict.tripped:
                self.guard_metrics(self.clock())
                await self.hold(a, verdict.reason, detail=detail)
                return False
        return True

    async def read(self, a: Action, fn: Callable[..., T], *args: Any) -> T | None:
        """A live read; on failure the action is held, retried or skipped and None returned."""
        return await self._reading(a, lambda: self.vc(a.vcenter, fn, *args))

    async def read_objects(
        self, a: Action, vm_ids: Sequence[str], host_ids: Sequence[str]
    ) -> Snapshot | None:
        """:meth:`read` of a step's own VMs and hosts (:func:`.live.objects_snapshot`),
        sent with the other steps' that asked while the previous batch was in flight."""
        return await self._reading(a, lambda: self.batched[a.vcenter].get(vm_ids, host_ids))

    def _objects(self, vcenter: str) -> Callable[[Ids], Awaitable[Snapshot]]:
        async def read(ids: Ids) -> Snapshot:
            self.metrics.step_read_calls.labels(vcenter=vcenter).inc()
            return await self.vc(vcenter, live.objects_snapshot, *ids)

        return read

    async def read_cluster(self, a: Action, cluster_id: str) -> Snapshot | None:
        """:meth:`read` of a whole cluster (:func:`.live.cluster_snapshot`), shared with a
        concurrent read of it already in flight when that one was sent after ``a``'s alert
        arrived and at most :data:`.shared_reads.SHARE_SECONDS` before this call."""
        return await self._reading(a, lambda: self._cluster(a, cluster_id))

    async def read_host(self, a: Action, host_id: str, host: str) -> Snapshot | None:
        """:meth:`read` of the snapshot around a host (its cluster's, shared as by
        :meth:`read_cluster`, or a standalone host's)."""

        return await self._reading(a, lambda: self._around(a, host_id, host))

    async def read_vm(self, a: Action, vm_id: str, vm: str) -> Snapshot | None:
        """:meth:`read_host` of the host the VM runs on now."""

        async def snap() -> Snapshot:
            host_id = await self.vc(a.vcenter, live.host_of_vm, vm_id, vm)
            return await self._around(a, host_id, "")

        return await self._reading(a, snap)

    async def _around(self, a: Action, host_id: str, host: str) -> Snapshot:
        cluster_id, moid = await self.vc(a.vcenter, live.cluster_of_host, host_id, host)
        if not cluster_id:
            return await self.vc(a.vcenter, live.host_snapshot, "", moid)
        return await self._cluster(a, cluster_id)

    async def _cluster(self, a: Action, cluster_id: str) -> Snapshot:
        asked = self.clock()

        async def fresh() -> Snapshot:
            sent = self.clock()
            snap = await self.vc(a.vcenter, live.cluster_snapshot, cluster_id)
            return dataclasses.replace(snap, read_started=sent)

        not_before = share_not_before(a.created_at, asked, step=bool(a.parent_id))
        snap, _, shared = await self.shared.get((a.vcenter, cluster_id), not_before, fresh)
        self.metrics.cluster_reads.labels(vcenter=a.vcenter, shared=str(shared).lower()).inc()
        return snap

    async def _reading(self, a: Action, read: Callable[[], Awaitable[T]]) -> T | None:
        t0 = time.perf_counter()
        try:
            return await read()
        except live.NotFoundError as exc:
            await self.finish(a, SKIPPED, str(exc))
        except Exception as exc:  # noqa: BLE001 - every failure is journaled
            err = act.classify_fault(exc)
            self.metrics.vcenter_errors.labels(vcenter=a.vcenter, category=err.category).inc()
            if err.category == act.GONE:
                await self.finish(a, SKIPPED, f"no longer in vCenter: {err.message}")
            elif isinstance(exc, live.CONNECTION_ERRORS):
                self.health[a.vcenter].mark_down(describe(exc), self.clock())
                await self.hold(a, f"cannot reach vCenter {a.vcenter}: {describe(exc)}")
            else:
                attempts = await self.db(
                    self.j.start_attempt, a.id, self.clock(), "live read failed"
                )
                await self.retry(a, f"reading live state failed: {err.message}", attempts=attempts)
        finally:
            self.metrics.live_read_duration.observe(time.perf_counter() - t0)
        return None

    # --- steps -----------------------------------------------------------------------

    async def _step(self, s: Action) -> None:
        assert s.parent_id is not None
        stranded = is_stranded(s.detail)  # no resolved alert may leave a VM unregistered
        if not stranded and not await self.db(self.j.alerts_firing, s.parent_id):
            await self.finish(s, CANCELLED, "every alert for this action has resolved")
            return
        if not await self.guarded(s, s.cluster):
            return
        run = STEPS.get(s.kind)
        if run is None:
            await self.finish(s, FAILED, f"unknown step kind {s.kind!r}")
            return
        await run(self, s)

    async def pool(self, s: Action, cluster_id: str) -> str:
        """The cluster's root resource pool (cached: it does not change)."""
        key = (s.vcenter, cluster_id)
        if key not in self._pools:
            try:
                self._pools[key] = await self.vc(s.vcenter, live.cluster_pool, cluster_id)
            except Exception as exc:  # noqa: BLE001 - reported like any failed change
                raise act.classify_fault(exc) from exc
        return self._pools[key]

    async def admit(self, s: Action, what: str) -> bool:
        """Rate limit and dry run, the last gates before vCenter changes."""
        if self.rcfg.dry_run:
            await self.finish(s, DRY_RUN, f"dry run: would {what}")
            return False
        retry_at = self.limiter.acquire(s.vcenter, s.cluster, self.clock())
        if retry_at is not None:
            lim = self.rcfg.rate_limit
            await self.finish(
                s,
                PENDING,
                f"rate limit: {lim.max_actions} actions per {lim.window_seconds:.0f}s in cluster "
                f"{s.cluster} reached",
                not_before=retry_at,
            )
            return False
        return True

    async def change(self, s: Action, what: str, fn: Callable[..., T], *args: Any) -> T:
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

    async def failed_change(self, s: Action, err: act.StepError, *, target: str = "") -> None:
        self.metrics.vcenter_errors.labels(vcenter=s.vcenter, category=err.category).inc()
        if err.category == act.GONE and s.attempts < self.rcfg.retry.max_attempts:
            # The fault may name the VM, its host, the target or the pool: only the next
            # pass's fresh read can prove the VM itself gone (and skip it then).
            await self.finish(
                s, PENDING, f"{err.message}; re-reading before concluding", not_before=self.clock()
            )
        elif err.category == act.GONE:
            await self.finish(s, FAILED, f"{err.message} (gave up)")
        elif err.category == act.REPLACE and target:
            detail = dict(s.detail)
            detail["excluded"] = sorted({*detail.get("excluded", []), target})
            if s.attempts >= self.rcfg.retry.max_attempts:
                await self.finish(
                    s, FAILED, f"{target} refused: {err.message} (gave up)", detail=detail
                )
            else:
                await self.finish(
                    s,
                    PENDING,
                    f"{target} refused: {err.message}; choosing another host",
                    detail=detail,
                    not_before=self.clock(),
                )
        elif err.category == act.LOCKED:
            await self.hold(
                s,
                f"the VM's files are locked ({err.message}): it may still run on the host "
                "vCenter lost; waiting for that host's isolation response, fencing or lock "
                "lease to free them",
            )
        elif is_stranded(s.detail) and target:
            # The VM is out of the inventory: any refusal to register it moves on to the
            # next target; when none is left, placement waits and tries them all again.
            detail = dict(s.detail)
            detail["excluded"] = sorted({*detail.get("excluded", []), target})
            await self.finish(
                s,
                PENDING,
                f"{target} could not register it: {err.message}; choosing another host",
                detail=detail,
                not_before=self.clock(),
            )
        elif err.category in (act.RETRY, act.TIMEOUT, act.REPLACE):
            await self.retry(s, err.message)
        else:
            await self.finish(s, FAILED, err.message)
