"""docs/metrics.md and the exporter agree: every family rendered is documented and back."""

from __future__ import annotations

import re
from pathlib import Path

from exporter.alarms import AlarmSnapshot, AlarmState
from exporter.licenses import License, LicenseSnapshot
from exporter.properties_extra import SENSORS
from exporter.render import Renderer
from exporter.snapshot_sizes import SnapshotSizes
from exporter.tagging import TagSnapshot
from vcenter.config import parse_config

from .test_inventory import _image

DOC = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"
# Sections served by other sources than the inventory collectors, checked by their own tests
# (tests/test_perf.py).
OTHER_SOURCES = {"Performance counters", "Cost"}


def catalogue() -> set[str]:
    names = set()
    section = ""
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        if section in OTHER_SOURCES:
            continue
        m = re.match(r"\|\s*`(vsphere_[a-z0-9_]+)`\s*\|", line)
        if m:
            names.add(m.group(1))
    return names


def rendered() -> set[str]:
    inv = _image()
    inv.tags = TagSnapshot(ok=True, attachments={m: (("Env", "prod"),) for m in inv.objects})
    for obj in inv.objects.values():  # breadth properties the base image lacks
        if obj.type == "HostSystem":
            obj.props[SENSORS] = (("Inlet Temp", "temperature", "green", 24.0, "celsius"),)
    alarm = AlarmState("HostSystem", "host-1", "alarm-1", "red", acknowledged=False)
    lic = License("1ESXP", "vSphere Enterprise Plus", "esx.enterprisePlus", "cpuPackage", 8, 4, 1e9)
    inv.licenses = LicenseSnapshot(ok=True, licenses=(lic,))
    inv.alarms = AlarmSnapshot(ok=True, states=(alarm,), names={"alarm-1": "Host down"})
    vm = next(o for o in inv.objects.values() if o.type == "VirtualMachine")
    vm.props["snapshot"] = {"count": 1.0, "oldest": 1e9}
    inv.snapshot_sizes = SnapshotSizes(ok=True, sizes=((vm.moid, 2.0**30),))
    on = {"enabled": True}
    config = parse_config({"collectors": {"guest_disks": on, "custom_attributes": on}})
    body = Renderer(config, [inv]).render_now().decode()
    return {m.group(1) for m in re.finditer(r"^# TYPE (vsphere_\w+) ", body, re.M)}


def test_every_rendered_family_is_documented_and_every_documented_one_rendered() -> None:
    docs, code = catalogue(), rendered()
    assert code - docs == set(), f"undocumented metrics: {sorted(code - docs)}"
    assert docs - code == set(), f"documented but never rendered: {sorted(docs - code)}"
