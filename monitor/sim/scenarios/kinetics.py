"""The acceleration of moving bodies as real sensors record it: the jerk of reps, and gait.

Learnt from real recordings (``shared/data/realdata``; the figures the simulator is
checked against are in ``tests/test_sim_realism.py``):

* **Reps are harmonic-rich.** A smooth rep would put nothing above 3 Hz. Real reps
  do: every turn of the limb ends one push and starts the next with a jerk, and the
  wrist, the strap and the soft tissue ring with it. On the SPAR wrist sets the
  3-18 Hz band holds about a quarter of what the 0.3-3 Hz band holds (median 0.24,
  5-95 % 0.07-0.65), spread from 3 Hz (where its peak is, 3.1-3.4 Hz) to about
  15 Hz, and it varies from rep to rep. Here each turn (two a rep) sets off a
  burst of damped oscillations at 2-16 Hz, sized at random around a share drawn
  for the set, so the band's content matches the real one in size, spectrum and
  unsteadiness. Slower reps are the same movement stretched in time, so less of
  their spectrum stays above 3 Hz: the share scales with the rep rate.
* **Gait.** Walking and running are a train of foot strikes: the vertical specific
  force is a stance pulse each step with a heel strike at its start, and gravity's
  reading swings with the thigh or the arm once a stride. MobiFall's pocket phones
  (the thigh) walk at 1.5-1.9 steps/s with a 0.3-3 Hz RMS of about 300 mg, as much
  again in 3-18 Hz, ``|a|`` between 0.3-0.6 g and 1.9 g; jogging at 2.6 steps/s has
  flight phases (``|a|`` near 0 g) and strikes of 2.2-2.5 g.

Both are built once per block and evaluated as closed-form functions of time, like
everything else in the scenarios: bursts as an overlay of short items, gait as a
Fourier series of one step folded into the block's sinusoids.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .sources import G0, mix, unit

#: a set's 3-18 Hz RMS as a share of its 0.3-3 Hz RMS is drawn log-normally around this ...
REP_SHARE_MEDIAN = 0.22
#: ... with this spread (natural log): about the SPAR sets' 10-90 % range
REP_SHARE_SIGMA = 0.5
REP_SHARE_RANGE = (0.06, 0.7)
#: the SPAR sets' median rep rate: the share above was measured there. A slower rep is the
#: same movement stretched in time, so its spectrum slides down and less of it stays above
#: 3 Hz: the share falls with the rep rate (to the power REP_SHARE_RATE_EXP)
REP_HZ_REF = 0.6
REP_SHARE_RATE_EXP = 1.5
BURST_HZ = (2.0, 16.0)
BURST_LINES = 5
#: amplitude spectrum of the bursts ~ f^-BURST_SLOPE: most of it near 3 Hz, like the real band
BURST_SLOPE = 1.3
BURST_TAU_S = (0.08, 0.25)
BURST_JITTER = 0.35  # rep to rep, natural log of amplitude
BURST_LENGTH_S = 1.0
STRIKE_S = 0.015


class Burst:
    """Damped sinusoids from ``start``: one turn's jerk ringing down (an overlay item)."""

    def __init__(
        self, start: float, hz: np.ndarray, tau: np.ndarray, phase: np.ndarray, vectors: np.ndarray
    ):
        self.start, self.end = float(start), float(start) + BURST_LENGTH_S
        self._w = 2.0 * np.pi * hz
        self._decay = -1.0 / tau
        self._phase = phase
        self._vectors = vectors

    def accel(self, t: np.ndarray) -> np.ndarray:
        age = (t - self.start)[:, None]
        # a raised-cosine attack over 20 ms: no step at the burst's start
        attack = np.clip(age / 0.02, 0.0, 1.0)
        columns = (
            np.exp(age * self._decay)
            * np.sin(age * self._w + self._phase)
            * (0.5 - 0.5 * np.cos(np.pi * attack))
        )
        return mix(columns, self._vectors)


