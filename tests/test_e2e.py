"""The whole stack, end to end, through the real Prometheus and Alertmanager.

One stack for the module (simulator, exporter, remediator, Prometheus, Alertmanager on
loopback, test timings); each test uses its own hosts and VMs so they do not interfere.
The blind-watcher test stops the exporter, so it runs last.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim

from vha.demo.stack import Stack, StackOptions, get_json

from . import dashboard_queries as dq

HOST_VMS = 20  # VMs per host: the target is a 20-VM host back in <= 30 s
SIM = {"datacenters": 1, "clusters": 2, "hosts": 4, "vms": 4 * HOST_VMS, "fault_domains": 2}
REMEDIATOR = {
    "ha_grace_seconds": 1,
    "ha": {"defer_to_ha": False},  # the simulator has no vSphere HA agent
    "host_failure": {"confirm_seconds": 1, "require_fdm_host_down": True},
    "vm_monitoring": {"min_uptime_seconds": 5, "prefer_cluster_settings": False},
    "retry": {"backoff_initial_seconds": 0.5, "backoff_max_seconds": 2},
    "max_concurrent_tasks": 8,
    # Several tests fail a host of the same 4-host cluster within minutes; the default guard
    # (more than 34 % of a cluster failed within 600 s, as the rules' mass failure) would
    # rightly hold the second one. The guard has its own tests; here it allows 2 of 4.
    "guard": {"max_failed_share": 0.5},
}


def wait_until(what: str, check: Callable[[], Any], timeout: float, every: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


@pytest.fixture(scope="module")
def stack(sim_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    opts = StackOptions(
        run_dir=tmp_path_factory.mktemp("stack"),
        sim=SIM,
        remediator_overrides=REMEDIATOR,
    )
    st = Stack(opts)
    st.start()
    try:
        wait_until(
            "the first scrape",
            lambda: st.query('up{job="vsphere-exporter"} == 1'),
            timeout=30,
        )
        yield st
    finally:
        st.stop()


def hosts_by_name(st: Stack) -> dict[str, dict[str, Any]]:
    return {h["name"]: h for h in st.sim.inventory()["hosts"]}


def vms_by_name(st: Stack) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in st.sim.inventory()["vms"]}


def pick_host(st: Stack, cluster_index: int) -> dict[str, Any]:
    """A host that is not its cluster's HA master (so no election muddies timings)."""
    inv = st.sim.inventory()
    cluster = inv["clusters"][cluster_index]
    hosts = [h for h in inv["hosts"] if h["cluster"] == cluster["name"]]
    return next(h for h in hosts if h["name"] != cluster["master"] and h["vms"])


def alert_state(st: Stack, alertname: str, **labels: str) -> str | None:
    for a in st.firing_alerts():
        lb = a["labels"]
        if lb.get("alertname") == alertname and all(lb.get(k) == v for k, v in labels.items()):
            return str(a["state"])
    return None


def test_host_failure_restarts_its_vms_elsewhere(stack: Stack) -> None:
    host = pick_host(stack, 0)
    victims = list(host["vms"])
    assert len(victims) == HOST_VMS
    t0 = time.monotonic()
    stack.sim.fail_host(host["name"])
    marks: dict[str, float] = {}
    deadline = t0 + 90

    def all_running_elsewhere() -> bool:
        hosts = hosts_by_name(stack)
        vms = vms_by_name(stack)
        for name in victims:
            vm = vms.get(name)
            if vm is None:  # between unregister and register
                return False
            target = hosts[vm["host"]]
            if vm["host"] == host["name"] or vm["powerState"] != "poweredOn":
                return False
            if target["connectionState"] != "connected" or target["inMaintenanceMode"]:
                return False
        return True

    while time.monotonic() < deadline:
        now = time.monotonic() - t0
        state = alert_state(stack, "VsphereHostNotResponding", host=host["name"])
        if state and "detect" not in marks:
            marks["detect"] = now
        if state == "firing" and "alert" not in marks:
            marks["alert"] = now
        if "deliver" not in marks and stack.remediator_actions(host=host["name"]):
            marks["deliver"] = now
        if all_running_elsewhere():
            marks["act"] = now
            break
        time.sleep(0.2)
    assert "act" in marks, f"VMs not restarted elsewhere in 90s; stages seen: {marks}"
    total = marks["act"]
    stages, previous = [], 0.0
    for stage in ("detect", "alert", "deliver", "act"):
        at = marks.get(stage, previous)
        stages.append(f"{stage} {at - previous:.1f}s ({(at - previous) / total:.0%})")
        previous = at
    print(
        f"\nhost failure, {len(victims)} VMs: fault -> last VM running {total:.1f}s: "
        + ", ".join(stages)
    )
    # Every protected VM runs on a healthy host; fault domains are sites by default
    # (placement.fault_domains), so they stayed in the failed host's while it had room.
    hosts = hosts_by_name(stack)
    vms = vms_by_name(stack)
    domains = [hosts[vms[n]["host"]]["faultDomain"] for n in victims]
    assert all(hosts[vms[n]["host"]]["connectionState"] == "connected" for n in victims)
    assert domains.count(host["faultDomain"]) > len(victims) // 2, domains
    actions = stack.remediator_actions(host=host["name"])
    states = {(a["kind"], a["state"]) for a in actions}
    restarts = [a for a in actions if a["kind"] != "restart_host_vms"]
    assert len(restarts) == len(victims) and all(a["state"] == "done" for a in restarts), states
    assert not any(a["state"] == "failed" for a in actions), states
    stack.sim.recover_host(host["name"])


