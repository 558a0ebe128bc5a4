"""Issue 10 item 3: ``guest.appState`` (the application agent's reset request), end to end.

The exporter follows it like every notified VM property (GuestInfo.appState, vSphere API
5.5+: ``none``, ``appStateOk``, ``appStateNeedReset``) and renders it as an enum family;
the simulator sets it through ``POST /api/v1/vms/{name}/ha`` (sim/ha_config.go).
"""

from __future__ import annotations

from typing import Any

from exporter.app import create_app

from .exporter_fixtures import exporter_config, sim_vcenter, wait_for
from .metrics_helpers import Sample, current_state, select, value

FAULT_WINDOW = 2.0  # seconds within which a change must show in /metrics (as test_exporter_sim)
STATES = {"none", "appStateOk", "appStateNeedReset"}


def up(samples: list[Sample]) -> bool:
    return value(samples, "vsphere_up", vcenter="vc1") == 1


async def test_exporter_follows_guest_app_state(sim: Any, aiohttp_client: Any) -> None:
    vm = sim.inventory()["vms"][0]["name"]
    client = await aiohttp_client(create_app(exporter_config(sim_vcenter(sim))))
    samples, _ = await wait_for(client, up, timeout=30)
    # one series per documented state, 1 for the current one; unset reads as "none"
    series = select(samples, "vsphere_vm_guest_app_state", vm=vm)
    assert {s.labels["state"] for s in series} == STATES, series
    assert current_state(samples, "vsphere_vm_guest_app_state", "state", vm=vm) == "none"
    for state in ("appStateNeedReset", "appStateOk"):
        sim.set_vm_ha(vm, app_state=state)
        await wait_for(
            client,
            lambda s, e=state: current_state(s, "vsphere_vm_guest_app_state", "state", vm=vm) == e,
            timeout=FAULT_WINDOW,
        )
