"""Remediator benchmark: fail hosts carrying 1,000 protected VMs, time until all run again.

Runs the real simulator and the real remediator app (in this process, served over HTTP on
127.0.0.1), fails hosts, and delivers one Alertmanager webhook per failed host, the way
Alertmanager groups them (by vcenter, cluster, host, alertname).  It prints:

* the time from webhook receipt to the last stranded VM powered on elsewhere (taken from
  the journal's ``finished_at`` of the last step, and checked against the simulator),
* the concurrency used (workers, concurrent vCenter tasks),
* the restart orchestration: by default 4 restart-priority tiers of equal size (name rules),
  each starting when the one above is powered on (``remediator.orchestration``),
* the remediator's own decision time per alert (policy and placement, no I/O; p50/p95)
  and the live read of vCenter that precedes it,
* the ratios against the targets (60 s end to end, 100 ms per decision).

Figures only: nothing here asserts a time.

    python -m bench.remediator_bench                       # 1,000 stranded VMs
    python -m bench.remediator_bench --tasks 16 --workers 32
    python -m bench.remediator_bench --tiers 1 --ready none  # no orchestration
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from remediator.app import create_app
from sim.harness import Simulator
from vcenter.config import parse_config

TARGET_SECONDS = 60.0
TARGET_DECISION_MS = 100.0
TOKEN = "bench-token"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


TIER_PRIORITIES = ("highest", "high", "medium", "low", "lowest")


def tier_rules(vms_per_cluster: int, tiers: int) -> dict[str, Any]:
    """``restart_priority`` name rules giving each cluster's VMs ``tiers`` equal tiers.

    The simulator names VMs ``<cluster>_VM<i>`` and places them round-robin over the hosts,
    so numbering ranges split every failed host's VMs into equal tiers too. The simulator's
    own ``HA-RestartPriority`` attribute (three priorities in turn) is not read."""
    if tiers <= 1:
        return {"custom_attribute": None, "default": "medium"}
    prios = TIER_PRIORITIES[:tiers]
    size = -(-vms_per_cluster // tiers)
    rules = [
        {
            "match": "_VM(" + "|".join(str(i) for i in range(k * size, (k + 1) * size)) + ")$",
            "priority": p,
        }
        for k, p in enumerate(prios[:-1])
    ]
    return {"custom_attribute": None, "rules": rules, "default": prios[-1]}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sim = Simulator(
        clusters=args.clusters, hosts=args.hosts, vms=args.vms_per_cluster, fault_domains=2
    )
    t = time.perf_counter()
    sim.start()
    sim_start = time.perf_counter() - t
    workdir = Path(tempfile.mkdtemp(prefix="vha-bench-"))
    os.environ["VHA_BENCH_PW"] = sim.password
    os.environ["VHA_BENCH_TOKEN"] = TOKEN
    config = parse_config(
        {
            "vcenters": [
                {
                    "name": "vc1",
                    "url": sim.sdk_url,
                    "user": sim.username,
                    "password_env": "VHA_BENCH_PW",
                    "ca_file": sim.ca_file,
                }
            ],
            "fault_domains": {"custom_attribute": "HA-FaultDomain"},
            "restart_priority": tier_rules(args.vms_per_cluster, args.tiers),
            "remediator": {
                "listen": "127.0.0.1:0",
                "bearer_token_env": "VHA_BENCH_TOKEN",
                "dry_run": False,
                "journal": str(workdir / "journal.sqlite"),
                "workers": args.workers,
                "max_concurrent_tasks": args.tasks,
                "ha_grace_seconds": 0,
                "ha": {"defer_to_ha": False},  # the simulator has no vSphere HA agent
                "host_failure": {"confirm_seconds": 0},
                "rate_limit": {"max_actions": 100000, "window_seconds": 600},
                "guard": {"max_failed_hosts": args.fail_per_cluster, "max_failed_share": 0.5},
                # the simulator's clusters set no orchestration: the stack's defaults apply
                "orchestration": {
                    "ready_condition": args.ready,
                    "post_ready_delay_seconds": args.delay,
                },
            },
        }
    )
    runner = web.AppRunner(create_app(config), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        inv = sim.inventory()
        by_cluster: dict[str, list[dict[str, Any]]] = {}
        for h in inv["hosts"]:
            by_cluster.setdefault(h["cluster"], []).append(h)
        failed = [h for hosts in by_cluster.values() for h in hosts[: args.fail_per_cluster]]
        stranded = {v for h in failed for v in h["vms"]}
        for h in failed:
            sim.fail_host(h["name"])
        now = datetime.now(UTC).isoformat()
        deliveries = [
            {
                "version": "4",
                "groupKey": f"bench/{h['name']}",
                "status": "firing",
                "receiver": "remediator",
                "groupLabels": {},
                "commonLabels": {},
                "commonAnnotations": {},
                "externalURL": "http://alertmanager",
                "alerts": [
                    {
                        "status": "firing",
                        "labels": {
                            "alertname": "VsphereHostNotResponding",
                            "remediation": "restart_host_vms",
                            "vcenter": "vc1",
                            "host_id": h["moid"],
                            "host": h["name"],
                            "cluster": h["cluster"],
                            "fault_domain": h["faultDomain"] or "",
                        },
                        "annotations": {},
                        "startsAt": now,
                        "endsAt": "0001-01-01T00:00:00Z",
                        "fingerprint": f"bench{i:04d}",
                    }
                ],
            }
            for i, h in enumerate(failed)
        ]
        async with aiohttp.ClientSession(headers=headers) as http:
            received = time.time()
            replies = await asyncio.gather(
                *(http.post(base + "/api/v1/alerts", json=d) for d in deliveries)
            )
            accept_ms = (time.time() - received) * 1000
            assert all(r.status == 200 for r in replies), [r.status for r in replies]
            deadline = time.monotonic() + args.timeout
            # Wait on /metrics' journal counts (two SQL counts), not on the journal's
            # listing: paging every action with its detail four times a second cost the
            # remediator, whose process this is, a few per cent of its interpreter.  The
            # figure itself comes from the journal's timestamps, read once at the end.
            while True:
                async with http.get(base + "/metrics") as r:
                    metrics_text = await r.text()
                backlog = _gauge(metrics_text, "vha_remediator_journal_backlog")
                total = sum(_gauges(metrics_text, "vha_remediator_journal_actions{"))
                if total > len(deliveries) and backlog == 0:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"timed out: {backlog:.0f} actions still pending or running")
                await asyncio.sleep(0.25)
            items = await journal(http, base)
            steps = [a for a in items if a["parent_id"] is not None]
        decisions = [a for a in items if a["parent_id"] is None]
        done = [s for s in steps if s["state"] == "done"]
        last = max(s["finished_at"] for s in done)
        vms = {v["name"]: v for v in sim.inventory()["vms"]}
        failed_names = {h["name"] for h in failed}
        running_elsewhere = sum(
            1
            for n in stranded
            if vms[n]["powerState"] == "poweredOn" and vms[n]["host"] not in failed_names
        )
        decision_ms = [float(d["detail"].get("decision_ms", 0.0)) for d in decisions]
        decision_cpu = [float(d["detail"].get("decision_cpu_ms", 0.0)) for d in decisions]
        live_reads = _histogram_mean(metrics_text, "vha_remediator_live_read_duration_seconds")
        total = last - received
        return {
            "inventory": {
                "clusters": args.clusters,
                "hosts": args.clusters * args.hosts,
                "vms": len(inv["vms"]),
                "failed_hosts": len(failed),
                "stranded_protected_vms": len(stranded),
            },
            "simulator_start_seconds": round(sim_start, 2),
            "concurrency": {"workers": args.workers, "max_concurrent_tasks": args.tasks},
            "orchestration": {
                "tiers": args.tiers,
                "ready_condition": args.ready,
                "post_ready_delay_seconds": args.delay,
                "steps_by_priority": {
                    p: sum(1 for s in steps if s["priority"] == p)
                    for p in TIER_PRIORITIES
                    if any(s["priority"] == p for s in steps)
                },
                # per tier, seconds after receipt: first vCenter change, last power-on
                "tier_spans": {
                    p: [
                        round(min(s["started_at"] or s["finished_at"] for s in ts) - received, 1),
                        round(max(s["finished_at"] for s in ts) - received, 1),
                    ]
                    for p in TIER_PRIORITIES
                    if (ts := [s for s in done if s["priority"] == p])
                },
            },
            "webhook_accept_ms_all_deliveries": round(accept_ms, 1),
            "receipt_to_last_power_on_seconds": round(total, 2),
            "vms_restarted": len(done),
            "vms_running_elsewhere_per_simulator": running_elsewhere,
            "steps_by_state": {
                st: sum(1 for s in steps if s["state"] == st)
                for st in sorted({s["state"] for s in steps})
            },
            "restarts_per_second": round(len(done) / total, 1) if total else None,
            "decision_ms_per_alert": {
                "p50": round(percentile(decision_ms, 0.5), 2),
                "p95": round(percentile(decision_ms, 0.95), 2),
                "max": round(max(decision_ms), 2),
            },
            "decision_cpu_ms_per_alert": {
                "p50": round(percentile(decision_cpu, 0.5), 2),
                "p95": round(percentile(decision_cpu, 0.95), 2),
            },
            "live_read_mean_ms": round(live_reads * 1000, 1),
            "ratios": {
                "end_to_end_vs_60s_target": round(total / TARGET_SECONDS, 3),
                "decision_p95_vs_100ms_target": round(
                    percentile(decision_ms, 0.95) / TARGET_DECISION_MS, 4
                ),
            },
        }
    finally:
        await runner.cleanup()
        sim.stop()


async def journal(http: aiohttp.ClientSession, base: str) -> list[dict[str, Any]]:
    """Every action, paging through the API (it returns at most 1,000 at a time)."""
    out: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 1000}
    while True:
        async with http.get(base + "/api/v1/actions", params=params) as r:
            page = (await r.json())["actions"]
        out.extend(page)
        if len(page) < 1000:
            return out
        params["before"] = page[-1]["id"]


def _gauges(text: str, prefix: str) -> list[float]:
    return [float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix)]


def _gauge(text: str, name: str) -> float:
    found = [float(line.split()[-1]) for line in text.splitlines() if line.split(" ")[0] == name]
    return found[0] if found else float("nan")


def _histogram_mean(text: str, name: str) -> float:
    total = count = 0.0
    for line in text.splitlines():
        if line.startswith(name + "_sum"):
            total = float(line.split()[-1])
        elif line.startswith(name + "_count"):
            count = float(line.split()[-1])
    return total / count if count else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clusters", type=int, default=5)
    parser.add_argument("--hosts", type=int, default=10, help="hosts per cluster")
    parser.add_argument("--vms-per-cluster", type=int, default=1000)
    parser.add_argument("--fail-per-cluster", type=int, default=2)
    parser.add_argument("--workers", type=int, default=24)
    parser.add_argument("--tasks", type=int, default=16, help="concurrent vCenter tasks")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--tiers", type=int, default=4, choices=range(1, 6),
                        help="restart-priority tiers of equal size (1: one priority)")  # fmt: skip
    parser.add_argument("--ready", default="poweredOn",
                        choices=("none", "poweredOn", "guestHbStatusGreen", "appHbStatusGreen"),
                        help="start the next tier when the previous is ...")  # fmt: skip
    parser.add_argument("--delay", type=float, default=0.0, help="additional delay, s")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    inv = result["inventory"]
    print(
        f"inventory: {inv['clusters']} clusters, {inv['hosts']} hosts, {inv['vms']} VMs; "
        f"failed {inv['failed_hosts']} hosts stranding {inv['stranded_protected_vms']} "
        "protected VMs"
    )
    c = result["concurrency"]
    print(f"concurrency: {c['workers']} workers, {c['max_concurrent_tasks']} vCenter tasks")
    o = result["orchestration"]
    print(
        f"orchestration: {o['tiers']} tiers {o['steps_by_priority']}, next tier when "
        f"{o['ready_condition']} + {o['post_ready_delay_seconds']:g} s; per tier, s after "
        f"receipt [first change, last power-on]: {o['tier_spans']}"
    )
    print(
        f"webhook receipt -> last VM powered on elsewhere: "
        f"{result['receipt_to_last_power_on_seconds']} s "
        f"({result['restarts_per_second']} restarts/s; target <= {TARGET_SECONDS:.0f} s, "
        f"ratio {result['ratios']['end_to_end_vs_60s_target']})"
    )
    print(
        f"VMs restarted: {result['vms_restarted']}; running elsewhere per the simulator: "
        f"{result['vms_running_elsewhere_per_simulator']}; steps: {result['steps_by_state']}"
    )
    d = result["decision_ms_per_alert"]
    print(
        f"decision per alert (policy + placement): p50 {d['p50']} ms, p95 {d['p95']} ms, "
        f"max {d['max']} ms (target <= {TARGET_DECISION_MS:.0f} ms, ratio "
        f"{result['ratios']['decision_p95_vs_100ms_target']}); CPU p50 "
        f"{result['decision_cpu_ms_per_alert']['p50']} ms, p95 "
        f"{result['decision_cpu_ms_per_alert']['p95']} ms; "
        f"live read before it: mean {result['live_read_mean_ms']} ms"
    )


if __name__ == "__main__":
    main()
