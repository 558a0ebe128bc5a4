"""A VM still running on a host vCenter lost holds its files' VMFS locks (issue 9, item 11).

The host drops out of vCenter (and HA calls it dead) while its VMs keep running on
shared storage.  Re-registering such a VM elsewhere works, powering it on fails with
``FileLocked``.  The remediator must neither retry it on other hosts nor give up: it
holds the step, never runs two copies, and powers the VM on once the lock is freed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .remediator_fixtures import AUTH, alert, until
from .remediator_sim import actions, host_labels, inventory, send, settled, start, steps

pytestmark = pytest.mark.slow


async def test_locked_files_hold_the_restart_until_the_old_host_lets_go(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    sim = sim_factory(clusters=1, hosts=3, vms=6)
    hosts, _ = inventory(sim)
    failed = hosts["DC0_C0_H0"]
    names = list(failed["vms"])
    sim.set_locks(failed["name"], True)  # its VMs keep running on the datastore
    sim.fail_host(failed["name"])
    client = await start(aiohttp_client, sim, tmp_path, retry={"max_attempts": 2})
    await send(client, alert("restart_host_vms", **host_labels(failed)))

    async def held() -> bool:
        st = steps(await actions(client)).values()
        return bool(st) and all("files are locked" in a["reason"] for a in st)

    await until(held, 30, what="every step held on the VMFS lock")
    # Held well past the attempt limit: not failed, not moved on to other hosts.
    await until(lambda: _attempted(client, 3), 30, what="held steps looked at again")
    items = await actions(client)
    assert all(a["state"] in ("pending", "running") for a in steps(items).values())
    _, vms = inventory(sim)
    assert all(vms[n]["powerState"] == "poweredOff" for n in names)  # never two copies
    sim.set_locks(failed["name"], False)  # isolation response / fencing freed the files
    items = await settled(client, timeout=40)
    _, vms = inventory(sim)
    for name in names:
        assert steps(items)[name]["state"] == "done"
        assert vms[name]["powerState"] == "poweredOn" and vms[name]["host"] != failed["name"]
    resp = await client.get(f"/api/v1/actions/{steps(items)[names[0]]['id']}", headers=AUTH)
    assert any("FileLocked" in e["message"] for e in (await resp.json())["events"])


async def _attempted(client: Any, n: int) -> bool:
    st = steps(await actions(client)).values()
    return bool(st) and all(a["attempts"] >= n for a in st)
