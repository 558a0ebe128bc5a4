"""Out-of-band confirmation that a silent host is dead (``host_failure.confirm_command``).

On a cluster without vSphere HA, nothing vCenter reports tells a dead host from a
partitioned one: a host vCenter does not hear is ``notResponding`` with ``powerState:
unknown`` ("we cannot possibly have knowledge of its power state", HostSystemPowerState),
its VMs ``disconnected``, and its datastore mounts (``Datastore.host[].mountInfo``) are
whatever vCenter last knew. ``poweredOff`` is only a host powered off *through vCenter*,
and even that "is not a certain state". So the remediator asks what admins ask: the
host's BMC (IPMI, iLO, iDRAC, Redfish) for its power status, through a read-only command:

* exit 0: the host is powered off (confirmed down);
* exit 1: the host is alive (a partition: its VMs may run; never restart them);
* anything else, or no answer within ``confirm_timeout_seconds``: unknown (held).

Answers are the remediator's own observation: kept with their time (:class:`ConfirmStore`,
and in each decision's ``detail.confirm``), re-asked at most every
``state_refresh_seconds``, and never trusted past ``confirm_max_age_seconds`` (a host that
was off may have been powered on since, behind the same broken network).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .model import HostState

if TYPE_CHECKING:
    from .config import HostFailureConfig
    from .engine import Engine
    from .journal import Action

DOWN_, ALIVE, UNKNOWN_ = "down", "alive", "unknown"
RESULTS = (DOWN_, ALIVE, UNKNOWN_)
HOOK, FENCE = "hook", "fence"

log = logging.getLogger("remediator")


@dataclass(frozen=True)
class Confirmation:
    """One answer about one host: ``result`` is down, alive or unknown."""

    host_id: str
    host: str
    result: str
    message: str
    at: float
    source: str = HOOK  # "fence": a fencing hook that succeeded (fence_to_confirm)
    action_id: int = 0

    def as_detail(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_detail(cls, d: Mapping[str, Any]) -> Confirmation:
        return cls(
            str(d["host_id"]),
            str(d["host"]),
            str(d["result"]),
            str(d.get("message", "")),
            float(d["at"]),
            str(d.get("source", HOOK)),
            int(d.get("action_id", 0)),
        )

    def describe(self) -> str:
        return f"{self.host}: {self.result} ({self.message})" if self.message else self.host


class ConfirmStore:
    """The latest answer per (vCenter, host), for decisions and the mass-failure guard.

    Hook answers are trusted until they are older than the max age. A fence the
    remediator ran itself (``fence_to_confirm``) is kept apart and trusted until the host
    answers vCenter again (:func:`refresh` then forgets it): it was turned off, and only a
    person turns it back on; a later "alive" from the hook ends it (the fence did not
    work), an "unknown" does not."""

    def __init__(self, max_age_seconds: float) -> None:
        self.max_age = max_age_seconds
        self._by: dict[tuple[str, str], Confirmation] = {}
        self._fences: dict[tuple[str, str], Confirmation] = {}

    def put(self, vcenter: str, c: Confirmation) -> None:
        (self._fences if c.source == FENCE else self._by)[(vcenter, c.host_id)] = c
        if c.source == HOOK and c.result == ALIVE:
            self._fences.pop((vcenter, c.host_id), None)  # the fence did not work

    def get(self, vcenter: str, host_id: str, now: float) -> Confirmation | None:
        """The hook's answer while it is younger than the max age, else None."""
        c = self._by.get((vcenter, host_id))
        return c if c is not None and now - c.at <= self.max_age else None

    def fence(self, vcenter: str, host_id: str) -> Confirmation | None:
        return self._fences.get((vcenter, host_id))

    def forget(self, vcenter: str, host_id: str) -> None:
        self._by.pop((vcenter, host_id), None)
        self._fences.pop((vcenter, host_id), None)

    def fresh(self, vcenter: str, now: float) -> dict[str, Confirmation]:
        """Host moid -> the answer to go by, for every host with one still trusted."""
        out = {
            h: c for (vc, h), c in self._by.items() if vc == vcenter and now - c.at <= self.max_age
        }
        for (vc, h), f in self._fences.items():
            if vc == vcenter:
                out[h] = merged(out.get(h), f) or f
        return out

    def hosts(self, vcenter: str) -> list[Confirmation]:
        """Every answer and fence kept for the vCenter, however old."""
        return [c for (vc, _), c in [*self._by.items(), *self._fences.items()] if vc == vcenter]


def merged(hook: Confirmation | None, fence: Confirmation | None) -> Confirmation | None:
    """The answer to go by for a host with a fence: the fence, unless the hook says alive."""
    if fence is None or (hook is not None and hook.result == ALIVE):
        return hook
    return fence


@dataclass(frozen=True)
class HookRun:
    """How a hook ended: ``returncode`` None when it never ran or timed out."""

    returncode: int | None
    last: str = ""  # the last line it printed (200 characters at most)
    error: str = ""


async def run_hook(cmd: tuple[str, ...], env: Mapping[str, str], timeout: float) -> HookRun:
    """Run a hook with ``env`` added to the remediator's environment; never raises."""
    full = dict(os.environ)
    full.update(env)
    try:
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=full,
        )
    except OSError as exc:
        return HookRun(None, error=f"cannot run {cmd[0]}: {exc.strerror}")
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        _kill(proc)
        await proc.wait()
        return HookRun(None, error=f"{cmd[0]} timed out after {timeout:.0f}s")
    finally:
        if proc.returncode is None:  # cancelled (the remediator stopping): never left running
            _kill(proc)
    tail = (out or b"").decode(errors="replace").strip().splitlines()
    return HookRun(proc.returncode, tail[-1][:200] if tail else "")


