"""Fault domains against the simulator: a domain confirmed down is restarted elsewhere, a
partition never, and a single host failure keeps its VMs in their site.

The cluster has 6 hosts in two fault domains (the HA-FaultDomain custom attribute):
fd-a = H0, H2, H4 and fd-b = H1, H3, H5. Three failed hosts are half the cluster: far
above the mass-failure bounds (2 hosts, 34 %), so only a domain confirmed down as a whole
gets through, as ``VsphereFaultDomainDown`` -> ``restart_fault_domain_vms``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim

from .remediator_fixtures import alert, until
from .test_remediator_sim import (
    _metric,
    actions,
    host_labels,
    inventory,
    send,
    settled,
    start,
    steps,
    vsphere,
    wait_task,
)

pytestmark = pytest.mark.slow

FD_A = ("DC0_C0_H0", "DC0_C0_H2", "DC0_C0_H4")
FD_B = ("DC0_C0_H1", "DC0_C0_H3", "DC0_C0_H5")


def cluster_moid(sim: Any, name: str = "DC0_C0") -> str:
    return str(next(c["moid"] for c in sim.inventory()["clusters"] if c["name"] == name))


def domain_alert(sim: Any, fault_domain: str, cluster: str = "DC0_C0") -> dict[str, Any]:
    """``VsphereFaultDomainDown`` as Prometheus labels it (rules/rulegen/fault_domains.py)."""
    return alert(
        "restart_fault_domain_vms",
        alertname="VsphereFaultDomainDown",
        cluster_id=cluster_moid(sim, cluster),
        cluster=cluster,
        fault_domain=fault_domain,
    )


async def disable_ha(sim: Any, cluster: str = "DC0_C0") -> None:
    """HA off, as an admin does it: ReconfigureComputeResource_Task, dasConfig.enabled."""
    moid = cluster_moid(sim, cluster)

    def off(si: Any) -> None:
        c = vim.ClusterComputeResource(moid, si._stub)
        spec = vim.cluster.ConfigSpecEx(dasConfig=vim.cluster.DasConfigInfo(enabled=False))
        wait_task(c.ReconfigureComputeResource_Task(spec=spec, modify=True))

    await vsphere(sim, off)


async def test_confirmed_down_domain_without_ha_is_restarted_in_the_other_domain(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    sim = sim_factory(clusters=1, hosts=6, vms=18)
    await disable_ha(sim)
    hosts, vms = inventory(sim)
    assert {hosts[n]["faultDomain"] for n in FD_A} == {"fd-a"}
    running = [v for n in FD_A for v in hosts[n]["vms"] if vms[v]["powerState"] == "poweredOn"]
    assert running
    # No HA agents without HA: vSphere describes dasHostState only for HA clusters
    assert {h["dasHostState"] for h in hosts.values()} == {None}
    for name in FD_A:  # the rack lost power: vCenter sees it silent and powered off
        sim.fail_host(name)
        sim.set_host(name, powerState="poweredOff")
    hosts, _ = inventory(sim)
    assert {hosts[n]["dasHostState"] for n in FD_A} == {None}
    client = await start(aiohttp_client, sim, tmp_path)
    await send(client, domain_alert(sim, "fd-a"))
    items = await settled(client, timeout=60)

    hosts, vms = inventory(sim)
    by_vm = steps(items)
    for name in running:
        assert vms[name]["powerState"] == "poweredOn", vms[name]
        assert vms[name]["host"] in FD_B, vms[name]  # its own domain is gone: the other one
        assert by_vm[name]["state"] == "done" and by_vm[name]["restarted_by"] == "remediator"
    [decision] = [a for a in items if a["parent_id"] is None]
    assert decision["kind"] == "restart_fault_domain_vms" and decision["state"] == "done"
    assert "fault domain fd-a confirmed down (3 hosts)" in decision["reason"]
    assert decision["detail"]["domain"]["state"] == "down"
    # half the cluster failed, yet the guard did not hold it: the domain is confirmed down
    tripped = await _metric(client, "vha_remediator_guard_tripped", vcenter="vc1", cluster="DC0_C0")
    assert tripped == 0
    assert not any("mass-failure guard" in a["reason"] for a in items)


async def test_partitioned_domain_is_never_restarted(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    sim = sim_factory(clusters=1, hosts=6, vms=18)
    # fd-a is silent to vCenter, but vSphere HA's master still sees one host alive (it
    # answers datastore heartbeats from the other side of a network partition)
    sim.fail_host("DC0_C0_H0")
    sim.fail_host("DC0_C0_H2", das_state="networkPartitionedFromMaster")
    sim.fail_host("DC0_C0_H4")
    before = sim.inventory()["vms"]
    client = await start(aiohttp_client, sim, tmp_path, host_failure={"max_unconfirmed_seconds": 2})
    await send(client, domain_alert(sim, "fd-a"))

    async def held() -> bool:
        return any(
            a["state"] == "pending" and "a partition" in a["reason"] for a in await actions(client)
        )

    await until(held, what="the domain held as a partition")
    items = await settled(client, timeout=30)
    [decision] = items  # no steps: nothing was planned
    assert decision["state"] == "refused", decision
    assert "never confirmed down" in decision["reason"]
    assert "DC0_C0_H2 (networkPartitionedFromMaster)" in decision["reason"]
    assert decision["detail"]["domain"]["state"] == "partitioned"
    await asyncio.sleep(0.5)
    assert sim.inventory()["vms"] == before


async def test_single_host_failure_keeps_vms_in_their_site(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    sim = sim_factory(clusters=1, hosts=6, vms=18)
    hosts, vms = inventory(sim)
    failed = hosts["DC0_C0_H0"]
    running = [v for v in failed["vms"] if vms[v]["powerState"] == "poweredOn"]
    assert running
    sim.fail_host(failed["name"])
    client = await start(aiohttp_client, sim, tmp_path)  # placement.fault_domains: sites
    await send(client, alert("restart_host_vms", **host_labels(failed)))
    items = await settled(client)
    _, vms = inventory(sim)
    by_vm = steps(items)
    for name in running:
        assert vms[name]["powerState"] == "poweredOn"
        assert vms[name]["host"] in ("DC0_C0_H2", "DC0_C0_H4"), vms[name]  # fd-a: its site
        assert by_vm[name]["state"] == "done"
