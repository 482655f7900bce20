"""The history store: writes what the stations report, answers the coach's questions.

One class over SQLAlchemy Core, the same code on SQLite (the default: a file in
the state directory) and PostgreSQL (a chain's central store)::

    store = HistoryStore("sqlite:////var/lib/gym-history/history.sqlite3", gym="leeds")
    store.migrate()                       # Alembic, to the newest revision
    changes = store.write([Item("leeds", record)])   # one transaction, idempotent
    store.athlete_page("leeds", "a3k7...", weeks=12)
    store.forget("leeds", "a3k7...")

Every write is keyed by what the message says it is (a session record's id,
an alert's id and state, a station and a time), so a message delivered twice
(QoS 1 is at least once) is stored once. :meth:`write` takes a whole batch in
one transaction: the ingest acknowledges the batch to the broker only after
it returns, so a crash between the two means redelivery, never loss.
"""

from __future__ import annotations

import logging
import math
import statistics
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ..mqtt import messages
from . import schema as s
from .incoming import AlertEvent, HydrationSample, Presence, SessionRecord

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
DAY = 86400.0
MONTH = 30.436875 * DAY  # a mean Gregorian month


@dataclass(frozen=True)
class TraceMinute:
    """One minute of one sensor's tremor, down-sampled from the live 2 Hz feed."""

    station: str
    sensor: str
    minute_ts: float
    count: int
    ratio_p50: float | None
    ratio_max: float | None
    rms_mg_p50: float | None


Message = SessionRecord | AlertEvent | Presence | HydrationSample | TraceMinute


@dataclass(frozen=True)
class Item:
    """One thing to store, from gym ``gym``."""

    gym: str
    message: Message


@dataclass(frozen=True)
class Profile:
    """An athlete's profile as the history service publishes it (contract: ``profile``)."""

    gym: str
    athlete: str
    baselines_mg: dict[str, float]
    body_mass_g: float | None
    thresholds: dict[str, float] | None
    updated_ts: float

    def message(self, ts: float | None = None) -> messages.Profile:
        """The retained ``profile`` payload (the format's own class checks it)."""
        return messages.Profile(
            ts=time.time() if ts is None else ts,
            athlete=self.athlete,
            baselines_mg={messages.Placement(k): v for k, v in self.baselines_mg.items()},
            body_mass_g=self.body_mass_g,
            thresholds=messages.Grades(**self.thresholds) if self.thresholds else None,
            updated_ts=self.updated_ts,
        )


@dataclass
class WriteResult:
    """What a batch changed that others must hear about."""

    profiles: list[Profile] = field(default_factory=list)
    stored: int = 0  # rows that were new (not duplicates)
    duplicates: int = 0
    #: (gym, athlete) whose page this batch changed (a session, an alert, the profile).
    athletes: set[tuple[str, str]] = field(default_factory=set)


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cur = dbapi_connection.cursor()
    # WAL: the pages read while the ingest writes. synchronous=FULL: a batch the
    # broker was told is stored survives a power cut, not just a crash.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


