"""The parse worker's QueryPerf scanner (exporter/perf_scan.py) against the XML parser.

The scanner must give exactly what ElementTree + perf.metric_entries give for every answer
it accepts, and decline (None, so the worker parses the XML) any answer not in the one
shape it reads, rather than read it wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pyVim.connect import Disconnect, SmartConnect

from exporter.perf import metric_entries
from exporter.perf_scan import scan_entries
from exporter.perf_soap import metric_ids_xml, parse_response, request_body
from exporter.perf_worker import parse_and_convert
from sim.harness import Simulator

from .test_perf_zeros import _counter_ids, _raw_query_perf

NAMES = {i: f"counter{i}" for i in range(1, 1000)}


def _xml_way(body: bytes, names: dict[int, str] = NAMES) -> list[Any]:
    return list(metric_entries(parse_response(body), names))


def _answer(*returnvals: str, prefix: str = "xsi") -> bytes:
    """A QueryPerfResponse as vCenter writes one (``xsi:type``), around ``returnvals``."""
    head = (
        '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
        'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:{prefix}="http://www.w3.org/2001/XMLSchema-instance">'
        '<soapenv:Body><QueryPerfResponse xmlns="urn:vim25">'
    )
    return (
        head + "".join(returnvals) + "</QueryPerfResponse></soapenv:Body></soapenv:Envelope>"
    ).encode()


def _entity(moid: str, series: str, kind: str = "VirtualMachine", interval: str = "20") -> str:
    info = (
        "<sampleInfo><timestamp>2026-12-02T10:00:00Z</timestamp>"
        f"<interval>{interval}</interval></sampleInfo>"
    )
    return (
        f'<returnval xsi:type="PerfEntityMetric"><entity type="{kind}">{moid}</entity>'
        f"{info}{series}</returnval>"
    )


def _series(counter: int, instance: str | None, *values: str) -> str:
    inst = "<instance/>" if instance is None else f"<instance>{instance}</instance>"
    samples = "".join(f"<value>{v}</value>" for v in values)
    return (
        f'<value xsi:type="PerfMetricIntSeries"><id><counterId>{counter}</counterId>{inst}</id>'
        f"{samples}</value>"
    )


def test_shapes_vcenter_writes_read_as_the_xml_parser_reads_them() -> None:
    body = _answer(
        _entity(
            "vm-1",
            _series(2, "", "1632")
            + _series(6, None, "7")  # <instance/>
            + _series(7, "naa.6000&amp;1", "1", "2", "3")  # an escaped instance, 3 samples
            + _series(8, "", "-1")  # vCenter's "no value"
            + _series(9, "")  # no sample at all
            + _series(5000, "", "4")  # a counter the exporter did not ask for
            + _series(10, "vmnic0", "12.5"),
        ),
        _entity("host-7", _series(2, "", "99"), kind="HostSystem", interval="0"),
        _entity("vm-2", ""),  # an entity without series
    )
    scanned = scan_entries(body, NAMES)
    assert scanned == _xml_way(body)
    assert scanned is not None
    assert scanned[0] == (
        "vm-1",
        20.0,
        {
            "counter2": {"": 1632.0},
            "counter6": {"": 7.0},
            "counter7": {"naa.6000&1": 3.0},
            "counter10": {"vmnic0": 12.5},
        },
    )
    assert scanned[1] == ("host-7", 20.0, {"counter2": {"": 99.0}})  # interval 0 reads as 20


def test_the_csv_format_reads_its_newest_sample() -> None:
    body = _answer(_entity("vm-1", _series(2, "", "1,2,3")))
    assert scan_entries(body, NAMES) == _xml_way(body) == [("vm-1", 20.0, {"counter2": {"": 3.0}})]


@pytest.mark.parametrize(
    "body",
    [
        # pretty-printed: whitespace between the elements
        _answer(_entity("vm-1", _series(2, "", "5"))).replace(b"</counterId>", b"</counterId>\n  "),
        # a prefix on the vim elements
        _answer(_entity("vm-1", _series(2, "", "5")))
        .replace(b"<counterId>", b"<vim:counterId>")
        .replace(b"</counterId>", b"</vim:counterId>")
        .replace(b'xmlns="urn:vim25"', b'xmlns="urn:vim25" xmlns:vim="urn:vim25"'),
        # a prefixed interval (read short it would be the default 20 s)
        _answer(_entity("vm-1", _series(2, "", "5"), interval="300"))
        .replace(b"<interval>", b"<vim:interval>")
        .replace(b"</interval>", b"</vim:interval>")
        .replace(b'xmlns="urn:vim25"', b'xmlns="urn:vim25" xmlns:vim="urn:vim25"'),
        # a numeric character reference (Go's encoding/xml writes &#34; for a quote)
        _answer(_entity("vm-1", _series(2, "a&#34;b", "5"))),
        # a CDATA section
        _answer(_entity("vm-1", _series(2, "<![CDATA[x]]>", "5"))),
    ],
    ids=["whitespace", "prefixed", "prefixed-interval", "char-ref", "cdata"],
)
def test_an_answer_in_another_shape_is_left_to_the_xml_parser(body: bytes) -> None:
    assert scan_entries(body, NAMES) is None
    # ... which reads it, and the worker gives the same samples either way
    instance = "x" if b"CDATA" in body else 'a"b' if b"&#34;" in body else ""
    compact = _answer(_entity("vm-1", _series(2, instance.replace('"', "&quot;"), "5")))
    targets = [("vm", "vm-1", "vm1", 2)]
    keys = ["cpu.usage.average"]
    assert (
        parse_and_convert(body, targets, NAMES, keys)[1]
        == parse_and_convert(compact, targets, NAMES, keys)[1]
    )


def test_numbers_that_are_not_and_series_without_entity_are_declined() -> None:
    assert scan_entries(_answer(_entity("vm-1", _series(2, "", "n/a"))), NAMES) is None
    lone = _answer(_series(2, "", "5"))
    assert scan_entries(lone, NAMES) is None


def test_the_simulators_answers_scan_as_they_parse(
    sim_factory: Callable[..., Simulator],
) -> None:
    """Every counter the exporter asks of hosts and VMs, on the simulator's real answer
    (its ``XMLSchema-instance:type`` prefix, datastore and NIC instances, zeros)."""
    qsim = sim_factory(clusters=1, hosts=3, vms=6)
    si = SmartConnect(**qsim.connection_kwargs())
    try:
        content = si.RetrieveContent()
        pm = content.perfManager
        ids = _counter_ids(si)
        names = {v: k for k, v in ids.items()}
        view = content.viewManager.CreateContainerView(content.rootFolder, [], True)
        specs = []
        for obj in view.view:
            kind = obj._wsdlName  # noqa: SLF001
            if kind in ("VirtualMachine", "HostSystem"):
                available = pm.QueryAvailablePerfMetric(entity=obj, intervalId=20)
                wanted = [(m.counterId, m.instance) for m in available]
                specs.append((kind, obj._moId, metric_ids_xml(wanted)))  # noqa: SLF001
        view.Destroy()
        body = _raw_query_perf(si, qsim, request_body(pm._moId, specs, 20))  # noqa: SLF001
    finally:
        Disconnect(si)
    scanned = scan_entries(body, names)
    assert scanned is not None, body[:2000]
    assert len(scanned) == 9
    assert scanned == _xml_way(body, names)
    assert sum(len(instances) for _m, _i, raw in scanned for instances in raw.values()) > 100
