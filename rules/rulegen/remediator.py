"""The remediator group: alerts on the stack's own remediator, for people.

The remediator acts on vSphere alerts; these say when it could not: steps that failed, VMs
no host could take, work a limit refused, a mass-failure guard holding a cluster, a VM it
left outside vCenter's inventory, a VM registered twice that it left for a person (a failed
host came back with a copy), a vCenter it cannot reach, and webhook deliveries that do
not get through (refused by the remediator, or never arriving from Alertmanager).

All carry ``remediation="none"``: they go to people only, never back to the remediator (a
remediator that fails must not be asked to fix itself). ``scope="remediator"`` keeps them
out of the watcher's inhibitions: the exporter being down says nothing about whether the
remediator left a VM unregistered, and that must still reach someone.
"""

from __future__ import annotations

from .config import ConfigError, Settings
from .model import Alert
from .promql import q

GROUP = "vsphere-remediator"
SCOPE = "remediator"


def _new_events(selector: str, by: str, window: str) -> str:
    """Events of a counter within ``window``, including a series' first one.

    prometheus_client creates a labelled counter series at its first increment, at 1, so
    ``increase()`` alone misses the first failure of each kind: the second branch counts a
    series that did not exist ``window`` ago.
    """
    return q(
        """
        (sum by ($by) (increase(${sel}[$w])) > 0)
        or
        (sum by ($by) ($sel unless $sel offset $w) > 0)
        """,
        sel=selector,
        by=by,
        w=window,
    )