def diagnose(stack: Stack, vm_name: str) -> str:
    """What Prometheus and the simulator say about a VM, for a failure message."""
    exprs = [
        f'vsphere_vm_guest_heartbeat_status{{vm="{vm_name}"}} == 1',
        f'vsphere_vm_app_heartbeat_status{{vm="{vm_name}"}} == 1',
        f'time() - vsphere_vm_app_heartbeat_last_green_timestamp_seconds{{vm="{vm_name}"}}',
        f'time() - vsphere_vm_boot_time_seconds{{vm="{vm_name}"}}',
        "vsphere_vm:ha_failure_interval_seconds * on (vcenter, vm_id) group_left (vm)"
        f' vsphere_vm_info{{vm="{vm_name}"}}',
        'up{job="vsphere-exporter"}',
        'ALERTS{alertstate="firing"}',
    ]
    lines = [f"{e} => {[(r['metric'], r['value'][1]) for r in stack.query(e)]}" for e in exprs]
    lines.append(f"simulator: {stack.sim.get_vm(vm_name)}")
    return "\n".join(lines)


def test_guest_and_application_heartbeat_failures_end_in_resets(stack: Stack) -> None:
    """Both at once (the cluster's 30 s failure interval dominates the time)."""
    host = pick_host(stack, 1)
    cases = {
        host["vms"][0]: ({"guestHeartbeatStatus": "red"}, "VsphereVmHeartbeatFailure"),
        host["vms"][1]: ({"appHeartbeatStatus": "appStatusRed"}, "VsphereVmAppHeartbeatFailure"),
    }
    before = vms_by_name(stack)
    t0 = time.monotonic()
    for vm_name, (fault, _) in cases.items():
        assert before[vm_name]["powerState"] == "poweredOn"
        stack.sim.set_vm(vm_name, **fault)
    # Watch both alerts at once: the faster one may fire, be acted on and resolve while the
    # other is still pending, so waiting for them one after the other can miss it.
    fired_at: dict[str, float] = {}

    def both_fired() -> bool:
        for v, (_, a) in cases.items():
            if v not in fired_at and alert_state(stack, a, vm=v) == "firing":
                fired_at[v] = time.monotonic() - t0
        return len(fired_at) == len(cases)

    try:
        wait_until("both heartbeat alerts firing", both_fired, 90)
    except AssertionError as exc:
        missing = [v for v in cases if v not in fired_at]
        raise AssertionError(f"{exc}\n" + "\n".join(diagnose(stack, v) for v in missing)) from None
    for vm_name, (_, alertname) in cases.items():
        fired = fired_at[vm_name]

        def reset_done(v: str = vm_name) -> bool:
            acts = stack.remediator_actions(vm=v)
            return any(a["kind"] in ("reset", "reset_vm") and a["state"] == "done" for a in acts)

        try:
            wait_until(f"a reset of {vm_name}", reset_done, 40)
        except AssertionError as exc:
            seen = [
                (a["kind"], a["state"], a["reason"]) for a in stack.remediator_actions(vm=vm_name)
            ]
            raise AssertionError(f"{exc}; remediator actions for {vm_name}: {seen}") from None
        after = wait_until(
            f"{vm_name} healthy again",
            lambda v=vm_name: (
                (x := vms_by_name(stack)[v])["guestHeartbeatStatus"] == "green"
                and x["appHeartbeatStatus"] == "appStatusGreen"
                and x
            ),
            20,
        )
        assert after["host"] == before[vm_name]["host"]  # a reset, not a move
        took = time.monotonic() - t0
        print(f"\n{alertname}: fault -> firing {fired:.1f}s -> reset and healthy {took:.1f}s")


