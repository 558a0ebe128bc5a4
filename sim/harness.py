"""Build, run and drive the vha-sim vCenter simulator (stdlib only).

Typical use::

    from sim.harness import Simulator

    with Simulator(clusters=2, hosts=3, vms=6) as sim:
        si = SmartConnect(**sim.connection_kwargs())   # pyvmomi, TLS verified
        sim.fail_host("DC0_C0_H0")
        sim.set_vm("DC0_C0_VM1", guestHeartbeatStatus="red")
        sim.inject_fault("PowerOnVM_Task", "InvalidHostState", object="DC0_C0_VM2")

See docs/simulator.md for the simulator's flags, ready line and fault API.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, cast

SIM_DIR = Path(__file__).resolve().parent
BUILD_DIR = SIM_DIR / "build"
BINARY = BUILD_DIR / "vha-sim"
GOPATH = "/usr/share/gocode"
GOVMOMI_SIMULATOR_SRC = Path(GOPATH) / "src/github.com/vmware/govmomi/simulator"
DEFAULT_GOCACHE = "/tmp/vha-gocache"

JSONDict = dict[str, Any]

ROLES = ("read-only", "operator", "admin")


@dataclass(frozen=True)
class Account:
    """A simulator user beyond ``username``/``password`` (the Administrator).

    ``role`` is ``read-only`` (vSphere's Read-only role: reads only, every change answers
    ``NoPermission``), ``operator`` (the remediator's privileges, docs/remediator.md) or
    ``admin``. Given to :class:`Simulator` as ``accounts=[...]``; passed to the binary in
    ``$VHA_SIM_ACCOUNTS`` so that passwords stay off the command line.
    """

    username: str
    password: str
    role: str

    def __post_init__(self) -> None:
        # operator-PRIV[,PRIV...]: the operator role without those privileges (sim/roles.go)
        if self.role not in ROLES and not self.role.startswith("operator-"):
            raise ValueError(f"role {self.role!r}: want one of {', '.join(ROLES)}")
        if not self.username or not self.password or "\n" in self.username + self.password:
            raise ValueError("account user name and password must be non-empty single lines")
        if ":" in self.username:
            raise ValueError(f"account user name {self.username!r} must not contain ':'")


#: The two daemon accounts the demo and compose use: the exporter reads, the remediator acts.
EXPORTER_ACCOUNT = Account("vha-exporter", "exporter-pass", "read-only")
REMEDIATOR_ACCOUNT = Account("vha-remediator", "remediator-pass", "operator")


class SimulatorError(RuntimeError):
    """A build, start-up or fault-API failure.

    ``status`` is the HTTP status for fault-API errors (``None`` otherwise) and ``reason``
    the API's ``{"error": ...}`` text.
    """

    def __init__(self, message: str, *, status: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.status = status
        self.reason = reason if reason is not None else message


# ---- build -------------------------------------------------------------------------------


def _go_sources() -> list[Path]:
    return sorted(SIM_DIR.glob("*.go"))


def _up_to_date(binary: Path, sources: Sequence[Path]) -> bool:
    if not binary.exists():
        return False
    built = binary.stat().st_mtime
    return all(src.stat().st_mtime <= built for src in sources)


def build(force: bool = False) -> Path:
    """Build ``sim/build/vha-sim`` if it is missing or older than any ``sim/*.go``.

    Uses the same command as ``make sim`` (GOPATH mode against Debian's govmomi). The
    environment variable ``VHA_SIM_BINARY`` points at a prebuilt binary instead.
    Returns the binary's path; raises :class:`SimulatorError` when Go or govmomi is missing
    or the build fails.
    """
    override = os.environ.get("VHA_SIM_BINARY")
    if override:
        path = Path(override)
        if not path.is_file():
            raise SimulatorError(f"VHA_SIM_BINARY={override} does not exist")
        return path

    sources = _go_sources()
    if not sources:
        raise SimulatorError(f"no Go sources in {SIM_DIR}")
    if not force and _up_to_date(BINARY, sources):
        return BINARY

    go = shutil.which("go")
    if go is None:
        raise SimulatorError(
            "the Go toolchain is not installed (no `go` on PATH); run `make setup`, "
            "which installs the Debian packages golang-go and golang-github-vmware-govmomi-dev"
        )
    if not GOVMOMI_SIMULATOR_SRC.is_dir():
        raise SimulatorError(
            f"govmomi's simulator source is missing ({GOVMOMI_SIMULATOR_SRC}); run `make setup`, "
            "which installs the Debian package golang-github-vmware-govmomi-dev"
        )

    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    with open(BUILD_DIR / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test runs build once
        if not force and _up_to_date(BINARY, sources):
            return BINARY
        tmp = BUILD_DIR / f".vha-sim.{os.getpid()}"
        env = dict(os.environ)
        env.update(GO111MODULE="off", GOPATH=GOPATH)
        env.setdefault("GOCACHE", DEFAULT_GOCACHE)
        proc = subprocess.run(
            [go, "build", "-o", str(tmp), "."],
            cwd=SIM_DIR,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise SimulatorError(f"go build failed in {SIM_DIR}:\n{proc.stderr.strip()}")
        os.replace(tmp, BINARY)  # atomic: running simulators keep their old binary
    return BINARY


# ---- fault API client ----------------------------------------------------------------------


_CAMEL = re.compile(r"_([a-z])")


def _camel(key: str) -> str:
    """``connection_state`` -> ``connectionState``; camelCase keys pass through."""
    return _CAMEL.sub(lambda m: m.group(1).upper(), key)


class SimulatorClient:
    """Client for a running simulator's fault-injection API (``api_url``).

    Every method raises :class:`SimulatorError` with the API's reason on a 4xx answer.
    Object references are names (``DC0_C0_H1``, ``DC0_C0_VM3``), never morefs.
    """

    def __init__(self, api_url: str | None = None, *, timeout: float = 30.0) -> None:
        self._api_url = api_url.rstrip("/") if api_url else None
        self.timeout = timeout
        # never route loopback API calls through an HTTP proxy from the environment
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    @property
    def api_url(self) -> str:
        if not self._api_url:
            raise SimulatorError("the simulator is not running (no api_url)")
        return self._api_url

    def _request(self, method: str, path: str, body: JSONDict | None = None) -> Any:
        url = self.api_url + path
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            url,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors="replace")
            try:
                reason = str(json.loads(text)["error"])
            except (ValueError, KeyError, TypeError):
                reason = text.strip() or str(e.reason)
            raise SimulatorError(
                f"{method} {path} -> {e.code}: {reason}", status=e.code, reason=reason
            ) from None
        except (urllib.error.URLError, OSError) as e:
            why = e.reason if isinstance(e, urllib.error.URLError) else e
            raise SimulatorError(f"cannot reach the fault API at {url}: {why}") from None
        return json.loads(raw) if raw else None

    @staticmethod
    def _q(name: str) -> str:
        return urllib.parse.quote(name, safe="")

    def healthz(self) -> bool:
        return bool(self._request("GET", "/healthz").get("status") == "ok")

    def inventory(self) -> JSONDict:
        """``{"hosts": [...], "vms": [...], "clusters": [...]}``; see docs/simulator.md."""
        return cast(JSONDict, self._request("GET", "/api/v1/inventory"))

    def get_host(self, name: str) -> JSONDict:
        """One host's inventory entry."""
        return cast(JSONDict, self._request("GET", f"/api/v1/hosts/{self._q(name)}"))

    def get_vm(self, name: str) -> JSONDict:
        """One VM's inventory entry (including ``injectedFaults``)."""
        return cast(JSONDict, self._request("GET", f"/api/v1/vms/{self._q(name)}"))

    def set_host(self, name: str, **props: Any) -> JSONDict:
        """Set host properties atomically: connectionState, powerState, inMaintenanceMode,
        inQuarantineMode, overallStatus, dasHostState (snake_case names work too)."""
        body = {_camel(k): v for k, v in props.items()}
        return cast(JSONDict, self._request("POST", f"/api/v1/hosts/{self._q(name)}", body))

    def fail_host(self, name: str, das_state: str = "hostDown") -> JSONDict:
        """Host stops responding (hostDown, networkIsolated or networkPartitionedFromMaster);
        its VMs go disconnected/gray and a new HA master is elected if it was the master."""
        path = f"/api/v1/hosts/{self._q(name)}/fail"
        return cast(JSONDict, self._request("POST", path, {"dasHostState": das_state}))

    def recover_host(self, name: str, stale_vms: str | None = None) -> JSONDict:
        """Bring a failed host back.  ``stale_vms``: what it still has registered of VMs
        unregistered while it was down (``poweredOff``, the default; ``poweredOn``, a split
        brain; ``none``, a reinstalled host), see docs/simulator.md."""
        path = f"/api/v1/hosts/{self._q(name)}/recover"
        body = {} if stale_vms is None else {"staleVms": stale_vms}
        return cast(JSONDict, self._request("POST", path, body))

    def set_vm(self, name: str, **props: Any) -> JSONDict:
        """Set powerState, or inject guest faults: guestHeartbeatStatus, toolsRunningStatus,
        appHeartbeatStatus. Guest faults last until the VM is reset or power-cycled through
        the vCenter API."""
        body = {_camel(k): v for k, v in props.items()}
        return cast(JSONDict, self._request("POST", f"/api/v1/vms/{self._q(name)}", body))

    def set_host_raw(self, name: str, **props: Any) -> JSONDict:
        """Set values as a (newer) vCenter would report them, unvalidated, no derived effects:
        overallCpuUsage, overallMemoryUsage (quick stats), overallStatus, dasHostState (any
        string). In real-vCenter mode quick stats and overallStatus change silently."""
        body = {_camel(k): v for k, v in props.items()}
        return cast(JSONDict, self._request("POST", f"/api/v1/hosts/{self._q(name)}/raw", body))

    def set_vm_raw(self, name: str, **props: Any) -> JSONDict:
        """Set VM quick stats (overallCpuUsage, overallCpuDemand, guestMemoryUsage,
        hostMemoryUsage; MHz / MB) without derived effects; silent in real-vCenter mode."""
        body = {_camel(k): v for k, v in props.items()}
        return cast(JSONDict, self._request("POST", f"/api/v1/vms/{self._q(name)}/raw", body))

    def set_vm_ha(self, name: str, **props: Any) -> JSONDict:
        """Set the VM facts vSphere HA decisions depend on (sim/ha_config.go): dasProtected
        (bool, None = derived), managedBy ({"extensionKey", "type"} or None), ftRole (1
        primary, 2-3 secondary, None), appState, devices (["pciPassthrough", "vgpu",
        "sriov"])."""
        body = {_camel(k): v for k, v in props.items()}
        return cast(JSONDict, self._request("POST", f"/api/v1/vms/{self._q(name)}/ha", body))

    def power_off_vm(self, name: str, cause: str, user: str | None = None) -> JSONDict:
        """Power a running VM off as ``cause`` would, with the events vCenter records for it:
        guest, user, guestShutdownByUser, isolation, ftTerminated, silent."""
        body: JSONDict = {"cause": cause}
        if user is not None:
            body["user"] = user
        return cast(JSONDict, self._request("POST", f"/api/v1/vms/{self._q(name)}/power-off", body))

    def set_mounts(
        self,
        name: str,
        *,
        datastores: Sequence[str] | None = None,
        networks: Sequence[str] | None = None,
    ) -> JSONDict:
        """Set exactly which datastores and networks host ``name`` has (names; None: keep)."""
        body: JSONDict = {}
        if datastores is not None:
            body["datastores"] = list(datastores)
        if networks is not None:
            body["networks"] = list(networks)
        return cast(JSONDict, self._request("POST", f"/api/v1/hosts/{self._q(name)}/mounts", body))

    def set_locks(self, name: str, held: bool) -> JSONDict:
        """Host ``name`` holds (or releases) the VMFS locks of the VMs on it now."""
        body: JSONDict = {"held": held}
        return cast(JSONDict, self._request("POST", f"/api/v1/hosts/{self._q(name)}/locks", body))

    def inject_fault(
        self,
        method: str,
        fault: str,
        object: str | None = None,
        count: int = 1,
        *,
        mode: str = "fault",
        message: str | None = None,
    ) -> JSONDict:
        """Make the next ``count`` calls of SOAP ``method`` (on ``object``, a VM, host or
        cluster name, if given; -1 = until cleared) fail with vSphere fault ``fault``.
        ``mode="task"`` answers *_Task methods with a task that fails instead."""
        body: JSONDict = {"method": method, "fault": fault, "count": count, "mode": mode}
        if object is not None:
            body["object"] = object
        if message is not None:
            body["message"] = message
        return cast(JSONDict, self._request("POST", "/api/v1/faults", body))

    def faults(self) -> list[JSONDict]:
        return cast(list[JSONDict], self._request("GET", "/api/v1/faults")["faults"])

    def clear_faults(self) -> int:
        return int(self._request("DELETE", "/api/v1/faults")["cleared"])

    def config(self) -> JSONDict:
        return cast(JSONDict, self._request("GET", "/api/v1/config"))

    def set_paging(
        self,
        enabled: bool | None = None,
        *,
        max_object_updates: int | None = None,
        max_objects: int | None = None,
        max_objects_cap: int | None = None,
        page_delay_ms: int | None = None,
    ) -> JSONDict:
        """Change vCenter-style paging at run time (docs/simulator.md): on/off, the policy
        cap of a WaitForUpdatesEx page, the cap of a RetrievePropertiesEx page when the
        client sets no maxObjects, a cap even when it does (0 = none), and a delay before
        each stored page (so a test can land a change between pages).
        Returns the ``paging`` part of the config."""
        body: JSONDict = {}
        for key, value in (
            ("enabled", enabled),
            ("maxObjectUpdates", max_object_updates),
            ("maxObjects", max_objects),
            ("maxObjectsCap", max_objects_cap),
            ("pageDelayMs", page_delay_ms),
        ):
            if value is not None:
                body[key] = value
        out = self._request("POST", "/api/v1/config", {"paging": body})
        return cast(JSONDict, out["paging"])

    def paging_state(self) -> JSONDict:
        """Paging settings and counters: truncatedPages, continuedPages, tokensIssued,
        pendingUpdates and pendingRetrievals (paged results not yet read to the end)."""
        return cast(JSONDict, self.config()["paging"])

    def set_strict(
        self, strict: bool | None = None, *, strict_source: bool | None = None
    ) -> JSONDict:
        """Turn strict mode (real-vCenter refusals) and/or its strict-source part (refuse
        moving a VM off a host that is not connected) on or off at run time."""
        body: JSONDict = {}
        if strict is not None:
            body["strict"] = strict
        if strict_source is not None:
            body["strictSource"] = strict_source
        return cast(JSONDict, self._request("POST", "/api/v1/config", body))

    # vCenter alarms (sim/alarms.go): entity_type is host, vm, cluster, datastore, datacenter.
    def alarms(self) -> JSONDict:
        return cast(JSONDict, self._request("GET", "/api/v1/alarms"))

    def trigger_alarm(
        self, alarm: str, entity_type: str, entity: str, status: str = "red", **extra: Any
    ) -> JSONDict:
        body: JSONDict = {"alarm": alarm, "entity_type": entity_type, "entity": entity}
        body.update(status=status, **extra)
        return cast(JSONDict, self._request("POST", "/api/v1/alarms/trigger", body))

    def acknowledge_alarm(self, alarm: str, entity_type: str, entity: str) -> JSONDict:
        body: JSONDict = {"alarm": alarm, "entity_type": entity_type, "entity": entity}
        return cast(JSONDict, self._request("POST", "/api/v1/alarms/acknowledge", body))

    def datastores(self) -> list[JSONDict]:
        return cast(list[JSONDict], self._request("GET", "/api/v1/datastores")["datastores"])

    def set_datastore(self, name: str, **props: Any) -> JSONDict:
        """``maintenanceMode``, ``freeSpace``, ``uncommitted`` (bytes), ``accessible``."""
        return cast(JSONDict, self._request("POST", f"/api/v1/datastores/{self._q(name)}", props))

    def sensors(self, host: str) -> list[JSONDict]:
        return cast(
            list[JSONDict], self._request("GET", f"/api/v1/sensors/{self._q(host)}")["sensors"]
        )

    def set_sensor(self, host: str, sensor: str, **props: Any) -> JSONDict:
        """``health`` (green, yellow, red, unknown) and/or ``reading`` (base units)."""
        body: JSONDict = {"sensor": sensor, **props}
        return cast(JSONDict, self._request("POST", f"/api/v1/sensors/{self._q(host)}", body))

    def guest(self, vm: str) -> JSONDict:
        return cast(JSONDict, self._request("GET", f"/api/v1/guest/{self._q(vm)}"))

    def set_guest(self, vm: str, **props: Any) -> JSONDict:
        """``toolsVersionStatus2``, ``toolsVersion``, ``disks`` ([{path, capacity, free}])."""
        return cast(JSONDict, self._request("POST", f"/api/v1/guest/{self._q(vm)}", props))

    def clear_alarms(self, **match: str) -> JSONDict:
        """Clear triggered alarms matching ``alarm``/``entity_type``+``entity`` (all if none)."""
        return cast(JSONDict, self._request("POST", "/api/v1/alarms/clear", dict(match)))


# ---- process management ---------------------------------------------------------------------


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Last-resort cleanup when a Simulator is garbage-collected or the interpreter exits."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


class Simulator(SimulatorClient):
    """One vha-sim process: start/stop/restart plus the fault-API client methods.

    Inventory kwargs mirror the binary's flags. ``port``/``api_port`` 0 pick free ports on
    127.0.0.1; :meth:`restart` reuses the ports (and the TLS certificate) chosen first.
    """

    def __init__(
        self,
        *,
        datacenters: int = 1,
        clusters: int = 2,
        hosts: int = 3,
        standalone_hosts: int = 0,
        vms: int = 6,
        standalone_vms: int = 0,
        fault_domains: int = 2,
        username: str = "user",
        password: str = "pass",
        port: int = 0,
        api_port: int = 0,
        strict: bool = True,
        strict_source: bool = False,
        real_vcenter: bool = False,
        paging: bool = True,
        reconcile_interval: float | None = None,
        binary: str | os.PathLike[str] | None = None,
        extra_args: Sequence[str] = (),
        verbose: bool = False,
        accounts: Sequence[Account] = (),
    ) -> None:
        super().__init__()
        names = [username, *(a.username for a in accounts)]
        if len(set(names)) != len(names):
            raise ValueError(f"account user names must be unique: {names}")
        self.accounts = tuple(accounts)
        self.datacenters = datacenters
        self.clusters = clusters
        self.hosts = hosts
        self.standalone_hosts = standalone_hosts
        self.vms = vms
        self.standalone_vms = standalone_vms
        self.fault_domains = fault_domains
        self._username = username
        self._password = password
        self._port = port
        self._api_port = api_port
        self.strict = strict
        self.strict_source = strict_source
        self.real_vcenter = real_vcenter
        self.paging = paging
        self.reconcile_interval = reconcile_interval
        self._binary = Path(binary) if binary is not None else None
        self.extra_args = list(extra_args)
        self.verbose = verbose

        self._proc: subprocess.Popen[bytes] | None = None
        self._ready: JSONDict | None = None
        self._workdir: Path | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._dir_finalizer: weakref.finalize[Any, Any] | None = None
        self.startup_seconds: float | None = None

    # -- properties ------------------------------------------------------------------------

    def _info(self, key: str) -> Any:
        # after stop() the last ready line still answers: restart() comes back on it
        if self._ready is None:
            raise SimulatorError("the simulator has not been started")
        return self._ready[key]

    @property
    def sdk_url(self) -> str:
        """``https://127.0.0.1:PORT/sdk``"""
        return str(self._info("sdk_url"))

    @property
    def api_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the fault-injection API."""
        return str(self._info("api_url"))

    @property
    def username(self) -> str:
        return self._username

    @property
    def password(self) -> str:
        return self._password

    @property
    def ca_file(self) -> str:
        """PEM file (server certificate + its CA) to verify TLS against."""
        return str(self._info("ca_file"))

    @property
    def pid(self) -> int:
        return int(self._info("pid"))

    @property
    def host(self) -> str:
        """Host part of :attr:`sdk_url` (``127.0.0.1``)."""
        return urllib.parse.urlsplit(self.sdk_url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        """Port of :attr:`sdk_url` (the chosen one once started)."""
        if self._ready is None:
            return self._port
        return int(urllib.parse.urlsplit(self.sdk_url).port or 443)

    @property
    def api_port(self) -> int:
        if self._ready is None:
            return self._api_port
        return int(urllib.parse.urlsplit(self.api_url).port or 80)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_path(self) -> Path | None:
        """The simulator's stderr log (kept until :meth:`close`)."""
        return None if self._workdir is None else self._workdir / "vha-sim.log"

    def ssl_context(self) -> ssl.SSLContext:
        """A verifying SSL context that trusts the simulator's certificate."""
        return ssl.create_default_context(cafile=self.ca_file)

    def account(self, username: str) -> Account:
        """The :class:`Account` named ``username`` (the Administrator is ``admin``)."""
        if username == self._username:
            return Account(self._username, self._password, "admin")
        for a in self.accounts:
            if a.username == username:
                return a
        raise SimulatorError(f"no account {username!r} in this simulator")

    def connection_kwargs(self, account: str | None = None) -> JSONDict:
        """Keyword arguments for ``pyVim.connect.SmartConnect`` (TLS verified), as the
        Administrator or as ``account`` (a user name from ``accounts``)."""
        user, pwd = self.username, self.password
        if account is not None:
            a = self.account(account)
            user, pwd = a.username, a.password
        return {
            "host": self.host,
            "port": self.port,
            "user": user,
            "pwd": pwd,
            "sslContext": self.ssl_context(),
        }

    def log_tail(self, lines: int = 40) -> str:
        path = self.log_path
        if path is None or not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # -- lifecycle -------------------------------------------------------------------------

    def _args(self, binary: Path, ca_file: Path) -> list[str]:
        args = [
            str(binary),
            "-listen",
            f"127.0.0.1:{self._port}",
            "-api-listen",
            f"127.0.0.1:{self._api_port}",
            "-datacenters",
            str(self.datacenters),
            "-clusters",
            str(self.clusters),
            "-hosts",
            str(self.hosts),
            "-standalone-hosts",
            str(self.standalone_hosts),
            "-vms",
            str(self.vms),
            "-standalone-vms",
            str(self.standalone_vms),
            "-fault-domains",
            str(self.fault_domains),
            "-username",
            self._username,
            "-password",
            self._password,
            "-cert-file",
            str(ca_file),
            f"-strict={'true' if self.strict else 'false'}",
            f"-strict-source={'true' if self.strict_source else 'false'}",
            f"-real-vcenter={'true' if self.real_vcenter else 'false'}",
            f"-paging={'true' if self.paging else 'false'}",
            "-exit-with-parent",
        ]
        if self.reconcile_interval is not None:
            args += ["-reconcile-interval", f"{int(self.reconcile_interval * 1000)}ms"]
        if self.verbose:
            args.append("-verbose")
        return args + self.extra_args

    def start(self, timeout: float = 120.0) -> Simulator:
        """Start the simulator and wait for its ready line. Returns ``self``."""
        if self.running:
            raise SimulatorError(f"already running (pid {self.pid})")
        binary = self._binary or build()
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="vha-sim-"))
            (self._workdir / "tmp").mkdir()
            self._dir_finalizer = weakref.finalize(
                self, shutil.rmtree, str(self._workdir), ignore_errors=True
            )
        workdir = self._workdir
        env = dict(os.environ)
        env["TMPDIR"] = str(workdir / "tmp")  # vcsim's datastore directories live here
        env["VHA_SIM_ACCOUNTS"] = "\n".join(
            f"{a.role}:{a.username}:{a.password}" for a in self.accounts
        )
        log = open(workdir / "vha-sim.log", "ab")
        t0 = time.monotonic()
        try:
            proc = subprocess.Popen(
                self._args(binary, workdir / "ca.pem"),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                cwd=workdir,
            )
        finally:
            log.close()
        self._proc = proc
        self._finalizer = weakref.finalize(self, _kill, proc)

        lines: queue.Queue[bytes | None] = queue.Queue()

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, name=f"vha-sim-{proc.pid}-stdout", daemon=True).start()
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            self._stop_process()
            raise SimulatorError(
                f"vha-sim did not become ready within {timeout:.0f}s\n{self.log_tail()}"
            ) from None
        if line is None:
            rc = proc.wait()
            self._proc = None
            raise SimulatorError(
                f"vha-sim exited with status {rc} before it was ready:\n{self.log_tail()}"
            )
        try:
            ready = json.loads(line)
        except ValueError:
            self._stop_process()
            raise SimulatorError(f"unexpected ready line from vha-sim: {line!r}") from None
        self._ready = cast(JSONDict, ready)
        self.startup_seconds = time.monotonic() - t0
        # remember the ports so that restart() comes back on the same ones
        self._port = self.port
        self._api_port = self.api_port
        return self

    def _stop_process(self, timeout: float = 10.0) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout)
        if proc.stdout is not None:
            proc.stdout.close()
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        self._proc = None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process: SIGTERM, then SIGKILL after ``timeout``; waits for it.

        The work directory (certificate, log) stays, and so do :attr:`sdk_url`,
        :attr:`ca_file` etc., so that :meth:`restart` can bring "vCenter" back where it was.
        :meth:`close` (or leaving the ``with`` block) also removes the work directory.
        """
        self._stop_process(timeout)

    def stop_process(self, timeout: float = 10.0) -> None:
        """Same as :meth:`stop`: "vCenter" goes away, its ports and certificate stay."""
        self._stop_process(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """:meth:`stop`, then remove the work directory (certificate, log)."""
        self._stop_process(timeout)
        if self._dir_finalizer is not None:
            self._dir_finalizer()  # removes the directory, once
            self._dir_finalizer = None
        self._workdir = None

    def restart(self, timeout: float = 120.0) -> Simulator:
        """Stop (if running) and start again on the same ports with the same TLS
        certificate, like a vCenter restart. The inventory is rebuilt from the flags, so
        injected state is gone; moids come out the same."""
        self._stop_process()
        return self.start(timeout=timeout)

    def wait_healthy(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.healthz():
                    return
            except SimulatorError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.05)

    def __enter__(self) -> Simulator:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"pid={self.pid} sdk={self.sdk_url}" if self.running else "stopped"
        return f"<Simulator {state}>"


@contextlib.contextmanager
def running(**kwargs: Any) -> Iterator[Simulator]:
    """``with running(clusters=1) as sim: ...`` - start a Simulator and always stop it."""
    sim = Simulator(**kwargs)
    sim.start()
    try:
        yield sim
    finally:
        sim.close()
