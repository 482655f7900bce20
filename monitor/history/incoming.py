"""What the store reads off the wire, checked before anything is written.

The message format belongs to :mod:`monitor.mqtt.messages` (one class per
payload, which checks every field); these functions read each payload with
its class and keep what the store needs from it, refusing a payload that
would store nonsense. A refused message is logged and acknowledged (it would
be refused again on every redelivery), never allowed to stop the ingest.

Unknown keys are ignored, as PAYLOADS.md asks of every consumer.
"""

from __future__ import annotations

import json
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


def _stamped(ts: float | None) -> float:
    """A read message's ``ts``: optional in the class only because it is stamped when sent
    (reading refuses a null one), so a None here is a message that was never checked."""
    if ts is None:
        raise BadMessage("'ts' is missing")
    return ts


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
        _stamped(m.ts),
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
        _stamped(m.ts),
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
        _stamped(m.ts),
        m.mode.value if m.mode is not None else None,
        tuple(getattr(m, k) for k in HYDRATION_FIELDS),
    )


# --------------------------------------------------------------------------- the live trace
#
# The 2 Hz ``tremor`` feed and Home Assistant's ``ha/sensor/<imu>`` summaries are only
# folded into one row per sensor and minute, so they are not read with the format's
# classes (a full check of every field of a 2 Hz message costs ~0.2 ms, the store's
# largest cost under a busy floor). They are still never trusted: the payload is
# bounded, NaN and Infinity are refused, and each figure the trace keeps is checked
# for type and range; every other key is left unread.

#: Bigger than any tremor message or summary a station sends (about 300 bytes).
LIVE_MAX_BYTES = 4096
#: A sensor name fits the trace's column and is printable.
SENSOR_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,64}")
#: No figure of the trace is anywhere near this (ratios are ~1-10, RMS tens of mg).
LIVE_MAX_VALUE = 1e6
#: Unix times as the format allows them (from 0), up to the year 2286.
TS_MAX = 1e10


@dataclass(frozen=True)
class TremorSample:
    """What the per-minute trace takes from one live reading of one sensor.

    A tremor message is one window (``windows`` 1, ``ratio_max`` its own ratio);
    a Home Assistant summary is the median of ``windows`` windows and their peak.
    """

    station: str
    sensor: str
    ts: float
    ratio: float | None
    rms_mg: float | None
    ratio_max: float | None = None
    windows: int = 1


def _refuse_constant(token: str) -> Any:
    raise BadMessage(f"{token} is not valid JSON")


def _live_json(kind: str, station: str, payload: bytes) -> dict[str, Any]:
    if len(payload) > LIVE_MAX_BYTES:
        raise BadMessage(f"{kind}: payload is {len(payload)} bytes; the limit is {LIVE_MAX_BYTES}")
    try:
        data = json.loads(payload, parse_constant=_refuse_constant)
    except BadMessage as err:
        raise BadMessage(f"{kind}: {err}") from None
    except (ValueError, RecursionError) as err:  # bad JSON or UTF-8, too deep, huge integer
        raise BadMessage(f"{kind}: payload is not JSON: {str(err)[:80]}") from None
    if type(data) is not dict:
        raise BadMessage(f"{kind}: payload must be a JSON object")
    if data.get("v") != 1 or type(data.get("v")) is not int:
        raise BadMessage(f"{kind}: 'v' must be 1")
    named = data.get("station")
    if named is not None and named != station:
        raise BadMessage(f"{kind}: names station {named!r} but came on {station!r}'s topic")
    return data


def _figure(data: dict[str, Any], key: str, kind: str) -> float | None:
    x = data.get(key)
    if x is None:
        return None
    if type(x) not in (float, int) or not 0 <= x <= LIVE_MAX_VALUE:  # NaN fails this too
        raise BadMessage(f"{kind}: {key!r} must be a number from 0 to {LIVE_MAX_VALUE:g}")
    return float(x)


def _live(kind: str, station: str, payload: bytes) -> tuple[dict[str, Any], str, float]:
    data = _live_json(kind, station, payload)
    sensor, ts = data.get("sensor"), data.get("ts")
    if type(sensor) is not str or not SENSOR_NAME.fullmatch(sensor):
        raise BadMessage(f"{kind}: 'sensor' must be 1-64 printable characters")
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not 0 <= ts <= TS_MAX:
        raise BadMessage(f"{kind}: 'ts' must be a Unix time in seconds")
    return data, sensor, float(ts)


def tremor_sample(station: str, payload: bytes) -> TremorSample:
    """One ``tremor`` message, read for the trace only (see the note above)."""
    data, sensor, ts = _live("tremor", station, payload)
    ratio = _figure(data, "ratio", "tremor")
    return TremorSample(station, sensor, ts, ratio, _figure(data, "rms_mg", "tremor"), ratio)


def sensor_summary(station: str, payload: bytes) -> TremorSample:
    """One Home Assistant summary (``ha/sensor/<imu>``), read for the trace only."""
    data, sensor, ts = _live("ha_sensor", station, payload)
    windows = data.get("windows", 0)
    if type(windows) is not int or not 0 <= windows <= 100_000:
        raise BadMessage("ha_sensor: 'windows' must be a whole number from 0 to 100000")
    return TremorSample(
        station,
        sensor,
        ts,
        _figure(data, "ratio", "ha_sensor"),
        _figure(data, "rms_mg", "ha_sensor"),
        _figure(data, "ratio_max", "ha_sensor"),
        windows,
    )
