"""What the store reads off the wire, checked before anything is written.

The message format belongs to :mod:`monitor.mqtt.messages` (one class per
payload, which checks every field); these functions read each payload with
its class and keep what the store needs from it, refusing a payload that
would store nonsense. A refused message is logged and acknowledged (it would
be refused again on every redelivery), never allowed to stop the ingest.

Unknown keys are ignored, as PAYLOADS.md asks of every consumer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import MonitorError
from ..mqtt import messages
from ..mqtt.messages import MessageError
from ..mqtt.messages.values import ATHLETE_PATTERN

#: An athlete id: one safe topic level (the format's own rule).
ATHLETE_ID = re.compile(ATHLETE_PATTERN)
M = TypeVar("M", bound=messages.Message)


class BadMessage(MonitorError, ValueError):
    """A payload the store will not keep; the text says why."""


def _read(kind: type[M], station: str, payload: bytes) -> M:
    """``payload`` read as ``kind`` (the format's own class), sent by ``station``."""
    try:
        msg = kind.from_json(payload)
    except MessageError as err:
        raise BadMessage(str(err)) from None
    named = getattr(msg, "station", None)
    if named is not None and named != station:
        raise BadMessage(
            f"{kind.schema_name}: names station {named!r} but came on {station!r}'s topic"
        )
    return msg


@dataclass(frozen=True)
class SessionRecord:
    """A session record as the store keeps it: the checked object plus its summary figures."""

    id: str
    station: str
    athlete: str | None
    guest: bool
    started_ts: float
    ended_ts: float
    record: dict[str, Any]


def session_record(station: str, payload: bytes) -> SessionRecord:
    """Check a ``session_record`` (every set, hold, alert and trace entry in it)."""
    msg = _read(messages.SessionRecord, station, payload)
    if msg.ended_ts < msg.started_ts:
        raise BadMessage("session_record: ends before it starts")
    return SessionRecord(
        msg.id, station, msg.athlete, msg.guest, msg.started_ts, msg.ended_ts, msg.to_dict()
    )


@dataclass(frozen=True)
class AlertEvent:
    id: str
    station: str
    state: str
    ts: float
    code: str
    level: str
    red_flag: bool
    sensor: str | None
    message: str | None
    raised_ts: float | None
    by: str | None


ALERT_STATES = ("raised", "cleared", "acknowledged")


def alert_event(station: str, payload: bytes) -> AlertEvent:
    m = _read(messages.AlertEvent, station, payload)
    return AlertEvent(
        m.id,
        station,
        m.state.value,
        m.ts,
        m.code,
        m.level.value,
        m.red_flag,
        m.sensor,
        m.message,
        m.raised_ts,
        m.by,
    )


@dataclass(frozen=True)
class Presence:
    """Who is checked in at a station now (the retained ``athlete`` topic)."""

    station: str
    ts: float
    athlete: str | None
    guest: bool
    since_ts: float | None
    source: str | None


def presence(station: str, payload: bytes) -> Presence:
    m = _read(messages.CheckIn, station, payload)
    return Presence(
        station,
        m.ts,
        m.athlete,
        m.guest,
        m.since_ts,
        m.source.value if m.source is not None else None,
    )


HYDRATION_FIELDS = (
    "mass_g",
    "intake_ml",
    "pre_mass_g",
    "post_mass_g",
    "body_mass_loss_pct",
    "sweat_rate_l_per_h",
)


@dataclass(frozen=True)
class HydrationSample:
    station: str
    ts: float
    mode: str | None
    values: tuple[float | None, ...]  # HYDRATION_FIELDS, in order

    def same_reading(self, other: HydrationSample | None) -> bool:
        """Equal figures: the periodic re-publication of an unchanged state."""
        return other is not None and (self.mode, self.values) == (other.mode, other.values)


def hydration_sample(station: str, payload: bytes) -> HydrationSample:
    m = _read(messages.Hydration, station, payload)
    return HydrationSample(
        station,
        m.ts,
        m.mode.value if m.mode is not None else None,
        tuple(getattr(m, k) for k in HYDRATION_FIELDS),
    )


@dataclass(frozen=True)
class TremorSample:
    station: str
    sensor: str
    ts: float
    ratio: float | None
    rms_mg: float | None
    level: str | None


def tremor_sample(station: str, payload: bytes) -> TremorSample:
    m = _read(messages.Tremor, station, payload)
    return TremorSample(station, m.sensor, m.ts, m.ratio, m.rms_mg, m.level.value)
