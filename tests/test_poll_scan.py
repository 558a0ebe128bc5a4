"""The poll's pages read by the scanner (exporter/poll_scan.py) come out exactly as the XML
parser reads them, or the scanner declines and the XML parser reads them (the simulator's
own pages: tests/test_poll_soap.py)."""

from __future__ import annotations

import pytest

from exporter.inventory import PROPERTIES, expand, plain_path
from exporter.poll_scan import scan_page
from exporter.poll_soap import _object, parse_page, parse_page_xml
from exporter.poller import POLLED
from exporter.properties_extra import EXTRA_CONVERTERS

HEAD = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
    b' xmlns:xsd="http://www.w3.org/2001/XMLSchema"'
    b' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
    b'<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval>'
)
TAIL = b"</returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"
SIM_VAL = (  # govmomi's simulator declares the prefix on each val
    b'<val xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance"'
    b' XMLSchema-instance:type="%s">%s</val>'
)


def prop(name: bytes, xsi: bytes, text: bytes, sim: bool = False) -> bytes:
    val = SIM_VAL % (xsi, text) if sim else b'<val xsi:type="%s">%s</val>' % (xsi, text)
    return b"<propSet><name>" + name + b"</name>" + val + b"</propSet>"


def obj(type_name: bytes, moid: bytes, *props: bytes) -> bytes:
    return (
        b'<objects><obj type="'
        + type_name
        + b'">'
        + moid
        + b"</obj>"
        + b"".join(props)
        + b"</objects>"
    )


HOST = obj(
    b"HostSystem",
    b"host-1",
    prop(b"overallStatus", b"ManagedEntityStatus", b"yellow"),
    prop(b"summary.quickStats.overallCpuUsage", b"xsd:int", b"7"),
)
VM = obj(
    b"VirtualMachine",
    b"vm-1",
    prop(b"summary.quickStats.overallCpuUsage", b"xsd:int", b"150", sim=True),
    prop(b"summary.quickStats.guestMemoryUsage", b"xsd:long", b"1024", sim=True),
)
CLUSTER = (
    b'<objects><obj type="ClusterComputeResource">domain-c1</obj><propSet><name>summary</name>'
    b'<val xsi:type="ClusterComputeResourceSummary"><totalCpu>100</totalCpu>'
    b"<totalMemory>2048</totalMemory><effectiveCpu>90</effectiveCpu>"
    b"<effectiveMemory>1</effectiveMemory></val></propSet>"
    + prop(b"overallStatus", b"ManagedEntityStatus", b"green")
    + b"</objects>"
)


def test_a_page_of_scalars_reads_as_the_xml_parser_reads_it() -> None:
    body = HEAD + b"<token>t-1</token>" + HOST + VM + TAIL
    scanned = scan_page(body, POLLED, _object)
    assert scanned is not None
    assert scanned == parse_page_xml(body, POLLED)
    token, rows, missing = scanned
    assert token == "t-1" and not missing
    assert rows[1] == (
        "VirtualMachine",
        "vm-1",
        {
            "summary.quickStats.overallCpuUsage": 150,
            "summary.quickStats.guestMemoryUsage": 1024,
            "summary.quickStats.hostMemoryUsage": None,
        },
    )


def test_an_object_with_a_data_object_is_read_by_the_xml_parser_in_place() -> None:
    body = HEAD + HOST + CLUSTER + VM + TAIL
    scanned = scan_page(body, POLLED, _object)
    assert scanned is not None
    assert scanned == parse_page_xml(body, POLLED)
    assert [row[1] for row in scanned[1]] == ["host-1", "domain-c1", "vm-1"]
    assert scanned[1][1][2]["summary"]["total_cpu_hz"] == 100e6


def test_entities_in_text_are_unescaped() -> None:
    body = (
        HEAD
        + obj(b"HostSystem", b"host-&amp;1", prop(b"overallStatus", b"xsd:string", b"a&lt;b"))
        + TAIL
    )
    scanned = scan_page(body, POLLED, _object)
    assert scanned is not None and scanned == parse_page_xml(body, POLLED)
    assert scanned[1][0][1] == "host-&1" and scanned[1][0][2]["overallStatus"] == "a<b"


@pytest.mark.parametrize(
    "body",
    [
        HEAD + HOST.replace(b"<obj ", b"\n<obj ") + TAIL,  # whitespace between elements
        HEAD.replace(b'xmlns="urn:vim25"', b'xmlns:vim="urn:vim25"')
        + HOST.replace(b"<objects>", b"<vim:objects>").replace(b"</objects>", b"</vim:objects>")
        + TAIL,  # a prefix on the vim elements
        HEAD + HOST.replace(b"yellow", b"yel&#108;ow") + TAIL,  # a character reference
        HEAD + HOST.replace(b"7", b"<![CDATA[7]]>") + TAIL,
        HEAD + HOST.replace(b">7<", b">seven<") + TAIL,  # not a number
        HEAD + HOST.replace(b"yellow", b"yel\r\nlow") + TAIL,  # the parser reads \n alone
        HEAD
        + HOST.replace(
            b"</objects>",
            b'<missingSet><path>overallStatus</path><fault><fault xsi:type="NoPermission"/>'
            b"<localizedMessage>no</localizedMessage></fault></missingSet></objects>",
        )
        + TAIL,
    ],
)
def test_a_page_in_another_shape_is_declined_and_parsed_as_xml(body: bytes) -> None:
    assert scan_page(body, POLLED, _object) is None
    try:
        expected = parse_page_xml(body, POLLED)
    except ValueError:
        with pytest.raises(ValueError):
            parse_page(body, POLLED)
        return
    assert parse_page(body, POLLED) == expected


def test_an_empty_answer_is_declined() -> None:
    body = HEAD.replace(b"<returnval>", b"") + TAIL.replace(b"</returnval>", b"")
    assert scan_page(body, POLLED, _object) is None
    assert parse_page(body, POLLED) == (None, [], [])


def test_a_plain_path_keeps_a_scalar_as_it_is() -> None:
    """What the scanner stores without :func:`expand`: every path for which expand is the
    identity on scalars, and none it converts (a converter added for a polled path without
    listing it would fail here: expand would not give back the scalar)."""
    paths = {p for paths in PROPERTIES.values() for p in paths}
    for path in sorted(paths):
        if plain_path(path):
            for scalar in (5, 1.5, True, "x"):
                assert expand(path, scalar) == [(path, scalar)], path
    assert not plain_path("summary") and not plain_path("runtime.dasHostState")
    assert all(not plain_path(p) for p in EXTRA_CONVERTERS)
