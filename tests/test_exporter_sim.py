"""The exporter against VMware's simulator: counts, every injectable fault, outages."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from exporter.app import create_app
from exporter.collectors import COLLECTORS

from .exporter_fixtures import exporter_config, first_ready, scrape, sim_vcenter, wait_for
from .metrics_helpers import Sample, current_state, select, value

FAULT_WINDOW = 2.0  # seconds within which an injected change must show in /metrics


def up(samples: list[Sample], vcenter: str = "vc1") -> bool:
    return value(samples, "vsphere_up", vcenter=vcenter) == 1


def by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {i["name"]: i for i in items}


async def test_inventory_matches_the_model(sim: Any, aiohttp_client: Any) -> None:
    inv = sim.inventory()
    client = await aiohttp_client(create_app(exporter_config(sim_vcenter(sim))))
    samples, _ = await wait_for(client, up, timeout=30)
    assert value(samples, "vsphere_inventory_objects", vcenter="vc1", type="host") == len(
        inv["hosts"]
    )
    assert value(samples, "vsphere_inventory_objects", vcenter="vc1", type="vm") == len(inv["vms"])
    assert value(samples, "vsphere_inventory_objects", vcenter="vc1", type="cluster") == len(
        inv["clusters"]
    )
    hosts = {s.labels["host"]: s.labels for s in select(samples, "vsphere_host_info")}
    assert set(hosts) == {h["name"] for h in inv["hosts"]}
    for h in inv["hosts"]:
        assert hosts[h["name"]]["host_id"] == h["moid"]
        assert hosts[h["name"]]["cluster"] == (h["cluster"] or "")
        assert hosts[h["name"]]["fault_domain"] == (h.get("faultDomain") or "")
        assert hosts[h["name"]]["datacenter"] == h["datacenter"]
    vms = {s.labels["vm"]: s.labels for s in select(samples, "vsphere_vm_info")}
    assert set(vms) == {v["name"] for v in inv["vms"]}
    for v in inv["vms"]:
        assert vms[v["name"]]["vm_id"] == v["moid"]
        assert vms[v["name"]]["host"] == v["host"]
        assert vms[v["name"]]["ha_protected"] == "true"
        assert vms[v["name"]]["restart_priority"] in {"high", "medium", "low"}
        assert len(vms[v["name"]]["instance_uuid"]) == 36  # config.instanceUuid
    for c in inv["clusters"]:
        assert value(samples, "vsphere_cluster_ha_enabled", cluster=c["name"]) == 1
        masters = select(samples, "vsphere_cluster_ha_master_info", cluster=c["name"])
        assert [m.labels["host"] for m in masters] == [c["master"]]
    # Every series of a host or VM carries its identity labels.
    for s in samples:
        if s.name.startswith("vsphere_host_"):
            assert {"vcenter", "host_id", "host"} <= set(s.labels), s
        if s.name.startswith("vsphere_vm_"):
            assert {"vcenter", "vm_id", "vm"} <= set(s.labels), s
    # Ready once the body also shows the first counter collection (tests/test_readiness.py).
    assert (await first_ready(client))["ready"] is True
    page = await (await client.get("/")).text()
    assert "vc1" in page and "synced" in page


HOST_FAULTS = [
    (
        {"connectionState": "notResponding"},
        "vsphere_host_connection_state",
        "state",
        "notResponding",
    ),
    ({"connectionState": "disconnected"}, "vsphere_host_connection_state", "state", "disconnected"),
    ({"powerState": "standBy"}, "vsphere_host_power_state", "state", "standBy"),
    ({"overallStatus": "red"}, "vsphere_host_overall_status", "status", "red"),
    ({"dasHostState": "networkIsolated"}, "vsphere_host_ha_state", "state", "networkIsolated"),
    ({"dasHostState": "hostDown"}, "vsphere_host_ha_state", "state", "hostDown"),
]
VM_FAULTS = [
    ({"guestHeartbeatStatus": "red"}, "vsphere_vm_guest_heartbeat_status", "status", "red"),
    ({"guestHeartbeatStatus": "yellow"}, "vsphere_vm_guest_heartbeat_status", "status", "yellow"),
    ({"appHeartbeatStatus": "appStatusRed"}, "vsphere_vm_app_heartbeat_status", "status", "red"),
    ({"powerState": "poweredOff"}, "vsphere_vm_power_state", "state", "poweredOff"),
    ({"powerState": "suspended"}, "vsphere_vm_power_state", "state", "suspended"),
]


async def test_every_injected_fault_shows_within_two_seconds(sim: Any, aiohttp_client: Any) -> None:
    inv = sim.inventory()
    client = await aiohttp_client(create_app(exporter_config(sim_vcenter(sim))))
    await wait_for(client, up, timeout=30)
    hosts = [h["name"] for h in inv["hosts"]]
    vms = [v["name"] for v in inv["vms"]]
    for i, (props, metric, label, expected) in enumerate(HOST_FAULTS):
        name = hosts[i % len(hosts)]
        sim.set_host(name, **props)
        await wait_for(
            client,
            lambda s, m=metric, lb=label, e=expected, n=name: current_state(s, m, lb, host=n) == e,
            timeout=FAULT_WINDOW,
        )
        sim.recover_host(name)
    for flag, metric in (
        ("inMaintenanceMode", "vsphere_host_maintenance_mode"),
        ("inQuarantineMode", "vsphere_host_quarantine_mode"),
    ):
        sim.set_host(hosts[0], **{flag: True})
        await wait_for(client, lambda s, m=metric: value(s, m, host=hosts[0]) == 1, FAULT_WINDOW)
        sim.set_host(hosts[0], **{flag: False})
        await wait_for(client, lambda s, m=metric: value(s, m, host=hosts[0]) == 0, FAULT_WINDOW)
    for i, (props, metric, label, expected) in enumerate(VM_FAULTS):
        name = vms[i % len(vms)]
        sim.set_vm(name, **props)
        await wait_for(
            client,
            lambda s, m=metric, lb=label, e=expected, n=name: current_state(s, m, lb, vm=n) == e,
            timeout=FAULT_WINDOW,
        )
    sim.set_vm(vms[-1], toolsRunningStatus="guestToolsNotRunning")
    await wait_for(
        client, lambda s: value(s, "vsphere_vm_tools_running", vm=vms[-1]) == 0, FAULT_WINDOW
    )


async def test_fail_host_composite_and_master_election(sim: Any, aiohttp_client: Any) -> None:
    inv = sim.inventory()
    cluster = inv["clusters"][0]
    master = cluster["master"]
    victims = by_name(inv["hosts"])[master]["vms"]
    client = await aiohttp_client(create_app(exporter_config(sim_vcenter(sim))))
    await wait_for(client, up, timeout=30)
    sim.fail_host(master)

    def failed(s: list[Sample]) -> bool:
        new_master = select(s, "vsphere_cluster_ha_master_info", cluster=cluster["name"])
        return (
            current_state(s, "vsphere_host_connection_state", "state", host=master)
            == "notResponding"
            and current_state(s, "vsphere_host_ha_state", "state", host=master) == "hostDown"
            and len(new_master) == 1
            and new_master[0].labels["host"] != master
            and all(
                current_state(s, "vsphere_vm_guest_heartbeat_status", "status", vm=v) == "gray"
                for v in victims
            )
        )

    samples, _ = await wait_for(client, failed, timeout=FAULT_WINDOW)
    last_seen = value(samples, "vsphere_host_last_connected_timestamp_seconds", host=master)
    assert last_seen is not None
    sim.recover_host(master)
    samples, _ = await wait_for(
        client,
        lambda s: (
            current_state(s, "vsphere_host_connection_state", "state", host=master) == "connected"
        ),
        FAULT_WINDOW,
    )
    later = value(samples, "vsphere_host_last_connected_timestamp_seconds", host=master)
    assert later is not None and later >= last_seen


async def test_vcenter_restart_goes_down_and_recovers(
    sim: Any, aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="exporter.sync")
    sync = {"max_wait_seconds": 1, "backoff_initial_seconds": 0.2, "backoff_max_seconds": 1}
    cfg = exporter_config(sim_vcenter(sim), sync={**sync, "hold_seconds": 1})
    client = await aiohttp_client(create_app(cfg))
    await wait_for(client, up, timeout=30)
    sim.stop_process()  # vCenter goes away; its certificate and ports stay for the restart
    samples, _ = await wait_for(client, lambda s: not up(s), timeout=15)
    # Past the (here 1 s) hold a blind watcher claims nothing.
    samples, _ = await wait_for(client, lambda s: select(s, "vsphere_host_info") == [], 5)
    assert (await client.get("/readyz")).status == 503
    assert "vcenter=vc1" in caplog.text and "sync failed" in caplog.text
    sim.restart()
    samples, _ = await wait_for(client, up, timeout=30)
    assert value(samples, "vsphere_sync_resyncs_total", vcenter="vc1") == 2
    assert len(select(samples, "vsphere_host_info")) == len(sim.inventory()["hosts"])


async def test_bad_credentials_report_auth_errors_without_the_password(
    sim: Any, aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="exporter.sync")
    entry = sim_vcenter(sim, password="wrong-password-xyz")
    client = await aiohttp_client(create_app(exporter_config(entry)))
    samples, _ = await wait_for(
        client,
        lambda s: (value(s, "vsphere_sync_errors_total", vcenter="vc1", reason="auth") or 0) >= 1,
        timeout=15,
    )
    assert not up(samples)
    assert "reason=auth" in caplog.text
    assert "wrong-password-xyz" not in caplog.text
    text = await (await client.get("/metrics")).text()
    assert "wrong-password-xyz" not in text


async def test_tls_verification_is_on_by_default(
    sim: Any, aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    if not sim.ca_file:
        pytest.fail("the simulator must publish its certificate (ca_file) for this test")
    entry = sim_vcenter(sim)
    del entry["ca_file"]  # system CAs only: the simulator's self-signed cert must be refused
    client = await aiohttp_client(create_app(exporter_config(entry)))
    samples, _ = await wait_for(
        client,
        lambda s: (
            (value(s, "vsphere_sync_errors_total", vcenter="vc1", reason="connect") or 0) >= 1
        ),
        timeout=15,
    )
    assert not up(samples)


async def test_many_vcenters_one_down_does_not_hide_the_others(
    sim_factory: Any, aiohttp_client: Any
) -> None:
    sims = [sim_factory(clusters=1, hosts=2, vms=2) for _ in range(3)]
    entries = [sim_vcenter(s, name=f"vc{i}") for i, s in enumerate(sims)]
    client = await aiohttp_client(create_app(exporter_config(*entries)))
    await wait_for(client, lambda s: all(up(s, f"vc{i}") for i in range(3)), timeout=30)
    sims[1].stop_process()
    samples, _ = await wait_for(client, lambda s: not up(s, "vc1"), timeout=15)
    assert up(samples, "vc0") and up(samples, "vc2")
    host = sims[2].inventory()["hosts"][0]["name"]
    sims[2].set_host(host, inMaintenanceMode=True)
    await wait_for(
        client,
        lambda s: value(s, "vsphere_host_maintenance_mode", vcenter="vc2", host=host) == 1,
        FAULT_WINDOW,
    )


async def test_metrics_serves_gzip_and_scrape_self_metrics(sim: Any, aiohttp_client: Any) -> None:
    client = await aiohttp_client(create_app(exporter_config(sim_vcenter(sim))))
    await wait_for(client, up, timeout=30)
    resp = await client.get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert resp.headers.get("Content-Encoding") == "gzip"
    text = await resp.text()  # aiohttp decompresses
    assert "vsphere_host_info" in text and "process_resident_memory_bytes" in text
    samples = await scrape(client)
    assert all(
        s.value == 1 for s in select(samples, "vsphere_scrape_collector_success", vcenter="vc1")
    )
    assert len(select(samples, "vsphere_scrape_collector_success")) == len(COLLECTORS)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("InvalidCollectorVersion", "fault"), ("NotAuthenticated", "session")],
)
async def test_invalidated_filter_or_lost_session_resyncs(
    sim: Any, aiohttp_client: Any, fault: str, reason: str
) -> None:
    client = await aiohttp_client(create_app(exporter_config(sim_vcenter(sim))))
    await wait_for(client, up, timeout=30)
    sim.inject_fault("WaitForUpdatesEx", fault, count=1)
    samples, _ = await wait_for(
        client,
        lambda s: (
            (value(s, "vsphere_sync_errors_total", vcenter="vc1", reason=reason) or 0) >= 1
            and (value(s, "vsphere_sync_resyncs_total", vcenter="vc1") or 0) >= 2
            and up(s)
        ),
        timeout=15,
    )
    # After the resync the image follows vCenter again.
    host = sim.inventory()["hosts"][0]["name"]
    sim.set_host(host, inMaintenanceMode=True)
    await wait_for(
        client, lambda s: value(s, "vsphere_host_maintenance_mode", host=host) == 1, FAULT_WINDOW
    )


async def test_a_vcenter_that_never_answers_times_out(aiohttp_client: Any) -> None:
    """TCP accepted, then silence: the follower must give up and report, not hang."""
    import os
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # connections complete in the backlog; nothing ever answers
    port = silent.getsockname()[1]
    os.environ["VHA_TEST_SILENT_PASSWORD"] = "x"
    entry = {
        "name": "silent",
        "url": f"https://127.0.0.1:{port}/sdk",
        "user": "u",
        "password_env": "VHA_TEST_SILENT_PASSWORD",
        "verify_tls": False,
        "timeout_seconds": 1,
    }
    try:
        client = await aiohttp_client(create_app(exporter_config(entry)))
        samples, _ = await wait_for(
            client,
            lambda s: (
                (value(s, "vsphere_sync_errors_total", vcenter="silent", reason="timeout") or 0)
                >= 1
            ),
            timeout=20,
        )
        assert value(samples, "vsphere_up", vcenter="silent") == 0
    finally:
        silent.close()
