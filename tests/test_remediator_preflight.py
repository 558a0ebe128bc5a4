"""Pre-flight before anything irreversible (issue 9, item 1), on a simulator with
datastores and networks only some hosts see and VMs that keep their hardware (item 11).

The failed host's VMs: one with a NIC on a network one survivor lacks, one with a PCI
passthrough device (tied to its host), one plain.  A second survivor does not mount the
datastore every VM lives on.  Expected: each VM goes straight to a host that can run it
(no registration tried where it would fail), keeps its vCPUs and memory, and the VM no
host can take is reported ``unplaced`` and left registered where it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim

from .remediator_fixtures import alert
from .remediator_sim import host_labels, inventory, send, settled, start, steps, vsphere, wait_task

pytestmark = pytest.mark.slow


def _reconfigure(si: Any, name: str, *, nic: bool = False, passthrough: bool = False) -> None:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    vm = next(v for v in view.view if v.name == name)
    changes = []
    if nic:
        net = content.rootFolder.childEntity[0].network[0]
        card = vim.vm.device.VirtualE1000(
            key=-1,
            backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(
                deviceName=net.name, network=net
            ),
        )
        changes.append(vim.vm.device.VirtualDeviceSpec(operation="add", device=card))
    if passthrough:
        dev = vim.vm.device.VirtualPCIPassthrough(
            key=-2,
            backing=vim.vm.device.VirtualPCIPassthrough.DeviceBackingInfo(
                id="0000:3b:00.0",
                deviceId="1eb8",
                systemId="sys",
                vendorId=0x10DE,
                deviceName="GPU",
            ),
        )
        changes.append(vim.vm.device.VirtualDeviceSpec(operation="add", device=dev))
    spec = vim.vm.ConfigSpec(numCPUs=4, memoryMB=8192, deviceChange=changes)
    wait_task(vm.ReconfigVM_Task(spec))


def _hardware(si: Any, name: str) -> tuple[int, int]:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    vm = next(v for v in view.view if v.name == name)
    return int(vm.config.hardware.numCPU), int(vm.config.hardware.memoryMB)


async def test_preflight_sends_each_vm_where_it_can_run_and_reports_the_rest(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    sim = sim_factory(clusters=1, hosts=4, vms=12)
    hosts, vms = inventory(sim)
    failed = hosts["DC0_C0_H0"]
    netted, tied, plain = failed["vms"][:3]
    await vsphere(sim, lambda si: _reconfigure(si, netted, nic=True))
    await vsphere(sim, lambda si: _reconfigure(si, tied, passthrough=True))
    await vsphere(sim, lambda si: _reconfigure(si, plain))
    sim.set_mounts("DC0_C0_H1", datastores=[])  # sees no datastore: takes nothing
    sim.set_mounts("DC0_C0_H2", networks=[])  # no port group: not for the NIC'd VM
    tied_moid = vms[tied]["moid"]
    sim.fail_host(failed["name"])
    client = await start(aiohttp_client, sim, tmp_path)
    await send(client, alert("restart_host_vms", **host_labels(failed)))
    items = await settled(client, timeout=40)
    _, vms = inventory(sim)
    by_vm = steps(items)

    assert vms[netted]["host"] == "DC0_C0_H3" and vms[netted]["powerState"] == "poweredOn"
    assert vms[plain]["host"] in ("DC0_C0_H2", "DC0_C0_H3")
    assert vms[plain]["powerState"] == "poweredOn"
    for name in (netted, plain):
        assert by_vm[name]["state"] == "done", by_vm[name]
        assert by_vm[name]["attempts"] == 1, by_vm[name]  # no registration tried in vain
        assert not by_vm[name]["detail"].get("excluded"), by_vm[name]
        assert await vsphere(sim, lambda si, n=name: _hardware(si, n)) == (4, 8192)
    # The passthrough VM: reported, never unregistered.
    assert by_vm[tied]["state"] == "unplaced", by_vm[tied]
    assert "PCI passthrough" in by_vm[tied]["reason"]
    assert vms[tied]["moid"] == tied_moid and vms[tied]["host"] == failed["name"]
