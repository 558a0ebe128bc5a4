"""remediator.confirm: what an out-of-band power-status answer proves, and for how long.

Pure parts only (verdicts, the guard, the policy's confirmation, config); the hook run
against the simulator is in test_remediator_confirm.py.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from remediator.config import GuardConfig, parse_remediator
from remediator.confirm import ALIVE, DOWN_, UNKNOWN_, Confirmation, ConfirmStore, run_hook
from remediator.fault_domains import DOWN, PARTITIONED, UNKNOWN, domain_state
from remediator.guard import MassFailureGuard
from remediator.model import HostState
from remediator.policy import DEFER, PLAN, REFUSE, Request, decide_host_failure
from vcenter.config import ConfigError

from .remediator_fixtures import TOKEN_ENV, rconfig, snapshot, vm
from .remediator_fixtures import host as rhost


def silent(name: str, fd: str = "a", das: str = "") -> HostState:
    return HostState(
        name,
        name,
        fault_domain=fd,
        connection_state="notResponding",
        power_state="unknown",
        das_state=das,
    )


def said(host: str, result: str, at: float = 100.0, source: str = "hook") -> Confirmation:
    return Confirmation(host, host, result, f"{host}: {result}", at, source)


def test_domain_without_ha_down_only_when_the_hook_confirms_every_host() -> None:
    hosts = [silent("a1"), silent("a2"), HostState("b1", "b1", fault_domain="b")]
    assert domain_state("a", hosts, False).state == UNKNOWN
    one = {"a1": said("a1", DOWN_)}
    v = domain_state("a", hosts, False, one)
    assert v.state == UNKNOWN and "a2" in v.reason and "a1" not in v.reason.split("but")[1]
    both = {"a1": said("a1", DOWN_), "a2": said("a2", DOWN_)}
    v = domain_state("a", hosts, False, both)
    assert v.state == DOWN and "confirmation hook" in v.reason
    fenced = {"a1": said("a1", DOWN_, source="fence"), "a2": said("a2", DOWN_)}
    assert "fenced" in domain_state("a", hosts, False, fenced).reason
    unknown = {"a1": said("a1", DOWN_), "a2": said("a2", UNKNOWN_)}
    v = domain_state("a", hosts, False, unknown)
    assert v.state == UNKNOWN and "a2: unknown" in v.reason


def test_one_host_alive_is_a_partition_even_where_ha_says_host_down() -> None:
    hosts = [silent("a1"), silent("a2")]
    alive = {"a1": said("a1", DOWN_), "a2": said("a2", ALIVE)}
    v = domain_state("a", hosts, False, alive)
    assert v.state == PARTITIONED and "a2" in v.reason and "alive" in v.reason
    # On an HA cluster HA's hostDown confirms; an "alive" answer still vetoes (safer)
    ha = [silent("a1", das="hostDown"), silent("a2", das="hostDown")]
    assert domain_state("a", ha, True).state == DOWN
    assert domain_state("a", ha, True, alive).state == PARTITIONED
    # ... and an "off" there does not replace HA's hostDown (each host waits for it)
    no_fdm = [silent("a1"), silent("a2")]
    offs = {"a1": said("a1", DOWN_), "a2": said("a2", DOWN_, source="fence")}
    assert domain_state("a", no_fdm, True, offs).state == UNKNOWN
    assert domain_state("a", no_fdm, False, offs).state == DOWN


def test_store_trusts_a_result_only_until_its_max_age() -> None:
    store = ConfirmStore(max_age_seconds=60)
    store.put("vc1", said("a1", DOWN_, at=100.0))
    store.put("vc1", said("a2", ALIVE, at=100.0))
    assert set(store.fresh("vc1", 150.0)) == {"a1", "a2"}
    assert store.fresh("vc1", 161.0) == {}
    assert store.fresh("vc2", 150.0) == {}
    store.forget("vc1", "a1")
    assert set(store.fresh("vc1", 150.0)) == {"a2"}


def test_guard_counts_a_hook_confirmed_rack_as_confirmed_while_fresh() -> None:
    store = ConfirmStore(max_age_seconds=60)
    guard = MassFailureGuard(GuardConfig(), store.fresh)
    hosts = [silent("a1"), silent("a2"), HostState("b1", "b1", fault_domain="b"),
             HostState("b2", "b2", fault_domain="b")]  # fmt: skip
    guard.observe("vc1", "c", hosts, 100.0, False)
    assert guard.verdict("vc1", "c", 100.0).tripped  # half the cluster, unconfirmed
    store.put("vc1", said("a1", DOWN_, at=100.0))
    store.put("vc1", said("a2", DOWN_, at=100.0))
    guard.observe("vc1", "c", hosts, 101.0, False)
    v = guard.verdict("vc1", "c", 101.0)
    assert not v.tripped, v
    guard.observe("vc1", "c", hosts, 170.0, False)  # the answers are too old now
    assert guard.verdict("vc1", "c", 170.0).tripped
    store.put("vc1", said("a2", ALIVE, at=170.0))  # a partition keeps counting
    store.put("vc1", said("a1", DOWN_, at=170.0))
    guard.observe("vc1", "c", hosts, 171.0, False)
    assert guard.verdict("vc1", "c", 171.0).tripped


def _host_failure(conf: dict[str, Confirmation], ha: bool, das: str = "", **cfg: Any) -> Any:
    failed = rhost("host-1", connection_state="notResponding", power_state="unknown",
                   das_state=das)  # fmt: skip
    snap = snapshot([failed, rhost("host-2", "fd-b")], [vm("vm-1", "host-1")], ha=ha)
    req = Request(
        kind="restart_host_vms",
        vcenter="vc1",
        host_id="host-1",
        since=1.0,
        memory={"first_seen": 0.0, "failure_seen": 0.0},
        confirmations=conf,
    )
    hook = {"confirm_command": ["/bin/true"], "confirm_seconds": 0, **cfg}
    return decide_host_failure(req, snap, rconfig(host_failure=hook), 100.0)


def test_single_host_without_ha_restarts_only_on_a_down_answer() -> None:
    assert _host_failure({"host-1": said("host-1", DOWN_)}, ha=False).outcome == PLAN
    d = _host_failure({"host-1": said("host-1", UNKNOWN_)}, ha=False)
    assert d.outcome == DEFER and "unknown" in d.reason
    d = _host_failure({}, ha=False)
    assert d.outcome == DEFER and "not confirmed" in d.reason
    d = _host_failure({"host-1": said("host-1", ALIVE)}, ha=False)
    assert d.outcome == DEFER and "alive" in d.reason
    d = _host_failure({"host-1": said("host-1", ALIVE)}, ha=False, max_unconfirmed_seconds=10)
    assert d.outcome == REFUSE and "alive" in d.reason and "never confirmed" in d.reason


def test_on_ha_clusters_host_down_confirms_and_an_alive_answer_vetoes() -> None:
    assert _host_failure({}, ha=True, das="hostDown").outcome == PLAN  # hook not needed
    unknown = {"host-1": said("host-1", UNKNOWN_)}
    assert _host_failure(unknown, ha=True, das="hostDown").outcome == PLAN
    d = _host_failure({"host-1": said("host-1", ALIVE)}, ha=True, das="hostDown")
    assert d.outcome == DEFER and "alive" in d.reason


def test_hook_exit_codes(tmp_path: Path) -> None:
    def script(body: str) -> tuple[str, ...]:
        p = tmp_path / f"s{len(list(tmp_path.iterdir()))}.sh"
        p.write_text("#!/bin/sh\n" + body + "\n")
        p.chmod(0o755)
        return (str(p),)

    async def run(cmd: tuple[str, ...], timeout: float = 5) -> Any:
        return await run_hook(cmd, {"VHA_HOST": "esx-1"}, timeout)

    r = asyncio.run(run(script('echo "power is off for $VHA_HOST"; exit 0')))
    assert (r.returncode, r.last) == (0, "power is off for esx-1")
    assert asyncio.run(run(script("exit 1"))).returncode == 1
    t = asyncio.run(run(script("exec sleep 10"), timeout=0.5))
    assert t.returncode is None and "timed out after" in t.error
    missing = asyncio.run(run((str(tmp_path / "nope"),)))
    assert missing.returncode is None and "cannot run" in missing.error
    assert os.environ.get("VHA_HOST") is None  # the hook's environment is its own
    assert sys.platform != "win32"


@pytest.mark.parametrize(
    ("host_failure", "key", "fragment"),
    [
        ({"confirm_command": ""}, "confirm_command", "must not be empty"),
        ({"confirm_command": 3}, "confirm_command", "command string or a list"),
        ({"confirm_command": "x", "confirm_timeout_seconds": 0}, "confirm_timeout_seconds", ">="),
        ({"confirm_command": "x", "confirm_max_age_seconds": 1}, "confirm_max_age_seconds", ""),
        ({"fence_to_confirm": "yes"}, "fence_to_confirm", "true or false"),
        ({"fence_to_confirm": True}, "fence_to_confirm", "needs host_failure.fencing_command"),
    ],
)
def test_config_errors(host_failure: dict[str, Any], key: str, fragment: str) -> None:
    os.environ[TOKEN_ENV] = "x"
    section = {"auth": "none", "state_refresh_seconds": 5, "host_failure": host_failure}
    with pytest.raises(ConfigError) as info:
        parse_remediator(section)
    assert info.value.key == f"remediator.host_failure.{key}"
    assert fragment in str(info.value)


def test_config_defaults() -> None:
    hf = parse_remediator({"auth": "none"}).host_failure
    assert hf.confirm_command == () and not hf.fence_to_confirm
    assert hf.confirm_timeout_seconds == 30 and hf.confirm_max_age_seconds == 60
    cfg = parse_remediator({"auth": "none", "host_failure": {"confirm_command": "ipmi -H x"}})
    assert cfg.host_failure.confirm_command == ("ipmi", "-H", "x")


class _Engine:
    """What remediator.confirm needs of the engine: config, clock, metrics, the store."""

    def __init__(self, tmp_path: Path, answer: int, **hf: Any) -> None:
        from remediator.metrics import Metrics

        self.log = tmp_path / "asked.log"
        script = tmp_path / "status.sh"
        script.write_text(f'#!/bin/sh\necho "$VHA_HOST" >> {self.log}\nexit {answer}\n')
        script.chmod(0o755)
        self.rcfg = rconfig(
            state_refresh_seconds=5, host_failure={"confirm_command": [str(script)], **hf}
        )
        self.now = 1000.0
        self.metrics = Metrics()
        self.confirms = ConfirmStore(self.rcfg.host_failure.confirm_max_age_seconds)

    def clock(self) -> float:
        return self.now

    def asked(self) -> list[str]:
        return self.log.read_text().split() if self.log.exists() else []


class _Action:
    vcenter, id = "vc1", 7


def test_held_decisions_ask_again_at_most_every_state_refresh(tmp_path: Path) -> None:
    from remediator.confirm import confirm_hosts

    engine: Any = _Engine(tmp_path, 0)
    hosts = [silent("esx-1"), silent("esx-2"), HostState("esx-3", "esx-3")]  # esx-3 answers
    off = HostState("esx-4", "esx-4", connection_state="notResponding", power_state="poweredOff")
    got = asyncio.run(confirm_hosts(engine, _Action(), [*hosts, off], "c"))
    assert {h: c.result for h, c in got.items()} == {"esx-1": DOWN_, "esx-2": DOWN_}
    assert sorted(engine.asked()) == ["esx-1", "esx-2"]  # not the answering or powered-off one
    engine.now += 4.9  # a re-read within state_refresh_seconds: the same answers
    again = asyncio.run(confirm_hosts(engine, _Action(), hosts, "c"))
    assert again == got and len(engine.asked()) == 2
    engine.now += 0.2
    asyncio.run(confirm_hosts(engine, _Action(), hosts, "c"))
    assert len(engine.asked()) == 4
    down = engine.metrics.confirm_checks.labels(result="down")._value.get()
    assert down == 4


def test_watcher_keeps_down_answers_fresh_and_forgets_hosts_that_answer(tmp_path: Path) -> None:
    from remediator.confirm import refresh

    engine: Any = _Engine(tmp_path, 0)
    engine.confirms.put("vc1", Confirmation("esx-1", "esx-1", DOWN_, "off", 1000.0))
    engine.confirms.put("vc1", Confirmation("esx-2", "esx-2", DOWN_, "off", 1000.0, "fence"))
    engine.confirms.put("vc1", Confirmation("esx-3", "esx-3", ALIVE, "on", 1000.0))
    clusters = {"c1": ("c", [silent("esx-1"), silent("esx-2"), silent("esx-3")])}
    engine.now = 1029.0  # under half the max age (60 s): nothing asked yet
    asyncio.run(refresh(engine, "vc1", clusters))
    assert engine.asked() == []
    engine.now = 1031.0
    asyncio.run(refresh(engine, "vc1", clusters))
    assert engine.asked() == ["esx-1"]  # only a hook's "off": not a fence, not "alive"
    assert engine.confirms.get("vc1", "esx-1", 1031.0).at == 1031.0
    engine.now = 5000.0  # a fence stays trusted while its host stays silent
    assert set(engine.confirms.fresh("vc1", 5000.0)) == {"esx-2"}
    back = {"c1": ("c", [HostState("esx-1", "esx-1"), HostState("esx-2", "esx-2")])}
    asyncio.run(refresh(engine, "vc1", back))
    assert engine.confirms.hosts("vc1") == [engine.confirms.get("vc1", "esx-3", 1000.0)]
    assert engine.confirms.fence("vc1", "esx-2") is None


def test_a_fence_stands_until_the_hook_says_alive() -> None:
    store = ConfirmStore(max_age_seconds=60)
    store.put("vc1", said("a1", DOWN_, at=100.0, source="fence"))
    store.put("vc1", said("a1", UNKNOWN_, at=200.0))  # the BMC does not answer: still fenced
    assert store.fresh("vc1", 200.0)["a1"].source == "fence"
    store.put("vc1", said("a1", ALIVE, at=210.0))  # it runs: the fence did not work
    assert store.fresh("vc1", 210.0)["a1"].result == ALIVE
    assert store.fresh("vc1", 999.0) == {}  # and the fence is not trusted again later


def test_restart_vm_on_a_silent_host_without_ha_waits_for_the_hook() -> None:
    from remediator.policy import decide_vm_failure

    failed = rhost("host-1", connection_state="notResponding", power_state="unknown",
                   das_state="")  # fmt: skip
    snap = snapshot([failed, rhost("host-2", "fd-b")], [vm("vm-1", "host-1")], ha=False)
    cfg = rconfig(host_failure={"confirm_command": ["/bin/true"], "confirm_seconds": 0})

    def decide(conf: dict[str, Confirmation]) -> Any:
        memory = {"first_seen": 0.0, "failure_seen": 0.0}
        req = Request("restart_vm", "vc1", vm_id="vm-1", since=1.0, memory=memory,
                      confirmations=conf)  # fmt: skip
        return decide_vm_failure(req, snap, cfg, 100.0)

    assert decide({"host-1": said("host-1", DOWN_)}).outcome == PLAN
    alive = decide({"host-1": said("host-1", ALIVE)})
    assert alive.outcome == DEFER and "alive" in alive.reason
    assert decide({}).outcome == DEFER


def test_guard_watcher_reads_keep_the_clusters_ha_setting_from_decisions() -> None:
    store = ConfirmStore(max_age_seconds=60)
    guard = MassFailureGuard(GuardConfig(), store.fresh)
    hosts = [silent("a1"), silent("a2"), HostState("b1", "b1", fault_domain="b"),
             HostState("b2", "b2", fault_domain="b")]  # fmt: skip
    store.put("vc1", said("a1", DOWN_, at=100.0))
    store.put("vc1", said("a2", DOWN_, at=100.0))
    guard.observe("vc1", "c", hosts, 100.0, True)  # a decision: HA on, hostDown needed
    assert guard.verdict("vc1", "c", 100.0).tripped
    guard.observe("vc1", "c", hosts, 101.0)  # the watcher: no HA setting in its read
    assert guard.verdict("vc1", "c", 101.0).tripped  # still HA's word that counts


def test_a_journaled_fence_is_taken_back_after_a_restart_not_run_again(tmp_path: Path) -> None:
    from remediator.domain_failure import _confirmations

    engine: Any = _Engine(tmp_path, 2)  # a fresh remediator; the BMCs do not answer
    fenced = said("a1", DOWN_, at=50.0, source="fence")

    class Held:
        vcenter, id = "vc1", 7
        detail = {"confirm": {"a1": fenced.as_detail()}}

    got = asyncio.run(_confirmations(engine, Held(), [silent("a1"), silent("a2")], "c"))
    assert got["a1"] == fenced and got["a2"].result == UNKNOWN_
    assert engine.confirms.fresh("vc1", 1000.0)["a1"] == fenced  # the guard's view, too


def test_confirm_max_age_checked_only_with_a_hook_and_defaults_to_state_refresh() -> None:
    """A config without a confirmation hook may refresh slower than 60 s (issue 10 review):
    the max age only matters for the hook's answers, and defaults to at least the period."""
    os.environ[TOKEN_ENV] = "x"
    slow = parse_remediator({"auth": "none", "state_refresh_seconds": 120})
    assert slow.host_failure.confirm_max_age_seconds == 120
    hooked = parse_remediator(
        {"auth": "none", "state_refresh_seconds": 90, "host_failure": {"confirm_command": "x"}}
    )
    assert hooked.host_failure.confirm_max_age_seconds == 90  # default follows the period
    with pytest.raises(ConfigError) as info:
        parse_remediator(
            {
                "auth": "none",
                "state_refresh_seconds": 90,
                "host_failure": {"confirm_command": "x", "confirm_max_age_seconds": 60},
            }
        )
    assert info.value.key == "remediator.host_failure.confirm_max_age_seconds"


def test_a_cancelled_hook_is_killed_not_left_running(tmp_path: Path) -> None:
    """Cancelling run_hook (the remediator stopping) kills the hook's process."""
    pidfile = tmp_path / "pid"
    script = tmp_path / "hang.sh"
    script.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 30\n")
    script.chmod(0o755)

    async def run() -> int:
        task = asyncio.create_task(run_hook((str(script),), {}, 60))
        for _ in range(100):
            await asyncio.sleep(0.05)
            if pidfile.exists() and pidfile.read_text().strip():
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.3)
        return int(pidfile.read_text())

    pid = asyncio.run(run())
    stat = Path(f"/proc/{pid}/stat")
    assert not stat.exists() or stat.read_text().split()[2] == "Z"  # gone or a reaped-soon zombie
