"""Hydration from a load cell: sips from a bottle dock, sweat from a body scale.

The analysis sees only ``(t, mass_g)`` readings: seconds on the station's clock
and grams, as a calibrated scale gives them (about 10 a second). It knows
nothing of I2C or MQTT; it returns frozen values that the alert rules and the
MQTT payloads read.

A scale in ``bottle`` mode carries a drinking bottle on a dock. People drink by
lifting the bottle, so the reading falls to about zero for a few seconds and
comes back lighter, with a bump as the bottle is set down. Water is 1 g per mL,
so the drop between the settled mass before and after is the sip::

    bottle = BottleTracker(session_start=clock.now())
    for reading in readings:                      # ScaleReading(t, raw, mass_g, sensor)
        bottle.feed(reading.t, reading.mass_g)
    bottle.status().intake_ml                     # 250.0

A scale in ``body`` mode is a platform an athlete steps on before and after the
session. Sweat rate follows the ACSM field method (Sawka et al. 2007; Baker
2017), 1 kg = 1 L::

    sweat_rate_l_per_h = (pre - post + fluid_intake - urine) / hours
    body_mass_loss_pct = (pre - post) / pre * 100

    body = BodyScaleTracker()
    body.weigh_in("pre", athlete="A12")           # or let the first weigh-in be "pre"
    ...                                           # feed readings through the session
    body.status(intake_ml=bottle.intake_ml).sweat_rate_l_per_h

Both trackers judge a mass only once it is *stable*: the last ``stable_s``
seconds of readings stay within a tolerance of their median (3 g for a bottle;
100 g for a body, since people sway). Everything between two stable masses --
a lift, a knock, someone stepping on -- is a *disturbance*, and what it did is
read from the stable masses on either side of it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, fields
from statistics import median

BOTTLE = "bottle"
BODY = "body"
MODES = (BOTTLE, BODY)
PHASES = ("pre", "post")

#: Readings beyond this many grams (a tonne) are not a bottle or a person but a
#: fault or a wrong calibration; they are ignored rather than summed into totals.
PLAUSIBLE_G = 1e6

# Event kinds. Bottle: one event per disturbance, saying what it did.
SIP = "sip"  # value: mL drunk; duration: s off the dock (0 if drunk on it)
REFILL = "refill"  # value: mL added; duration: s away
LIFT = "lift"  # lifted and put back with the same water; value: 0
KNOCK = "knock"  # a wobble on the dock, same mass after; value: peak g
PLACED = "placed"  # the first bottle seen on the dock; value: its mass, g
LOW_INTAKE = "low_intake"  # intake rate fell below the minimum; value: mL/h
INTAKE_OK = "intake_ok"  # ... and rose above it again; value: mL/h
# Body scale.
WEIGH_IN = "weigh_in"  # value: g; phase "pre"/"post"; athlete
WEIGH_IN_FAILED = "weigh_in_failed"  # stepped off before standing still long enough
LOSS_CAUTION = "loss_caution"  # value: body-mass loss, percent (>= caution_loss_pct)
LOSS_WARNING = "loss_warning"  # value: percent (>= warning_loss_pct)
MASS_GAIN = "mass_gain"  # value: g gained; drank more than sweated (low sodium risk)


@dataclass(frozen=True)
class HydrationConfig:
    """Thresholds for both trackers, and the judge of the figures they report.

    Stability: ``stable_s`` of readings within ``bottle_tolerance_g`` (or
    ``body_tolerance_g``) of their median; readings more than ``max_gap_s``
    apart start the window afresh.

    Bottle: a settled mass lower by at least ``min_sip_ml`` is a sip, higher by
    at least ``min_refill_ml`` a refill; smaller changes are drift and are
    absorbed. Below ``off_dock_g`` the dock is empty; for ``lift_min_s`` or longer
    the bottle counts as lifted. A wobble that returns to the same mass is a
    knock if it strayed at least ``knock_min_g``.

    Body: at least ``min_body_g`` on the platform is a person. A weigh-in takes
    the mean of its stable stretch, and is complete after ``weigh_in_s`` of it
    (or when the person steps off). A weigh-in within ``repeat_weigh_in_s`` of
    the pre weigh-in re-does it. A pre weigh-in up to ``pre_valid_s`` before a
    session starts still counts for it (athletes weigh in, then warm up). Post
    above pre by ``mass_gain_g`` or more is a mass gain; 100 g is the
    repeatability a body scale needs (PHYSIOLOGY.md).

    Judging: a loss of ``caution_loss_pct`` (1 %) and ``warning_loss_pct``
    (2 %, where performance and cognition suffer, ACSM); intake below
    ``min_intake_ml_per_h`` once the session has run ``low_intake_after_s``.
    :meth:`loss_level`, :meth:`gained` and :meth:`low_intake` are the only judges
    of these thresholds: the trackers' events and the station's fluid alerts
    (:mod:`monitor.alerts`) both ask them.
    ``expected_intake_ml_per_h`` is the 400-800 mL/h range ACSM guidance gives,
    for displays. The intake rate is reported once ``rate_after_s`` of the
    session have passed: one early sip would otherwise read as litres an hour.

        cfg = HydrationConfig(min_sip_ml=8.0)
        cfg.tolerance_g("body")        # 100.0
        cfg.loss_level(1.4)            # 'caution'
        cfg.gained(70000.0, 70050.0)   # False: within what a body scale repeats to
    """

    stable_s: float = 1.5
    bottle_tolerance_g: float = 3.0
    body_tolerance_g: float = 100.0
    max_gap_s: float = 1.0

    min_sip_ml: float = 5.0
    min_refill_ml: float = 20.0
    off_dock_g: float = 20.0
    lift_min_s: float = 0.25
    knock_min_g: float = 10.0

    min_body_g: float = 20_000.0
    weigh_in_s: float = 5.0
    repeat_weigh_in_s: float = 300.0
    pre_valid_s: float = 1800.0
    mass_gain_g: float = 100.0

    caution_loss_pct: float = 1.0
    warning_loss_pct: float = 2.0
    min_intake_ml_per_h: float = 250.0
    low_intake_after_s: float = 1800.0
    expected_intake_ml_per_h: tuple[float, float] = (400.0, 800.0)
    rate_after_s: float = 300.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            values = value if isinstance(value, tuple) else (value,)
            for v in values:
                if (
                    isinstance(v, bool)
                    or not isinstance(v, (int, float))
                    or not math.isfinite(v)
                    or v < 0
                ):
                    raise ValueError(
                        f"hydration.{f.name} must be a finite number >= 0, not {value!r}"
                    )
        for name in (
            "stable_s",
            "bottle_tolerance_g",
            "body_tolerance_g",
            "max_gap_s",
            "min_sip_ml",
            "min_refill_ml",
            "off_dock_g",
            "min_body_g",
            "weigh_in_s",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"hydration.{name} must be greater than 0")
        if self.max_gap_s >= self.stable_s:
            raise ValueError("hydration.max_gap_s must be shorter than hydration.stable_s")
        if self.warning_loss_pct < self.caution_loss_pct:
            raise ValueError(
                "hydration.warning_loss_pct must not be below hydration.caution_loss_pct"
            )
        low, high = self.expected_intake_ml_per_h
        if len(self.expected_intake_ml_per_h) != 2 or low > high:
            raise ValueError(
                "hydration.expected_intake_ml_per_h must be (low, high) with low <= high"
            )

    def tolerance_g(self, mode: str) -> float:
        """How far readings may stray from their median and still be stable, in ``mode``."""
        return {BOTTLE: self.bottle_tolerance_g, BODY: self.body_tolerance_g}[_mode(mode)]

    def loss_level(self, loss_pct: float | None) -> str:
        """``"none"``, ``"caution"`` or ``"warning"`` for a body-mass loss in percent."""
        if loss_pct is None or not loss_pct >= self.caution_loss_pct:
            return "none"
        return "warning" if loss_pct >= self.warning_loss_pct else "caution"

    def gained(self, pre_g: float | None, post_g: float | None) -> bool:
        """Post heavier than pre by ``mass_gain_g`` or more: drank more than was sweated."""
        return pre_g is not None and post_g is not None and post_g - pre_g >= self.mass_gain_g

    def low_intake(self, rate_ml_per_h: float | None, session_s: float | None) -> bool:
        """Drinking less than ``min_intake_ml_per_h`` once the session has run
        ``low_intake_after_s``."""
        return (
            rate_ml_per_h is not None
            and session_s is not None
            and session_s >= self.low_intake_after_s
            and rate_ml_per_h < self.min_intake_ml_per_h
        )


@dataclass(frozen=True)
class HydrationEvent:
    """Something a tracker saw. ``t`` is when it began (a sip: when the bottle
    left the dock); ``duration`` how long it took; ``value`` its size in the unit
    its kind implies (see the kinds at the top of the module: mL, g, percent or
    mL/h). Weigh-ins carry their ``phase`` and ``athlete``."""

    t: float
    kind: str
    value: float = 0.0
    duration: float = 0.0
    phase: str | None = None
    athlete: str | None = None


@dataclass(frozen=True)
class HydrationStatus:
    """The figures of the ``hydration`` MQTT payload (PAYLOADS.md), plus the events
    since the tracker's previous status, for the alert rules.

    ``mass_g`` is what is on the scale while it is stable (a bottle: only while
    on the dock), else None. A figure the tracker cannot know yet is None.

        status = tracker.status()
        payload = {"v": 1, "ts": clock.wall(), "station": "bench-1", **status.figures()}
        [e.kind for e in status.events]     # ['sip']
    """

    mode: str
    mass_g: float | None
    intake_ml: float | None
    intake_ml_per_h: float | None
    pre_mass_g: float | None
    post_mass_g: float | None
    body_mass_loss_pct: float | None
    sweat_rate_l_per_h: float | None
    events: tuple[HydrationEvent, ...] = ()

    def figures(self) -> dict[str, str | float | None]:
        """The payload fields (everything but ``events``), as a dict."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "events"}

    @property
    def mass_gain(self) -> bool:
        """Post heavier than pre: the athlete drank more than they sweated."""
        return (
            self.pre_mass_g is not None
            and self.post_mass_g is not None
            and self.post_mass_g > self.pre_mass_g
        )


