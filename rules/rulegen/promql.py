"""PromQL and annotation fragments that more than one group uses.

Every alert about a host or a VM must leave out maintenance mode and carry the same
placement labels (cluster, fault domain), or the Alertmanager inhibitions, which match on
those labels, silently stop working; so the joins live here once instead of in each group.
A fragment only one group uses belongs in that group's module.
"""

from __future__ import annotations

from string import Template


def q(text: str, **values: object) -> str:
    """A PromQL expression: dedented, ``$name`` placeholders filled in, blank edges trimmed."""
    lines = text.strip("\n").splitlines()
    margin = min((len(ln) - len(ln.lstrip()) for ln in lines if ln.strip()), default=0)
    body = "\n".join(ln[margin:].rstrip() for ln in lines).strip("\n")
    return Template(body).substitute({k: str(v) for k, v in values.items()})


def indent(text: str, by: int = 2) -> str:
    return "\n".join((" " * by + ln) if ln else ln for ln in text.splitlines())


HOST_IN_MAINTENANCE = "vsphere_host_maintenance_mode == 1"
VM_ON_MAINTENANCE_HOST = (
    "(vsphere_vm_info * on (vcenter, host_id) group_left () (vsphere_host_maintenance_mode == 1))"
)
HOST_PLACEMENT = "max by (vcenter, host_id, cluster, fault_domain) (vsphere_host_info)"
VM_PLACEMENT = "max by (vcenter, vm_id, host_id, host, cluster, fault_domain) (vsphere_vm_info)"
HA_ALIVE_STATES = "master|connectedToMaster"
HA_ISOLATION_STATES = "networkIsolated|networkPartitionedFromMaster"


def host_alert_expr(condition: str) -> str:
    """``condition`` (one series per vcenter/host_id/host) outside maintenance mode, with the
    host's cluster and fault domain joined in from ``vsphere_host_info``."""
    return (
        "(\n"
        f"{indent(condition)}\n"
        f"  unless on (vcenter, host_id) ({HOST_IN_MAINTENANCE})\n"
        ")\n"
        "* on (vcenter, host_id) group_left (cluster, fault_domain)\n"
        f"  {HOST_PLACEMENT}"
    )


def vm_alert_expr(value: str, *conditions: str) -> str:
    """``value`` (one series per vcenter/vm_id/vm) where every condition holds, for VMs the
    stack protects that are connected and not on a host in maintenance mode, with the VM's
    placement joined in from ``vsphere_vm_info``."""
    parts = [
        *conditions,
        "vsphere_vm_ha_protected == 1",
        'vsphere_vm_connection_state{state="connected"} == 1',
    ]
    lines = ["(", indent(value)]
    for p in parts:
        if "\n" in p:
            lines += ["  and on (vcenter, vm_id) (", indent(p, 4), "  )"]
        else:
            lines += [f"  and on (vcenter, vm_id) ({p})"]
    lines += [f"  unless on (vcenter, vm_id) {VM_ON_MAINTENANCE_HOST}", ")"]
    lines += ["* on (vcenter, vm_id) group_left (host_id, host, cluster, fault_domain)"]
    lines += [f"  {VM_PLACEMENT}"]
    return "\n".join(lines)


# --- annotation fragments (Go templates). Standalone hosts and their VMs have cluster="". ---

WHERE = (
    "{{ if $labels.cluster }}cluster {{ $labels.cluster }}{{ else }}standalone{{ end }}, "
    "vCenter {{ $labels.vcenter }}"
)
HOST = "host {{ $labels.host }} ({{ $labels.host_id }}, " + WHERE + ")"
VM = "VM {{ $labels.vm }} ({{ $labels.vm_id }}, host {{ $labels.host }}, " + WHERE + ")"
CLUSTER = "cluster {{ $labels.cluster }} (vCenter {{ $labels.vcenter }})"
HOST_, CLUSTER_ = "H" + HOST[1:], "C" + CLUSTER[1:]  # at the start of a sentence


def pct(ratio: float) -> str:
    return f"{ratio * 100:g} %"


# --- VM monitoring (the VM and application heartbeat groups) -----------------------------------

# A VM counts as failed only while powered on and past its minimum uptime (vSphere HA's rule).
VM_RUNNING = (
    'vsphere_vm_power_state{state="poweredOn"} == 1',
    "time() - vsphere_vm_boot_time_seconds\n"
    "  > on (vcenter, vm_id) vsphere_vm:ha_min_uptime_seconds",
)


def heartbeat_age(last_green: str) -> str:
    """Seconds since the heartbeat was last seen green, where that exceeds the VM's failure
    interval. The exporter refreshes the timestamp on every round trip while green."""
    return (
        f"time() - max by (vcenter, vm_id, vm) ({last_green})\n"
        "  > on (vcenter, vm_id) group_left () vsphere_vm:ha_failure_interval_seconds"
    )


def never_green(status: str, window: str) -> str:
    """Not green at any sample of the last failure interval: guards against a timestamp that
    lags (it only advances on the exporter's round trips)."""
    return f'max_over_time({status}{{status="green"}}[{window}]) == 0'


def degraded_action(remediation: str) -> str:
    """The last sentence of a degraded host's description, by its configured remediation."""
    return (
        "The remediator moves its VMs to other hosts (evacuate_host)."
        if remediation == "evacuate_host"
        else "Nothing is done automatically."
    )
