"""What really happened in a simulated session, for tests and benchmarks to score against.

Every motion scenario carries a :class:`TremorTruth`: the segments of the session
(rest, reps, hold, recovery, fall, lying), the sets, the discrete events (a fall's
free fall and impact, dropped weights), the mechanical disturbances that are *not*
the athlete (a treadmill next door), and the tremor the sensor really sees at any
time::

    s = strength_session(seed=1)
    hz, mg = s.truth.tremor_at(np.array([60.0, 400.0]))
    for one in s.truth.sets:
        print(one.start, one.end, one.kind, one.rep_count)
    s.truth.segment_at(500.0).kind          # 'rest'

Mass sources carry their own truths (:class:`~monitor.sim.scenarios.mass.DockTruth`,
:class:`~monitor.sim.scenarios.mass.ScaleTruth`) built from the same :class:`Event`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from .sources import as_times

SEGMENT_KINDS = ("rest", "reps", "hold", "recovery", "fall", "lying", "walk", "jog")


@dataclass(frozen=True)
class Segment:
    """A stretch of the session, ``start`` <= t < ``end`` seconds, of one ``kind``.

    ``kind`` is one of :data:`SEGMENT_KINDS`. A ``fall`` segment holds the free fall
    and the impact; the ``lying`` segment after it is the stillness on the floor.
    """

    start: float
    end: float
    kind: str

    @property
    def duration(self) -> float:
        return self.end - self.start

    def contains(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True)
class SetTruth:
    """One set: ``kind`` is ``"reps"`` (``rep_count`` reps at ``rep_hz``) or ``"hold"``.

    ``load`` is the effort as a fraction of maximal (0..1]: for reps, of one-rep max.
    """

    start: float
    end: float
    kind: str
    rep_count: int
    rep_hz: float
    load: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Event:
    """Something that happens at a moment: ``t`` seconds, a ``kind`` and what it measures.

    ``value`` carries the event's size in the unit its kind implies (g of peak
    acceleration for ``impact``/``drop``; mL for ``sip``/``refill``; grams for
    ``knock`` and ``weigh_in``); ``duration`` is how long it lasts (0 if instantaneous).
    """

    t: float
    kind: str
    value: float = 0.0
    duration: float = 0.0


@dataclass(frozen=True)
class Disturbance:
    """Mechanical vibration that is not the athlete, between ``start`` and ``end``.

    ``hz`` lists the frequencies it puts out (a footfall fundamental and its harmonics,
    a motor hum), ``mg`` their amplitudes at the sensor (peak, milli-g).
    """

    start: float
    end: float
    kind: str
    hz: tuple[float, ...]
    mg: tuple[float, ...]


@dataclass(frozen=True, eq=False)
class TremorEnvelope:
    """The tremor amplitude the sensor sees, piecewise closed-form in time.

    On piece ``i`` (from ``starts[i]``), the two components (column 0: physiological
    7-13 Hz, column 1: fatigue 4-7 Hz) are RMS milli-g
    ``a[i] + b[i] * exp(-k[i] * (t - starts[i]))``: an exponential approach to ``a``,
    which is how fatigue builds during effort and fades in rest.
    """

    starts: np.ndarray
    a: np.ndarray
    b: np.ndarray
    k: np.ndarray

    def at(self, t: ArrayLike) -> np.ndarray:
        """(N, 2) RMS milli-g of the two components at times ``t``."""
        t = as_times(t)
        i = np.clip(np.searchsorted(self.starts, t, "right") - 1, 0, len(self.starts) - 1)
        dt = np.maximum(t - self.starts[i], 0.0)[:, None]
        return self.a[i] + self.b[i] * np.exp(-self.k[i] * dt)


@dataclass(frozen=True, eq=False)
class TremorTruth:
    """Ground truth of one motion source.

    ``tremor_hz`` and ``fatigue_hz`` are the centre frequencies of the physiological
    and the fatigue component; ``baseline_mg`` is the rested tremor the sensor sees
    (after its placement's attenuation); ``orientation`` the 3x3 rotation from the
    body (or bench) frame to the sensor frame, so a resting sensor reads
    ``G0 * orientation @ [0, 0, 1]``.
    """

    duration: float
    placement: str
    orientation: np.ndarray
    tremor_hz: float
    fatigue_hz: float
    baseline_mg: float
    segments: tuple[Segment, ...]
    sets: tuple[SetTruth, ...]
    events: tuple[Event, ...]
    disturbances: tuple[Disturbance, ...]
    envelope: TremorEnvelope = field(repr=False)

    def tremor_at(self, t: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """The tremor at times ``t``: (dominant frequency in Hz, total RMS in mg).

        The frequency is the centre of whichever component is larger; the amplitude is
        the RMS of the tremor acceleration vector over both components (3-18 Hz), which
        is what a band-limited RMS of the sensor's signal estimates.
        """
        parts = self.envelope.at(t)
        hz = np.where(parts[:, 0] >= parts[:, 1], self.tremor_hz, self.fatigue_hz)
        return hz, np.hypot(parts[:, 0], parts[:, 1])

    def components_at(self, t: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """RMS mg of (physiological 7-13 Hz component, fatigue 4-7 Hz component)."""
        parts = self.envelope.at(t)
        return parts[:, 0], parts[:, 1]

    def segment_at(self, t: float) -> Segment:
        """The segment containing ``t`` (the last one continues past the end)."""
        for segment in self.segments:
            if t < segment.end:
                return segment
        return self.segments[-1]

    def segments_of(self, kind: str) -> tuple[Segment, ...]:
        return tuple(s for s in self.segments if s.kind == kind)

    def events_of(self, kind: str) -> tuple[Event, ...]:
        return tuple(e for e in self.events if e.kind == kind)
