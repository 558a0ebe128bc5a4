"""The durable journal: every delivery, every decision, every vCenter change and outcome.

SQLite in WAL mode, written by one thread (the caller keeps all calls on a single-thread
executor), so the event loop never waits on a disk and no two writers race.  A delivery
is committed with ``synchronous=FULL`` before the webhook answers 200: once Alertmanager
hears 200 it will not send again, so the delivery must survive a power cut.  State
transitions of actions use ``synchronous=NORMAL``, which in WAL mode survives a killed
process (the crash the remediator must tolerate) and costs far less per step.

Two tables carry the work:

* ``actions`` — one *decision* row per alert firing (kind = the alert's ``remediation``,
  key = ``fingerprint@startsAt``) and one *step* row per vCenter change it plans (kind
  ``restart``, ``reset``, ``migrate``, ``enter_maintenance``; ``parent_id`` points at the
  decision; key = decision key + VM).  Unique keys make replays and crash-recovery
  re-plans idempotent.
* ``action_alerts`` — which alert firings an action serves.  A second alert for the same
  target (another rule, another Alertmanager replica) attaches to the active action
  instead of starting a second one; the action is cancelled only when every alert it
  serves has resolved.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .alerts import HOST_KINDS, Alert, Delivery

SCHEMA_VERSION = 1

PENDING = "pending"
RUNNING = "running"
PLANNED = "planned"
DONE = "done"
SKIPPED = "skipped"
FAILED = "failed"
CANCELLED = "cancelled"
UNPLACED = "unplaced"
REFUSED = "refused"
DRY_RUN = "dry_run"

STATES = (PENDING, RUNNING, PLANNED, DONE, SKIPPED, FAILED, CANCELLED, UNPLACED, REFUSED, DRY_RUN)
ACTIVE = (PENDING, RUNNING)
TERMINAL = (DONE, SKIPPED, FAILED, CANCELLED, UNPLACED, REFUSED, DRY_RUN)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    remote TEXT NOT NULL DEFAULT '',
    receiver TEXT NOT NULL DEFAULT '',
    group_key TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT '',
    alerts INTEGER NOT NULL DEFAULT 0,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts (
    fingerprint TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    status TEXT NOT NULL,
    alertname TEXT NOT NULL DEFAULT '',
    remediation TEXT NOT NULL DEFAULT '',
    labels TEXT NOT NULL,
    first_delivery INTEGER NOT NULL,
    last_delivery INTEGER NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 1,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    resolved_at REAL,
    PRIMARY KEY (fingerprint, starts_at)
);
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    parent_id INTEGER REFERENCES actions(id),
    kind TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    fingerprint TEXT NOT NULL DEFAULT '',
    starts_at TEXT NOT NULL DEFAULT '',
    starts_ts REAL NOT NULL DEFAULT 0,
    vcenter TEXT NOT NULL,
    cluster TEXT NOT NULL DEFAULT '',
    host_id TEXT NOT NULL DEFAULT '',
    host TEXT NOT NULL DEFAULT '',
    fault_domain TEXT NOT NULL DEFAULT '',
    vm_id TEXT NOT NULL DEFAULT '',
    vm TEXT NOT NULL DEFAULT '',
    target_host_id TEXT NOT NULL DEFAULT '',
    target_host TEXT NOT NULL DEFAULT '',
    priority TEXT NOT NULL DEFAULT '',
    rank INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    restarted_by TEXT NOT NULL DEFAULT '',
    dry_run INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before REAL NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS actions_due ON actions (state, not_before);
CREATE INDEX IF NOT EXISTS actions_parent ON actions (parent_id);
CREATE INDEX IF NOT EXISTS actions_vm ON actions (vcenter, vm_id);
CREATE INDEX IF NOT EXISTS actions_host ON actions (vcenter, host_id);
CREATE INDEX IF NOT EXISTS actions_target ON actions (vcenter, kind, target);
CREATE TABLE IF NOT EXISTS action_alerts (
    action_id INTEGER NOT NULL REFERENCES actions(id),
    fingerprint TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    PRIMARY KEY (fingerprint, starts_at, action_id)
);
CREATE INDEX IF NOT EXISTS action_alerts_action ON action_alerts (action_id);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    action_id INTEGER NOT NULL REFERENCES actions(id),
    at REAL NOT NULL,
    state TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS events_action ON events (action_id);
"""