@dataclass(frozen=True, eq=False)
class TurnsSpec:
    """The jerk at every turn of one set, drawn in the body frame."""

    start: float
    rep_hz: float
    reps: int
    share: float  # target 3-18 Hz RMS / 0.3-3 Hz RMS of the set
    voluntary_rms_g: float  # the set's 0.3-3 Hz RMS at the body, g
    move_dir: np.ndarray
    draws: np.random.Generator

    @classmethod
    def draw(
        cls,
        rng: np.random.Generator,
        start: float,
        rep_hz: float,
        reps: int,
        voluntary_rms_g: float,
        move_dir: np.ndarray,
    ) -> TurnsSpec:
        share = float(
            np.clip(REP_SHARE_MEDIAN * math.exp(REP_SHARE_SIGMA * rng.normal()), *REP_SHARE_RANGE)
        )
        share *= (rep_hz / REP_HZ_REF) ** REP_SHARE_RATE_EXP
        return cls(
            start, rep_hz, reps, share, voluntary_rms_g, np.asarray(move_dir, dtype=float), rng
        )

    def build(self, rotation: np.ndarray, motion_gain: float) -> list[Burst]:
        rng = np.random.default_rng(self.draws.integers(1 << 62))  # the same bursts every build
        turns = 2 * self.reps
        rate = 2.0 * self.rep_hz  # turns per second
        target = self.share * self.voluntary_rms_g * G0 * motion_gain  # m/s^2 RMS in 3-18 Hz
        lo, hi = BURST_HZ
        bursts = []
        for k in range(turns):
            hz = np.exp(rng.uniform(math.log(lo), math.log(hi), BURST_LINES))
            tau = rng.uniform(*BURST_TAU_S, BURST_LINES)
            weight = hz**-BURST_SLOPE * np.exp(BURST_JITTER * rng.normal())
            # power of one damped line ~ A^2 tau / 4; the average over turns must be target^2
            scale = target * math.sqrt(4.0 / (rate * float(np.sum(weight**2 * tau))))
            directions = unit(self.move_dir + 0.6 * rng.normal(size=(BURST_LINES, 3)))
            vectors = (directions @ rotation.T) * (scale * weight)[:, None]
            at = self.start + (k / 2.0 + 0.25) / self.rep_hz + rng.normal(0.0, 0.03)
            bursts.append(
                Burst(max(at, self.start), hz, tau, rng.uniform(0, 2 * np.pi, BURST_LINES), vectors)
            )
        return bursts


