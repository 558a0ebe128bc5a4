"""Initial-sync benchmark (issue 15: <= 60 s at 40,000 VMs): the follower's initial sync
through pyVmomi and as plain XML (sync_soap.py; in the worker process and in-process),
timed on one simulator, each run on a fresh PropertyCollector. Prints figures only.

    python -m bench.sync_bench [--size 10k|20k|max|small] [--rounds 1]
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from typing import Any

from pyVim.connect import Disconnect, SmartConnect

from exporter.inventory import Inventory
from exporter.sync import Follower, create_follow_filter
from exporter.sync_plain import PlainSync
from exporter.wire import install
from sim.harness import Simulator
from vcenter.config import parse_config

from .scale_bench import SIZES


def _config(sim: Simulator, worker: bool) -> Any:
    os.environ["VHA_BENCH_SYNC_PASSWORD"] = sim.password
    entry: dict[str, Any] = {
        "name": "vc1",
        "url": sim.sdk_url,
        "user": sim.username,
        "password_env": "VHA_BENCH_SYNC_PASSWORD",
    }
    if sim.ca_file:
        entry["ca_file"] = sim.ca_file
    else:
        entry["verify_tls"] = False
    data = {"listen": "127.0.0.1:0", "vcenters": [entry], "sync": {"poll_worker_process": worker}}
    return parse_config(data)


def one(sim: Simulator, how: str) -> tuple[float, int, float]:
    """(seconds, objects, CPU seconds of this process) of one initial sync."""
    config = _config(sim, how == "plain-worker")
    vc = config.vcenters[0]
    si = SmartConnect(**sim.connection_kwargs())
    try:
        content = si.RetrieveContent()
        collector, view = create_follow_filter(content)
        inv = Inventory("vc1")
        cpu0, t0 = time.process_time(), time.perf_counter()
        if how == "pyvmomi":
            follower = Follower(vc, inv, config.sync)
            objects, _fields, _version = follower._pyvmomi_sync(collector, install(si))  # noqa: SLF001
        else:
            reader = PlainSync.open(vc, si, config.sync, threading.Event())
            assert reader is not None
            try:
                objects, _fields, _version = reader.run(collector, inv)
            finally:
                reader.close()
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        try:  # best effort: the simulator drops them with the session anyway
            collector.Destroy()
            view.DestroyView()
        except Exception as exc:  # noqa: BLE001
            print(f"(cleanup after {how}: {exc!r})", flush=True)
        return elapsed, len(objects), cpu
    finally:
        Disconnect(si)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="10k", choices=list(SIZES))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--ways", default="pyvmomi,plain-worker,plain-inprocess")
    args = parser.parse_args()
    t0 = time.perf_counter()
    sim = Simulator(**SIZES[args.size], paging=True)
    sim.start(timeout=1800)
    try:
        inv = sim.inventory()
        print(
            f"== {args.size}: {len(inv['hosts'])} hosts, {len(inv['vms'])} VMs, simulator "
            f"started in {time.perf_counter() - t0:.1f}s; load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        for _ in range(args.rounds):
            for how in args.ways.split(","):
                pages0 = sim.paging_state()["truncatedPages"]
                elapsed, count, cpu = one(sim, how)
                pages = sim.paging_state()["truncatedPages"] - pages0
                print(
                    f"{how:16s} {elapsed:7.2f} s  {count} objects, {pages + 1} pages, "
                    f"exporter CPU {cpu:.2f} s; load {os.getloadavg()[0]:.2f}",
                    flush=True,
                )
    finally:
        sim.close()


if __name__ == "__main__":
    main()