_COLUMNS = (
    "id key parent_id kind target fingerprint starts_at starts_ts vcenter cluster host_id host "
    "fault_domain vm_id vm target_host_id target_host priority rank state reason restarted_by "
    "dry_run attempts not_before created_at updated_at started_at finished_at detail"
).split()


class JournalError(RuntimeError):
    """The journal cannot be opened or written; the webhook answers 503 so AM retries."""


@dataclass
class Action:
    id: int
    key: str
    parent_id: int | None
    kind: str
    target: str
    fingerprint: str
    starts_at: str
    starts_ts: float
    vcenter: str
    cluster: str
    host_id: str
    host: str
    fault_domain: str
    vm_id: str
    vm: str
    target_host_id: str
    target_host: str
    priority: str
    rank: int
    state: str
    reason: str
    restarted_by: str
    dry_run: bool
    attempts: int
    not_before: float
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    detail: dict[str, Any] = field(default_factory=dict)
    # Not stored: set once this pass has counted its attempt, so one pass of a step that
    # makes several vCenter calls (relocate, then power on) is one attempt, not several.
    counted: bool = field(default=False, compare=False)

    @property
    def is_step(self) -> bool:
        return self.parent_id is not None

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _COLUMNS}


@dataclass
class DeliveryResult:
    delivery_id: int
    created: list[int] = field(default_factory=list)
    duplicates: int = 0
    attached: int = 0
    cancelled: int = 0
    ignored: int = 0


def _row(row: sqlite3.Row) -> Action:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["dry_run"] = bool(values["dry_run"])
    values["detail"] = json.loads(values["detail"] or "{}")
    return Action(**values)


def _target(alert: Alert) -> str:
    """The object an alert is about, id first: what duplicate alerts are matched on."""
    if alert.remediation in HOST_KINDS:
        return alert.label("host_id") or "name:" + alert.label("host")
    return alert.label("vm_id") or "name:" + alert.label("vm")


