"""Helpers for the remediator tests that run against the simulator.

Every such test builds the stack configuration for its simulator, runs the remediator app
in-process through ``aiohttp_client``, sends Alertmanager payloads, waits for the journal
to settle and then checks vCenter itself (the simulator's inventory, pyvmomi). These
helpers were copied between the test files (and imported from one test module by others);
one module keeps them the same everywhere.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pyVim.task import WaitForTask
from pyVmomi import vim

from remediator.app import create_app
from remediator.live import Session
from vcenter.config import Config
from vcenter.session import connect, disconnect

from .exporter_fixtures import sim_vcenter
from .metrics_helpers import parse, value
from .remediator_fixtures import AUTH, payload, remediator_section, stack_config, until


def sim_config(
    sim: Any, journal: str = ":memory:", *, vcenter: dict[str, Any] | None = None, **overrides: Any
) -> Config:
    """The stack configuration for one simulator: its vCenter (``vcenter``, another
    account's entry say, instead of the default one) and the test remediator section
    (``overrides`` as for :func:`remediator_section`)."""
    entry = vcenter if vcenter is not None else sim_vcenter(sim)
    return stack_config([entry], remediator_section(journal, **overrides))


@contextmanager
def sim_session(sim: Any) -> Iterator[Session]:
    """The remediator's vCenter session to ``sim``, closed afterwards."""
    cfg = sim_config(sim)
    session = Session(cfg.vcenters[0], cfg)
    try:
        yield session
    finally:
        session.close()


async def start(
    aiohttp_client: Any,
    sim: Any,
    tmp_path: Path,
    *,
    vcenter: dict[str, Any] | None = None,
    **overrides: Any,
) -> Any:
    """The remediator app against ``sim``, journal in ``tmp_path``, served in-process."""
    cfg = sim_config(sim, str(tmp_path / "journal.sqlite"), vcenter=vcenter, **overrides)
    return await aiohttp_client(create_app(cfg))


#: The HA tests run the remediator with ``ha.defer_to_ha`` on (the default);
#: ``VHA_TEST_HA_LEGACY=1`` runs them with it off, the behaviour under which each fails.
DEFER_TO_HA = os.environ.get("VHA_TEST_HA_LEGACY") != "1"


async def start_ha(aiohttp_client: Any, sim: Any, tmp_path: Path, **overrides: Any) -> Any:
    """:func:`start` with ``ha.defer_to_ha`` as the HA tests run it (:data:`DEFER_TO_HA`)."""
    section = {"defer_to_ha": DEFER_TO_HA, **overrides.pop("ha", {})}
    return await start(aiohttp_client, sim, tmp_path, ha=section, **overrides)


async def send(client: Any, *alerts: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post("/api/v1/alerts", json=payload(*alerts), headers=AUTH)
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def actions(client: Any, **query: Any) -> list[dict[str, Any]]:
    resp = await client.get("/api/v1/actions", params={"limit": 1000, **query}, headers=AUTH)
    assert resp.status == 200, await resp.text()
    return list((await resp.json())["actions"])


async def settled(client: Any, timeout: float = 20.0) -> list[dict[str, Any]]:
    """Wait until the journal has nothing pending or running; return every action."""

    async def idle() -> list[dict[str, Any]] | None:
        items = await actions(client)
        busy = [a for a in items if a["state"] in ("pending", "running")]
        return None if busy or not items else items

    result: list[dict[str, Any]] = await until(idle, timeout, what="an idle journal")
    return result


async def decision(client: Any, pred: Any, what: str, timeout: float = 20.0) -> dict[str, Any]:
    """Wait for the first decision (an action without a parent) that ``pred`` accepts."""

    async def look() -> dict[str, Any] | None:
        for a in await actions(client):
            if a["parent_id"] is None and pred(a):
                return dict(a)
        return None

    found: dict[str, Any] = await until(look, timeout, what=what)
    return found


async def metric(client: Any, name: str, **labels: str) -> float | None:
    """One sample of the remediator's /metrics."""
    return value(parse(await (await client.get("/metrics")).text()), name, **labels)


def inventory(sim: Any) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    inv = sim.inventory()
    return {h["name"]: h for h in inv["hosts"]}, {v["name"]: v for v in inv["vms"]}


def steps(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {a["vm"]: a for a in items if a["parent_id"] is not None and a["vm"]}


def host_labels(h: dict[str, Any]) -> dict[str, str]:
    return {
        "host_id": h["moid"],
        "host": h["name"],
        "cluster": h["cluster"],
        "fault_domain": h["faultDomain"],
    }


def vm_labels(v: dict[str, Any]) -> dict[str, str]:
    return {"vm_id": v["moid"], "vm": v["name"], "host": v["host"], "cluster": v["cluster"]}


async def vsphere(sim: Any, fn: Any) -> Any:
    """Run ``fn(si)`` against the simulator with pyvmomi, as a person or vSphere HA would."""
    vc = sim_config(sim).vcenters[0]

    def call() -> Any:
        si = connect(vc)
        try:
            return fn(si)
        finally:
            disconnect(si)

    return await asyncio.to_thread(call)


def wait_task(task: Any) -> None:
    while task.info.state not in ("success", "error"):
        time.sleep(0.02)
    assert task.info.state == "success", task.info.error


async def reconfigure(sim: Any, cluster: str, **spec: Any) -> None:
    """ReconfigureComputeResource_Task(modify=True) on ``cluster``, as an admin would. A
    callable value in ``spec`` is called with the service instance first."""
    moid = next(c["moid"] for c in sim.inventory()["clusters"] if c["name"] == cluster)

    def call(si: Any) -> None:
        c = vim.ClusterComputeResource(moid, si._stub)
        built = {k: (v(si) if callable(v) else v) for k, v in spec.items()}
        WaitForTask(
            c.ReconfigureComputeResource_Task(spec=vim.cluster.ConfigSpecEx(**built), modify=True)
        )

    await vsphere(sim, call)


def ha(**fields: Any) -> vim.cluster.DasConfigInfo:
    return vim.cluster.DasConfigInfo(**fields)
