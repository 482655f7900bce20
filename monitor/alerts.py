"""Alert rules that follow the physiology, and the life of an alert.

Rules look at what the analysis says now (each sensor's status, the session,
hydration, sensor faults, falls) and say which conditions hold, each with its
own hysteresis. :class:`AlertManager` turns conditions into alert events: a
condition must hold for ``min_s`` before it raises, an alert clears when its
condition passes or when staff acknowledge it, and a cooldown stops the same
alert repeating::

    manager = AlertManager("bench-1", AlertConfig())
    rules = AlertRules(AlertConfig())
    for event in manager.update(rules.evaluate(inputs), t, wall):
        publish(event)              # state "raised", "cleared" or "acknowledged"

Levels: ``info`` < ``caution`` < ``warning`` < ``urgent``; red flags are urgent
and their advice always lists what only the athlete can report.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping

from .analysis.activity import HOLD, IDLE, RECOVERY, REPS, SensorStatus
from .analysis.fall import FallEvent
from .analysis.session import SessionStatus

LEVELS = ("info", "caution", "warning", "urgent")

ATHLETE_REPORTS = ("Also ask the athlete about chest pain, confusion, severe light-headedness, "
                   "fainting or dark urine: with any of these, stop and seek medical advice promptly.")


@dataclass(frozen=True)
class AlertConfig:
    elevated_ratio: float = 2.0      # tremor over the rested baseline, log steps
    high_ratio: float = 4.0
    clear_factor: float = 1.25       # hysteresis: clear below threshold / clear_factor
    min_s: float = 3.0               # a condition holds this long before it raises
    tremor_min_s: float = 0.0        # tremor during a set: the running median below is the filter
    smooth_windows: int = 3          # tremor ratio is the median of this many windows (0.5 s apart)
    cooldown_s: float = 120.0        # after a clear or an ack, the same alert waits this long
    hold_ratio: float = 3.0          # static hold: tremor this high ...
    hold_fatigue_ratio: float = 1.0  # ... or 4-7 Hz power over 7-13 Hz this high
    hold_min_s: float = 15.0
    trend_per_set: float = 0.15      # log2(ratio) gained per set ...
    trend_min_sets: int = 3          # ... over at least this many sets
    fuel_session_s: float = 3600.0   # a long session ...
    fuel_rest_ratio: float = 1.8     # ... with resting tremor this high, that rest does not explain
    fuel_rest_s: float = 120.0       # how long after a set "rest" starts counting
    persist_s: float = 900.0         # tremor still elevated this long after the session
    unexercised_ratio: float = 2.0
    unexercised_min_s: float = 10.0
    visible_mg: float = 7.0
    fall_keep_s: float = 600.0
    overrun_lost_per_min: int = 100
    loss_caution_pct: float = 1.0
    loss_warning_pct: float = 2.0
    low_intake_ml_per_h: float = 250.0
    low_intake_after_s: float = 1800.0


@dataclass(frozen=True)
class Condition:
    """A rule's verdict for one thing it watches (``key``), right now."""

    key: str
    code: str
    level: str
    message: str
    advice: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    sensor: str | None = None
    red_flag: bool = False
    min_s: float | None = None
    latched: bool = False            # stays raised until acknowledged (a fall)


@dataclass(frozen=True)
class Alert:
    id: str
    station: str
    code: str
    level: str
    state: str                       # "raised", "cleared", "acknowledged"
    message: str
    advice: str
    evidence: Mapping[str, Any]
    sensor: str | None
    red_flag: bool
    raised_ts: float
    ts: float
    by: str | None = None

    def payload(self) -> dict[str, Any]:
        out = {"v": 1, "ts": self.ts, "station": self.station, "id": self.id, "code": self.code,
               "level": self.level, "state": self.state, "red_flag": self.red_flag, "sensor": self.sensor,
               "message": self.message, "advice": self.advice, "evidence": dict(self.evidence),
               "raised_ts": self.raised_ts}
        if self.by:
            out["by"] = self.by
        return out


