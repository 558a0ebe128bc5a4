"""How long the simulator takes to deliver one host change to a bare WaitForUpdatesEx client
(issue 15), with vCenter-like incremental delivery (sim/delivery.go) and with vcsim's own
re-collection of the whole filter per change (``-incremental-delivery=false``).

The client follows the exporter's filter spec (``create_follow_filter``, a ContainerView
over every type the exporter reads); each change is a host's ``inQuarantineMode`` flip via
the simulator's API, timed from the API call's return to the answer carrying it. The
simulator's CPU seconds over the changes and its delivery counters are printed too.

    .venv/bin/python -m bench.delivery_bench --size 10k --changes 10
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sim.harness import Simulator
from vcenter.config import parse_config

from .exporter_bench import bench_config, vcenter_update_latency
from .poller_bench import cpu_seconds
from .scale_bench import SIZES, loadavg


def measure(size: str, changes: int, incremental: bool) -> dict[str, Any]:
    """One simulator, ``changes`` flips (each timed, plus the flip back); the figures."""
    flag = f"-incremental-delivery={'true' if incremental else 'false'}"
    sim = Simulator(**SIZES[size], extra_args=[flag])
    t0 = time.perf_counter()
    sim.start(timeout=1800)
    try:
        inv = sim.inventory()
        hosts = [h["name"] for h in inv["hosts"]][:changes]
        print(
            f"  {size}: {len(inv['hosts'])} hosts, {len(inv['vms'])} VMs, {flag}, "
            f"started in {time.perf_counter() - t0:.0f}s, load {loadavg()}",
            flush=True,
        )
        tmp = Path(tempfile.mkdtemp(prefix="vha-delivery-"))
        config = parse_config(bench_config(sim, tmp, 0))
        cpu0 = cpu_seconds(sim.pid)
        seen = vcenter_update_latency(sim, config, hosts)
        cpu = cpu_seconds(sim.pid) - cpu0
        return {
            "incremental": incremental,
            "p50_s": statistics.median(seen),
            "max_s": max(seen),
            "sim_cpu_s": cpu,  # initial sync + 2 x changes deliveries
            "delivery": sim.config()["delivery"],
            "load": loadavg(),
        }
    finally:
        sim.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="10k")
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--mode", choices=["both", "incremental", "library"], default="both")
    args = parser.parse_args(argv)
    modes = {"both": [True, False], "incremental": [True], "library": [False]}[args.mode]
    for incremental in modes:
        out = measure(args.size, args.changes, incremental)
        print(
            "  {}: change -> bare client p50 {:.3f}s max {:.3f}s over {} changes; simulator "
            "CPU {:.1f}s; delivery {}; load {}".format(
                "incremental" if incremental else "library (fallback)",
                out["p50_s"],
                out["max_s"],
                args.changes,
                out["sim_cpu_s"],
                out["delivery"],
                out["load"],
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
