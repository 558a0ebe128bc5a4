"""The remediator's own metrics, on a registry per app so tests and apps never collide."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

from .duplicates import DuplicateMetrics
from .journal import STATES
from .stranded import StrandedMetrics

STEP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
DECISION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)


class Metrics:
    def __init__(self) -> None:
        # ``*_created`` series double the output and no dashboard or rule reads them.  The
        # switch is process-wide; it only touches client-library counters and histograms.
        disable_created_metrics()
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.webhook_requests = Counter(
            "vha_remediator_webhook_requests_total",
            "Webhook requests by HTTP status code",
            ["code"],
            registry=r,
        )
        self.alerts_received = Counter(
            "vha_remediator_alerts_received_total",
            "Alerts received in webhook deliveries, by status and what became of them",
            ["status", "outcome"],
            registry=r,
        )
        self.actions = Counter(
            "vha_remediator_actions_total",
            "Decisions and steps that reached a final state, by kind and result",
            ["kind", "result"],
            registry=r,
        )
        self.action_duration = Histogram(
            "vha_remediator_action_duration_seconds",
            "Time a step spent changing vCenter (tasks and waits), by kind",
            ["kind"],
            buckets=STEP_BUCKETS,
            registry=r,
        )
        self.decision_duration = Histogram(
            "vha_remediator_decision_duration_seconds",
            "The remediator's own time to decide on an alert (policy and placement, no I/O)",
            ["kind"],
            buckets=DECISION_BUCKETS,
            registry=r,
        )
        self.live_read_duration = Histogram(
            "vha_remediator_live_read_duration_seconds",
            "Time to re-read live state from vCenter before a decision",
            buckets=DECISION_BUCKETS + (2.5, 5, 10),
            registry=r,
        )
        self.cluster_reads = Counter(
            "vha_remediator_cluster_reads_total",
            "Whole-cluster live reads asked for (cluster, hosts, VMs), by vCenter and whether "
            "the read was shared with a concurrent one already in flight",
            ["vcenter", "shared"],
            registry=r,
        )
        self.step_read_calls = Counter(
            "vha_remediator_step_read_calls_total",
            "Property-collector calls for steps' re-reads of their VMs and hosts (several "
            "steps asking together share one)",
            ["vcenter"],
            registry=r,
        )
        self.vcenter_errors = Counter(
            "vha_remediator_vcenter_errors_total",
            "Failed vCenter calls, by vCenter and category",
            ["vcenter", "category"],
            registry=r,
        )
        self.guard_tripped = Gauge(
            "vha_remediator_guard_tripped",
            "1 while the mass-failure guard holds all work on a cluster",
            ["vcenter", "cluster"],
            registry=r,
        )
        self.guard_failed_hosts = Gauge(
            "vha_remediator_guard_failed_hosts",
            "Hosts of the cluster seen failing within the guard window",
            ["vcenter", "cluster"],
            registry=r,
        )
        self.vcenter_up = Gauge(
            "vha_remediator_vcenter_up",
            "1 while the remediator can reach this vCenter (0 holds all work on it)",
            ["vcenter"],
            registry=r,
        )
        self.guard_state = Gauge(
            "vha_remediator_guard_state",
            "1 for the current overall guard state: ok, tripped (a cluster guard) or "
            "unreachable (a vCenter cannot be reached)",
            ["state"],
            registry=r,
        )
        self.backlog = Gauge(
            "vha_remediator_journal_backlog",
            "Actions pending or running in the journal",
            registry=r,
        )
        self.journal_actions = Gauge(
            "vha_remediator_journal_actions",
            "Actions in the journal by state",
            ["state"],
            registry=r,
        )
        self.in_flight = Gauge(
            "vha_remediator_tasks_in_flight",
            "vCenter tasks the remediator is running now",
            registry=r,
        )
        self.implausible_starts = Counter(
            "vha_remediator_implausible_starts_total",
            "Alerts whose startsAt could not be when the failure began (zero time, in the "
            "future, before the host was last seen connected); brakes ignored it",
            ["reason"],
            registry=r,
        )
        self.confirm_checks = Counter(
            "vha_remediator_confirm_checks_total",
            "Answers of the out-of-band confirmation hook (host_failure.confirm_command): "
            "down (powered off), alive (a partition), unknown (no answer, timeout, error)",
            ["result"],
            registry=r,
        )
        for result in ("down", "alive", "unknown"):
            self.confirm_checks.labels(result=result)
        self.confirm_refresh_errors = Counter(
            "vha_remediator_confirm_refresh_errors_total",
            "Watcher refreshes of the confirmation hook's answers that failed unexpectedly "
            "(logged; the next pass asks again)",
            ["vcenter"],
            registry=r,
        )
        self.journal_errors = Counter(
            "vha_remediator_journal_errors_total",
            "Journal writes that failed (deliveries answered 503)",
            registry=r,
        )
        self.dry_run = Gauge(
            "vha_remediator_dry_run",
            "1 when the remediator only plans and journals, changing nothing",
            registry=r,
        )
        self.stranded = StrandedMetrics(r)  # VMs out of vCenter's inventory (stranded.py)
        self.duplicates = DuplicateMetrics(r)  # VMs registered twice (duplicates.py)
        self.identity_errors = Counter(
            "vha_remediator_identity_not_restored_total",
            "Parts of a re-registered VM's identity that could not be read or restored, by"
            " part and cause (no_permission: a privilege the vCenter role lacks)",
            ["part", "cause"],
            registry=r,
        )
        # issue 10: who was responsible per VM decision, and vSphere HA overdue
        self.responsibility = Counter(
            "vha_remediator_responsibility_total",
            "VM decisions by who was responsible (vsphere-ha, remediator, nobody) and the rule",
            ["kind", "actor", "rule"],
            registry=r,
        )
        self.ha_overdue = Counter(
            "vha_remediator_ha_restart_overdue_total",
            "VMs vSphere HA had not restarted within the overdue window (once per VM and failure)",
            ["vcenter", "cluster"],
            registry=r,
        )
        for code in ("200", "400", "401", "405", "413", "415", "503"):
            self.webhook_requests.labels(code=code)
        for state in ("ok", "tripped", "unreachable"):
            self.guard_state.labels(state=state)
        for state in STATES:
            self.journal_actions.labels(state=state)
