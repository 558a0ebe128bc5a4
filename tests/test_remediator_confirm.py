"""The out-of-band confirmation hook against the simulator (issue 10, item 7).

On a cluster without vSphere HA, vCenter has no live read that tells a dead host from a
partitioned one: a rack that lost power shows ``notResponding`` with ``powerState:
unknown``, exactly like a rack behind a broken switch. ``host_failure.confirm_command``
asks the hosts' BMCs (IPMI/iLO/iDRAC/Redfish power status): exit 0 = off, exit 1 = alive,
anything else = unknown.

The cluster has 4 hosts in two racks (the HA-FaultDomain custom attribute): fd-a = H0, H2
and fd-b = H1, H3. A rack is half the cluster, above the mass-failure bounds (34 %), so
only a rack confirmed down as a whole gets through. The hook is a script the test writes;
it answers per host from a file the test controls and logs every call.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from .remediator_fixtures import alert, until
from .remediator_sim import (
    actions,
    host_labels,
    inventory,
    metric,
    send,
    settled,
    start,
    steps,
)
from .remediator_sim import (
    decision as first_decision,
)
from .test_remediator_fault_domains import disable_ha, domain_alert

pytestmark = pytest.mark.slow

RACK_A = ("DC0_C0_H0", "DC0_C0_H2")
RACK_B = ("DC0_C0_H1", "DC0_C0_H3")
# A rack is half the cluster: with this guard a rack alone passes, a third host trips it.
HALF = {"max_failed_share": 0.5, "max_failed_hosts": 2}


class PowerStatus:
    """A fake ``ipmitool chassis power status``: ``answers/<host>`` holds off, on or hang."""

    def __init__(self, tmp_path: Path) -> None:
        self.answers = tmp_path / "answers"
        self.answers.mkdir()
        self.log = tmp_path / "calls.log"
        self.script = tmp_path / "power-status.sh"
        env = "$VHA_HOST $VHA_HOST_ID $VHA_CLUSTER $VHA_VCENTER $VHA_ACTION_ID"
        self.script.write_text(
            "#!/bin/sh\n"
            f'echo "{env}" >> {self.log}\n'
            f'case "$(cat "{self.answers}/$VHA_HOST" 2>/dev/null)" in\n'
            '  off) echo "Chassis Power is off"; exit 0 ;;\n'
            '  on) echo "Chassis Power is on"; exit 1 ;;\n'
            "  hang) exec sleep 30 ;;\n"
            "esac\n"
            'echo "Error: Unable to establish IPMI v2 / RMCP+ session"; exit 2\n'
        )
        self.script.chmod(0o755)

    def answer(self, **by_host: str) -> None:
        for host, what in by_host.items():
            (self.answers / host).write_text(what)

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [line.split() for line in self.log.read_text().splitlines()]


def rack_sim(sim_factory: Any, hosts: int = 4) -> Any:
    return sim_factory(clusters=1, hosts=hosts, vms=2 * hosts)


async def silent_rack(sim: Any) -> list[str]:
    """HA off, then rack fd-a silent: notResponding, powerState unknown (vCenter cannot
    know the power state of a host it does not hear). Returns the VMs that ran there."""
    await disable_ha(sim)
    hosts, vms = inventory(sim)
    assert {hosts[n]["faultDomain"] for n in RACK_A} == {"fd-a"}
    running = [v for n in RACK_A for v in hosts[n]["vms"] if vms[v]["powerState"] == "poweredOn"]
    assert running
    for name in RACK_A:
        sim.fail_host(name)
    hosts, _ = inventory(sim)
    for name in RACK_A:
        assert hosts[name]["connectionState"] == "notResponding"
        assert hosts[name]["powerState"] == "unknown"
        assert hosts[name]["dasHostState"] is None  # no HA agents without HA
    return running


def hook_cfg(power: PowerStatus, **extra: Any) -> dict[str, Any]:
    return {"confirm_command": [str(power.script)], "confirm_timeout_seconds": 5, **extra}


async def test_rack_the_hook_confirms_off_is_restarted_in_the_other_rack(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    sim = rack_sim(sim_factory)
    running = await silent_rack(sim)
    power = PowerStatus(tmp_path)
    power.answer(DC0_C0_H0="off", DC0_C0_H2="off")
    client = await start(aiohttp_client, sim, tmp_path, host_failure=hook_cfg(power))
    await send(client, domain_alert(sim, "fd-a"))
    items = await settled(client, timeout=60)

    _, vms = inventory(sim)
    by_vm = steps(items)
    for name in running:
        assert vms[name]["powerState"] == "poweredOn", vms[name]
        assert vms[name]["host"] in RACK_B, vms[name]
        assert by_vm[name]["state"] == "done"
    [decision] = [a for a in items if a["parent_id"] is None]
    assert decision["state"] == "done", decision
    assert decision["detail"]["domain"]["state"] == "down"
    assert "confirmation hook" in decision["detail"]["domain"]["reason"]
    confirm = decision["detail"]["confirm"]
    assert {c["host"]: c["result"] for c in confirm.values()} == {
        "DC0_C0_H0": "down",
        "DC0_C0_H2": "down",
    }
    assert all("Chassis Power is off" in c["message"] for c in confirm.values())
    # The hook got the documented environment
    called = {c[0]: c for c in power.calls()}
    hosts, _ = inventory(sim)
    assert set(called) == set(RACK_A)
    assert called["DC0_C0_H0"][1:] == [
        hosts["DC0_C0_H0"]["moid"], "DC0_C0", "vc1", str(decision["id"])
    ]  # fmt: skip
    # Half the cluster is down, yet the guard did not hold it: the hook confirmed the rack
    tripped = await metric(client, "vha_remediator_guard_tripped", vcenter="vc1", cluster="DC0_C0")
    assert tripped == 0
    assert not any("mass-failure guard" in a["reason"] for a in items)
    down = await metric(client, "vha_remediator_confirm_checks_total", result="down")
    assert down is not None and down >= 2


async def test_rack_with_one_host_alive_is_a_partition_and_never_restarted(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    sim = rack_sim(sim_factory)
    await silent_rack(sim)
    before = sim.inventory()["vms"]
    power = PowerStatus(tmp_path)
    power.answer(DC0_C0_H0="off", DC0_C0_H2="on")  # H2 runs behind a broken switch
    client = await start(
        aiohttp_client, sim, tmp_path, host_failure=hook_cfg(power, max_unconfirmed_seconds=3)
    )
    await send(client, domain_alert(sim, "fd-a"))

    async def held() -> bool:
        return any(
            a["state"] == "pending" and "DC0_C0_H2" in a["reason"] and "alive" in a["reason"]
            for a in await actions(client)
        )

    await until(held, what="the rack held as a partition naming DC0_C0_H2")
    items = await settled(client, timeout=30)
    [decision] = items  # no steps: nothing was planned
    assert decision["state"] == "refused", decision
    assert "never confirmed down" in decision["reason"]
    assert "DC0_C0_H2" in decision["reason"] and "Chassis Power is on" in decision["reason"]
    assert decision["detail"]["domain"]["state"] == "partitioned"
    await asyncio.sleep(0.5)
    assert sim.inventory()["vms"] == before
    alive = await metric(client, "vha_remediator_confirm_checks_total", result="alive")
    assert alive is not None and alive >= 1
    # held work re-checks, but at most every state_refresh_seconds (0.5 s in tests)
    assert len(power.calls()) <= 2 * (3 / 0.5 + 3)


async def test_rack_whose_hook_times_out_is_held(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    sim = rack_sim(sim_factory)
    await silent_rack(sim)
    before = sim.inventory()["vms"]
    power = PowerStatus(tmp_path)
    power.answer(DC0_C0_H0="off", DC0_C0_H2="hang")  # H2's BMC does not answer
    client = await start(
        aiohttp_client, sim, tmp_path, host_failure=hook_cfg(power, confirm_timeout_seconds=1)
    )
    await send(client, domain_alert(sim, "fd-a"))

    async def held() -> dict[str, Any] | None:
        for a in await actions(client):
            if a["state"] == "pending" and "timed out" in a["reason"]:
                return a
        return None

    decision = await until(held, 20, what="the rack held on a hook timeout")
    assert "DC0_C0_H2" in decision["reason"]
    assert decision["detail"]["domain"]["state"] == "unknown"
    assert sim.inventory()["vms"] == before
    unknown = await metric(client, "vha_remediator_confirm_checks_total", result="unknown")
    assert unknown is not None and unknown >= 1


async def test_dry_run_runs_the_read_only_hook_and_changes_nothing(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    sim = rack_sim(sim_factory)
    running = await silent_rack(sim)
    before = sim.inventory()["vms"]
    power = PowerStatus(tmp_path)
    power.answer(DC0_C0_H0="off", DC0_C0_H2="off")
    client = await start(aiohttp_client, sim, tmp_path, dry_run=True, host_failure=hook_cfg(power))
    await send(client, domain_alert(sim, "fd-a"))
    items = await settled(client, timeout=60)
    by_vm = steps(items)
    assert {by_vm[n]["state"] for n in running} == {"dry_run"}
    assert {c[0] for c in power.calls()} == set(RACK_A)  # a power-status read: it ran
    assert sim.inventory()["vms"] == before


async def test_single_host_without_ha_needs_the_hook_to_say_off(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    # 6 hosts: two single failures are within the guard's bounds (2 hosts, 33 %)
    sim = rack_sim(sim_factory, hosts=6)
    await disable_ha(sim)
    hosts, vms = inventory(sim)
    alive, dead = hosts["DC0_C0_H0"], hosts["DC0_C0_H1"]
    sim.fail_host(alive["name"])
    sim.fail_host(dead["name"])
    power = PowerStatus(tmp_path)
    power.answer(DC0_C0_H0="on", DC0_C0_H1="off")
    client = await start(
        aiohttp_client, sim, tmp_path, host_failure=hook_cfg(power, max_unconfirmed_seconds=3)
    )
    await send(
        client,
        alert("restart_host_vms", **host_labels(alive)),
        alert("restart_host_vms", **host_labels(dead)),
    )
    items = await settled(client, timeout=60)
    after_hosts, after = inventory(sim)
    by_host = {a["host"]: a for a in items if a["parent_id"] is None}
    refused = by_host["DC0_C0_H0"]
    assert refused["state"] == "refused", refused
    assert "alive" in refused["reason"] and "DC0_C0_H0" in refused["reason"]
    assert all(after[v]["host"] == "DC0_C0_H0" for v in alive["vms"])
    assert by_host["DC0_C0_H1"]["state"] == "done", by_host["DC0_C0_H1"]
    moved = [v for v in dead["vms"] if vms[v]["powerState"] == "poweredOn"]
    assert moved
    for v in moved:
        assert after[v]["host"] != "DC0_C0_H1" and after[v]["powerState"] == "poweredOn"


async def test_fence_to_confirm_fences_an_unconfirmed_rack_and_restarts_it(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    sim = rack_sim(sim_factory)
    running = await silent_rack(sim)
    fenced = tmp_path / "fenced.log"
    fence = tmp_path / "fence.sh"
    fence.write_text(f'#!/bin/sh\necho "$VHA_HOST" >> {fenced}\necho "powered off"\n')
    fence.chmod(0o755)
    client = await start(
        aiohttp_client,
        sim,
        tmp_path,
        guard=HALF,  # the guard judges the rack before its fences: half the cluster
        host_failure={"fencing_command": [str(fence)], "fence_to_confirm": True},
    )
    await send(client, domain_alert(sim, "fd-a"))
    items = await settled(client, timeout=60)
    _, vms = inventory(sim)
    for name in running:
        assert vms[name]["host"] in RACK_B and vms[name]["powerState"] == "poweredOn"
    [decision] = [a for a in items if a["parent_id"] is None]
    assert decision["state"] == "done", decision
    assert sorted(fenced.read_text().split()) == sorted(RACK_A)  # each fenced once
    assert decision["detail"]["domain"]["state"] == "down"
    assert "fenced" in decision["detail"]["domain"]["reason"]


async def test_on_an_ha_cluster_an_alive_answer_vetoes_host_down(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    sim = rack_sim(sim_factory)  # vSphere HA on: its master reports both hosts hostDown
    for name in RACK_A:
        sim.fail_host(name)
    hosts, _ = inventory(sim)
    assert {hosts[n]["dasHostState"] for n in RACK_A} == {"hostDown"}
    before = sim.inventory()["vms"]
    power = PowerStatus(tmp_path)
    power.answer(DC0_C0_H0="off", DC0_C0_H2="on")  # but H2's BMC says it runs
    client = await start(
        aiohttp_client, sim, tmp_path, host_failure=hook_cfg(power, max_unconfirmed_seconds=2)
    )
    await send(client, domain_alert(sim, "fd-a"))
    items = await settled(client, timeout=30)
    [decision] = items
    assert decision["state"] == "refused", decision
    assert "DC0_C0_H2" in decision["reason"] and "alive" in decision["reason"]
    assert decision["detail"]["domain"]["state"] == "partitioned"
    assert sim.inventory()["vms"] == before


async def test_a_failed_fence_to_confirm_restarts_nothing(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    sim = rack_sim(sim_factory)
    await silent_rack(sim)
    before = sim.inventory()["vms"]
    fence = tmp_path / "fence.sh"
    fence.write_text(
        '#!/bin/sh\n[ "$VHA_HOST" = DC0_C0_H2 ] && { echo "BMC refused"; exit 1; }\necho off\n'
    )
    fence.chmod(0o755)
    client = await start(
        aiohttp_client,
        sim,
        tmp_path,
        guard=HALF,
        host_failure={"fencing_command": [str(fence)], "fence_to_confirm": True},
    )
    await send(client, domain_alert(sim, "fd-a"))
    items = await settled(client, timeout=60)
    [decision] = items
    assert decision["state"] == "failed", decision
    assert "fencing DC0_C0_H2 to confirm it down failed" in decision["reason"]
    assert "BMC refused" in decision["reason"]
    assert sim.inventory()["vms"] == before


async def test_a_confirmation_refresh_that_raises_does_not_stop_the_watcher(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watcher runs the hook refresh beside its loop: a refresh that raises (a bug, a
    hook's process gone at its timeout) is logged and counted, and the guard's view of
    the cluster keeps updating (review finding 4, issue 10)."""
    from remediator import confirm

    async def broken(*_: Any) -> None:
        raise ProcessLookupError(3, "No such process")

    monkeypatch.setattr(confirm, "refresh", broken)
    sim = rack_sim(sim_factory)
    power = PowerStatus(tmp_path)
    client = await start(aiohttp_client, sim, tmp_path, host_failure=hook_cfg(power))

    async def errors() -> float | None:
        return await metric(client, "vha_remediator_confirm_refresh_errors_total", vcenter="vc1")

    await until(errors, 10, what="the failed refresh counted")
    sim.fail_host("DC0_C0_H0")

    async def seen() -> bool:
        failed = await metric(
            client, "vha_remediator_guard_failed_hosts", vcenter="vc1", cluster="DC0_C0"
        )
        return failed == 1

    await until(seen, 10, what="the guard seeing the failed host after the refresh raised")


