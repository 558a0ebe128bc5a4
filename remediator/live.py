"""Re-reading the truth: live vCenter state as :mod:`remediator.model` snapshots.

Every decision and every step starts here, because an alert may be minutes old and vSphere
HA, DRS or a person may have acted since.  Reads use the property collector with exactly
the properties the policy needs, one round trip per snapshot (cluster -> hosts -> VMs by
traversal), so a decision on a 1,000-VM cluster stays one call.

All functions are blocking pyvmomi; the engine runs them on a thread pool.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pyVmomi import VmomiSupport, vim, vmodl

from vcenter.config import Config, VCenterConfig
from vcenter.faults import checked_contents
from vcenter.properties import retrieve_pages
from vcenter.session import connect, disconnect
from vcenter.soap import SoapSession

from . import drs_rules, preflight
from .model import ClusterState, HostState, Snapshot, VMMonitoring, VMState
from .plain_reads import PlainCollector, PlainReadFailed

HOST_PROPS = [
    "name",
    "parent",
    "customValue",
    "runtime.connectionState",
    "runtime.powerState",
    "runtime.inMaintenanceMode",
    "runtime.inQuarantineMode",
    "runtime.dasHostState",
    "datastore",
    "network",
    "summary.hardware.cpuMhz",
    "summary.hardware.numCpuCores",
    "summary.hardware.memorySize",
    "summary.quickStats.overallCpuUsage",
    "summary.quickStats.overallMemoryUsage",
]
VM_PROPS = [
    "name",
    "parent",
    "customValue",
    "config.template",
    "config.files.vmPathName",
    "runtime.host",
    "runtime.powerState",
    "runtime.connectionState",
    "runtime.bootTime",
    "guestHeartbeatStatus",
    "guest.appHeartbeatStatus",
    "guest.appState",
    "datastore",
    "network",
    "summary.config.numCpu",
    "summary.config.memorySizeMB",
    "summary.config.cpuReservation",
    "summary.config.memoryReservation",
    "summary.quickStats.overallCpuUsage",
    "summary.quickStats.hostMemoryUsage",
]
CLUSTER_PROPS = ["name", "configurationEx", "resourcePool", "host"]
# What a step needs to re-check before it acts: state and identity, not capacity.  Reading
# less matters here, because a host failure means one such read per VM.
STEP_HOST_PROPS = [p for p in HOST_PROPS if not p.startswith("summary.")]
# A step also reads what ties the VM to its host (pre-flight); a decision over a whole
# cluster does not, as devices are the bulk of a VM's config.
STEP_VM_PROPS = [p for p in VM_PROPS if not p.startswith("summary.")] + [
    "config.hardware.device",
    "runtime.faultToleranceState",
]
DATASTORE_PROPS = ["name", "summary.accessible", "host"]

# Connection-level failures: vCenter (or our path to it) is down, not the request wrong.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ConnectionError,
    TimeoutError,
    vim.fault.NotAuthenticated,
    vmodl.fault.HostCommunication,
    vmodl.fault.SystemError,
)


log = logging.getLogger("remediator")


class NotFoundError(LookupError):
    """The object an alert names is not (or no longer) in vCenter."""


def _moid(value: Any) -> str:
    return str(value._moId) if value is not None and hasattr(value, "_moId") else ""


def _kind(ref: Any) -> str:
    """The managed object type of a reference: pyVmomi's (its class's WSDL name) or a
    plain read's (the reference's ``type`` attribute)."""
    if isinstance(ref, VmomiSupport.ManagedObject):
        return str(ref._wsdlName)  # noqa: SLF001
    return str(getattr(ref, "type", "") or "")


def _timestamp(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    return None


# What makes a login unusable: the session ended, or the transport to vCenter broke.  A
# fault that vCenter *answered* (SystemError, HostCommunication, ...) leaves the session
# fine, so it is only retried, never logged out.
SESSION_ERRORS: tuple[type[BaseException], ...] = (OSError, ConnectionError, TimeoutError)


class _Login:
    """One vCenter login and the calls using it; logged out only when none is left."""

    def __init__(self, si: Any, content: Any) -> None:
        self.si = si
        self.content = content
        self.fields: dict[int, str] = {}
        self.users = 0
        self.retired = False
        self.plain: PlainCollector | None = None  # made on first use (Session.collector)


def _logout(login: _Login) -> None:
    """End a login: its plain-XML connections, then the pyVmomi session."""
    if login.plain is not None:
        login.plain.close()
    disconnect(login.si)


class Session:
    """One vCenter login shared by the remediator's threads, re-established on demand.

    pyvmomi's SOAP stub keeps a connection pool, so concurrent calls from the thread pool
    are safe; only (re)connecting is serialised.  A login that failed is *retired*, never
    logged out under the other workers still using it: a Logout in the middle of their
    calls would turn their reads into NotAuthenticated answers.  It is logged out when its
    last call returns.
    """

    def __init__(self, vc: VCenterConfig, config: Config, pool_size: int = 8) -> None:
        self.vc = vc
        self.config = config
        self.pool_size = pool_size
        self._login: _Login | None = None
        self._lock = threading.Lock()
        self._local = threading.local()
        self.logins = 0  # how many times this session logged in (tests, logs)

    @property
    def name(self) -> str:
        return self.vc.name

    def _current(self) -> _Login:
        """The login of the call running on this thread, else the shared one."""
        login: _Login | None = getattr(self._local, "login", None)
        if login is not None:
            return login
        with self._lock:
            return self._ensure()

    def _ensure(self) -> _Login:
        """The shared login, logging in first if there is none.  Caller holds the lock."""
        if self._login is None:
            si = connect(self.vc)
            # pyvmomi keeps 5 idle connections by default; with more worker threads the
            # rest would be closed after each call and every call would pay a TLS
            # handshake.
            si._stub.poolSize = max(si._stub.poolSize, self.pool_size)
            # ``si.content`` is a remote property: every access is a round trip that
            # returns the whole ServiceContent.  Read it once per login.
            self._login = _Login(si, si.RetrieveContent())
            self.logins += 1
        return self._login

    def si(self) -> Any:
        return self._current().si

    def content(self) -> Any:
        return self._current().content

    def _enter(self) -> _Login:
        with self._lock:
            login = self._ensure()
            login.users += 1
        return login

    def _leave(self, login: _Login) -> None:
        with self._lock:
            login.users -= 1
            done = login.retired and login.users == 0
        if done:
            threading.Thread(target=_logout, args=(login,), daemon=True).start()

    def _retire(self, login: _Login) -> None:
        with self._lock:
            if self._login is login:
                self._login = None
            login.retired = True

    def drop(self) -> None:
        """Forget the shared login, so the next call logs in again (logged out once idle)."""
        with self._lock:
            login, self._login = self._login, None
            if login is None:
                return
            login.retired = True
            idle = login.users == 0
        if idle:
            threading.Thread(target=_logout, args=(login,), daemon=True).start()

    def close(self) -> None:
        with self._lock:
            login, self._login = self._login, None
        if login is not None:
            login.retired = True
            _logout(login)

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(session, *args)``; on a lost session log in once more and retry."""
        for attempt in (1, 2):
            login = self._enter()
            self._local.login = login
            try:
                return fn(self, *args)
            except vim.fault.NotAuthenticated:
                self._retire(login)
                if attempt == 2:
                    raise
            except SESSION_ERRORS:
                self._retire(login)
                raise
            finally:
                self._local.login = None
                self._leave(login)
        raise AssertionError("unreachable")

    # --- property collector ------------------------------------------------------------

    def stub_obj(self, kind: type, moid: str) -> Any:
        return kind(moid, self.si()._stub)

    def collector(self, plain: bool = False) -> Any:
        """The property collector; with ``plain``, its stand-in reading answers as plain
        XML on this login's session (remediator/plain_reads.py) when the login has a
        session cookie to share, else pyVmomi's own."""
        login = self._current()
        if not plain:
            return login.content.propertyCollector
        with self._lock:
            if login.plain is None and SoapSession.usable(login.si):
                soap = SoapSession.for_vcenter(login.si, self.vc)
                login.plain = PlainCollector(login.content.propertyCollector, soap)
            return login.plain or login.content.propertyCollector

    def retrieve(
        self, specs: Sequence[Any], objects: Sequence[Any], *, plain: bool = False
    ) -> list[Any]:
        """RetrievePropertiesEx with paging; ``objects`` are ObjectSpecs.

        ``plain``: the answer read as plain XML (:meth:`collector`), values as plain
        stand-ins of pyVmomi's objects (read with :func:`_kind` and
        :func:`vcenter.soap_values.is_a`, never ``isinstance`` of a pyVmomi class). An
        answer that cannot be read so is read again through pyVmomi (logged); a fault
        vCenter answered, or a broken connection, is raised as pyVmomi raises it."""
        fspec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=list(objects), propSet=list(specs), reportMissingObjectsInResults=True
        )
        pc = self.collector(plain)
        out: list[Any] = []
        try:
            for page in retrieve_pages(pc, fspec):
                # A read that failed for an object (session ended, no permission, a server
                # fault) raises here; only omitted or ManagedObjectNotFound objects are gone.
                out.extend(checked_contents(page))
        except PlainReadFailed as exc:
            log.warning("%s: reading again through pyVmomi: %s", self.name, exc)
            return self.retrieve(specs, objects)
        return out

    def fields(self) -> dict[int, str]:
        """Custom attribute key -> name, cached per login."""
        login = self._current()
        if not login.fields:
            cfm = login.content.customFieldsManager
            login.fields = {int(f.key): str(f.name) for f in (cfm.field or [])} if cfm else {}
        return login.fields

    def attributes(self, values: Iterable[Any]) -> dict[str, str]:
        names = self.fields()
        out = {}
        for v in values or []:
            key = int(getattr(v, "key", -1))
            if key not in names:
                self._current().fields = {}
                names = self.fields()
            if key in names:
                out[names[key]] = str(getattr(v, "value", ""))
        return out


