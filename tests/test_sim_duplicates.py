"""A failed host that comes back still holds the registrations vCenter removed meanwhile.

``UnregisterVM`` of a VM whose host is not responding removes it from vCenter only; when the
host reconnects vCenter imports what the host has registered, so a VM re-registered
elsewhere meanwhile shows twice: the running copy and, on the returning host, a new object
for the same .vmx (docs/simulator.md, "A host that comes back").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim

from sim.harness import Simulator, SimulatorError


def _vm(si: Any, name: str) -> Any:
    view = si.content.viewManager.CreateContainerView(
        si.content.rootFolder, [vim.VirtualMachine], True
    )
    try:
        return [v for v in view.view if v.name == name]
    finally:
        view.Destroy()


def _reregister(si: Any, sim: Simulator, name: str, target: str) -> Any:
    """What the remediator does for a VM of a dead host: unregister, register, power on."""
    (vm,) = _vm(si, name)
    vmx, folder = vm.config.files.vmPathName, vm.parent
    uuid = vm.config.instanceUuid
    vm.UnregisterVM()
    host = next(h for h in _hosts(si) if h.name == target)
    pool = host.parent.resourcePool
    task = folder.RegisterVM_Task(path=vmx, name=name, asTemplate=False, pool=pool, host=host)
    WaitForTask(task)
    new = task.info.result
    WaitForTask(new.PowerOnVM_Task())
    return new, vmx, uuid


def _hosts(si: Any) -> list[Any]:
    view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.HostSystem], True)
    try:
        return list(view.view)
    finally:
        view.Destroy()


@pytest.fixture
def dsim(sim_factory: Callable[..., Simulator]) -> Simulator:
    return sim_factory(clusters=1, hosts=3, vms=3)


def test_a_returning_host_shows_a_stale_powered_off_copy_of_a_vm_restarted_elsewhere(
    dsim: Simulator,
) -> None:
    si = SmartConnect(**dsim.connection_kwargs())
    try:
        dsim.fail_host("DC0_C0_H0")
        new, vmx, uuid = _reregister(si, dsim, "DC0_C0_VM0", "DC0_C0_H1")
        assert len(_vm(si, "DC0_C0_VM0")) == 1
        dsim.recover_host("DC0_C0_H0")
        copies = _vm(si, "DC0_C0_VM0")
        assert len(copies) == 2, [c._moId for c in copies]
        (stale,) = [c for c in copies if c._moId != new._moId]
        assert stale.runtime.host.name == "DC0_C0_H0"
        assert str(stale.runtime.powerState) == "poweredOff"
        assert stale.config.files.vmPathName == vmx
        assert stale.config.hardware.numCPU == new.config.hardware.numCPU == 2
        # vCenter keeps instance UUIDs unique: the copy that came back gets a new one.
        assert new.config.instanceUuid == uuid and stale.config.instanceUuid != uuid
        assert stale.config.uuid == new.config.uuid  # the BIOS UUID is the .vmx's
        events = si.content.eventManager.QueryEvents(
            vim.event.EventFilterSpec(eventTypeId=["VmInstanceUuidConflictEvent"])
        )
        assert [e.vm.vm._moId for e in events] == [stale._moId]
        assert events[0].conflictedVm.vm._moId == new._moId
        # The running copy holds the .vmx lock: the stale one cannot power on.
        with pytest.raises(vim.fault.FileLocked):
            WaitForTask(stale.PowerOnVM_Task())
        # Removing it from the inventory leaves the running VM alone.
        stale.UnregisterVM()
        (only,) = _vm(si, "DC0_C0_VM0")
        assert only._moId == new._moId and str(only.runtime.powerState) == "poweredOn"
        # A host that had no VM unregistered while down brings nothing back.
        assert len(_vm(si, "DC0_C0_VM1")) == 1
    finally:
        Disconnect(si)


def test_split_brain_and_reinstalled_host(dsim: Simulator) -> None:
    si = SmartConnect(**dsim.connection_kwargs())
    try:
        dsim.fail_host("DC0_C0_H0")
        _reregister(si, dsim, "DC0_C0_VM0", "DC0_C0_H1")
        dsim.recover_host("DC0_C0_H0", stale_vms="poweredOn")
        states = sorted(str(c.runtime.powerState) for c in _vm(si, "DC0_C0_VM0"))
        assert states == ["poweredOn", "poweredOn"]  # both run: a person must settle it
        dsim.fail_host("DC0_C0_H1")
        _reregister(si, dsim, "DC0_C0_VM1", "DC0_C0_H2")
        dsim.recover_host("DC0_C0_H1", stale_vms="none")
        assert len(_vm(si, "DC0_C0_VM1")) == 1
    finally:
        Disconnect(si)


def test_a_vm_never_registered_again_comes_back_once(dsim: Simulator) -> None:
    si = SmartConnect(**dsim.connection_kwargs())
    try:
        dsim.fail_host("DC0_C0_H0")
        (vm,) = _vm(si, "DC0_C0_VM0")
        uuid = vm.config.instanceUuid
        vm.UnregisterVM()
        assert _vm(si, "DC0_C0_VM0") == []
        dsim.recover_host("DC0_C0_H0")
        (back,) = _vm(si, "DC0_C0_VM0")
        assert back.runtime.host.name == "DC0_C0_H0" and back.config.instanceUuid == uuid
        WaitForTask(back.PowerOnVM_Task())  # nothing else holds its files
    finally:
        Disconnect(si)


def test_recover_rejects_a_bad_stale_vms_value(dsim: Simulator) -> None:
    dsim.fail_host("DC0_C0_H0")
    with pytest.raises(SimulatorError) as err:
        dsim.recover_host("DC0_C0_H0", stale_vms="maybe")
    assert err.value.status == 400 and "poweredOff" in str(err.value)
