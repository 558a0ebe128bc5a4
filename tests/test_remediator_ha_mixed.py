"""Issue 10 gaps against the simulator: a failed host with VMs of both owners.

On an HA cluster (``defer_to_ha`` on) a VM vSphere HA does not protect
(``summary.runtime.dasVmProtection.dasProtected`` false) is the remediator's; it must be
restarted at once, not wait behind the VMs vSphere HA is restarting, which stay watched
(the overdue window) and are never touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .metrics_helpers import parse, value
from .remediator_fixtures import alert, until
from .remediator_sim import actions, host_labels, inventory, send, settled, steps
from .remediator_sim import start_ha as start

pytestmark = pytest.mark.slow


async def test_remediator_vms_go_ahead_while_ha_vms_are_watched(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    sim = sim_factory(clusters=1, hosts=3, vms=9)
    hosts, vms = inventory(sim)
    failed = hosts["DC0_C0_H0"]
    mine, *theirs = failed["vms"]
    assert theirs
    sim.set_vm_ha(mine, das_protected=False)  # on an HA cluster, not protected by HA
    sim.fail_host(failed["name"])
    client = await start(aiohttp_client, sim, tmp_path, ha={"overdue_seconds": 25})
    await send(client, alert("restart_host_vms", **host_labels(failed)))

    async def restarted() -> dict[str, Any] | None:
        step = steps(await actions(client)).get(mine)
        return step if step is not None and step["state"] == "done" else None

    # the remediator's VM runs elsewhere well before vSphere HA's VMs are overdue
    await until(restarted, 20.0, what=f"{mine} restarted by the remediator")
    _, now = inventory(sim)
    assert now[mine]["host"] != failed["name"] and now[mine]["powerState"] == "poweredOn"
    by_vm = steps(await actions(client))
    for name in theirs:
        assert by_vm[name]["kind"] == "watch_ha" and by_vm[name]["state"] in ("pending", "running")
        assert "vSphere HA protects it" in by_vm[name]["reason"]
    _, now = inventory(sim)
    assert all(now[n]["host"] == failed["name"] for n in theirs)
    # after the window: overdue, alerted once per VM, still never touched
    items = await settled(client, 60.0)
    by_vm = steps(items)
    _, after = inventory(sim)
    for name in theirs:
        assert after[name]["host"] == failed["name"] and after[name]["moid"] == vms[name]["moid"]
        assert by_vm[name]["state"] == "skipped" and "overdue" in by_vm[name]["reason"]
    m = parse(await (await client.get("/metrics")).text())
    overdue = value(m, "vha_remediator_ha_restart_overdue_total", vcenter="vc1", cluster="DC0_C0")
    assert overdue == len(theirs)


async def test_act_when_overdue_restarts_the_watched_vms_after_the_window(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    """With ``ha.act_when_overdue`` the watch steps restart HA's VMs once HA is overdue."""
    sim = sim_factory(clusters=1, hosts=3, vms=9)
    hosts, _ = inventory(sim)
    failed = hosts["DC0_C0_H0"]
    mine, *theirs = failed["vms"]
    sim.set_vm_ha(mine, das_protected=False)
    sim.fail_host(failed["name"])
    ha = {"overdue_seconds": 6, "act_when_overdue": True}
    client = await start(aiohttp_client, sim, tmp_path, ha=ha)
    await send(client, alert("restart_host_vms", **host_labels(failed)))
    items = await settled(client, 60.0)
    by_vm = steps(items)
    _, after = inventory(sim)
    for name in [mine, *theirs]:
        assert after[name]["host"] != failed["name"] and after[name]["powerState"] == "poweredOn"
        assert by_vm[name]["state"] == "done" and by_vm[name]["restarted_by"] == "remediator"
    assert {by_vm[n]["kind"] for n in theirs} == {"watch_ha"}
    m = parse(await (await client.get("/metrics")).text())
    overdue = value(m, "vha_remediator_ha_restart_overdue_total", vcenter="vc1", cluster="DC0_C0")
    assert overdue == len(theirs)


async def test_fault_domain_decisions_count_who_was_responsible(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    """``vha_remediator_responsibility_total`` counts ``restart_fault_domain_vms`` like
    ``restart_host_vms``: once per VM of the domain's hosts, on the first look."""
    from .test_remediator_fault_domains import FD_A, disable_ha, domain_alert

    sim = sim_factory(clusters=1, hosts=6, vms=18)
    await disable_ha(sim)
    hosts, _ = inventory(sim)
    on_domain = [v for n in FD_A for v in hosts[n]["vms"]]
    for name in FD_A:  # the rack lost power
        sim.fail_host(name)
        sim.set_host(name, powerState="poweredOff")
    client = await start(aiohttp_client, sim, tmp_path)
    await send(client, domain_alert(sim, "fd-a"))
    await settled(client, timeout=60)
    m = parse(await (await client.get("/metrics")).text())
    counted = value(
        m,
        "vha_remediator_responsibility_total",
        kind="restart_fault_domain_vms",
        actor="remediator",
        rule="ha-off",
    )
    assert counted == len(on_domain)
