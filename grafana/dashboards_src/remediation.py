"""The Remediation dashboard (vha-remediation): what the remediator did, refused and is
holding back, from its own metrics and the alerts routed to it.

docs/dashboards.md describes every panel.
"""

from __future__ import annotations

from .common import (
    GUARD_STATE,
    HOST_LINK,
    UP_MAP,
    UP_STEPS,
    VAR_CLUSTER,
    VAR_VCENTER,
    VM_LINK,
    Board,
    bargauge,
    bool_map,
    column,
    enum_stat,
    stat,
    steps,
    table,
    timeseries,
)
from .promql import CL, FIRING, REMEDIABLE, REMEDIATOR_JOB, VC


def build() -> Board:
    d = Board(
        "vha-remediation",
        "vSphere HA / Remediation",
        "What the webhook remediator (vha remediator) did and why it held back: actions by "
        "kind and result, their duration, the mass-failure guard, the journal, and the "
        "webhook Alertmanager calls.",
        [VAR_VCENTER, VAR_CLUSTER],
    )
    idle = "the remediator has not acted in the time range"
    guard = f"vha_remediator_guard_tripped{{{CL}}}"
    d.row("State")
    d.add(
        4,
        4,
        stat(
            "Remediator",
            "Whether Prometheus reaches the remediator.",
            [(f'up{{job="{REMEDIATOR_JOB}"}}', "{{instance}}")],
            mappings=UP_MAP,
            thresholds=UP_STEPS,
            color_mode="background",
        ),
        stat(
            "Mode",
            "Dry run: actions are planned and journaled, never sent to vCenter.",
            [("max(vha_remediator_dry_run)", "")],
            mappings=bool_map("live", "dry run", "orange", "blue"),
            color_mode="background",
        ),
        enum_stat(
            "Guard",
            "ok; tripped: a cluster's mass-failure guard holds all work there (too many hosts "
            "failed at once: a partition or a blind watcher is likelier than dead hardware); "
            "unreachable: a vCenter cannot be reached, work on it is held.",
            "vha_remediator_guard_state",
            "state",
            "",
            "",
            GUARD_STATE,
        ),
        stat(
            "vCenters reachable",
            "vCenters the remediator can reach (it holds all work on the others).",
            [(f"sum(vha_remediator_vcenter_up{{{VC}}}) or vector(0)", "")],
        ),
        stat(
            "Journal backlog",
            "Actions pending or running in the journal.",
            [("sum(vha_remediator_journal_backlog)", "")],
            thresholds=steps(("green", None), ("orange", 10), ("red", 50)),
        ),
        stat(
            "Actions",
            "Actions that reached a final state in the time range.",
            [("sum(increase(vha_remediator_actions_total[$__range])) or vector(0)", "")],
            decimals=0,
        ),
    )

    d.row("Actions")
    actions = "vha_remediator_actions_total"
    d.add(
        12,
        8,
        timeseries(
            "Actions by kind and result",
            "Decisions and steps that reached a final state (VM restarts and resets, host "
            "evacuations, ...), per interval.",
            [
                (
                    f"sum by (kind, result) (increase({actions}[$__rate_interval]))",
                    "{{kind}} {{result}}",
                )
            ],
            bars=True,
            stack=True,
            empty=idle,
        ),
        timeseries(
            "Action and decision duration",
            "95th percentile of the time a step spent changing vCenter, and of the "
            "remediator's own time to decide on an alert, by kind.",
            [
                (
                    "histogram_quantile(0.95, sum by (le, kind) "
                    "(rate(vha_remediator_action_duration_seconds_bucket[$__rate_interval])))",
                    "{{kind}} action p95",
                ),
                (
                    "histogram_quantile(0.95, sum by (le, kind) "
                    "(rate(vha_remediator_decision_duration_seconds_bucket[$__rate_interval])))",
                    "{{kind}} decision p95",
                ),
            ],
            unit="s",
            empty=idle,
        ),
    )
    d.add(
        8,
        8,
        table(
            "Actions in the time range",
            "Actions by kind and result over the whole time range.",
            f"sum by (kind, result) (increase({actions}[$__range])) > 0",
            value="Actions",
            order=["kind", "result", "Actions"],
            overrides=[column("Actions", ("decimals", 0))],
            sort="kind",
            empty=idle,
        ),
        bargauge(
            "Journal",
            "Actions in the journal by state.",
            [("sum by (state) (vha_remediator_journal_actions)", "{{state}}")],
        ),
        table(
            "Alerts routed to the remediator",
            "Alerts firing now whose remediation label routes them to the remediator "
            "(alertmanager/alertmanager.yml).",
            f"ALERTS{{{FIRING}, {REMEDIABLE}, {CL}}}",
            order=["alertname", "remediation", "cluster", "host", "vm"],
            hide=["alertstate", "severity"],
            overrides=[column("vm", VM_LINK), column("host", HOST_LINK)],
            sort="alertname",
            empty="no remediable alert is firing",
        ),
    )

    d.row("Webhook, guard and vCenter")
    d.add(
        8,
        8,
        timeseries(
            "Webhook requests by code",
            "Deliveries from Alertmanager per second by HTTP status (401: a wrong token; 503: "
            "the journal could not be written).",
            [
                (
                    "sum by (code) (rate(vha_remediator_webhook_requests_total[$__rate_interval]))",
                    "{{code}}",
                )
            ],
            unit="reqps",
        ),
        timeseries(
            "Alerts received",
            "Alerts in webhook deliveries by status (firing, resolved) and what became of them.",
            [
                (
                    "sum by (status, outcome) "
                    "(increase(vha_remediator_alerts_received_total[$__rate_interval]))",
                    "{{status}} {{outcome}}",
                )
            ],
            bars=True,
            stack=True,
            empty="Alertmanager sent nothing in the time range",
        ),
        timeseries(
            "Mass-failure guard",
            "Per cluster: 1 while the guard holds all work, and the hosts seen failing within "
            "the guard window.",
            [
                (guard, "{{cluster}} tripped"),
                (f"vha_remediator_guard_failed_hosts{{{CL}}}", "{{cluster}} failed hosts"),
            ],
            empty="the guard has seen no cluster yet",
        ),
    )
    d.add(
        12,
        7,
        timeseries(
            "vCenter errors",
            "Failed vCenter calls by vCenter and category, per interval.",
            [
                (
                    f"sum by (vcenter, category) "
                    f"(increase(vha_remediator_vcenter_errors_total{{{VC}}}[$__rate_interval]))",
                    "{{vcenter}} {{category}}",
                )
            ],
            bars=True,
            empty="no vCenter call failed",
        ),
        timeseries(
            "Tasks in flight and journal errors",
            "vCenter tasks the remediator runs now, and journal writes that failed.",
            [
                ("sum(vha_remediator_tasks_in_flight)", "tasks in flight"),
                (
                    "sum(increase(vha_remediator_journal_errors_total[$__rate_interval]))",
                    "journal errors",
                ),
            ],
        ),
    )
    return d
