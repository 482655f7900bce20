"""What one sensor's wearer is doing, and tremor graded against what it can be graded against.

Fed one :class:`~monitor.analysis.stream.WindowResult` per hop (and the rep
counter that watches the raw stream), the tracker classifies each window
(:mod:`~monitor.analysis.motion`: still, reps, walking, running, jumping or
other movement), finds sets and holds, and grades tremor.

**Where tremor can be graded, and against what.** The 3-18 Hz band of a moving
limb holds the motion's own harmonics (the jerk at each turn of a rep, the
strike of each step) and kinetic tremor, both far above a rested baseline: on
the SPAR wrist recordings, ordinary light reps put 45-250 mg there (median
about 110 mg) with the peak at the 3 Hz edge, 10-20 times a rested hand.
Grading such windows against the rested baseline raised a tremor alert on every
set. So, as the open tools and the literature do:

* *Windows dominated by voluntary motion are never graded against the rested
  baseline.* ParaDigMa (Post et al. 2024, the Parkinson's digital-marker
  pipeline) measures tremor only in windows its arm-activity gate leaves;
  PDkit and di Biase et al. (2017) analyse rest and postural tasks, and read
  kinetic tasks only as a movement's own figures.
* *Still windows are graded against the rested baseline*, wherever they fall:
  at rest, in a static hold, in a pause within a set and in the first seconds
  after it (post-exercise tremor is how the fatigue literature measures it:
  Lippold 1981; Gandevia 2001). The median ratio of a set's still moments and
  of the ``after_s`` seconds after it is the set's ``ratio_median``; set after
  set, it is the fatigue trend.
* *Moving windows within a set are graded against a reference the motion
  shares*: the same set's first reps (the upper decile of their tremor-band
  RMS over ``reference_s``), never below the rested baseline. This is how
  velocity-based training judges fatigue within a set (velocity loss against
  the set's first reps: Sanchez-Medina & Gonzalez-Badillo 2011), and how
  mechanomyography reads fatigue during dynamic work (amplitude against the
  first contractions of the same bout: Orizio 1993; Beck et al. 2004). A
  tremor that grows within the set until it doubles what the movement alone
  put in the band is "elevated"; one that the movement drowns is not claimed.
  When the reference is mostly motion (far above the rested baseline), one
  window's figure depends on where in the rep it falls, so the figure graded
  is the median over one rep period; when the motion puts little in the band,
  each window is graded as it comes, as fast as a hold.

**Sets and holds.**

* **reps**: a run of moving windows, mostly rep-like rather than steps, that
  holds at least ``set_min_reps`` periodic reps swinging the limb's main axis
  by at least ``SET_SWING`` times ``move_mg`` (see :mod:`.reps`). The set is
  dated from its first rep and ends ``set_end_s`` after the last moving window
  (or after the wearer walks away); its reps are counted on the whole set, and
  a "set" that turns out to hold fewer reps, or mostly steps (the first strides
  up a flight of stairs), is cancelled (``set_cancelled``).
* **hold** (limb- or body-worn sensors; a bench clip's tremor band is mostly the
  machines around it): still, with the rested ratio (median of
  ``smooth_windows``) at least ``hold_ratio`` and at least ``hold_rise`` above
  the lowest it was in the last minute of stillness, for ``hold_min_s``, and
  climbing all along (Kendall's tau against time at least ``HOLD_TREND``).
  Fatigue makes a hold's tremor climb (the same motor units stay recruited:
  Furness et al. 1977); standing or sitting quietly keeps it around a level,
  which on real people comes and goes by 2-4x within a minute (MobiFall STD:
  the 99th percentile of a still window's tremor is 3.5-6x its 10th). A hold
  ends on movement or once tremor has fallen ``hold_release`` below its peak,
  and is dated from where the climb began.
* **recovery**: after a set, until the rested ratio is back within
  ``recovered_ratio`` for ``recovered_hold_s``; how long that took is the
  recovery time.
* **idle**: none of these; still windows make and keep the rested baseline.

Amplitude is the fatigue marker (its growth within a set, and set to set);
peak-frequency drift is reported but never trusted alone (Lakie 2015).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from ..grades import Thresholds, TremorLevel, grade
from .baseline import Baseline
from .motion import LOCOMOTION, MOVING, STILL, MotionConfig, classify
from .motion import REPS as REPS_KIND
from .stream import WindowResult

if TYPE_CHECKING:
    from .reps import RepCounter

IDLE, REPS, HOLD, RECOVERY = "idle", "reps", "hold", "recovery"

#: a set's reps swing the main axis at least this many times ``move_mg`` (95th percentile of
#: the fundamental): 100 mg at a limb. SPAR's lightest band rows swing 110 mg and more over
#: their first reps; standing and shifting weight (MobiFall STD) 70-95 mg.
SET_SWING = 2.5

#: while a hold is being recognised, Kendall's tau of its tremor against time over the
#: ``hold_min_s`` it has been high must reach this: a climb, not a level that comes and goes.
#: On MobiFall's quiet standing (4 people, 5 min) no stretch passes with hold_min_s = 10 s;
#: the simulated planks and wall sits pass 17-25 s into the hold.
HOLD_TREND = 0.3

#: still windows this long before a set tell the tremor the athlete brought into it
PRE_SET_S = 20.0

#: how a status's ``ratio`` was graded
GRADED_RESTED, GRADED_SET = "rested", "set"


@dataclass(frozen=True)
class ActivityConfig:
    move_mg: float = 40.0  # voluntary-band RMS of a rep (limb or body)
    bench_move_mg: float = 5.0  # a bench clip feels about a tenth of the athlete's motion
    still_mg: float = 30.0  # voluntary-band RMS under this (and gravity steady): still
    reps_min_s: float = 2.0
    set_min_reps: int = 2  # periodic reps a run of movement needs to be a set
    set_end_s: float = 3.0
    reference_s: float = 6.0  # the first reps of a set that make its own reference
    after_s: float = 15.0  # still windows after a set that show the tremor it left
    hold_ratio: float = 1.6
    hold_min_s: float = 10.0
    hold_rise: float = 1.3
    hold_release: float = 1.15
    hold_plateau_s: float = 20.0
    smooth_windows: int = 5
    recovered_ratio: float = 1.3
    recovered_hold_s: float = 5.0
    learn_windows: int = 20
    #: how fast rested windows pull the baseline along (its time constant)
    baseline_follow_s: float = 600.0

    def motion(self, placement: str) -> MotionConfig:
        """The window classifier's thresholds for a sensor at ``placement``."""
        if placement == "bench":
            return MotionConfig.for_placement(
                "bench",
                motion_gain=self.bench_move_mg / self.move_mg,
                still_mg=self.still_mg,
                move_mg=self.move_mg,
            )
        return MotionConfig.for_placement(placement, still_mg=self.still_mg, move_mg=self.move_mg)


