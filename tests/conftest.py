"""Shared fixtures. The simulator ones start real vha-sim processes (see docs/simulator.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sim.harness import Simulator, build


@pytest.fixture(scope="session")
def sim_binary() -> Path:
    """The simulator binary, built once per session if sim/*.go changed."""
    return build()


@pytest.fixture
def sim_factory(sim_binary: Path) -> Iterator[Callable[..., Simulator]]:
    """``sim_factory(**kwargs)`` starts a Simulator (kwargs as for ``Simulator``); every
    simulator it started is stopped, and its work directory removed, after the test."""
    started: list[Simulator] = []

    def make(**kwargs: Any) -> Simulator:
        kwargs.setdefault("binary", sim_binary)
        sim = Simulator(**kwargs)
        started.append(sim)
        sim.start()
        return sim

    yield make
    for sim in reversed(started):
        sim.close()


@pytest.fixture
def sim(sim_factory: Callable[..., Simulator]) -> Simulator:
    """A started small simulator: 1 datacenter, 2 clusters x 3 hosts, 6 VMs per cluster,
    2 fault domains, strict mode, user/pass."""
    return sim_factory()
