"""A re-registered VM keeps its vSphere tags (issue 9 item 3): read through the vAPI before
the VM leaves the inventory, attached to the new object after registering."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from remediator.tags import Tags

from .metrics_helpers import parse, value
from .remediator_fixtures import alert
from .remediator_sim import host_labels, inventory, send, settled, sim_config, start, steps

pytestmark = pytest.mark.slow


async def test_restarted_vm_keeps_its_tags(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    sim = sim_factory(clusters=1, hosts=3, vms=6)
    hosts, vms = inventory(sim)
    failed = hosts["DC0_C0_H0"]
    names = list(failed["vms"])
    cfg = sim_config(sim)
    tags = Tags(list(cfg.vcenters))
    try:
        before = {n: await tags.attached("vc1", vms[n]["moid"]) for n in names}
        assert all(before.values()), before  # the simulator tags every VM (Environment)
        sim.fail_host(failed["name"])
        client = await start(aiohttp_client, sim, tmp_path)
        await send(client, alert("restart_host_vms", **host_labels(failed)))
        by_vm = steps(await settled(client, timeout=40))
        for n in names:
            step = by_vm[n]
            assert step["state"] == "done", step
            new_id = step["detail"]["new_vm_id"]
            assert new_id != vms[n]["moid"]
            assert await tags.attached("vc1", new_id) == before[n], n
            assert step["detail"]["identity"]["tags"] == before[n]
            assert "identity not fully restored" not in step["reason"], step["reason"]
        fams = parse(await (await client.get("/metrics")).text())
        assert value(fams, "vha_remediator_identity_not_restored_total", part="tags") in (None, 0)
    finally:
        await tags.close()
