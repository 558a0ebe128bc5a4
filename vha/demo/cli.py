"""``vha demo`` arguments: kept apart from vha/cli.py so the fault actions grow here."""

from __future__ import annotations

import argparse

# action -> what it does (shown by `vha demo --help`)
ACTIONS = {
    "up": "start the stack (the default)",
    "list": "the simulated hosts and VMs, with their state",
    "fail-host": "HOST stops answering (notResponding, HA hostDown)",
    "recover-host": "HOST answers again (says so when it is healthy)",
    "isolate-host": "HOST is network-isolated (HA networkIsolated)",
    "fail-vm-heartbeat": "VM's VMware Tools heartbeat turns red",
    "recover-vm-heartbeat": "VM's heartbeat turns green again",
    "fail-app-heartbeat": "VM's application heartbeat turns red",
    "recover-app-heartbeat": "VM's application heartbeat turns green again",
    "power-off-vm": "power VM off through the vCenter API, as a person would",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML configuration; without vCenters the simulator is used")
    p.add_argument("--run-dir", default="run/demo", help="where the demo keeps its files")
    p.add_argument("--api-url", help="simulator fault API (default: the running demo's)")
    p.add_argument(
        "action",
        nargs="?",
        default="up",
        choices=list(ACTIONS),
        metavar="ACTION",
        help="; ".join(f"{name}: {what}" for name, what in ACTIONS.items()),
    )
    p.add_argument("name", nargs="?", help="host or VM name for the fault actions")
