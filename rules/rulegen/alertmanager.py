"""The Alertmanager config: who hears about an alert, and which alerts silence which.

Routing and inhibition are derived from the alerts, never listed by hand: an alert whose
``remediation`` names an action goes to the remediator webhook; ``scope`` and
``host_failure`` decide the inhibitions (watcher alerts silence everything a blind vCenter
reported; a failed host silences its VMs). So a new group is routed and inhibited correctly
without touching this module. The few rules that name alerts (fault domain down, mass
failure, guest hung vs application) encode causal links between groups and live here, where
they can be read together.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .config import Settings
from .model import ACTIONS, Alert


def _alternation(names: Sequence[str]) -> str:
    return "|".join(names)


def alertmanager(s: Settings, alerts: Sequence[Alert]) -> dict[str, Any]:
    am = s.am
    watcher = [a.name for a in alerts if a.scope == "watcher"]
    vcenter_blind = [a for a in watcher if a != "VsphereExporterDown"]
    host_failures = [a.name for a in alerts if a.host_failure]
    # A host failure's alerts that restart its VMs, and the others (what vSphere HA or
    # vCenter says about the same host): one host failure pages once, with the action.
    host_restarts = [a.name for a in alerts if a.host_failure and a.remediation != "none"]
    host_echoes = [a.name for a in alerts if a.host_failure and a.remediation == "none"]
    vm_alerts = [a.name for a in alerts if a.scope == "vm"]
    # Alerts about the remediator itself are not about what the exporter reported: a blind
    # watcher must not hide that the remediator left a VM unregistered.
    exempt = watcher + [a.name for a in alerts if a.scope == "remediator"]
    not_watcher = f'alertname!~"{_alternation(exempt)}"'
    inhibit_rules = [
        {
            # The exporter is down: nothing it reported can be trusted, for any vCenter.
            "source_matchers": ['alertname="VsphereExporterDown"'],
            "target_matchers": [not_watcher],
        },
        {
            # A vCenter is unreachable or its data stale: its alerts must not trigger restarts.
            "source_matchers": [f'alertname=~"{_alternation(vcenter_blind)}"'],
            "target_matchers": [not_watcher],
            "equal": ["vcenter"],
        },
        {
            # A failed host: its VMs' alerts are consequences, not causes.
            "source_matchers": [f'alertname=~"{_alternation(host_failures)}"'],
            "target_matchers": [f'alertname=~"{_alternation(vm_alerts)}"'],
            "equal": ["vcenter", "host_id"],
        },
        {
            # One host failure pages once: while the alert restarting a host's VMs fires, the
            # other failure alerts of that host (VsphereHostHaDown ...) say nothing more.
            "source_matchers": [f'alertname=~"{_alternation(host_restarts)}"'],
            "target_matchers": [f'alertname=~"{_alternation(host_echoes)}"'],
            "equal": ["vcenter", "host_id"],
        },
        {
            # A fault domain down: its hosts' and their VMs' alerts are consequences.
            "source_matchers": ['alertname="VsphereFaultDomainDown"'],
            "target_matchers": ['host_id=~".+"'],
            "equal": ["vcenter", "cluster", "fault_domain"],
        },
        {
            # Many hosts failing at once: no automatic host restarts in that cluster.
            "source_matchers": ['alertname="VsphereClusterMassHostFailure"'],
            "target_matchers": ['remediation="restart_host_vms"'],
            "equal": ["vcenter", "cluster"],
        },
        {
            # A hung guest OS stops the application heartbeat too: one reset, not two (and
            # the same for an agent's reset request while the guest hangs).
            "source_matchers": ['alertname="VsphereVmHeartbeatFailure"'],
            "target_matchers": [
                'alertname=~"VsphereVmAppHeartbeatFailure|VsphereVmAppStateNeedReset"'
            ],
            "equal": ["vcenter", "vm_id"],
        },
    ]
    people: dict[str, Any] = {"name": "people", **am["people"]}
    return {
        "route": {
            "receiver": "people",
            "group_by": ["alertname", "vcenter", "cluster"],
            "group_wait": am["people_group_wait"],
            "group_interval": am["people_group_interval"],
            "repeat_interval": am["people_repeat_interval"],
            "routes": [
                {"receiver": "people", "continue": True},
                {
                    "receiver": "remediator",
                    "matchers": [f'remediation=~"{_alternation(ACTIONS)}"'],
                    "group_by": ["vcenter", "cluster", "host", "alertname"],
                    "group_wait": am["remediator_group_wait"],
                    "group_interval": am["remediator_group_interval"],
                    "repeat_interval": am["remediator_repeat_interval"],
                },
            ],
        },
        "inhibit_rules": inhibit_rules,
        "receivers": [
            people,
            {
                "name": "remediator",
                "webhook_configs": [
                    {
                        "url": am["remediator_url"],
                        "send_resolved": True,
                        "max_alerts": 0,
                        "http_config": {
                            "authorization": {
                                "type": "Bearer",
                                "credentials_file": am["remediator_credentials_file"],
                            }
                        },
                    }
                ],
            },
        ],
    }


NOTES = """\
#
# Every alert goes to the receiver `people`; alerts whose `remediation` label names an action
# also go to `remediator` (the webhook that restarts, resets or moves VMs). `people` notifies
# nobody until alertmanager.people is filled in in rules/config.yml or an overrides file (see
# docs/alerts.md, "Alertmanager"). The remediator's URL and token file come from
# alertmanager.remediator_url / alertmanager.remediator_credentials_file; the file must hold
# the same token as the remediator's bearer_token_file.
"""
