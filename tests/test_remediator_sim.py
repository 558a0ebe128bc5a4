"""The remediator against the simulator: every scenario of the issue, with fault injection.

Each test builds a small simulator, runs the remediator app in-process through
``aiohttp_client``, sends Alertmanager payloads and then checks vCenter itself (through the
simulator's inventory and pyvmomi), not just the remediator's own account of it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim

from .metrics_helpers import parse, value
from .remediator_fixtures import AUTH, alert, resolved, until
from .remediator_sim import (
    actions,
    host_labels,
    inventory,
    metric,
    send,
    settled,
    start,
    steps,
    vm_labels,
    vsphere,
    wait_task,
)

# test_remediator_tiers.py and test_remediator_fault_domains.py (changed on other branches)
# still import these from here; new tests import them from tests/remediator_sim.py.
_metric = metric

pytestmark = pytest.mark.slow


# --- host failure --------------------------------------------------------------------------


async def test_host_failure_restarts_by_priority_on_healthy_hosts_in_another_fault_domain(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    sim = sim_factory(clusters=1, hosts=6, vms=18)
    hosts, vms = inventory(sim)
    failed = hosts["DC0_C0_H0"]  # fd-a; fd-b is H1, H3, H5
    sim.set_host("DC0_C0_H5", inMaintenanceMode=True)
    on_failed = [vms[n] for n in failed["vms"]]
    person_off = on_failed[0]["name"]
    sim.set_vm(person_off, powerState="poweredOff")  # off before the failure: stays off
    sim.fail_host(failed["name"])
    client = await start(
        aiohttp_client,
        sim,
        tmp_path,
        workers=1,
        max_concurrent_tasks=1,
        placement={"fault_domains": "racks"},  # racks of one site: another domain preferred
    )
    await send(client, alert("restart_host_vms", **host_labels(failed)))
    items = await settled(client)

    hosts, vms = inventory(sim)
    by_vm = steps(items)
    restarted = [v["name"] for v in on_failed if v["name"] != person_off]
    assert restarted
    for name in restarted:
        now = vms[name]
        assert now["powerState"] == "poweredOn", now
        assert now["host"] in ("DC0_C0_H1", "DC0_C0_H3"), now  # healthy, other fault domain
        assert by_vm[name]["state"] == "done" and by_vm[name]["restarted_by"] == "remediator"
        # vCenter cannot relocate off a dead host: the VM was re-registered from its .vmx,
        # keeping its name and restart priority under a new moid.
        assert by_vm[name]["detail"]["new_vm_id"] == now["moid"] != by_vm[name]["vm_id"]
        assert now["restartPriority"] == by_vm[name]["priority"]
    assert {vms[n]["host"] for n in restarted} == {"DC0_C0_H1", "DC0_C0_H3"}  # spread
    assert vms[person_off]["host"] == failed["name"]
    assert vms[person_off]["powerState"] == "poweredOff"
    assert by_vm[person_off]["state"] == "skipped" and "powered off" in by_vm[person_off]["reason"]
    ranks = {"highest": 5, "high": 4, "medium": 3, "low": 2, "lowest": 1}
    started = sorted((by_vm[n] for n in restarted), key=lambda a: a["started_at"])
    assert [ranks[a["priority"]] for a in started] == sorted(
        (ranks[a["priority"]] for a in started), reverse=True
    )
    [decision] = [a for a in items if a["parent_id"] is None]
    assert decision["kind"] == "restart_host_vms"
    assert decision["state"] == "done" and "outcome: " in decision["reason"]


async def test_vm_failure_restarted_but_not_when_a_person_powered_it_off(
    sim: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    _, vms = inventory(sim)
    crashed, switched_off = vms["DC0_C0_VM0"], vms["DC0_C0_VM1"]
    sim.set_vm(crashed["name"], powerState="poweredOff")  # behind vCenter's back: a crash

    def power_off(si: Any) -> None:
        vm = vim.VirtualMachine(switched_off["moid"], si._stub)
        wait_task(vm.PowerOffVM_Task())

    await vsphere(sim, power_off)
    client = await start(aiohttp_client, sim, tmp_path)
    await send(
        client,
        alert("restart_vm", **vm_labels(crashed)),
        alert("restart_vm", **vm_labels(switched_off)),
    )
    items = await settled(client)
    _, vms = inventory(sim)
    assert vms[crashed["name"]]["powerState"] == "poweredOn"
    assert vms[crashed["name"]]["host"] == crashed["host"]  # its own host was healthy
    assert vms[switched_off["name"]]["powerState"] == "poweredOff"
    decisions = {a["vm"]: a for a in items if a["parent_id"] is None}
    assert decisions[switched_off["name"]]["state"] == "skipped"
    assert "powered off by user" in decisions[switched_off["name"]]["reason"]


async def test_heartbeat_failure_reset_then_refused_past_the_limit(
    sim: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    _, vms = inventory(sim)
    target = vms["DC0_C1_VM2"]
    client = await start(aiohttp_client, sim, tmp_path, vm_monitoring={"max_resets": 2})
    boots = []
    for signal in ("guestHeartbeatStatus", "appHeartbeatStatus", "guestHeartbeatStatus"):
        sim.set_vm(
            target["name"], **{signal: "red" if signal.startswith("guest") else "appStatusRed"}
        )
        await send(client, alert("reset_vm", **vm_labels(target)))
        await settled(client)
        boots.append(inventory(sim)[1][target["name"]]["bootTime"])
    items = await actions(client, vm=target["name"])
    resets = [a for a in items if a["kind"] == "reset"]
    decisions = sorted((a for a in items if a["kind"] == "reset_vm"), key=lambda a: a["id"])
    assert [d["state"] for d in decisions] == ["done", "done", "refused"]
    assert "reset limit reached: 2 resets" in decisions[2]["reason"]
    assert sorted(a["state"] for a in resets) == ["done", "done"]
    assert boots[0] != target["bootTime"] and boots[1] != boots[0]  # two real resets
    assert boots[2] == boots[1]  # none past the limit
    after = inventory(sim)[1][target["name"]]
    assert after["powerState"] == "poweredOn"


async def test_degraded_host_evacuated_live_then_maintenance(
    sim: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    hosts, vms = inventory(sim)
    degraded = hosts["DC0_C1_H1"]
    before = {n: vms[n] for n in degraded["vms"]}
    client = await start(aiohttp_client, sim, tmp_path, evacuate={"enter_maintenance": True})
    await send(client, alert("evacuate_host", **host_labels(degraded)))
    items = await settled(client)
    hosts, vms = inventory(sim)
    for name, old in before.items():
        assert vms[name]["host"] != degraded["name"]
        assert vms[name]["powerState"] == "poweredOn"
        assert vms[name]["bootTime"] == old["bootTime"]  # live: no reboot
        assert hosts[vms[name]["host"]]["connectionState"] == "connected"
    assert hosts[degraded["name"]]["inMaintenanceMode"] is True
    kinds = sorted((a["kind"], a["state"]) for a in items if a["parent_id"] is not None)
    assert kinds == sorted([("migrate", "done")] * len(before) + [("enter_maintenance", "done")])


# --- idempotency, cancellation, dry run ----------------------------------------------------


async def test_duplicate_delivery_acts_once(sim: Any, aiohttp_client: Any, tmp_path: Path) -> None:
    _, vms = inventory(sim)
    target = vms["DC0_C0_VM4"]
    sim.set_vm(target["name"], guestHeartbeatStatus="red")
    client = await start(aiohttp_client, sim, tmp_path)
    one = alert("reset_vm", **vm_labels(target))
    replies = await asyncio.gather(*(send(client, one) for _ in range(4)))
    await send(client, one)  # and a late retry
    assert sum(len(r["created"]) for r in replies) == 1
    items = await settled(client)
    assert [a["kind"] for a in items if a["kind"] == "reset"] == ["reset"]
    assert len([a for a in items if a["parent_id"] is None]) == 1


async def test_resolved_before_acted_does_nothing(
    sim: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    hosts, vms = inventory(sim)
    failed = hosts["DC0_C0_H2"]
    sim.fail_host(failed["name"])
    client = await start(aiohttp_client, sim, tmp_path, host_failure={"confirm_seconds": 30})
    firing = alert("restart_host_vms", **host_labels(failed))
    await send(client, firing)
    await until(lambda: _has_reason(client, "confirming failure"), what="the confirmation wait")
    reply = await send(client, resolved(firing))
    assert reply["cancelled"] == 1
    items = await settled(client)
    assert [a["state"] for a in items] == ["cancelled"]
    _, after = inventory(sim)
    assert all(after[n]["host"] == failed["name"] for n in failed["vms"])


async def _has_reason(client: Any, text: str) -> bool:
    return any(text in a["reason"] for a in await actions(client))


async def test_dry_run_plans_and_changes_nothing(
    sim: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    hosts, vms = inventory(sim)
    failed = hosts["DC0_C1_H0"]
    sim.fail_host(failed["name"])
    crashed = vms["DC0_C0_VM0"]
    sim.set_vm(crashed["name"], powerState="poweredOff")
    before = sim.inventory()
    client = await start(aiohttp_client, sim, tmp_path, dry_run=True)
    await send(
        client,
        alert("restart_host_vms", **host_labels(failed)),
        alert("restart_vm", **vm_labels(crashed)),
    )
    items = await settled(client)
    step_states = {a["state"] for a in items if a["parent_id"] is not None}
    assert step_states == {"dry_run"}
    assert all("dry run: would" in a["reason"] for a in items if a["parent_id"] is not None)
    assert sim.inventory()["vms"] == before["vms"]
    metrics = parse(await (await client.get("/metrics")).text())
    assert value(metrics, "vha_remediator_dry_run") == 1


# --- guards --------------------------------------------------------------------------------


async def test_mass_failure_trips_the_guard_and_nothing_is_done(
    sim: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    hosts, _ = inventory(sim)
    failing = [hosts["DC0_C0_H0"], hosts["DC0_C0_H1"]]  # 2 of 3 hosts
    for h in failing:
        sim.fail_host(h["name"])
    before = sim.inventory()
    client = await start(aiohttp_client, sim, tmp_path)
    await send(client, *(alert("restart_host_vms", **host_labels(h)) for h in failing))
    await until(
        lambda: _all_held(client, "mass-failure guard"), what="both decisions held by the guard"
    )
    metrics = parse(await (await client.get("/metrics")).text())
    assert value(metrics, "vha_remediator_guard_tripped", vcenter="vc1", cluster="DC0_C0") == 1
    assert value(metrics, "vha_remediator_guard_state", state="tripped") == 1
    ready = await (await client.get("/readyz")).json()
    assert "vc1/DC0_C0" in ready["guard_tripped"]
    await asyncio.sleep(1.0)
    assert sim.inventory()["vms"] == before["vms"]


async def _all_held(client: Any, text: str) -> bool:
    items = await actions(client)
    return len(items) >= 1 and all(a["state"] == "pending" and text in a["reason"] for a in items)


async def test_unreachable_vcenter_holds_all_work(
    sim: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    hosts, _ = inventory(sim)
    client = await start(aiohttp_client, sim, tmp_path)
    sim.stop()

    async def down() -> bool:
        return await metric(client, "vha_remediator_vcenter_up", vcenter="vc1") == 0

    await until(down, what="vCenter marked unreachable")
    await send(client, alert("restart_host_vms", **host_labels(hosts["DC0_C0_H0"])))
    await until(lambda: _all_held(client, "cannot reach vCenter"), what="held work")
    assert await metric(client, "vha_remediator_guard_state", state="unreachable") == 1


async def test_isolated_host_is_not_restarted_elsewhere(
    sim: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    hosts, _ = inventory(sim)
    isolated = hosts["DC0_C1_H2"]
    sim.fail_host(isolated["name"], das_state="networkIsolated")
    client = await start(aiohttp_client, sim, tmp_path, host_failure={"max_unconfirmed_seconds": 1})
    await send(client, alert("restart_host_vms", **host_labels(isolated)))
    items = await settled(client)
    [decision] = items
    assert decision["state"] == "refused" and "networkIsolated" in decision["reason"]
    _, vms = inventory(sim)
    assert all(vms[n]["host"] == isolated["name"] for n in isolated["vms"])


async def test_ha_grace_lets_vsphere_ha_restart_first_and_is_credited(
    sim: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    hosts, vms = inventory(sim)
    failed, survivor = hosts["DC0_C0_H1"], hosts["DC0_C0_H2"]
    sim.fail_host(failed["name"])
    by_ha = vms[failed["vms"][0]]
    client = await start(aiohttp_client, sim, tmp_path, ha_grace_seconds=3)
    await send(client, alert("restart_host_vms", **host_labels(failed)))
    await until(lambda: _has_reason(client, "giving it 3s"), what="the HA grace wait")

    def ha_restarts(si: Any) -> None:  # what vSphere HA itself would do
        vm = vim.VirtualMachine(by_ha["moid"], si._stub)
        spec = vim.vm.RelocateSpec(host=vim.HostSystem(survivor["moid"], si._stub))
        wait_task(vm.RelocateVM_Task(spec))
        wait_task(vm.PowerOnVM_Task())

    await vsphere(sim, ha_restarts)
    items = await settled(client)
    by_vm = steps(items)
    assert by_vm[by_ha["name"]]["state"] == "skipped"
    assert by_vm[by_ha["name"]]["restarted_by"] == "vsphere-ha"
    others = [n for n in failed["vms"] if n != by_ha["name"]]
    assert all(by_vm[n]["restarted_by"] == "remediator" for n in others)
    _, after = inventory(sim)
    assert all(after[n]["powerState"] == "poweredOn" for n in failed["vms"])


async def test_fencing_hook_runs_first_and_a_failed_fence_blocks_restarts(
    sim: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    hosts, _ = inventory(sim)
    good, bad = hosts["DC0_C0_H0"], hosts["DC0_C1_H0"]  # one failure per cluster
    for h in (good, bad):
        sim.fail_host(h["name"])
    log = tmp_path / "fenced.log"
    hook = tmp_path / "fence.sh"
    hook.write_text(
        "#!/bin/sh\n"
        f'echo "$VHA_HOST" >> {log}\n'
        f'[ "$VHA_HOST" = "{bad["name"]}" ] && {{ echo "IPMI timeout"; exit 3; }}\n'
        "echo powered off\n"
    )
    hook.chmod(0o755)
    client = await start(
        aiohttp_client,
        sim,
        tmp_path,
        host_failure={"fencing_command": [str(hook)]},
        retry={"max_attempts": 2},
    )
    await send(
        client,
        alert("restart_host_vms", **host_labels(good)),
        alert("restart_host_vms", **host_labels(bad)),
    )
    items = await settled(client)
    decisions = {a["host"]: a for a in items if a["parent_id"] is None}
    assert decisions[good["name"]]["state"] == "done"
    assert decisions[good["name"]]["detail"]["fenced"] == "fenced by " + str(hook) + ": powered off"
    assert decisions[bad["name"]]["state"] == "failed"
    assert "IPMI timeout" in decisions[bad["name"]]["reason"]
    _, vms = inventory(sim)
    assert all(vms[n]["host"] != good["name"] for n in good["vms"])
    assert all(vms[n]["host"] == bad["name"] for n in bad["vms"])
    assert bad["name"] in log.read_text()


# --- vCenter faults ------------------------------------------------------------------------


async def test_transient_faults_are_retried_and_refusing_targets_replaced(
    sim: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    hosts, vms = inventory(sim)
    failed = hosts["DC0_C1_H0"]
    planned_target = "DC0_C1_H1"  # fd-b, the preferred other fault domain
    sim.fail_host(failed["name"])
    sim.inject_fault("PowerOnVM_Task", "TaskInProgress", count=1)
    # The VMs leave the dead host by re-registering; the planned target refuses them.
    sim.inject_fault("RegisterVM_Task", "InvalidHostState", object=planned_target, count=-1)
    client = await start(aiohttp_client, sim, tmp_path, max_concurrent_tasks=1)
    await send(client, alert("restart_host_vms", **host_labels(failed)))
    items = await settled(client)
    sim.clear_faults()
    _, vms = inventory(sim)
    for name in failed["vms"]:
        assert vms[name]["powerState"] == "poweredOn"
        assert vms[name]["host"] == "DC0_C1_H2"
    by_vm = steps(items)
    assert all(a["state"] == "done" for a in by_vm.values())
    assert max(a["attempts"] for a in by_vm.values()) >= 2  # retried / re-placed


async def test_relocate_method_moves_vms_off_a_failed_host(
    sim: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    hosts, vms = inventory(sim)
    failed, refused = hosts["DC0_C0_H1"], hosts["DC0_C1_H1"]
    before = {n: vms[n]["moid"] for n in failed["vms"]}
    sim.fail_host(failed["name"])
    client = await start(
        aiohttp_client, sim, tmp_path, host_failure={"move_method": "relocate"}, retry={}
    )
    await send(client, alert("restart_host_vms", **host_labels(failed)))
    items = await settled(client)
    _, after = inventory(sim)
    for name, moid in before.items():
        assert after[name]["moid"] == moid  # relocated: the same VM, no re-registration
        assert after[name]["powerState"] == "poweredOn" and after[name]["host"] != failed["name"]
        assert "new_vm_id" not in steps(items)[name]["detail"]
    # A vCenter that refuses to move VMs off a host it cannot reach (as real ones do):
    # "relocate" then fails with advice, instead of retrying in vain.
    sim.set_strict(strict_source=True)
    sim.fail_host(refused["name"])
    await send(client, alert("restart_host_vms", **host_labels(refused)))
    items = await settled(client)
    failures = [a for a in items if a["host"] == refused["name"] and a["parent_id"]]
    assert failures and all(a["state"] == "failed" for a in failures)
    assert all("move_method auto or register" in a["reason"] for a in failures)


async def test_register_path_and_auto_fallback(
    sim: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    hosts, vms = inventory(sim)
    unhealthy = hosts["DC0_C0_H0"]
    first, second = (vms[n] for n in unhealthy["vms"][:2])
    for v in (first, second):
        sim.set_vm(v["name"], powerState="poweredOff")
    sim.set_host(unhealthy["name"], inMaintenanceMode=True)
    # Real vCenter will not relocate off a dead host; "auto" then re-registers the VM.
    sim.inject_fault("RelocateVM_Task", "HostNotConnected", count=-1)
    client = await start(aiohttp_client, sim, tmp_path)
    await send(
        client, alert("restart_vm", **vm_labels(first)), alert("restart_vm", **vm_labels(second))
    )
    items = await settled(client)
    sim.clear_faults()
    _, after = inventory(sim)
    for v in (first, second):
        now = after[v["name"]]
        assert now["powerState"] == "poweredOn" and now["host"] != unhealthy["name"]
        step = steps(items)[v["name"]]
        assert step["state"] == "done"
        assert step["detail"]["new_vm_id"] == now["moid"] != v["moid"]


# --- the HTTP surface ----------------------------------------------------------------------


async def test_api_filters_index_and_metrics(sim: Any, aiohttp_client: Any, tmp_path: Path) -> None:
    hosts, vms = inventory(sim)
    crashed = vms["DC0_C1_VM1"]
    sim.set_vm(crashed["name"], powerState="poweredOff")
    client = await start(aiohttp_client, sim, tmp_path)
    await send(client, alert("restart_vm", **vm_labels(crashed)))
    await settled(client)
    by_vm = await actions(client, vm=crashed["name"])
    assert len(by_vm) == 2 and {a["kind"] for a in by_vm} == {"restart_vm", "restart"}
    assert await actions(client, vm=crashed["moid"], state="done")
    assert await actions(client, host=crashed["host"])
    assert await actions(client, state="failed") == []
    bad = await client.get("/api/v1/actions", params={"state": "bogus"}, headers=AUTH)
    assert bad.status == 400
    assert (await client.get("/api/v1/actions")).status == 401
    decision = next(a for a in by_vm if a["parent_id"] is None)
    one = await (await client.get(f"/api/v1/actions/{decision['id']}", headers=AUTH)).json()
    assert one["steps"][0]["state"] == "done" and one["alerts"][0]["status"] == "firing"
    assert [e["state"] for e in one["events"]][0] == "pending"
    page = await (await client.get("/", headers=AUTH)).text()
    assert crashed["name"] in page and "<table>" in page
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["vcenters"]["vc1"]["up"] is True
    metrics = parse(await (await client.get("/metrics")).text())
    assert value(metrics, "vha_remediator_actions_total", kind="restart", result="done") == 1
    assert value(metrics, "vha_remediator_webhook_requests_total", code="200") == 1
    assert value(metrics, "vha_remediator_journal_backlog") == 0
    assert value(metrics, "vha_remediator_action_duration_seconds_count", kind="restart") == 1
