"""The host-failure group: hosts that stopped running their VMs, and hosts that are sick.

Host failures are the stack's main remediation trigger (``restart_host_vms``), so the
distinction between "vCenter lost the host" and "the host is dead" -- told apart by what
vSphere HA itself reports -- is made here, in one place. ``host_failure=True`` marks the
alerts whose host's VM data is meaningless; ``alertmanager.py`` inhibits those VMs' alerts.
"""

from __future__ import annotations

from .config import Settings
from .model import Alert
from .promql import (
    HA_ALIVE_STATES,
    HA_ISOLATION_STATES,
    HOST,
    HOST_,
    degraded_action,
    host_alert_expr,
    q,
)

GROUP = "vsphere-host-failure"


_RESTART_HOST_VMS = "The remediator restarts its protected VMs on other hosts (restart_host_vms)."


# One host failure pages once (issue 13): vSphere HA declares a dead host ``hostDown``
# seconds before vCenter marks it notResponding, and both are critical. While vCenter reports
# the host not responding or powered off, the alert carrying the restart
# (VsphereHostNotResponding / VsphereHostPoweredOff) is the page, so VsphereHostHaDown is
# merged into it here; alertmanager.py also inhibits it (and the other host-failure alerts
# without an action) while a restart alert of the same host fires.
_RESTART_ALERT_STATES = (
    "\nunless on (vcenter, host_id) ("
    '\n  vsphere_host_connection_state{state="notResponding"} == 1'
    '\n  or vsphere_host_power_state{state="poweredOff"} == 1'
    "\n)"
)


# One host failure pages once, the other pair: a host powered off through vCenter
# (HostSystemPowerState poweredOff: "specifically powered off by the user through
# VirtualCenter") then stops responding, and both VsphereHostPoweredOff and
# VsphereHostNotResponding would page and send restart_host_vms. The power-off is the cause,
# so VsphereHostNotResponding leaves powered-off hosts to VsphereHostPoweredOff, merged here
# rather than inhibited: Alertmanager never silences one restart alert with another (the
# remediator hears each), and both have the same ``for`` by default. A host that crashed is
# notResponding with power state ``unknown`` ("If the host is disconnected, or notResponding,
# we cannot possibly have knowledge of its power state") and pages as not responding.
_POWERED_OFF = '\nunless on (vcenter, host_id) (vsphere_host_power_state{state="poweredOff"} == 1)'


def _host_state(metric: str, state: str) -> str:
    return f'max by (vcenter, host_id, host) ({metric}{{state="{state}"}} == 1)'


