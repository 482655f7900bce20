"""One session's record, gathered while it runs and built when it ends.

A :class:`SessionRecorder` is started with the session and watches every step:
each sensor's status (for the per-minute trace and a hold's fatigue band) and
every alert event (for who acknowledged what). When the session ends,
:meth:`SessionRecorder.record` takes the sets the analysis found, the
hydration figures and what was learnt of the athlete, and builds the
:class:`~monitor.mqtt.messages.SessionRecord` (the format's own class checks
every field)::

    rec = SessionRecorder("bench-1", started=t0, started_wall=w0, athlete="a3k7", guest=False,
                          placements={"wrist": "limb"})
    rec.observe(status, wall)               # every status of every sensor
    rec.alerts(step.alerts)                 # every alert event
    record = rec.record(ended_wall=w1, reason="tap", sets={"wrist": [...]}, to_wall=to_wall)

Times inside are the station's clock (``t``); the record carries Unix time,
through ``to_wall``. Sets and holds share one numbering, in the order they
started (a session's sets can come from several sensors). The record is kept
under :data:`MAX_RECORD_BYTES`, well inside the broker's packet limit, by
thinning the trace of a very long session.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from ..analysis.activity import HOLD, SensorStatus, SetRecord
from ..mqtt import messages as m

log = logging.getLogger(__name__)

#: The record goes out as one MQTT message: the shipped broker takes 256 KiB.
MAX_RECORD_BYTES = 192 * 1024
#: A sensor's trace is bounded (a day of minutes) whatever happens to the session's end.
MAX_TRACE_MINUTES = 24 * 60
#: Statuses kept per sensor to find a hold's fatigue band peak (20 min at 2 Hz).
FATIGUE_HISTORY = 2400


@dataclass
class _Minute:
    ts: float
    states: Counter = field(default_factory=Counter)
    ratios: list[float] = field(default_factory=list)
    rms: list[float] = field(default_factory=list)

    def entry(self, sensor: str) -> m.TraceEntry:
        state = self.states.most_common(1)[0][0] if self.states else "idle"
        return m.TraceEntry(
            ts=self.ts,
            sensor=sensor,
            state=_state(state),
            ratio_p50=statistics.median(self.ratios) if self.ratios else None,
            ratio_max=max(self.ratios) if self.ratios else None,
            rms_mg_p50=statistics.median(self.rms) if self.rms else None,
        )


def _state(name: str) -> m.ActivityState:
    try:
        return m.ActivityState(name)
    except ValueError:  # a state the format does not know (yet) reads as idle
        return m.ActivityState.IDLE


@dataclass
class _AlertSeen:
    id: str
    code: str
    level: m.AlertLevel
    raised_ts: float
    cleared_ts: float | None = None
    acknowledged_ts: float | None = None
    by: str | None = None


class SessionRecorder:
    """See the module docstring. ``placements`` maps each sensor to its placement."""

    def __init__(
        self,
        station: str,
        *,
        started: float,
        started_wall: float,
        athlete: str | None,
        guest: bool,
        placements: Mapping[str, str],
    ):
        self.station = station
        self.started = started
        self.started_wall = started_wall
        self.athlete = athlete
        self.guest = guest
        self.placements = dict(placements)
        self.id = f"{station}:{round(started_wall * 1000)}"
        self._minutes: dict[str, _Minute] = {}
        self._trace: dict[str, deque[m.TraceEntry]] = {}
        self._fatigue: dict[str, deque[tuple[float, float]]] = {}
        self._alerts: dict[str, _AlertSeen] = {}

    # -- while it runs -------------------------------------------------------------------
    def observe(self, status: SensorStatus, wall: float) -> None:
        """One status of one sensor; ``wall`` is its time in Unix seconds."""
        sensor = status.sensor
        minute = math.floor(wall / 60.0) * 60.0
        current = self._minutes.get(sensor)
        if current is None or minute > current.ts:
            if current is not None:
                self._trace.setdefault(sensor, deque(maxlen=MAX_TRACE_MINUTES)).append(
                    current.entry(sensor)
                )
            current = self._minutes[sensor] = _Minute(minute)
        elif minute < current.ts:
            return  # a late status of a minute already written
        current.states[status.state] += 1
        if status.ratio is not None and math.isfinite(status.ratio):
            current.ratios.append(float(status.ratio))
        if status.rms_mg is not None and math.isfinite(status.rms_mg):
            current.rms.append(float(status.rms_mg))
        fatigue = status.window.metrics.fatigue_ratio
        if fatigue is not None and math.isfinite(fatigue):
            self._fatigue.setdefault(sensor, deque(maxlen=FATIGUE_HISTORY)).append(
                (status.t, float(fatigue))
            )

    def alerts(self, events: Iterable[m.AlertEvent]) -> None:
        """Alert events of a step: those raised in this session, and what became of them while
        it lasted."""
        for a in events:
            if a.state == "raised":
                if a.id not in self._alerts and a.raised_ts is not None:
                    self._alerts[a.id] = _AlertSeen(a.id, a.code, a.level, a.raised_ts)
                continue
            seen = self._alerts.get(a.id)
            if seen is None:
                continue  # raised before the session: it belongs to whoever was there then
            if a.state == "cleared" and seen.cleared_ts is None:
                seen.cleared_ts = a.ts
            elif a.state == "acknowledged" and seen.acknowledged_ts is None:
                seen.acknowledged_ts = a.acked_ts if a.acked_ts is not None else a.ts
                seen.by = a.by

    # -- at the end ------------------------------------------------------------------------
    def record(
        self,
        *,
        ended_wall: float,
        reason: str,
        sets: Mapping[str, Iterable[SetRecord]],
        to_wall: Callable[[float], float],
        hydration: m.RecordHydration | None = None,
        profile_update: m.ProfileUpdate | None = None,
        now_wall: float | None = None,
    ) -> m.SessionRecord:
        """The :class:`~monitor.mqtt.messages.SessionRecord` of the session, ended for
        ``reason``."""
        found = sorted(
            ((sensor, s) for sensor, ss in sets.items() for s in ss),
            key=lambda x: (x[1].start, x[0]),
        )
        entries, holds = [], []
        for index, (sensor, s) in enumerate(found, start=1):
            placement = m.Placement(self.placements.get(sensor, "limb"))
            start, end = to_wall(s.start), to_wall(max(s.end, s.start))
            entries.append(
                m.SetEntry(
                    index=index,
                    kind=m.SetKind.HOLD if s.kind == HOLD else m.SetKind.REPS,
                    sensor=sensor,
                    placement=placement,
                    start_ts=max(start, 0.0),
                    end_ts=max(end, 0.0),
                    reps=s.reps,
                    ratio_median=s.ratio_median,
                    ratio_peak=s.ratio_peak,
                    growth_per_min=s.growth_per_min,
                    recovery_s=s.recovery_s,
                )
            )
            if s.kind == HOLD:
                holds.append(
                    m.HoldEntry(
                        index=index,
                        sensor=sensor,
                        start_ts=max(start, 0.0),
                        end_ts=max(end, 0.0),
                        duration_s=max(s.end - s.start, 0.0),
                        ratio_peak=s.ratio_peak,
                        fatigue_ratio_peak=self._fatigue_peak(sensor, s),
                    )
                )
        alerts = tuple(
            m.AlertEntry(
                id=a.id,
                code=a.code,
                level=a.level,
                raised_ts=a.raised_ts,
                cleared_ts=a.cleared_ts,
                acknowledged_ts=a.acknowledged_ts,
                by=a.by,
            )
            for a in self._alerts.values()
        )
        trace = self._trace_entries()
        ended_wall = max(ended_wall, self.started_wall)
        record = m.SessionRecord(
            ts=ended_wall if now_wall is None else now_wall,
            station=self.station,
            id=self.id,
            athlete=self.athlete,
            guest=self.guest,
            started_ts=self.started_wall,
            ended_ts=ended_wall,
            end_reason=m.EndReason(reason),
            sets=tuple(entries),
            holds=tuple(holds),
            alerts=alerts,
            hydration=hydration,
            trace=trace,
            profile_update=profile_update,
        )
        return _fitting(record)

    def _fatigue_peak(self, sensor: str, s: SetRecord) -> float | None:
        values = [f for t, f in self._fatigue.get(sensor, ()) if s.start <= t <= s.end + 2.5]
        return max(values) if values else None

    def _trace_entries(self) -> tuple[m.TraceEntry, ...]:
        out: list[m.TraceEntry] = []
        for sensor in sorted(set(self._trace) | set(self._minutes)):
            out.extend(self._trace.get(sensor, ()))
            if sensor in self._minutes:
                out.append(self._minutes[sensor].entry(sensor))
        return tuple(sorted(out, key=lambda e: (e.ts, e.sensor)))


def _fitting(record: m.SessionRecord) -> m.SessionRecord:
    """The record, its trace thinned (every other minute dropped) until it fits one message."""
    kept = len(record.trace)
    while kept and len(record.to_json()) > MAX_RECORD_BYTES:
        record = replace(record, trace=record.trace[::2] if kept > 1 else ())
        kept = len(record.trace)
        log.warning(
            "session %s: its record keeps %d trace minute(s) to fit one message", record.id, kept
        )
    return record
