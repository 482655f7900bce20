"""A durable outbox for QoS 1 messages, on SQLite, so nothing is lost while the broker is away.

paho keeps unacknowledged QoS 1 messages in memory only; a crash, a power
cut or a restart of the station would lose them. So every QoS 1 message is
written here *before* it is handed to paho and deleted only when the broker's
PUBACK comes back::

    outbox = Outbox("/var/lib/gym-monitor/outbox.sqlite3")
    row = outbox.add("gym/bench-1/alert", b'{"v":1,...}', kind="alert")
    for msg in outbox.take():                 # at most max_inflight rows at once
        info = client.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain)
        outbox.handed(msg.id, info.mid)
    # ... in paho's on_publish callback:
    outbox.acked(mid)                         # the row is deleted

After a restart every row left in the file is sent again, oldest first. Alerts
and session records (priority 2) go before state (1) and metrics (0), but rows
of one priority never overtake each other, so alerts stay in the order they
were raised. Rows of priority 2 (:data:`KEEP`) are kept like alerts: never
dropped for room, fsynced when stored, held in memory on a full disk.

Durability, and what is fsynced. The file is in WAL mode. With
``synchronous=NORMAL`` a commit appends to the WAL without fsync: a power cut
can lose the last commits (the file stays consistent), which is acceptable
for session/hydration state and for deletes (a lost delete only means one
duplicate after reboot; subscribers dedupe). An alert is inserted with
``synchronous=FULL``, which fsyncs the WAL at that commit, so once
:meth:`add` returns a positive row id for an alert it survives a power cut;
that fsync also covers every earlier commit still in the WAL.

Bounds. ``max_rows`` and ``max_bytes`` (topic + payload) cap the backlog. When
a new row would exceed them the oldest non-alert rows go first. Alerts are
never dropped: if only alerts remain over the bound they are all kept and the
problem is logged loudly.

A full disk (or a file that stops taking writes). The oldest non-alert rows
are dropped to free pages and the insert is tried again. An alert that still
cannot be stored is *held in memory*: :meth:`add` returns a negative row id,
:meth:`take` hands it out like any other row (so it is published directly,
QoS 1, and forgotten only on its PUBACK), and it moves into the file as soon
as there is room. Later alerts queue behind it in memory, so alerts keep
their order. Retained state (``coalesce=True``) is held the same way, only
the newest per topic; metrics are dropped. The error is logged once a minute
with the number held. A stop or a SIGKILL loses what is held in memory and
was not yet acknowledged by the broker; :meth:`close` says how many.

A damaged file. Opening checks the file (``PRAGMA quick_check``). A file
that is not a database, is torn, is empty (0 bytes), is a directory, or whose
WAL cannot be read is moved aside (``outbox.sqlite3.damaged-<time>``) with a
CRITICAL log line, the rows that can still be read are salvaged into a new
file (:mod:`monitor.mqtt.salvage` reads them page by page), and the station
goes on. If no file can be made at all the outbox runs
in memory (CRITICAL again): alerts still flow while the broker is up.

The in-flight window. Only ``max_inflight`` rows are handed to paho at once:
a backlog of thousands after an outage drains steadily at the broker's pace
instead of piling into paho's memory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from ..errors import MonitorError
from .salvage import salvage_rows

log = logging.getLogger(__name__)

ALERT = "alert"
SESSION_RECORD = "session_record"
#: Default priority by kind: alerts and session records before state before metrics.
PRIORITIES = {
    ALERT: 2,
    SESSION_RECORD: 2,
    "session": 1,
    "hydration": 1,
    "alerts_active": 1,
    "athlete": 1,
}
DEFAULT_PRIORITY = 0
#: Rows of this priority or more are never dropped (alerts and session records).
KEEP = 2
#: How often a full disk is reported, and how often moving held rows into the file is tried.
FULL_REPORT_S = 60.0
MIGRATE_EVERY_S = 1.0

_COLUMNS = "id, topic, payload, qos, retain, kind, priority, created"
# A row as it is written: the columns a reader gets, and its size for the bound.
_INSERT = "INSERT INTO outbox (topic, payload, qos, retain, kind, priority, created, size) VALUES "

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    -- AUTOINCREMENT: ids are never reused, so id order is age
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    topic    TEXT    NOT NULL,
    payload  BLOB    NOT NULL,
    qos      INTEGER NOT NULL,
    retain   INTEGER NOT NULL,
    kind     TEXT    NOT NULL,
    priority INTEGER NOT NULL,
    created  REAL    NOT NULL,
    size     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_send_order ON outbox (priority DESC, id);
CREATE INDEX IF NOT EXISTS outbox_kind ON outbox (kind, id);
"""


