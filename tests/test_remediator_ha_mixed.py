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
from .test_remediator_ha_watch import start
from .test_remediator_sim import actions, host_labels, inventory, send, settled, steps

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
        now = inventory(sim)[1].get(mine)  # absent while it is being re-registered
        if now is None or now["host"] == failed["name"] or now["powerState"] != "poweredOn":
            return None
        return now

    # the remediator's VM runs elsewhere well before vSphere HA's VMs are overdue
    await until(restarted, 20.0, what=f"{mine} restarted by the remediator")
    items = await actions(client)
    by_vm = steps(items)
    assert by_vm[mine]["state"] == "done", by_vm[mine]
    for name in theirs:
        assert by_vm[name]["state"] == "pending" and "vSphere HA" in by_vm[name]["reason"]
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