def _props(content: Any) -> dict[str, Any]:
    return {p.name: p.val for p in (content.propSet or [])}


def host_from(session: Session, moid: str, p: Mapping[str, Any]) -> HostState:
    attrs = session.attributes(p.get("customValue") or [])
    name = str(p.get("name", moid))
    das = p.get("runtime.dasHostState")
    parent = p.get("parent")
    mhz = float(p.get("summary.hardware.cpuMhz") or 0)
    cores = float(p.get("summary.hardware.numCpuCores") or 0)
    return HostState(
        moid=moid,
        name=name,
        cluster_id=_moid(parent) if _kind(parent) == "ClusterComputeResource" else "",
        connection_state=str(p.get("runtime.connectionState") or "notResponding"),
        power_state=str(p.get("runtime.powerState") or "unknown"),
        maintenance=bool(p.get("runtime.inMaintenanceMode")),
        quarantine=bool(p.get("runtime.inQuarantineMode")),
        das_state=str(getattr(das, "state", "") or ""),
        fault_domain=session.config.fault_domains.resolve(name, attrs),
        cpu_capacity_mhz=mhz * cores,
        memory_capacity_mb=float(p.get("summary.hardware.memorySize") or 0) / (1 << 20),
        cpu_usage_mhz=float(p.get("summary.quickStats.overallCpuUsage") or 0),
        memory_usage_mb=float(p.get("summary.quickStats.overallMemoryUsage") or 0),
        mounts_known="datastore" in p,
        datastores=frozenset(_moid(d) for d in (p.get("datastore") or [])),
        networks=frozenset(_moid(n) for n in (p.get("network") or [])),
    )


