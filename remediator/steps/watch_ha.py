"""Watch step: a VM vSphere HA is restarting, on a failed host whose other VMs are ours.

A failed host can carry VMs of both owners (issue 10): those vSphere HA protects are HA's,
those it does not (``summary.runtime.dasVmProtection.dasProtected`` false, or HA off for
the VM) are the remediator's.  The decision plans restarts for its own VMs at once and one
*watch* step per HA-owned VM, instead of keeping the whole decision pending until HA has
restarted every one of its VMs.  A watch step never changes anything unless the config
opts in (``remediator.ha.act_when_overdue``): it re-reads the VM every
:data:`~remediator.ha_watch.LOOK_SECONDS` and ends

* ``skipped``, restarted by vSphere HA, once the VM runs on a healthy host;
* ``skipped``, overdue, when HA has not restarted it within the overdue window (HA's whole
  retry schedule by default): counted in ``vha_remediator_ha_restart_overdue_total``
  (the ``VsphereHaRestartOverdue`` alert), the VM left alone;
* with ``act_when_overdue``, overdue: counted the same, then restarted like any restart
  step (:mod:`.vm_restart`, which re-places it on the cluster's hosts).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .. import policy
from ..ha_watch import LOOK_SECONDS, WATCH_KEY, watch_look
from ..journal import PENDING, SKIPPED, Action
from . import reread, vm_restart

if TYPE_CHECKING:
    from ..engine import Engine

log = logging.getLogger("remediator")
__all__ = ["LOOK_SECONDS", "run"]


async def run(engine: Engine, s: Action) -> None:
    """Re-read the VM: restarted by HA (done watching), still waiting, or overdue."""
    info = dict(s.detail.get(WATCH_KEY) or {})
    found = await reread.step_vm(engine, s, [s.host_id])
    if found is None:
        return
    snap, vm = found
    cur = snap.hosts.get(vm.host_id)
    if cur is None and vm.host_id:
        more = await engine.read_objects(s, [], [vm.host_id])
        if more is None:
            return
        cur = more.hosts.get(vm.host_id)
    if vm.running and cur is not None and not cur.down:
        by = "vSphere HA (or a person)" if cur.moid != s.host_id else "its host coming back"
        await engine.finish(
            s,
            SKIPPED,
            f"running on {cur.name}: restarted by {by}",
            restarted_by=policy.BY_HA if cur.moid != s.host_id else "",
            target_host_id=cur.moid,
            target_host=cur.name,
        )
        return
    now = engine.clock()
    after = info.get("overdue_after")
    failed_for = now - float(info.get("since", now))
    if after is None or failed_for < float(after):
        when = f"; overdue at {float(after):.0f}s after the failure" if after is not None else ""
        await engine.finish(
            s,
            PENDING,
            f"vSphere HA protects it and is restarting it{when}: the remediator watches",
            not_before=watch_look(info, now),
        )
        return
    if not info.get("overdue_seen"):
        info["overdue_seen"] = now
        s.detail = {**s.detail, WATCH_KEY: info}
        await engine.db(
            engine.j.finish, s.id, "running", "vSphere HA is overdue", now, detail=s.detail
        )
        engine.metrics.ha_overdue.labels(vcenter=s.vcenter, cluster=s.cluster).inc()
        log.warning(
            "action %d: vSphere HA has not restarted %s within %.0fs of the failure (overdue)",
            s.id, s.vm, float(after),
        )  # fmt: skip
    if info.get("act_when_overdue"):
        await vm_restart.run(engine, s)
        return
    await engine.finish(
        s,
        SKIPPED,
        f"vSphere HA has not restarted it within {float(after):.0f}s of the failure "
        "(overdue): alerting, not acting (remediator.ha.act_when_overdue is off)",
    )
