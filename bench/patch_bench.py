"""What one host failure costs the detection lane (issue 15, item 2), stage by stage.

lag_bench times a change from outside (the exporter's stamp, through the simulator);
this runs the exporter in this process (every collector on, as ``scale_bench
--everything``, gzip and ``--shards`` shards asked, as Prometheus would), fails
``--changes`` hosts one by one through the simulator's fault API (the host and its VMs
change at once), and prints, for each patch the lane made, the CPU (``thread_time``) and
wall time of its stages: ``build_patch`` (the collectors over the changed objects, the
block-cached collectors of patch.PACKED each on its own line), and ``_prepare_patch``
(the gzip and shard variants of the patched body). ``--profile N`` writes a cProfile of
each patch (``pstats`` text of each failure's costliest patch, top 40 by cumulative time),
which inflates the figures: they are then for comparing stages, not for the target.

    python -m bench.patch_bench [--size max] [--changes 4] [--shards 4] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sim.harness import Simulator

from .memory_bench import config_for
from .scale_bench import SIZES, loadavg

Stage = tuple[str, float, float]  # name, CPU seconds, wall seconds


class Stages:
    """The stages timed on the detection lane's thread, per patch (patch_now call)."""

    def __init__(self) -> None:
        self.patches: list[list[Stage]] = []
        self.current: list[Stage] | None = None

    def wrap(self, owner: Any, attr: str, label: Callable[..., str] | str) -> None:
        real = getattr(owner, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread().name != "vha-patch" or self.current is None:
                return real(*args, **kwargs)
            cpu, wall = time.thread_time(), time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                name = label(*args, **kwargs) if callable(label) else label
                self.current.append((name, time.thread_time() - cpu, time.perf_counter() - wall))

        setattr(owner, attr, timed)


def instrument(stages: Stages, profile: bool, profiles: list[cProfile.Profile]) -> None:
    """Wrap the lane's stages (module attributes, looked up at each call)."""
    from exporter import exposition, patch, render  # noqa: PLC0415 - as the bench starts

    stages.wrap(render, "build_patch", "build_patch")  # render.py's name of it
    stages.wrap(patch, "_packed_patch", lambda _p, name, *_a: f"  packed {name}")
    stages.wrap(patch, "_objects_patch", "  _objects_patch (the packed above in it)")
    stages.wrap(render.Renderer, "_prepare_patch", "_prepare_patch")
    # The variants' pieces, by name: which families the gzip and shard preparation pays for
    # (a piece's gzip member, then its shard parts: built on the first call, then looked up).
    stages.wrap(exposition.Piece, "gzip", lambda piece: f"    gzip {piece.name}")
    stages.wrap(
        exposition.Piece, "shard", lambda piece, _i, total, **_k: f"    shards {piece.name}"
    )
    real = render.Renderer.patch_now

    def patch_now(self: Any) -> Any:
        if threading.current_thread().name != "vha-patch":
            return real(self)
        stages.current = []
        profiler = cProfile.Profile() if profile else None
        cpu, wall = time.thread_time(), time.perf_counter()
        try:
            if profiler is not None:
                return profiler.runcall(real, self)
            return real(self)
        finally:
            stages.current.append(
                ("patch_now", time.thread_time() - cpu, time.perf_counter() - wall)
            )
            stages.patches.append(stages.current)
            stages.current = None
            if profiler is not None:
                profiles.append(profiler)

    render.Renderer.patch_now = patch_now  # type: ignore[method-assign]


def summed(made: list[Stage], floor: float = 0.002) -> list[Stage]:
    """The stages in order, each name once (its calls summed); the pieces' lines only
    where they took at least ``floor`` seconds of CPU."""
    total: dict[str, list[float]] = {}
    for name, cpu, wall in made:
        row = total.setdefault(name, [0.0, 0.0])
        row[0] += cpu
        row[1] += wall
    return [
        (name, cpu, wall)
        for name, (cpu, wall) in total.items()
        if cpu >= floor or not name.startswith("    ")
    ]


def shown(exporter: Any, moid: str) -> bool:
    body = exporter.renderer._body  # noqa: SLF001 - a benchmark looks inside
    needle = f'host_id="{moid}",'.encode()
    for piece in body.pieces:
        if piece.name == "vsphere_host_connection_state":
            return any(
                needle in line and b'state="notResponding"} 1' in line
                for line in piece.plain.splitlines()
            )
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="max", choices=list(SIZES))
    parser.add_argument("--changes", type=int, default=4)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--profile", action="store_true", help="cProfile each patch")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="vha-patch-"))
    stages = Stages()
    profiles: list[cProfile.Profile] = []
    instrument(stages, args.profile, profiles)
    from exporter.app import Exporter  # noqa: PLC0415

    print(f"== patch stages: {args.size}, load {loadavg()}", flush=True)
    sim = Simulator(**SIZES[args.size], paging=True).start(timeout=1800)
    try:
        info = {
            "sdk_url": sim.sdk_url,
            "user": sim.username,
            "password": sim.password,
            "ca_file": sim.ca_file,
        }
        exporter = Exporter(config_for(info, tmp, sensors=True, perf=True, everything=True))
        t0 = time.perf_counter()
        exporter.start()
        while not exporter.ready():
            time.sleep(0.5)
        print(f"ready after {time.perf_counter() - t0:.1f}s", flush=True)
        renderer = exporter.renderer
        renderer.body(gzipped=True)  # as Prometheus asks
        if args.shards > 1:
            deadline = time.monotonic() + 600
            while True:  # the first ask of a total waits for the packer's split
                try:
                    renderer.body(gzipped=True, shard=(0, args.shards))
                    break
                except Exception:  # noqa: BLE001 - ShardPending, until the split is built
                    assert time.monotonic() < deadline, "the shards were never split"
                    time.sleep(1)
        time.sleep(10)  # the renders and packs after readiness
        hosts = [h for h in sim.inventory()["hosts"] if h["cluster"]][: args.changes]
        for host in hosts:
            first = len(stages.patches)
            sim.fail_host(host["name"])
            deadline = time.monotonic() + 120
            while not shown(exporter, host["moid"]):
                assert time.monotonic() < deadline, "the failure never showed"
                time.sleep(0.02)
            time.sleep(2)  # the rest of its patches
            print(f"  {host['name']} failed: load {loadavg()}")
            costs = [made[-1][1] for made in stages.patches[first:]]
            if args.profile and costs:
                text = io.StringIO()
                costliest = profiles[first + costs.index(max(costs))]
                pstats.Stats(costliest, stream=text).sort_stats("cumulative").print_stats(40)
                (tmp / f"profile-{host['name']}.txt").write_text(text.getvalue())
            for made in stages.patches[first:]:
                for name, cpu, wall in summed(made):
                    print(f"    {name:44s} CPU {cpu * 1e3:7.1f} ms  wall {wall * 1e3:7.1f} ms")
                print("    --")
            sim.recover_host(host["name"])
            time.sleep(5)
        if args.profile:
            print(f"profiles of each failure's costliest patch: {tmp}/profile-*.txt")
    finally:
        sim.close()
    sys.stdout.flush()
    os._exit(0)  # the exporter's daemon threads never hold the exit up


if __name__ == "__main__":
    raise SystemExit(main())
