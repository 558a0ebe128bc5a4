"""vSphere HA's settings and the VM facts HA decisions depend on, read live from vCenter.

The remediator acts like vSphere HA where a cluster has none and as a watchdog for HA
where it does, so it must see what HA sees: a cluster's ``configurationEx.dasConfig``
(enabled, hostMonitoring, vmMonitoring, defaultVmSettings with its VM-monitoring settings,
advanced options such as ``das.iostatsinterval``), the per-VM overrides in
``configurationEx.dasVmConfig``, the orchestration settings and the VM-VM dependency
rules; and per VM ``summary.runtime.dasVmProtection``, ``config.managedBy`` (vCLS and
other ESX Agent Manager VMs), ``config.ftInfo``, host-tied devices (PCI passthrough, vGPU,
SR-IOV), whether its storage is local to one host, and ``guest.appState``.

The parsing functions take pyVmomi data objects (or ``None``) and never raise on a missing
field: vCenter omits unset optional properties. :func:`read_ha` does one property-collector
round trip for a cluster, its hosts, its VMs and their datastores.

Defaults are the API reference's: restart priority ``medium`` when neither the cluster nor
the VM sets one, VM monitoring ``vmMonitoringDisabled``, failureInterval 30 s, minUpTime
120 s, maxFailures 3, maxFailureWindow -1 (no window), restartPriorityTimeout 600 s,
readiness ``none``; ``das.iostatsinterval`` 120 s and ``das.maxvmrestartcount`` 5 are
vSphere HA's documented advanced-option defaults.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

PRIORITIES = ("disabled", "lowest", "low", "medium", "high", "highest")
CLUSTER_PRIORITY = "clusterRestartPriority"  # a per-VM value meaning "the cluster's default"
VM_MONITORING_MODES = ("vmMonitoringDisabled", "vmMonitoringOnly", "vmAndAppMonitoring")
READY_CONDITIONS = ("none", "poweredOn", "guestHbStatusGreen", "appHbStatusGreen")
USE_CLUSTER_DEFAULT = "useClusterDefault"

DEFAULT_IO_STATS_INTERVAL = 120.0
DEFAULT_MAX_RESTART_COUNT = 5
DEFAULT_PRIORITY_TIMEOUT = 600.0

# Extension keys of VMs vCenter's agents own (vCLS and other ESX Agent Manager agents).
EAM_EXTENSION = "com.vmware.vim.eam"

VM_PATHS = [
    "name",
    "runtime.host",
    "runtime.powerState",
    "runtime.bootTime",
    "summary.runtime.dasVmProtection",
    "config.managedBy",
    "config.ftInfo",
    "config.hardware.device",
    "datastore",
    "guestHeartbeatStatus",
    "guest.appHeartbeatStatus",
    "guest.appState",
]
CLUSTER_PATHS = ["name", "configurationEx"]
DATASTORE_PATHS = ["name", "host"]
HOST_PATHS = ["datastore"]


@dataclass(frozen=True)
class ToolsMonitoring:
    """vSphere HA's VM-monitoring settings (ClusterVmToolsMonitoringSettings)."""

    vm_monitoring: str = "vmMonitoringDisabled"
    failure_interval: float = 30.0
    min_uptime: float = 120.0
    max_failures: int = 3
    max_failure_window: float | None = None  # None: -1, no window

    @property
    def enabled(self) -> bool:
        return self.vm_monitoring in ("vmMonitoringOnly", "vmAndAppMonitoring")

    @property
    def app_monitoring(self) -> bool:
        return self.vm_monitoring == "vmAndAppMonitoring"


@dataclass(frozen=True)
class Readiness:
    """When a restarted VM counts as ready (ClusterVmReadiness)."""

    condition: str = "none"
    post_ready_delay: float = 0.0


@dataclass(frozen=True)
class VmOverride:
    """One VM's HA override (ClusterDasVmConfigInfo.dasSettings); "" / None = cluster's."""

    restart_priority: str = ""
    restart_priority_timeout: float | None = None
    vm_monitoring: str = ""
    tools: ToolsMonitoring | None = None  # set only when clusterSettings is false
    readiness: Readiness | None = None  # from vmOrchestration


@dataclass(frozen=True)
class Dependency:
    """A VM-VM restart dependency rule: ``vms`` start after ``depends_on`` are ready."""

    name: str
    vms: frozenset[str]
    depends_on: frozenset[str]
    mandatory: bool = False


