"""remediator.ha_settings against the simulator: HA settings set the way an admin sets them
(ReconfigureComputeResource_Task, modify=True), read back the way the remediator reads them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim

from remediator.ha_settings import ClusterHA, HAView, read_ha
from remediator.live import Session

from .remediator_sim import sim_session

pytestmark = pytest.mark.slow


@pytest.fixture
def live(sim: Any) -> Iterator[tuple[Any, Session]]:
    with sim_session(sim) as session:
        yield sim, session


def cluster_id(sim: Any, name: str = "DC0_C0") -> str:
    return str(next(c["moid"] for c in sim.inventory()["clusters"] if c["name"] == name))


def vm_id(sim: Any, name: str) -> str:
    return str(sim.get_vm(name)["moid"])


def reconfigure(session: Session, cid: str, spec: Any) -> None:
    cluster = session.stub_obj(vim.ClusterComputeResource, cid)
    WaitForTask(cluster.ReconfigureComputeResource_Task(spec=spec, modify=True))


def view(sim: Any, session: Session, name: str = "DC0_C0") -> tuple[ClusterHA, HAView]:
    v = read_ha(session, cluster_id(sim, name))
    assert v.cluster is not None
    return v.cluster, v


def test_defaults_as_the_simulator_builds_them(live: tuple[Any, Session]) -> None:
    sim, session = live
    ha, v = view(sim, session)
    assert ha.enabled and ha.host_monitoring
    assert ha.vm_monitoring == "vmAndAppMonitoring"
    assert ha.default_priority == "medium"
    assert (ha.tools.failure_interval, ha.tools.min_uptime, ha.tools.max_failures) == (30, 120, 3)
    assert ha.tools.max_failure_window == 3600
    assert ha.io_stats_interval == 120 and ha.max_restart_count == 5
    assert len(v.vms) == 6
    assert all(f.das_protected is True for f in v.vms.values())
    assert not any(f.managed_by or f.ft_role or f.host_tied_devices for f in v.vms.values())
    assert all(not f.local_only_storage for f in v.vms.values())  # LocalDS_0 is on every host


def test_cluster_settings_reconfigured_are_read_back(live: tuple[Any, Session]) -> None:
    sim, session = live
    cid = cluster_id(sim)
    spec = vim.cluster.ConfigSpecEx(
        dasConfig=vim.cluster.DasConfigInfo(
            hostMonitoring="disabled",
            vmMonitoring="vmMonitoringOnly",
            defaultVmSettings=vim.cluster.DasVmSettings(
                restartPriority="high",
                vmToolsMonitoringSettings=vim.cluster.VmToolsMonitoringSettings(
                    failureInterval=60, maxFailureWindow=-1
                ),
            ),
            option=[
                vim.option.OptionValue(key="das.iostatsinterval", value="60"),
                vim.option.OptionValue(key="das.maxvmrestartcount", value="3"),
            ],
        )
    )
    reconfigure(session, cid, spec)
    ha, _ = view(sim, session)
    assert ha.enabled  # untouched by a spec that does not set it (modify=True)
    assert not ha.host_monitoring
    assert ha.vm_monitoring == "vmMonitoringOnly"
    assert ha.default_priority == "high"
    assert ha.tools.failure_interval == 60
    assert ha.tools.min_uptime == 120  # kept: unset fields do not change
    assert ha.tools.max_failure_window is None  # -1: no window
    assert ha.io_stats_interval == 60 and ha.max_restart_count == 3
    # the other cluster is untouched
    other, _ = view(sim, session, "DC0_C1")
    assert other.host_monitoring and other.default_priority == "medium"


def test_ha_disabled_leaves_vms_unprotected(live: tuple[Any, Session]) -> None:
    sim, session = live
    reconfigure(
        session,
        cluster_id(sim),
        vim.cluster.ConfigSpecEx(dasConfig=vim.cluster.DasConfigInfo(enabled=False)),
    )
    ha, v = view(sim, session)
    assert not ha.enabled
    assert all(f.das_protected is None for f in v.vms.values())


def test_per_vm_overrides_added_and_edited(live: tuple[Any, Session]) -> None:
    sim, session = live
    cid = cluster_id(sim)
    vm0, vm1 = vm_id(sim, "DC0_C0_VM0"), vm_id(sim, "DC0_C0_VM1")
    vm0_ref = session.stub_obj(vim.VirtualMachine, vm0)
    vm1_ref = session.stub_obj(vim.VirtualMachine, vm1)
    add = vim.cluster.ConfigSpecEx(
        dasVmConfigSpec=[
            vim.cluster.DasVmConfigSpec(
                operation="add",
                info=vim.cluster.DasVmConfigInfo(
                    key=vm0_ref, dasSettings=vim.cluster.DasVmSettings(restartPriority="disabled")
                ),
            ),
            vim.cluster.DasVmConfigSpec(
                operation="add",
                info=vim.cluster.DasVmConfigInfo(
                    key=vm1_ref,
                    dasSettings=vim.cluster.DasVmSettings(
                        restartPriority="clusterRestartPriority",
                        vmToolsMonitoringSettings=vim.cluster.VmToolsMonitoringSettings(
                            clusterSettings=False, vmMonitoring="vmMonitoringDisabled"
                        ),
                    ),
                ),
            ),
        ]
    )
    reconfigure(session, cid, add)
    ha, _ = view(sim, session)
    assert ha.priority_override(vm0) == "disabled"
    assert ha.priority_override(vm1) == ""  # clusterRestartPriority: the cluster's
    assert ha.vm_monitoring_of(vm1) == "vmMonitoringDisabled"
    assert ha.vm_monitoring_of(vm0) == "vmAndAppMonitoring"
    # vcsim merges only restartPriority of an edit; vCenter merges every set field
    edit = vim.cluster.ConfigSpecEx(
        dasVmConfigSpec=[
            vim.cluster.DasVmConfigSpec(
                operation="edit",
                info=vim.cluster.DasVmConfigInfo(
                    key=vm1_ref,
                    dasSettings=vim.cluster.DasVmSettings(
                        vmToolsMonitoringSettings=vim.cluster.VmToolsMonitoringSettings(
                            clusterSettings=False,
                            vmMonitoring="vmMonitoringOnly",
                            failureInterval=90,
                        )
                    ),
                ),
            )
        ]
    )
    reconfigure(session, cid, edit)
    ha, _ = view(sim, session)
    assert ha.vm_monitoring_of(vm1) == "vmMonitoringOnly"
    assert ha.tools_of(vm1).failure_interval == 90
    assert ha.priority_override(vm0) == "disabled"


def test_invalid_value_is_refused_like_vcenter(live: tuple[Any, Session]) -> None:
    sim, session = live
    spec = vim.cluster.ConfigSpecEx(
        dasConfig=vim.cluster.DasConfigInfo(
            defaultVmSettings=vim.cluster.DasVmSettings(restartPriority="urgent")
        )
    )
    with pytest.raises(vmodl_fault("InvalidArgument")):
        reconfigure(session, cluster_id(sim), spec)
    ha, _ = view(sim, session)
    assert ha.default_priority == "medium"


def vmodl_fault(name: str) -> type[BaseException]:
    from pyVmomi import vmodl

    fault: type[BaseException] = getattr(vmodl.fault, name)
    return fault


def test_orchestration_and_dependency_rules(live: tuple[Any, Session]) -> None:
    sim, session = live
    cid = cluster_id(sim)
    ref = {
        n: session.stub_obj(vim.VirtualMachine, vm_id(sim, n)) for n in ("DC0_C0_VM0", "DC0_C0_VM1")
    }
    spec = vim.cluster.ConfigSpecEx(
        orchestration=vim.cluster.OrchestrationInfo(
            defaultVmReadiness=vim.cluster.VmReadiness(
                readyCondition="guestHbStatusGreen", postReadyDelay=10
            )
        ),
        groupSpec=[
            vim.cluster.GroupSpec(
                operation="add", info=vim.cluster.VmGroup(name="db", vm=[ref["DC0_C0_VM0"]])
            ),
            vim.cluster.GroupSpec(
                operation="add", info=vim.cluster.VmGroup(name="app", vm=[ref["DC0_C0_VM1"]])
            ),
        ],
        rulesSpec=[
            vim.cluster.RuleSpec(
                operation="add",
                info=vim.cluster.DependencyRuleInfo(
                    name="app-after-db", enabled=True, vmGroup="app", dependsOnVmGroup="db"
                ),
            )
        ],
        vmOrchestrationSpec=[
            vim.cluster.VmOrchestrationSpec(
                operation="add",
                info=vim.cluster.VmOrchestrationInfo(
                    vm=ref["DC0_C0_VM1"],
                    vmReadiness=vim.cluster.VmReadiness(
                        readyCondition="appHbStatusGreen", postReadyDelay=-1
                    ),
                ),
            )
        ],
    )
    reconfigure(session, cid, spec)
    ha, _ = view(sim, session)
    vm0, vm1 = vm_id(sim, "DC0_C0_VM0"), vm_id(sim, "DC0_C0_VM1")
    assert ha.readiness_of(vm0).condition == "guestHbStatusGreen"
    assert ha.readiness_of(vm0).post_ready_delay == 10
    assert ha.readiness_of(vm1).condition == "appHbStatusGreen"
    assert ha.readiness_of(vm1).post_ready_delay == 10  # -1: the cluster's
    [dep] = ha.dependencies
    assert dep.vms == {vm1} and dep.depends_on == {vm0}


def test_system_vm_facts(live: tuple[Any, Session]) -> None:
    sim, session = live
    sim.set_vm_ha(
        "DC0_C0_VM0", managed_by={"extensionKey": "com.vmware.vim.eam", "type": "cluster-agent"}
    )
    sim.set_vm_ha("DC0_C0_VM1", ft_role=2)
    sim.set_vm_ha("DC0_C0_VM2", devices=["vgpu"])
    sim.set_vm_ha("DC0_C0_VM3", devices=["pciPassthrough", "sriov"], app_state="appStateNeedReset")
    sim.set_vm_ha("DC0_C0_VM4", das_protected=False)
    _, v = view(sim, session)
    facts = {f.name: f for f in v.vms.values()}
    assert facts["DC0_C0_VM0"].managed_by == "com.vmware.vim.eam/cluster-agent"
    assert facts["DC0_C0_VM1"].ft_role == 2
    assert facts["DC0_C0_VM2"].host_tied_devices == ("vgpu",)
    assert facts["DC0_C0_VM3"].host_tied_devices == ("pciPassthrough", "sriov")
    assert facts["DC0_C0_VM3"].app_state == "appStateNeedReset"
    assert facts["DC0_C0_VM4"].das_protected is False
    assert facts["DC0_C0_VM5"].das_protected is True


def test_sim_ha_api_rejects_bad_input(sim: Any) -> None:
    from sim.harness import SimulatorError

    for props in ({"ft_role": 7}, {"devices": ["gpu"]}, {"app_state": "broken"}, {"bogus": 1}):
        with pytest.raises(SimulatorError) as err:
            sim.set_vm_ha("DC0_C0_VM0", **props)
        assert err.value.status == 400
    with pytest.raises(SimulatorError) as err:
        sim.power_off_vm("DC0_C0_VM0", "meteor")
    assert err.value.status == 400


def test_guest_io_as_ha_reads_it(live: tuple[Any, Session]) -> None:
    """A healthy guest does I/O; a hung one (red heartbeat injected) or a powered-off one
    does none; a busy guest whose Tools service hung keeps its I/O."""
    from remediator.ha_settings import read_io

    sim, session = live
    ids = {n: vm_id(sim, n) for n in ("DC0_C0_VM0", "DC0_C0_VM1", "DC0_C0_VM2", "DC0_C0_VM3")}
    healthy = read_io(session, ids["DC0_C0_VM0"], 120)
    assert healthy is not None and not healthy.idle and healthy.window_seconds == 120
    sim.set_vm("DC0_C0_VM1", guestHeartbeatStatus="red")
    hung = read_io(session, ids["DC0_C0_VM1"], 120)
    assert hung is not None and hung.idle
    sim.set_vm("DC0_C0_VM2", guestHeartbeatStatus="red")
    sim.set_vm_ha("DC0_C0_VM2", io="busy")
    busy = read_io(session, ids["DC0_C0_VM2"], 120)
    assert busy is not None and busy.disk_kbps >= 1 and busy.net_kbps >= 1
    sim.set_vm("DC0_C0_VM3", powerState="poweredOff")
    off = read_io(session, ids["DC0_C0_VM3"], 60)
    assert off is not None and off.idle and off.window_seconds == 60


def test_read_only_some_vms(live: tuple[Any, Session]) -> None:
    sim, session = live
    sim.set_vm_ha("DC0_C0_VM2", devices=["vgpu"])
    ids = [vm_id(sim, "DC0_C0_VM2"), vm_id(sim, "DC0_C0_VM3")]
    v = read_ha(session, cluster_id(sim), ids)
    assert v.cluster is not None and v.cluster.enabled
    assert sorted(v.vms) == sorted(ids)
    assert v.vms[ids[0]].host_tied_devices == ("vgpu",) and not v.vms[ids[1]].local_only_storage