def vm_from(session: Session, moid: str, p: Mapping[str, Any]) -> VMState:
    attrs = session.attributes(p.get("customValue") or [])
    name = str(p.get("name", moid))
    cfg = session.config
    return VMState(
        moid=moid,
        name=name,
        host_id=_moid(p.get("runtime.host")),
        power_state=str(p.get("runtime.powerState") or "poweredOff"),
        connection_state=str(p.get("runtime.connectionState") or "connected"),
        guest_heartbeat=str(p.get("guestHeartbeatStatus") or "gray"),
        app_heartbeat=str(p.get("guest.appHeartbeatStatus") or ""),
        app_state=str(p.get("guest.appState") or "none"),
        boot_time=_timestamp(p.get("runtime.bootTime")),
        num_cpu=int(p.get("summary.config.numCpu") or 1),
        memory_mb=float(p.get("summary.config.memorySizeMB") or 0),
        cpu_reservation_mhz=float(p.get("summary.config.cpuReservation") or 0),
        memory_reservation_mb=float(p.get("summary.config.memoryReservation") or 0),
        cpu_usage_mhz=float(p.get("summary.quickStats.overallCpuUsage") or 0),
        memory_usage_mb=float(p.get("summary.quickStats.hostMemoryUsage") or 0),
        protected=cfg.protection.is_protected(name, attrs),
        priority=cfg.restart_priority.resolve(name, attrs),
        template=bool(p.get("config.template")),
        vmx_path=str(p.get("config.files.vmPathName") or ""),
        folder_id=_moid(p.get("parent")),
        custom_values=attrs,
        datastores=tuple(_moid(d) for d in (p.get("datastore") or [])),
        vmx_datastore=_datastore_of(str(p.get("config.files.vmPathName") or "")),
        networks=tuple(_moid(n) for n in (p.get("network") or [])),
        host_tied=preflight.host_tied(
            p.get("config.hardware.device"), str(p.get("runtime.faultToleranceState") or "")
        ),
    )