@dataclass(frozen=True)
class ClusterHA:
    """A cluster's vSphere HA configuration, as HA itself applies it."""

    moid: str
    name: str
    enabled: bool = False
    host_monitoring: bool = True
    vm_monitoring: str = "vmMonitoringDisabled"
    default_priority: str = "medium"
    default_priority_set: bool = False  # the cluster sets a default (vs. the API's medium)
    priority_timeout: float = DEFAULT_PRIORITY_TIMEOUT
    tools: ToolsMonitoring = field(default_factory=ToolsMonitoring)
    options: Mapping[str, str] = field(default_factory=dict)
    readiness: Readiness = field(default_factory=Readiness)
    overrides: Mapping[str, VmOverride] = field(default_factory=dict)
    dependencies: tuple[Dependency, ...] = ()

    @property
    def io_stats_interval(self) -> float:
        return _option_num(self.options, "das.iostatsinterval", DEFAULT_IO_STATS_INTERVAL)

    @property
    def max_restart_count(self) -> int:
        return int(_option_num(self.options, "das.maxvmrestartcount", DEFAULT_MAX_RESTART_COUNT))

    def override(self, vm_id: str) -> VmOverride:
        return self.overrides.get(vm_id) or VmOverride()

    def priority_override(self, vm_id: str) -> str:
        """The VM's own HA restart priority, or "" when it uses the cluster's."""
        p = self.override(vm_id).restart_priority
        return "" if p in ("", CLUSTER_PRIORITY) else p

    def vm_monitoring_of(self, vm_id: str) -> str:
        """The VM-monitoring mode HA applies to this VM (per-VM override, else cluster)."""
        o = self.override(vm_id)
        if o.tools is not None and o.tools.vm_monitoring:
            return o.tools.vm_monitoring
        return o.vm_monitoring or self.vm_monitoring

    def tools_of(self, vm_id: str) -> ToolsMonitoring:
        """The VM-monitoring thresholds for this VM, with its effective mode."""
        o = self.override(vm_id)
        base = o.tools if o.tools is not None else self.tools
        return ToolsMonitoring(
            vm_monitoring=self.vm_monitoring_of(vm_id),
            failure_interval=base.failure_interval,
            min_uptime=base.min_uptime,
            max_failures=base.max_failures,
            max_failure_window=base.max_failure_window,
        )

    def readiness_of(self, vm_id: str) -> Readiness:
        r = self.override(vm_id).readiness
        if r is None:
            return self.readiness
        cond = self.readiness.condition if r.condition in ("", USE_CLUSTER_DEFAULT) else r.condition
        delay = self.readiness.post_ready_delay if r.post_ready_delay < 0 else r.post_ready_delay
        return Readiness(cond, delay)

    def priority_timeout_of(self, vm_id: str) -> float:
        t = self.override(vm_id).restart_priority_timeout
        return self.priority_timeout if t is None or t < 0 else t


@dataclass(frozen=True)
class VmHAFacts:
    """What decides whether anyone may restart or reset one VM."""

    moid: str
    name: str
    host_id: str = ""
    power_state: str = "poweredOff"
    boot_time: float | None = None
    das_protected: bool | None = None  # None: vCenter reports no protection state
    managed_by: str = ""  # "extensionKey" or "extensionKey/type"
    ft_role: int | None = None  # 1 primary, 2+ secondary
    host_tied_devices: tuple[str, ...] = ()
    local_only_storage: bool = False
    guest_heartbeat: str = "gray"
    app_heartbeat: str = ""
    app_state: str = "none"


@dataclass(frozen=True)
class IOActivity:
    """A VM's disk and network throughput over the I/O stats interval (KB/s, averaged)."""

    disk_kbps: float
    net_kbps: float
    window_seconds: float

    @property
    def idle(self) -> bool:
        return self.disk_kbps <= 0 and self.net_kbps <= 0


@dataclass(frozen=True)
class HAView:
    cluster: ClusterHA | None
    vms: Mapping[str, VmHAFacts]


class PropertySession(Protocol):
    """What :func:`read_ha` needs of :class:`remediator.live.Session`."""

    def stub_obj(self, kind: type, moid: str) -> Any: ...

    def retrieve(self, specs: Any, objects: Any) -> list[Any]: ...


# --- parsing (pyVmomi objects -> snapshots) ---------------------------------------------


def _moid(value: Any) -> str:
    return str(value._moId) if value is not None and hasattr(value, "_moId") else ""


def _option_num(options: Mapping[str, str], key: str, default: float) -> float:
    raw = options.get(key)
    try:
        value = float(raw) if raw is not None else default
    except ValueError:
        return default
    return value if value > 0 else default