def _mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"scale mode must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


def _usable(t: float, mass_g: float | None) -> bool:
    """A reading worth looking at: finite time, finite plausible mass."""
    return (
        mass_g is not None
        and isinstance(t, (int, float))
        and isinstance(mass_g, (int, float))
        and math.isfinite(t)
        and math.isfinite(mass_g)
        and abs(mass_g) <= PLAUSIBLE_G
    )


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


class StableDetector:
    """Is the scale settled? The median of the last ``window_s`` seconds when every
    reading in them lies within ``tolerance_g`` of it, else None.

    The window must be covered by readings: a gap longer than ``max_gap_s`` (a
    sensor fault, a paused feed) or time running backwards starts it afresh.

        stable = StableDetector(window_s=1.5, tolerance_g=3.0)
        for i in range(20):
            value = stable.feed(i * 0.1, 500.0 + (i % 2) * 0.4)
        value                           # 500.2 (None for the first 1.5 s)
    """

    def __init__(self, window_s: float = 1.5, tolerance_g: float = 3.0, *, max_gap_s: float = 1.0):
        if not window_s > 0 or not tolerance_g > 0 or not max_gap_s > 0:
            raise ValueError("window_s, tolerance_g and max_gap_s must be positive")
        self.window_s = float(window_s)
        self.tolerance_g = float(tolerance_g)
        self.max_gap_s = float(max_gap_s)
        self._readings: deque[tuple[float, float]] = deque()
        self.value: float | None = None

    def reset(self) -> None:
        self._readings.clear()
        self.value = None

    @property
    def window(self) -> list[tuple[float, float]]:
        """The readings the current decision rests on, oldest first."""
        return list(self._readings)

    def feed(self, t: float, mass_g: float) -> float | None:
        """Add a reading; returns the stable mass or None."""
        r = self._readings
        if r and not 0 <= t - r[-1][0] <= self.max_gap_s:
            r.clear()
        r.append((t, mass_g))
        # Keep one reading at or before the window's start, so "covered" means it.
        while len(r) > 1 and r[1][0] <= t - self.window_s:
            r.popleft()
        if t - r[0][0] < self.window_s - 1e-9:
            self.value = None
            return None
        masses = [m for _, m in r]
        mid = median(masses)
        tol = self.tolerance_g
        self.value = mid if all(abs(m - mid) <= tol for m in masses) else None
        return self.value


