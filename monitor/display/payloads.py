"""What the wall keeps of each message a station publishes, read through the message format.

Every payload is parsed by its class in :mod:`monitor.mqtt.messages`
(``from_json``: the one strict reader, its enums and its limits); anything
that is not right raises :class:`BadPayload` naming what was wrong, and the
caller logs it and moves on. What the board keeps is smaller than what
arrives: texts are clipped to what a tile shows, and what the wall never
shows (alert evidence, frequency bands) is left behind, so memory stays
bounded however large the payloads. The records are frozen dataclasses
with a ``view()`` that turns them into plain JSON for the page::

    alert = parse_alert(b'{"v": 1, "id": "a1", "code": "fall", "level": "urgent",'
                        b' "message": "Possible fall"}')
    alert.level                                 # AlertLevel.URGENT
    alert.kind                                  # "physiology" (a sensor fault is "equipment")

The contract lives in ``monitor/mqtt/PAYLOADS.md``; version 1 may gain keys,
which the reader ignores.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from ..errors import MonitorError
from ..grades import TremorLevel
from ..mqtt.messages import (
    MAX_BYTES,
    ActiveAlerts,
    ActivityState,
    AlertEvent,
    AlertLevel,
    AlertState,
    Card,
    CheckIn,
    CheckinSource,
    CommandResult,
    Grades,
    Hydration,
    HydrationMode,
    Message,
    MessageError,
    ProfileState,
    SessionReport,
    Tremor,
)
from ..mqtt.messages.codec import _Invalid, decode
from ..mqtt.messages.values import ATHLETE_PATTERN

#: An athlete id: one topic level, pseudonymous (the message format's rule).
ATHLETE_ID = re.compile(ATHLETE_PATTERN)
# Alerts about the equipment, not the athlete: shown in their own colour and words.
EQUIPMENT_CODE_PREFIXES = ("sensor.",)

MAX_PAYLOAD_BYTES = MAX_BYTES
_ACTIVITY_STATES = frozenset(ActivityState)


class BadPayload(MonitorError, ValueError):
    """A message the board refuses: what was wrong, for the log line."""


M = TypeVar("M", bound=Message)


def _decode(cls: type[Message], payload: bytes) -> dict[str, Any]:
    """The JSON object of a payload, by the message format's one strict decoder.

    The topic names the station, never the payload: its ``station`` key is not
    read (a tile shows what arrived on the station's topics, whatever it says).
    """
    try:
        obj = decode(payload, cls.max_bytes)
    except _Invalid as err:
        raise BadPayload(f"{cls.schema_name}: {err}") from None
    obj.pop("station", None)
    return obj


def _build(cls: type[M], obj: dict[str, Any]) -> M:
    try:
        return cls.from_dict(obj)
    except MessageError as err:
        raise BadPayload(str(err)) from None


def _read(cls: type[M], payload: bytes) -> M:
    return _build(cls, _decode(cls, payload))


def clip(text: str | None, limit: int) -> str | None:
    """``text`` cut to ``limit`` characters (the last one an ellipsis): a tile shows no more."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "\u2026"


def _plain(record: Any) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in fields(record)}


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class TremorReading:
    """The latest tremor figures of one sensor (one ``tremor`` message)."""

    sensor: str
    placement: str | None
    exercised: bool | None
    level: TremorLevel
    rms_mg: float | None
    peak_hz: float | None
    ratio: float | None
    measurable: bool
    moving: bool
    ts: float | None
    received: float  # board clock (monotonic), to judge which sensors are current

    def view(self) -> dict[str, Any]:
        out = _plain(self)
        del out["received"]
        return out


@dataclass(frozen=True)
class SessionInfo:
    """Activity state and session figures (the retained ``session`` message), and the
    tremor grades the station applies (the page draws its guides at them)."""

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
    thresholds: Grades

    def view(self) -> dict[str, Any]:
        out = _plain(self)
        out["thresholds"] = self.thresholds.to_dict()
        return out


@dataclass(frozen=True)
class HydrationInfo:
    """Scale-derived figures (the retained ``hydration`` message)."""

    mode: HydrationMode | None
    mass_g: float | None
    intake_ml: float | None
    intake_ml_per_h: float | None
    body_mass_loss_pct: float | None
    sweat_rate_l_per_h: float | None
    ts: float | None

    def view(self) -> dict[str, Any]:
        return _plain(self)


@dataclass(frozen=True)
class AlertInfo:
    """One alert, as an ``alert`` event or an entry of ``alerts/active``.

    ``by`` is who acknowledged it (on ``acknowledged`` events only).
    """

    id: str
    code: str
    level: AlertLevel
    state: AlertState
    red_flag: bool
    sensor: str | None
    message: str
    advice: str
    raised_ts: float | None
    ts: float | None
    by: str | None = None

    @property
    def rank(self) -> int:
        return self.level.rank

    @property
    def kind(self) -> str:
        """``equipment`` for the station's own faults, ``physiology`` for the athlete."""
        return "equipment" if self.code.startswith(EQUIPMENT_CODE_PREFIXES) else "physiology"

    def view(self, **extra: Any) -> dict[str, Any]:
        out = _plain(self)
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
    source: CheckinSource | None
    profile: ProfileState | None

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


