"""Mass on the load cell: a water-bottle dock and a body scale, with their truths.

The simulated NAU7802 samples a *mass source*, ``mass_g(t) -> (N,)`` grams on the load
cell; the chip adds its own noise, so these return the true mass. Both sources are
written as a list of happenings at absolute times, each call returning the source::

    dock = (BottleDock(seed=3, bottle_g=150, water_ml=600)
            .sip(at=120)                   # lift, drink 20-60 mL, put back
            .knock(at=300)                 # a brief wobble, same mass after
            .refill(at=900))               # away to the fountain, back full
    dock.mass_g(np.arange(0, 1000, 0.0125))
    dock.truth.intake_ml_at([1000.0])      # what was drunk by then

    scale = BodyScale(seed=4).weigh_in(at=20, mass_kg=70.0).weigh_in(at=3560, mass_kg=69.1)
    scale.truth.weigh_ins[0].mass_g        # 70000.0

:func:`~monitor.sim.scenarios.library.hydration_session` pairs the two with numbers
that give a known sweat rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .sources import OverlayTrack, Timed, as_times, raised_cosine
from .truth import Event

LIFT_S = 0.3  # hand takes the bottle's weight off the dock
PUT_DOWN_S = 0.25
SETTLE_S = 0.5  # the put-down bump has rung out by then


class _Ring:
    """A damped wobble of the reading: a bottle knocked or set down, a body stepping on."""

    def __init__(self, start: float, amp_g: float, hz: float, tau: float, length: float):
        self.start, self.end = start, start + length
        self._amp, self._w, self._tau = amp_g, 2.0 * np.pi * hz, tau

    def mass_g(self, t: np.ndarray) -> np.ndarray:
        age = t - self.start
        return self._amp * np.exp(-age / self._tau) * np.sin(self._w * age)


class _Sway:
    """Standing on a scale: the reading sways with the body, faded in and out."""

    def __init__(
        self,
        start: float,
        end: float,
        amps_g: np.ndarray,
        hz: np.ndarray,
        phase: np.ndarray,
        ramp: float = 0.5,
    ):
        self.start, self.end = start, end
        self._amps, self._w, self._phase, self._ramp = amps_g, 2.0 * np.pi * hz, phase, ramp

    def mass_g(self, t: np.ndarray) -> np.ndarray:
        fade = raised_cosine(np.minimum(t - self.start, self.end - t) / self._ramp)
        return np.sin(np.multiply.outer(t, self._w) + self._phase) @ self._amps * fade


class _Trace:
    """Piecewise-linear settled mass (knots) plus short additive transients."""

    def __init__(self, start_g: float):
        self.knots_t: list[float] = [0.0]
        self.knots_g: list[float] = [start_g]
        self.transients: list[Timed] = []
        self._compiled: tuple[np.ndarray, np.ndarray, OverlayTrack] | None = None

    def level(self, t: float, g: float) -> None:
        if t <= self.knots_t[-1]:
            raise ValueError(f"happenings must come in time order (at {t:g} s)")
        self.knots_t.append(t)
        self.knots_g.append(g)
        self._compiled = None

    def add(self, transient: Timed) -> None:
        self.transients.append(transient)
        self._compiled = None

    def __call__(self, t: np.ndarray) -> np.ndarray:
        if self._compiled is None:
            self._compiled = (
                np.array(self.knots_t),
                np.array(self.knots_g),
                OverlayTrack(self.transients, "mass_g"),
            )
        knots_t, knots_g, transients = self._compiled
        out = np.interp(t, knots_t, knots_g)
        if transients and t.shape[0]:
            transients.add_to(t, out)
        return out

    @property
    def end(self) -> float:
        return self.knots_t[-1]


# -- the bottle dock ------------------------------------------------------------------


@dataclass(frozen=True)
class DockTruth:
    """What happened at a bottle dock.

    Events: ``lift`` (``duration`` off the dock), ``sip`` (``value`` mL, at the moment of
    drinking, mid-lift), ``refill`` (``value`` mL added, ``duration`` away), ``knock``
    (``value`` peak grams of the wobble). Water is 1 g per mL.
    """

    bottle_g: float
    initial_ml: float
    events: tuple[Event, ...]

    def intake_ml_at(self, t: ArrayLike) -> np.ndarray:
        """Total drunk by each time, mL (a sip counts from the moment of drinking)."""
        sips = [e for e in self.events if e.kind == "sip"]
        times = np.array([e.t for e in sips])
        totals = np.concatenate(([0.0], np.cumsum([e.value for e in sips])))
        return totals[np.searchsorted(times, as_times(t), "right")]

    def water_ml_at(self, t: ArrayLike) -> np.ndarray:
        """Water in the bottle at each time, mL (a refill counts from its return)."""
        changes = sorted(
            (e.t, -e.value) if e.kind == "sip" else (e.t + e.duration, e.value)
            for e in self.events
            if e.kind in ("sip", "refill")
        )
        times = np.array([c[0] for c in changes])
        levels = self.initial_ml + np.concatenate(([0.0], np.cumsum([c[1] for c in changes])))
        return levels[np.searchsorted(times, as_times(t), "right")]

    def on_dock_at(self, t: ArrayLike) -> np.ndarray:
        """True where the bottle sits on the dock (not lifted or away)."""
        t = as_times(t)
        off = np.zeros(t.shape, dtype=bool)
        for e in self.events:
            if e.kind in ("lift", "refill"):
                off |= (t >= e.t) & (t < e.t + e.duration)
        return ~off

    @property
    def total_intake_ml(self) -> float:
        return float(sum(e.value for e in self.events if e.kind == "sip"))

    def events_of(self, kind: str) -> tuple[Event, ...]:
        return tuple(e for e in self.events if e.kind == kind)


class BottleDock:
    """A water bottle on a load-cell dock at the station.

    It starts on the dock holding ``water_ml`` (default: ``capacity_ml``, full). An
    athlete usually drinks by lifting the bottle: the reading falls to ~0 for a few
    seconds and comes back lighter, with a bump as it is set down. Values left as
    ``None`` are drawn from the seed (sips 20-60 mL, lifts 3-8 s, knocks 40-150 g,
    refills 20-60 s away)::

        dock = BottleDock(seed=1).sip(at=60).sip(at=300, ml=45).lift(at=500, seconds=4)
        dock.truth.total_intake_ml
    """

    def __init__(
        self,
        seed: int | None = 0,
        *,
        bottle_g: float = 150.0,
        capacity_ml: float = 600.0,
        water_ml: float | None = None,
    ):
        self._rng = np.random.default_rng(seed)
        self.bottle_g = float(bottle_g)
        self.capacity_ml = float(capacity_ml)
        self._water = self.capacity_ml if water_ml is None else float(water_ml)
        if not 0 <= self._water <= self.capacity_ml:
            raise ValueError("water_ml must be between 0 and capacity_ml")
        self._initial_ml = self._water
        self._trace = _Trace(self.bottle_g + self._water)
        self._events: list[Event] = []

    def __repr__(self) -> str:
        return f"<BottleDock water={self._water:g} mL events={len(self._events)}>"

    @property
    def duration(self) -> float:
        """When the last happening has settled (the trace holds its value after it)."""
        return self._trace.end

    @property
    def water_ml(self) -> float:
        """Water left after the happenings so far."""
        return self._water

    @property
    def truth(self) -> DockTruth:
        return DockTruth(
            self.bottle_g, self._initial_ml, tuple(sorted(self._events, key=lambda e: e.t))
        )

    def mass_g(self, t: ArrayLike) -> np.ndarray:
        """Grams on the load cell at times ``t``."""
        return self._trace(as_times(t))

    def lift(self, at: float, seconds: float | None = None, *, sip_ml: float = 0.0) -> BottleDock:
        """Lift the bottle off the dock for ``seconds``, drink ``sip_ml``, put it back."""
        seconds = self._rng.uniform(3.0, 8.0) if seconds is None else float(seconds)
        if seconds < LIFT_S + PUT_DOWN_S + 0.1:
            raise ValueError("a lift lasts at least 0.65 s")
        if not 0 <= sip_ml <= self._water:
            raise ValueError(f"cannot drink {sip_ml:g} mL from {self._water:g} mL")
        self._away(float(at), seconds, self._water - sip_ml)
        self._events.append(Event(float(at), "lift", duration=seconds))
        if sip_ml:
            self._events.append(Event(float(at) + seconds / 2, "sip", value=float(sip_ml)))
        return self

    def sip(
        self, at: float, ml: float | None = None, *, seconds: float | None = None
    ) -> BottleDock:
        """A sip the way people take one: lift, drink ``ml`` (20-60 mL), put back."""
        ml = self._rng.uniform(20.0, 60.0) if ml is None else float(ml)
        return self.lift(at, seconds, sip_ml=min(ml, self._water))

    def refill(
        self, at: float, *, away_s: float | None = None, to_ml: float | None = None
    ) -> BottleDock:
        """Take the bottle to the fountain and back with ``to_ml`` (default: full)."""
        away_s = self._rng.uniform(20.0, 60.0) if away_s is None else float(away_s)
        to_ml = self.capacity_ml if to_ml is None else float(to_ml)
        if not self._water <= to_ml <= self.capacity_ml:
            raise ValueError("a refill ends between the current water and capacity_ml")
        added = to_ml - self._water
        self._away(float(at), away_s, to_ml)
        self._events.append(Event(float(at), "refill", value=added, duration=away_s))
        return self

    def knock(self, at: float, *, peak_g: float | None = None) -> BottleDock:
        """Bump the bottle: the reading wobbles for about half a second, same mass after."""
        rng = self._rng
        peak = rng.uniform(40.0, 150.0) if peak_g is None else float(peak_g)
        sign = rng.choice([-1.0, 1.0])
        at = float(at)
        mass = self.bottle_g + self._water
        self._trace.level(at, mass)
        self._trace.add(_Ring(at, sign * peak * 1.6, rng.uniform(6.0, 12.0), 0.08, 0.6))
        self._trace.level(at + 0.6, mass)
        self._events.append(Event(at, "knock", value=peak, duration=0.6))
        return self

    def _away(self, at: float, seconds: float, water_after: float) -> None:
        before, after = self.bottle_g + self._water, self.bottle_g + water_after
        back = at + seconds
        trace = self._trace
        trace.level(at, before)
        trace.level(at + LIFT_S, 0.0)
        trace.level(back - PUT_DOWN_S, 0.0)
        trace.level(back, after)
        # Set down with a little extra force, ringing out on the load cell.
        trace.add(_Ring(back, 0.15 * after, self._rng.uniform(8.0, 12.0), 0.06, SETTLE_S))
        trace.level(back + SETTLE_S, after)
        self._water = water_after


# -- the body scale -------------------------------------------------------------------


@dataclass(frozen=True)
class WeighIn:
    """One weigh-in: on the scale from ``start`` to ``end``; between ``stable_start`` and
    ``stable_end`` the reading is ``mass_g`` plus sway (about +-50 g at 0.5-2 Hz)."""

    start: float
    stable_start: float
    stable_end: float
    end: float
    mass_g: float
    label: str = ""


@dataclass(frozen=True)
class ScaleTruth:
    """What happened on a body scale: the weigh-ins, and a ``weigh_in`` event for each."""

    weigh_ins: tuple[WeighIn, ...]

    @property
    def events(self) -> tuple[Event, ...]:
        return tuple(
            Event(w.start, "weigh_in", value=w.mass_g, duration=w.end - w.start)
            for w in self.weigh_ins
        )

    def events_of(self, kind: str) -> tuple[Event, ...]:
        return tuple(e for e in self.events if e.kind == kind)

    def stable_mass_at(self, t: float) -> float | None:
        """The true mass if ``t`` is inside a stable window, else None."""
        for w in self.weigh_ins:
            if w.stable_start <= t < w.stable_end:
                return w.mass_g
        return None


class BodyScale:
    """A platform scale under a load cell: empty (0 g) until someone steps on.

    Stepping on takes about 1.6 s (one foot, the other, a small overshoot); standing
    sways the reading by about +-50 g at 0.5-2 Hz; stepping off takes about 0.8 s::

        scale = BodyScale(seed=2).weigh_in(at=10, mass_kg=70.0, label="pre")
        w = scale.truth.weigh_ins[0]
        scale.mass_g(np.linspace(w.stable_start, w.stable_end, 400)).mean()   # ~70000
    """

    STEP_ON_S = 2.0  # from first contact to a stable reading
    STEP_OFF_S = 0.8

    def __init__(self, seed: int | None = 0):
        self._rng = np.random.default_rng(seed)
        self._trace = _Trace(0.0)
        self._weigh_ins: list[WeighIn] = []

    def __repr__(self) -> str:
        return f"<BodyScale weigh_ins={len(self._weigh_ins)}>"

    @property
    def duration(self) -> float:
        """When the last weigh-in has ended (the scale reads 0 g after it)."""
        return self._trace.end

    @property
    def truth(self) -> ScaleTruth:
        return ScaleTruth(tuple(self._weigh_ins))

    def mass_g(self, t: ArrayLike) -> np.ndarray:
        """Grams on the load cell at times ``t``."""
        return self._trace(as_times(t))

    def weigh_in(
        self, at: float, mass_kg: float, *, stand_s: float | None = None, label: str = ""
    ) -> BodyScale:
        """Step on at ``at``, stand ``stand_s`` seconds (6-10 drawn), step off."""
        rng = self._rng
        stand_s = rng.uniform(6.0, 10.0) if stand_s is None else float(stand_s)
        if stand_s < self.STEP_ON_S + 1.0:
            raise ValueError(f"stand at least {self.STEP_ON_S + 1.0:g} s for a stable reading")
        at, m = float(at), float(mass_kg) * 1000.0
        off = at + stand_s
        trace = self._trace
        trace.level(at, 0.0)
        for dt, share in ((0.35, 0.45), (0.8, 0.92), (1.1, 1.05), (1.6, 1.0)):
            trace.level(at + dt, share * m)
        trace.level(off, m)
        trace.level(off + 0.35, 0.55 * m)
        trace.level(off + self.STEP_OFF_S, 0.0)
        # Sway scales a little with size; 3 lines give about +-50 g peaks at 70 kg.
        amps = np.array([25.0, 15.0, 10.0]) * np.sqrt(m / 70_000.0)
        trace.add(
            _Sway(
                at + 0.6,
                off + 0.5,
                amps,
                rng.uniform(0.5, 2.0, 3),
                rng.uniform(0.0, 2.0 * np.pi, 3),
            )
        )
        self._weigh_ins.append(
            WeighIn(at, at + self.STEP_ON_S, off, off + self.STEP_OFF_S, m, label)
        )
        return self
