"""Loading recorded acceleration, and putting it on a uniform time grid.

Real recordings (the PDkit smartphone files in ``shared/data/pdkit``) are how
the analysis is checked against the world. Phones sample irregularly, so a
:class:`Recording` keeps the timestamps as recorded and :meth:`Recording.resampled`
puts it on the uniform grid that :func:`monitor.analysis.tremor.analyze` needs::

    rec = load_recording("S5_postural_tremor_right_hand.csv").resampled(50.0)
    metrics = analyze(rec.accel, rec.fs)

Two formats are read:

* PDkit / cloudUPDRS CSV, no header: timestamp in nanoseconds (any origin),
  x, y, z in m/s^2 with gravity, and a fifth column (sensor accuracy) that is
  ignored.
* Apple mPower JSON: a list of ``{"timestamp": s, "x": g, "y": g, "z": g}``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monitor.analysis.tremor import G

__all__ = [
    "Recording",
    "load_mpower_json",
    "load_pdkit_csv",
    "load_recording",
    "resample_uniform",
]


@dataclass(frozen=True, eq=False)
class Recording:
    """Three-axis acceleration with its timestamps.

    ::

        rec = Recording(t, accel, "bench-press-set-3")   # t (N,) s, accel (N, 3) m/s^2
        uniform = rec.resampled(100.0)                    # uniform.fs == 100.0

    Attributes:
        t: ``(N,)`` seconds from the first sample, increasing.
        accel: ``(N, 3)`` m/s^2, gravity included.
        name: where it came from (usually the file's stem).
        fs: the sample rate if the grid is uniform (after :meth:`resampled`),
            else ``None``.

    The arrays are made read-only, so a Recording can be shared safely.
    """

    t: np.ndarray
    accel: np.ndarray
    name: str = ""
    fs: float | None = None

    def __post_init__(self) -> None:
        t = np.array(self.t, dtype=float)
        accel = np.array(self.accel, dtype=float)
        if t.ndim != 1 or accel.shape != (t.size, 3):
            raise ValueError(
                f"a recording needs t (N,) and accel (N, 3); got {t.shape} and {accel.shape}"
            )
        t.flags.writeable = False
        accel.flags.writeable = False
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "accel", accel)

    def __len__(self) -> int:
        return self.t.size

    @property
    def duration_s(self) -> float:
        return float(self.t[-1] - self.t[0]) if self.t.size else 0.0

    @property
    def mean_fs(self) -> float:
        """Average sample rate, samples per second of recording."""
        return (self.t.size - 1) / self.duration_s if self.duration_s > 0 else 0.0

    def resampled(self, fs: float) -> Recording:
        """This recording linearly interpolated onto a uniform grid at ``fs`` Hz."""
        t, accel = resample_uniform(self.t, self.accel, fs)
        return Recording(t - t[0], accel, self.name, fs=float(fs))


def resample_uniform(t: np.ndarray, accel: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation of irregular samples onto a grid ``1/fs`` apart.

    The grid starts at the first timestamp and ends at or before the last;
    nothing is extrapolated. Samples need not be sorted, and repeated
    timestamps (phones report them) keep their first reading.

    Example::

        tu, au = resample_uniform(t, accel, 100.0)    # t (N,) s, accel (N, 3)
    """
    fs = float(fs)
    if not (math.isfinite(fs) and fs > 0):
        raise ValueError(f"fs must be a positive sample rate in Hz, got {fs}")
    t = np.asarray(t, dtype=float)
    accel = np.asarray(accel, dtype=float)
    if t.ndim != 1 or accel.ndim != 2 or accel.shape[0] != t.size:
        raise ValueError(f"need t (N,) and accel (N, C), got {t.shape} and {accel.shape}")
    if not np.isfinite(t).all():
        raise ValueError("timestamps must be finite")
    # np.interp needs increasing x; unique() sorts and keeps each time's first sample
    t, first = np.unique(t, return_index=True)
    accel = accel[first]
    if t.size < 2:
        raise ValueError("need at least two distinct timestamps to resample")
    count = math.floor((t[-1] - t[0]) * fs + 1e-9) + 1
    grid = t[0] + np.arange(count) / fs  # multiply, not accumulate: no drift over long files
    out = np.column_stack([np.interp(grid, t, accel[:, i]) for i in range(accel.shape[1])])
    return grid, out


def load_pdkit_csv(path: str | Path) -> Recording:
    """A PDkit / cloudUPDRS CSV: ns timestamp, x, y, z (m/s^2), accuracy (ignored)."""
    path = Path(path)
    # the timestamps are read as integers: ~1e15 ns is near where float64 stops
    # being exact, and the differences are what matter
    stamps = np.loadtxt(path, delimiter=",", usecols=0, dtype=np.int64, ndmin=1)
    accel = np.loadtxt(path, delimiter=",", usecols=(1, 2, 3), dtype=float, ndmin=2)
    if stamps.size == 0:
        raise ValueError(f"{path}: no samples")
    t = (stamps - stamps[0]).astype(float) / 1e9
    return Recording(t, accel, path.stem)


def load_mpower_json(path: str | Path) -> Recording:
    """An Apple mPower accelerometer JSON: timestamps in s, x/y/z in g."""
    path = Path(path)
    samples = json.loads(path.read_text())
    if not isinstance(samples, list) or not samples:
        raise ValueError(f"{path}: expected a non-empty JSON list of samples")
    try:
        t = np.array([s["timestamp"] for s in samples], dtype=float)
        accel = np.array([[s["x"], s["y"], s["z"]] for s in samples], dtype=float) * G
    except (KeyError, TypeError) as err:
        raise ValueError(f"{path}: each sample needs timestamp, x, y, z ({err})") from None
    return Recording(t - t[0], accel, path.stem)


def load_recording(path: str | Path) -> Recording:
    """Load a recording, choosing the reader by file suffix (.csv or .json)."""
    path = Path(path)
    readers = {".csv": load_pdkit_csv, ".json": load_mpower_json}
    try:
        reader = readers[path.suffix.lower()]
    except KeyError:
        raise ValueError(f"{path}: unknown recording format (expected .csv or .json)") from None
    return reader(path)
