"""The journal's foundation: schema, states, rows, the writer lock and transactions.

SQLite in WAL mode, written by one thread (the caller keeps all calls on a single-thread
executor), so the event loop never waits on a disk and no two writers race.  A delivery
is committed with ``synchronous=FULL`` before the webhook answers 200: once Alertmanager
hears 200 it will not send again, so the delivery must survive a power cut.  State
transitions of actions use ``synchronous=NORMAL``, which in WAL mode survives a killed
process (the crash the remediator must tolerate) and costs far less per step.

:class:`JournalBase` opens the file (one writer: see :func:`_take_writer_lock`), creates
the schema and holds what both halves of the journal share: transactions, the history
``events``, and how a decision settles from its steps.  ``journal_deliveries`` writes
what Alertmanager sent; ``journal`` runs the work queue and answers reads.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def _take_writer_lock(path: str) -> int:
    """Hold ``<journal>.lock`` with ``flock`` for as long as this journal is open.

    Two remediators on one journal would each claim the other's work and "recover" its
    running steps as if it had crashed.  ``flock`` is released by the kernel when the
    holder dies however it dies (SIGKILL included), so a crash never leaves a stale lock
    behind; the pid written into the file is only there to name the holder.
    """
    lock_path = path + ".lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise JournalError(
            f"journal {path} is in use by another remediator (pid {holder}; lock {lock_path}):"
            " one journal has one writer"
        ) from None
    except OSError:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


class JournalBase:
    """The connection and what every part of the journal needs; see :class:`Journal`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0
        self._durable = False
        self._lock_fd: int | None = None
        try:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                self._lock_fd = _take_writer_lock(path)
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
            self._release()
            raise JournalError(f"cannot open journal {path}: {exc}") from exc

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    def close(self) -> None:
        with self._lock:
            self.db.close()
            self._release()

    # --- transactions --------------------------------------------------------------

    def _tx(self, durable: bool = False) -> _Tx:
        return _Tx(self, durable)

    def _event(self, action_id: int, now: float, state: str, message: str) -> None:
        self.db.execute(
            "INSERT INTO events (action_id, at, state, message) VALUES (?, ?, ?, ?)",
            (action_id, now, state, message),
        )

    def _firing(self, action_id: int) -> bool:
        row = self.db.execute(
            "SELECT COUNT(*) FROM action_alerts l JOIN alerts a ON a.fingerprint = l.fingerprint"
            " AND a.starts_at = l.starts_at WHERE l.action_id = ? AND a.status = 'firing'",
            (action_id,),
        ).fetchone()
        return bool(row[0])

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
        if any(counts.get(s) for s in ACTIVE):
            return None
        order = (FAILED, UNPLACED, DONE, DRY_RUN, REFUSED, SKIPPED, CANCELLED)
        # A decision planned with no steps at all has nothing left to do: it must end,
        # not stay "planned" for ever.
        final = next((state for state in order if counts.get(state)), SKIPPED)
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing to do"
        reason = f"{row[2]}; outcome: {summary}"
        self.db.execute(
            "UPDATE actions SET state = ?, reason = ?, updated_at = ?, finished_at = ?"
            " WHERE id = ?",
            (final, reason, now, now, parent_id),
        )
        self._event(parent_id, now, final, f"all steps final: {summary}")
        return str(row[0]), final


class _Tx:
    """``BEGIN IMMEDIATE`` .. ``COMMIT`` under the journal's lock; nests; rolls back on error."""

    def __init__(self, journal: JournalBase, durable: bool) -> None:
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
