"""Keep a re-registered VM's identity: capture it before the VM leaves the inventory,
restore it onto the new object before it powers on (see :mod:`remediator.identity`).

Both halves are journaled in the step's ``detail``: ``identity`` (what was captured, kept
until the step ends, so a crash between registering and restoring loses nothing) and
``identity_restored`` (the old -> new moid and anything that could not be restored).
A failure to capture or restore never stops the restart: running the VM comes first,
and the step's reason says what is missing.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from vcenter.session import describe

from .. import identity, tags
from ..journal import Action

if TYPE_CHECKING:
    from ..engine import Engine


async def capture(engine: Engine, s: Action, vm_id: str, cluster_id: str) -> dict[str, Any]:
    """The VM's identity (SOAP) and its tags (vAPI), read at the same time: two services,
    neither waiting on the other, one round trip less in every re-registration's path."""

    async def soap() -> dict[str, Any]:
        try:
            found: dict[str, Any] = await engine.vc(s.vcenter, identity.capture, vm_id, cluster_id)
            return found
        except Exception as exc:  # noqa: BLE001 - a restart without identity beats none
            return {"errors": [f"could not read the VM's identity: {describe(exc)}"]}

    async def tagged() -> tuple[list[str] | None, str]:
        try:  # vSphere tags: the vAPI tagging service (remediator/tags.py)
            return await engine.tags.attached(s.vcenter, vm_id), ""
        except Exception as exc:  # noqa: BLE001 - reported, the VM still restarts
            return None, f"tags: could not read: {tags.describe_error(exc)}"

    ident, (tag_ids, error) = await asyncio.gather(soap(), tagged())
    if tag_ids is not None:
        ident["tags"] = tag_ids
    if error:
        ident.setdefault("errors", []).append(error)
    return ident


async def ensure(engine: Engine, s: Action, new_id: str, cluster_id: str) -> str:
    """Restore the captured identity onto ``new_id`` once; returns a note for the reason."""
    ident = s.detail.get("identity")
    if not ident or new_id == s.vm_id:
        return ""
    done = s.detail.get("identity_restored")
    if done:
        return _note(done)
    try:
        errors = await engine.vc(
            s.vcenter,
            identity.restore,
            new_id,
            cluster_id,
            ident,
            engine.rcfg.action_timeout_seconds,
        )
    except Exception as exc:  # noqa: BLE001 - journaled, the VM still starts
        errors = [f"identity restore: {describe(exc)}"]
    try:
        errors = list(errors) + await engine.tags.attach(s.vcenter, new_id, ident.get("tags") or [])
    except Exception as exc:  # noqa: BLE001 - journaled, the VM still starts
        errors = list(errors) + [f"tags: {tags.describe_error(exc)}"]
    every = (
        list(ident.get("errors") or [])
        + list(s.detail.get("attribute_errors") or [])
        + list(errors)
    )
    for err in every:
        part, cause = identity.classify(err)
        engine.metrics.identity_errors.labels(part=part, cause=cause).inc()
    restored = {"old_vm_id": s.vm_id, "new_vm_id": new_id, "errors": every}
    detail = dict(s.detail)
    detail["identity_restored"] = restored
    await engine.db(
        engine.j.finish,
        s.id,
        "running",
        f"identity restored onto {new_id} (was {s.vm_id}){_note(restored)}",
        engine.clock(),
        detail=detail,
    )
    s.detail = detail
    return _note(restored)


def _note(restored: dict[str, Any]) -> str:
    errors = restored.get("errors") or []
    return f"; identity not fully restored: {'; '.join(errors)}" if errors else ""
