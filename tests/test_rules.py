"""The Prometheus rules: promtool's checks and unit tests, the generator, and the runbook.

``rules/alerts.yml`` and ``rules/recording.yml`` are generated from ``rules/config.yml`` by
``rules/generate.py``; the promtool unit tests in ``rules/tests/`` run against the committed
files. promtool comes from Debian's ``prometheus`` package (``make setup`` installs it).
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
GENERATE = RULES / "generate.py"
UNIT_TESTS = sorted((RULES / "tests").glob("*.yml"))
RUNBOOK = ROOT / "docs" / "alerts.md"
RUNBOOK_BASE = "https://github.com/vsphere-ha-stack/vsphere-ha-stack/blob/main/docs/alerts.md"
SEVERITIES = {"critical", "warning"}
REMEDIATIONS = {
    "restart_host_vms",
    "restart_vm",
    "reset_vm",
    "evacuate_host",
    "restart_fault_domain_vms",
    "none",
}
# The labels that identify what an alert is about, by alert-name prefix. Empty labels are
# absent in Prometheus, so a standalone host's alerts carry no `cluster` (see hosts.yml).
IDENTITY = {
    "VsphereHost": {"vcenter", "host_id", "host"},
    "VsphereVm": {"vcenter", "vm_id", "vm", "host_id", "host"},
    "VsphereFaultDomain": {"vcenter", "cluster_id", "cluster", "fault_domain"},
    "VsphereCluster": {"vcenter"},
    "VsphereDatastore": {"vcenter", "datastore_id", "datastore"},
    "VsphereVcenter": {"vcenter"},
    "VsphereSync": {"vcenter"},
    "VsphereInventory": {"vcenter"},
    "VspherePerf": {"vcenter"},
    "VsphereExporter": {"job"},
    "VsphereRemediator": {"job", "instance"},
    "VsphereAlarm": {"vcenter", "entity_type", "entity_id", "entity", "alarm"},
    "VsphereLicense": {"vcenter", "license", "key_suffix"},
    "VsphereHa": {"job", "instance", "vcenter", "cluster"},
}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not on PATH; it comes from Debian's prometheus package: run `make setup`"
        )
    return path


def run(*cmd: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=120, check=False
    )


def generate(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, GENERATE, *args)


@functools.cache
def load(path: Path) -> Any:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)


def alert_rules(path: Path = RULES / "alerts.yml") -> list[dict[str, Any]]:
    return [r for g in load(path)["groups"] for r in g["rules"] if "alert" in r]


def group_names(path: Path) -> list[str]:
    return [g["name"] for g in load(path)["groups"]]


@pytest.fixture(scope="module")
def promtool() -> str:
    return tool("promtool")


# --- promtool --------------------------------------------------------------------------------


def test_promtool_check_rules(promtool: str) -> None:
    result = run(promtool, "check", "rules", RULES / "alerts.yml", RULES / "recording.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests(promtool: str) -> None:
    """All of rules/tests/*.yml, one promtool per file, side by side."""
    assert UNIT_TESTS, "no promtool unit tests in rules/tests/"
    procs = {
        path: subprocess.Popen(
            [promtool, "test", "rules", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for path in UNIT_TESTS
    }
    failed = []
    for proc in procs.values():
        output, _ = proc.communicate(timeout=120)
        if proc.returncode != 0:
            failed.append(output)
    assert not failed, "\n".join(failed)


def test_every_alert_is_unit_tested() -> None:
    """Each alert has a test where it fires and one where it must not (before its `for`, on
    healthy or maintenance-mode hosts, or after it resolved)."""
    fires: set[str] = set()
    silent: set[str] = set()
    for path in UNIT_TESTS:
        for test in load(path)["tests"]:
            for case in test.get("alert_rule_test", []):
                (fires if case.get("exp_alerts") else silent).add(case["alertname"])
    names = {r["alert"] for r in alert_rules()}
    assert not names - fires, f"alerts never seen firing in rules/tests: {names - fires}"
    assert not names - silent, f"alerts never asserted silent in rules/tests: {names - silent}"
    unknown = (fires | silent) - names
    assert not unknown, f"rules/tests name alerts that do not exist: {unknown}"


def test_unit_tests_evaluate_recording_rules_first() -> None:
    """promtool evaluates groups in random order unless told; alerts read recording rules."""
    recording = group_names(RULES / "recording.yml")
    alerting = group_names(RULES / "alerts.yml")
    for path in UNIT_TESTS:
        doc = load(path)
        expected = recording + (alerting if "../alerts.yml" in doc["rule_files"] else [])
        assert doc.get("group_eval_order") == expected, f"{path.name}: group_eval_order"


def test_expected_alerts_carry_identifying_labels() -> None:
    for path in UNIT_TESTS:
        for test in load(path)["tests"]:
            for case in test.get("alert_rule_test", []):
                name = case["alertname"]
                need = next(v for k, v in IDENTITY.items() if name.startswith(k))
                for alert in case.get("exp_alerts") or []:
                    labels = alert["exp_labels"]
                    missing = need - set(labels)
                    assert not missing, f"{path.name}: {name} lacks {missing}"
                    assert {"severity", "remediation"} <= set(labels)
                    assert labels.get("cluster", "x") != "", "empty labels are absent"


def test_cluster_scoped_alerts_carry_their_cluster() -> None:
    """Every alert about a cluster, fault domain, host or VM is seen firing with its `cluster`
    label (Alertmanager groups by it and the inhibitions match on it). Only standalone hosts
    and their VMs may lack it, so at least one firing case per alert must carry it."""
    scoped = ("VsphereCluster", "VsphereFaultDomain", "VsphereHost", "VsphereVm")
    with_cluster: set[str] = set()
    for path in UNIT_TESTS:
        for test in load(path)["tests"]:
            for case in test.get("alert_rule_test", []):
                for alert in case.get("exp_alerts") or []:
                    if alert["exp_labels"].get("cluster"):
                        with_cluster.add(case["alertname"])
    names = {r["alert"] for r in alert_rules() if r["alert"].startswith(scoped)}
    assert names - with_cluster == set(), "never seen firing with a cluster label"


# --- the generator ---------------------------------------------------------------------------


def test_generated_files_are_current(tmp_path: Path) -> None:
    result = generate("--out", tmp_path)
    assert result.returncode == 0, result.stderr
    committed = {
        "alerts.yml": RULES / "alerts.yml",
        "recording.yml": RULES / "recording.yml",
        "alertmanager.yml": ROOT / "alertmanager" / "alertmanager.yml",
    }
    for name, path in committed.items():
        assert path.read_text(encoding="utf-8") == (tmp_path / name).read_text(encoding="utf-8"), (
            f"{path.relative_to(ROOT)} is out of date: run python rules/generate.py"
        )
    assert generate("--check").returncode == 0


def test_test_profile_generates_valid_short_rules(promtool: str, tmp_path: Path) -> None:
    result = generate("--profile", "test", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    check = run(promtool, "check", "rules", tmp_path / "alerts.yml", tmp_path / "recording.yml")
    assert check.returncode == 0, check.stdout + check.stderr
    for rule in alert_rules(tmp_path / "alerts.yml"):
        assert re.fullmatch(r"[1-5]s", rule.get("for", "0s")), (rule["alert"], rule.get("for"))
    intervals = {g["name"]: g["interval"] for g in load(tmp_path / "recording.yml")["groups"]}
    assert intervals.pop("vsphere-rightsizing.rules") == "5s"
    assert set(intervals.values()) == {"1s"}
    assert {g["interval"] for g in load(tmp_path / "alerts.yml")["groups"]} == {"1s"}
    recording = (tmp_path / "recording.yml").read_text(encoding="utf-8")
    assert "[2m]" in recording and "[7d]" not in recording  # the rightsizing window
    am = load(tmp_path / "alertmanager.yml")
    remediator = am["route"]["routes"][1]
    assert remediator["receiver"] == "remediator" and remediator["group_wait"] == "1s"


def test_overrides_file(tmp_path: Path) -> None:
    site = tmp_path / "site.yml"
    site.write_text(
        "hosts: {degraded_remediation: evacuate_host}\n"
        "performance: {host_degraded_remediation: evacuate_host, cpu_ready_ratio: 0.1}\n"
        "rightsizing: {window: 14d, cpu_target_ratio: 0.8}\n"
        "vm_monitoring: {sensitivity: low, use_cluster_settings: false}\n"
        "alertmanager:\n"
        "  remediator_url: http://127.0.0.1:19999/api/v1/alerts\n"
        "  people: {webhook_configs: [{url: 'http://127.0.0.1:19998/'}]}\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    result = generate("--config", site, "--out", out)
    assert result.returncode == 0, result.stderr
    degraded = next(
        r for r in alert_rules(out / "alerts.yml") if r["alert"] == "VsphereHostDegraded"
    )
    assert degraded["labels"]["remediation"] == "evacuate_host"
    rules = {r["alert"]: r for r in alert_rules(out / "alerts.yml")}
    slow = rules["VsphereHostPerformanceDegraded"]
    assert slow["labels"]["remediation"] == "evacuate_host"
    assert "(evacuate_host)" in slow["annotations"]["description"]
    ready = rules["VsphereVmCpuReadyHigh"]
    assert "> 0.1\n" in ready["expr"] and ready["labels"]["remediation"] == "none"
    recording = (out / "recording.yml").read_text(encoding="utf-8")
    assert "* 0 + 120" in recording and "* 0 + 480" in recording  # the low preset
    assert "[14d]" in recording and "[7d]" not in recording and "/ 0.8," in recording
    am = load(out / "alertmanager.yml")
    receivers = {r["name"]: r for r in am["receivers"]}
    assert receivers["remediator"]["webhook_configs"][0]["url"].endswith(":19999/api/v1/alerts")
    assert receivers["people"]["webhook_configs"] == [{"url": "http://127.0.0.1:19998/"}]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("hosts: {not_respondin_for: 1m}\n", "unknown key hosts.not_respondin_for"),
        ("hosts: {not_responding_for: soon}\n", "hosts.not_responding_for"),
        ("mass_failure: {for: 5m}\n", "mass_failure.for"),
        ("fault_domains: {down_for: 1m}\n", "fault_domains.down_for"),
        ("evaluation_interval: 1m\n", "mass_failure.for"),
        ("vm_monitoring: {sensitivity: paranoid}\n", "vm_monitoring.sensitivity"),
        ("hosts: {degraded_remediation: restart_vm}\n", "hosts.degraded_remediation"),
        ("capacity: {max_utilization: 2}\n", "capacity.max_utilization"),
        ("performance: {cpu_ready_ratio: 5}\n", "performance.cpu_ready_ratio"),
        ("performance: {disk_latency_for: 15}\n", "performance.disk_latency_for"),
        ("performance: {host_degraded_remediation: reset_vm}\n", "performance.host_degraded"),
        ("performance: {cpu_redy_ratio: 0.1}\n", "unknown key performance.cpu_redy_ratio"),
        ("rightsizing: {interval: 10m}\n", "rightsizing.interval: at most 5m"),
        ("rightsizing: {window: 0s}\n", "rightsizing.window"),
        ("rightsizing: {window: 1500ms}\n", "rightsizing.window"),
        ("rightsizing: {min_coverage_ratio: 1.5}\n", "rightsizing.min_coverage_ratio"),
        ("rightsizing: {cpu_target_ratio: 0}\n", "rightsizing.cpu_target_ratio"),
    ],
)
def test_bad_overrides_are_refused(tmp_path: Path, override: str, message: str) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(override, encoding="utf-8")
    result = generate("--config", bad, "--out", tmp_path / "out")
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "out").exists()


def test_recording_rules_hold_the_rightsizing_rules() -> None:
    """rules/recording.yml carries vha/report/rightsizing.py's groups as that module makes them
    (the report and the dashboards read them), with the config's thresholds."""
    sys.path.insert(0, str(RULES))
    try:
        import generate  # rules/generate.py
    finally:
        sys.path.remove(str(RULES))
    from vha.report import rightsizing

    settings = generate.load_settings()
    assert settings.rightsizing == rightsizing.Settings()  # the shipped config: the defaults
    expected = rightsizing.rule_file(settings.rightsizing, interval="5m")["groups"]
    groups = {g["name"]: g for g in load(RULES / "recording.yml")["groups"]}
    for group in expected:
        got = groups[group["name"]]
        assert got["rules"] == group["rules"], group["name"]
        assert got["interval"] == group.get("interval", "15s"), group["name"]


# --- labels, annotations and the runbook -----------------------------------------------------


def github_anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def runbook_anchors() -> set[str]:
    text = RUNBOOK.read_text(encoding="utf-8")
    return {github_anchor(m) for m in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}


def test_every_alert_is_labelled_and_annotated() -> None:
    rules = alert_rules()
    assert len(rules) >= 20
    assert len({r["alert"] for r in rules}) == len(rules), "duplicate alert names"
    for rule in rules:
        name = rule["alert"]
        assert re.fullmatch(r"Vsphere[A-Z][A-Za-z]+", name), name
        labels, annotations = rule["labels"], rule["annotations"]
        assert labels["severity"] in SEVERITIES, name
        assert labels["remediation"] in REMEDIATIONS, name
        assert {"summary", "description", "runbook_url"} <= set(annotations), name
        assert annotations["runbook_url"] == f"{RUNBOOK_BASE}#{name.lower()}", name


def test_every_alert_has_a_runbook_section() -> None:
    anchors = runbook_anchors()
    missing = [r["alert"] for r in alert_rules() if r["alert"].lower() not in anchors]
    assert not missing, f"docs/alerts.md has no section for {missing}"


def test_watcher_alerts_are_critical_and_never_remediate() -> None:
    for rule in alert_rules():
        if rule["alert"] in {
            "VsphereExporterDown",
            "VsphereVcenterUnreachable",
            "VsphereSyncStale",
        }:
            assert rule["labels"] == {"severity": "critical", "remediation": "none"}


def test_every_threshold_is_documented() -> None:
    """Each key of rules/config.yml is explained in docs/alerts.md."""

    def leaves(node: Any, prefix: str = "") -> list[str]:
        if isinstance(node, dict) and node and prefix != "alertmanager.people.":
            return [k for key, v in node.items() for k in leaves(v, f"{prefix}{key}.")]
        return [prefix.rstrip(".")]

    text = RUNBOOK.read_text(encoding="utf-8")
    missing = [k for k in leaves(load(RULES / "config.yml")) if f"`{k}`" not in text]
    assert not missing, f"docs/alerts.md does not explain {missing}"
