"""Restart orchestration across decisions (issue 10 item 6), against the simulator.

vSphere HA orders all of a cluster's failed VMs together by restart priority. Two hosts of
a 6-host cluster without HA fail at once (2 of 6 is within the guard's defaults): each has
its own ``restart_host_vms`` decision, and the cluster gate (remediator/cluster_gate.py)
keeps a lower tier of one from opening while a higher tier of the other is not done. The
settings are set as an admin sets them (``ReconfigureComputeResource_Task``); times come
from the journal (a step's ``started_at`` is its first vCenter change, ``finished_at`` the
power-on that completed it).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim

from .remediator_fixtures import alert, resolved, until
from .test_remediator_ha_watch import ha, reconfigure, start
from .test_remediator_sim import actions, host_labels, inventory, send, settled, steps, vm_labels
from .test_remediator_tiers import history, readiness, vm_priorities

pytestmark = pytest.mark.slow

SLOW = 5  # s, the additional delay (postReadyDelay) of host B's high VM alone


def vm_delay(vms: dict[str, dict[str, Any]], delays: dict[str, int]) -> Any:
    """Per-VM "additional delay" (``vmOrchestrationSpec``), the cluster's condition."""

    def spec(si: Any) -> list[Any]:
        return [
            vim.cluster.VmOrchestrationSpec(
                operation="add",
                info=vim.cluster.VmOrchestrationInfo(
                    vm=vim.VirtualMachine(vms[name]["moid"], si._stub),
                    vmReadiness=vim.cluster.VmReadiness(
                        readyCondition="useClusterDefault", postReadyDelay=d
                    ),
                ),
            )
            for name, d in delays.items()
        ]

    return spec