def alerts(s: Settings) -> list[Alert]:
    job = s.read.string("remediator.selector")
    if "{" in job or "}" in job:
        raise ConfigError("remediator.selector: label matchers only, without braces")
    window = s.read.positive_duration("remediator.actions_window")
    actions_for = s.read.duration("remediator.actions_for")
    unregistered_for = s.read.duration("remediator.unregistered_for")
    duplicated_for = s.read.duration("remediator.duplicated_for")
    guard_for = s.read.duration("remediator.guard_tripped_for")
    unreachable_for = s.read.duration("remediator.vcenter_unreachable_for")
    webhook_for = s.read.duration("remediator.webhook_failing_for")
    actions = "vha_remediator_actions_total{" + job + ', result="%s"}'
    by = "job, instance, kind"

    def action_alert(name: str, result: str, severity: str, what: str, why: str) -> Alert:
        return Alert(
            name=name,
            group=GROUP,
            scope=SCOPE,
            expr=_new_events(actions % result, by, window.text),
            for_=actions_for,
            severity=severity,
            remediation="none",
            summary=f"The remediator {what} ({{{{ $labels.kind }}}})",
            description=f"{{{{ $labels.kind }}}} actions of the remediator "
            f"{{{{ $labels.instance }}}} ended {result} within the last {window.text}: {why} "
            f"See its journal: GET /api/v1/actions?state={result}.",
        )

    return [
        action_alert(
            "VsphereRemediatorActionsFailed",
            "failed",
            "warning",
            "gave up on actions",
            "attempts exhausted, fencing failed or vCenter refused for good; the VM or host "
            "is still as the alert found it.",
        ),
        action_alert(
            "VsphereRemediatorActionsUnplaced",
            "unplaced",
            "critical",
            "found no host for VMs",
            "no healthy host had room (or passed the checks) for these VMs; they stay down "
            "until capacity is freed or a person places them.",
        ),
        action_alert(
            "VsphereRemediatorActionsRefused",
            "refused",
            "warning",
            "refused actions",
            "a limit said no (reset limit, a failure never confirmed, held too long by a "
            "guard); a person decides.",
        ),
        Alert(
            name="VsphereRemediatorGuardTripped",
            group=GROUP,
            scope=SCOPE,
            expr=q(
                "max by (job, instance, vcenter, cluster) (vha_remediator_guard_tripped{$j}) == 1",
                j=job,
            ),
            for_=guard_for,
            severity="critical",
            remediation="none",
            summary="The remediator's mass-failure guard holds cluster {{ $labels.cluster }}",
            description="Too many hosts of cluster {{ $labels.cluster }} (vCenter "
            "{{ $labels.vcenter }}) failed at once as seen by the remediator's own live reads; "
            "it acts on nothing there until the failures clear, and refuses held work after "
            "guard.max_hold_seconds. A partition or a blind remediator is more likely than "
            "dead hardware: a person decides.",
        ),
        Alert(
            name="VsphereRemediatorVmUnregistered",
            group=GROUP,
            scope=SCOPE,
            # One alert per VM, named with its .vmx path (the info series), while the
            # remediator counts any VM out of the inventory.
            expr=q(
                """
                max by (job, instance, vcenter, cluster, vm, vmx_path) (
                  vha_remediator_vm_unregistered_info{$j}
                )
                and on (job, instance)
                (vha_remediator_vms_unregistered{$j} > 0)
                """,
                j=job,
            ),
            for_=unregistered_for,
            severity="critical",
            remediation="none",
            summary="VM {{ $labels.vm }} is outside vCenter's inventory",
            description="The remediator unregistered VM {{ $labels.vm }} (vCenter "
            "{{ $labels.vcenter }}, cluster {{ $labels.cluster }}) from a failed host and "
            "could not register it again. It is in no inventory and does not run; the "
            "remediator keeps retrying. Its files: {{ $labels.vmx_path }}. Register it by hand "
            "if the retries do not succeed.",
        ),
        Alert(
            name="VsphereRemediatorVmDuplicated",
            group=GROUP,
            scope=SCOPE,
            # One alert per copy left for a person (the info series), while the remediator
            # counts any; clearly stale copies it removes itself and never show here.
            expr=q(
                """
                max by (job, instance, vcenter, cluster, vm, vmx_path, stale_vm_id,
                        running_vm_id, why) (
                  vha_remediator_vm_duplicated_info{$j}
                )
                and on (job, instance)
                (vha_remediator_vms_duplicated{$j} > 0)
                """,
                j=job,
            ),
            for_=duplicated_for,
            severity="critical",
            remediation="none",
            summary="VM {{ $labels.vm }} is registered twice",
            description="A host that failed came back still holding VM {{ $labels.vm }} "
            "(vCenter {{ $labels.vcenter }}, cluster {{ $labels.cluster }}), which the "
            "remediator had registered again elsewhere: {{ $labels.stale_vm_id }} (the copy "
            "that came back) and {{ $labels.running_vm_id }} share {{ $labels.vmx_path }}. "
            "The remediator left both alone ({{ $labels.why }}): decide which one runs, then "
            "remove the other from the inventory (never delete from disk: the files are shared).",
        ),
        Alert(
            # issue 10: the remediator watches vSphere HA where HA protects a VM
            name="VsphereHaRestartOverdue",
            group=GROUP,
            scope=SCOPE,
            expr=_new_events(
                "vha_remediator_ha_restart_overdue_total{" + job + "}",
                "job, instance, vcenter, cluster",
                window.text,
            ),
            for_=actions_for,
            severity="critical",
            remediation="none",
            summary="vSphere HA has not restarted VMs of cluster {{ $labels.cluster }}",
            description="vSphere HA protects VMs of a failed host in cluster "
            "{{ $labels.cluster }} (vCenter {{ $labels.vcenter }}) but had not restarted "
            "them within its whole retry schedule (remediator.ha.overdue_seconds); seen by "
            "the remediator {{ $labels.instance }} within the last " + window.text + ". The "
            "remediator does not race HA (remediator.ha.act_when_overdue is off by default): "
            "a person restarts them. See GET /api/v1/actions?kind=restart_host_vms.",
        ),
        Alert(
            name="VsphereRemediatorVcenterUnreachable",
            group=GROUP,
            scope=SCOPE,
            expr=q(
                "max by (job, instance, vcenter) (vha_remediator_vcenter_up{$j}) == 0",
                j=job,
            ),
            for_=unreachable_for,
            severity="critical",
            remediation="none",
            summary="The remediator cannot reach vCenter {{ $labels.vcenter }}",
            description="The remediator {{ $labels.instance }} has had no working session to "
            f"vCenter {{{{ $labels.vcenter }}}} for {unreachable_for.text}. It holds all work "
            "on that vCenter (it cannot re-read the truth, so it does not act): failures "
            "there are not being remediated.",
        ),
        Alert(
            name="VsphereRemediatorWebhookFailing",
            group=GROUP,
            scope=SCOPE,
            expr=q(
                """
                sum by (job, instance, code) (
                  rate(vha_remediator_webhook_requests_total{$j, code!="200"}[5m])
                ) > 0
                """,
                j=job,
            ),
            for_=webhook_for,
            severity="warning",
            remediation="none",
            summary="The remediator answers webhook deliveries with {{ $labels.code }}",
            description="For " + webhook_for.text + " the remediator {{ $labels.instance }} has "
            "answered deliveries with HTTP {{ $labels.code }}: 401 "
            "a token mismatch with Alertmanager, 400/413 payloads it refuses, 408 slow "
            "clients, 503 a journal it cannot write. Those alerts are not being acted on.",
        ),
        Alert(
            name="VsphereRemediatorWebhookUndelivered",
            group=GROUP,
            scope=SCOPE,
            expr=q(
                """
                sum by (job, instance) (
                  rate(alertmanager_notifications_failed_total{integration="webhook"}[5m])
                ) > 0
                """
            ),
            for_=webhook_for,
            severity="critical",
            remediation="none",
            summary="Alertmanager cannot deliver to the remediator webhook",
            description="Alertmanager {{ $labels.instance }} has failed webhook notifications "
            f"for {webhook_for.text}: the remediator is down, "
            "unreachable or answering errors, so remediation alerts do not arrive.",
        ),
    ]
