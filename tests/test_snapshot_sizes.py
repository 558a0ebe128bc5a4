"""The space snapshots hold (issue 13): ``vsphere_vm_snapshot_size_bytes`` from ``layoutEx``.

Against the simulator, whose snapshots (sim/snapshots.go) carry a 32 KiB .vmsn, a .vmem
the size of the VM's memory for memory snapshots, and a 512 B + 64 MiB delta per disk.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim

from exporter.app import create_app
from exporter.collectors_config import parse_collectors_config
from exporter.snapshot_sizes import held_bytes
from vcenter.config import ConfigError

from .exporter_fixtures import exporter_config, sim_vcenter, wait_for
from .metrics_helpers import select, value

MIB = 1024 * 1024
VMSN = 32 * 1024
DELTA = 512 + 64 * MIB


@pytest.fixture
def si(sim: Any) -> Iterator[Any]:
    kwargs = dict(sim.connection_kwargs())
    si = SmartConnect(**kwargs)
    try:
        yield si
    finally:
        Disconnect(si)


def find_vm(si: Any, name: str) -> Any:
    view = si.content.viewManager.CreateContainerView(
        si.content.rootFolder, [vim.VirtualMachine], True
    )
    try:
        return next(vm for vm in view.view if vm.name == name)
    finally:
        view.DestroyView()


def disks(vm: Any) -> int:
    return sum(isinstance(d, vim.vm.device.VirtualDisk) for d in vm.config.hardware.device)


def add_disk(vm: Any) -> None:
    """The simulator's VMs are created without disks (cheap at 10,000 VMs); give one a disk."""
    dev = vim.vm.device
    controller = dev.VirtualLsiLogicController(key=1000, busNumber=0, sharedBus="noSharing")
    disk = dev.VirtualDisk(
        key=-1,
        controllerKey=1000,
        unitNumber=0,
        capacityInKB=16 * 1024 * 1024,
        backing=dev.VirtualDisk.FlatVer2BackingInfo(diskMode="persistent", fileName=""),
    )
    spec = vim.vm.ConfigSpec(
        deviceChange=[
            dev.VirtualDeviceSpec(operation="add", device=controller),
            dev.VirtualDeviceSpec(operation="add", fileOperation="create", device=disk),
        ]
    )
    WaitForTask(vm.ReconfigVM_Task(spec=spec))
    assert disks(vm) == 1


async def test_snapshot_size_follows_create_and_remove(
    sim: Any, si: Any, aiohttp_client: Any
) -> None:
    name = next(v["name"] for v in sim.inventory()["vms"] if v["powerState"] == "poweredOn")
    vm = find_vm(si, name)
    add_disk(vm)
    n_disks, memory = disks(vm), vm.config.hardware.memoryMB * MIB
    # The default interval (300 s): a changed snapshot tree is read within CHECK_SECONDS.
    config = exporter_config(sim_vcenter(sim))
    client = await aiohttp_client(create_app(config))
    samples, _ = await wait_for(client, lambda s: value(s, "vsphere_up", vcenter="vc1") == 1, 30)
    assert select(samples, "vsphere_vm_snapshot_size_bytes") == []  # no snapshots, no series
    started = time.monotonic()

    WaitForTask(vm.CreateSnapshot_Task(name="before-patch", memory=False, quiesce=False))
    expected = VMSN + n_disks * DELTA
    samples, _ = await wait_for(
        client, lambda s: value(s, "vsphere_vm_snapshot_size_bytes", vm=name) == expected, 30
    )
    # vCenter's own layout agrees: the delta disks are in the running chain, not the snapshot's.
    assert held_bytes(vm.layoutEx) == expected
    assert len(vm.layoutEx.disk[0].chain) == len(vm.layoutEx.snapshot[0].disk[0].chain) + 1

    WaitForTask(vm.CreateSnapshot_Task(name="with-memory", memory=True, quiesce=False))
    expected = 2 * (VMSN + n_disks * DELTA) + memory
    await wait_for(
        client, lambda s: value(s, "vsphere_vm_snapshot_size_bytes", vm=name) == expected, 30
    )

    WaitForTask(vm.RemoveAllSnapshots_Task())
    samples, _ = await wait_for(
        client, lambda s: not select(s, "vsphere_vm_snapshot_size_bytes", vm=name), 30
    )
    assert value(samples, "vsphere_vm_snapshots", vm=name) == 0
    assert held_bytes(vm.layoutEx) == 0
    assert value(samples, "vsphere_scrape_collector_success", collector="snapshot_sizes") == 1
    assert time.monotonic() - started < 3 * 15  # three changes, each seen within ~5 s


async def test_removing_one_snapshot_frees_its_delta(sim: Any, si: Any) -> None:
    name = next(v["name"] for v in sim.inventory()["vms"] if v["powerState"] == "poweredOn")
    vm = find_vm(si, name)
    add_disk(vm)
    n_disks = disks(vm)
    WaitForTask(vm.CreateSnapshot_Task(name="one", memory=False, quiesce=False))
    WaitForTask(vm.CreateSnapshot_Task(name="two", memory=False, quiesce=False))
    assert held_bytes(vm.layoutEx) == 2 * (VMSN + n_disks * DELTA)
    second = vm.snapshot.rootSnapshotList[0].childSnapshotList[0].snapshot
    WaitForTask(second.RemoveSnapshot_Task(removeChildren=False))
    assert held_bytes(vm.layoutEx) == VMSN + n_disks * DELTA
    names = [f.name for f in vm.layoutEx.file]
    assert not any("-000002" in n for n in names) and any("-000001" in n for n in names)


def test_snapshot_sizes_config() -> None:
    assert parse_collectors_config(None).snapshot_sizes.interval_seconds == 300
    assert parse_collectors_config(None).snapshot_sizes.enabled
    with pytest.raises(ConfigError, match=r"collectors\.snapshot_sizes\.interval_seconds"):
        parse_collectors_config({"snapshot_sizes": {"interval_seconds": 0}})
    with pytest.raises(ConfigError, match=r"collectors\.snapshot_sizes\.every: unknown key"):
        parse_collectors_config({"snapshot_sizes": {"every": 5}})


def test_held_bytes_of_a_linked_clone_counts_only_snapshot_deltas() -> None:
    """A linked clone's own delta is in every chain: not snapshot space."""
    f = vim.vm.FileLayoutEx.FileInfo
    unit = vim.vm.FileLayoutEx.DiskUnit
    files = [
        f(key=0, name="base.vmdk", size=10 * MIB),
        f(key=1, name="clone-delta.vmdk", size=2 * MIB),
        f(key=2, name="snap-delta.vmdk", size=3 * MIB),
        f(key=3, name="s1.vmsn", size=1024),
    ]
    before = vim.vm.FileLayoutEx.DiskLayout(key=2000, chain=[unit(fileKey=[0]), unit(fileKey=[1])])
    now = vim.vm.FileLayoutEx.DiskLayout(
        key=2000, chain=[unit(fileKey=[0]), unit(fileKey=[1]), unit(fileKey=[2])]
    )
    snap = vim.vm.FileLayoutEx.SnapshotLayout(dataKey=3, memoryKey=-1, disk=[before])
    layout = vim.vm.FileLayoutEx(file=files, disk=[now], snapshot=[snap])
    assert held_bytes(layout) == 3 * MIB + 1024
    assert held_bytes(vim.vm.FileLayoutEx(file=files, disk=[now], snapshot=[])) == 0
