"""Scale benchmark (issue 15 item 7): the exporter at vCenter's configuration maximum.

Figures only, never timed assertions.  One simulator (2,500 hosts / 40,000 VMs by default:
125 clusters of 20 hosts and 320 VMs), vCenter-style paging on (WaitForUpdatesEx pages of
100 objects, RetrievePropertiesEx pages with tokens), performance counters on, and one
exporter subprocess.  Prints:

- initial sync (exporter start to /readyz) and the truncated pages it read;
- /metrics p50/p95 plain and gzip, and p95 over a window spanning several counter
  collections (the scrapes that land during a collection are in it);
- exporter peak RSS and CPU seconds per minute over that window (scrapes back to back),
  then the CPU over a paced window (one gzip scrape every PACE seconds: the average an
  ordinary Prometheus scrape interval costs);
- change -> /metrics (host maintenance flip), the simulator's own delivery to a bare
  WaitForUpdatesEx client on the same filter, and the exporter's share (the difference);
  then the same changes on a timeline (bench/change_timeline.py), with the exporter's own
  stamp of its share per change (``vsphere_render_last_lag_seconds``);
- per-shard gzip latency with 4 shards (``/metrics?shard=i&total_shards=4``);
- a polling RetrievePropertiesEx fetch of the same properties (the reference ratio; a
  lower bound for a polling exporter such as pryorda/vmware_exporter, see docs/exporter.md);
- the machine's load average (it is shared: the figures move with it).

    python -m bench.scale_bench [--size max|10k|small] [--window 60] [--scrapes 20]
        [--paced 60] [--window-only] [--host-sensors on|not-green|off]
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import statistics
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from sim.harness import Simulator
from vcenter.config import parse_config
from vha.demo.stack import free_port

from .change_timeline import timeline
from .exporter_bench import (
    exporter_process,
    host_change_seconds,
    pct,
    peak_rss_mib,
    polling_scrape,
    scale_config,
    vcenter_update_latency,
)
from .poller_bench import cpu_seconds

PACE = 15.0  # seconds between the paced window's scrapes: a common scrape_interval

SIZES = {
    "max": {"clusters": 125, "hosts": 20, "vms": 320},  # 2,500 hosts, 40,000 VMs
    "20k": {"clusters": 100, "hosts": 20, "vms": 200},
    "10k": {"clusters": 50, "hosts": 20, "vms": 200},  # 1,000 hosts, 10,000 VMs
    "small": {"clusters": 2, "hosts": 5, "vms": 50},
}


class Figures(dict[str, float]):
    """The figures, each printed as soon as it is measured (a maximum-size run is long)."""

    def __setitem__(self, key: str, value: float) -> None:
        super().__setitem__(key, value)
        print(f"  {key:32s} {value:12.3f}", flush=True)


CHANGE_TIMEOUT = 300  # seconds; at 40,000 VMs a change took over 120 s on a loaded machine


def scrape(url: str, gzipped: bool = False, decode: bool = True) -> tuple[float, bytes]:
    """One /metrics scrape (as Prometheus asks, with gzip if ``gzipped``); seconds, body
    (decompressed unless ``decode`` is False: at 40,000 VMs the bench's own decompression
    of 432 MB took longer than a 40 s window on a loaded machine, one scrape a window)."""
    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"} if gzipped else {})
    start = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as resp:  # noqa: S310 - loopback
        body = resp.read()
        encoded = resp.headers.get("Content-Encoding") == "gzip"
    seconds = time.perf_counter() - start
    return seconds, gzip.decompress(body) if encoded and decode else body


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def children(pid: int) -> list[int]:
    """The exporter's child processes (the performance parse worker, multiprocessing's
    resource tracker): their CPU and memory are the exporter's too."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def tree_cpu_seconds(pid: int) -> float:
    total = cpu_seconds(pid)
    for child in children(pid):
        try:
            total += cpu_seconds(child)
        except OSError:
            continue  # ended meanwhile
    return total


def scrape_window(url: str, pid: int, seconds: float, pause: float) -> tuple[list[float], float]:
    """Gzip scrapes ``pause`` seconds apart for ``seconds``: their latencies, and the CPU
    of the exporter ``pid`` and its children (the parse worker) per minute meanwhile."""
    c0, w0, lat = tree_cpu_seconds(pid), time.perf_counter(), []
    while (left := seconds - (time.perf_counter() - w0)) > 0:
        lat.append(scrape(url, True, decode=False)[0])
        time.sleep(min(pause, max(0.0, left)))
    return lat, (tree_cpu_seconds(pid) - c0) / (time.perf_counter() - w0) * 60


