"""A WaitForUpdatesEx round trip that changed nothing wakes the renderer at most every
``sync.alive_render_seconds``: at 40,000 VMs each wake was a full render (0.5 s of CPU,
80,000 timestamp lines re-encoded) for values no alert reads while they are green."""

from __future__ import annotations

import time
from typing import Any

import pytest

from exporter.inventory import Inventory, ManagedObject, apply_object_updates
from exporter.render import Renderer
from vcenter.config import ConfigError, parse_config

from .metrics_helpers import parse, value


def _synced(alive_render_seconds: float) -> tuple[Inventory, list[float]]:
    inv = Inventory("vc1", alive_render_seconds=alive_render_seconds)
    objects: dict[str, ManagedObject] = {}
    fields: dict[int, str] = {}
    apply_object_updates(
        objects,
        fields,
        [
            ("enter", "HostSystem", "host-1", [("assign", "name", "esx1")]),
            (
                "enter",
                "VirtualMachine",
                "vm-1",
                [
                    ("assign", "name", "web"),
                    ("assign", "runtime.host", "host-1"),
                    ("assign", "runtime.powerState", "poweredOn"),
                    ("assign", "guestHeartbeatStatus", "green"),
                ],
            ),
        ],
    )
    inv.replace(objects, fields)
    woken: list[float] = []
    inv.add_listener(lambda: woken.append(time.monotonic()))
    return inv, woken


def test_quiet_round_trips_wake_the_renderer_once_per_interval() -> None:
    inv, woken = _synced(1.0)  # long enough for a loaded machine between the calls
    inv.mark_alive()  # the round after the sync: the sync's image goes out
    assert len(woken) == 1
    for _ in range(5):
        inv.mark_alive()
    assert len(woken) == 1, "a round trip that changed nothing re-rendered at once"
    time.sleep(1.05)
    inv.mark_alive()
    assert len(woken) == 2, "no render after alive_render_seconds"


def test_a_round_trip_with_changes_always_wakes_the_renderer() -> None:
    inv, woken = _synced(3600)
    inv.mark_alive()
    inv.apply(
        [("modify", "VirtualMachine", "vm-1", [("assign", "runtime.powerState", "poweredOff")])]
    )
    inv.mark_alive()
    assert len(woken) == 2
    inv.mark_alive()
    assert len(woken) == 2


def test_zero_renders_every_round_trip() -> None:
    inv, woken = _synced(0)
    for _ in range(3):
        inv.mark_alive()
    assert len(woken) == 3


def test_a_quiet_round_trip_still_confirms_what_is_green() -> None:
    """The heartbeat alerts read time() - last green only once the VM is red; the patch or
    render that shows it red must carry the last round trip that saw it green, not the
    last render's (which would make the failure look up to the interval older)."""
    inv, woken = _synced(3600)
    inv.mark_alive(now=1000.0)
    inv.mark_alive(now=1010.0)  # quiet: not rendered, but confirmed
    inv.apply([("modify", "VirtualMachine", "vm-1", [("assign", "guestHeartbeatStatus", "red")])])
    inv.mark_alive(now=1020.0)
    samples = parse(Renderer(parse_config({}), [inv]).render_now().decode())
    assert (
        value(samples, "vsphere_vm_guest_heartbeat_last_green_timestamp_seconds", vm="web") == 1010
    )
    assert value(samples, "vsphere_sync_last_success_timestamp_seconds") == 1020


def test_config_default_and_validation() -> None:
    assert parse_config({}).sync.alive_render_seconds == 30
    assert parse_config({"sync": {"alive_render_seconds": 0}}).sync.alive_render_seconds == 0
    with pytest.raises(ConfigError) as err:
        parse_config({"sync": {"alive_render_seconds": -1}})
    assert err.value.key == "sync.alive_render_seconds"


def test_the_patch_that_shows_a_heartbeat_red_carries_the_last_green_round_trip() -> None:
    """The detection lane, not a full render, is what publishes the change first."""
    inv, _ = _synced(3600)
    inv.mark_alive(now=1000.0)
    renderer = Renderer(parse_config({}), [inv])
    renderer.render_now()
    inv.mark_alive(now=1010.0)  # quiet: no render
    inv.apply([("modify", "VirtualMachine", "vm-1", [("assign", "guestHeartbeatStatus", "red")])])
    inv.mark_alive(now=1020.0)
    body = renderer.patch_now()
    assert body is not None
    samples = parse(body.decode())
    name = "vsphere_vm_guest_heartbeat_last_green_timestamp_seconds"
    assert value(samples, name, vm="web") == 1010


def test_full_renders_are_counted() -> None:
    inv, _ = _synced(0)
    renderer = Renderer(parse_config({}), [inv])
    renderer.render_now()
    samples = parse(renderer.render_now().decode())
    assert value(samples, "vsphere_exporter_renders_total") == 1


def test_a_full_render_waits_for_the_patch_of_a_change(monkeypatch: pytest.MonkeyPatch) -> None:
    """Detection first: with renders rare (an idle estate), a change found the renderer
    idle and its full render began after the 0.2 s head start, sharing the GIL with the
    detection lane's patch still running. Now it waits for that patch (bounded)."""
    import exporter.render as render  # noqa: PLC0415

    inv, _ = _synced(3600)
    inv.mark_alive()
    renderer = Renderer(parse_config({}), [inv])
    renderer.render_now()
    events: list[tuple[str, float]] = []
    real_patch, real_collect = render.build_patch, render.inventory_families

    def slow_patch(*args: object, **kwargs: object) -> object:
        events.append(("patch begins", time.monotonic()))
        time.sleep(0.6)  # a patch of a host change at 40,000 VMs under load
        out = real_patch(*args, **kwargs)  # type: ignore[arg-type]
        events.append(("patch ends", time.monotonic()))
        return out

    def collect(*args: Any, **kwargs: Any) -> Any:  # the render's work, after its yield
        events.append(("render begins", time.monotonic()))
        return real_collect(*args, **kwargs)

    monkeypatch.setattr(render, "build_patch", slow_patch)
    monkeypatch.setattr(render, "inventory_families", collect)
    renderer.start()
    try:
        inv.apply([("modify", "VirtualMachine", "vm-1", [("assign", "name", "web2")])])
        inv.mark_alive()
        deadline = time.monotonic() + 10
        while not any(e == "render begins" for e, _ in events) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        renderer.stop()
    order = [e for e, _ in events]
    assert order[:3] == ["patch begins", "patch ends", "render begins"], events
