"""The initial sync's pages read by the scanner (exporter/sync_scan.py) come out exactly as
the XML parser reads them, or the scanner declines and the XML parser reads them (the
simulator's own pages, paged: tests/test_sync_soap.py)."""

from __future__ import annotations

from typing import NoReturn

import pytest

from exporter.sync_scan import scan_updates
from exporter.sync_soap import _change, parse_updates, parse_updates_xml, scan_head

HEAD = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
    b' xmlns:xsd="http://www.w3.org/2001/XMLSchema"'
    b' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
    b'<WaitForUpdatesExResponse xmlns="urn:vim25"><returnval><version>7</version>'
    b'<filterSet><filter type="PropertyFilter">session[1]2</filter>'
)
TAIL = (
    b"</filterSet><truncated>true</truncated></returnval></WaitForUpdatesExResponse>"
    b"</soapenv:Body></soapenv:Envelope>"
)
SIM_VAL = (  # govmomi's simulator declares the prefix on each val
    b'<val xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance"'
    b" XMLSchema-instance:type=%s>%s</val>"
)


def change(name: bytes, xsi: bytes | None, text: bytes = b"", sim: bool = False) -> bytes:
    """A changeSet; ``xsi`` None: no value (unset). ``xsi`` is the attribute's quoted value
    and may carry more attributes (a reference's type)."""
    if xsi is None:
        val = b""
    else:
        val = SIM_VAL % (xsi, text) if sim else b"<val xsi:type=" + xsi + b">" + text + b"</val>"
    return b"<changeSet><name>" + name + b"</name><op>assign</op>" + val + b"</changeSet>"


def update(type_name: bytes, moid: bytes, *changes: bytes, kind: bytes = b"enter") -> bytes:
    return (
        b"<objectSet><kind>"
        + kind
        + b'</kind><obj type="'
        + type_name
        + b'">'
        + moid
        + b"</obj>"
        + b"".join(changes)
        + b"</objectSet>"
    )


VM = update(
    b"VirtualMachine",
    b"vm-1",
    change(b"name", b'"xsd:string"', b"web-01", sim=True),
    change(b"runtime.powerState", b'"VirtualMachinePowerState"', b"poweredOn", sim=True),
    change(b"summary.config.numCpu", b'"xsd:int"', b"4", sim=True),
    change(b"summary.storage.committed", b'"xsd:long"', b"1099511627776"),
    change(b"config.template", b'"xsd:boolean"', b"false"),
    change(b"runtime.bootTime", b'"xsd:dateTime"', b"2026-12-03T17:03:55.703187Z", sim=True),
    change(b"runtime.host", b'"ManagedObjectReference" type="HostSystem"', b"host-9", sim=True),
    change(b"snapshot", None),
)
DISKS = change(
    b"guest.disk",
    b'"ArrayOfGuestDiskInfo"',
    b"<GuestDiskInfo><diskPath>/</diskPath><capacity>100</capacity><freeSpace>40</freeSpace>"
    b"</GuestDiskInfo>",  # one element: an array only by its declared type
    sim=True,
)
DAS = change(
    b"runtime.dasHostState",
    b'"ClusterDasFdmHostState"',
    b'<state>master</state><stateReporter type="HostSystem">host-2</stateReporter>',
)
HOST = update(
    b"HostSystem",
    b"host-1",
    change(b"name", b'"xsd:string"', b"esx-01"),
    DAS,
    change(b"runtime.inMaintenanceMode", b'"xsd:boolean"', b"true"),
    change(b"summary.hardware.numCpuCores", b'"xsd:short"', b"24"),
    kind=b"modify",
)


def scanned(body: bytes) -> tuple[str, bool, list[object]] | None:
    head = scan_head(body)
    assert head is not None
    got = scan_updates(body, _change)
    return None if got is None else (head[0], head[1], got)


def test_a_page_of_scalars_reads_as_the_xml_parser_reads_it() -> None:
    body = HEAD + VM + TAIL
    page = scanned(body)
    assert page is not None and page == parse_updates_xml(body)
    version, truncated, updates = page
    assert (version, truncated) == ("7", True)
    kind, type_name, moid, changes = updates[0]  # type: ignore[misc]
    assert (kind, type_name, moid) == ("enter", "VirtualMachine", "vm-1")
    values = {path: value for _op, path, value in changes}
    assert values["summary.config.numCpu"] == 4 and values["config.template"] is False
    assert values["runtime.host"] == "host-9" and values["snapshot"] is None
    assert isinstance(values["runtime.bootTime"], float)


