"""Athletes on the network: who is checked in, what a session left behind, profiles and cards.

Ids are pseudonymous (``"a" + base32(HMAC(gym secret, tag UID))``, or ``m-...``
for people without a tag): 1 to 64 of ``a-z 0-9 _ -``, one topic level.
Names live only in cards, which only the history service writes::

    >>> rec = SessionRecord(station="bench-1", id="bench-1:1732435200123", athlete="a3k7",
    ...                     started_ts=1732435200.123, ended_ts=1732437000.0,
    ...                     end_reason=EndReason.TAP, ts=1732437000.0,
    ...                     sets=[SetEntry(index=1, kind=SetKind.REPS, sensor="wrist",
    ...                                    placement=Placement.LIMB, start_ts=1732435300.0,
    ...                                    end_ts=1732435340.0, reps=12, ratio_peak=2.1)])
    >>> SessionRecord.from_json(rec.to_json()) == rec
    True

A session record always has an ``athlete`` key (null for a guest or nobody)
and a ``sets`` list: outside checks rely on both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .base import Entry
from .fields import spec
from .telemetry import FromStation, Stamped
from .values import (
    ATHLETE_PATTERN,
    ATHLETE_WHAT,
    PRINTABLE_64,
    PRINTABLE_128,
    STATION_PATTERN,
    ActivityState,
    AlertLevel,
    CheckinSource,
    EndReason,
    Grades,
    HydrationMode,
    Placement,
    ProfileState,
    SetKind,
    WeighInPhase,
)


def _athlete(**more: Any) -> Any:
    return spec(pattern=ATHLETE_PATTERN, what=ATHLETE_WHAT, **more)


@dataclass(frozen=True, kw_only=True)
class CheckIn(FromStation):
    """Who is checked in at the station now (``athlete``, retained, QoS 1).

    ``athlete`` null and ``guest`` false: nobody. ``athlete`` null and
    ``guest`` true: someone anonymous (the button).
    """

    schema_name: ClassVar[str] = "athlete"
    title: ClassVar[str] = "gym/<station>/athlete: who is checked in now (retained, QoS 1)"

    athlete: str | None = _athlete()
    guest: bool = False
    since_ts: float | None = spec(None, minimum=0)
    source: CheckinSource | None = None
    profile: ProfileState | None = None

    @property
    def nobody(self) -> bool:
        return self.athlete is None and not self.guest


# --------------------------------------------------------------------------- session record


@dataclass(frozen=True, kw_only=True)
class SetEntry(Entry):
    """One set of a session: repetitions or a hold, with the tremor it brought."""

    schema_name: ClassVar[str] = "set"
    title: ClassVar[str] = "one set of the session"

    index: int = spec(minimum=1)
    kind: SetKind
    sensor: str = spec(min_length=1)
    placement: Placement
    start_ts: float = spec(minimum=0)
    end_ts: float = spec(minimum=0)
    reps: int = spec(0, minimum=0)
    ratio_median: float | None = spec(None, minimum=0)
    ratio_peak: float | None = spec(None, minimum=0)
    growth_per_min: float | None = spec(None, doc="how fast the ratio grew in the set, per minute")
    recovery_s: float | None = spec(
        None, minimum=0, doc="how long the tremor took to settle after the set"
    )


@dataclass(frozen=True, kw_only=True)
class HoldEntry(Entry):
    """A static hold (plank, wall sit): where nervous-system fatigue shows most."""

    schema_name: ClassVar[str] = "hold"
    title: ClassVar[str] = "one static hold of the session"

    index: int = spec(minimum=1)
    sensor: str = spec(min_length=1)
    start_ts: float = spec(minimum=0)
    end_ts: float = spec(minimum=0)
    duration_s: float = spec(minimum=0)
    ratio_peak: float | None = spec(None, minimum=0)
    fatigue_ratio_peak: float | None = spec(None, minimum=0)


@dataclass(frozen=True, kw_only=True)
class AlertEntry(Entry):
    """One alert of the session and how it ended."""

    schema_name: ClassVar[str] = "alert_entry"
    title: ClassVar[str] = "one alert raised during the session"

    id: str = spec(min_length=1)
    code: str = spec(min_length=1)
    level: AlertLevel
    raised_ts: float = spec(minimum=0)
    cleared_ts: float | None = spec(None, minimum=0)
    acknowledged_ts: float | None = spec(None, minimum=0)
    by: str | None = spec(None, min_length=1, doc="who acknowledged it")


@dataclass(frozen=True, kw_only=True)
class WeighInEntry(Entry):
    """A body-mass weigh-in."""

    schema_name: ClassVar[str] = "weigh_in"
    title: ClassVar[str] = "a body-mass weigh-in"

    phase: WeighInPhase
    mass_g: float = spec(exclusive_minimum=0)
    ts: float = spec(minimum=0)


@dataclass(frozen=True, kw_only=True)
class RecordHydration(Entry):
    """The session's hydration figures."""

    schema_name: ClassVar[str] = "session_hydration"
    title: ClassVar[str] = "the session's hydration figures"

    mode: HydrationMode
    intake_ml: float | None = spec(None, minimum=0)
    weigh_ins: tuple[WeighInEntry, ...] = ()
    sweat_rate_l_per_h: float | None = None
    body_mass_loss_pct: float | None = None


