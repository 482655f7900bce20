"""What one sensor's wearer is doing: idle, reps, a static hold, or recovering.

Fed one :class:`~monitor.analysis.stream.WindowResult` per hop (and the rep
count from the raw stream), it finds set boundaries, grades tremor against
the rested baseline, and measures fatigue and recovery:

* **reps**: voluntary-band motion (0.3 to 3 Hz) above ``move_mg`` for at least
  ``reps_min_s``; the set ends after ``set_end_s`` without it.
* **hold** (limb- or body-worn sensors; a bench clip's tremor band is mostly the
  machines around it): a static hold (plank, wall sit): little voluntary motion while
  tremor climbs to at least ``hold_ratio`` times baseline and stays there for
  ``hold_min_s``. Resting after a hard set also shows raised tremor, but a
  decaying one: after a set, a hold must lift tremor ``hold_rise`` above the
  lowest it fell to. A hold ends on movement (getting up) or once tremor has
  fallen ``hold_release`` below its peak; it is dated at the peak.
* **recovery**: after a set, until tremor is back within ``recovered_ratio``
  of baseline for ``recovered_hold_s``; how long that took is the recovery
  time.
* **idle**: none of these; rested windows keep the baseline current.

Amplitude is the fatigue marker (its growth within a set, and set to set);
peak-frequency drift is reported but never trusted alone (Lakie 2015).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from .baseline import Baseline, level_for
from .stream import WindowResult

IDLE, REPS, HOLD, RECOVERY = "idle", "reps", "hold", "recovery"


@dataclass(frozen=True)
class ActivityConfig:
    move_mg: float = 40.0
    bench_move_mg: float = 5.0       # a bench clip feels about a tenth of the athlete's motion
    reps_min_s: float = 2.0
    set_end_s: float = 3.0
    hold_ratio: float = 1.6
    hold_min_s: float = 5.0
    hold_rise: float = 1.3
    hold_release: float = 1.15
    hold_plateau_s: float = 20.0
    smooth_windows: int = 5
    recovered_ratio: float = 1.3
    recovered_hold_s: float = 5.0
    learn_windows: int = 20
    #: how fast rested windows pull the baseline along (its time constant)
    baseline_follow_s: float = 600.0


@dataclass(frozen=True)
class SetRecord:
    """One set, as found. Times are station-clock seconds."""

    index: int
    kind: str                  # "reps" or "hold"
    start: float
    end: float
    reps: int = 0
    ratio_median: float | None = None
    ratio_peak: float | None = None
    growth_per_min: float | None = None   # log2(ratio) per minute within the set
    peak_hz_drift: float | None = None    # Hz per minute, reported only
    recovery_s: float | None = None       # filled in when tremor is back near baseline

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class SensorStatus:
    """A sensor's state after one window, for the session, the alerts and MQTT."""

    t: float
    sensor: str
    state: str
    state_since: float
    rms_mg: float | None
    peak_hz: float | None
    ratio: float | None
    level: str
    baseline_mg: float | None
    moving: bool
    set_count: int
    reps: int
    set_start: float | None
    last_set: SetRecord | None
    recovery_s: float | None
    fatigue_trend: float | None
    window: WindowResult
    events: tuple[tuple[str, object], ...] = field(default=())


def _slope(x: list[float], y: list[float]) -> float | None:
    if len(x) < 3 or max(x) - min(x) <= 0:
        return None
    return float(np.polyfit(np.asarray(x), np.asarray(y), 1)[0])


