"""PromQL for the dashboards: the template-variable selectors, the joins onto the info
metrics and the thresholds read from rules/config.yml.

A host's cluster and fault domain are on ``vsphere_host_info`` only, a VM's placement on
``vsphere_vm_info`` only (docs/metrics.md): every panel filters through these helpers so
each join is written once. "All" is ``.*``, so standalone hosts (``cluster=""``) are included.
Thresholds come from rules/config.yml (:func:`rules_config`), so a panel turns orange where
an alert starts counting: after changing that file, regenerate the rules and the dashboards.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent.parent

#: Scrape job names: prometheus/prometheus*.yml and rules/config.yml (watcher) use them too.
EXPORTER_JOB = "vsphere-exporter"
REMEDIATOR_JOB = "vha-remediator"


def rules_config(section: str, key: str, default: float) -> float:
    """A number from rules/config.yml (``section.key``), so the dashboards colour at the
    thresholds the alerts and recording rules use; ``default`` when it is not set."""
    try:
        config = yaml.safe_load((ROOT / "rules" / "config.yml").read_text(encoding="utf-8"))
        return float(config[section][key])
    except (OSError, KeyError, TypeError, ValueError):
        return default


def max_utilization() -> float:
    """rules/config.yml capacity.max_utilization: the share of survivors' capacity restarted
    VMs may fill (the capacity alerts' threshold)."""
    return rules_config("capacity", "max_utilization", 0.9)


# --- selectors and joins -------------------------------------------------------------------

VC = 'vcenter=~"$vcenter"'
CL = 'vcenter=~"$vcenter", cluster=~"$cluster"'
IN_CLUSTER = CL + ', cluster!=""'  # clustered objects only
HOST = 'vcenter=~"$vcenter", host=~"$host"'
VM = 'vcenter=~"$vcenter", vm=~"$vm"'
VM_CHOICE = 'vcenter=~"$vcenter", cluster=~"$cluster", host=~"$host"'
# Datacenter-chained pick lists (Host detail, VM detail, Datastores): the datacenter variable
# narrows the clusters, hosts and VMs offered; panels follow the picked objects.
DC = 'vcenter=~"$vcenter", datacenter=~"$datacenter"'
DC_CL = DC + ', cluster=~"$cluster"'
DC_VM_CHOICE = DC_CL + ', host=~"$host"'
DATASTORE = 'vcenter=~"$vcenter", datastore=~"$datastore"'
DATASTORE_INFO = DC + ', datastore=~"$datastore"'
DATASTORE_KEY = "vcenter, datastore_id, datastore"
CLUSTER_KEY = "vcenter, cluster_id, cluster"
HOST_KEY = "vcenter, host_id, host"
VM_KEY = "vcenter, vm_id, vm"

HA_HEALTHY = "master|connectedToMaster"
CONNECTED = 'state="connected"'
NOT_CONNECTED = 'state!="connected"'
POWERED_ON = 'state="poweredOn"'
POWERED_OFF = 'state="poweredOff"'
RED = 'status="red"'
FIRING = 'alertstate="firing"'
# Matches alertmanager/alertmanager.yml: alerts routed to the remediator.
REMEDIABLE = 'remediation=~"restart_host_vms|restart_vm|reset_vm|evacuate_host"'

_SIMPLE = re.compile(r"^[A-Za-z_:][\w:]*(\{[^{}]*\})?$")


def paren(expr: str) -> str:
    """``expr`` safe to use as an operand (plain selectors stay bare)."""
    return expr if _SIMPLE.match(expr) else f"({expr})"


def m(metric: str, *matchers: str) -> str:
    """``metric{matchers}``."""
    inner = ", ".join(x for x in matchers if x)
    return f"{metric}{{{inner}}}" if inner else metric


def hosts_in(expr: str, info: str = CL) -> str:
    """Host series whose host is in the selected vCenters and clusters."""
    return f"{paren(expr)} and on (vcenter, host_id) {m('vsphere_host_info', info)}"


def vms_in(expr: str, info: str = CL) -> str:
    """VM series whose VM is in the selected vCenters and clusters."""
    return f"{paren(expr)} and on (vcenter, vm_id) {m('vsphere_vm_info', info)}"


def host_labels(expr: str, labels: str, info: str = CL) -> str:
    """Host series with placement labels joined in from ``vsphere_host_info``."""
    info_sel = m("vsphere_host_info", info)
    return f"{paren(expr)} * on (vcenter, host_id) group_left ({labels}) {info_sel}"


def vm_labels(expr: str, labels: str, info: str = CL) -> str:
    """VM series with placement labels joined in from ``vsphere_vm_info``."""
    info_sel = m("vsphere_vm_info", info)
    return f"{paren(expr)} * on (vcenter, vm_id) group_left ({labels}) {info_sel}"


def powered_on(expr: str) -> str:
    """VM series of powered-on VMs only."""
    power = m("vsphere_vm_power_state", VC, POWERED_ON)
    return f"{paren(expr)} and on (vcenter, vm_id) ({power} == 1)"


def state_label(metric: str, label: str, column: str, sel: str) -> str:
    """The current state of an enum metric, copied into the label ``column``."""
    return f'label_replace({m(metric, sel)} == 1, "{column}", "$1", "{label}", "(.*)")'


def problem(expr: str, text: str, src: str = "", regex: str = ".*") -> str:
    """Series of ``expr`` labelled ``problem="text"`` (``$1`` is the ``src`` label's value)."""
    return f'label_replace({expr}, "problem", "{text}", "{src}", "{regex}")'


def state_code(metric: str, label: str, states: Sequence[str], sel: str) -> str:
    """An enum metric as one series whose value is the state's position + 1 (timelines)."""
    parts = [
        f"({m(metric, sel, f'{label}={json.dumps(s)}')} == 1) * {i}"
        for i, s in enumerate(states, 1)
    ]
    return f"max without ({label}) ({' or '.join(parts)})"


def fd_none(expr: str) -> str:
    """Show the empty fault domain as ``(none)``."""
    return f'label_replace({expr}, "fault_domain", "(none)", "fault_domain", "")'


def ratio(num: str, den: str) -> str:
    return f"{paren(num)} / {paren(den)}"


def since(metric_sel: str) -> str:
    return f"time() - {metric_sel}"


def cluster_sum(expr: str) -> str:
    return f"sum by ({CLUSTER_KEY}) ({expr})"


def rule(name: str, sel: str = IN_CLUSTER) -> str:
    """A recording rule of rules/recording.yml, filtered on the variables."""
    return m(name, sel)


def only(expr: str, subset: str) -> str:
    """VM series of ``expr`` whose VM is in ``subset``."""
    return f"{paren(expr)} and on (vcenter, vm_id) {paren(subset)}"
