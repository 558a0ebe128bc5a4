"""Alertmanager: the config is valid, every alert kind reaches the right receivers, and the
inhibition rules keep a blind watcher or a failed host from triggering restarts.

amtool and Alertmanager come from Debian's ``prometheus-alertmanager`` package (``make
setup`` installs it). The live test runs a real Alertmanager on 127.0.0.1 with the ``test``
profile's config, pointed at a webhook receiver inside the test.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "alertmanager" / "alertmanager.yml"
ALERTS = ROOT / "rules" / "alerts.yml"
GENERATE = ROOT / "rules" / "generate.py"
ACTIONS = {
    "restart_host_vms",
    "restart_vm",
    "reset_vm",
    "evacuate_host",
    "restart_fault_domain_vms",
}
WATCHER = {
    "VsphereExporterDown",
    "VsphereVcenterUnreachable",
    "VsphereInventoryHeld",
    "VsphereSyncStale",
}


def tool(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(
        f"{' / '.join(names)} not on PATH; it comes from Debian's prometheus-alertmanager "
        "package: run `make setup`"
    )


@functools.cache
def load(path: Path) -> Any:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)


def alert_rules() -> list[dict[str, Any]]:
    return [r for g in load(ALERTS)["groups"] for r in g["rules"]]


@pytest.fixture(scope="module")
def amtool() -> str:
    return tool("amtool")


# --- config and routes -----------------------------------------------------------------------


def test_check_config(amtool: str) -> None:
    result = subprocess.run(
        [amtool, "check-config", str(CONFIG)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def route_test(amtool: str, labels: dict[str, str], expected: list[str]) -> None:
    result = subprocess.run(
        [
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={CONFIG}",
            f"--verify.receivers={','.join(expected)}",
            *(f"{k}={v}" for k, v in labels.items()),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"{labels}: {result.stdout}{result.stderr}"
    assert result.stdout.strip() == ",".join(expected), labels


def sample_labels(rule: dict[str, Any]) -> dict[str, str]:
    """An alert as Prometheus would send it: the rule's labels plus identifying labels."""
    return {
        "alertname": rule["alert"],
        **rule["labels"],
        "vcenter": "vc1",
        "cluster": "c1",
        "host_id": "host-1",
        "host": "esx1",
    }


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_every_alert_kind_is_routed(amtool: str, rule: dict[str, Any]) -> None:
    """Every alert reaches people; those naming an action reach the remediator too."""
    acts = rule["labels"]["remediation"] in ACTIONS
    route_test(amtool, sample_labels(rule), ["people", "remediator"] if acts else ["people"])


@pytest.mark.parametrize(
    ("remediation", "expected"),
    [
        ("evacuate_host", ["people", "remediator"]),  # hosts.degraded_remediation
        ("none", ["people"]),
        ("reboot_everything", ["people"]),  # unknown actions never reach the remediator
    ],
)
def test_remediation_values_are_routed(amtool: str, remediation: str, expected: list[str]) -> None:
    route_test(amtool, {"alertname": "X", "remediation": remediation}, expected)


def test_fault_domain_down_reaches_people_and_the_remediator(amtool: str) -> None:
    """A fault domain down pages a person and asks the remediator, which restarts its VMs
    only once its own live read confirms every host down (never for a partition)."""
    rule = next(r for r in alert_rules() if r["alert"] == "VsphereFaultDomainDown")
    assert rule["labels"]["remediation"] == "restart_fault_domain_vms"
    labels = {"alertname": rule["alert"], **rule["labels"], "vcenter": "vc1", "cluster": "c1"}
    route_test(amtool, {**labels, "cluster_id": "domain-c1", "fault_domain": "fd-a"},
               ["people", "remediator"])  # fmt: skip


def test_alert_without_labels_reaches_people(amtool: str) -> None:
    route_test(amtool, {"alertname": "Watchdog"}, ["people"])


def test_remediator_receiver() -> None:
    config = load(CONFIG)
    receivers = {r["name"]: r for r in config["receivers"]}
    (webhook,) = receivers["remediator"]["webhook_configs"]
    assert webhook["url"] == "http://127.0.0.1:9273/api/v1/alerts"
    assert webhook["send_resolved"] is True
    assert webhook["max_alerts"] == 0
    assert webhook["http_config"]["authorization"]["credentials_file"]
    route = next(r for r in config["route"]["routes"] if r["receiver"] == "remediator")
    assert {"vcenter", "cluster", "host"} <= set(route["group_by"])
    assert route["group_wait"] in {"1s", "2s", "5s", "10s"}
    first = config["route"]["routes"][0]
    assert first == {"receiver": "people", "continue": True}