class ActivityTracker:
    """See the module docstring."""

    def __init__(self, sensor: str, *, window_s: float, hop_s: float, floor_mg: float | None = None,
                 config: ActivityConfig | None = None, placement: str = "limb"):
        self.sensor = sensor
        self.cfg = config or ActivityConfig()
        self.move_mg = self.cfg.bench_move_mg if placement == "bench" else self.cfg.move_mg
        self.holds = placement != "bench"
        self.window_s = window_s
        self.hop_s = hop_s
        # The baseline's floor is the analysis's own measurability threshold (twice
        # the sensor noise in the band), taken from the first window unless given.
        self.baseline = Baseline(floor_mg=floor_mg or 0.0, learn_windows=self.cfg.learn_windows)
        self._floor_given = floor_mg is not None
        self.state = IDLE
        self.state_since = 0.0
        self.sets: deque[SetRecord] = deque(maxlen=64)
        self.set_count = 0
        self._move_run: list[float] = []     # window times of the current moving run
        self._still_since: float | None = None
        self._high_run: list[float] = []     # window times that look like a hold
        self._ratios: deque[float] = deque(maxlen=self.cfg.smooth_windows)
        self._trough: float | None = None    # lowest smoothed ratio since the last set ended
        self._peak: tuple[float, float] | None = None  # (ratio, t) highest in the current hold
        self._fall_since: float | None = None
        self._history: deque[tuple[float, float]] = deque(maxlen=120)  # (t, smoothed ratio), 60 s
        self._reps_between: Callable[[float, float], int] = lambda a, b: 0
        self._low_since: float | None = None
        self._set_start: float | None = None
        self._set_kind: str | None = None
        self._set_samples: list[tuple[float, float, float | None]] = []  # t, log2 ratio, peak_hz
        self._last_move_t: float | None = None
        self._recovering: SetRecord | None = None

    # -- the state machine -------------------------------------------------
    def update(self, w: WindowResult, reps_between: Callable[[float, float], int] | None = None) -> SensorStatus:
        """One window. ``reps_between(start, end)`` counts reps in a stretch of time."""
        self._reps_between = reps_between or (lambda a, b: 0)
        m = w.metrics
        t = w.t
        if not self._floor_given:
            self.baseline.floor_mg = 2 * m.floor_mg
            self._floor_given = True
        vol = m.band_rms_mg.get("voluntary", 0.0)
        moving = bool(m.moving and vol >= self.move_mg)
        ratio = self.baseline.ratio(m.rms_mg) if m.measurable else (1.0 if self.baseline.value_mg else None)
        events: list[tuple[str, object]] = []

        self._move_run = self._move_run + [t] if moving else []
        if moving:
            self._last_move_t = t
        if ratio is not None and not moving and not w.disturbed:
            self._ratios.append(ratio)
        smooth = float(np.median(self._ratios)) if self._ratios else None
        if smooth is not None:
            self._history.append((t, smooth))
        if self.state == RECOVERY and smooth is not None:
            self._trough = smooth if self._trough is None else min(self._trough, smooth)
        climbing = self.state != RECOVERY or (self._trough is not None and smooth is not None
                                              and smooth >= self._trough * self.cfg.hold_rise)
        high = (self.holds and not moving and smooth is not None and smooth >= self.cfg.hold_ratio and climbing)
        self._high_run = self._high_run + [t] if high else []

        if self.state in (IDLE, RECOVERY):
            if len(self._move_run) * self.hop_s >= self.cfg.reps_min_s:
                self._begin(REPS, self._move_run[0] - self.hop_s, events)
            elif len(self._high_run) * self.hop_s >= self.cfg.hold_min_s:
                self._begin(HOLD, self._hold_onset(self._high_run[0]), events)
        elif self.state == REPS:
            if not moving and self._last_move_t is not None and t - self._last_move_t >= self.cfg.set_end_s:
                self._finish(self._last_move_t - self.window_s + self.hop_s, events)
        elif self.state == HOLD:
            # A new peak must beat the old by a margin, or noise on a plateau keeps the hold alive.
            if smooth is not None and (self._peak is None or smooth >= self._peak[0] * 1.03):
                self._peak = (smooth, t)
            falling = smooth is not None and self._peak is not None and smooth < self._peak[0] / self.cfg.hold_release
            self._fall_since = (self._fall_since if self._fall_since is not None else t) if falling else None
            if moving:
                self._finish(t - self.window_s, events)
            elif ((self._fall_since is not None and t - self._fall_since >= self.cfg.set_end_s)
                  or (self._peak is not None and t - self._peak[1] >= self.cfg.hold_plateau_s)):
                # Tremor peaks as the hold is released (or stops climbing: a hold that
                # goes on fatigues on); the window ending there is centred half a window earlier.
                self._finish(self._peak[1] - self.window_s / 2, events)

        if self.state in (REPS, HOLD) and ratio is not None and not w.disturbed:
            self._set_samples.append((t, math.log2(ratio), m.peak_hz if m.measurable else None))

        if self.state == RECOVERY and self._recovering is not None:
            if ratio is not None and ratio <= self.cfg.recovered_ratio:
                self._low_since = self._low_since if self._low_since is not None else t
                if t - self._low_since >= self.cfg.recovered_hold_s:
                    rec = self._low_since - self._recovering.end
                    done = replace(self._recovering, recovery_s=max(0.0, rec))
                    self.sets[-1] = done if self.sets and self.sets[-1].index == done.index else self.sets[-1]
                    events.append(("recovered", done))
                    self._recovering = None
                    self._set_state(IDLE, t)
            else:
                self._low_since = None

        if self.state == IDLE and not moving and w.reliable:
            self._learn(m.rms_mg if m.measurable else None, ratio, t)

        return self._status(w, ratio, moving, events)

    def _set_state(self, state: str, t: float) -> None:
        self.state = state
        self.state_since = t

    def _hold_onset(self, confirmed_from: float) -> float:
        """When the climb into a hold began: the lowest point of the recent tremor before it."""
        floor_t = self.sets[-1].end if self.sets else float("-inf")
        before = [(r, t) for t, r in self._history if floor_t <= t <= confirmed_from]
        if not before:
            return confirmed_from - self.window_s
        # The climb began at the last point still near the floor the tremor rose from.
        low = min(r for r, _ in before)
        onset = max(t for r, t in before if r <= low * 1.1)
        return max(floor_t, onset - self.window_s / 2)

    def _begin(self, kind: str, start: float, events) -> None:
        if self._recovering is not None:
            events.append(("not_recovered", self._recovering))  # next set before recovery
            self._recovering = None
        start = max(start, self.sets[-1].end if self.sets else start)
        self._set_kind, self._set_start = kind, start
        self._set_samples = []
        self._low_since = None
        self._peak = self._fall_since = None
        self._set_state(kind, start)
        events.append(("set_started", (kind, start)))

    def _finish(self, end: float, events) -> None:
        assert self._set_start is not None and self._set_kind is not None
        end = max(end, self._set_start + self.hop_s)
        samples = [s for s in self._set_samples if s[0] <= end + self.window_s]
        logs = [s[1] for s in samples]
        times = [s[0] for s in samples]
        hz = [(s[0], s[2]) for s in samples if s[2] is not None]
        growth = _slope(times, logs)
        drift = _slope([h[0] for h in hz], [h[1] for h in hz])
        self.set_count += 1
        record = SetRecord(
            index=self.set_count, kind=self._set_kind, start=self._set_start, end=end,
            reps=self._reps_between(self._set_start, end + self.window_s) if self._set_kind == REPS else 0,
            ratio_median=float(2 ** np.median(logs)) if logs else None,
            ratio_peak=float(2 ** max(logs)) if logs else None,
            growth_per_min=None if growth is None else growth * 60,
            peak_hz_drift=None if drift is None else drift * 60,
        )
        self.sets.append(record)
        self._recovering = record
        self._set_start = self._set_kind = None
        self._low_since = None
        self._trough = None
        self._high_run = []
        self._set_state(RECOVERY, end)
        events.append(("set_ended", record))

    def _learn(self, rms_mg: float | None, ratio: float | None, t: float) -> None:
        b = self.baseline
        if b.value_mg is None:
            b.offer(rms_mg, t)
        elif ratio is not None and ratio <= self.cfg.recovered_ratio and rms_mg is not None:
            # Rested: follow slow drift (another day, another sensor mount) but
            # never fatigue, whose windows are above recovered_ratio.
            k = self.hop_s / self.cfg.baseline_follow_s
            b.value_mg = max(b.floor_mg, math.exp((1 - k) * math.log(b.value_mg) + k * math.log(max(rms_mg, b.floor_mg))))

    # -- figures -----------------------------------------------------------
    def fatigue_trend(self) -> float | None:
        """log2(ratio) gained per set over this session's sets (positive: tiring)."""
        sets = [s for s in self.sets if s.ratio_median]
        if len(sets) < 2:
            return None
        x = [float(s.index) for s in sets]
        y = [math.log2(s.ratio_median) for s in sets]
        return float(np.polyfit(x, y, 1)[0])

    def _status(self, w: WindowResult, ratio, moving, events) -> SensorStatus:
        m = w.metrics
        last = self.sets[-1] if self.sets else None
        if self._recovering is not None:
            recovery_s = w.t - self._recovering.end
        else:
            recovery_s = last.recovery_s if last else None
        reps = self._reps_between(self._set_start, w.t) if self.state == REPS else (last.reps if last else 0)
        return SensorStatus(
            t=w.t, sensor=self.sensor, state=self.state, state_since=self.state_since,
            rms_mg=m.rms_mg, peak_hz=m.peak_hz, ratio=ratio, level=level_for(ratio) if m.measurable else "none",
            baseline_mg=self.baseline.value_mg, moving=moving, set_count=self.set_count, reps=reps,
            set_start=self._set_start, last_set=last, recovery_s=recovery_s,
            fatigue_trend=self.fatigue_trend(), window=w, events=tuple(events))

    def forget_sets(self) -> None:
        """A new session: keep the baseline, start counting sets again."""
        self.sets.clear()
        self.set_count = 0
        self._recovering = None
