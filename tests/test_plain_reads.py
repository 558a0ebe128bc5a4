"""The whole-cluster read as plain XML (remediator/plain_reads.py) is the pyVmomi read.

Every decision acts on :func:`remediator.live.cluster_snapshot`; read without pyVmomi's
deserialiser it must give the same snapshot, object by object and property by property,
on the real simulator: DRS groups and rules (placement's hard constraints), HA settings,
custom attributes (fault domains, protection, priority), datastore mounts (pre-flight),
host states. And a fault vCenter answers mid-read is handled as through pyVmomi: a lost
session logs in again, any other fault fails the read with the same pyVmomi fault.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from pyVmomi import vim, vmodl

from remediator import actions, identity, live, plain_reads
from remediator.model import Snapshot
from vcenter.session import connect, disconnect
from vcenter.soap_values import is_a, value

from .remediator_sim import inventory, sim_config, sim_session, wait_task

pytestmark = pytest.mark.slow


def _same(snap: Snapshot) -> Snapshot:
    return dataclasses.replace(snap, taken_at=0.0)


def _both(session: live.Session, cluster_id: str) -> tuple[Snapshot, Snapshot]:
    plain = session.call(live.cluster_snapshot, cluster_id)
    through_pyvmomi = session.call(live.cluster_snapshot, cluster_id, False)
    return plain, through_pyvmomi


def _rules(si: Any, cluster_name: str) -> list[str]:
    """Groups and rules of every kind placement reads, HA VM monitoring values and per-VM
    overrides (what identity capture reads); the moids of the VMs they name."""
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(
        content.rootFolder, [vim.VirtualMachine, vim.HostSystem, vim.ClusterComputeResource], True
    )
    by_name = {o.name: o for o in view.view}
    cluster = by_name[cluster_name]
    vms = [v for v in cluster.host[0].vm][:3] + [v for v in cluster.host[1].vm][:2]
    C = vim.cluster
    spec = C.ConfigSpecEx(
        groupSpec=[
            C.GroupSpec(operation="add", info=C.VmGroup(name="g-db", vm=vms[:2])),
            C.GroupSpec(operation="add", info=C.HostGroup(name="h-db", host=cluster.host[:2])),
        ],
        rulesSpec=[
            C.RuleSpec(operation="add", info=info)
            for info in (
                # a required "must run on" and a preferred "should not run on" host group
                C.VmHostRuleInfo(name="db-on", affineHostGroupName="h-db", mandatory=True),
                C.VmHostRuleInfo(name="db-off", antiAffineHostGroupName="h-db"),
                C.AntiAffinityRuleSpec(name="apart", mandatory=True, vm=vms[2:4]),
                C.AffinityRuleSpec(name="together", vm=[vms[0], vms[4]]),
                C.AffinityRuleSpec(name="off", enabled=False, vm=[vms[1], vms[4]]),
            )
        ],
        dasVmConfigSpec=[
            C.DasVmConfigSpec(
                operation="add",
                info=C.DasVmConfigInfo(
                    key=vms[0], dasSettings=C.DasVmSettings(restartPriority="highest")
                ),
            )
        ],
        drsVmConfigSpec=[
            C.DrsVmConfigSpec(
                operation="add", info=C.DrsVmConfigInfo(key=vms[1], enabled=True, behavior="manual")
            )
        ],
        dasConfig=vim.cluster.DasConfigInfo(
            enabled=True,
            admissionControlEnabled=True,
            vmMonitoring="vmAndAppMonitoring",
            defaultVmSettings=vim.cluster.DasVmSettings(
                vmToolsMonitoringSettings=vim.cluster.VmToolsMonitoringSettings(
                    failureInterval=45, minUpTime=120, maxFailures=2, maxFailureWindow=-1
                )
            ),
        ),
    )
    for r in spec.rulesSpec:
        r.info.enabled = r.info.enabled is not False
        r.info.mandatory = bool(r.info.mandatory)
        if isinstance(r.info, C.VmHostRuleInfo):
            r.info.vmGroupName = "g-db"
    wait_task(cluster.ReconfigureComputeResource_Task(spec, modify=True))
    view.DestroyView()
    return [str(v._moId) for v in vms]


def test_plain_cluster_snapshot_is_the_pyvmomi_one_object_by_object(sim_factory: Any) -> None:
    sim = sim_factory(clusters=2, hosts=4, vms=40)
    hosts, vms = inventory(sim)
    cluster_name = hosts["DC0_C0_H0"]["cluster"]
    si = connect(sim_config(sim).vcenters[0])
    try:
        named = _rules(si, cluster_name)
    finally:
        disconnect(si)
    sim.fail_host("DC0_C0_H0")
    sim.set_host("DC0_C0_H1", inMaintenanceMode=True)
    sim.set_mounts("DC0_C0_H2", datastores=[])
    sim.set_vm("DC0_C0_VM5", powerState="poweredOff")
    # pages of 7 objects: the answer comes in many, each continued by its token
    sim.set_paging(max_objects_cap=7)
    with sim_session(sim) as session:
        cluster_id, _ = session.call(live.cluster_of_host, hosts["DC0_C0_H0"]["moid"], "")
        plain, through_pyvmomi = _both(session, cluster_id)
        assert session._login is not None and session._login.plain is not None, "read plain"
        # identity capture reads the cluster's configuration too, once per VM
        captured = [session.call(identity.capture, m, cluster_id) for m in named]
        assert captured == [session.call(identity.capture, m, cluster_id, False) for m in named]
    assert sim.paging_state()["continuedPages"] > 0
    assert plain.cluster is not None and through_pyvmomi.cluster is not None
    # what the fixture set is there, so equality compares something
    assert {r.name for r in plain.cluster.rules.vm_host} == {"db-on", "db-off"}
    assert {r.name for r in plain.cluster.rules.vm_vm} == {"apart", "together"}
    assert plain.cluster.ha_enabled and plain.cluster.vm_monitoring.max_failure_window == -1.0
    assert plain.hosts[hosts["DC0_C0_H2"]["moid"]].datastores == frozenset()
    assert any(v.fault_domain for v in plain.hosts.values())
    assert any(v.boot_time for v in plain.vms.values())
    assert len(plain.vms) == 40
    assert set(plain.hosts) == set(through_pyvmomi.hosts)
    assert set(plain.vms) == set(through_pyvmomi.vms)
    for moid, h in through_pyvmomi.hosts.items():
        assert plain.hosts[moid] == h, moid
    for moid, v in through_pyvmomi.vms.items():
        assert plain.vms[moid] == v, moid
    assert plain.cluster == through_pyvmomi.cluster
    assert _same(plain) == _same(through_pyvmomi)
    assert vms  # the inventory helper read them too
    assert captured[0]["das_override"]["restart_priority"] == "highest"
    assert captured[1]["drs_override"] == {"enabled": True, "behavior": "manual"}
    assert captured[0]["groups"] == ["g-db"] and not captured[0]["errors"]
    assert {r["name"] for r in captured[2]["rules"]} == {"apart"}
    assert {r["name"] for r in captured[0]["rules"]} == {"together"}


def test_a_lost_session_mid_read_logs_in_again_and_other_faults_fail_it(sim: Any) -> None:
    hosts, _ = inventory(sim)
    cluster = hosts["DC0_C0_H0"]["cluster"]
    with sim_session(sim) as session:
        cluster_id, _ = session.call(live.cluster_of_host, hosts["DC0_C0_H0"]["moid"], "")
        session.call(live.cluster_snapshot, cluster_id)
        before = session.logins
        # vCenter ends the session: every property in missingSet with NotAuthenticated
        sim.inject_fault(
            "RetrievePropertiesEx", "NotAuthenticated", object=cluster, mode="drop-session"
        )
        snap = session.call(live.cluster_snapshot, cluster_id)
        assert not sim.faults(), "the session drop fired"
        assert session.logins == before + 1, "logged in again, read again"
        assert _same(snap) == _same(session.call(live.cluster_snapshot, cluster_id, False))
        # a fault of the call is raised as the pyVmomi fault, as pyVmomi raises it
        for plain in (True, False):
            sim.inject_fault("RetrievePropertiesEx", "SystemError", object=cluster)
            with pytest.raises(vmodl.fault.SystemError):
                session.call(live.cluster_snapshot, cluster_id, plain)
        # and so is one between pages (the answer continued by its token)
        sim.set_paging(max_objects_cap=3)
        for plain in (True, False):
            sim.inject_fault("ContinueRetrievePropertiesEx", "SystemError")
            with pytest.raises(vmodl.fault.SystemError):
                session.call(live.cluster_snapshot, cluster_id, plain)
        assert not sim.faults()
        assert session.logins == before + 1


def test_is_a_reads_stand_ins_by_their_wsdl_type() -> None:
    """Placement's rule kinds come from ``is_a``: a stand-in of a subtype is its base."""
    import xml.etree.ElementTree as ET

    xsi = "http://www.w3.org/2001/XMLSchema-instance"
    element = ET.fromstring(
        f'<val xmlns:xsi="{xsi}" xsi:type="ClusterAntiAffinityRuleSpec"><name>a</name></val>'
    )
    rule = value(element)
    assert is_a(rule, vim.cluster.AntiAffinityRuleSpec)
    assert is_a(rule, vim.cluster.RuleInfo)
    assert not is_a(rule, vim.cluster.AffinityRuleSpec)
    assert is_a(vim.cluster.AffinityRuleSpec(), vim.cluster.RuleInfo)
    assert not is_a(None, vim.cluster.RuleInfo)


