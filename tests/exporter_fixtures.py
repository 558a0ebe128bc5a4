"""Running the exporter in-process against simulators, and waiting on its /metrics."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

from sim.harness import Account
from vcenter.config import Config, parse_config

from .metrics_helpers import Sample, parse


def sim_vcenter(sim: Any, name: str = "vc1", **extra: Any) -> dict[str, Any]:
    """A vcenters[] entry for a running simulator; the password travels by environment."""
    env = f"VHA_TEST_{name.upper().replace('-', '_')}_PASSWORD"
    os.environ[env] = extra.pop("password", sim.password)
    entry: dict[str, Any] = {
        "name": name,
        "url": sim.sdk_url,
        "user": sim.username,
        "password_env": env,
    }
    if sim.ca_file:
        entry["ca_file"] = sim.ca_file
    else:
        entry["verify_tls"] = False
    entry.update(extra)
    return entry


def account_entry(sim: Any, account: Account, name: str = "vc1") -> dict[str, Any]:
    """A vcenters[] entry that logs in as ``account`` (one of the simulator's accounts)."""
    env = f"VHA_TEST_{name.upper()}_{account.role.upper().replace('-', '_')}_PASSWORD"
    os.environ[env] = account.password
    return sim_vcenter(sim, name, user=account.username, password_env=env)


def exporter_config(*vcenters: dict[str, Any], **sections: Any) -> Config:
    data: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "vcenters": list(vcenters),
        "fault_domains": {"custom_attribute": "HA-FaultDomain"},
        "sync": {"max_wait_seconds": 1, "backoff_initial_seconds": 0.2, "backoff_max_seconds": 1},
    }
    data.update(sections)
    return parse_config(data)


async def scrape(client: Any) -> list[Sample]:
    resp = await client.get("/metrics")
    assert resp.status == 200
    return parse(await resp.text())


async def wait_for(
    client: Any, predicate: Callable[[list[Sample]], bool], timeout: float = 2.0
) -> tuple[list[Sample], float]:
    """Poll /metrics until ``predicate`` holds; returns the samples and seconds waited."""
    start = time.monotonic()
    samples: list[Sample] = []
    while True:
        samples = await scrape(client)
        if predicate(samples):
            return samples, time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.05)


async def first_ready(client: Any, timeout: float = 60.0) -> dict[str, Any]:
    """Ask /readyz every 10 ms until it answers 200; its JSON."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = await client.get("/readyz")
        if resp.status == 200:
            got: dict[str, Any] = await resp.json()
            return got
        assert resp.status == 503
        await asyncio.sleep(0.01)
    raise AssertionError(f"/readyz not 200 within {timeout}s")