def alerts(s: Settings) -> list[Alert]:
    ha_state_down = [
        ("VsphereHostHaDown", "hostDown", "critical", True,
         "vSphere HA declared host {{ $labels.host }} dead", "as hostDown",
         "vCenter still reports it neither not responding nor powered off (when it does, "
         "VsphereHostNotResponding or VsphereHostPoweredOff pages instead). vSphere HA "
         "restarts its VMs."),
        ("VsphereHostNetworkIsolated", "networkIsolated", "critical", True,
         "Host {{ $labels.host }} is network-isolated", "as network-isolated",
         "Its isolation response may stop its VMs. Nothing is restarted automatically."),
        ("VsphereHostNetworkPartitioned", "networkPartitionedFromMaster", "warning", False,
         "Host {{ $labels.host }} is partitioned from the vSphere HA master",
         "as partitioned from the master", "Its VMs run, but no master protects them."),
    ]  # fmt: skip
    return [
        Alert(
            name="VsphereHostNotResponding",
            group=GROUP,
            scope="host",
            host_failure=True,
            expr=host_alert_expr(
                _host_state("vsphere_host_connection_state", "notResponding")
                + "\nunless on (vcenter, host_id) (vsphere_host_ha_state"
                + f'{{state=~"{HA_ALIVE_STATES}|{HA_ISOLATION_STATES}"}} == 1)'
                + _POWERED_OFF
            ),
            for_=s.host_not_responding_for,
            severity="critical",
            remediation="restart_host_vms",
            summary="Host {{ $labels.host }} is not responding",
            description=f"{HOST_} has not responded to vCenter for "
            f"{s.host_not_responding_for.text} and vSphere HA does not report it alive. "
            + _RESTART_HOST_VMS,
        ),
        Alert(
            name="VsphereHostNotRespondingHaAlive",
            group=GROUP,
            scope="host",
            host_failure=True,
            expr=host_alert_expr(
                _host_state("vsphere_host_connection_state", "notResponding")
                + "\nand on (vcenter, host_id) (vsphere_host_ha_state"
                + f'{{state=~"{HA_ALIVE_STATES}"}} == 1)'
            ),
            for_=s.host_not_responding_for,
            severity="warning",
            remediation="none",
            summary="vCenter lost host {{ $labels.host }}; vSphere HA still sees it",
            description=f"{HOST_} has not responded to vCenter for "
            f"{s.host_not_responding_for.text}, but vSphere HA reports it alive: its VMs "
            "probably still run. Nothing is restarted.",
        ),
        Alert(
            name="VsphereHostDisconnected",
            group=GROUP,
            scope="host",
            host_failure=True,
            expr=host_alert_expr(_host_state("vsphere_host_connection_state", "disconnected")),
            for_=s.host_disconnected_for,
            severity="warning",
            remediation="none",
            summary="Host {{ $labels.host }} is disconnected",
            description=f"{HOST_} has been disconnected from vCenter for "
            f"{s.host_disconnected_for.text} outside maintenance mode; its VMs are not watched. "
            "Nothing is restarted.",
        ),
        Alert(
            name="VsphereHostPoweredOff",
            group=GROUP,
            scope="host",
            host_failure=True,
            expr=host_alert_expr(_host_state("vsphere_host_power_state", "poweredOff")),
            for_=s.host_powered_off_for,
            severity="critical",
            remediation="restart_host_vms",
            summary="Host {{ $labels.host }} powered off unexpectedly",
            description=f"{HOST_} has been powered off for "
            f"{s.host_powered_off_for.text} without entering maintenance mode. "
            + _RESTART_HOST_VMS,
        ),
        *(
            Alert(
                name=name,
                group=GROUP,
                scope="host",
                host_failure=failure,
                expr=host_alert_expr(
                    _host_state("vsphere_host_ha_state", state)
                    + (_RESTART_ALERT_STATES if state == "hostDown" else "")
                ),
                for_=s.host_ha_state_for,
                severity=severity,
                remediation="none",
                summary=summary,
                description=f"vSphere HA has reported {HOST} {phrase} for "
                f"{s.host_ha_state_for.text}. {consequence}",
            )
            for name, state, severity, failure, summary, phrase, consequence in ha_state_down
        ),
        Alert(
            name="VsphereHostHaAgentError",
            group=GROUP,
            scope="host",
            expr=host_alert_expr(
                "max by (vcenter, host_id, host) (vsphere_host_ha_state"
                '{state=~"fdmUnreachable|initializationError|uninitializationError"} == 1)\n'
                'and on (vcenter, host_id) (vsphere_host_connection_state{state="connected"} == 1)'
            ),
            for_=s.host_ha_agent_error_for,
            severity="warning",
            remediation="none",
            summary="The vSphere HA agent on host {{ $labels.host }} is failing",
            description=f"The vSphere HA agent on {HOST} has been unreachable or failing to "
            f"configure for {s.host_ha_agent_error_for.text}. vSphere HA does not protect its "
            "VMs.",
        ),
        Alert(
            name="VsphereHostDegraded",
            group=GROUP,
            scope="host",
            expr=host_alert_expr(
                q(
                    """
                    max by (vcenter, host_id, host) (
                      vsphere_host_overall_status{status="red"} == 1
                      or vsphere_host_quarantine_mode == 1
                    )
                    and on (vcenter, host_id) (vsphere_host_connection_state{state="connected"} == 1)
                    """  # noqa: E501
                )
            ),
            for_=s.host_degraded_for,
            severity="warning",
            remediation=s.host_degraded_remediation,
            summary="Host {{ $labels.host }} is degraded",
            description=f"{HOST_} has been red or in quarantine mode "
            f"for {s.host_degraded_for.text} while connected. "
            + degraded_action(s.host_degraded_remediation),
        ),
    ]