class _Session:
    """Start and end of the session the rates are taken over."""

    def __init__(self, start: float | None):
        self.start = start
        self.end: float | None = None

    def elapsed(self, t: float | None) -> float | None:
        if self.start is None or t is None:
            return None
        return max(0.0, (self.end if self.end is not None else t) - self.start)


class _Tracker:
    """What both trackers share: the session, and events handed out by status once each."""

    mode: str

    def __init__(self, config: HydrationConfig | None, session_start: float | None):
        self.cfg = config or HydrationConfig()
        self._stable = StableDetector(
            self.cfg.stable_s, self.cfg.tolerance_g(self.mode), max_gap_s=self.cfg.max_gap_s
        )
        self._session = _Session(session_start)
        self._events: list[HydrationEvent] = []
        self._reported = 0

    def feed(self, t: float, mass_g: float | None) -> list[HydrationEvent]:
        raise NotImplementedError

    def feed_many(self, readings: Iterable[tuple[float, float | None]]) -> list[HydrationEvent]:
        """Feed ``(t, mass_g)`` pairs; returns the events they completed."""
        new: list[HydrationEvent] = []
        for t, g in readings:
            new.extend(self.feed(t, g))
        return new

    def end_session(self, t: float) -> None:
        """The session ended at ``t``: rates stay what they were then."""
        if self._session.start is not None and self._session.end is None:
            self._session.end = max(float(t), self._session.start)

    def _new_session(self, t: float) -> None:
        """A session begins at ``t``; events already handed out by status are dropped."""
        self._session = _Session(float(t))
        del self._events[: self._reported]
        self._reported = 0

    def _unreported(self) -> tuple[HydrationEvent, ...]:
        """The events since the previous status, each handed out once."""
        new = tuple(self._events[self._reported :])
        self._reported = len(self._events)
        return new


