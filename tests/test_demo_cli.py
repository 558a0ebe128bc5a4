"""`vha demo ACTION [NAME]` drives the simulator (fault API, and the vCenter API for a
person's power-off), says what it did, and reports errors without a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vha.cli import main


def test_list_shows_hosts_and_vms(sim: Any, capsys: pytest.CaptureFixture[str]) -> None:
    inv = sim.inventory()
    assert main(["demo", "--api-url", sim.api_url, "list"]) == 0
    out = capsys.readouterr().out
    assert "hosts:" in out and "vms:" in out
    assert all(h["name"] in out for h in inv["hosts"]) and inv["vms"][0]["name"] in out


def test_host_fail_recover_isolate(sim: Any, capsys: pytest.CaptureFixture[str]) -> None:
    host = sim.inventory()["hosts"][1]["name"]
    api = ["demo", "--api-url", sim.api_url]
    assert main([*api, "recover-host", host]) == 0
    assert "healthy" in capsys.readouterr().out
    assert main([*api, "fail-host", host]) == 0
    assert sim.get_host(host)["connectionState"] == "notResponding"
    assert main([*api, "recover-host", host]) == 0
    assert "answers again" in capsys.readouterr().out
    assert sim.get_host(host)["connectionState"] == "connected"
    assert main([*api, "isolate-host", host]) == 0
    assert sim.get_host(host)["dasHostState"] == "networkIsolated"
    assert main([*api, "recover-host", host]) == 0
    assert sim.get_host(host)["connectionState"] == "connected"


def test_heartbeats_fail_and_recover(sim: Any, capsys: pytest.CaptureFixture[str]) -> None:
    vm = sim.inventory()["vms"][0]["name"]
    api = ["demo", "--api-url", sim.api_url]
    assert main([*api, "recover-vm-heartbeat", vm]) == 0
    assert "nothing to recover" in capsys.readouterr().out
    assert main([*api, "fail-vm-heartbeat", vm]) == 0
    assert sim.get_vm(vm)["guestHeartbeatStatus"] == "red"
    assert main([*api, "recover-vm-heartbeat", vm]) == 0
    assert sim.get_vm(vm)["guestHeartbeatStatus"] == "green"
    assert main([*api, "fail-app-heartbeat", vm]) == 0
    assert sim.get_vm(vm)["appHeartbeatStatus"] == "appStatusRed"
    assert main([*api, "recover-app-heartbeat", vm]) == 0
    assert sim.get_vm(vm)["appHeartbeatStatus"] == "appStatusGreen"
    assert "-> appStatusGreen" in capsys.readouterr().out


def test_power_off_as_a_person(
    sim: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the vCenter API with the demo's login, so vCenter records who did it."""
    (tmp_path / "pw").write_text(sim.password + "\n")
    state = {
        "sim_api_url": sim.api_url,
        "sim_sdk_url": sim.sdk_url,
        "sim_user": sim.username,
        "sim_password_file": str(tmp_path / "pw"),
        "sim_ca_file": sim.ca_file or "",
    }
    (tmp_path / "demo.json").write_text(json.dumps(state))
    vm = sim.inventory()["vms"][0]["name"]
    assert main(["demo", "--run-dir", str(tmp_path), "power-off-vm", vm]) == 0
    assert "as " + sim.username in capsys.readouterr().out
    assert sim.get_vm(vm)["powerState"] == "poweredOff"
    assert main(["demo", "--run-dir", str(tmp_path), "power-off-vm", vm]) == 0
    assert "already poweredOff" in capsys.readouterr().out


def test_fault_commands_report_errors_without_a_traceback(sim: Any, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"unknown host.*NOPE"):
        main(["demo", "--api-url", sim.api_url, "fail-host", "NOPE"])
    with pytest.raises(SystemExit, match="no running demo found"):
        main(["demo", "--run-dir", str(tmp_path), "fail-host", "x"])
    with pytest.raises(SystemExit, match="name is required"):
        main(["demo", "--api-url", sim.api_url, "fail-host"])
    with pytest.raises(SystemExit, match="vCenter login"):
        main(["demo", "--api-url", sim.api_url, "power-off-vm", "x"])
