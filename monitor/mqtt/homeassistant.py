"""The Home Assistant feed: a summary every few seconds, and at once when a level changes.

The wall display reads tremor at the hop rate (2 Hz) on ``tremor``; a home
automation system records every state it is given, so it gets its own feed
(:mod:`monitor.mqtt.messages.homeassistant`), retained, QoS 1:

* ``<prefix>/<station>/ha/sensor/<imu>``: each IMU's medians over the last
  ``interval_s`` (5 s by default) and its tremor level, sent every interval
  and at once when the level changes (at most one change a second);
* ``<prefix>/<station>/ha/station``: activity, session, sets, the worst active
  alert level with the alerts, and the scale's figures, sent every interval and
  at once when the activity, the session, a set, an alert or a hydration
  figure changes.

One :class:`HomeAssistantFeed` per station; the uplink hands it each
station step (:class:`~monitor.station.StepResult`, the cycle's whole record)::

    feed = HomeAssistantFeed.attach(config, publisher)    # None when discovery is off
    feed.update(step)

It also hands the publisher the discovery configs for the station's
configuration (:func:`monitor.mqtt.discovery.discovery_plan`), with removals of
what an earlier configuration announced.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .discovery import HaTopics, StationInfo, discovery_plan, sensor_levels
from .messages import ActivityState, AlertEvent, HydrationMode, Placement, TremorLevel
from .messages.homeassistant import SensorSummary, StationSummary, WorstLevel
from .topics import Topics

if TYPE_CHECKING:
    from ..config import Config
    from ..station import StepResult
    from .publisher import MqttPublisher

#: Hydration keys whose change is news (the mass on the scale rides with the next summary).
HYDRATION_NEWS = (
    "intake_ml",
    "pre_mass_g",
    "post_mass_g",
    "body_mass_loss_pct",
    "sweat_rate_l_per_h",
)
HYDRATION_KEYS = ("mass_g", "intake_ml", "intake_ml_per_h", *HYDRATION_NEWS[1:])
#: Figures that change all the time: sent with each interval's summary only.
LIVE_KEYS = ("mass_g", "intake_ml_per_h")
#: A level that changes is sent at once, but not more often than this (s).
LEVEL_GAP_S = 1.0
#: The level is the median of this many windows' grades: one odd window does not flip it.
LEVEL_WINDOWS = 3

Publish = Callable[[str, bytes], Any]


@dataclass
class _SensorState:
    topic: str
    placement: str
    rms: list[float] = field(default_factory=list)
    ratio: list[float] = field(default_factory=list)
    peak: list[float] = field(default_factory=list)
    windows: int = 0
    grades: list[int] = field(default_factory=list)  # ranks of the last LEVEL_WINDOWS windows
    sent_at: float | None = None  # the last summary of the interval
    level_at: float | None = None  # the last change of level sent between summaries
    sent_level: TremorLevel | None = None
    last: SensorSummary | None = None

    def level(self) -> TremorLevel:
        if not self.grades:
            return TremorLevel.NONE
        return tuple(TremorLevel)[int(statistics.median_low(self.grades))]


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


class HomeAssistantFeed:
    """Summaries for Home Assistant at ``interval_s``, and on every change of level.

    Give it values with :meth:`window` (one per analysis window of an IMU) and
    :meth:`station` (the station's state now), then call :meth:`flush` with
    the time: it publishes what is due through ``publish(topic, payload)``.
    """

    def __init__(
        self,
        topics: Topics,
        info: StationInfo,
        publish: Publish,
        *,
        interval_s: float = 5.0,
        level_gap_s: float = LEVEL_GAP_S,
    ):
        if not interval_s > 0:
            raise ValueError(f"interval_s must be positive, not {interval_s!r}")
        self.topics = topics
        self.info = info
        self.publish = publish
        self.interval_s = interval_s
        self.level_gap_s = level_gap_s
        ha = HaTopics(topics)
        levels = sensor_levels(info)
        self.sensors = {
            s.name: _SensorState(ha.sensor(levels[s.name]), s.placement) for s in info.imus
        }
        self.station_topic = ha.station
        self._station: StationSummary | None = None
        self._station_news: tuple[Any, ...] | None = None
        self._station_sent_at: float | None = None
        self._station_live: dict[str, Any] = {}
        self._station_due = True
        self._session_key: object = None
        self._totals: dict[str, float] = {}
        self.sent = 0

    # -- in ----------------------------------------------------------------------
    def window(
        self,
        sensor: str,
        *,
        rms_mg: float | None,
        ratio: float | None,
        peak_hz: float | None,
        level: str,
        measurable: bool = True,
    ) -> None:
        """One analysis window of ``sensor`` (its figures as the tremor topic has them)."""
        s = self.sensors.get(sensor)
        if s is None:
            return
        s.windows += 1
        if measurable:
            for xs, x in ((s.rms, rms_mg), (s.ratio, ratio), (s.peak, peak_hz)):
                if x is not None and math.isfinite(x):
                    xs.append(float(x))
        s.grades = [*s.grades, TremorLevel(level).rank][-LEVEL_WINDOWS:]

    def station(
        self,
        *,
        state: str,
        active: bool,
        set_count: int,
        rep_count: int,
        alerts: Sequence[AlertEvent | Mapping[str, Any]] = (),
        hydration: Mapping[str, Any] | None = None,
        ts: float | None = None,
        session: object = None,
    ) -> None:
        """The station now: its session, its active alerts (events, or their payload dicts), its
        scale's figures.

        ``session`` identifies the session (its start time): within one session the
        totals Home Assistant sums (sets, intake) never go down, so a figure the station
        revises downwards is not read as a meter reset; a new session starts them again.
        """
        h = dict(hydration or {}) if self.info.scale_mode else {}
        if session != self._session_key:
            self._session_key, self._totals = session, {}
        set_count = int(self._total("set_count", set_count))
        if h.get("intake_ml") is not None:
            h["intake_ml"] = self._total("intake_ml", h["intake_ml"])
        briefs = tuple(StationSummary.brief(a) for a in alerts)
        summary = StationSummary(
            station=self.topics.station,
            ts=time.time() if ts is None else ts,
            state=ActivityState(state),
            active=active,
            set_count=set_count,
            rep_count=rep_count,
            alert_level=WorstLevel.of([a.level for a in briefs]),
            alert_count=len(briefs),
            ack_id=briefs[0].id if briefs else None,
            alerts=briefs,
            scale=HydrationMode(self.info.scale_mode) if self.info.scale_mode else None,
            **{k: h.get(k) for k in HYDRATION_KEYS},
        )
        news = (
            summary.state,
            summary.active,
            summary.set_count,
            summary.alert_level,
            tuple(a.id for a in briefs),
            *(h.get(k) for k in HYDRATION_NEWS),
        )
        if news != self._station_news:
            self._station_due = True
        self._station, self._station_news = summary, news

    def _total(self, key: str, value: float) -> float:
        value = max(value, self._totals.get(key, value))
        self._totals[key] = value
        return value

    # -- out ---------------------------------------------------------------------
    def flush(self, now: float, wall: float | None = None) -> int:
        """Publish what is due at ``now`` (the station's clock); returns how many were sent."""
        wall = time.time() if wall is None else wall
        n = 0
        for name, s in self.sensors.items():
            level = s.level()
            if s.sent_at is None or now - s.sent_at >= self.interval_s:
                s.last = SensorSummary(
                    station=self.topics.station,
                    ts=wall,
                    sensor=name,
                    placement=Placement(s.placement),
                    rms_mg=_median(s.rms),
                    ratio=_median(s.ratio),
                    ratio_max=max(s.ratio) if s.ratio else None,
                    peak_hz=_median(s.peak),
                    level=level,
                    windows=s.windows,
                )
                s.rms, s.ratio, s.peak, s.windows = [], [], [], 0
                s.sent_at = now
            elif (
                level != s.sent_level
                and s.last is not None
                and (s.level_at is None or now - s.level_at >= self.level_gap_s)
            ):
                # The level at once, the figures as they were: only the level entity changes
                # between summaries, so the figures' entities keep one state per interval.
                s.last = dataclasses.replace(s.last, ts=wall, level=level)
                s.level_at = now
            else:
                continue
            self.publish(s.topic, s.last.to_json())
            s.sent_level = level
            n += 1
        summary = self._station
        interval = self._station_sent_at is None or now - self._station_sent_at >= self.interval_s
        if summary is not None and (interval or self._station_due):
            if interval:
                self._station_live = {k: getattr(summary, k) for k in LIVE_KEYS}
                self._station_sent_at = now
            else:
                # News between summaries: the live figures as the last summary had them, so
                # their entities keep one state per interval.
                summary = dataclasses.replace(summary, **self._station_live)
            self.publish(self.station_topic, summary.to_json())
            self._station_due = False
            n += 1
        self.sent += n
        return n

    # -- wiring to a station -------------------------------------------------------
    @classmethod
    def attach(cls, config: Config, publisher: MqttPublisher) -> _StationFeed | None:
        """The feed for a station's ``config`` and its started-to-be publisher.

        Hands the publisher the discovery plan (configs for this configuration,
        removals of what an earlier one announced). None when Home Assistant
        discovery is off (after sending the removals).
        """
        ha = config.homeassistant
        enabled = config.mqtt.ha_discovery
        info = StationInfo.from_config(config)
        plan = discovery_plan(
            publisher.topics,
            info,
            prefix=ha.discovery_prefix,
            form=ha.discovery,
            state_dir=config.station.state_dir,
            enabled=enabled,
        )
        publisher.set_discovery(plan.messages)
        if not enabled:
            return None
        feed = cls(publisher.topics, info, publisher.publish_live_state, interval_s=ha.interval_s)
        return _StationFeed(feed)


class _StationFeed:
    """Reads each station step into a :class:`HomeAssistantFeed`."""

    def __init__(self, feed: HomeAssistantFeed):
        self.feed = feed

    def update(self, step: StepResult) -> int:
        for report in step.sensors:
            for status in report.statuses:
                self.feed.window(
                    status.sensor,
                    rms_mg=status.rms_mg,
                    ratio=status.ratio,
                    peak_hz=status.peak_hz,
                    level=status.level,
                    measurable=status.window.metrics.measurable,
                )
        s = step.session
        if s is not None:
            self.feed.station(
                state=s.state,
                active=s.active,
                set_count=s.set_count,
                rep_count=s.reps,
                hydration=step.hydration.figures() if step.hydration is not None else None,
                ts=step.wall,
                session=s.started,
                alerts=step.active,
            )
        return self.feed.flush(step.t, step.wall)
