"""A full render costs only what changed (issue 15 item 5, issue 13): the per-object
collectors hand the renderer their previous families when none of their objects changed,
so the renderer neither re-joins nor re-encodes them; a changed object is rendered again,
alone; and a plain scrape of a body kept as gzip members only is streamed, never a whole
decompressed copy."""

from __future__ import annotations

import gc
import hashlib
import random
import tracemalloc
import zlib
from typing import Any

import pytest

from exporter import exposition
from exporter.collectors import hardware, vms
from exporter.collectors.cache import block_key, block_of
from exporter.exposition import Piece
from exporter.families import Family
from exporter.inventory import Inventory, ManagedObject
from exporter.properties_extra import SENSORS
from exporter.render import Body, Renderer
from exporter.tagging import TagSnapshot
from vcenter.config import parse_config

from .test_inventory import _image

# Families whose values are timings or counts of the renders: they differ between any two.
TIMINGS = (
    "vsphere_scrape_duration_seconds",
    "vsphere_exporter_renders_total",
    "vsphere_scrape_collector_duration_seconds",
    "vsphere_render_lag_seconds",
    "vsphere_render_last_lag_seconds",
)


def _stable(text: str) -> str:
    return "".join(
        line
        for line in text.splitlines(keepends=True)
        if not (line.split()[2] if line.startswith("# ") else line).startswith(TIMINGS)
    )


def _estate(vm_count: int = 30, hosts: int = 1) -> Inventory:
    """The test image plus ``vm_count`` VMs spread over its host and ``hosts - 1`` more
    like it, sensors on the hosts."""
    inv = _image()
    host = next(o for o in inv.objects.values() if o.type == "HostSystem")
    for j in range(1, hosts):
        moid = f"host-x{j}"
        props = dict(host.props, name=f"esx-x{j}.example")
        inv.objects[moid] = ManagedObject(moid, "HostSystem", props)
    placed = [host.moid, *(f"host-x{j}" for j in range(1, hosts))]
    for obj in list(inv.objects.values()):
        if obj.type == "HostSystem":
            props = dict(obj.props)
            props["runtime.connectionState"] = "connected"
            props[SENSORS] = (
                ("Fan 1A", "fan", "green", 8400.0, "rpm"),
                ("Inlet Temp", "temperature", "green", 24.0, "celsius"),
            )
            inv.objects[obj.moid] = ManagedObject(obj.moid, obj.type, props)
    for i in range(vm_count):
        moid = f"vm-x{i}"
        inv.objects[moid] = ManagedObject(
            moid,
            "VirtualMachine",
            {
                "name": f"app{i}",
                "runtime.host": placed[i % hosts],
                "runtime.powerState": "poweredOn",
                "runtime.connectionState": "connected",
                "guestHeartbeatStatus": "green",
                "summary.config.numCpu": 2,
            },
        )
    inv.up = inv.synced = True
    return inv


def _fresh_text(inv: Inventory, config: Any) -> str:
    """What a render with every cache empty gives (the inventory's caches left alone)."""
    saved, inv.render_cache = inv.render_cache, {}
    try:
        return _stable(Renderer(config, [inv]).render_now().decode())
    finally:
        inv.render_cache = saved


