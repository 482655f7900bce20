"""Reading what stations publish: every payload the display accepts, parsed in one place.

Anything that arrives from outside is distrusted: a payload that is not JSON,
has a field of the wrong type, an unknown level, a non-finite number, or is
simply too big raises :class:`BadPayload` naming what was wrong, and the
caller logs it and moves on. The values are frozen dataclasses with a
``view()`` that turns them into plain JSON for the page::

    fields = decode_json(b'{"v": 1, "id": "a1", "level": "urgent"}', "alert")
    alert = parse_alert(fields)                 # AlertInfo(id="a1", level="urgent", ...)
    alert.kind                                  # "physiology" (a sensor fault is "equipment")

The contract lives in ``monitor/mqtt/PAYLOADS.md``; version 1 may gain keys,
so keys this module does not know are ignored.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import MonitorError

TREMOR_LEVELS = ("none", "normal", "elevated", "high")
ALERT_LEVELS = ("info", "caution", "warning", "urgent")
ALERT_STATES = ("raised", "cleared", "acknowledged")
HYDRATION_MODES = ("bottle", "body")
CHECKIN_SOURCES = ("tag", "button", "command")
PROFILE_STATES = ("applied", "fresh", "pending")
#: An athlete id: one topic level, pseudonymous (monitor/mqtt/messages/values.py: ATHLETE_PATTERN).
ATHLETE_ID = re.compile(r"[a-z0-9_-]{1,64}")
# Alerts about the equipment, not the athlete: shown in their own colour and words.
EQUIPMENT_CODE_PREFIXES = ("sensor.",)

MAX_PAYLOAD_BYTES = 64 * 1024

LEVEL_RANK = {name: rank for rank, name in enumerate(TREMOR_LEVELS)}
ALERT_RANK = {name: rank for rank, name in enumerate(ALERT_LEVELS)}


class BadPayload(MonitorError, ValueError):
    """A message the board refuses: what was wrong, for the log line."""


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class TremorReading:
    """The latest tremor figures of one sensor (one ``tremor`` message)."""

    sensor: str
    placement: str | None
    exercised: bool | None
    level: str
    rms_mg: float | None
    peak_hz: float | None
    ratio: float | None
    measurable: bool
    moving: bool
    ts: float | None
    received: float  # board clock (monotonic), to judge which sensors are current

    def view(self) -> dict[str, Any]:
        return {
            "sensor": self.sensor,
            "placement": self.placement,
            "exercised": self.exercised,
            "level": self.level,
            "rms_mg": self.rms_mg,
            "peak_hz": self.peak_hz,
            "ratio": self.ratio,
            "measurable": self.measurable,
            "moving": self.moving,
            "ts": self.ts,
        }


@dataclass(frozen=True)
class SessionInfo:
    """Activity state and session figures (the retained ``session`` message)."""

    name: str | None
    state: str | None
    active: bool | None
    set_count: int | None
    rep_count: int | None
    started_ts: float | None
    ended_ts: float | None
    last_set_end_ts: float | None
    baseline_mg: float | None
    ratio: float | None
    recovery_s: float | None
    fatigue_trend: float | None
    ts: float | None

    def view(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class HydrationInfo:
    """Scale-derived figures (the retained ``hydration`` message)."""

    mode: str | None
    mass_g: float | None
    intake_ml: float | None
    intake_ml_per_h: float | None
    body_mass_loss_pct: float | None
    sweat_rate_l_per_h: float | None
    ts: float | None

    def view(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class AlertInfo:
    """One alert, as an ``alert`` event or an entry of ``alerts/active``.

    ``by`` is who acknowledged it (on ``acknowledged`` events only).
    """

    id: str
    code: str
    level: str
    state: str
    red_flag: bool
    sensor: str | None
    message: str
    advice: str
    raised_ts: float | None
    ts: float | None
    by: str | None = None

    @property
    def rank(self) -> int:
        return ALERT_RANK[self.level]

    @property
    def kind(self) -> str:
        """``equipment`` for the station's own faults, ``physiology`` for the athlete."""
        return "equipment" if self.code.startswith(EQUIPMENT_CODE_PREFIXES) else "physiology"

    def view(self, **extra: Any) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["kind"] = self.kind
        out.update(extra)
        return out


