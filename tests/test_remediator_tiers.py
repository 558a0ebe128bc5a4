"""Issue 10 item 6 against the simulator: a failed host's VMs restart tier by tier.

The cluster's vSphere HA is off (the remediator restarts), its settings are set as an
admin sets them (``ReconfigureComputeResource_Task``): per-VM restart priorities
(``dasVmConfigSpec``), "start next priority VMs when" (``orchestration.defaultVmReadiness``),
the tier timeout (``defaultVmSettings.restartPriorityTimeout``) and VM-VM dependency rules
(``groupSpec`` + ``rulesSpec`` with a ``ClusterDependencyRuleInfo``). Times are read from
the journal: a step's ``started_at`` is its first vCenter change, ``finished_at`` the
power-on that completed it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim

from .remediator_fixtures import AUTH, alert, until
from .test_remediator_ha_watch import ha, reconfigure, start
from .test_remediator_sim import actions, host_labels, inventory, send, settled, steps

pytestmark = pytest.mark.slow

DELAY = 2  # s, the additional delay (postReadyDelay)


def vm_priorities(vms: dict[str, dict[str, Any]], prios: dict[str, str]) -> Any:
    def spec(si: Any) -> list[Any]:
        return [
            vim.cluster.DasVmConfigSpec(
                operation="add",
                info=vim.cluster.DasVmConfigInfo(
                    key=vim.VirtualMachine(vms[name]["moid"], si._stub),
                    dasSettings=vim.cluster.DasVmSettings(restartPriority=p),
                ),
            )
            for name, p in prios.items()
        ]

    return spec


def readiness(condition: str, delay: int = 0) -> vim.cluster.OrchestrationInfo:
    return vim.cluster.OrchestrationInfo(
        defaultVmReadiness=vim.cluster.VmReadiness(readyCondition=condition, postReadyDelay=delay)
    )


async def history(client: Any, action_id: int) -> list[str]:
    resp = await client.get(f"/api/v1/actions/{action_id}", headers=AUTH)
    assert resp.status == 200, await resp.text()
    return [e["message"] for e in (await resp.json())["events"]]


async def test_three_tiers_start_in_order_with_the_additional_delay(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    sim = sim_factory(clusters=1, hosts=3, vms=9)
    hosts, vms = inventory(sim)
    failed = hosts["DC0_C0_H0"]
    hi, mid, lo = failed["vms"]
    await reconfigure(
        sim,
        "DC0_C0",
        dasConfig=ha(enabled=False),
        dasVmConfigSpec=vm_priorities(vms, {hi: "high", mid: "medium", lo: "low"}),
        orchestration=readiness("poweredOn", DELAY),
    )
    sim.fail_host(failed["name"])
    client = await start(aiohttp_client, sim, tmp_path)
    await send(client, alert("restart_host_vms", **host_labels(failed)))
    items = await settled(client, timeout=40)
    by_vm = steps(items)
    assert all(by_vm[n]["state"] == "done" for n in (hi, mid, lo)), by_vm
    # each tier starts only after the one above is powered on, plus the additional delay
    assert by_vm[mid]["started_at"] >= by_vm[hi]["finished_at"] + DELAY, by_vm
    assert by_vm[lo]["started_at"] >= by_vm[mid]["finished_at"] + DELAY, by_vm
    assert by_vm[mid]["detail"]["orchestration"]["tier"] == 2
    parent = by_vm[hi]["parent_id"]
    lines = await history(client, parent)
    assert any(line.startswith("tier 1 of 3 (high, 1 VMs) started") for line in lines), lines
    assert any("tier 2 of 3 (medium, 1 VMs) started: tier 1 (high) ready" in x for x in lines)
    assert any("tier 3 of 3 (low, 1 VMs) started: tier 2 (medium) ready" in x for x in lines)
    page = await (await client.get("/", headers=AUTH)).text()
    assert "medium tier 2/3" in page


async def test_a_tier_that_never_gets_ready_holds_the_next_until_its_timeout(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    sim = sim_factory(clusters=1, hosts=3, vms=9)
    hosts, vms = inventory(sim)
    failed = hosts["DC0_C0_H0"]
    hung, mid, lo = failed["vms"]
    timeout = 3
    await reconfigure(
        sim,
        "DC0_C0",
        dasConfig=ha(
            enabled=False,
            defaultVmSettings=vim.cluster.DasVmSettings(restartPriorityTimeout=timeout),
        ),
        dasVmConfigSpec=vm_priorities(vms, {hung: "high", mid: "medium", lo: "medium"}),
        orchestration=readiness("guestHbStatusGreen"),
    )
    sim.set_vm(hung, hangOnBoot=True)  # its guest never sends a heartbeat once restarted
    sim.fail_host(failed["name"])
    client = await start(aiohttp_client, sim, tmp_path)
    await send(client, alert("restart_host_vms", **host_labels(failed)))
    items = await settled(client, timeout=40)
    by_vm = steps(items)
    assert all(by_vm[n]["state"] == "done" for n in (hung, mid, lo)), by_vm
    _, after = inventory(sim)
    assert after[hung]["guestHeartbeatStatus"] == "gray"  # powered on, never ready
    # the medium tier waited for the timeout, counted from the high tier's start
    first = min(by_vm[hung]["created_at"], by_vm[hung]["started_at"])
    assert by_vm[mid]["started_at"] >= first + timeout, by_vm
    lines = await history(client, by_vm[hung]["parent_id"])
    assert any("tier 1 (high): timeout after 3 s, next tier started" in x for x in lines), lines
    assert any(
        "tier 2 of 2 (medium, 2 VMs) started: tier 1 (high) not ready: timeout after 3 s" in x
        for x in lines
    ), lines


async def test_a_dependent_vm_starts_after_the_vm_it_depends_on(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    sim = sim_factory(clusters=1, hosts=3, vms=9)
    hosts, vms = inventory(sim)
    failed = hosts["DC0_C0_H0"]
    app, db, other = failed["vms"]

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
        groupSpec=groups,
        rulesSpec=[vim.cluster.RuleSpec(operation="add", info=rule)],
        orchestration=readiness("poweredOn", DELAY),
    )
    sim.fail_host(failed["name"])
    client = await start(aiohttp_client, sim, tmp_path)
    await send(client, alert("restart_host_vms", **host_labels(failed)))
    items = await settled(client, timeout=40)
    by_vm = steps(items)
    assert all(by_vm[n]["state"] == "done" for n in (app, db, other)), by_vm
    assert by_vm[app]["started_at"] >= by_vm[db]["finished_at"] + DELAY, by_vm
    # the VM no rule holds starts with the first tier, not after the dependency
    assert by_vm[other]["started_at"] < by_vm[db]["finished_at"] + DELAY, by_vm
    assert "app-after-db" in by_vm[app]["reason"] or any(
        "app-after-db" in x for x in await history(client, by_vm[app]["id"])
    )


async def test_held_steps_are_pending_and_survive_a_restart(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    """A low tier waiting on a long delay is pending with its reason while the high tier is
    done; a remediator started again on the same journal picks the held steps up and
    releases them by the cluster's settings as they are then."""
    sim = sim_factory(clusters=1, hosts=3, vms=9)
    hosts, vms = inventory(sim)
    failed = hosts["DC0_C0_H0"]
    hi, mid, lo = failed["vms"]
    await reconfigure(
        sim,
        "DC0_C0",
        dasConfig=ha(enabled=False),
        dasVmConfigSpec=vm_priorities(vms, {hi: "high", mid: "low", lo: "low"}),
        orchestration=readiness("poweredOn", 300),
    )
    sim.fail_host(failed["name"])
    client = await start(aiohttp_client, sim, tmp_path)
    await send(client, alert("restart_host_vms", **host_labels(failed)))

    async def high_done() -> dict[str, Any] | None:
        by_vm = steps(await actions(client))
        return by_vm if by_vm.get(hi, {}).get("state") == "done" else None

    by_vm = await until(high_done, 20, what="the high tier restarted")
    for n in (mid, lo):
        assert by_vm[n]["state"] == "pending", by_vm[n]
        assert by_vm[n]["reason"].startswith("held: tier 2 of 2 (low) waits for tier 1 (high)")
    await client.close()
    await reconfigure(sim, "DC0_C0", orchestration=readiness("poweredOn", 1))
    client = await start(aiohttp_client, sim, tmp_path)
    by_vm = steps(await settled(client, timeout=40))
    assert all(by_vm[n]["state"] == "done" for n in (hi, mid, lo)), by_vm
    assert by_vm[mid]["started_at"] >= by_vm[hi]["finished_at"] + 1
    lines = await history(client, by_vm[hi]["parent_id"])
    assert any(x.startswith("tier 2 of 2 (low, 2 VMs) started: tier 1 (high) ready") for x in lines)


