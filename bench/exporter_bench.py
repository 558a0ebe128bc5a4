"""Exporter benchmark: incremental PropertyCollector following vs polling per scrape.

Runs the real simulator and the real exporter (as a subprocess, so its peak RSS is its own)
and prints, per inventory size: initial sync time, /metrics latency p50/p95, the time from
an injected change to its appearance in /metrics, the exporter's peak RSS, and the same
scrape done the polling way (RetrievePropertiesEx of every property, then render), with the
ratio.  Figures only: nothing here asserts a time.

    python -m bench.exporter_bench                  # 100 VMs and 10,000 VMs
    python -m bench.exporter_bench --sizes small
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from exporter.inventory import Inventory, apply_object_updates, convert
from exporter.render import Renderer
from exporter.sync import _filter_spec, create_follow_filter, inventory_view
from sim.harness import Simulator
from vcenter.config import parse_config
from vcenter.session import connect, disconnect
from vha.demo.stack import Process, free_port

PERF = False  # --perf: collect performance counters too

SIZES = {
    # name: simulator flags (hosts = clusters x hosts; VMs = clusters x vms)
    "small": {"datacenters": 1, "clusters": 2, "hosts": 5, "vms": 50},
    "large": {"datacenters": 1, "clusters": 50, "hosts": 20, "vms": 200},
}


def scrape_seconds(url: str) -> tuple[float, bytes]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 - loopback
        body = resp.read()
    return time.perf_counter() - start, body


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def polling_scrape(config: Any) -> float:
    """One scrape the polling way: fetch every property of every object, convert, render."""
    vc = config.vcenters[0]
    start = time.perf_counter()
    si = connect(vc)
    try:
        content = si.RetrieveContent()
        from pyVmomi import vmodl  # noqa: PLC0415

        view = inventory_view(content)
        spec = _filter_spec(content, view)
        pc = content.propertyCollector
        opts = vmodl.query.PropertyCollector.RetrieveOptions(maxObjects=2000)
        result = pc.RetrievePropertiesEx([spec], opts)
        updates = []
        while result is not None:
            for oc in result.objects or []:
                changes = [("assign", p.name, convert(p.name, p.val)) for p in oc.propSet or []]
                updates.append(("enter", oc.obj._wsdlName, str(oc.obj._moId), changes))
            if not result.token:
                break
            result = pc.ContinueRetrievePropertiesEx(result.token)
        view.Destroy()
        inv = Inventory(vc.name)
        objects: dict[str, Any] = {}
        fields: dict[int, str] = {}
        apply_object_updates(objects, fields, updates)
        inv.replace(objects, fields)
        Renderer(config, [inv]).render_now()
    finally:
        disconnect(si)
    return time.perf_counter() - start


def host_change_seconds(
    sim: Any,
    url: str,
    host: str,
    fetch: Callable[[str], tuple[Any, bytes]],
    *,
    timeout: float,
) -> tuple[float, bool]:
    """Flip ``host`` into maintenance mode and scrape until /metrics shows it: (seconds,
    seen within ``timeout``). The host is taken out of maintenance mode again."""
    shown = re.compile(
        rb'^vsphere_host_maintenance_mode\{vcenter="bench",host_id="[^"]*",host="'
        + re.escape(host.encode())
        + rb'"\} 1$',
        re.M,
    )
    sim.set_host(host, inMaintenanceMode=True)
    t0 = time.perf_counter()
    seen = False
    while not seen and time.perf_counter() - t0 <= timeout:
        _, body = fetch(url)
        seen = shown.search(body) is not None
    elapsed = time.perf_counter() - t0
    sim.set_host(host, inMaintenanceMode=False)
    return elapsed, seen


def initial_sync(pc: Any) -> str:
    """Read a fresh filter's initial sync in pages, as the exporter does; its version."""
    from pyVmomi import vmodl  # noqa: PLC0415

    version = ""
    opts = vmodl.query.PropertyCollector.WaitOptions(maxWaitSeconds=0, maxObjectUpdates=500)
    while True:
        result = pc.WaitForUpdatesEx(version, opts)
        if result is None:
            return version
        version = result.version
        if not result.truncated:
            return version


