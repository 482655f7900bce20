"""Streaming tremor analysis: FIFO blocks in, one result per hop out.

Blocks arrive as the FIFO is drained, of any size, with a timestamp per sample
and now and then a gap (samples lost to an overflow or a sensor fault). The
:class:`TremorAnalyzer` puts them on a uniform grid at the nominal rate,
bridges short gaps by interpolation (and says so), restarts its window after
long ones, keeps only the last window in memory, and every ``hop_s`` emits the
analysis of the last ``window_s``::

    analyzer = TremorAnalyzer(fs=1000, window_s=2.5, hop_s=0.5, sensor="wrist")
    for block in blocks:
        for result in analyzer.feed(block.t, block.accel, lost=block.lost):
            print(result.t, result.metrics.rms_mg, result.metrics.peak_hz)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .tremor import TremorMetrics, analyze_many


@dataclass(frozen=True)
class WindowResult:
    """One window's analysis. ``t`` is the time of its last sample (station clock)."""

    t: float
    sensor: str
    metrics: TremorMetrics
    #: grid samples in this window that were filled by interpolation across a gap
    bridged: int = 0

    @property
    def reliable(self) -> bool:
        """Tremor figures can be trusted: not moving, and hardly anything bridged."""
        return not self.metrics.moving and self.bridged <= 0.02 * self.metrics.n


class TremorAnalyzer:
    """Windows of the stream, analysed every hop; see the module docstring.

    ``max_gap_s`` is the longest gap bridged by interpolation; anything longer
    restarts the window, so no result ever spans invented data of more than
    that. Options for :func:`~monitor.analysis.tremor.analyze` (bands, noise
    floor) pass through ``analysis_options``.
    """

    def __init__(self, fs: float, *, window_s: float = 2.5, hop_s: float = 0.5, sensor: str = "",
                 max_gap_s: float = 0.05, analysis_options: dict[str, Any] | None = None):
        if fs <= 0:
            raise ValueError("fs must be positive")
        if not 0 < hop_s <= window_s:
            raise ValueError("hop_s must be positive and at most window_s")
        self.fs = float(fs)
        self.dt = 1.0 / self.fs
        self.window = int(round(window_s * fs))
        self.hop = max(1, int(round(hop_s * fs)))
        self.sensor = sensor
        self.max_gap_s = max_gap_s
        self.options = dict(analysis_options or {})
        self._buf = np.empty((2 * self.window, 3))
        self._bridged = np.zeros(2 * self.window, dtype=bool)
        self._end = 0          # samples in _buf
        self._filled = 0       # contiguous samples since the last restart
        self._next_emit = self.window  # value of _filled at which the next window ends
        self._grid_t: float | None = None   # time of the last grid sample
        self._last: np.ndarray | None = None  # its value
        self.restarts = 0
        self.bridged_total = 0
        self._windows: list[np.ndarray] = []
        self._window_meta: list[tuple[float, int]] = []  # (end time, bridged samples)

    def reset(self) -> None:
        """Forget the window (e.g. after the sensor was replaced)."""
        self._end = self._filled = 0
        self._next_emit = self.window
        self._grid_t = self._last = None

    def feed(self, t: np.ndarray, accel: np.ndarray, lost: int = 0) -> list[WindowResult]:
        t = np.asarray(t, dtype=float)
        accel = np.asarray(accel, dtype=float)
        if len(t) == 0:
            return []
        if accel.shape != (len(t), 3):
            raise ValueError(f"accel must be (N, 3) for N timestamps, got {accel.shape}")
        if self._grid_t is not None and (t[0] - self._grid_t > self.max_gap_s + self.dt or t[0] <= self._grid_t - self.max_gap_s):
            # Too long a gap to invent data across (or time went backwards): start over.
            self.restarts += 1
            self.reset()
        if self._grid_t is None:
            self._grid_t, self._last = float(t[0]), accel[0]
            self._append(accel[:1], np.zeros(1, dtype=bool))
            t, accel = t[1:], accel[1:]
            if len(t) == 0:
                return self._emit()
        # Grid points after the last one, up to the newest sample.
        n = int(np.floor((t[-1] - self._grid_t) * self.fs + 1e-6))
        if n <= 0:
            return []
        grid = self._grid_t + self.dt * np.arange(1, n + 1)
        src_t = np.concatenate(([self._grid_t], t))
        src = np.vstack((self._last, accel))
        values = np.column_stack([np.interp(grid, src_t, src[:, k]) for k in range(3)])
        # A grid point is "bridged" when the real samples either side are a missing
        # sample apart or more (2 periods); drivers nudge their grid by less than that.
        idx = np.searchsorted(src_t, grid)
        idx = np.clip(idx, 1, len(src_t) - 1)
        bridged = (src_t[idx] - src_t[idx - 1]) > 1.9 * self.dt
        self._grid_t = float(grid[-1])
        self._last = values[-1]
        self.bridged_total += int(bridged.sum())
        self._append(values, bridged)
        return self._emit()

    def _append(self, values: np.ndarray, bridged: np.ndarray) -> None:
        i = 0
        while i < len(values):
            if self._end == len(self._buf):
                # Keep the last window at the front; amortised O(1) per sample.
                keep = self.window
                self._buf[:keep] = self._buf[self._end - keep:self._end]
                self._bridged[:keep] = self._bridged[self._end - keep:self._end]
                self._end = keep
            take = min(len(values) - i, len(self._buf) - self._end)
            self._buf[self._end:self._end + take] = values[i:i + take]
            self._bridged[self._end:self._end + take] = bridged[i:i + take]
            self._end += take
            self._filled += take
            i += take
            # Emit inside the loop so a long block still yields every hop's window.
            # The grid time of the newest sample in the buffer so far.
            buffer_end_t = self._grid_t - (len(values) - i) * self.dt
            while self._filled >= self._next_emit:
                back = self._filled - self._next_emit
                end = self._end - back
                # Copy: the buffer moves on; the windows are analysed together in _emit.
                self._windows.append(self._buf[end - self.window:end].copy())
                self._window_meta.append((buffer_end_t - back * self.dt, int(self._bridged[end - self.window:end].sum())))
                self._next_emit += self.hop

    def _emit(self) -> list[WindowResult]:
        # One batched analysis of every window this feed completed: a replay or a
        # catch-up after a stall gets many at once, and batching is several times faster.
        if not self._windows:
            return []
        metrics = analyze_many(np.stack(self._windows), self.fs, **self.options)
        out = [WindowResult(t, self.sensor, m, bridged) for (t, bridged), m in zip(self._window_meta, metrics)]
        self._windows, self._window_meta = [], []
        return out
