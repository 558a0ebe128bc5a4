"""Exporter start -> /readyz, step by step (issue 15: initial sync <= 60 s at 40,000 VMs).

Figures only. One simulator (paging like vCenter), one exporter subprocess with the
defaults scale_bench runs (counters and host sensors on); /readyz asked every 0.1 s. The
timeline is read from the exporter's own log lines (each step logs once, with its time):
first page, the image synced, the first counter collection, the first full render showing
the sync, and /readyz's first 200; each printed as seconds after the exporter's start,
with the load average.

With ``--cpu`` it also prints, every 2 s until ``/readyz``, the cores used by the
simulator, the exporter's process and its children (the parse workers): which one each
step waits on.

    python -m bench.ready_bench [--size 10k|20k|max|small] [--cpu]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from sim.harness import Simulator
from vha.demo.stack import free_port

from .exporter_bench import exporter_process, scale_config
from .poller_bench import cpu_seconds
from .scale_bench import SIZES, children, loadavg

STEPS = {  # log line -> step
    "exporter listening": "start (logging up)",
    "initial sync: first page": "first page",
    " synced ": "image synced (last page, applied)",
    "first performance collection": "first counter collection",
    "full render showing the latest sync": "first full render showing the sync",
    "ready:": "/readyz 200 (exporter's log)",
}
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def timeline(log: str) -> list[tuple[float, str, str]]:
    """(unix seconds, step, the line) for the first line of each step in ``log``."""
    seen: dict[str, tuple[float, str, str]] = {}
    for line in log.splitlines():
        m = STAMP.match(line)
        if m is None:
            continue
        for key, step in STEPS.items():
            if key in line and step not in seen:
                at = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f")
                # logging's asctime is local time
                seen[step] = (time.mktime(at.timetuple()) + at.microsecond / 1e6, step, line)
    return sorted(seen.values())


class CpuSampler:
    """Cores used since the last sample by the simulator, the exporter and its children
    (a child that ended keeps its last reading)."""

    def __init__(self, sim_pid: int, exporter_pid: int) -> None:
        self.pids = (sim_pid, exporter_pid)
        self.kids: dict[int, float] = {}
        self.last = (*map(cpu_seconds, self.pids), 0.0)
        self.at = time.time()

    def sample(self) -> tuple[float, float, float]:
        for kid in children(self.pids[1]):
            try:
                self.kids[kid] = cpu_seconds(kid)
            except OSError:
                continue  # ended meanwhile: its last reading stays
        now = (*map(cpu_seconds, self.pids), sum(self.kids.values()))
        at = time.time()
        sim, exp, kids = ((a - b) / (at - self.at) for a, b in zip(now, self.last, strict=True))
        self.last, self.at = now, at
        return sim, exp, kids


def run(size: str, cpu: bool = False) -> None:
    flags = SIZES[size]
    t0 = time.perf_counter()
    sim = Simulator(**flags, paging=True)
    sim.start(timeout=1800)
    print(f"== {size}: {flags}; simulator up in {time.perf_counter() - t0:.1f}s", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="vha-ready-"))
    port = free_port()
    data = scale_config(sim, tmp, port, {"host_sensors": {"enabled": True}})
    exporter = exporter_process(tmp, port, data)
    url = f"http://127.0.0.1:{port}/readyz"
    try:
        print(f"load at start: {loadavg()}", flush=True)
        started = time.time()
        exporter.start(dict(os.environ))
        sampler = CpuSampler(sim.pid, exporter.pid or 0) if cpu else None
        sampled = time.time()
        ready = None
        while ready is None and time.time() - started < 1800:
            if not exporter.alive():
                raise RuntimeError(exporter.tail())
            if sampler is not None and time.time() - sampled >= 2.0:
                sampled = time.time()
                sim_cores, exp_cores, kid_cores = sampler.sample()
                print(
                    f"  {sampled - started:8.2f} s  cores: simulator {sim_cores:.2f}, "
                    f"exporter {exp_cores:.2f}, its workers {kid_cores:.2f}",
                    flush=True,
                )
            try:
                with urllib.request.urlopen(url, timeout=5):  # noqa: S310 - loopback
                    ready = time.time()
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        for at, step, _line in timeline((tmp / "exporter.log").read_text(errors="replace")):
            print(f"  {at - started:8.2f} s  {step}", flush=True)
        if ready is not None:
            print(f"  {ready - started:8.2f} s  /readyz 200 (this client)", flush=True)
        print(f"load at the end: {loadavg()} (2 cores, shared); log {tmp}/exporter.log")
    finally:
        exporter.stop()
        sim.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="10k", choices=list(SIZES))
    parser.add_argument("--cpu", action="store_true", help="cores per process every 2 s")
    args = parser.parse_args(argv)
    run(args.size, args.cpu)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
