"""Payload builders as plain dicts, over the message classes of :mod:`monitor.mqtt.messages`.

Each builder takes plain values (numbers, strings, dicts; numpy scalars are
fine), builds the message (which checks what a consumer would trip over: an
unknown alert level, an empty alert id), adds ``v``, ``ts`` and ``station``
and returns a plain dict that is already JSON-clean: NaN and infinities have
become ``None`` and floats are rounded to what the measurement can carry::

    >>> p = tremor_payload("bench-1", sensor="wrist", rms_mg=12.3456789, peak_hz=float("nan"),
    ...                    ratio=1.5, window_s=2.5, ts=1732435200.123456)
    >>> p["rms_mg"], p["peak_hz"], p["level"], p["ts"]
    (12.3457, None, 'normal', 1732435200.123)
    >>> encode({"v": 1, "x": float("inf")})
    b'{"v":1,"x":null}'

The format itself (fields, rounding, the grades, the schemas) lives in
:mod:`monitor.mqtt.messages`; this module keeps the dict-shaped API its
callers know. New code should build the message classes directly.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from . import schemas
from .messages import (
    DEFAULT_GRADES,
    MESSAGES,
    SIGNIFICANT_DIGITS,
    TS_DECIMALS,
    VERSION,
    ActiveAlerts,
    ActivityState,
    AlertEvent,
    AlertLevel,
    AlertState,
    CommandResult,
    Grades,
    Hydration,
    HydrationMode,
    Message,
    MessageError,
    Placement,
    SessionReport,
    Tremor,
    TremorLevel,
    clean,
    dumps,
)

__all__ = [
    "ALERT_LEVELS",
    "ALERT_STATES",
    "HYDRATION_MODES",
    "PLACEMENTS",
    "SCHEMA_NAMES",
    "SESSION_STATES",
    "SIGNIFICANT_DIGITS",
    "TREMOR_LEVELS",
    "TS_DECIMALS",
    "VERSION",
    "PayloadError",
    "alert_payload",
    "alerts_active_payload",
    "clean",
    "command_result_payload",
    "encode",
    "from_values",
    "hydration_payload",
    "load_schema",
    "session_payload",
    "tremor_level",
    "tremor_payload",
]

TREMOR_LEVELS = tuple(TremorLevel)
PLACEMENTS = tuple(Placement)
SESSION_STATES = tuple(ActivityState)
HYDRATION_MODES = tuple(HydrationMode)
ALERT_LEVELS = tuple(AlertLevel)
ALERT_STATES = tuple(AlertState)
#: Payload kinds with a schema in ``schemas/`` (status is a plain string).
SCHEMA_NAMES = tuple(MESSAGES)

#: A value cannot go into a payload (wrong choice, not encodable): the messages' error.
PayloadError = MessageError


def encode(payload: Mapping[str, Any] | Message) -> bytes:
    """Compact UTF-8 JSON of a payload (cleaned again, so any dict is safe); never NaN."""
    if isinstance(payload, Message):
        return payload.to_json()
    return dumps(clean(payload))


def tremor_level(ratio: float | None, measurable: bool = True) -> str:
    """Grade a ratio to the rested baseline by the default grades: normal < 2x, elevated < 4x."""
    return DEFAULT_GRADES.level(ratio, measurable).value


def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of payload ``name`` (see SCHEMA_NAMES).

    ``alerts_active`` refers to ``alert`` by its ``$id``; validators need both
    registered (``referencing.Registry`` with jsonschema).
    """
    return schemas.load(name)


# --------------------------------------------------------------------------- builders


#: Builders take plain strings and numbers; the message classes check them and make enums.
_Fields = dict[str, Any]


def _stamp(ts: float | None) -> float | None:
    return time.time() if ts is None else ts


def _as_mapping(obj: Any) -> Mapping[str, Any]:
    if isinstance(obj, Mapping):
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    raise PayloadError(f"expected a dict or a dataclass, not {type(obj).__name__}")


