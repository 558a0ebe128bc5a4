"""Placement honours DRS rules (issue 9, item 4).

Three VMs of a failed host: two database VMs in a VM group that *must* run on a host group
(two of the three survivors) and *must* be kept apart (required anti-affinity), and one
VM that *should* run on a host group holding only the failed host, so the should-rule can
only be broken, and the reason says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim

from .remediator_fixtures import AUTH, alert
from .remediator_sim import host_labels, inventory, send, settled, start, steps, vsphere, wait_task

pytestmark = pytest.mark.slow


def _rules(si: Any, db: list[str], other: str, allowed: list[str], failed: str) -> None:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(
        content.rootFolder, [vim.VirtualMachine, vim.HostSystem], True
    )
    by_name = {o.name: o for o in view.view}
    cluster = by_name[failed].parent
    C = vim.cluster
    spec = C.ConfigSpecEx(
        groupSpec=[
            C.GroupSpec(operation="add", info=C.VmGroup(name="g-db", vm=[by_name[n] for n in db])),
            C.GroupSpec(
                operation="add", info=C.HostGroup(name="h-db", host=[by_name[n] for n in allowed])
            ),
            C.GroupSpec(operation="add", info=C.VmGroup(name="g-web", vm=[by_name[other]])),
            C.GroupSpec(operation="add", info=C.HostGroup(name="h-web", host=[by_name[failed]])),
        ],
        rulesSpec=[
            C.RuleSpec(
                operation="add",
                info=C.VmHostRuleInfo(
                    name="db-on-db-hosts",
                    enabled=True,
                    mandatory=True,
                    vmGroupName="g-db",
                    affineHostGroupName="h-db",
                ),
            ),
            C.RuleSpec(
                operation="add",
                info=C.AntiAffinityRuleSpec(
                    name="db-apart", enabled=True, mandatory=True, vm=[by_name[n] for n in db]
                ),
            ),
            C.RuleSpec(
                operation="add",
                info=C.VmHostRuleInfo(
                    name="web-prefers-h0",
                    enabled=True,
                    mandatory=False,
                    vmGroupName="g-web",
                    affineHostGroupName="h-web",
                ),
            ),
        ],
    )
    wait_task(cluster.ReconfigureComputeResource_Task(spec, modify=True))


async def test_required_rules_are_hard_and_should_rules_are_broken_only_when_nothing_fits(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    sim = sim_factory(clusters=1, hosts=4, vms=12)
    hosts, vms = inventory(sim)
    failed = hosts["DC0_C0_H0"]  # fd-a; H1 and H3 are fd-b, preferred without rules
    db, other = list(failed["vms"][:2]), failed["vms"][2]
    allowed = ["DC0_C0_H1", "DC0_C0_H2"]
    await vsphere(sim, lambda si: _rules(si, db, other, allowed, failed["name"]))
    sim.fail_host(failed["name"])
    client = await start(aiohttp_client, sim, tmp_path)
    await send(client, alert("restart_host_vms", **host_labels(failed)))
    items = await settled(client, timeout=40)
    _, vms = inventory(sim)
    by_vm = steps(items)
    placed = {n: vms[n]["host"] for n in db}
    assert all(by_vm[n]["state"] == "done" for n in [*db, other]), by_vm
    assert set(placed.values()) == set(allowed), placed  # on allowed hosts, apart
    assert vms[other]["powerState"] == "poweredOn" and vms[other]["host"] != failed["name"]
    # The plan said which should-rule it breaks, and why.
    resp = await client.get(f"/api/v1/actions/{by_vm[other]['id']}", headers=AUTH)
    history = " | ".join(e["message"] for e in (await resp.json())["events"])
    assert "breaks VM-Host rule web-prefers-h0" in history, history
    assert "nothing else fits" in history
