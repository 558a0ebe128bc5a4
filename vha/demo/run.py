"""``vha demo``: the whole stack on loopback, and fault injection a person can drive.

``vha demo`` (``make demo``) starts the stack, prints every URL (each answers 200 with
something useful) and the fault commands, then reports, as it happens, each stage of a
failure: detected (alert pending), alerted (firing), held back (inhibited or silenced in
Alertmanager, with the alert that inhibits it), delivered and acted on (remediator journal),
or held by the remediator's guard (mass failure, vCenter unreachable) with the guard's
reason.  Ctrl-C stops everything it started.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from . import faults
from .stack import ROOT, NoSourceTree, Stack, StackError, StackOptions, get_json
from .view import ReadOnlyView

STATE_FILE = faults.STATE_FILE
VIEW_PORT = 9274


def _say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')}  {message}", flush=True)


def _subject(labels: dict[str, str]) -> str:
    """What an alert is about: the VM, else the host, else the cluster (with its cluster)."""
    cluster = labels.get("cluster", "")
    for key in ("vm", "host"):
        if labels.get(key):
            return f"{key} {labels[key]}" + (f" (cluster {cluster})" if cluster else "")
    if cluster:
        return f"cluster {cluster}"
    return labels.get("vcenter", "") and f"vcenter {labels['vcenter']}"


class Progress:
    """Prints what changed since the last look: alerts, their Alertmanager state (inhibited
    or silenced, and by what) and remediator actions."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.alerts: dict[tuple[str, str], str] = {}
        self.suppressed: dict[tuple[str, str], str] = {}
        self.actions: dict[str, str] = {}

    def poll(self) -> None:
        try:
            alerts = self.stack.firing_alerts()
        except (OSError, StackError, KeyError, ValueError):
            alerts = []
        seen = set()
        for a in alerts:
            labels = a.get("labels", {})
            key = (labels.get("alertname", "?"), _subject(labels))
            seen.add(key)
            state = a.get("state", "")
            if self.alerts.get(key) != state:
                self.alerts[key] = state
                stage = "detected (pending)" if state == "pending" else "ALERT firing"
                _say(f"{stage}: {key[0]} {key[1]} remediation={labels.get('remediation', '')}")
        for key in [k for k in self.alerts if k not in seen]:
            del self.alerts[key]
            self.suppressed.pop(key, None)
            _say(f"resolved: {key[0]} {key[1]}")
        self._alertmanager()
        self._actions()

    def _alertmanager(self) -> None:
        """Alerts Alertmanager holds back: inhibited by another alert, or silenced."""
        try:
            am = get_json(f"{self.stack.url('alertmanager')}/api/v2/alerts")
        except (OSError, ValueError):
            return
        names = {a.get("fingerprint"): a.get("labels", {}) for a in am}
        for a in am:
            labels = a.get("labels", {})
            key = (labels.get("alertname", "?"), _subject(labels))
            status = a.get("status", {})
            why = ""
            if status.get("inhibitedBy"):
                by = sorted(
                    f"{names.get(f, {}).get('alertname', f)} {_subject(names.get(f, {}))}".strip()
                    for f in status["inhibitedBy"]
                )
                why = "inhibited by " + ", ".join(by)
            elif status.get("silencedBy"):
                why = "silenced (" + ", ".join(status["silencedBy"]) + ")"
            if why and self.suppressed.get(key) != why:
                self.suppressed[key] = why
                _say(f"held back: {key[0]} {key[1]}: {why}; the remediator is not called")
            elif not why and key in self.suppressed:
                del self.suppressed[key]

    def _actions(self) -> None:
        if "remediator" not in self.stack.processes:
            return
        try:
            actions = self.stack.remediator_actions()
        except (OSError, StackError, ValueError):
            return
        for act in actions:
            ident = str(act.get("id", ""))
            state = str(act.get("state", ""))
            reason = str(act.get("reason") or "")
            # A guard (mass failure, vCenter unreachable) keeps the action pending with
            # reason "held: ..." (remediator/engine.py); that is news of its own.
            held = state == "pending" and reason.startswith("held: ")
            seen = f"{state} held" if held else state
            if self.actions.get(ident) == seen:
                continue
            self.actions[ident] = seen
            target = act.get("vm") or act.get("host") or act.get("cluster") or ""
            if act.get("cluster") and act.get("cluster") != target:
                target += f" (cluster {act['cluster']})"
            head = f"remediator: {act.get('kind', '')} {target}"
            if held:
                _say(f"{head} held by the remediator's guard: {reason.removeprefix('held: ')}")
                continue
            why = reason or act.get("detail") or ""
            if state == "refused" and reason.startswith("held too long"):
                why = f"held by the remediator's guard too long: {reason}"
            why = f": {why}" if why else ""
            _say(f"{head} -> {state}{why}")