def fence_script(tmp_path: Path, fail_once: str = "") -> tuple[Path, Path]:
    """A fencing hook logging each host it fences; ``fail_once``'s first fence fails."""
    fenced = tmp_path / "fenced.log"
    flag = tmp_path / "failed-once"
    fence = tmp_path / "fence.sh"
    fail = (
        f'[ "$VHA_HOST" = {fail_once} ] && [ ! -e {flag} ] && '
        f'{{ touch {flag}; echo "BMC busy"; exit 1; }}\n'
        if fail_once
        else ""
    )
    fence.write_text(f'#!/bin/sh\n{fail}echo "$VHA_HOST" >> {fenced}\necho "powered off"\n')
    fence.chmod(0o755)
    return fence, fenced


async def test_fence_to_confirm_waits_confirm_seconds_before_fencing(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    """A silent rack is not fenced at the first look: confirm_seconds of silence first, as
    for a single host (review finding 1, issue 10)."""
    sim = rack_sim(sim_factory)
    await silent_rack(sim)
    fence, fenced = fence_script(tmp_path)
    client = await start(
        aiohttp_client,
        sim,
        tmp_path,
        guard=HALF,
        host_failure={
            "fencing_command": [str(fence)],
            "fence_to_confirm": True,
            "confirm_seconds": 300,
        },
    )
    await send(client, domain_alert(sim, "fd-a"))
    found = await first_decision(client, lambda a: "confirming" in a["reason"], "a confirm wait")
    assert found["state"] == "pending" and found["not_before"] > found["created_at"] + 250
    await asyncio.sleep(1.5)  # several state_refresh_seconds: still nothing fenced
    assert not fenced.exists()


async def test_fence_to_confirm_fences_nothing_while_the_guard_trips(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    """The guard judges the unfenced rack: another failed host of the cluster trips it, and
    no host is fenced (review finding 1, issue 10)."""
    sim = rack_sim(sim_factory)
    await silent_rack(sim)
    sim.fail_host("DC0_C0_H1")  # 3 of 4 hosts silent: above both bounds
    fence, fenced = fence_script(tmp_path)
    client = await start(
        aiohttp_client,
        sim,
        tmp_path,
        guard=HALF,
        host_failure={"fencing_command": [str(fence)], "fence_to_confirm": True},
    )
    await send(client, domain_alert(sim, "fd-a"))
    await first_decision(client, lambda a: a["reason"].startswith("held:"), "the guard holding it")
    await asyncio.sleep(1.5)
    assert not fenced.exists()


async def test_a_fence_that_succeeded_is_not_run_again_after_another_failed(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    """Fencing a confirmed-down rack before its restart: H0's fence succeeds, H2's fails
    once; the retry fences only H2 (review finding 2, issue 10)."""
    sim = rack_sim(sim_factory)
    running = await silent_rack(sim)
    power = PowerStatus(tmp_path)
    power.answer(DC0_C0_H0="off", DC0_C0_H2="off")
    fence, fenced = fence_script(tmp_path, fail_once="DC0_C0_H2")
    client = await start(
        aiohttp_client, sim, tmp_path, host_failure=hook_cfg(power, fencing_command=[str(fence)])
    )
    await send(client, domain_alert(sim, "fd-a"))
    items = await settled(client, timeout=60)
    [d] = [a for a in items if a["parent_id"] is None]
    assert d["state"] == "done", d
    assert sorted(fenced.read_text().split()) == sorted(RACK_A)  # each fenced once
    _, vms = inventory(sim)
    for name in running:
        assert vms[name]["host"] in RACK_B and vms[name]["powerState"] == "poweredOn"


async def test_fence_to_confirm_keeps_its_fences_when_one_fails(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    """fence_to_confirm: H0 fenced, H2's fence fails once; the retry fences only H2, and
    the decision's journal kept H0's fence meanwhile (review finding 2, issue 10)."""
    sim = rack_sim(sim_factory)
    await silent_rack(sim)
    fence, fenced = fence_script(tmp_path, fail_once="DC0_C0_H2")
    client = await start(
        aiohttp_client,
        sim,
        tmp_path,
        guard=HALF,
        retry={"backoff_initial_seconds": 3, "backoff_max_seconds": 3},
        host_failure={"fencing_command": [str(fence)], "fence_to_confirm": True},
    )
    await send(client, domain_alert(sim, "fd-a"))
    failed = await first_decision(client, lambda a: "confirm it down failed" in a["reason"], "")
    hosts, _ = inventory(sim)
    kept = failed["detail"]["confirm"][hosts["DC0_C0_H0"]["moid"]]
    assert kept["source"] == "fence" and kept["result"] == "down"  # journaled, not only held
    items = await settled(client, timeout=60)
    [d] = [a for a in items if a["parent_id"] is None]
    assert d["state"] == "done", d
    assert sorted(fenced.read_text().split()) == sorted(RACK_A)


async def test_fence_to_confirm_in_dry_run_says_it_did_not_fence(
    sim_factory: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    """Dry run: past the wait and the guard, the fence is not run, and the reason says so."""
    sim = rack_sim(sim_factory)
    await silent_rack(sim)
    fence, fenced = fence_script(tmp_path)
    client = await start(
        aiohttp_client,
        sim,
        tmp_path,
        dry_run=True,
        guard=HALF,
        host_failure={
            "fencing_command": [str(fence)],
            "fence_to_confirm": True,
            "max_unconfirmed_seconds": 1,
        },
    )
    await send(client, domain_alert(sim, "fd-a"))
    [d] = await settled(client, timeout=30)
    assert d["state"] == "refused", d
    assert "dry run: fence_to_confirm not run" in d["reason"]
    assert not fenced.exists()
