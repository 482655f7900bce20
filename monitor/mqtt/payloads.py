"""Payload builders and the JSON encoding every station message goes through.

Each builder takes plain values (numbers, strings, dicts; numpy scalars are
fine), checks the few things a consumer would trip over (an unknown alert
level, an empty alert id), adds ``v``, ``ts`` and ``station`` and returns a
plain dict that is already JSON-clean: NaN and infinities have become
``None`` and floats are rounded to what the measurement can carry::

    >>> p = tremor_payload("bench-1", sensor="wrist", rms_mg=12.3456789, peak_hz=float("nan"),
    ...                    ratio=1.5, window_s=2.5, ts=1732435200.123456)
    >>> p["rms_mg"], p["peak_hz"], p["level"], p["ts"]
    (12.3457, None, 'normal', 1732435200.123)
    >>> encode({"v": 1, "x": float("inf")})
    b'{"v":1,"x":null}'

The shapes are those of ``PAYLOADS.md``; ``schemas/<name>.json`` (JSON Schema
2020-12, see :func:`load_schema`) say the same thing for integrators. Consumers
must ignore keys they do not know: version 1 may gain keys, never lose them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import time
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any

from ..errors import MonitorError
from .topics import validate_station_id

VERSION = 1
#: Significant digits kept for measurements: more than any sensor here resolves.
SIGNIFICANT_DIGITS = 6
#: Decimal places kept for timestamps (keys ``ts`` and ``*_ts``): milliseconds.
TS_DECIMALS = 3

TREMOR_LEVELS = ("none", "normal", "elevated", "high")
PLACEMENTS = ("limb", "bench", "body")
SESSION_STATES = ("idle", "reps", "hold", "rest", "recovery")
HYDRATION_MODES = ("bottle", "body")
ALERT_LEVELS = ("info", "caution", "warning", "urgent")
ALERT_STATES = ("raised", "cleared", "acknowledged")
#: Payload kinds with a schema in ``schemas/`` (status is a plain string).
SCHEMA_NAMES = ("tremor", "session", "hydration", "alert", "alerts_active", "cmd_tare",
                "cmd_calibrate", "cmd_session", "cmd_weigh_in", "cmd_ack", "cmd_result")


class PayloadError(MonitorError, ValueError):
    """A value cannot go into a payload (wrong choice, not encodable)."""


# --------------------------------------------------------------------------- encoding


def _is_ts_key(key: str) -> bool:
    return key == "ts" or key.endswith("_ts")


def _round(x: float, key: str) -> float:
    if _is_ts_key(key):
        return round(x, TS_DECIMALS)
    # Significant digits, not decimal places: 0.000123 g and 61234.5 g both survive.
    return float(f"{x:.{SIGNIFICANT_DIGITS}g}")


def clean(value: Any, key: str = "") -> Any:
    """``value`` as JSON-ready Python: finite rounded floats, None for NaN/inf, lists for tuples.

    ``key`` is the dict key the value sits under; it decides how floats round.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): clean(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v, key) for v in value]
    if getattr(value, "shape", None) == () and hasattr(value, "item"):  # numpy scalar
        return clean(value.item(), key)
    if hasattr(value, "tolist"):  # numpy array
        return clean(value.tolist(), key)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        return _round(f, key) if math.isfinite(f) else None
    raise PayloadError(f"{key or 'value'}: cannot put {type(value).__name__} {value!r} in a payload")