def _pieces(body: Body) -> dict[str, Piece]:
    return {p.name: p for p in body.pieces}


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Calls of the per-VM and per-host render functions, by moid."""
    calls: dict[str, list[str]] = {"vm": [], "host": []}
    real_vm, real_host = vms._render_vm, hardware._render_host

    def vm(ctx: Any, obj: ManagedObject, *rest: Any) -> Any:
        calls["vm"].append(obj.moid)
        return real_vm(ctx, obj, *rest)

    def host(ctx: Any, obj: ManagedObject, *rest: Any) -> Any:
        calls["host"].append(obj.moid)
        return real_host(ctx, obj, *rest)

    monkeypatch.setattr(vms, "_render_vm", vm)
    monkeypatch.setattr(hardware, "_render_host", host)
    return calls


def test_a_render_without_vm_changes_reuses_the_vm_families(
    counted: dict[str, list[str]],
) -> None:
    inv = _estate()
    config = parse_config({})
    renderer = Renderer(config, [inv])
    first = renderer.render_now()
    assert len(counted["vm"]) >= 30
    counted["vm"].clear()
    inv.mark_alive()  # a heartbeat round: the timestamp families change, no VM does
    second = renderer.render_now()
    assert counted["vm"] == []
    before, after = _pieces(first), _pieces(second)
    for name in ("vsphere_vm_info", "vsphere_vm_power_state", "vsphere_vm_cpu_count"):
        assert after[name] is before[name], name  # neither joined nor encoded again
    # Of the VM families only the heartbeat timestamps were built (their values changed);
    # the 20 others were neither joined nor encoded, nor were the host sensors.
    built = renderer.last_built
    assert {n for n in built if n.startswith("vsphere_vm_")} <= {
        "vsphere_vm_guest_heartbeat_last_green_timestamp_seconds",
        "vsphere_vm_app_heartbeat_last_green_timestamp_seconds",
    }, built
    assert not {n for n in built if n.startswith("vsphere_host_sensor")}
    assert _stable(second.decode()) == _fresh_text(inv, config)


def test_a_changed_vm_is_rendered_again_alone(counted: dict[str, list[str]]) -> None:
    inv = _estate(hosts=30)
    config = parse_config({})
    renderer = Renderer(config, [inv])
    first = renderer.render_now()
    counted["vm"].clear()
    vm = inv.objects["vm-x3"]
    props = dict(vm.props, **{"runtime.powerState": "poweredOff"})
    inv.objects[vm.moid] = ManagedObject(vm.moid, vm.type, props)
    second = renderer.render_now()
    # with the VMs of its block (cached together): those of hosts sharing its block
    assert "vm-x3" in counted["vm"] and len(counted["vm"]) <= 3
    assert {block_of(block_key(inv.objects[m])) for m in counted["vm"]} == {block_of(block_key(vm))}
    assert _pieces(second)["vsphere_vm_power_state"] is not _pieces(first)["vsphere_vm_power_state"]
    assert 'vm="app3",state="poweredOff"} 1' in second.decode()
    assert _stable(second.decode()) == _fresh_text(inv, config)


def test_a_quickstats_poll_renders_only_the_vms_polled_families(
    counted: dict[str, list[str]],
) -> None:
    """Every poll changes every VM's quickStats (vCenter never announces them): the VMs'
    17 other families, tools versions and custom attributes are not rendered again for
    it (at 40,000 VMs that was most of the exporter's CPU), the 3 quickStats families
    are, and the body is what a fresh render gives."""
    inv = _estate(hosts=30)
    config = parse_config({"collectors": {"custom_attributes": {"enabled": True}}})
    renderer = Renderer(config, [inv])
    first = renderer.render_now()
    counted["vm"].clear()
    rows = [
        ("VirtualMachine", f"vm-x{i}", {"summary.quickStats.overallCpuUsage": 100 + i})
        for i in range(30)
    ]
    assert inv.apply_polled(rows) == 30
    second = renderer.render_now()
    assert counted["vm"] == []  # no VM's followed families rendered again
    before, after = _pieces(first), _pieces(second)
    for name in ("vsphere_vm_info", "vsphere_vm_power_state", "vsphere_vm_tools_version_status"):
        assert after[name] is before[name], name
    assert after["vsphere_vm_cpu_usage_hertz"] is not before["vsphere_vm_cpu_usage_hertz"]
    assert 'vsphere_vm_cpu_usage_hertz{vcenter="vc1",vm_id="vm-x3",vm="app3"} 103000000\n' in (
        second.decode()
    )
    assert _stable(second.decode()) == _fresh_text(inv, config)
    # a followed change after the poll still renders that VM again, alone
    counted["vm"].clear()  # the fresh render's
    vm = inv.objects["vm-x5"]
    inv.apply([("modify", vm.type, vm.moid, [("assign", "runtime.powerState", "poweredOff")])])
    third = renderer.render_now()
    assert "vm-x5" in counted["vm"] and len(counted["vm"]) <= 3  # and its block's
    assert 'vm="app5",state="poweredOff"} 1' in third.decode()
    assert _stable(third.decode()) == _fresh_text(inv, config)


def test_a_host_change_that_is_not_hardware_keeps_its_sensor_lines(
    counted: dict[str, list[str]],
) -> None:
    """A poll's quickStats bump a host's revision on every poll; its sensor lines (~100
    KB per host on real hardware) depend on none of it, so they are neither rendered nor
    the ~100 MB family re-joined."""
    inv = _estate()
    config = parse_config({})
    renderer = Renderer(config, [inv])
    first = renderer.render_now()
    counted["host"].clear()
    host = next(o for o in inv.objects.values() if o.type == "HostSystem")
    props = dict(host.props, **{"summary.quickStats.overallCpuUsage": 1234})
    inv.objects[host.moid] = ManagedObject(host.moid, host.type, props)
    second = renderer.render_now()
    assert counted["host"] == []
    sensors = "vsphere_host_sensor_status"
    assert _pieces(second)[sensors] is _pieces(first)[sensors]
    assert _stable(second.decode()) == _fresh_text(inv, config)
    # ...while a sensor's change is rendered (that host alone)
    changed = dict(props)
    changed[SENSORS] = (("Fan 1A", "fan", "red", 0.0, "rpm"),)
    inv.objects[host.moid] = ManagedObject(host.moid, host.type, changed)
    counted["host"].clear()  # the fresh render above rendered it too
    third = renderer.render_now()
    assert counted["host"] == [host.moid]
    assert 'sensor="Fan 1A",type="fan",status="red"} 1' in third.decode()
    assert _stable(third.decode()) == _fresh_text(inv, config)


def _text(size: int, seed: int) -> bytes:
    """Exposition-like text of about ``size`` bytes that compresses like a body does."""
    rng = random.Random(seed)
    lines, n = [], 0
    while n < size:
        line = f'm{{vcenter="vc",vm_id="vm-{rng.randrange(10**6)}"}} {rng.random()}\n'.encode()
        lines.append(line)
        n += len(line)
    return b"".join(lines)


def test_a_plain_scrape_of_a_gzip_only_body_is_streamed() -> None:
    """Once gzip is served only the members are kept; a plain scrape (curl) decompresses
    them block by block as it writes, never the whole body at once (which was another
    copy of a 135 MB body per plain scrape)."""
    pieces = [Piece(f"f{i}", _text(4 << 20, i)) for i in range(3)]
    want = b"".join(p.plain for p in pieces)
    for piece in pieces:
        piece.gzip()
        piece.release_plain()
    stream = exposition.chunks(pieces, gzipped=False)
    assert stream.length == len(want)
    digest = hashlib.sha256()
    gc.collect()
    tracemalloc.start()
    try:
        for block in stream:
            assert len(block) <= exposition.STREAM_BLOCK
            digest.update(block)
            del block
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest.digest() == hashlib.sha256(want).digest()
    assert peak < 3 * exposition.STREAM_BLOCK, peak  # the body is 12 MB


def test_a_plain_scrape_of_a_gzip_only_body_gives_the_same_bytes() -> None:
    pieces = [Piece(f"f{i}", _text(300_000 * (i + 1), i)) for i in range(3)]
    pieces.append(Piece("empty", b""))
    want = b"".join(p.plain for p in pieces)
    for piece in pieces[:2]:  # one piece still has its plain bytes
        piece.gzip()
        piece.release_plain()
    stream = exposition.chunks(pieces, gzipped=False)
    assert stream.length == len(want)
    assert b"".join(stream) == want
    assert b"".join(stream) == want  # iterable again (a retried write)


def test_families_handed_back_unchanged_are_not_mutated() -> None:
    """The renderer recognises a family by identity and line count: a collector handing
    back its previous family must hand it back whole (a copy of the list, same objects)."""
    inv = _estate()
    config = parse_config({})
    renderer = Renderer(config, [inv])
    renderer.render_now()
    fams: list[Family] = inv.render_cache["vm_families"][1]
    sizes = [len(f.lines) for f in fams]
    renderer.render_now()
    assert [len(f.lines) for f in fams] == sizes


def test_a_large_family_is_encoded_without_a_second_copy() -> None:
    """Joining and encoding a family held it two or three times over (a str, the header's
    concatenation, its bytes): ~300 MB for the 100 MB host sensor family. Built block by
    block it costs about its own bytes."""
    big = Family("vsphere_big", "A large family; é in the help.")
    for i in range(200_000):
        big.add(f'vcenter="vc",host_id="host-{i}",sensor="Fan {i} ü"', i)
    want = big.render().encode()
    assert big.encode() == want
    renderer = Renderer(parse_config({}), [], extra_sources=[lambda: [big]])
    gc.collect()
    tracemalloc.start()
    try:
        body = renderer.render_now()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert {p.name: p for p in body.pieces}["vsphere_big"].plain == want
    assert peak < 1.4 * len(want), (peak, len(want))


def test_a_splice_into_a_large_family_costs_only_the_new_bytes() -> None:
    """A host's change spliced into the ~100 MB sensor family: the parts between the
    changed runs are views of the old bytes, not copies (a third copy of the family)."""
    from exporter.patch import splice  # noqa: PLC0415

    fam = Family("m", "x")
    for i in range(100_000):
        fam.add(f'vcenter="v",host_id="host-{i}",sensor="s"', i)
    plain = fam.encode()
    key = b'vcenter="v",host_id="host-500"'
    gc.collect()
    tracemalloc.start()
    try:
        out = splice(plain, b"m", {key: b"m{" + key + b',sensor="s"} 123456789\n'})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.count(b"} 123456789\n") == 1
    assert len(out) == len(plain) - len(b"500") + len(b"123456789")
    assert peak < 1.4 * len(plain), (peak, len(plain))


def test_host_sensor_lines_are_cached_compressed() -> None:
    """The sensor text cached per host was the largest thing the exporter held (74 MiB of
    252 traced at 1,000 hosts): kept as each host's gzip member, it costs a few percent of
    that, the body is the same, and the family's gzip member is made of the hosts'
    members (a host's change compresses that host, not the ~100 MB family)."""
    import gzip as gz  # noqa: PLC0415

    inv = _estate(vm_count=2)
    host = next(o for o in inv.objects.values() if o.type == "HostSystem")
    sensors = tuple(
        (f"Sensor {i}", "temperature", "green" if i % 7 else "red", 20.0 + i, "celsius")
        for i in range(300)
    )
    inv.objects[host.moid] = ManagedObject(
        host.moid, host.type, dict(host.props, **{SENSORS: sensors})
    )
    config = parse_config({})
    renderer = Renderer(config, [inv])
    body = renderer.render_now()
    piece = _pieces(body)["vsphere_host_sensor_status"]
    assert piece.size > 100_000
    cached = sum(
        len(part) for _key, parts in inv.render_cache["hardware"].values() for part in parts
    )
    assert cached < piece.size / 5, (cached, piece.size)
    assert gz.decompress(piece.gzip()) == piece.plain
    plain = piece.plain
    piece.release_plain()  # gzip only, as once Prometheus scraped: every member is read
    assert piece.plain == plain
    assert b"".join(exposition.chunks([piece], gzipped=False)) == plain
    assert b"".join(piece.iter_plain(block=1000)) == plain
    assert 'sensor="Sensor 7",type="temperature",status="red"} 1' in body.decode()
    assert _stable(body.decode()) == _fresh_text(inv, config)


def test_a_render_lets_go_of_the_families_nobody_keeps() -> None:
    """The renderer recognises an unchanged family by identity, but must not keep every
    family of the last render alive for that: the text of the families built afresh on
    each render (hosts, clusters, tags, timestamps) was 28 MiB held between renders at
    10,000 VMs, beside the body that already has it."""
    import weakref  # noqa: PLC0415

    made: list[weakref.ref[Family]] = []
    kept = Family("vsphere_kept", "A family its source keeps and hands out again.")
    kept.add('vcenter="vc"', 1)

    def source() -> list[Family]:
        fresh = Family("vsphere_fresh", "A family built afresh each time.")
        fresh.add('vcenter="vc"', len(made))
        made.append(weakref.ref(fresh))
        return [fresh, kept]

    renderer = Renderer(parse_config({}), [], extra_sources=[source])
    first = renderer.render_now()
    gc.collect()
    assert made[0]() is None  # built afresh, not kept by the renderer
    second = renderer.render_now()
    assert _pieces(second)["vsphere_kept"] is _pieces(first)["vsphere_kept"]
    assert "vsphere_kept" not in renderer.last_built
    assert b"vsphere_fresh" in b"".join(second)


def test_sensor_names_are_shared_across_hosts() -> None:
    """1,000 hosts of one model report the same ~100 sensor names, types and units: each
    converted once, not once per host and poll (5 MiB of duplicates at 1,000 hosts)."""
    from types import SimpleNamespace  # noqa: PLC0415

    from exporter.inventory import convert  # noqa: PLC0415

    def reading(host: int) -> Any:
        return [
            SimpleNamespace(
                name="".join(["System Board 1 ", "Inlet Temp"]),  # a new str each time
                sensorType="".join(["tempe", "rature"]),
                healthState=SimpleNamespace(key="".join(["Gre", "en"])),
                baseUnits="".join(["degrees ", "C"]),
                currentReading=2400 + host,
                unitModifier=-2,
                rateUnits=None,
            )
        ]

    (a,), (b,) = convert(SENSORS, reading(1)), convert(SENSORS, reading(2))
    assert a[0] == b[0] == "System Board 1 Inlet Temp"
    for i in (0, 1, 2, 4):
        assert a[i] is b[i], a[i]
    assert a[3] != b[3]


def test_a_gzip_only_piece_of_many_members_is_decompressed_once_over() -> None:
    """Reading a released piece's bytes (a patch splicing a host's change into the sensor
    family) costs its bytes once, not a list of its members' bytes and their join."""
    members = [exposition.gzip_member(_text(20_000, i)) for i in range(200)]
    want = b"".join(_text(20_000, i) for i in range(200))
    piece = Piece("m", want, gzip=b"".join(members))
    piece.release_plain()
    gc.collect()
    tracemalloc.start()
    try:
        got = piece.plain
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got == want
    assert peak < 1.4 * len(want), (peak, len(want))


def test_a_family_of_cached_members_is_never_decompressed_whole_by_a_render() -> None:
    """The sensor family re-joined after one host's change: its piece is its members
    compressed again unit by unit into one member (packing.UnitPacker), its size read
    from their trailers and its digest taken block by block, so a full render never
    holds its ~100 MB of text (250 MB at the maximum of 2,500 hosts)."""
    fam = Family("vsphere_host_sensor_status", "Sensors.")
    fam.add('vcenter="vc",host_id="host-0",sensor="a",status="green"', 1)
    texts = [_text(50_000, i) for i in range(200)]  # 10 MB
    fam.members = [exposition.gzip_member(t) for t in texts]
    want = fam.header().encode() + "".join(fam.lines).encode() + b"".join(texts)
    renderer = Renderer(parse_config({}), [], extra_sources=[lambda: [fam]])
    compressed = sum(map(len, fam.members))
    gc.collect()
    tracemalloc.start()
    try:
        body = renderer.render_now()
        piece = _pieces(body)["vsphere_host_sensor_status"]
        assert piece.size == len(want)
        _ = piece.digest
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The members and the piece's group members (exposition.MAX_MEMBERS), never
    # the text whole (this text is random: it compresses to ~45 %, a body's to ~5 %).
    assert peak < 2 * compressed + len(want) / 4, (peak, compressed, len(want))
    assert piece.plain == want
    assert b"".join(exposition.chunks([piece], gzipped=False)) == want
    assert piece.same_bytes(Piece(piece.name, want))


def test_tags_are_rebuilt_only_for_a_new_snapshot_or_a_rename() -> None:
    """The tag families depend on the tag snapshot and the tagged objects' names, not on
    their other properties: a poll's new quickStats must not rebuild them."""
    inv = _estate()
    inv.tags = TagSnapshot(ok=True, attachments={"vm-x1": (("env", "prod"),)})
    config = parse_config({})
    renderer = Renderer(config, [inv])
    first = renderer.render_now()

    def change(moid: str, **props: Any) -> None:  # as the follower applies a change
        changes = [("assign", path, value) for path, value in props.items()]
        inv.apply([("modify", inv.objects[moid].type, moid, changes)])

    change("vm-x1", **{"summary.quickStats.overallCpuUsage": 123})
    second = renderer.render_now()
    assert "vsphere_vm_tag_info" not in renderer.last_built
    assert _pieces(second)["vsphere_vm_tag_info"] is _pieces(first)["vsphere_vm_tag_info"]
    change("vm-x1", name="renamed")
    third = renderer.render_now()
    assert "vsphere_vm_tag_info" in renderer.last_built
    assert b'vm="renamed",category="env",tag="prod"' in _pieces(third)["vsphere_vm_tag_info"].plain
    inv.tags = TagSnapshot(ok=True, attachments={"vm-x1": (("env", "test"),)})
    fourth = renderer.render_now()
    assert b'tag="test"' in _pieces(fourth)["vsphere_vm_tag_info"].plain
    assert _stable(fourth.decode()) == _fresh_text(inv, config)


def _cached_text(value: Any, seen: set[int] | None = None) -> int:
    """Characters of ``str`` reachable from a render cache entry (its plain text)."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return 0
    seen.add(id(value))
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(_cached_text(v, seen) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(_cached_text(v, seen) for v in value)
    if isinstance(value, Family):
        return _cached_text(value.lines, seen)
    return 0


def test_the_vm_families_are_cached_compressed_by_block() -> None:
    """Each VM's text of its 20 families (and the tools family) was the largest thing the
    exporter held at 10,000 VMs (45 + 7 MiB of ~175 traced, ~5 KB per VM): cached as gzip
    members of blocks of VMs it costs a fraction of that; a changed VM re-renders its
    block only, and the body is what a render from empty caches gives."""
    inv = _estate(vm_count=600)
    config = parse_config({})
    renderer = Renderer(config, [inv])
    body = renderer.render_now()
    vm_text = sum(
        p.size
        for p in body.pieces
        if p.name.startswith("vsphere_vm_") and "timestamp" not in p.name
    )
    assert vm_text > 200_000
    held = sum(
        _cached_text(inv.render_cache.get(name))
        for name in ("vm_blocks", "vm_families", "tools_blocks", "tools_families")
    )
    assert held < vm_text / 4, (held, vm_text)
    power = _pieces(body)["vsphere_vm_power_state"]
    assert 'vm="app7",state="poweredOn"} 1' in power.plain.decode()
    vm = inv.objects["vm-x7"]
    inv.objects[vm.moid] = ManagedObject(
        vm.moid, vm.type, dict(vm.props, **{"runtime.powerState": "poweredOff"})
    )
    second = renderer.render_now()
    assert 'vm="app7",state="poweredOff"} 1' in second.decode()
    assert _stable(second.decode()) == _fresh_text(inv, config)


def test_a_changed_vm_re_renders_only_its_block(counted: dict[str, list[str]]) -> None:
    inv = _estate(vm_count=600, hosts=40)
    config = parse_config({})
    renderer = Renderer(config, [inv])
    renderer.render_now()
    counted["vm"].clear()
    vm = inv.objects["vm-x3"]
    inv.objects[vm.moid] = ManagedObject(
        vm.moid, vm.type, dict(vm.props, **{"runtime.powerState": "poweredOff"})
    )
    renderer.render_now()
    assert "vm-x3" in counted["vm"]
    block = block_of(block_key(vm))
    assert {block_of(block_key(inv.objects[m])) for m in counted["vm"]} == {block}
    assert len(counted["vm"]) < 600 / 8


def test_a_failed_hosts_vms_re_render_one_block(counted: dict[str, list[str]]) -> None:
    """A host failure changes all its VMs at once: blocked by host, they re-render one
    block (blocked by moid, 15 VMs were in 15 blocks of 256: nearly all 600 VMs)."""
    inv = _estate(vm_count=600, hosts=40)
    config = parse_config({})
    renderer = Renderer(config, [inv])
    renderer.render_now()
    counted["vm"].clear()
    failed = [o for o in inv.objects.values() if o.get("runtime.host") == "host-x7"]
    assert len(failed) == 15
    for vm in failed:
        inv.objects[vm.moid] = ManagedObject(
            vm.moid, vm.type, dict(vm.props, **{"runtime.connectionState": "disconnected"})
        )
    body = renderer.render_now().decode()
    block = block_of("host-x7")
    assert {vm.moid for vm in failed} <= set(counted["vm"])
    assert {block_of(block_key(inv.objects[m])) for m in counted["vm"]} == {block}
    assert len(counted["vm"]) <= 2 * 15
    assert _stable(body) == _fresh_text(inv, config)


def test_a_gzip_body_has_few_members_whatever_the_blocks() -> None:
    """aiohttp's client refuses a gzip stream of more than 1,024 members: the families
    made of cached members (VM blocks, hosts' sensors) are served as one member each."""
    import gzip as gz  # noqa: PLC0415

    inv = _estate(vm_count=600)
    renderer = Renderer(parse_config({}), [inv])
    renderer.render_now()
    data = b"".join(renderer.body(gzipped=True))
    members, rest = 0, data
    while rest:
        inflater = zlib.decompressobj(31)
        inflater.decompress(rest)
        rest = inflater.unused_data
        members += 1
    pieces = renderer._body.pieces  # noqa: SLF001
    assert members <= 2 * len(pieces), members
    assert gz.decompress(b"".join(p.gzip() for p in pieces)) == b"".join(p.plain for p in pieces)