class BottleTracker(_Tracker):
    """Fluid intake from a bottle on a load-cell dock.

    Feed it readings; each call returns the events that reading completed. The
    bottle's settled mass is remembered across each disturbance and compared
    with the next settled mass on the dock:

    * lower by ``min_sip_ml`` or more: a sip (lifted to drink, or through a
      straw on the dock); the drop is the intake;
    * higher by ``min_refill_ml`` or more: a refill, never intake;
    * about the same: a lift (it left the dock) or a knock (it wobbled on it);
      slow drift of the load cell is absorbed while the bottle sits still.

    While the bottle is off the dock nothing is compared: the mass it comes back
    with is judged against the last one before it left, however long it was
    away. A different bottle put on the dock reads as a sip or a refill; a sip
    and a refill in one trip away read as their net change.

        bottle = BottleTracker(session_start=0.0)
        for t, g in [(0.1 * i, 600.0) for i in range(30)]:     # settled at 600 g
            bottle.feed(t, g)
        for t, g in [(3.0 + 0.1 * i, 0.0) for i in range(40)]: # lifted for 4 s
            bottle.feed(t, g)
        for t, g in [(7.0 + 0.1 * i, 560.0) for i in range(30)]:
            bottle.feed(t, g)                                  # back 40 g lighter
        bottle.intake_ml, bottle.events[-1].kind               # (40.0, 'sip')
        bottle.on_dock, bottle.mass_g                          # (True, 560.0)

    ``session_start`` is the time the intake rate counts from (the first reading
    if None); :meth:`start_session` begins a new session and :meth:`end_session`
    freezes the rate.

    The dock must be tared *empty*: the tracker tells "bottle on the dock" from
    "dock empty" by ``off_dock_g``. After a tare or a calibration call
    :meth:`calibration_changed`, since masses before and after do not compare.
    """

    mode = BOTTLE

    def __init__(
        self, config: HydrationConfig | None = None, *, session_start: float | None = None
    ):
        super().__init__(config, session_start)
        self._intake = 0.0
        self._ref: float | None = None  # the bottle's settled mass before the disturbance
        self._settled = False  # _ref was taken from the current stable stretch
        self._t: float | None = None
        self._last_g: float | None = None
        # the disturbance in progress
        self._dist_start: float | None = None
        self._dist_peak = 0.0  # largest |reading - _ref| on the dock
        self._below_since: float | None = None
        self._lifted = False  # the bottle left the dock in this disturbance
        self._off_s = 0.0  # ... for this long in all
        self._low = False

    # -- feeding --------------------------------------------------------------
    def feed(self, t: float, mass_g: float | None) -> list[HydrationEvent]:
        """Add one reading (``mass_g`` None, NaN or absurd is skipped); returns new events."""
        if mass_g is None or not _usable(t, mass_g):
            return []
        t, g = float(t), float(mass_g)
        before = len(self._events)
        if self._t is not None and t < self._t:
            self._stable.reset()  # the clock went back: a fresh window
            self._below_since = None
        self._t, self._last_g = t, g
        if self._session.start is None:
            self._session.start = t
        self._track_dock(t, g)
        level = self._stable.feed(t, g)
        if level is None or level < self.cfg.off_dock_g:
            self._disturbed(t, g)
        elif self._settled:
            self._ref = level  # sitting still: follow slow drift
        else:
            self._settle(t, level)
        self._check_rate(t)
        return self._events[before:]

    def _track_dock(self, t: float, g: float) -> None:
        if g < self.cfg.off_dock_g:
            if self._below_since is None:
                self._below_since = t
            return
        if self._below_since is not None:
            self._end_below(t)

    def _end_below(self, t: float) -> None:
        if self._below_since is None:
            return
        away = t - self._below_since
        if away >= self.cfg.lift_min_s:  # shorter dips are a knock's swing
            self._lifted = True
            self._off_s += away
        self._below_since = None

    def _disturbed(self, t: float, g: float) -> None:
        if self._settled:  # the bottle was sitting still until now
            self._settled = False
            self._dist_start, self._dist_peak, self._lifted, self._off_s = t, 0.0, False, 0.0
        elif self._dist_start is None:  # the very first readings
            self._dist_start = t
        if self._ref is not None and g >= self.cfg.off_dock_g:
            self._dist_peak = max(self._dist_peak, abs(g - self._ref))

    def _settle(self, t: float, level: float) -> None:
        """The bottle is stable on the dock after a disturbance: what happened?"""
        cfg = self.cfg
        if self._below_since is not None:  # a lift just ended within the window
            self._end_below(t)
        # Events carry the moment the bottle was first touched (lifted or pressed).
        start = self._dist_start if self._dist_start is not None else t
        away = round(self._off_s, 2)
        if self._ref is None:
            self._add(HydrationEvent(t, PLACED, level))
        else:
            delta = level - self._ref
            if delta <= -cfg.min_sip_ml:
                self._intake += -delta
                self._add(HydrationEvent(start, SIP, -delta, away))
            elif delta >= cfg.min_refill_ml:
                self._add(HydrationEvent(start, REFILL, delta, away))
            elif self._lifted:
                self._add(HydrationEvent(start, LIFT, 0.0, away))
            elif self._dist_peak >= cfg.knock_min_g:
                self._add(HydrationEvent(start, KNOCK, self._dist_peak, round(t - start, 2)))
            # else: noise or drift broke the stillness for a moment; nothing happened
        self._ref = level
        self._settled = True
        self._dist_start, self._dist_peak, self._lifted, self._off_s = None, 0.0, False, 0.0

    def _add(self, event: HydrationEvent) -> None:
        self._events.append(event)

    # -- rates and flags ------------------------------------------------------
    def _check_rate(self, t: float) -> None:
        cfg = self.cfg
        elapsed = self._session.elapsed(t)
        if self._session.end is not None or elapsed is None or elapsed < cfg.low_intake_after_s:
            return
        rate = self._intake / (elapsed / 3600.0) if elapsed > 0 else 0.0
        low = cfg.low_intake(rate, elapsed)
        if low != self._low:
            self._low = low
            self._add(HydrationEvent(t, LOW_INTAKE if low else INTAKE_OK, round(rate, 1)))

    def intake_ml_per_h(self, t: float | None = None) -> float | None:
        """Intake over the session so far (to its end, once ended); None before
        ``rate_after_s`` of session."""
        elapsed = self._session.elapsed(self._t if t is None else t)
        if elapsed is None or elapsed < max(self.cfg.rate_after_s, 1e-9):
            return None
        return self._intake / (elapsed / 3600.0)

    @property
    def intake_ml(self) -> float:
        """Drunk since the session started, mL (the sum of the sips)."""
        return self._intake

    @property
    def low_intake(self) -> bool:
        """Drinking less than ``min_intake_ml_per_h`` after ``low_intake_after_s`` of session."""
        return self._low

    # -- state ---------------------------------------------------------------
    @property
    def events(self) -> tuple[HydrationEvent, ...]:
        """The events of the session (and any not yet reported from before it), oldest first."""
        return tuple(self._events)

    @property
    def on_dock(self) -> bool:
        """A bottle sits on the dock (a dip shorter than ``lift_min_s`` is a wobble)."""
        if self._last_g is None:
            return False
        if self._below_since is None or self._t is None:
            return True
        return self._t - self._below_since < self.cfg.lift_min_s

    @property
    def mass_g(self) -> float | None:
        """The bottle's settled mass while it sits still on the dock, else None."""
        level = self._stable.value
        return level if self._settled and level is not None else None

    @property
    def session_start(self) -> float | None:
        return self._session.start

    def calibration_changed(self) -> None:
        """The scale was tared or calibrated: forget the bottle's mass (the next
        settled one is ``placed``, not a sip); intake and session stay."""
        self._stable.reset()
        self._ref, self._settled = None, False
        self._dist_start, self._dist_peak, self._lifted, self._off_s = None, 0.0, False, 0.0
        self._below_since = None

    def start_session(self, t: float) -> None:
        """Begin a new session at ``t``: intake starts from zero and the events
        already handed out by :meth:`status` are dropped; the bottle on the dock
        stays known, so its next sip counts."""
        self._new_session(t)
        self._intake = 0.0
        self._low = False

    def status(self, t: float | None = None) -> HydrationStatus:
        """The payload figures now, with the events since the previous status."""
        new = self._unreported()
        return HydrationStatus(
            mode=BOTTLE,
            mass_g=_round(self.mass_g, 1),
            intake_ml=round(self._intake, 1),
            intake_ml_per_h=_round(self.intake_ml_per_h(t), 1),
            pre_mass_g=None,
            post_mass_g=None,
            body_mass_loss_pct=None,
            sweat_rate_l_per_h=None,
            events=new,
        )