@dataclass(frozen=True)
class Inputs:
    """What the rules look at, gathered by the station each step."""

    t: float
    sensors: Mapping[str, SensorStatus]
    placements: Mapping[str, str]
    exercised: Mapping[str, bool]
    session: SessionStatus | None = None
    faults: Mapping[str, Any] = field(default_factory=dict)      # sensor -> SensorFault
    lost_per_min: Mapping[str, int] = field(default_factory=dict)
    falls: tuple[tuple[str, FallEvent], ...] = ()
    hydration: Any = None                                         # HydrationStatus or None


def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


class AlertRules:
    """Every rule; keeps the little history some rules need (hysteresis, smoothing)."""

    def __init__(self, config: AlertConfig | None = None):
        self.cfg = config or AlertConfig()
        self._ratios: dict[str, deque[float]] = {}
        self._tremor_level: dict[str, str | None] = {}
        self._hold_since: dict[str, float] = {}
        self._rest_ratios: deque[tuple[float, float]] = deque(maxlen=4000)
        self._falls: list[tuple[str, FallEvent]] = []

    def _smooth(self, sensor: str, ratio: float | None) -> float | None:
        hist = self._ratios.setdefault(sensor, deque(maxlen=self.cfg.smooth_windows))
        if ratio is not None:
            hist.append(ratio)
        return sorted(hist)[len(hist) // 2] if hist else None

    def evaluate(self, x: Inputs) -> list[Condition]:
        out: list[Condition] = []
        for name, st in x.sensors.items():
            # A window a dropped weight rang through says nothing of the athlete's tremor.
            ratio = self._smooth(name, None if st.window.disturbed else st.ratio)
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
        c = self.cfg
        level = self._tremor_level.get(name)
        in_set = st.state in (REPS, HOLD)
        if not in_set or ratio is None:
            level = None
        elif level == "high":
            level = "high" if ratio >= c.high_ratio / c.clear_factor else ("elevated" if ratio >= c.elevated_ratio else None)
        elif ratio >= c.high_ratio:
            level = "high"
        elif level == "elevated":
            level = "elevated" if ratio >= c.elevated_ratio / c.clear_factor else None
        elif ratio >= c.elevated_ratio:
            level = "elevated"
        else:
            level = None
        self._tremor_level[name] = level
        if level is None:
            return []
        ev = {"ratio": _r(ratio), "rms_mg": _r(st.rms_mg, 1), "baseline_mg": _r(st.baseline_mg, 1),
              "peak_hz": _r(st.peak_hz), "set": st.set_count + 1, "state": st.state}
        if level == "high":
            return [Condition(f"tremor.high:{name}", "tremor.high", "warning",
                              f"Tremor is high on {name}: {ratio:.1f}x the rested level",
                              "Stop the set. Muscles this fatigued lose control: rest at least 3 minutes "
                              "and lower the load for the next set.", ev, name, min_s=c.tremor_min_s)]
        return [Condition(f"tremor.elevated:{name}", "tremor.elevated", "caution",
                          f"Tremor is elevated on {name}: {ratio:.1f}x the rested level",
                          "Fatigue is building. Finish the set with good form, then rest fully before the next.",
                          ev, name, min_s=c.tremor_min_s)]

    # -- static holds: nervous-system fatigue -------------------------------------------
    def _hold(self, name: str, st: SensorStatus, t: float) -> list[Condition]:
        c = self.cfg
        if st.state != HOLD:
            self._hold_since.pop(name, None)
            return []
        m = st.window.metrics
        fatigued = (st.ratio is not None and st.ratio >= c.hold_ratio) or \
            (m.fatigue_ratio is not None and m.fatigue_ratio >= c.hold_fatigue_ratio)
        if not fatigued:
            return []
        since = self._hold_since.setdefault(name, st.set_start if st.set_start is not None else t)
        return [Condition(f"hold.fatigue:{name}", "hold.fatigue", "caution",
                          f"Static hold is shaking hard on {name} ({t - since:.0f} s in)",
                          "The same motor units have been working without relief: end the hold now and "
                          "rest; next time hold for less or split it in two.",
                          {"ratio": _r(st.ratio), "fatigue_ratio": _r(m.fatigue_ratio), "hold_s": _r(t - since, 0)},
                          name, min_s=c.hold_min_s)]

    # -- fatigue across sets ----------------------------------------------------------
    def _trend(self, name: str, st: SensorStatus) -> list[Condition]:
        c = self.cfg
        if st.fatigue_trend is None or st.set_count < c.trend_min_sets or st.fatigue_trend < c.trend_per_set:
            return []
        return [Condition(f"fatigue.trend:{name}", "fatigue.trend", "caution",
                          f"Tremor has grown set after set on {name} ({st.set_count} sets)",
                          "Rest longer between sets (3 to 5 minutes) or lower the load.",
                          {"log2_ratio_per_set": _r(st.fatigue_trend, 3), "sets": st.set_count,
                           "last_set_ratio": _r(st.last_set.ratio_median if st.last_set else None)}, name)]

    # -- fuel ---------------------------------------------------------------------------
    def _fuel(self, x: Inputs) -> list[Condition]:
        c = self.cfg
        s = x.session
        if s is None or not s.active or s.duration_s is None:
            return []
        worked = [st for n, st in x.sensors.items() if x.exercised.get(n, True)]
        resting = [st for st in worked if st.state in (IDLE, RECOVERY) and st.ratio is not None
                   and (st.last_set is None or x.t - st.last_set.end >= c.fuel_rest_s)]
        if resting:
            self._rest_ratios.append((x.t, max(st.ratio for st in resting)))
        if s.duration_s < c.fuel_session_s or not resting:
            return []
        recent = [r for t, r in self._rest_ratios if x.t - t <= 300]
        if len(recent) < 20:
            return []
        level = sorted(recent)[len(recent) // 2]
        if level < c.fuel_rest_ratio:
            return []
        return [Condition("fuel.low", "fuel.low", "warning",
                          f"Shaking at rest after {s.duration_s / 60:.0f} min of training",
                          "Rest does not explain this tremor: it may be low blood sugar. Have 30 to 60 g of "
                          "carbohydrate (a sports drink, a banana) and sit down if dizzy or weak.",
                          {"session_min": _r(s.duration_s / 60, 0), "resting_ratio": _r(level)}, min_s=30.0)]

    # -- red flags -------------------------------------------------------------------------
    def _persistent(self, x: Inputs) -> list[Condition]:
        c = self.cfg
        s = x.session
        if s is None or s.since_end_s is None or s.elevated_s is None:
            return []
        if s.since_end_s < c.persist_s or s.elevated_s < c.persist_s:
            return []
        return [Condition("redflag.persistent", "redflag.persistent", "urgent",
                          f"Still shaking {s.since_end_s / 60:.0f} min after the session ended",
                          "Tremor should settle within minutes of training. Check on the athlete now. " + ATHLETE_REPORTS,
                          {"since_end_min": _r(s.since_end_s / 60, 0), "elevated_min": _r(s.elevated_s / 60, 0),
                           "sensors": list(s.elevated_sensors), "ratio": _r(s.ratio)}, red_flag=True)]

    def _unexercised(self, name: str, st: SensorStatus, ratio: float | None, x: Inputs) -> list[Condition]:
        c = self.cfg
        if x.exercised.get(name, True) or ratio is None or st.rms_mg is None:
            return []
        working = [n for n, o in x.sensors.items() if x.exercised.get(n, True) and o.state in (REPS, HOLD)]
        if not working or ratio < c.unexercised_ratio or st.rms_mg < c.visible_mg:
            return []
        return [Condition(f"redflag.unexercised:{name}", "redflag.unexercised", "urgent",
                          f"Tremor on {name}, which is not being exercised, while {working[0]} works",
                          "Shaking in a body part that is not working is not ordinary fatigue. Stop and check "
                          "on the athlete. " + ATHLETE_REPORTS,
                          {"ratio": _r(ratio), "rms_mg": _r(st.rms_mg, 1), "working": working}, name,
                          red_flag=True, min_s=c.unexercised_min_s)]

    def _falls_rule(self, x: Inputs) -> list[Condition]:
        # A fall stays a condition for fall_keep_s; its alert stays until acknowledged.
        self._falls = [(s, e) for s, e in self._falls + list(x.falls) if x.t - e.t <= self.cfg.fall_keep_s]
        out = []
        for sensor, ev in self._falls:
            out.append(Condition(f"redflag.fall:{sensor}:{ev.t:.1f}", "redflag.fall", "urgent",
                                 f"Possible fall or faint ({sensor}): an impact of {ev.impact_g:.1f} g, then stillness",
                                 "Go to the athlete now. Do not move them if they are hurt; call for help if they do "
                                 "not respond. " + ATHLETE_REPORTS,
                                 {"impact_g": _r(ev.impact_g, 1), "free_fall_s": _r(ev.free_fall_s),
                                  "still_s": _r(ev.still_s, 1), "turn_deg": _r(ev.turn_deg, 0)},
                                 sensor, red_flag=True, min_s=0.0, latched=True))
        return out

    # -- the equipment itself ---------------------------------------------------------------
    def _faults(self, x: Inputs) -> list[Condition]:
        out = []
        for sensor, fault in x.faults.items():
            if fault is None:
                continue
            out.append(Condition(f"sensor.fault:{sensor}", "sensor.fault", "warning",
                                 f"Sensor {sensor} is not working ({fault.kind.replace('_', ' ')})",
                                 f"{fault.message}. Readings from it are missing until it is back; it is retried "
                                 "every second.", {"kind": fault.kind}, sensor, min_s=0.0))
        for sensor, lost in x.lost_per_min.items():
            if lost >= self.cfg.overrun_lost_per_min:
                out.append(Condition(f"sensor.overrun:{sensor}", "sensor.overrun", "caution",
                                     f"Sensor {sensor} is losing samples ({lost} in the last minute)",
                                     "The station cannot keep up with the sensor: check the Pi's load and "
                                     "the I2C wiring.", {"lost_per_min": lost}, sensor, min_s=0.0))
        return out

    # -- fluid ----------------------------------------------------------------------------
    def _hydration(self, x: Inputs) -> list[Condition]:
        h = x.hydration
        if h is None:
            return []
        c = self.cfg
        out = []
        loss = getattr(h, "body_mass_loss_pct", None)
        if loss is not None and loss >= c.loss_warning_pct:
            out.append(Condition("fluid.loss", "fluid.loss", "warning",
                                 f"Body mass down {loss:.1f} % since the pre-session weigh-in",
                                 "Above 2 % performance and concentration suffer. Drink now, about 1.25 to 1.5 L "
                                 "for each kg lost, with some salt (a sports drink or a salty snack).",
                                 {"body_mass_loss_pct": _r(loss)}, min_s=0.0))
        elif loss is not None and loss >= c.loss_caution_pct:
            out.append(Condition("fluid.loss", "fluid.loss", "caution",
                                 f"Body mass down {loss:.1f} % since the pre-session weigh-in",
                                 "Drink to replace what you sweat; aim to stay within 2 % of your starting weight.",
                                 {"body_mass_loss_pct": _r(loss)}, min_s=0.0))
        pre, post = getattr(h, "pre_mass_g", None), getattr(h, "post_mass_g", None)
        # A body scale repeats to about 0.1 kg: a smaller gain is noise (HydrationConfig.mass_gain_g).
        if loss is not None and pre is not None and post is not None and post - pre >= 100.0:
            out.append(Condition("fluid.gain", "fluid.gain", "caution",
                                 f"Body mass up {-loss:.1f} % during the session",
                                 "Drinking more than you sweat can dilute blood sodium: drink to thirst, and "
                                 "prefer a drink with electrolytes.", {"body_mass_loss_pct": _r(loss)}, min_s=0.0))
        rate = getattr(h, "intake_ml_per_h", None)
        s = x.session
        if (rate is not None and s is not None and s.active and s.duration_s is not None
                and s.duration_s >= c.low_intake_after_s and rate < c.low_intake_ml_per_h):
            out.append(Condition("fluid.low_intake", "fluid.low_intake", "caution",
                                 f"Little drunk so far: {rate:.0f} mL per hour",
                                 "Most athletes need 400 to 800 mL per hour of training: take a drink between sets.",
                                 {"intake_ml_per_h": _r(rate, 0), "session_min": _r(s.duration_s / 60, 0)}, min_s=0.0))
        return out


@dataclass
class _Track:
    condition: Condition
    since: float
    alert: Alert | None = None


class AlertManager:
    """Conditions in, alert events out; see the module docstring."""

    def __init__(self, station: str, config: AlertConfig | None = None, *, id_prefix: str | None = None):
        self.station = station
        self.cfg = config or AlertConfig()
        self._tracks: dict[str, _Track] = {}
        self._cooldown: dict[str, float] = {}     # key -> station time it may raise again
        self._acked: set[str] = set()             # keys acknowledged while their condition holds
        self._seq = itertools.count(1)
        self._prefix = id_prefix
        self.raised_total = 0

    def _new_id(self, wall: float) -> str:
        prefix = self._prefix or f"{self.station}:{int(wall * 1000)}"
        return f"{prefix}:{next(self._seq):04d}"

    def update(self, conditions: Iterable[Condition], t: float, wall: float) -> list[Alert]:
        events: list[Alert] = []
        now_keys = set()
        for cond in conditions:
            now_keys.add(cond.key)
            track = self._tracks.get(cond.key)
            if track is None:
                track = self._tracks[cond.key] = _Track(cond, t)
            track.condition = cond
            min_s = self.cfg.min_s if cond.min_s is None else cond.min_s
            if track.alert is None:
                if cond.key in self._acked or t < self._cooldown.get(cond.key, -math.inf) or t - track.since < min_s:
                    continue
                alert = Alert(self._new_id(wall), self.station, cond.code, cond.level, "raised", cond.message,
                              cond.advice, dict(cond.evidence), cond.sensor, cond.red_flag, wall, wall)
                track.alert = alert
                self.raised_total += 1
                events.append(alert)
            elif LEVELS.index(cond.level) > LEVELS.index(track.alert.level):
                # Worse than when raised: the old alert clears and a new one, with its own id,
                # is raised at the new level (subscribers drop repeats by id and state).
                events.append(replace(track.alert, state="cleared", ts=wall))
                track.alert = Alert(self._new_id(wall), self.station, cond.code, cond.level, "raised", cond.message,
                                    cond.advice, dict(cond.evidence), cond.sensor, cond.red_flag, wall, wall)
                self.raised_total += 1
                events.append(track.alert)
        for key in list(self._tracks):
            if key in now_keys:
                continue
            track = self._tracks.pop(key)
            self._acked.discard(key)
            if track.alert is not None:
                if track.condition.latched:
                    self._tracks[key] = track  # stays until acknowledged
                    continue
                self._cooldown[key] = t + self.cfg.cooldown_s
                events.append(replace(track.alert, state="cleared", ts=wall))
        return events

    def acknowledge(self, alert_id: str, t: float, wall: float, by: str = "staff") -> Alert | None:
        """Staff saw it. Returns the acknowledged event, or None for an unknown or closed id."""
        for key, track in list(self._tracks.items()):
            if track.alert is not None and track.alert.id == alert_id:
                event = replace(track.alert, state="acknowledged", ts=wall, by=by)
                self._tracks.pop(key)
                self._acked.add(key)  # no new alert while the condition still holds
                self._cooldown[key] = t + self.cfg.cooldown_s
                return event
        return None

    def active(self) -> list[Alert]:
        alerts = [t.alert for t in self._tracks.values() if t.alert is not None]
        return sorted(alerts, key=lambda a: (-LEVELS.index(a.level), a.raised_ts))

    def active_payload(self, wall: float) -> dict[str, Any]:
        return {"v": 1, "ts": wall, "station": self.station, "alerts": [a.payload() for a in self.active()]}