def vcenter_update_latency(sim: Any, config: Any, hosts: list[str]) -> list[float]:
    """How long the simulator itself takes to deliver a change to a WaitForUpdatesEx client
    following the exporter's filter: the floor under the exporter's change-to-visible time.

    The socket timeout is the wait's plus a wide margin, and an empty answer (the wait ran
    out) is waited on again: at 40,000 VMs vcsim 0.24 (``-incremental-delivery=false``)
    re-collects the whole filter for every queued change, so one answer can take longer
    than a vCenter's login timeout (the run of 2026-12-02 died there on a socket timeout)."""
    from pyVmomi import vmodl  # noqa: PLC0415

    wait_seconds = 30
    si = connect(config.vcenters[0], timeout=wait_seconds + 600)
    try:
        content = si.RetrieveContent()
        pc, _view = create_follow_filter(content)
        version = initial_sync(pc)
        opts = vmodl.query.PropertyCollector.WaitOptions(maxWaitSeconds=wait_seconds)

        def next_answer(version: str) -> str:
            while True:
                result = pc.WaitForUpdatesEx(version, opts)
                if result is not None:
                    return str(result.version)

        out = []
        for host in hosts:
            sim.set_host(host, inQuarantineMode=True)
            t0 = time.perf_counter()
            version = next_answer(version)
            out.append(time.perf_counter() - t0)
            sim.set_host(host, inQuarantineMode=False)
            version = next_answer(version)
        pc.DestroyPropertyCollector()
        return out
    finally:
        disconnect(si)


def bench_config(sim: Any, tmp: Path, port: int, **sections: Any) -> dict[str, Any]:
    """The exporter configuration every bench gives its simulator: the simulator's account
    through a password file in ``tmp``, its CA (or no verification where it has none), the
    demo's fault-domain attribute; ``sections`` add or replace top-level keys."""
    (tmp / "pw").write_text(sim.password)
    vc: dict[str, Any] = {
        "name": "bench",
        "url": sim.sdk_url,
        "user": sim.username,
        "password_file": str(tmp / "pw"),
    }
    if sim.ca_file:
        vc["ca_file"] = sim.ca_file
    else:
        vc["verify_tls"] = False
    return {
        "listen": f"127.0.0.1:{port}",
        "vcenters": [vc],
        "fault_domains": {"custom_attribute": "HA-FaultDomain"},
        **sections,
    }


def scale_config(sim: Any, tmp: Path, port: int, collectors: dict[str, Any]) -> dict[str, Any]:
    """:func:`bench_config` as scale_bench runs the exporter: counters on, a 5 s wait and
    a 120 s hung margin for the follower, ``collectors`` switched on beside the defaults.

    The margin: vcsim 0.24 answers the first WaitForUpdatesEx after a long (paged) sync by
    re-collecting the whole filter once per change queued meanwhile; at 10,000 VMs on a
    loaded machine that took over 15 s, which the default margin (max_wait 5 s + 10 s)
    calls a hung vCenter, and the exporter resynced in a loop. A real vCenter sends
    per-object changes; the wider margin keeps the simulator's cost from measuring a hang."""
    return bench_config(
        sim,
        tmp,
        port,
        sync={"max_wait_seconds": 5, "hung_margin_seconds": 120},
        performance={"enabled": True},
        collectors=collectors,
    )


def exporter_process(tmp: Path, port: int, data: dict[str, Any]) -> Process:
    """The exporter on ``data`` (written to ``tmp``/config.yml), logging to
    ``tmp``/exporter.log, ready when its /readyz on ``port`` answers 200; not started."""
    (tmp / "config.yml").write_text(yaml.safe_dump(data))
    return Process(
        "exporter",
        [sys.executable, "-m", "vha.cli", "exporter", "--config", str(tmp / "config.yml")],
        tmp / "exporter.log",
        f"http://127.0.0.1:{port}/readyz",
    )