def _kill(proc: asyncio.subprocess.Process) -> None:
    """Kill a hook; one that exited in the meantime (ProcessLookupError) is fine."""
    try:
        proc.kill()
    except ProcessLookupError:
        pass


def hook_env(vcenter: str, host: HostState, cluster: str, action_id: int) -> dict[str, str]:
    return {
        "VHA_VCENTER": vcenter,
        "VHA_HOST": host.name,
        "VHA_HOST_ID": host.moid,
        "VHA_CLUSTER": cluster,
        "VHA_ACTION_ID": str(action_id),
    }


def hook_says(
    host: HostState, confirmed: Confirmation | None, hf: HostFailureConfig, ha_on: bool
) -> str:
    """Why the hook's answer keeps one silent host from counting as dead; "" when it does
    not. An "alive" answer holds the host on any cluster (on HA clusters a veto over
    ``hostDown``), then refuses after ``max_unconfirmed_seconds`` like HA's partition
    states. On a cluster without HA, with a hook configured, its "off" is required
    (vCenter has nothing conclusive there) unless ``fence_to_confirm`` lets the fence that
    runs before any restart stand in."""
    if confirmed is not None and confirmed.result == ALIVE:
        return (
            f"the confirmation hook says {host.name} is alive ({confirmed.message}): it may "
            "be partitioned and still running its VMs"
        )
    if not hf.confirm_command or ha_on or hf.fence_to_confirm:
        return ""
    if confirmed is not None and confirmed.result == DOWN_:
        return ""
    said = confirmed.describe() if confirmed is not None else "no answer yet"
    return f"{host.name} is not confirmed down: the confirmation hook's answer is {said}"


def needs_check(h: HostState) -> bool:
    """Only a silent host is asked about: one vCenter saw power off needs no BMC's word,
    and a disconnected one is an administrator's act, not a failure."""
    return h.connection_state == "notResponding" and h.power_state != "poweredOff"


async def ask(
    engine: Engine, vcenter: str, host: HostState, cluster: str, action_id: int
) -> Confirmation:
    """Run the confirmation hook for one host, count and keep the answer."""
    hf = engine.rcfg.host_failure
    run = await run_hook(
        hf.confirm_command, hook_env(vcenter, host, cluster, action_id), hf.confirm_timeout_seconds
    )
    name = hf.confirm_command[0]
    if run.returncode == 0:
        result, message = DOWN_, f"{name}: powered off{': ' + run.last if run.last else ''}"
    elif run.returncode == 1:
        result, message = ALIVE, f"{name}: alive{': ' + run.last if run.last else ''}"
    elif run.returncode is None:
        result, message = UNKNOWN_, run.error
    else:
        result, message = UNKNOWN_, f"{name} exited {run.returncode}: {run.last}"
    c = Confirmation(host.moid, host.name, result, message, engine.clock(), HOOK, action_id)
    engine.metrics.confirm_checks.labels(result=result).inc()
    engine.confirms.put(vcenter, c)
    level = logging.INFO if result == DOWN_ else logging.WARNING
    log.log(level, "confirmation hook for %s (%s): %s: %s", host.name, vcenter, result, message)
    return c


async def confirm_hosts(
    engine: Engine, a: Action, hosts: Iterable[HostState], cluster: str
) -> dict[str, Confirmation]:
    """The answer for every silent host given, asking again only where the last answer
    is older than ``state_refresh_seconds`` (a held decision re-reads that often)."""
    out: dict[str, Confirmation] = {}
    if not engine.rcfg.host_failure.confirm_command:
        return out
    now = engine.clock()
    asking: list[HostState] = []
    for h in hosts:
        if not needs_check(h):
            continue
        last = engine.confirms.get(a.vcenter, h.moid, now)
        if last is not None and now - last.at < engine.rcfg.state_refresh_seconds:
            out[h.moid] = last
        else:
            asking.append(h)
    # every host at once: a rack of BMCs that time out must not take N timeouts
    answers = await asyncio.gather(*(ask(engine, a.vcenter, h, cluster, a.id) for h in asking))
    out.update({c.host_id: c for c in answers})
    return out


async def refresh(engine: Engine, vcenter: str, clusters: Mapping[str, Any]) -> None:
    """From the watcher: keep "down" answers fresh for hosts still silent (so the guard's
    view of a confirmed rack does not lapse while its VMs restart), forget hosts that
    answer vCenter again. Asked every half max age, never more often than the watcher."""
    now = engine.clock()
    every = max(engine.rcfg.state_refresh_seconds, engine.confirms.max_age / 2)
    by_id = {h.moid: (name, h) for name, hosts in clusters.values() for h in hosts}
    asks = []
    for c in engine.confirms.hosts(vcenter):
        found = by_id.get(c.host_id)
        if found is None:
            continue
        name, h = found
        if not needs_check(h):
            engine.confirms.forget(vcenter, c.host_id)
        elif (
            c.result == DOWN_
            and c.source == HOOK
            and engine.rcfg.host_failure.confirm_command
            and now - c.at >= every
        ):
            asks.append(ask(engine, vcenter, h, name, c.action_id))
    await asyncio.gather(*asks)


def journal(memory: dict[str, Any], confirmations: Mapping[str, Confirmation]) -> None:
    """Record the answers a decision used in ``detail.confirm`` (host moid -> answer)."""
    if confirmations:
        seen = dict(memory.get("confirm") or {})
        seen.update({h: c.as_detail() for h, c in confirmations.items()})
        memory["confirm"] = seen
