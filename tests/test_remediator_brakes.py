"""Brakes the alert cannot bypass (issue 9, items 5, 6 and 10's orphans), on the simulator.

* Confirmation and HA grace count from the later of the alert's ``startsAt`` and the
  first time this remediator saw the failure itself; Alertmanager's zero time or an old
  ``startsAt`` must not make a restart immediate, and is recorded and clamped.
* Only hosts a live read shows failing in that cluster count toward the mass-failure
  guard: alerts for hosts that do not exist must not hold back a real failure.
* A decision left with nothing to do never stays ``planned``.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from .metrics_helpers import parse, value
from .remediator_fixtures import alert, resolved, until
from .remediator_sim import actions, host_labels, inventory, send, settled, start

pytestmark = pytest.mark.slow

CONFIRM = 3.0


async def test_zero_and_old_starts_at_do_not_shorten_the_confirmation(
    sim: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    hosts, _ = inventory(sim)
    zero_host, old_host = hosts["DC0_C0_H0"], hosts["DC0_C1_H0"]
    client = await start(aiohttp_client, sim, tmp_path, host_failure={"confirm_seconds": CONFIRM})
    await asyncio.sleep(1.0)  # the watcher sees both hosts connected first
    sim.fail_host(zero_host["name"])
    sim.fail_host(old_host["name"])
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    t0 = time.monotonic()
    await send(
        client,
        alert("restart_host_vms", starts_at="0001-01-01T00:00:00Z", **host_labels(zero_host)),
        alert("restart_host_vms", starts_at=an_hour_ago, **host_labels(old_host)),
    )
    stranded = {n: h["name"] for h in (zero_host, old_host) for n in h["vms"]}

    def moved() -> list[str]:
        _, vms = inventory(sim)
        return [n for n, h in stranded.items() if vms[n]["host"] != h]

    while time.monotonic() - t0 < CONFIRM - 0.5:
        assert not moved(), f"moved {time.monotonic() - t0:.1f}s after the alert"
        await asyncio.sleep(0.1)
    items = await settled(client, timeout=30)
    decisions = [a for a in items if a["parent_id"] is None]
    assert [d["state"] for d in decisions] == ["done", "done"], decisions
    assert moved()
    metrics = parse(await (await client.get("/metrics")).text())
    assert value(metrics, "vha_remediator_implausible_starts_total", reason="zero time") == 1
    assert (
        value(metrics, "vha_remediator_implausible_starts_total", reason="before last connected")
        == 1
    )


async def test_ghost_host_alerts_do_not_trip_the_guard(
    sim: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    hosts, _ = inventory(sim)
    real = hosts["DC0_C0_H0"]
    sim.fail_host(real["name"])
    client = await start(aiohttp_client, sim, tmp_path)
    ghosts = [
        alert("restart_host_vms", host_id=f"host-99{i}", host=f"ghost{i}", cluster="DC0_C0")
        for i in range(3)
    ]
    await send(client, *ghosts)
    await send(client, alert("restart_host_vms", **host_labels(real)))
    items = await settled(client, timeout=30)
    decisions = {a["host_id"] or a["target"]: a for a in items if a["parent_id"] is None}
    assert decisions[real["moid"]]["state"] == "done", decisions[real["moid"]]
    for i in range(3):
        assert decisions[f"host-99{i}"]["state"] == "skipped"
    _, vms = inventory(sim)
    assert all(vms[n]["host"] != real["name"] for n in real["vms"])
    metrics = parse(await (await client.get("/metrics")).text())
    assert value(metrics, "vha_remediator_guard_tripped", vcenter="vc1", cluster="DC0_C0") == 0


async def test_refired_alert_with_nothing_left_to_do_does_not_stay_planned(
    sim: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    hosts, _ = inventory(sim)
    failed = hosts["DC0_C0_H1"]
    sim.fail_host(failed["name"])
    client = await start(aiohttp_client, sim, tmp_path)
    first = alert("restart_host_vms", **host_labels(failed))
    await send(client, first)
    await settled(client, timeout=30)
    # The exporter reconnects: the alert resolves and fires again with a new startsAt.
    await send(client, resolved(first))
    await send(client, alert("restart_host_vms", fingerprint=first["fingerprint"],
                             **host_labels(failed)))  # fmt: skip
    items = await until(
        lambda: _two_final_decisions(client), timeout=20, what="both decisions final"
    )
    second = max((a for a in items if a["parent_id"] is None), key=lambda a: a["id"])
    assert second["state"] == "skipped", second
    assert "nothing" in second["reason"] or "no VMs" in second["reason"], second


async def _two_final_decisions(client: Any) -> list[dict[str, Any]] | None:
    items = await actions(client)
    decisions = [a for a in items if a["parent_id"] is None]
    if len(decisions) == 2 and all(d["state"] not in ("pending", "running") for d in decisions):
        if any(d["state"] == "planned" for d in decisions):
            await asyncio.sleep(2.0)  # give a stuck decision every chance to settle
            items = await actions(client)
        return items
    return None
