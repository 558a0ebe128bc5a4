"""Helpers for the remediator tests: configs, snapshots, payloads, and a waiting client."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from remediator.config import RemediatorConfig, parse_remediator
from remediator.model import ClusterState, HostState, Snapshot, VMMonitoring, VMState
from vcenter.config import Config, parse_config

TOKEN = "test-token-0123456789"
TOKEN_ENV = "VHA_TEST_REMEDIATOR_TOKEN"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

_counter = itertools.count(1)


def remediator_section(journal: str, **overrides: Any) -> dict[str, Any]:
    """Fast, acting settings for tests: no confirmation wait, no HA grace, no dry run."""
    os.environ[TOKEN_ENV] = TOKEN
    section: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "bearer_token_env": TOKEN_ENV,
        "dry_run": False,
        "journal": journal,
        "ha_grace_seconds": 0,
        # The simulator has no vSphere HA agent: with defer_to_ha nothing would restart the
        # VMs of its HA clusters. Tests of the HA watchdog set it back to true.
        "ha": {"defer_to_ha": False},
        "state_refresh_seconds": 0.5,
        "action_timeout_seconds": 30,
        "retry": {"max_attempts": 3, "backoff_initial_seconds": 0.2, "backoff_max_seconds": 1},
        "host_failure": {"confirm_seconds": 0},
        "vm_monitoring": {"min_uptime_seconds": 0, "prefer_cluster_settings": False},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(section.get(key), dict):
            section[key] = {**section[key], **value}
        else:
            section[key] = value
    return section


def stack_config(vcenters: list[dict[str, Any]], remediator: dict[str, Any]) -> Config:
    return parse_config(
        {
            "vcenters": vcenters,
            "fault_domains": {"custom_attribute": "HA-FaultDomain"},
            "remediator": remediator,
        }
    )


#: A vCenter nobody answers at (a closed port on loopback): for the tests of the webhook's
#: own edges, which need none, and which show it answers while vCenter is unreachable.
DEAD_VCENTER = {
    "name": "vc1",
    "url": "https://127.0.0.1:9/sdk",
    "user": "u",
    "password_env": "VHA_TEST_DEAD_PW",
    "verify_tls": False,
    "timeout_seconds": 2,
}


def dead_config(tmp_path: Path, **overrides: Any) -> Config:
    """The stack configuration against :data:`DEAD_VCENTER`, journal in ``tmp_path``."""
    os.environ["VHA_TEST_DEAD_PW"] = "x"
    return stack_config(
        [DEAD_VCENTER], remediator_section(str(tmp_path / "journal.sqlite"), **overrides)
    )


def rconfig(**overrides: Any) -> RemediatorConfig:
    return parse_remediator(remediator_section(":memory:", **overrides))


# --- payloads --------------------------------------------------------------------------


def alert(
    remediation: str,
    *,
    status: str = "firing",
    starts_at: str | None = None,
    fingerprint: str | None = None,
    vcenter: str = "vc1",
    **labels: str,
) -> dict[str, Any]:
    """One Alertmanager alert; a fresh fingerprint and start unless given."""
    n = next(_counter)
    all_labels = {"alertname": f"Test{remediation}", "remediation": remediation, "vcenter": vcenter}
    all_labels.update(labels)
    return {
        "status": status,
        "labels": all_labels,
        "annotations": {"summary": "test"},
        "startsAt": starts_at or datetime.now(UTC).isoformat(timespec="microseconds"),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph",
        "fingerprint": fingerprint or f"{n:016x}",
    }


def payload(*alerts: Mapping[str, Any], status: str = "firing") -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="x"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "remediator",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example",
        "alerts": list(alerts),
    }


def resolved(a: Mapping[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(a))
    out["status"] = "resolved"
    out["endsAt"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return out


# --- snapshots -------------------------------------------------------------------------


def host(moid: str, fd: str = "fd-a", **kw: Any) -> HostState:
    base: dict[str, Any] = {
        "name": moid.replace("host-", "esx-"),
        "cluster_id": "c1",
        "das_state": "connectedToMaster",
        "fault_domain": fd,
        "cpu_capacity_mhz": 20000.0,
        "memory_capacity_mb": 65536.0,
    }
    base.update(kw)
    return HostState(moid=moid, **base)


def vm(moid: str, host_id: str, priority: str = "medium", **kw: Any) -> VMState:
    base: dict[str, Any] = {
        "name": moid.replace("vm-", "app-"),
        "host_id": host_id,
        "power_state": "poweredOn",
        "guest_heartbeat": "green",
        "app_heartbeat": "appStatusGreen",
        "memory_mb": 1024.0,
        "priority": priority,
        "boot_time": 1000.0,
    }
    base.update(kw)
    return VMState(moid=moid, **base)


def snapshot(
    hosts: list[HostState], vms: list[VMState], *, ha: bool = True, **cluster: Any
) -> Snapshot:
    mon = cluster.pop("vm_monitoring", VMMonitoring())
    return Snapshot(
        vcenter="vc1",
        taken_at=0.0,
        cluster=ClusterState(
            moid="c1",
            name="cluster-1",
            ha_enabled=ha,
            vm_monitoring=mon,
            host_ids=tuple(h.moid for h in hosts),
            **cluster,
        ),
        hosts={h.moid: h for h in hosts},
        vms={v.moid: v for v in vms},
    )


async def until(
    check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1, what: str = ""
) -> Any:
    """Poll an (async or plain) check until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}: {last!r}")
