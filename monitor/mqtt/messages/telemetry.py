"""What a station publishes about itself: tremor, session, hydration, alerts, command replies.

Each class is one topic's payload (see ``PAYLOADS.md``)::

    >>> t = Tremor(station="bench-1", sensor="wrist", rms_mg=12.3456789, ratio=2.5,
    ...            level=DEFAULT_GRADES.level(2.5), measurable=True, window_s=2.5, ts=1732435200.5)
    >>> t.rms_mg, t.level
    (12.3457, <TremorLevel.ELEVATED: 'elevated'>)
    >>> Tremor.from_json(t.to_json()) == t
    True

Readers (the wall display, anyone subscribed) get ``None`` for what a
payload leaves out, and a :class:`~.codec.MessageError` for anything present
and wrong.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .base import Message
from .codec import _Invalid
from .fields import spec
from .values import (
    DEFAULT_GRADES,
    STATION_PATTERN,
    ActivityState,
    AlertLevel,
    AlertState,
    Grades,
    HydrationMode,
    Placement,
    TremorLevel,
)

COMPATIBLE = "Version 1 may gain keys; consumers ignore keys they do not know."


@dataclass(frozen=True, kw_only=True)
class Stamped(Message):
    """A message with a time: ``ts`` (Unix seconds, now unless given)."""

    comment: ClassVar[str] = COMPATIBLE

    ts: float | None = spec(factory=time.time, nullable=False, minimum=0)


@dataclass(frozen=True, kw_only=True)
class FromStation(Stamped):
    """A message a station publishes under its own id."""

    station: str | None = spec(
        None,
        nullable=False,
        pattern=STATION_PATTERN,
        what="a station id: 1 to 64 letters, digits, '-' or '_', starting with a letter or digit",
    )


@dataclass(frozen=True, kw_only=True)
class Tremor(FromStation):
    """One sensor's tremor metrics, a few times a second (``tremor``, QoS 0).

    ``ratio`` is ``rms_mg`` over the athlete's rested baseline for that
    sensor, ``level`` its grade (see :class:`~.values.Grades`); ``rms_mg``,
    ``peak_hz`` and ``ratio`` are null when there is no measurable tremor.
    """

    schema_name: ClassVar[str] = "tremor"
    title: ClassVar[str] = "gym/<station>/tremor: one sensor's tremor metrics (QoS 0)"

    sensor: str = spec(min_length=1)
    placement: Placement | None = spec(Placement.LIMB, nullable=False)
    exercised: bool | None = spec(True, nullable=False)
    rms_mg: float | None = spec(
        None, minimum=0, doc="tremor-band RMS, milli-g; null when not measurable"
    )
    peak_hz: float | None = spec(
        None, minimum=0, doc="dominant tremor frequency; null when not measurable"
    )
    ratio: float | None = spec(None, minimum=0, doc="rms_mg over the rested baseline")
    level: TremorLevel
    moving: bool = False
    measurable: bool | None = spec(None, nullable=False)
    band_rms_mg: Mapping[str, float | None] = spec(factory=dict, minimum=0)
    fatigue_ratio: float | None = None
    regularity: float | None = spec(None, minimum=0, maximum=1)
    window_s: float | None = spec(None, nullable=False, exclusive_minimum=0)


@dataclass(frozen=True, kw_only=True)
class SessionReport(FromStation):
    """Activity state and session figures (``session``, retained, QoS 1).

    ``thresholds`` are the grades the station applies (a coach may set them
    per athlete); a reader of a payload without them gets the defaults.
    """

    schema_name: ClassVar[str] = "session"
    title: ClassVar[str] = (
        "gym/<station>/session: activity state and session figures (retained, QoS 1)"
    )

    name: str | None = spec("", nullable=False)
    state: ActivityState | None = spec(None, nullable=False)
    active: bool | None = spec(False, nullable=False)
    started_ts: float | None = spec(None, minimum=0)
    ended_ts: float | None = spec(None, minimum=0)
    set_count: int | None = spec(0, nullable=False, minimum=0)
    rep_count: int | None = spec(0, nullable=False, minimum=0)
    last_set_end_ts: float | None = spec(None, minimum=0)
    baseline_mg: float | None = spec(None, minimum=0)
    ratio: float | None = spec(None, minimum=0)
    recovery_s: float | None = spec(None, minimum=0)
    fatigue_trend: float | None = None
    thresholds: Grades = spec(DEFAULT_GRADES, doc="the tremor grades this station applies")


@dataclass(frozen=True, kw_only=True)
class Hydration(FromStation):
    """Scale-derived figures (``hydration``, retained, QoS 1)."""

    schema_name: ClassVar[str] = "hydration"
    title: ClassVar[str] = "gym/<station>/hydration: scale-derived figures (retained, QoS 1)"

    mode: HydrationMode | None = spec(None, nullable=False)
    mass_g: float | None = None
    intake_ml: float | None = None
    intake_ml_per_h: float | None = None
    pre_mass_g: float | None = None
    post_mass_g: float | None = None
    body_mass_loss_pct: float | None = None
    sweat_rate_l_per_h: float | None = None


@dataclass(frozen=True, kw_only=True)
class AlertEvent(FromStation):
    """One alert event (``alert``, QoS 1, never lost); also each entry of ``alerts/active``.

    A reader needs ``id``, ``code``, ``level`` and ``message``; ``state`` left
    out reads as raised.
    ``by`` (who acknowledged it) and ``acked_ts`` are written on acknowledged
    events only; an urgent alert acknowledged while its condition holds sounds
    again at ``silenced_until_ts`` as a new alert that ``follows`` the old id.
    Delivery is at least once: readers drop duplicates by (``id``, ``state``).
    """

    schema_name: ClassVar[str] = "alert"
    title: ClassVar[str] = (
        "gym/<station>/alert: one alert event (QoS 1); also each entry of alerts/active"
    )
    description: ClassVar[str] = "Delivery is at least once: drop duplicates by (id, state)."

    id: str = spec(min_length=1)
    code: str = spec(min_length=1)
    level: AlertLevel
    state: AlertState = AlertState.RAISED
    red_flag: bool = False
    sensor: str | None = None
    message: str
    advice: str = ""
    evidence: Mapping[str, Any] = spec(factory=dict)
    raised_ts: float | None = spec(None, nullable=False, minimum=0)
    by: str | None = spec(
        None,
        optional=True,
        min_length=1,
        doc="who acknowledged it (e.g. display); only on acknowledged events",
    )
    acked_ts: float | None = spec(
        None, optional=True, minimum=0, doc="when it was acknowledged; only on acknowledged events"
    )
    silenced_until_ts: float | None = spec(
        None,
        optional=True,
        minimum=0,
        doc="an acknowledged urgent alert sounds again then if its condition still holds",
    )
    follows: str | None = spec(
        None,
        optional=True,
        min_length=1,
        doc="the id of the acknowledged alert this one raises again",
    )

    def payload(self) -> dict[str, Any]:
        """The event as the JSON object published on ``alert`` (:meth:`to_dict`): what the
        station's journal and its saved alert state keep."""
        return self.to_dict()


