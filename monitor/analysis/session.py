"""A station's session: when it started and ended, its sets, and what came after.

Sensors report their own state (:class:`~monitor.analysis.activity.SensorStatus`);
the session puts them together: the station's state is the busiest of its
exercised sensors (reps, then hold, then recovery, then idle), sets are
counted per session, and after the session ends it keeps watching for the red
flag of shaking that persists long after the workout::

    session = SessionTracker()
    session.start(t)                   # a button or MQTT command; or the first set
    status = session.update(t, sensor_statuses)
    status.since_end_s, status.elevated_s
    for event in session.take_events():  # SessionEvent("started" | "ended", t, auto)
        ...                              # everything that follows sessions hears it here

A session starts and ends in one way only, as a :class:`SessionEvent`: a
start or stop asked for (a check-in, the button, a command) and one the
session makes itself (its first set; ``auto_end_s`` without one) alike.
Whatever follows sessions (the analyses, the hydration tracker, the session
record) takes the events rather than watching the figures change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .activity import HOLD, IDLE, RECOVERY, REPS, SensorStatus

_PRIORITY = {REPS: 3, HOLD: 2, RECOVERY: 1, IDLE: 0}


@dataclass(frozen=True)
class SessionConfig:
    auto_start: bool = True  # the first set starts a session when none is running
    auto_end_s: float = 900.0  # this long with no set ends the session
    persist_ratio: float = 2.0  # "still shaking": at least this ratio to baseline ...
    visible_mg: float = 7.0  # ... and at least visible amplitude (Wade et al. 1982)
    dip_grace_s: float = 30.0  # a brief dip does not end "still shaking"


STARTED, ENDED = "started", "ended"


@dataclass(frozen=True)
class SessionEvent:
    """A session started or ended at ``t``; ``auto``: the session did it itself (its first set
    started it, ``auto_end_s`` without a set ended it), else it was asked to."""

    kind: str  # STARTED or ENDED
    t: float
    auto: bool = False


@dataclass(frozen=True)
class SessionStatus:
    t: float
    active: bool
    started: float | None
    ended: float | None
    state: str
    set_count: int
    reps: int
    last_set_end: float | None
    duration_s: float | None
    since_end_s: float | None  # time since the session ended (None while active or never)
    elevated_s: float | None  # how long tremor has been elevated without a break, now
    elevated_sensors: tuple[str, ...]
    ratio: float | None  # the highest ratio among exercised sensors
    baseline_mg: float | None
    recovery_s: float | None
    fatigue_trend: float | None


class SessionTracker:
    """See the module docstring."""

    def __init__(
        self, config: SessionConfig | None = None, *, exercised: Mapping[str, bool] | None = None
    ):
        self.cfg = config or SessionConfig()
        self.exercised = dict(exercised or {})
        self.started: float | None = None
        self.ended: float | None = None
        self._set_base: dict[str, int] = {}
        self._last_set_end: float | None = None
        self._elevated_since: float | None = None
        self._last_elevated: float | None = None
        self._rebase = False  # the next update takes the sensors' set counts as its base
        self._auto: tuple[str, object] | None = None  # the set that started the session, if one did
        self._events: list[SessionEvent] = []

    @property
    def active(self) -> bool:
        return self.started is not None and self.ended is None

    def start(self, t: float, *, auto: bool = False) -> bool:
        """Start a session at ``t`` (``auto``: its first set did); False if one is running."""
        if self.active:
            return False
        self.started, self.ended = t, None
        self._last_set_end = None
        self._auto = None
        self._rebase = True
        self._events.append(SessionEvent(STARTED, t, auto))
        return True

    def stop(self, t: float, *, auto: bool = False) -> bool:
        """End the session at ``t`` (``auto``: it ended by itself); False if none is running."""
        if not self.active:
            return False
        self.ended = t
        self._events.append(SessionEvent(ENDED, t, auto))
        return True

    def take_events(self) -> list[SessionEvent]:
        """The starts and ends since the last call, oldest first (each handed out once)."""
        events, self._events = self._events, []
        return events

    def update(self, t: float, sensors: Mapping[str, SensorStatus]) -> SessionStatus:
        worked = [s for name, s in sensors.items() if self.exercised.get(name, True)] or list(
            sensors.values()
        )
        for s in worked:
            for kind, what in s.events:
                if kind == "set_started" and not self.active and self.cfg.auto_start:
                    self.start(s.set_start if s.set_start is not None else t, auto=True)
                    self._auto = (s.sensor, what)
                elif (
                    kind == "set_cancelled"
                    and self._auto == (s.sensor, what)
                    and self._last_set_end is None
                ):
                    # the "set" that started this session was not one: no session either
                    self.started = self.ended = None
                    self._auto = None
            if s.last_set is not None:
                self._last_set_end = max(self._last_set_end or s.last_set.end, s.last_set.end)
        if self.active and self.cfg.auto_end_s > 0:
            busy = any(s.state in (REPS, HOLD) for s in worked)
            last = self._last_set_end if self._last_set_end is not None else self.started
            if not busy and last is not None and t - last >= self.cfg.auto_end_s:
                self.stop(last, auto=True)  # the session ended when its last set did
        if self._rebase:
            self._set_base = {s.sensor: s.set_count for s in worked}
            self._rebase = False
        state = max((s.state for s in worked), key=lambda st: _PRIORITY.get(st, 0), default=IDLE)
        counts = [s.set_count - self._set_base.get(s.sensor, 0) for s in worked]
        # Only a still window's ratio to the rested baseline says "still shaking"; a moving
        # window graded against its set's own reps says nothing about rest.
        elevated = tuple(
            s.sensor
            for s in sensors.values()
            if s.ratio is not None
            and s.rms_mg is not None
            and s.graded != "set"
            and s.ratio >= self.cfg.persist_ratio
            and s.rms_mg >= self.cfg.visible_mg
        )
        if elevated:
            if self._elevated_since is None or (
                self._last_elevated is not None and t - self._last_elevated > self.cfg.dip_grace_s
            ):
                self._elevated_since = t
            self._last_elevated = t
        elif self._last_elevated is None or t - self._last_elevated > self.cfg.dip_grace_s:
            self._elevated_since = None
        ratios = [s.ratio for s in worked if s.ratio is not None]
        main = max(worked, key=lambda s: s.ratio or 0.0, default=None)
        return SessionStatus(
            t=t,
            active=self.active,
            started=self.started,
            ended=self.ended,
            state=state,
            set_count=max(counts, default=0) if self.started is not None else 0,
            reps=max((s.reps for s in worked), default=0),
            last_set_end=self._last_set_end,
            duration_s=None if self.started is None else (self.ended or t) - self.started,
            since_end_s=None if self.ended is None else t - self.ended,
            elevated_s=None if self._elevated_since is None else t - self._elevated_since,
            elevated_sensors=elevated,
            ratio=max(ratios) if ratios else None,
            baseline_mg=main.baseline_mg if main else None,
            recovery_s=main.recovery_s if main else None,
            fatigue_trend=main.fatigue_trend if main else None,
        )
