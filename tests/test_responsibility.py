"""remediator.responsibility: who acts on a failed VM (vSphere HA / remediator / nobody),
restart priority from vSphere first, and vSphere HA's reset rules."""

from __future__ import annotations

from dataclasses import replace

import pytest

from remediator.ha_settings import ClusterHA, ToolsMonitoring, VmHAFacts, VmOverride
from remediator.responsibility import (
    HA,
    NOBODY,
    REMEDIATOR,
    IOActivity,
    ha_overdue_seconds,
    overdue,
    reset_responsibility,
    reset_verdict,
    resolve_priority,
    restart_responsibility,
)

HA_ON = ClusterHA(
    "c1",
    "C1",
    enabled=True,
    host_monitoring=True,
    default_priority="medium",
    default_priority_set=True,
)
HA_OFF = replace(HA_ON, enabled=False)
VM = VmHAFacts("vm-1", "web01", host_id="host-1", power_state="poweredOn", das_protected=True)


def test_ha_protected_vm_is_has_and_watched_for_its_whole_retry_schedule() -> None:
    r = restart_responsibility(HA_ON, VM, "medium")
    assert r.actor == HA and not r.remediator_acts
    assert r.overdue_after == ha_overdue_seconds(5) == 120 * 15 + 300  # last retry at 30 min
    assert not overdue(r, 600) and overdue(r, 2100)
    assert not r.act_when_overdue
    opted = restart_responsibility(HA_ON, VM, "medium", overdue_seconds=900, act_when_overdue=True)
    assert opted.overdue_after == 900 and opted.act_when_overdue and "acts" in opted.reason
    fewer = replace(HA_ON, options={"das.maxvmrestartcount": "2"})
    assert restart_responsibility(fewer, VM, "medium").overdue_after == 120 + 300


def test_host_monitoring_off_means_nobody() -> None:
    r = restart_responsibility(replace(HA_ON, host_monitoring=False), VM, "high")
    assert r.actor == NOBODY and "host monitoring is disabled" in r.reason


def test_ha_off_or_unprotected_is_the_remediators() -> None:
    assert restart_responsibility(HA_OFF, VM, "medium").actor == REMEDIATOR
    assert restart_responsibility(None, VM, "medium").actor == REMEDIATOR
    for prot in (False, None):
        r = restart_responsibility(HA_ON, replace(VM, das_protected=prot), "medium")
        assert r.actor == REMEDIATOR and "HA will not restart it" in r.reason


@pytest.mark.parametrize(
    ("facts", "words"),
    [
        ({"managed_by": "com.vmware.vim.eam/cluster-agent"}, "vCLS"),
        ({"ft_role": 2}, "Fault Tolerance secondary"),
        ({"ft_role": 1}, "Fault Tolerance primary"),
        ({"host_tied_devices": ("vgpu",)}, "vgpu"),
        ({"local_only_storage": True}, "one host only"),
    ],
)
def test_system_vms_are_never_touched(facts: dict[str, object], words: str) -> None:
    vm = replace(VM, **facts)  # type: ignore[arg-type]
    for cluster in (HA_ON, HA_OFF, None):
        r = restart_responsibility(cluster, vm, "high")
        assert r.actor == NOBODY and words in r.reason


def test_priority_from_vsphere_first() -> None:
    with_override = replace(HA_ON, overrides={"vm-1": VmOverride(restart_priority="high")})
    assert resolve_priority(with_override, "vm-1", "low") == ("high", "vSphere HA per-VM override")
    assert resolve_priority(with_override, "vm-2", "low")[0] == "medium"  # cluster default
    cluster_prio = replace(
        HA_ON, overrides={"vm-1": VmOverride(restart_priority="clusterRestartPriority")}
    )
    assert resolve_priority(cluster_prio, "vm-1", "low")[0] == "medium"
    # without HA, the cluster's dormant default does not mask the stack's rules...
    assert resolve_priority(HA_OFF, "vm-1", "low") == (
        "low",
        "the stack's custom attribute / rules / default",
    )
    # ...but disabled is honoured everywhere
    assert (
        resolve_priority(replace(HA_OFF, default_priority="disabled"), "vm-1", "high")[0]
        == "disabled"
    )
    off_override = replace(HA_OFF, overrides={"vm-1": VmOverride(restart_priority="disabled")})
    r = restart_responsibility(off_override, VM, "high")
    assert (
        r.actor == NOBODY
        and "disabled" in r.reason
        and r.priority_source == "vSphere HA per-VM override"
    )
    assert (
        restart_responsibility(off_override, replace(VM, moid="vm-2"), "high").actor == REMEDIATOR
    )
    assert (
        restart_responsibility(HA_ON, VM, "disabled").actor == HA
    )  # the cluster's default wins on HA