def two_hosts(sim: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Hosts A and B of the 6-host cluster, in different fault domains (no domain down)."""
    hosts, vms = inventory(sim)
    return hosts["DC0_C0_H0"], hosts["DC0_C0_H1"], vms


async def decisions(client: Any) -> dict[str, dict[str, Any]]:
    return {a["host"]: a for a in await actions(client) if a["parent_id"] is None}


async def test_no_low_vm_of_one_host_starts_before_the_other_hosts_high_vms_are_ready(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    sim = sim_factory(clusters=1, hosts=6, vms=18)
    a, b, vms = two_hosts(sim)
    a_hi, a_lo1, a_lo2 = a["vms"]
    b_hi, b_mid, b_lo = b["vms"]
    prios = {a_hi: "high", a_lo1: "low", a_lo2: "low", b_hi: "high", b_mid: "medium", b_lo: "low"}
    await reconfigure(
        sim,
        "DC0_C0",
        dasConfig=ha(enabled=False),
        dasVmConfigSpec=vm_priorities(vms, prios),
        orchestration=readiness("guestHbStatusGreen"),
        vmOrchestrationSpec=vm_delay(vms, {b_hi: SLOW}),
    )
    sim.fail_host(a["name"])
    sim.fail_host(b["name"])
    client = await start(aiohttp_client, sim, tmp_path)
    await send(
        client,
        alert("restart_host_vms", **host_labels(a)),
        alert("restart_host_vms", **host_labels(b)),
    )
    items = await settled(client, timeout=60)
    by_vm = steps(items)
    assert all(s["state"] == "done" for s in by_vm.values()), by_vm
    ready = by_vm[b_hi]["finished_at"] + SLOW
    for low in (a_lo1, a_lo2):
        assert by_vm[low]["started_at"] >= ready, (low, by_vm)
    # host B's own order is as before: its medium tier after its high one
    assert by_vm[b_mid]["started_at"] >= ready
    ds = await decisions(client)
    held = f"tier high of decision {ds[b['name']]['id']} (host {b['name']}) not ready"
    lines = await history(client, by_vm[a_lo1]["id"])
    assert any(held in x for x in lines), lines


async def test_a_dependency_on_a_vm_of_the_other_failed_host_is_waited_for(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    sim = sim_factory(clusters=1, hosts=6, vms=18)
    a, b, vms = two_hosts(sim)
    app, a_other = a["vms"][:2]
    db = b["vms"][0]
    everyone = {n: "medium" for n in [*a["vms"], *b["vms"]]}

    def groups(si: Any) -> list[Any]:
        def group(name: str, vm: str) -> Any:
            info = vim.cluster.VmGroup(
                name=name, vm=[vim.VirtualMachine(vms[vm]["moid"], si._stub)]
            )
            return vim.cluster.GroupSpec(operation="add", info=info)

        return [group("app", app), group("db", db)]

    rule = vim.cluster.DependencyRuleInfo(
        name="app-after-db", enabled=True, vmGroup="app", dependsOnVmGroup="db"
    )
    await reconfigure(
        sim,
        "DC0_C0",
        dasConfig=ha(enabled=False),
        dasVmConfigSpec=vm_priorities(vms, everyone),
        groupSpec=groups,
        rulesSpec=[vim.cluster.RuleSpec(operation="add", info=rule)],
        orchestration=readiness("poweredOn"),
        vmOrchestrationSpec=vm_delay(vms, {db: SLOW}),
    )
    sim.fail_host(a["name"])
    sim.fail_host(b["name"])
    client = await start(aiohttp_client, sim, tmp_path)
    await send(
        client,
        alert("restart_host_vms", **host_labels(a)),
        alert("restart_host_vms", **host_labels(b)),
    )
    by_vm = steps(await settled(client, timeout=60))
    assert all(s["state"] == "done" for s in by_vm.values()), by_vm
    assert by_vm[app]["started_at"] >= by_vm[db]["finished_at"] + SLOW, by_vm
    # the same tier on the other host does not wait: only the rule's VM does
    assert by_vm[a_other]["started_at"] < by_vm[db]["finished_at"] + SLOW, by_vm
    lines = await history(client, by_vm[app]["id"])
    assert any("app-after-db" in x for x in lines), lines


async def test_a_peer_decision_that_ends_releases_the_gate(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    """Host B's high VM never gets ready (its guest hangs on boot) and its tier timeout is
    long: host A's low VMs are held by it until B's alert resolves, then start."""
    sim = sim_factory(clusters=1, hosts=6, vms=18)
    a, b, vms = two_hosts(sim)
    a_hi, a_lo1, a_lo2 = a["vms"]
    b_hung = b["vms"][0]
    prios = {n: "low" for n in b["vms"]} | {
        a_hi: "high",
        a_lo1: "low",
        a_lo2: "low",
        b_hung: "high",
    }
    await reconfigure(
        sim,
        "DC0_C0",
        dasConfig=ha(
            enabled=False,
            defaultVmSettings=vim.cluster.DasVmSettings(restartPriorityTimeout=300),
        ),
        dasVmConfigSpec=vm_priorities(vms, prios),
        orchestration=readiness("guestHbStatusGreen"),
    )
    sim.set_vm(b_hung, hangOnBoot=True)
    sim.fail_host(a["name"])
    sim.fail_host(b["name"])
    client = await start(aiohttp_client, sim, tmp_path)
    b_alert = alert("restart_host_vms", **host_labels(b))
    await send(client, alert("restart_host_vms", **host_labels(a)), b_alert)

    async def b_hung_done() -> dict[str, Any] | None:
        by_vm = steps(await actions(client))
        ok = by_vm.get(b_hung, {}).get("state") == "done" and by_vm[a_hi]["state"] == "done"
        return by_vm if ok else None

    by_vm = await until(b_hung_done, 30, what="both high tiers restarted")
    await asyncio.sleep(3)  # the gate holds them for as long as B's tier is not done
    by_vm = steps(await actions(client))
    for low in (a_lo1, a_lo2):
        assert by_vm[low]["state"] == "pending", by_vm[low]
        assert "held: tier high of decision" in by_vm[low]["reason"], by_vm[low]
    await send(client, resolved(b_alert))
    by_vm = steps(await settled(client, timeout=30))
    assert by_vm[a_lo1]["state"] == by_vm[a_lo2]["state"] == "done", by_vm


async def test_the_gate_is_recovered_after_a_remediator_restart(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    """Host B's VMs are all high (none of its steps is held); A's low VMs wait on B's long
    additional delay. A remediator started again on the same journal rebuilds the gate from
    it: A's low VMs still wait for B's high tier, by the settings as they are then."""
    sim = sim_factory(clusters=1, hosts=6, vms=18)
    a, b, vms = two_hosts(sim)
    a_hi, a_lo1, a_lo2 = a["vms"]
    prios = {n: "high" for n in b["vms"]} | {a_hi: "high", a_lo1: "low", a_lo2: "low"}
    await reconfigure(
        sim,
        "DC0_C0",
        dasConfig=ha(enabled=False),
        dasVmConfigSpec=vm_priorities(vms, prios),
        orchestration=readiness("poweredOn"),
        vmOrchestrationSpec=vm_delay(vms, {n: 300 for n in b["vms"]}),
    )
    sim.fail_host(a["name"])
    sim.fail_host(b["name"])
    client = await start(aiohttp_client, sim, tmp_path)
    await send(
        client,
        alert("restart_host_vms", **host_labels(a)),
        alert("restart_host_vms", **host_labels(b)),
    )

    async def held_by_b() -> dict[str, Any] | None:
        by_vm = steps(await actions(client))
        highs = [a_hi, *b["vms"]]
        if not all(by_vm.get(n, {}).get("state") == "done" for n in highs):
            return None
        lows = [by_vm[n] for n in (a_lo1, a_lo2)]
        return by_vm if all("held: tier high of decision" in s["reason"] for s in lows) else None

    by_vm = await until(held_by_b, 30, what="A's low VMs held by B's high tier")
    for low in (a_lo1, a_lo2):
        assert by_vm[low]["state"] == "pending", by_vm[low]
    await client.close()
    await reconfigure(sim, "DC0_C0", vmOrchestrationSpec=vm_delay(vms, {n: 4 for n in b["vms"]}))
    client = await start(aiohttp_client, sim, tmp_path)
    by_vm = steps(await settled(client, timeout=40))
    assert all(s["state"] == "done" for s in by_vm.values()), by_vm
    ready = max(by_vm[n]["finished_at"] for n in b["vms"]) + 4
    for low in (a_lo1, a_lo2):
        assert by_vm[low]["started_at"] >= ready, (low, by_vm)


async def test_restart_vm_alerts_of_one_delivery_are_tiered_together(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    """Three VMs of one cluster crashed (powered off behind vCenter's back, hosts healthy):
    one webhook delivery, three ``restart_vm`` decisions, ordered as one failure. Their
    priorities are the simulator's HA-RestartPriority attribute (the stack's rules: the
    power-off is judged without deferring to vSphere HA, so its settings are not read)."""
    sim = sim_factory(clusters=1, hosts=6, vms=18)
    _, vms = inventory(sim)

    def having(prio: str) -> list[str]:
        return sorted(n for n, v in vms.items() if str(v["restartPriority"]).lower() == prio)

    hi, (lo1, lo2) = having("high")[0], having("low")[:2]
    await reconfigure(
        sim,
        "DC0_C0",
        dasConfig=ha(enabled=False),
        orchestration=readiness("poweredOn"),
        vmOrchestrationSpec=vm_delay(vms, {hi: SLOW}),
    )
    for name in (lo1, lo2, hi):
        sim.set_vm(name, powerState="poweredOff")
    # the simulator posts no event for a crash: judged by the user power-off events alone
    client = await start(aiohttp_client, sim, tmp_path, ha={"defer_to_ha": False})
    await send(client, *(alert("restart_vm", **vm_labels(vms[n])) for n in (lo1, lo2, hi)))
    items = await settled(client, timeout=40)
    by_vm = steps(items)
    seen = [(x["vm"], x["kind"], x["state"], x["reason"]) for x in items]
    assert all(by_vm.get(n, {}).get("state") == "done" for n in (hi, lo1, lo2)), seen
    for low in (lo1, lo2):
        assert by_vm[low]["started_at"] >= by_vm[hi]["finished_at"] + SLOW, (low, seen)