# --- inhibition: the rules as written ---------------------------------------------------------

_MATCHER = re.compile(r'^(\w+)\s*(=~|!~|!=|=)\s*"(.*)"$')


def matches(matchers: list[str], labels: dict[str, str]) -> bool:
    """Alertmanager's matcher semantics: anchored regexps, a missing label is ""."""
    for matcher in matchers:
        m = _MATCHER.match(matcher)
        assert m, f"unparsed matcher {matcher!r}"
        name, op, value = m.groups()
        have = labels.get(name, "")
        ok = {
            "=": have == value,
            "!=": have != value,
            "=~": re.fullmatch(value, have) is not None,
            "!~": re.fullmatch(value, have) is None,
        }[op]
        if not ok:
            return False
    return True


def rule_labels(name: str) -> dict[str, str]:
    """An alert of rule `name` with the identifying labels its kind carries."""
    rule = next(r for r in alert_rules() if r["alert"] == name)
    labels = {"alertname": name, **rule["labels"], "vcenter": "vc1"}
    if name.startswith(("VsphereHost", "VsphereVm", "VsphereCluster", "VsphereFaultDomain")):
        labels.update(cluster_id="domain-c1", cluster="c1", fault_domain="fd-a")
    if name.startswith(("VsphereHost", "VsphereVm")):
        labels.update(host_id="host-1", host="esx1")
    if name.startswith("VsphereVm"):
        labels.update(vm_id="vm-1", vm="app1")
    return labels


def inhibitors(source: str, target: str) -> list[set[str]]:
    """The `equal` sets of the inhibit rules under which `source` inhibits `target`."""
    found = []
    for rule in load(CONFIG)["inhibit_rules"]:
        if matches(rule["source_matchers"], rule_labels(source)) and matches(
            rule["target_matchers"], rule_labels(target)
        ):
            found.append(set(rule.get("equal", [])))
    return found


