"""Triggered vCenter alarms (issue 13, item 2): polled from the root folder, one series each."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.app import create_app
from exporter.collectors_config import parse_collectors_config
from sim.harness import SimulatorError
from vcenter.config import ConfigError

from .exporter_fixtures import exporter_config, sim_vcenter, wait_for
from .metrics_helpers import Sample, select, value

CONN = "Host connection and power state"
VM_CPU = "Virtual machine CPU usage"


def up(samples: list[Sample]) -> bool:
    return value(samples, "vsphere_up", vcenter="vc1") == 1


def config(sim: Any) -> Any:
    return exporter_config(sim_vcenter(sim), collectors={"alarms": {"interval_seconds": 0.3}})


async def test_triggered_alarms_once_each_with_entity_status_and_ack(
    sim: Any, aiohttp_client: Any
) -> None:
    inv = sim.inventory()
    host, vm = inv["hosts"][0], inv["vms"][0]
    sim.trigger_alarm(CONN, "host", host["name"], "red")
    sim.trigger_alarm(VM_CPU, "vm", vm["name"], "yellow", acknowledged=True)
    client = await aiohttp_client(create_app(config(sim)))

    def both(s: list[Sample]) -> bool:
        return up(s) and len(select(s, "vsphere_alarm_triggered")) == 2

    samples, _ = await wait_for(client, both, timeout=30)
    (h,) = select(samples, "vsphere_alarm_triggered", entity_type="host")
    assert h.labels == {
        "vcenter": "vc1",
        "entity_type": "host",
        "entity_id": host["moid"],
        "entity": host["name"],
        "alarm": CONN,
        "status": "red",
        "acknowledged": "false",
    }
    (v,) = select(samples, "vsphere_alarm_triggered", entity_type="vm")
    assert v.labels["status"] == "yellow" and v.labels["acknowledged"] == "true"
    assert v.labels["entity_id"] == vm["moid"] and v.labels["alarm"] == VM_CPU
    ok = value(samples, "vsphere_scrape_collector_success", vcenter="vc1", collector="alarms")
    assert ok == 1

    sim.acknowledge_alarm(CONN, "host", host["name"])
    await wait_for(
        client,
        lambda s: bool(
            select(s, "vsphere_alarm_triggered", entity_type="host", acknowledged="true")
        ),
        timeout=5,
    )
    sim.clear_alarms(alarm=CONN)
    samples, _ = await wait_for(
        client, lambda s: len(select(s, "vsphere_alarm_triggered")) == 1, timeout=5
    )
    assert select(samples, "vsphere_alarm_triggered")[0].labels["entity_type"] == "vm"


async def test_alarms_on_clusters_datastores_and_datacenters(sim: Any, aiohttp_client: Any) -> None:
    cluster = sim.inventory()["clusters"][0]
    sim.trigger_alarm("vSphere HA host status", "cluster", cluster["name"], "red")
    sim.trigger_alarm("Datastore usage on disk", "datastore", "LocalDS_0", "yellow")
    sim.trigger_alarm(CONN, "datacenter", cluster["datacenter"], "yellow")
    client = await aiohttp_client(create_app(config(sim)))
    samples, _ = await wait_for(
        client, lambda s: len(select(s, "vsphere_alarm_triggered")) == 3, timeout=30
    )
    kinds = {
        s.labels["entity_type"]: s.labels["entity"]
        for s in select(samples, "vsphere_alarm_triggered")
    }
    assert kinds == {
        "cluster": cluster["name"],
        "datastore": "LocalDS_0",
        "datacenter": cluster["datacenter"],
    }


def test_the_fault_api_refuses_bad_alarm_requests(sim: Any) -> None:
    with pytest.raises(SimulatorError, match="unknown alarm"):
        sim.trigger_alarm("No such alarm", "host", sim.inventory()["hosts"][0]["name"])
    with pytest.raises(SimulatorError, match="entity_type"):
        sim.trigger_alarm(CONN, "rack", "x")
    with pytest.raises(SimulatorError, match="status"):
        sim.trigger_alarm(CONN, "host", sim.inventory()["hosts"][0]["name"], "green")


def test_alarms_config() -> None:
    assert parse_collectors_config(None).alarms.enabled
    assert parse_collectors_config(None).alarms.interval_seconds == 60
    with pytest.raises(ConfigError, match=r"collectors\.alarms\.interval_seconds"):
        parse_collectors_config({"alarms": {"interval_seconds": "often"}})