@dataclass(frozen=True)
class SetRecord:
    """One set, as found. Times are station-clock seconds.

    ``ratio_median`` and ``ratio_peak`` are tremor against the rested baseline
    where it can be measured: in a hold, its own windows; for reps, the set's
    still moments and the ``after_s`` seconds after it (filled in then).
    ``growth_per_min`` is log2 of the graded ratio per minute within the set
    (against the set's own first reps during reps). ``reference_mg`` is what
    the set's first reps put in the tremor band; ``period_s`` the rep period.
    """

    index: int
    kind: str  # "reps" or "hold"
    start: float
    end: float
    reps: int = 0
    ratio_median: float | None = None
    ratio_peak: float | None = None
    growth_per_min: float | None = None  # log2(ratio) per minute within the set
    peak_hz_drift: float | None = None  # Hz per minute, reported only
    recovery_s: float | None = None  # filled in when tremor is back near baseline
    reference_mg: float | None = None
    period_s: float | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class SensorStatus:
    """A sensor's state after one window, for the session, the alerts and MQTT.

    ``ratio`` is the tremor ratio the alerts grade, and ``graded`` says against
    what: ``"rested"`` (a still window against the rested baseline) or ``"set"``
    (a moving window within a set against the set's first reps); ``None`` when
    the window cannot be graded (moving outside a set, or no baseline yet).
    ``ratio_rested`` is the still window's ratio to the rested baseline (None
    when moving). ``activity`` is the window's kind (:data:`~monitor.analysis.motion.KINDS`).
    """

    t: float
    sensor: str
    state: str
    state_since: float
    rms_mg: float | None
    peak_hz: float | None
    ratio: float | None
    level: TremorLevel
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
    activity: str = STILL
    graded: str | None = None
    ratio_rested: float | None = None
    reference_mg: float | None = None


