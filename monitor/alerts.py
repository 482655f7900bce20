"""Alert rules that follow the physiology, and the life of an alert.

Rules look at what the analysis says now (each sensor's status, the session,
hydration, sensor faults, falls) and say which conditions hold, each with its
own hysteresis. :class:`AlertManager` turns conditions into alert events: a
condition must hold for ``min_s`` before it raises, an alert clears when its
condition passes, a cooldown stops the same alert repeating, and staff
acknowledge it: an urgent alert then sounds again after ``ack_silence_s`` if
its condition still holds (:class:`AlertManager` has the details)::

    manager = AlertManager("bench-1", AlertConfig())
    rules = AlertRules(AlertConfig())
    for event in manager.update(rules.evaluate(inputs), t, wall):
        publish(event)              # state "raised", "cleared" or "acknowledged"

Levels: ``info`` < ``caution`` < ``warning`` < ``urgent``; red flags are urgent
and their advice always lists what only the athlete can report.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .analysis.activity import HOLD, IDLE, RECOVERY, REPS, SensorStatus
from .analysis.fall import FallEvent
from .analysis.hydration import HydrationConfig, HydrationStatus
from .analysis.session import SessionStatus
from .grades import ELEVATED_RATIO, HIGH_RATIO
from .mqtt.messages import ActiveAlerts, AlertEvent, AlertLevel, AlertState, Grades

if TYPE_CHECKING:
    from .sensors import SensorFault

ATHLETE_REPORTS = (
    "Also ask the athlete about chest pain, confusion, severe light-headedness, "
    "fainting or dark urine: with any of these, stop and seek medical advice promptly."
)

#: An alert event is the message itself: what the manager makes is what goes on the wire.
Alert = AlertEvent


@dataclass(frozen=True)
class AlertConfig:
    """The alert rules' thresholds (``[alerts]``). The fluid rules judge with the thresholds
    of ``[hydration]`` (:class:`~monitor.analysis.hydration.HydrationConfig`), the trackers'.

    ``elevated_ratio`` and ``high_ratio`` are the station's tremor grades (the defaults are
    :mod:`monitor.grades`'s); :attr:`grades` is the same pair as the message value that
    grades windows and travels in the session payload.
    """

    elevated_ratio: float = ELEVATED_RATIO  # tremor over the rested baseline, log steps ...
    high_ratio: float = HIGH_RATIO  # ... 2x and 4x unless a coach says otherwise
    clear_factor: float = 1.25  # hysteresis: clear below threshold / clear_factor
    min_s: float = 3.0  # a condition holds this long before it raises
    tremor_min_s: float = 0.0  # tremor during a set: the running median below is the filter
    smooth_windows: int = 3  # tremor ratio is the median of this many windows (0.5 s apart)
    cooldown_s: float = 120.0  # after a clear or an ack, the same alert waits this long
    hold_ratio: float = 3.0  # static hold: tremor this high ...
    hold_fatigue_ratio: float = 1.0  # ... or 4-7 Hz power over 7-13 Hz this high
    hold_min_s: float = 15.0
    trend_per_set: float = 0.15  # log2(ratio) gained per set ...
    trend_min_sets: int = 3  # ... over at least this many sets
    fuel_session_s: float = 3600.0  # a long session ...
    fuel_rest_ratio: float = 1.8  # ... with resting tremor this high, that rest does not explain
    fuel_rest_s: float = 120.0  # how long after a set "rest" starts counting
    persist_s: float = 900.0  # tremor still elevated this long after the session
    unexercised_ratio: float = 2.0
    unexercised_min_s: float = 10.0
    visible_mg: float = 7.0
    fall_keep_s: float = 600.0
    overrun_lost_per_min: int = 100
    ack_silence_s: float = 300.0  # an acknowledged urgent alert sounds again after this long

    @functools.cached_property
    def grades(self) -> Grades:
        """The tremor grades these thresholds make (checked: elevated below high)."""
        return Grades(elevated_ratio=self.elevated_ratio, high_ratio=self.high_ratio)

    def with_grades(self, grades: Grades) -> AlertConfig:
        """The same rules, grading tremor by ``grades`` (a coach's, from a profile)."""
        return replace(self, elevated_ratio=grades.elevated_ratio, high_ratio=grades.high_ratio)


@dataclass(frozen=True)
class Condition:
    """A rule's verdict for one thing it watches (``key``), right now."""

    key: str
    code: str
    level: AlertLevel
    message: str
    advice: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    sensor: str | None = None
    red_flag: bool = False
    min_s: float | None = None
    latched: bool = False  # stays raised until acknowledged (a fall)

    def __post_init__(self) -> None:
        # A level may be given by name ("caution"): the manager ranks it, so make it the enum.
        object.__setattr__(self, "level", AlertLevel(self.level))


@dataclass(frozen=True, kw_only=True)
class Inputs:
    """What the rules look at, gathered by the station each step."""

    t: float
    sensors: Mapping[str, SensorStatus]
    exercised: Mapping[str, bool] = field(default_factory=dict)  # sensor -> worked (default yes)
    session: SessionStatus | None = None
    faults: Mapping[str, SensorFault | None] = field(default_factory=dict)
    lost_per_min: Mapping[str, int] = field(default_factory=dict)
    falls: tuple[tuple[str, FallEvent], ...] = ()
    hydration: HydrationStatus | None = None


def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


class AlertRules:
    """Every rule; keeps the little history some rules need (hysteresis, smoothing)."""

    def __init__(self, config: AlertConfig | None = None, fluid: HydrationConfig | None = None):
        self.cfg = config or AlertConfig()
        self.fluid = fluid or HydrationConfig()  # the fluid thresholds, and their judge
        self._ratios: dict[str, deque[float]] = {}
        self._basis: dict[str, str | None] = {}  # what the smoothed ratios were graded against
        self._tremor_level: dict[str, str | None] = {}
        self._hold_since: dict[str, float] = {}
        self._rest_ratios: deque[tuple[float, float]] = deque(maxlen=4000)
        self._falls: list[tuple[str, FallEvent]] = []

    def forget_athlete(self) -> None:
        """Someone else is on the sensors now: the smoothed ratios, hysteresis and rest history
        of the last person go. Falls stay (each is a condition for ``fall_keep_s``, whoever is
        in)."""
        self._ratios.clear()
        self._basis.clear()
        self._tremor_level.clear()
        self._hold_since.clear()
        self._rest_ratios.clear()

    def _smooth(self, sensor: str, ratio: float | None, basis: str | None = None) -> float | None:
        hist = self._ratios.setdefault(sensor, deque(maxlen=self.cfg.smooth_windows))
        if basis != self._basis.get(sensor):
            # Ratios graded against the rested baseline and against a set's first reps are
            # different figures: a median must never mix them.
            hist.clear()
            self._basis[sensor] = basis
        if ratio is not None:
            hist.append(ratio)
        return sorted(hist)[len(hist) // 2] if hist else None

    def evaluate(self, x: Inputs) -> list[Condition]:
        out: list[Condition] = []
        for name, st in x.sensors.items():
            # Only a graded window's ratio counts: a window dominated by voluntary motion is
            # never held against the rested baseline (the analysis grades it against its
            # set's first reps, or not at all), and a window a dropped weight rang through
            # says nothing of the athlete's tremor.
            basis = st.graded
            graded = st.ratio if basis is not None and not st.window.disturbed else None
            ratio = self._smooth(name, graded, basis)
            if x.exercised.get(name, True):
                out += self._tremor(name, st, ratio)
                out += self._hold(name, st, x.t)
                out += self._trend(name, st)
            out += self._unexercised(name, st, ratio, x)
        out += self._fuel(x)
        out += self._persistent(x)
        out += self._falls_rule(x)
        out += self._faults(x)
        out += self._hydration(x)
        return out

    # -- tremor during a set ------------------------------------------------------
    def _tremor(self, name: str, st: SensorStatus, ratio: float | None) -> list[Condition]:
        c, g = self.cfg, self.cfg.grades
        level = self._tremor_level.get(name)
        basis = st.graded
        # During reps, tremor is graded against the set's own first reps (a still pause in
        # a set is like the rest after it: raised tremor there is expected, not an alert);
        # in a static hold, against the rested baseline.
        in_set = (st.state == REPS and basis == "set") or (st.state == HOLD and basis == "rested")
        if not in_set or ratio is None:
            level = None
        elif level == "high":
            level = (
                "high"
                if ratio >= g.high_ratio / c.clear_factor
                else ("elevated" if ratio >= g.elevated_ratio else None)
            )
        elif ratio >= g.high_ratio:
            level = "high"
        elif level == "elevated":
            level = "elevated" if ratio >= g.elevated_ratio / c.clear_factor else None
        elif ratio >= g.elevated_ratio:
            level = "elevated"
        else:
            level = None
        self._tremor_level[name] = level
        if level is None:
            return []
        ev = {
            "ratio": _r(ratio),
            "rms_mg": _r(st.rms_mg, 1),
            "baseline_mg": _r(st.baseline_mg, 1),
            "peak_hz": _r(st.peak_hz),
            "set": st.set_count + 1,
            "state": st.state,
            "graded": basis,
        }
        against = "the rested level"
        if basis == "set":
            ev["reference_mg"] = _r(st.reference_mg, 1)
            against = "this set's first reps"
        if level == "high":
            return [
                Condition(
                    f"tremor.high:{name}",
                    "tremor.high",
                    AlertLevel.WARNING,
                    f"Tremor is high on {name}: {ratio:.1f}x {against}",
                    "Stop the set. Muscles this fatigued lose control: rest at least 3 minutes "
                    "and lower the load for the next set.",
                    ev,
                    name,
                    min_s=c.tremor_min_s,
                )
            ]
        return [
            Condition(
                f"tremor.elevated:{name}",
                "tremor.elevated",
                AlertLevel.CAUTION,
                f"Tremor is elevated on {name}: {ratio:.1f}x {against}",
                "Fatigue is building. Finish the set with good form, then rest fully before the "
                "next.",
                ev,
                name,
                min_s=c.tremor_min_s,
            )
        ]

    # -- static holds: nervous-system fatigue -------------------------------------------
    def _hold(self, name: str, st: SensorStatus, t: float) -> list[Condition]:
        c = self.cfg
        if st.state != HOLD:
            self._hold_since.pop(name, None)
            return []
        m = st.window.metrics
        fatigued = (st.ratio is not None and st.ratio >= c.hold_ratio) or (
            m.fatigue_ratio is not None and m.fatigue_ratio >= c.hold_fatigue_ratio
        )
        if not fatigued:
            return []
        since = self._hold_since.setdefault(name, st.set_start if st.set_start is not None else t)
        return [
            Condition(
                f"hold.fatigue:{name}",
                "hold.fatigue",
                AlertLevel.CAUTION,
                f"Static hold is shaking hard on {name} ({t - since:.0f} s in)",
                "The same motor units have been working without relief: end the hold now and "
                "rest; next time hold for less or split it in two.",
                {
                    "ratio": _r(st.ratio),
                    "fatigue_ratio": _r(m.fatigue_ratio),
                    "hold_s": _r(t - since, 0),
                },
                name,
                min_s=c.hold_min_s,
            )
        ]

    # -- fatigue across sets ----------------------------------------------------------
    def _trend(self, name: str, st: SensorStatus) -> list[Condition]:
        c = self.cfg
        if (
            st.fatigue_trend is None
            or st.set_count < c.trend_min_sets
            or st.fatigue_trend < c.trend_per_set
        ):
            return []
        return [
            Condition(
                f"fatigue.trend:{name}",
                "fatigue.trend",
                AlertLevel.CAUTION,
                f"Tremor has grown set after set on {name} ({st.set_count} sets)",
                "Rest longer between sets (3 to 5 minutes) or lower the load.",
                {
                    "log2_ratio_per_set": _r(st.fatigue_trend, 3),
                    "sets": st.set_count,
                    "last_set_ratio": _r(st.last_set.ratio_median if st.last_set else None),
                },
                name,
            )
        ]

    # -- fuel ---------------------------------------------------------------------------
    def _fuel(self, x: Inputs) -> list[Condition]:
        c = self.cfg
        s = x.session
        if s is None or not s.active or s.duration_s is None:
            return []
        worked = [st for n, st in x.sensors.items() if x.exercised.get(n, True)]
        resting = [
            st.ratio
            for st in worked
            if st.state in (IDLE, RECOVERY)
            and st.ratio is not None
            and (st.last_set is None or x.t - st.last_set.end >= c.fuel_rest_s)
        ]
        if resting:
            self._rest_ratios.append((x.t, max(resting)))
        if s.duration_s < c.fuel_session_s or not resting:
            return []
        recent = [r for t, r in self._rest_ratios if x.t - t <= 300]
        if len(recent) < 20:
            return []
        level = sorted(recent)[len(recent) // 2]
        if level < c.fuel_rest_ratio:
            return []
        return [
            Condition(
                "fuel.low",
                "fuel.low",
                AlertLevel.WARNING,
                f"Shaking at rest after {s.duration_s / 60:.0f} min of training",
                "Rest does not explain this tremor: it may be low blood sugar. Have 30 to 60 g of "
                "carbohydrate (a sports drink, a banana) and sit down if dizzy or weak.",
                {"session_min": _r(s.duration_s / 60, 0), "resting_ratio": _r(level)},
                min_s=30.0,
            )
        ]

    # -- red flags -------------------------------------------------------------------------
    def _persistent(self, x: Inputs) -> list[Condition]:
        c = self.cfg
        s = x.session
        if s is None or s.since_end_s is None or s.elevated_s is None:
            return []
        if s.since_end_s < c.persist_s or s.elevated_s < c.persist_s:
            return []
        return [
            Condition(
                "redflag.persistent",
                "redflag.persistent",
                AlertLevel.URGENT,
                f"Still shaking {s.since_end_s / 60:.0f} min after the session ended",
                "Tremor should settle within minutes of training. Check on the athlete now. "
                + ATHLETE_REPORTS,
                {
                    "since_end_min": _r(s.since_end_s / 60, 0),
                    "elevated_min": _r(s.elevated_s / 60, 0),
                    "sensors": list(s.elevated_sensors),
                    "ratio": _r(s.ratio),
                },
                red_flag=True,
            )
        ]

    def _unexercised(
        self, name: str, st: SensorStatus, ratio: float | None, x: Inputs
    ) -> list[Condition]:
        c = self.cfg
        if (
            x.exercised.get(name, True)
            or ratio is None
            or st.rms_mg is None
            or st.graded != "rested"
        ):
            return []
        working = [
            n for n, o in x.sensors.items() if x.exercised.get(n, True) and o.state in (REPS, HOLD)
        ]
        if not working or ratio < c.unexercised_ratio or st.rms_mg < c.visible_mg:
            return []
        return [
            Condition(
                f"redflag.unexercised:{name}",
                "redflag.unexercised",
                AlertLevel.URGENT,
                f"Tremor on {name}, which is not being exercised, while {working[0]} works",
                "Shaking in a body part that is not working is not ordinary fatigue. Stop and "
                "check "
                "on the athlete. " + ATHLETE_REPORTS,
                {"ratio": _r(ratio), "rms_mg": _r(st.rms_mg, 1), "working": working},
                name,
                red_flag=True,
                min_s=c.unexercised_min_s,
            )
        ]

    def _falls_rule(self, x: Inputs) -> list[Condition]:
        # A fall stays a condition for fall_keep_s; its alert stays until acknowledged.
        self._falls = [
            (s, e) for s, e in self._falls + list(x.falls) if x.t - e.t <= self.cfg.fall_keep_s
        ]
        out = []
        for sensor, ev in self._falls:
            out.append(
                Condition(
                    f"redflag.fall:{sensor}:{ev.t:.1f}",
                    "redflag.fall",
                    AlertLevel.URGENT,
                    f"Possible fall or faint ({sensor}): an impact of {ev.impact_g:.1f} g, then "
                    "stillness",
                    "Go to the athlete now. Do not move them if they are hurt; call for help if "
                    "they do "
                    "not respond. " + ATHLETE_REPORTS,
                    {
                        "impact_g": _r(ev.impact_g, 1),
                        "free_fall_s": _r(ev.free_fall_s),
                        "still_s": _r(ev.still_s, 1),
                        "turn_deg": _r(ev.turn_deg, 0),
                    },
                    sensor,
                    red_flag=True,
                    min_s=0.0,
                    latched=True,
                )
            )
        return out

    # -- the equipment itself ---------------------------------------------------------------
    def _faults(self, x: Inputs) -> list[Condition]:
        out = []
        for sensor, fault in x.faults.items():
            if fault is None:
                continue
            out.append(
                Condition(
                    f"sensor.fault:{sensor}",
                    "sensor.fault",
                    AlertLevel.WARNING,
                    f"Sensor {sensor} is not working ({fault.kind.replace('_', ' ')})",
                    f"{fault.message}. Readings from it are missing until it is back; it is "
                    "retried "
                    "every second.",
                    {"kind": fault.kind},
                    sensor,
                    min_s=0.0,
                )
            )
        for sensor, lost in x.lost_per_min.items():
            if lost >= self.cfg.overrun_lost_per_min:
                out.append(
                    Condition(
                        f"sensor.overrun:{sensor}",
                        "sensor.overrun",
                        AlertLevel.CAUTION,
                        f"Sensor {sensor} is losing samples ({lost} in the last minute)",
                        "The station cannot keep up with the sensor: check the Pi's load and "
                        "the I2C wiring.",
                        {"lost_per_min": lost},
                        sensor,
                        min_s=0.0,
                    )
                )
        return out

    # -- fluid ----------------------------------------------------------------------------
    def _hydration(self, x: Inputs) -> list[Condition]:
        # The scale's figures, judged by the trackers' own thresholds ([hydration]): one judge.
        h = x.hydration
        if h is None:
            return []
        judge = self.fluid
        out = []
        loss = h.body_mass_loss_pct
        level = judge.loss_level(loss)
        if loss is not None and level == "warning":
            out.append(
                Condition(
                    "fluid.loss",
                    "fluid.loss",
                    AlertLevel.WARNING,
                    f"Body mass down {loss:.1f} % since the pre-session weigh-in",
                    "Above 2 % performance and concentration suffer. Drink now, about 1.25 to 1.5 "
                    "L "
                    "for each kg lost, with some salt (a sports drink or a salty snack).",
                    {"body_mass_loss_pct": _r(loss)},
                    min_s=0.0,
                )
            )
        elif loss is not None and level == "caution":
            out.append(
                Condition(
                    "fluid.loss",
                    "fluid.loss",
                    AlertLevel.CAUTION,
                    f"Body mass down {loss:.1f} % since the pre-session weigh-in",
                    "Drink to replace what you sweat; aim to stay within 2 % of your starting "
                    "weight.",
                    {"body_mass_loss_pct": _r(loss)},
                    min_s=0.0,
                )
            )
        if loss is not None and judge.gained(h.pre_mass_g, h.post_mass_g):
            out.append(
                Condition(
                    "fluid.gain",
                    "fluid.gain",
                    AlertLevel.CAUTION,
                    f"Body mass up {-loss:.1f} % during the session",
                    "Drinking more than you sweat can dilute blood sodium: drink to thirst, and "
                    "prefer a drink with electrolytes.",
                    {"body_mass_loss_pct": _r(loss)},
                    min_s=0.0,
                )
            )
        rate = h.intake_ml_per_h
        s = x.session
        if (
            rate is not None
            and s is not None
            and s.active
            and s.duration_s is not None
            and judge.low_intake(rate, s.duration_s)
        ):
            out.append(
                Condition(
                    "fluid.low_intake",
                    "fluid.low_intake",
                    AlertLevel.CAUTION,
                    f"Little drunk so far: {rate:.0f} mL per hour",
                    "Most athletes need 400 to 800 mL per hour of training: take a drink between "
                    "sets.",
                    {"intake_ml_per_h": _r(rate, 0), "session_min": _r(s.duration_s / 60, 0)},
                    min_s=0.0,
                )
            )
        return out


@dataclass
class _Track:
    condition: Condition
    since: float
    alert: Alert | None = None
    present: bool = True  # its condition held at the last update
    acked: Alert | None = None  # the acknowledged event, while its condition still holds
    silenced_until: float | None = None  # station time an acknowledged urgent alert sounds again
    restored_until: float | None = None  # a restored alert waits this long for its condition


class AlertManager:
    """Conditions in, alert events out; see the module docstring.

    Acknowledging (staff saw it) records who and when on the ``acknowledged``
    event and takes the alert off the active list. What happens next depends on
    its level:

    * ``urgent`` (red flags): the acknowledgement silences it for
      ``ack_silence_s``. If its condition still holds then, it is raised again
      with a new id (``follows`` names the acknowledged one), so a red flag
      nobody resolved sounds again instead of staying quiet for good.
    * anything else: it stays quiet while its condition holds, and is raised
      again (new id) only if the condition gets worse than the level
      acknowledged, or after it has passed and come back (after the cooldown).

    A latched alert (a fall) stays active after its condition passes, until it
    is acknowledged. :meth:`snapshot` and :meth:`restore` carry the active and
    acknowledged alerts across a restart of the station.
    """

    def __init__(
        self, station: str, config: AlertConfig | None = None, *, id_prefix: str | None = None
    ):
        self.station = station
        self.cfg = config or AlertConfig()
        self._tracks: dict[str, _Track] = {}
        self._cooldown: dict[str, float] = {}  # key -> station time it may raise again
        self._seq = itertools.count(1)
        self._prefix = id_prefix
        self.raised_total = 0

    def _new_id(self, wall: float) -> str:
        prefix = self._prefix or f"{self.station}:{int(wall * 1000)}"
        return f"{prefix}:{next(self._seq):04d}"

    def _raise(self, cond: Condition, wall: float, follows: str | None = None) -> Alert:
        self.raised_total += 1
        return AlertEvent(
            id=self._new_id(wall),
            station=self.station,
            code=cond.code,
            level=cond.level,
            state=AlertState.RAISED,
            message=cond.message,
            advice=cond.advice,
            evidence=dict(cond.evidence),
            sensor=cond.sensor,
            red_flag=cond.red_flag,
            raised_ts=wall,
            ts=wall,
            follows=follows,
        )

    def _sounds_again(self, track: _Track, cond: Condition, t: float) -> bool:
        """An acknowledged alert whose condition still holds: is it time to raise it again?"""
        if track.acked is not None and cond.level.rank > track.acked.level.rank:
            return True  # worse than what staff acknowledged
        return track.silenced_until is not None and t >= track.silenced_until

    def update(self, conditions: Iterable[Condition], t: float, wall: float) -> list[Alert]:
        events: list[Alert] = []
        now_keys = set()
        for cond in conditions:
            now_keys.add(cond.key)
            track = self._tracks.get(cond.key)
            if track is None:
                track = self._tracks[cond.key] = _Track(cond, t)
            track.condition = cond
            track.present = True
            track.restored_until = None  # a restored alert whose condition holds: adopted
            min_s = self.cfg.min_s if cond.min_s is None else cond.min_s
            if track.alert is None:
                follows = None
                if track.acked is not None:
                    if not self._sounds_again(track, cond, t):
                        continue
                    follows = track.acked.id
                elif t < self._cooldown.get(cond.key, -math.inf) or t - track.since < min_s:
                    continue
                track.alert = self._raise(cond, wall, follows)
                track.acked = track.silenced_until = None
                events.append(track.alert)
            elif cond.level.rank > track.alert.level.rank:
                # Worse than when raised: the old alert clears and a new one, with its own id,
                # is raised at the new level (subscribers drop repeats by id and state).
                events.append(replace(track.alert, state=AlertState.CLEARED, ts=wall))
                track.alert = self._raise(cond, wall)
                events.append(track.alert)
        for key in list(self._tracks):
            if key in now_keys:
                continue
            track = self._tracks[key]
            track.present = False
            if track.restored_until is not None and t < track.restored_until:
                continue  # restored after a restart: its condition may not be measurable yet
            if track.alert is not None and track.condition.latched:
                continue  # stays until acknowledged
            del self._tracks[key]
            if track.alert is not None:
                self._cooldown[key] = t + self.cfg.cooldown_s
                events.append(replace(track.alert, state=AlertState.CLEARED, ts=wall))
            elif track.acked is not None:
                self._cooldown[key] = max(
                    self._cooldown.get(key, -math.inf), t + self.cfg.cooldown_s
                )
        return events

    def acknowledge(self, alert_id: str, t: float, wall: float, by: str = "staff") -> Alert | None:
        """Staff saw it. Returns the acknowledged event, or None for an unknown or closed id.

        See the class docstring for what an acknowledgement silences, and for how long.
        """
        for key, track in list(self._tracks.items()):
            if track.alert is None or track.alert.id != alert_id:
                continue
            urgent = track.alert.level is AlertLevel.URGENT
            silence = self.cfg.ack_silence_s
            event = replace(
                track.alert,
                state=AlertState.ACKNOWLEDGED,
                ts=wall,
                by=by,
                acked_ts=wall,
                silenced_until_ts=wall + silence if urgent else None,
            )
            track.alert = None
            self._cooldown[key] = t + self.cfg.cooldown_s
            if track.present:
                track.acked = event
                track.silenced_until = t + silence if urgent else None
                track.restored_until = None
            else:  # a latched alert whose condition has passed: done
                del self._tracks[key]
            return event
        return None

    def acknowledged_event(self, alert_id: str) -> Alert | None:
        """The acknowledgement of ``alert_id`` if it is acknowledged and its condition still
        holds."""
        return next(
            (
                t.acked
                for t in self._tracks.values()
                if t.acked is not None and t.acked.id == alert_id
            ),
            None,
        )

    def active(self) -> list[Alert]:
        """Alerts raised and neither cleared nor acknowledged, the most urgent first."""
        return _by_level(t.alert for t in self._tracks.values() if t.alert is not None)

    def silenced(self) -> list[Alert]:
        """Acknowledged alerts whose condition still holds (the acknowledged events)."""
        return _by_level(t.acked for t in self._tracks.values() if t.acked is not None)

    def active_alerts(self, wall: float) -> ActiveAlerts:
        """The retained ``alerts/active`` message: the active alerts, the silenced ones apart."""
        return ActiveAlerts(
            ts=wall,
            station=self.station,
            alerts=tuple(self.active()),
            acknowledged=tuple(self.silenced()),
        )

    # -- across a restart ---------------------------------------------------------
    def snapshot(self, t: float, wall: float) -> dict[str, Any]:
        """The alerts a restarted station must know about: active ones and acknowledged ones."""
        tracks = []
        for key, track in self._tracks.items():
            if track.alert is None and track.acked is None:
                continue
            until = None if track.silenced_until is None else wall + (track.silenced_until - t)
            tracks.append(
                {
                    "key": key,
                    "latched": track.condition.latched,
                    "alert": None if track.alert is None else track.alert.to_dict(),
                    "acked": None if track.acked is None else track.acked.to_dict(),
                    "silenced_until_ts": until,
                }
            )
        return {"v": 1, "station": self.station, "ts": wall, "tracks": tracks}

    def restore(self, snapshot: Mapping[str, Any], t: float, wall: float, grace_s: float) -> int:
        """Take back the alerts of a snapshot taken by an earlier process; returns how many.

        Each waits ``grace_s`` for its condition to be seen again: then it carries on
        with its id; if not, it clears (or, latched, stays until acknowledged). Raises
        ValueError for a snapshot that does not make sense.
        """
        if snapshot.get("v") != 1 or not isinstance(snapshot.get("tracks"), list):
            raise ValueError("not an alert state snapshot (v 1 with a list of tracks)")
        restored: dict[str, _Track] = {}
        for entry in snapshot["tracks"]:
            if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
                raise ValueError("each track needs a key")
            alert = None if entry.get("alert") is None else AlertEvent.from_dict(entry["alert"])
            acked = None if entry.get("acked") is None else AlertEvent.from_dict(entry["acked"])
            shown = alert or acked
            if shown is None:
                continue
            if shown.station != self.station:
                raise ValueError(f"a track of station {shown.station!r}, this is {self.station!r}")
            cond = Condition(
                entry["key"],
                shown.code,
                shown.level,
                shown.message,
                shown.advice,
                dict(shown.evidence),
                shown.sensor,
                shown.red_flag,
                latched=bool(entry.get("latched", False)),
            )
            until = entry.get("silenced_until_ts")
            track = _Track(
                cond,
                t,
                alert,
                present=False,
                acked=acked,
                silenced_until=None if not isinstance(until, (int, float)) else t + (until - wall),
                restored_until=t + grace_s,
            )
            restored[entry["key"]] = track
        self._tracks.update(restored)
        return len(restored)


def _by_level(alerts: Iterable[Alert]) -> list[Alert]:
    return sorted(alerts, key=lambda a: (-a.level.rank, a.raised_ts or 0.0))
