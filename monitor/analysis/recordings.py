"""Loading recorded acceleration, and putting it on a uniform time grid.

Real recordings (the PDkit smartphone files in ``shared/data/pdkit``) are how
the analysis is checked against the world. Phones sample irregularly, so a
:class:`Recording` keeps the timestamps as recorded and :meth:`Recording.resampled`
puts it on the uniform grid that :func:`monitor.analysis.tremor.analyze` needs::

    rec = load_recording("S5_postural_tremor_right_hand.csv").resampled(50.0)
    metrics = analyze(rec.accel, rec.fs)

Three formats are read, told apart by their content:

* CSV with a header line ``t_s,ax,ay,az``: time in seconds, acceleration in
  m/s^2 with gravity (the format of ``shared/data/realdata``: SPAR and
  MobiFall). Other column names are accepted when the header says the unit:
  ``t_ms``/``t_ns`` for time, ``ax_g`` ... for acceleration in g.
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

from monitor.units import G

__all__ = [
    "Recording",
    "load_header_csv",
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


_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def _header(path: Path) -> list[str] | None:
    """The column names if the file's first line is a header, else None."""
    with path.open("r", encoding="utf-8", errors="replace") as f:
        first = f.readline().strip()
    if not first:
        raise ValueError(f"{path}: empty file")
    cells = [c.strip().strip('"').lower() for c in first.split(",")]
    try:
        [float(c) for c in cells]
    except ValueError:
        return cells
    return None


def load_header_csv(path: str | Path) -> Recording:
    """A CSV with a header line: time, then x, y, z acceleration (``t_s,ax,ay,az``).

    The time column's unit comes from its name's suffix (``_s``, ``_ms``,
    ``_us``, ``_ns``; seconds without one); acceleration is m/s^2 unless the
    names end in ``_g``. Rows that are not numbers are refused with their line.
    """
    path = Path(path)
    names = _header(path)
    if names is None or len(names) < 4:
        raise ValueError(f"{path}: expected a header line like t_s,ax,ay,az")
    unit = names[0].rsplit("_", 1)[-1] if "_" in names[0] else "s"
    scale_t = _TIME_UNITS.get(unit, 1.0)
    scale_a = G if all(n.endswith("_g") for n in names[1:4]) else 1.0
    try:
        data = np.loadtxt(path, delimiter=",", skiprows=1, usecols=(0, 1, 2, 3), ndmin=2)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    if data.shape[0] == 0:
        raise ValueError(f"{path}: no samples")
    t = (data[:, 0] - data[0, 0]) * scale_t
    return Recording(t, data[:, 1:4] * scale_a, path.stem)


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
    """Load a recording: a .json is mPower's; a .csv with a header line is read by
    :func:`load_header_csv`, one without by :func:`load_pdkit_csv`."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return load_mpower_json(path)
    if suffix == ".csv":
        return load_header_csv(path) if _header(path) is not None else load_pdkit_csv(path)
    raise ValueError(f"{path}: unknown recording format (expected .csv or .json)")