class OutboxError(MonitorError, OSError):
    """The outbox file cannot be used (the message names the file)."""


class OutboxFull(OutboxError):
    """Kept for callers that catch it: :meth:`Outbox.add` now holds an alert in memory instead."""


@dataclass(frozen=True)
class OutboxMessage:
    """One stored message, as handed to paho. A negative ``id`` is a row held in memory."""

    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    kind: str
    priority: int
    created: float


@dataclass(frozen=True)
class OutboxStats:
    """Counters since this Outbox was opened (by kind), and the backlog now."""

    pending: int
    pending_bytes: int
    inflight: int
    stored: Mapping[str, int] = field(default_factory=dict)
    acked: Mapping[str, int] = field(default_factory=dict)
    resent: Mapping[str, int] = field(default_factory=dict)
    dropped: Mapping[str, int] = field(default_factory=dict)
    coalesced: Mapping[str, int] = field(default_factory=dict)
    held: int = 0  # rows in memory now (the disk refused them)
    held_total: Mapping[str, int] = field(default_factory=dict)  # rows ever held, by kind
    salvaged: int = 0  # rows read back from a damaged file
    in_memory: bool = False  # no file at all: the outbox is RAM only


@dataclass
class _Flight:
    kind: str
    size: int
    mid: int | None = None


class _Unwritable(Exception):
    """The file did not take a row (full disk, I/O error, damage)."""

    def __init__(self, err: sqlite3.Error):
        super().__init__(str(err))
        self.err = err


def _is_full(err: BaseException) -> bool:
    code = getattr(err, "sqlite_errorcode", None)
    return code == sqlite3.SQLITE_FULL or "full" in str(err).lower()


