"""remediator.power_off_cause: a power-off is undone only on proof that nobody asked for it.

The simulator posts, per cause, the events vCenter records (sim/ha_config.go); the
classifier reads them back through EventManager.QueryEvents."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim

from remediator import power_off_cause as poc
from remediator.live import Session

from .remediator_sim import sim_session

E = poc.EventRecord


def test_classify_offline() -> None:
    on = E("VmPoweredOnEvent", 10, "alice", 1)
    assert poc.classify([on, E("VmPoweredOffEvent", 20, "bob", 2)]).cause == poc.USER
    v = poc.classify([on, E("VmPoweredOffEvent", 20, "", 2)])
    assert (v.cause, v.restart, v.alert) == (poc.NO_USER, False, True)
    assert poc.classify([on, E("VmPoweredOffEvent", 20, "vpxuser", 2)]).cause == poc.NO_USER
    v = poc.classify(
        [on, E("VmGuestShutdownEvent", 20, "carol", 2), E("VmPoweredOffEvent", 30, "", 3)]
    )
    assert (v.cause, v.user, v.restart) == (poc.GUEST_BY_USER, "carol", False)
    assert poc.classify([on, E("VmShutdownOnIsolationEvent", 20, "", 2)]).restart
    assert poc.classify([on, E("HostConnectionLostEvent", 20, "", 2, "host-1")], "host-1").restart
    assert not poc.classify(
        [on, E("HostConnectionLostEvent", 20, "", 2, "host-9")], "host-1"
    ).restart
    # events before the last power-on do not count
    old = [E("HostConnectionLostEvent", 5, "", 1, "host-1"), E("VmPoweredOnEvent", 10, "", 2)]
    assert poc.classify(old, "host-1").cause == poc.UNKNOWN
    assert poc.classify([]).cause == poc.UNKNOWN and not poc.classify([]).restart
    ft = poc.classify(
        [on, E("VmFaultToleranceVmTerminatedEvent", 20, "", 2), E("VmPoweredOffEvent", 21, "", 3)]
    )
    assert ft.cause == poc.FT and not ft.restart
    # a person beats everything: a user power-off after a host blip is still the user's
    mixed = [
        on,
        E("HostConnectionLostEvent", 15, "", 2, "host-1"),
        E("VmPoweredOffEvent", 20, "dave", 3),
    ]
    assert poc.classify(mixed, "host-1").cause == poc.USER
    assert not poc.is_person("vpxd-extension-ha") and poc.is_person("CORP\\eve")


@pytest.fixture
def live(sim: Any) -> Iterator[tuple[Any, Session]]:
    with sim_session(sim) as session:
        yield sim, session


@pytest.mark.slow
@pytest.mark.parametrize(
    ("cause", "expected", "restart"),
    [
        ("guest", poc.NO_USER, False),
        ("user", poc.USER, False),
        ("guestShutdownByUser", poc.GUEST_BY_USER, False),
        ("isolation", poc.ISOLATION, True),
        ("ftTerminated", poc.FT, False),
        ("silent", poc.UNKNOWN, False),
    ],
)
def test_each_cause_in_the_simulator(
    live: tuple[Any, Session], cause: str, expected: str, restart: bool
) -> None:
    sim, session = live
    vm = sim.get_vm("DC0_C0_VM1")
    host = next(h for h in sim.inventory()["hosts"] if h["name"] == vm["host"])
    sim.power_off_vm("DC0_C0_VM1", cause, user="alice" if cause != "guest" else None)
    assert sim.get_vm("DC0_C0_VM1")["powerState"] == "poweredOff"
    v = poc.classify_live(session, vm["moid"], host["moid"])
    assert (v.cause, v.restart) == (expected, restart), v
    if expected in (poc.USER, poc.GUEST_BY_USER):
        assert v.user == "alice"


@pytest.mark.slow
def test_api_power_off_and_host_failure(live: tuple[Any, Session]) -> None:
    sim, session = live
    vm = sim.get_vm("DC0_C0_VM2")
    host = next(h for h in sim.inventory()["hosts"] if h["name"] == vm["host"])
    WaitForTask(session.stub_obj(vim.VirtualMachine, vm["moid"]).PowerOffVM_Task())
    v = poc.classify_live(session, vm["moid"], host["moid"])
    assert v.cause == poc.USER and v.user == sim.username
    WaitForTask(session.stub_obj(vim.VirtualMachine, vm["moid"]).PowerOnVM_Task())
    assert poc.classify_live(session, vm["moid"], host["moid"]).cause == poc.UNKNOWN
    sim.fail_host(vm["host"])
    v = poc.classify_live(session, vm["moid"], host["moid"])
    assert (v.cause, v.restart) == (poc.HOST_FAILURE, True)
