"""VMware Tools version status, guest filesystems and custom attributes (issue 13, 5 and 6)."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.app import create_app
from exporter.collectors_config import parse_collectors_config
from sim.harness import SimulatorError
from vcenter.config import ConfigError

from .exporter_fixtures import exporter_config, sim_vcenter, wait_for
from .metrics_helpers import Sample, select, value

GIB = 1 << 30


def up(samples: list[Sample]) -> bool:
    return value(samples, "vsphere_up", vcenter="vc1") == 1


def tools(samples: list[Sample], vm: str) -> str | None:
    on = [s for s in select(samples, "vsphere_vm_tools_version_status", vm=vm) if s.value == 1]
    return on[0].labels["status"] if len(on) == 1 else None


async def test_tools_version_status_and_version(sim: Any, aiohttp_client: Any) -> None:
    vms = [v["name"] for v in sim.inventory()["vms"]]
    client = await aiohttp_client(create_app(exporter_config(sim_vcenter(sim))))
    samples, _ = await wait_for(
        client, lambda s: up(s) and bool(select(s, "vsphere_vm_tools_version_status")), 30
    )
    states = {tools(samples, vm) for vm in vms}
    assert states == {"current", "needsUpgrade"}  # the simulator runs old Tools on some
    assert {
        s.labels["status"] for s in select(samples, "vsphere_vm_tools_version_status", vm=vms[0])
    } == {
        "current",
        "needsUpgrade",
        "unsupported",
        "notInstalled",
        "unmanaged",
    }
    (info,) = select(samples, "vsphere_vm_info", vm=vms[0])
    assert info.labels["tools_version"] == sim.guest(vms[0])["toolsVersion"]
    assert select(samples, "vsphere_vm_guest_disk_capacity_bytes") == []  # off by default

    sim.set_guest(vms[0], toolsVersionStatus2="guestToolsTooOld", toolsVersion="9000")
    samples, _ = await wait_for(client, lambda s: tools(s, vms[0]) == "unsupported", timeout=5)
    (info,) = select(samples, "vsphere_vm_info", vm=vms[0])
    assert info.labels["tools_version"] == "9000"


async def test_guest_disks_when_switched_on(sim: Any, aiohttp_client: Any) -> None:
    vm = sim.inventory()["vms"][0]["name"]
    config = exporter_config(sim_vcenter(sim), collectors={"guest_disks": {"enabled": True}})
    client = await aiohttp_client(create_app(config))
    samples, _ = await wait_for(
        client, lambda s: up(s) and bool(select(s, "vsphere_vm_guest_disk_free_bytes")), 30
    )
    assert value(samples, "vsphere_vm_guest_disk_capacity_bytes", vm=vm, mount="/") == 40 * GIB
    assert value(samples, "vsphere_vm_guest_disk_free_bytes", vm=vm, mount="/var") == 15 * GIB
    sim.set_guest(vm, disks=[{"path": "/", "capacity": 40 * GIB, "free": GIB}])
    samples, _ = await wait_for(
        client,
        lambda s: value(s, "vsphere_vm_guest_disk_free_bytes", vm=vm, mount="/") == GIB,
        timeout=5,
    )
    assert value(samples, "vsphere_vm_guest_disk_free_bytes", vm=vm, mount="/var") is None


async def test_custom_attributes_opt_in_with_allow_list(sim: Any, aiohttp_client: Any) -> None:
    inv = sim.inventory()
    default = await aiohttp_client(create_app(exporter_config(sim_vcenter(sim))))
    samples, _ = await wait_for(default, up, timeout=30)
    assert select(samples, "vsphere_vm_custom_attribute_info") == []  # opt-in
    config = exporter_config(
        sim_vcenter(sim, name="vc2"),
        collectors={"custom_attributes": {"enabled": True, "attributes": ["HA-FaultDomain"]}},
    )
    client = await aiohttp_client(create_app(config))
    samples, _ = await wait_for(
        client, lambda s: bool(select(s, "vsphere_host_custom_attribute_info")), 30
    )
    hosts = select(samples, "vsphere_host_custom_attribute_info", attribute="HA-FaultDomain")
    assert len(hosts) == len(inv["hosts"])
    assert {s.labels["value"] for s in hosts} == {"fd-a", "fd-b"}
    assert select(samples, "vsphere_vm_custom_attribute_info") == []  # not in the allow-list


def test_the_guest_fault_api_refuses_bad_requests(sim: Any) -> None:
    vm = sim.inventory()["vms"][0]["name"]
    with pytest.raises(SimulatorError, match="toolsVersionStatus2"):
        sim.set_guest(vm, toolsVersionStatus2="shiny")
    with pytest.raises(SimulatorError, match="free <= capacity"):
        sim.set_guest(vm, disks=[{"path": "/", "capacity": 1, "free": 2}])


def test_guest_config() -> None:
    cfg = parse_collectors_config(None)
    assert not cfg.guest_disks.enabled and not cfg.custom_attributes.enabled
    with pytest.raises(ConfigError, match=r"collectors\.custom_attributes\.attributes"):
        parse_collectors_config({"custom_attributes": {"attributes": "x"}})
