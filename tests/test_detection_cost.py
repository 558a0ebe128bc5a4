"""A change costs the detection lane what changed, not the families around it (issue 15,
item 2).

At 10,000 VMs a host maintenance flip took 0.6 s to reach /metrics: the lane decompressed
every VM family (an empty change list still read the piece) and the ~100 MB sensor
family (to splice the host's unchanged lines), and a host whose sensors changed had the
whole sensor family compressed again.  Counted here by what is read and compressed, never
by time.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from typing import Any

import pytest

from exporter.app import EXPORTER, create_app
from exporter.exposition import Piece, gzip_member, member_size
from exporter.packing import UnitPacker
from exporter.shard_groups import UNIT, units

from .exporter_fixtures import exporter_config, sim_vcenter, wait_for
from .metrics_helpers import Sample, parse, select, value

# The families of cached members a host's flip leaves alone (its VMs' and the sensors').
OTHERS = ("vsphere_vm_", "vsphere_host_sensor_status", "vsphere_host_sensor_value")


class PlainReads:
    """The names of the pieces whose bytes the detection lane's thread read."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.names: list[str] = []
        real = Piece.plain.fget  # type: ignore[attr-defined]

        def spy(piece: Piece) -> bytes:
            if threading.current_thread().name == "vha-patch":
                self.names.append(piece.name)
            return real(piece)  # type: ignore[no-any-return]

        monkeypatch.setattr(Piece, "plain", property(spy))

    def others(self) -> list[str]:
        """Reads of the VM and sensor families, but for the VMs' heartbeat timestamps: a
        few lines per VM, no members, rendered whole with a VM's change (a host's
        disconnection changes its VMs), and new with every heartbeat round anyway."""
        return [
            n for n in self.names if n.startswith(OTHERS) and not n.endswith("_timestamp_seconds")
        ]


def _sensor_lines(samples: list[Sample], host: str) -> int:
    return len(select(samples, "vsphere_host_sensor_status", host=host))


async def test_a_host_change_reads_no_family_of_other_objects(
    sim: Any, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await aiohttp_client(create_app(exporter_config(sim_vcenter(sim))))
    samples, _ = await wait_for(
        client, lambda s: value(s, "vsphere_up", vcenter="vc1") == 1, timeout=30
    )
    renderer = client.server.app[EXPORTER].renderer
    await client.get("/metrics", headers={"Accept-Encoding": "gzip"})  # Prometheus's way
    host = sim.inventory()["hosts"][0]["name"]
    assert _sensor_lines(samples, host) > 0
    reads = PlainReads(monkeypatch)
    patches = renderer.patches_total
    sim.set_host(host, inMaintenanceMode=True)
    await wait_for(client, lambda s: value(s, "vsphere_host_maintenance_mode", host=host) == 1, 20)
    assert renderer.patches_total > patches
    assert reads.others() == [], reads.names  # the VM and sensor families: not read
    # A disconnected host's sensors are no longer claimed: its sensor family changes, and
    # is rebuilt from the members, not by reading it and splicing the host out.
    sim.set_host(host, connectionState="disconnected")
    samples, _ = await wait_for(client, lambda s: _sensor_lines(s, host) == 0, 20)
    assert reads.others() == [], reads.names
    full = parse(renderer.render_now().decode())
    name = "vsphere_host_sensor_status"
    assert sorted(map(repr, select(samples, name))) == sorted(map(repr, select(full, name)))


def _members(n: int, salt: str = "") -> list[bytes]:
    """``n`` members of ~100 KB of text each, as a host's sensor lines are."""
    return [gzip_member(f'm{{id="{i}{salt}"}} 1\n'.encode() * 6000) for i in range(n)]


def test_one_changed_member_recompresses_only_its_unit() -> None:
    """Of a 1,000-member family (the sensor family at 1,000 hosts, ~100 MB of text), one
    member changed, removed or added costs the unit(s) around it, and the body is still
    the members' text, in one gzip member (aiohttp's client refuses more than 1,024 in a
    body)."""
    head = b"# HELP m x\n# TYPE m gauge\n"
    members = _members(1000)
    packer = UnitPacker()
    first, size = packer.pack("m", head, members)
    total = sum(map(member_size, members))
    assert size == len(head) + total
    assert packer.units_packed == len(units(members))
    assert gzip.decompress(first) == head + b"".join(zlib.decompress(m, 31) for m in members)
    for edit in ("change", "remove", "add"):
        if edit == "change":
            members[500] = _members(1, "x")[0]
        elif edit == "remove":
            del members[300]
        else:
            members.insert(700, _members(1, "new")[0])
        before = packer.units_packed
        body, _ = packer.pack("m", head, members)
        # a removed member's unit goes (here a member is a unit: ~100 KB of text)
        assert (edit != "remove") <= packer.units_packed - before <= 2, edit
        inflater = zlib.decompressobj(31)
        text = inflater.decompress(body)
        assert inflater.eof and not inflater.unused_data  # one member
        assert text == head + b"".join(zlib.decompress(m, 31) for m in members)
    assert len(units(members)) <= 2 * total // UNIT + 1