@dataclass(frozen=True)
class WeighIn:
    """A completed weigh-in: ``t`` when the athlete stepped on, ``mass_g`` the mean
    of the stable stretch, ``stable_s`` how long that stretch lasted."""

    t: float
    mass_g: float
    stable_s: float
    phase: str
    athlete: str | None = None


class _Record:
    """One athlete's pre and post weigh-ins."""

    def __init__(self) -> None:
        self.pre: WeighIn | None = None
        self.post: WeighIn | None = None


class BodyScaleTracker(_Tracker):
    """Weigh-ins on a body scale, and the body-mass loss and sweat rate they give.

    Someone stepping on makes a ramp and some sway, then a stable stretch, then a
    drop back to about zero. A weigh-in is the mean of the stable stretch (the
    sway averages out), complete after ``weigh_in_s`` of it or when the person
    steps off, whichever comes first.

    Which weigh-in is which. :meth:`weigh_in` marks the next weigh-in (or the
    one on the scale now) as ``pre`` or ``post``, for a named athlete; an
    explicit ``pre`` starts that athlete's record afresh. Without marking, the
    first weigh-in of a session is pre; one within ``repeat_weigh_in_s`` of it
    re-does pre (someone stepped on again to check); every later one is post,
    the last replacing the earlier, so the final weigh-in after exercise counts.
    Unmarked weigh-ins belong to the athlete marked last (or to nobody).

        body = BodyScaleTracker()
        body.feed_many(readings)              # pre weigh-in, the session, post weigh-in
        s = body.status(intake_ml=500.0)      # what the bottle dock saw
        s.pre_mass_g, s.post_mass_g           # (70000.0, 69100.0)
        s.body_mass_loss_pct                  # 1.29
        s.sweat_rate_l_per_h                  # 1.42 over the 0.98 h between them

    Hours run between the weigh-ins unless the caller gives ``hours`` (the session
    duration). Without ``intake_ml`` the sweat rate assumes nothing was drunk,
    so it is a lower bound, and ``intake_ml`` stays None in the status.
    """

    mode = BODY

    def __init__(
        self, config: HydrationConfig | None = None, *, session_start: float | None = None
    ):
        super().__init__(config, session_start)
        self._records: dict[str | None, _Record] = {}
        self.athlete: str | None = None  # whose figures the status shows
        self._pending: tuple[str, str | None] | None = None
        self._t: float | None = None
        # the weigh-in in progress
        self._on_since: float | None = None
        self._run_start: float | None = None  # current stable stretch
        self._run_t = 0.0
        self._run_sum = 0.0
        self._run_n = 0
        self._best: tuple[float, float] | None = None  # (seconds, mean) of the longest stretch
        self._done = False  # this stand has given its weigh-in already
        self._undo: tuple[float, str | None, WeighIn | None, WeighIn | None] | None = None

    # -- feeding --------------------------------------------------------------
    def feed(self, t: float, mass_g: float | None) -> list[HydrationEvent]:
        """Add one reading (``mass_g`` None, NaN or absurd is skipped); returns new events."""
        if mass_g is None or not _usable(t, mass_g):
            return []
        t, g = float(t), float(mass_g)
        before = len(self._events)
        if self._t is not None and t < self._t:
            self._stable.reset()
            self._end_run()
        self._t = t
        if self._session.start is None:
            self._session.start = t
        level = self._stable.feed(t, g)
        if g >= self.cfg.min_body_g:
            if self._on_since is None:
                self._on_since, self._best, self._done = t, None, False
            if level is not None:
                self._extend_run(t, g)
            else:
                self._end_run()
            if not self._done and self._best_so_far(t)[0] >= self.cfg.weigh_in_s:
                self._complete(t)
        elif self._on_since is not None:
            self._end_run()
            if not self._done:
                self._complete(t)
            self._on_since = None
        return self._events[before:]

    def _extend_run(self, t: float, g: float) -> None:
        if self._run_start is None:
            # The stretch began with the window that proved it stable.
            window = [(wt, wg) for wt, wg in self._stable.window if wg >= self.cfg.min_body_g]
            self._run_start = window[0][0]
            self._run_sum = sum(wg for _, wg in window)
            self._run_n = len(window)
        else:
            self._run_sum += g
            self._run_n += 1
        self._run_t = t

    def _end_run(self) -> None:
        if self._run_start is not None:
            self._best = self._best_so_far(self._run_t)
        self._run_start = None

    def _best_so_far(self, t: float) -> tuple[float, float]:
        """(seconds, mean g) of the longest stable stretch of this stand."""
        best = self._best or (0.0, 0.0)
        if self._run_start is not None and self._run_n:
            current = (t - self._run_start, self._run_sum / self._run_n)
            if current[0] >= best[0]:
                return current
        return best

    def _complete(self, t: float) -> None:
        self._done = True
        on = self._on_since
        if on is None:  # nobody stood on the scale: nothing to complete
            return
        seconds, mass = self._best_so_far(t)
        if seconds < self.cfg.stable_s:
            self._add(HydrationEvent(on, WEIGH_IN_FAILED, 0.0, round(t - on, 2)))
            return
        self._record(on, mass, seconds)

    def _record(self, t_on: float, mass: float, seconds: float) -> WeighIn:
        cfg = self.cfg
        if self._pending is not None:
            phase, athlete = self._pending
            self._pending = None
            self.athlete = athlete
        else:
            athlete = self.athlete
            record = self._records.get(athlete)
            if record is None or record.pre is None:
                phase = "pre"
            elif record.post is None and t_on - record.pre.t < cfg.repeat_weigh_in_s:
                phase = "pre"  # stepped on again to check
            else:
                phase = "post"
        record = self._records.setdefault(athlete, _Record())
        self._undo = (t_on, athlete, record.pre, record.post)
        w = WeighIn(t_on, mass, seconds, phase, athlete)
        if phase == "pre":
            record.pre, record.post = w, None
        else:
            record.post = w
        self._add(HydrationEvent(t_on, WEIGH_IN, round(mass, 1), round(seconds, 2), phase, athlete))
        if phase == "post" and record.pre is not None:
            self._judge(record.pre, w, t_on)
        return w

    def _judge(self, before: WeighIn, after: WeighIn, t: float) -> None:
        """Flags that a completed pre/post pair raises."""
        cfg = self.cfg
        pre, post = before.mass_g, after.mass_g
        loss = _loss_pct(pre, post)
        level = cfg.loss_level(loss)
        athlete = after.athlete
        if level != "none":
            kind = LOSS_WARNING if level == "warning" else LOSS_CAUTION
            self._add(HydrationEvent(t, kind, round(loss, 2), athlete=athlete))
        if cfg.gained(pre, post):
            self._add(HydrationEvent(t, MASS_GAIN, round(post - pre, 1), athlete=athlete))

    def _add(self, event: HydrationEvent) -> None:
        self._events.append(event)

    # -- commands ---------------------------------------------------------------
    def weigh_in(self, phase: str = "pre", athlete: str | None = None) -> WeighIn | None:
        """Mark a weigh-in as ``phase`` (``"pre"`` or ``"post"``) for ``athlete``.

        If someone has stood still on the scale long enough (``stable_s``), their
        weigh-in is taken now and returned (re-labelled, if it was already taken
        unmarked); otherwise the next weigh-in gets the mark and None is returned.
        """
        if phase not in PHASES:
            raise ValueError(f"phase must be 'pre' or 'post', not {phase!r}")
        if athlete is not None and not isinstance(athlete, str):
            raise ValueError(f"athlete must be a string or None, not {athlete!r}")
        self._pending = (phase, athlete)
        if self._on_since is None or self._t is None:
            return None
        seconds, mass = self._best_so_far(self._t)
        if seconds < self.cfg.stable_s:
            return None
        if self._done and self._undo is not None and self._undo[0] == self._on_since:
            # Taken unmarked already: put back the record as it was before it.
            _, who, pre, post = self._undo
            record = self._records[who]
            record.pre, record.post = pre, post
        self._done = True
        return self._record(self._on_since, mass, seconds)

    # -- figures ----------------------------------------------------------------
    @property
    def events(self) -> tuple[HydrationEvent, ...]:
        """The events of the session (and any not yet reported from before it), oldest first."""
        return tuple(self._events)

    @property
    def pre(self) -> WeighIn | None:
        record = self._records.get(self.athlete)
        return record.pre if record else None

    @property
    def post(self) -> WeighIn | None:
        record = self._records.get(self.athlete)
        return record.post if record else None

    @property
    def on_scale(self) -> bool:
        """Someone stands on the scale."""
        return self._on_since is not None

    @property
    def mass_g(self) -> float | None:
        """What is on the scale while it is stable (the stretch's mean for a person), else None."""
        if self._stable.value is None:
            return None
        if self._run_start is not None and self._run_n:
            return self._run_sum / self._run_n
        return self._stable.value

    @property
    def session_start(self) -> float | None:
        return self._session.start

    def calibration_changed(self) -> None:
        """The scale was tared or calibrated: a stand in progress starts over."""
        self._stable.reset()
        self._end_run()
        self._best = None

    def start_session(self, t: float) -> None:
        """Begin a new session at ``t``.

        Pre weigh-ins taken up to ``pre_valid_s`` before ``t`` still count (the
        athlete weighed in, then warmed up until the first set started the
        session); older weigh-ins and every post are dropped, and so are the
        events already handed out by :meth:`status`.
        """
        t = float(t)
        self._new_session(t)
        for athlete, record in list(self._records.items()):
            if record.pre is None or t - record.pre.t > self.cfg.pre_valid_s:
                del self._records[athlete]
            else:
                record.post = None

    def hours(self, t: float | None = None) -> float | None:
        """Hours between pre and post weigh-ins, else the session so far; None if unknown."""
        pre, post = self.pre, self.post
        if pre is not None and post is not None and post.t > pre.t:
            return (post.t - pre.t) / 3600.0
        elapsed = self._session.elapsed(self._t if t is None else t)
        return elapsed / 3600.0 if elapsed else None

    def status(
        self,
        t: float | None = None,
        *,
        intake_ml: float | None = None,
        urine_ml: float = 0.0,
        hours: float | None = None,
    ) -> HydrationStatus:
        """The payload figures now, with the events since the previous status.

        ``intake_ml`` is what the athlete drank between the weigh-ins (a bottle
        dock's :attr:`BottleTracker.intake_ml`, or what they report); ``urine_ml``
        what they passed; ``hours`` overrides the time between the weigh-ins.
        Values that are not finite and >= 0 (> 0 for hours) count as not given.
        """
        new = self._unreported()
        pre, post = self.pre, self.post
        if hours is None or not _amount(hours) or not hours > 0:
            hours = self.hours(t)
        loss = sweat = rate = None
        intake_ml = intake_ml if _amount(intake_ml) else None
        urine_ml = urine_ml if _amount(urine_ml) else 0.0
        if intake_ml is not None and hours:
            rate = intake_ml / hours
        if pre is not None and post is not None:
            loss = _loss_pct(pre.mass_g, post.mass_g)
            if hours:
                fluid_l = ((intake_ml or 0.0) - urine_ml) / 1000.0
                sweat = ((pre.mass_g - post.mass_g) / 1000.0 + fluid_l) / hours
        return HydrationStatus(
            mode=BODY,
            mass_g=_round(self.mass_g, 1),
            intake_ml=_round(intake_ml, 1),
            intake_ml_per_h=_round(rate, 1),
            pre_mass_g=_round(pre.mass_g if pre else None, 1),
            post_mass_g=_round(post.mass_g if post else None, 1),
            body_mass_loss_pct=_round(loss, 2),
            sweat_rate_l_per_h=_round(sweat, 3),
            events=new,
        )


def _amount(value: float | None) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def _loss_pct(pre_g: float, post_g: float) -> float:
    return (pre_g - post_g) / pre_g * 100.0 if pre_g > 0 else 0.0


def make_tracker(
    mode: str, config: HydrationConfig | None = None, *, session_start: float | None = None
) -> BottleTracker | BodyScaleTracker:
    """The tracker for a scale's ``mode`` (``scale.mode`` in the config).

    tracker = make_tracker("bottle", session_start=clock.now())
    """
    cls = BottleTracker if _mode(mode) == BOTTLE else BodyScaleTracker
    return cls(config, session_start=session_start)
