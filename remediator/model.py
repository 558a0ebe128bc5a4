"""Plain snapshots of live vCenter state, so policy and placement stay pure and testable.

``live.py`` fills these from the property collector; nothing here touches pyvmomi.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .drs_rules import DrsRules

# vSphere HA (FDM) states in which a host is a full member of the HA cluster and may take
# VMs; anything else (election, isolated, partitioned, hostDown, agent errors) may not.
HEALTHY_DAS_STATES = frozenset({"master", "connectedToMaster"})

# Restart priority as a rank, highest first; ``disabled`` VMs are never restarted.
PRIORITY_RANK = {"disabled": 0, "lowest": 1, "low": 2, "medium": 3, "high": 4, "highest": 5}


@dataclass(frozen=True)
class HostState:
    moid: str
    name: str
    cluster_id: str = ""
    connection_state: str = "connected"
    power_state: str = "poweredOn"
    maintenance: bool = False
    quarantine: bool = False
    das_state: str = ""  # "" when HA does not report one
    fault_domain: str = ""
    cpu_capacity_mhz: float = 0.0
    memory_capacity_mb: float = 0.0
    cpu_usage_mhz: float = 0.0
    memory_usage_mb: float = 0.0
    # What the host sees (pre-flight); only meaningful when ``mounts_known``.
    mounts_known: bool = False
    datastores: frozenset[str] = frozenset()  # moids mounted and accessible
    datastore_names: Mapping[str, str] = field(default_factory=dict)  # moid -> name
    networks: frozenset[str] = frozenset()  # network names

    def datastore_label(self, ds: str) -> str:
        return self.datastore_names.get(ds, ds)

    @property
    def responding(self) -> bool:
        return self.connection_state == "connected"

    @property
    def down(self) -> bool:
        """Failed as far as its VMs are concerned: silent to vCenter, or powered off."""
        return not self.responding or self.power_state == "poweredOff"

    def unhealthy_reason(self) -> str:
        """Why this host may not take VMs, or ``""`` when it may."""
        if self.connection_state != "connected":
            return f"connection state {self.connection_state}"
        if self.power_state != "poweredOn":
            return f"power state {self.power_state}"
        if self.maintenance:
            return "in maintenance mode"
        if self.quarantine:
            return "in quarantine mode"
        if self.das_state and self.das_state not in HEALTHY_DAS_STATES:
            return f"HA state {self.das_state}"
        return ""

    @property
    def healthy(self) -> bool:
        return not self.unhealthy_reason()


@dataclass(frozen=True)
class VMState:
    moid: str
    name: str
    host_id: str = ""
    power_state: str = "poweredOff"
    connection_state: str = "connected"
    guest_heartbeat: str = "gray"
    app_heartbeat: str = ""
    app_state: str = "none"  # guest.appState: appStateNeedReset = the agent asks for a reset
    boot_time: float | None = None
    num_cpu: int = 1
    memory_mb: float = 0.0
    cpu_reservation_mhz: float = 0.0
    memory_reservation_mb: float = 0.0
    cpu_usage_mhz: float = 0.0
    memory_usage_mb: float = 0.0
    protected: bool = True
    priority: str = "medium"
    template: bool = False
    vmx_path: str = ""
    folder_id: str = ""
    custom_values: Mapping[str, str] = field(default_factory=dict)
    # Pre-flight inputs: datastores (moids), the .vmx's datastore (name), networks (names),
    # and why its hardware ties it to its host ("" when nothing does or it was not read).
    datastores: tuple[str, ...] = ()
    vmx_datastore: str = ""
    networks: tuple[str, ...] = ()
    host_tied: str = ""

    @property
    def rank(self) -> int:
        return PRIORITY_RANK.get(self.priority, 0)

    @property
    def restartable(self) -> bool:
        """Protected by the stack's rules and not opted out through restart priority."""
        return self.protected and self.rank > 0 and not self.template

    @property
    def running(self) -> bool:
        return self.power_state == "poweredOn"

    @property
    def heartbeat_failed(self) -> bool:
        """Guest heartbeat red, or application heartbeat red while app monitoring is in use."""
        return self.guest_heartbeat == "red" or self.app_heartbeat in ("appStatusRed", "red")

    @property
    def cpu_demand_mhz(self) -> float:
        return max(self.cpu_reservation_mhz, self.cpu_usage_mhz)

    @property
    def memory_demand_mb(self) -> float:
        return max(self.memory_reservation_mb, self.memory_usage_mb)


@dataclass(frozen=True)
class VMMonitoring:
    """A cluster's VM-monitoring settings, ``None`` where the cluster does not set them."""

    mode: str = "vmMonitoringDisabled"
    failure_interval: float | None = None
    min_uptime: float | None = None
    max_failures: int | None = None
    max_failure_window: float | None = None

    @property
    def enabled(self) -> bool:
        return self.mode in ("vmMonitoringOnly", "vmAndAppMonitoring")


@dataclass(frozen=True)
class ClusterState:
    moid: str
    name: str
    ha_enabled: bool = False
    admission_control: bool = False
    vm_monitoring: VMMonitoring = field(default_factory=VMMonitoring)
    resource_pool: str = ""
    host_ids: tuple[str, ...] = ()
    rules: DrsRules = field(default_factory=DrsRules)  # DRS rules and groups (placement)


@dataclass(frozen=True)
class Snapshot:
    """One consistent read of a cluster (or a standalone host) and its VMs."""

    vcenter: str
    taken_at: float
    cluster: ClusterState | None
    hosts: Mapping[str, HostState]
    vms: Mapping[str, VMState]
    # when the read was sent (engine clock), where a shared read says so (shared_reads.py)
    read_started: float = 0.0

    def host_named(self, name: str) -> HostState | None:
        return next((h for h in self.hosts.values() if h.name == name), None)

    def vm_named(self, name: str) -> VMState | None:
        return next((v for v in self.vms.values() if v.name == name), None)

    def vms_on(self, host_id: str) -> list[VMState]:
        return [v for v in self.vms.values() if v.host_id == host_id]
