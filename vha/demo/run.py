"""``vha demo``: the whole stack on loopback, and fault injection a person can drive.

``vha demo`` (``make demo``) starts the stack, prints every URL and the fault commands, and
then reports, as it happens, each stage of a failure: detected (alert pending), alerted
(firing), delivered and acted on (remediator journal).  Ctrl-C stops everything it started.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from .stack import ROOT, NoSourceTree, Stack, StackError, StackOptions

STATE_FILE = "demo.json"


def _say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')}  {message}", flush=True)


def _api_url(args: argparse.Namespace) -> str:
    if args.api_url:
        return str(args.api_url)
    state = Path(args.run_dir) / STATE_FILE
    if not state.exists():
        raise SystemExit(
            f"vha demo: no running demo found ({state} missing); start `make demo` first"
        )
    return str(json.loads(state.read_text())["sim_api_url"])


def fault(args: argparse.Namespace) -> int:
    from sim.harness import SimulatorClient, SimulatorError  # noqa: PLC0415 - demo only

    if not args.name:
        raise SystemExit(f"vha demo {args.action}: a host or VM name is required")
    sim = SimulatorClient(_api_url(args), timeout=10)
    try:
        if args.action == "fail-host":
            sim.fail_host(args.name, das_state="hostDown")
        elif args.action == "recover-host":
            sim.recover_host(args.name)
        elif args.action == "fail-vm-heartbeat":
            sim.set_vm(args.name, guestHeartbeatStatus="red")
        elif args.action == "fail-app-heartbeat":
            sim.set_vm(args.name, appHeartbeatStatus="appStatusRed")
    except SimulatorError as exc:
        raise SystemExit(f"vha demo {args.action}: {exc}") from None
    print(f"{args.action} {args.name}: done; watch the demo's output")
    return 0


class Progress:
    """Prints what changed since the last look: alerts and remediator actions."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.alerts: dict[tuple[str, str], str] = {}
        self.actions: dict[str, str] = {}

    def poll(self) -> None:
        try:
            alerts = self.stack.firing_alerts()
        except (OSError, StackError, KeyError, ValueError):
            alerts = []
        seen = set()
        for a in alerts:
            labels = a.get("labels", {})
            key = (labels.get("alertname", "?"), labels.get("vm") or labels.get("host") or "")
            seen.add(key)
            state = a.get("state", "")
            if self.alerts.get(key) != state:
                self.alerts[key] = state
                stage = "detected (pending)" if state == "pending" else "ALERT firing"
                _say(f"{stage}: {key[0]} {key[1]} remediation={labels.get('remediation', '')}")
        for key in [k for k in self.alerts if k not in seen]:
            del self.alerts[key]
            _say(f"resolved: {key[0]} {key[1]}")
        if "remediator" not in self.stack.processes:
            return
        try:
            actions = self.stack.remediator_actions()
        except (OSError, StackError, ValueError):
            return
        for act in actions:
            ident = str(act.get("id", ""))
            state = str(act.get("state", ""))
            if self.actions.get(ident) != state:
                self.actions[ident] = state
                target = act.get("vm") or act.get("host") or ""
                why = act.get("reason") or act.get("detail") or ""
                _say(f"remediator: {act.get('kind', '')} {target} -> {state} {why}".rstrip())


def up(args: argparse.Namespace) -> int:
    opts = StackOptions(
        run_dir=Path(args.run_dir).resolve(), config_path=args.config, fixed_ports=True
    )
    stack = Stack(opts)
    _say("starting simulator, exporter, remediator, Prometheus and Alertmanager ...")
    try:
        stack.start()
    except StackError as exc:
        print(f"vha demo: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, NoSourceTree) else 1
    state: dict[str, Any] = {"run_dir": str(opts.run_dir), "pids": {}}
    for name, proc in stack.processes.items():
        state["pids"][name] = proc.pid
    if stack.sim is not None:
        state["sim_api_url"] = stack.sim.api_url
        state["sim_sdk_url"] = stack.sim.sdk_url
    (opts.run_dir / STATE_FILE).write_text(json.dumps(state, indent=2))
    print()
    print("vsphere-ha-stack demo is up:")
    print(f"  exporter       {stack.url('exporter')}/  (metrics: /metrics)")
    if "remediator" in stack.processes:
        print(f"  remediator     {stack.url('remediator')}/  (journal: /api/v1/actions)")
    print(f"  Prometheus     {stack.url('prometheus')}/alerts")
    print(f"  Alertmanager   {stack.url('alertmanager')}/")
    if stack.sim is not None:
        inv = stack.sim.inventory()
        host = inv["hosts"][1]["name"] if len(inv["hosts"]) > 1 else inv["hosts"][0]["name"]
        vm = inv["vms"][0]["name"]
        print(f"  simulator      {stack.sim.sdk_url}  (fault API: {stack.sim.api_url})")
        print(f"  logs           {opts.run_dir / 'logs'}")
        print()
        print("Try, in another terminal:")
        vha = f"{ROOT / '.venv' / 'bin' / 'vha'} demo"
        print(f"  {vha} fail-host {host}")
        print(f"  {vha} recover-host {host}")
        print(f"  {vha} fail-vm-heartbeat {vm}")
        print(f"  {vha} fail-app-heartbeat {vm}")
    print("\nCtrl-C stops everything.\n", flush=True)
    progress = Progress(stack)
    stopping = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stopping:
            for name, proc in stack.processes.items():
                if not proc.alive():
                    _say(f"{name} exited; see {proc.log_path}")
                    stopping = True
            progress.poll()
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        _say("stopping ...")
        stack.stop()
        (opts.run_dir / STATE_FILE).unlink(missing_ok=True)
    return 0


def main(args: argparse.Namespace) -> int:
    if args.action == "up":
        return up(args)
    return fault(args)
