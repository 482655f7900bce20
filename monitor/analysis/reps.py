"""Counting repetitions on the movement itself: its rhythm, its main axis, its swings.

A rep is one excursion of the limb and back. Counting the swings of ``|a|``
(the old way) double-counts a movement in a horizontal plane, where ``|a|``
rises on the way out *and* on the way back, and counts any jerk at a turn as a
swing. This counter follows what rep counters built on wrist and body sensors
do (Morris et al. 2014, RecoFit, CHI '14: period from the autocorrelation, then
peak counting on the principal component; Mortazavi et al. 2014; the SPAR study,
Burns et al. 2018, which the development recordings come from):

1. **Average down** to ``rate_hz`` (25 Hz: reps live below 2 Hz) in bins of
   time, so any sample rate and irregular timing give the same stream. The raw
   three axes are kept, gravity included: a limb that turns moves gravity
   between the sensor's axes, and that is often most of a rep's signal.
2. **Rhythm.** The rep period is the lag of the highest peak of the
   autocorrelation of the three axes together (0.15-1.6 Hz, at least two
   periods in the span). A 3-D trajectory repeats once per rep even where one
   axis swings twice, so the vector autocorrelation is not fooled by a rep with
   two bumps; a peak at a half or a third of the lag that is nearly as high wins
   (a true period repeats at twice itself too). Its height is the movement's
   *periodicity*: below ``min_periodicity`` there is no rhythm and nothing is
   counted.
3. **Main axis.** The three axes are band-passed around the rep frequency
   (0.5x to 1.5x: the fundamental alone, neither drift nor the harmonics at
   each turn) and projected on their principal component.
4. **Swings.** A Schmitt trigger counts alternations of the projection between
   ``+h`` and ``-h``, with ``h`` a fraction of the local swing (the largest
   excursion within 1.5 periods) and never below ``threshold_mg``; two
   alternations make a rep. Alternations closer than a quarter period are a
   glitch and dropped in pairs: periods must be consistent.

The first rep starts where the projection last left zero before its first
alternation; that is when a set is dated from. Everything is
computed on demand over the span asked for, from a bounded buffer::

    counter = RepCounter()
    counter.feed(block.t, block.accel)
    counter.count                          # reps in everything fed since reset()
    trace = counter.trace(start, end)      # RepTrace: count, first_t, period_s, periodicity
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..units import G

__all__ = ["RepCounter", "RepTrace", "count_reps"]


@dataclass(frozen=True)
class RepTrace:
    """Reps found in a stretch of time.

    Attributes:
        count: whole reps (two alternations each).
        first_t: when the first rep began (None without reps).
        last_t: when the last counted alternation happened.
        period_s: the rep period found (None without rhythm).
        periodicity: height of the autocorrelation at that period, 0..1.
        axis: unit vector of the main axis in the sensor frame (None without reps).
        swing_mg: how far the main axis swings in a rep (95th percentile of its
            band-passed acceleration, milli-g).
    """

    count: int
    first_t: float | None = None
    last_t: float | None = None
    period_s: float | None = None
    periodicity: float = 0.0
    axis: tuple[float, float, float] | None = None
    swing_mg: float = 0.0


NO_REPS = RepTrace(0)

#: samples gathered before they are averaged down (a second at 1 kHz)
PENDING_SAMPLES = 1000

#: m/s^2: beyond any accelerometer's range (+-32 g): such a sample is a corrupt read
MAX_ACCEL = 32 * G


def _filtered(x: np.ndarray, fs: float, lo: float, hi: float) -> np.ndarray:
    """Zero-phase filter by FFT: gain 1 between ``lo`` and ``hi``, raised-cosine edges.

    The edges are wide (``lo`` from 0.4x to 1.2x, ``hi`` from 0.85x to 1.35x) so the
    filter hardly rings: a set that starts or stops abruptly must not leave swings in
    the rest around it. The span is mirrored at both ends first, for the same reason
    at the span's own edges.
    """
    n = x.shape[0]
    pad = min(n - 1, max(1, n // 2))
    xp = np.pad(x - x.mean(axis=0), ((pad, pad), (0, 0)), mode="reflect")
    spec = np.fft.rfft(xp, axis=0)
    f = np.fft.rfftfreq(xp.shape[0], 1.0 / fs)
    gain = _edge((1.35 * hi - f) / (0.5 * hi))
    if lo > 0:
        gain *= _edge((f - 0.4 * lo) / (0.8 * lo))
    return np.fft.irfft(spec * gain[:, None], n=xp.shape[0], axis=0)[pad : pad + n]


def _edge(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, a half cosine between."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))


def _rhythm(x: np.ndarray, fs: float, lo_hz: float, hi_hz: float) -> tuple[float | None, float]:
    """(period in s, periodicity) from the autocorrelation of the three axes together."""
    n = x.shape[0]
    x = x - x.mean(axis=0)
    spec = np.fft.rfft(x, n=2 * n, axis=0)
    ac = np.fft.irfft((spec.real**2 + spec.imag**2).sum(axis=1), n=2 * n)[:n]
    if ac[0] <= 0:
        return None, 0.0
    # unbiased: each lag is an average over the samples that overlap at it
    ac = ac / ac[0] * n / (n - np.arange(n))
    k0 = max(2, math.ceil(fs / hi_hz))
    k1 = min(int(fs / lo_hz), n // 2)
    if k1 - k0 < 2:
        return None, 0.0
    seg = ac[k0 - 1 : k1 + 2]
    peaks = np.flatnonzero((seg[1:-1] >= seg[:-2]) & (seg[1:-1] >= seg[2:])) + k0
    if peaks.size == 0:
        return None, 0.0
    best = int(peaks[np.argmax(ac[peaks])])
    for div in (3, 2):
        near = peaks[(np.abs(peaks * div - best) <= 0.15 * best) & (ac[peaks] >= 0.9 * ac[best])]
        if near.size:
            best = int(near[np.argmax(ac[near])])
            break
    # a parabola through the peak and its neighbours refines the lag
    a, b, c = ac[best - 1], ac[best], ac[best + 1]
    curve = a - 2 * b + c
    delta = 0.5 * (a - c) / curve if curve < 0 else 0.0
    return (best + max(-0.5, min(0.5, delta))) / fs, float(min(1.0, b))


def count_reps(
    t: np.ndarray,
    x: np.ndarray,
    fs: float,
    *,
    threshold_mg: float = 15.0,
    fraction: float = 0.3,
    min_periodicity: float = 0.25,
    rep_hz: tuple[float, float] = (0.15, 1.6),
) -> RepTrace:
    """Reps in ``x`` (``(N, 3)`` m/s^2 on a uniform grid ``t`` at ``fs``); see the module
    docstring."""
    n = x.shape[0]
    if n < max(8, int(2 * fs / rep_hz[1])):
        return NO_REPS
    smooth = _filtered(x, fs, 0.0, 3.0)
    period, periodicity = _rhythm(smooth, fs, *rep_hz)
    if period is None or periodicity < min_periodicity:
        return RepTrace(0, period_s=period, periodicity=periodicity)
    f0 = 1.0 / period
    y = _filtered(x, fs, 0.5 * f0, 1.4 * f0)
    cov = y.T @ y
    _, vectors = np.linalg.eigh(cov)
    axis = vectors[:, -1]
    s = y @ axis
    span = max(1, round(1.5 * period * fs))
    left = span // 2
    envelope = sliding_window_view(
        np.pad(np.abs(s), (left, span - 1 - left), mode="edge"), span
    ).max(axis=1)
    swing = float(np.percentile(np.abs(s), 95))
    floor = max(threshold_mg * 1e-3 * G, 0.4 * fraction * swing)
    h = np.maximum(floor, fraction * envelope)
    side = np.where(s > h, 1, np.where(s < -h, -1, 0))
    marked = np.flatnonzero(side)
    if marked.size == 0:
        return RepTrace(0, period_s=period, periodicity=periodicity)
    sides = side[marked]
    # an alternation is where the side differs from the last side reached (the first counts too)
    first_of_run = np.concatenate(([True], sides[1:] != sides[:-1]))
    times = list(t[marked[first_of_run]])
    # consistent periods: two alternations closer than a quarter period are a glitch
    kept: list[float] = []
    for time in times:
        if kept and time - kept[-1] < 0.25 * period:
            kept.pop()
            continue
        kept.append(time)
    count = len(kept) // 2
    if count == 0:
        return RepTrace(0, period_s=period, periodicity=periodicity)
    # The first rep began where the projection last left zero before its first alternation.
    i = int(np.searchsorted(t, kept[0]))
    before = np.flatnonzero(s[:i] * s[min(i, n - 1)] <= 0)
    first = float(t[before[-1]]) if before.size else float(t[0])
    first = max(first, kept[0] - 0.5 * period)
    return RepTrace(
        count,
        first,
        float(kept[2 * count - 1]),
        period,
        periodicity,
        (float(axis[0]), float(axis[1]), float(axis[2])),
        swing * 1000.0 / G,
    )


class RepCounter:
    """Reps from the raw stream, counted on demand over any stretch; see the module docstring.

    ``threshold_mg`` is the smallest swing of the main axis that counts (a bench
    clip feels a tenth of the motion: give it a tenth); ``keep_s`` bounds the
    memory (the longest set that can be counted whole).
    """

    def __init__(
        self,
        *,
        threshold_mg: float = 15.0,
        rate_hz: float = 25.0,
        keep_s: float = 300.0,
        fraction: float = 0.3,
        min_periodicity: float = 0.25,
        rep_hz: tuple[float, float] = (0.15, 1.6),
    ):
        if rate_hz <= 2 * rep_hz[1] * 1.5:
            raise ValueError("rate_hz must be well above the fastest rep's band")
        self.threshold_mg = threshold_mg
        self.rate_hz = float(rate_hz)
        self.options: dict[str, Any] = {
            "threshold_mg": threshold_mg,
            "fraction": fraction,
            "min_periodicity": min_periodicity,
            "rep_hz": rep_hz,
        }
        cap = int(keep_s * rate_hz) + 1
        self._t = np.empty(cap)
        self._x = np.empty((cap, 3))
        self._n = 0  # samples held
        self._bin: int | None = None  # the bin being filled
        self._sum = np.zeros(3)
        self._count = 0.0
        self._since: float = -math.inf
        self._cache: tuple[tuple, RepTrace] | None = None
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._pending_n = 0

    # -- input ---------------------------------------------------------------
    def feed(self, t: np.ndarray, accel: np.ndarray) -> None:
        """Add samples (any rate, any block size, timestamps in s).

        Blocks are gathered and averaged down in batches: a station hands over a
        tenth of a second at a time, and the counter is only asked now and then.
        """
        t = np.asarray(t, dtype=float)
        if t.size == 0:
            return
        self._pending.append((t, np.asarray(accel, dtype=float)))
        self._pending_n += t.size
        if self._pending_n >= PENDING_SAMPLES:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        if len(self._pending) == 1:
            t, accel = self._pending[0]
        else:
            t = np.concatenate([p[0] for p in self._pending])
            accel = np.concatenate([p[1] for p in self._pending])
        self._pending, self._pending_n = [], 0
        self._bin_samples(t, accel)

    def _bin_samples(self, t: np.ndarray, accel: np.ndarray) -> None:
        # a sample no sensor could produce (a corrupt read) is left out, not counted
        good = (
            np.isfinite(t)
            & np.isfinite(accel).all(axis=1)
            & (np.abs(accel) < MAX_ACCEL).all(axis=1)
        )
        if not good.all():
            t, accel = t[good], accel[good]
        if t.size == 0:
            return
        bins = np.floor(t * self.rate_hz).astype(np.int64)
        starts = np.concatenate(([0], np.flatnonzero(np.diff(bins)) + 1))
        sums = np.add.reduceat(accel, starts, axis=0)
        counts = np.diff(np.concatenate((starts, [t.size]))).astype(float)
        ids = bins[starts]
        if self._bin is not None:
            if ids[0] == self._bin:
                sums[0] += self._sum
                counts[0] += self._count
            else:
                self._append(np.array([self._bin]), (self._sum / self._count)[None])
        # every bin but the last is complete; the last may go on in the next block
        if ids.size > 1:
            self._append(ids[:-1], sums[:-1] / counts[:-1, None])
        self._bin, self._sum, self._count = int(ids[-1]), sums[-1].copy(), float(counts[-1])

    def _append(self, ids: np.ndarray, means: np.ndarray) -> None:
        cap = self._t.size
        if ids.size > cap:
            ids, means = ids[-cap:], means[-cap:]
        if self._n + ids.size > cap:
            keep = max(0, min(self._n, cap // 2, cap - ids.size))  # drop the oldest; amortised O(1)
            self._t[:keep] = self._t[self._n - keep : self._n]
            self._x[:keep] = self._x[self._n - keep : self._n]
            self._n = keep
        end = self._n + ids.size
        self._t[self._n : end] = (ids + 0.5) / self.rate_hz
        self._x[self._n : end] = means
        self._n = end

    def reset(self) -> None:
        """Count from now on (reps before this are forgotten by :attr:`count`)."""
        self._flush()
        self._since = self._t[self._n - 1] if self._n else -math.inf

    # -- output --------------------------------------------------------------
    def trace(self, start: float, end: float) -> RepTrace:
        """Reps between ``start`` and ``end`` (station-clock seconds)."""
        self._flush()
        lo = int(np.searchsorted(self._t[: self._n], start, "left"))
        hi = int(np.searchsorted(self._t[: self._n], end, "right"))
        key = (lo, hi, self._n, float(self._t[lo]) if lo < self._n else None)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        t = self._t[lo:hi]
        x = self._x[lo:hi]
        if t.size:
            # bins left empty by a gap are filled from their neighbours: the grid must be uniform
            grid = t[0] + np.arange(round((t[-1] - t[0]) * self.rate_hz) + 1) / self.rate_hz
            if grid.size != t.size:
                x = np.column_stack([np.interp(grid, t, x[:, k]) for k in range(3)])
                t = grid
        result = count_reps(t, x, self.rate_hz, **self.options)
        self._cache = (key, result)
        return result

    def count_between(self, start: float, end: float) -> int:
        return self.trace(start, end).count

    @property
    def count(self) -> int:
        """Reps in everything fed since the last :meth:`reset`."""
        return self.trace(self._since + 1e-9, math.inf).count