def _int_or(value: Any, default: float) -> float:
    """An optional xsd:int: unset (None) means the default; vcsim reports unset as 0."""
    return float(value) if isinstance(value, int) and value > 0 else default


def parse_tools(tools: Any, base: ToolsMonitoring | None = None) -> ToolsMonitoring:
    base = base or ToolsMonitoring()
    if tools is None:
        return base
    window = getattr(tools, "maxFailureWindow", None)
    if isinstance(window, int) and window != 0:
        max_window: float | None = None if window < 0 else float(window)
    else:
        max_window = base.max_failure_window
    return ToolsMonitoring(
        vm_monitoring=str(getattr(tools, "vmMonitoring", "") or base.vm_monitoring),
        failure_interval=_int_or(getattr(tools, "failureInterval", None), base.failure_interval),
        min_uptime=_int_or(getattr(tools, "minUpTime", None), base.min_uptime),
        max_failures=int(_int_or(getattr(tools, "maxFailures", None), base.max_failures)),
        max_failure_window=max_window,
    )


def _readiness(r: Any, default: Readiness | None = None) -> Readiness | None:
    if r is None:
        return default
    delay = getattr(r, "postReadyDelay", None)
    return Readiness(
        condition=str(getattr(r, "readyCondition", "") or ""),
        post_ready_delay=float(delay) if isinstance(delay, int) else 0.0,
    )


def parse_cluster(
    moid: str, name: str, config_ex: Any, groups: Mapping[str, set[str]] | None = None
) -> ClusterHA:
    """A ClusterConfigInfoEx as vSphere HA applies it."""
    das = getattr(config_ex, "dasConfig", None)
    if das is None:
        return ClusterHA(moid=moid, name=name)
    defaults = getattr(das, "defaultVmSettings", None)
    vm_mon = str(getattr(das, "vmMonitoring", "") or "vmMonitoringDisabled")
    tools = parse_tools(getattr(defaults, "vmToolsMonitoringSettings", None))
    tools = ToolsMonitoring(
        vm_mon,
        tools.failure_interval,
        tools.min_uptime,
        tools.max_failures,
        tools.max_failure_window,
    )
    prio = str(getattr(defaults, "restartPriority", "") or "")
    timeout = getattr(defaults, "restartPriorityTimeout", None)
    options = {
        str(o.key): str(o.value)
        for o in (getattr(das, "option", None) or [])
        if getattr(o, "key", None)
    }
    orch = getattr(config_ex, "orchestration", None)
    readiness = _readiness(getattr(orch, "defaultVmReadiness", None), Readiness()) or Readiness()
    if readiness.condition in ("", USE_CLUSTER_DEFAULT):
        readiness = Readiness("none", readiness.post_ready_delay)
    per_vm_ready = {
        _moid(o.vm): _readiness(getattr(o, "vmReadiness", None))
        for o in (getattr(config_ex, "vmOrchestration", None) or [])
    }
    overrides: dict[str, VmOverride] = {}
    for o in getattr(config_ex, "dasVmConfig", None) or []:
        vm_id = _moid(getattr(o, "key", None))
        s = getattr(o, "dasSettings", None)
        # the deprecated top-level restartPriority (DasVmPriority) when dasSettings has none
        prio_vm = str(getattr(s, "restartPriority", "") or getattr(o, "restartPriority", "") or "")
        t = getattr(s, "vmToolsMonitoringSettings", None)
        own_tools = None
        vm_mode = ""
        # clusterSettings (default true) says whether the VM uses the cluster's settings
        if t is not None and getattr(t, "clusterSettings", None) is False:
            vm_mode = str(getattr(t, "vmMonitoring", "") or "")
            own_tools = parse_tools(t, tools)
        pt = getattr(s, "restartPriorityTimeout", None)
        overrides[vm_id] = VmOverride(
            restart_priority=prio_vm,
            restart_priority_timeout=float(pt) if isinstance(pt, int) and pt != 0 else None,
            vm_monitoring=vm_mode,
            tools=own_tools,
            readiness=per_vm_ready.get(vm_id),
        )
    for vm_id, r in per_vm_ready.items():
        if vm_id not in overrides:
            overrides[vm_id] = VmOverride(readiness=r)
    deps: list[Dependency] = []
    groups = groups if groups is not None else vm_groups(config_ex)
    for rule in getattr(config_ex, "rule", None) or []:
        if not hasattr(rule, "dependsOnVmGroup") or getattr(rule, "enabled", True) is False:
            continue
        deps.append(
            Dependency(
                name=str(getattr(rule, "name", "") or ""),
                vms=frozenset(groups.get(str(rule.vmGroup), set())),
                depends_on=frozenset(groups.get(str(rule.dependsOnVmGroup), set())),
                mandatory=bool(getattr(rule, "mandatory", False)),
            )
        )
    return ClusterHA(
        moid=moid,
        name=name,
        enabled=bool(getattr(das, "enabled", False)),
        host_monitoring=str(getattr(das, "hostMonitoring", "") or "enabled") == "enabled",
        vm_monitoring=vm_mon,
        default_priority=prio if prio in PRIORITIES else "medium",
        default_priority_set=prio in PRIORITIES,
        priority_timeout=float(timeout)
        if isinstance(timeout, int) and timeout > 0
        else DEFAULT_PRIORITY_TIMEOUT,
        tools=tools,
        options=options,
        readiness=readiness,
        overrides=overrides,
        dependencies=tuple(deps),
    )


