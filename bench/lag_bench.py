"""The exporter's own lag per host change, alone (issue 15, item 2): the quickest way to it.

scale_bench measures a dozen things before its change timeline; this starts the simulator
and the exporter (every collector on, as ``scale_bench --everything``), scrapes gzip once
(as Prometheus does, so the pieces keep only their gzip members), flips ``--changes``
hosts into maintenance one by one (``--change fail``: fails them, as the simulator's fault
API does, so each host's VMs change too, and recovers them) and prints each change's
``vsphere_render_last_lag_seconds`` (read as bench/change_timeline.py reads it), the
follower's receipt of the answer that carried it (``vsphere_sync_last_update_timestamp_seconds``
in the first body showing it, minus the moment the simulator's call returned: the
simulator's share) and their sum, the change's way to /metrics as the exporter stamps it
(finer than the bench's own scrapes of the whole body, seconds at 40,000 VMs).
``--shards N`` has N Prometheus jobs scrape a shard each (gzip, every 15 s) beside the
flips, so the detection lane also builds the N-shard variant of each patch (as it does
for a sharded deployment; scale_bench's timeline runs with 4 shards kept split).
``--code DIR`` runs the exporter from another tree (e.g. ``git archive main | tar -x -C
/tmp/before``) on the same simulator, for a before / after figure on one machine state;
figures only, with the load average.

    python -m bench.lag_bench [--size 10k] [--changes 6] [--code DIR ...]
        [--change maintenance|fail]  # a host into maintenance, or a host failure
        [--shards 4]  # N jobs scrape a shard each beside the flips
        [--py-spy /tmp/spy/bin/py-spy]  # a raw profile of each exporter over its changes
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from sim.harness import Simulator
from vha.demo.stack import ROOT, free_port

from .change_timeline import last_update, own_lag
from .exporter_bench import exporter_process, scale_config
from .scale_bench import (
    CHANGE_TIMEOUT,
    SIZES,
    first_scrape,
    lag_histogram,
    lag_quantile,
    loadavg,
    scrape,
)

SHARD_INTERVAL = 15.0  # seconds between one job's scrapes of its shard


def shard_jobs(url: str, total: int, stop: threading.Event) -> threading.Thread:
    """``total`` jobs, one per shard, each asked once now (the first ask of a total waits
    for the split) and then every :data:`SHARD_INTERVAL` seconds until ``stop``."""
    urls = [f"{url}?shard={i}&total_shards={total}" for i in range(total)]
    for shard_url in urls:
        first_scrape(shard_url)

    def run() -> None:
        while not stop.wait(SHARD_INTERVAL):
            for shard_url in urls:
                scrape(shard_url, True, decode=False)

    thread = threading.Thread(target=run, name="shard-jobs", daemon=True)
    thread.start()
    return thread


def shown_line(change: str, host: dict[str, str]) -> bytes:
    """The line a gzip body shows once ``change`` reached it."""
    base = b'vcenter="bench",host_id="%s",host="%s"' % (
        host["moid"].encode(),
        host["name"].encode(),
    )
    if change == "fail":
        return b'\nvsphere_host_connection_state{%s,state="notResponding"} 1\n' % base
    return b"\nvsphere_host_maintenance_mode{%s} 1\n" % base


def flip(
    sim: Simulator, url: str, host: dict[str, str], change: str = "maintenance"
) -> tuple[float, float, float]:
    """One host into maintenance, or failed: its own lag, once a gzip body shows it (no bare
    client, which change_timeline runs beside: on a loaded machine its initial sync of
    10,000 VMs timed out, and only the exporter's own stamp is wanted here)."""
    shown = shown_line(change, host)
    fetch = lambda u: scrape(u, True)  # noqa: E731 - as Prometheus asks
    h0 = lag_histogram(fetch(url)[1])
    before = h0["count"]
    t_call = time.time()  # the change is made somewhere inside the call
    if change == "fail":
        sim.fail_host(host["name"])  # its VMs disconnected too: a change of ~16 VMs
    else:
        sim.set_host(host["name"], inMaintenanceMode=True)
    t_change = time.time()
    deadline = t_change + CHANGE_TIMEOUT
    while (body := fetch(url)[1]).find(shown) < 0:
        assert time.time() < deadline, "the change never showed"
    # The follower's stamp of the answer that carried the change: the simulator's share,
    # from the call's return (negative when the answer came before the call returned), and
    # bounded from the call's start (at 40,000 VMs the call takes tenths of a second).
    follower = last_update(body) - t_change
    call = t_change - t_call
    del body
    lag = own_lag(fetch, url, before, 30)
    # The last observation may be a later one (a poll's patch, ms): the histogram's new
    # observations since the flip bound every one of them, the flip's own among them.
    h1 = lag_histogram(fetch(url)[1])
    n = h1["count"] - before
    worst = lag_quantile(h0, h1, 1.0)
    print(
        f"  change {host['name']}: call {call:.3f}s; follower {follower:+.3f}s after its "
        f"return ({call + follower:+.3f}s after its start), last lag {lag:.3f}s, so visible "
        f"{follower + lag:+.3f}s after the return ({call + follower + lag:+.3f}s after the "
        f"start); {n:.0f} observations since, "
        f"mean {(h1['sum'] - h0['sum']) / max(n, 1):.3f}s, all <= {worst}s; load {loadavg()}",
        flush=True,
    )
    if change == "fail":
        sim.recover_host(host["name"])
    else:
        sim.set_host(host["name"], inMaintenanceMode=False)
    time.sleep(3.0)  # the flip back reaches the body before the next change
    return lag, follower, call


def measure(
    sim: Simulator,
    code: Path,
    hosts: list[dict[str, str]],
    settle: float,
    spy: str | None,
    shards: int = 1,
    change: str = "maintenance",
) -> list[tuple[float, float, float]]:
    tmp = Path(tempfile.mkdtemp(prefix="vha-lag-"))
    port = free_port()
    data = scale_config(
        sim,
        tmp,
        port,
        {
            "host_sensors": {"enabled": True},
            "guest_disks": {"enabled": True},
            "custom_attributes": {"enabled": True},
        },
    )
    exporter = exporter_process(tmp, port, data)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        t0 = time.perf_counter()
        exporter.start(dict(os.environ), cwd=code)
        exporter.wait_ready(timeout=1800)
        print(f"  {code}: ready in {time.perf_counter() - t0:.1f}s, pid {exporter.pid}")
        scrape(url, True, decode=False)  # gzip wanted from now on
        time.sleep(settle)  # the first full renders and gzip variants built
        stop = threading.Event()
        jobs = shard_jobs(url, shards, stop) if shards > 1 else None
        print(f"  load {loadavg()}; {shards} shard job(s)", flush=True)
        profiler = None
        if spy:
            out = tmp / "profile.txt"
            print(f"  profile: {out}", flush=True)
            argv = [  # 25 Hz: at 100 a loaded machine left py-spy behind by 45 s
                spy,
                "record",
                "--pid",
                str(exporter.pid),
                "-f",
                "raw",
                "--threads",
                "-r",
                "25",
                "-o",
                str(out),
            ]
            profiler = subprocess.Popen([*argv, "--nonblocking"])  # noqa: S603 - ours
        try:
            lags = [flip(sim, url, host, change) for host in hosts]
        finally:
            stop.set()
            if jobs is not None:
                jobs.join(timeout=120)
        print(f"  load {loadavg()}", flush=True)
        if profiler is not None:
            profiler.send_signal(2)  # SIGINT: py-spy writes what it sampled
            profiler.wait(timeout=60)
        return lags
    finally:
        exporter.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="10k", choices=sorted(SIZES))
    parser.add_argument("--changes", type=int, default=6)
    parser.add_argument("--settle", type=float, default=30.0)
    parser.add_argument("--code", action="append", type=Path, help="tree(s) to measure")
    parser.add_argument("--shards", type=int, default=1, help="N jobs scrape a shard each")
    parser.add_argument("--change", default="maintenance", choices=("maintenance", "fail"))
    parser.add_argument("--py-spy", dest="spy", help="py-spy executable: profile each")
    args = parser.parse_args(argv)
    print(
        f"== {args.size}: {SIZES[args.size]}, everything on, {args.change}; load {loadavg()}",
        flush=True,
    )
    sim = Simulator(**SIZES[args.size], paging=True)
    sim.start(timeout=1800)
    try:
        inv = sim.inventory()
        for i, code in enumerate(args.code or [ROOT]):
            hosts = inv["hosts"][i * args.changes : (i + 1) * args.changes]
            rows = measure(sim, code, hosts, args.settle, args.spy, args.shards, args.change)
            lags = [lag for lag, _, _ in rows]
            seen = [lag + follower for lag, follower, _ in rows]
            bound = [call + lag + follower for lag, follower, call in rows]
            print(
                f"  {code}: own lag per change {', '.join(f'{x:.3f}' for x in lags)} s; "
                f"median {statistics.median(lags):.3f} s, max {max(lags):.3f} s; "
                f"change -> /metrics (follower's receipt + own lag) after the call's return "
                f"median {statistics.median(seen):+.3f} s, max {max(seen):+.3f} s; after its "
                f"start (an upper bound) median {statistics.median(bound):.3f} s, "
                f"max {max(bound):.3f} s",
                flush=True,
            )
    finally:
        sim.stop()


if __name__ == "__main__":
    main()
