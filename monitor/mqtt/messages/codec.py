"""JSON in and out for every message: rounding, cleaning, one strict decoder, the errors.

Numbers keep :data:`SIGNIFICANT_DIGITS` significant digits, timestamps (keys
``ts`` and ``*_ts``) milliseconds; NaN and infinities become ``null``. The
decoder refuses what no sender of ours writes: non-UTF-8 bytes, duplicate
keys, ``NaN``/``Infinity``, deep nesting, oversized payloads, anything but an
object at the top.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from typing import Any

from ...errors import MonitorError

#: The schema version every message carries as ``v``.
VERSION = 1
#: Significant digits kept for measurements: more than any sensor here resolves.
SIGNIFICANT_DIGITS = 6
#: Decimal places kept for timestamps (keys ``ts`` and ``*_ts``): milliseconds.
TS_DECIMALS = 3
#: Upper bound on a message off the network, unless its class says otherwise.
MAX_BYTES = 64 * 1024


class MessageError(MonitorError, ValueError):
    """A message cannot be built, sent or read. The text names the key and what is wrong."""


class CommandError(MessageError):
    """A command could not be accepted. ``request_id`` is echoed when it could be read."""

    def __init__(self, message: str, *, request_id: str | None = None):
        super().__init__(message)
        self.request_id = request_id


class _Invalid(Exception):
    """Raised inside the machinery; the public entry points turn it into the class's error."""


# --------------------------------------------------------------------------- JSON values


def is_ts_key(key: str) -> bool:
    """Timestamps keep milliseconds; every other number keeps significant digits."""
    return key == "ts" or key.endswith("_ts")


def round_number(x: float, key: str) -> float:
    if is_ts_key(key):
        return round(x, TS_DECIMALS)
    # Significant digits, not decimal places: 0.000123 g and 61234.5 g both survive.
    return float(f"{x:.{SIGNIFICANT_DIGITS}g}")


def clean(value: Any, key: str = "") -> Any:
    """``value`` as JSON-ready Python: finite rounded floats, None for NaN/inf, lists for tuples.

    ``key`` is the dict key the value sits under; it decides how floats round.
    Enums become their values, messages their dicts.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)  # a StrEnum member becomes its plain value
    if callable(getattr(value, "to_dict", None)):  # a message or an entry of one
        return value.to_dict()
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
        try:
            f = float(value)
        except OverflowError:
            return None
        return round_number(f, key) if math.isfinite(f) else None
    raise MessageError(
        f"{key or 'value'}: cannot put {type(value).__name__} {value!r:.60} in a payload"
    )


def dumps(data: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON of JSON-ready data; never emits NaN or Infinity."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


def json_type(value: Any) -> str:
    """How a value reads in an error message: ``a number``, ``null``, ``an array`` ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    names: dict[type, str] = {str: "a string", list: "an array", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of duplicate keys; a sender who writes two
    # "action"s meant something we cannot guess.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Invalid(f"key {key!r} appears twice")
        out[key] = value
    return out


def _reject_constant(token: str) -> Any:
    raise _Invalid(f"{token} is not valid JSON")


def decode(payload: bytes, limit: int) -> dict[str, Any]:
    """Bytes off the network as a JSON object; anything odd raises ``_Invalid``."""
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise _Invalid("payload must be bytes")
    if len(payload) > limit:
        raise _Invalid(f"payload is {len(payload)} bytes; the limit is {limit}")
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError:
        raise _Invalid("payload is not UTF-8") from None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except _Invalid:
        raise
    except RecursionError:
        raise _Invalid("payload is nested too deeply") from None
    except ValueError as err:  # JSONDecodeError, or an integer with too many digits
        raise _Invalid(f"payload is not JSON: {err}") from None
    if not isinstance(data, dict):
        raise _Invalid(f"payload must be a JSON object, not {type(data).__name__}")
    return data
