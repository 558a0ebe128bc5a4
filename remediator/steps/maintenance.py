"""Maintenance step: once its VMs have moved off, put an evacuated host into maintenance mode."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import actions as act
from .. import policy
from ..journal import DONE, PENDING, SKIPPED, Action

if TYPE_CHECKING:
    from ..engine import Engine


async def run(engine: Engine, s: Action) -> None:
    assert s.parent_id is not None
    siblings = [x for x in await engine.db(engine.j.siblings, s.parent_id) if x.id != s.id]
    if any(x.state in (PENDING, "running") for x in siblings):
        await engine.finish(
            s, PENDING, "waiting for the VMs to move off", not_before=engine.clock() + 1
        )
        return
    snap = await engine.read_host(s, s.host_id, s.host)
    if snap is None:
        return
    host = snap.hosts.get(s.host_id)
    if host is None:
        await engine.finish(s, SKIPPED, "host no longer in vCenter")
        return
    if host.maintenance:
        await engine.finish(s, DONE if s.attempts else SKIPPED, "already in maintenance mode")
        return
    running = [v.name for v in snap.vms_on(host.moid) if v.running]
    if running and not engine.rcfg.dry_run:
        await engine.finish(
            s,
            SKIPPED,
            f"{len(running)} VMs still running ({', '.join(sorted(running)[:5])}); "
            "not entering maintenance",
        )
        return
    if not await engine.admit(s, f"put {host.name} into maintenance mode"):
        return
    try:
        await engine.change(
            s,
            "enter maintenance mode",
            act.enter_maintenance,
            host.moid,
            engine.rcfg.action_timeout_seconds,
        )
    except act.StepError as err:
        await engine.failed_change(s, err)
        return
    await engine.finish(
        s, DONE, f"{host.name} entered maintenance mode", restarted_by=policy.BY_REMEDIATOR
    )