def _devices(si: Any, names: list[str]) -> None:
    """Devices that tie a VM to its host, one kind per VM (pre-flight's cases)."""
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    by_name = {v.name: v for v in view.view}
    D = vim.vm.device
    connected = D.VirtualDevice.ConnectInfo(connected=True, startConnected=True)
    devices = [
        D.VirtualPCIPassthrough(
            key=-2,
            backing=D.VirtualPCIPassthrough.DeviceBackingInfo(
                id="0000:3b:00.0", deviceId="1eb8", systemId="s", vendorId=0x10DE, deviceName="G"
            ),
        ),
        D.VirtualPCIPassthrough(key=-3, backing=D.VirtualPCIPassthrough.VmiopBackingInfo(vgpu="g")),
        D.VirtualSerialPort(
            key=-4,
            backing=D.VirtualSerialPort.DeviceBackingInfo(deviceName="/dev/ttyS0"),
            connectable=connected,
        ),
    ]
    for name, dev in zip(names, devices, strict=True):
        spec = vim.vm.ConfigSpec(deviceChange=[D.VirtualDeviceSpec(operation="add", device=dev)])
        wait_task(by_name[name].ReconfigVM_Task(spec))
    view.DestroyView()


def test_plain_step_reread_is_the_pyvmomi_one_devices_included(sim: Any) -> None:
    """A step's re-read (:func:`live.objects_snapshot`): its VM with its devices (what
    pre-flight refuses to move), its hosts with their datastores, one of them gone."""
    hosts, vms = inventory(sim)
    tied = ["DC0_C0_VM0", "DC0_C0_VM1", "DC0_C0_VM2"]
    si = connect(sim_config(sim).vcenters[0])
    try:
        _devices(si, tied)
    finally:
        disconnect(si)
    sim.fail_host("DC0_C0_H0")
    vm_ids = [vms[n]["moid"] for n in [*tied, "DC0_C0_VM3"]] + ["vm-does-not-exist"]
    host_ids = [h["moid"] for h in hosts.values()]
    with sim_session(sim) as session:
        plain = session.call(live.objects_snapshot, vm_ids, host_ids)
        through_pyvmomi = session.call(live.objects_snapshot, vm_ids, host_ids, False)
    ties = [plain.vms[vms[n]["moid"]].host_tied for n in tied]
    assert ties[0].startswith("has a PCI passthrough device"), ties
    assert ties[1].startswith("has a vGPU device"), ties
    assert ties[2].startswith("has a device backed by the host"), ties
    assert not plain.vms[vms["DC0_C0_VM3"]["moid"]].host_tied
    assert "vm-does-not-exist" not in plain.vms
    assert all(h.datastores for h in plain.hosts.values())
    assert _same(plain) == _same(through_pyvmomi)


