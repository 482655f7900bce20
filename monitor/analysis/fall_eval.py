"""How well the fall detector does on labelled recordings: falls caught, false alarms.

Recordings are ``NAME.csv`` (header ``t_s,ax,ay,az``: seconds, m/s^2 with gravity)
with ``NAME.json`` labels (``activity``, ``fall``, ``duration_s`` ...), the format of
``../shared/data/realdata`` (MobiFall)::

    report = evaluate(Path("../shared/data/realdata/mobifall"), site="thigh")
    report.sensitivity("FOL"), report.false_alarms_per_hour()
    print(report.table())

Each recording is fed to a fresh :class:`~monitor.analysis.fall.FallDetector` in
0.1 s blocks, as the station feeds it. A fall trial counts as caught if the
detector decides at least once *within the recording*: one that would need more
recording after the impact than there is counts as missed, never as caught.
Everyday-movement trials count every fall decided as a false alarm.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .fall import FallConfig, FallDetector, FallEvent

BLOCK_S = 0.1
"""The station hands the detector about this much at a time."""


@dataclass(frozen=True, eq=False)
class Trial:
    """One labelled recording: samples and what the labels say."""

    name: str
    activity: str
    fall: bool
    t: np.ndarray
    accel: np.ndarray
    peak_t: float | None = None  # a hint, not a label: where |a| was largest

    @property
    def duration_s(self) -> float:
        return float(self.t[-1] - self.t[0]) if len(self.t) > 1 else 0.0


@dataclass(frozen=True)
class Outcome:
    """What the detector made of one trial."""

    trial: str
    activity: str
    fall: bool
    duration_s: float
    events: tuple[FallEvent, ...]
    peak_t: float | None = None

    @property
    def caught(self) -> bool:
        return bool(self.events)

    @property
    def latency_s(self) -> float:
        """From the first reported impact to the decision."""
        return self.events[0].decided_t - self.events[0].t if self.events else math.nan


@dataclass
class Report:
    """Per-trial outcomes with the figures the targets are stated in."""

    outcomes: list[Outcome] = field(default_factory=list)

    def kinds(self, fall: bool) -> list[str]:
        return sorted({o.activity for o in self.outcomes if o.fall == fall})

    def of(self, activity: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.activity == activity]

    def sensitivity(self, kind: str | None = None) -> float:
        falls = [o for o in self.outcomes if o.fall and (kind is None or o.activity == kind)]
        return sum(o.caught for o in falls) / len(falls) if falls else math.nan

    def everyday_hours(self, activity: str | None = None) -> float:
        return (
            sum(
                o.duration_s
                for o in self.outcomes
                if not o.fall and (activity is None or o.activity == activity)
            )
            / 3600.0
        )

    def false_alarms(self, activity: str | None = None) -> int:
        return sum(
            len(o.events)
            for o in self.outcomes
            if not o.fall and (activity is None or o.activity == activity)
        )

    def false_alarms_per_hour(self, activity: str | None = None) -> float:
        hours = self.everyday_hours(activity)
        return self.false_alarms(activity) / hours if hours else math.nan

    def specificity(self, activity: str | None = None) -> float:
        """Share of everyday trials with no fall reported."""
        rows = [
            o for o in self.outcomes if not o.fall and (activity is None or o.activity == activity)
        ]
        return sum(not o.caught for o in rows) / len(rows) if rows else math.nan

    def latencies(self) -> np.ndarray:
        return np.array([o.latency_s for o in self.outcomes if o.fall and o.caught])

    def near_peak(self, within_s: float = 1.5) -> tuple[int, int]:
        """(caught falls whose impact is within ``within_s`` of the trial's largest |a|, caught)."""
        gaps = [
            abs(o.events[0].t - peak)
            for o in self.outcomes
            if o.fall and o.caught and (peak := o.peak_t) is not None
        ]
        return sum(gap <= within_s for gap in gaps), len(gaps)

    def table(self) -> str:
        lines = [f"{'falls':8s} {'trials':>6s} {'caught':>6s} {'sensitivity':>11s}"]
        for kind in self.kinds(True):
            rows = self.of(kind)
            lines.append(
                f"{kind:8s} {len(rows):6d} {sum(o.caught for o in rows):6d} "
                f"{100 * self.sensitivity(kind):10.1f}%"
            )
        falls = [o for o in self.outcomes if o.fall]
        lines.append(
            f"{'all':8s} {len(falls):6d} {sum(o.caught for o in falls):6d} "
            f"{100 * self.sensitivity():10.1f}%"
        )
        lines.append("")
        lines.append(
            f"{'everyday':8s} {'trials':>6s} {'hours':>6s} {'alarms':>6s} "
            f"{'per hour':>8s} {'specificity':>11s}"
        )
        for act in self.kinds(False):
            rows = self.of(act)
            lines.append(
                f"{act:8s} {len(rows):6d} {self.everyday_hours(act):6.3f} "
                f"{self.false_alarms(act):6d} {self.false_alarms_per_hour(act):8.2f} "
                f"{100 * self.specificity(act):10.1f}%"
            )
        everyday = [o for o in self.outcomes if not o.fall]
        lines.append(
            f"{'all':8s} {len(everyday):6d} {self.everyday_hours():6.3f} "
            f"{self.false_alarms():6d} {self.false_alarms_per_hour():8.2f} "
            f"{100 * self.specificity():10.1f}%"
        )
        lat = self.latencies()
        if len(lat):
            lines.append("")
            lines.append(
                f"decided after the impact: median {np.median(lat):.2f} s, max {lat.max():.2f} s"
            )
        near, caught = self.near_peak()
        if caught:
            lines.append(
                f"reported impact within 1.5 s of the trial's largest |a|: {near} of {caught}"
            )
        return "\n".join(lines)


def load_trial(csv: Path) -> Trial:
    """One ``NAME.csv`` with its ``NAME.json`` labels."""
    data = np.loadtxt(csv, delimiter=",", skiprows=1, ndmin=2)
    labels = json.loads(csv.with_suffix(".json").read_text())
    peak = labels.get("derived", {}).get("peak_t_s")
    return Trial(
        csv.stem,
        str(labels["activity"]),
        bool(labels["fall"]),
        data[:, 0],
        data[:, 1:4],
        None if peak is None else float(peak),
    )


def trials(root: Path, activities: Iterable[str] | None = None) -> Iterator[Trial]:
    """Every labelled recording under ``root`` (optionally only these activities)."""
    wanted = None if activities is None else set(activities)
    for csv in sorted(Path(root).glob("*.csv")):
        if not csv.with_suffix(".json").exists():
            continue
        if wanted is not None and csv.stem.split("_")[0] not in wanted:
            continue
        trial = load_trial(csv)
        if wanted is None or trial.activity in wanted:
            yield trial


def run(
    t: np.ndarray, accel: np.ndarray, detector: FallDetector, block_s: float = BLOCK_S
) -> list[FallEvent]:
    """Feed a recording to ``detector`` in ``block_s`` blocks; the falls it decided."""
    edges = np.searchsorted(t, np.arange(t[0], t[-1] + block_s, block_s)[1:], side="left")
    events: list[FallEvent] = []
    start = 0
    for end in [*edges, len(t)]:
        if end > start:
            events += detector.feed(t[start:end], accel[start:end])
            start = end
    return events


def evaluate(
    root: Path,
    *,
    site: str = "thigh",
    config: FallConfig | None = None,
    activities: Iterable[str] | None = None,
    block_s: float = BLOCK_S,
) -> Report:
    """Run a fresh detector over every trial under ``root``, fed ``block_s`` at a time."""
    report = Report()
    for trial in trials(root, activities):
        detector = FallDetector(config) if config is not None else FallDetector(site=site)
        events = run(trial.t, trial.accel, detector, block_s)
        report.outcomes.append(
            Outcome(
                trial.name,
                trial.activity,
                trial.fall,
                trial.duration_s,
                tuple(events),
                trial.peak_t,
            )
        )
    return report