class HistoryStore:
    """The database behind the history service. Thread-safe: each call takes its own connection."""

    def __init__(self, url: str, *, gym: str = "local", echo: bool = False):
        self.url = url
        self.gym = gym
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if url.startswith("postgresql"):
            kwargs.update(pool_pre_ping=True, pool_size=5, max_overflow=5)
        self.engine = sa.create_engine(url, **kwargs)
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        # (gym, station) -> (since_ts, until_ts, athlete) of its latest check-in.
        self._checkins: dict[tuple[str, str], tuple[float, float | None, str | None]] = {}
        # (gym, athlete) -> how many committed changes touched what their page shows.
        self._versions: dict[tuple[str, str], int] = {}
        self._versions_lock = threading.Lock()
        self._prepare()

    # ------------------------------------------------------------------ lifecycle

    def migrate(self) -> str:
        """Bring the schema to the newest revision; return it."""
        # Alembic's own INFO lines (plugins as it is imported, context) are noise in a
        # service's journal; the service logs the revision it reached.
        logging.getLogger("alembic").setLevel(logging.WARNING)
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                # Two services starting at once must not both create the tables.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(72517301)"))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            return MigrationContext.configure(conn).get_current_revision() or ""

    def close(self) -> None:
        self.engine.dispose()

    def size_bytes(self) -> int:
        """The database's size on disk (PostgreSQL: this database; SQLite: the file and its WAL)."""
        with self.engine.connect() as conn:
            if self.dialect == "postgresql":
                return int(
                    conn.execute(
                        sa.text("SELECT pg_database_size(current_database())")
                    ).scalar_one()
                )
            conn.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)"))
            pages = conn.execute(sa.text("PRAGMA page_count")).scalar_one()
            size = conn.execute(sa.text("PRAGMA page_size")).scalar_one()
            return int(pages) * int(size)

    # ------------------------------------------------------------------ writing

    def _insert(self, table: sa.Table):
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    def write(self, items: Sequence[Item]) -> WriteResult:
        """Store a batch in one transaction; duplicates are skipped, never doubled.

        Runs of alert events, hydration readings and trace minutes go to the
        database as one statement each (prepared once, executed with many rows):
        building a statement costs far more than running it.
        """
        result = WriteResult()
        try:
            with self.engine.begin() as conn:
                run: list[Item] = []
                for item in items:
                    if run and type(item.message) is not type(run[0].message):
                        self._write_run(conn, run, result)
                        run = []
                    run.append(item)
                if run:
                    self._write_run(conn, run, result)
        except BaseException:
            self._checkins.clear()  # what it learnt in a rolled-back batch is void
            raise
        self._changed(result.athletes)
        return result

    def version(self, gym: str, athlete: str) -> int:
        """A number that changes whenever a commit of this store changes what the athlete's
        page shows (sessions, alerts, profile, name): a rendered page keeps while it stays."""
        with self._versions_lock:
            return self._versions.get((gym, athlete), 0)

    def _changed(self, athletes: Iterable[tuple[str, str]]) -> None:
        with self._versions_lock:
            for key in athletes:
                self._versions[key] = self._versions.get(key, 0) + 1

    def _write_run(self, conn: sa.Connection, run: list[Item], result: WriteResult) -> None:
        msg = run[0].message
        if isinstance(msg, SessionRecord):
            for item in run:  # a run is of one kind (see write)
                self._record(conn, item.gym, cast(SessionRecord, item.message), result)
        elif isinstance(msg, Presence):
            for item in run:
                self._presence(conn, item.gym, cast(Presence, item.message), result)
        elif isinstance(msg, AlertEvent):
            self._alert_events(conn, run, result)
        elif isinstance(msg, HydrationSample):
            self._hydration(conn, run, result)
        elif isinstance(msg, TraceMinute):
            self._trace_minutes(conn, run, result)
        else:
            raise TypeError(f"cannot store {type(msg).__name__}")

    def _prepare(self) -> None:
        """The statements the ingest runs all the time, built once."""
        c = s.checkins.c
        self._q_latest = (
            sa.select(c.athlete, c.until_ts, c.since_ts)
            .where(c.gym == sa.bindparam("g"), c.station == sa.bindparam("st"))
            .order_by(c.since_ts.desc())
            .limit(1)
        )
        self._q_checkin = (
            sa.select(c.athlete, c.until_ts, c.since_ts)
            .where(
                c.gym == sa.bindparam("g"),
                c.station == sa.bindparam("st"),
                c.since_ts <= sa.bindparam("t"),
            )
            .order_by(c.since_ts.desc())
            .limit(1)
        )
        self._u_checkout = (
            sa.update(s.checkins)
            .where(
                c.gym == sa.bindparam("g"),
                c.station == sa.bindparam("st"),
                c.until_ts.is_(None),
                c.since_ts < sa.bindparam("end"),
            )
            .values(until_ts=sa.bindparam("end"))
        )
        # RETURNING, because a driver may report -1 rows for ON CONFLICT DO NOTHING.
        self._i_checkin = self._insert(s.checkins).on_conflict_do_nothing().returning(c.since_ts)
        self._i_session = (
            self._insert(s.sessions).on_conflict_do_nothing().returning(s.sessions.c.id)
        )
        self._i_sets = self._insert(s.sets).on_conflict_do_nothing()
        self._i_holds = self._insert(s.holds).on_conflict_do_nothing()
        self._i_weigh_ins = self._insert(s.weigh_ins).on_conflict_do_nothing()
        self._i_alert_events = (
            self._insert(s.alert_events)
            .on_conflict_do_nothing()
            .returning(s.alert_events.c.id, s.alert_events.c.state)
        )
        self._i_hydration = (
            self._insert(s.hydration).on_conflict_do_nothing().returning(s.hydration.c.ts)
        )
        self._i_trace_live = (
            self._insert(s.trace).on_conflict_do_nothing().returning(s.trace.c.minute_ts)
        )
        up = self._insert(s.trace)
        self._u_trace_record = up.on_conflict_do_update(
            index_elements=["gym", "station", "sensor", "minute_ts"],
            set_={
                k: up.excluded[k]
                for k in (
                    "athlete",
                    "session_id",
                    "source",
                    "state",
                    "count",
                    "ratio_p50",
                    "ratio_max",
                    "rms_mg_p50",
                )
            },
        )
        t = s.trace.c
        self._u_trace_owner = (
            sa.update(s.trace)
            .where(
                t.gym == sa.bindparam("g"),
                t.station == sa.bindparam("st"),
                t.source == "live",
                t.minute_ts >= sa.bindparam("t0"),
                t.minute_ts <= sa.bindparam("t1"),
            )
            .values(athlete=sa.bindparam("who"), session_id=sa.bindparam("sid"))
        )
        ua = self._insert(s.alerts)
        a = s.alerts.c
        # The first value of each field stays (redelivery, events out of order); a session
        # record knows whose session it was better than a check-in lookup.
        keep_first = (
            "raised_ts",
            "cleared_ts",
            "acknowledged_ts",
            "acknowledged_by",
            "message",
            "red_flag",
            "sensor",
        )
        set_ = {k: sa.func.coalesce(a[k], ua.excluded[k]) for k in keep_first}
        set_.update({k: sa.func.coalesce(ua.excluded[k], a[k]) for k in ("athlete", "session_id")})
        self._u_alert = ua.on_conflict_do_update(index_elements=["gym", "id"], set_=set_)

    def _athlete_at(self, conn: sa.Connection, gym: str, station: str, ts: float) -> str | None:
        """Who was checked in at ``station`` at ``ts`` (None: nobody known, or a guest).

        The latest check-in per station is remembered (this process is the only
        writer of check-ins), so the common case, a reading from now, needs no query.
        """
        key = (gym, station)
        known = self._checkins.get(key)
        if known is None:
            row = conn.execute(self._q_latest, {"g": gym, "st": station}).first()
            known = (row.since_ts, row.until_ts, row.athlete) if row else (math.inf, None, None)
            self._checkins[key] = known
        since, until, athlete = known
        if ts < since:  # an older reading: whoever was there then
            if since == math.inf:
                return None
            row = conn.execute(self._q_checkin, {"g": gym, "st": station, "t": ts}).first()
            if row is None:
                return None
            until, athlete = row.until_ts, row.athlete
        return None if until is not None and until < ts else athlete

    def _count(self, result: WriteResult, new: int, total: int = 1) -> None:
        result.stored += new
        result.duplicates += total - new

    def _record(
        self, conn: sa.Connection, gym: str, rec: SessionRecord, result: WriteResult
    ) -> None:
        data = rec.record
        sets = data.get("sets") or []
        holds = data.get("holds") or []
        alerts = data.get("alerts") or []
        hyd = data.get("hydration") or {}
        peaks = [x["ratio_peak"] for x in sets if x.get("ratio_peak") is not None]
        inserted = (
            conn.execute(
                self._i_session,
                {
                    "gym": gym,
                    "id": rec.id,
                    "station": rec.station,
                    "athlete": rec.athlete,
                    "guest": rec.guest,
                    "started_ts": rec.started_ts,
                    "ended_ts": rec.ended_ts,
                    "end_reason": data.get("end_reason"),
                    "set_count": len(sets),
                    "hold_count": len(holds),
                    "alert_count": len(alerts),
                    "ratio_peak": max(peaks) if peaks else None,
                    "hydration_mode": hyd.get("mode"),
                    "intake_ml": hyd.get("intake_ml"),
                    "sweat_rate_l_per_h": hyd.get("sweat_rate_l_per_h"),
                    "body_mass_loss_pct": hyd.get("body_mass_loss_pct"),
                    "received_ts": time.time(),
                    "record": data,
                },
            ).first()
            is not None
        )
        self._count(result, int(inserted))
        if not inserted:
            return  # the whole record is stored already: its parts too
        if rec.athlete is not None:
            result.athletes.add((gym, rec.athlete))
        who = {"gym": gym, "session_id": rec.id, "athlete": rec.athlete}
        if sets:
            conn.execute(
                self._i_sets,
                [
                    {
                        **who,
                        "idx": x["index"],
                        "kind": x.get("kind") or "reps",
                        "sensor": x.get("sensor"),
                        "placement": x.get("placement"),
                        "start_ts": x["start_ts"],
                        "end_ts": x["end_ts"],
                        "reps": x.get("reps"),
                        "ratio_median": x.get("ratio_median"),
                        "ratio_peak": x.get("ratio_peak"),
                        "growth_per_min": x.get("growth_per_min"),
                        "recovery_s": x.get("recovery_s"),
                    }
                    for x in sets
                ],
            )
        if holds:
            conn.execute(
                self._i_holds,
                [
                    {
                        **who,
                        "idx": x["index"],
                        "sensor": x.get("sensor"),
                        "start_ts": x["start_ts"],
                        "end_ts": x["end_ts"],
                        "duration_s": x.get("duration_s"),
                        "ratio_peak": x.get("ratio_peak"),
                        "fatigue_ratio_peak": x.get("fatigue_ratio_peak"),
                    }
                    for x in holds
                ],
            )
        weigh_ins = hyd.get("weigh_ins") or []
        if weigh_ins:
            conn.execute(
                self._i_weigh_ins,
                [
                    {**who, "phase": w["phase"], "ts": w["ts"], "mass_g": w["mass_g"]}
                    for w in weigh_ins
                ],
            )
        if alerts:
            conn.execute(
                self._u_alert,
                [
                    _alert_row(
                        gym,
                        id=a["id"],
                        station=rec.station,
                        athlete=rec.athlete,
                        session_id=rec.id,
                        code=a["code"],
                        level=a["level"],
                        raised_ts=a.get("raised_ts"),
                        cleared_ts=a.get("cleared_ts"),
                        acknowledged_ts=a.get("acknowledged_ts"),
                        acknowledged_by=a.get("by"),
                    )
                    for a in alerts
                ],
            )
            events = [
                {
                    "gym": gym,
                    "id": a["id"],
                    "state": state,
                    "ts": a[key],
                    "station": rec.station,
                    "athlete": rec.athlete,
                    "by": a.get("by") if state == "acknowledged" else None,
                }
                for a in alerts
                for state, key in (
                    ("raised", "raised_ts"),
                    ("cleared", "cleared_ts"),
                    ("acknowledged", "acknowledged_ts"),
                )
                if a.get(key) is not None
            ]
            if events:
                conn.execute(self._i_alert_events, events).all()
        trace = data.get("trace") or []
        if trace:
            rows = {}
            for x in trace:
                minute = math.floor(x["ts"] / 60) * 60.0
                rows[(x["sensor"], minute)] = {
                    "gym": gym,
                    "station": rec.station,
                    "sensor": x["sensor"],
                    "minute_ts": minute,
                    "athlete": rec.athlete,
                    "session_id": rec.id,
                    "source": "record",
                    "state": x.get("state"),
                    "count": None,
                    "ratio_p50": x.get("ratio_p50"),
                    "ratio_max": x.get("ratio_max"),
                    "rms_mg_p50": x.get("rms_mg_p50"),
                }
            conn.execute(self._u_trace_record, list(rows.values()))
        # Live rows of this station during the session belong to this athlete.
        conn.execute(
            self._u_trace_owner,
            {
                "g": gym,
                "st": rec.station,
                "t0": math.floor(rec.started_ts / 60) * 60.0,
                "t1": rec.ended_ts,
                "who": rec.athlete,
                "sid": rec.id,
            },
        )
        update = data.get("profile_update")
        if rec.athlete is not None and update:
            profile = self._merge_profile(conn, gym, rec.athlete, update, rec.ended_ts)
            if profile is not None:
                result.profiles.append(profile)

    def _merge_profile(
        self, conn: sa.Connection, gym: str, athlete: str, update: dict[str, Any], ts: float
    ) -> Profile | None:
        """Fold a session's ``profile_update`` into the profile; None if it is older than it."""
        p = s.profiles.c
        row = (
            conn.execute(sa.select(s.profiles).where(p.gym == gym, p.athlete == athlete))
            .mappings()
            .first()
        )
        if row is not None and row["updated_ts"] > ts:
            log.info("profile of %s is newer than a late session record; kept", athlete)
            return None
        baselines = dict(row["baselines_mg"]) if row is not None else {}
        baselines.update(
            {k: float(v) for k, v in (update.get("baselines_mg") or {}).items() if v is not None}
        )
        mass = update.get("body_mass_g")
        if mass is None and row is not None:
            mass = row["body_mass_g"]
        thresholds = row["thresholds"] if row is not None else None
        profile = Profile(gym, athlete, baselines, mass, thresholds, ts)
        self._save_profile(conn, profile)
        return profile

    def _save_profile(self, conn: sa.Connection, profile: Profile) -> None:
        stmt = self._insert(s.profiles).values(
            gym=profile.gym,
            athlete=profile.athlete,
            baselines_mg=profile.baselines_mg,
            body_mass_g=profile.body_mass_g,
            thresholds=profile.thresholds,
            updated_ts=profile.updated_ts,
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["gym", "athlete"],
                set_={
                    k: stmt.excluded[k]
                    for k in ("baselines_mg", "body_mass_g", "thresholds", "updated_ts")
                },
            )
        )

    def _alert_events(self, conn: sa.Connection, run: list[Item], result: WriteResult) -> None:
        rows: list[dict[str, Any]] = []
        alerts: dict[tuple[str, str, str], dict[str, Any]] = {}
        for item in run:
            ev = cast(AlertEvent, item.message)
            athlete = self._athlete_at(conn, item.gym, ev.station, ev.raised_ts or ev.ts)
            rows.append(
                {
                    "gym": item.gym,
                    "id": ev.id,
                    "state": ev.state,
                    "ts": ev.ts,
                    "station": ev.station,
                    "athlete": athlete,
                    "by": ev.by if ev.state == "acknowledged" else None,
                }
            )
            alerts[(item.gym, ev.id, ev.state)] = _alert_row(
                item.gym,
                id=ev.id,
                station=ev.station,
                athlete=athlete,
                code=ev.code,
                level=ev.level,
                red_flag=ev.red_flag,
                sensor=ev.sensor,
                message=ev.message,
                raised_ts=ev.raised_ts,
                cleared_ts=ev.ts if ev.state == "cleared" else None,
                acknowledged_ts=ev.ts if ev.state == "acknowledged" else None,
                acknowledged_by=ev.by if ev.state == "acknowledged" else None,
            )
        new = conn.execute(self._i_alert_events, rows).all()
        self._count(result, len(new), len(rows))
        stored = {(n.id, n.state) for n in new}
        fresh = [
            alerts[(r["gym"], r["id"], r["state"])] for r in rows if (r["id"], r["state"]) in stored
        ]
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for row in fresh:  # one row per alert: a statement may not touch a row twice
            have = merged.setdefault((row["gym"], row["id"]), dict(row))
            for k, v in row.items():
                if have[k] is None:
                    have[k] = v
        if merged:
            conn.execute(self._u_alert, list(merged.values()))
        result.athletes.update((r["gym"], r["athlete"]) for r in fresh if r["athlete"])

    def _presence(self, conn: sa.Connection, gym: str, p: Presence, result: WriteResult) -> None:
        someone = p.athlete is not None or p.guest
        end = p.since_ts if someone and p.since_ts is not None else p.ts
        # Whoever was checked in before is not any more.
        closed = conn.execute(self._u_checkout, {"g": gym, "st": p.station, "end": end}).rowcount
        inserted = False
        if someone and p.since_ts is not None:
            row = {
                "gym": gym,
                "station": p.station,
                "since_ts": p.since_ts,
                "athlete": p.athlete,
                "guest": p.guest,
                "source": p.source,
            }
            inserted = conn.execute(self._i_checkin, row).first() is not None
        self._checkins.pop((gym, p.station), None)  # looked up afresh next time
        self._count(result, int(bool(inserted or closed)))

    def _hydration(self, conn: sa.Connection, run: list[Item], result: WriteResult) -> None:
        rows = []
        for item in run:
            h = cast(HydrationSample, item.message)
            rows.append(
                {
                    "gym": item.gym,
                    "station": h.station,
                    "ts": h.ts,
                    "mode": h.mode,
                    "athlete": self._athlete_at(conn, item.gym, h.station, h.ts),
                    **dict(zip(HYDRATION_COLUMNS, h.values, strict=True)),
                }
            )
        self._count(result, len(conn.execute(self._i_hydration, rows).all()), len(rows))

    def _trace_minutes(self, conn: sa.Connection, run: list[Item], result: WriteResult) -> None:
        # Never over a row that came from a session record: that one is the station's own.
        rows = []
        for item in run:
            m = cast(TraceMinute, item.message)
            rows.append(
                {
                    "gym": item.gym,
                    "station": m.station,
                    "sensor": m.sensor,
                    "minute_ts": m.minute_ts,
                    "source": "live",
                    "count": m.count,
                    "athlete": self._athlete_at(conn, item.gym, m.station, m.minute_ts + 30),
                    "session_id": None,
                    "state": None,
                    "ratio_p50": m.ratio_p50,
                    "ratio_max": m.ratio_max,
                    "rms_mg_p50": m.rms_mg_p50,
                }
            )
        self._count(result, len(conn.execute(self._i_trace_live, rows).all()), len(rows))

    # ------------------------------------------------------------------ profiles and cards

    def profile(self, gym: str, athlete: str) -> Profile | None:
        p = s.profiles.c
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(s.profiles).where(p.gym == gym, p.athlete == athlete))
                .mappings()
                .first()
            )
        return _profile(row) if row is not None else None

    def profiles(self, gym: str | None = None) -> list[Profile]:
        q = sa.select(s.profiles)
        if gym is not None:
            q = q.where(s.profiles.c.gym == gym)
        with self.engine.connect() as conn:
            return [_profile(r) for r in conn.execute(q).mappings()]

    def set_thresholds(
        self, gym: str, athlete: str, thresholds: dict[str, float] | None
    ) -> Profile:
        """A coach's thresholds for one athlete (None: back to the station's)."""
        with self.engine.begin() as conn:
            row = (
                conn.execute(
                    sa.select(s.profiles).where(
                        s.profiles.c.gym == gym, s.profiles.c.athlete == athlete
                    )
                )
                .mappings()
                .first()
            )
            old = _profile(row) if row is not None else Profile(gym, athlete, {}, None, None, 0.0)
            # updated_ts stays the newest session's: it orders the records' baselines.
            profile = Profile(
                gym,
                athlete,
                old.baselines_mg,
                old.body_mass_g,
                dict(thresholds) if thresholds else None,
                old.updated_ts,
            )
            self._save_profile(conn, profile)
        self._changed([(gym, athlete)])
        return profile

    def set_card(self, gym: str, athlete: str, display_name: str) -> None:
        stmt = self._insert(s.cards).values(
            gym=gym, athlete=athlete, display_name=display_name, updated_ts=time.time()
        )
        with self.engine.begin() as conn:
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["gym", "athlete"],
                    set_={
                        "display_name": stmt.excluded.display_name,
                        "updated_ts": stmt.excluded.updated_ts,
                    },
                )
            )
        self._changed([(gym, athlete)])

    def card(self, gym: str, athlete: str) -> str | None:
        """The athlete's display name, if staff gave one."""
        c = s.cards.c
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(c.display_name).where(c.gym == gym, c.athlete == athlete)
            ).scalar_one_or_none()

    def cards(self, gym: str | None = None) -> dict[tuple[str, str], str]:
        q = sa.select(s.cards.c.gym, s.cards.c.athlete, s.cards.c.display_name)
        if gym is not None:
            q = q.where(s.cards.c.gym == gym)
        with self.engine.connect() as conn:
            return {(r.gym, r.athlete): r.display_name for r in conn.execute(q)}

    # ------------------------------------------------------------------ privacy

    def forget(self, gym: str, athlete: str) -> dict[str, int]:
        """Delete every row about ``athlete``; returns rows deleted per table."""
        counts = {}
        self._checkins.clear()
        with self.engine.begin() as conn:
            for table in s.ATHLETE_TABLES:
                counts[table.name] = conn.execute(
                    sa.delete(table).where(table.c.gym == gym, table.c.athlete == athlete)
                ).rowcount
        self._changed([(gym, athlete)])
        return counts

    def export(self, gym: str, athlete: str) -> dict[str, Any]:
        """Everything kept about ``athlete``, table by table, as JSON-ready values."""
        out: dict[str, Any] = {
            "v": 1,
            "gym": gym,
            "athlete": athlete,
            "exported_ts": time.time(),
            "tables": {},
        }
        with self.engine.connect() as conn:
            for table in s.ATHLETE_TABLES:
                order = [c for c in table.primary_key.columns]
                rows = conn.execute(
                    sa.select(table)
                    .where(table.c.gym == gym, table.c.athlete == athlete)
                    .order_by(*order)
                ).mappings()
                out["tables"][table.name] = [dict(r) for r in rows]
        return out

    def knows(self, gym: str, athlete: str) -> bool:
        with self.engine.connect() as conn:
            for table in (s.sessions, s.profiles, s.cards, s.checkins):
                if conn.execute(
                    sa.select(sa.literal(1))
                    .where(table.c.gym == gym, table.c.athlete == athlete)
                    .limit(1)
                ).first():
                    return True
        return False

    # ------------------------------------------------------------------ retention

    def prune(
        self, *, trace_days: float, records_months: float, now: float | None = None
    ) -> dict[str, int]:
        """Delete the minute trace older than ``trace_days`` and everything else older
        than ``records_months``. Profiles and cards stay until the athlete is forgotten."""
        now = time.time() if now is None else now
        trace_cut = now - trace_days * DAY
        cut = now - records_months * MONTH
        counts = {}
        with self.engine.begin() as conn:
            counts["trace"] = conn.execute(
                sa.delete(s.trace).where(s.trace.c.minute_ts < trace_cut)
            ).rowcount
            old = sa.select(s.sessions.c.gym, s.sessions.c.id).where(s.sessions.c.ended_ts < cut)
            for table in (s.sets, s.holds, s.weigh_ins):
                counts[table.name] = conn.execute(
                    sa.delete(table).where(sa.tuple_(table.c.gym, table.c.session_id).in_(old))
                ).rowcount
            counts["sessions"] = conn.execute(
                sa.delete(s.sessions).where(s.sessions.c.ended_ts < cut)
            ).rowcount
            a = s.alerts.c
            last = sa.func.coalesce(a.cleared_ts, a.acknowledged_ts, a.raised_ts)
            counts["alerts"] = conn.execute(sa.delete(s.alerts).where(last < cut)).rowcount
            counts["alert_events"] = conn.execute(
                sa.delete(s.alert_events).where(s.alert_events.c.ts < cut)
            ).rowcount
            counts["hydration"] = conn.execute(
                sa.delete(s.hydration).where(s.hydration.c.ts < cut)
            ).rowcount
            counts["checkins"] = conn.execute(
                sa.delete(s.checkins).where(sa.func.coalesce(s.checkins.c.until_ts, now) < cut)
            ).rowcount
        return counts

    # ------------------------------------------------------------------ reading

    def gyms(self) -> list[str]:
        with self.engine.connect() as conn:
            found = {r[0] for r in conn.execute(sa.select(s.sessions.c.gym).distinct())}
            found |= {r[0] for r in conn.execute(sa.select(s.profiles.c.gym).distinct())}
        return sorted(found | {self.gym})

    def athletes(self, gym: str | None = None) -> list[dict[str, Any]]:
        """Every athlete known: sessions, last seen, alerts, display name."""
        ss, a = s.sessions.c, s.alerts.c
        q = (
            sa.select(
                ss.gym,
                ss.athlete,
                sa.func.count().label("sessions"),
                sa.func.max(ss.ended_ts).label("last_ts"),
                sa.func.min(ss.started_ts).label("first_ts"),
            )
            .where(ss.athlete.is_not(None))
            .group_by(ss.gym, ss.athlete)
        )
        qa = (
            sa.select(a.gym, a.athlete, sa.func.count().label("alerts"))
            .where(a.athlete.is_not(None))
            .group_by(a.gym, a.athlete)
        )
        if gym is not None:
            q, qa = q.where(ss.gym == gym), qa.where(a.gym == gym)
        out: dict[tuple[str, str], dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(q):
                out[(r.gym, r.athlete)] = {
                    "gym": r.gym,
                    "athlete": r.athlete,
                    "sessions": r.sessions,
                    "first_ts": r.first_ts,
                    "last_ts": r.last_ts,
                    "alerts": 0,
                }
            for p in self.profiles(gym):
                out.setdefault(
                    (p.gym, p.athlete),
                    {
                        "gym": p.gym,
                        "athlete": p.athlete,
                        "sessions": 0,
                        "first_ts": None,
                        "last_ts": None,
                        "alerts": 0,
                    },
                )
            for r in conn.execute(qa):
                if (r.gym, r.athlete) in out:
                    out[(r.gym, r.athlete)]["alerts"] = r.alerts
        names = self.cards(gym)
        for key, row in out.items():
            row["display_name"] = names.get(key)
        return sorted(out.values(), key=lambda r: (-(r["last_ts"] or 0), r["athlete"]))

    def athlete_history(self, gym: str, athlete: str, since_ts: float) -> dict[str, Any]:
        """An athlete's sessions, sets, holds and alerts since ``since_ts``."""
        ss, st, h, a = s.sessions.c, s.sets.c, s.holds.c, s.alerts.c
        cols = [
            ss.id,
            ss.station,
            ss.started_ts,
            ss.ended_ts,
            ss.end_reason,
            ss.set_count,
            ss.hold_count,
            ss.alert_count,
            ss.ratio_peak,
            ss.intake_ml,
            ss.sweat_rate_l_per_h,
            ss.body_mass_loss_pct,
        ]
        with self.engine.connect() as conn:
            sessions = _dicts(
                conn.execute(
                    sa.select(*cols)
                    .where(ss.gym == gym, ss.athlete == athlete, ss.started_ts >= since_ts)
                    .order_by(ss.started_ts)
                )
            )
            sets = _dicts(
                conn.execute(
                    sa.select(
                        st.session_id,
                        st.idx,
                        st.kind,
                        st.sensor,
                        st.start_ts,
                        st.end_ts,
                        st.reps,
                        st.ratio_median,
                        st.ratio_peak,
                        st.growth_per_min,
                        st.recovery_s,
                    )
                    .where(st.gym == gym, st.athlete == athlete, st.start_ts >= since_ts)
                    .order_by(st.start_ts)
                )
            )
            holds = _dicts(
                conn.execute(
                    sa.select(
                        h.session_id,
                        h.idx,
                        h.sensor,
                        h.start_ts,
                        h.duration_s,
                        h.ratio_peak,
                        h.fatigue_ratio_peak,
                    )
                    .where(h.gym == gym, h.athlete == athlete, h.start_ts >= since_ts)
                    .order_by(h.start_ts)
                )
            )
            alerts = _dicts(
                conn.execute(
                    sa.select(
                        a.id,
                        a.station,
                        a.session_id,
                        a.code,
                        a.level,
                        a.red_flag,
                        a.raised_ts,
                        a.cleared_ts,
                        a.acknowledged_ts,
                        a.acknowledged_by,
                    )
                    .where(a.gym == gym, a.athlete == athlete, a.raised_ts >= since_ts)
                    .order_by(a.raised_ts)
                )
            )
        return {"sessions": sessions, "sets": sets, "holds": holds, "alerts": alerts}

    def session(self, gym: str, session_id: str) -> dict[str, Any] | None:
        """One session with its sets, holds, alerts, weigh-ins, trace and hydration readings."""
        ss = s.sessions.c
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(s.sessions).where(ss.gym == gym, ss.id == session_id))
                .mappings()
                .first()
            )
            if row is None:
                return None
            out: dict[str, Any] = {"session": dict(row)}
            for name, table, order in (
                ("sets", s.sets, s.sets.c.idx),
                ("holds", s.holds, s.holds.c.idx),
                ("weigh_ins", s.weigh_ins, s.weigh_ins.c.ts),
            ):
                out[name] = [
                    dict(r)
                    for r in conn.execute(
                        sa.select(table)
                        .where(table.c.gym == gym, table.c.session_id == session_id)
                        .order_by(order)
                    ).mappings()
                ]
            a = s.alerts.c
            out["alerts"] = [
                dict(r)
                for r in conn.execute(
                    sa.select(s.alerts)
                    .where(
                        a.gym == gym,
                        sa.or_(
                            a.session_id == session_id,
                            sa.and_(
                                a.session_id.is_(None),
                                a.station == row["station"],
                                a.raised_ts >= row["started_ts"],
                                a.raised_ts <= row["ended_ts"],
                            ),
                        ),
                    )
                    .order_by(a.raised_ts)
                ).mappings()
            ]
            t = s.trace.c
            out["trace"] = [
                dict(r)
                for r in conn.execute(
                    sa.select(s.trace)
                    .where(
                        t.gym == gym,
                        t.station == row["station"],
                        t.minute_ts >= math.floor(row["started_ts"] / 60) * 60,
                        t.minute_ts <= row["ended_ts"],
                    )
                    .order_by(t.minute_ts, t.sensor)
                ).mappings()
            ]
            hy = s.hydration.c
            out["hydration"] = [
                dict(r)
                for r in conn.execute(
                    sa.select(s.hydration)
                    .where(
                        hy.gym == gym,
                        hy.station == row["station"],
                        hy.ts >= row["started_ts"],
                        hy.ts <= row["ended_ts"],
                    )
                    .order_by(hy.ts)
                ).mappings()
            ]
        return out

    def alert_log(
        self,
        gym: str | None = None,
        *,
        since_ts: float | None = None,
        athlete: str | None = None,
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        a = s.alerts.c
        q = sa.select(s.alerts)
        if gym is not None:
            q = q.where(a.gym == gym)
        if since_ts is not None:
            q = q.where(a.raised_ts >= since_ts)
        if athlete is not None:
            q = q.where(a.athlete == athlete)
        q = q.order_by(a.raised_ts.desc().nulls_last()).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def counts(self) -> dict[str, int]:
        """Rows per table (for tests, benchmarks and the health page)."""
        with self.engine.connect() as conn:
            return {
                t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in s.metadata.sorted_tables
            }


HYDRATION_COLUMNS = (
    "mass_g",
    "intake_ml",
    "pre_mass_g",
    "post_mass_g",
    "body_mass_loss_pct",
    "sweat_rate_l_per_h",
)
ALERT_COLUMNS = (
    "id",
    "station",
    "athlete",
    "session_id",
    "code",
    "level",
    "red_flag",
    "sensor",
    "message",
    "raised_ts",
    "cleared_ts",
    "acknowledged_ts",
    "acknowledged_by",
)


def _dicts(result: sa.CursorResult[Any]) -> list[dict[str, Any]]:
    """Rows as dicts: a year of an athlete's sets is ~2000 rows, and zipping plain tuples
    with the column names is several times quicker than a mapping per row."""
    keys = tuple(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result.all()]


def _alert_row(gym: str, **values: Any) -> dict[str, Any]:
    """Every column of an ``alerts`` row (unknown ones None), as one executemany needs."""
    return {"gym": gym, **{k: values.get(k) for k in ALERT_COLUMNS}}


def _profile(row: Any) -> Profile:
    return Profile(
        row["gym"],
        row["athlete"],
        dict(row["baselines_mg"] or {}),
        row["body_mass_g"],
        row["thresholds"],
        row["updated_ts"],
    )


def median(values: Iterable[float]) -> float | None:
    values = list(values)
    return statistics.median(values) if values else None