INHIBITS = [
    # a blind watcher: no host or VM alert of that vCenter (or of any, exporter down)
    ("VsphereVcenterUnreachable", "VsphereHostNotResponding", {"vcenter"}),
    ("VsphereVcenterUnreachable", "VsphereHostPoweredOff", {"vcenter"}),
    ("VsphereVcenterUnreachable", "VsphereVmHeartbeatFailure", {"vcenter"}),
    ("VsphereVcenterUnreachable", "VsphereVmPoweredOffUnexpectedly", {"vcenter"}),
    ("VsphereVcenterUnreachable", "VsphereVmAppHeartbeatFailure", {"vcenter"}),
    ("VsphereSyncStale", "VsphereHostNotResponding", {"vcenter"}),
    # the exporter serving a vCenter's last inventory through a short outage: a frozen image
    ("VsphereInventoryHeld", "VsphereHostNotResponding", {"vcenter"}),
    ("VsphereInventoryHeld", "VsphereVmHeartbeatFailure", {"vcenter"}),
    ("VsphereInventoryHeld", "VsphereVmAppHeartbeatFailure", {"vcenter"}),
    ("VsphereSyncStale", "VsphereVmHeartbeatFailure", {"vcenter"}),
    ("VsphereExporterDown", "VsphereHostNotResponding", set()),
    ("VsphereExporterDown", "VsphereVmHeartbeatFailure", set()),
    ("VsphereExporterDown", "VsphereVmAppHeartbeatFailure", set()),
    # a failed host: its VMs' alerts
    ("VsphereHostNotResponding", "VsphereVmHeartbeatFailure", {"vcenter", "host_id"}),
    ("VsphereHostNotResponding", "VsphereVmPoweredOffUnexpectedly", {"vcenter", "host_id"}),
    ("VsphereHostNotResponding", "VsphereVmAppHeartbeatFailure", {"vcenter", "host_id"}),
    ("VsphereHostPoweredOff", "VsphereVmPoweredOffUnexpectedly", {"vcenter", "host_id"}),
    ("VsphereHostHaDown", "VsphereVmHeartbeatFailure", {"vcenter", "host_id"}),
    ("VsphereHostNetworkIsolated", "VsphereVmPoweredOffUnexpectedly", {"vcenter", "host_id"}),
    ("VsphereHostDisconnected", "VsphereVmHeartbeatFailure", {"vcenter", "host_id"}),
    ("VsphereHostNotRespondingHaAlive", "VsphereVmHeartbeatFailure", {"vcenter", "host_id"}),
    # one host failure pages once: the alert restarting its VMs silences the same host's
    # other failure alerts (vSphere HA's hostDown first of all)
    ("VsphereHostNotResponding", "VsphereHostHaDown", {"vcenter", "host_id"}),
    ("VsphereHostPoweredOff", "VsphereHostHaDown", {"vcenter", "host_id"}),
    ("VsphereHostPoweredOff", "VsphereHostNotRespondingHaAlive", {"vcenter", "host_id"}),
    ("VsphereHostNotResponding", "VsphereHostDisconnected", {"vcenter", "host_id"}),
    # a fault domain down: its hosts' (and their VMs') alerts
    ("VsphereFaultDomainDown", "VsphereHostNotResponding", {"vcenter", "cluster", "fault_domain"}),
    ("VsphereFaultDomainDown", "VsphereHostPoweredOff", {"vcenter", "cluster", "fault_domain"}),
    ("VsphereFaultDomainDown", "VsphereVmHeartbeatFailure", {"vcenter", "cluster", "fault_domain"}),
    # many hosts at once: no host restarts in that cluster
    ("VsphereClusterMassHostFailure", "VsphereHostNotResponding", {"vcenter", "cluster"}),
    ("VsphereClusterMassHostFailure", "VsphereHostPoweredOff", {"vcenter", "cluster"}),
    # a hung guest: one reset, not two
    ("VsphereVmHeartbeatFailure", "VsphereVmAppHeartbeatFailure", {"vcenter", "vm_id"}),
    ("VsphereVmHeartbeatFailure", "VsphereVmAppStateNeedReset", {"vcenter", "vm_id"}),
    ("VsphereHostNotResponding", "VsphereVmAppStateNeedReset", {"vcenter", "host_id"}),
    ("VsphereVcenterUnreachable", "VsphereVmAppStateNeedReset", {"vcenter"}),
    # performance alerts: a blind watcher holds them back too (no evacuation on stale data)
    ("VsphereExporterDown", "VsphereHostPerformanceDegraded", set()),
    ("VsphereVcenterUnreachable", "VsphereHostPerformanceDegraded", {"vcenter"}),
    ("VsphereSyncStale", "VsphereHostPerformanceDegraded", {"vcenter"}),
    ("VsphereVcenterUnreachable", "VsphereVmCpuReadyHigh", {"vcenter"}),
    ("VsphereVcenterUnreachable", "VspherePerfCollectionStale", {"vcenter"}),
    # ... and so do a failed host (its VMs) and a fault domain down
    ("VsphereHostNotResponding", "VsphereVmDiskLatencyHigh", {"vcenter", "host_id"}),
    ("VsphereHostPoweredOff", "VsphereVmCpuReadyHigh", {"vcenter", "host_id"}),
    (
        "VsphereFaultDomainDown",
        "VsphereHostPerformanceDegraded",
        {"vcenter", "cluster", "fault_domain"},
    ),
]

NOT_INHIBITED = [
    # the watcher's own alerts always get through
    ("VsphereExporterDown", "VsphereVcenterUnreachable"),
    ("VsphereVcenterUnreachable", "VsphereSyncStale"),
    ("VsphereInventoryHeld", "VsphereVcenterUnreachable"),
    ("VsphereHostNotResponding", "VsphereVcenterUnreachable"),
    # mass failure holds back host restarts only, and reports itself
    ("VsphereClusterMassHostFailure", "VsphereVmHeartbeatFailure"),
    # ...but not the fault-domain restart: the remediator re-reads and acts only on a
    # domain confirmed down (remediator/domain_failure.py)
    ("VsphereClusterMassHostFailure", "VsphereFaultDomainDown"),
    ("VsphereClusterMassHostFailure", "VsphereClusterMassHostFailure"),
    # a partitioned host's VMs are still watched
    ("VsphereHostNetworkPartitioned", "VsphereVmHeartbeatFailure"),
    ("VsphereVmAppHeartbeatFailure", "VsphereVmHeartbeatFailure"),
    ("VsphereVmAppStateNeedReset", "VsphereVmHeartbeatFailure"),
    ("VsphereVmAppStateNeedReset", "VsphereVmAppHeartbeatFailure"),
    # an alert that restarts VMs is never silenced by the host's other alerts, nor by
    # another restart alert (the remediator hears each)
    ("VsphereHostHaDown", "VsphereHostNotResponding"),
    ("VsphereHostNetworkIsolated", "VsphereHostPoweredOff"),
    ("VsphereHostPoweredOff", "VsphereHostNotResponding"),
    ("VsphereHostNotResponding", "VsphereHostPoweredOff"),
    # a partitioned host still runs its VMs: not a failure
    ("VsphereHostNotResponding", "VsphereHostNetworkPartitioned"),
    # stale performance counters blind nothing else; slow hosts and VMs inhibit nothing
    ("VspherePerfCollectionStale", "VsphereHostNotResponding"),
    ("VspherePerfCollectionStale", "VsphereHostCpuReadyHigh"),
    ("VsphereHostPerformanceDegraded", "VsphereVmCpuReadyHigh"),
    ("VsphereHostCpuReadyHigh", "VsphereVmCpuReadyHigh"),
    ("VsphereClusterMassHostFailure", "VsphereHostPerformanceDegraded"),
    # alerts on the remediator itself are not about what the exporter saw
    ("VsphereExporterDown", "VsphereRemediatorVmUnregistered"),
    ("VsphereExporterDown", "VsphereRemediatorActionsFailed"),
    ("VsphereVcenterUnreachable", "VsphereRemediatorVcenterUnreachable"),
    ("VsphereSyncStale", "VsphereRemediatorGuardTripped"),
]


