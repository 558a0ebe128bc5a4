"""Reset step: hard-reset a VM whose guest heartbeats failed (VM monitoring), or whose
application agent asked for it (``guest.appState`` = ``appStateNeedReset``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import actions as act
from .. import policy
from ..journal import DONE, SKIPPED, Action
from . import reread

if TYPE_CHECKING:
    from ..engine import Engine


async def run(engine: Engine, s: Action) -> None:
    found = await reread.step_vm(engine, s, [s.host_id])
    if found is None:
        return
    snap, vm = found
    if s.attempts > 0 and vm.boot_time and s.started_at and vm.boot_time >= s.started_at - 1:
        await engine.finish(
            s,
            DONE,
            "reset (completed before a restart of the remediator)",
            restarted_by=policy.BY_REMEDIATOR,
        )
        return
    if not vm.running:
        await engine.finish(s, SKIPPED, f"VM is {vm.power_state}: nothing to reset")
        return
    # the last look before the reset: a recovered heartbeat, or the agent's appStateOk
    # (which cancels HA's pending reset too, per the API reference), calls it off
    if not vm.heartbeat_failed and vm.app_state != policy.NEED_RESET:
        await engine.finish(
            s,
            SKIPPED,
            f"heartbeats recovered (guest {vm.guest_heartbeat}) and no reset request "
            f"(guest.appState {vm.app_state})",
        )
        return
    if not await engine.admit(s, f"reset {vm.name}"):
        return
    try:
        await engine.change(s, "reset", act.reset, vm.moid, engine.rcfg.action_timeout_seconds)
    except act.StepError as err:
        await engine.failed_change(s, err)
        return
    await engine.finish(s, DONE, f"reset {vm.name}", restarted_by=policy.BY_REMEDIATOR)
