"""The session timeline in the body frame, and the fatigue model that runs through it.

A :class:`~monitor.sim.scenarios.athlete.Scenario` appends :class:`Block` s; each
holds, besides its motion, the fatigue state as two closed-form curves: ``P`` scales
the physiological (7-13 Hz) tremor, 1 when rested, and ``Q`` the fatigue (4-7 Hz)
component, ``Q_REST`` when rested. Within a block each moves exponentially toward a
target, ``x(t) = a + b * exp(-k * (t - start))``, starting where the previous block
ended, so amplitude is continuous and any time can be evaluated on its own:

* reps: P toward ``1 + (max_fatigue - 1) * load`` with ``REPS_TAU``, Q toward
  ``Q_REST + REPS_Q_GAIN * load``; a 20 s set at 70 % roughly doubles the tremor, and
  sets accumulate when rests are short (Lippold 1981: up to ~10x after two minutes of
  maximal effort; Park et al. 2022: more with more load);
* holds: P the same but faster (``HOLD_TAU``), Q toward ``Q_REST + HOLD_Q_GAIN * load``
  (``HOLD_Q_TAU``): static work keeps the same motor units recruited, and the 4-7 Hz
  component grows until it can dominate;
* rest and recovery: both back toward rest with the scenario's ``recovery_tau``; a
  *persistent* recovery (the red flag) holds them where they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .kinetics import Gait
from .placement import UPRIGHT, Posture

Q_REST = 0.15
"""The rested 4-7 Hz component relative to the physiological one."""

REPS_TAU = 90.0  # s: how fast reps drive tremor toward their ceiling
HOLD_TAU = 60.0  # s: holds fatigue faster, the same motor units never get relief
HOLD_Q_TAU = 40.0  # s: and the 4-7 Hz component grows fastest of all
REPS_Q_GAIN = 2.0  # 4-7 Hz ceiling per unit load in reps, in units of rested tremor
HOLD_Q_GAIN = 12.0  # ... and in holds, enough to overtake the physiological component
SWAY_MG = 3.0  # postural sway below 0.6 Hz at a limb, RMS mg
LYING_TREMOR_GAIN = 0.3  # lying relaxed, no posture to hold: little postural tremor left


@dataclass(frozen=True, eq=False)
class Block:
    """One stretch of the timeline in the body frame, independent of any sensor."""

    kind: str
    start: float
    end: float
    p: tuple[float, float, float]  # P(t) = a + b * exp(-k * (t - start))
    q: tuple[float, float, float]
    posture: Posture = UPRIGHT
    rep_hz: float = 0.0
    peak_g: float = 0.0
    move_dir: np.ndarray | None = None
    turn_axis: np.ndarray | None = None
    turn_rate: float = 0.0  # rad/s peak
    gait: Gait | None = None  # while walking or jogging

    def unexercised(self, coupling: float) -> Block:
        """The same stretch for a body part that does not move, its tremor coupled by
        ``coupling`` (0: stays at baseline, 1: rises exactly like the working part)."""
        (pa, pb, pk), (qa, qb, qk) = self.p, self.q
        return replace(
            self,
            p=(1.0 + coupling * (pa - 1.0), coupling * pb, pk),
            q=(Q_REST + coupling * (qa - Q_REST), coupling * qb, qk),
            rep_hz=0.0,
            peak_g=0.0,
            turn_axis=None,
            turn_rate=0.0,
            move_dir=None if self.gait is None else self.move_dir,
        )  # both walk


def approach(x0: float, target: float, tau: float) -> tuple[float, float, float]:
    """Coefficients (a, b, k) of a curve from ``x0`` toward ``target`` with time constant
    ``tau`` (infinite: stay at ``x0``)."""
    if math.isinf(tau):
        return (x0, 0.0, 0.0)
    return (target, x0 - target, 1.0 / tau)


def value_at(coeffs: tuple[float, float, float], age: float) -> float:
    a, b, k = coeffs
    return a + b * math.exp(-k * age)