def test_values_that_are_not_one_scalar_are_read_by_the_xml_parser_in_place() -> None:
    vm = VM.replace(
        b"</objectSet>", DISKS + change(b"name", b'"xsd:string"', b"x") + b"</objectSet>"
    )
    body = HEAD + vm + HOST + update(b"VirtualMachine", b"vm-2", kind=b"leave") + TAIL
    page = scanned(body)
    assert page is not None and page == parse_updates_xml(body)
    updates = page[2]
    assert [u[2] for u in updates] == ["vm-1", "host-1", "vm-2"]  # type: ignore[index]
    vm_paths = [path for _op, path, _v in updates[0][3]]  # type: ignore[index]
    assert vm_paths[-2:] == ["guest.disk", "name"]  # in document order
    host = {path: value for _op, path, value in updates[1][3]}  # type: ignore[index]
    assert host["runtime.dasHostState"] == "master"
    assert host["runtime.dasHostState.stateReporter"] == "host-2"
    assert updates[0][3][-2][2] == (("/", 100.0, 40.0),)  # type: ignore[index]


def test_a_name_read_as_a_scalar_and_as_a_data_object_in_one_object() -> None:
    """The data object is the second changeSet of its name: the first, unset, is passed over
    when the scanner finds the element the parser must read."""
    vm = update(b"VirtualMachine", b"vm-1", change(b"guest.disk", None), DISKS)
    body = HEAD + vm + TAIL
    page = scanned(body)
    assert page is not None and page == parse_updates_xml(body)
    assert [v for _o, _p, v in page[2][0][3]] == [None, (("/", 100.0, 40.0),)]  # type: ignore[index]


def test_an_empty_array_closed_by_the_pattern_is_read_by_the_xml_parser() -> None:
    """``<val xsi:type="ArrayOf..."></val>`` looks like a scalar to the pattern; it is found
    and read as the parser reads it (an empty list), past a same-named unset value."""
    empty = change(b"guest.disk", b'"ArrayOfGuestDiskInfo"', sim=True)
    vm = update(b"VirtualMachine", b"vm-1", change(b"guest.disk", None), empty, DISKS)
    body = HEAD + vm + TAIL
    page = scanned(body)
    assert page is not None and page == parse_updates_xml(body)
    assert [v for _o, _p, v in page[2][0][3]] == [None, (), (("/", 100.0, 40.0),)]  # type: ignore[index]


def sensor(name: bytes, rest: bytes, health: bytes = b"green") -> bytes:
    return (
        b"<HostNumericSensorInfo><name>" + name + b"</name>"
        b'<healthState XMLSchema-instance:type="ElementDescription"><label>L</label>'
        b"<summary>S</summary><key>"
        + health
        + b"</key></healthState>"
        + rest
        + b"</HostNumericSensorInfo>"
    )


SENSORS_CHANGE = change(
    b"runtime.healthSystemRuntime.systemHealthInfo.numericSensorInfo",
    b'"ArrayOfHostNumericSensorInfo"',
    sensor(
        b"Fan &amp; 1",
        b"<currentReading>4200</currentReading><unitModifier>0</unitModifier>"
        b"<baseUnits>RPM</baseUnits><sensorType>fan</sensorType>",
    )
    + sensor(
        b"Temp",
        b"<currentReading>4050</currentReading><unitModifier>-2</unitModifier>"
        b"<baseUnits>Degrees C</baseUnits><sensorType>temperature</sensorType><id>7</id>"
        b"<sensorNumber>12</sensorNumber><timeStamp>t</timeStamp>",
        b"yellow",
    )
    + sensor(
        b"Rollup",
        b"<currentReading>0</currentReading><unitModifier>0</unitModifier>"
        b"<baseUnits></baseUnits><rateUnits>per second</rateUnits>",
    ),
    sim=True,
)


def test_a_hosts_sensors_are_read_by_a_pattern_of_their_own() -> None:
    """Half a 10,000-VM sync's bytes; read as the XML parser reads them, converted alike."""
    body = HEAD + update(b"HostSystem", b"host-1", SENSORS_CHANGE) + TAIL
    page = scanned(body)
    assert page is not None and page == parse_updates_xml(body)

    def refused(element: object) -> NoReturn:
        raise AssertionError("read by the XML parser")

    assert scan_updates(body, refused) == page[2]
    ((_op, _path, readings),) = page[2][0][3]  # type: ignore[index, misc]
    assert readings[0] == ("Fan & 1", "fan", "green", 4200.0, "rpm")
    assert readings[1][2:4] == ("yellow", 40.5) and readings[2][3] is None


