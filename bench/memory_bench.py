"""Where the exporter's memory goes (issue 15 item 5): RSS per VM, and by what.

Runs the exporter in this process against a simulator (or one already running, given its
``--sim-json``), waits for the sync and ``--collections`` performance collections, then
prints RSS per VM, the largest allocation sites (``--trace``: tracemalloc, which slows the
run about threefold and adds its own overhead to RSS) and the live objects by type.

    python -m bench.memory_bench [--size 10k|small] [--trace] [--no-sensors] [--everything]
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import ctypes.util
import gc
import json
import os
import sys
import tempfile
import time
import tracemalloc
import types
from pathlib import Path
from typing import Any

from vcenter.config import parse_config

from .scale_bench import SIZES, loadavg


def rss_mib() -> tuple[float, float]:
    """(current, peak) RSS of this process in MiB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(rest.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def trim_heap() -> float | None:
    """glibc's ``malloc_trim(0)`` (free heap pages back to the system), then the RSS in
    MiB; None off glibc. Tells the live memory from what the allocator keeps after the
    transients of renders and collections."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        return None
    return rss_mib()[0]


_OPAQUE = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type(None))


def deep_size(root: Any, seen: set[int]) -> int:
    """Bytes reachable from ``root`` (``sys.getsizeof`` over ``gc.get_referents``), not
    counting what ``seen`` holds already (filled in: the first holder named is charged)
    nor classes, modules, functions and threads (shared machinery, not data)."""
    total = 0
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, _OPAQUE) or hasattr(obj, "_bootstrap"):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        stack.extend(gc.get_referents(obj))
    return total


def account(exporter: Any, vms: int) -> None:
    """Who holds the live bytes: the inventories' objects, each render cache entry, the
    published body's pieces (plain, gzip, shard parts), the counters; each charged once,
    in that order (a string the body and a cache share is the cache's)."""
    seen: set[int] = set()
    rows: list[tuple[str, int]] = []
    for inv in exporter.inventories:
        rows.append(("inventory objects", deep_size(inv.objects, seen)))
        for key, value in sorted(inv.render_cache.items()):
            rows.append((f"render_cache[{key!r}]", deep_size(value, seen)))
    body = exporter.renderer._body  # noqa: SLF001 - a benchmark looks inside
    pieces = body.pieces if body is not None else ()
    for attr in ("_plain", "_gzip", "_shards", "_packed"):
        rows.append((f"body pieces {attr}", sum(deep_size(getattr(p, attr), seen) for p in pieces)))
    for i, perf in enumerate(exporter.perf):  # before the renderer: its extra_sources
        rows.append((f"perf[{i}].samples", deep_size(perf.samples, seen)))
        rows.append((f"perf[{i}] (the rest)", deep_size(perf, seen)))
    renderer = exporter.renderer
    rows.append(("renderer.last_topologies", deep_size(renderer.last_topologies, seen)))
    rows.append(("renderer._ready bodies", deep_size(renderer._ready, seen)))  # noqa: SLF001
    rows.append(("renderer (the rest)", deep_size(renderer, seen)))
    rows.append(("exporter (the rest)", deep_size(exporter, seen)))
    props = [o.props for inv in exporter.inventories for o in inv.objects.values()]
    dicts = sum(sys.getsizeof(d) for d in props)
    by_type: collections.Counter[str] = collections.Counter()
    distinct: dict[tuple[type, Any], int] = {}
    ids: set[int] = set()
    for d in props:
        for v in d.values():
            if id(v) not in ids:
                ids.add(id(v))
                by_type[type(v).__name__] += sys.getsizeof(v)
                try:
                    distinct.setdefault((type(v), v), sys.getsizeof(v))
                except TypeError:  # a list or dict value: not shareable as it is
                    pass
    print(
        f"inventory props: {len(props)} dicts {dicts / 2**20:.1f} MiB; values by type (MiB) "
        + ", ".join(f"{k} {n / 2**20:.1f}" for k, n in by_type.most_common(6))
        + f"; the distinct hashable values would take {sum(distinct.values()) / 2**20:.1f} MiB"
    )
    print("held (sys.getsizeof, each object charged to its first holder):")
    for name, size in sorted(rows, key=lambda r: -r[1]):
        if size >= 1 << 18:
            print(f"  {size / 2**20:8.1f} MiB {size / max(vms, 1):8.0f} B/VM  {name}")


def config_for(
    info: dict[str, Any], tmp: Path, sensors: bool, perf: bool, everything: bool = False
) -> Any:
    """The exporter's configuration; ``everything``: every optional collector on, as
    ``scale_bench --everything`` sets them (issue 13's "with everything on")."""
    (tmp / "pw").write_text(info["password"])
    collectors: dict[str, Any] = {"host_sensors": {"enabled": sensors}}
    if everything:
        collectors.update(
            {"guest_disks": {"enabled": True}, "custom_attributes": {"enabled": True}}
        )
    return parse_config(
        {
            "listen": "127.0.0.1:0",
            "vcenters": [
                {
                    "name": "bench",
                    "url": info["sdk_url"],
                    "user": info["user"],
                    "password_file": str(tmp / "pw"),
                    "ca_file": info["ca_file"],
                }
            ],
            "fault_domains": {"custom_attribute": "HA-FaultDomain"},
            "sync": {"max_wait_seconds": 5, "hung_margin_seconds": 120},
            "performance": {"enabled": perf},
            "collectors": collectors,
        }
    )


def measure(config: Any, collections_wanted: int, trace: bool, top: int) -> None:
    from exporter.app import Exporter  # noqa: PLC0415 - after tracemalloc.start()

    exporter = Exporter(config)
    t0 = time.perf_counter()
    exporter.start()
    try:
        while not exporter.ready():
            time.sleep(0.5)
        print(f"ready after {time.perf_counter() - t0:.1f}s, RSS {rss_mib()[0]:.0f} MiB")
        exporter.renderer.body(gzipped=True)  # as Prometheus asks: gzip members built
        for perf in exporter.perf:
            while perf.collections_total < collections_wanted:
                time.sleep(0.5)
        time.sleep(3)  # the render and pack after the last collection
        exporter.renderer.body(gzipped=True)
        time.sleep(2)
        gc.collect()
        vms = sum(inv.counts()["vm"] for inv in exporter.inventories)
        rss, peak = rss_mib()
        body = exporter.renderer._body  # noqa: SLF001 - a benchmark looks inside
        plain = body.size if body is not None else 0
        packed = sum(len(p._gzip or b"") for p in body.pieces) if body is not None else 0  # noqa: SLF001
        print(
            f"{vms} VMs: RSS {rss:.0f} MiB ({rss * 1024 / max(vms, 1):.1f} KiB/VM), peak "
            f"{peak:.0f} MiB; body {plain / 1e6:.1f} MB plain, {packed / 1e6:.1f} MB gzip; "
            f"load {loadavg()}"
        )
        if body is not None:  # the largest families: two bodies compare family by family
            big = sorted(body.pieces, key=lambda p: -p.size)[:6]
            print("  largest:", ", ".join(f"{p.name} {p.size / 1e6:.1f} MB" for p in big))
            print(f"  {len(body.pieces)} families")
        renderer = exporter.renderer
        for _ in range(2):
            built, t1 = renderer.families_rendered_total, time.perf_counter()
            renderer.render_now()
            print(
                f"a full render, no object changed: {time.perf_counter() - t1:.2f} s, "
                f"{renderer.families_rendered_total - built} families built; RSS peak "
                f"{rss_mib()[1]:.0f} MiB"
            )
        built_names = sorted(getattr(renderer, "last_built", ()))
        print(f"  built: {', '.join(n.removeprefix('vsphere_') for n in built_names)}")
        trimmed = trim_heap()
        if trimmed is not None:
            print(
                f"after malloc_trim(0): RSS {trimmed:.0f} MiB "
                f"({trimmed * 1024 / max(vms, 1):.1f} KiB/VM; {rss - trimmed:.0f} MiB was free "
                "heap glibc had kept)"
            )
        counts = collections.Counter(type(o).__name__ for o in gc.get_objects())
        print("live objects (gc-tracked) by type:", counts.most_common(12))
        if trace:
            snap = tracemalloc.take_snapshot()
            stats = snap.statistics("lineno")
            total = sum(s.size for s in stats)
            print(f"tracemalloc: {total / 2**20:.0f} MiB traced; top {top}:")
            for stat in stats[:top]:
                frame = stat.traceback[0]
                print(
                    f"  {stat.size / 2**20:8.1f} MiB {stat.count:9d} blocks "
                    f"{frame.filename.split('/work/wt/')[-1]}:{frame.lineno}"
                )
    finally:
        exporter.stop()
    # After stop: walking referents while a render builds a tuple in another thread made
    # that render fail (CPython's tuple resize needs the only reference).
    account(exporter, sum(inv.counts()["vm"] for inv in exporter.inventories))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="10k", choices=list(SIZES))
    parser.add_argument("--sim-json", help="a running simulator's connection info (JSON)")
    parser.add_argument("--collections", type=int, default=2)
    parser.add_argument("--trace", action="store_true")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--no-sensors", action="store_true")
    parser.add_argument("--no-perf", action="store_true")
    parser.add_argument("--everything", action="store_true", help="every optional collector")
    args = parser.parse_args(argv)
    if args.trace:
        tracemalloc.start()
    print(f"== memory: {args.size}, load {loadavg()}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="vha-mem-"))
    sim = None
    if args.sim_json:
        info = json.loads(Path(args.sim_json).read_text())
    else:
        from sim.harness import Simulator  # noqa: PLC0415

        sim = Simulator(**SIZES[args.size], paging=True).start(timeout=1800)
        info = {
            "sdk_url": sim.sdk_url,
            "user": sim.username,
            "password": sim.password,
            "ca_file": sim.ca_file,
        }
    try:
        config = config_for(info, tmp, not args.no_sensors, not args.no_perf, args.everything)
        measure(config, 0 if args.no_perf else args.collections, args.trace, args.top)
    finally:
        if sim is not None:
            sim.close()
    sys.stdout.flush()
    os._exit(0)  # the exporter's daemon threads (a hung login) never hold the exit up


if __name__ == "__main__":
    raise SystemExit(main())
