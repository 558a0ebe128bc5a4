"""The application-failure group: the application heartbeat inside a protected VM.

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
    ]
