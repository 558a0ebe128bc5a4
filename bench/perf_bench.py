"""Performance-counter benchmark: collection time, vCenter calls, and the cost to ``/metrics``.

Runs the real simulator (1,000 hosts and 10,000 VMs by default) and prints:

1. in process, with the inventory synced by the real follower: one full collection (hosts and
   VMs) per batch size and concurrency, its QueryPerf and total vCenter calls;
2. the exporter as a subprocess (its CPU and GIL its own), performance collection wired in
   as ``exporter/app.py`` does: ``/metrics`` latency p50/p95 with collection off, then with
   collection on (20 s interval) over several collections, with the collector's own figures
   and the exporter's CPU use.

Figures only; nothing here asserts a time.

    python -m bench.perf_bench                     # 1,000 hosts, 10,000 VMs
    python -m bench.perf_bench --clusters 2 --hosts 5 --vms 50 --seconds 30   # quick look
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from exporter.inventory import Inventory
from exporter.perf import PerfCollector, parse_performance_config
from exporter.perf_counters import COUNTERS
from exporter.sync import Follower
from sim.harness import Simulator
from vcenter.config import Config, load_config, parse_config
from vha.demo.stack import Process, free_port

from .exporter_bench import bench_config

SWEEP = [(250, 1), (250, 4), (100, 4), (500, 4), (250, 8)]  # (batch_size, concurrency)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def scrape(url: str, gzipped: bool = False) -> tuple[float, str]:
    """Seconds for one scrape, and the body (not decompressed when gzipped: "" then)."""
    headers = {"Accept-Encoding": "gzip"} if gzipped else {}
    start = time.perf_counter()
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=60) as resp:  # noqa: S310 - loopback
        body = resp.read()
    took = time.perf_counter() - start
    return took, "" if gzipped else body.decode()


def shard_seconds(url: str) -> float:
    """Seconds for one gzip scrape of a shard; a 503 (the first ask of a total waits for
    the exporter's split, then says so) is asked again, as Prometheus would next interval."""
    while True:
        try:
            return scrape(url, gzipped=True)[0]
        except urllib.error.HTTPError as exc:
            if exc.code != 503:
                raise


def sample(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def write_config(sim: Simulator, tmp: Path, port: int, perf: dict[str, Any]) -> Path:
    data = bench_config(sim, tmp, port, sync={"max_wait_seconds": 5}, performance=perf)
    path = tmp / f"config-{port}.yml"
    path.write_text(yaml.safe_dump(data))
    return path


# --- 1. one collection, in process -----------------------------------------------------------


def sweep(config: Config) -> None:
    vc = config.vcenters[0]
    inventory = Inventory(vc.name)
    follower = Follower(vc, inventory, config.sync)
    t0 = time.perf_counter()
    follower.start()
    while not (inventory.synced and inventory.up):
        time.sleep(0.1)
    print(f"inventory synced in {time.perf_counter() - t0:.1f}s (in process)")
    print(f"{'batch':>6} {'conc':>5} {'first s':>8} {'again s':>8} {'queries':>8} {'calls':>6}")
    try:
        for batch, conc in SWEEP:
            perf = parse_performance_config({"batch_size": batch, "max_concurrent_queries": conc})
            collector = PerfCollector(vc, inventory, perf)
            t0 = time.perf_counter()
            collector.collect_once()  # includes login and counter resolution
            first = time.perf_counter() - t0
            calls_first = collector.calls_total
            t0 = time.perf_counter()
            collector.collect_once()
            again = time.perf_counter() - t0
            queries = collector.queries_total // 2
            entities = sum(collector.entities.values())
            errors = sum(collector.errors_total.values())
            print(
                f"{batch:>6} {conc:>5} {first:>8.2f} {again:>8.2f} {queries:>8} "
                f"{calls_first:>6}   ({entities} entities; errors {errors})"
            )
            collector.stop()
    finally:
        follower.stop()


# --- 2. the exporter as a subprocess ---------------------------------------------------------


def zero_fill() -> None:
    """Make every counter report a value, as a real vCenter does.

    govmomi's simulator dropped zero values from its XML (``omitempty`` on each element), so
    counters that are 0 (balloon, swap, drops, the datastore ones it has no data for) had no
    series there; a real vCenter sends the zeros. sim/perfzeros.go now sends them too, so
    this is a no-op against the current simulator; it stays for comparing with the figures
    of docs/performance.md, measured before.
    """
    from exporter import perf  # noqa: PLC0415

    original = perf.convert_metrics

    def filled(*args: Any, **kwargs: Any) -> list[perf.Sample]:
        samples = original(*args, **kwargs)
        counters = args[3]
        for sample in samples:
            for counter in counters.get(sample.target.kind, []):
                sample.values.setdefault(counter.key, 0.0)
        return samples

    perf.convert_metrics = filled


def serve(config_path: str) -> None:
    """Run the exporter with performance collection wired in as exporter/app.py does."""
    from aiohttp import web  # noqa: PLC0415

    from exporter.app import create_app, tune_interpreter  # noqa: PLC0415

    if os.environ.get("VHA_BENCH_ZERO_FILL"):
        zero_fill()

    config = load_config(config_path)
    # create_app wires the collectors in itself (exporter/app.py); adding a second set here
    # (as this benchmark once did) doubled the counters' CPU and series.
    app = create_app(config)
    tune_interpreter()  # as exporter.app.run does
    web.run_app(app, host=config.listen_host, port=config.listen_port, print=None, access_log=None)


def measure(
    sim: Simulator, tmp: Path, perf: dict[str, Any], seconds: float, label: str
) -> dict[str, float]:
    port = free_port()
    config_path = write_config(sim, tmp, port, perf)
    proc = Process(
        f"exporter-{label}",
        [sys.executable, "-m", "bench.perf_bench", "serve", str(config_path)],
        tmp / f"exporter-{label}.log",
        f"http://127.0.0.1:{port}/readyz",
    )
    out: dict[str, float] = {}
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        t0 = time.perf_counter()
        proc.start(dict(os.environ))
        proc.wait_ready(timeout=900)
        out["ready_s"] = time.perf_counter() - t0
        if perf.get("enabled", True):
            while sample(scrape(url)[1], "vsphere_perf_last_success_timestamp_seconds") is None:
                time.sleep(0.5)
            out["first_collection_after_ready_s"] = time.perf_counter() - t0 - out["ready_s"]
        _, text = scrape(url)
        cpu0, q0, wall0 = sample(text, "process_cpu_seconds_total"), None, time.monotonic()
        q0 = sample(text, "vsphere_perf_queries_total", vcenter="bench")
        latencies: list[float] = []
        gzipped: list[float] = []
        at: list[tuple[float, float, float]] = []  # (wall clock at start, plain s, gzip s)
        durations: dict[float, float] = {}  # collection end -> its duration
        shards: list[float] = []
        while time.monotonic() - wall0 < seconds:
            started = time.time()
            gz = scrape(url, gzipped=True)[0]
            gzipped.append(gz)
            took, text = scrape(url)
            latencies.append(took)
            at.append((started, took, gz))
            if len(at) % 4 == 0:  # a Prometheus-style round over 4 shards, gzip
                shards.extend(shard_seconds(f"{url}?shard={i}&total_shards=4") for i in range(4))
            d = sample(text, "vsphere_perf_collection_duration_seconds", vcenter="bench")
            done = sample(text, "vsphere_perf_last_success_timestamp_seconds", vcenter="bench")
            if d is not None and done is not None:
                durations[done] = d
            time.sleep(0.25)
        wall = time.monotonic() - wall0
        out["load_average_1m"] = os.getloadavg()[0]
        # Scrapes that started while a collection ran (its end minus its duration, to its end).
        during = [
            (plain, gz)
            for started, plain, gz in at
            if any(end - d - 0.1 <= started <= end + 0.1 for end, d in durations.items())
        ]
        if during:
            out["scrapes_during_collection"] = len(during)
            out["during_collection_p95_ms"] = pct([p for p, _ in during], 0.95) * 1000
            out["during_collection_gzip_p95_ms"] = pct([g for _, g in during], 0.95) * 1000
        if shards:
            out["shard_of_4_gzip_p50_ms"] = statistics.median(shards) * 1000
            out["shard_of_4_gzip_p95_ms"] = pct(shards, 0.95) * 1000
        lag_n = sample(text, "vsphere_render_lag_seconds_count")
        lag_sum = sample(text, "vsphere_render_lag_seconds_sum")
        if lag_n and lag_sum is not None:
            out["render_lag_mean_ms"] = lag_sum / lag_n * 1000
            for bound in ("0.05", "0.1", "0.2", "0.5", "1.0"):
                within = sample(text, "vsphere_render_lag_seconds_bucket", le=bound) or 0
                out[f"render_lag_within_{bound}s_pct"] = 100 * within / lag_n
        status = Path(f"/proc/{proc.pid}/status").read_text()
        for field in ("VmRSS", "VmHWM"):
            kib = next(int(ln.split()[1]) for ln in status.splitlines() if ln.startswith(field))
            out[f"exporter_{field.lower()}_mib"] = kib / 1024
        out["scrapes"] = len(latencies)
        out["metrics_p50_ms"] = statistics.median(latencies) * 1000
        out["metrics_p95_ms"] = pct(latencies, 0.95) * 1000
        out["metrics_max_ms"] = max(latencies) * 1000
        out["metrics_gzip_p50_ms"] = statistics.median(gzipped) * 1000
        out["metrics_gzip_p95_ms"] = pct(gzipped, 0.95) * 1000
        out["metrics_mb"] = len(text) / 1e6
        out["series"] = float(sum(1 for ln in text.splitlines() if ln and ln[0] != "#"))
        cpu1 = sample(text, "process_cpu_seconds_total")
        if cpu0 is not None and cpu1 is not None:
            out["exporter_cpu_cores"] = (cpu1 - cpu0) / wall
        if perf.get("enabled", True):
            q1 = sample(text, "vsphere_perf_queries_total", vcenter="bench")
            seen = list(durations.values())[1:]  # the first one finished before we started
            out["collections_seen"] = len(seen)
            out["collection_s_median"] = statistics.median(seen) if seen else 0.0
            out["collection_s_max"] = max(seen) if seen else 0.0
            if q0 is not None and q1 is not None and seen:
                out["queryperf_calls_per_collection"] = (q1 - q0) / len(seen)
            names = {c.metric_name(k) for c in COUNTERS for k in c.sources}
            out["perf_series"] = float(
                sum(1 for ln in text.splitlines() if ln.split("{", 1)[0] in names)
            )
            errors = sum(
                sample(text, "vsphere_perf_errors_total", vcenter="bench", reason=r) or 0
                for r in ("connect", "auth", "session", "fault", "timeout", "other")
            )
            out["perf_errors"] = errors
    finally:
        proc.stop()
    print(f"\n== exporter, performance collection {label}")
    for key, value in out.items():
        print(f"  {key:34s} {value:12.3f}")
    return out


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["serve"]:
        serve(argv[1])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=50)
    parser.add_argument("--hosts", type=int, default=20, help="hosts per cluster")
    parser.add_argument("--vms", type=int, default=200, help="VMs per cluster")
    parser.add_argument("--seconds", type=float, default=90, help="scraping time per run")
    parser.add_argument("--no-sweep", action="store_true", help="skip the in-process sweep")
    parser.add_argument(
        "--zero-fill",
        action="store_true",
        help="fill in every counter after conversion (a no-op now that the simulator sends zeros)",
    )
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    sim = Simulator(datacenters=1, clusters=args.clusters, hosts=args.hosts, vms=args.vms)
    sim.start(timeout=600)
    inv = sim.inventory()
    print(
        f"simulator: {len(inv['hosts'])} hosts, {len(inv['vms'])} VMs, "
        f"started in {time.perf_counter() - t0:.1f}s; {os.cpu_count()} CPUs"
    )
    tmp = Path(tempfile.mkdtemp(prefix="vha-perf-bench-"))
    if args.zero_fill:
        os.environ["VHA_BENCH_ZERO_FILL"] = "1"
    try:
        if not args.no_sweep:
            sweep(parse_config(yaml.safe_load(write_config(sim, tmp, 0, {}).read_text())))
        off = measure(sim, tmp, {"enabled": False}, args.seconds / 2, "off")
        on = measure(sim, tmp, {}, args.seconds, "on (20 s, batch 250, 4 queries at once)")
        print("\n== /metrics with collection on vs off")
        keys = ("metrics_p50_ms", "metrics_p95_ms", "metrics_gzip_p50_ms", "metrics_gzip_p95_ms")
        for key in (*keys, "metrics_mb", "exporter_cpu_cores"):
            if key in off and key in on:
                print(f"  {key:34s} {off[key]:10.3f} -> {on[key]:10.3f}")
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
