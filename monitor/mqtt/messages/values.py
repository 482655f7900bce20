"""The words and rules that messages share: enums, id patterns, the tremor grades.

Every choice a payload offers is a :class:`~enum.StrEnum` here, so a level or
a state is spelt once; members compare equal to their strings
(``TremorLevel.HIGH == "high"``) and encode as them.

The tremor grade is a ratio to the athlete's own rested level, decided by
:mod:`monitor.grades` (the rule, and the defaults 2x and 4x, written there
once; :class:`TremorLevel` is its enum). :class:`Grades` is the value that
carries a set of thresholds in payloads, so a coach's per-athlete thresholds
reach the station (in the profile) and the wall display (in the session)::

    >>> DEFAULT_GRADES.level(2.5)
    <TremorLevel.ELEVATED: 'elevated'>
    >>> Grades(elevated_ratio=1.5, high_ratio=2.5).level(2.5)
    <TremorLevel.HIGH: 'high'>
    >>> DEFAULT_GRADES.level(12.0, measurable=False)
    <TremorLevel.NONE: 'none'>
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from ...grades import ELEVATED_RATIO, HIGH_RATIO, TremorLevel, grade
from ..topics import STATION_ID
from .base import Entry
from .codec import _Invalid
from .fields import spec


class Placement(StrEnum):
    """Where a sensor sits: on a working limb, on the bench, on the body."""

    LIMB = "limb"
    BENCH = "bench"
    BODY = "body"


class ActivityState(StrEnum):
    """What the athlete is doing, from the session's point of view."""

    IDLE = "idle"
    REPS = "reps"
    HOLD = "hold"
    REST = "rest"
    RECOVERY = "recovery"


class HydrationMode(StrEnum):
    """What the scale weighs: a drinking bottle, or the athlete."""

    BOTTLE = "bottle"
    BODY = "body"


class AlertLevel(StrEnum):
    """How urgent an alert is: ``info`` < ``caution`` < ``warning`` < ``urgent``."""

    INFO = "info"
    CAUTION = "caution"
    WARNING = "warning"
    URGENT = "urgent"

    @property
    def rank(self) -> int:
        """0 for info .. 3 for urgent."""
        return _ALERT_RANK[self]


class AlertState(StrEnum):
    """The life of an alert: raised, then cleared (it passed) or acknowledged (by staff)."""

    RAISED = "raised"
    CLEARED = "cleared"
    ACKNOWLEDGED = "acknowledged"


class WeighInPhase(StrEnum):
    """A body-mass weigh-in before or after a session."""

    PRE = "pre"
    POST = "post"


class SessionAction(StrEnum):
    """What ``cmd/session`` asks for; ``checkout`` is another word for ``stop``."""

    START = "start"
    STOP = "stop"
    CHECKOUT = "checkout"


class SetKind(StrEnum):
    """A set of repetitions, or a static hold."""

    REPS = "reps"
    HOLD = "hold"


class EndReason(StrEnum):
    """Why a session ended (``superseded``: someone else checked in)."""

    TAP = "tap"
    BUTTON = "button"
    COMMAND = "command"
    TIMEOUT = "timeout"
    AUTO = "auto"
    SUPERSEDED = "superseded"
    SHUTDOWN = "shutdown"


class CheckinSource(StrEnum):
    """How the athlete checked in: a tag on the reader, the button, a command."""

    TAG = "tag"
    BUTTON = "button"
    COMMAND = "command"


class ProfileState(StrEnum):
    """The checked-in athlete's profile on the station: applied, fresh (none known), pending."""

    APPLIED = "applied"
    FRESH = "fresh"
    PENDING = "pending"


_ALERT_RANK = {m: i for i, m in enumerate(AlertLevel)}

# --------------------------------------------------------------------------- patterns

#: A station id: one safe topic level (the rule of ``[station] id``, see topics.py).
STATION_PATTERN = STATION_ID.pattern
#: A pseudonymous athlete id (one topic level under ``_athletes``).
ATHLETE_PATTERN = r"[a-z0-9_-]{1,64}"
ATHLETE_WHAT = "an athlete id: 1 to 64 of a-z, 0-9, '_' or '-'"
#: The athlete of a weigh-in command: wider, as it has always been.
WEIGH_IN_ATHLETE_PATTERN = r"[A-Za-z0-9_.-]{1,64}"
WEIGH_IN_ATHLETE_WHAT = "1 to 64 letters, digits, '.', '-' or '_'"
#: Printable text of bounded length (no control characters).
PRINTABLE_64 = r"[^\u0000-\u001f\u007f]{1,64}"
PRINTABLE_128 = r"[^\u0000-\u001f\u007f]{1,128}"
MAX_MASS_G = 500_000.0


# --------------------------------------------------------------------------- grades


@dataclass(frozen=True, kw_only=True)
class Grades(Entry):
    """Tremor grade thresholds, as ratios to the rested baseline (``elevated < high``).

    Travels as ``{"elevated_ratio": 2.0, "high_ratio": 4.0}`` in the session
    and the profile; the defaults are :mod:`monitor.grades`'s, and so is the rule.
    """

    schema_name: ClassVar[str] = "thresholds"
    title: ClassVar[str] = (
        "tremor grade thresholds, as ratios to the rested baseline (elevated_ratio < high_ratio)"
    )

    elevated_ratio: float = spec(
        ELEVATED_RATIO, exclusive_minimum=1, doc="from this ratio up, tremor is elevated"
    )
    high_ratio: float = spec(
        HIGH_RATIO, exclusive_minimum=1, doc="from this ratio up, tremor is high"
    )

    def _check(self) -> None:
        if not self.elevated_ratio < self.high_ratio:
            raise _Invalid(
                f"elevated_ratio ({self.elevated_ratio:g}) must be below high_ratio "
                f"({self.high_ratio:g})"
            )

    def level(self, ratio: float | None, measurable: bool = True) -> TremorLevel:
        """The grade of ``ratio``: ``normal`` when not known, ``none`` when not ``measurable``."""
        return grade(ratio, measurable, self)


#: The grades everyone uses until a coach sets others: elevated from 2x, high from 4x.
DEFAULT_GRADES = Grades()