def _slope(x: list[float], y: list[float]) -> float | None:
    if len(x) < 3 or max(x) - min(x) <= 0:
        return None
    return float(np.polyfit(np.asarray(x), np.asarray(y), 1)[0])


@dataclass
class _Window:
    """What the tracker remembers of a recent window."""

    t: float
    tremor_mg: float  # tremor-band RMS as measured (not gated by the floor)
    kind: str
    ratio_rested: float | None
    peak_hz: float | None


class ActivityTracker:
    """See the module docstring.

    ``floor_mg`` is the smallest baseline (twice the sensor noise in the tremor
    band; taken from the first window unless given). ``baseline_mg`` fixes the
    rested baseline (an athlete's profile, or a replay told it) instead of
    learning it.
    """

    def __init__(
        self,
        sensor: str,
        *,
        window_s: float,
        hop_s: float,
        floor_mg: float | None = None,
        config: ActivityConfig | None = None,
        placement: str = "limb",
        baseline_mg: float | None = None,
    ):
        self.sensor = sensor
        self.cfg = config or ActivityConfig()
        self.placement = placement
        self.motion_config = self.cfg.motion(placement)
        # Movement that is not a set, and ends one: walking, running, jumping.
        self.not_sets = LOCOMOTION
        self.holds = placement != "bench"
        self.window_s = window_s
        self.hop_s = hop_s
        self.baseline = Baseline(floor_mg=floor_mg or 0.0, learn_windows=self.cfg.learn_windows)
        self._floor_given = floor_mg is not None
        if baseline_mg is not None:
            self.baseline.fix(baseline_mg)
        self.state = IDLE
        self.state_since = 0.0
        self.sets: deque[SetRecord] = deque(maxlen=64)
        self.set_count = 0
        self._recent: deque[_Window] = deque(maxlen=max(8, int(90.0 / hop_s)))
        self._run: list[_Window] = []  # the current run of moving windows
        self._ratios: deque[float] = deque(maxlen=self.cfg.smooth_windows)
        self._still_history: deque[tuple[float, float]] = deque(maxlen=max(4, int(60.0 / hop_s)))
        self._high_since: float | None = None
        self._peak: tuple[float, float] | None = None  # (ratio, t) highest in the current hold
        self._fall_since: float | None = None
        self._reps: RepCounter | None = None
        self._low_since: float | None = None
        self._set_start: float | None = None
        self._set_kind: str | None = None
        self._set_samples: list[
            tuple[float, float, float | None]
        ] = []  # t, log2 graded ratio, peak_hz
        self._set_rested: list[float] = []
        self._set_moving: list[float] = []  # tremor-band mg of the set's moving windows
        self._set_steps = 0  # ... of which walking, running or jumping
        self._started_at: float | None = None
        self._trend: tuple[tuple, float | None] = ((), None)  # fatigue trend, by the sets it is of
        self._reference: float | None = None
        self._motion_mg: float | None = None
        self._period: float | None = None
        self._last_move_t: float | None = None
        self._last_rep_t: float | None = None
        self._loco_since: float | None = None
        self._recovering: SetRecord | None = None
        self._after: tuple[SetRecord, list[float]] | None = None

    # -- the state machine -------------------------------------------------
    def update(
        self, w: WindowResult, reps: RepCounter | None = None, grades: Thresholds | None = None
    ) -> SensorStatus:
        """One window; ``reps`` is the rep counter fed with the same stream, ``grades`` the
        thresholds its ratio is graded by (:mod:`monitor.grades`' defaults if None)."""
        self._reps = reps
        m = w.metrics
        t = w.t
        if not self._floor_given:
            self.baseline.floor_mg = 2 * m.floor_mg
            self._floor_given = True
            if self.baseline.fixed and self.baseline.value_mg is not None:
                self.baseline.value_mg = max(self.baseline.value_mg, self.baseline.floor_mg)
        kind = self._classify(w)
        still = kind == STILL
        moving = not still
        usable = not w.disturbed and w.bridged <= 0.02 * m.n
        tremor_mg = m.band_rms_mg.get("tremor", 0.0)
        rested = None
        if still and self.baseline.value_mg is not None:
            rested = self.baseline.ratio(m.rms_mg) if m.measurable else 1.0
        win = _Window(
            t, tremor_mg, kind, rested if usable else None, m.peak_hz if m.measurable else None
        )
        self._recent.append(win)
        events: list[tuple[str, object]] = []

        self._run = [*self._run, win] if moving else []
        if moving:
            self._ratios.clear()
            self._still_history.clear()
        elif win.ratio_rested is not None:
            self._ratios.append(win.ratio_rested)
        smooth = float(np.median(self._ratios)) if self._ratios else None
        if smooth is not None:
            self._still_history.append((t, smooth))

        if self.state in (IDLE, RECOVERY):
            self._after_set(win, events)
            if not self._maybe_begin_set(t, events):
                self._maybe_begin_hold(t, smooth, events)
        elif self.state == REPS:
            self._follow_set(win, t, events)
        elif self.state == HOLD:
            self._follow_hold(t, smooth, moving, events)

        ratio, graded, reference = None, None, None
        if self.state == REPS:
            # Nothing in a set is graded before its first reps have made its reference: a
            # set is only sure to be one by then, and the motion's share is only known then.
            reference = self._reference
            if reference is not None and moving and not w.disturbed:
                ratio, graded = self._set_ratio(tremor_mg), GRADED_SET
            elif reference is not None and rested is not None:
                ratio, graded = rested, GRADED_RESTED
        elif still and rested is not None:
            ratio, graded = rested, GRADED_RESTED

        if self.state in (REPS, HOLD) and ratio is not None and usable:
            self._set_samples.append((t, math.log2(max(ratio, 1e-9)), win.peak_hz))
            if graded == GRADED_RESTED:
                self._set_rested.append(ratio)

        if self.state == RECOVERY and self._recovering is not None:
            if rested is not None and rested <= self.cfg.recovered_ratio:
                self._low_since = self._low_since if self._low_since is not None else t
                if t - self._low_since >= self.cfg.recovered_hold_s:
                    rec = self._low_since - self._recovering.end
                    done = replace(self._current(self._recovering), recovery_s=max(0.0, rec))
                    self._store(done)
                    events.append(("recovered", done))
                    self._recovering = None
                    self._set_state(IDLE, t)
            elif moving or rested is not None:
                self._low_since = None

        # Rested windows make the baseline. Until there is one, recovery is as rested as the
        # tracker can know (a "set" of shifting on one's feet must not keep it from learning).
        learning = self.state == IDLE or (self.state == RECOVERY and self.baseline.value_mg is None)
        if learning and still and usable:
            self._learn(m.rms_mg if m.measurable else None, rested, t)

        return self._status(w, ratio, graded, rested, reference, moving, kind, events, grades)

    def _classify(self, w: WindowResult) -> str:
        m = w.metrics
        if w.motion is None:  # a window from elsewhere without movement figures
            vol = m.band_rms_mg.get("voluntary", 0.0)
            gain = self.motion_config.motion_gain
            if vol < self.cfg.still_mg * gain:
                return STILL
            return REPS_KIND if vol >= self.cfg.move_mg * gain else MOVING
        return classify(w.motion, m, self.motion_config)

    def _set_state(self, state: str, t: float) -> None:
        self.state = state
        self.state_since = t

    # -- sets of reps --------------------------------------------------------
    def _maybe_begin_set(self, t: float, events) -> bool:
        run = self._run
        if not run or self._reps is None:
            return False
        if len(run) * self.hop_s < self.cfg.reps_min_s - 1e-9:
            return False
        steps = sum(1 for x in run if x.kind in self.not_sets)
        rep_like = sum(1 for x in run if x.kind != MOVING) - steps
        if rep_like == 0 or steps > rep_like:
            return False  # walking, running or jumping: movement, not a set
        since = run[0].t - self.window_s
        floor_t = self.sets[-1].end if self.sets else -math.inf
        trace = self._reps.trace(max(since, t - 60.0, floor_t), t)
        # Reps swing the limb's main axis well beyond what shifting on one's feet does.
        swing = SET_SWING * self.cfg.move_mg * self.motion_config.motion_gain
        if trace.count < self.cfg.set_min_reps or trace.first_t is None or trace.swing_mg < swing:
            return False
        self._period = trace.period_s
        start = self._begin(REPS, max(trace.first_t, since), events)
        # the windows of the set so far, remembered from before it was recognised
        for x in self._recent:
            if x.t - self.window_s >= start - self.hop_s and x.kind != STILL:
                self._set_moving.append(x.tremor_mg)
                self._set_steps += x.kind in self.not_sets
        self._last_move_t = self._last_rep_t = t
        return True

    def _follow_set(self, win: _Window, t: float, events) -> None:
        if win.kind != STILL:
            self._set_moving.append(win.tremor_mg)
            self._set_steps += win.kind in self.not_sets
            if win.kind in self.not_sets:
                self._loco_since = self._loco_since if self._loco_since is not None else t
            else:
                self._loco_since = None
                self._last_rep_t = t
            self._last_move_t = t
        else:
            self._loco_since = None
        if self._reference is None:
            self._make_reference(t)
        if self._loco_since is not None and t - self._loco_since >= 2 * self.cfg.set_end_s:
            # walked (or ran) off: the set ended with its last rep-like window
            self._finish(
                self._set_end(self._last_rep_t if self._last_rep_t is not None else t), events
            )
        elif self._last_move_t is not None and t - self._last_move_t >= self.cfg.set_end_s:
            self._finish(self._set_end(self._last_move_t), events)

    def _set_end(self, last: float) -> float:
        """When a set of reps whose last moving window ended at ``last`` ended: its last rep's
        end."""
        end = last - self.window_s + self.hop_s
        if self._reps is not None and self._set_start is not None:
            trace = self._reps.trace(self._set_start, last)
            if trace.count and trace.last_t is not None and trace.period_s:
                end = min(last, trace.last_t + 0.25 * trace.period_s)
        return end

    def _make_reference(self, t: float) -> None:
        """The set's own reference, once its first reps have been seen.

        The first reps' tremor-band RMS (its upper decile over ``reference_s``) holds
        the motion's own content and the tremor the athlete brought into the set. The
        tremor of the still windows just before the set tells the second, so what the
        motion adds is the difference (in power); the reference is that plus the rested
        baseline: what these reps would show on a rested athlete. Clean reps thus grade
        like a hold (tremor carried over from earlier sets still counts), and reps full
        of harmonics grade against themselves.
        """
        if self._set_start is None or t < self._set_start + self.window_s + self.cfg.reference_s:
            return
        first = self._set_moving[: max(1, round(self.cfg.reference_s / self.hop_s) + 1)]
        if len(first) < 3:
            return
        level = float(np.percentile(first, 90))
        base = self.baseline.value_mg
        if base is None:
            self._motion_mg, self._reference = level, level
            return
        before = [
            x.tremor_mg
            for x in self._recent
            if x.kind == STILL
            and self._set_start - PRE_SET_S <= x.t - self.window_s
            and x.t <= self._set_start + self.hop_s
        ]
        carried = float(np.median(before)) if before else base
        self._motion_mg = math.sqrt(max(level**2 - carried**2, 0.0))
        self._reference = math.sqrt(self._motion_mg**2 + max(base, self.baseline.floor_mg) ** 2)

    def _set_ratio(self, tremor_mg: float) -> float | None:
        if self._reference is None:
            return None
        reference = max(self._reference, self.baseline.floor_mg, 1e-9)
        # How much of the reference is the motion's own: none, and each window is graded as
        # it comes; most of it, and the figure is the median over one rep -- and over at
        # least a window's length: a knock or a wobble of the strap lights up two or three
        # windows, and must not be the median.
        motion_share = min(1.0, (self._motion_mg or 0.0) ** 2 / reference**2)
        span = max(self._period or 2.0, self.window_s)
        k = 1 + 2 * int(motion_share * span / (2 * self.hop_s) + 0.5)
        recent = self._set_moving[-k:]
        return float(np.median(recent)) / reference

    # -- holds ---------------------------------------------------------------
    def _maybe_begin_hold(self, t: float, smooth: float | None, events) -> None:
        if not self.holds or smooth is None:
            self._high_since = None
            return
        trough = min((r for _, r in self._still_history), default=smooth)
        high = smooth >= self.cfg.hold_ratio and smooth >= trough * self.cfg.hold_rise
        if not high:
            self._high_since = None
            return
        self._high_since = self._high_since if self._high_since is not None else t
        if t - self._high_since + self.hop_s >= self.cfg.hold_min_s and self._rising(
            self._high_since
        ):
            self._begin(HOLD, self._hold_onset(self._high_since), events)

    def _rising(self, since: float) -> bool:
        """Did tremor keep climbing while it was high? A hold's fatigue climbs on; standing
        still, tremor that rose with a shift of weight comes and goes around a level. The
        test is Kendall's tau of the smoothed ratio against time over the high stretch."""
        span = np.array([r for t, r in self._still_history if t >= since])
        if span.size < 4:
            return False
        signs = np.sign(span[None, :] - span[:, None])[np.triu_indices(span.size, 1)]
        return float(signs.mean()) >= HOLD_TREND

    def _follow_hold(self, t: float, smooth: float | None, moving: bool, events) -> None:
        # A new peak must beat the old by a margin, or noise on a plateau keeps the hold alive.
        if smooth is not None and (self._peak is None or smooth >= self._peak[0] * 1.03):
            self._peak = (smooth, t)
        falling = (
            smooth is not None
            and self._peak is not None
            and smooth < self._peak[0] / self.cfg.hold_release
        )
        self._fall_since = (
            (self._fall_since if self._fall_since is not None else t) if falling else None
        )
        peak = self._peak  # there is one whenever tremor is falling from it
        if moving:
            self._finish(t - self.window_s, events)
        elif peak is not None and (
            (self._fall_since is not None and t - self._fall_since >= self.cfg.set_end_s)
            or t - peak[1] >= self.cfg.hold_plateau_s
        ):
            # Tremor peaks as the hold is released (or stops climbing: a hold that
            # goes on fatigues on); the window ending there is centred half a window earlier.
            self._finish(peak[1] - self.window_s / 2, events)

    def _hold_onset(self, confirmed_from: float) -> float:
        """When the climb into a hold began: the lowest point of the recent tremor before it."""
        floor_t = self.sets[-1].end if self.sets else float("-inf")
        before = [(r, t) for t, r in self._still_history if floor_t <= t <= confirmed_from]
        if not before:
            return confirmed_from - self.window_s
        low = min(r for r, _ in before)
        onset = max(t for r, t in before if r <= low * 1.1)
        return max(floor_t, onset - self.window_s / 2)

    # -- set bookkeeping -----------------------------------------------------
    def _begin(self, kind: str, start: float, events) -> float:
        """A set or hold begins (never before the last one ended); returns its start."""
        self._close_after()
        if self._recovering is not None:
            events.append(
                ("not_recovered", self._current(self._recovering))
            )  # next set before recovery
            self._recovering = None
        start = max(start, self.sets[-1].end if self.sets else start)
        self._set_kind, self._set_start = kind, start
        self._started_at = start  # as announced in "set_started"
        self._set_samples, self._set_rested, self._set_moving = [], [], []
        self._set_steps = 0
        self._reference = self._motion_mg = None
        self._low_since = self._loco_since = None
        self._peak = self._fall_since = None
        self._high_since = None
        if kind == HOLD:
            self._period = None
        self._set_state(kind, start)
        events.append(("set_started", (kind, start)))
        return start

    def _finish(self, end: float, events) -> None:
        assert self._set_start is not None and self._set_kind is not None
        end = max(end, self._set_start + self.hop_s)
        samples = [s for s in self._set_samples if s[0] <= end + self.window_s]
        logs = [s[1] for s in samples]
        times = [s[0] for s in samples]
        hz = [(s[0], s[2]) for s in samples if s[2] is not None]
        growth = _slope(times, logs)
        drift = _slope([h[0] for h in hz], [h[1] for h in hz])
        reps, period = 0, self._period
        if self._set_kind == REPS and self._reps is not None:
            # Counted on the whole set (and a window before it, so its first rep is whole):
            # the count, the period and the first rep's start are surer now than when the
            # set was recognised from its first few reps.
            floor_t = self.sets[-1].end if self.sets else -math.inf
            trace = self._reps.trace(
                max(self._set_start - self.window_s, floor_t), end + self.window_s / 2
            )
            reps, period = trace.count, trace.period_s or period
            if trace.first_t is not None and reps >= self.cfg.set_min_reps:
                self._set_start = max(trace.first_t, floor_t)
            if reps < self.cfg.set_min_reps or 2 * self._set_steps > len(self._set_moving):
                # Counted on the whole stretch, the reps that made it a set are not there, or
                # most of it was steps: it was not one (a shift of weight that looked periodic
                # for a moment, the first strides of a walk up the stairs).
                events.append(("set_cancelled", (self._set_kind, self._started_at)))
                self._set_start = self._set_kind = None
                self._set_state(IDLE if self._recovering is None else RECOVERY, end)
                return
        rested = self._set_rested if self._set_kind == REPS else [2**x for x in logs]
        self.set_count += 1
        record = SetRecord(
            index=self.set_count,
            kind=self._set_kind,
            start=self._set_start,
            end=end,
            reps=reps,
            ratio_median=float(np.median(rested)) if rested else None,
            ratio_peak=float(max(rested)) if rested else None,
            growth_per_min=None if growth is None else growth * 60,
            peak_hz_drift=None if drift is None else drift * 60,
            reference_mg=self._reference,
            period_s=period if self._set_kind == REPS else None,
        )
        self.sets.append(record)
        self._recovering = record
        if self._set_kind == REPS:
            self._after = (record, list(self._set_rested))
        self._set_start = self._set_kind = None
        self._low_since = None
        self._high_since = None
        self._ratios.clear()
        self._still_history.clear()
        self._set_state(RECOVERY, end)
        events.append(("set_ended", record))

    def _after_set(self, win: _Window, events) -> None:
        """Collect the still windows just after a set of reps: the tremor the set left."""
        if self._after is None:
            return
        record, values = self._after
        if win.t - self.window_s >= record.end and win.ratio_rested is not None:
            values.append(win.ratio_rested)
        if win.t >= record.end + self.window_s + self.cfg.after_s:
            self._close_after()

    def _close_after(self) -> None:
        if self._after is None:
            return
        record, values = self._after
        self._after = None
        if values:
            self._store(
                replace(
                    self._current(record),
                    ratio_median=float(np.median(values)),
                    ratio_peak=float(max(values)),
                )
            )

    def _current(self, record: SetRecord) -> SetRecord:
        """The latest version of ``record`` (figures are filled in after the set ends)."""
        for s in reversed(self.sets):
            if s.index == record.index:
                return s
        return record

    def _store(self, record: SetRecord) -> None:
        for i in range(len(self.sets) - 1, -1, -1):
            if self.sets[i].index == record.index:
                self.sets[i] = record
                break
        if self._recovering is not None and self._recovering.index == record.index:
            self._recovering = record

    def _learn(self, rms_mg: float | None, ratio: float | None, t: float) -> None:
        b = self.baseline
        if b.fixed:
            return
        if b.value_mg is None:
            b.offer(rms_mg, t)
        elif ratio is not None and ratio <= self.cfg.recovered_ratio and rms_mg is not None:
            # Rested: follow slow drift (another day, another sensor mount) but
            # never fatigue, whose windows are above recovered_ratio.
            k = self.hop_s / self.cfg.baseline_follow_s
            b.value_mg = max(
                b.floor_mg,
                math.exp((1 - k) * math.log(b.value_mg) + k * math.log(max(rms_mg, b.floor_mg))),
            )

    # -- figures -----------------------------------------------------------
    def fatigue_trend(self) -> float | None:
        """log2(ratio) gained per set over this session's sets (positive: tiring)."""
        sets = [(s.index, r) for s in self.sets if (r := s.ratio_median)]
        key = tuple(sets)
        if key != self._trend[0]:
            trend = None
            if len(sets) >= 2:
                x = [float(index) for index, _ in sets]
                y = [math.log2(r) for _, r in sets]
                trend = float(np.polyfit(x, y, 1)[0])
            self._trend = (key, trend)
        return self._trend[1]

    def _status(
        self, w: WindowResult, ratio, graded, rested, reference, moving, kind, events, grades
    ) -> SensorStatus:
        m = w.metrics
        last = self.sets[-1] if self.sets else None
        recovery_s: float | None
        if self._recovering is not None:
            recovery_s = w.t - self._recovering.end
        else:
            recovery_s = last.recovery_s if last else None
        if self.state == REPS and self._reps is not None and self._set_start is not None:
            reps = self._reps.trace(self._set_start, w.t).count
        else:
            reps = last.reps if last else 0
        measurable = m.measurable or graded == GRADED_SET
        return SensorStatus(
            t=w.t,
            sensor=self.sensor,
            state=self.state,
            state_since=self.state_since,
            rms_mg=m.rms_mg,
            peak_hz=m.peak_hz,
            ratio=ratio,
            level=grade(ratio, measurable and ratio is not None, grades),
            baseline_mg=self.baseline.value_mg,
            moving=moving,
            set_count=self.set_count,
            reps=reps,
            set_start=self._set_start,
            last_set=last,
            recovery_s=recovery_s,
            fatigue_trend=self.fatigue_trend(),
            window=w,
            events=tuple(events),
            activity=kind,
            graded=graded,
            ratio_rested=rested,
            reference_mg=reference,
        )

    def finish(self) -> list[tuple[str, object]]:
        """The stream has ended (a replayed recording): close the set or hold still open and
        fill in the figures after the last set from what there is. Returns the events."""
        events: list[tuple[str, object]] = []
        if self.state == REPS and self._set_start is not None:
            last = (
                self._last_move_t if self._last_move_t is not None else self._set_start + self.hop_s
            )
            self._finish(self._set_end(last), events)
        elif self.state == HOLD and self._set_start is not None:
            self._finish(
                self._peak[1] - self.window_s / 2 if self._peak else self.state_since, events
            )
        self._close_after()
        return events

    def forget_sets(self) -> None:
        """A new session: keep the baseline, start counting sets again."""
        self.sets.clear()
        self.set_count = 0
        self._recovering = None
        self._after = None
