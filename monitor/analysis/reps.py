"""Counting repetitions from the raw stream, orientation-free.

Moving a limb through a rep accelerates it one way, then the other, at the rep
frequency (0.3 to 1.5 Hz). The magnitude of acceleration, |a|, does not depend
on how the sensor is clipped on, and minus its slow average (gravity and
posture) it swings once per rep. A Schmitt trigger counts the swing's
alternate crossings of +threshold and -threshold; two make a rep, whichever
way the set starts. Tremor (small, fast) and noise never cross::

    counter = RepCounter()
    counter.feed(block.t, block.accel)
    counter.count
"""

from __future__ import annotations

from collections import deque

import numpy as np

G = 9.80665


class RepCounter:
    """See the module docstring. ``threshold_mg`` is the swing that counts as movement."""

    def __init__(self, *, threshold_mg: float = 40.0, rate_hz: float = 25.0, smooth_hz: float = 2.5,
                 baseline_s: float = 20.0, settle_s: float = 2.0):
        self.threshold = threshold_mg * 1e-3 * G
        self.rate_hz = rate_hz
        self._crossings = 0
        self._side = 0               # +1 or -1: the threshold crossed last
        self.crossing_times: deque[float] = deque(maxlen=4096)
        self._lp: float | None = None
        self._slow: float | None = None
        # one-pole filters at the decimated rate: a low-pass that drops tremor and a
        # much slower one that tracks gravity and posture
        self._a_lp = 1 - np.exp(-2 * np.pi * smooth_hz / rate_hz)
        self._a_slow = 1 - np.exp(-1.0 / (baseline_s * rate_hz))
        self._acc = 0.0
        self._acc_n = 0
        self._acc_t0: float | None = None
        # |a| at rest is gravity plus the sensor's offsets; the slow average learns
        # those, and slowly enough (20 s) that a rep's swing hardly leaks into it.
        self._settle = int(settle_s * rate_hz)
        self._steps = 0

    @property
    def count(self) -> int:
        """Reps since the last reset; the first half-swing already counts as one."""
        return (self._crossings + 1) // 2

    def reset(self) -> None:
        self._crossings = 0
        self._side = 0

    def count_between(self, start: float, end: float) -> int:
        """Reps whose swings fell between ``start`` and ``end`` (a set found after the fact)."""
        n = sum(1 for c in self.crossing_times if start <= c <= end)
        return (n + 1) // 2

    def feed(self, t: np.ndarray, accel: np.ndarray) -> int:
        """Add samples; returns reps completed within them."""
        if len(t) == 0:
            return 0
        mag = np.sqrt(np.einsum("ij,ij->i", accel, accel))
        # Average down to rate_hz: blocks of equal time, however the samples came.
        bins = np.floor(np.asarray(t) * self.rate_hz).astype(np.int64)
        before = self.count
        edges = np.flatnonzero(np.diff(bins)) + 1
        starts = np.concatenate(([0], edges))
        sums = np.add.reduceat(mag, starts)
        counts = np.diff(np.concatenate((starts, [len(mag)])))
        for k, (s, c) in enumerate(zip(sums, counts)):
            b = bins[starts[k]]
            if self._acc_t0 is not None and b != self._acc_t0:
                self._step(self._acc / self._acc_n, (self._acc_t0 + 1) / self.rate_hz)
                self._acc, self._acc_n = 0.0, 0
            self._acc_t0 = b
            self._acc += s
            self._acc_n += c
        return self.count - before

    def _step(self, value: float, t: float) -> None:
        self._steps += 1
        if self._lp is None:
            self._lp = self._slow = value
            return
        self._lp += self._a_lp * (value - self._lp)
        if self._steps <= self._settle:
            # Settling: the running mean of the first seconds, not one noisy value.
            self._slow += (self._lp - self._slow) / self._steps
            return
        self._slow += self._a_slow * (self._lp - self._slow)
        swing = self._lp - self._slow
        side = 1 if swing > self.threshold else -1 if swing < -self.threshold else 0
        if side and side != self._side:
            self._side = side
            self._crossings += 1
            self.crossing_times.append(t)