async def test_dry_run_plans_every_tier_without_waiting_for_readiness(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    """In a dry run nothing powers on: a planned-only tier releases the next at once."""
    sim = sim_factory(clusters=1, hosts=3, vms=9)
    hosts, vms = inventory(sim)
    failed = hosts["DC0_C0_H0"]
    hi, mid, lo = failed["vms"]
    await reconfigure(
        sim,
        "DC0_C0",
        dasConfig=ha(enabled=False),
        dasVmConfigSpec=vm_priorities(vms, {hi: "high", mid: "medium", lo: "low"}),
        orchestration=readiness("guestHbStatusGreen", 300),
    )
    sim.fail_host(failed["name"])
    client = await start(aiohttp_client, sim, tmp_path, dry_run=True)
    await send(client, alert("restart_host_vms", **host_labels(failed)))
    by_vm = steps(await settled(client, timeout=30))
    assert all(by_vm[n]["state"] == "dry_run" for n in (hi, mid, lo)), by_vm
    lines = await history(client, by_vm[hi]["parent_id"])
    assert any(f"({hi}) was only planned (dry run)" in x for x in lines), lines
    _, after = inventory(sim)
    assert all(after[n]["host"] == failed["name"] for n in (hi, mid, lo))


async def test_a_down_fault_domain_restarts_tier_by_tier_across_its_hosts(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    """A confirmed-down fault domain (one decision for three hosts): its VMs restart tier by
    tier by the simulator's HA-RestartPriority attribute (high / medium / low), across hosts."""
    from .test_remediator_fault_domains import FD_A, domain_alert

    sim = sim_factory(clusters=1, hosts=6, vms=18)
    await reconfigure(
        sim, "DC0_C0", dasConfig=ha(enabled=False), orchestration=readiness("poweredOn", 1)
    )
    for name in FD_A:  # the rack lost power
        sim.fail_host(name)
        sim.set_host(name, powerState="poweredOff")
    client = await start(aiohttp_client, sim, tmp_path)
    await send(client, domain_alert(sim, "fd-a"))
    items = await settled(client, timeout=60)
    done = [a for a in items if a["parent_id"] is not None and a["state"] == "done"]
    tiers = {p: [s for s in done if s["priority"] == p] for p in ("high", "medium", "low")}
    assert all(len(t) >= 2 for t in tiers.values()), tiers
    # the simulator gives each fd-a host one priority: the order runs across hosts
    assert len({s["host_id"] for t in tiers.values() for s in t}) == 3
    for upper, lower in (("high", "medium"), ("medium", "low")):
        ready = max(s["finished_at"] for s in tiers[upper]) + 1
        assert min(s["started_at"] for s in tiers[lower]) >= ready, (upper, lower)
    lines = await history(client, done[0]["parent_id"])
    assert any("tier 3 of 3 (low" in x and "tier 2 (medium) ready" in x for x in lines), lines