def banner(stack: Stack, view: ReadOnlyView | None) -> list[str]:
    """The lines `vha demo` prints; every URL in them answers 200 (tests/test_demo.py)."""
    versions = stack.versions()
    lines = [
        "vsphere-ha-stack demo is up "
        f"(Prometheus {versions['Prometheus']}, Alertmanager {versions['Alertmanager']}: "
        "Debian's packages; docker-compose.yml pins its own images):",
        f"  exporter       {stack.url('exporter')}/  (metrics: {stack.url('exporter')}/metrics)",
    ]
    if view is not None:
        lines.append(
            f"  remediator     http://127.0.0.1:{view.port}/  (read-only demo view of its page "
            f"and journal; the webhook itself is {stack.url('remediator')}, token in "
            f"{stack.token_file})"
        )
    prom = stack.url("prometheus")
    lines.append(f"  Prometheus     {prom}/classic/alerts  (queries: {prom}/classic/graph)")
    am = stack.url("alertmanager")
    lines += [
        f"  Alertmanager   API only (Debian's build has no web UI): {am}/api/v2/status",
        f"                 prometheus-alertmanager's amtool: amtool --alertmanager.url={am} "
        "alert query   (silences: amtool ... silence query)",
    ]
    if stack.sim is not None:
        lines.append(
            f"  simulator      vCenter SDK {stack.sim.sdk_url} (for pyVmomi/govc, user "
            f"{stack.sim.username}, the Administrator); fault API "
            f"{stack.sim.api_url}/api/v1/inventory"
        )
        users = {a.role: a.username for a in stack.sim.accounts}
        if "read-only" in users and "operator" in users:
            lines.append(
                f"                 the exporter logs in as {users['read-only']} (Read-only role), "
                f"the remediator as {users['operator']} (only its privileges, "
                "docs/remediator.md)"
            )
    lines.append(f"  logs           {stack.run_dir / 'logs'}")
    return lines


def _examples(stack: Stack) -> list[str]:
    inv = stack.sim.inventory()
    hosts = inv["hosts"]
    host = hosts[1]["name"] if len(hosts) > 1 else hosts[0]["name"]
    # Three different VMs, none on the host suggested for failing, so each fault shows alone.
    vms = [v["name"] for v in inv["vms"] if v.get("host") != host] or [inv["vms"][0]["name"]]
    vm1, vm2, vm3 = (vms * 3)[0], (vms * 3)[1], (vms * 3)[2]
    local = ROOT / ".venv" / "bin" / "vha"
    vha = f"{local if local.exists() else 'vha'} demo"
    return [
        "Try, in another terminal:",
        f"  {vha} list",
        f"  {vha} fail-host {host}            (then: recover-host {host})",
        f"  {vha} isolate-host {host}",
        f"  {vha} fail-vm-heartbeat {vm1}     (then: recover-vm-heartbeat {vm1})",
        f"  {vha} fail-app-heartbeat {vm2}    (then: recover-app-heartbeat {vm2})",
        f"  {vha} power-off-vm {vm3}          (as a person: the remediator leaves it off)",
    ]


def up(args: argparse.Namespace) -> int:
    opts = StackOptions(
        run_dir=Path(args.run_dir).resolve(),
        config_path=args.config,
        fixed_ports=True,
        fast_vm_monitoring=True,
    )
    stack = Stack(opts)
    _say("starting simulator, exporter, remediator, Alertmanager, then Prometheus ...")
    try:
        stack.start()
    except StackError as exc:
        print(f"vha demo: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, NoSourceTree) else 1
    view = None
    if "remediator" in stack.processes:
        try:
            view = ReadOnlyView(stack.url("remediator"), stack.token, VIEW_PORT).start()
        except OSError as exc:
            _say(f"read-only remediator view not started: port {VIEW_PORT}: {exc.strerror}")
    state: dict[str, Any] = {"run_dir": str(opts.run_dir), "pids": {}}
    for name, proc in stack.processes.items():
        state["pids"][name] = proc.pid
    if stack.sim is not None:
        state["sim_api_url"] = stack.sim.api_url
        state["sim_sdk_url"] = stack.sim.sdk_url
        state["sim_user"] = stack.sim.username
        state["sim_password_file"] = str(opts.run_dir / "secrets" / "vcsim-password")
        state["sim_ca_file"] = stack.sim.ca_file or ""
    state_file = opts.run_dir / STATE_FILE
    state_file.write_text(json.dumps(state, indent=2))
    os.chmod(state_file, 0o600)
    if not stack.wait_first_scrape():
        _say("Prometheus has not scraped the exporter yet; alerts may open with it down")
    print()
    for line in banner(stack, view):
        print(line)
    if stack.sim is not None:
        print()
        for line in _examples(stack):
            print(line)
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
        if view is not None:
            view.stop()
        stack.stop()
        state_file.unlink(missing_ok=True)
    return 0


def main(args: argparse.Namespace) -> int:
    if args.action == "up":
        return up(args)
    return faults.run(args)
