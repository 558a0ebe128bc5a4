"""The re-read a step makes before it acts: its VM and hosts, as vCenter has them now.

A step is evaluated against live state, never replayed; a VM that left the inventory
meanwhile (deleted, or re-registered by someone else) ends the step as skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..journal import SKIPPED, Action
from ..model import Snapshot, VMState

if TYPE_CHECKING:
    from ..engine import Engine


async def step_vm(
    engine: Engine, s: Action, host_ids: Sequence[str]
) -> tuple[Snapshot, VMState] | None:
    """The snapshot of ``s.vm_id`` and ``host_ids`` with the VM; None when the read failed
    (the engine has rescheduled the step) or the VM is gone (the step is finished)."""
    snap = await engine.read_objects(s, [s.vm_id], list(host_ids))
    if snap is None:
        return None
    vm = snap.vms.get(s.vm_id)
    if vm is None:
        await engine.finish(s, SKIPPED, "no longer in vCenter's inventory")
        return None
    return snap, vm