def _datastore_of(vmx_path: str) -> str:
    """``[ds-name] dir/vm.vmx`` -> ``ds-name``."""
    if vmx_path.startswith("[") and "]" in vmx_path:
        return vmx_path[1 : vmx_path.index("]")]
    return ""


def _monitoring(config_ex: Any) -> tuple[bool, bool, VMMonitoring]:
    das = getattr(config_ex, "dasConfig", None)
    if das is None:
        return False, False, VMMonitoring()
    tools = getattr(getattr(das, "defaultVmSettings", None), "vmToolsMonitoringSettings", None)

    def num(name: str) -> float | None:
        value = getattr(tools, name, None) if tools is not None else None
        return float(value) if value is not None and value >= 0 else None

    max_failures = num("maxFailures")
    return (
        bool(das.enabled),
        bool(getattr(das, "admissionControlEnabled", False)),
        VMMonitoring(
            mode=str(getattr(das, "vmMonitoring", "") or "vmMonitoringDisabled"),
            failure_interval=num("failureInterval"),
            min_uptime=num("minUpTime"),
            max_failures=int(max_failures) if max_failures else None,
            # -1 is vSphere's "no window" (kept as -1.0); unset (vcsim: 0) is None
            max_failure_window=-1.0
            if getattr(tools, "maxFailureWindow", None) == -1
            else num("maxFailureWindow") or None,
        ),
    )


def cluster_snapshot(session: Session, cluster_id: str, plain: bool = True) -> Snapshot:
    """A cluster, all its hosts and all their VMs, in one property-collector call (its
    answer read as plain XML unless ``plain`` is false: remediator/plain_reads.py)."""
    cluster = session.stub_obj(vim.ClusterComputeResource, cluster_id)
    TS = vmodl.query.PropertyCollector.TraversalSpec
    SS = vmodl.query.PropertyCollector.SelectionSpec
    to_vms = TS(name="host2vm", type=vim.HostSystem, path="vm", skip=False)
    to_ds = TS(name="host2ds", type=vim.HostSystem, path="datastore", skip=False)
    to_hosts = TS(
        name="cluster2host",
        type=vim.ClusterComputeResource,
        path="host",
        skip=False,
        selectSet=[SS(name="host2vm"), SS(name="host2ds")],
    )
    obj = vmodl.query.PropertyCollector.ObjectSpec(
        obj=cluster, skip=False, selectSet=[to_hosts, to_vms, to_ds]
    )
    PS = vmodl.query.PropertyCollector.PropertySpec
    specs = [
        PS(type=vim.ClusterComputeResource, pathSet=CLUSTER_PROPS),
        PS(type=vim.HostSystem, pathSet=HOST_PROPS),
        PS(type=vim.VirtualMachine, pathSet=VM_PROPS),
        PS(type=vim.Datastore, pathSet=DATASTORE_PROPS),
    ]
    return _build(session, session.retrieve(specs, [obj], plain=plain))