def tremor_payload(
    station: str,
    *,
    sensor: str,
    window_s: float,
    placement: str = "limb",
    exercised: bool = True,
    rms_mg: float | None = None,
    peak_hz: float | None = None,
    ratio: float | None = None,
    level: str | None = None,
    moving: bool = False,
    measurable: bool | None = None,
    band_rms_mg: Mapping[str, float | None] | None = None,
    fatigue_ratio: float | None = None,
    regularity: float | None = None,
    ts: float | None = None,
    grades: Grades | None = None,
) -> dict[str, Any]:
    """One sensor's tremor metrics (``<prefix>/<station>/tremor``, QoS 0).

    ``measurable`` defaults to "rms_mg is a finite number"; ``level`` defaults
    to the grade of ``ratio`` under ``grades`` (the default grades unless given).
    """
    rms = clean(rms_mg, "rms_mg")
    measurable = rms is not None if measurable is None else bool(measurable)
    if level is None:
        level = (grades or DEFAULT_GRADES).level(clean(ratio, "ratio"), measurable)
    fields: _Fields = dict(
        ts=_stamp(ts),
        station=station,
        sensor=sensor,
        placement=placement,
        exercised=bool(exercised),
        rms_mg=rms if measurable else None,
        peak_hz=peak_hz if measurable else None,
        ratio=ratio if measurable else None,
        level=level,
        moving=bool(moving),
        measurable=measurable,
        band_rms_mg=dict(band_rms_mg or {}),
        fatigue_ratio=fatigue_ratio,
        regularity=regularity,
        window_s=window_s,
    )
    return Tremor(**fields).to_dict()


def session_payload(
    station: str,
    *,
    state: str,
    name: str = "",
    active: bool = False,
    started_ts: float | None = None,
    ended_ts: float | None = None,
    set_count: int = 0,
    rep_count: int = 0,
    last_set_end_ts: float | None = None,
    baseline_mg: float | None = None,
    ratio: float | None = None,
    recovery_s: float | None = None,
    fatigue_trend: float | None = None,
    thresholds: Grades | Mapping[str, float] | None = None,
    ts: float | None = None,
) -> dict[str, Any]:
    """Activity state and session figures (``session``, retained, QoS 1).

    ``name`` defaults to the station id; ``thresholds`` (the grades the
    station applies) to the default grades.
    """
    fields: _Fields = dict(
        ts=_stamp(ts),
        station=station,
        name=(name or station) if isinstance(name, str) else name,
        state=state,
        active=bool(active),
        started_ts=started_ts,
        ended_ts=ended_ts,
        set_count=set_count,
        rep_count=rep_count,
        last_set_end_ts=last_set_end_ts,
        baseline_mg=baseline_mg,
        ratio=ratio,
        recovery_s=recovery_s,
        fatigue_trend=fatigue_trend,
        thresholds=DEFAULT_GRADES if thresholds is None else thresholds,
    )
    return SessionReport(**fields).to_dict()


def hydration_payload(
    station: str,
    *,
    mode: str,
    mass_g: float | None = None,
    intake_ml: float | None = None,
    intake_ml_per_h: float | None = None,
    pre_mass_g: float | None = None,
    post_mass_g: float | None = None,
    body_mass_loss_pct: float | None = None,
    sweat_rate_l_per_h: float | None = None,
    ts: float | None = None,
) -> dict[str, Any]:
    """Scale-derived figures (``hydration``, retained, QoS 1)."""
    fields: _Fields = dict(
        ts=_stamp(ts),
        station=station,
        mode=mode,
        mass_g=mass_g,
        intake_ml=intake_ml,
        intake_ml_per_h=intake_ml_per_h,
        pre_mass_g=pre_mass_g,
        post_mass_g=post_mass_g,
        body_mass_loss_pct=body_mass_loss_pct,
        sweat_rate_l_per_h=sweat_rate_l_per_h,
    )
    return Hydration(**fields).to_dict()


