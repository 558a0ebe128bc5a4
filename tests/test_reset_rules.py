"""vSphere HA's reset rules in the pure policy: one verdict (``reset_verdict``) for guest and
application heartbeats and for the application agent's ``appStateNeedReset``; the cluster's
``maxFailureWindow: -1`` (no window) counts every reset the journal holds."""

from __future__ import annotations

import os

import pytest
from pyVmomi import vim

from remediator.config import parse_remediator
from remediator.live import _monitoring
from remediator.model import VMMonitoring
from remediator.policy import DEFER, PLAN, REFUSE, SKIP, Request, decide_reset
from vcenter.config import ConfigError

from .remediator_fixtures import TOKEN_ENV, host, rconfig, snapshot, vm

DAY = 86400.0
NOW = 100 * DAY
REQ = Request("reset_vm", "vc1", vm_id="vm-1", since=NOW - 60)


def asks(**kw: object) -> object:
    return vm("vm-1", "host-1", app_state="appStateNeedReset", boot_time=NOW - DAY, **kw)


def test_app_state_need_reset_resets_at_once_with_app_monitoring() -> None:
    cfg = rconfig()  # the stack's default mode: vmAndAppMonitoring
    just_now = Request("reset_vm", "vc1", vm_id="vm-1", since=NOW)  # no failure interval
    d = decide_reset(just_now, snapshot([host("host-1")], [asks()], ha=False), cfg, NOW, [])
    assert d.outcome == PLAN and "appStateNeedReset" in d.reason, d.reason


def test_app_state_need_reset_needs_app_monitoring() -> None:
    cfg = rconfig(vm_monitoring={"mode": "vmMonitoringOnly"})
    d = decide_reset(REQ, snapshot([host("host-1")], [asks()], ha=False), cfg, NOW, [])
    assert d.outcome == SKIP and "vmAndAppMonitoring" in d.reason, d.reason
    off = rconfig(vm_monitoring={"mode": "vmMonitoringDisabled"})
    d = decide_reset(REQ, snapshot([host("host-1")], [asks()], ha=False), off, NOW, [])
    assert d.outcome == SKIP and "vmMonitoringDisabled" in d.reason, d.reason
    # vmMonitoringOnly still resets a lost guest heartbeat, never an application heartbeat
    red = vm("vm-1", "host-1", guest_heartbeat="red", boot_time=NOW - DAY)
    assert decide_reset(REQ, snapshot([host("host-1")], [red], ha=False), cfg, NOW, []).outcome == (
        PLAN
    )
    app = vm("vm-1", "host-1", app_heartbeat="appStatusRed", boot_time=NOW - DAY)
    d = decide_reset(REQ, snapshot([host("host-1")], [app], ha=False), cfg, NOW, [])
    assert d.outcome == SKIP and "vmAndAppMonitoring" in d.reason, d.reason


def test_app_state_ok_cancels_and_min_uptime_holds() -> None:
    cfg = rconfig()
    ok = vm("vm-1", "host-1", app_state="appStateOk", boot_time=NOW - DAY)
    d = decide_reset(REQ, snapshot([host("host-1")], [ok], ha=False), cfg, NOW, [])
    assert d.outcome == SKIP and "appStateOk" in d.reason
    young = vm("vm-1", "host-1", app_state="appStateNeedReset", boot_time=NOW - 200)
    early = Request("reset_vm", "vc1", vm_id="vm-1", since=NOW - 190)
    cfg = rconfig(vm_monitoring={"min_uptime_seconds": 120})
    d = decide_reset(early, snapshot([host("host-1")], [young], ha=False), cfg, NOW - 150, [])
    assert d.outcome == DEFER and d.retry_at == NOW - 200 + 120


def test_max_resets_per_window_and_no_window() -> None:
    cfg = rconfig(
        vm_monitoring={"max_resets": 9, "window_seconds": 60, "prefer_cluster_settings": True}
    )
    old = [NOW - 30 * DAY, NOW - 20 * DAY, NOW - 10 * DAY]
    windowed = VMMonitoring("vmMonitoringOnly", 30, 120, 3, 3600)
    snap = snapshot([host("host-1")], [asks()], ha=False, vm_monitoring=windowed)
    assert decide_reset(REQ, snap, cfg, NOW, old).outcome == PLAN  # the old ones left the window
    assert decide_reset(REQ, snap, cfg, NOW, [NOW - 30, NOW - 20, NOW - 10]).outcome == REFUSE
    # the cluster's maxFailureWindow -1: no window, every reset counts, however old
    never = VMMonitoring("vmMonitoringOnly", 30, 120, 3, -1.0)
    snap = snapshot([host("host-1")], [asks()], ha=False, vm_monitoring=never)
    d = decide_reset(REQ, snap, cfg, NOW, old)
    assert d.outcome == REFUSE and "no failure window" in d.reason, d.reason
    d = decide_reset(REQ, snap, cfg, NOW, old[:2])
    assert d.outcome == PLAN and "reset 3 of 3 ever" in d.reason, d.reason


def test_cluster_no_window_is_read_as_no_window() -> None:
    def config(window: int) -> vim.cluster.ConfigInfoEx:
        tools = vim.cluster.VmToolsMonitoringSettings(maxFailures=3, maxFailureWindow=window)
        das = vim.cluster.DasConfigInfo(
            enabled=False,
            vmMonitoring="vmMonitoringOnly",
            defaultVmSettings=vim.cluster.DasVmSettings(vmToolsMonitoringSettings=tools),
        )
        return vim.cluster.ConfigInfoEx(dasConfig=das)

    assert _monitoring(config(-1))[2].max_failure_window == -1.0
    assert _monitoring(config(3600))[2].max_failure_window == 3600.0
    assert _monitoring(config(0))[2].max_failure_window is None  # unset (vcsim reports 0)


def test_vm_monitoring_mode_is_validated() -> None:
    os.environ[TOKEN_ENV] = "x"
    with pytest.raises(ConfigError) as info:
        parse_remediator({"auth": "none", "vm_monitoring": {"mode": "vmMonitoringOn"}})
    assert info.value.key == "remediator.vm_monitoring.mode"
    assert "vmAndAppMonitoring" in str(info.value)
    assert rconfig().vm_monitoring.mode == "vmAndAppMonitoring"
