"""The initial sync's page parse: the scanner (exporter/sync_scan.py) against the XML parser.

Figures only, never timed assertions. The pages of one real plain initial sync of a
simulator (``WaitForUpdatesEx`` paged at vCenter's 100 objects, every property the
exporter follows, the host sensors too), each read both ways in this process and checked
equal: CPU milliseconds per page and per 1,000 objects, for the pages mostly of hosts (a
host's sensors are ~40 KB of data objects, read by the XML parser either way) and the
others, and the ratio; and how many pages the scanner declined (read by the XML parser
whole).

    python -m bench.sync_parse_bench [--size large|small] [--repeat 3]
"""

from __future__ import annotations

import argparse
import threading
from collections import Counter

from exporter.inventory import Inventory
from exporter.sync import create_follow_filter
from exporter.sync_plain import PlainSync
from exporter.sync_scan import scan_updates
from exporter.sync_soap import _change, parse_updates_xml, scan_head
from sim.harness import Simulator

from .exporter_bench import SIZES
from .poll_parse_bench import timed
from .sync_bench import _config


def pages(sim: Simulator) -> list[bytes]:
    """The raw pages of one plain initial sync, as the follower reads them."""
    from pyVim.connect import Disconnect, SmartConnect  # noqa: PLC0415

    config = _config(sim, worker=False)
    si = SmartConnect(**sim.connection_kwargs())
    try:
        collector, _view = create_follow_filter(si.RetrieveContent())
        reader = PlainSync.open(config.vcenters[0], si, config.sync, threading.Event())
        assert reader is not None
        post, out = reader.session.post, []

        def kept(body: bytes) -> bytes:
            got = post(body)
            out.append(got)
            return got

        reader.session.post = kept  # type: ignore[method-assign]
        try:
            reader.run(collector, Inventory("vc1"))
        finally:
            reader.close()
        return out
    finally:
        Disconnect(si)


def scan(body: bytes) -> list[object] | None:
    head = scan_head(body)
    return None if head is None else scan_updates(body, _change)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="large", choices=list(SIZES))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    sim = Simulator(**SIZES[args.size], paging=True)
    sim.start(timeout=900)
    try:
        bodies = pages(sim)
    finally:
        sim.stop()
    groups: dict[str, list[bytes]] = {}
    objects: Counter[str] = Counter()
    declined = 0
    for body in bodies:
        xml = parse_updates_xml(body)
        if xml is None:
            continue
        scanned = scan(body)
        if scanned is None:
            declined += 1
        elif (xml[0], xml[1], scanned) != xml:
            raise SystemExit("the scanner and the XML parser disagree on a page")
        kinds = Counter(u[1] for u in xml[2])
        kind = "hosts" if kinds["HostSystem"] * 2 > sum(kinds.values()) else "vms_and_others"
        groups.setdefault(kind, []).append(body)
        objects[kind] += len(xml[2])
    print(
        f"== {args.size}: {len(bodies)} pages, {sum(objects.values())} objects, "
        f"{sum(map(len, bodies)) / 1e6:.1f} MB; pages declined {declined}"
    )
    xml_all = scan_all = 0.0
    for kind, group in sorted(groups.items()):
        xml_s = timed(parse_updates_xml, group, args.repeat)
        scan_s = timed(scan, group, args.repeat)
        xml_all, scan_all = xml_all + xml_s, scan_all + scan_s
        n = len(group)
        print(f"  {kind}: {n} pages, {objects[kind]} objects")
        for name, s in (("xml", xml_s), ("scan", scan_s)):
            print(f"    {name}_ms_per_page{' ' * (16 - len(name))}{1000 * s / n:8.2f}")
            per = 1e6 * s / objects[kind]
            print(f"    {name}_ms_per_1000_objects{' ' * (8 - len(name))}{per:8.2f}")
        print(f"    xml_over_scan                 {xml_s / scan_s:8.2f}")
    ratio = xml_all / scan_all
    print(f"  all pages: xml {xml_all:.2f} s, scan {scan_all:.2f} s, xml_over_scan {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
