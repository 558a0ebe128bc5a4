"""Killed with SIGKILL mid-action and started again: nothing is lost, nothing is done twice.

The remediator runs as a real process (``python -m remediator``) against the simulator, so
the kill lands wherever it lands: between journaling an attempt and the vCenter task, in
the middle of a relocation, or between relocation and power-on.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from .exporter_fixtures import sim_vcenter
from .remediator_fixtures import AUTH, alert, payload, remediator_section

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(url: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, headers={**AUTH, "Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def launch(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "remediator", "--config", str(config)],
        cwd=ROOT,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def wait_up(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if http(base + "/readyz")["status"] == "ready":
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("remediator did not come up:\n" + log.read_text())


def steps(base: str) -> list[dict[str, Any]]:
    items = http(base + "/api/v1/actions?limit=1000")["actions"]
    return [a for a in items if a["parent_id"] is not None]


def test_sigkill_mid_action_then_restart_loses_nothing(sim_factory: Any, tmp_path: Path) -> None:
    sim = sim_factory(clusters=1, hosts=3, vms=150)
    port = free_port()
    journal = tmp_path / "journal.sqlite"
    section = remediator_section(str(journal), listen=f"127.0.0.1:{port}", workers=3)
    section["max_concurrent_tasks"] = 1
    config = tmp_path / "vha.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "vcenters": [sim_vcenter(sim)],
                "fault_domains": {"custom_attribute": "HA-FaultDomain"},
                "remediator": section,
            }
        )
    )
    log = tmp_path / "remediator.log"
    base = f"http://127.0.0.1:{port}"
    inv = sim.inventory()
    failed = next(h for h in inv["hosts"] if h["name"] == "DC0_C0_H0")
    stranded = set(failed["vms"])
    sim.fail_host(failed["name"])

    proc = launch(config, log)
    try:
        wait_up(base, proc, log)
        labels = {"host_id": failed["moid"], "host": failed["name"], "cluster": "DC0_C0"}
        http(base + "/api/v1/alerts", payload(alert("restart_host_vms", **labels)))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            states = [s["state"] for s in steps(base)]
            if states.count("done") >= 3 and states.count("pending") >= 5:
                break
            time.sleep(0.01)
        else:
            pytest.fail(f"never caught the remediator mid-action: {states}")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()

    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as db:
        at_kill = dict(db.execute("SELECT state, COUNT(*) FROM actions GROUP BY state").fetchall())
    assert at_kill.get("pending", 0) > 0 and at_kill.get("running", 0) > 0, at_kill

    proc = launch(config, log)
    try:
        wait_up(base, proc, log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            final = steps(base)
            if final and all(s["state"] not in ("pending", "running") for s in final):
                break
            time.sleep(0.1)
        else:
            pytest.fail("the journal never drained after the restart")
        decisions = [
            a
            for a in http(base + "/api/v1/actions?limit=1000")["actions"]
            if a["parent_id"] is None
        ]
        recovered = [
            s
            for s in final
            if any(
                "recovered after a restart" in e["message"]
                for e in http(f"{base}/api/v1/actions/{s['id']}")["events"]
            )
        ]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()

    assert len(decisions) == 1 and decisions[0]["state"] == "done"
    assert sorted(s["vm"] for s in final) == sorted(stranded)  # one step per VM, none lost
    assert {s["state"] for s in final} == {"done"}, [
        (s["vm"], s["state"], s["reason"]) for s in final
    ]
    assert all(s["restarted_by"] == "remediator" for s in final)
    # Whatever was mid-flight at the kill was picked up again, re-evaluated and finished.
    assert at_kill.get("running", 0) == len(recovered)
    vms = {v["name"]: v for v in sim.inventory()["vms"]}
    for name in stranded:
        assert vms[name]["powerState"] == "poweredOn" and vms[name]["host"] != failed["name"]
    assert "recovered" in log.read_text() or not recovered


def test_bad_config_exits_with_the_key(tmp_path: Path) -> None:
    config = tmp_path / "vha.yaml"
    config.write_text(
        "vcenters: [{name: vc1, url: 'https://127.0.0.1:9/sdk', user: u, password_env: HOME}]\n"
        "remediator: {bearer_token_env: HOME, dry_run: maybe}\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "remediator", "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ},
    )
    assert out.returncode == 2
    assert "config error: remediator.dry_run: must be true or false" in out.stderr
    assert "Traceback" not in out.stderr
