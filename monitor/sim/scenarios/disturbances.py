"""Things that shake a sensor but are not the athlete's tremor, and the fall.

Each kind comes as a *spec*, drawn once in the body (or bench) frame when a
:class:`~monitor.sim.scenarios.athlete.Scenario` is built, and an *overlay*, the spec
turned into the sensor frame of one source, that adds its acceleration (and rotation
rate) over a short stretch of time. Keeping the two apart lets a second sensor on
the same athlete (:meth:`Scenario.other_body_part`) feel the same fall or the same
treadmill through its own mounting.

Frequencies chosen, and why they are traps for a tremor analysis:

* **dropped weight** near a bench: the bench rings at ~25-40 Hz and ~45-60 Hz, decaying
  with 30-45 ms time constants (gone in ~0.2 s), peak 0.3-1 g at a bench clip. Its
  onset is broadband for a moment, so one analysis window may light up the tremor band.
* **treadmill** at the next station: running footfalls at 2.8 Hz (168 steps/min) with
  harmonics at 5.6, 8.4, 11.2, 14.0 and 16.8 Hz, and belt-motor hum at 25 Hz. The
  harmonics land in the fatigue and physiological tremor bands; a harmonic comb that
  a limb-worn sensor does not see is the tell.
* **fall** (body-worn): near free fall (|a| ~0.1 g) for 0.35-0.5 s while the body
  tumbles about 90 degrees, an impact of 3-6 g lasting ~50 ms with ringing at ~15-25
  Hz, then the body lies still with gravity along a different body axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .sources import G0, MG, mix, raised_cosine, sines
from .truth import Disturbance

TREADMILL_HARMONICS = (1.0, 0.7, 0.5, 0.35, 0.25, 0.15)
"""Relative peak amplitude of footfall harmonics 1..6 (a train of soft impulses)."""


class Ring:
    """Damped sinusoids starting at ``start``: an impact ringing down."""

    def __init__(
        self, start: float, hz: np.ndarray, tau: np.ndarray, vectors: np.ndarray, length: float
    ):
        self.start, self.end = float(start), float(start) + float(length)
        self._w = 2.0 * np.pi * np.asarray(hz, dtype=float)
        self._decay = -1.0 / np.asarray(tau, dtype=float)
        self._vectors = np.asarray(vectors, dtype=float)

    def accel(self, t: np.ndarray) -> np.ndarray:
        age = t - self.start
        columns = np.exp(np.multiply.outer(age, self._decay))
        columns *= np.sin(np.multiply.outer(age, self._w))
        return mix(columns, self._vectors)


class Vibration:
    """Steady sinusoids between ``start`` and ``end``, faded in and out over ``ramp`` s."""

    def __init__(
        self,
        start: float,
        end: float,
        hz: np.ndarray,
        phase: np.ndarray,
        vectors: np.ndarray,
        ramp: float,
    ):
        self.start, self.end = float(start), float(end)
        self._hz = np.asarray(hz, dtype=float)
        self._cycles = np.asarray(phase, dtype=float) / (2.0 * np.pi)
        self._vectors = np.asarray(vectors, dtype=np.float32)
        self._ramp = float(ramp)

    def accel(self, t: np.ndarray) -> np.ndarray:
        fade = raised_cosine(np.minimum(t - self.start, self.end - t) / self._ramp)
        return mix(sines(t, self._hz, self._cycles), self._vectors) * fade[:, None]


class FreeFall:
    """The free-fall phase: gravity's reading drops to ``residual`` g while the body turns.

    The accelerometer reads gravity's reaction only while something holds the body up;
    falling, it reads (nearly) nothing. The drop takes ``onset`` s (knees buckling).
    """

    def __init__(
        self,
        start: float,
        end: float,
        gravity: np.ndarray,
        residual: float,
        turn: np.ndarray,
        onset: float = 0.1,
    ):
        self.start, self.end = float(start), float(end)
        self._lost = (1.0 - residual) * np.asarray(gravity, dtype=float)
        self._turn = np.asarray(turn, dtype=float)
        self._onset = onset

    def accel(self, t: np.ndarray) -> np.ndarray:
        return -raised_cosine((t - self.start) / self._onset)[:, None] * self._lost

    def gyro(self, t: np.ndarray) -> np.ndarray:
        phase = np.pi * (t - self.start) / (self.end - self.start)
        return np.sin(phase)[:, None] * self._turn


class Impact:
    """Hitting the floor: gravity's reading returns (in the new posture) under a short pulse.

    ``gravity`` is the reading lying down; the piece after the fall already includes it,
    so the overlay ramps it in from zero over the pulse instead of stepping.
    """

    def __init__(
        self,
        start: float,
        gravity: np.ndarray,
        pulse: np.ndarray,
        pulse_s: float,
        ring: np.ndarray,
        ring_hz: float,
        spin: np.ndarray,
        length: float = 0.3,
    ):
        self.start, self.end = float(start), float(start) + length
        self._gravity = np.asarray(gravity, dtype=float)
        self._pulse = np.asarray(pulse, dtype=float)
        self._pulse_s = pulse_s
        self._ring = np.asarray(ring, dtype=float)
        self._w = 2.0 * np.pi * ring_hz
        self._spin = np.asarray(spin, dtype=float)

    def _ringing(self, age: np.ndarray) -> np.ndarray:
        return np.exp(-age / 0.03) * np.sin(self._w * age)

    def accel(self, t: np.ndarray) -> np.ndarray:
        age = t - self.start
        x = np.minimum(age / self._pulse_s, 1.0)
        out = (x - 1.0)[:, None] * self._gravity
        out += np.sin(np.pi * x)[:, None] * self._pulse
        out += self._ringing(age)[:, None] * self._ring
        return out

    def gyro(self, t: np.ndarray) -> np.ndarray:
        return self._ringing(t - self.start)[:, None] * self._spin


# -- specs: drawn once in the body frame, built per sensor ------------------------------


@dataclass(frozen=True, eq=False)
class DropSpec:
    """A weight dropped on the floor near the station at ``at`` s."""

    at: float
    peak_g: float
    hz: tuple[float, float]
    tau: tuple[float, float]
    directions: np.ndarray  # (2, 3) body frame, mostly vertical

    @classmethod
    def draw(cls, rng: np.random.Generator, at: float, peak_g: float | None) -> DropSpec:
        peak = rng.uniform(0.3, 1.0) if peak_g is None else float(peak_g)
        hz = (rng.uniform(25.0, 40.0), rng.uniform(45.0, 60.0))
        tau = (rng.uniform(0.035, 0.045), rng.uniform(0.025, 0.035))
        directions = np.array([0.0, 0.0, 1.0]) + 0.35 * rng.normal(size=(2, 3))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        return cls(float(at), peak, hz, tau, directions)

    def build(self, rotation: np.ndarray, floor_gain: float) -> Ring:
        # Two modes sharing the peak; their sum peaks near ``peak_g`` at the sensor.
        amps = self.peak_g * floor_gain * G0 * np.array([0.7, 0.45])
        vectors = (self.directions @ rotation.T) * amps[:, None]
        return Ring(self.at, np.array(self.hz), np.array(self.tau), vectors, length=0.25)


@dataclass(frozen=True, eq=False)
class TreadmillSpec:
    """Someone running on a treadmill next to the station from ``start`` to ``end``."""

    start: float
    end: float
    cadence_hz: float
    footfall_mg: float
    motor_hz: float
    motor_mg: float
    phases: np.ndarray  # (7,) six footfall harmonics, then the motor
    directions: np.ndarray  # (7, 3) body/bench frame, mostly vertical
    ramp: float = 5.0  # s to speed up and slow down

    @classmethod
    def draw(
        cls,
        rng: np.random.Generator,
        start: float,
        end: float,
        *,
        cadence_hz: float,
        footfall_mg: float,
        motor_hz: float,
        motor_mg: float,
    ) -> TreadmillSpec:
        n = len(TREADMILL_HARMONICS) + 1
        phases = rng.uniform(0.0, 2.0 * np.pi, n)
        directions = np.array([0.0, 0.0, 1.0]) + 0.3 * rng.normal(size=(n, 3))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        return cls(
            float(start),
            float(end),
            cadence_hz,
            footfall_mg,
            motor_hz,
            motor_mg,
            phases,
            directions,
        )

    def lines(self, floor_gain: float) -> tuple[np.ndarray, np.ndarray]:
        """(frequencies Hz, peak amplitudes mg) at a sensor with ``floor_gain``."""
        k = np.arange(1, len(TREADMILL_HARMONICS) + 1)
        hz = np.append(np.round(k * self.cadence_hz, 9), self.motor_hz)
        mg = np.append(self.footfall_mg * np.array(TREADMILL_HARMONICS), self.motor_mg)
        return hz, mg * floor_gain

    def build(self, rotation: np.ndarray, floor_gain: float) -> Vibration:
        hz, mg = self.lines(floor_gain)
        vectors = (self.directions @ rotation.T) * (mg * MG)[:, None]
        return Vibration(self.start, self.end, hz, self.phases, vectors, self.ramp)

    def truth(self, floor_gain: float) -> Disturbance:
        hz, mg = self.lines(floor_gain)
        return Disturbance(
            self.start,
            self.end,
            "treadmill",
            tuple(float(f) for f in hz),
            tuple(float(m) for m in mg),
        )


@dataclass(frozen=True, eq=False)
class FallSpec:
    """A fall: free fall from ``start`` to ``impact``, then the hit and lying still."""

    start: float
    impact: float
    residual_g: float
    impact_g: float
    ring_hz: float
    up_before: np.ndarray  # body-frame "up" standing
    up_after: np.ndarray  # body-frame "up" lying
    impact_dir: np.ndarray  # body frame
    ring_dir: np.ndarray

    @classmethod
    def draw(
        cls,
        rng: np.random.Generator,
        start: float,
        up_before: np.ndarray,
        *,
        free_fall_s: float | None,
        impact_g: float | None,
    ) -> FallSpec:
        duration = rng.uniform(0.35, 0.5) if free_fall_s is None else float(free_fall_s)
        peak = rng.uniform(3.0, 6.0) if impact_g is None else float(impact_g)
        # Lying: "up" turns 70-110 degrees about a random horizontal body axis.
        azimuth = rng.uniform(0.0, 2.0 * np.pi)
        tilt = np.radians(rng.uniform(70.0, 110.0))
        axis = np.array([math.cos(azimuth), math.sin(azimuth), 0.0])
        up_after = _rotate(up_before, axis, tilt)
        impact_dir = up_after + 0.25 * rng.normal(size=3)
        ring_dir = rng.normal(size=3)
        return cls(
            float(start),
            float(start) + duration,
            rng.uniform(0.05, 0.15),
            peak,
            rng.uniform(15.0, 25.0),
            np.asarray(up_before, dtype=float),
            up_after,
            impact_dir / np.linalg.norm(impact_dir),
            ring_dir / np.linalg.norm(ring_dir),
        )

    @property
    def turn_axis(self) -> np.ndarray:
        axis = np.cross(self.up_before, self.up_after)
        return axis / np.linalg.norm(axis)

    def build(self, rotation: np.ndarray) -> tuple[FreeFall, Impact]:
        duration = self.impact - self.start
        angle = math.acos(float(np.clip(self.up_before @ self.up_after, -1.0, 1.0)))
        # A half-sine rate profile that integrates to the tumble angle over the fall.
        peak_rate = angle * np.pi / (2.0 * duration)
        axis = rotation @ self.turn_axis
        fall = FreeFall(
            self.start,
            self.impact,
            G0 * rotation @ self.up_before,
            self.residual_g,
            axis * peak_rate,
        )
        impact = Impact(
            self.impact,
            G0 * rotation @ self.up_after,
            self.impact_g * G0 * rotation @ self.impact_dir,
            pulse_s=0.05,
            ring=0.3 * self.impact_g * G0 * rotation @ self.ring_dir,
            ring_hz=self.ring_hz,
            spin=3.0 * axis,
        )
        return fall, impact


def _rotate(v: np.ndarray, axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues: ``v`` turned by ``angle`` radians about unit ``axis``."""
    v = np.asarray(v, dtype=float)
    return (
        v * math.cos(angle)
        + np.cross(axis, v) * math.sin(angle)
        + axis * (axis @ v) * (1.0 - math.cos(angle))
    )
