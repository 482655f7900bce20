"""Commands that arrive on ``<prefix>/<station>/cmd/<name>``: a strict parser.

Anything on the network can publish there (the ACL narrows who), so the
parser trusts nothing: the payload must be a small UTF-8 JSON object with
``v`` equal to 1, no unknown or duplicate keys, and values of exactly the
right type (``true`` is not a number, ``1.0`` is not a version). Whatever is
wrong comes back as one :class:`CommandError` whose message can go straight
into the error reply::

    >>> parse_command("calibrate", b'{"v": 1, "mass_g": 1000, "request_id": "r7"}')
    Calibrate(mass_g=1000.0, request_id='r7')
    >>> parse_command("session", b'{"v": 1, "action": "pause"}')
    Traceback (most recent call last):
    ...
    monitor.mqtt.commands.CommandError: action must be one of 'start', 'stop', 'checkout', not 'pause'

The parser accepts nothing that ``schemas/cmd_<name>.json`` rejects.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import MonitorError

#: Commands are tiny; anything bigger is a mistake or an attack.
MAX_PAYLOAD_BYTES = 4096
MAX_MASS_G = 500_000.0
_ATHLETE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_NO_CONTROL = re.compile(r"[^\x00-\x1f\x7f]+")
_ATHLETE_ID = re.compile(r"[a-z0-9_-]{1,64}")


class CommandError(MonitorError, ValueError):
    """A command could not be accepted. ``request_id`` is echoed when it could be read."""

    def __init__(self, message: str, *, request_id: str | None = None):
        super().__init__(message)
        self.request_id = request_id


@dataclass(frozen=True)
class Tare:
    """Zero the scale (``cmd/tare``: ``{"v": 1}``)."""

    name: ClassVar[str] = "tare"
    request_id: str | None = None


@dataclass(frozen=True)
class Calibrate:
    """Calibrate the scale with ``mass_g`` grams on it (``cmd/calibrate``)."""

    name: ClassVar[str] = "calibrate"
    mass_g: float
    request_id: str | None = None


@dataclass(frozen=True)
class Session:
    """Start or stop a session (``cmd/session``: ``{"v": 1, "action": "start"}``).

    ``athlete`` (an athlete id) checks that athlete in; ``checkout`` is ``stop``.
    """

    name: ClassVar[str] = "session"
    action: str
    request_id: str | None = None
    athlete: str | None = None


@dataclass(frozen=True)
class WeighIn:
    """Record a pre- or post-session weigh-in of ``athlete`` (``cmd/weigh_in``)."""

    name: ClassVar[str] = "weigh_in"
    phase: str
    athlete: str
    request_id: str | None = None


@dataclass(frozen=True)
class Ack:
    """Acknowledge alert ``id`` (``cmd/ack``); ``by`` says who (e.g. ``display``)."""

    name: ClassVar[str] = "ack"
    id: str
    by: str | None = None
    request_id: str | None = None


Command = Tare | Calibrate | Session | WeighIn | Ack


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of duplicate keys; a sender who writes two
    # "action"s meant something we cannot guess.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise CommandError(f"key {key!r} appears twice")
        out[key] = value
    return out


def _reject_constant(token: str) -> Any:
    raise CommandError(f"{token} is not valid JSON")


def _decode(payload: bytes) -> dict[str, Any]:
    if not isinstance(payload, (bytes, bytearray)):
        raise CommandError("payload must be bytes")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise CommandError(f"payload is {len(payload)} bytes; the limit is {MAX_PAYLOAD_BYTES}")
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError:
        raise CommandError("payload is not UTF-8") from None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except CommandError:
        raise
    except RecursionError:
        raise CommandError("payload is nested too deeply") from None
    except ValueError as err:  # JSONDecodeError, or an integer with too many digits
        raise CommandError(f"payload is not JSON: {err}") from None
    if not isinstance(data, dict):
        raise CommandError(f"payload must be a JSON object, not {type(data).__name__}")
    return data


def _string(data: dict[str, Any], key: str, pattern: re.Pattern[str], what: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise CommandError(f"{key} must be a string, not {_json_type(value)}")
    if not pattern.fullmatch(value):
        raise CommandError(f"{key} must be {what}")
    return value


def _choice(data: dict[str, Any], key: str, choices: tuple[str, ...]) -> str:
    value = data[key]
    if not isinstance(value, str) or value not in choices:
        raise CommandError(f"{key} must be one of {', '.join(map(repr, choices))}, not {value!r}")
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {str: "a string", list: "an array", dict: "an object"}.get(
        type(value), type(value).__name__
    )


_KEYS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # name: (required keys besides v, optional keys besides request_id)
    "tare": (frozenset(), frozenset()),
    "calibrate": (frozenset({"mass_g"}), frozenset()),
    "session": (frozenset({"action"}), frozenset({"athlete"})),
    "weigh_in": (frozenset({"phase", "athlete"}), frozenset()),
    "ack": (frozenset({"id"}), frozenset({"by"})),
}


def parse_command(name: str, payload: bytes) -> Command:
    """Parse the payload of ``cmd/<name>``; raise CommandError for anything not exactly right."""
    if name not in _KEYS:
        raise CommandError(f"unknown command {name!r}; known: {', '.join(_KEYS)}")
    data = _decode(payload)
    request_id = None
    if "request_id" in data:
        request_id = _string(data, "request_id", _NO_CONTROL, "1 to 64 printable characters")
        if len(request_id) > 64:
            raise CommandError("request_id must be 1 to 64 printable characters")
    try:
        return _build(name, data, request_id)
    except CommandError as err:
        err.request_id = request_id
        raise


def _build(name: str, data: dict[str, Any], request_id: str | None) -> Command:
    required, optional = _KEYS[name]
    unknown = set(data) - required - optional - {"v", "request_id"}
    if unknown:
        raise CommandError(
            f"unknown key{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(sorted(map(repr, unknown)))} for {name}"
        )
    missing = ({"v"} | required) - set(data)
    if missing:
        raise CommandError(f"missing {', '.join(sorted(map(repr, missing)))} for {name}")
    version = data["v"]
    if type(version) is not int or version != 1:
        raise CommandError(f"v must be 1, not {version!r}")

    if name == "tare":
        return Tare(request_id=request_id)
    if name == "calibrate":
        mass = data["mass_g"]
        if isinstance(mass, bool) or not isinstance(mass, (int, float)):
            raise CommandError(f"mass_g must be a number, not {_json_type(mass)}")
        if not (math.isfinite(mass) and 0 < mass <= MAX_MASS_G):
            raise CommandError(
                f"mass_g must be more than 0 and at most {MAX_MASS_G:g}, not {mass!r}"
            )
        return Calibrate(mass_g=float(mass), request_id=request_id)
    if name == "session":
        athlete = None
        if "athlete" in data:
            athlete = _string(
                data, "athlete", _ATHLETE_ID, "an athlete id: 1 to 64 of a-z, 0-9, '_' or '-'"
            )
        return Session(
            action=_choice(data, "action", ("start", "stop", "checkout")),
            request_id=request_id,
            athlete=athlete,
        )
    if name == "weigh_in":
        return WeighIn(
            phase=_choice(data, "phase", ("pre", "post")),
            athlete=_string(data, "athlete", _ATHLETE, "1 to 64 letters, digits, '.', '-' or '_'"),
            request_id=request_id,
        )
    alert_id = _string(data, "id", _NO_CONTROL, "1 to 128 printable characters")
    if len(alert_id) > 128:
        raise CommandError("id must be 1 to 128 printable characters")
    by = None
    if "by" in data:
        by = _string(data, "by", _NO_CONTROL, "1 to 64 printable characters")
        if len(by) > 64:
            raise CommandError("by must be 1 to 64 printable characters")
    return Ack(id=alert_id, by=by, request_id=request_id)
