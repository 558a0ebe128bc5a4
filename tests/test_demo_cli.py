"""`vha demo <fault> NAME` drives the simulator's fault API, with clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vha.cli import main


def test_fault_commands_change_the_simulator(sim: Any, capsys: pytest.CaptureFixture[str]) -> None:
    inv = sim.inventory()
    host, vm = inv["hosts"][1]["name"], inv["vms"][0]["name"]
    api = ["--api-url", sim.api_url]
    assert main(["demo", *api, "fail-host", host]) == 0
    assert sim.get_host(host)["connectionState"] == "notResponding"
    assert main(["demo", *api, "recover-host", host]) == 0
    assert sim.get_host(host)["connectionState"] == "connected"
    assert main(["demo", *api, "fail-vm-heartbeat", vm]) == 0
    assert sim.get_vm(vm)["guestHeartbeatStatus"] == "red"
    assert main(["demo", *api, "fail-app-heartbeat", vm]) == 0
    assert sim.get_vm(vm)["appHeartbeatStatus"] == "appStatusRed"
    assert "done" in capsys.readouterr().out


def test_fault_commands_report_errors_without_a_traceback(sim: Any, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"unknown host.*NOPE"):
        main(["demo", "--api-url", sim.api_url, "fail-host", "NOPE"])
    with pytest.raises(SystemExit, match="no running demo found"):
        main(["demo", "--run-dir", str(tmp_path), "fail-host", "x"])
    with pytest.raises(SystemExit, match="name is required"):
        main(["demo", "--api-url", sim.api_url, "fail-host"])
