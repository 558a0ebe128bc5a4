"""The health group: what vCenter itself flags, and slow-burning trouble (issue 13).

Red vCenter alarms nobody acknowledged, red host hardware sensors (what Proactive HA acts
on), datastores nearly full (the critical tier beside capacity's warning) or promised far
beyond their size, guest filesystems nearly full, old snapshots, licences about to expire or
used beyond their count. None of these is a failure vSphere HA would act on, so every alert
here goes to people only (remediation none). Thresholds: the ``health`` section of
``rules/config.yml``, read through ``Settings.read``.
"""

from __future__ import annotations

from .config import Settings
from .model import Alert
from .promql import HOST, VM, host_alert_expr, pct, q, vm_alert_expr

GROUP = "vsphere-health"
DATASTORE = "datastore {{ $labels.datastore }} (vCenter {{ $labels.vcenter }})"
LICENSE = (
    "licence {{ $labels.license }} (key ...{{ $labels.key_suffix }}, vCenter {{ $labels.vcenter }})"
)


def alerts(s: Settings) -> list[Alert]:
    r = s.read
    alarm_for = r.duration("health.alarm_red_for")
    sensor_for = r.duration("health.sensor_red_for")
    ds_crit = r.number("health.datastore_free_critical_ratio", 0.0, 1.0)
    ds_crit_for = r.duration("health.datastore_free_critical_for")
    overcommit = r.number("health.datastore_overcommit_ratio", 0.0, 100.0)
    overcommit_for = r.duration("health.datastore_overcommit_for")
    guest_min = r.number("health.guest_disk_free_min_ratio", 0.0, 1.0)
    guest_for = r.duration("health.guest_disk_free_for")
    expiry = r.positive_duration("health.license_expiry_within")
    overuse_for = r.duration("health.license_overuse_for")
    snap_age = r.positive_duration("health.snapshot_max_age")
    snap_for = r.duration("health.snapshot_old_for")
    return [
        Alert(
            name="VsphereAlarmRedUnacknowledged",
            group=GROUP,
            scope="vcenter",
            expr=q(
                """
                max by (vcenter, entity_type, entity_id, entity, alarm) (
                  vsphere_alarm_triggered{status="red", acknowledged="false"}
                )
                """
            ),
            for_=alarm_for,
            severity="warning",
            remediation="none",
            summary="vCenter alarm {{ $labels.alarm }} is red on {{ $labels.entity }}",
            description="vCenter {{ $labels.vcenter }} has raised the red alarm "
            '"{{ $labels.alarm }}" on {{ $labels.entity_type }} {{ $labels.entity }} '
            "({{ $labels.entity_id }}) and nobody has acknowledged it for "
            f"{alarm_for.text}.",
        ),
        Alert(
            name="VsphereHostSensorRed",
            group=GROUP,
            scope="host",
            expr=host_alert_expr('vsphere_host_sensor_status{status="red"} == 1'),
            for_=sensor_for,
            severity="critical",
            remediation="none",
            summary="Hardware sensor {{ $labels.sensor }} is red on host {{ $labels.host }}",
            description="The {{ $labels.type }} sensor {{ $labels.sensor }} of "
            + HOST
            + f" has reported red (critical) for {sensor_for.text}; Proactive HA, where "
            "configured, quarantines or evacuates such a host.",
        ),
        Alert(
            name="VsphereDatastoreFreeSpaceCritical",
            group=GROUP,
            scope="datastore",
            expr=q(
                """
                vsphere_datastore:free:ratio < $ratio
                and on (vcenter, datastore_id) (vsphere_datastore_accessible == 1)
                """,
                ratio=f"{ds_crit:g}",
            ),
            for_=ds_crit_for,
            severity="critical",
            remediation="none",
            summary="Datastore {{ $labels.datastore }} is almost full",
            description="D" + DATASTORE[1:] + " has {{ $value | humanizePercentage }} free "
            f"(critical below {pct(ds_crit)}); thin disks and snapshots will soon stop VMs.",
        ),
        Alert(
            name="VsphereDatastoreOvercommitted",
            group=GROUP,
            scope="datastore",
            expr=q(
                """
                max by (vcenter, datastore_id, datastore) (vsphere_datastore_provisioned_bytes)
                / max by (vcenter, datastore_id, datastore) (vsphere_datastore_capacity_bytes > 0)
                > $ratio
                """,
                ratio=f"{overcommit:g}",
            ),
            for_=overcommit_for,
            severity="warning",
            remediation="none",
            summary="Datastore {{ $labels.datastore }} is overcommitted",
            description="Thin-provisioned VMs on " + DATASTORE + " may grow to "
            "{{ $value | humanizePercentage }} of its capacity (limit "
            f"{pct(overcommit)}).",
        ),
        Alert(
            name="VsphereVmGuestFilesystemFull",
            group=GROUP,
            scope="vm",
            expr=vm_alert_expr(
                q(
                    """
                    vsphere_vm_guest_disk_free_bytes
                    / (vsphere_vm_guest_disk_capacity_bytes > 0)
                    < $ratio
                    """,
                    ratio=f"{guest_min:g}",
                )
            ),
            for_=guest_for,
            severity="warning",
            remediation="none",
            summary="Filesystem {{ $labels.mount }} of VM {{ $labels.vm }} is nearly full",
            description="The guest filesystem {{ $labels.mount }} of "
            + VM
            + " has {{ $value | humanizePercentage }} free "
            f"(limit {pct(guest_min)}).",
        ),
        Alert(
            name="VsphereVmSnapshotOld",
            group=GROUP,
            scope="vm",
            expr=vm_alert_expr(
                q(
                    "time() - vsphere_vm_snapshot_oldest_timestamp_seconds > $age",
                    age=snap_age.number,
                )
            ),
            for_=snap_for,
            severity="warning",
            remediation="none",
            summary="VM {{ $labels.vm }} has a snapshot older than " + snap_age.text,
            description="The oldest snapshot of " + VM + " is "
            "{{ $value | humanizeDuration }} old"
            # The space the VM's snapshots hold, when the exporter has read it (layoutEx).
            '{{ with printf "vsphere_vm_snapshot_size_bytes{vcenter=%q,vm_id=%q}" '
            "$labels.vcenter $labels.vm_id | query }}"
            "; its snapshots hold {{ . | first | value | humanize1024 }}B{{ end }}"
            "; snapshots grow without bound and slow the VM's disks.",
        ),
        Alert(
            name="VsphereLicenseExpiringSoon",
            group=GROUP,
            scope="vcenter",
            expr=q(
                "vsphere_license_expiration_timestamp_seconds - time() < $within",
                within=expiry.number,
            ),
            for_=r.duration("health.license_expiry_for"),
            severity="warning",
            remediation="none",
            summary="Licence {{ $labels.license }} expires soon",
            description="L" + LICENSE[1:] + " expires in {{ $value | humanizeDuration }}.",
        ),
        Alert(
            name="VsphereLicenseOverused",
            group=GROUP,
            scope="vcenter",
            expr=q(
                """
                vsphere_license_used > on (vcenter, license, key_suffix)
                (vsphere_license_total > 0)
                """
            ),
            for_=overuse_for,
            severity="warning",
            remediation="none",
            summary="Licence {{ $labels.license }} is over-used",
            description="L" + LICENSE[1:] + " has {{ $value }} units in use, more than it holds.",
        ),
    ]