def vm_groups(config_ex: Any) -> dict[str, set[str]]:
    """ClusterVmGroup name -> VM moids."""
    out: dict[str, set[str]] = {}
    for g in getattr(config_ex, "group", None) or []:
        if hasattr(g, "vm"):
            out[str(g.name)] = {_moid(v) for v in (g.vm or [])}
    return out


def host_tied_devices(devices: Iterable[Any] | None) -> tuple[str, ...]:
    """Devices that tie a VM to its host: PCI passthrough (DirectPath, dynamic), vGPU, SR-IOV."""
    kinds: list[str] = []
    for d in devices or []:
        kind = type(d).__name__.split(".")[-1]
        backing = type(getattr(d, "backing", None)).__name__.split(".")[-1]
        if "Sriov" in kind:
            kinds.append("sriov")
        elif "PCIPassthrough" in kind:
            kinds.append("vgpu" if "Vmiop" in backing else "pciPassthrough")
    return tuple(kinds)


def parse_vm(moid: str, p: Mapping[str, Any], datastore_hosts: Mapping[str, int]) -> VmHAFacts:
    """One VM's properties (``VM_PATHS``); ``datastore_hosts``: datastore -> hosts mounting it."""
    prot = p.get("summary.runtime.dasVmProtection")
    mb = p.get("config.managedBy")
    key = str(getattr(mb, "extensionKey", None) or "")
    kind = str(getattr(mb, "type", None) or "")
    managed = key + (f"/{kind}" if key and kind else "")
    ft = p.get("config.ftInfo")
    role = getattr(ft, "role", None) if ft is not None else None
    stores = [_moid(d) for d in (p.get("datastore") or [])]
    # local-only: every datastore is known and mounted on at most one host (an unread
    # datastore proves nothing)
    local = bool(stores) and all(d in datastore_hosts and datastore_hosts[d] <= 1 for d in stores)
    boot = p.get("runtime.bootTime")
    return VmHAFacts(
        moid=moid,
        name=str(p.get("name", moid)),
        host_id=_moid(p.get("runtime.host")),
        power_state=str(p.get("runtime.powerState") or "poweredOff"),
        boot_time=boot.timestamp() if isinstance(boot, datetime) else None,
        das_protected=bool(prot.dasProtected) if prot is not None else None,
        managed_by=managed,
        ft_role=int(role) if isinstance(role, int) else None,
        host_tied_devices=host_tied_devices(p.get("config.hardware.device")),
        local_only_storage=local,
        guest_heartbeat=str(p.get("guestHeartbeatStatus") or "gray"),
        app_heartbeat=str(p.get("guest.appHeartbeatStatus") or ""),
        app_state=str(p.get("guest.appState") or "none"),
    )


# --- the live read ----------------------------------------------------------------------


def _props(content: Any) -> dict[str, Any]:
    return {p.name: p.val for p in (content.propSet or [])}


