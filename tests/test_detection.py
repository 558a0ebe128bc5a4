"""Detection first: a change reaches /metrics through the detection lane (exporter/patch.py)
while a full render is held open, and the full render that follows never hides it.

Against the real simulator with performance counters on (the default); the splice itself
is checked on bytes.
"""

from __future__ import annotations

import asyncio
import gzip
import threading
from collections import Counter
from typing import Any

import pytest

from exporter.app import EXPORTER, create_app
from exporter.collectors import COLLECTORS
from exporter.patch import NotContiguous, filter_lines, splice

from .exporter_fixtures import exporter_config, sim_vcenter, wait_for
from .metrics_helpers import Sample, parse, select


def _value(samples: list[Sample], name: str, **labels: str) -> float | None:
    found = select(samples, name, **labels)
    return found[0].value if found else None


def _no_duplicates(text: str) -> None:
    seen = Counter((s.name, tuple(sorted(s.labels.items()))) for s in parse(text))
    dupes = [k for k, n in seen.items() if n > 1]
    assert not dupes, dupes[:5]


def _shown(samples: list[Sample], host: str, vm: str) -> bool:
    return (
        _value(samples, "vsphere_host_maintenance_mode", host=host) == 1
        and _value(samples, "vsphere_vm_power_state", vm=vm, state="poweredOff") == 1
    )


async def test_a_change_reaches_metrics_while_a_full_render_is_held(
    sim: Any, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await aiohttp_client(create_app(exporter_config(sim_vcenter(sim))))
    await wait_for(
        client,
        lambda s: (
            _value(s, "vsphere_up", vcenter="vc1") == 1
            and any(x.name == "vsphere_perf_entities" and (x.value or 0) > 0 for x in s)
        ),
        timeout=60,
    )
    renderer = client.server.app[EXPORTER].renderer
    entered, release = threading.Event(), threading.Event()

    def held(ctx: Any) -> list[Any]:  # a full render as slow as the test says
        if threading.current_thread().name == "vha-render":
            entered.set()
            release.wait(60)
        return []

    monkeypatch.setitem(COLLECTORS, "held", held)
    inv = sim.inventory()
    host = inv["hosts"][0]["name"]
    vm = next(v["name"] for v in inv["vms"] if v.get("powerState", "poweredOn") == "poweredOn")
    renderer.mark_dirty()
    try:
        assert await asyncio.to_thread(entered.wait, 20), "no full render started"
        renders = renderer.renders_total
        sim.set_host(host, inMaintenanceMode=True)
        sim.set_vm(vm, powerState="poweredOff")
        await wait_for(client, lambda s: _shown(s, host, vm), timeout=20)
        assert renderer.renders_total == renders and not release.is_set()  # still held
        resp = await client.get("/metrics", headers={"Accept-Encoding": "gzip"})
        text = await resp.text()  # aiohttp decompresses; Prometheus asks for gzip
        assert _shown(parse(text), host, vm), "the gzip body lags the plain one"
        _no_duplicates(text)
        patched = {
            (s.name, tuple(sorted(s.labels.items())), s.value)
            for s in parse(text)
            if s.name in ("vsphere_host_maintenance_mode", "vsphere_vm_power_state")
        }
    finally:
        release.set()
    # The held render took its snapshot before the change: publishing it must not hide it.
    await asyncio.to_thread(lambda: _wait(lambda: renderer.renders_total > renders))
    samples, _ = await wait_for(client, lambda s: _shown(s, host, vm), timeout=5)
    body = await asyncio.to_thread(renderer.render_now)
    full = {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for s in parse(body.decode())
        if s.name in ("vsphere_host_maintenance_mode", "vsphere_vm_power_state")
    }
    assert patched == full  # the patch is what a full render makes of the same objects
    _no_duplicates(body.decode())
    assert renderer.patches_total > 0


def _wait(cond: Any, timeout: float = 30) -> None:
    import time  # noqa: PLC0415

    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


HEAD = b"# HELP m x\n# TYPE m gauge\n"


def test_splice_replaces_appends_and_removes_an_objects_lines() -> None:
    a, b, c = (f'vcenter="v",vm_id="vm-{i}"'.encode() for i in (1, 2, 10))
    plain = HEAD + b"m{" + a + b',s="x"} 1\nm{' + a + b',s="y"} 0\nm{' + c + b"} 5\n"
    assert splice(plain, b"m", {b: b""}) is plain  # absent and nothing new: untouched
    out = splice(plain, b"m", {a: b"m{" + a + b',s="x"} 0\n', b: b"m{" + b + b"} 2\n"})
    assert out == HEAD + b"m{" + a + b',s="x"} 0\nm{' + c + b"} 5\nm{" + b + b"} 2\n"
    assert splice(plain, b"m", {c: b""}) == HEAD + b"m{" + a + b',s="x"} 1\nm{' + a + b',s="y"} 0\n'
    # vm-1 is not a prefix match of vm-10: the closing quote is part of the identity.
    assert splice(plain, b"m", {a: b""}) == HEAD + b"m{" + c + b"} 5\n"
    scattered = HEAD + b"m{" + a + b"} 1\nm{" + c + b"} 5\nm{" + a + b',s="z"} 1\n'
    with pytest.raises(NotContiguous):
        splice(scattered, b"m", {a: b""})
    assert filter_lines(scattered, {a: b"m{" + a + b"} 3\n"}) == (
        HEAD + b"m{" + c + b"} 5\nm{" + a + b"} 3\n"
    )


def test_gzip_members_of_a_patched_body_decompress_to_it() -> None:
    from exporter.exposition import Piece, chunks  # noqa: PLC0415
    from exporter.patch import Patch  # noqa: PLC0415

    key = b'vcenter="v",host_id="host-1"'
    pieces = [Piece("m", HEAD + b"m{" + key + b"} 0\n"), Piece("n", b"# TYPE n gauge\nn 1\n")]
    patch = Patch(0.0, objects={"m": {key: b"m{" + key + b"} 1\n"}})
    out = patch.apply(pieces)
    assert out[1] is pieces[1] and out[0] is not pieces[0]
    data = gzip.decompress(b"".join(chunks(out, gzipped=True)))
    assert data == HEAD + b"m{" + key + b"} 1\n# TYPE n gauge\nn 1\n"


def test_a_patch_leaves_untouched_gzip_only_pieces_compressed() -> None:
    """Once gzip is served a piece keeps only its gzip member; a patch that touches one
    family must not decompress the others (at 10,000 VMs that is the whole 135 MB body on
    every change)."""
    from exporter.exposition import Piece  # noqa: PLC0415
    from exporter.patch import Patch  # noqa: PLC0415

    untouched = Piece("vsphere_vm_info", b'vsphere_vm_info{vm_id="vm-1"} 1\n')
    touched = Piece("vsphere_up", b'vsphere_up{vcenter="a"} 0\n')
    for piece in (untouched, touched):
        piece.gzip()
        piece.release_plain()
    patch = Patch(begun=0.0, whole={"vsphere_up": b'vsphere_up{vcenter="a"} 1\n'})
    calls = 0
    real = Piece.plain.fget  # type: ignore[attr-defined]

    def counting(self: Piece) -> bytes:
        nonlocal calls
        if self is untouched:
            calls += 1
        return real(self)

    Piece.plain = property(counting)  # type: ignore[method-assign,assignment]
    try:
        out = patch.apply([untouched, touched])
    finally:
        Piece.plain = property(real)  # type: ignore[method-assign,assignment]
    assert out[0] is untouched and calls == 0
    assert out[1].plain == b'vsphere_up{vcenter="a"} 1\n'
