"""Two vCenter accounts in the simulator: the exporter's read-only one, the remediator's.

A real vCenter checks every call against the caller's role and answers ``NoPermission``
(object, privilegeId) when the privilege is missing; the simulator's ``-account`` users do
the same (docs/simulator.md, "Accounts and roles").
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from exporter.app import create_app
from sim.harness import EXPORTER_ACCOUNT, REMEDIATOR_ACCOUNT, Simulator

from .exporter_fixtures import account_entry, exporter_config, wait_for
from .metrics_helpers import current_state, value
from .remediator_fixtures import AUTH, alert, until
from .remediator_sim import host_labels, send, settled, start, vm_labels

ACCOUNTS = [EXPORTER_ACCOUNT, REMEDIATOR_ACCOUNT]


@pytest.fixture
def asim(sim_factory: Callable[..., Simulator]) -> Simulator:
    """One cluster, the exporter's read-only and the remediator's operator account."""
    return sim_factory(clusters=1, hosts=3, vms=3, accounts=ACCOUNTS)


def login(sim: Simulator, account: str | None = None) -> Any:
    return SmartConnect(**sim.connection_kwargs(account))


def vm_ref(si: Any, moid: str) -> Any:
    return vim.VirtualMachine(moid, si._stub)


def test_ready_line_lists_the_accounts_without_passwords(asim: Simulator) -> None:
    assert asim._ready is not None
    assert asim._ready["accounts"] == [
        {"username": "user", "role": "admin"},
        {"username": "vha-exporter", "role": "read-only"},
        {"username": "vha-remediator", "role": "operator"},
    ]
    assert "exporter-pass" not in asim.log_tail(200)


def test_each_account_logs_in_with_its_own_password_only(asim: Simulator) -> None:
    for who in (None, "vha-exporter", "vha-remediator"):
        si = login(asim, who)
        assert si.content.sessionManager.currentSession.userName == (who or "user")
        Disconnect(si)
    wrong = {**asim.connection_kwargs("vha-exporter"), "pwd": REMEDIATOR_ACCOUNT.password}
    with pytest.raises(vim.fault.InvalidLogin):
        SmartConnect(**wrong)
    with pytest.raises(vim.fault.InvalidLogin):
        SmartConnect(**{**asim.connection_kwargs(), "user": "nobody", "pwd": "x"})


def test_read_only_account_gets_no_permission_on_every_change(asim: Simulator) -> None:
    vms = {v["name"]: v for v in asim.inventory()["vms"]}
    hosts = {h["name"]: h for h in asim.inventory()["hosts"]}
    vm = vms["DC0_C0_VM0"]
    si = login(asim, "vha-exporter")
    try:
        ref = vm_ref(si, vm["moid"])
        host = vim.HostSystem(hosts["DC0_C0_H1"]["moid"], si._stub)
        assert ref.runtime.powerState == "poweredOn"  # reading works
        calls: list[tuple[Callable[[], Any], str, Any]] = [
            (ref.PowerOffVM_Task, "VirtualMachine.Interact.PowerOff", ref),
            (ref.ResetVM_Task, "VirtualMachine.Interact.Reset", ref),
            (ref.PowerOnVM_Task, "VirtualMachine.Interact.PowerOn", ref),
            (ref.UnregisterVM, "VirtualMachine.Inventory.Unregister", ref),
            (
                lambda: ref.RelocateVM_Task(spec=vim.vm.RelocateSpec(host=host)),
                "Resource.HotMigrate",
                ref,
            ),
            (
                lambda: ref.MigrateVM_Task(host=host, priority="defaultPriority"),
                "Resource.HotMigrate",
                ref,
            ),
            (
                lambda: ref.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation="x")),
                "VirtualMachine.Config.Settings",
                ref,
            ),
            (lambda: host.EnterMaintenanceMode_Task(timeout=0), "Host.Config.Maintenance", host),
            (
                lambda: ref.setCustomValue(key="HA-RestartPriority", value="low"),
                "Global.SetCustomField",
                ref,
            ),
        ]
        for call, privilege, obj in calls:
            with pytest.raises(vim.fault.NoPermission) as err:
                call()
            assert not isinstance(err.value, vim.fault.NotAuthenticated)
            assert err.value.privilegeId == privilege
            assert err.value.object._moId == obj._moId
        folder = ref.parent
        with pytest.raises(vim.fault.NoPermission) as err:
            folder.RegisterVM_Task(path="[LocalDS_0] x/x.vmx", asTemplate=False)
        assert err.value.privilegeId == "VirtualMachine.Inventory.Register"
    finally:
        Disconnect(si)
    after = {v["name"]: v for v in asim.inventory()["vms"]}["DC0_C0_VM0"]
    assert after["powerState"] == "poweredOn" and after["host"] == vm["host"]
    assert after["bootTime"] == vm["bootTime"]  # not reset either
    assert not asim.get_host("DC0_C0_H1")["inMaintenanceMode"]


def test_operator_account_has_the_remediator_privileges_and_no_more(asim: Simulator) -> None:
    vm = {v["name"]: v for v in asim.inventory()["vms"]}["DC0_C0_VM1"]
    si = login(asim, "vha-remediator")
    try:
        ref = vm_ref(si, vm["moid"])
        with pytest.raises(vim.fault.NoPermission) as err:
            ref.PowerOffVM_Task()  # the remediator never powers off
        assert err.value.privilegeId == "VirtualMachine.Interact.PowerOff"
        task = ref.ResetVM_Task()
        until_done(task)
    finally:
        Disconnect(si)
    assert asim.get_vm("DC0_C0_VM1")["bootTime"] != vm["bootTime"]


def until_done(task: Any) -> None:
    import time

    deadline = time.monotonic() + 10
    while task.info.state not in ("success", "error"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert task.info.state == "success", task.info.error


def test_without_accounts_one_user_and_no_permission_checks(sim: Simulator) -> None:
    assert sim._ready is not None and "accounts" not in sim._ready
    with pytest.raises(vim.fault.InvalidLogin):
        SmartConnect(**{**sim.connection_kwargs(), "user": "vha-exporter", "pwd": "x"})


def test_bad_account_flags_exit_2_with_one_line(sim_binary: Path) -> None:
    import subprocess

    for bad, why in (
        (["-account", "superuser:x:y"], 'unknown role "superuser"'),
        (["-account", "read-only:x"], "ROLE:NAME:PASSWORD"),
        (["-account", "read-only:user:pw"], "already taken"),
    ):
        proc = subprocess.run(
            [str(sim_binary), *bad], capture_output=True, text=True, timeout=30, check=False
        )
        assert proc.returncode in (1, 2), proc
        assert why in proc.stderr, proc.stderr
        assert "goroutine" not in proc.stderr


async def test_exporter_runs_on_the_read_only_account(asim: Simulator, aiohttp_client: Any) -> None:
    entry = account_entry(asim, EXPORTER_ACCOUNT)
    cfg = exporter_config(entry, performance={"interval_seconds": 1})
    client = await aiohttp_client(create_app(cfg))
    samples, _ = await wait_for(
        client,
        lambda s: (
            value(s, "vsphere_up", vcenter="vc1") == 1
            and bool(value(s, "vsphere_perf_last_success_timestamp_seconds", vcenter="vc1"))
        ),
        timeout=30,
    )  # inventory, updates and QueryPerf all work on the Read-only role
    assert not any(
        v for s in samples if s.name == "vsphere_perf_errors_total" for v in [s.value]
    ), [s for s in samples if s.name == "vsphere_perf_errors_total" and s.value]
    assert value(samples, "vsphere_inventory_objects", vcenter="vc1", type="vm") == 3
    # every read the exporter makes is allowed: nothing counted as an auth or fault error
    for reason in ("auth", "fault"):
        assert not value(samples, "vsphere_sync_errors_total", vcenter="vc1", reason=reason)
    asim.set_vm("DC0_C0_VM2", guestHeartbeatStatus="red")  # updates keep flowing
    await wait_for(
        client,
        lambda s: (
            current_state(s, "vsphere_vm_guest_heartbeat_status", "status", vm="DC0_C0_VM2")
            == "red"
        ),
        timeout=10,
    )


async def test_remediator_on_the_read_only_account_reports_the_refusal(
    asim: Simulator, aiohttp_client: Any, tmp_path: Path
) -> None:
    target = {v["name"]: v for v in asim.inventory()["vms"]}["DC0_C0_VM2"]
    asim.set_vm(target["name"], guestHeartbeatStatus="red")
    entry = account_entry(asim, EXPORTER_ACCOUNT)
    client = await start(aiohttp_client, asim, tmp_path, vcenter=entry)
    await send(client, alert("reset_vm", **vm_labels(target)))

    async def finished() -> list[dict[str, Any]] | None:
        r = await client.get("/api/v1/actions", params={"vm": target["name"]}, headers=AUTH)
        items: list[dict[str, Any]] = (await r.json())["actions"]
        busy = [a for a in items if a["state"] in ("pending", "running")]
        return None if busy or not any(a["kind"] == "reset" for a in items) else items

    items = await until(finished, 20, what="the reset step to finish")
    [step] = [a for a in items if a["kind"] == "reset"]
    assert step["state"] == "failed", step
    text = str(step.get("reason", "")) + str(step.get("detail", ""))
    assert "NoPermission" in text, step
    assert "VirtualMachine.Interact.Reset" in text, step
    assert target["moid"] in text, step
    assert "Traceback" not in text
    health = await client.get("/healthz")
    assert health.status == 200  # refused, not crashed
    assert asim.get_vm(target["name"])["bootTime"] == target["bootTime"]  # nothing reset


async def test_remediator_on_the_operator_account_restarts_a_failed_hosts_vms(
    sim_factory: Callable[..., Simulator], aiohttp_client: Any, tmp_path: Path
) -> None:
    """The operator role is enough for the whole register path (unregister, register,
    attributes, permissions, DRS membership, power on): nothing refused."""
    sim = sim_factory(clusters=1, hosts=3, vms=6, accounts=ACCOUNTS)
    inv = sim.inventory()
    failed = next(h for h in inv["hosts"] if h["name"] == "DC0_C0_H0")
    on_failed = list(failed["vms"])
    priority = {v["name"]: v["restartPriority"] for v in inv["vms"]}
    sim.fail_host(failed["name"])
    client = await start(
        aiohttp_client, sim, tmp_path, vcenter=account_entry(sim, REMEDIATOR_ACCOUNT)
    )
    await send(client, alert("restart_host_vms", **host_labels(failed)))
    items = await settled(client, 40)
    assert "NoPermission" not in str(items), [a for a in items if "NoPermission" in str(a)]
    vms = {v["name"]: v for v in sim.inventory()["vms"]}
    for name in on_failed:
        assert vms[name]["powerState"] == "poweredOn", vms[name]
        assert vms[name]["host"] != failed["name"], vms[name]
        # re-registered with its custom attributes copied (Global.SetCustomField)
        assert vms[name]["restartPriority"] == priority[name], vms[name]