def objects_snapshot(
    session: Session,
    vm_ids: Iterable[str] = (),
    host_ids: Iterable[str] = (),
    plain: bool = True,
) -> Snapshot:
    """Just these VMs and hosts (a step's re-read before it acts): state and identity only,
    no capacity or cluster settings (a step that must re-place reads the whole cluster).
    Read as plain XML unless ``plain`` is false, as :func:`cluster_snapshot`."""
    OS = vmodl.query.PropertyCollector.ObjectSpec
    PS = vmodl.query.PropertyCollector.PropertySpec
    to_ds = vmodl.query.PropertyCollector.TraversalSpec(
        name="host2ds", type=vim.HostSystem, path="datastore", skip=False
    )
    objs = [OS(obj=session.stub_obj(vim.VirtualMachine, m), skip=False) for m in set(vm_ids) if m]
    objs += [
        OS(obj=session.stub_obj(vim.HostSystem, m), skip=False, selectSet=[to_ds])
        for m in set(host_ids)
        if m
    ]
    specs = [
        PS(type=vim.HostSystem, pathSet=STEP_HOST_PROPS),
        PS(type=vim.VirtualMachine, pathSet=STEP_VM_PROPS),
        PS(type=vim.Datastore, pathSet=DATASTORE_PROPS),
    ]
    return _build(session, session.retrieve(specs, objs, plain=plain) if objs else [])


def _build(session: Session, contents: Iterable[Any]) -> Snapshot:
    hosts: dict[str, HostState] = {}
    vms: dict[str, VMState] = {}
    cluster: ClusterState | None = None
    datastores: dict[str, Mapping[str, Any]] = {}
    for content in contents:
        obj = content.obj
        kind = _kind(obj)
        if kind == "Datastore":
            datastores[_moid(obj)] = _props(content)
            continue
        moid = _moid(obj)
        p = _props(content)
        if kind == "HostSystem":
            hosts[moid] = host_from(session, moid, p)
        elif kind == "VirtualMachine":
            vms[moid] = vm_from(session, moid, p)
        elif kind == "ClusterComputeResource":
            ha, admission, mon = _monitoring(p.get("configurationEx"))
            cluster = ClusterState(
                moid=moid,
                name=str(p.get("name", moid)),
                ha_enabled=ha,
                admission_control=admission,
                vm_monitoring=mon,
                resource_pool=_moid(p.get("resourcePool")),
                host_ids=tuple(_moid(h) for h in (p.get("host") or [])),
                rules=drs_rules.from_config(p.get("configurationEx")),
            )
    if datastores:
        hosts = {m: _usable_datastores(h, datastores) for m, h in hosts.items()}
    return Snapshot(session.name, time.time(), cluster, hosts, vms)


def _usable_datastores(host: HostState, datastores: Mapping[str, Mapping[str, Any]]) -> HostState:
    """Keep the host's datastores that are accessible and mounted on it (pre-flight)."""
    usable: dict[str, str] = {}
    for ds in host.datastores:
        p = datastores.get(ds)
        if p is None:
            continue  # not read: not proved usable
        if p.get("summary.accessible") is False:
            continue
        mount = next((m for m in (p.get("host") or []) if _moid(m.key) == host.moid), None)
        info = getattr(mount, "mountInfo", None)
        if info is not None and (
            getattr(info, "accessible", True) is False or getattr(info, "mounted", True) is False
        ):
            continue
        usable[ds] = str(p.get("name", ds))
    return dataclasses.replace(host, datastores=frozenset(usable), datastore_names=usable)


def _host_parent(session: Session, host_id: str) -> tuple[str, str]:
    """(cluster moid or "", host name) for a host; raises NotFoundError when it is gone."""
    snap = session.retrieve(
        [
            vmodl.query.PropertyCollector.PropertySpec(
                type=vim.HostSystem, pathSet=["name", "parent"]
            )
        ],
        [vmodl.query.PropertyCollector.ObjectSpec(obj=session.stub_obj(vim.HostSystem, host_id))],
    )
    if not snap or not snap[0].propSet:
        raise NotFoundError(f"host {host_id} is not in vCenter")
    p = _props(snap[0])
    parent = p.get("parent")
    return (_moid(parent) if isinstance(parent, vim.ClusterComputeResource) else ""), str(
        p.get("name", host_id)
    )