def _disk_full(folder: Path, below: int = 256 * 1024) -> bool:
    """Less than ``below`` bytes free for this user in ``folder``'s filesystem."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < below


def _rollback(db: sqlite3.Connection) -> None:
    """Undo the open transaction, if any; a ROLLBACK that fails has nothing left to undo."""
    if db.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")


def _size(topic: str, payload: bytes) -> int:
    return len(topic.encode("utf-8")) + len(payload)


class Outbox:
    """The station's durable queue of QoS 1 messages (thread-safe).

    ``page_limit`` caps the file at that many SQLite pages (``PRAGMA
    max_page_count``): a hard ceiling on disk use, and how tests make SQLite
    report a full disk.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_rows: int = 10_000,
        max_bytes: int = 16 * 1024 * 1024,
        max_inflight: int = 20,
        page_limit: int | None = None,
    ):
        if max_rows < 1 or max_bytes < 1 or max_inflight < 1:
            raise ValueError("max_rows, max_bytes and max_inflight must be at least 1")
        self.path = Path(path)
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.max_inflight = max_inflight
        self.in_memory = False
        self.salvaged = 0
        self._lock = threading.RLock()
        self._stored: Counter[str] = Counter()
        self._acked: Counter[str] = Counter()
        self._resent: Counter[str] = Counter()
        self._dropped: Counter[str] = Counter()
        self._coalesced: Counter[str] = Counter()
        self._held_total: Counter[str] = Counter()
        self._memory: dict[int, OutboxMessage] = {}  # negative id -> row the disk refused
        self._next_memory_id = -1
        self._undeleted: dict[int, int] = {}  # acknowledged rows whose DELETE failed -> size
        self._last_bound_warning = float("-inf")  # monotonic() starts near 0 on a Pi
        self._last_full_report = float("-inf")
        self._last_room_report = float("-inf")
        self._last_migrate = float("-inf")
        self._full_since: float | None = None
        self._full_dropped = 0
        self._db = self._open(page_limit)
        try:
            self._rows, self._bytes, self._replay_upto = self._counts()
        except sqlite3.Error as err:  # damage quick_check did not see: never a restart loop
            self._db.close()
            self._db = self._replace_damaged(str(err), page_limit)
            self._rows, self._bytes, self._replay_upto = self._counts()
        self._inflight: dict[int, _Flight] = {}  # row id -> flight, mid known or not yet
        self._by_mid: dict[int, int] = {}  # paho mid -> row id
        self._early: set[int] = set()  # PUBACKs that beat handed() (see there)
        self._held: set[int] = set()  # alerts the broker refused; retried on reconnect
        if self._rows and not self.salvaged:
            log.info(
                "outbox %s: %d message(s) from before the restart will be sent again",
                self.path,
                self._rows,
            )

    def _counts(self) -> tuple[int, int, int]:
        """Rows, bytes, and the highest id (rows up to it were left by an earlier run: a replay)."""
        rows, nbytes, top = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0), COALESCE(MAX(id), 0) FROM outbox"
        ).fetchone()
        return rows, nbytes, top

    # ------------------------------------------------------------ opening

    def _open(self, page_limit: int | None) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            return self._memory_db(
                page_limit, f"cannot create its directory: {err.strerror or err}"
            )
        problem = self._file_problem()
        if problem is None:
            try:
                return self._connect(self.path, page_limit, check=True)
            except sqlite3.Error as err:
                if "locked" in str(err).lower() or "busy" in str(err).lower():
                    # Another process has it (two stations on one state_dir?): not damage.
                    return self._memory_db(page_limit, f"it is in use by another process ({err})")
                if _is_full(err) or _disk_full(self.path.parent):
                    return self._full_at_open(err, page_limit)
                problem = str(err)
        return self._replace_damaged(problem, page_limit)

    def _full_at_open(self, err: sqlite3.Error, page_limit: int | None) -> sqlite3.Connection:
        """The disk is too full to open the file for writing: run in memory with what it holds.

        The file is left where it is (it is not damaged): the next start with room
        opens it again, and what this run also sent from it goes out twice at most.
        """
        rows = _salvage(self.path)[0]
        db = self._memory_db(
            page_limit,
            f"the disk is full, the file cannot be opened for writing ({err}); "
            f"its {len(rows)} message(s) are taken into memory and the file is "
            "left in place",
        )
        self._insert_rows(db, rows)
        return db

    def _insert_rows(self, db: sqlite3.Connection, rows: list[tuple]) -> None:
        for row in rows:
            try:
                db.execute(
                    _INSERT + "(?, ?, ?, ?, ?, ?, ?, ?)",
                    (row[1], row[2], row[3], row[4], row[5], row[6], row[7], _size(row[1], row[2])),
                )
                self.salvaged += 1
            except sqlite3.Error as err:
                log.critical(
                    "outbox %s: a salvaged message on %s could not be stored: %s",
                    self.path,
                    row[1],
                    err,
                )

    def _file_problem(self) -> str | None:
        """What is visibly wrong with the file and its WAL before SQLite opens them, if anything."""
        for suffix in ("", "-wal", "-shm"):
            p = Path(f"{self.path}{suffix}")
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                if suffix == "":
                    return None  # a new outbox
                continue
            except OSError as err:
                return f"{p.name} cannot be examined: {err.strerror or err}"
            if not stat.S_ISREG(st.st_mode):
                return f"{p.name} is not a regular file"
            if suffix == "" and st.st_size == 0:
                wal = Path(f"{self.path}-wal")
                if not wal.is_file() or wal.stat().st_size == 0:
                    return "it is empty (0 bytes): whatever was queued in it is gone"
            if suffix != "-shm" and not os.access(p, os.R_OK | os.W_OK):
                return f"{p.name} cannot be read and written"
        return None

    def _replace_damaged(self, problem: str, page_limit: int | None) -> sqlite3.Connection:
        """Move the damaged file aside, salvage what can be read, start a new one."""
        rows, how = _salvage(self.path)
        aside = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
        moved = []
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{self.path}{suffix}")
            if src.exists() or src.is_symlink():
                try:
                    src.replace(Path(f"{aside}{suffix}"))
                    moved.append(src.name)
                except OSError as err:
                    log.error(
                        "outbox %s: cannot move %s aside: %s",
                        self.path,
                        src.name,
                        err.strerror or err,
                    )
        alerts = sum(1 for r in rows if r[5] == ALERT)
        log.critical(
            "outbox %s is damaged (%s); moved %s to %s and started a new one; %d message(s) "
            "salvaged (%d alert(s)) %s and will be sent; anything else queued in it is lost",
            self.path,
            problem,
            ", ".join(moved) or "nothing",
            aside.name,
            len(rows),
            alerts,
            how,
        )
        try:
            db = self._connect(self.path, page_limit, check=False)
        except sqlite3.Error as err:
            db = self._memory_db(page_limit, f"a new file cannot be made either ({err})")
        self._insert_rows(db, rows)
        return db

    def _memory_db(self, page_limit: int | None, why: str) -> sqlite3.Connection:
        log.critical(
            "outbox %s: %s; the outbox runs in memory: alerts are sent while the broker is up "
            "but a restart loses what is queued. Fix the state directory.",
            self.path,
            why,
        )
        self.in_memory = True
        return self._connect(Path(":memory:"), page_limit, check=False)

    @staticmethod
    def _connect(path: Path, page_limit: int | None, *, check: bool) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a PRAGMA
        # never lands inside an implicit transaction.
        db = sqlite3.connect(str(path), timeout=10.0, isolation_level=None, check_same_thread=False)
        try:
            if check:
                verdict = db.execute("PRAGMA quick_check").fetchone()[0]
                if verdict != "ok":
                    raise sqlite3.DatabaseError(f"quick_check: {verdict}")
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(path) != ":memory:" and str(mode).lower() != "wal":
                log.warning(
                    "outbox %s: WAL mode unavailable (got %s); alerts are still fsynced on insert",
                    path,
                    mode,
                )
            db.execute("PRAGMA synchronous=NORMAL")
            if page_limit is not None:
                db.execute(f"PRAGMA max_page_count={int(page_limit)}")
            db.executescript(_SCHEMA)
            db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox").fetchone()
        except BaseException:
            db.close()
            raise
        return db

    # ------------------------------------------------------------ adding

    def add(
        self,
        topic: str,
        payload: bytes,
        *,
        kind: str,
        qos: int = 1,
        retain: bool = False,
        priority: int | None = None,
        coalesce: bool = False,
    ) -> int | None:
        """Store one message; return its row id, or None if a non-alert had to be dropped.

        ``coalesce=True`` (retained state) first deletes older unsent rows of
        the same kind and topic: only the latest state matters. A negative id
        is a row held in memory because the disk refused it (see the module
        docstring); an alert is never dropped.
        """
        payload = bytes(payload)
        prio = PRIORITIES.get(kind, DEFAULT_PRIORITY) if priority is None else priority
        size = _size(topic, payload)
        with self._lock:
            if self._db is None:
                raise OutboxError(f"outbox {self.path} is closed")
            self._migrate()
            if kind == ALERT and any(m.kind == ALERT for m in self._memory.values()):
                # Alerts already wait in memory: this one queues behind them, in order.
                return self._hold(topic, payload, kind, qos, retain, prio, coalesce)
            try:
                row = self._try_add(topic, payload, kind, qos, retain, prio, size, coalesce)
            except _Unwritable as err:
                if not _is_full(err.err):  # a full disk was reported on the way
                    self._report_full(err.err)
                if prio >= KEEP or coalesce:
                    return self._hold(topic, payload, kind, qos, retain, prio, coalesce)
                self._dropped[kind] += 1
                self._full_dropped += 1
                return None
            if coalesce:  # an older state held in memory must not be sent after this one
                for row_id, m in list(self._memory.items()):
                    if m.kind == kind and m.topic == topic and row_id not in self._inflight:
                        del self._memory[row_id]
                        self._coalesced[kind] += 1
            self._room_again()
            return row

    def _try_add(
        self,
        topic: str,
        payload: bytes,
        kind: str,
        qos: int,
        retain: bool,
        prio: int,
        size: int,
        coalesce: bool,
    ) -> int | None:
        try:
            return self._add_durably(topic, payload, kind, qos, retain, prio, size, coalesce)
        except sqlite3.Error as err:
            first = err
        if _is_full(first):
            self._report_full(first)
            self._drop_for_space()
            try:
                return self._add_durably(topic, payload, kind, qos, retain, prio, size, coalesce)
            except sqlite3.Error as err:
                first = err
        raise _Unwritable(first)

    def _hold(
        self,
        topic: str,
        payload: bytes,
        kind: str,
        qos: int,
        retain: bool,
        prio: int,
        coalesce: bool,
    ) -> int:
        if coalesce:
            for row_id, m in list(self._memory.items()):
                if m.kind == kind and m.topic == topic and row_id not in self._inflight:
                    del self._memory[row_id]
                    self._coalesced[kind] += 1
        row_id = self._next_memory_id
        self._next_memory_id -= 1
        self._memory[row_id] = OutboxMessage(
            row_id, topic, payload, qos, retain, kind, prio, time.time()
        )
        self._held_total[kind] += 1
        if kind == ALERT and self._full_since is None:
            self._full_since = time.monotonic()
        return row_id

    def _report_full(self, err: sqlite3.Error) -> None:
        """The disk refused a row: say so once a minute, with what is held and what was dropped."""
        now = time.monotonic()
        if now - self._last_full_report < FULL_REPORT_S:
            return
        self._last_full_report = now
        held = Counter(m.kind for m in self._memory.values())
        what = "the disk is full" if _is_full(err) else "the file does not take writes"
        log.error(
            "outbox %s: %s (%s); %d alert(s) held in memory now (%d since the start), sent "
            "directly while the broker is up and lost if the station stops before the broker "
            "has them; %d state message(s) held; %d metric(s) dropped to make room",
            self.path,
            what,
            err,
            held[ALERT],
            self._held_total[ALERT],
            sum(held.values()) - held[ALERT],
            self._full_dropped,
        )

    def _room_again(self) -> None:
        """No alert waits in memory any more: say so (at most once a minute)."""
        if self._full_since is None or any(m.kind == ALERT for m in self._memory.values()):
            return
        now = time.monotonic()
        if now - self._last_room_report >= FULL_REPORT_S:
            self._last_room_report = now
            log.warning(
                "outbox %s has room again after %.0f s: no alert is held in memory now",
                self.path,
                now - self._full_since,
            )
        self._full_since = None

    def _migrate(self) -> None:
        """Move rows held in memory (not with paho now) into the file.

        Oldest first, while the file takes them.
        """
        if not self._memory:
            return
        now = time.monotonic()
        if now - self._last_migrate < MIGRATE_EVERY_S:
            return
        self._last_migrate = now
        moved = 0
        for row_id in sorted(self._memory, reverse=True):  # -1, -2, ...: oldest first
            if row_id in self._inflight:
                continue
            m = self._memory[row_id]
            try:
                self._add_durably(
                    m.topic,
                    m.payload,
                    m.kind,
                    m.qos,
                    m.retain,
                    m.priority,
                    _size(m.topic, m.payload),
                    m.priority < KEEP and m.retain,
                )
            except sqlite3.Error:
                break
            del self._memory[row_id]
            self._held.discard(row_id)
            moved += 1
        if moved:
            log.warning(
                "outbox %s: %d message(s) held in memory are stored in the file now; %d still "
                "in memory",
                self.path,
                moved,
                len(self._memory),
            )
            self._room_again()

    def _add_durably(
        self,
        topic: str,
        payload: bytes,
        kind: str,
        qos: int,
        retain: bool,
        prio: int,
        size: int,
        coalesce: bool,
    ) -> int | None:
        alert = prio >= KEEP
        if alert:
            self._db.execute("PRAGMA synchronous=FULL")  # fsync the WAL at this commit
        try:
            return self._insert(topic, payload, kind, qos, retain, prio, size, coalesce)
        finally:
            if alert:
                self._db.execute("PRAGMA synchronous=NORMAL")

    def _insert(
        self,
        topic: str,
        payload: bytes,
        kind: str,
        qos: int,
        retain: bool,
        prio: int,
        size: int,
        coalesce: bool,
    ) -> int | None:
        db = self._db
        busy = self._busy()
        superseded: list[tuple[int, int]] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            if coalesce:
                superseded = [
                    (r, s)
                    for r, s in db.execute(
                        "SELECT id, size FROM outbox WHERE kind = ? AND topic = ?", (kind, topic)
                    )
                    if r not in busy
                ]
                db.executemany("DELETE FROM outbox WHERE id = ?", [(r,) for r, _ in superseded])
            cur = db.execute(
                _INSERT + "(?, ?, ?, ?, ?, ?, ?, ?)",
                (topic, payload, qos, int(retain), kind, prio, time.time(), size),
            )
            row_id = cur.lastrowid
            rows = self._rows - len(superseded) + 1
            nbytes = self._bytes - sum(s for _, s in superseded) + size
            victims = self._over_bound(rows, nbytes, busy)
            db.executemany("DELETE FROM outbox WHERE id = ?", [(r,) for r, _, _ in victims])
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise
        # Counters change only once the commit has happened.
        self._rows = rows - len(victims)
        self._bytes = nbytes - sum(s for _, _, s in victims)
        if superseded:
            self._coalesced[kind] += len(superseded)
            for r, _ in superseded:
                self._undeleted.pop(r, None)
        for _, vkind, _ in victims:
            self._dropped[vkind] += 1
        if victims:
            log.warning(
                "outbox %s: over its bound (%d rows / %d bytes); dropped %d oldest "
                "non-alert message(s)",
                self.path,
                self.max_rows,
                self.max_bytes,
                len(victims),
            )
        self._retry_deletes()
        if any(v[0] == row_id for v in victims):
            return None
        self._stored[kind] += 1
        return row_id

    def _over_bound(self, rows: int, nbytes: int, busy: set[int]) -> list[tuple[int, str, int]]:
        """Oldest non-alert rows to delete to get within the bounds (inside the transaction)."""
        victims: list[tuple[int, str, int]] = []
        if rows <= self.max_rows and nbytes <= self.max_bytes:
            return victims
        after = 0
        while rows > self.max_rows or nbytes > self.max_bytes:
            # Pages of candidates, fully fetched before any DELETE runs on this connection.
            page = self._db.execute(
                "SELECT id, kind, size FROM outbox WHERE priority < ? AND id > ? ORDER BY id "
                "LIMIT ?",
                (KEEP, after, max(rows - self.max_rows, 0) + len(busy) + 64),
            ).fetchall()
            if not page:
                break
            for row_id, kind, size in page:
                after = row_id
                if rows <= self.max_rows and nbytes <= self.max_bytes:
                    break
                if row_id in busy:
                    continue
                victims.append((row_id, kind, size))
                rows -= 1
                nbytes -= size
        if rows > self.max_rows or nbytes > self.max_bytes:
            now = time.monotonic()
            if now - self._last_bound_warning > 60.0:
                self._last_bound_warning = now
                log.error(
                    "outbox %s: %d rows / %d bytes of ALERTS waiting, over the bound of "
                    "%d rows / %d bytes; keeping every alert (is the broker unreachable?)",
                    self.path,
                    rows,
                    nbytes,
                    self.max_rows,
                    self.max_bytes,
                )
        return victims

    def _drop_for_space(self) -> int:
        """Delete the oldest tenth (at least 10) of non-alert rows; return how many."""
        busy = self._busy()
        db = self._db
        try:
            candidates = [
                (r, k, s)
                for r, k, s in db.execute(
                    "SELECT id, kind, size FROM outbox WHERE priority < ? ORDER BY id", (KEEP,)
                )
                if r not in busy
            ]
            victims = candidates[: max(10, len(candidates) // 10)]
            if not victims:
                return 0
            db.execute("BEGIN IMMEDIATE")
            db.executemany("DELETE FROM outbox WHERE id = ?", [(r,) for r, _, _ in victims])
            db.execute("COMMIT")
        except sqlite3.Error:
            _rollback(db)
            return 0  # reported by the caller's once-a-minute line
        self._rows -= len(victims)
        self._bytes -= sum(s for _, _, s in victims)
        for _, kind, _ in victims:
            self._dropped[kind] += 1
            self._full_dropped += 1
        return len(victims)

    def _busy(self) -> set[int]:
        """Rows that must not be deleted by coalescing or bounds: paho has them."""
        return set(self._inflight)

    # ------------------------------------------------------------ sending

    def take(self, limit: int | None = None) -> list[OutboxMessage]:
        """The next rows to hand to paho, filling the in-flight window (oldest first by priority).

        Rows held in memory come after the file's rows of the same priority
        (they are younger). Each returned row must be followed by
        :meth:`handed` (with the mid paho gave it) or :meth:`release` (publish failed).
        """
        with self._lock:
            if self._db is None:
                return []
            room = self.max_inflight - len(self._inflight)
            if limit is not None:
                room = min(room, limit)
            if room <= 0:
                return []
            skip = set(self._inflight) | self._held | set(self._undeleted)
            candidates: list[tuple[tuple[int, int, int], OutboxMessage]] = []
            try:
                for row in self._db.execute(
                    f"SELECT {_COLUMNS} FROM outbox ORDER BY priority DESC, id LIMIT ?",
                    (room + len(skip),),
                ):
                    if row[0] in skip:
                        continue
                    msg = OutboxMessage(
                        row[0], row[1], bytes(row[2]), row[3], bool(row[4]), row[5], row[6], row[7]
                    )
                    candidates.append(((-msg.priority, 0, msg.id), msg))
            except sqlite3.Error as err:
                log.error("outbox %s: cannot read queued messages: %s", self.path, err)
            for row_id, msg in self._memory.items():
                if row_id not in skip:
                    candidates.append(((-msg.priority, 1, -row_id), msg))
            candidates.sort(key=lambda c: c[0])
            out = [msg for _, msg in candidates[:room]]
            for msg in out:
                self._inflight[msg.id] = _Flight(msg.kind, _size(msg.topic, msg.payload))
            return out

    def handed(self, row_id: int, mid: int) -> None:
        """paho accepted row ``row_id`` as message ``mid``.

        The PUBACK can arrive (on paho's thread) before this call stores the
        mapping; :meth:`acked` then parks the mid in ``_early`` and it is
        settled here. Only mids seen while a hand-off is open are parked, and
        the set is emptied when no hand-off is open, so a stale mid cannot
        match a later message that reuses the number.
        """
        with self._lock:
            flight = self._inflight.get(row_id)
            if flight is None:
                return
            flight.mid = mid
            if 0 < row_id <= self._replay_upto:
                self._resent[flight.kind] += 1
            if mid in self._early:
                self._early.discard(mid)
                self._settle(row_id)
            else:
                self._by_mid[mid] = row_id
            if not self._handing():
                self._early.clear()

    def release(self, row_id: int) -> None:
        """Handing row ``row_id`` to paho failed; it stays pending for the next try."""
        with self._lock:
            self._inflight.pop(row_id, None)
            if not self._handing():
                self._early.clear()

    def _handing(self) -> bool:
        return any(f.mid is None for f in self._inflight.values())

    def acked(self, mid: int) -> bool:
        """The broker acknowledged ``mid``: delete its row. False for a mid that is not ours."""
        with self._lock:
            row_id = self._by_mid.pop(mid, None)
            if row_id is None:
                if self._handing():
                    self._early.add(mid)
                return False
            self._settle(row_id)
            return True

    def _settle(self, row_id: int) -> None:
        flight = self._inflight.pop(row_id)
        self._delete(row_id, flight.size)
        self._acked[flight.kind] += 1

    def refused(self, mid: int) -> OutboxMessage | None:
        """The broker answered ``mid`` with an error (MQTT 5 reason code, e.g. not authorised).

        An alert is kept and held back until :meth:`reconnected`: never lose
        an alert, but do not hammer the broker either. Anything else is
        dropped. Returns the row for the caller's log line.
        """
        with self._lock:
            row_id = self._by_mid.pop(mid, None)
            if row_id is None:
                return None
            flight = self._inflight.pop(row_id)
            row = self._row(row_id)
            if flight.kind == ALERT or (row is not None and row.priority >= KEEP):
                self._held.add(row_id)
            else:
                self._delete(row_id, flight.size)
                self._dropped[flight.kind] += 1
            return row

    def _row(self, row_id: int) -> OutboxMessage | None:
        if row_id < 0:
            return self._memory.get(row_id)
        try:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE id = ?", (row_id,)
            ).fetchone()
        except sqlite3.Error:
            return None
        return (
            None
            if row is None
            else OutboxMessage(
                row[0], row[1], bytes(row[2]), row[3], bool(row[4]), row[5], row[6], row[7]
            )
        )

    def _delete(self, row_id: int, size: int) -> None:
        if row_id < 0:
            self._memory.pop(row_id, None)
            self._held.discard(row_id)
            self._room_again()
            return
        try:
            cur = self._db.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
        except sqlite3.Error as err:
            # Remembered, so it is not sent again and again; deleted once the file takes writes.
            if not self._undeleted:
                log.error(
                    "outbox %s: could not delete acknowledged row %d: %s (tried again later)",
                    self.path,
                    row_id,
                    err,
                )
            self._undeleted[row_id] = size
            return
        if cur.rowcount:
            self._rows -= 1
            self._bytes -= size

    def _retry_deletes(self) -> None:
        for row_id, size in list(self._undeleted.items()):
            try:
                cur = self._db.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
            except sqlite3.Error:
                return
            del self._undeleted[row_id]
            if cur.rowcount:
                self._rows -= 1
                self._bytes -= size

    def reconnected(self) -> None:
        """A new connection: paho will resend what it holds; held alerts may be tried again."""
        with self._lock:
            for flight in self._inflight.values():
                if flight.mid is not None:
                    self._resent[flight.kind] += 1
            self._held.clear()

    def forget_inflight(self) -> None:
        """A new paho client (which holds none of our messages): every row is pending again."""
        with self._lock:
            self._inflight.clear()
            self._by_mid.clear()
            self._early.clear()
            self._held.clear()
            # Everything already in the file is a re-send from the new client's point of view.
            with contextlib.suppress(sqlite3.Error):
                self._replay_upto = self._db.execute(
                    "SELECT COALESCE(MAX(id), 0) FROM outbox"
                ).fetchone()[0]

    # ------------------------------------------------------------ looking

    @property
    def pending(self) -> int:
        """Rows not yet acknowledged by the broker (in flight and held in memory included)."""
        with self._lock:
            return self._rows - len(self._undeleted) + len(self._memory)

    @property
    def held(self) -> int:
        """Rows held in memory because the disk refused them (alerts and the latest state)."""
        with self._lock:
            return len(self._memory)

    def held_messages(self) -> list[OutboxMessage]:
        """The rows held in memory, oldest first."""
        with self._lock:
            return [self._memory[i] for i in sorted(self._memory, reverse=True)]

    @property
    def inflight(self) -> int:
        with self._lock:
            return len(self._inflight)

    def stats(self) -> OutboxStats:
        with self._lock:
            return OutboxStats(
                pending=self.pending,
                pending_bytes=self._bytes
                + sum(_size(m.topic, m.payload) for m in self._memory.values()),
                inflight=len(self._inflight),
                stored=dict(self._stored),
                acked=dict(self._acked),
                resent=dict(self._resent),
                dropped=dict(self._dropped),
                coalesced=dict(self._coalesced),
                held=len(self._memory),
                held_total=dict(self._held_total),
                salvaged=self.salvaged,
                in_memory=self.in_memory,
            )

    def messages(self, kind: str | None = None) -> list[OutboxMessage]:
        """Every row not yet acknowledged (of ``kind``, if given), in send order."""
        with self._lock:
            query = (
                f"SELECT {_COLUMNS} FROM outbox"
                + (" WHERE kind = ?" if kind else "")
                + " ORDER BY priority DESC, id"
            )
            try:
                found = self._db.execute(query, (kind,) if kind else ()).fetchall()
            except sqlite3.Error as err:
                log.error("outbox %s: cannot read queued messages: %s", self.path, err)
                found = []
            rows = [
                OutboxMessage(r[0], r[1], bytes(r[2]), r[3], bool(r[4]), r[5], r[6], r[7])
                for r in found
                if r[0] not in self._undeleted
            ]
            keyed = [((-m.priority, 0, m.id), m) for m in rows]
            keyed += [
                ((-m.priority, 1, -m.id), m)
                for m in self._memory.values()
                if kind in (None, m.kind)
            ]
            return [m for _, m in sorted(keyed, key=lambda k: k[0])]

    def replace_kind(
        self, kind: str, rows: list[tuple[str, bytes]], *, retain: bool = False
    ) -> None:
        """Replace every unsent row of ``kind`` with ``rows`` (topic, payload), in order, at once.

        For a station that starts again: its saved list of unacknowledged alerts and
        what the file still holds are put back in the order they were raised. Nothing
        may be in flight (call it before the publisher starts). Raises sqlite3.Error
        if the file does not take it; nothing changes then.
        """
        with self._lock:
            if self._inflight:
                raise RuntimeError("replace_kind needs nothing in flight")
            prio = PRIORITIES.get(kind, DEFAULT_PRIORITY)
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                old = db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox WHERE kind = ?", (kind,)
                ).fetchone()
                db.execute("DELETE FROM outbox WHERE kind = ?", (kind,))
                now = time.time()
                db.executemany(
                    _INSERT + "(?, ?, 1, ?, ?, ?, ?, ?)",
                    [
                        (t, bytes(p), int(retain), kind, prio, now, _size(t, bytes(p)))
                        for t, p in rows
                    ],
                )
                db.execute("COMMIT")
            except BaseException:
                _rollback(db)
                raise
            self._rows += len(rows) - old[0]
            self._bytes += sum(_size(t, bytes(p)) for t, p in rows) - old[1]
            self._undeleted = {r: z for r, z in self._undeleted.items() if self._row(r) is not None}

    def close(self, *, report_held: bool = True) -> None:
        """Close the file. Unacknowledged rows stay in it for the next run; rows in memory are lost.

        ``report_held=False``: the caller says what became of rows held in memory.
        """
        with self._lock:
            if self._db is None:
                return
            self._last_migrate = float("-inf")
            self._migrate()
            if self._memory and report_held:
                kinds = Counter(m.kind for m in self._memory.values())
                log.error(
                    "outbox %s: %d alert(s) and %d state message(s) held in memory (the disk "
                    "was full) were not acknowledged by the broker and are lost with this stop",
                    self.path,
                    kinds[ALERT],
                    sum(kinds.values()) - kinds[ALERT],
                )
            # A checkpoint is housekeeping; the WAL replays on next open anyway.
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
            # None marks a closed outbox; every method checks for it under the lock before
            # it touches the file, so the attribute keeps the type of an open one.
            self._db = None  # type: ignore[assignment]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Outbox({str(self.path)!r}, pending={self._rows})"


# ---------------------------------------------------------------- salvage


def _salvage(path: Path) -> tuple[list[tuple], str]:
    """Rows that can still be read from a damaged outbox file.

    In id order, with how they were read.
    """
    try:
        rows = salvage_rows(path)
    except Exception as err:  # salvaging is a bonus: it must never stop the station
        log.error("outbox %s: salvaging failed: %s", path, err)
        rows = []
    return rows, "page by page" if rows else "(nothing could be read)"
