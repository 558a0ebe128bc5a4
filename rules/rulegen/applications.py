"""The application-failure group: the application heartbeat inside a protected VM, and
the application agent's own reset request (``guest.appState`` = ``appStateNeedReset``).

Separate from ``vms.py`` because an application can fail while its guest OS is fine; when
the guest hangs too, ``alertmanager.py`` inhibits this alert under VsphereVmHeartbeatFailure
so the VM is reset once, not twice.
"""

from __future__ import annotations

from .config import Settings
from .model import Alert
from .promql import VM, VM_RUNNING, heartbeat_age, never_green, vm_alert_expr

GROUP = "vsphere-application-failure"


def alerts(s: Settings) -> list[Alert]:
    window = s.failure_interval.text
    return [
        Alert(
            name="VsphereVmAppHeartbeatFailure",
            group=GROUP,
            scope="vm",
            expr=vm_alert_expr(
                heartbeat_age("vsphere_vm_app_heartbeat_last_green_timestamp_seconds"),
                'vsphere_vm_app_heartbeat_status{status="red"} == 1',
                never_green("vsphere_vm_app_heartbeat_status", window),
                *VM_RUNNING,
            ),
            for_=s.app_for,
            severity="warning",
            remediation="reset_vm",
            summary="The application in VM {{ $labels.vm }} stopped heart-beating",
            description=f"The application heartbeat of protected {VM} has been red, not green "
            "for {{ $value | humanizeDuration }}, past its failure interval and minimum uptime. "
            "The remediator resets the VM (reset_vm).",
        ),
        Alert(
            # GuestInfo.appState (vSphere API 5.5): "If vSphere HA is enabled and the vm is
            # configured for Application Monitoring and this field's value is
            # appStateNeedReset then HA will attempt immediately reset the vm." No failure
            # interval; the minimum uptime (VM_RUNNING) and the reset budget still apply.
            name="VsphereVmAppStateNeedReset",
            group=GROUP,
            scope="vm",
            expr=vm_alert_expr(
                "max by (vcenter, vm_id, vm) "
                '(vsphere_vm_guest_app_state{state="appStateNeedReset"})',
                'vsphere_vm_guest_app_state{state="appStateNeedReset"} == 1',
                *VM_RUNNING,
            ),
            for_=s.app_need_reset_for,
            severity="warning",
            remediation="reset_vm",
            summary="The application agent in VM {{ $labels.vm }} asks for a reset",
            description=f"The application agent in protected {VM} set guest.appState to "
            "appStateNeedReset. vSphere HA resets such a VM at once where application "
            "monitoring is on; the remediator resets it (reset_vm) on the same rules where it "
            "is responsible.",
        ),
    ]
