"""What the wall keeps of each message a station publishes, read through the message format.

Every payload is parsed by its class in :mod:`monitor.mqtt.messages` (the
one strict decoder, its classes, enums and limits); anything that is not
right raises :class:`BadPayload` naming what was wrong, and the caller logs
it and moves on. Two things are the wall's own: the station is the one the
topic names (a payload's ``station`` key is not read), and an activity state
this display does not know yet is shown as written. What the board keeps is
smaller than what arrives: texts are clipped to what a tile shows, and what
the wall never shows (alert evidence, frequency bands) is left behind, so
memory stays bounded however large the payloads. Retained messages are kept
as their own fields (:class:`Shown`), readings and alerts as small records;
each has a ``view()`` that turns it into plain JSON for the page::

    alert = parse_alert(b'{"v": 1, "id": "a1", "code": "fall", "level": "urgent",'
                        b' "message": "Possible fall"}')
    alert.level                                 # AlertLevel.URGENT
    alert.kind                                  # "physiology" (a sensor fault is "equipment")

The contract lives in ``monitor/mqtt/PAYLOADS.md``; version 1 may gain keys,
which the reader ignores.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any, Self, TypeVar

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
    CommandResult,
    Entry,
    Hydration,
    Message,
    MessageError,
    SessionReport,
    Tremor,
)
from ..mqtt.messages.codec import _Invalid, decode
from ..mqtt.messages.fields import layout
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
class Shown:
    """A retained message as the page reads it: the message's own fields (never a second
    list of them) as plain JSON, ``station`` aside (the topic names it)."""

    fields: Mapping[str, Any]

    @classmethod
    def of(cls, message: Message, **clipped: Any) -> Self:
        out: dict[str, Any] = {}
        for f in layout(type(message)):
            if f.name != "station":
                value = getattr(message, f.name)
                out[f.name] = value.to_dict() if isinstance(value, Entry) else value
        return cls(MappingProxyType(out | clipped))

    def view(self) -> dict[str, Any]:
        return dict(self.fields)


@dataclass(frozen=True)
class SessionInfo(Shown):
    """Activity state and session figures (the retained ``session`` message), with the
    tremor grades the station applies (the page draws its guides at them)."""

    @property
    def name(self) -> str | None:
        name: str | None = self.fields["name"]
        return name


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
    return SessionInfo.of(s, name=clip(s.name, 48), state=s.state or clip(state, 24))


def parse_hydration(payload: bytes) -> Shown:
    return Shown.of(_read(Hydration, payload))


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


def parse_checkin(payload: bytes) -> CheckIn:
    """Who is checked in (``athlete`` an id, None for a guest or nobody)."""
    return _read(CheckIn, payload)


def parse_card(payload: bytes, athlete: str) -> str:
    """The display name of a ``card`` published for ``athlete``."""
    card = _read(Card, payload)
    if card.athlete != athlete:
        raise BadPayload("card: athlete does not match the topic")
    name = card.display_name.strip()
    if not name or not name.isprintable():
        raise BadPayload("card: display_name should be printable text")
    return name


def parse_ack_result(payload: bytes) -> CommandResult:
    return _read(CommandResult, payload)