@dataclass(frozen=True, kw_only=True)
class ActiveAlerts(FromStation):
    """Every alert not yet cleared or acknowledged (``alerts/active``, retained, QoS 1)."""

    schema_name: ClassVar[str] = "alerts_active"
    title: ClassVar[str] = (
        "gym/<station>/alerts/active: alerts not yet cleared or acknowledged (retained, QoS 1)"
    )

    alerts: tuple[AlertEvent, ...]
    acknowledged: tuple[AlertEvent, ...] = spec(
        (),
        doc="acknowledged urgent alerts whose condition still holds: silenced until "
        "their silenced_until_ts, then raised again",
    )


@dataclass(frozen=True, kw_only=True)
class CommandResult(FromStation):
    """The reply on ``cmd/<name>/result`` to one command: ``error`` is null exactly when ``ok``."""

    schema_name: ClassVar[str] = "cmd_result"
    title: ClassVar[str] = "gym/<station>/cmd/<name>/result: the reply to one command"
    schema_extra: ClassVar[dict[str, Any]] = {
        "if": {"properties": {"ok": {"const": False}}},
        "then": {"properties": {"error": {"type": "string"}}},
        "else": {"properties": {"error": {"type": "null"}}},
    }

    ok: bool
    error: str | None = None
    request_id: str | None = None

    def _check(self) -> None:
        if self.ok and self.error is not None:
            raise _Invalid("error must be null when ok is true")
        if not self.ok and self.error is None:
            raise _Invalid("error must say what was wrong when ok is false")
