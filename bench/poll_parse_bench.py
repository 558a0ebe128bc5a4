"""The poll's page parse: the scanner (exporter/poll_scan.py) against the XML parser.

Figures only, never timed assertions. The pages of one real poll of a simulator in
real-vCenter mode (``RetrievePropertiesEx`` of every polled property, in pages of the
poller's ``maxObjects``, 1,000 objects), each read both ways in this process, checked
equal: milliseconds per page and per 1,000 objects, the ratio, and how many pages the
scanner declined (read by the XML parser whole) or read partly by it (an object with a
data object: a cluster's ``summary``).

    python -m bench.poll_parse_bench [--size large|small] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from exporter.perf_soap import SoapSession
from exporter.poll_scan import scan_page
from exporter.poll_soap import _object, continue_body, parse_page_xml, retrieve_body
from exporter.poller import POLLED
from exporter.sync import create_follow_filter
from sim.harness import Simulator
from vcenter.properties import PAGE_OBJECTS, view_filter_spec

from .exporter_bench import SIZES


def pages(sim: Simulator) -> list[bytes]:
    """The raw pages of one poll of every polled property."""
    from pyVim.connect import Disconnect, SmartConnect  # noqa: PLC0415

    si = SmartConnect(**sim.connection_kwargs())
    soap = SoapSession(
        si, host=sim.host, port=sim.port, path="/sdk", context=sim.ssl_context(), timeout=120
    )
    try:
        content = si.RetrieveContent()
        _, view = create_follow_filter(content)
        pc = content.propertyCollector
        body = soap.post(retrieve_body(pc, view_filter_spec(view, POLLED), PAGE_OBJECTS))
        out = []
        while True:
            out.append(body)
            token = parse_page_xml(body, POLLED)[0]
            if not token:
                return out
            body = soap.post(continue_body(str(pc._moId), token))  # noqa: SLF001
    finally:
        soap.close()
        Disconnect(si)


def timed(fn: Any, bodies: list[bytes], repeat: int) -> float:
    """Best of ``repeat`` CPU seconds for reading every page."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        for body in bodies:
            fn(body)
        best = min(best, time.process_time() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="large", choices=list(SIZES))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    sim = Simulator(**SIZES[args.size], real_vcenter=True, paging=True)
    sim.start(timeout=900)
    try:
        bodies = pages(sim)
    finally:
        sim.stop()
    objects = declined = partial = 0
    for body in bodies:
        xml = parse_page_xml(body, POLLED)
        scanned = scan_page(body, POLLED, _object)
        if scanned is None:
            declined += 1
        elif scanned != xml:
            raise SystemExit("the scanner and the XML parser disagree on a page")
        elif b"ClusterComputeResourceSummary" in body:
            partial += 1
        objects += len(xml[1])
    xml_s = timed(lambda b: parse_page_xml(b, POLLED), bodies, args.repeat)
    scan_s = timed(lambda b: scan_page(b, POLLED, _object), bodies, args.repeat)
    n = len(bodies)
    print(f"== {args.size}: {n} pages, {objects} objects, {sum(map(len, bodies)) / 1e6:.1f} MB")
    print(f"  pages_declined                  {declined}")
    print(f"  pages_with_a_data_object        {partial}")
    for name, s in (("xml", xml_s), ("scan", scan_s)):
        print(f"  {name}_ms_per_page{' ' * (16 - len(name))}{1000 * s / n:8.3f}")
        print(f"  {name}_ms_per_1000_objects{' ' * (8 - len(name))}{1e6 * s / objects:8.3f}")
    print(f"  xml_over_scan                   {xml_s / scan_s:8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
