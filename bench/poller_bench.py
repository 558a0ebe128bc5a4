"""Poller benchmark: the cost of re-reading the properties vCenter never announces.

Figures only, never timed assertions.  Against a 10,000-VM simulator in real-vCenter mode:

1. in-process, the poll itself (exporter/poller.py over an inventory filled by a full
   sync), through each parse path: pyVmomi's deserialiser, the plain-XML parse in-process
   and in the worker process (``sync.poll_worker_process``; exporter/poll_soap.py), each
   checked to fold the same values: vCenter calls per poll, wall seconds and this
   process's CPU seconds per poll (the GIL time the poll costs the exporter), the
   worker's CPU;
2. the exporter as a subprocess polling every ``--interval`` seconds (default 5, four times
   the default rate, to make the effect visible): ``/metrics`` p50/p95 while it polls,
   the exporter's CPU share over the window, ``vsphere_sync_poll_duration_seconds``, and
   with ``--py-spy PATH`` the share of GIL-holding samples (``py-spy record --gil``) in
   the poll's code. ``--exporter-src DIR`` runs that exporter from another source tree
   (``git archive main | tar -x -C DIR``: the figures before a change).

    python -m bench.poller_bench [--size large|small] [--interval 5] [--window 30]
        [--poll-worker on|off] [--py-spy PATH] [--exporter-src DIR] [--skip-in-process]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from exporter.inventory import Inventory, apply_object_updates
from exporter.poller import POLLED, poll
from exporter.pollers import QuickStats
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


def _props(inv: Inventory) -> dict[str, dict[str, Any]]:
    return {moid: dict(obj.props) for moid, obj in inv.objects.items()}


def in_process(sim: Simulator, config: Any, polls: int) -> dict[str, float]:
    si = connect(config.vcenters[0])
    out: dict[str, float] = {}
    try:
        content = si.RetrieveContent()
        collector, view = create_follow_filter(content)
        objects: dict[str, Any] = {}
        fields: dict[int, str] = {}
        version = ""
        while True:  # the simulator pages the initial sync like vCenter
            result = collector.WaitForUpdatesEx(version, None)
            apply_object_updates(objects, fields, convert_update_set(result))
            version, truncated = result.version, result.truncated
            del result
            if not truncated:
                break
        out["objects"] = len(objects)
        out["polled_types"] = len(POLLED)
        reference: dict[str, dict[str, Any]] | None = None
        for mode, worker in (("pyvmomi", None), ("xml_inline", False), ("xml_worker", True)):
            quickstats = None
            if worker is not None:
                sync = dataclasses.replace(config.sync, poll_worker_process=worker)
                quickstats = QuickStats(config.vcenters[0], sync)
            soap = quickstats._session(content) if quickstats is not None else None  # noqa: SLF001
            walls, cpus, calls, worker_cpu = [], [], 0, 0.0
            inv = Inventory("bench")
            try:
                for _ in range(polls):
                    inv = Inventory("bench")
                    inv.replace(dict(objects), dict(fields))
                    pid = soap.worker.pid if soap is not None and soap.worker else None
                    k0 = cpu_seconds(pid) if pid else 0.0
                    w0, c0 = time.perf_counter(), time.process_time()
                    calls = poll(content.propertyCollector, view, inv, soap)
                    walls.append(time.perf_counter() - w0)
                    cpus.append(time.process_time() - c0)
                    if pid and soap is not None and soap.worker and soap.worker.pid == pid:
                        worker_cpu = cpu_seconds(pid) - k0  # the last poll's (not its start)
            finally:
                if quickstats is not None:
                    quickstats.close()
            got = _props(inv)
            if reference is None:
                reference = got
            same = float(got == reference)
            out[f"{mode}_calls_per_poll"] = calls
            out[f"{mode}_poll_wall_p50_s"] = pct(walls, 0.5)
            out[f"{mode}_poll_cpu_p50_s"] = pct(cpus, 0.5)
            out[f"{mode}_cpu_share_at_20s"] = pct(cpus, 0.5) / 20
            if worker:
                out[f"{mode}_worker_cpu_s"] = worker_cpu
            out[f"{mode}_same_values"] = same
        return out
    finally:
        disconnect(si)


def gil_share(spy: str, pid: int, seconds: float, out: Path) -> dict[str, float]:
    """``py-spy record --gil``: the share of GIL-holding samples in each part of interest."""
    subprocess.run(
        [
            spy,
            "record",
            "--gil",
            "--nonblocking",
            "--format",
            "raw",
            "--rate",
            "50",
            "--duration",
            str(int(seconds)),
            "--pid",
            str(pid),
            "--output",
            str(out),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    parts = {
        "poll": ("poller.py", "poll_soap.py", "perf_worker.py:call"),
        "follower": ("sync.py",),
        "render": ("render.py", "exposition.py", "collectors/"),
    }
    totals = dict.fromkeys(parts, 0)
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        for name, needles in parts.items():
            if any(needle in stack for needle in needles):
                totals[name] += n
                break
    return {f"gil_share_{k}": v / total if total else 0.0 for k, v in totals.items()} | {
        "gil_samples": float(total)
    }


def poll_duration(body: bytes) -> float | None:
    """``vsphere_sync_poll_duration_seconds`` from a scrape (the last poll's duration)."""
    start = body.find(b"\nvsphere_sync_poll_duration_seconds{")
    if start < 0:
        return None
    line = body[start + 1 : body.find(b"\n", start + 1)]
    return float(line.rsplit(b" ", 1)[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="large", choices=list(SIZES))
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--polls", type=int, default=3)
    parser.add_argument("--poll-worker", choices=["on", "off"], default="on")
    parser.add_argument("--py-spy", help="py-spy binary: sample the exporter's GIL holders")
    parser.add_argument("--exporter-src", type=Path, help="run the exporter from this tree")
    parser.add_argument("--skip-in-process", action="store_true")
    args = parser.parse_args(argv)
    sim = Simulator(**SIZES[args.size], real_vcenter=True)
    sim.start(timeout=600)
    tmp = Path(tempfile.mkdtemp(prefix="vha-pollbench-"))
    port = free_port()
    sync: dict[str, Any] = {"max_wait_seconds": 5, "poll_interval_seconds": args.interval}
    if args.exporter_src is None:  # an older tree may not know the key
        sync["poll_worker_process"] = args.poll_worker == "on"
    data = bench_config(sim, tmp, port, sync=sync, performance={"enabled": False})
    (tmp / "config.yml").write_text(yaml.safe_dump(data))
    config = parse_config(data)
    try:
        print(f"page size {PAGE_OBJECTS} objects; polled: {POLLED}", flush=True)
        print(f"load average at start {os.getloadavg()}", flush=True)
        if not args.skip_in_process:
            for k, v in in_process(sim, config, args.polls).items():
                print(f"  {k:32s} {v:12.3f}", flush=True)
        env = dict(os.environ)
        if args.exporter_src is not None:
            env["PYTHONPATH"] = str(args.exporter_src.resolve())
        exporter = Process(
            "exporter",
            [sys.executable, "-m", "vha.cli", "exporter", "--config", str(tmp / "config.yml")],
            tmp / "exporter.log",
            f"http://127.0.0.1:{port}/readyz",
        )
        if args.exporter_src is not None:
            exporter.start(env, cwd=args.exporter_src)
        else:
            exporter.start(env)
        try:
            exporter.wait_ready(timeout=900)
            url = f"http://127.0.0.1:{port}/metrics"
            pid = exporter.popen.pid if exporter.popen else 0
            spy: dict[str, float] = {}
            sampler = None
            if args.py_spy:
                out = tmp / "gil.txt"
                sampler = threading.Thread(
                    target=lambda: spy.update(gil_share(args.py_spy, pid, args.window, out))
                )
                sampler.start()
            c0, t0 = cpu_seconds(pid), time.monotonic()
            latencies, durations = [], []
            while time.monotonic() - t0 < args.window:
                seconds, body = scrape_seconds(url)
                latencies.append(seconds)
                duration = poll_duration(body)
                del body
                if duration is not None:
                    durations.append(duration)
                time.sleep(0.5)
            share = (cpu_seconds(pid) - c0) / (time.monotonic() - t0)
            if sampler is not None:
                sampler.join()
            print(f"  exporter polling every {args.interval:g}s, {len(latencies)} scrapes:")
            print(f"  {'metrics_p50_ms':32s} {pct(latencies, 0.5) * 1000:12.1f}")
            print(f"  {'metrics_p95_ms':32s} {pct(latencies, 0.95) * 1000:12.1f}")
            print(f"  {'exporter_cpu_share':32s} {share:12.3f}")
            if durations:
                print(f"  {'poll_duration_p50_s':32s} {pct(durations, 0.5):12.3f}")
                print(f"  {'poll_duration_max_s':32s} {max(durations):12.3f}")
            for k, v in spy.items():
                print(f"  {k:32s} {v:12.3f}")
            print(f"load average at end {os.getloadavg()}", flush=True)
        finally:
            exporter.stop()
    finally:
        sim.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
