"""Where a VM may go: pure functions over a :class:`~remediator.model.Snapshot`.

The rules mirror what vSphere HA and admission control would do, so the remediator never
puts a VM where HA itself would refuse to:

* a target is *healthy*: connected, powered on, not in maintenance or quarantine, and a
  full HA member (FDM ``master`` or ``connectedToMaster``) where HA reports a state;
* it has *capacity*: the reservations of its powered-on VMs plus the new one fit in its
  CPU and memory (admission control), and its current use plus the VM's last known
  demand stays under the configured utilisation ceiling;
* where fault domains are *sites* (``placement.fault_domains: sites``, the default), a
  target in the VM's *own* fault domain (the failed host's) is preferred while one has
  room, so a single host failure does not move VMs across sites; only where domains are
  *racks* of one site (``racks``) is *another* domain preferred, because the failed
  host's power feed or switch may take its neighbours next. VM-Host "should" rules (a
  site's VMs should run on its hosts) weigh before either;
* among those, the *least loaded* host after placement wins, so a failed host's VMs
  spread over the cluster instead of piling onto one survivor;
* it passes *pre-flight* (:mod:`.preflight`): it sees the VM's datastores and networks,
  and nothing ties the VM to its current host;
* it breaks no *required DRS rule* (:mod:`.drs_rules`): VM-Host must / must-not run on,
  VM-VM anti-affinity; "should" rules and affinity only decide between hosts that fit,
  and a placement that breaks one says so;
* VMs are placed *highest restart priority first*, so when capacity runs out it is the
  low-priority VMs that are left unplaced.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from . import preflight
from .config import PlacementConfig
from .drs_rules import DrsRules
from .fault_domains import prefer_other_domain
from .model import HostState, Snapshot, VMState


@dataclass(frozen=True)
class Placement:
    vm_id: str
    vm: str
    priority: str
    target_id: str = ""
    target: str = ""
    fault_domain: str = ""
    reason: str = ""

    @property
    def placed(self) -> bool:
        return bool(self.target_id)


@dataclass
class _Load:
    """Running totals for one candidate host while a batch is being placed."""

    host: HostState
    cpu_reserved: float
    mem_reserved: float
    cpu_used: float
    mem_used: float
    vms: int

    def score(self) -> float:
        """Utilisation of the busier resource; VM count when capacity is not reported."""
        h = self.host
        if h.cpu_capacity_mhz <= 0 or h.memory_capacity_mb <= 0:
            return float(self.vms)
        return max(self.cpu_used / h.cpu_capacity_mhz, self.mem_used / h.memory_capacity_mb)

    def refusal(self, vm: VMState, cfg: PlacementConfig) -> str:
        """Why ``vm`` does not fit here, or ``""`` when it does."""
        h = self.host
        if h.cpu_capacity_mhz > 0:
            if self.cpu_reserved + vm.cpu_reservation_mhz > h.cpu_capacity_mhz:
                return "CPU reservations full"
            if self.cpu_used + vm.cpu_demand_mhz > h.cpu_capacity_mhz * cfg.max_cpu_utilization:
                return "CPU use above ceiling"
        if h.memory_capacity_mb > 0:
            if self.mem_reserved + vm.memory_reservation_mb > h.memory_capacity_mb:
                return "memory reservations full"
            if (
                self.mem_used + vm.memory_demand_mb
                > h.memory_capacity_mb * cfg.max_memory_utilization
            ):
                return "memory use above ceiling"
        return ""

    def add(self, vm: VMState) -> None:
        self.cpu_reserved += vm.cpu_reservation_mhz
        self.mem_reserved += vm.memory_reservation_mb
        self.cpu_used += vm.cpu_demand_mhz
        self.mem_used += vm.memory_demand_mb
        self.vms += 1


def priority_order(vms: Iterable[VMState]) -> list[VMState]:
    """Highest restart priority first; name breaks ties so plans are reproducible."""
    return sorted(vms, key=lambda v: (-v.rank, v.name, v.moid))


def _loads(snapshot: Snapshot, exclude: set[str]) -> tuple[list[_Load], list[str]]:
    loads: list[_Load] = []
    rejected: list[str] = []
    for host in sorted(snapshot.hosts.values(), key=lambda h: h.name):
        if host.moid in exclude:
            continue
        why = host.unhealthy_reason()
        if why:
            rejected.append(f"{host.name}: {why}")
            continue
        running = [v for v in snapshot.vms_on(host.moid) if v.running]
        cpu_demand = sum(v.cpu_demand_mhz for v in running)
        mem_demand = sum(v.memory_demand_mb for v in running)
        loads.append(
            _Load(
                host=host,
                cpu_reserved=sum(v.cpu_reservation_mhz for v in running),
                mem_reserved=sum(v.memory_reservation_mb for v in running),
                cpu_used=max(host.cpu_usage_mhz, cpu_demand),
                mem_used=max(host.memory_usage_mb, mem_demand),
                vms=len(running),
            )
        )
    return loads, rejected


def place(
    vms: Sequence[VMState],
    snapshot: Snapshot,
    cfg: PlacementConfig,
    *,
    avoid_fault_domain: str = "",
    exclude: Iterable[str] = (),
) -> list[Placement]:
    """Place ``vms`` (any order) on the snapshot's healthy hosts, highest priority first.

    ``exclude`` holds hosts that must not take VMs (the failed or degraded source).  The
    result is in placement order; unplaced VMs carry the reason instead of a target.
    ``avoid_fault_domain`` is the source's fault domain: avoided where domains are racks,
    preferred (the VM's home) where they are sites (``cfg.fault_domains``).
    """
    loads, rejected = _loads(snapshot, set(exclude))
    racks = prefer_other_domain(cfg.fault_domains)
    rules = snapshot.cluster.rules if snapshot.cluster is not None else DrsRules()
    # Where each VM runs (or, once placed in this batch, will run): VM-VM rules need it.
    where = {v.moid: v.host_id for v in snapshot.vms.values() if v.running and v.host_id}
    out: list[Placement] = []
    for vm in priority_order(vms):
        fitting: list[_Load] = []
        refusals: list[str] = []
        broken: dict[str, list[str]] = {}
        for load in loads:
            hard, soft = rules.judge(vm.moid, load.host.moid, where)
            why = (
                preflight.check(vm, load.host)
                or (f"breaks required {hard}" if hard else "")
                or load.refusal(vm, cfg)
            )
            if why:
                refusals.append(f"{load.host.name}: {why}")
            else:
                fitting.append(load)
                broken[load.host.moid] = soft
        if not fitting:
            detail = "; ".join(refusals + rejected) or "the cluster has no other host"
            out.append(
                Placement(vm.moid, vm.name, vm.priority, reason=f"no healthy host fits: {detail}")
            )
            continue

        def key(
            load: _Load, broken: dict[str, list[str]] = broken
        ) -> tuple[int, int, float, int, str]:
            home = load.host.fault_domain == avoid_fault_domain
            unwanted = bool(avoid_fault_domain) and (home if racks else not home)
            soft = len(broken[load.host.moid])
            return (soft, int(unwanted), round(load.score(), 6), load.vms, load.host.name)

        best = min(fitting, key=key)
        best.add(vm)
        where[vm.moid] = best.host.moid
        reason = "least loaded healthy host" + _domain_reason(
            best.host.fault_domain, avoid_fault_domain, racks
        )
        if broken[best.host.moid]:
            reason += "; breaks " + ", ".join(broken[best.host.moid]) + " (nothing else fits)"
        out.append(
            Placement(
                vm.moid,
                vm.name,
                vm.priority,
                target_id=best.host.moid,
                target=best.host.name,
                fault_domain=best.host.fault_domain,
                reason=reason,
            )
        )
    return out


def _domain_reason(target: str, home: str, racks: bool) -> str:
    if not home:
        return ""
    if racks:
        if target != home:
            return f" in another fault domain ({target})"
        return f" (no room outside fault domain {home})"
    if target == home:
        return f" in its own fault domain ({home})"
    return f" in fault domain {target or '(none)'} (no room in its own fault domain {home})"


def fits(vm: VMState, host_id: str, snapshot: Snapshot, cfg: PlacementConfig) -> str:
    """Whether ``vm`` may start on ``host_id`` now: ``""`` if so, else why not."""
    host = snapshot.hosts.get(host_id)
    if host is None:
        return "host is not in the snapshot"
    why = host.unhealthy_reason()
    if why:
        return why
    why = preflight.check(vm, host)
    if why:
        return why
    loads, _ = _loads(snapshot, set())
    load = next(ld for ld in loads if ld.host.moid == host_id)
    return load.refusal(vm, cfg)
