"""Who acts on a failed VM: vSphere HA, the remediator, or nobody — and why.

The product's stance: vSphere HA where a cluster does not have it, a watchdog for vSphere
HA where it does. Racing HA (re-registering a VM HA is about to restart) is how VMs end up
registered twice, so on an HA cluster the remediator only verifies and alerts, and acts
only where the config opts in after HA's whole retry schedule has passed. Everything here
is a pure function of live state read by :mod:`remediator.ha_settings`, so each decision
can be journaled with its reason and tested without vCenter.

Rules, each mirroring a vSphere setting (docs/remediator.md, "Who acts"):

* system VMs are never touched: ``config.managedBy`` (vCLS, ESX Agent Manager agents),
  Fault Tolerance VMs (``config.ftInfo``: FT fails over, HA restarts secondaries),
  host-tied devices (PCI passthrough, vGPU, SR-IOV) and storage only one host mounts;
* restart priority ``disabled`` (per-VM HA override, cluster default, or the stack's own
  rules) means nobody restarts it;
* HA enabled and host monitoring disabled (``dasConfig.hostMonitoring``): nobody — admins
  switch it off precisely to stop failovers;
* HA enabled, host monitoring on, VM protected (``dasVmProtection.dasProtected``): HA acts;
  the remediator verifies until :func:`ha_overdue_seconds` and alerts when HA is overdue;
* HA off, or the VM not protected by HA: the remediator acts.

Resets (VM monitoring) follow the same split: on an HA cluster they are HA's (or nobody's
when VM monitoring is off there, vSphere's default); the remediator resets only VMs on
clusters without HA, and only when the VM's own override or the stack's config asks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from .ha_settings import ClusterHA, IOActivity, ToolsMonitoring, VmHAFacts

__all__ = ["IOActivity"]  # re-exported: reset_verdict takes one

HA = "vsphere-ha"
REMEDIATOR = "remediator"
NOBODY = "nobody"
ACTORS = (HA, REMEDIATOR, NOBODY)

# vSphere HA retries a failed restart after 2, 6, 14 and 30 minutes (the delay doubles
# from 2 minutes), das.maxvmrestartcount attempts in all (5 by default); the window
# below adds a margin for failure detection and the last attempt itself.
HA_FIRST_RETRY_SECONDS = 120.0
HA_DETECTION_MARGIN_SECONDS = 300.0


@dataclass(frozen=True)
class Responsibility:
    """One decision: who acts, why, and (for HA) until when the remediator only watches."""

    actor: str
    reason: str
    priority: str = ""
    priority_source: str = ""
    overdue_after: float | None = None  # seconds after the failure HA counts as overdue
    act_when_overdue: bool = False
    rule: str = ""  # a short code for metrics: system-vm, priority-disabled, ha-protected...

    @property
    def remediator_acts(self) -> bool:
        return self.actor == REMEDIATOR


def ha_overdue_seconds(max_restart_count: int, configured: float | None = None) -> float:
    """How long HA may take before its restart is overdue: its whole retry schedule.

    With attempts at 0, 2, 6, 14, 30 minutes (count 5) the last starts 30 minutes after
    the first; a configured window (``ha.overdue_seconds``) wins when given.
    """
    if configured is not None:
        return configured
    n = max(1, int(max_restart_count))
    last_attempt = HA_FIRST_RETRY_SECONDS * (2 ** (n - 1) - 1)
    return last_attempt + HA_DETECTION_MARGIN_SECONDS


def system_vm_reason(vm: VmHAFacts) -> str:
    """Why nobody may move or restart this VM elsewhere, or ``""``."""
    if vm.managed_by:
        return (
            f"managed by the extension {vm.managed_by} (vCLS or an ESX Agent Manager agent): "
            "its owner recreates it, never touched"
        )
    if vm.ft_role is not None:
        role = "primary" if vm.ft_role == 1 else "secondary"
        return (
            f"a Fault Tolerance {role}: FT fails it over and HA restarts secondaries, never touched"
        )
    if vm.host_tied_devices:
        kinds = ", ".join(sorted(set(vm.host_tied_devices)))
        return f"has devices that tie it to its host ({kinds}): no other host can run it"
    if vm.local_only_storage:
        return "its storage is mounted on one host only: no other host can run it"
    return ""


def resolve_priority(cluster: ClusterHA | None, vm_id: str, stack_priority: str) -> tuple[str, str]:
    """(restart priority, where it came from), vSphere's settings first.

    The VM's own HA override wins, then the cluster's default, then the stack's custom
    attribute / rules / default. A cluster's default counts only while HA is enabled there
    (vCenter reports ``medium`` on every cluster, HA or not; on a cluster without HA that
    dormant value would mask the stack's own rules), except ``disabled``, honoured everywhere.
    """
    if cluster is not None:
        own = cluster.priority_override(vm_id)
        if own:
            return own, "vSphere HA per-VM override"
        if cluster.default_priority_set and (
            cluster.enabled or cluster.default_priority == "disabled"
        ):
            return cluster.default_priority, "cluster default (dasConfig.defaultVmSettings)"
    return stack_priority, "the stack's custom attribute / rules / default"


def restart_responsibility(
    cluster: ClusterHA | None,
    vm: VmHAFacts,
    stack_priority: str,
    *,
    overdue_seconds: float | None = None,
    act_when_overdue: bool = False,
) -> Responsibility:
    """Who restarts ``vm`` after its host failed (or it went down with it)."""
    r, rule = _restart(cluster, vm, stack_priority, overdue_seconds, act_when_overdue)
    return replace(r, rule=rule)


def _restart(
    cluster: ClusterHA | None,
    vm: VmHAFacts,
    stack_priority: str,
    overdue_seconds: float | None,
    act_when_overdue: bool,
) -> tuple[Responsibility, str]:
    priority, source = resolve_priority(cluster, vm.moid, stack_priority)
    system = system_vm_reason(vm)
    if system:
        return Responsibility(NOBODY, system, priority, source), "system-vm"
    if priority == "disabled":
        return Responsibility(
            NOBODY, f"restart priority disabled ({source}): nobody restarts it", priority, source
        ), "priority-disabled"
    if cluster is None:
        return Responsibility(
            REMEDIATOR, "not in a cluster: no vSphere HA", priority, source
        ), "no-cluster"
    if not cluster.enabled:
        return Responsibility(
            REMEDIATOR, f"vSphere HA is off on cluster {cluster.name}", priority, source
        ), "ha-off"
    if not cluster.host_monitoring:
        return Responsibility(
            NOBODY,
            f"vSphere HA host monitoring is disabled on cluster {cluster.name}: HA restarts "
            "nothing and neither does the remediator (report only)",
            priority,
            source,
        ), "host-monitoring-off"
    if vm.das_protected:
        window = ha_overdue_seconds(cluster.max_restart_count, overdue_seconds)
        then = "acts (ha.act_when_overdue)" if act_when_overdue else "alerts only"
        return Responsibility(
            HA,
            f"protected by vSphere HA on cluster {cluster.name}: HA restarts it; the remediator "
            f"verifies and, if it is not running {window:.0f} s after the failure, {then}",
            priority,
            source,
            overdue_after=window,
            act_when_overdue=act_when_overdue,
        ), "ha-protected"
    state = "not protected" if vm.das_protected is False else "reports no HA protection state"
    return Responsibility(
        REMEDIATOR,
        f"on HA cluster {cluster.name} but {state} (dasVmProtection): HA will not restart it",
        priority,
        source,
    ), "ha-unprotected"


def overdue(resp: Responsibility, failed_for: float) -> bool:
    """Whether HA, responsible for a VM down ``failed_for`` seconds, is overdue."""
    return resp.actor == HA and resp.overdue_after is not None and failed_for >= resp.overdue_after


def reset_responsibility(
    cluster: ClusterHA | None, vm: VmHAFacts, stack_tools: ToolsMonitoring
) -> tuple[Responsibility, ToolsMonitoring]:
    """Who resets ``vm`` after its heartbeat stopped, and the VM-monitoring settings that apply.

    On an HA cluster VM monitoring is HA's (``dasConfig.vmMonitoring`` or the VM's
    override); with it off, vSphere's default, nobody responds to heartbeat loss. Without
    HA the VM's own override (kept in ``dasVmConfig`` even while HA is off), else the
    stack's config decides.
    """
    # a reset happens in place, so host-tied devices and local storage do not matter here
    if vm.managed_by or vm.ft_role is not None:
        return Responsibility(NOBODY, system_vm_reason(vm)), stack_tools
    if cluster is not None and cluster.enabled:
        tools = cluster.tools_of(vm.moid)
        if not tools.enabled:
            return (
                Responsibility(
                    NOBODY,
                    f"VM monitoring is {tools.vm_monitoring} for this VM on HA cluster "
                    f"{cluster.name}: "
                    "no response to heartbeat loss",
                ),
                tools,
            )
        if vm.das_protected:
            return Responsibility(
                HA, f"vSphere HA VM monitoring ({tools.vm_monitoring}) on {cluster.name}"
            ), tools
        return (
            Responsibility(
                NOBODY,
                f"on HA cluster {cluster.name} VM monitoring is HA's, and HA does not "
                "protect this VM",
            ),
            tools,
        )
    if cluster is not None and cluster.override(vm.moid).tools is not None:
        tools = cluster.tools_of(vm.moid)
        who = REMEDIATOR if tools.enabled else NOBODY
        return Responsibility(
            who, f"the VM's own VM-monitoring override: {tools.vm_monitoring}"
        ), tools
    who = REMEDIATOR if stack_tools.enabled else NOBODY
    where = (
        f"cluster {cluster.name} has no vSphere HA" if cluster is not None else "not in a cluster"
    )
    return Responsibility(
        who, f"{where}: the stack's VM monitoring ({stack_tools.vm_monitoring})"
    ), stack_tools


# --- HA's reset semantics ----------------------------------------------------------------


@dataclass(frozen=True)
class ResetVerdict:
    """Whether to reset now; ``withheld`` names the rule that held it ("" when resetting)."""

    reset: bool
    reason: str
    withheld: str = ""


def reset_verdict(
    tools: ToolsMonitoring,
    *,
    now: float,
    guest_heartbeat: str,
    app_heartbeat: str,
    app_state: str,
    failed_for: float,
    boot_time: float | None,
    recent_resets: Sequence[float],
    io: IOActivity | None,
    io_interval: float,
    io_required: bool = True,
) -> ResetVerdict:
    """vSphere HA's VM-monitoring rules for one VM whose monitoring is in force.

    A reset needs a trigger — the guest heartbeat (or, with application monitoring, the
    application heartbeat) lost for at least ``failureInterval``, or the application
    agent asking for one (``guest.appState`` = ``appStateNeedReset``) — and passes only
    if the VM has been up ``minUpTime``, fewer than ``maxFailures`` resets happened within
    ``maxFailureWindow`` (all of them with no window, -1), and, for heartbeat triggers,
    HA's I/O check saw no disk and no network I/O over ``das.iostatsinterval``: a busy guest
    whose Tools service hung is not reset. Unknown I/O holds the reset when ``io_required``
    (first, do no harm).
    """
    trigger = ""
    heartbeat_trigger = False
    if tools.app_monitoring and app_state == "appStateNeedReset":
        trigger = "the application agent asked for an immediate reset (appStateNeedReset)"
    elif guest_heartbeat == "red" or (
        tools.app_monitoring and app_heartbeat in ("appStatusRed", "red")
    ):
        what = "guest" if guest_heartbeat == "red" else "application"
        if failed_for < tools.failure_interval:
            return ResetVerdict(
                False,
                f"{what} heartbeat lost for {failed_for:.0f} s, less than the failure interval "
                f"({tools.failure_interval:.0f} s)",
                "failure-interval",
            )
        trigger = (
            f"{what} heartbeat lost for {failed_for:.0f} s "
            f"(failure interval {tools.failure_interval:.0f} s)"
        )
        heartbeat_trigger = True
    if not trigger:
        return ResetVerdict(False, "no heartbeat loss and no reset request", "no-trigger")
    if boot_time is not None and now - boot_time < tools.min_uptime:
        return ResetVerdict(
            False,
            f"up {now - boot_time:.0f} s, less than the minimum uptime ({tools.min_uptime:.0f} s): "
            "heartbeats may not have started yet",
            "min-uptime",
        )
    window = tools.max_failure_window
    counted = [t for t in recent_resets if window is None or now - t < window]
    if len(counted) >= tools.max_failures:
        span = "ever (no failure window)" if window is None else f"in the last {window:.0f} s"
        return ResetVerdict(
            False,
            f"{len(counted)} resets {span}, the maximum is {tools.max_failures}",
            "max-resets",
        )
    if heartbeat_trigger:
        if io is None:
            if io_required:
                return ResetVerdict(
                    False,
                    f"{trigger}, but the guest's disk and network I/O over the last "
                    f"{io_interval:.0f} s "
                    "could not be read: HA resets only a VM with no I/O",
                    "io-unknown",
                )
        elif not io.idle:
            return ResetVerdict(
                False,
                f"{trigger}, but guest I/O is still flowing (disk {io.disk_kbps:.0f} KB/s, network "
                f"{io.net_kbps:.0f} KB/s over {io.window_seconds:.0f} s): a hung Tools service, "
                "not a hung guest",
                "io",
            )
    return ResetVerdict(True, trigger)
