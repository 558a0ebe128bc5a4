"""A restarted VM keeps its identity across re-registration (issue 9, item 3).

The VM lives in a child resource pool and a sub-folder, belongs to a DRS VM group and a
VM-VM anti-affinity rule, has DRS and HA per-VM overrides and a permission of its own.
Its host fails; vCenter cannot relocate off a dead host, so it is re-registered, which
makes a new managed object: every one of those must follow it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim

from .remediator_fixtures import alert
from .remediator_sim import host_labels, inventory, send, settled, start, steps, vsphere

pytestmark = pytest.mark.slow

PRINCIPAL = "VSPHERE.LOCAL\\app-owners"


def _wait(task: Any) -> Any:
    while task.info.state not in ("success", "error"):
        time.sleep(0.02)
    assert task.info.state == "success", task.info.error
    return task.info.result


def _find(content: Any, kind: type, name: str) -> Any:
    view = content.viewManager.CreateContainerView(content.rootFolder, [kind], True)
    return next(o for o in view.view if o.name == name)


def _setup(si: Any, host_name: str, peer_name: str) -> str:
    """A VM on ``host_name`` with every kind of identity; returns its moid."""
    content = si.RetrieveContent()
    dc = content.rootFolder.childEntity[0]
    host = _find(content, vim.HostSystem, host_name)
    cluster = host.parent
    alloc = vim.ResourceAllocationInfo(
        reservation=0, limit=-1, expandableReservation=True, shares=vim.SharesInfo(level="normal")
    )
    pool = cluster.resourcePool.CreateResourcePool(
        "rp-app", vim.ResourceConfigSpec(cpuAllocation=alloc, memoryAllocation=alloc)
    )
    folder = dc.vmFolder.CreateFolder("apps")
    spec = vim.vm.ConfigSpec(
        name="app-db-1",
        numCPUs=2,
        memoryMB=2048,
        guestId="otherLinux64Guest",
        files=vim.vm.FileInfo(vmPathName="[LocalDS_0]"),
    )
    vm = _wait(folder.CreateVM_Task(spec, pool, host))
    _wait(vm.PowerOnVM_Task())
    peer = _find(content, vim.VirtualMachine, peer_name)
    cspec = vim.cluster.ConfigSpecEx(
        groupSpec=[
            vim.cluster.GroupSpec(
                operation="add", info=vim.cluster.VmGroup(name="g-app", vm=[vm, peer])
            )
        ],
        rulesSpec=[
            vim.cluster.RuleSpec(
                operation="add",
                info=vim.cluster.AntiAffinityRuleSpec(
                    name="aa-db", enabled=True, mandatory=True, vm=[vm, peer]
                ),
            )
        ],
        dasVmConfigSpec=[
            vim.cluster.DasVmConfigSpec(
                operation="add",
                info=vim.cluster.DasVmConfigInfo(
                    key=vm, dasSettings=vim.cluster.DasVmSettings(restartPriority="highest")
                ),
            )
        ],
        drsVmConfigSpec=[
            vim.cluster.DrsVmConfigSpec(
                operation="add",
                info=vim.cluster.DrsVmConfigInfo(key=vm, enabled=True, behavior="manual"),
            )
        ],
    )
    _wait(cluster.ReconfigureComputeResource_Task(cspec, modify=True))
    auth = content.authorizationManager
    role = next(r.roleId for r in auth.roleList if r.name == "ReadOnly")
    auth.SetEntityPermissions(
        entity=vm,
        permission=[
            vim.AuthorizationManager.Permission(
                entity=vm, principal=PRINCIPAL, group=True, roleId=role, propagate=False
            )
        ],
    )
    return str(vm._moId)


def _identity(si: Any, name: str) -> dict[str, Any]:
    content = si.RetrieveContent()
    vm = _find(content, vim.VirtualMachine, name)
    cfg = vm.runtime.host.parent.configurationEx
    moid = vm._moId
    group = next(g for g in cfg.group if g.name == "g-app")
    rule = next(r for r in cfg.rule if r.name == "aa-db")
    das = [o for o in cfg.dasVmConfig if o.key._moId == moid]
    drs = [o for o in cfg.drsVmConfig if o.key._moId == moid]
    perms = content.authorizationManager.RetrieveEntityPermissions(entity=vm, inherited=False)
    return {
        "moid": moid,
        "host": vm.runtime.host.name,
        "power": str(vm.runtime.powerState),
        "pool": vm.resourcePool.name,
        "folder": vm.parent.name,
        "in_group": moid in [v._moId for v in group.vm],
        "in_rule": moid in [v._moId for v in rule.vm],
        "das": das[0].dasSettings.restartPriority if das else None,
        "drs": drs[0].behavior if drs else None,
        "perms": [(p.principal, p.group) for p in perms],
        "instance_uuid": vm.config.instanceUuid,
    }


async def test_restarted_vm_keeps_pool_folder_groups_rules_overrides_and_permissions(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    sim = sim_factory(clusters=1, hosts=3, vms=6)
    hosts, vms = inventory(sim)
    failed = hosts["DC0_C0_H0"]
    peer = next(n for n, v in vms.items() if v["host"] == "DC0_C0_H1")
    old = await vsphere(sim, lambda si: _setup(si, failed["name"], peer))
    before = await vsphere(sim, lambda si: _identity(si, "app-db-1"))
    assert before["in_group"] and before["in_rule"] and before["pool"] == "rp-app"
    sim.fail_host(failed["name"])
    client = await start(aiohttp_client, sim, tmp_path)
    await send(client, alert("restart_host_vms", **host_labels(failed)))
    items = await settled(client, timeout=40)
    step = steps(items)["app-db-1"]
    assert step["state"] == "done", step
    after = await vsphere(sim, lambda si: _identity(si, "app-db-1"))
    assert after["moid"] != old and after["power"] == "poweredOn"
    assert after["host"] != failed["name"]
    assert after["pool"] == "rp-app" and after["folder"] == "apps"
    assert after["in_group"] and after["in_rule"]
    assert after["das"] == "highest" and after["drs"] == "manual"
    assert after["perms"] == [(PRINCIPAL, True)]
    assert after["instance_uuid"] == before["instance_uuid"]
    restored = step["detail"]["identity_restored"]
    assert restored == {"old_vm_id": old, "new_vm_id": after["moid"], "errors": []}
    assert "not fully restored" not in step["reason"]
