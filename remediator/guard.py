"""Brakes: the mass-failure guard, vCenter reachability and the per-cluster rate limit.

A remediator that sees half a cluster "fail" at once is more likely looking through a
broken network than at a real disaster, and restarting VMs then is how split brain and
restart storms happen.  So above a bound the remediator stops acting on that cluster
altogether, says so on ``/metrics`` and in the journal, and leaves it to a person.  The
same holds, for a whole vCenter, when the remediator cannot reach vCenter: it cannot
re-read the truth, so it cannot act.

Everything here is in memory and takes ``now`` as an argument, so it is easy to test; the
engine feeds it from live reads and seeds the rate limiter from the journal on start.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from .config import GuardConfig, RateLimitConfig
from .confirm import Confirmation
from .fault_domains import confirmed_down_hosts
from .model import HostState


@dataclass(frozen=True)
class Verdict:
    tripped: bool
    reason: str = ""
    failed: int = 0
    total: int = 0


@dataclass
class _ClusterWatch:
    total: int = 0
    failed_at: dict[str, float] = field(default_factory=dict)  # host -> last seen failing
    # Hosts of fault domains the last live read showed confirmed down as a whole
    # (remediator.fault_domains): real failures, left out of the count.
    confirmed_down: set[str] = field(default_factory=set)
    # Whether the cluster has HA, as the last decision's read said (the watcher's read
    # of hosts alone does not say): None until a decision looked
    ha_enabled: bool | None = None


def host_failing(host: HostState) -> bool:
    """A host that counts toward the guard: silent, powered off, or declared dead by HA."""
    return (
        host.connection_state == "notResponding"
        or host.power_state == "poweredOff"
        or host.das_state == "hostDown"
    )


class MassFailureGuard:
    """Counts failing hosts per cluster over a sliding window."""

    def __init__(
        self,
        cfg: GuardConfig,
        confirmations: Callable[[str, float], Mapping[str, Confirmation]] | None = None,
    ) -> None:
        """``confirmations(vcenter, now)``: the confirmation hook's answers this
        remediator got itself and still trusts (:meth:`.confirm.ConfirmStore.fresh`)."""
        self.cfg = cfg
        self._confirmations = confirmations
        self._clusters: dict[tuple[str, str], _ClusterWatch] = {}
        self._logged: dict[tuple[str, str], bool] = {}
        self._connected: dict[str, dict[str, float]] = {}

    def observe(
        self,
        vcenter: str,
        cluster: str,
        hosts: Iterable[HostState],
        now: float,
        ha_enabled: bool | None = None,
    ) -> None:
        """Feed a live read of a cluster's hosts (all of them, so the share is right).

        Only this counts a host as failed: an alert alone never does, because an alert
        can name a host that does not exist (or is in another cluster), and counting it
        would let made-up alerts hold back the restart of a real failure.

        The hosts of a fault domain confirmed down as a whole (every host silent *and*
        HA ``hostDown``, powered off, or off by the confirmation hook's fresh answer or a
        fence: :func:`.fault_domains.confirmed_down_hosts`) are left out of both the
        failed count and the total, from this read until a read no longer confirms them:
        a rack that lost power is what HA exists for, while a silent rack that HA or the
        hook still sees alive (a partition) keeps counting.
        """
        connected = self._connected.setdefault(vcenter, {})
        hosts = list(hosts)
        for host in hosts:
            if host.responding:
                connected[host.moid] = now
        if not cluster:
            return  # standalone hosts have no cluster to storm
        watch = self._clusters.setdefault((vcenter, cluster), _ClusterWatch())
        total = 0
        for host in hosts:
            total += 1
            if host_failing(host):
                watch.failed_at[host.moid] = now
        watch.total = total
        if ha_enabled is None:
            ha_enabled = watch.ha_enabled
        watch.ha_enabled = ha_enabled
        confirmed = self._confirmations(vcenter, now) if self._confirmations else {}
        watch.confirmed_down = confirmed_down_hosts(hosts, ha_enabled, confirmed=confirmed)

    def last_connected(self, vcenter: str) -> dict[str, float]:
        """Host moid -> when a live read last showed it connected (for implausible starts)."""
        return dict(self._connected.get(vcenter, {}))

    def verdict(self, vcenter: str, cluster: str, now: float) -> Verdict:
        watch = self._clusters.get((vcenter, cluster))
        if watch is None:
            return Verdict(False)
        horizon = now - self.cfg.window_seconds
        for host, at in list(watch.failed_at.items()):
            if at < horizon:
                del watch.failed_at[host]
        excused = watch.confirmed_down
        failed = len(set(watch.failed_at) - excused)
        total = max(watch.total - len(excused), failed)
        share = failed / total if total else 0.0
        window = f"{self.cfg.window_seconds:.0f}s"
        if excused:
            window += f", not counting {len(excused)} hosts of fault domains confirmed down"
        if failed > self.cfg.max_failed_hosts:
            return Verdict(
                True,
                f"mass-failure guard: {failed} of {total} hosts in cluster {cluster} failed "
                f"within {window} (more than {self.cfg.max_failed_hosts})",
                failed,
                total,
            )
        if failed > 1 and share > self.cfg.max_failed_share:
            return Verdict(
                True,
                f"mass-failure guard: {failed} of {total} hosts in cluster {cluster} failed "
                f"within {window} ({share:.0%}, more than {self.cfg.max_failed_share:.0%})",
                failed,
                total,
            )
        return Verdict(False, "", failed, total)

    def clusters(self) -> list[tuple[str, str]]:
        return sorted(self._clusters)

    def first_trip(self, vcenter: str, cluster: str, tripped: bool) -> bool:
        """True the first time a cluster trips (and again after it cleared): log once."""
        key = (vcenter, cluster)
        was = self._logged.get(key, False)
        self._logged[key] = tripped
        return tripped and not was


class RateLimiter:
    """At most N vCenter-changing steps per cluster per sliding window."""

    def __init__(self, cfg: RateLimitConfig) -> None:
        self.cfg = cfg
        self._events: dict[tuple[str, str], deque[float]] = {}

    def seed(self, events: Iterable[tuple[str, str, float]]) -> None:
        """Restore the window from the journal after a restart."""
        for vcenter, cluster, at in sorted(events, key=lambda e: e[2]):
            self._events.setdefault((vcenter, cluster), deque()).append(at)

    def acquire(self, vcenter: str, cluster: str, now: float) -> float | None:
        """``None`` when a step may run now (and counts it); else when to try again."""
        q = self._events.setdefault((vcenter, cluster), deque())
        horizon = now - self.cfg.window_seconds
        while q and q[0] < horizon:
            q.popleft()
        if len(q) >= self.cfg.max_actions:
            return q[0] + self.cfg.window_seconds
        q.append(now)
        return None


@dataclass
class VCenterHealth:
    """Whether the remediator can currently reach a vCenter, and since when it cannot."""

    up: bool = False
    error: str = "not connected yet"
    since: float = 0.0
    checked_at: float = 0.0

    def mark_up(self, now: float) -> None:
        if not self.up:
            self.since = now
        self.up, self.error, self.checked_at = True, "", now

    def mark_down(self, error: str, now: float) -> None:
        if self.up or not self.since:
            self.since = now
        self.up, self.error, self.checked_at = False, error, now
