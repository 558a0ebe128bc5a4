"""The whole stack as processes on loopback: simulator, exporter, remediator, Prometheus,
Alertmanager.  Used by ``vha demo`` and by the end-to-end tests, so what a person watches in
the demo is exactly what the tests assert on.

Every process is started with its own log file under the run directory and stopped by its
PID (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vcenter.config import Config, load_config

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_BIN = "prometheus"
ALERTMANAGER_BIN = "prometheus-alertmanager"


class StackError(RuntimeError):
    """A component did not start; the message says which and where its log is."""


class NoSourceTree(StackError):
    """The demo was started without the project's source tree (see :func:`source_dir`)."""


def source_dir() -> Path:
    """The project checkout the demo needs: rules/generate.py makes its rules and
    Alertmanager config (they are generated per stack, not shipped in the wheel).

    ``VHA_SOURCE_DIR`` first, then the tree this module sits in (a clone or an editable
    install), then the working directory.  A wheel installed on its own has none of them.
    """
    env = os.environ.get("VHA_SOURCE_DIR")
    candidates = [Path(env)] if env else [ROOT, Path.cwd()]
    for candidate in candidates:
        if (candidate / "rules" / "generate.py").is_file():
            return candidate.resolve()
    where = f"VHA_SOURCE_DIR={env} has no rules/generate.py" if env else "no source tree found"
    raise NoSourceTree(
        f"{where}: vha demo needs a clone of vsphere-ha-stack; run it there (make demo) "
        "or set VHA_SOURCE_DIR=/path/to/the/clone"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 2.0, headers: dict[str, str] | None = None) -> bytes:
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback only
        return bytes(resp.read())


def get_json(url: str, timeout: float = 2.0, headers: dict[str, str] | None = None) -> Any:
    return json.loads(http_get(url, timeout, headers))


@dataclass
class Process:
    name: str
    argv: list[str]
    log_path: Path
    ready_url: str | None = None
    popen: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str] | None = None, cwd: Path = ROOT) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(  # noqa: S603 - argv built by us
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        log.close()

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise StackError(f"{self.name} exited early; see {self.log_path}:\n{self.tail()}")
            if self.ready_url is None:
                return
            try:
                http_get(self.ready_url, timeout=1.0)
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        raise StackError(f"{self.name} not ready after {timeout:.0f}s; see {self.log_path}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM by PID, then SIGKILL if it does not go."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=timeout)

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=10)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class StackOptions:
    """Sizes and timings; the defaults are the demo's, tests pass faster ones."""

    run_dir: Path = ROOT / "run" / "demo"
    config_path: str | None = None
    rules_profile: str = "test"  # short `for` values so a person sees results in seconds
    scrape_interval: str = "1s"
    evaluation_interval: str = "1s"
    sim: dict[str, Any] = field(
        default_factory=lambda: {
            "datacenters": 1,
            "clusters": 3,
            "hosts": 8,
            "vms": 100,
            "fault_domains": 2,
        }
    )
    remediator_overrides: dict[str, Any] = field(default_factory=dict)
    with_remediator: bool = True
    fixed_ports: bool = False  # demo: well-known ports; tests: free ports
    # The simulated clusters carry vSphere HA's default VM-monitoring settings (failure
    # interval 30 s, minimum uptime 120 s), which win over the test profile's seconds, as
    # on a real vCenter. The demo turns the cluster settings off so a heartbeat fault shows
    # within seconds: rules use the profile's 5 s / 10 s, the remediator a 10 s uptime.
    fast_vm_monitoring: bool = False


