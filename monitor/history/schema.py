"""The history store's tables, in SQLAlchemy Core: one definition for SQLite and PostgreSQL.

Every row carries ``gym``: a single gym's store writes its own id (``[history] gym``)
everywhere, a chain's central store writes the gym each message came from (the
bridge's topic prefix), so one database holds many gyms without their station
or session ids colliding.

Times are Unix seconds as floats, as on the wire (PAYLOADS.md). The tables are
created and changed only by the Alembic migrations in ``migrations/``; a test
checks that the migrated database and these definitions agree.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()

#: A JSON document: JSONB on PostgreSQL, text on SQLite.
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

GYM = 64
ID = 128

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("gym", sa.String(GYM), primary_key=True),
    sa.Column("id", sa.String(ID), primary_key=True),
    sa.Column("station", sa.String(64), nullable=False),
    sa.Column("athlete", sa.String(64)),
    sa.Column("guest", sa.Boolean, nullable=False),
    sa.Column("started_ts", sa.Float, nullable=False),
    sa.Column("ended_ts", sa.Float, nullable=False),
    sa.Column("end_reason", sa.String(32)),
    sa.Column("set_count", sa.Integer, nullable=False),
    sa.Column("hold_count", sa.Integer, nullable=False),
    sa.Column("alert_count", sa.Integer, nullable=False),
    sa.Column("ratio_peak", sa.Float),
    sa.Column("hydration_mode", sa.String(16)),
    sa.Column("intake_ml", sa.Float),
    sa.Column("sweat_rate_l_per_h", sa.Float),
    sa.Column("body_mass_loss_pct", sa.Float),
    sa.Column("received_ts", sa.Float, nullable=False),
    # The record as received, for the athlete's export: what was kept, exactly.
    sa.Column("record", Json, nullable=False),
)
sa.Index("ix_sessions_athlete", sessions.c.gym, sessions.c.athlete, sessions.c.started_ts)
sa.Index("ix_sessions_station", sessions.c.gym, sessions.c.station, sessions.c.started_ts)
sa.Index("ix_sessions_ended", sessions.c.ended_ts)

sets = sa.Table(
    "sets",
    metadata,
    sa.Column("gym", sa.String(GYM), primary_key=True),
    sa.Column("session_id", sa.String(ID), primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True),
    sa.Column("athlete", sa.String(64)),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("sensor", sa.String(64)),
    sa.Column("placement", sa.String(16)),
    sa.Column("start_ts", sa.Float, nullable=False),
    sa.Column("end_ts", sa.Float, nullable=False),
    sa.Column("reps", sa.Integer),
    sa.Column("ratio_median", sa.Float),
    sa.Column("ratio_peak", sa.Float),
    sa.Column("growth_per_min", sa.Float),
    sa.Column("recovery_s", sa.Float),
)
sa.Index("ix_sets_athlete", sets.c.gym, sets.c.athlete, sets.c.start_ts)

holds = sa.Table(
    "holds",
    metadata,
    sa.Column("gym", sa.String(GYM), primary_key=True),
    sa.Column("session_id", sa.String(ID), primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True),
    sa.Column("athlete", sa.String(64)),
    sa.Column("sensor", sa.String(64)),
    sa.Column("start_ts", sa.Float, nullable=False),
    sa.Column("end_ts", sa.Float, nullable=False),
    sa.Column("duration_s", sa.Float),
    sa.Column("ratio_peak", sa.Float),
    sa.Column("fatigue_ratio_peak", sa.Float),
)
sa.Index("ix_holds_athlete", holds.c.gym, holds.c.athlete, holds.c.start_ts)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("gym", sa.String(GYM), primary_key=True),
    sa.Column("id", sa.String(ID), primary_key=True),
    sa.Column("station", sa.String(64), nullable=False),
    sa.Column("athlete", sa.String(64)),
    sa.Column("session_id", sa.String(ID)),
    sa.Column("code", sa.String(64), nullable=False),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("red_flag", sa.Boolean),
    sa.Column("sensor", sa.String(64)),
    sa.Column("message", sa.Text),
    sa.Column("raised_ts", sa.Float),
    sa.Column("cleared_ts", sa.Float),
    sa.Column("acknowledged_ts", sa.Float),
    sa.Column("acknowledged_by", sa.String(128)),
)
sa.Index("ix_alerts_raised", alerts.c.gym, alerts.c.raised_ts)
sa.Index("ix_alerts_athlete", alerts.c.gym, alerts.c.athlete, alerts.c.raised_ts)

# Each alert event once: the (id, state) pair subscribers deduplicate by (PAYLOADS.md).
alert_events = sa.Table(
    "alert_events",
    metadata,
    sa.Column("gym", sa.String(GYM), primary_key=True),
    sa.Column("id", sa.String(ID), primary_key=True),
    sa.Column("state", sa.String(16), primary_key=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("station", sa.String(64), nullable=False),
    sa.Column("athlete", sa.String(64)),
    sa.Column("by", sa.String(128)),
)
sa.Index("ix_alert_events_ts", alert_events.c.ts)

hydration = sa.Table(
    "hydration",
    metadata,
    sa.Column("gym", sa.String(GYM), primary_key=True),
    sa.Column("station", sa.String(64), primary_key=True),
    sa.Column("ts", sa.Float, primary_key=True),
    sa.Column("athlete", sa.String(64)),
    sa.Column("mode", sa.String(16)),
    sa.Column("mass_g", sa.Float),
    sa.Column("intake_ml", sa.Float),
    sa.Column("pre_mass_g", sa.Float),
    sa.Column("post_mass_g", sa.Float),
    sa.Column("body_mass_loss_pct", sa.Float),
    sa.Column("sweat_rate_l_per_h", sa.Float),
)
sa.Index("ix_hydration_athlete", hydration.c.gym, hydration.c.athlete, hydration.c.ts)

weigh_ins = sa.Table(
    "weigh_ins",
    metadata,
    sa.Column("gym", sa.String(GYM), primary_key=True),
    sa.Column("session_id", sa.String(ID), primary_key=True),
    sa.Column("phase", sa.String(8), primary_key=True),
    sa.Column("ts", sa.Float, primary_key=True),
    sa.Column("athlete", sa.String(64)),
    sa.Column("mass_g", sa.Float, nullable=False),
)

# The down-sampled tremor trace: one row per station, sensor and minute. Rows
# from a session record replace the ones the store built from the live feed.
trace = sa.Table(
    "trace",
    metadata,
    sa.Column("gym", sa.String(GYM), primary_key=True),
    sa.Column("station", sa.String(64), primary_key=True),
    sa.Column("sensor", sa.String(64), primary_key=True),
    sa.Column("minute_ts", sa.Float, primary_key=True),
    sa.Column("athlete", sa.String(64)),
    sa.Column("session_id", sa.String(ID)),
    sa.Column("source", sa.String(8), nullable=False),
    sa.Column("state", sa.String(16)),
    sa.Column("count", sa.Integer),
    sa.Column("ratio_p50", sa.Float),
    sa.Column("ratio_max", sa.Float),
    sa.Column("rms_mg_p50", sa.Float),
)
sa.Index("ix_trace_athlete", trace.c.gym, trace.c.athlete, trace.c.minute_ts)
sa.Index("ix_trace_minute", trace.c.minute_ts)

checkins = sa.Table(
    "checkins",
    metadata,
    sa.Column("gym", sa.String(GYM), primary_key=True),
    sa.Column("station", sa.String(64), primary_key=True),
    sa.Column("since_ts", sa.Float, primary_key=True),
    sa.Column("athlete", sa.String(64)),
    sa.Column("guest", sa.Boolean, nullable=False),
    sa.Column("source", sa.String(16)),
    sa.Column("until_ts", sa.Float),
)
sa.Index("ix_checkins_athlete", checkins.c.gym, checkins.c.athlete)

profiles = sa.Table(
    "profiles",
    metadata,
    sa.Column("gym", sa.String(GYM), primary_key=True),
    sa.Column("athlete", sa.String(64), primary_key=True),
    sa.Column("baselines_mg", Json, nullable=False),
    sa.Column("body_mass_g", sa.Float),
    sa.Column("thresholds", Json),
    sa.Column("updated_ts", sa.Float, nullable=False),
)

cards = sa.Table(
    "cards",
    metadata,
    sa.Column("gym", sa.String(GYM), primary_key=True),
    sa.Column("athlete", sa.String(64), primary_key=True),
    sa.Column("display_name", sa.String(80), nullable=False),
    sa.Column("updated_ts", sa.Float, nullable=False),
)

#: Tables that hold rows about one athlete (what ``forget`` deletes, ``export`` shows).
ATHLETE_TABLES = (
    sessions,
    sets,
    holds,
    alerts,
    alert_events,
    hydration,
    weigh_ins,
    trace,
    checkins,
    profiles,
    cards,
)