def alert_payload(
    station: str,
    *,
    id: str,
    code: str,
    level: str,
    state: str,
    message: str,
    advice: str = "",
    evidence: Mapping[str, Any] | None = None,
    raised_ts: float | None = None,
    red_flag: bool = False,
    sensor: str | None = None,
    by: str | None = None,
    acked_ts: float | None = None,
    silenced_until_ts: float | None = None,
    follows: str | None = None,
    ts: float | None = None,
) -> dict[str, Any]:
    """One alert event (``alert``, QoS 1, never lost). ``raised_ts`` defaults to ``ts``.

    ``by`` (who acknowledged it, e.g. ``display``), ``acked_ts``,
    ``silenced_until_ts`` and ``follows`` are written only when given.
    Subscribers drop duplicates by (``id``, ``state``): at-least-once delivery
    means an event may arrive twice after a reconnect.
    """
    stamp = _stamp(ts)
    fields: _Fields = dict(
        ts=stamp,
        station=station,
        id=id,
        code=code,
        level=level,
        state=state,
        red_flag=bool(red_flag),
        sensor=sensor,
        message=message,
        advice=advice,
        evidence=dict(_as_mapping(evidence or {})),
        raised_ts=stamp if raised_ts is None else raised_ts,
        by=by,
        acked_ts=acked_ts,
        silenced_until_ts=silenced_until_ts,
        follows=follows,
    )
    return AlertEvent(**fields).to_dict()


def alerts_active_payload(
    station: str,
    alerts: Iterable[Mapping[str, Any] | Any],
    ts: float | None = None,
    acknowledged: Iterable[Mapping[str, Any] | Any] = (),
) -> dict[str, Any]:
    """Every alert not yet cleared or acknowledged (``alerts/active``, retained, QoS 1).

    Entries may be alert dicts (as built by :func:`alert_payload`, or any dict
    or dataclass with its keyword arguments); each is rebuilt and checked.
    ``acknowledged`` lists the acknowledged urgent alerts that are only silenced.
    """
    stamp = _stamp(ts)

    def events(items: Iterable[Mapping[str, Any] | Any]) -> tuple[AlertEvent, ...]:
        return tuple(
            AlertEvent.from_dict(from_values("alert", station, a, ts=stamp)) for a in items
        )

    return ActiveAlerts(
        ts=stamp, station=station, alerts=events(alerts), acknowledged=events(acknowledged)
    ).to_dict()


def command_result_payload(
    station: str,
    *,
    ok: bool,
    error: str | None = None,
    request_id: str | None = None,
    ts: float | None = None,
) -> dict[str, Any]:
    """The reply on ``cmd/<name>/result`` to one command."""
    return CommandResult(
        ts=_stamp(ts),
        station=station,
        ok=bool(ok),
        error=None if ok else (error or "failed"),
        request_id=request_id,
    ).to_dict()


_BUILDERS: dict[str, Callable[..., dict[str, Any]]] = {
    "tremor": tremor_payload,
    "session": session_payload,
    "hydration": hydration_payload,
    "alert": alert_payload,
}


def from_values(
    kind: str, station: str, values: Mapping[str, Any] | Any, ts: float | None = None
) -> dict[str, Any]:
    """Build a ``kind`` payload from a dict or dataclass of its fields.

    ``v`` and ``station`` in ``values`` are ignored (the builder sets them);
    a ``ts`` there wins over the ``ts`` argument. Unknown keys are an error,
    so a renamed field is noticed rather than silently dropped.
    """
    if kind not in _BUILDERS:
        raise PayloadError(f"no builder for {kind!r}; choose from {', '.join(_BUILDERS)}")
    fields = {k: v for k, v in _as_mapping(values).items() if k not in ("v", "station")}
    fields.setdefault("ts", ts)
    try:
        return _BUILDERS[kind](station, **fields)
    except TypeError as err:
        raise PayloadError(f"{kind} payload: {err}") from None
