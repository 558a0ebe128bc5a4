"""A privilege the remediator's role lacks while restoring identity is reported, not
swallowed (issue 9): the VM still restarts, and the step's reason, its detail and
``vha_remediator_identity_not_restored_total`` say what was not restored and why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from sim.harness import Account, SimulatorError

from .exporter_fixtures import account_entry
from .metrics_helpers import parse, value
from .remediator_fixtures import alert
from .remediator_sim import send, settled, start, steps

pytestmark = pytest.mark.slow

ROLE = "operator-Global.SetCustomField,Authorization.ModifyPermissions"
DENIED = Account("vha-remediator", "remediator-pass", ROLE)


def _grant_read_only(sim: Any, vm_name: str) -> None:
    """As the Administrator: a permission set on the VM itself, to be restored."""
    si = SmartConnect(**sim.connection_kwargs())
    try:
        content = si.content
        view = content.viewManager.CreateContainerView(
            content.rootFolder, [vim.VirtualMachine], True
        )
        vm = next(v for v in view.view if v.name == vm_name)
        view.Destroy()
        auth = content.authorizationManager
        role = next(r.roleId for r in auth.roleList if r.name == "ReadOnly")
        perm = vim.AuthorizationManager.Permission(
            entity=vm, principal="VSPHERE.LOCAL\\app-owners", group=True, roleId=role
        )
        auth.SetEntityPermissions(entity=vm, permission=[perm])
    finally:
        Disconnect(si)


async def test_identity_restore_refused_for_missing_privileges_is_reported(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    sim = sim_factory(clusters=1, hosts=3, vms=6, accounts=[DENIED])
    inv = sim.inventory()
    failed = next(h for h in inv["hosts"] if h["name"] == "DC0_C0_H0")
    names = list(failed["vms"])
    _grant_read_only(sim, names[0])
    sim.fail_host(failed["name"])
    client = await start(aiohttp_client, sim, tmp_path, vcenter=account_entry(sim, DENIED))
    labels = {"host_id": failed["moid"], "host": failed["name"], "cluster": failed["cluster"]}
    await send(client, alert("restart_host_vms", **labels))
    by_vm = steps(await settled(client, 40))
    vms = {v["name"]: v for v in sim.inventory()["vms"]}
    for name in names:
        step = by_vm[name]
        # The VM runs: identity comes second.
        assert step["state"] == "done", step
        assert vms[name]["powerState"] == "poweredOn" and vms[name]["host"] != failed["name"]
        # ...and the reason names what was not restored, and why.
        reason = step["reason"]
        assert "identity not fully restored: custom attribute HA-RestartPriority" in reason
        assert "NoPermission" in reason and "Global.SetCustomField" in reason, reason
        errors = step["detail"]["identity_restored"]["errors"]
        assert any(e.startswith("custom attribute HA-RestartPriority") for e in errors), errors
        assert vms[name]["restartPriority"] is None  # really not copied
    perm_errors = by_vm[names[0]]["detail"]["identity_restored"]["errors"]
    assert any(
        e.startswith("permissions:") and "Authorization.ModifyPermissions" in e for e in perm_errors
    ), perm_errors
    fams = parse(await (await client.get("/metrics")).text())
    name = "vha_remediator_identity_not_restored_total"
    attrs = value(fams, name, part="custom_attributes", cause="no_permission")
    assert attrs == len(names), attrs
    assert value(fams, name, part="permissions", cause="no_permission") == 1


def test_a_derived_role_must_take_away_an_operator_privilege(sim_factory: Any) -> None:
    with pytest.raises(SimulatorError) as err:
        sim_factory(accounts=[Account("x", "pw", "operator-Global.Nothing")])
    assert "Global.Nothing is not a privilege of operator" in str(err.value) + (
        err.value.reason or ""
    )
