"""The first tables: sessions, sets, holds, alerts, hydration, trace, check-ins, profiles, cards

Revision ID: 0001
Revises: (none)
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

#: JSONB on PostgreSQL, text on SQLite (as in schema.py at this revision).
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_events",
        sa.Column("gym", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("station", sa.String(length=64), nullable=False),
        sa.Column("athlete", sa.String(length=64), nullable=True),
        sa.Column("by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("gym", "id", "state"),
    )
    op.create_index("ix_alert_events_ts", "alert_events", ["ts"])

    op.create_table(
        "alerts",
        sa.Column("gym", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("station", sa.String(length=64), nullable=False),
        sa.Column("athlete", sa.String(length=64), nullable=True),
        sa.Column("session_id", sa.String(length=128), nullable=True),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("red_flag", sa.Boolean(), nullable=True),
        sa.Column("sensor", sa.String(length=64), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("raised_ts", sa.Float(), nullable=True),
        sa.Column("cleared_ts", sa.Float(), nullable=True),
        sa.Column("acknowledged_ts", sa.Float(), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("gym", "id"),
    )
    op.create_index("ix_alerts_athlete", "alerts", ["gym", "athlete", "raised_ts"])
    op.create_index("ix_alerts_raised", "alerts", ["gym", "raised_ts"])

    op.create_table(
        "cards",
        sa.Column("gym", sa.String(length=64), nullable=False),
        sa.Column("athlete", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=80), nullable=False),
        sa.Column("updated_ts", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("gym", "athlete"),
    )
    op.create_table(
        "checkins",
        sa.Column("gym", sa.String(length=64), nullable=False),
        sa.Column("station", sa.String(length=64), nullable=False),
        sa.Column("since_ts", sa.Float(), nullable=False),
        sa.Column("athlete", sa.String(length=64), nullable=True),
        sa.Column("guest", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=True),
        sa.Column("until_ts", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("gym", "station", "since_ts"),
    )
    op.create_index("ix_checkins_athlete", "checkins", ["gym", "athlete"])

    op.create_table(
        "holds",
        sa.Column("gym", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=128), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("athlete", sa.String(length=64), nullable=True),
        sa.Column("sensor", sa.String(length=64), nullable=True),
        sa.Column("start_ts", sa.Float(), nullable=False),
        sa.Column("end_ts", sa.Float(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("ratio_peak", sa.Float(), nullable=True),
        sa.Column("fatigue_ratio_peak", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("gym", "session_id", "idx"),
    )
    op.create_index("ix_holds_athlete", "holds", ["gym", "athlete", "start_ts"])

    op.create_table(
        "hydration",
        sa.Column("gym", sa.String(length=64), nullable=False),
        sa.Column("station", sa.String(length=64), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("athlete", sa.String(length=64), nullable=True),
        sa.Column("mode", sa.String(length=16), nullable=True),
        sa.Column("mass_g", sa.Float(), nullable=True),
        sa.Column("intake_ml", sa.Float(), nullable=True),
        sa.Column("pre_mass_g", sa.Float(), nullable=True),
        sa.Column("post_mass_g", sa.Float(), nullable=True),
        sa.Column("body_mass_loss_pct", sa.Float(), nullable=True),
        sa.Column("sweat_rate_l_per_h", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("gym", "station", "ts"),
    )
    op.create_index("ix_hydration_athlete", "hydration", ["gym", "athlete", "ts"])

    op.create_table(
        "profiles",
        sa.Column("gym", sa.String(length=64), nullable=False),
        sa.Column("athlete", sa.String(length=64), nullable=False),
        sa.Column("baselines_mg", JSON, nullable=False),
        sa.Column("body_mass_g", sa.Float(), nullable=True),
        sa.Column("thresholds", JSON, nullable=True),
        sa.Column("updated_ts", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("gym", "athlete"),
    )
    op.create_table(
        "sessions",
        sa.Column("gym", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("station", sa.String(length=64), nullable=False),
        sa.Column("athlete", sa.String(length=64), nullable=True),
        sa.Column("guest", sa.Boolean(), nullable=False),
        sa.Column("started_ts", sa.Float(), nullable=False),
        sa.Column("ended_ts", sa.Float(), nullable=False),
        sa.Column("end_reason", sa.String(length=32), nullable=True),
        sa.Column("set_count", sa.Integer(), nullable=False),
        sa.Column("hold_count", sa.Integer(), nullable=False),
        sa.Column("alert_count", sa.Integer(), nullable=False),
        sa.Column("ratio_peak", sa.Float(), nullable=True),
        sa.Column("hydration_mode", sa.String(length=16), nullable=True),
        sa.Column("intake_ml", sa.Float(), nullable=True),
        sa.Column("sweat_rate_l_per_h", sa.Float(), nullable=True),
        sa.Column("body_mass_loss_pct", sa.Float(), nullable=True),
        sa.Column("received_ts", sa.Float(), nullable=False),
        sa.Column("record", JSON, nullable=False),
        sa.PrimaryKeyConstraint("gym", "id"),
    )
    op.create_index("ix_sessions_athlete", "sessions", ["gym", "athlete", "started_ts"])
    op.create_index("ix_sessions_ended", "sessions", ["ended_ts"])
    op.create_index("ix_sessions_station", "sessions", ["gym", "station", "started_ts"])

    op.create_table(
        "sets",
        sa.Column("gym", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=128), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("athlete", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("sensor", sa.String(length=64), nullable=True),
        sa.Column("placement", sa.String(length=16), nullable=True),
        sa.Column("start_ts", sa.Float(), nullable=False),
        sa.Column("end_ts", sa.Float(), nullable=False),
        sa.Column("reps", sa.Integer(), nullable=True),
        sa.Column("ratio_median", sa.Float(), nullable=True),
        sa.Column("ratio_peak", sa.Float(), nullable=True),
        sa.Column("growth_per_min", sa.Float(), nullable=True),
        sa.Column("recovery_s", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("gym", "session_id", "idx"),
    )
    op.create_index("ix_sets_athlete", "sets", ["gym", "athlete", "start_ts"])

    op.create_table(
        "trace",
        sa.Column("gym", sa.String(length=64), nullable=False),
        sa.Column("station", sa.String(length=64), nullable=False),
        sa.Column("sensor", sa.String(length=64), nullable=False),
        sa.Column("minute_ts", sa.Float(), nullable=False),
        sa.Column("athlete", sa.String(length=64), nullable=True),
        sa.Column("session_id", sa.String(length=128), nullable=True),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=True),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("ratio_p50", sa.Float(), nullable=True),
        sa.Column("ratio_max", sa.Float(), nullable=True),
        sa.Column("rms_mg_p50", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("gym", "station", "sensor", "minute_ts"),
    )
    op.create_index("ix_trace_athlete", "trace", ["gym", "athlete", "minute_ts"])
    op.create_index("ix_trace_minute", "trace", ["minute_ts"])

    op.create_table(
        "weigh_ins",
        sa.Column("gym", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=128), nullable=False),
        sa.Column("phase", sa.String(length=8), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("athlete", sa.String(length=64), nullable=True),
        sa.Column("mass_g", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("gym", "session_id", "phase", "ts"),
    )


def downgrade() -> None:
    op.drop_table("weigh_ins")
    op.drop_index("ix_trace_minute", table_name="trace")
    op.drop_index("ix_trace_athlete", table_name="trace")
    op.drop_table("trace")
    op.drop_index("ix_sets_athlete", table_name="sets")
    op.drop_table("sets")
    op.drop_index("ix_sessions_station", table_name="sessions")
    op.drop_index("ix_sessions_ended", table_name="sessions")
    op.drop_index("ix_sessions_athlete", table_name="sessions")
    op.drop_table("sessions")
    op.drop_table("profiles")
    op.drop_index("ix_hydration_athlete", table_name="hydration")
    op.drop_table("hydration")
    op.drop_index("ix_holds_athlete", table_name="holds")
    op.drop_table("holds")
    op.drop_index("ix_checkins_athlete", table_name="checkins")
    op.drop_table("checkins")
    op.drop_table("cards")
    op.drop_index("ix_alerts_raised", table_name="alerts")
    op.drop_index("ix_alerts_athlete", table_name="alerts")
    op.drop_table("alerts")
    op.drop_index("ix_alert_events_ts", table_name="alert_events")
    op.drop_table("alert_events")