def read_ha(
    session: PropertySession, cluster_id: str, vm_ids: Iterable[str] | None = None
) -> HAView:
    """A cluster's HA settings and the HA facts of its VMs, in one call: every VM on its
    hosts, or only ``vm_ids`` (a decision's VMs: a VM's device list is the bulk of the
    read, ~3 s for 1,000 VMs in the simulator)."""
    from pyVmomi import vim, vmodl

    pc = vmodl.query.PropertyCollector
    to_ds = pc.TraversalSpec(name="vm2ds", type=vim.VirtualMachine, path="datastore", skip=False)
    to_vms = pc.TraversalSpec(
        name="host2vm",
        type=vim.HostSystem,
        path="vm",
        skip=False,
        selectSet=[pc.SelectionSpec(name="vm2ds")],
    )
    only = sorted(set(vm_ids)) if vm_ids is not None else None
    to_hosts = pc.TraversalSpec(
        name="cluster2host",
        type=vim.ClusterComputeResource,
        path="host",
        skip=False,
        selectSet=[pc.SelectionSpec(name="host2vm")] if only is None else [],
    )
    objs = [
        pc.ObjectSpec(
            obj=session.stub_obj(vim.ClusterComputeResource, cluster_id),
            skip=False,
            selectSet=[to_hosts, to_vms, to_ds] if only is None else [to_hosts],
        )
    ]
    objs += [
        pc.ObjectSpec(obj=session.stub_obj(vim.VirtualMachine, m), skip=False, selectSet=[to_ds])
        for m in only or []
    ]
    specs = [
        pc.PropertySpec(type=vim.ClusterComputeResource, pathSet=CLUSTER_PATHS),
        pc.PropertySpec(type=vim.VirtualMachine, pathSet=VM_PATHS),
        pc.PropertySpec(type=vim.Datastore, pathSet=DATASTORE_PATHS),
        pc.PropertySpec(type=vim.HostSystem, pathSet=HOST_PATHS),
    ]
    cluster: ClusterHA | None = None
    raw_vms: list[tuple[str, dict[str, Any]]] = []
    mounted: dict[str, set[str]] = {}  # datastore -> hosts mounting it (either side's view)
    for content in session.retrieve(specs, objs):
        if not content.propSet:
            continue
        p = _props(content)
        moid = _moid(content.obj)
        if isinstance(content.obj, vim.ClusterComputeResource):
            cluster = parse_cluster(moid, str(p.get("name", moid)), p.get("configurationEx"))
        elif isinstance(content.obj, vim.VirtualMachine):
            raw_vms.append((moid, p))
        elif isinstance(content.obj, vim.Datastore):
            mounts = [
                m
                for m in (p.get("host") or [])
                if getattr(getattr(m, "mountInfo", None), "accessible", True) is not False
            ]
            mounted.setdefault(moid, set()).update(_moid(m.key) for m in mounts)
        elif isinstance(content.obj, vim.HostSystem):
            for d in p.get("datastore") or []:
                mounted.setdefault(_moid(d), set()).add(moid)
    ds_hosts = {d: len(hosts) for d, hosts in mounted.items()}
    return HAView(cluster, {m: parse_vm(m, p, ds_hosts) for m, p in raw_vms})


# --- guest I/O (HA's VM-monitoring I/O check) ---------------------------------------------

IO_COUNTERS = ("disk.usage.average", "net.usage.average")  # KB/s, real-time (20 s) samples
REALTIME_INTERVAL = 20


class PerfSession(Protocol):
    def stub_obj(self, kind: type, moid: str) -> Any: ...

    def content(self) -> Any: ...


def read_io(session: PerfSession, vm_id: str, window_seconds: float) -> IOActivity | None:
    """The VM's disk and network I/O over the last ``window_seconds`` (QueryPerf, real-time
    20 s samples), or ``None`` when vCenter has no such counters or samples for it.

    The peak sample counts, not the mean: HA resets only a VM that did *no* I/O at all in
    the interval.
    """
    from pyVmomi import vim, vmodl

    pm = session.content().perfManager
    ids = {
        f"{c.groupInfo.key}.{c.nameInfo.key}.{c.rollupType}": c.key for c in pm.perfCounter or []
    }
    if not all(k in ids for k in IO_COUNTERS):
        return None
    samples = max(1, int(window_seconds // REALTIME_INTERVAL))
    spec = vim.PerformanceManager.QuerySpec(
        entity=session.stub_obj(vim.VirtualMachine, vm_id),
        intervalId=REALTIME_INTERVAL,
        maxSample=samples,
        metricId=[
            vim.PerformanceManager.MetricId(counterId=ids[k], instance="") for k in IO_COUNTERS
        ],
    )
    try:
        result = pm.QueryPerf(querySpec=[spec]) or []
    except vmodl.MethodFault:
        return None
    peak: dict[int, float] = {}
    for entity in result:
        for series in getattr(entity, "value", None) or []:
            values = [float(v) for v in (series.value or []) if v is not None and v >= 0]
            if values:
                cid = int(series.id.counterId)
                peak[cid] = max(peak.get(cid, 0.0), max(values))
    disk, net = (peak.get(ids[k]) for k in IO_COUNTERS)
    if disk is None or net is None:
        return None
    return IOActivity(disk_kbps=disk, net_kbps=net, window_seconds=samples * REALTIME_INTERVAL)