def run_size(name: str, flags: dict[str, Any], scrapes: int) -> dict[str, float]:
    print(f"\n== {name}: {flags}", flush=True)
    t0 = time.perf_counter()
    sim = Simulator(**flags)
    sim.start(timeout=600)
    sim_start = time.perf_counter() - t0
    inv = sim.inventory()
    n_hosts, n_vms = len(inv["hosts"]), len(inv["vms"])
    print(f"simulator: {n_hosts} hosts, {n_vms} VMs, started in {sim_start:.1f}s", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="vha-bench-"))
    port = free_port()
    data = bench_config(
        sim,
        tmp,
        port,
        sync={"max_wait_seconds": 5},
        # The exporter's own figures; bench/perf_bench.py measures it with counters on.
        performance={"enabled": PERF},
    )
    config = parse_config(data)
    exporter = exporter_process(tmp, port, data)
    out: dict[str, float] = {"hosts": n_hosts, "vms": n_vms}
    try:
        t0 = time.perf_counter()
        exporter.start(dict(os.environ))
        exporter.wait_ready(timeout=900)
        out["initial_sync_s"] = time.perf_counter() - t0
        url = f"http://127.0.0.1:{port}/metrics"
        latencies = []
        size = 0
        for _ in range(scrapes):
            seconds, body = scrape_seconds(url)
            latencies.append(seconds)
            size = len(body)
        out["metrics_p50_ms"] = pct(latencies, 0.5) * 1000
        out["metrics_p95_ms"] = pct(latencies, 0.95) * 1000
        out["metrics_mb"] = size / 1e6
        # Change -> visible: flip a host into maintenance and poll until it shows.
        changes = []
        for host in [h["name"] for h in inv["hosts"][:5]]:
            seconds, seen = host_change_seconds(sim, url, host, scrape_seconds, timeout=30)
            if not seen:
                raise RuntimeError(f"change on {host} not visible after 30s")
            changes.append(seconds)
        out["change_visible_p50_s"] = statistics.median(changes)
        out["change_visible_max_s"] = max(changes)
        out["exporter_peak_rss_mib"] = peak_rss_mib(exporter.pid or 0)
        floor = vcenter_update_latency(sim, config, [h["name"] for h in inv["hosts"][5:10]])
        out["sim_update_latency_p50_s"] = statistics.median(floor)
        out["exporter_share_of_change_p50_s"] = max(
            0.0, out["change_visible_p50_s"] - out["sim_update_latency_p50_s"]
        )
        polls = [polling_scrape(config) for _ in range(3)]
        out["polling_scrape_p50_s"] = statistics.median(polls)
        out["polling_over_incremental_ratio"] = out["polling_scrape_p50_s"] / (
            out["metrics_p50_ms"] / 1000
        )
    finally:
        exporter.stop()
        sim.close()
    for key, value in out.items():
        print(f"  {key:32s} {value:12.3f}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["small", "large"], choices=list(SIZES))
    parser.add_argument("--scrapes", type=int, default=20)
    parser.add_argument("--perf", action="store_true", help="also collect performance counters")
    args = parser.parse_args(argv)
    global PERF  # noqa: PLW0603 - a run-wide switch for run_size
    PERF = args.perf
    results = {name: run_size(name, SIZES[name], args.scrapes) for name in args.sizes}
    if "small" in results and "large" in results:
        s, lg = results["small"], results["large"]
        print("\n== large / small ratios")
        for key in (
            "initial_sync_s",
            "metrics_p50_ms",
            "exporter_peak_rss_mib",
            "polling_scrape_p50_s",
        ):
            print(f"  {key:32s} {lg[key] / s[key]:12.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
