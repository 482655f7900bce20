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
(priority 2) go before state (1) and metrics (0), but rows of one priority
never overtake each other, so alerts stay in the order they were raised.

Durability, and what is fsynced. The file is in WAL mode. With
``synchronous=NORMAL`` a commit appends to the WAL without fsync: a power cut
can lose the last commits (the file stays consistent), which is acceptable
for session/hydration state and for deletes (a lost delete only means one
duplicate after reboot; subscribers dedupe). An alert is inserted with
``synchronous=FULL``, which fsyncs the WAL at that commit, so once
:meth:`add` returns for an alert it survives a power cut; that fsync also
covers every earlier commit still in the WAL.

Bounds. ``max_rows`` and ``max_bytes`` (topic + payload) cap the backlog. When
a new row would exceed them the oldest non-alert rows go first. Alerts are
never dropped: if only alerts remain over the bound they are all kept and the
problem is logged loudly. A full disk (SQLITE_FULL) is logged, the oldest
non-alert rows are dropped to free pages, and the insert is retried once; an
alert that still cannot be stored raises :class:`OutboxFull` so the caller can
keep it in memory and try again.

The in-flight window. Only ``max_inflight`` rows are handed to paho at once:
a backlog of thousands after an outage drains steadily at the broker's pace
instead of piling into paho's memory.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from ..errors import MonitorError

log = logging.getLogger(__name__)

ALERT = "alert"
#: Default priority by kind: alerts before state before metrics.
PRIORITIES = {ALERT: 2, "session": 1, "hydration": 1, "alerts_active": 1}
DEFAULT_PRIORITY = 0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids never reused, so id order is age
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
    """An alert could not be stored even after dropping every metric: keep it and retry."""


@dataclass(frozen=True)
class OutboxMessage:
    """One stored message, as handed to paho."""

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


@dataclass
class _Flight:
    kind: str
    size: int
    mid: int | None = None


def _is_full(err: sqlite3.Error) -> bool:
    code = getattr(err, "sqlite_errorcode", None)
    return code == sqlite3.SQLITE_FULL or "full" in str(err).lower()


