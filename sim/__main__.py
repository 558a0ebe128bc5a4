"""Command line for the vha-sim simulator: ``python -m sim COMMAND ...``.

    python -m sim serve --clusters 2 --hosts 3 --vms 6      # run in the foreground
    python -m sim inventory --api-url http://127.0.0.1:PORT
    python -m sim fail-host DC0_C0_H0 [--das-state networkIsolated]
    python -m sim recover-host DC0_C0_H0
    python -m sim set-host DC0_C0_H1 inMaintenanceMode=true
    python -m sim set-vm DC0_C0_VM1 guestHeartbeatStatus=red appHeartbeatStatus=appStatusRed
    python -m sim inject-fault PowerOnVM_Task InvalidHostState --object DC0_C0_VM2
    python -m sim clear-faults

The client commands read the API URL from --api-url or $VHA_SIM_API_URL.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from sim.harness import Simulator, SimulatorClient, SimulatorError


def _value(text: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "none"):
        return None
    return text


def _props(pairs: Sequence[str]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SimulatorError(f"expected key=value, got {pair!r}")
        props[key] = _value(value)
    return props


def _client(args: argparse.Namespace) -> SimulatorClient:
    url = args.api_url or os.environ.get("VHA_SIM_API_URL")
    if not url:
        raise SimulatorError("no API URL: pass --api-url or set VHA_SIM_API_URL")
    return SimulatorClient(url)


def _print(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=False))


def _print_inventory(inv: dict[str, Any]) -> None:
    vms_by_host: dict[str, list[dict[str, Any]]] = {}
    for vm in inv["vms"]:
        vms_by_host.setdefault(vm["host"] or "", []).append(vm)
    hosts = {h["name"]: h for h in inv["hosts"]}
    clustered: set[str] = set()
    for c in inv["clusters"]:
        print(f"cluster {c['name']} ({c['datacenter']})  master={c['master'] or '-'}")
        for name in c["hosts"]:
            clustered.add(name)
            _print_host(hosts[name], vms_by_host.get(name, []))
    for h in inv["hosts"]:
        if h["name"] not in clustered:
            print(f"standalone ({h['datacenter']})")
            _print_host(h, vms_by_host.get(h["name"], []))
    print(f"{len(inv['clusters'])} clusters, {len(inv['hosts'])} hosts, {len(inv['vms'])} VMs")


def _print_host(h: dict[str, Any], vms: list[dict[str, Any]]) -> None:
    flags = []
    if h["inMaintenanceMode"]:
        flags.append("maintenance")
    if h["inQuarantineMode"]:
        flags.append("quarantine")
    print(
        f"  {h['name']:<24} {h['connectionState']:<14} {h['powerState']:<10} "
        f"{h['overallStatus']:<6} das={h['dasHostState'] or '-':<18} "
        f"fd={h['faultDomain'] or '-'} {' '.join(flags)}"
    )
    for vm in vms:
        faults = ",".join(f"{k}={v}" for k, v in vm.get("injectedFaults", {}).items())
        print(
            f"    {vm['name']:<26} {vm['powerState']:<10} {vm['connectionState']:<12} "
            f"hb={vm['guestHeartbeatStatus']:<6} tools={vm['toolsRunningStatus']:<22} "
            f"app={vm['appHeartbeatStatus']}{'  injected: ' + faults if faults else ''}"
        )


def _serve(args: argparse.Namespace) -> int:
    sim = Simulator(
        datacenters=args.datacenters,
        clusters=args.clusters,
        hosts=args.hosts,
        standalone_hosts=args.standalone_hosts,
        vms=args.vms,
        standalone_vms=args.standalone_vms,
        fault_domains=args.fault_domains,
        username=args.username,
        password=args.password,
        port=args.port,
        api_port=args.api_port,
        strict=not args.no_strict,
    )
    done = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sim.start(timeout=args.timeout)
    try:
        print(f"vCenter SDK : {sim.sdk_url}  (user {sim.username!r}, password {sim.password!r})")
        print(f"CA file     : {sim.ca_file}")
        print(f"fault API   : {sim.api_url}")
        print(f"pid         : {sim.pid}  (started in {sim.startup_seconds:.1f}s)")
        print(f"try         : python -m sim inventory --api-url {sim.api_url}")
        print("Ctrl-C stops the simulator.", flush=True)
        while not done.wait(0.5):
            if not sim.running:
                print("vha-sim exited unexpectedly:\n" + sim.log_tail(), file=sys.stderr)
                return 1
    finally:
        sim.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run a simulator in the foreground")
    serve.add_argument("--datacenters", type=int, default=1)
    serve.add_argument("--clusters", type=int, default=2, help="per datacenter")
    serve.add_argument("--hosts", type=int, default=3, help="per cluster")
    serve.add_argument("--standalone-hosts", type=int, default=0, help="per datacenter")
    serve.add_argument("--vms", type=int, default=6, help="per cluster")
    serve.add_argument("--standalone-vms", type=int, default=0, help="per standalone host")
    serve.add_argument("--fault-domains", type=int, default=2)
    serve.add_argument("--username", default="user")
    serve.add_argument("--password", default="pass")
    serve.add_argument("--port", type=int, default=0, help="SDK port (0 = any free port)")
    serve.add_argument("--api-port", type=int, default=0, help="fault API port (0 = any)")
    serve.add_argument("--no-strict", action="store_true", help="vcsim's permissive behaviour")
    serve.add_argument("--timeout", type=float, default=180.0, help="start-up timeout (s)")

    def client_parser(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument("--api-url", help="fault API URL (default: $VHA_SIM_API_URL)")
        return p

    inv = client_parser("inventory", "show hosts, VMs and clusters")
    inv.add_argument("--json", action="store_true", help="print the raw JSON")
    fail = client_parser("fail-host", "make a host stop responding")
    fail.add_argument("name")
    fail.add_argument(
        "--das-state",
        default="hostDown",
        choices=["hostDown", "networkIsolated", "networkPartitionedFromMaster"],
    )
    rec = client_parser("recover-host", "bring a failed host back")
    rec.add_argument("name")
    rec.add_argument(
        "--stale-vms",
        choices=["poweredOff", "poweredOn", "none"],
        help="what the host still has registered of VMs unregistered while it was down",
    )
    sh = client_parser("set-host", "set host properties (key=value ...)")
    sh.add_argument("name")
    sh.add_argument("props", nargs="+", metavar="key=value")
    sv = client_parser("set-vm", "set VM power state / inject guest faults (key=value ...)")
    sv.add_argument("name")
    sv.add_argument("props", nargs="+", metavar="key=value")
    inj = client_parser("inject-fault", "fail the next calls of a SOAP method")
    inj.add_argument("method", help="e.g. PowerOnVM_Task")
    inj.add_argument("fault", help="e.g. InvalidHostState")
    inj.add_argument("--object", help="VM, host or cluster name")
    inj.add_argument("--count", type=int, default=1, help="-1 = until cleared")
    inj.add_argument("--mode", choices=["fault", "task"], default="fault")
    client_parser("clear-faults", "remove all injected SOAP faults")

    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        client = _client(args)
        if args.command == "inventory":
            inventory = client.inventory()
            if args.json:
                _print(inventory)
            else:
                _print_inventory(inventory)
        elif args.command == "fail-host":
            _print(client.fail_host(args.name, das_state=args.das_state))
        elif args.command == "recover-host":
            _print(client.recover_host(args.name, args.stale_vms))
        elif args.command == "set-host":
            _print(client.set_host(args.name, **_props(args.props)))
        elif args.command == "set-vm":
            _print(client.set_vm(args.name, **_props(args.props)))
        elif args.command == "inject-fault":
            _print(
                client.inject_fault(
                    args.method, args.fault, object=args.object, count=args.count, mode=args.mode
                )
            )
        elif args.command == "clear-faults":
            _print({"cleared": client.clear_faults()})
    except SimulatorError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
