"""The 4-shard split of a group-packed family after one host's change: whole against group
by group (exporter/shard_groups.py). Figures only, never timed assertions.

In process, no simulator: a sensor-like family of ``--hosts`` members (one per host, 280
sensors each, ~50 KB of text: at 2,500 hosts ~125 MB, as the sensor families at vCenter's
maximum) is packed as the renderer packs it (packing.py) and split into ``--total``
shards; then one host's member changes, the family is packed again (the patch's piece)
and split again, and the same for a host removed. Prints, per way: the wall and this
thread's CPU seconds of the split after each change, and the ratio.

    python -m bench.shard_split_bench [--hosts 2500] [--total 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import time
from collections.abc import Callable

from exporter.exposition import Piece, gzip_member, split_lines, split_members
from exporter.families import Family
from exporter.render import Renderer
from vcenter.config import parse_config

NAME = "vsphere_host_sensor_reading"


def host_member(i: int, salt: str = "") -> bytes:
    """One host's sensor lines (280 sensors, ~50 KB of text), as one gzip member."""
    lines = "".join(
        f'{NAME}{{vcenter="bench",host_id="host-{i}",host="esx-{i:05d}.bench.local",'
        f'sensor="Sensor {j}{salt}",type="temperature",unit="degrees C",'
        f'sensor_id="0.{j}.{i % 7}"}} {(i * 31 + j) % 97}.{j % 10}\n'
        for j in range(280)
    )
    return gzip_member(lines.encode())


def piece_of(renderer: Renderer, members: list[bytes]) -> Piece:
    fam = Family(NAME, "bench")
    fam.members = list(members)
    return renderer.family_piece(fam)


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.thread_time()
    fn()
    return time.perf_counter() - wall, time.thread_time() - cpu


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=2500)
    parser.add_argument("--total", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    renderer = Renderer(parse_config({}), [])
    members = [host_member(i) for i in range(args.hosts)]
    first = piece_of(renderer, members)
    groups = len(first._groups or ())  # noqa: SLF001 - the figure printed
    print(
        f"== {args.hosts} hosts: {first.size / 1e6:.1f} MB of text, "
        f"{len(first.built_gzip() or b'') / 1e6:.1f} MB gzip in {groups} groups; "
        f"{args.total} shards",
        flush=True,
    )
    split_wall, split_cpu = timed(
        lambda: [first.shard(i, args.total, gzipped=True) for i in range(args.total)]
    )
    print(
        f"  first split (group by group, nothing to reuse): {split_wall:.2f} s, "
        f"CPU {split_cpu:.2f} s"
    )
    keep = [first]  # the body still served holds the piece before (and its split)
    rows: dict[str, list[tuple[float, float]]] = {"whole": [], "groups": []}
    for r in range(args.repeat):
        for edit in ("change", "remove"):
            if edit == "change":
                members[(r * 97) % len(members)] = host_member(r, f"x{r}")
            else:
                del members[(r * 53 + 11) % len(members)]
            piece = piece_of(renderer, members)
            whole = timed(lambda p=piece: split_members(p.iter_plain(), args.total))
            grouped = timed(
                lambda p=piece: [p.shard(i, args.total, gzipped=True) for i in range(args.total)]
            )
            rows["whole"].append(whole)
            rows["groups"].append(grouped)
            keep.append(piece)
            if r == 0 and edit == "change":  # the same bytes, whichever way
                mine = [
                    gzip.decompress(piece.shard(i, args.total, gzipped=True))
                    for i in range(args.total)
                ]
                assert mine == split_lines(piece.plain, args.total)
    for way, label in (("whole", "whole family (split_members)"), ("groups", "group by group")):
        walls = [w for w, _ in rows[way]]
        cpus = [c for _, c in rows[way]]
        print(
            f"  after one host changed or removed, {label}: wall median "
            f"{statistics.median(walls) * 1000:.0f} ms (max {max(walls) * 1000:.0f}), CPU "
            f"median {statistics.median(cpus) * 1000:.0f} ms"
        )
    ratio = statistics.median(c for _, c in rows["whole"]) / max(
        statistics.median(c for _, c in rows["groups"]), 1e-9
    )
    print(f"  CPU ratio whole / group by group: {ratio:.0f}x", flush=True)


if __name__ == "__main__":
    main()
