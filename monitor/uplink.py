"""What a station tells the broker, and what it takes from it.

The :class:`Uplink` turns each :class:`~monitor.station.StepResult` (the whole
record of one cycle) into the messages of the MQTT contract
(:mod:`monitor.mqtt.messages`, monitor/mqtt/PAYLOADS.md) and hands commands
from the broker to the station::

    uplink = Uplink(station, publisher)
    publisher.on_command = uplink.handle     # runs on the MQTT command thread
    while running:
        uplink.publish(station.step())

Every alert event goes first (QoS 1, through the durable outbox, which holds
it in memory and sends it directly when the disk is full), then the retained
list of active alerts; the record of a session that ended goes the same
durable way, and who is checked in (``athlete``) as retained state; tremor
goes out at the hop rate (QoS 0); session and hydration at once when something
that matters changes (the state, a set, a rep, a sip, a weigh-in), and
otherwise every ``refresh_s`` with the latest figures (retained, QoS 1, so not
ten times a second). Each part is guarded on its own: a message that cannot be
built is logged and the rest still goes out.

What goes out comes from the step alone; the station is only told what to do
(commands, through :meth:`~monitor.station.Station.submit`).
:meth:`Uplink.start` republishes the retained active list at every start (the
publisher repeats it at every reconnect), so the wall never keeps what an
earlier process of this station raised and no longer holds.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from .analysis.activity import SensorStatus
from .analysis.hydration import BodyScaleTracker
from .errors import ErrorLog
from .mqtt.homeassistant import HomeAssistantFeed
from .mqtt.messages import (
    Ack,
    ActiveAlerts,
    ActivityState,
    AlertEvent,
    AnyCommand,
    Calibrate,
    CheckIn,
    Hydration,
    HydrationMode,
    Placement,
    SessionCommand,
    SessionRecord,
    SessionReport,
    Tare,
    Tremor,
    WeighIn,
)
from .mqtt.publisher import MqttPublisher
from .station import CommandFailed, Station, StepResult

log = logging.getLogger(__name__)

COMMAND_TIMEOUT_S = 10.0

#: Fields whose change is news at once; the rest (live ratios, the mass on the scale) ride along
#: with the next refresh, since the tremor topic already carries the live figures.
NEWS = {
    "session": (
        "state",
        "active",
        "started_ts",
        "ended_ts",
        "set_count",
        "rep_count",
        "last_set_end_ts",
    ),
    "hydration": (
        "intake_ml",
        "pre_mass_g",
        "post_mass_g",
        "body_mass_loss_pct",
        "sweat_rate_l_per_h",
    ),
}


class Uplink:
    """See the module docstring. ``publisher`` is a :class:`~monitor.mqtt.publisher.MqttPublisher`
    (started by whoever owns it)."""

    def __init__(self, station: Station, publisher: MqttPublisher, *, refresh_s: float = 5.0):
        self.station = station  # commands go to it; what goes out comes from each step
        self.publisher = publisher
        self.refresh_s = refresh_s
        config = station.config
        self.id = config.station.id
        self.name = config.station.display_name or self.id
        self._imus = {i.name: i for i in config.imus}
        self._window_s = station.analysis_config.window_s
        self._last: dict[str, tuple[tuple[Any, ...], float]] = {}  # kind -> (news, when sent)
        self.errors = ErrorLog(log)
        # Home Assistant's own feed (a summary every few seconds) and its discovery configs.
        self.homeassistant = HomeAssistantFeed.attach(config, publisher)

    # -- out -----------------------------------------------------------------
    def start(self, active: ActiveAlerts) -> None:
        """At start: the retained list of ``active`` alerts (the publisher repeats it at every
        reconnect), so the wall drops what an earlier process raised and no longer holds."""
        self._active(active)

    def publish(self, step: StepResult) -> None:
        for alert in step.alerts:
            self._alert(alert)
        if step.alerts:
            self._active(
                ActiveAlerts(
                    ts=step.wall, station=self.id, alerts=step.active, acknowledged=step.silenced
                )
            )
        self.publish_athletes(step.checkin, step.records)
        for report in step.sensors:
            if report.statuses:
                try:
                    self.publisher.publish_tremor(self._tremor(report.statuses[-1], step))
                except Exception:
                    self.errors(f"publishing tremor of {report.name}")
        if step.session is not None:
            try:
                self._state("session", self._session(step), step.t)
            except Exception:
                self.errors("publishing the session")
        if step.hydration is not None:
            try:
                self._state("hydration", self._hydration(step), step.t)
            except Exception:
                self.errors("publishing hydration")
        if self.homeassistant is not None:
            try:
                self.homeassistant.update(step)
            except Exception:
                self.errors("publishing the Home Assistant feed")

    def _active(self, active: ActiveAlerts) -> None:
        try:
            self.publisher.publish_active_alerts(active)
        except Exception:
            self.errors("publishing the active alerts")

    def _alert(self, alert: AlertEvent) -> None:
        try:
            self.publisher.publish_alert(alert)
        except Exception:  # never expected: the outbox holds what the disk refuses
            log.critical(
                "alert %s (%s) could not be handed to the outbox: %s",
                alert.id,
                alert.state,
                alert.to_dict(),
                exc_info=True,
            )

    def publish_athletes(self, checkin: CheckIn | None, records: Iterable[SessionRecord]) -> None:
        """The records of sessions that ended (durable), then who is checked in now (retained)."""
        for record in records:
            self._record(record)
        if checkin is not None:
            try:
                self.publisher.publish_checkin(checkin)
            except Exception:
                self.errors("publishing who is checked in")

    def _record(self, record: SessionRecord) -> None:
        try:
            self.publisher.publish_session_record(record)
        except Exception:  # never expected: the outbox keeps records like alerts
            log.critical(
                "the record of session %s could not be handed to the outbox: %s",
                record.id,
                record.to_json().decode(),
                exc_info=True,
            )

    def _state(self, kind: str, message: SessionReport | Hydration, now: float) -> None:
        news = tuple(getattr(message, k) for k in NEWS[kind])
        last = self._last.get(kind)
        if last is not None and last[0] == news and now - last[1] < self.refresh_s:
            return
        self._last[kind] = (news, now)
        self.publisher.publish_state(kind, message)

    def _tremor(self, st: SensorStatus, step: StepResult) -> Tremor:
        imu = self._imus[st.sensor]
        m = st.window.metrics
        measurable = bool(m.measurable)
        return Tremor(
            ts=step.to_wall(st.t),
            station=self.id,
            sensor=st.sensor,
            placement=Placement(imu.placement),
            exercised=imu.exercised,
            rms_mg=st.rms_mg if measurable else None,
            peak_hz=st.peak_hz if measurable else None,
            ratio=st.ratio if measurable else None,
            level=st.level,
            moving=bool(m.moving),
            measurable=measurable,
            band_rms_mg=dict(m.band_rms_mg),
            fatigue_ratio=m.fatigue_ratio,
            regularity=m.regularity,
            window_s=self._window_s,
        )

    def _session(self, step: StepResult) -> SessionReport:
        s = step.session
        assert s is not None  # published only for a step that has one
        return SessionReport(
            ts=step.wall,
            station=self.id,
            name=self.name,
            state=ActivityState(s.state),
            active=s.active,
            started_ts=step.to_wall(s.started),
            ended_ts=step.to_wall(s.ended),
            set_count=s.set_count,
            rep_count=s.reps,
            last_set_end_ts=step.to_wall(s.last_set_end),
            baseline_mg=s.baseline_mg,
            ratio=s.ratio,
            recovery_s=s.recovery_s,
            fatigue_trend=s.fatigue_trend,
            thresholds=step.grades,
        )

    def _hydration(self, step: StepResult) -> Hydration:
        h = step.hydration
        assert h is not None  # published only for a step that has one
        return Hydration(
            ts=step.wall,
            station=self.id,
            mode=HydrationMode(h.mode),
            mass_g=h.mass_g,
            intake_ml=h.intake_ml,
            intake_ml_per_h=h.intake_ml_per_h,
            pre_mass_g=h.pre_mass_g,
            post_mass_g=h.post_mass_g,
            body_mass_loss_pct=h.body_mass_loss_pct,
            sweat_rate_l_per_h=h.sweat_rate_l_per_h,
        )

    # -- in --------------------------------------------------------------------
    def handle(self, command: AnyCommand) -> str | None:
        """Carry out a parsed command on the station's thread; None, or what went wrong."""
        action = self._action(command)
        if action is None:
            return f"the station does not know the command {type(command).__name__}"
        name = type(command).__name__
        try:
            self.station.submit(action).result(timeout=COMMAND_TIMEOUT_S)
        except FutureTimeout:
            return "the station did not finish the command in time"
        except CommandFailed as err:
            return str(err)
        except (ValueError, OSError) as err:
            log.warning("command %s failed: %s", name, err)
            return str(err)
        except Exception as err:  # a bug in a command must not take the station down
            log.exception("command %s failed", name)
            return f"{name.lower()} failed: {err}" if str(err) else "failed"
        return None

    def _action(self, command: AnyCommand) -> Callable[[], Any] | None:
        """What ``command`` does, to run on the station's thread."""
        st = self.station
        if isinstance(command, Ack):
            return functools.partial(_acknowledge, st, command.id, command.by or "staff")
        if isinstance(command, SessionCommand):
            # Idempotent: "start" leaves a running session running, "stop" (or "checkout") a
            # stopped one stopped; "start" with an athlete checks them in (whoever was in
            # checks out first).
            act = st.start_session if command.starts else st.stop_session
            return functools.partial(act, command.athlete)
        if isinstance(command, Tare):
            return st.tare
        if isinstance(command, Calibrate):
            return functools.partial(st.calibrate, command.mass_g)
        if isinstance(command, WeighIn):
            return functools.partial(_weigh_in, st, command)
        return None


def _acknowledge(station: Station, alert_id: str, by: str) -> AlertEvent:
    event = station.acknowledge(alert_id, by)
    if event is None:
        raise CommandFailed(
            f"no active alert has id {alert_id!r} (cleared already, or not this station's)"
        )
    return event


def _weigh_in(station: Station, command: WeighIn) -> bool:
    tracker = station.hydration_tracker
    scale = station.config.scale
    if not isinstance(tracker, BodyScaleTracker) or scale is None or scale.mode != "body":
        raise CommandFailed('this station has no body scale (scale.mode = "body")')
    tracker.weigh_in(command.phase, command.athlete)
    return True
