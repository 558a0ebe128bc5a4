"""Host hardware health sensors and hardware identity (issue 13, item 4)."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.app import create_app
from exporter.collectors import RenderContext
from exporter.collectors.hardware import SENSOR_STATUSES, collect
from exporter.families import Family
from exporter.inventory import ManagedObject
from exporter.properties_extra import SENSORS
from exporter.topology import Topology
from sim.harness import SimulatorError
from vcenter.config import parse_config

from .exporter_fixtures import exporter_config, sim_vcenter, wait_for
from .metrics_helpers import Sample, select, value
from .test_inventory import _image

TEMP = "System Board 1 Inlet Temp"


def up(samples: list[Sample]) -> bool:
    return value(samples, "vsphere_up", vcenter="vc1") == 1


def status(samples: list[Sample], **labels: str) -> str | None:
    on = [s for s in select(samples, "vsphere_host_sensor_status", **labels) if s.value == 1]
    assert len(on) <= 1
    return on[0].labels["status"] if on else None


async def test_sensor_status_values_and_hardware_info(sim: Any, aiohttp_client: Any) -> None:
    host = sim.inventory()["hosts"][0]
    client = await aiohttp_client(create_app(exporter_config(sim_vcenter(sim))))
    samples, _ = await wait_for(
        client, lambda s: up(s) and bool(select(s, "vsphere_host_sensor_value")), timeout=30
    )
    mine = {"host": host["name"], "sensor": TEMP}
    assert status(samples, **mine) == "green"
    assert {s.labels["status"] for s in select(samples, "vsphere_host_sensor_status", **mine)} == {
        "green",
        "yellow",
        "red",
        "unknown",
    }
    (temp,) = select(samples, "vsphere_host_sensor_value", **mine)
    assert temp.value == pytest.approx(24.0)
    assert temp.labels["unit"] == "celsius" and temp.labels["type"] == "temperature"
    (fan,) = select(samples, "vsphere_host_sensor_value", host=host["name"], sensor="Fan 1A")
    assert fan.labels["unit"] == "rpm" and fan.value == 8400
    # discrete sensors (no units) have a status but no value
    assert status(samples, host=host["name"], sensor="VMware Rollup Health State") == "green"
    assert not select(
        samples, "vsphere_host_sensor_value", host=host["name"], sensor="VMware Rollup Health State"
    )
    (hw,) = select(samples, "vsphere_host_hardware_info", host=host["name"])
    assert hw.labels["vendor"] and hw.labels["model"] and hw.labels["cpu_model"]
    assert hw.labels["bios"] == "6.00"

    sim.set_sensor(host["name"], TEMP, health="red", reading=71.5)
    samples, waited = await wait_for(client, lambda s: status(s, **mine) == "red", timeout=5)
    assert value(samples, "vsphere_host_sensor_value", **mine) == pytest.approx(71.5)
    assert waited < 3


def test_the_sensor_fault_api_refuses_bad_requests(sim: Any) -> None:
    host = sim.inventory()["hosts"][0]["name"]
    with pytest.raises(SimulatorError, match="health"):
        sim.set_sensor(host, TEMP, health="purple")
    with pytest.raises(SimulatorError, match="no sensor"):
        sim.set_sensor(host, "Flux capacitor", health="red")
    with pytest.raises(SimulatorError, match="unknown host"):
        sim.set_sensor("nope", TEMP, health="red")


async def test_sensors_can_be_switched_off(sim: Any, aiohttp_client: Any) -> None:
    config = exporter_config(sim_vcenter(sim), collectors={"host_sensors": {"enabled": False}})
    client = await aiohttp_client(create_app(config))
    samples, _ = await wait_for(
        client, lambda s: up(s) and bool(select(s, "vsphere_host_hardware_info")), timeout=30
    )
    assert select(samples, "vsphere_host_sensor_status") == []
    assert select(samples, "vsphere_host_sensor_value") == []


def test_each_host_has_its_own_sensors(sim: Any) -> None:
    """vcsim's hosts share one HealthSystemRuntime (a pointer in its host template): the
    simulator's sensors must be per host, or every host carries every host's sensors (at
    1,000 hosts, 4,000 of them, and reading them took minutes) and one host's fault shows
    on all."""
    first, second = (h["name"] for h in sim.inventory()["hosts"][:2])
    names = [s["name"] for s in sim.sensors(first)]
    assert names.count(TEMP) == 1 and len(names) == len(set(names))
    sim.set_sensor(first, TEMP, health="red")
    try:
        (other,) = [s for s in sim.sensors(second) if s["name"] == TEMP]
        assert other["health"] == "green"
    finally:
        sim.set_sensor(first, TEMP, health="green")


def counts(samples: list[Sample], host: str) -> dict[str, float]:
    return {s.labels["status"]: s.value for s in select(samples, "vsphere_host_sensors", host=host)}


async def test_green_sensors_can_be_left_out_and_red_still_alerts(
    sim: Any, aiohttp_client: Any
) -> None:
    """``include_green: false`` (issue 15, the sensor cost at scale): a green sensor has no
    status series, a red one all four (the alert's ``status="red"} == 1`` still matches),
    readings stay, and the per-host counts say how many sensors are in each state."""
    host = sim.inventory()["hosts"][0]["name"]
    config = exporter_config(
        sim_vcenter(sim), collectors={"host_sensors": {"include_green": False}}
    )
    client = await aiohttp_client(create_app(config))
    samples, _ = await wait_for(client, lambda s: up(s) and bool(counts(s, host)), timeout=30)
    total = len(sim.sensors(host))
    assert counts(samples, host) == {"green": total, "yellow": 0, "red": 0, "unknown": 0}
    assert select(samples, "vsphere_host_sensor_status", host=host) == []
    assert value(samples, "vsphere_host_sensor_value", host=host, sensor=TEMP) == 24.0

    sim.set_sensor(host, TEMP, health="red", reading=71.5)
    try:
        mine = {"host": host, "sensor": TEMP}
        samples, _ = await wait_for(client, lambda s: status(s, **mine) == "red", timeout=10)
        assert {
            s.labels["status"] for s in select(samples, "vsphere_host_sensor_status", **mine)
        } == set(SENSOR_STATUSES)
        assert len(select(samples, "vsphere_host_sensor_status", host=host)) == 4
        assert counts(samples, host) == {"green": total - 1, "yellow": 0, "red": 1, "unknown": 0}
    finally:
        sim.set_sensor(host, TEMP, health="green", reading=24.0)


async def test_sensor_lines_follow_a_change_after_being_cached(
    sim: Any, aiohttp_client: Any
) -> None:
    """A host's sensor lines are cached on its revision: a change to another object (a VM)
    re-renders without rebuilding them, and a change to the host's sensors shows."""
    hosts = sim.inventory()["hosts"]
    host, other = hosts[0]["name"], hosts[1]["name"]
    client = await aiohttp_client(create_app(exporter_config(sim_vcenter(sim))))
    samples, _ = await wait_for(client, lambda s: up(s) and bool(counts(s, host)), timeout=30)
    assert counts(samples, host)["green"] == len(sim.sensors(host))
    vm = sim.inventory()["vms"][0]["name"]
    sim.set_vm(vm, guestHeartbeatStatus="red")
    sim.set_sensor(other, TEMP, health="yellow")
    try:
        samples, _ = await wait_for(
            client, lambda s: status(s, host=other, sensor=TEMP) == "yellow", timeout=10
        )
        assert status(samples, host=host, sensor=TEMP) == "green"
        assert counts(samples, other)["yellow"] == 1
    finally:
        sim.set_sensor(other, TEMP, health="green")
        sim.set_vm(vm, guestHeartbeatStatus="green")


def test_unchanged_hosts_hand_the_renderer_the_same_families() -> None:
    """No host changed since the last render: the collector returns the previous family
    objects, which the renderer neither joins nor encodes again; a host's change (a new
    revision) renders anew, reusing the other hosts' cached lines."""
    inv = _image()
    sensors = (("Fan 1A", "fan", "green", 8400.0, "rpm"),)
    for obj in inv.objects.values():
        if obj.type == "HostSystem":
            obj.props["runtime.connectionState"] = "connected"
            obj.props[SENSORS] = sensors
    config = parse_config({})

    def render() -> list[Family]:
        snap = inv.snapshot()
        return collect(RenderContext("vc1", snap, Topology(snap, config), config, 0.0))

    first = render()
    assert any(f.name == "vsphere_host_sensor_status" and f.sample_text() for f in first)
    second = render()
    assert all(a is b for a, b in zip(first, second, strict=True))
    host = next(o for o in inv.objects.values() if o.type == "HostSystem")
    changed = ManagedObject(host.moid, host.type, dict(host.props))
    changed.props[SENSORS] = (("Fan 1A", "fan", "red", 0.0, "rpm"),)
    inv.objects[host.moid] = changed
    third = render()
    assert third[1] is not second[1]
    assert 'status="red"} 1' in third[1].sample_text()