def encode(payload: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON of a cleaned payload; never emits NaN or Infinity."""
    return json.dumps(clean(payload), separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


# --------------------------------------------------------------------------- helpers


def _header(station: str, ts: float | None) -> dict[str, Any]:
    validate_station_id(station)
    stamp = time.time() if ts is None else ts
    if not isinstance(stamp, numbers.Real) or isinstance(stamp, bool) or not math.isfinite(stamp):
        raise PayloadError(f"ts must be a finite number of Unix seconds, not {ts!r}")
    return {"v": VERSION, "ts": float(stamp), "station": station}


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise PayloadError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _text(name: str, value: Any, *, empty: bool = True) -> str:
    if not isinstance(value, str) or (not empty and not value):
        raise PayloadError(f"{name} must be a{'' if empty else ' non-empty'} string, not {value!r}")
    return value


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise PayloadError(f"{name} must be a whole number >= 0, not {value!r}")
    return int(value)


def _as_mapping(obj: Any) -> Mapping[str, Any]:
    if isinstance(obj, Mapping):
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    raise PayloadError(f"expected a dict or a dataclass, not {type(obj).__name__}")


def tremor_level(ratio: float | None, measurable: bool = True) -> str:
    """Grade a ratio to the rested baseline: normal < 2x, elevated 2-4x, high >= 4x."""
    if not measurable:
        return "none"
    if ratio is None or not math.isfinite(ratio) or ratio < 2.0:
        return "normal"
    return "elevated" if ratio < 4.0 else "high"


# --------------------------------------------------------------------------- builders


def tremor_payload(station: str, *, sensor: str, window_s: float, placement: str = "limb",
                   exercised: bool = True, rms_mg: float | None = None,
                   peak_hz: float | None = None, ratio: float | None = None,
                   level: str | None = None, moving: bool = False,
                   measurable: bool | None = None,
                   band_rms_mg: Mapping[str, float | None] | None = None,
                   fatigue_ratio: float | None = None, regularity: float | None = None,
                   ts: float | None = None) -> dict[str, Any]:
    """One sensor's tremor metrics (``<prefix>/<station>/tremor``, QoS 0).

    ``measurable`` defaults to "rms_mg is a finite number"; ``level`` defaults
    to :func:`tremor_level` of ``ratio``.
    """
    rms = clean(rms_mg, "rms_mg")
    if measurable is None:
        measurable = rms is not None
    payload = _header(station, ts) | {
        "sensor": _text("sensor", sensor, empty=False),
        "placement": _choice("placement", placement, PLACEMENTS),
        "exercised": bool(exercised),
        "rms_mg": rms if measurable else None,
        "peak_hz": clean(peak_hz, "peak_hz") if measurable else None,
        "ratio": clean(ratio, "ratio") if measurable else None,
        "level": _choice("level", level if level is not None
                         else tremor_level(clean(ratio, "ratio"), bool(measurable)), TREMOR_LEVELS),
        "moving": bool(moving),
        "measurable": bool(measurable),
        "band_rms_mg": clean(dict(band_rms_mg or {})),
        "fatigue_ratio": fatigue_ratio,
        "regularity": regularity,
        "window_s": window_s,
    }
    return clean(payload)


def session_payload(station: str, *, state: str, name: str = "", active: bool = False,
                    started_ts: float | None = None, ended_ts: float | None = None,
                    set_count: int = 0, rep_count: int = 0,
                    last_set_end_ts: float | None = None, baseline_mg: float | None = None,
                    ratio: float | None = None, recovery_s: float | None = None,
                    fatigue_trend: float | None = None, ts: float | None = None) -> dict[str, Any]:
    """Activity state and session figures (``session``, retained, QoS 1)."""
    payload = _header(station, ts) | {
        "name": _text("name", name) or station,
        "state": _choice("state", state, SESSION_STATES),
        "active": bool(active),
        "started_ts": started_ts,
        "ended_ts": ended_ts,
        "set_count": _count("set_count", set_count),
        "rep_count": _count("rep_count", rep_count),
        "last_set_end_ts": last_set_end_ts,
        "baseline_mg": baseline_mg,
        "ratio": ratio,
        "recovery_s": recovery_s,
        "fatigue_trend": fatigue_trend,
    }
    return clean(payload)


def hydration_payload(station: str, *, mode: str, mass_g: float | None = None,
                      intake_ml: float | None = None, intake_ml_per_h: float | None = None,
                      pre_mass_g: float | None = None, post_mass_g: float | None = None,
                      body_mass_loss_pct: float | None = None,
                      sweat_rate_l_per_h: float | None = None,
                      ts: float | None = None) -> dict[str, Any]:
    """Scale-derived figures (``hydration``, retained, QoS 1)."""
    payload = _header(station, ts) | {
        "mode": _choice("mode", mode, HYDRATION_MODES),
        "mass_g": mass_g,
        "intake_ml": intake_ml,
        "intake_ml_per_h": intake_ml_per_h,
        "pre_mass_g": pre_mass_g,
        "post_mass_g": post_mass_g,
        "body_mass_loss_pct": body_mass_loss_pct,
        "sweat_rate_l_per_h": sweat_rate_l_per_h,
    }
    return clean(payload)


def alert_payload(station: str, *, id: str, code: str, level: str, state: str, message: str,
                  advice: str = "", evidence: Mapping[str, Any] | None = None,
                  raised_ts: float | None = None, red_flag: bool = False,
                  sensor: str | None = None, by: str | None = None,
                  ts: float | None = None) -> dict[str, Any]:
    """One alert event (``alert``, QoS 1, never lost). ``raised_ts`` defaults to ``ts``.

    ``by`` (who acknowledged it, e.g. ``display``) is written only when given.
    Subscribers drop duplicates by (``id``, ``state``): at-least-once delivery
    means an event may arrive twice after a reconnect.
    """
    head = _header(station, ts)
    payload = head | {
        "id": _text("id", id, empty=False),
        "code": _text("code", code, empty=False),
        "level": _choice("level", level, ALERT_LEVELS),
        "state": _choice("state", state, ALERT_STATES),
        "red_flag": bool(red_flag),
        "sensor": None if sensor is None else _text("sensor", sensor),
        "message": _text("message", message),
        "advice": _text("advice", advice),
        "evidence": dict(_as_mapping(evidence or {})),
        "raised_ts": head["ts"] if raised_ts is None else raised_ts,
    }
    if by is not None:
        payload["by"] = _text("by", by, empty=False)
    return clean(payload)


def alerts_active_payload(station: str, alerts: Iterable[Mapping[str, Any] | Any],
                          ts: float | None = None) -> dict[str, Any]:
    """Every alert not yet cleared or acknowledged (``alerts/active``, retained, QoS 1).

    Entries may be alert dicts (as built by :func:`alert_payload`, or any dict
    or dataclass with its keyword arguments); each is rebuilt and checked.
    """
    head = _header(station, ts)
    entries = [from_values("alert", station, a, ts=head["ts"]) for a in alerts]
    return clean(head | {"alerts": entries})


def command_result_payload(station: str, *, ok: bool, error: str | None = None,
                           request_id: str | None = None,
                           ts: float | None = None) -> dict[str, Any]:
    """The reply on ``cmd/<name>/result`` to one command."""
    return clean(_header(station, ts) | {
        "ok": bool(ok),
        "error": None if ok else (error or "failed"),
        "request_id": request_id,
    })


_BUILDERS = {
    "tremor": tremor_payload,
    "session": session_payload,
    "hydration": hydration_payload,
    "alert": alert_payload,
}


def from_values(kind: str, station: str, values: Mapping[str, Any] | Any,
                ts: float | None = None) -> dict[str, Any]:
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


# --------------------------------------------------------------------------- schemas


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of payload ``name`` (see SCHEMA_NAMES).

    ``alerts_active`` refers to ``alert`` by its ``$id``; validators need both
    registered (``referencing.Registry`` with jsonschema).
    """
    if name not in SCHEMA_NAMES:
        raise PayloadError(f"no schema {name!r}; choose from {', '.join(SCHEMA_NAMES)}")
    text = resources.files(__package__).joinpath("schemas", f"{name}.json").read_text("utf-8")
    return json.loads(text)