@pytest.mark.parametrize(("source", "target", "equal"), INHIBITS)
def test_inhibits(source: str, target: str, equal: set[str]) -> None:
    assert equal in inhibitors(source, target), f"{source} must inhibit {target} on {equal}"


@pytest.mark.parametrize(("source", "target"), NOT_INHIBITED)
def test_does_not_inhibit(source: str, target: str) -> None:
    assert inhibitors(source, target) == []


# --- a live Alertmanager ------------------------------------------------------------------------


class Webhook:
    """Records what Alertmanager posts, by path."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with hook.lock:
                    hook.posts.append(
                        (self.path, self.headers.get("Authorization", ""), json.loads(body))
                    )
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self, path: str) -> list[tuple[str, str, dict[str, str]]]:
        """(authorization, status, labels) of every alert delivered to `path`."""
        with self.lock:
            return [
                (auth, a["status"], a["labels"])
                for p, auth, body in self.posts
                if p == path
                for a in body["alerts"]
            ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[str, Webhook, str]]:
    """Alertmanager (test profile: 1s group waits) delivering to a local webhook."""
    binary = tool("prometheus-alertmanager", "alertmanager")
    hook = Webhook()
    token = "test-token-" + tmp_path.name
    (tmp_path / "token").write_text(token + "\n", encoding="utf-8")
    (tmp_path / "site.yml").write_text(
        yaml.safe_dump(
            {
                "alertmanager": {
                    "remediator_url": f"{hook.url}/api/v1/alerts",
                    "remediator_credentials_file": str(tmp_path / "token"),
                    "people": {"webhook_configs": [{"url": f"{hook.url}/people"}]},
                }
            }
        ),
        encoding="utf-8",
    )
    out = tmp_path / "out"
    subprocess.run(
        [sys.executable, str(GENERATE), "--profile", "test"]
        + ["--config", str(tmp_path / "site.yml"), "--out", str(out)],
        check=True,
    )
    port = free_port()
    log = (tmp_path / "alertmanager.log").open("w")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={out / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(f"{url}/-/ready", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("Alertmanager did not start:\n" + log_text(tmp_path))
                time.sleep(0.1)
        yield url, hook, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        hook.server.shutdown()
        log.close()


def log_text(tmp_path: Path) -> str:
    return (tmp_path / "alertmanager.log").read_text(encoding="utf-8", errors="replace")


def alert(name: str, labels: dict[str, str], ends_in: float = 300) -> dict[str, Any]:
    """An alert of rule `name` as Prometheus posts it, resolving after `ends_in` seconds."""
    rule = next(r for r in alert_rules() if r["alert"] == name)
    now = datetime.now(UTC)
    return {
        "labels": {"alertname": name, **rule["labels"], **labels},
        "annotations": {"summary": name},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(seconds=ends_in)).isoformat(),
    }


def post(url: str, alerts: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(
        f"{url}/api/v2/alerts",
        data=json.dumps(alerts).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=5).close()


def statuses(url: str) -> dict[str, list[str]]:
    """Alert fingerprint label summary -> the alerts inhibiting it, per Alertmanager's API."""
    with urllib.request.urlopen(f"{url}/api/v2/alerts", timeout=5) as response:
        alerts = json.load(response)
    return {key(a["labels"]): a["status"]["inhibitedBy"] for a in alerts}


def key(labels: dict[str, str]) -> str:
    ident = labels.get("vm_id") or labels.get("host_id") or labels.get("cluster") or ""
    return f"{labels['alertname']}/{labels.get('vcenter', '')}/{ident}"


