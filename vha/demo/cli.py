"""``vha demo`` arguments: kept apart from vha/cli.py so the fault actions grow here."""

from __future__ import annotations

import argparse

# action -> what it does (shown by `vha demo --help`)
ACTIONS = {
    "up": "start the stack (the default)",
    "fail-host": "HOST stops answering (notResponding, FDM hostDown)",
    "recover-host": "HOST answers again",
    "fail-vm-heartbeat": "VM's VMware Tools heartbeat turns red",
    "fail-app-heartbeat": "VM's application heartbeat turns red",
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
