"""remediator.ha_watch: one annotation per decision (responsibility, priorities, overdue)."""

from __future__ import annotations

from dataclasses import replace

from remediator.ha_settings import ClusterHA, HAView, VmHAFacts, VmOverride
from remediator.ha_watch import HAWatchConfig, annotate, next_look
from remediator.model import ClusterState, HostState, Snapshot, VMState

HOST = HostState("host-1", "H1", cluster_id="c1", connection_state="notResponding")
VMS = {
    f"vm-{i}": VMState(
        f"vm-{i}", f"VM{i}", host_id="host-1", power_state="poweredOn", priority="low"
    )
    for i in range(4)
}
SNAP = Snapshot("vc1", 0.0, ClusterState("c1", "C1", ha_enabled=True), {"host-1": HOST}, VMS)
HA_ON = ClusterHA(
    "c1",
    "C1",
    enabled=True,
    default_priority="medium",
    default_priority_set=True,
    overrides={
        "vm-1": VmOverride(restart_priority="disabled"),
        "vm-3": VmOverride(restart_priority="highest"),
    },
)
FACTS = {m: VmHAFacts(m, v.name, "host-1", "poweredOn", das_protected=True) for m, v in VMS.items()}
FACTS["vm-2"] = replace(FACTS["vm-2"], das_protected=False)


def test_annotate_on_an_ha_cluster() -> None:
    a = annotate(SNAP, HAView(HA_ON, FACTS), HAWatchConfig(), failed_for=60)
    assert a.actor("vm-0") == "vsphere-ha" and not a.may_restart("vm-0")
    assert a.actor("vm-1") == "nobody" and not a.snapshot.vms["vm-1"].protected
    assert a.actor("vm-2") == "remediator" and a.may_restart("vm-2")
    assert a.snapshot.vms["vm-0"].priority == "medium"  # the cluster's default, not the stack's low
    assert a.snapshot.vms["vm-3"].priority == "highest"
    assert a.overdue == ()
    assert a.memory["ha"]["vm-1"]["actor"] == "nobody"
    assert next_look(a, since=1000, now=1060) == 1000 + 2100


def test_overdue_alerts_and_acts_only_with_the_opt_in() -> None:
    a = annotate(SNAP, HAView(HA_ON, FACTS), HAWatchConfig(), failed_for=2200)
    assert set(a.overdue) == {"vm-0", "vm-3"} and not a.may_restart("vm-0")
    assert a.memory["ha_overdue"] == ["vm-0", "vm-3"]
    opted = annotate(
        SNAP, HAView(HA_ON, FACTS), HAWatchConfig(act_when_overdue=True), failed_for=2200
    )
    assert opted.may_restart("vm-0")
    short = annotate(SNAP, HAView(HA_ON, FACTS), HAWatchConfig(overdue_seconds=600), failed_for=601)
    assert "vm-0" in short.overdue


def test_without_ha_or_without_a_read() -> None:
    off = annotate(
        SNAP, HAView(replace(HA_ON, enabled=False), FACTS), HAWatchConfig(), failed_for=5
    )
    assert off.actor("vm-0") == "remediator" and off.snapshot.vms["vm-0"].priority == "low"
    assert off.actor("vm-1") == "nobody"  # a per-VM disabled is honoured without HA
    none = annotate(SNAP, None, HAWatchConfig(), failed_for=5)
    assert all(none.actor(m) == "remediator" for m in VMS)
