"""The VM-failure group: protected VMs whose guest hung or that stopped unexpectedly.

It applies vSphere HA's VM-monitoring rule (failure interval and minimum uptime, per
cluster or from the sensitivity preset, read from ``recording.py``'s per-VM series) so the
stack resets the same VMs vSphere HA would, no sooner. Only HA-protected VMs count.
"""

from __future__ import annotations

from .config import Settings
from .model import Alert
from .promql import VM, VM_RUNNING, heartbeat_age, never_green, vm_alert_expr

GROUP = "vsphere-vm-failure"


def alerts(s: Settings) -> list[Alert]:
    window = s.failure_interval.text
    return [
        Alert(
            name="VsphereVmHeartbeatFailure",
            group=GROUP,
            scope="vm",
            expr=vm_alert_expr(
                heartbeat_age("vsphere_vm_guest_heartbeat_last_green_timestamp_seconds"),
                never_green("vsphere_vm_guest_heartbeat_status", window),
                *VM_RUNNING,
            ),
            for_=s.vm_for,
            severity="warning",
            remediation="reset_vm",
            summary="VM {{ $labels.vm }} lost its guest heartbeat",
            description=f"The guest heartbeat of protected {VM} has not been green for "
            "{{ $value | humanizeDuration }}, past its failure interval and minimum uptime. "
            "The remediator resets the VM (reset_vm).",
        ),
        Alert(
            name="VsphereVmPoweredOffUnexpectedly",
            group=GROUP,
            scope="vm",
            expr=vm_alert_expr(
                'max by (vcenter, vm_id, vm) (vsphere_vm_power_state{state="poweredOff"}) == 1',
                "max_over_time(vsphere_vm_power_state"
                f'{{state="poweredOn"}}[{s.vm_powered_off_lookback.text}]) == 1',
            ),
            for_=s.vm_powered_off_for,
            severity="warning",
            remediation="restart_vm",
            summary="Protected VM {{ $labels.vm }} powered off",
            description=f"Protected {VM} has been powered off for {s.vm_powered_off_for.text} "
            f"after running within {s.vm_powered_off_lookback.text}. The remediator powers it "
            "on (restart_vm) unless a person powered it off.",
        ),
    ]
