"""Datastore provisioning, maintenance mode, type and mounts (issue 13, item 3)."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.app import create_app
from sim.harness import SimulatorError

from .exporter_fixtures import exporter_config, sim_vcenter, wait_for
from .metrics_helpers import Sample, select, value

GIB = 1 << 30


def up(samples: list[Sample]) -> bool:
    return value(samples, "vsphere_up", vcenter="vc1") == 1


async def test_provisioned_uncommitted_type_and_mounts(sim: Any, aiohttp_client: Any) -> None:
    (ds,) = sim.datastores()
    client = await aiohttp_client(create_app(exporter_config(sim_vcenter(sim))))
    samples, _ = await wait_for(
        client, lambda s: up(s) and bool(select(s, "vsphere_datastore_uncommitted_bytes")), 30
    )
    labels = {"datastore": ds["name"]}
    assert value(samples, "vsphere_datastore_uncommitted_bytes", **labels) == ds["uncommitted"]
    assert ds["uncommitted"] > 0
    provisioned = ds["capacity"] - ds["freeSpace"] + ds["uncommitted"]
    assert value(samples, "vsphere_datastore_provisioned_bytes", **labels) == provisioned
    (info,) = select(samples, "vsphere_datastore_info", **labels)
    assert info.labels["type"] == "VMFS"
    assert info.labels["hosts_mounted"] == str(len(ds["hosts"]))
    assert value(samples, "vsphere_datastore_hosts_mounted", **labels) == len(ds["hosts"])
    mode = {
        s.labels["mode"]: s.value
        for s in select(samples, "vsphere_datastore_maintenance_mode", **labels)
    }
    assert mode == {"normal": 1, "enteringMaintenance": 0, "inMaintenance": 0}

    sim.set_datastore(ds["name"], maintenanceMode="inMaintenance", uncommitted=500 * GIB)
    samples, waited = await wait_for(
        client,
        lambda s: (
            value(s, "vsphere_datastore_maintenance_mode", mode="inMaintenance", **labels) == 1
        ),
        timeout=5,
    )
    assert value(samples, "vsphere_datastore_uncommitted_bytes", **labels) == 500 * GIB
    assert waited < 3  # summary notifies: followed, not polled


def test_the_datastore_fault_api_refuses_bad_values(sim: Any) -> None:
    (ds,) = sim.datastores()
    with pytest.raises(SimulatorError, match="maintenanceMode"):
        sim.set_datastore(ds["name"], maintenanceMode="sleeping")
    with pytest.raises(SimulatorError, match="exceeds the capacity"):
        sim.set_datastore(ds["name"], freeSpace=ds["capacity"] + 1)
    with pytest.raises(SimulatorError, match="unknown datastore"):
        sim.set_datastore("nope", uncommitted=1)
