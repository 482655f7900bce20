"""What the store reads off the wire, checked before anything is written.

The message format itself belongs to ``monitor.mqtt`` (PAYLOADS.md and the
contract for athletes); these functions only take what the store keeps from
each payload and refuse a payload that would store nonsense. A refused
message is logged and acknowledged (it would be refused again on every
redelivery), never allowed to stop the ingest.

Unknown keys are ignored, as PAYLOADS.md asks of every consumer.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from ..errors import MonitorError

#: An athlete id: one safe topic level (the contract's charset).
ATHLETE_ID = re.compile(r"[a-z0-9_-]{1,64}")
MAX_PAYLOAD = 1 << 20


class BadMessage(MonitorError, ValueError):
    """A payload the store will not keep; the text says why."""


def valid_athlete(value: Any) -> str:
    if not isinstance(value, str) or not ATHLETE_ID.fullmatch(value):
        raise BadMessage(f"athlete id {value!r} is not 1-64 of a-z, 0-9, '_' and '-'")
    return value


def decode(payload: bytes) -> dict[str, Any]:
    """The JSON object in ``payload``, version 1."""
    if len(payload) > MAX_PAYLOAD:
        raise BadMessage(f"payload of {len(payload)} bytes is too large")
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadMessage(f"not JSON: {err}") from None
    if not isinstance(data, dict):
        raise BadMessage("not a JSON object")
    if data.get("v") != 1:
        raise BadMessage(f"unknown schema version {data.get('v')!r}")
    return data


class _Fields:
    """Typed reads from one JSON object; errors name the key."""

    def __init__(self, data: Any, where: str):
        if not isinstance(data, dict):
            raise BadMessage(f"{where} is not an object")
        self.data, self.where = data, where

    def _get(self, key: str, required: bool) -> Any:
        if key not in self.data or self.data[key] is None:
            if required:
                raise BadMessage(f"{self.where}.{key} is missing")
            return None
        return self.data[key]

    def num(self, key: str, required: bool = False) -> float | None:
        value = self._get(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise BadMessage(f"{self.where}.{key} is not a finite number: {value!r}")
        return float(value)

    def int(self, key: str, required: bool = False) -> int | None:
        value = self.num(key, required)
        return None if value is None else int(value)

    def str(self, key: str, required: bool = False, max_len: int = 128) -> str | None:
        value = self._get(key, required)
        if value is None:
            return None
        if not isinstance(value, str) or len(value) > max_len:
            raise BadMessage(f"{self.where}.{key} is not a string of at most {max_len}: {value!r}")
        return value

    def bool(self, key: str) -> bool:
        return self._get(key, False) is True

    def list(self, key: str) -> list[Any]:
        value = self._get(key, False)
        if value is None:
            return []
        if not isinstance(value, list):
            raise BadMessage(f"{self.where}.{key} is not a list")
        return value

    def obj(self, key: str) -> dict[str, Any] | None:
        value = self._get(key, False)
        if value is not None and not isinstance(value, dict):
            raise BadMessage(f"{self.where}.{key} is not an object")
        return value


def _station(f: _Fields, station: str) -> str:
    named = f.str("station")
    if named is not None and named != station:
        raise BadMessage(f"payload names station {named!r} but came on {station!r}'s topic")
    return station


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
    """Check a ``session_record`` (contract: ATHLETES) and every set, hold, alert in it."""
    data = decode(payload)
    f = _Fields(data, "session_record")
    _station(f, station)
    if "athlete" not in data or not isinstance(data.get("sets"), list):
        raise BadMessage("session_record must have an athlete key and a sets list")
    athlete = data["athlete"]
    if athlete is not None:
        valid_athlete(athlete)
    started, ended = f.num("started_ts", True), f.num("ended_ts", True)
    if ended < started:
        raise BadMessage("session_record ends before it starts")
    for i, item in enumerate(f.list("sets")):
        s = _Fields(item, f"sets[{i}]")
        s.int("index", True), s.num("start_ts", True), s.num("end_ts", True)
        s.str("kind"), s.str("sensor"), s.str("placement"), s.int("reps")
        for key in ("ratio_median", "ratio_peak", "growth_per_min", "recovery_s"):
            s.num(key)
    for i, item in enumerate(f.list("holds")):
        h = _Fields(item, f"holds[{i}]")
        h.int("index", True), h.num("start_ts", True), h.num("end_ts", True), h.str("sensor")
        for key in ("duration_s", "ratio_peak", "fatigue_ratio_peak"):
            h.num(key)
    for i, item in enumerate(f.list("alerts")):
        a = _Fields(item, f"alerts[{i}]")
        a.str("id", True), a.str("code", True), a.str("level", True), a.str("by")
        for key in ("raised_ts", "cleared_ts", "acknowledged_ts"):
            a.num(key)
    hyd = f.obj("hydration")
    if hyd is not None:
        h = _Fields(hyd, "hydration")
        for key in ("intake_ml", "sweat_rate_l_per_h", "body_mass_loss_pct"):
            h.num(key)
        for i, item in enumerate(h.list("weigh_ins")):
            w = _Fields(item, f"hydration.weigh_ins[{i}]")
            w.str("phase", True), w.num("mass_g", True), w.num("ts", True)
    for i, item in enumerate(f.list("trace")):
        t = _Fields(item, f"trace[{i}]")
        t.num("ts", True), t.str("sensor", True), t.str("state")
        for key in ("ratio_p50", "ratio_max", "rms_mg_p50"):
            t.num(key)
    update = f.obj("profile_update")
    if update is not None:
        u = _Fields(update, "profile_update")
        baselines = u.obj("baselines_mg") or {}
        _Fields(baselines, "profile_update.baselines_mg")
        for key in baselines:
            _Fields(baselines, "profile_update.baselines_mg").num(key)
        u.num("body_mass_g")
    record_id = f.str("id", True)
    return SessionRecord(record_id, station, athlete, f.bool("guest"), started, ended, data)


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
    f = _Fields(decode(payload), "alert")
    _station(f, station)
    state = f.str("state", True)
    if state not in ALERT_STATES:
        raise BadMessage(f"alert.state {state!r} is not one of {', '.join(ALERT_STATES)}")
    return AlertEvent(f.str("id", True), station, state, f.num("ts", True), f.str("code", True),
                      f.str("level", True), f.bool("red_flag"), f.str("sensor"),
                      f.str("message", max_len=2000), f.num("raised_ts"), f.str("by"))


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
    data = decode(payload)
    f = _Fields(data, "athlete")
    _station(f, station)
    athlete = data.get("athlete")
    if athlete is not None:
        valid_athlete(athlete)
    return Presence(station, f.num("ts", True), athlete, f.bool("guest"), f.num("since_ts"),
                    f.str("source", max_len=16))


HYDRATION_FIELDS = ("mass_g", "intake_ml", "pre_mass_g", "post_mass_g", "body_mass_loss_pct",
                    "sweat_rate_l_per_h")


@dataclass(frozen=True)
class HydrationSample:
    station: str
    ts: float
    mode: str | None
    values: tuple[float | None, ...]   # HYDRATION_FIELDS, in order

    def same_reading(self, other: HydrationSample | None) -> bool:
        """Equal figures: the periodic re-publication of an unchanged state."""
        return other is not None and (self.mode, self.values) == (other.mode, other.values)


def hydration_sample(station: str, payload: bytes) -> HydrationSample:
    f = _Fields(decode(payload), "hydration")
    _station(f, station)
    return HydrationSample(station, f.num("ts", True), f.str("mode", max_len=16),
                           tuple(f.num(k) for k in HYDRATION_FIELDS))


@dataclass(frozen=True)
class TremorSample:
    station: str
    sensor: str
    ts: float
    ratio: float | None
    rms_mg: float | None
    level: str | None


def tremor_sample(station: str, payload: bytes) -> TremorSample:
    f = _Fields(decode(payload), "tremor")
    _station(f, station)
    return TremorSample(station, f.str("sensor", True, max_len=64), f.num("ts", True),
                        f.num("ratio"), f.num("rms_mg"), f.str("level", max_len=16))