def test_a_vm_a_person_powered_off_is_left_alone(stack: Stack) -> None:

    vm_name = pick_host(stack, 1)["vms"][2]
    si = SmartConnect(**stack.sim.connection_kwargs())
    try:
        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(
            content.rootFolder, [vim.VirtualMachine], True
        )
        vm = next(v for v in view.view if v.name == vm_name)
        WaitForTask(vm.PowerOffVM_Task())  # a person, through the vCenter API
    finally:
        Disconnect(si)
    wait_until(
        f"VsphereVmPoweredOffUnexpectedly for {vm_name} or the remediator's decision",
        lambda: (
            alert_state(stack, "VsphereVmPoweredOffUnexpectedly", vm=vm_name)
            or stack.remediator_actions(vm=vm_name)
        ),
        40,
    )
    time.sleep(8)  # ample time for a (wrong) restart to happen
    assert vms_by_name(stack)[vm_name]["powerState"] == "poweredOff"
    for act in stack.remediator_actions(vm=vm_name):
        assert act["state"] != "done" or act["kind"] != "restart_vm", act


def test_every_dashboard_query_returns_data(stack: Stack) -> None:
    variables = {**dq.ALL_VARIABLES, "__rate_interval": "4s", "__range": "1m"}
    problems: list[str] = []
    for board in dq.load_dashboards():
        problems += [
            f"{board.get('uid')}: {p}"
            for p in dq.check_dashboard(stack.url("prometheus"), board, variables)
        ]
    assert problems == [], "\n".join(problems)


# Counters that are 0 on a healthy estate, and the alerts they feed (docs/alerts.md).
ZERO_FED_ALERTS = {
    "vsphere_vm_memory_swap_in_bytes_per_second": "VsphereVmMemorySwapping",
    "vsphere_host_memory_swap_in_bytes_per_second": "VsphereHostMemorySwapping",
    "vsphere_host_memory_balloon_bytes": "VsphereHostMemoryBallooning",
    "vsphere_vm_cpu_costop_ratio": "VsphereVmCpuCostopHigh",
    "vsphere_vm_network_dropped_packets_per_second": "VsphereVmNetworkDroppedPackets",
    "vsphere_host_network_dropped_packets_per_second": "VsphereHostNetworkDroppedPackets",
}


def test_healthy_counters_feed_their_alerts_zeros(stack: Stack) -> None:
    """vCenter sends a counter that is 0 as 0 (so does the simulator, sim/perfzeros.go): the
    swapping, ballooning, co-stop and dropped-packet alerts evaluate real series here, not
    only in promtool, and stay silent on a healthy estate."""
    for metric in ZERO_FED_ALERTS:
        result = stack.query(metric)
        assert result, f"no {metric} series"
        if metric != "vsphere_vm_cpu_costop_ratio":  # vcsim's canned co-stop: small spikes
            assert all(float(r["value"][1]) == 0 for r in result), (metric, result)
    names = {a["labels"]["alertname"] for a in stack.firing_alerts()}
    assert names.isdisjoint(ZERO_FED_ALERTS.values()), names