def _everything(session: Session, paths: Mapping[type, list[str]]) -> list[Any]:
    """``paths`` of every object of the given types in the inventory, in one call."""
    content = session.content()
    view = content.viewManager.CreateContainerView(content.rootFolder, list(paths), True)
    OS = vmodl.query.PropertyCollector.ObjectSpec
    TS = vmodl.query.PropertyCollector.TraversalSpec
    PS = vmodl.query.PropertyCollector.PropertySpec
    try:
        return session.retrieve(
            [PS(type=kind, pathSet=props) for kind, props in paths.items()],
            [
                OS(
                    obj=view,
                    skip=True,
                    selectSet=[
                        TS(name="view", type=vim.view.ContainerView, path="view", skip=False)
                    ],
                )
            ],
        )
    finally:
        view.DestroyView()


def _find_by_name(session: Session, kind: type, name: str) -> str:
    for c in _everything(session, {kind: ["name"]}):
        if _props(c).get("name") == name:
            return _moid(c.obj)
    raise NotFoundError(f"no {kind.__name__.split('.')[-1]} named {name!r} in vCenter")


def find_registered(
    session: Session, name: str, vmx_path: str, original: str, source_host: str = ""
) -> str:
    """The moid of a VM already registered from ``vmx_path`` under ``name``, or ``""``.

    After a crash between registering a VM and journaling it, the retry must adopt that
    VM instead of registering the same files a second time.  Its failed host may have come
    back meanwhile with its own, stale registration of the same files (duplicates.py):
    a copy on another host is always preferred; one on ``source_host`` is taken only when
    it is the only registration (then it is the VM, back with its host).
    """
    found = _everything(
        session, {vim.VirtualMachine: ["name", "config.files.vmPathName", "runtime.host"]}
    )
    elsewhere: list[str] = []
    on_source: list[str] = []
    for c in found:
        p = _props(c)
        same = p.get("name") == name and p.get("config.files.vmPathName") == vmx_path
        if not same or _moid(c.obj) == original:
            continue
        on = source_host and _moid(p.get("runtime.host")) == source_host
        (on_source if on else elsewhere).append(_moid(c.obj))
    return min(elsewhere or on_source or [""], key=lambda m: (len(m), m))


def _standalone(session: Session, host_id: str) -> Snapshot:
    """A host outside any cluster, with its VMs: there is nowhere to restart them."""
    OS = vmodl.query.PropertyCollector.ObjectSpec
    TS = vmodl.query.PropertyCollector.TraversalSpec
    PS = vmodl.query.PropertyCollector.PropertySpec
    obj = OS(
        obj=session.stub_obj(vim.HostSystem, host_id),
        skip=False,
        selectSet=[TS(name="host2vm", type=vim.HostSystem, path="vm", skip=False)],
    )
    specs = [
        PS(type=vim.HostSystem, pathSet=HOST_PROPS),
        PS(type=vim.VirtualMachine, pathSet=VM_PROPS),
    ]
    return _build(session, session.retrieve(specs, [obj]))


def cluster_of_host(session: Session, host_id: str, host_name: str) -> tuple[str, str]:
    """(cluster moid or "" for a standalone host, host moid) of a host named by an alert
    (id preferred, name as fallback): where its snapshot is read (one small call)."""
    if not host_id:
        host_id = _find_by_name(session, vim.HostSystem, host_name)
    try:
        cluster_id, _ = _host_parent(session, host_id)
    except vmodl.fault.ManagedObjectNotFound:
        if not host_name:
            raise NotFoundError(f"host {host_id} is not in vCenter") from None
        host_id = _find_by_name(session, vim.HostSystem, host_name)
        cluster_id, _ = _host_parent(session, host_id)
    return cluster_id, host_id


def host_snapshot(session: Session, cluster_id: str, host_id: str) -> Snapshot:
    """The snapshot around a located host: its cluster's, or the standalone host's."""
    if cluster_id:
        return cluster_snapshot(session, cluster_id)
    return _standalone(session, host_id)


def snapshot_for_host(session: Session, host_id: str, host_name: str) -> Snapshot:
    """The snapshot around a host named by an alert (id preferred, name as fallback)."""
    return host_snapshot(session, *cluster_of_host(session, host_id, host_name))