def test_live_inhibition_and_delivery(live: tuple[str, Webhook, str]) -> None:
    url, hook, token = live
    c1 = {"vcenter": "vc1", "cluster": "c1", "fault_domain": "fd-a"}
    host1 = {**c1, "host_id": "host-1", "host": "esx1"}
    host2 = {**c1, "host_id": "host-2", "host": "esx2"}
    host3 = {**c1, "host_id": "host-3", "host": "esx3"}
    host4 = {**c1, "host_id": "host-4", "host": "esx4"}
    fd_b = {"vcenter": "vc1", "cluster": "c3", "fault_domain": "fd-b"}
    post(
        url,
        [
            # a dead host, and a VM on it whose heartbeat loss is a consequence; both resolve
            # after 4s (the host is back)
            alert("VsphereHostNotResponding", host1, ends_in=4),
            alert("VsphereVmHeartbeatFailure", {**host1, "vm_id": "vm-1", "vm": "app1"}, 4),
            # one host failure, two views: vCenter lost host-3 and vSphere HA declared it dead;
            # only the alert restarting its VMs pages. vSphere HA alone on host-4: it pages.
            alert("VsphereHostNotResponding", host3),
            alert("VsphereHostHaDown", host3),
            alert("VsphereHostHaDown", host4),
            # a VM on a healthy host: reset
            alert("VsphereVmHeartbeatFailure", {**host2, "vm_id": "vm-2", "vm": "app2"}),
            # vc2 is unreachable: its host alert must not restart anything
            alert("VsphereVcenterUnreachable", {"vcenter": "vc2"}),
            alert(
                "VsphereHostNotResponding", {"vcenter": "vc2", "cluster": "c9", "host_id": "host-5"}
            ),
            # many hosts of c3 at once: people decide
            alert("VsphereClusterMassHostFailure", {"vcenter": "vc1", "cluster": "c3"}),
            alert(
                "VsphereHostNotResponding", {"vcenter": "vc1", "cluster": "c3", "host_id": "host-7"}
            ),
            # ...and they are a whole fault domain: its host alerts are inhibited, the
            # domain's own alert reaches the remediator, which re-reads and acts only if
            # every host is confirmed down
            alert("VsphereFaultDomainDown", {**fd_b, "cluster_id": "domain-c3"}),
            alert("VsphereHostNotResponding", {**fd_b, "host_id": "host-8", "host": "esx8"}),
        ],
    )
    expected_inhibited = {
        "VsphereVmHeartbeatFailure/vc1/vm-1",
        "VsphereHostNotResponding/vc2/host-5",
        "VsphereHostNotResponding/vc1/host-7",
        "VsphereHostNotResponding/vc1/host-8",
        "VsphereHostHaDown/vc1/host-3",
    }
    deadline = time.monotonic() + 10
    while True:
        inhibited = {k for k, by in statuses(url).items() if by}
        if inhibited == expected_inhibited or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert inhibited == expected_inhibited

    # the remediator gets the actionable, uninhibited alerts, with its bearer token, and the
    # dead host's alert again once it resolves (send_resolved)
    want = {
        ("firing", "VsphereHostNotResponding/vc1/host-1"),
        ("firing", "VsphereVmHeartbeatFailure/vc1/vm-2"),
        ("firing", "VsphereHostNotResponding/vc1/host-3"),
        ("firing", "VsphereFaultDomainDown/vc1/c3"),
        ("resolved", "VsphereHostNotResponding/vc1/host-1"),
    }
    deadline = time.monotonic() + 15
    while True:
        got = {(status, key(labels)) for _, status, labels in hook.alerts("/api/v1/alerts")}
        if want <= got or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert got == want
    assert {auth for auth, _, _ in hook.alerts("/api/v1/alerts")} == {f"Bearer {token}"}

    # people get everything that is not inhibited, remediation or not (resolved notices of
    # alerts inhibited while firing may follow; Alertmanager sends those)
    people = {key(labels) for _, status, labels in hook.alerts("/people") if status == "firing"}
    assert {
        "VsphereHostNotResponding/vc1/host-1",
        "VsphereVmHeartbeatFailure/vc1/vm-2",
        "VsphereVcenterUnreachable/vc2/",
        "VsphereClusterMassHostFailure/vc1/c3",
        "VsphereFaultDomainDown/vc1/c3",
        "VsphereHostNotResponding/vc1/host-3",
        "VsphereHostHaDown/vc1/host-4",
    } <= people
    assert not people & expected_inhibited
    # host-3 failed once and paged once
    assert {k for k in people if k.endswith("/host-3")} == {"VsphereHostNotResponding/vc1/host-3"}
