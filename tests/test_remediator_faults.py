"""First, do no harm: transient faults and lost sessions never end a step (issue 9, item 7).

A fault or a session that vCenter dropped must never be read as "the VM is gone": only a
fresh, authenticated read that omits the VM proves it absent.  Run against the simulator
with its SOAP fault injection (``mode="drop-session"`` ends the caller's session the way a
session timeout or an administrator's TerminateSession does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim, vmodl

from remediator import live
from vcenter.faults import checked_contents

from .remediator_fixtures import alert
from .remediator_sim import host_labels, inventory, send, settled, sim_config, start, steps

pytestmark = pytest.mark.slow


async def test_transient_fault_and_session_drop_mid_host_failure_skip_no_vm(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    sim = sim_factory(clusters=1, hosts=4, vms=16)
    hosts, vms = inventory(sim)
    failed = hosts["DC0_C0_H0"]
    on_failed = list(failed["vms"])
    assert len(on_failed) >= 3
    sim.fail_host(failed["name"])
    # A step's re-read of one VM fails with a transient server fault; another step's
    # re-read finds its session ended by vCenter (every property in missingSet with
    # NotAuthenticated, an empty propSet).
    sim.inject_fault("RetrievePropertiesEx", "SystemError", object=on_failed[0], count=1)
    sim.inject_fault(
        "RetrievePropertiesEx", "NotAuthenticated", object=on_failed[1], mode="drop-session"
    )
    client = await start(aiohttp_client, sim, tmp_path, workers=4)
    await send(client, alert("restart_host_vms", **host_labels(failed)))
    items = await settled(client, timeout=40)
    assert not sim.faults(), "both injected faults fired"
    _, vms = inventory(sim)
    by_vm = steps(items)
    for name in on_failed:
        assert by_vm[name]["state"] == "done", by_vm[name]
        assert vms[name]["powerState"] == "poweredOn", vms[name]
        assert vms[name]["host"] != failed["name"]


def test_sim_drop_session_ends_only_that_session(sim: Any) -> None:
    """The simulator's session drop, as vCenter's: reads say NotAuthenticated in missingSet,
    methods raise it, a new login works, and the remediator's Session logs in again."""
    cfg = sim_config(sim)
    session = live.Session(cfg.vcenters[0], cfg)
    try:
        vm = inventory(sim)[1]["DC0_C0_VM0"]
        assert session.call(live.objects_snapshot, [vm["moid"]], []).vms
        sim.inject_fault(
            "RetrievePropertiesEx", "NotAuthenticated", object=vm["name"], mode="drop-session"
        )
        si = session.si()
        pc = session.content().propertyCollector
        spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[
                vmodl.query.PropertyCollector.ObjectSpec(
                    obj=session.stub_obj(vim.VirtualMachine, vm["moid"])
                )
            ],
            propSet=[
                vmodl.query.PropertyCollector.PropertySpec(
                    type=vim.VirtualMachine, pathSet=["name"]
                )
            ],
            reportMissingObjectsInResults=True,
        )
        [content] = pc.RetrievePropertiesEx(
            specSet=[spec], options=vmodl.query.PropertyCollector.RetrieveOptions()
        ).objects
        assert not content.propSet
        assert isinstance(content.missingSet[0].fault, vim.fault.NotAuthenticated)
        with pytest.raises(vim.fault.NotAuthenticated):
            si.content.sessionManager.currentSession  # noqa: B018 - a read that needs a session
        with pytest.raises(vim.fault.NotAuthenticated):
            checked_contents([content])
        # The remediator's session sees the failed read, logs in again and reads it right.
        assert (
            session.call(live.objects_snapshot, [vm["moid"]], []).vms[vm["moid"]].name == vm["name"]
        )
        assert session.logins == 2
    finally:
        session.close()
    with pytest.raises(Exception, match="drop-session"):
        sim.inject_fault("RetrievePropertiesEx", "SystemError", mode="drop-session")
