"""The athlete's rested tremor, and tremor as a ratio to it.

Tremor amplitude varies a lot between people and days, and how severe it
looks grows with its logarithm (Elble & McNames 2016), so alerts use the ratio
to the athlete's own rested level, in log steps (the grades themselves are
:mod:`monitor.grades`'s).

The baseline is the median of the first rested windows (robust to a knock or a
cough), never below the sensor's measurable floor (a ratio to noise means
nothing). It is kept through the session -- fatigue tremor can stay raised for
hours, and re-learning it mid-session would hide that -- and only followed,
slowly, by windows that are rested (the activity tracker's
``baseline_follow_s``). Someone else on the sensors gets a new one: a check-in
starts new analyses, which learn afresh, and an athlete's profile replaces
what was learnt with the profile's value (:meth:`Baseline.relearn`, then
:meth:`Baseline.fix`, through ``SensorAnalysis.use_baseline``). A value given
for good (a replay told it) is fixed: never learnt or pulled along::

    base = Baseline(floor_mg=3.4)
    base.offer(8.1)            # rested windows, one per hop
    base.value_mg              # None until enough were seen
    base.ratio(20.0)           # 2.5
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np


class Baseline:
    """See the module docstring. ``learn_windows`` rested windows make a baseline."""

    def __init__(self, *, floor_mg: float, learn_windows: int = 20, keep: int = 120):
        self.floor_mg = floor_mg
        self.learn_windows = learn_windows
        self.value_mg: float | None = None
        self.learned_at: float | None = None
        self.fixed = False
        self._recent: deque[float] = deque(maxlen=keep)

    def fix(self, value_mg: float) -> None:
        """Use ``value_mg`` as the rested baseline from now on (never below the floor)."""
        if not (math.isfinite(value_mg) and value_mg > 0):
            raise ValueError(f"a baseline must be a positive number of mg, not {value_mg!r}")
        self.value_mg = max(float(value_mg), self.floor_mg)
        self.fixed = True

    def offer(self, rms_mg: float | None, t: float | None = None) -> None:
        """A rested window's tremor (None when not measurable: below the floor)."""
        self._recent.append(self.floor_mg if rms_mg is None else max(rms_mg, self.floor_mg))
        if self.value_mg is None and len(self._recent) >= self.learn_windows:
            self.value_mg = self._robust(list(self._recent)[-self.learn_windows :])
            self.learned_at = t

    def relearn(self) -> None:
        """Forget the baseline: the next rested windows make a new one (see the module
        docstring)."""
        self.fixed = False
        self.value_mg = None
        self._recent.clear()

    def ratio(self, rms_mg: float | None) -> float | None:
        if self.value_mg is None or rms_mg is None:
            return None
        return max(rms_mg, self.floor_mg) / self.value_mg

    def log2_ratio(self, rms_mg: float | None) -> float | None:
        r = self.ratio(rms_mg)
        return None if r is None else math.log2(r)

    def _robust(self, values: list[float]) -> float:
        # Median after dropping points more than 3 scaled MADs off in log space.
        logs = np.log(values)
        med = np.median(logs)
        mad = 1.4826 * np.median(np.abs(logs - med)) or 1e-9
        kept = logs[np.abs(logs - med) <= 3 * mad]
        return float(max(np.exp(np.median(kept)), self.floor_mg))
