"""Poller benchmark: the cost of re-reading the properties vCenter never announces.

Figures only, never timed assertions.  Against a 10,000-VM simulator in real-vCenter mode:

1. in-process, the poll itself (exporter/poller.py over an inventory filled by a full
   sync): vCenter calls per poll and per minute at the default 20 s interval, wall and CPU
   seconds per poll, objects changed;
2. the exporter as a subprocess polling every ``--interval`` seconds (default 5, four times
   the default rate, to make the effect visible): ``/metrics`` p50/p95 while it polls, and
   the exporter's CPU share over the window.

    python -m bench.poller_bench [--size large|small] [--interval 5] [--window 30]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from exporter.inventory import Inventory, apply_object_updates
from exporter.poller import POLLED, poll
from exporter.sync import convert_update_set, create_follow_filter
from sim.harness import Simulator
from vcenter.config import parse_config
from vcenter.properties import PAGE_OBJECTS
from vcenter.session import connect, disconnect
from vha.demo.stack import Process, free_port

from .exporter_bench import SIZES, bench_config, pct, scrape_seconds


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def in_process(sim: Simulator, config: Any, polls: int) -> dict[str, float]:
    si = connect(config.vcenters[0])
    try:
        content = si.RetrieveContent()
        collector, view = create_follow_filter(content)
        inv = Inventory("bench")
        objects: dict[str, Any] = {}
        fields: dict[int, str] = {}
        result = collector.WaitForUpdatesEx("", None)
        apply_object_updates(objects, fields, convert_update_set(result))
        del result
        inv.replace(objects, fields)
        n = len(objects)
        walls, cpus, calls = [], [], 0
        for _ in range(polls):
            w0, c0 = time.perf_counter(), time.process_time()
            calls = poll(content.propertyCollector, view, inv)
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
        return {
            "objects": n,
            "polled_types": len(POLLED),
            "calls_per_poll": calls,
            "calls_per_minute_at_20s": calls * 3,
            "poll_wall_p50_s": pct(walls, 0.5),
            "poll_cpu_p50_s": pct(cpus, 0.5),
            "exporter_cpu_share_at_20s": pct(cpus, 0.5) / 20,
        }
    finally:
        disconnect(si)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="large", choices=list(SIZES))
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--polls", type=int, default=3)
    args = parser.parse_args(argv)
    sim = Simulator(**SIZES[args.size], real_vcenter=True)
    sim.start(timeout=600)
    tmp = Path(tempfile.mkdtemp(prefix="vha-pollbench-"))
    port = free_port()
    data = bench_config(
        sim,
        tmp,
        port,
        sync={"max_wait_seconds": 5, "poll_interval_seconds": args.interval},
        performance={"enabled": False},
    )
    (tmp / "config.yml").write_text(yaml.safe_dump(data))
    config = parse_config(data)
    try:
        print(f"page size {PAGE_OBJECTS} objects; polled: {POLLED}", flush=True)
        for k, v in in_process(sim, config, args.polls).items():
            print(f"  {k:32s} {v:12.3f}", flush=True)
        exporter = Process(
            "exporter",
            [sys.executable, "-m", "vha.cli", "exporter", "--config", str(tmp / "config.yml")],
            tmp / "exporter.log",
            f"http://127.0.0.1:{port}/readyz",
        )
        exporter.start(dict(os.environ))
        try:
            exporter.wait_ready(timeout=900)
            url = f"http://127.0.0.1:{port}/metrics"
            pid = exporter.popen.pid if exporter.popen else 0
            c0, t0 = cpu_seconds(pid), time.monotonic()
            latencies = []
            while time.monotonic() - t0 < args.window:
                seconds, _ = scrape_seconds(url)
                latencies.append(seconds)
                time.sleep(0.5)
            share = (cpu_seconds(pid) - c0) / (time.monotonic() - t0)
            print(f"  exporter polling every {args.interval:g}s, {len(latencies)} scrapes:")
            print(f"  {'metrics_p50_ms':32s} {pct(latencies, 0.5) * 1000:12.1f}")
            print(f"  {'metrics_p95_ms':32s} {pct(latencies, 0.95) * 1000:12.1f}")
            print(f"  {'exporter_cpu_share':32s} {share:12.3f}")
        finally:
            exporter.stop()
    finally:
        sim.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