@dataclass(frozen=True, kw_only=True)
class TraceEntry(Entry):
    """One sensor's minute of the session (the 2 Hz tremor feed is not kept)."""

    schema_name: ClassVar[str] = "trace"
    title: ClassVar[str] = "one sensor's minute of the session"

    ts: float = spec(minimum=0)
    sensor: str = spec(min_length=1)
    state: ActivityState
    ratio_p50: float | None = spec(None, minimum=0)
    ratio_max: float | None = spec(None, minimum=0)
    rms_mg_p50: float | None = spec(None, minimum=0)


@dataclass(frozen=True, kw_only=True)
class ProfileUpdate(Entry):
    """What the station learnt of the athlete, for the history service to merge."""

    schema_name: ClassVar[str] = "profile_update"
    title: ClassVar[str] = "what the station learnt, for the history service to merge"

    baselines_mg: Mapping[Placement, float] = spec(
        factory=dict, exclusive_minimum=0, doc="rested tremor per placement, milli-g"
    )
    body_mass_g: float | None = spec(None, exclusive_minimum=0)


@dataclass(frozen=True, kw_only=True)
class SessionRecord(FromStation):
    """One record per ended session (``session_record``, QoS 1, durable outbox, never lost).

    ``id`` is the station and the start in ms; readers store records
    idempotently by it. ``trace`` holds one entry per sensor per minute.
    """

    schema_name: ClassVar[str] = "session_record"
    title: ClassVar[str] = (
        "gym/<station>/session_record: one record per ended session (QoS 1, never lost)"
    )
    description: ClassVar[str] = "Delivery is at least once: store idempotently by id."
    #: Hours of trace and dozens of sets fit with room to spare.
    max_bytes: ClassVar[int] = 1024 * 1024

    station: str = spec(pattern=STATION_PATTERN, what="a station id")
    id: str = spec(
        pattern=PRINTABLE_128,
        what="1 to 128 printable characters",
        doc="unique per session: station and start in ms",
    )
    athlete: str | None = _athlete(doc="the athlete id; null for a guest or nobody")
    guest: bool = False
    started_ts: float = spec(minimum=0)
    ended_ts: float = spec(minimum=0)
    end_reason: EndReason | None = spec(None, nullable=False)
    sets: tuple[SetEntry, ...]
    holds: tuple[HoldEntry, ...] = ()
    alerts: tuple[AlertEntry, ...] = ()
    hydration: RecordHydration | None = None
    trace: tuple[TraceEntry, ...] = ()
    profile_update: ProfileUpdate | None = None


# --------------------------------------------------------------------------- history service


@dataclass(frozen=True, kw_only=True)
class Profile(Stamped):
    """An athlete's profile (``_athletes/<athlete>/profile``, retained, history service only).

    Stations apply it at check-in. ``thresholds`` is null unless a coach set them.
    """

    schema_name: ClassVar[str] = "profile"
    title: ClassVar[str] = (
        "gym/_athletes/<athlete>/profile: an athlete's profile, no name (retained, QoS 1)"
    )

    athlete: str = _athlete()
    baselines_mg: Mapping[Placement, float] = spec(
        exclusive_minimum=0, doc="rested tremor per placement, milli-g"
    )
    body_mass_g: float | None = spec(None, exclusive_minimum=0)
    thresholds: Grades | None = spec(None, doc="null unless a coach set them")
    updated_ts: float | None = spec(None, nullable=False, minimum=0)


@dataclass(frozen=True, kw_only=True)
class Card(Stamped):
    """The name the wall shows for an athlete (``_athletes/<athlete>/card``, retained).

    Set by staff; an empty retained payload means the athlete was forgotten.
    """

    schema_name: ClassVar[str] = "card"
    title: ClassVar[str] = (
        "gym/_athletes/<athlete>/card: the name the wall shows (retained, QoS 1; empty = forgotten)"
    )

    athlete: str = _athlete()
    display_name: str = spec(pattern=PRINTABLE_64, what="1 to 64 printable characters")