@dataclass(frozen=True)
class CheckInInfo:
    """Who is checked in at a station (the retained ``athlete`` message). ``athlete`` is a
    pseudonymous id, None for a guest; the wall shows the name from the athlete's card."""

    athlete: str | None
    guest: bool
    since_ts: float | None
    source: str | None
    profile: str | None

    @property
    def nobody(self) -> bool:
        return self.athlete is None and not self.guest


@dataclass(frozen=True)
class AckResult:
    """A station's reply on ``cmd/ack/result``."""

    ok: bool
    error: str | None
    request_id: str | None


# --------------------------------------------------------------------------- parsing


class Fields:
    """Typed reads from one JSON object; a wrong type raises :class:`BadPayload`.

    Missing keys and JSON ``null`` both read as ``None`` (the contract's
    ``|null``), so only a value that is present *and* wrong is refused.
    """

    def __init__(self, obj: Any, where: str):
        if not isinstance(obj, dict):
            raise BadPayload(f"{where}: expected a JSON object")
        self.obj = obj
        self.where = where

    def _bad(self, key: str, want: str) -> BadPayload:
        return BadPayload(f"{self.where}: {key!r} should be {want}, got {self.obj[key]!r:.40}")

    def num(self, key: str) -> float | None:
        value = self.obj.get(key)
        if value is None:
            return None
        # bool is an int in Python; true/false as a number is a sender bug.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._bad(key, "a number or null")
        try:
            value = float(value)
        except OverflowError:  # an integer too big for a float: 1 followed by 400 zeros
            raise self._bad(key, "a finite number") from None
        if not math.isfinite(value):
            raise self._bad(key, "a finite number")
        return value

    def count(self, key: str) -> int | None:
        value = self.num(key)
        if value is None:
            return None
        if value < 0 or value != int(value):
            raise self._bad(key, "a whole number >= 0")
        return int(value)

    def text(self, key: str, limit: int, *, required: bool = False) -> str | None:
        value = self.obj.get(key)
        if value is None:
            if required:
                raise BadPayload(f"{self.where}: {key!r} is missing")
            return None
        if not isinstance(value, str):
            raise self._bad(key, "a string")
        # Truncate rather than refuse: a long advice text is still worth showing.
        return value if len(value) <= limit else value[: limit - 1] + "\u2026"

    def flag(self, key: str) -> bool | None:
        value = self.obj.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self._bad(key, "true or false")
        return value

    def choice(self, key: str, options: Iterable[str], *, required: bool = True) -> str | None:
        value = self.obj.get(key)
        if value is None and not required:
            return None
        if value not in options:
            raise BadPayload(
                f"{self.where}: {key!r} should be one of {'/'.join(options)}, got {value!r:.40}"
            )
        return value

    def version(self) -> None:
        v = self.obj.get("v")
        # Newer schema versions only add fields ("extend rather than rename"), so
        # anything >= 1 is read with the fields this board knows.
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise BadPayload(f"{self.where}: 'v' should be a schema version >= 1, got {v!r:.20}")


def _reject_constant(name: str) -> float:
    raise BadPayload(f"non-finite number {name} in JSON")