class Journal:
    """All SQLite access; call from one thread at a time (the app uses a 1-thread executor)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0
        self._durable = False
        try:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA busy_timeout=5000")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.executescript(_SCHEMA)
            self.db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(f"cannot open journal {path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self.db.close()

    # --- transactions --------------------------------------------------------------

    def _tx(self, durable: bool = False) -> _Tx:
        return _Tx(self, durable)

    def _event(self, action_id: int, now: float, state: str, message: str) -> None:
        self.db.execute(
            "INSERT INTO events (action_id, at, state, message) VALUES (?, ?, ?, ?)",
            (action_id, now, state, message),
        )

    # --- deliveries ----------------------------------------------------------------

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

    # --- the work queue --------------------------------------------------------------

    def claim_due(self, now: float, limit: int, exclude: Iterable[int] = ()) -> list[Action]:
        """Take up to ``limit`` due pending actions: decisions first, then by priority."""
        if limit <= 0:
            return []
        skip = set(exclude)
        with self._tx():
            rows = self.db.execute(
                "SELECT * FROM actions WHERE state = 'pending' AND not_before <= ?"
                " ORDER BY parent_id IS NOT NULL, rank DESC, not_before, id LIMIT ?",
                (now, limit + len(skip)),
            ).fetchall()
            out = []
            for row in rows:
                action = _row(row)
                if action.id in skip:
                    continue
                self.db.execute(
                    "UPDATE actions SET state = 'running', updated_at = ? WHERE id = ?",
                    (now, action.id),
                )
                action.state = RUNNING
                out.append(action)
                if len(out) >= limit:
                    break
            return out

    def start_attempt(self, action_id: int, now: float, message: str, count: bool = True) -> int:
        """Count an attempt at a vCenter change *before* making it, so a crash shows a retry."""
        with self._tx():
            self.db.execute(
                "UPDATE actions SET attempts = attempts + ?, started_at = COALESCE(started_at, ?),"
                " updated_at = ? WHERE id = ?",
                (int(count), now, now, action_id),
            )
            attempts = int(
                self.db.execute(
                    "SELECT attempts FROM actions WHERE id = ?", (action_id,)
                ).fetchone()[0]
            )
            self._event(action_id, now, RUNNING, f"attempt {attempts}: {message}")
            return attempts

    def finish(
        self,
        action_id: int,
        state: str,
        reason: str,
        now: float,
        *,
        not_before: float | None = None,
        detail: Mapping[str, Any] | None = None,
        quiet: bool = False,
        **fields: Any,
    ) -> tuple[str, str] | None:
        """Move an action to ``state`` (pending = retry at ``not_before``) and log why.

        ``quiet`` skips the history event: a held action re-checked every few seconds
        would otherwise flood its history with the same line.  When this was a decision's
        last open step, the decision takes its final state too; that (kind, state) is
        returned.
        """
        assert state in STATES, state
        allowed = {
            "cluster",
            "host_id",
            "host",
            "fault_domain",
            "vm_id",
            "vm",
            "target_host_id",
            "target_host",
            "priority",
            "rank",
            "restarted_by",
            "dry_run",
        }
        sets = ["state = ?", "reason = ?", "updated_at = ?"]
        args: list[Any] = [state, reason, now]
        if state in TERMINAL:
            sets.append("finished_at = ?")
            args.append(now)
        if not_before is not None:
            sets.append("not_before = ?")
            args.append(not_before)
        if detail is not None:
            sets.append("detail = ?")
            args.append(json.dumps(dict(detail), sort_keys=True, default=str))
        for name, value in fields.items():
            if name not in allowed:
                raise ValueError(f"not an updatable field: {name}")
            sets.append(f"{name} = ?")
            args.append(int(value) if isinstance(value, bool) else value)
        with self._tx():
            self.db.execute(
                f"UPDATE actions SET {', '.join(sets)} WHERE id = ?", (*args, action_id)
            )
            if not quiet:
                self._event(action_id, now, state, reason)
            if state not in TERMINAL:
                return None
            row = self.db.execute("SELECT parent_id FROM actions WHERE id = ?", (action_id,))
            parent = row.fetchone()
            return self._settle(int(parent[0]), now) if parent and parent[0] else None

    def _settle(self, parent_id: int, now: float) -> tuple[str, str] | None:
        """A planned decision whose steps are all final takes the outcome of its steps."""
        row = self.db.execute(
            "SELECT kind, state, reason FROM actions WHERE id = ?", (parent_id,)
        ).fetchone()
        if row is None or row[1] != PLANNED:
            return None
        counts = dict(
            self.db.execute(
                "SELECT state, COUNT(*) FROM actions WHERE parent_id = ? GROUP BY state",
                (parent_id,),
            ).fetchall()
        )
        if not counts or any(counts.get(s) for s in ACTIVE):
            return None
        order = (FAILED, UNPLACED, DONE, DRY_RUN, REFUSED, SKIPPED, CANCELLED)
        final = next(state for state in order if counts.get(state))
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        reason = f"{row[2]}; outcome: {summary}"
        self.db.execute(
            "UPDATE actions SET state = ?, reason = ?, updated_at = ?, finished_at = ?"
            " WHERE id = ?",
            (final, reason, now, now, parent_id),
        )
        self._event(parent_id, now, final, f"all steps final: {summary}")
        return str(row[0]), final

    def plan(
        self,
        parent: Action,
        steps: Sequence[Mapping[str, Any]],
        reason: str,
        now: float,
        detail: Mapping[str, Any],
        **fields: Any,
    ) -> tuple[list[int], tuple[str, str] | None]:
        """Write a decision's steps and mark it planned, atomically; replays add nothing.

        Returns the new steps' ids, and the decision's final (kind, state) when every step
        was final from the start (all skipped or unplaced)."""
        ids: list[int] = []
        with self._tx():
            for step in steps:
                state = step.get("state", PENDING)
                cur = self.db.execute(
                    "INSERT OR IGNORE INTO actions (key, parent_id, kind, target, fingerprint,"
                    " starts_at, starts_ts, vcenter, cluster, host_id, host, fault_domain, vm_id,"
                    " vm,"
                    " target_host_id, target_host, priority, rank, state, reason, restarted_by,"
                    " dry_run, not_before, created_at, updated_at, finished_at, detail)"
                    f" VALUES ({', '.join('?' * 27)})",
                    (
                        f"{parent.key}/{step['kind']}/{step.get('vm_id') or step.get('host_id')}",
                        parent.id,
                        step["kind"],
                        step.get("vm_id") or step.get("host_id", ""),
                        parent.fingerprint,
                        parent.starts_at,
                        parent.starts_ts,
                        parent.vcenter,
                        step.get("cluster", parent.cluster),
                        step.get("host_id", ""),
                        step.get("host", ""),
                        step.get("fault_domain", ""),
                        step.get("vm_id", ""),
                        step.get("vm", ""),
                        step.get("target_host_id", ""),
                        step.get("target_host", ""),
                        step.get("priority", ""),
                        int(step.get("rank", 0)),
                        state,
                        step.get("reason", ""),
                        step.get("restarted_by", ""),
                        int(parent.dry_run),
                        float(step.get("not_before", now)),
                        now,
                        now,
                        None if state in ACTIVE else now,
                        json.dumps(step.get("detail", {}), sort_keys=True),
                    ),
                )
                if cur.rowcount:
                    sid = int(cur.lastrowid or 0)
                    ids.append(sid)
                    self._event(sid, now, state, step.get("reason", ""))
            self.finish(parent.id, PLANNED, reason, now, detail=detail, **fields)
            settled = self._settle(parent.id, now)
        return ids, settled

    def recover(self, now: float) -> int:
        """After a crash: actions left running go back to pending, to be re-evaluated live."""
        with self._tx(durable=True):
            rows = self.db.execute("SELECT id FROM actions WHERE state = 'running'").fetchall()
            for (action_id,) in rows:
                self.db.execute(
                    "UPDATE actions SET state = 'pending', not_before = ?, updated_at = ?,"
                    " reason = 'recovered after a restart: re-evaluating against live state'"
                    " WHERE id = ?",
                    (now, now, action_id),
                )
                self._event(action_id, now, PENDING, "recovered after a restart")
            return len(rows)

    # --- reads -----------------------------------------------------------------------

    def get(self, action_id: int) -> Action | None:
        with self._lock:
            row = self.db.execute("SELECT * FROM actions WHERE id = ?", (action_id,)).fetchone()
        return _row(row) if row else None

    def alerts_firing(self, action_id: int) -> bool:
        """Whether any alert this action serves is still firing (resolved ones cancel work)."""
        with self._lock:
            return self._firing(action_id)

    def _firing(self, action_id: int) -> bool:
        row = self.db.execute(
            "SELECT COUNT(*) FROM action_alerts l JOIN alerts a ON a.fingerprint = l.fingerprint"
            " AND a.starts_at = l.starts_at WHERE l.action_id = ? AND a.status = 'firing'",
            (action_id,),
        ).fetchone()
        return bool(row[0])

    def siblings(self, parent_id: int) -> list[Action]:
        with self._lock:
            rows = self.db.execute(
                "SELECT * FROM actions WHERE parent_id = ? ORDER BY id", (parent_id,)
            ).fetchall()
        return [_row(r) for r in rows]

    def done_resets(self, vcenter: str, vm_id: str, since: float) -> list[float]:
        """When this VM was reset by us within the window (the reset limit's history)."""
        with self._lock:
            rows = self.db.execute(
                "SELECT finished_at FROM actions WHERE kind = 'reset' AND state = 'done'"
                " AND vcenter = ? AND vm_id = ? AND finished_at >= ? ORDER BY finished_at",
                (vcenter, vm_id, since),
            ).fetchall()
        return [float(r[0]) for r in rows]

    def attempt_times(self, since: float) -> list[tuple[str, str, float]]:
        """(vcenter, cluster, started_at) of steps that touched vCenter within the window."""
        with self._lock:
            rows = self.db.execute(
                "SELECT vcenter, cluster, started_at FROM actions WHERE parent_id IS NOT NULL"
                " AND started_at >= ? AND dry_run = 0 AND attempts > 0",
                (since,),
            ).fetchall()
        return [(str(a), str(b), float(c)) for a, b, c in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self.db.execute("SELECT state, COUNT(*) FROM actions GROUP BY state").fetchall()
        return {str(s): int(n) for s, n in rows}

    def backlog(self) -> int:
        with self._lock:
            row = self.db.execute(
                "SELECT COUNT(*) FROM actions WHERE state IN ('pending', 'running')"
            ).fetchone()
        return int(row[0])

    def next_due(self) -> float | None:
        with self._lock:
            row = self.db.execute(
                "SELECT MIN(not_before) FROM actions WHERE state = 'pending'"
            ).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def list_actions(
        self,
        *,
        vm: str = "",
        host: str = "",
        state: str = "",
        kind: str = "",
        vcenter: str = "",
        parent: int | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> list[Action]:
        """Newest first; ``vm`` and ``host`` match an id or a name, source or target host."""
        where: list[str] = []
        args: list[Any] = []
        if vm:
            where.append("(vm_id = ? OR vm = ?)")
            args += [vm, vm]
        if host:
            where.append("(host_id = ? OR host = ? OR target_host_id = ? OR target_host = ?)")
            args += [host, host, host, host]
        if state:
            where.append("state = ?")
            args.append(state)
        if kind:
            where.append("kind = ?")
            args.append(kind)
        if vcenter:
            where.append("vcenter = ?")
            args.append(vcenter)
        if parent is not None:
            where.append("parent_id = ?")
            args.append(parent)
        if before is not None:
            where.append("id < ?")
            args.append(before)
        sql = "SELECT * FROM actions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self.db.execute(sql, args).fetchall()
        return [_row(r) for r in rows]

    def events(self, action_id: int) -> list[dict[str, Any]]:
        with self._lock:
            rows = self.db.execute(
                "SELECT at, state, message FROM events WHERE action_id = ? ORDER BY id",
                (action_id,),
            ).fetchall()
        return [{"at": at, "state": st, "message": msg} for at, st, msg in rows]

    def step_counts(self, parent_id: int) -> dict[str, int]:
        with self._lock:
            rows = self.db.execute(
                "SELECT state, COUNT(*) FROM actions WHERE parent_id = ? GROUP BY state",
                (parent_id,),
            ).fetchall()
        return {str(s): int(n) for s, n in rows}

    def alerts_of(self, action_id: int) -> list[dict[str, Any]]:
        with self._lock:
            rows = self.db.execute(
                "SELECT a.fingerprint, a.starts_at, a.status, a.alertname, a.deliveries"
                " FROM action_alerts l JOIN alerts a ON a.fingerprint = l.fingerprint"
                " AND a.starts_at = l.starts_at WHERE l.action_id = ? ORDER BY a.first_seen",
                (action_id,),
            ).fetchall()
        return [
            {"fingerprint": f, "startsAt": s, "status": st, "alertname": n, "deliveries": d}
            for f, s, st, n, d in rows
        ]


class _Tx:
    """``BEGIN IMMEDIATE`` .. ``COMMIT`` under the journal's lock; nests; rolls back on error."""

    def __init__(self, journal: Journal, durable: bool) -> None:
        self.j = journal
        self.durable = durable

    def __enter__(self) -> _Tx:
        j = self.j
        j._lock.acquire()
        if j._depth == 0:
            try:
                if self.durable:
                    j.db.execute("PRAGMA synchronous=FULL")
                j.db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                j._lock.release()
                raise JournalError(f"journal write failed: {exc}") from exc
            j._durable = self.durable
        j._depth += 1
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        j = self.j
        j._depth -= 1
        try:
            if j._depth > 0:
                return
            try:
                j.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
            except sqlite3.Error as err:
                try:
                    j.db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                raise JournalError(f"journal write failed: {err}") from err
            finally:
                if j._durable:
                    try:
                        j.db.execute("PRAGMA synchronous=NORMAL")
                    except sqlite3.Error:
                        pass
            if isinstance(exc, sqlite3.Error):
                raise JournalError(f"journal write failed: {exc}") from exc
        finally:
            j._lock.release()
