"""Pre-flight: prove a target host can run a VM before anything irreversible happens.

A VM is unregistered from its dead host only once a target has passed every check here;
a VM that no target passes is reported (``unplaced``, with the reason) and left where it
is.  The checks are what vCenter itself would refuse the registration or the power-on
for, read from the inventory (vCenter's own ``QueryVMotionCompatibility`` /
``CompatibilityChecker`` need a source host that answers, which a failed host does not,
and the simulator implements neither):

* every datastore of the VM (its ``datastore`` property: configuration files and disks,
  and the datastore of its ``.vmx`` path) is mounted and accessible on the target
  (``HostSystem.datastore``, the datastore's ``summary.accessible`` and its per-host
  ``host[].mountInfo``);
* every network the VM's NICs use (``VirtualMachine.network``) is present on the target
  (``HostSystem.network``);
* no device ties the VM to its host: PCI passthrough (DirectPath I/O, and vGPU, which is
  a ``VirtualPCIPassthrough`` with a vGPU backing), SR-IOV NICs, host USB devices, serial
  or parallel ports, CD or floppy drives backed by a device of the host; and not under
  Fault Tolerance (its secondary takes over, not a restart).
"""

from __future__ import annotations

from typing import Any

from pyVmomi import vim

from vcenter.soap_values import is_a

from .model import HostState, VMState


def check(vm: VMState, host: HostState) -> str:
    """``""`` when ``host`` can take ``vm``, else the first reason it cannot."""
    if vm.host_tied:
        return vm.host_tied
    if not host.mounts_known:
        return ""
    missing = [d for d in vm.datastores if d not in host.datastores]
    if vm.vmx_datastore and vm.vmx_datastore not in host.datastore_names.values():
        missing.append(vm.vmx_datastore)
    if missing:
        names = sorted({host.datastore_label(d) for d in missing})
        return f"does not see datastore {', '.join(names)}"
    nets = [n for n in vm.networks if n not in host.networks]
    if nets:
        return f"has no network {', '.join(sorted(nets))}"
    return ""


_HOST_BACKED = (
    vim.vm.device.VirtualSerialPort,
    vim.vm.device.VirtualParallelPort,
    vim.vm.device.VirtualCdrom,
    vim.vm.device.VirtualFloppy,
)


def host_tied(devices: Any, ft_state: str) -> str:
    """Why the VM's hardware ties it to its host, or ``""``. ``devices``: pyVmomi's objects
    or the plain-XML read's stand-ins (remediator/plain_reads.py), hence ``is_a``, which
    is ``isinstance`` by WSDL type (a serial port's ``DeviceBackingInfo`` is a
    ``VirtualDevice.DeviceBackingInfo``), and a device named by its WSDL type."""
    if ft_state and ft_state != "notConfigured":
        return f"protected by Fault Tolerance ({ft_state}): FT, not a restart, takes over"
    for d in devices or []:
        label = getattr(getattr(d, "deviceInfo", None), "label", "") or str(
            getattr(type(d), "_wsdlName", type(d).__name__)
        )
        backing = getattr(d, "backing", None)
        if is_a(d, vim.vm.device.VirtualPCIPassthrough):
            vgpu = is_a(backing, vim.vm.device.VirtualPCIPassthrough.VmiopBackingInfo)
            return f"has a {'vGPU' if vgpu else 'PCI passthrough'} device ({label})"
        if is_a(d, vim.vm.device.VirtualSriovEthernetCard):
            return f"has an SR-IOV network adapter ({label})"
        if is_a(d, vim.vm.device.VirtualUSB) and is_a(
            backing, vim.vm.device.VirtualUSB.USBBackingInfo
        ):
            return f"has a host USB device ({label})"
        if any(is_a(d, kind) for kind in _HOST_BACKED) and is_a(
            backing, vim.vm.device.VirtualDevice.DeviceBackingInfo
        ):
            connected = getattr(getattr(d, "connectable", None), "connected", True)
            if connected:
                return f"has a device backed by the host ({label})"
    return ""
