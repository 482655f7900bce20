"""What one sensor's wearer is doing: idle, reps, a static hold, or recovering.

Fed one :class:`~monitor.analysis.stream.WindowResult` per hop (and the rep
count from the raw stream), it finds set boundaries, grades tremor against
the rested baseline, and measures fatigue and recovery:

* **reps**: voluntary-band motion (0.3 to 3 Hz) above ``move_mg`` for at least
  ``reps_min_s``; the set ends after ``set_end_s`` without it.
* **hold**: a static hold (plank, wall sit): little voluntary motion while
  tremor stays at least ``hold_ratio`` times baseline for ``hold_min_s``. It
  ends on movement (getting up) or when tremor falls back.
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

import numpy as np

from .baseline import Baseline, level_for
from .stream import WindowResult

IDLE, REPS, HOLD, RECOVERY = "idle", "reps", "hold", "recovery"


@dataclass(frozen=True)
class ActivityConfig:
    move_mg: float = 40.0
    reps_min_s: float = 2.0
    set_end_s: float = 3.0
    hold_ratio: float = 1.6
    hold_min_s: float = 5.0
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
                 config: ActivityConfig | None = None):
        self.sensor = sensor
        self.cfg = config or ActivityConfig()
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
        self._high_run: list[float] = []     # window times with ratio >= hold_ratio, not moving
        self._low_since: float | None = None
        self._set_start: float | None = None
        self._set_kind: str | None = None
        self._set_reps0 = 0
        self._set_samples: list[tuple[float, float, float | None]] = []  # t, log2 ratio, peak_hz
        self._last_move_t: float | None = None
        self._last_high_t: float | None = None
        self._recovering: SetRecord | None = None

    # -- the state machine -------------------------------------------------
    def update(self, w: WindowResult, reps_total: int) -> SensorStatus:
        m = w.metrics
        t = w.t
        if not self._floor_given:
            self.baseline.floor_mg = 2 * m.floor_mg
            self._floor_given = True
        vol = m.band_rms_mg.get("voluntary", 0.0)
        moving = bool(m.moving and vol >= self.cfg.move_mg)
        ratio = self.baseline.ratio(m.rms_mg) if m.measurable else (1.0 if self.baseline.value_mg else None)
        events: list[tuple[str, object]] = []

        self._move_run = self._move_run + [t] if moving else []
        if moving:
            self._last_move_t = t
        high = (not moving and ratio is not None and ratio >= self.cfg.hold_ratio)
        self._high_run = self._high_run + [t] if high else []
        if high:
            self._last_high_t = t

        if self.state in (IDLE, RECOVERY):
            if len(self._move_run) * self.hop_s >= self.cfg.reps_min_s:
                self._begin(REPS, self._move_run[0] - self.hop_s, reps_total, events)
            elif len(self._high_run) * self.hop_s >= self.cfg.hold_min_s:
                self._begin(HOLD, self._high_run[0] - self.window_s, reps_total, events)
        elif self.state == REPS:
            if not moving and self._last_move_t is not None and t - self._last_move_t >= self.cfg.set_end_s:
                self._finish(self._last_move_t - self.window_s + self.hop_s, reps_total, events)
        elif self.state == HOLD:
            relaxed = ratio is not None and ratio < self.cfg.hold_ratio / 1.25
            if moving or (relaxed and self._last_high_t is not None and t - self._last_high_t >= self.cfg.set_end_s):
                end = (self._last_high_t or t) if not moving else t - self.window_s
                self._finish(end, reps_total, events)

        if self.state in (REPS, HOLD) and ratio is not None:
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

        return self._status(w, ratio, moving, reps_total, events)

    def _set_state(self, state: str, t: float) -> None:
        self.state = state
        self.state_since = t

    def _begin(self, kind: str, start: float, reps_total: int, events) -> None:
        if self._recovering is not None:
            events.append(("not_recovered", self._recovering))  # next set before recovery
            self._recovering = None
        start = max(start, self.sets[-1].end if self.sets else start)
        self._set_kind, self._set_start, self._set_reps0 = kind, start, reps_total
        self._set_samples = []
        self._low_since = None
        self._set_state(kind, start)
        events.append(("set_started", (kind, start)))

    def _finish(self, end: float, reps_total: int, events) -> None:
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
            reps=reps_total - self._set_reps0 if self._set_kind == REPS else 0,
            ratio_median=float(2 ** np.median(logs)) if logs else None,
            ratio_peak=float(2 ** max(logs)) if logs else None,
            growth_per_min=None if growth is None else growth * 60,
            peak_hz_drift=None if drift is None else drift * 60,
        )
        self.sets.append(record)
        self._recovering = record
        self._set_start = self._set_kind = None
        self._low_since = None
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

    def _status(self, w: WindowResult, ratio, moving, reps_total, events) -> SensorStatus:
        m = w.metrics
        last = self.sets[-1] if self.sets else None
        if self._recovering is not None:
            recovery_s = w.t - self._recovering.end
        else:
            recovery_s = last.recovery_s if last else None
        reps = reps_total - self._set_reps0 if self.state == REPS else (last.reps if last else 0)
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