def children_rss_mib(pid: int) -> float:
    total = 0.0
    for child in children(pid):
        try:
            for line in Path(f"/proc/{child}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return total


def first_scrape(url: str) -> tuple[float, float, int, bytes]:
    """The first gzip ask of a shard, asked again after each 503 as Prometheus does at its
    next interval: the first request's seconds (whatever it answered), the seconds from it
    to the first 200, the 503s before, and the body."""
    start = time.perf_counter()
    first: float | None = None
    pending = 0
    while True:
        t = time.perf_counter()
        try:
            seconds, body = scrape(url, True)
        except urllib.error.HTTPError as exc:  # the split not ready within the wait
            if exc.code != 503:
                raise
            pending += 1
            first = time.perf_counter() - t if first is None else first
            continue
        return (seconds if first is None else first), time.perf_counter() - start, pending, body


def shard_latency(url: str, total: int, scrapes: int) -> dict[str, float]:
    """Gzip scrapes of each of ``total`` shards, as ``total`` Prometheus jobs would ask:
    the first per shard (the first ask of a total waits for the packer's split, a 503 past
    the scrape timeout; before, it split the body in the request) apart from the rest;
    the shards' series add up to the whole body's (tests/test_exposition.py checks the
    union byte for byte)."""
    out: dict[str, float] = {}
    worst: list[float] = []
    series = 0
    for i in range(total):
        shard_url = f"{url}?shard={i}&total_shards={total}"
        first, ok, pending, body = first_scrape(shard_url)
        lat = [scrape(shard_url, True, decode=False)[0] for _ in range(scrapes)]
        series += sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
        out[f"shard{i}_of_{total}_first_ms"] = first * 1000
        out[f"shard{i}_of_{total}_first_ok_s"] = ok
        out[f"shard{i}_of_{total}_first_503s"] = pending
        out[f"shard{i}_of_{total}_gzip_p50_ms"] = pct(lat, 0.5) * 1000
        out[f"shard{i}_of_{total}_gzip_p95_ms"] = pct(lat, 0.95) * 1000
        out[f"shard{i}_of_{total}_mb"] = len(body) / 1e6
        worst += lat
        del body
    out[f"shards_of_{total}_gzip_p95_ms"] = pct(worst, 0.95) * 1000
    out[f"shards_of_{total}_series"] = series
    return out


def change_to_metric(sim: Any, url: str, hosts: list[str]) -> list[float]:
    out = []
    for host in hosts:
        seconds, seen = host_change_seconds(sim, url, host, scrape, timeout=CHANGE_TIMEOUT)
        if not seen:
            print(f"  change on {host} not visible after {CHANGE_TIMEOUT}s", flush=True)
        out.append(seconds)
        print(f"  change on {host} visible after {out[-1]:.1f}s", flush=True)
    return out


def sample(body: bytes, name: str) -> float:
    """The value of one unlabelled-enough series of ``name`` in a body (first match)."""
    m = re.search(rb"^" + re.escape(name.encode()) + rb"(?:\{[^}]*\})? (\S+)$", body, re.M)
    return float(m.group(1)) if m else float("nan")


SENSORS = {  # --host-sensors: collectors.host_sensors (the heaviest family at scale)
    "on": {"enabled": True},
    "not-green": {"enabled": True, "include_green": False},
    "off": {"enabled": False},
}


def lag_histogram(body: bytes) -> dict[str, Any]:
    """``vsphere_render_lag_seconds`` out of a body: bucket counts by bound, sum, count."""
    buckets = {
        float(le): float(v)
        for le, v in re.findall(
            rb'^vsphere_render_lag_seconds_bucket\{le="([^"]+)"\} (\S+)$', body, re.M
        )
    }
    return {
        "buckets": buckets,
        "sum": sample(body, "vsphere_render_lag_seconds_sum"),
        "count": sample(body, "vsphere_render_lag_seconds_count"),
    }


def lag_quantile(before: dict[str, Any], after: dict[str, Any], q: float) -> float:
    """The smallest bucket bound holding quantile ``q`` of the observations in between."""
    n = after["count"] - before["count"]
    for bound in sorted(after["buckets"]):
        if after["buckets"][bound] - before["buckets"].get(bound, 0) >= q * n:
            return float(bound)
    return float("inf")


def run(
    size: str,
    window: float,
    scrapes: int,
    changes: int,
    paging: bool = True,
    sensors: str = "on",
    everything: bool = False,
    window_only: bool = False,
    paced: float = 60.0,
) -> dict[str, float]:
    flags = SIZES[size]
    print(
        f"== {size}: {flags}, paging {'on' if paging else 'off'}, host sensors {sensors}, "
        f"{'every optional collector on' if everything else 'default collectors'}; "
        f"load {loadavg()}",
        flush=True,
    )
    t0 = time.perf_counter()
    sim = Simulator(**flags, paging=paging)
    sim.start(timeout=1800)
    inv = sim.inventory()
    hosts = [h["name"] for h in inv["hosts"]]
    print(
        f"simulator: {len(hosts)} hosts, {len(inv['vms'])} VMs, paging {sim.paging_state()}, "
        f"started in {time.perf_counter() - t0:.1f}s",
        flush=True,
    )
    tmp = Path(tempfile.mkdtemp(prefix="vha-scale-"))
    port = free_port()
    collectors: dict[str, Any] = {"host_sensors": SENSORS[sensors]}
    if everything:  # issue 13's "with everything on": the switchable heavy families too
        collectors.update(
            {"guest_disks": {"enabled": True}, "custom_attributes": {"enabled": True}}
        )
    data = scale_config(sim, tmp, port, collectors)
    config = parse_config(data)
    exporter = exporter_process(tmp, port, data)
    out = Figures()
    out["hosts"], out["vms"] = len(hosts), len(inv["vms"])
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        pages0 = sim.paging_state()["truncatedPages"]
        t0 = time.perf_counter()
        exporter.start(dict(os.environ))
        exporter.wait_ready(timeout=1800)
        out["initial_sync_s"] = time.perf_counter() - t0
        out["initial_sync_truncated_pages"] = sim.paging_state()["truncatedPages"] - pages0
        for gz in (False, True):
            lat = [scrape(url, gz, decode=False)[0] for _ in range(scrapes)]
            tag = "gzip" if gz else "plain"
            out[f"metrics_{tag}_p50_ms"] = pct(lat, 0.5) * 1000
            out[f"metrics_{tag}_p95_ms"] = pct(lat, 0.95) * 1000
        body = scrape(url)[1]
        out["metrics_mb"] = len(body) / 1e6
        polls0 = sample(body, "vsphere_sync_polls_total")
        del body
        # A window spanning several 20 s counter collections: gzip scrapes back to back.
        pid = exporter.pid or 0
        lat, cpu_per_min = scrape_window(url, pid, window, 0.5)
        out["window_scrapes"] = len(lat)
        out["window_gzip_p50_ms"] = pct(lat, 0.5) * 1000
        out["window_gzip_p95_ms"] = pct(lat, 0.95) * 1000
        out["window_gzip_max_ms"] = max(lat) * 1000
        # The exporter and its children (the parse worker's CPU was the exporter's before).
        out["exporter_cpu_s_per_min"] = cpu_per_min
        out["exporter_peak_rss_mib"] = peak_rss_mib(pid)
        out["exporter_children_rss_mib"] = children_rss_mib(pid)
        body = scrape(url)[1]
        out["poll_duration_s"] = sample(body, "vsphere_sync_poll_duration_seconds")
        out["window_polls"] = sample(body, "vsphere_sync_polls_total") - polls0
        del body
        if paced > 0:  # the average a Prometheus scraping every PACE seconds costs
            lat, cpu_per_min = scrape_window(url, pid, paced, PACE)
            out["paced_scrapes"] = len(lat)
            out["paced_gzip_max_ms"] = max(lat) * 1000
            out["paced_cpu_s_per_min"] = cpu_per_min
        if window_only:  # the sync, scrape and CPU figures only (an A/B of the exporter)
            return out
        for key, value in shard_latency(url, 4, scrapes).items():
            out[key] = value
        # Before the change timings, which the simulator can stall at this size.
        out["polling_fetch_s"] = polling_scrape(config)
        out["polling_over_gzip_p50_ratio"] = out["polling_fetch_s"] / (
            out["metrics_gzip_p50_ms"] / 1000
        )
        lag0 = lag_histogram(scrape(url)[1])
        seen = change_to_metric(sim, url, hosts[:changes])
        lag1 = lag_histogram(scrape(url)[1])
        # The exporter's own share measured in process: vsphere_render_lag_seconds over the
        # changes (update set read off the wire -> first body showing it published); the
        # difference below also carries the observation's own cost (a scrape of the whole
        # plain body and a search of it, ``one_scrape_s``), which at 10,000 VMs is seconds.
        n = lag1["count"] - lag0["count"]
        if n > 0:
            out["render_lag_mean_s"] = (lag1["sum"] - lag0["sum"]) / n
            out["render_lag_p50_le_s"] = lag_quantile(lag0, lag1, 0.5)
            out["render_lag_p95_le_s"] = lag_quantile(lag0, lag1, 0.95)
        t_one = time.perf_counter()
        scrape(url)
        out["one_scrape_s"] = time.perf_counter() - t_one
        out["change_to_metric_p50_s"] = statistics.median(seen)
        out["change_to_metric_max_s"] = max(seen)
        floor = vcenter_update_latency(sim, config, hosts[changes : 2 * changes])
        # The same changes seen at four points (bench/change_timeline.py): change, a bare
        # client on the same filter listening meanwhile, the follower's receipt, the body.
        a0 = scrape(url)[1]
        rows = timeline(
            sim,
            config.vcenters[0],
            url,
            # hosts not flipped yet, or (a small inventory) the first ones again
            inv["hosts"][2 * changes : 3 * changes] or inv["hosts"][:changes],
            lambda u: scrape(u, True),
            CHANGE_TIMEOUT,
        )
        a1 = scrape(url)[1]
        for key in ("bare_s", "follower_s", "body_lo_s", "body_s", "own_lag_s"):
            out[f"timeline_{key[:-2]}_p50_s"] = statistics.median(r[key] for r in rows)
        out["timeline_own_lag_max_s"] = max(r["own_lag_s"] for r in rows)
        out["timeline_follower_after_bare_p50_s"] = statistics.median(
            r["follower_s"] - r["bare_s"] for r in rows
        )
        out["timeline_body_after_follower_p50_s"] = statistics.median(
            r["body_s"] - r["follower_s"] for r in rows
        )
        for fam in ("update_parse_seconds", "update_size_bytes"):
            name = f"vsphere_sync_{fam}"
            n = sample(a1, name + "_count") - sample(a0, name + "_count")
            if n > 0:
                total = sample(a1, name + "_sum") - sample(a0, name + "_sum")
                out[f"answers_{fam}_mean"] = total / n
            out[f"answers_{fam}_count"] = n
        out["sim_delivery_p50_s"] = statistics.median(floor)
        out["exporter_share_p50_s"] = max(
            0.0, out["change_to_metric_p50_s"] - out["sim_delivery_p50_s"]
        )
        out["exporter_peak_rss_mib_end"] = peak_rss_mib(pid)
    finally:
        exporter.stop()
        sim.close()
    print(f"  load average at the end: {loadavg()} (2 cores, shared)", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="max", choices=list(SIZES))
    parser.add_argument("--window", type=float, default=60.0, help="seconds of scrapes")
    parser.add_argument("--scrapes", type=int, default=20)
    parser.add_argument("--changes", type=int, default=5, help="host changes to time")
    parser.add_argument(
        "--no-paging", action="store_true", help="simulator answers in one piece (A/B)"
    )
    parser.add_argument(
        "--host-sensors", default="on", choices=list(SENSORS), help="collectors.host_sensors"
    )
    parser.add_argument(
        "--everything",
        action="store_true",
        help="also the off-by-default collectors (guest disks, custom attributes)",
    )
    parser.add_argument(
        "--paced",
        type=float,
        default=60.0,
        help=f"seconds of gzip scrapes every {PACE:.0f} s after the window, for the CPU "
        "an ordinary scrape interval costs (0: none)",
    )
    parser.add_argument(
        "--window-only",
        action="store_true",
        help="stop after the window's figures (sync, scrapes, CPU, RSS): minutes, not half an hour",
    )
    args = parser.parse_args(argv)
    run(
        args.size,
        args.window,
        args.scrapes,
        args.changes,
        paging=not args.no_paging,
        sensors=args.host_sensors,
        everything=args.everything,
        window_only=args.window_only,
        paced=args.paced,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