def host_of_vm(session: Session, vm_id: str, vm_name: str) -> str:
    """The host a VM named by an alert (id preferred, name as fallback) runs on now."""
    OS = vmodl.query.PropertyCollector.ObjectSpec
    PS = vmodl.query.PropertyCollector.PropertySpec

    def host_of(moid: str) -> str:
        found = session.retrieve(
            [PS(type=vim.VirtualMachine, pathSet=["runtime.host"])],
            [OS(obj=session.stub_obj(vim.VirtualMachine, moid))],
        )
        if not found or not found[0].propSet:
            raise NotFoundError(f"VM {moid} is not in vCenter")
        return _moid(_props(found[0]).get("runtime.host"))

    if not vm_id:
        vm_id = _find_by_name(session, vim.VirtualMachine, vm_name)
    try:
        host_id = host_of(vm_id)
    except (vmodl.fault.ManagedObjectNotFound, NotFoundError):
        if not vm_name:
            raise NotFoundError(f"VM {vm_id} is not in vCenter") from None
        host_id = host_of(_find_by_name(session, vim.VirtualMachine, vm_name))
    if not host_id:
        raise NotFoundError(f"VM {vm_id or vm_name} has no host")
    return host_id


def snapshot_for_vm(session: Session, vm_id: str, vm_name: str) -> Snapshot:
    """The snapshot of the cluster a VM (named by an alert) currently lives in."""
    return snapshot_for_host(session, host_of_vm(session, vm_id, vm_name), "")


def all_hosts(session: Session) -> dict[str, tuple[str, list[HostState]]]:
    """Every clustered host, by cluster moid -> (cluster name, hosts): the guard's view."""
    found = _everything(
        session,
        {
            vim.HostSystem: [
                "name",
                "parent",
                "customValue",  # the fault domain, when it comes from a custom attribute
                "runtime.connectionState",
                "runtime.powerState",
                "runtime.dasHostState",
            ],
            vim.ClusterComputeResource: ["name"],
        },
    )
    names: dict[str, str] = {}
    out: dict[str, tuple[str, list[HostState]]] = {}
    hosts: list[HostState] = []
    for c in found:
        p = _props(c)
        if isinstance(c.obj, vim.ClusterComputeResource):
            names[_moid(c.obj)] = str(p.get("name", ""))
        else:
            hosts.append(host_from(session, _moid(c.obj), p))
    for h in hosts:
        if h.cluster_id:
            out.setdefault(h.cluster_id, (names.get(h.cluster_id, h.cluster_id), []))[1].append(h)
    return out


def powered_off_by(session: Session, vm_id: str) -> str:
    """Who powered the VM off last, when a person did; ``""`` for crashes and unknowns.

    vCenter records a ``VmPoweredOffEvent`` with the user's name when a person (or a
    script with a user session) powers a VM off; a VM that died on its own has no such
    event after its last power-on.
    """
    content = session.content()
    spec = vim.event.EventFilterSpec(
        entity=vim.event.EventFilterSpec.ByEntity(
            entity=session.stub_obj(vim.VirtualMachine, vm_id), recursion="self"
        ),
        eventTypeId=["VmPoweredOffEvent", "VmPoweredOnEvent", "VmGuestShutdownEvent"],
        maxCount=20,
    )
    try:
        events = content.eventManager.QueryEvents(spec) or []
    except vmodl.MethodFault:
        return ""
    latest = max(events, key=lambda e: (e.createdTime, e.key), default=None)
    if latest is None or isinstance(latest, vim.event.VmPoweredOnEvent):
        return ""
    user = str(getattr(latest, "userName", "") or "")
    if isinstance(latest, vim.event.VmGuestShutdownEvent):
        return f"a guest shutdown ({user or 'inside the VM'})"
    return user if user and user not in ("vpxuser",) else ""


def cluster_pool(session: Session, cluster_id: str) -> str:
    """The cluster's root resource pool: where a relocated or re-registered VM goes."""
    found = session.retrieve(
        [
            vmodl.query.PropertyCollector.PropertySpec(
                type=vim.ClusterComputeResource, pathSet=["resourcePool"]
            )
        ],
        [
            vmodl.query.PropertyCollector.ObjectSpec(
                obj=session.stub_obj(vim.ClusterComputeResource, cluster_id)
            )
        ],
    )
    if not found or not found[0].propSet:
        raise NotFoundError(f"cluster {cluster_id} is not in vCenter")
    return _moid(_props(found[0]).get("resourcePool"))
