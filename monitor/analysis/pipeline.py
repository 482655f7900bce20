"""One sensor's analysis from raw blocks to status: stream, reps, activity.

    wrist = SensorAnalysis("wrist", fs=1000, noise_floor_mg=1.7)
    for status in wrist.feed(block.t, block.accel, lost=block.lost):
        status.state, status.ratio, status.set_count

``baseline_mg`` fixes the rested baseline (an athlete's profile, or a replay
told it) instead of learning it from the first still windows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..grades import Thresholds
from .activity import ActivityConfig, ActivityTracker, SensorStatus
from .reps import RepCounter
from .stream import TremorAnalyzer

#: the rate the tremor analysis runs at when the sensor samples faster (bands end at 18 Hz)
ANALYSIS_HZ = 200.0


@dataclass(frozen=True)
class AnalysisConfig:
    window_s: float = 2.5
    hop_s: float = 0.5
    analysis_hz: float = ANALYSIS_HZ
    activity: ActivityConfig = field(default_factory=ActivityConfig)
    analysis_options: dict[str, Any] = field(default_factory=dict)


class SensorAnalysis:
    """See the module docstring. ``noise_floor_mg`` is the datasheet noise: per-axis RMS over
    2 to 20 Hz."""

    def __init__(
        self,
        sensor: str,
        fs: float,
        *,
        noise_floor_mg: float = 1.7,
        config: AnalysisConfig | None = None,
        placement: str = "limb",
        baseline_mg: float | None = None,
    ):
        cfg = config or AnalysisConfig()
        self.sensor = sensor
        self.config = cfg
        options = {"noise_floor_mg": noise_floor_mg, **cfg.analysis_options}
        decimate = max(1, int(fs // cfg.analysis_hz)) if cfg.analysis_hz else 1
        self.stream = TremorAnalyzer(
            fs,
            window_s=cfg.window_s,
            hop_s=cfg.hop_s,
            sensor=sensor,
            decimate=decimate,
            analysis_options=options,
        )
        self.activity = ActivityTracker(
            sensor,
            window_s=cfg.window_s,
            hop_s=cfg.hop_s,
            config=cfg.activity,
            placement=placement,
            baseline_mg=baseline_mg,
        )
        # The smallest swing of a rep's main axis that counts: half of what "still" allows
        # (a bench clip feels a fraction of the motion, and its threshold scales with it).
        gain = self.activity.motion_config.motion_gain
        self.reps = RepCounter(threshold_mg=0.5 * cfg.activity.still_mg * gain)
        self.last: SensorStatus | None = None

    @property
    def baseline_mg(self) -> float | None:
        """The rested baseline tremor is graded against now; None while it is being learnt."""
        return self.activity.baseline.value_mg

    def use_baseline(self, mg: float | None) -> None:
        """Start from ``mg`` (an athlete's profile; never below the sensor's floor, once a window
        has shown it), still followed by rested windows; None: learn afresh from the next ones."""
        base = self.activity.baseline
        base.relearn()
        if mg is not None:
            base.fix(mg)
            base.fixed = False

    def feed(
        self, t: np.ndarray, accel: np.ndarray, lost: int = 0, grades: Thresholds | None = None
    ) -> list[SensorStatus]:
        """A block of samples; each finished window's status, graded by ``grades`` (the tremor
        thresholds in force, :mod:`monitor.grades`' defaults if None)."""
        self.reps.feed(t, accel)
        out = [self.activity.update(w, self.reps, grades) for w in self.stream.feed(t, accel, lost)]
        if out:
            self.last = out[-1]
        return out
