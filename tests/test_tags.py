"""vSphere tags through the simulator's vAPI REST endpoint (issue 13, item 1)."""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

import aiohttp
import pytest

from exporter.app import create_app
from exporter.collectors_config import parse_collectors_config
from vcenter.config import ConfigError

from .exporter_fixtures import exporter_config, sim_vcenter, wait_for
from .metrics_helpers import Sample, select, value


def up(samples: list[Sample]) -> bool:
    return value(samples, "vsphere_up", vcenter="vc1") == 1


def tagged(name: str) -> Any:
    return lambda s: up(s) and bool(select(s, name))


async def test_tags_on_every_object_kind(sim: Any, aiohttp_client: Any) -> None:
    client = await aiohttp_client(create_app(exporter_config(sim_vcenter(sim))))
    samples, _ = await wait_for(client, tagged("vsphere_datastore_tag_info"), timeout=30)
    inv = sim.inventory()
    vm_tags = select(samples, "vsphere_vm_tag_info", category="Environment")
    assert len(vm_tags) == len(inv["vms"])  # one Environment tag per VM (SINGLE cardinality)
    assert {s.labels["tag"] for s in vm_tags} == {"production", "test"}
    first = vm_tags[0].labels
    assert set(first) == {"vcenter", "vm_id", "vm", "category", "tag"}
    hosts = select(samples, "vsphere_host_tag_info", category="Rack")
    assert len(hosts) == len(inv["hosts"])
    assert {s.labels["tag"] for s in select(samples, "vsphere_cluster_tag_info")} == {"gold"}
    assert select(samples, "vsphere_datastore_tag_info", tag="gold")
    assert value(samples, "vsphere_scrape_collector_success", vcenter="vc1", collector="tags") == 1


async def test_category_allow_list_and_per_vm_switch(sim: Any, aiohttp_client: Any) -> None:
    config = exporter_config(
        sim_vcenter(sim), collectors={"tags": {"categories": ["Rack", "Environment"], "vms": False}}
    )
    client = await aiohttp_client(create_app(config))
    samples, _ = await wait_for(client, tagged("vsphere_host_tag_info"), timeout=30)
    assert select(samples, "vsphere_vm_tag_info") == []  # per-VM tags switched off
    assert select(samples, "vsphere_cluster_tag_info") == []  # Tier is not allowed
    assert {s.labels["category"] for s in select(samples, "vsphere_host_tag_info")} == {"Rack"}


async def test_a_new_tag_shows_on_the_next_refresh(sim: Any, aiohttp_client: Any) -> None:
    config = exporter_config(sim_vcenter(sim), collectors={"tags": {"refresh_seconds": 0.5}})
    client = await aiohttp_client(create_app(config))
    samples, _ = await wait_for(client, tagged("vsphere_vm_tag_info"), timeout=30)
    vm = select(samples, "vsphere_vm_tag_info")[0].labels
    base = sim.sdk_url.replace("/sdk", "/rest/com/vmware/cis")
    tls = ssl.create_default_context(cafile=sim.ca_file)
    auth = {"Authorization": aiohttp.encode_basic_auth(sim.username, sim.password)}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/session", headers=auth, ssl=tls) as resp:
            headers = {"vmware-api-session-id": (await resp.json())["value"]}
        spec = {"name": "Backup", "cardinality": "SINGLE", "associable_types": []}
        async with http.post(
            f"{base}/tagging/category", json={"create_spec": spec}, headers=headers, ssl=tls
        ) as resp:
            category = (await resp.json())["value"]
        spec = {"name": "nightly", "category_id": category, "description": ""}
        async with http.post(
            f"{base}/tagging/tag", json={"create_spec": spec}, headers=headers, ssl=tls
        ) as resp:
            tag = (await resp.json())["value"]
        body = {"object_id": {"type": "VirtualMachine", "id": vm["vm_id"]}}
        async with http.post(
            f"{base}/tagging/tag-association/id:{tag}?~action=attach",
            json=body,
            headers=headers,
            ssl=tls,
        ) as resp:
            assert resp.status == 200
    samples, _ = await wait_for(
        client, lambda s: bool(select(s, "vsphere_vm_tag_info", tag="nightly")), timeout=10
    )
    (sample,) = select(samples, "vsphere_vm_tag_info", tag="nightly")
    assert sample.labels["vm_id"] == vm["vm_id"] and sample.labels["category"] == "Backup"


async def test_a_vcenter_without_the_endpoint_logs_once_and_counts_a_failure(
    sim_factory: Any, aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="exporter.tagging")
    sim = sim_factory(extra_args=["-vapi=false"])
    config = exporter_config(sim_vcenter(sim), collectors={"tags": {"refresh_seconds": 0.2}})
    client = await aiohttp_client(create_app(config))

    def failed(s: list[Sample]) -> bool:
        return value(s, "vsphere_scrape_collector_success", vcenter="vc1", collector="tags") == 0

    samples, _ = await wait_for(client, lambda s: up(s) and failed(s), timeout=30)
    await asyncio.sleep(1.0)  # several more refreshes, all failing the same way
    assert caplog.text.count("no vAPI REST endpoint") == 1
    assert value(samples, "vsphere_scrape_collector_success", vcenter="vc1", collector="vm") == 1
    assert select(samples, "vsphere_vm_info")


def test_collectors_config_validation() -> None:
    default = parse_collectors_config(None)
    assert default.tags.enabled and default.tags.vms and default.tags.refresh_seconds == 300
    assert default.tags.categories == ()
    with pytest.raises(ConfigError, match=r"collectors\.tags\.refresh_seconds"):
        parse_collectors_config({"tags": {"refresh_seconds": 0}})
    with pytest.raises(ConfigError, match=r"collectors\.tags\.categories"):
        parse_collectors_config({"tags": {"categories": "Rack"}})
    with pytest.raises(ConfigError, match=r"collectors\.tagz"):
        parse_collectors_config({"tagz": {}})
