"""Commands a station takes on ``<prefix>/<station>/cmd/<name>``, read strictly.

The payload must be a small UTF-8 JSON object with ``v`` equal to 1, no
unknown or duplicate keys, and values of exactly the right type. Whatever is
wrong comes back as one :class:`~.codec.CommandError` whose message can go
straight into the error reply::

    >>> parse_command("calibrate", b'{"v": 1, "mass_g": 1000, "request_id": "r7"}')
    Calibrate(mass_g=1000.0, request_id='r7')
    >>> parse_command("session", b'{"v": 1, "action": "checkout"}').stops
    True
    >>> parse_command("session", b'{"v": 1, "action": "pause"}')  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    monitor.mqtt.messages.codec.CommandError: action must be one of 'start', ..., not 'pause'

The reader accepts nothing that ``schemas/cmd_<name>.json`` rejects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from .base import Command
from .codec import CommandError
from .fields import spec
from .values import (
    ATHLETE_PATTERN,
    ATHLETE_WHAT,
    MAX_MASS_G,
    PRINTABLE_64,
    PRINTABLE_128,
    WEIGH_IN_ATHLETE_PATTERN,
    WEIGH_IN_ATHLETE_WHAT,
    SessionAction,
    WeighInPhase,
)

_PRINTABLE_64 = "1 to 64 printable characters"


def _request_id() -> Any:
    return spec(
        None,
        nullable=False,
        optional=True,
        pattern=PRINTABLE_64,
        what=_PRINTABLE_64,
        doc="echoed in the reply",
    )


@dataclass(frozen=True)
class Tare(Command):
    """Zero the scale (``cmd/tare``: ``{"v": 1}``)."""

    name: ClassVar[str] = "tare"
    schema_name: ClassVar[str] = "cmd_tare"
    title: ClassVar[str] = "gym/<station>/cmd/tare: zero the scale"

    request_id: str | None = _request_id()


@dataclass(frozen=True)
class Calibrate(Command):
    """Calibrate the scale with ``mass_g`` grams on it (``cmd/calibrate``)."""

    name: ClassVar[str] = "calibrate"
    schema_name: ClassVar[str] = "cmd_calibrate"
    title: ClassVar[str] = (
        "gym/<station>/cmd/calibrate: calibrate the scale with a known mass on it"
    )

    mass_g: float = spec(exclusive_minimum=0, maximum=MAX_MASS_G)
    request_id: str | None = _request_id()


@dataclass(frozen=True)
class SessionCommand(Command):
    """Start or stop a session (``cmd/session``: ``{"v": 1, "action": "start"}``).

    ``athlete`` (an athlete id) checks that athlete in; a start while someone
    else is checked in ends their session first. ``checkout`` means ``stop``.
    """

    name: ClassVar[str] = "session"
    schema_name: ClassVar[str] = "cmd_session"
    title: ClassVar[str] = "gym/<station>/cmd/session: start or stop (check out) a session"

    action: SessionAction
    request_id: str | None = _request_id()
    athlete: str | None = spec(
        None,
        nullable=False,
        optional=True,
        pattern=ATHLETE_PATTERN,
        what=ATHLETE_WHAT,
        doc="check this athlete in (start only)",
    )

    @property
    def starts(self) -> bool:
        return self.action is SessionAction.START

    @property
    def stops(self) -> bool:
        return self.action in (SessionAction.STOP, SessionAction.CHECKOUT)


@dataclass(frozen=True)
class WeighIn(Command):
    """Record a pre- or post-session weigh-in of ``athlete`` (``cmd/weigh_in``)."""

    name: ClassVar[str] = "weigh_in"
    schema_name: ClassVar[str] = "cmd_weigh_in"
    title: ClassVar[str] = (
        "gym/<station>/cmd/weigh_in: record a body-mass weigh-in before or after a session"
    )

    phase: WeighInPhase
    athlete: str = spec(pattern=WEIGH_IN_ATHLETE_PATTERN, what=WEIGH_IN_ATHLETE_WHAT)
    request_id: str | None = _request_id()


@dataclass(frozen=True)
class Ack(Command):
    """Acknowledge alert ``id`` (``cmd/ack``); ``by`` says who (e.g. ``display``)."""

    name: ClassVar[str] = "ack"
    schema_name: ClassVar[str] = "cmd_ack"
    title: ClassVar[str] = "gym/<station>/cmd/ack: acknowledge an alert"

    id: str = spec(pattern=PRINTABLE_128, what="1 to 128 printable characters")
    by: str | None = spec(
        None, nullable=False, optional=True, pattern=PRINTABLE_64, what=_PRINTABLE_64
    )
    request_id: str | None = _request_id()


AnyCommand = Tare | Calibrate | SessionCommand | WeighIn | Ack
#: Every command by its topic level, in the order of ``topics.COMMAND_NAMES``.
COMMANDS: dict[str, type[Command]] = {
    c.name: c for c in (Tare, Calibrate, SessionCommand, WeighIn, Ack)
}


def parse_command(name: str, payload: bytes) -> AnyCommand:
    """Parse the payload of ``cmd/<name>``; raise CommandError for anything not exactly right."""
    cls = COMMANDS.get(name)
    if cls is None:
        raise CommandError(f"unknown command {name!r}; known: {', '.join(COMMANDS)}")
    return cls.from_json(payload)  # type: ignore[return-value]
