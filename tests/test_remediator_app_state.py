"""Issue 10 item 3 against the simulator: resets like vSphere HA, appStateNeedReset included.

A cluster without vSphere HA (``ReconfigureComputeResource_Task``, as an admin sets it), the
VM's own VM-monitoring override in ``dasVmConfig`` (kept while HA is off), the application
agent's request through the simulator (``guest.appState``), the alert through the webhook.
The remediator runs with ``remediator.ha.defer_to_ha: true`` (the default).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim

from .remediator_fixtures import alert
from .remediator_sim import decision, ha, inventory, reconfigure, send, settled, vm_labels
from .remediator_sim import start_ha as start

pytestmark = pytest.mark.slow

CLUSTER = "DC0_C1"


def vm_monitoring(vm_id: str, mode: str, **tools: int) -> Any:
    """A dasVmConfigSpec giving one VM its own VM-monitoring settings (clusterSettings off)."""

    def spec(si: Any) -> list[Any]:
        settings = vim.cluster.VmToolsMonitoringSettings(
            clusterSettings=False, vmMonitoring=mode, **tools
        )
        info = vim.cluster.DasVmConfigInfo(
            key=vim.VirtualMachine(vm_id, si._stub),
            dasSettings=vim.cluster.DasVmSettings(vmToolsMonitoringSettings=settings),
        )
        return [vim.cluster.DasVmConfigSpec(operation="add", info=info)]

    return spec


async def no_ha_with(sim: Any, name: str, mode: str, **tools: int) -> dict[str, Any]:
    _, vms = inventory(sim)
    target = vms[name]
    await reconfigure(
        sim,
        CLUSTER,
        dasConfig=ha(enabled=False),
        dasVmConfigSpec=vm_monitoring(target["moid"], mode, **tools),
    )
    return target


def booted(sim: Any, name: str) -> str:
    return str(inventory(sim)[1][name]["bootTime"])


async def test_app_state_need_reset_resets_with_app_monitoring(
    sim: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    target = await no_ha_with(sim, "DC0_C1_VM0", "vmAndAppMonitoring")
    sim.set_vm_ha(target["name"], app_state="appStateNeedReset")  # heartbeats stay green
    client = await start(aiohttp_client, sim, tmp_path)
    await send(client, alert("reset_vm", **vm_labels(target)))
    d = await decision(client, lambda a: a["state"] == "done", "the reset", 60)
    assert "appStateNeedReset" in d["reason"], d
    assert booted(sim, target["name"]) != target["bootTime"]


async def test_app_state_need_reset_without_app_monitoring_is_journaled_not_reset(
    sim: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    target = await no_ha_with(sim, "DC0_C1_VM1", "vmMonitoringDisabled")
    only_vm = await no_ha_with(sim, "DC0_C1_VM2", "vmMonitoringOnly")
    for t in (target, only_vm):
        sim.set_vm_ha(t["name"], app_state="appStateNeedReset")
    client = await start(aiohttp_client, sim, tmp_path)
    await send(
        client, alert("reset_vm", **vm_labels(target)), alert("reset_vm", **vm_labels(only_vm))
    )
    items = await settled(client)
    by_vm = {a["vm"]: a for a in items if a["kind"] == "reset_vm"}
    off, only = by_vm[target["name"]], by_vm[only_vm["name"]]
    assert off["state"] == "skipped" and "vmMonitoringDisabled" in off["reason"], off
    assert only["state"] == "skipped" and "vmAndAppMonitoring" in only["reason"], only
    for t in (target, only_vm):
        assert booted(sim, t["name"]) == t["bootTime"]


async def test_max_resets_with_no_window_counts_every_reset(
    sim: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    # maxFailures 1, maxFailureWindow -1 (no window), minUpTime 1 s; the stack's own window
    # (1 s) must not bound the count
    target = await no_ha_with(
        sim, "DC0_C1_VM3", "vmAndAppMonitoring", maxFailures=1, maxFailureWindow=-1, minUpTime=1
    )
    client = await start(aiohttp_client, sim, tmp_path, vm_monitoring={"window_seconds": 1})
    sim.set_vm_ha(target["name"], app_state="appStateNeedReset")
    await send(client, alert("reset_vm", **vm_labels(target)))
    await decision(client, lambda a: a["state"] == "done", "the first reset", 60)
    first = booted(sim, target["name"])
    assert first != target["bootTime"]
    await asyncio.sleep(2.5)  # past the stack's window and the VM's minimum uptime
    await send(client, alert("reset_vm", **vm_labels(target)))  # the agent asks again
    d = await decision(client, lambda a: a["state"] == "refused", "the refusal", 60)
    assert "reset limit reached" in d["reason"] and "no failure window" in d["reason"], d
    assert booted(sim, target["name"]) == first