# -- gait -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gait:
    """How a gait loads the body: steps per second, how much of a step is stance, the
    strike, the bounce and the swing of the limb or thigh (all at a worn sensor)."""

    name: str
    step_hz: float
    stance: float  # share of a step with the foot loaded (running < 0.5: flight)
    bounce: float  # 0..1: how far the stance pulse swings the vertical force
    strike_g: float  # heel strike at the start of stance
    swing_g: float  # gravity's reading swung by the thigh or arm, once a stride

    @classmethod
    def walking(cls, step_hz: float = 1.8) -> Gait:
        return cls("walk", step_hz, stance=0.6, bounce=0.3, strike_g=1.6, swing_g=0.15)

    @classmethod
    def jogging(cls, step_hz: float = 2.7) -> Gait:
        return cls("jog", step_hz, stance=0.4, bounce=0.68, strike_g=1.2, swing_g=0.1)

    def lines(self, top_hz: float = 20.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fourier series of one step's vertical force, in g about 1 g, up to ``top_hz``:
        (frequencies, amplitudes, phases in cycles) of sines."""
        n = 512
        phase = np.arange(n) / n
        pulse = np.where(phase < self.stance, np.sin(np.pi * phase / self.stance), 0.0)
        pulse /= pulse.mean()  # a step's mean force is body weight
        force = (1.0 - self.bounce) + self.bounce * pulse
        # a heel strike lasts some 15 ms (sigma): in phase units that is 0.015 s * step_hz
        force += self.strike_g * np.exp(-0.5 * ((phase - 0.03) / (STRIKE_S * self.step_hz)) ** 2)
        force -= force.mean()
        spectrum = np.fft.rfft(force) / n * 2.0
        k = np.arange(1, min(n // 2, int(top_hz / self.step_hz)) + 1)
        c = spectrum[k]
        # a*cos + b*sin -> amplitude * sin(x + phase)
        return k * self.step_hz, np.abs(c), (np.angle(c) + np.pi / 2) / (2 * np.pi)


def gait_columns(
    gait: Gait, rotation: np.ndarray, up: np.ndarray, side: np.ndarray, start: float, gain: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The gait as sinusoid columns (hz, cycles, sensor-frame vectors) for a block's piece."""
    hz, amp, cycles = gait.lines()
    vertical = rotation @ up
    vectors = np.outer(amp, vertical) * G0 * gain
    # the thigh (or arm) swings once a stride: gravity's reading moves along "side"
    stride = gait.step_hz / 2.0
    hz = np.append(hz, stride)
    cycles = np.append(cycles, 0.0)
    vectors = np.vstack((vectors, gait.swing_g * G0 * gain * (rotation @ side)))
    return hz, cycles - hz * start, vectors


# -- standing ---------------------------------------------------------------------------

#: quiet standing is not still: people shift their weight every so often (MobiFall STD:
#: a still window's 0.3-3 Hz RMS is 9 mg at the median but 40 mg at the 95th percentile,
#: and its 3-18 Hz RMS swings 3.5-6x between the 10th and 99th percentile)
SHIFT_EVERY_S = (5.0, 20.0)
SHIFT_MG = (20.0, 80.0)
SHIFT_S = (0.8, 2.0)
SHIFT_RING_MG = (8.0, 35.0)


class Shift:
    """A shift of weight: a smooth sway of the body one way and back, and the small
    ringing of the feet settling (an overlay item)."""

    def __init__(
        self,
        start: float,
        duration: float,
        sway: np.ndarray,
        ring_hz: np.ndarray,
        ring_tau: np.ndarray,
        ring: np.ndarray,
    ):
        self.start, self.end = float(start), float(start) + duration + 1.0
        self._d = duration
        self._sway = sway
        self._w = 2.0 * np.pi * ring_hz
        self._decay = -1.0 / ring_tau
        self._ring = ring

    def accel(self, t: np.ndarray) -> np.ndarray:
        age = t - self.start
        x = np.clip(age / self._d, 0.0, 1.0)
        out = np.outer(np.sin(2.0 * np.pi * x) * np.sin(np.pi * x), self._sway)
        settle = np.maximum(age - 0.5 * self._d, 0.0)[:, None]
        columns = (
            np.exp(settle * self._decay)
            * np.sin(settle * self._w)
            * (age >= 0.5 * self._d)[:, None]
        )
        return out + mix(columns, self._ring)


@dataclass(frozen=True, eq=False)
class StandingSpec:
    """The weight shifts of one stretch of standing, drawn in the body frame."""

    start: float
    end: float
    up: np.ndarray
    draws: np.random.Generator

    def build(self, rotation: np.ndarray, motion_gain: float) -> list[Shift]:
        rng = np.random.default_rng(self.draws.integers(1 << 62))
        shifts, t = [], self.start + rng.uniform(*SHIFT_EVERY_S) / 2
        while t < self.end - SHIFT_S[1] - 1.0:
            duration = rng.uniform(*SHIFT_S)
            horizontal = unit(np.cross(self.up, rng.normal(size=3)))
            sway = rotation @ horizontal * rng.uniform(*SHIFT_MG) * 1e-3 * G0 * motion_gain
            hz = rng.uniform(3.0, 9.0, 3)
            ring = (unit(rng.normal(size=(3, 3))) @ rotation.T) * (
                rng.uniform(*SHIFT_RING_MG) * 1e-3 * G0 * motion_gain
            )
            shifts.append(Shift(t, duration, sway, hz, rng.uniform(0.1, 0.4, 3), ring))
            t += duration + rng.uniform(*SHIFT_EVERY_S)
        return shifts