QUESTION_ANSWER = b"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:xsd="http://www.w3.org/2001/XMLSchema"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>
<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval>
<objects><obj type="Task">task-7</obj>
<propSet><name>info.state</name><val xsi:type="TaskInfoState">running</val></propSet>
<propSet><name>info.cancelable</name><val xsi:type="xsd:boolean">true</val></propSet>
</objects>
<objects><obj type="VirtualMachine">vm-9</obj>
<propSet><name>runtime.question</name><val xsi:type="VirtualMachineQuestionInfo">
<id>_vmx1</id><text>msg.uuid.altered: moved or copied?</text>
<choice><valueIsReadonly>false</valueIsReadonly>
<choiceInfo><label>Cancel</label><summary>Cancel</summary><key>0</key></choiceInfo>
<choiceInfo><label>button.uuid.movedTheVM</label><summary>I Moved It</summary><key>1</key>
</choiceInfo>
<choiceInfo><label>button.uuid.copiedTheVM</label><summary>I Copied It</summary><key>2</key>
</choiceInfo>
<defaultIndex>2</defaultIndex></choice></val></propSet>
</objects>
</returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"""


def test_a_power_on_poll_reads_task_and_question_in_one_plain_answer() -> None:
    """wait_for's poll (actions._poll): the task's state and the re-registered VM's
    "moved or copied" question from one answer, answered "moved" as before."""

    class Session:
        def retrieve(self, specs: Any, objs: Any, *, plain: bool = False) -> list[Any]:
            assert plain
            return list(plain_reads.result(QUESTION_ANSWER).objects)

    class VM:
        _moId = "vm-9"  # noqa: N815 - pyVmomi's attribute
        answered: list[tuple[str, str]] = []

        def AnswerVM(self, questionId: str, answerChoice: str) -> None:  # noqa: N802, N803
            self.answered.append((questionId, answerChoice))

    task, vm = vim.Task("task-7"), VM()
    polled = actions._poll(Session(), task, vim.VirtualMachine("vm-9"))  # type: ignore[arg-type]  # noqa: SLF001, E501
    assert polled is not None
    state, result, cancelable, question = polled
    assert (state, result, cancelable) == ("running", None, True)
    actions._answer(vm, question)  # noqa: SLF001
    assert vm.answered == [("_vmx1", "1")]
