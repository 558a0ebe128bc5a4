"""The 4-shard split of a family of cached members after one member's change: whole
against unit by unit (exporter/shard_groups.py). Figures only, never timed assertions.

In process, no simulator: a sensor-like family of ``--hosts`` members (one per host, 280
sensors each, ~50 KB of text: at 2,500 hosts ~125 MB, as the sensor families at vCenter's
maximum), or with ``--family vm`` a VM family of 1,024 block members of ``--vms`` / 1,024
VMs with ``--lines`` lines each (as the VM collector caches it: one block is what a host
failure changes), is packed as the renderer packs it (packing.py) and split into
``--total`` shards; then one member changes, the family is packed again (the patch's
piece) and split again, and the same for a member removed. Prints, per way: the wall and
this thread's CPU seconds of the split after each change, and the ratio.

    python -m bench.shard_split_bench [--hosts 2500] [--total 4] [--repeat 3]
    python -m bench.shard_split_bench --family vm [--vms 40000] [--lines 3]
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
from exporter.shard_groups import units
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


def block_member(b: int, vms: int, lines: int, salt: str = "") -> bytes:
    """One block of a VM family (``vms`` VMs of ``lines`` lines each), as one gzip member."""
    text = "".join(
        f'vsphere_vm_connection_state{{vcenter="bench",vm_id="vm-{b}-{i}",vm="VM{b}_{i}",'
        f'cluster="DC0_C{b % 10}",host="DC0_C{b % 10}_H{i % 16}",state="s{j}{salt}"}} '
        f"{int(j == 0)}\n"
        for i in range(vms)
        for j in range(lines)
    )
    return gzip_member(text.encode())


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
    parser.add_argument("--family", choices=("sensor", "vm"), default="sensor")
    parser.add_argument("--vms", type=int, default=40000)
    parser.add_argument("--lines", type=int, default=3, help="lines per VM (--family vm)")
    args = parser.parse_args(argv)
    renderer = Renderer(parse_config({}), [])
    per_block = max(1, args.vms // 1024)

    def member(i: int, salt: str = "") -> bytes:
        if args.family == "vm":
            return block_member(i, per_block, args.lines, salt)
        return host_member(i, salt)

    members = [member(i) for i in range(1024 if args.family == "vm" else args.hosts)]
    first = piece_of(renderer, members)
    what = f"{args.vms} VMs x {args.lines} lines" if args.family == "vm" else f"{args.hosts} hosts"
    print(
        f"== {what}: {first.size / 1e6:.1f} MB of text in {len(members)} members, "
        f"{len(first.built_gzip() or b'') / 1e6:.1f} MB gzip, "
        f"{len(units(members))} units; {args.total} shards",
        flush=True,
    )
    split_wall, split_cpu = timed(
        lambda: [first.shard(i, args.total, gzipped=True) for i in range(args.total)]
    )
    print(
        f"  first split (unit by unit, nothing to reuse): {split_wall:.2f} s, CPU {split_cpu:.2f} s"
    )
    by_unit = sum(len(first.shard(i, args.total, gzipped=True)) for i in range(args.total))
    whole_bytes = sum(len(m) for m in split_members(first.iter_plain(), args.total) or [])
    print(
        f"  the shards' gzip bytes: {by_unit / 1e6:.2f} MB unit by unit, "
        f"{whole_bytes / 1e6:.2f} MB split whole ({by_unit / whole_bytes:.2f}x)"
    )
    keep = [first]  # the body still served holds the piece before (and its split)
    rows: dict[str, list[tuple[float, float]]] = {"whole": [], "units": []}
    for r in range(args.repeat):
        for edit in ("change", "remove"):
            if edit == "change":
                members[(r * 97) % len(members)] = member(r, f"x{r}")
            else:
                del members[(r * 53 + 11) % len(members)]
            piece = piece_of(renderer, members)
            whole = timed(lambda p=piece: split_members(p.iter_plain(), args.total))
            by_unit = timed(
                lambda p=piece: [p.shard(i, args.total, gzipped=True) for i in range(args.total)]
            )
            rows["whole"].append(whole)
            rows["units"].append(by_unit)
            keep.append(piece)
            if r == 0 and edit == "change":  # the same bytes, whichever way
                mine = [
                    gzip.decompress(piece.shard(i, args.total, gzipped=True))
                    for i in range(args.total)
                ]
                assert mine == split_lines(piece.plain, args.total)
    for way, label in (("whole", "whole family (split_members)"), ("units", "unit by unit")):
        walls = [w for w, _ in rows[way]]
        cpus = [c for _, c in rows[way]]
        print(
            f"  after one member changed or removed, {label}: wall median "
            f"{statistics.median(walls) * 1000:.0f} ms (max {max(walls) * 1000:.0f}), CPU "
            f"median {statistics.median(cpus) * 1000:.0f} ms"
        )
    ratio = statistics.median(c for _, c in rows["whole"]) / max(
        statistics.median(c for _, c in rows["units"]), 1e-9
    )
    print(f"  CPU ratio whole / unit by unit: {ratio:.0f}x", flush=True)


if __name__ == "__main__":
    main()