class Outbox:
    """The station's durable queue of QoS 1 messages (thread-safe).

    ``page_limit`` caps the file at that many SQLite pages (``PRAGMA
    max_page_count``): a hard ceiling on disk use, and how tests make SQLite
    report a full disk.
    """

    def __init__(self, path: str | os.PathLike[str], *, max_rows: int = 10_000,
                 max_bytes: int = 16 * 1024 * 1024, max_inflight: int = 20,
                 page_limit: int | None = None):
        if max_rows < 1 or max_bytes < 1 or max_inflight < 1:
            raise ValueError("max_rows, max_bytes and max_inflight must be at least 1")
        self.path = Path(path)
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.max_inflight = max_inflight
        self._lock = threading.RLock()
        self._db = self._open(page_limit)
        self._rows, self._bytes = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox").fetchone()
        # Rows up to this id were left by an earlier run: sending them is a replay.
        self._replay_upto: int = self._db.execute(
            "SELECT COALESCE(MAX(id), 0) FROM outbox").fetchone()[0]
        self._inflight: dict[int, _Flight] = {}   # row id -> flight, mid known or not yet
        self._by_mid: dict[int, int] = {}         # paho mid -> row id
        self._early: set[int] = set()             # PUBACKs that beat handed() (see there)
        self._held: set[int] = set()              # alerts the broker refused; retried on reconnect
        self._stored: Counter[str] = Counter()
        self._acked: Counter[str] = Counter()
        self._resent: Counter[str] = Counter()
        self._dropped: Counter[str] = Counter()
        self._coalesced: Counter[str] = Counter()
        self._last_bound_warning = float("-inf")  # monotonic() starts near 0 on a Pi
        self._last_full_warning = float("-inf")
        if self._rows:
            log.info("outbox %s: %d message(s) from before the restart will be sent again",
                     self.path, self._rows)

    # ------------------------------------------------------------ opening

    def _open(self, page_limit: int | None) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutboxError(f"outbox {self.path}: cannot create its directory: "
                              f"{err.strerror or err}") from None
        try:
            return self._connect(page_limit)
        except sqlite3.OperationalError as err:
            raise OutboxError(f"outbox {self.path}: cannot open: {err}") from None
        except sqlite3.DatabaseError as err:
            # Not a database / malformed. Monitoring must go on: move it aside for a
            # person to look at, and start empty.
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            log.critical("outbox %s is damaged (%s); moved to %s and starting empty: "
                         "messages queued in it were not sent", self.path, err, aside)
            for suffix in ("", "-wal", "-shm"):
                src = Path(f"{self.path}{suffix}")
                if src.exists():
                    src.replace(Path(f"{aside}{suffix}"))
            return self._connect(page_limit)

    def _connect(self, page_limit: int | None) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a PRAGMA
        # never lands inside an implicit transaction.
        db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None,
                             check_same_thread=False)
        try:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("outbox %s: WAL mode unavailable (got %s); alerts are still "
                            "fsynced on insert", self.path, mode)
            db.execute("PRAGMA synchronous=NORMAL")
            if page_limit is not None:
                db.execute(f"PRAGMA max_page_count={int(page_limit)}")
            db.executescript(_SCHEMA)
            db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        except BaseException:
            db.close()
            raise
        return db

    # ------------------------------------------------------------ adding

    def add(self, topic: str, payload: bytes, *, kind: str, qos: int = 1, retain: bool = False,
            priority: int | None = None, coalesce: bool = False) -> int | None:
        """Store one message; return its row id, or None if a non-alert had to be dropped.

        ``coalesce=True`` (retained state) first deletes older unsent rows of
        the same kind and topic: only the latest state matters. Raises
        :class:`OutboxFull` for an alert that cannot be stored.
        """
        payload = bytes(payload)
        prio = PRIORITIES.get(kind, DEFAULT_PRIORITY) if priority is None else priority
        size = len(topic.encode("utf-8")) + len(payload)
        with self._lock:
            try:
                return self._add_durably(topic, payload, kind, qos, retain, prio, size, coalesce)
            except sqlite3.OperationalError as err:
                if not _is_full(err):
                    raise OutboxError(f"outbox {self.path}: cannot store a {kind} message: "
                                      f"{err}") from err
                now = time.monotonic()
                if now - self._last_full_warning > 60.0:  # once a minute, not once per message
                    self._last_full_warning = now
                    log.error("outbox %s: the disk is full (%s); dropping the oldest metrics to "
                              "make room", self.path, err)
            freed = self._drop_for_space()
            try:
                return self._add_durably(topic, payload, kind, qos, retain, prio, size, coalesce)
            except sqlite3.OperationalError as err:
                if not _is_full(err):
                    raise OutboxError(f"outbox {self.path}: cannot store a {kind} message: "
                                      f"{err}") from err
                if kind == ALERT:
                    raise OutboxFull(
                        f"outbox {self.path}: disk full: cannot store alert on {topic} even "
                        f"after dropping {freed} older message(s); free space on "
                        f"{self.path.parent}") from err
                self._dropped[kind] += 1
                log.error("outbox %s: disk still full; dropped the new %s message", self.path, kind)
                return None

    def _add_durably(self, topic: str, payload: bytes, kind: str, qos: int, retain: bool,
                     prio: int, size: int, coalesce: bool) -> int | None:
        alert = kind == ALERT
        if alert:
            self._db.execute("PRAGMA synchronous=FULL")  # fsync the WAL at this commit
        try:
            return self._insert(topic, payload, kind, qos, retain, prio, size, coalesce)
        finally:
            if alert:
                self._db.execute("PRAGMA synchronous=NORMAL")

    def _insert(self, topic: str, payload: bytes, kind: str, qos: int, retain: bool,
                prio: int, size: int, coalesce: bool) -> int | None:
        db = self._db
        busy = self._busy()
        superseded: list[tuple[int, int]] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            if coalesce:
                superseded = [(r, s) for r, s in db.execute(
                    "SELECT id, size FROM outbox WHERE kind = ? AND topic = ?", (kind, topic))
                    if r not in busy]
                db.executemany("DELETE FROM outbox WHERE id = ?", [(r,) for r, _ in superseded])
            cur = db.execute(
                "INSERT INTO outbox (topic, payload, qos, retain, kind, priority, created, size) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (topic, payload, qos, int(retain), kind, prio, time.time(), size))
            row_id = cur.lastrowid
            rows = self._rows - len(superseded) + 1
            nbytes = self._bytes - sum(s for _, s in superseded) + size
            victims = self._over_bound(rows, nbytes, busy)
            db.executemany("DELETE FROM outbox WHERE id = ?", [(r,) for r, _, _ in victims])
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        # Counters change only once the commit has happened.
        self._rows = rows - len(victims)
        self._bytes = nbytes - sum(s for _, _, s in victims)
        if superseded:
            self._coalesced[kind] += len(superseded)
        for _, vkind, _ in victims:
            self._dropped[vkind] += 1
        if victims:
            log.warning("outbox %s: over its bound (%d rows / %d bytes); dropped %d oldest "
                        "non-alert message(s)", self.path, self.max_rows, self.max_bytes,
                        len(victims))
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
                "SELECT id, kind, size FROM outbox WHERE kind != ? AND id > ? ORDER BY id "
                "LIMIT ?", (ALERT, after, max(rows - self.max_rows, 0) + len(busy) + 64)).fetchall()
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
                log.error("outbox %s: %d rows / %d bytes of ALERTS waiting, over the bound of "
                          "%d rows / %d bytes; keeping every alert (is the broker unreachable?)",
                          self.path, rows, nbytes, self.max_rows, self.max_bytes)
        return victims

    def _drop_for_space(self) -> int:
        """Delete the oldest tenth (at least 10) of non-alert rows; return how many."""
        busy = self._busy()
        db = self._db
        try:
            candidates = [(r, k, s) for r, k, s in db.execute(
                "SELECT id, kind, size FROM outbox WHERE kind != ? ORDER BY id", (ALERT,))
                if r not in busy]
            victims = candidates[:max(10, len(candidates) // 10)]
            if not victims:
                return 0
            db.execute("BEGIN IMMEDIATE")
            db.executemany("DELETE FROM outbox WHERE id = ?", [(r,) for r, _, _ in victims])
            db.execute("COMMIT")
        except sqlite3.OperationalError as err:
            if db.in_transaction:
                db.execute("ROLLBACK")
            log.error("outbox %s: could not drop metrics to make room: %s", self.path, err)
            return 0
        self._rows -= len(victims)
        self._bytes -= sum(s for _, _, s in victims)
        for _, kind, _ in victims:
            self._dropped[kind] += 1
        return len(victims)

    def _busy(self) -> set[int]:
        """Rows that must not be deleted by coalescing or bounds: paho has them."""
        return set(self._inflight)

    # ------------------------------------------------------------ sending

    def take(self, limit: int | None = None) -> list[OutboxMessage]:
        """The next rows to hand to paho, filling the in-flight window (oldest first by priority).

        Each returned row must be followed by :meth:`handed` (with the mid
        paho gave it) or :meth:`release` (publish failed).
        """
        with self._lock:
            room = self.max_inflight - len(self._inflight)
            if limit is not None:
                room = min(room, limit)
            if room <= 0:
                return []
            skip = set(self._inflight) | self._held
            out: list[OutboxMessage] = []
            for row in self._db.execute(
                    "SELECT id, topic, payload, qos, retain, kind, priority, created FROM outbox "
                    "ORDER BY priority DESC, id LIMIT ?", (room + len(skip),)):
                if row[0] in skip:
                    continue
                msg = OutboxMessage(row[0], row[1], bytes(row[2]), row[3], bool(row[4]),
                                    row[5], row[6], row[7])
                out.append(msg)
                self._inflight[msg.id] = _Flight(msg.kind, len(msg.topic.encode()) + len(msg.payload))
                if len(out) == room:
                    break
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
            if row_id <= self._replay_upto:
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
            row = self._db.execute(
                "SELECT id, topic, payload, qos, retain, kind, priority, created FROM outbox "
                "WHERE id = ?", (row_id,)).fetchone()
            if flight.kind == ALERT:
                self._held.add(row_id)
            else:
                self._delete(row_id, flight.size)
                self._dropped[flight.kind] += 1
            return None if row is None else OutboxMessage(
                row[0], row[1], bytes(row[2]), row[3], bool(row[4]), row[5], row[6], row[7])

    def _delete(self, row_id: int, size: int) -> None:
        try:
            cur = self._db.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
        except sqlite3.Error as err:
            # The row stays and is sent again after a restart: a duplicate, never a loss.
            log.error("outbox %s: could not delete acknowledged row %d: %s", self.path, row_id, err)
            return
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
            self._replay_upto = self._db.execute(
                "SELECT COALESCE(MAX(id), 0) FROM outbox").fetchone()[0]

    # ------------------------------------------------------------ looking

    @property
    def pending(self) -> int:
        """Rows stored and not yet acknowledged (in flight included)."""
        with self._lock:
            return self._rows

    @property
    def inflight(self) -> int:
        with self._lock:
            return len(self._inflight)

    def stats(self) -> OutboxStats:
        with self._lock:
            return OutboxStats(pending=self._rows, pending_bytes=self._bytes,
                               inflight=len(self._inflight), stored=dict(self._stored),
                               acked=dict(self._acked), resent=dict(self._resent),
                               dropped=dict(self._dropped), coalesced=dict(self._coalesced))

    def messages(self) -> list[OutboxMessage]:
        """Every stored row in send order (for tests and `gym-monitor` diagnostics)."""
        with self._lock:
            return [OutboxMessage(r[0], r[1], bytes(r[2]), r[3], bool(r[4]), r[5], r[6], r[7])
                    for r in self._db.execute(
                        "SELECT id, topic, payload, qos, retain, kind, priority, created "
                        "FROM outbox ORDER BY priority DESC, id")]

    def close(self) -> None:
        """Close the file. Unacknowledged rows stay in it for the next run."""
        with self._lock:
            if self._db is None:
                return
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass  # a checkpoint is housekeeping; the WAL replays on next open anyway
            self._db.close()
            self._db = None  # type: ignore[assignment]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Outbox({str(self.path)!r}, pending={self._rows})"