def decode_json(payload: bytes, where: str) -> Fields:
    """Parse a payload into typed fields, refusing anything oversized or odd."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise BadPayload(f"{where}: {len(payload)} bytes is over the {MAX_PAYLOAD_BYTES} limit")
    try:
        obj = json.loads(payload, parse_constant=_reject_constant)
    except BadPayload:
        raise
    except (ValueError, RecursionError) as err:  # includes JSON and UTF-8 decode errors
        raise BadPayload(f"{where}: not JSON ({type(err).__name__})") from None
    fields = Fields(obj, where)
    fields.version()
    return fields


def parse_status(payload: bytes) -> str | None:
    """``online`` / ``offline``; None for an empty (deleted) retained message."""
    text = payload.decode("utf-8", "replace").strip().strip('"').lower()
    if text not in ("online", "offline", ""):
        raise BadPayload(f"status should be online/offline, got {text!r:.20}")
    return text or None


def parse_tremor(f: Fields, received: float) -> TremorReading:
    level = f.choice("level", TREMOR_LEVELS)
    measurable = f.flag("measurable")
    return TremorReading(
        sensor=f.text("sensor", 32) or "sensor",
        placement=f.text("placement", 32),
        exercised=f.flag("exercised"),
        level=level,
        rms_mg=f.num("rms_mg"),
        peak_hz=f.num("peak_hz"),
        ratio=f.num("ratio"),
        measurable=(level != "none") if measurable is None else measurable,
        moving=bool(f.flag("moving")),
        ts=f.num("ts"),
        received=received,
    )


def parse_session(f: Fields) -> SessionInfo:
    return SessionInfo(
        name=f.text("name", 48),
        state=f.text("state", 24),
        active=f.flag("active"),
        set_count=f.count("set_count"),
        rep_count=f.count("rep_count"),
        started_ts=f.num("started_ts"),
        ended_ts=f.num("ended_ts"),
        last_set_end_ts=f.num("last_set_end_ts"),
        baseline_mg=f.num("baseline_mg"),
        ratio=f.num("ratio"),
        recovery_s=f.num("recovery_s"),
        fatigue_trend=f.num("fatigue_trend"),
        ts=f.num("ts"),
    )


def parse_hydration(f: Fields) -> HydrationInfo:
    return HydrationInfo(
        mode=f.choice("mode", HYDRATION_MODES, required=False),
        mass_g=f.num("mass_g"),
        intake_ml=f.num("intake_ml"),
        intake_ml_per_h=f.num("intake_ml_per_h"),
        body_mass_loss_pct=f.num("body_mass_loss_pct"),
        sweat_rate_l_per_h=f.num("sweat_rate_l_per_h"),
        ts=f.num("ts"),
    )


def parse_alert(f: Fields) -> AlertInfo:
    return AlertInfo(
        id=f.text("id", 128, required=True) or "",
        code=f.text("code", 64) or "",
        level=f.choice("level", ALERT_LEVELS),
        state=f.choice("state", ALERT_STATES, required=False) or "raised",
        red_flag=bool(f.flag("red_flag")),
        sensor=f.text("sensor", 32),
        message=f.text("message", 300) or "",
        advice=f.text("advice", 600) or "",
        raised_ts=f.num("raised_ts"),
        ts=f.num("ts"),
        by=f.text("by", 64),
    )


def parse_checkin(f: Fields) -> CheckInInfo:
    athlete = f.text("athlete", 64)
    if athlete is not None and not ATHLETE_ID.fullmatch(athlete):
        raise BadPayload(f"{f.where}: 'athlete' is not an athlete id")
    return CheckInInfo(
        athlete=athlete,
        guest=bool(f.flag("guest")),
        since_ts=f.num("since_ts"),
        source=f.choice("source", CHECKIN_SOURCES, required=False),
        profile=f.choice("profile", PROFILE_STATES, required=False),
    )


def parse_card(f: Fields, athlete: str) -> str:
    """The display name of a ``card`` published for ``athlete``."""
    if f.text("athlete", 64) != athlete:
        raise BadPayload(f"{f.where}: 'athlete' does not match the topic")
    name = (f.text("display_name", 64, required=True) or "").strip()
    if not name or not name.isprintable():
        raise BadPayload(f"{f.where}: 'display_name' should be printable text")
    return name


def parse_active(f: Fields) -> list[Any]:
    """The raw entries of an ``alerts/active`` list (each parsed on its own by the caller)."""
    entries = f.obj.get("alerts")
    if not isinstance(entries, list):
        raise BadPayload("alerts/active: 'alerts' should be a list")
    return entries


def parse_ack_result(payload: bytes) -> AckResult:
    f = decode_json(payload, "cmd/ack/result")
    ok = f.flag("ok")
    if ok is None:
        raise BadPayload("cmd/ack/result: 'ok' is missing")
    return AckResult(ok=ok, error=f.text("error", 200), request_id=f.text("request_id", 64))


def session_command(action: str, athlete: str | None, request_id: str) -> bytes:
    """The payload of ``cmd/session`` a display sends: check ``athlete`` in ("start"), or out."""
    body: dict[str, Any] = {"v": 1, "action": action, "request_id": request_id}
    if athlete is not None:
        body["athlete"] = athlete
    return json.dumps(body, separators=(",", ":")).encode()


def ack_command(alert_id: str, by: str, request_id: str) -> bytes:
    """The payload of ``cmd/ack`` (the display writes this and ``cmd/session``)."""
    return json.dumps(
        {"v": 1, "id": alert_id, "by": by, "request_id": request_id}, separators=(",", ":")
    ).encode()
