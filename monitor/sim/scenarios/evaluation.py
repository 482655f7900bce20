"""Turning a timeline into samples fast: per-block tables, evaluated per chunk.

The chips poll ~100 samples at a time, so what matters is the cost of one small call.
Each block is compiled once per sensor into a :class:`Piece`: the frequencies, phases
and sensor-frame vectors of every sinusoid it contains (tremor, sway, reps, ambient),
the tremor envelope's coefficients, and gravity. A chunk inside one piece (the common
case) then costs one batch of sines, one small matrix product and, if the tremor is
still changing, one exponential per sample.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

import numpy as np

from .sources import BLOCK, OverlayTrack, mix, sines, unit
from .truth import TremorTruth

# A tremor component is three close lines, the centre one strongest, so the spectrum
# peaks at the component's frequency yet the amplitude waxes and wanes (beats).
TREMOR_WEIGHTS = np.array([0.6, 1.0, 0.6])
EVEN_WEIGHTS = np.ones(3)
# A rep is not a pure sinusoid (lifting is quicker than lowering): a little harmonic
# content, kept below 3 Hz for reps up to 1 Hz.
REP_HARMONICS = np.array([1.0, 0.2, 0.05])


@dataclass(frozen=True, eq=False)
class Lines:
    """Three sinusoids (frequencies Hz, phases in cycles, unit directions) with relative
    weights normalised so that the RMS of their vector sum is 1."""

    hz: np.ndarray
    cycles: np.ndarray
    directions: np.ndarray
    weights: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, hz: np.ndarray, weights: np.ndarray) -> Lines:
        cycles = rng.uniform(0.0, 1.0, 3)
        directions = unit(rng.normal(size=(3, 3)))
        weights = weights / math.sqrt(float(weights @ weights) / 2.0)
        return cls(np.asarray(hz, dtype=float), cycles, directions, weights)

    def columns(self, rotation: np.ndarray, scale: float) -> tuple[np.ndarray, ...]:
        """(frequencies, phases, (3, 3) sensor-frame vectors times ``scale``)."""
        vectors = (self.directions @ rotation.T) * (self.weights * scale)[:, None]
        return self.hz, self.cycles, vectors


class Piece:
    """A block compiled for one sensor: everything a chunk of samples needs, precomputed.

    Columns 0-2 carry the physiological tremor and 3-5 the fatigue tremor, scaled per
    sample by their envelopes; any further columns (sway, reps, ambient) are fixed.
    """

    __slots__ = (
        "a",
        "b",
        "clip",
        "cycles",
        "gravity",
        "hz",
        "negk",
        "start",
        "steady",
        "turn",
        "turn_cycles",
        "turn_hz",
        "vectors",
    )

    def __init__(
        self,
        start: float,
        hz: np.ndarray,
        cycles: np.ndarray,
        vectors: np.ndarray,
        a: np.ndarray,
        b: np.ndarray,
        k: np.ndarray,
        gravity: np.ndarray,
        *,
        clip: bool,
        turn: tuple[float, float, np.ndarray] | None,
    ):
        self.start = start
        self.hz, self.cycles = hz, cycles
        self.steady = not b.any()
        vectors = vectors.copy()
        if self.steady:  # the envelope is a constant: fold it into the vectors
            vectors[0:3] *= a[0]
            vectors[3:6] *= a[1]
        self.vectors = vectors.astype(np.float32)
        self.a, self.b, self.negk = a, b, -k
        self.clip = clip
        self.gravity = gravity
        turn_hz, turn_cycles, turn_vector = turn if turn else (0.0, 0.0, None)
        self.turn_hz, self.turn_cycles = np.array([turn_hz]), np.array([turn_cycles])
        self.turn = turn_vector

    def accel(self, t: np.ndarray) -> np.ndarray:
        columns = sines(t, self.hz, self.cycles)
        if not self.steady:
            age = t - self.start
            if self.clip:  # before the first block, hold its starting state
                age = np.maximum(age, 0.0)
            env = np.exp(age[:, None] * self.negk, dtype=np.float32)
            env *= self.b
            env += self.a
            columns[:, 0:3] *= env[:, 0:1]
            columns[:, 3:6] *= env[:, 1:2]
        return mix(columns, self.vectors) + self.gravity

    def gyro(self, t: np.ndarray) -> np.ndarray:
        if self.turn is None:
            return np.zeros((t.shape[0], 3))
        return sines(t, self.turn_hz, self.turn_cycles) * self.turn


class CompiledMotion:
    """The tables one :class:`Scenario` evaluates from, built on first use."""

    def __init__(
        self,
        pieces: list[Piece],
        accel_overlays: OverlayTrack,
        gyro_overlays: OverlayTrack,
        truth: TremorTruth,
    ):
        self.pieces = pieces
        self.starts = [p.start for p in pieces]
        self.starts_array = np.array(self.starts)
        self.accel_overlays = accel_overlays
        self.gyro_overlays = gyro_overlays
        self.truth = truth

    def evaluate(self, t: np.ndarray, method: str) -> np.ndarray:
        n = t.shape[0]
        if n == 0:
            return np.empty((0, 3))
        overlays = self.accel_overlays if method == "accel" else self.gyro_overlays
        if n <= BLOCK:
            return self._block(t, method, overlays)
        out = np.empty((n, 3))
        for i in range(0, n, BLOCK):
            out[i : i + BLOCK] = self._block(t[i : i + BLOCK], method, overlays)
        return out

    def _block(self, t: np.ndarray, method: str, overlays: OverlayTrack) -> np.ndarray:
        first = max(bisect_right(self.starts, float(t[0])) - 1, 0)
        last = max(bisect_right(self.starts, float(t[-1])) - 1, 0)
        if first == last:  # the common case: the whole chunk inside one block
            out = getattr(self.pieces[first], method)(t)
        else:
            out = np.empty((t.shape[0], 3))
            which = np.maximum(np.searchsorted(self.starts_array, t, "right") - 1, 0)
            for i in range(first, last + 1):
                mask = which == i
                if mask.any():
                    out[mask] = getattr(self.pieces[i], method)(t[mask])
        if overlays:
            overlays.add_to(t, out)
        return out
