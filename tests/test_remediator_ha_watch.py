"""Issue 10 against the simulator: act like vSphere HA, and never against it.

HA settings are set as an admin sets them (``ReconfigureComputeResource_Task``), VM facts
and power-off causes through the simulator's API (sim/ha_config.go, sim/guest_io.go).
Every test runs the remediator with ``remediator.ha.defer_to_ha: true`` (the default);
``VHA_TEST_HA_LEGACY=1`` runs them with it off — today's behaviour, under which each fails.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim

from .metrics_helpers import parse, value
from .remediator_fixtures import AUTH, alert
from .remediator_sim import (
    actions,
    decision,
    ha,
    host_labels,
    inventory,
    reconfigure,
    send,
    settled,
    start_ha,
    steps,
    vm_labels,
)

pytestmark = pytest.mark.slow

# test_remediator_tiers.py (changed on another branch) imports ``start`` from here.
start = start_ha


def old(minutes: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


async def test_ha_protected_vms_are_left_to_ha_and_the_overdue_counter_fires(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    sim = sim_factory(clusters=1, hosts=3, vms=6)
    hosts, vms = inventory(sim)
    failed = hosts["DC0_C0_H0"]
    sim.fail_host(failed["name"])
    client = await start(aiohttp_client, sim, tmp_path, ha={"overdue_seconds": 3})
    await send(client, alert("restart_host_vms", starts_at=old(10), **host_labels(failed)))
    d = await decision(client, lambda a: "vSphere HA protects" in a["reason"], "a deferral to HA")
    assert d["state"] == "pending"
    assert {vms[n]["moid"] for n in failed["vms"]} <= set(d["detail"]["ha"])
    # after the overdue window: alert (counter), still nothing re-registered
    d = await decision(client, lambda a: a["state"] not in ("pending", "running"), "overdue", 30)
    _, after = inventory(sim)
    for name in failed["vms"]:
        assert after[name]["host"] == failed["name"] and after[name]["moid"] == vms[name]["moid"]
    by_vm = steps(await actions(client))
    assert all("overdue" in by_vm[n]["reason"] for n in failed["vms"]), by_vm
    m = parse(await (await client.get("/metrics")).text())
    assert value(m, "vha_remediator_ha_restart_overdue_total", vcenter="vc1", cluster="DC0_C0") == 2
    assert (
        value(
            m,
            "vha_remediator_responsibility_total",
            kind="restart_host_vms",
            actor="vsphere-ha",
            rule="ha-protected",
        )
        == 2
    )


async def test_host_monitoring_off_nothing_moves(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    sim = sim_factory(clusters=1, hosts=3, vms=6)
    await reconfigure(sim, "DC0_C0", dasConfig=ha(hostMonitoring="disabled"))
    hosts, vms = inventory(sim)
    failed = hosts["DC0_C0_H1"]
    sim.fail_host(failed["name"])
    client = await start(aiohttp_client, sim, tmp_path)
    await send(client, alert("restart_host_vms", **host_labels(failed)))
    await settled(client)
    _, after = inventory(sim)
    assert all(after[n]["host"] == failed["name"] for n in failed["vms"])
    by_vm = steps(await actions(client))
    assert all("host monitoring is disabled" in by_vm[n]["reason"] for n in failed["vms"]), by_vm


async def test_per_vm_priority_disabled_without_ha_and_a_vcls_vm(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    sim = sim_factory(clusters=1, hosts=3, vms=9)
    hosts, vms = inventory(sim)
    failed = hosts["DC0_C0_H0"]
    keep, vcls, *others = failed["vms"]

    def override(si: Any) -> list[Any]:
        key = vim.VirtualMachine(vms[keep]["moid"], si._stub)
        info = vim.cluster.DasVmConfigInfo(
            key=key, dasSettings=vim.cluster.DasVmSettings(restartPriority="disabled")
        )
        return [vim.cluster.DasVmConfigSpec(operation="add", info=info)]

    await reconfigure(sim, "DC0_C0", dasConfig=ha(enabled=False), dasVmConfigSpec=override)
    sim.set_vm_ha(vcls, managed_by={"extensionKey": "com.vmware.vim.eam", "type": "cluster-agent"})
    sim.fail_host(failed["name"])
    client = await start(aiohttp_client, sim, tmp_path)
    await send(client, alert("restart_host_vms", **host_labels(failed)))
    items = await settled(client)
    _, after = inventory(sim)
    by_vm = steps(items)
    assert (
        after[keep]["host"] == failed["name"]
        and "restart priority disabled" in by_vm[keep]["reason"]
    )
    assert after[vcls]["host"] == failed["name"] and "vCLS" in by_vm[vcls]["reason"]
    page = await (await client.get("/", headers=AUTH)).text()  # item 8: who and why, per VM
    assert "nobody: restart priority disabled" in page and "remediator: vSphere HA is off" in page
    assert others and all(
        after[n]["powerState"] == "poweredOn" and after[n]["host"] != failed["name"] for n in others
    )


async def test_vm_monitoring_off_on_an_ha_cluster_means_no_reset(
    sim: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    await reconfigure(sim, "DC0_C0", dasConfig=ha(vmMonitoring="vmMonitoringDisabled"))
    _, vms = inventory(sim)
    target = vms["DC0_C0_VM1"]
    sim.set_vm(target["name"], guestHeartbeatStatus="red")
    client = await start(aiohttp_client, sim, tmp_path)
    await send(client, alert("reset_vm", **vm_labels(target)))
    items = await settled(client)
    assert inventory(sim)[1][target["name"]]["bootTime"] == target["bootTime"]
    [d] = [a for a in items if a["kind"] == "reset_vm"]
    assert d["state"] == "skipped" and "no response to heartbeat loss" in d["reason"]


async def test_reset_withheld_while_guest_io_flows_then_done_when_it_stops(
    sim: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    await reconfigure(sim, "DC0_C1", dasConfig=ha(enabled=False))
    _, vms = inventory(sim)
    target = vms["DC0_C1_VM0"]
    sim.set_vm(target["name"], guestHeartbeatStatus="red")
    sim.set_vm_ha(target["name"], io="busy")  # a busy guest whose Tools service hung
    client = await start(aiohttp_client, sim, tmp_path)
    await send(client, alert("reset_vm", **vm_labels(target)))
    d = await decision(client, lambda a: "guest I/O is still flowing" in a["reason"], "an I/O hold")
    assert d["state"] == "pending" and d["detail"]["reset_withheld_io"]["disk_kbps"] >= 1
    assert inventory(sim)[1][target["name"]]["bootTime"] == target["bootTime"]
    sim.set_vm_ha(target["name"], io="auto")  # the guest is hung after all: no I/O
    d = await decision(client, lambda a: a["state"] == "done", "the reset", 90)
    assert inventory(sim)[1][target["name"]]["bootTime"] != target["bootTime"]


async def test_a_guest_initiated_shutdown_stays_off(
    sim: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    _, vms = inventory(sim)
    guest, isolated = vms["DC0_C1_VM1"], vms["DC0_C1_VM2"]
    await reconfigure(sim, "DC0_C1", dasConfig=ha(enabled=False))
    sim.power_off_vm(guest["name"], "guest")
    sim.power_off_vm(isolated["name"], "isolation")
    client = await start(aiohttp_client, sim, tmp_path)
    await send(
        client,
        alert("restart_vm", **vm_labels(guest)),
        alert("restart_vm", **vm_labels(isolated)),
    )
    items = await settled(client)
    _, after = inventory(sim)
    assert after[guest["name"]]["powerState"] == "poweredOff"
    assert (
        after[isolated["name"]]["powerState"] == "poweredOn"
    )  # HA's isolation response: involuntary
    decisions = {a["vm"]: a for a in items if a["parent_id"] is None}
    assert decisions[guest["name"]]["state"] == "skipped"
    assert (
        "a shutdown from inside the guest and a crash look the same"
        in decisions[guest["name"]]["reason"]
    )
