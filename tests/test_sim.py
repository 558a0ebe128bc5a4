"""The vCenter simulator (sim/) against pyvmomi: inventory, fault API, guest agent, strict mode."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

from sim.harness import Simulator, SimulatorClient, SimulatorError

ROOT = Path(__file__).resolve().parent.parent

# ---- helpers ---------------------------------------------------------------------------


def connect(sim: Simulator) -> Any:
    return SmartConnect(**sim.connection_kwargs())


@pytest.fixture
def si(sim: Simulator) -> Iterator[Any]:
    conn = connect(sim)
    yield conn
    Disconnect(conn)


def objects(si: Any, kind: type) -> dict[str, Any]:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [kind], True)
    try:
        return {o.name: o for o in view.view}
    finally:
        view.Destroy()


def by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {i["name"]: i for i in items}


def until(check: Callable[[], Any], timeout: float = 5.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.05)


PC = vmodl.query.PropertyCollector
HOST_PATHS = [
    "name",
    "runtime.connectionState",
    "runtime.inMaintenanceMode",
    "runtime.dasHostState",
]
VM_PATHS = [
    "name",
    "runtime.connectionState",
    "guestHeartbeatStatus",
    "guest.toolsRunningStatus",
    "guest.appHeartbeatStatus",
]


class Watcher:
    """A WaitForUpdatesEx client over all hosts and VMs; records what arrives as updates."""

    def __init__(self, si: Any) -> None:
        content = si.RetrieveContent()
        self.pc = content.propertyCollector.CreatePropertyCollector()
        for kind, paths in ((vim.HostSystem, HOST_PATHS), (vim.VirtualMachine, VM_PATHS)):
            view = content.viewManager.CreateContainerView(content.rootFolder, [kind], True)
            traverse = PC.TraversalSpec(
                name="v", path="view", skip=False, type=vim.view.ContainerView
            )
            spec = PC.FilterSpec(
                objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[traverse])],
                propSet=[PC.PropertySpec(type=kind, pathSet=paths)],
            )
            self.pc.CreateFilter(spec, partialUpdates=True)
        self.version = ""
        self.values: dict[tuple[str, str], Any] = {}
        self.names: dict[str, str] = {}
        self.updates: list[tuple[str, str, Any]] = []
        self._poll(0)
        self.updates.clear()  # the initial snapshot is not an update

    def _poll(self, wait: int) -> None:
        res = self.pc.WaitForUpdatesEx(self.version, PC.WaitOptions(maxWaitSeconds=wait))
        if res is None:
            return
        self.version = res.version
        for fs in res.filterSet:
            for ou in fs.objectSet:
                moid = ou.obj._moId
                for change in ou.changeSet:
                    val = change.val
                    if change.name == "runtime.dasHostState":
                        val = val.state if val is not None else None
                    if change.name == "name":
                        self.names[val] = moid
                    self.values[(moid, change.name)] = val
                    if ou.kind == "modify":
                        self.updates.append((moid, change.name, val))

    def value(self, name: str, prop: str) -> Any:
        return self.values.get((self.names[name], prop))

    def wait_update(self, name: str, prop: str, expected: Any, timeout: float = 5.0) -> None:
        moid = self.names[name]
        deadline = time.monotonic() + timeout
        while (moid, prop, expected) not in self.updates:
            if time.monotonic() > deadline:
                raise AssertionError(f"no update {name}.{prop}={expected!r}; got {self.updates}")
            self._poll(1)

    def close(self) -> None:
        self.pc.Destroy()


# ---- inventory ---------------------------------------------------------------------------


def test_inventory_counts_and_initial_ha_state_match_the_flags(
    sim_factory: Callable[..., Simulator],
) -> None:
    sim = sim_factory(
        datacenters=2,
        clusters=2,
        hosts=3,
        vms=7,
        standalone_hosts=1,
        standalone_vms=2,
        fault_domains=3,
    )
    inv = sim.inventory()
    assert len(inv["clusters"]) == 4
    assert len(inv["hosts"]) == 2 * (2 * 3 + 1)
    assert len(inv["vms"]) == 2 * (2 * 7 + 2)

    hosts = by_name(inv["hosts"])
    for c in inv["clusters"]:
        assert len(c["hosts"]) == 3
        assert c["master"] == c["hosts"][0]
        assert [hosts[h]["faultDomain"] for h in c["hosts"]] == ["fd-a", "fd-b", "fd-c"]
        assert [hosts[h]["dasHostState"] for h in c["hosts"]] == [
            "master",
            "connectedToMaster",
            "connectedToMaster",
        ]
        # 7 VMs round-robin over 3 hosts: 3, 2, 2
        assert sorted(len(hosts[h]["vms"]) for h in c["hosts"]) == [2, 2, 3]
    standalone = [h for h in inv["hosts"] if h["cluster"] is None]
    assert len(standalone) == 2
    assert all(h["dasHostState"] is None and len(h["vms"]) == 2 for h in standalone)
    for vm in inv["vms"]:
        assert vm["powerState"] == "poweredOn"
        assert vm["connectionState"] == "connected"
        assert vm["guestHeartbeatStatus"] == "green"
        assert vm["toolsRunningStatus"] == "guestToolsRunning"
        assert vm["appHeartbeatStatus"] == "appStatusGreen"
        assert vm["bootTime"] is not None
        assert vm["name"] in hosts[vm["host"]]["vms"]

    si = connect(sim)
    try:
        vc_hosts = objects(si, vim.HostSystem)
        vc_vms = objects(si, vim.VirtualMachine)
        clusters = objects(si, vim.ClusterComputeResource)
        assert set(vc_hosts) == set(hosts)
        assert set(vc_vms) == {v["name"] for v in inv["vms"]}
        fields = {f.key: f.name for f in si.RetrieveContent().customFieldsManager.field}
        for vm in inv["vms"]:
            obj = vc_vms[vm["name"]]
            assert obj.runtime.host.name == vm["host"]
            assert obj.runtime.bootTime is not None
            assert obj.summary.quickStats.guestHeartbeatStatus == "green"
        priorities = [
            {fields[v.key]: v.value for v in vc_vms[f"DC0_C0_VM{i}"].customValue} for i in range(4)
        ]
        assert [p["HA-RestartPriority"] for p in priorities] == ["high", "medium", "low", "high"]
        h0 = vc_hosts["DC0_C0_H0"]
        assert {fields[v.key]: v.value for v in h0.customValue} == {"HA-FaultDomain": "fd-a"}
        assert h0.runtime.dasHostState.state == "master"
        assert {vm.name for vm in h0.vm} == set(hosts["DC0_C0_H0"]["vms"])

        cluster = clusters["DC0_C0"]
        das = cluster.configurationEx.dasConfig
        assert das.enabled and das.admissionControlEnabled
        assert isinstance(
            das.admissionControlPolicy, vim.cluster.FailoverLevelAdmissionControlPolicy
        )
        assert das.admissionControlPolicy.failoverLevel == 1
        assert das.vmMonitoring == "vmAndAppMonitoring"
        tools = das.defaultVmSettings.vmToolsMonitoringSettings
        assert (
            tools.failureInterval,
            tools.minUpTime,
            tools.maxFailures,
            tools.maxFailureWindow,
        ) == (
            30,
            120,
            3,
            3600,
        )
        drs = cluster.configurationEx.drsConfig
        assert drs.enabled and drs.defaultVmBehavior == "fullyAutomated"

        summary = cluster.summary
        members = cluster.host
        assert summary.numHosts == summary.numEffectiveHosts == len(members) == 3
        hw = [h.summary.hardware for h in members]
        assert summary.totalCpu == sum(x.cpuMhz * x.numCpuCores for x in hw)
        assert summary.totalMemory == sum(x.memorySize for x in hw)
        assert summary.effectiveMemory == sum(x.memorySize for x in hw) // (1024 * 1024)
        assert summary.numCpuCores == sum(x.numCpuCores for x in hw)
        assert all(h.summary.quickStats.overallCpuUsage > 0 for h in members)
    finally:
        Disconnect(si)


# ---- fault API -> property collector --------------------------------------------------------


def test_property_collector_sees_every_fault_api_change(sim: Simulator, si: Any) -> None:
    watcher = Watcher(si)
    try:
        host = "DC0_C1_H1"
        sim.set_host(host, connectionState="disconnected")
        watcher.wait_update(host, "runtime.connectionState", "disconnected")
        sim.set_host(host, connectionState="connected", inMaintenanceMode=True)
        watcher.wait_update(host, "runtime.inMaintenanceMode", True)
        watcher.wait_update(host, "runtime.connectionState", "connected")
        sim.set_host(host, dasHostState="networkPartitionedFromMaster")
        watcher.wait_update(host, "runtime.dasHostState", "networkPartitionedFromMaster")
        sim.set_host(host, dasHostState=None)
        watcher.wait_update(host, "runtime.dasHostState", None)

        vm = "DC0_C1_VM2"
        sim.set_vm(vm, guestHeartbeatStatus="red")
        watcher.wait_update(vm, "guestHeartbeatStatus", "red")
        sim.set_vm(vm, appHeartbeatStatus="appStatusRed")
        watcher.wait_update(vm, "guest.appHeartbeatStatus", "appStatusRed")
        sim.set_vm(vm, toolsRunningStatus="guestToolsNotRunning")
        watcher.wait_update(vm, "guest.toolsRunningStatus", "guestToolsNotRunning")
        assert sim.get_vm(vm)["injectedFaults"] == {
            "guestHeartbeatStatus": "red",
            "appHeartbeatStatus": "appStatusRed",
            "toolsRunningStatus": "guestToolsNotRunning",
        }
        sim.set_vm(vm, guestHeartbeatStatus="green", appHeartbeatStatus="appStatusGreen")
        watcher.wait_update(vm, "guestHeartbeatStatus", "green")
        watcher.wait_update(vm, "guest.appHeartbeatStatus", "appStatusGreen")

        # a VM powered off behind vCenter's back: gray heartbeats, tools not running
        sim.set_vm("DC0_C1_VM3", powerState="poweredOff")
        watcher.wait_update("DC0_C1_VM3", "guestHeartbeatStatus", "gray")
        watcher.wait_update("DC0_C1_VM3", "guest.toolsRunningStatus", "guestToolsNotRunning")

        # changes made through vCenter are announced too (vcsim sets this one silently)
        WaitForTask(objects(si, vim.HostSystem)["DC0_C0_H2"].EnterMaintenanceMode_Task(0))
        watcher.wait_update("DC0_C0_H2", "runtime.inMaintenanceMode", True)
    finally:
        watcher.close()


def test_fail_host_moves_the_master_and_recover_brings_it_back(sim: Simulator, si: Any) -> None:
    inv = sim.inventory()
    cluster = by_name(inv["clusters"])["DC0_C0"]
    master = cluster["master"]
    on_master = by_name(inv["hosts"])[master]["vms"]
    assert on_master

    watcher = Watcher(si)
    try:
        failed = sim.fail_host(master)
        assert failed["connectionState"] == "notResponding"
        assert failed["overallStatus"] == "red"
        assert failed["dasHostState"] == "hostDown"
        inv = sim.inventory()
        new_master = by_name(inv["clusters"])["DC0_C0"]["master"]
        assert new_master not in (None, master)
        watcher.wait_update(new_master, "runtime.dasHostState", "master")
        watcher.wait_update(master, "runtime.connectionState", "notResponding")
        vms = by_name(inv["vms"])
        for name in on_master:
            vm = vms[name]
            assert vm["connectionState"] == "disconnected"
            assert vm["guestHeartbeatStatus"] == "gray"
            assert vm["appHeartbeatStatus"] == "appStatusGray"
            assert vm["powerState"] == "poweredOn"  # as vCenter last knew it
            watcher.wait_update(name, "runtime.connectionState", "disconnected")
        hosts = objects(si, vim.HostSystem)
        assert hosts[new_master].runtime.dasHostState.state == "master"
        others = [h for h in cluster["hosts"] if h not in (master, new_master)]
        for h in others:
            das = hosts[h].runtime.dasHostState
            assert das.state == "connectedToMaster" and das.stateReporter.name == new_master
        summary = objects(si, vim.ClusterComputeResource)["DC0_C0"].summary
        assert (summary.numHosts, summary.numEffectiveHosts) == (3, 2)

        # the second cluster is untouched
        assert by_name(inv["clusters"])["DC0_C1"]["master"] == "DC0_C1_H0"
        events = si.content.eventManager.QueryEvents(
            vim.event.EventFilterSpec(eventTypeId=["DasHostFailedEvent", "HostConnectionLostEvent"])
        )
        assert sorted(type(e).__name__ for e in events) == [
            "vim.event.DasHostFailedEvent",
            "vim.event.HostConnectionLostEvent",
        ]
        assert all(e.host.name == master for e in events if hasattr(e, "host") and e.host)

        back = sim.recover_host(master)
        assert (back["connectionState"], back["powerState"], back["overallStatus"]) == (
            "connected",
            "poweredOn",
            "green",
        )
        assert back["dasHostState"] == "connectedToMaster"
        for name in on_master:
            watcher.wait_update(name, "guestHeartbeatStatus", "green")
            vm = sim.get_vm(name)
            assert vm["connectionState"] == "connected"
            assert vm["appHeartbeatStatus"] == "appStatusGreen"

        # isolation of the new master, with no other electable host left
        sim.fail_host(new_master, das_state="networkIsolated")
        inv = sim.inventory()
        assert by_name(inv["hosts"])[new_master]["dasHostState"] == "networkIsolated"
        assert by_name(inv["clusters"])["DC0_C0"]["master"] not in (None, new_master)
    finally:
        watcher.close()


def test_fault_api_rejects_unknown_names_keys_and_values(sim: Simulator) -> None:
    def error(call: Callable[[], Any]) -> SimulatorError:
        with pytest.raises(SimulatorError) as info:
            call()
        return info.value

    e = error(lambda: sim.set_host("no-such-host", connectionState="connected"))
    assert e.status == 404 and "no-such-host" in e.reason
    assert error(lambda: sim.fail_host("no-such-host")).status == 404
    assert error(lambda: sim.recover_host("nope")).status == 404
    assert error(lambda: sim.set_vm("no-such-vm", powerState="poweredOff")).status == 404
    e = error(lambda: sim.set_host("DC0_C0_H1", color="blue"))
    assert e.status == 400 and "color" in e.reason
    e = error(lambda: sim.set_host("DC0_C0_H1", connectionState="sleepy"))
    assert e.status == 400 and "sleepy" in e.reason and "notResponding" in e.reason
    e = error(lambda: sim.set_host("DC0_C0_H1", inMaintenanceMode="yes"))
    assert e.status == 400 and "inMaintenanceMode" in e.reason
    e = error(lambda: sim.set_host("DC0_C0_H1", dasHostState="asleep"))
    assert e.status == 400
    assert error(lambda: sim.set_host("DC0_C0_H1")).status == 400  # nothing to set
    assert error(lambda: sim.fail_host("DC0_C0_H1", das_state="master")).status == 400
    assert error(lambda: sim.set_vm("DC0_C0_VM1", guestHeartbeatStatus="purple")).status == 400
    assert error(lambda: sim.set_vm("DC0_C0_VM1", appHeartbeatStatus="red")).status == 400
    assert error(lambda: sim.set_vm("DC0_C0_VM1", toolsRunningStatus="maybe")).status == 400
    assert error(lambda: sim.set_vm("DC0_C0_VM1", host="DC0_C0_H2")).status == 400
    # a guest fault needs a running guest
    e = error(lambda: sim.set_vm("DC0_C0_VM1", powerState="poweredOff", guestHeartbeatStatus="red"))
    assert e.status == 409

    # a rejected request changes nothing (atomic)
    error(lambda: sim.set_host("DC0_C0_H1", inMaintenanceMode=True, overallStatus="pink"))
    assert sim.get_host("DC0_C0_H1")["inMaintenanceMode"] is False
    assert sim.get_vm("DC0_C0_VM1")["powerState"] == "poweredOn"

    assert error(lambda: sim.inject_fault("NoSuchMethod_Task", "InvalidState")).status == 400
    assert error(lambda: sim.inject_fault("PowerOnVM_Task", "NoSuchFault")).status == 400
    assert error(lambda: sim.inject_fault("PowerOnVM_Task", "PowerOnVM_Task")).status == 400
    assert error(lambda: sim.inject_fault("PowerOnVM_Task", "InvalidState", "nope")).status == 404
    assert error(lambda: sim.inject_fault("PowerOnVM_Task", "InvalidState", count=0)).status == 400
    assert error(lambda: sim.inject_fault("Logout", "InvalidState", mode="task")).status == 400
    assert sim.faults() == []

    # raw API: bad JSON, unknown endpoint, wrong method
    client = SimulatorClient(sim.api_url)
    assert error(lambda: client._request("GET", "/api/v1/nothing")).status == 404
    assert error(lambda: client._request("DELETE", "/api/v1/inventory")).status == 405
    assert sim.healthz()


def test_wrong_password_fails_login(sim: Simulator) -> None:
    kwargs = sim.connection_kwargs()
    kwargs["pwd"] = "not-the-password"
    with pytest.raises(vim.fault.InvalidLogin):
        SmartConnect(**kwargs)
    kwargs = sim.connection_kwargs()
    kwargs["user"] = "administrator@vsphere.local"
    with pytest.raises(vim.fault.InvalidLogin):
        SmartConnect(**kwargs)
    # faults can be injected before login too: the right password is refused once
    sim.inject_fault("Login", "InvalidLogin")
    with pytest.raises(vim.fault.InvalidLogin):
        SmartConnect(**sim.connection_kwargs())
    Disconnect(SmartConnect(**sim.connection_kwargs()))


def test_tls_verifies_against_ca_file_only(sim: Simulator) -> None:
    assert Path(sim.ca_file).is_file()
    si = SmartConnect(**sim.connection_kwargs())  # verification on, against ca_file
    assert si.content.about.apiType == "VirtualCenter"
    Disconnect(si)
    # without the CA the certificate is refused
    with socket.create_connection((sim.host, sim.port), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            ssl.create_default_context().wrap_socket(raw, server_hostname=sim.host)
    # and with it, the host name 127.0.0.1 matches the certificate
    with socket.create_connection((sim.host, sim.port), timeout=5) as raw:
        with sim.ssl_context().wrap_socket(raw, server_hostname=sim.host) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")


# ---- injected SOAP faults ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "exc"),
    [
        ("InvalidHostState", vim.fault.InvalidHostState),
        ("HostNotConnected", vmodl.fault.HostNotConnected),
        ("TaskInProgress", vim.fault.TaskInProgress),
        ("InvalidState", vim.fault.InvalidState),
        ("NotSupported", vmodl.fault.NotSupported),
    ],
)
def test_injected_faults_raise_the_pyvmomi_exception(
    sim: Simulator, si: Any, fault: str, exc: type[Exception]
) -> None:
    vms = objects(si, vim.VirtualMachine)
    target, other = vms["DC0_C0_VM1"], vms["DC0_C0_VM2"]
    WaitForTask(target.PowerOffVM_Task())
    WaitForTask(other.PowerOffVM_Task())
    rule = sim.inject_fault("PowerOnVM_Task", fault, object="DC0_C0_VM1", count=1)
    assert rule["count"] == 1 and sim.faults()[0]["fault"] == fault
    WaitForTask(other.PowerOnVM_Task())  # other objects are not affected
    with pytest.raises(exc) as info:
        target.PowerOnVM_Task()
    assert info.value.msg
    if fault == "InvalidHostState":
        assert info.value.host.name == target.runtime.host.name
    if fault == "TaskInProgress":
        assert isinstance(info.value.task, vim.Task)
    assert sim.faults() == []  # count used up
    WaitForTask(target.PowerOnVM_Task())  # the next call goes through
    assert target.runtime.powerState == "poweredOn"


def test_injected_faults_task_mode_count_and_clear(sim: Simulator, si: Any) -> None:
    vms = objects(si, vim.VirtualMachine)
    vm = vms["DC0_C1_VM0"]
    sim.inject_fault("ResetVM_Task", "InvalidState", count=2, mode="task")
    for _ in range(2):
        task = vm.ResetVM_Task()  # the call itself succeeds: the task fails
        with pytest.raises(vim.fault.InvalidState):
            WaitForTask(task)
        assert task.info.state == "error"
    WaitForTask(vm.ResetVM_Task())

    # a host name matches calls on its VMs; -1 lasts until cleared
    host = vm.runtime.host.name
    sim.inject_fault("PowerOffVM_Task", "HostNotConnected", object=host, count=-1)
    for _ in range(3):
        with pytest.raises(vmodl.fault.HostNotConnected):
            vm.PowerOffVM_Task()
    assert sim.faults()[0]["fired"] == 3
    assert sim.clear_faults() == 1
    WaitForTask(vm.PowerOffVM_Task())

    # faults on read calls too: the next property read fails once
    sim.inject_fault("Fetch", "SystemError")  # how pyvmomi 8+ reads one property
    with pytest.raises(vmodl.fault.SystemError):
        _ = vm.name
    assert vm.name == "DC0_C1_VM0"


# ---- strict mode and the guest agent ---------------------------------------------------------


def test_strict_mode_refuses_what_vcenter_refuses(sim: Simulator, si: Any) -> None:
    vms = objects(si, vim.VirtualMachine)
    hosts = objects(si, vim.HostSystem)
    off, on = vms["DC0_C0_VM1"], vms["DC0_C0_VM4"]  # both on DC0_C0_H1
    assert off.runtime.host.name == on.runtime.host.name == "DC0_C0_H1"
    WaitForTask(off.PowerOffVM_Task())
    sim.fail_host("DC0_C0_H1")

    with pytest.raises(vmodl.fault.HostNotConnected):
        WaitForTask(off.PowerOnVM_Task())
    with pytest.raises(vmodl.fault.HostNotConnected):
        WaitForTask(on.ResetVM_Task())
    with pytest.raises(vmodl.fault.HostNotConnected):
        WaitForTask(on.PowerOffVM_Task())
    # strict-source: vCenter will not relocate off a host it cannot reach
    sim.set_strict(strict_source=True)
    spec = vim.vm.RelocateSpec(host=hosts["DC0_C0_H2"])
    with pytest.raises(vim.fault.InvalidHostState) as info:
        WaitForTask(off.RelocateVM_Task(spec))
    assert info.value.host.name == "DC0_C0_H1"
    sim.set_strict(strict_source=False)  # the default: relocation stands in for HA restarts
    # nor onto a host that is not connected or is in maintenance mode
    healthy = vms["DC0_C0_VM2"]  # on DC0_C0_H2
    with pytest.raises(vim.fault.InvalidHostState) as info:
        WaitForTask(healthy.RelocateVM_Task(vim.vm.RelocateSpec(host=hosts["DC0_C0_H1"])))
    assert info.value.host.name == "DC0_C0_H1"
    sim.set_host("DC0_C0_H0", inMaintenanceMode=True)
    with pytest.raises(vim.fault.InvalidHostState):
        WaitForTask(healthy.MigrateVM_Task(host=hosts["DC0_C0_H0"], priority="defaultPriority"))
    # a live host is fine (MigrateVM_Task is served as RelocateVM_Task)
    sim.set_host("DC0_C0_H0", inMaintenanceMode=False)
    WaitForTask(healthy.MigrateVM_Task(host=hosts["DC0_C0_H0"], priority="defaultPriority"))
    assert healthy.runtime.host.name == "DC0_C0_H0"
    assert healthy.guestHeartbeatStatus == "green"  # a vMotion keeps the guest running
    assert {v.name for v in hosts["DC0_C0_H0"].vm} >= {"DC0_C0_VM2"}
    assert "DC0_C0_VM2" not in {v.name for v in hosts["DC0_C0_H2"].vm}

    # vcsim's permissive behaviour with strict off
    sim.set_strict(False)
    assert sim.config()["strict"] is False
    WaitForTask(off.PowerOnVM_Task())
    assert off.runtime.powerState == "poweredOn"
    assert off.guestHeartbeatStatus == "gray"  # its host is still down


def test_vm_off_a_dead_host_restarts_by_relocate_or_reregister(
    sim_factory: Callable[..., Simulator],
) -> None:
    sim = sim_factory(clusters=1, hosts=3, vms=6, strict=False)
    si = connect(sim)
    try:
        vms = objects(si, vim.VirtualMachine)
        hosts = objects(si, vim.HostSystem)
        vm = vms["DC0_C0_VM0"]
        sim.fail_host("DC0_C0_H0")
        assert vm.runtime.connectionState == "disconnected"
        # non-strict: relocation off the dead host works; the guest died with the host
        WaitForTask(vm.RelocateVM_Task(vim.vm.RelocateSpec(host=hosts["DC0_C0_H1"])))
        assert vm.runtime.powerState == "poweredOff"
        assert vm.runtime.connectionState == "connected"
        assert vm.guestHeartbeatStatus == "gray"
        WaitForTask(vm.PowerOnVM_Task())
        assert (vm.runtime.powerState, vm.guestHeartbeatStatus) == ("poweredOn", "green")
        assert vm.guest.toolsRunningStatus == "guestToolsRunning"
        assert vm.runtime.bootTime is not None
        entry = sim.get_vm("DC0_C0_VM0")
        assert (entry["host"], entry["connectionState"]) == ("DC0_C0_H1", "connected")
        assert "DC0_C0_VM0" in sim.get_host("DC0_C0_H1")["vms"]
        assert "DC0_C0_VM0" not in sim.get_host("DC0_C0_H0")["vms"]

        # strict with strict-source: relocation off the dead host is refused, so unregister
        # from it, register on a live host, power on
        sim.set_strict(True, strict_source=True)
        with pytest.raises(vim.fault.InvalidHostState):
            WaitForTask(
                vms["DC0_C0_VM3"].RelocateVM_Task(vim.vm.RelocateSpec(host=hosts["DC0_C0_H2"]))
            )
        moved = vms["DC0_C0_VM3"]
        vmx, folder = moved.config.files.vmPathName, moved.parent
        pool = moved.resourcePool
        moved.UnregisterVM()  # allowed although vCenter last saw it powered on
        task = folder.RegisterVM_Task(
            path=vmx, name="DC0_C0_VM3", asTemplate=False, pool=pool, host=hosts["DC0_C0_H2"]
        )
        WaitForTask(task)
        new = task.info.result
        assert new.runtime.powerState == "poweredOff"
        WaitForTask(new.PowerOnVM_Task())
        assert (new.runtime.connectionState, new.guestHeartbeatStatus) == ("connected", "green")
        new.setCustomValue(key="HA-RestartPriority", value="high")
        entry = sim.get_vm("DC0_C0_VM3")
        assert entry["moid"] == new._moId and entry["host"] == "DC0_C0_H2"
        assert entry["restartPriority"] == "high"
        assert entry["guestHeartbeatStatus"] == "green"
    finally:
        Disconnect(si)


def test_injected_heartbeat_fault_lasts_until_reset_through_vcenter(
    sim: Simulator, si: Any
) -> None:
    vm = objects(si, vim.VirtualMachine)["DC0_C0_VM5"]
    boot = vm.runtime.bootTime
    sim.set_vm("DC0_C0_VM5", guestHeartbeatStatus="red", appHeartbeatStatus="appStatusRed")
    time.sleep(0.6)  # several reconciler passes: the hung guest stays hung
    assert vm.guestHeartbeatStatus == "red"
    assert vm.guest.appHeartbeatStatus == "appStatusRed"
    assert vm.summary.quickStats.guestHeartbeatStatus == "red"

    WaitForTask(vm.ResetVM_Task())
    # derived state is reconciled before the call returns
    assert vm.guestHeartbeatStatus == "green"
    assert vm.guest.appHeartbeatStatus == "appStatusGreen"
    assert vm.runtime.bootTime > boot
    assert sim.get_vm("DC0_C0_VM5")["injectedFaults"] == {}

    # a power cycle clears it too; tools come back with the guest
    sim.set_vm("DC0_C0_VM5", toolsRunningStatus="guestToolsNotRunning")
    assert vm.guest.toolsRunningStatus == "guestToolsNotRunning"
    WaitForTask(vm.PowerOffVM_Task())
    assert (vm.guestHeartbeatStatus, vm.guest.toolsRunningStatus) == (
        "gray",
        "guestToolsNotRunning",
    )
    assert vm.runtime.bootTime is None
    WaitForTask(vm.PowerOnVM_Task())
    assert (vm.guestHeartbeatStatus, vm.guest.toolsRunningStatus) == ("green", "guestToolsRunning")


# ---- process lifecycle ------------------------------------------------------------------------


def test_restart_comes_back_on_the_same_ports_and_certificate(sim: Simulator) -> None:
    sdk, api, ca = sim.sdk_url, sim.api_url, Path(sim.ca_file).read_bytes()
    pid = sim.pid
    sim.fail_host("DC0_C0_H2")
    sim.stop()
    assert not sim.running
    with pytest.raises(SimulatorError):
        sim.inventory()
    sim.restart()
    assert (sim.sdk_url, sim.api_url) == (sdk, api)
    assert sim.pid != pid
    assert Path(sim.ca_file).read_bytes() == ca
    si = connect(sim)  # same CA file still verifies
    assert len(objects(si, vim.HostSystem)) == 6
    Disconnect(si)
    assert sim.get_host("DC0_C0_H2")["connectionState"] == "connected"  # state was rebuilt


def test_binary_refuses_non_loopback_addresses(sim_binary: Path) -> None:
    for flag in ("-listen", "-api-listen"):
        proc = subprocess.run(
            [str(sim_binary), flag, "0.0.0.0:0"], capture_output=True, text=True, timeout=30
        )
        assert proc.returncode == 2
        assert "loopback" in proc.stderr


def test_cli_drives_the_fault_api(sim: Simulator) -> None:
    env = dict(os.environ, VHA_SIM_API_URL=sim.api_url)

    def cli(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "sim", *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert json.loads(cli("fail-host", "DC0_C1_H0"))["dasHostState"] == "hostDown"
    out = cli("set-vm", "DC0_C1_VM1", "guestHeartbeatStatus=red", "appHeartbeatStatus=appStatusRed")
    assert json.loads(out)["guestHeartbeatStatus"] == "red"
    cli("set-host", "DC0_C1_H2", "inMaintenanceMode=true")
    table = cli("inventory")
    assert "master=DC0_C1_H1" in table and "notResponding" in table and "maintenance" in table
    inv = json.loads(cli("inventory", "--json"))
    assert by_name(inv["hosts"])["DC0_C1_H2"]["inMaintenanceMode"] is True
    assert json.loads(cli("recover-host", "DC0_C1_H0"))["connectionState"] == "connected"
    cli("inject-fault", "PowerOnVM_Task", "InvalidHostState", "--object", "DC0_C1_VM1")
    assert json.loads(cli("clear-faults")) == {"cleared": 1}
    proc = subprocess.run(
        [sys.executable, "-m", "sim", "fail-host", "nope"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 1 and "unknown host" in proc.stderr


@pytest.mark.slow
def test_large_inventory_starts_quickly(sim_factory: Callable[..., Simulator]) -> None:
    start = time.monotonic()
    sim = sim_factory(clusters=5, hosts=20, vms=200)
    elapsed = time.monotonic() - start
    inv = sim.inventory()
    assert (len(inv["hosts"]), len(inv["vms"]), len(inv["clusters"])) == (100, 1000, 5)
    assert all(len(h["vms"]) == 10 for h in inv["hosts"])
    assert elapsed < 30, f"100 hosts / 1,000 VMs took {elapsed:.1f}s to start"
    si = connect(sim)
    try:
        assert len(objects(si, vim.VirtualMachine)) == 1000
    finally:
        Disconnect(si)
