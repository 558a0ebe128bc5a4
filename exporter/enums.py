"""Every documented value of each enum the exporter renders, and what to do with others.

An enum family renders one series per documented state (1 for the current one), so a value
that a newer vCenter reports and this list lacks would render as all zeros: silently "no
state".  Instead each such value is counted in
``vsphere_unknown_enum_values_total{vcenter,metric,value}`` and logged once, so an operator
sees that the exporter needs a newer list.  The lists follow the vSphere Web Services API
reference (docs/metrics.md cites each).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from .collectors import clusters, hosts, vms
from .inventory import Inventory

log = logging.getLogger(__name__)

TOOLS_RUNNING_STATUSES = (
    "guestToolsRunning",
    "guestToolsNotRunning",
    "guestToolsExecutingScripts",
)

# (managed object type, property path) -> (metric rendering it, documented values, how the
# raw value maps to a listed one).
ENUM_PATHS: dict[tuple[str, str], tuple[str, tuple[str, ...], Callable[[Any], Any]]] = {
    ("HostSystem", "runtime.connectionState"): (
        "vsphere_host_connection_state",
        hosts.CONNECTION_STATES,
        str,
    ),
    ("HostSystem", "runtime.powerState"): ("vsphere_host_power_state", hosts.POWER_STATES, str),
    ("HostSystem", "overallStatus"): (
        "vsphere_host_overall_status",
        hosts.OVERALL_STATUSES,
        str,
    ),
    ("HostSystem", "runtime.dasHostState"): ("vsphere_host_ha_state", hosts.HA_STATES, str),
    ("VirtualMachine", "runtime.powerState"): ("vsphere_vm_power_state", vms.POWER_STATES, str),
    ("VirtualMachine", "runtime.connectionState"): (
        "vsphere_vm_connection_state",
        vms.CONNECTION_STATES,
        str,
    ),
    ("VirtualMachine", "guestHeartbeatStatus"): (
        "vsphere_vm_guest_heartbeat_status",
        vms.HEARTBEAT_STATUSES,
        str,
    ),
    ("VirtualMachine", "guest.appHeartbeatStatus"): (
        "vsphere_vm_app_heartbeat_status",
        vms.APP_STATUSES,
        vms.app_status,
    ),
    ("VirtualMachine", "guest.appState"): (
        "vsphere_vm_guest_app_state",
        vms.APP_STATES,
        lambda raw: raw or "none",
    ),
    ("VirtualMachine", "guest.toolsRunningStatus"): (
        "vsphere_vm_tools_running",
        TOOLS_RUNNING_STATUSES,
        str,
    ),
    ("ClusterComputeResource", "configuration.dasConfig.vmMonitoring"): (
        "vsphere_cluster_ha_vm_monitoring",
        clusters.VM_MONITORING,
        str,
    ),
    ("ClusterComputeResource", "configuration.drsConfig.defaultVmBehavior"): (
        "vsphere_cluster_drs_automation_level",
        clusters.DRS_LEVELS,
        str,
    ),
}

_logged: set[tuple[str, str, str]] = set()
_logged_lock = threading.Lock()


def enum_observer(inventory: Inventory) -> Callable[[str, str, Any], None]:
    """An :attr:`Inventory.observe` hook counting values outside the documented lists."""

    def observe(type_name: str, path: str, value: Any) -> None:
        entry = ENUM_PATHS.get((type_name, path))
        if entry is None or value is None:
            return
        metric, states, mapped = entry
        shown = mapped(value)
        if shown in states:
            return
        key = (metric, str(value))
        inventory.unknown_enums[key] = inventory.unknown_enums.get(key, 0) + 1
        with _logged_lock:
            first = (inventory.vcenter, *key) not in _logged
            _logged.add((inventory.vcenter, *key))
        if first:
            log.warning(
                "vcenter=%s %s reported %r, which is not a documented value (%s): counted in "
                "vsphere_unknown_enum_values_total; the exporter's list needs it",
                inventory.vcenter,
                path,
                str(value),
                ", ".join(states),
            )

    return observe
