"""The durable journal: every delivery, every decision, every vCenter change and outcome.

Split by concern: ``journal_schema`` (schema, states, rows, writer lock, transactions),
``journal_deliveries`` (what Alertmanager sent), and this module: the work queue
(claim, attempt, finish, plan, recover) and the reads the API and engine use.  Import
everything from here.

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
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .journal_deliveries import Deliveries
from .journal_schema import (
    ACTIVE,
    CANCELLED,
    DONE,
    DRY_RUN,
    FAILED,
    PENDING,
    PLANNED,
    REFUSED,
    RUNNING,
    SCHEMA_VERSION,
    SKIPPED,
    STATES,
    TERMINAL,
    UNPLACED,
    Action,
    DeliveryResult,
    JournalError,
    _row,
)

__all__ = [
    "ACTIVE", "CANCELLED", "DONE", "DRY_RUN", "FAILED", "PENDING", "PLANNED", "REFUSED",
    "RUNNING", "SCHEMA_VERSION", "SKIPPED", "STATES", "TERMINAL", "UNPLACED", "Action",
    "DeliveryResult", "Journal", "JournalError",
]  # fmt: skip


class Journal(Deliveries):
    """All SQLite access; call from one thread at a time (the app uses a 1-thread executor)."""

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

    def release(self, reasons: Mapping[int, str], now: float, *, until: float | None = None) -> int:
        """Make held pending steps due now (restart orchestration: their tier started), in
        one transaction; each step's history says why. Steps no longer pending are left.
        With ``until``, they stay held until then, with the new reason (what they wait on
        changed)."""
        n = 0
        with self._tx():
            for action_id, reason in reasons.items():
                cur = self.db.execute(
                    "UPDATE actions SET not_before = ?, reason = ?, updated_at = ?"
                    " WHERE id = ? AND state = 'pending'",
                    (now if until is None else until, reason, now, action_id),
                )
                if cur.rowcount:
                    n += 1
                    self._event(action_id, now, PENDING, reason)
        return n

    def step_states(self, parent_id: int) -> list[tuple[int, str, str, str, str, str]]:
        """(id, vm_id, vm, state, reason, new_vm_id) of a decision's steps: what restart
        orchestration polls every second, without parsing every step's detail."""
        with self._lock:
            rows = self.db.execute(
                "SELECT id, vm_id, vm, state, reason,"
                " COALESCE(json_extract(detail, '$.new_vm_id'), '') FROM actions"
                " WHERE parent_id = ? ORDER BY id",
                (parent_id,),
            ).fetchall()
        return [(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5])) for r in rows]

    def held_parents(self, after: float) -> list[int]:
        """Decisions with steps pending until after ``after`` (orchestration holds them)."""
        with self._lock:
            rows = self.db.execute(
                "SELECT DISTINCT parent_id FROM actions WHERE state = 'pending'"
                " AND parent_id IS NOT NULL AND not_before > ? ORDER BY parent_id",
                (after,),
            ).fetchall()
        return [int(r[0]) for r in rows]

    def tiered_parents(self, since: float) -> list[int]:
        """Decisions with orchestrated steps planned since ``since`` (held or not): the
        cluster gate's members after a restart."""
        with self._lock:
            rows = self.db.execute(
                "SELECT DISTINCT parent_id FROM actions WHERE parent_id IS NOT NULL"
                " AND created_at >= ? AND json_extract(detail, '$.orchestration.tier')"
                " IS NOT NULL ORDER BY parent_id",
                (since,),
            ).fetchall()
        return [int(r[0]) for r in rows]

    def undecided(
        self, vcenter: str, cluster: str, kinds: Sequence[str], since: float, until: float
    ) -> list[Action]:
        """Decisions of ``kinds`` in the cluster accepted in [since, until] and not yet
        decided (pending or running, no steps): what the cluster gate waits for."""
        marks = ", ".join("?" * len(kinds))
        with self._lock:
            rows = self.db.execute(
                "SELECT * FROM actions WHERE parent_id IS NULL AND vcenter = ? AND cluster = ?"
                f" AND kind IN ({marks}) AND state IN ('pending', 'running')"
                " AND created_at BETWEEN ? AND ? ORDER BY id",
                (vcenter, cluster, *kinds, since, until),
            ).fetchall()
        return [_row(r) for r in rows]

    def note(self, action_id: int, now: float, message: str) -> None:
        """A line in an action's history that changes nothing (an orchestration tier start)."""
        with self._tx():
            row = self.db.execute("SELECT state FROM actions WHERE id = ?", (action_id,))
            state = row.fetchone()
            if state is not None:
                self._event(action_id, now, str(state[0]), message)

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