def test_resets_on_ha_clusters_are_has_or_nobodys() -> None:
    stack = ToolsMonitoring("vmMonitoringOnly")
    r, tools = reset_responsibility(replace(HA_ON, vm_monitoring="vmMonitoringDisabled"), VM, stack)
    assert r.actor == NOBODY and "no response to heartbeat loss" in r.reason
    r, tools = reset_responsibility(replace(HA_ON, vm_monitoring="vmMonitoringOnly"), VM, stack)
    assert r.actor == HA
    r, _ = reset_responsibility(
        replace(HA_ON, vm_monitoring="vmMonitoringOnly"), replace(VM, das_protected=False), stack
    )
    assert r.actor == NOBODY
    per_vm_off = replace(
        HA_ON,
        vm_monitoring="vmAndAppMonitoring",
        overrides={
            "vm-1": VmOverride(
                vm_monitoring="vmMonitoringDisabled", tools=ToolsMonitoring("vmMonitoringDisabled")
            )
        },
    )
    assert reset_responsibility(per_vm_off, VM, stack)[0].actor == NOBODY


def test_resets_without_ha_follow_the_vm_override_then_the_stack() -> None:
    r, tools = reset_responsibility(
        HA_OFF, VM, ToolsMonitoring("vmMonitoringOnly", failure_interval=45)
    )
    assert r.actor == REMEDIATOR and tools.failure_interval == 45
    assert (
        reset_responsibility(HA_OFF, VM, ToolsMonitoring("vmMonitoringDisabled"))[0].actor == NOBODY
    )
    vm_off = replace(
        HA_OFF,
        overrides={
            "vm-1": VmOverride(
                tools=ToolsMonitoring("vmMonitoringDisabled"), vm_monitoring="vmMonitoringDisabled"
            )
        },
    )
    assert reset_responsibility(vm_off, VM, ToolsMonitoring("vmMonitoringOnly"))[0].actor == NOBODY
    vcls = replace(VM, managed_by="com.vmware.vim.eam")
    assert (
        reset_responsibility(HA_OFF, vcls, ToolsMonitoring("vmMonitoringOnly"))[0].actor == NOBODY
    )


TOOLS = ToolsMonitoring(
    "vmAndAppMonitoring",
    failure_interval=30,
    min_uptime=120,
    max_failures=3,
    max_failure_window=3600,
)
IDLE = IOActivity(0, 0, 120)
NOW = 100_000.0


def verdict(**kw: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = {
        "now": NOW,
        "guest_heartbeat": "red",
        "app_heartbeat": "appStatusGreen",
        "app_state": "none",
        "failed_for": 60.0,
        "boot_time": NOW - 3600,
        "recent_resets": [],
        "io": IDLE,
        "io_interval": 120.0,
    }
    args.update(kw)
    tools = args.pop("tools", TOOLS)
    return reset_verdict(tools, **args)  # type: ignore[arg-type]


def test_reset_rules() -> None:
    assert verdict().reset
    assert verdict(failed_for=10).withheld == "failure-interval"
    assert verdict(boot_time=NOW - 60).withheld == "min-uptime"
    assert verdict(recent_resets=[NOW - 100, NOW - 200, NOW - 300]).withheld == "max-resets"
    assert verdict(recent_resets=[NOW - 4000, NOW - 5000, NOW - 6000]).reset  # outside the window
    no_window = replace(TOOLS, max_failure_window=None)
    assert (
        verdict(tools=no_window, recent_resets=[NOW - 9e5, NOW - 8e5, NOW - 7e5]).withheld
        == "max-resets"
    )
    assert verdict(guest_heartbeat="green").withheld == "no-trigger"


def test_io_check() -> None:
    busy = verdict(io=IOActivity(disk_kbps=850, net_kbps=12, window_seconds=120))
    assert not busy.reset and busy.withheld == "io" and "still flowing" in busy.reason
    assert verdict(io=None).withheld == "io-unknown"
    assert verdict(io=None, io_required=False).reset
    assert verdict(io=IOActivity(0, 3, 120)).withheld == "io"


def test_app_state_need_reset() -> None:
    v = verdict(
        guest_heartbeat="green", app_state="appStateNeedReset", io=IOActivity(500, 500, 120)
    )
    assert v.reset and "appStateNeedReset" in v.reason  # the agent asked: no I/O check
    assert (
        verdict(guest_heartbeat="green", app_state="appStateNeedReset", boot_time=NOW - 10).withheld
        == "min-uptime"
    )
    only_vm = replace(TOOLS, vm_monitoring="vmMonitoringOnly")
    assert (
        verdict(tools=only_vm, guest_heartbeat="green", app_state="appStateNeedReset").withheld
        == "no-trigger"
    )
    assert verdict(guest_heartbeat="green", app_heartbeat="appStatusRed").reset
    assert (
        verdict(tools=only_vm, guest_heartbeat="green", app_heartbeat="appStatusRed").withheld
        == "no-trigger"
    )
