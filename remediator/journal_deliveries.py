"""The journal's intake half: each webhook delivery and the work its alerts ask for.

Everything Alertmanager sends is written in one durable transaction before the webhook
answers: the raw body (``deliveries``), one row per alert firing (``alerts``), a decision
per firing that asks for remediation (``actions``) and which firings each decision serves
(``action_alerts``).  A second alert for the same target (another rule, another
Alertmanager replica) attaches to the active decision instead of starting a second one;
work is cancelled only when every alert it serves has resolved.
"""

from __future__ import annotations

import json

from .alerts import DOMAIN_KINDS, HOST_KINDS, Alert, Delivery
from .journal_schema import CANCELLED, PENDING, SKIPPED, DeliveryResult, JournalBase


def _target(alert: Alert) -> str:
    """The object an alert is about, id first: what duplicate alerts are matched on."""
    if alert.remediation in HOST_KINDS:
        return alert.label("host_id") or "name:" + alert.label("host")
    if alert.remediation in DOMAIN_KINDS:  # cluster moid / fault domain (domain_failure.py)
        return f"{alert.label('cluster_id')}/{alert.label('fault_domain')}"
    return alert.label("vm_id") or "name:" + alert.label("vm")


class Deliveries(JournalBase):
    """Recording deliveries; the work queue and reads are in :class:`.journal.Journal`."""

    def record_delivery(
        self,
        body: str,
        delivery: Delivery,
        *,
        remote: str,
        now: float,
        vcenters: set[str],
        dry_run: bool,
    ) -> DeliveryResult:
        """Journal a webhook delivery and the work it asks for, in one durable transaction."""
        with self._tx(durable=True):
            cur = self.db.execute(
                "INSERT INTO deliveries (received_at, remote, receiver, group_key, status, alerts,"
                " body) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    now,
                    remote,
                    delivery.receiver,
                    delivery.group_key,
                    delivery.status,
                    len(delivery.alerts),
                    body,
                ),
            )
            result = DeliveryResult(delivery_id=int(cur.lastrowid or 0))
            for alert in delivery.alerts:
                self._record_alert(alert, result, now, vcenters, dry_run)
            return result

    def _record_alert(
        self, alert: Alert, result: DeliveryResult, now: float, vcenters: set[str], dry_run: bool
    ) -> None:
        did = result.delivery_id
        prior = self.db.execute(
            "SELECT status FROM alerts WHERE fingerprint = ? AND starts_at = ?",
            (alert.fingerprint, alert.starts_at),
        ).fetchone()
        if prior is None:
            self.db.execute(
                "INSERT INTO alerts (fingerprint, starts_at, status, alertname, remediation,"
                " labels, first_delivery, last_delivery, first_seen, last_seen, resolved_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    alert.fingerprint,
                    alert.starts_at,
                    alert.status,
                    alert.label("alertname"),
                    alert.remediation,
                    json.dumps(dict(alert.labels), sort_keys=True),
                    did,
                    did,
                    now,
                    now,
                    now if alert.status == "resolved" else None,
                ),
            )
        else:
            # A firing that arrives after its resolution (out of order, or from a lagging
            # replica) must not revive the alert.
            resolved = prior[0] == "resolved" or alert.status == "resolved"
            self.db.execute(
                "UPDATE alerts SET status = ?, last_delivery = ?, deliveries = deliveries + 1,"
                " last_seen = ?, resolved_at = COALESCE(resolved_at, ?)"
                " WHERE fingerprint = ? AND starts_at = ?",
                (
                    "resolved" if resolved else "firing",
                    did,
                    now,
                    now if resolved else None,
                    alert.fingerprint,
                    alert.starts_at,
                ),
            )

        if alert.status == "resolved":
            result.cancelled += self._cancel_for(alert, now)
            return
        if not alert.wants_action:
            result.ignored += 1
            return
        if prior is not None and prior[0] == "resolved":
            result.ignored += 1
            return
        linked = self.db.execute(
            "SELECT action_id FROM action_alerts WHERE fingerprint = ? AND starts_at = ?",
            (alert.fingerprint, alert.starts_at),
        ).fetchone()
        if linked is not None:
            result.duplicates += 1
            return

        problem = alert.unusable(vcenters)
        target = _target(alert)
        if not problem:
            active = self._active_for(alert.label("vcenter"), alert.remediation, target)
            if active is not None:
                self._link(active, alert)
                self._event(active, now, "attached", f"also serves alert {alert.key}")
                result.attached += 1
                return
        labels = alert.labels
        cur = self.db.execute(
            "INSERT INTO actions (key, kind, target, fingerprint, starts_at, starts_ts, vcenter,"
            " cluster, host_id, host, fault_domain, vm_id, vm, state, reason, dry_run, not_before,"
            " created_at, updated_at, finished_at, detail)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                alert.key,
                alert.remediation or "none",
                target,
                alert.fingerprint,
                alert.starts_at,
                alert.starts_ts,
                labels.get("vcenter", ""),
                labels.get("cluster", ""),
                labels.get("host_id", ""),
                labels.get("host", ""),
                labels.get("fault_domain", ""),
                labels.get("vm_id", ""),
                labels.get("vm", ""),
                SKIPPED if problem else PENDING,
                f"unusable alert: {problem}" if problem else "received",
                int(dry_run),
                now,
                now,
                now,
                now if problem else None,
                json.dumps({"alertname": labels.get("alertname", "")}),
            ),
        )
        action_id = int(cur.lastrowid or 0)
        self._link(action_id, alert)
        self._event(
            action_id,
            now,
            SKIPPED if problem else PENDING,
            f"unusable alert: {problem}" if problem else f"alert {alert.key} received",
        )
        if not problem:
            result.created.append(action_id)

    def _link(self, action_id: int, alert: Alert) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO action_alerts (action_id, fingerprint, starts_at)"
            " VALUES (?, ?, ?)",
            (action_id, alert.fingerprint, alert.starts_at),
        )

    def _active_for(self, vcenter: str, kind: str, target: str) -> int | None:
        row = self.db.execute(
            "SELECT a.id FROM actions a WHERE a.parent_id IS NULL AND a.vcenter = ? AND a.kind = ?"
            " AND a.target = ? AND (a.state IN ('pending', 'running') OR (a.state = 'planned' AND"
            " EXISTS (SELECT 1 FROM actions c WHERE c.parent_id = a.id"
            " AND c.state IN ('pending', 'running')))) ORDER BY a.id LIMIT 1",
            (vcenter, kind, target),
        ).fetchone()
        return int(row[0]) if row else None

    def _cancel_for(self, alert: Alert, now: float) -> int:
        """Cancel pending work whose every alert has resolved; running steps finish."""
        cancelled = 0
        rows = self.db.execute(
            "SELECT action_id FROM action_alerts WHERE fingerprint = ? AND starts_at = ?",
            (alert.fingerprint, alert.starts_at),
        ).fetchall()
        for (action_id,) in rows:
            if self._firing(action_id):
                continue
            why = f"alert {alert.key} resolved before the work was done"
            targets = [action_id] + [
                r[0]
                for r in self.db.execute(
                    "SELECT id FROM actions WHERE parent_id = ? AND state = 'pending'", (action_id,)
                )
            ]
            for tid in targets:
                cur = self.db.execute(
                    "UPDATE actions SET state = 'cancelled', reason = ?, updated_at = ?,"
                    " finished_at = ? WHERE id = ? AND state = 'pending'"
                    " AND detail NOT LIKE '%\"unregistered\"%'",  # a VM out of vCenter
                    (why, now, now, tid),
                )
                if cur.rowcount:
                    cancelled += 1
                    self._event(tid, now, CANCELLED, why)
            self._settle(action_id, now)
        return cancelled