class Stack:
    """Starts and stops the stack; exposes each component's URL."""

    def __init__(self, options: StackOptions) -> None:
        self.opts = options
        self.run_dir = options.run_dir
        self.sim: Any = None
        self.processes: dict[str, Process] = {}
        self.config: Config | None = None
        fixed = options.fixed_ports
        self.ports = {
            "exporter": 9272 if fixed else free_port(),
            "remediator": 9273 if fixed else free_port(),
            "prometheus": 9090 if fixed else free_port(),
            "alertmanager": 9093 if fixed else free_port(),
        }
        self.token = secrets.token_urlsafe(24)
        self.source = ROOT
        # per daemon: the vCenter account variables of its process (simulated vCenter)
        self.daemon_env: dict[str, dict[str, str]] = {}

    # --- URLs --------------------------------------------------------------------------
    def url(self, component: str) -> str:
        return f"http://127.0.0.1:{self.ports[component]}"

    @property
    def token_file(self) -> Path:
        return self.run_dir / "secrets" / "remediator-token"

    # --- lifecycle ---------------------------------------------------------------------
    def start(self, timeout: float = 120.0) -> None:
        self.source = source_dir()
        if shutil.which(PROMETHEUS_BIN) is None or shutil.which(ALERTMANAGER_BIN) is None:
            raise StackError(
                "prometheus and prometheus-alertmanager are not installed; run `make setup`"
            )
        if self.run_dir.exists():
            shutil.rmtree(self.run_dir)
        (self.run_dir / "secrets").mkdir(parents=True)
        self.token_file.write_text(self.token + "\n")
        self.token_file.chmod(0o600)
        try:
            config_file = self._write_config()
            self._write_rules()
            self._write_prometheus()
            self._start_processes(config_file, timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for name in ("prometheus", "alertmanager", "remediator", "exporter"):
            proc = self.processes.get(name)
            if proc is not None:
                proc.stop()
        if self.sim is not None:
            self.sim.close()

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- files -------------------------------------------------------------------------
    def _write_config(self) -> Path:
        data: dict[str, Any] = {}
        if self.opts.config_path:
            data = yaml.safe_load(Path(self.opts.config_path).read_text()) or {}
            base = Path(self.opts.config_path).resolve().parent
            for entry in data.get("vcenters") or []:
                for key in ("password_file", "ca_file"):
                    if entry.get(key) and not Path(entry[key]).is_absolute():
                        entry[key] = str(base / entry[key])
        real_vcenter = bool(data.get("vcenters"))
        if not real_vcenter:
            from sim.harness import Account, Simulator  # noqa: PLC0415 - only when simulating

            # Two accounts, as on a real vCenter: the exporter's has vSphere's Read-only
            # role, the remediator's only the privileges it uses (docs/remediator.md). The
            # Administrator (vcsim-password) is for a person: `vha demo power-off-vm`.
            sim_opts = dict(self.opts.sim)
            sim_opts.setdefault(
                "accounts",
                [
                    Account("vha-exporter", secrets.token_urlsafe(12), "read-only"),
                    Account("vha-remediator", secrets.token_urlsafe(12), "operator"),
                ],
            )
            self.sim = Simulator(**sim_opts)
            self.sim.start()
            pw = self.run_dir / "secrets" / "vcsim-password"
            pw.write_text(self.sim.password + "\n")
            pw.chmod(0o600)
            vc: dict[str, Any] = {"name": "vcsim", "url": self.sim.sdk_url}
            roles = {a.role: a for a in self.sim.accounts}
            if "read-only" in roles and "operator" in roles:
                # one config for both daemons: each process gets its own user and password
                # in these variables (compose does the same with user_env and its secrets)
                vc.update(user_env="VHA_VCENTER_USER", password_env="VHA_VCENTER_PASSWORD")
                for daemon, account in (
                    ("exporter", roles["read-only"]),
                    ("remediator", roles["operator"]),
                ):
                    self.daemon_env[daemon] = {
                        "VHA_VCENTER_USER": account.username,
                        "VHA_VCENTER_PASSWORD": account.password,
                    }
            else:
                vc.update(user=self.sim.username, password_file=str(pw))
            if self.sim.ca_file:
                vc["ca_file"] = self.sim.ca_file
            else:
                vc["verify_tls"] = False
            data["vcenters"] = [vc]
            data.setdefault("fault_domains", {"custom_attribute": "HA-FaultDomain"})
            data.setdefault("sync", {"max_wait_seconds": 2})
            data.setdefault("performance", {"interval_seconds": 5})
            data.setdefault(
                "cost",  # example prices, so the cost dashboards and `vha report` show figures
                {
                    "currency": "EUR",
                    "per_vcpu_month": 20,
                    "per_gb_memory_month": 5,
                    "per_gb_storage_month": 0.1,
                },
            )
        data["listen"] = f"127.0.0.1:{self.ports['exporter']}"
        rem = dict(data.get("remediator") or {})
        rem["listen"] = f"127.0.0.1:{self.ports['remediator']}"
        rem.pop("bearer_token_env", None)
        rem["bearer_token_file"] = str(self.token_file)
        rem.setdefault("journal", str(self.run_dir / "remediator.sqlite"))
        if not real_vcenter:
            # The simulator is ours to change, and a person watching wants to see it act
            # within seconds: confirm a failed host after 5 s and give vSphere HA 5 s.
            rem.setdefault("dry_run", False)
            rem.setdefault("host_failure", {"confirm_seconds": 5})
            rem.setdefault("ha_grace_seconds", 5)
            # The simulator has no vSphere HA agent, so deferring to HA would leave its
            # failed hosts' VMs down: the demo plays the remediator's no-HA role.
            rem.setdefault("ha", {"defer_to_ha": False})
            if self.opts.fast_vm_monitoring:
                rem.setdefault(
                    "vm_monitoring", {"prefer_cluster_settings": False, "min_uptime_seconds": 10}
                )
        rem.update(self.opts.remediator_overrides)
        data["remediator"] = rem
        path = self.run_dir / "config.yml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        # Secrets are read by each daemon with its own account variables (daemon_env).
        self.config = load_config(path, read_secrets=not self.daemon_env)
        return path

    def _write_rules(self) -> None:
        """Rules and Alertmanager config from the generator, pointed at this stack."""
        gen = self.run_dir / "generated"
        overrides = self.run_dir / "rules-overrides.yml"
        values: dict[str, Any] = {
            "alertmanager": {
                "remediator_url": f"{self.url('remediator')}/api/v1/alerts",
                "remediator_credentials_file": str(self.token_file),
            }
        }
        if self.opts.fast_vm_monitoring:
            values["vm_monitoring"] = {"use_cluster_settings": False}
        overrides.write_text(yaml.safe_dump(values))
        result = subprocess.run(  # noqa: S603
            [
                sys.executable,
                str(self.source / "rules" / "generate.py"),
                "--profile",
                self.opts.rules_profile,
                "--config",
                str(overrides),
                "--out",
                str(gen),
            ],
            cwd=self.source,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(f"rules/generate.py failed: {result.stderr.strip()}")
        rules = self.run_dir / "rules"
        rules.mkdir()
        for name in ("alerts.yml", "recording.yml"):
            shutil.copy(gen / name, rules / name)
        shutil.copy(gen / "alertmanager.yml", self.run_dir / "alertmanager.yml")

    def _write_prometheus(self) -> None:
        prom = {
            "global": {
                "scrape_interval": self.opts.scrape_interval,
                "evaluation_interval": self.opts.evaluation_interval,
            },
            "rule_files": [str(self.run_dir / "rules" / "*.yml")],
            "alerting": {
                "alertmanagers": [
                    {"static_configs": [{"targets": [f"127.0.0.1:{self.ports['alertmanager']}"]}]}
                ]
            },
            "scrape_configs": [
                {
                    "job_name": "vsphere-exporter",
                    "static_configs": [{"targets": [f"127.0.0.1:{self.ports['exporter']}"]}],
                },
                {
                    "job_name": "vha-remediator",
                    "static_configs": [{"targets": [f"127.0.0.1:{self.ports['remediator']}"]}],
                },
            ],
        }
        (self.run_dir / "prometheus.yml").write_text(yaml.safe_dump(prom, sort_keys=False))

    def _start_processes(self, config_file: Path, timeout: float) -> None:
        logs = self.run_dir / "logs"
        env = dict(os.environ)
        py = [sys.executable, "-m", "vha.cli"]
        self.processes["exporter"] = Process(
            "exporter",
            [*py, "exporter", "--config", str(config_file)],
            logs / "exporter.log",
            f"{self.url('exporter')}/readyz",
        )
        if self.opts.with_remediator:
            self.processes["remediator"] = Process(
                "remediator",
                [*py, "remediator", "--config", str(config_file)],
                logs / "remediator.log",
                f"{self.url('remediator')}/healthz",
            )
        self.processes["alertmanager"] = Process(
            "alertmanager",
            [
                ALERTMANAGER_BIN,
                f"--config.file={self.run_dir / 'alertmanager.yml'}",
                f"--storage.path={self.run_dir / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{self.ports['alertmanager']}",
                "--cluster.listen-address=",
            ],
            logs / "alertmanager.log",
            f"{self.url('alertmanager')}/-/ready",
        )
        self.processes["prometheus"] = Process(
            "prometheus",
            [
                PROMETHEUS_BIN,
                f"--config.file={self.run_dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.run_dir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{self.ports['prometheus']}",
            ],
            logs / "prometheus.log",
            f"{self.url('prometheus')}/-/ready",
        )
        # Prometheus last, once the exporter answers: started together, its first scrapes
        # would fail and the demo would open with a false VsphereExporterDown.
        first = [p for name, p in self.processes.items() if name != "prometheus"]
        for proc in first:
            proc.start({**env, **self.daemon_env.get(proc.name, {})}, cwd=self.source)
        for proc in first:
            proc.wait_ready(timeout)
        self.processes["prometheus"].start(env, cwd=self.source)
        self.processes["prometheus"].wait_ready(timeout)

    # --- queries -----------------------------------------------------------------------
    def versions(self) -> dict[str, str]:
        """The Prometheus and Alertmanager versions this stack runs (Debian's packages here;
        docker-compose.yml pins its own images)."""
        out = {}
        for name, binary in (("Prometheus", PROMETHEUS_BIN), ("Alertmanager", ALERTMANAGER_BIN)):
            try:
                text = subprocess.run(  # noqa: S603
                    [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
                )
                line = (text.stdout or text.stderr).splitlines()[0]
                out[name] = line.split("version", 1)[1].split()[0]
            except (OSError, IndexError, subprocess.TimeoutExpired):
                out[name] = "unknown"
        return out

    def wait_first_scrape(self, timeout: float = 30.0) -> bool:
        """Until Prometheus has scraped the exporter successfully once."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.query('up{job="vsphere-exporter"} == 1'):
                    return True
            except (OSError, StackError, ValueError):
                pass
            time.sleep(0.2)
        return False

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant PromQL query against the stack's Prometheus."""
        url = f"{self.url('prometheus')}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        body = get_json(url)
        if body.get("status") != "success":
            raise StackError(f"query {expr!r} failed: {body}")
        return list(body["data"]["result"])

    def firing_alerts(self) -> list[dict[str, Any]]:
        return list(get_json(f"{self.url('prometheus')}/api/v1/alerts")["data"]["alerts"])

    def remediator_actions(self, **filters: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode(filters)
        data = get_json(
            f"{self.url('remediator')}/api/v1/actions?{query}",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        return list(data["actions"])