def parse_status(payload: bytes) -> str | None:
    """``online`` / ``offline``; None for an empty (deleted) retained message."""
    text = payload.decode("utf-8", "replace").strip().strip('"').lower()
    if text not in ("online", "offline", ""):
        raise BadPayload(f"status should be online/offline, got {text!r:.20}")
    return text or None


def parse_tremor(payload: bytes, received: float) -> TremorReading:
    t = _read(Tremor, payload)
    return TremorReading(
        sensor=clip(t.sensor, 32) or "sensor",
        placement=t.placement,
        exercised=t.exercised,
        level=t.level,
        rms_mg=t.rms_mg,
        peak_hz=t.peak_hz,
        ratio=t.ratio,
        measurable=(t.level != TremorLevel.NONE) if t.measurable is None else t.measurable,
        moving=t.moving,
        ts=t.ts,
        received=received,
    )


def parse_session(payload: bytes) -> SessionInfo:
    """The session; an activity state this display does not know yet (a newer station's) is
    shown as the station wrote it rather than costing the whole message."""
    obj = _decode(SessionReport, payload)
    state = obj.get("state")
    if isinstance(state, str) and state not in _ACTIVITY_STATES:
        obj["state"] = None
    else:
        state = None
    s = _build(SessionReport, obj)
    return SessionInfo(
        name=clip(s.name, 48),
        state=s.state or clip(state, 24),
        active=s.active,
        set_count=s.set_count,
        rep_count=s.rep_count,
        started_ts=s.started_ts,
        ended_ts=s.ended_ts,
        last_set_end_ts=s.last_set_end_ts,
        baseline_mg=s.baseline_mg,
        ratio=s.ratio,
        recovery_s=s.recovery_s,
        fatigue_trend=s.fatigue_trend,
        ts=s.ts,
        thresholds=s.thresholds,
    )


def parse_hydration(payload: bytes) -> HydrationInfo:
    h = _read(Hydration, payload)
    return HydrationInfo(
        mode=h.mode,
        mass_g=h.mass_g,
        intake_ml=h.intake_ml,
        intake_ml_per_h=h.intake_ml_per_h,
        body_mass_loss_pct=h.body_mass_loss_pct,
        sweat_rate_l_per_h=h.sweat_rate_l_per_h,
        ts=h.ts,
    )


def _alert_info(a: AlertEvent) -> AlertInfo:
    return AlertInfo(
        id=clip(a.id, 128) or "",
        code=clip(a.code, 64) or "",
        level=a.level,
        state=a.state,
        red_flag=a.red_flag,
        sensor=clip(a.sensor, 32),
        message=clip(a.message, 300) or "",
        advice=clip(a.advice, 600) or "",
        raised_ts=a.raised_ts,
        ts=a.ts,
        by=clip(a.by, 64),
    )


def parse_alert(payload: bytes) -> AlertInfo:
    return _alert_info(_read(AlertEvent, payload))


def parse_active(payload: bytes) -> list[AlertInfo | BadPayload]:
    """Each entry of an ``alerts/active`` list, or what was wrong with it.

    The envelope must be right; then each entry is read on its own, so one bad
    entry does not hide the others.
    """
    obj = _decode(ActiveAlerts, payload)
    entries = obj.get("alerts")
    _build(ActiveAlerts, {**obj, "alerts": [], "acknowledged": []})
    if not isinstance(entries, list):
        raise BadPayload(f"{ActiveAlerts.schema_name}: alerts must be an array")
    out: list[AlertInfo | BadPayload] = []
    for i, entry in enumerate(entries):
        if isinstance(entry, dict):
            # Each entry is an alert event; those a station writes carry "v" as every one does.
            entry = {"v": obj["v"], **entry}
            entry.pop("station", None)
        try:
            out.append(_alert_info(AlertEvent.from_dict(entry)))
        except MessageError as err:
            out.append(BadPayload(f"alerts/active[{i}]: {err}"))
    return out


def parse_checkin(payload: bytes) -> CheckInInfo:
    c = _read(CheckIn, payload)
    return CheckInInfo(
        athlete=c.athlete,
        guest=c.guest,
        since_ts=c.since_ts,
        source=c.source,
        profile=c.profile,
    )


def parse_card(payload: bytes, athlete: str) -> str:
    """The display name of a ``card`` published for ``athlete``."""
    card = _read(Card, payload)
    if card.athlete != athlete:
        raise BadPayload("card: athlete does not match the topic")
    name = card.display_name.strip()
    if not name or not name.isprintable():
        raise BadPayload("card: display_name should be printable text")
    return name


def parse_ack_result(payload: bytes) -> AckResult:
    r = _read(CommandResult, payload)
    return AckResult(ok=r.ok, error=clip(r.error, 200), request_id=clip(r.request_id, 64))
