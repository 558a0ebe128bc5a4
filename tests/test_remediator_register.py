"""Register or recover, never neither (issue 9, item 2).

Once a VM has been unregistered from its dead host it is in no inventory: the step must
end with the VM registered (on the next target, or after retries), and while it cannot,
the VM is shown on /metrics, the API and the page, never dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .metrics_helpers import parse, select, value
from .remediator_fixtures import AUTH, alert, resolved, until
from .remediator_sim import actions, host_labels, inventory, send, settled, start, steps

pytestmark = pytest.mark.slow


async def test_registration_failing_on_the_first_targets_still_registers_every_vm(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    sim = sim_factory(clusters=1, hosts=4, vms=12)
    hosts, vms = inventory(sim)
    failed = hosts["DC0_C0_H0"]
    names = list(failed["vms"])
    sim.fail_host(failed["name"])
    # The first two targets cannot register anything (a fault vCenter does not retry).
    for bad in ("DC0_C0_H1", "DC0_C0_H2"):
        sim.inject_fault("RegisterVM_Task", "NotFound", object=bad, count=-1, mode="task")
    client = await start(aiohttp_client, sim, tmp_path, retry={"max_attempts": 2})
    await send(client, alert("restart_host_vms", **host_labels(failed)))
    items = await settled(client, timeout=40)
    _, vms = inventory(sim)
    by_vm = steps(items)
    for name in names:
        assert vms[name]["powerState"] == "poweredOn", vms[name]
        assert vms[name]["host"] == "DC0_C0_H3", vms[name]
        assert by_vm[name]["state"] == "done", by_vm[name]
    assert len([v for v in sim.inventory()["vms"] if v["name"] in names]) == len(names)


async def test_no_target_can_register_the_vm_it_stays_visible_until_one_can(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    sim = sim_factory(clusters=1, hosts=3, vms=6)
    hosts, vms = inventory(sim)
    failed = hosts["DC0_C0_H0"]
    names = list(failed["vms"])
    sim.fail_host(failed["name"])
    sim.inject_fault("RegisterVM_Task", "NotFound", count=-1, mode="task")
    client = await start(aiohttp_client, sim, tmp_path, retry={"max_attempts": 2})
    firing = alert("restart_host_vms", **host_labels(failed))
    await send(client, firing)

    async def stranded() -> Any:
        text = await (await client.get("/metrics")).text()
        fams = parse(text)
        n = value(fams, "vha_remediator_vms_unregistered")
        return fams if n == len(names) else None

    fams = await until(stranded, 30, what="every VM reported unregistered")
    info = select(fams, "vha_remediator_vm_unregistered_info")
    assert sorted(s.labels["vm"] for s in info) == sorted(names)
    assert all(s.labels["vmx_path"].endswith(".vmx") and s.value == 1 for s in info)
    resp = await client.get("/api/v1/unregistered", headers=AUTH)
    body = await resp.json()
    assert sorted(v["vm"] for v in body["vms"]) == sorted(names)
    page = await (await client.get("/", headers=AUTH)).text()
    assert all(n in page for n in names) and "not registered" in page
    # Past the attempt limit the steps keep trying: nothing is final while a VM is out.
    await until(
        lambda: _all_attempted(client, 3), 30, what="steps retried beyond retry.max_attempts"
    )
    items = await actions(client)
    assert all(a["state"] in ("pending", "running") for a in steps(items).values())
    # The alert resolving (the host is back, say) cancels nothing a VM depends on.
    await send(client, resolved(firing))
    sim.clear_faults()
    items = await settled(client, timeout=40)
    _, vms = inventory(sim)
    for name in names:
        assert vms[name]["powerState"] == "poweredOn" and vms[name]["host"] != failed["name"]
        assert steps(items)[name]["state"] == "done"
    text = await (await client.get("/metrics")).text()
    assert value(parse(text), "vha_remediator_vms_unregistered") == 0


async def _all_attempted(client: Any, n: int) -> bool:
    items = await actions(client)
    st = steps(items).values()
    return bool(st) and all(a["attempts"] >= n for a in st)
