"""``vha demo ACTION [NAME]``: list the simulated inventory and inject faults or recoveries
into the running demo (or any simulator, with ``--api-url``), as a person watching would.

Every action checks what it is about to do against the simulator's state first, so a
recovery of something healthy says so instead of "done".  ``power-off-vm`` goes through
the vCenter API (PowerOffVM_Task with the demo's login) so vCenter records a
``VmPoweredOffEvent`` with a user name, as when a person powers a VM off: the remediator
must leave such a VM alone.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

STATE_FILE = "demo.json"
NEEDS_NAME = {
    "fail-host",
    "recover-host",
    "isolate-host",
    "fail-vm-heartbeat",
    "recover-vm-heartbeat",
    "fail-app-heartbeat",
    "recover-app-heartbeat",
    "power-off-vm",
}


def demo_state(args: argparse.Namespace) -> dict[str, Any]:
    state = Path(args.run_dir) / STATE_FILE
    if not state.exists():
        if args.api_url:
            return {"sim_api_url": args.api_url}
        raise SystemExit(
            f"vha demo: no running demo found ({state} missing); start `make demo` first"
        )
    data = dict(json.loads(state.read_text()))
    if args.api_url:
        data["sim_api_url"] = args.api_url
    return data


def _list(sim: Any) -> None:
    inv = sim.inventory()
    print("hosts:")
    for h in inv["hosts"]:
        extra = f" ({h.get('dasHostState', '')})" if h.get("dasHostState") else ""
        print(f"  {h['name']:<28} {h.get('cluster', ''):<14} {h.get('connectionState', '')}{extra}")
    print("vms:")
    for v in inv["vms"]:
        print(
            f"  {v['name']:<28} {v.get('host', ''):<28} {v.get('powerState', '')}"
            f" heartbeat={v.get('guestHeartbeatStatus', '')} app={v.get('appHeartbeatStatus', '')}"
        )


def _power_off_as_person(state: dict[str, Any], name: str) -> str:
    from pyVmomi import vim  # noqa: PLC0415

    from vcenter.config import Secret, VCenterConfig  # noqa: PLC0415
    from vcenter.session import connect, disconnect  # noqa: PLC0415

    if not state.get("sim_sdk_url") or not state.get("sim_password_file"):
        raise SystemExit(
            "vha demo power-off-vm: needs the running demo's vCenter login (its demo.json); "
            "--api-url alone is not enough"
        )
    vc = VCenterConfig(
        name="demo",
        url=state["sim_sdk_url"],
        user=state["sim_user"],
        password=Secret(Path(state["sim_password_file"]).read_text().strip()),
        verify_tls=bool(state.get("sim_ca_file")),
        ca_file=state.get("sim_ca_file") or None,
        timeout_seconds=30,
    )
    si = connect(vc)
    try:
        content = si.RetrieveContent()
        assert content.viewManager is not None
        view = content.viewManager.CreateContainerView(
            content.rootFolder, [vim.VirtualMachine], True
        )
        try:
            vm = next((v for v in view.view if v.name == name), None)
        finally:
            view.Destroy()
        if vm is None:
            raise SystemExit(f"vha demo power-off-vm: unknown VM {name!r}")
        if vm.runtime.powerState != "poweredOn":
            return f"{name} is already {vm.runtime.powerState}; nothing to do"
        task = vm.PowerOffVM_Task()
        deadline = time.monotonic() + 30
        while task.info.state in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.2)
        if task.info.state != "success":
            raise SystemExit(f"vha demo power-off-vm: PowerOffVM_Task {task.info.state}")
        return (
            f"{name} powered off through the vCenter API as {vc.user}: vCenter records who "
            "did it, and the remediator leaves a VM a person powered off alone"
        )
    finally:
        disconnect(si)


def run(args: argparse.Namespace) -> int:
    from sim.harness import SimulatorClient, SimulatorError  # noqa: PLC0415 - demo only

    action, name = args.action, args.name
    if action in NEEDS_NAME and not name:
        raise SystemExit(f"vha demo {action}: a host or VM name is required (see vha demo list)")
    state = demo_state(args)
    sim = SimulatorClient(state["sim_api_url"], timeout=10)
    try:
        if action == "list":
            _list(sim)
            return 0
        message = "done; watch the demo's output"
        if action == "fail-host":
            sim.fail_host(name, das_state="hostDown")
            message = "stops answering (notResponding, HA hostDown); watch the demo's output"
        elif action == "isolate-host":
            sim.fail_host(name, das_state="networkIsolated")
            message = "is network-isolated (HA networkIsolated); watch the demo's output"
        elif action == "recover-host":
            host = sim.get_host(name)
            healthy = ("master", "connectedToMaster", "")
            if (
                host.get("connectionState") == "connected"
                and host.get("dasHostState", "") in healthy
            ):
                message = "is healthy (connected); nothing to recover"
            else:
                sim.recover_host(name)
                message = "answers again; watch the alerts resolve"
        elif action in ("fail-vm-heartbeat", "recover-vm-heartbeat"):
            message = _heartbeat(sim, name, "guestHeartbeatStatus", "red", "green", action)
        elif action in ("fail-app-heartbeat", "recover-app-heartbeat"):
            message = _heartbeat(
                sim, name, "appHeartbeatStatus", "appStatusRed", "appStatusGreen", action
            )
        elif action == "power-off-vm":
            message = _power_off_as_person(state, name)
            print(message)
            return 0
    except SimulatorError as exc:
        raise SystemExit(f"vha demo {action}: {exc}") from None
    print(f"{action} {name}: {message}")
    return 0


def _heartbeat(sim: Any, name: str, key: str, bad: str, good: str, action: str) -> str:
    current = sim.get_vm(name).get(key)
    if action.startswith("recover"):
        if current == good:
            return f"{key} is already {good}; nothing to recover"
        sim.set_vm(name, **{key: good})
        return f"{key} {current} -> {good}"
    if current == bad:
        return f"{key} is already {bad}"
    sim.set_vm(name, **{key: bad})
    return (
        f"{key} {current} -> {bad}; the alert fires within seconds, then the remediator resets it"
    )