def test_no_alert_resolves_and_refires_across_a_short_reconnect(stack: Stack) -> None:
    """A lost session and two refused logins (about 3 s blind): the exporter holds its last
    image, so a firing host alert stays firing with the same activeAt in Prometheus and the
    same startsAt in Alertmanager, instead of resolving and firing again."""
    host = pick_host(stack, 0)
    name = host["name"]
    stack.sim.set_host(name, dasHostState="networkPartitionedFromMaster")
    labels = {"host": name}
    wait_until(
        "VsphereHostNetworkPartitioned firing",
        lambda: alert_state(stack, "VsphereHostNetworkPartitioned", **labels) == "firing",
        30,
    )

    def prom_active_at() -> str | None:
        for a in stack.firing_alerts():
            lb = a["labels"]
            if lb.get("alertname") == "VsphereHostNetworkPartitioned" and lb.get("host") == name:
                return str(a["activeAt"]) if a["state"] == "firing" else None
        return None

    def am_starts_at() -> str | None:
        alerts = get_json(f"{stack.url('alertmanager')}/api/v2/alerts")
        for a in alerts:
            lb = a["labels"]
            if lb.get("alertname") == "VsphereHostNetworkPartitioned" and lb.get("host") == name:
                return str(a["startsAt"])
        return None

    wait_until("the alert in Alertmanager", am_starts_at, 15)
    active, starts = prom_active_at(), am_starts_at()
    stack.sim.inject_fault("Login", "InvalidLogin", count=2)
    stack.sim.inject_fault("WaitForUpdatesEx", "NotAuthenticated")  # the session is lost
    blind = wait_until(
        "vsphere_up 0",
        lambda: stack.query('vsphere_up{vcenter="vcsim"} == 0'),
        15,
        every=0.1,
    )
    assert blind
    deadline = time.monotonic() + 30
    recovered_at = None
    while time.monotonic() < deadline:
        assert prom_active_at() == active, "the alert resolved or restarted in Prometheus"
        assert am_starts_at() == starts, "the alert resolved or restarted in Alertmanager"
        if recovered_at is None and stack.query('vsphere_up{vcenter="vcsim"} == 1'):
            recovered_at = time.monotonic()
        if recovered_at is not None and time.monotonic() - recovered_at > 8:
            break
        time.sleep(0.25)
    assert recovered_at is not None, "the exporter did not reconnect"
    stack.sim.set_host(name, dasHostState="connectedToMaster")


def test_a_host_powered_off_and_not_responding_pages_once(stack: Stack) -> None:
    """vCenter reports a host it powered off as powered off and not responding: one alert
    (VsphereHostPoweredOff) reaches Alertmanager and the remediator, not two."""
    host = pick_host(stack, 0)
    victims = list(host["vms"])
    stack.sim.fail_host(host["name"])  # not responding, vSphere HA says hostDown ...
    stack.sim.set_host(host["name"], powerState="poweredOff")  # ... after vCenter powered it off

    def live_alerts() -> list[str]:
        alerts = get_json(f"{stack.url('alertmanager')}/api/v2/alerts?active=true")
        return sorted(
            a["labels"]["alertname"]
            for a in alerts
            if a["labels"].get("host") == host["name"] and a["labels"].get("severity") == "critical"
        )

    wait_until(
        "VsphereHostPoweredOff in Alertmanager",
        lambda: "VsphereHostPoweredOff" in live_alerts(),
        60,
    )
    time.sleep(5)  # several evaluations: VsphereHostNotResponding must stay out
    assert live_alerts() == ["VsphereHostPoweredOff"]
    assert alert_state(stack, "VsphereHostNotResponding", host=host["name"]) is None

    def restarted() -> bool:
        vms = vms_by_name(stack)
        return all(
            n in vms and vms[n]["host"] != host["name"] and vms[n]["powerState"] == "poweredOn"
            for n in victims
        )

    wait_until("the VMs restarted elsewhere", restarted, 90)
    kinds = {a["kind"] for a in stack.remediator_actions(host=host["name"])}
    assert "restart_host_vms" in kinds
    stack.sim.set_host(host["name"], powerState="poweredOn")
    stack.sim.recover_host(host["name"])
    # It comes back with its stale copies of the VMs: let the remediator unregister them
    # before the next test counts actions.
    wait_until(
        "the stale copies unregistered",
        lambda: not hosts_by_name(stack)[host["name"]]["vms"],
        60,
    )
    counts = [len(stack.remediator_actions())]

    def settled() -> bool:
        counts.append(len(stack.remediator_actions()))
        return counts[-1] == counts[-2]

    wait_until("the remediator idle", settled, 30, every=3)


def test_blind_watcher_moves_nothing_and_pages(stack: Stack) -> None:
    host = pick_host(stack, 1)
    victims = set(host["vms"])
    before = {n: v["host"] for n, v in vms_by_name(stack).items() if n in victims}
    actions_before = len(stack.remediator_actions())
    stack.processes["exporter"].kill()  # the watcher goes blind ...
    stack.sim.fail_host(host["name"])  # ... while a host looks failed
    wait_until(
        "VsphereExporterDown firing",
        lambda: alert_state(stack, "VsphereExporterDown") == "firing",
        30,
    )
    time.sleep(10)  # longer than detection + remediation took with the watcher up
    after = {n: v["host"] for n, v in vms_by_name(stack).items() if n in victims}
    assert after == before
    assert len(stack.remediator_actions()) == actions_before
