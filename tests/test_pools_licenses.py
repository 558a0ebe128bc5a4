"""Resource pools, vApps and licences (issue 13, item 7)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from exporter.app import create_app
from exporter.collectors_config import parse_collectors_config
from vcenter.config import ConfigError

from .exporter_fixtures import exporter_config, sim_vcenter, wait_for
from .metrics_helpers import Sample, select, value

MIB = 1024.0 * 1024.0


def up(samples: list[Sample]) -> bool:
    return value(samples, "vsphere_up", vcenter="vc1") == 1


async def test_resource_pools_and_vapps(sim: Any, aiohttp_client: Any) -> None:
    cluster = sim.inventory()["clusters"][0]
    client = await aiohttp_client(create_app(exporter_config(sim_vcenter(sim))))
    samples, _ = await wait_for(
        client, lambda s: up(s) and bool(select(s, "vsphere_resource_pool_info", type="vApp")), 30
    )
    mine = [
        s
        for s in select(samples, "vsphere_resource_pool_info")
        if s.labels["cluster"] == cluster["name"]
    ]
    by_name = {s.labels["resource_pool"]: s.labels for s in mine}
    assert set(by_name) == {"Resources", "Production", f"App-{cluster['name']}"}
    root, prod, app = by_name["Resources"], by_name["Production"], by_name[f"App-{cluster['name']}"]
    assert root["type"] == "resourcePool" and root["parent_id"] == cluster["moid"]
    assert prod["parent_id"] == root["resource_pool_id"] and prod["parent"] == "Resources"
    assert app["type"] == "vApp" and app["parent_id"] == prod["resource_pool_id"]
    assert root["cluster_id"] == cluster["moid"]
    assert prod["cpu_shares_level"] == "high"
    pid = {"resource_pool_id": prod["resource_pool_id"]}
    assert value(samples, "vsphere_resource_pool_cpu_reservation_hertz", **pid) == 4000e6
    assert value(samples, "vsphere_resource_pool_memory_reservation_bytes", **pid) == 8192 * MIB
    assert value(samples, "vsphere_resource_pool_memory_limit_bytes", **pid) == 65536 * MIB
    assert value(samples, "vsphere_resource_pool_cpu_limit_hertz", **pid) is None  # unlimited
    rid = {"resource_pool_id": root["resource_pool_id"]}
    assert (value(samples, "vsphere_resource_pool_cpu_usage_hertz", **rid) or 0) > 0
    assert (value(samples, "vsphere_resource_pool_memory_usage_bytes", **rid) or 0) > 0
    assert value(samples, "vsphere_resource_pool_cpu_shares", **pid) is not None


async def test_licences_usage_and_expiry(sim: Any, aiohttp_client: Any) -> None:
    hosts = len(sim.inventory()["hosts"])
    config = exporter_config(sim_vcenter(sim), collectors={"licenses": {"interval_seconds": 0.5}})
    client = await aiohttp_client(create_app(config))
    samples, _ = await wait_for(
        client, lambda s: up(s) and len(select(s, "vsphere_license_info")) == 3, timeout=30
    )
    (esx,) = select(samples, "vsphere_license_info", license="VMware vSphere 8 Enterprise Plus")
    assert esx.labels["edition"] == "esx.enterprisePlus.cpuPackage"
    assert esx.labels["cost_unit"] == "cpuPackage" and esx.labels["key_suffix"] == "1ESXP"
    key = {"key_suffix": "1ESXP"}
    assert value(samples, "vsphere_license_used", **key) == hosts * 2
    assert value(samples, "vsphere_license_total", **key) == hosts * 2 + 4
    expiry = value(samples, "vsphere_license_expiration_timestamp_seconds", key_suffix="2VCS0")
    assert expiry is not None and 19 * 86400 < expiry - time.time() < 21 * 86400
    assert value(samples, "vsphere_license_expiration_timestamp_seconds", **key) is None
    text = await (await client.get("/metrics")).text()
    assert "4H0AA-SIM00" not in text  # licence keys are secrets: only the last 5 characters


def test_licenses_config() -> None:
    assert parse_collectors_config(None).licenses.interval_seconds == 300
    with pytest.raises(ConfigError, match=r"collectors\.licenses\.enabled"):
        parse_collectors_config({"licenses": {"enabled": "yes"}})