@pytest.mark.parametrize(
    "odd",
    [
        b"<fru><name>x</name></fru>",  # a field the pattern does not read
        b"<sensorType>fan</sensorType><baseUnits>RPM</baseUnits>",  # out of order
        b"\n",  # whitespace between the sensors
    ],
)
def test_sensors_in_another_shape_are_read_by_the_xml_parser(odd: bytes) -> None:
    changed = SENSORS_CHANGE.replace(
        b"</HostNumericSensorInfo>", odd + b"</HostNumericSensorInfo>", 1
    )
    body = HEAD + update(b"HostSystem", b"host-1", changed) + TAIL
    page = scanned(body)
    assert page is not None and page == parse_updates_xml(body)


def test_a_last_sensor_in_another_shape_sends_the_value_to_the_xml_parser() -> None:
    odd = sensor(b"Odd", b"<currentReading>1</currentReading><unitModifier>0</unitModifier><fru/>")
    changed = SENSORS_CHANGE.replace(b"</val>", odd + b"</val>")
    body = HEAD + update(b"HostSystem", b"host-1", changed) + TAIL
    page = scanned(body)
    assert page is not None and page == parse_updates_xml(body)
    assert len(page[2][0][3][0][2]) == 4  # type: ignore[index]


def test_entities_in_text_are_unescaped() -> None:
    vm = update(b"VirtualMachine", b"vm-&amp;1", change(b"name", b'"xsd:string"', b"a&lt;b&quot;"))
    page = scanned(HEAD + vm + TAIL)
    assert page is not None and page == parse_updates_xml(HEAD + vm + TAIL)
    assert page[2][0][2] == "vm-&1" and page[2][0][3] == [("assign", "name", 'a<b"')]  # type: ignore[index]


NESTED = change(  # a data object holding an element named changeSet
    b"guest.disk",
    b'"ArrayOfGuestDiskInfo"',
    b"<GuestDiskInfo><diskPath>/</diskPath><changeSet><name>x</name><op>assign</op>"
    b"</changeSet></GuestDiskInfo>",
)


@pytest.mark.parametrize(
    "body",
    [
        HEAD + VM.replace(b"<obj ", b"\n<obj ") + TAIL,  # whitespace between elements
        HEAD.replace(b'xmlns="urn:vim25"', b'xmlns:vim="urn:vim25"')
        + VM.replace(b"<changeSet>", b"<vim:changeSet>").replace(
            b"</changeSet>", b"</vim:changeSet>"
        )
        + TAIL.replace(b"</returnval>", b"</returnval>"),  # a prefix on the vim elements
        HEAD + VM.replace(b"web-01", b"web&#45;01") + TAIL,  # a character reference
        HEAD + VM.replace(b"web-01", b"<![CDATA[web-01]]>") + TAIL,
        HEAD + VM.replace(b"web-01", b"web\r\n01") + TAIL,  # the parser reads \n alone
        HEAD + VM.replace(b">4<", b">four<") + TAIL,  # not a number
        HEAD + VM.replace(b"2026-12-03T", b"yesterday ") + TAIL,  # not a date
        HEAD
        + VM.replace(
            b"</objectSet>",
            b'<missingSet><path>guest.disk</path><fault><fault xsi:type="NoPermission"/>'
            b"<localizedMessage>no</localizedMessage></fault></missingSet></objectSet>",
        )
        + TAIL,
        HEAD + VM.replace(b"</objectSet>", NESTED + b"</objectSet>") + TAIL,
    ],
)
def test_a_page_in_another_shape_is_declined_and_parsed_as_xml(body: bytes) -> None:
    assert scanned(body) is None
    try:
        expected = parse_updates_xml(body)
    except ValueError:
        with pytest.raises(ValueError):
            parse_updates(body)
        return
    assert parse_updates(body) == expected


def test_an_answer_with_no_update_set_is_none_both_ways() -> None:
    body = (
        HEAD.split(b"<returnval>")[0]
        + b"</WaitForUpdatesExResponse></soapenv:Body></soapenv:Envelope>"
    )
    assert scan_head(body) is None
    assert parse_updates(body) is None and parse_updates_xml(body) is None
