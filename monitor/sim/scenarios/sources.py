"""What a simulated chip samples, and the small machinery the sources share.

A simulated IMU samples a *motion source* and a simulated load-cell ADC samples a
*mass source*. Both are plain objects with one method that maps an array of times
to values, so anything with the right method will do::

    class Still:
        def accel(self, t):
            return np.tile([0.0, 0.0, G0], (len(t), 1))

The chips call these with consecutive chunks of increasing times of any size, so a
source must be a pure function of ``t``: the same time gives the same value however
the calls are cut. Every source in this package draws its randomness once, when it
is built, and is a closed-form function of time afterwards.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike

from ...units import G

G0 = G
"""Standard gravity, m/s^2 (:data:`monitor.units.G`): what an accelerometer at rest reads."""

MG = G0 / 1000.0
"""One milli-g in m/s^2."""


@runtime_checkable
class MotionSource(Protocol):
    """What a simulated IMU samples: specific force with gravity in it, m/s^2, (N, 3)."""

    def accel(self, t: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class MassSource(Protocol):
    """What a simulated load-cell ADC samples: grams on the load cell, (N,)."""

    def mass_g(self, t: np.ndarray) -> np.ndarray: ...


def as_times(t: ArrayLike) -> np.ndarray:
    """``t`` as a 1-D float array (a scalar becomes one sample)."""
    t = np.asarray(t, dtype=float)
    return t.reshape(1) if t.ndim == 0 else t


class Timed(Protocol):
    """An item of an :class:`OverlayTrack`: it acts on ``[start, end)`` seconds."""

    @property
    def start(self) -> float: ...

    @property
    def end(self) -> float: ...


class OverlayTrack:
    """Short additive signals (impacts, vibrations, knocks) placed on a timeline.

    Each item has ``start``, ``end`` and a method, named by ``method``, that maps a slice
    of times inside ``[start, end)`` to the values to add there. Items are kept sorted
    by start so a chunk of samples finds the few that touch it by bisection: a chunk
    that touches none costs two comparisons.
    """

    def __init__(self, items: Sequence[Timed], method: str):
        self._items = sorted(items, key=lambda item: item.start)
        self._starts = [float(item.start) for item in self._items]
        self._longest = max((item.end - item.start for item in self._items), default=0.0)
        self._method = method

    def __bool__(self) -> bool:
        return bool(self._items)

    def add_to(self, t: np.ndarray, out: np.ndarray) -> None:
        """Add every item's contribution to ``out`` (aligned with sorted times ``t``)."""
        first, last = float(t[0]), float(t[-1])
        lo = bisect_left(self._starts, first - self._longest)
        hi = bisect_right(self._starts, last)
        for item in self._items[lo:hi]:
            if item.end <= first:
                continue
            a = int(np.searchsorted(t, item.start, "left"))
            b = int(np.searchsorted(t, item.end, "left"))
            if a < b:
                out[a:b] += getattr(item, self._method)(t[a:b])


TWO_PI = 2.0 * np.pi

BLOCK = 2048
"""Samples evaluated at a time: big chunks are cut so the temporaries stay in cache."""


def sines(t: np.ndarray, hz: np.ndarray, cycles: np.ndarray) -> np.ndarray:
    """``sin(2 pi (hz t + cycles))`` for each column: (N,) times -> (N, K) float32.

    The phase is reduced to one cycle in float64 before the sine, so precision does not
    degrade over an hour, and the sine itself runs in float32, about twenty times faster
    than float64 (its 1e-7 relative error is far below any sensor's resolution).
    """
    x = t[:, None] * hz
    x += cycles
    x -= np.rint(x)
    x *= TWO_PI
    return np.sin(x, dtype=np.float32)


def mix(columns: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """``columns @ vectors``: (N, K) scalar signals times (K, 3) directions -> (N, 3).

    A single row is computed as two, because BLAS takes a different path (and rounds
    differently) for one row; this keeps a sample's value independent of the chunk.
    """
    if columns.shape[0] == 1:
        return (np.concatenate((columns, columns)) @ vectors)[:1]
    return columns @ vectors


def raised_cosine(x: np.ndarray) -> np.ndarray:
    """0 for x <= 0, 1 for x >= 1, a smooth half cosine between: fades without clicks."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))


def unit(v: ArrayLike) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)
