"""What a station tells the broker, and what it takes from it.

The :class:`Uplink` turns each :class:`~monitor.station.StepResult` into the
payloads of the MQTT contract (monitor/mqtt/PAYLOADS.md) and hands commands
from the broker to the station::

    uplink = Uplink(station, publisher)
    publisher.on_command = uplink.handle     # runs on the MQTT command thread
    while running:
        uplink.publish(station.step())

Every alert event goes first (QoS 1, through the durable outbox, which holds
it in memory and sends it directly when the disk is full), then the retained
list of active alerts; the record of a session that ended goes the same
durable way, and who is checked in (``athlete``) as retained state; tremor
goes out at the hop rate (QoS 0); session and hydration at once when something that matters changes (the state, a set, a
rep, a sip, a weigh-in), and otherwise every ``refresh_s`` with the latest
figures (retained, QoS 1, so not ten times a second). Each part is guarded on
its own: a payload that cannot be built is logged and the rest still goes out.

:meth:`Uplink.start` republishes the retained active list at every start (the
publisher repeats it at every reconnect), so the wall never keeps what an
earlier process of this station raised and no longer holds.
"""

from __future__ import annotations

import logging
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from .errors import ErrorLog
from .mqtt import commands
from .mqtt.homeassistant import HomeAssistantFeed
from .mqtt.payloads import hydration_payload, session_payload, tremor_payload
from .station import CommandFailed, Station, StepResult

log = logging.getLogger(__name__)

COMMAND_TIMEOUT_S = 10.0

#: fields whose change is news at once; the rest (live ratios, the mass on the scale) ride along
#: with the next refresh, since the tremor topic already carries the live figures
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
    """See the module docstring. ``publisher`` is a started MqttPublisher (or anything with its methods)."""

    def __init__(self, station: Station, publisher, *, refresh_s: float = 5.0):
        self.station = station
        self.publisher = publisher
        self.refresh_s = refresh_s
        self.id = station.config.station.id
        self._placements = {i.name: i for i in station.config.imus}
        self._last: dict[str, tuple[Any, float]] = {}  # kind -> (payload minus ts, when sent)
        self.errors = ErrorLog(log)
        # Home Assistant's own feed (a summary every few seconds) and its discovery configs.
        self.homeassistant = HomeAssistantFeed.attach(station, publisher)

    # -- out -----------------------------------------------------------------
    def _wall(self, t: float | None) -> float | None:
        """Station-clock time to Unix time."""
        if t is None:
            return None
        return self.station.clock.wall() - (self.station.clock.now() - t)

    def start(self) -> None:
        """At start: the retained list of active alerts (the publisher repeats it at every
        reconnect). From now on a check-in asks the broker for the athlete's retained profile."""
        self.publish_active()
        request = getattr(self.publisher, "request_profile", None)
        if request is not None:
            self.station.athletes.fetch_profile = request

    def publish_active(self) -> None:
        try:
            self.publisher.publish_active_alerts(
                self.station.alerts.active_payload(self.station.clock.wall())
            )
        except Exception:
            self.errors("publishing the active alerts")

    def publish(self, step: StepResult) -> None:
        for alert in step.alerts:
            self._alert(alert.payload())
        if step.alerts:
            self.publish_active()
        self.publish_athletes(step.checkin, step.records)
        for report in step.sensors:
            if report.statuses:
                try:
                    self.publisher.publish_tremor(self._tremor(report.statuses[-1]))
                except Exception:
                    self.errors(f"publishing tremor of {report.name}")
        if step.session is not None:
            try:
                self._state("session", self._session(step))
            except Exception:
                self.errors("publishing the session")
        if self.station.hydration is not None and self.station.config.scale is not None:
            try:
                h = self.station.hydration
                self._state(
                    "hydration",
                    hydration_payload(self.id, ts=self.station.clock.wall(), **h.figures()),
                )
            except Exception:
                self.errors("publishing hydration")
        if self.homeassistant is not None:
            try:
                self.homeassistant.update(step)
            except Exception:
                self.errors("publishing the Home Assistant feed")

    def _alert(self, payload: dict) -> None:
        try:
            self.publisher.publish_alert(payload)
        except Exception:  # never expected: the outbox holds what the disk refuses
            log.critical(
                "alert %s (%s) could not be handed to the outbox: %s",
                payload.get("id"),
                payload.get("state"),
                payload,
                exc_info=True,
            )

    def publish_athletes(self, checkin, records) -> None:
        """The records of sessions that ended (durable), then who is checked in now (retained)."""
        for record in records:
            self._record(record)
        if checkin is not None:
            try:
                self.publisher.publish_checkin(checkin.to_json())
            except Exception:
                self.errors("publishing who is checked in")

    def _record(self, record) -> None:
        try:
            self.publisher.publish_session_record(record.to_json())
        except Exception:  # never expected: the outbox keeps records like alerts
            log.critical(
                "the record of session %s could not be handed to the outbox: %s",
                record.id,
                record.to_json().decode(),
                exc_info=True,
            )

    @property
    def unstored(self) -> int:
        """Alert events held in memory because the outbox's disk is full (sent directly meanwhile)."""
        outbox = getattr(self.publisher, "outbox", None)
        return outbox.held if outbox is not None else 0

    def _state(self, kind: str, payload: dict) -> None:
        news = {k: payload.get(k) for k in NEWS[kind]}
        last = self._last.get(kind)
        now = self.station.clock.now()
        if last is not None and last[0] == news and now - last[1] < self.refresh_s:
            return
        self._last[kind] = (news, now)
        self.publisher.publish_state(kind, payload)

    def _tremor(self, st) -> dict:
        cfg = self._placements[st.sensor]
        m = st.window.metrics
        return tremor_payload(
            self.id,
            sensor=st.sensor,
            window_s=self.station.analysis_config.window_s,
            placement=cfg.placement,
            exercised=cfg.exercised,
            rms_mg=st.rms_mg,
            peak_hz=st.peak_hz,
            ratio=st.ratio,
            level=st.level,
            moving=m.moving,
            measurable=m.measurable,
            band_rms_mg=m.band_rms_mg,
            fatigue_ratio=m.fatigue_ratio,
            regularity=m.regularity,
            ts=self._wall(st.t),
        )

    def _session(self, step: StepResult) -> dict:
        s = step.session
        state = s.state
        return session_payload(
            self.id,
            state=state,
            name=self.station.config.station.display_name,
            active=s.active,
            started_ts=self._wall(s.started),
            ended_ts=self._wall(s.ended),
            set_count=s.set_count,
            rep_count=s.reps,
            last_set_end_ts=self._wall(s.last_set_end),
            baseline_mg=s.baseline_mg,
            ratio=s.ratio,
            recovery_s=s.recovery_s,
            fatigue_trend=s.fatigue_trend,
            thresholds={
                "elevated_ratio": self.station.rules.cfg.elevated_ratio,
                "high_ratio": self.station.rules.cfg.high_ratio,
            },
            ts=self.station.clock.wall(),
        )

    # -- in --------------------------------------------------------------------
    def handle(self, command: commands.Command) -> str | None:
        """Carry out a parsed command on the station's thread; None, or what went wrong."""
        st = self.station
        if isinstance(command, commands.Ack):
            action = lambda: (
                st.acknowledge(command.id, command.by or "staff")
                or _fail(
                    f"no active alert has id {command.id!r} (cleared already, or not this station's)"
                )
            )
        elif isinstance(command, commands.Session):
            # Idempotent: "start" leaves a running session running, "stop" a stopped one stopped;
            # "start" with an athlete checks them in (whoever was in checks out first).
            athlete = getattr(command, "athlete", None)
            if command.action == "start":
                action = lambda: st.start_session(athlete)
            else:
                action = lambda: st.stop_session(athlete)
        elif isinstance(command, commands.Tare):
            action = st.tare
        elif isinstance(command, commands.Calibrate):
            action = lambda: st.calibrate(command.mass_g)  # noqa: E731
        elif isinstance(command, commands.WeighIn):
            action = lambda: _weigh_in(st, command)  # noqa: E731
        else:
            return f"the station does not know the command {type(command).__name__}"
        try:
            st.submit(action).result(timeout=COMMAND_TIMEOUT_S)
        except FutureTimeout:
            return "the station did not finish the command in time"
        except CommandFailed as err:
            return str(err)
        except (ValueError, OSError) as err:
            log.warning("command %s failed: %s", type(command).__name__, err)
            return str(err)
        except Exception as err:  # a bug in a command must not take the station down
            log.exception("command %s failed", type(command).__name__)
            return f"{type(command).__name__.lower()} failed: {err}" if str(err) else "failed"
        return None


def _fail(message: str):
    raise CommandFailed(message)


def _weigh_in(station: Station, command: commands.WeighIn):
    tracker = station.hydration_tracker
    if tracker is None or station.config.scale is None or station.config.scale.mode != "body":
        raise CommandFailed('this station has no body scale (scale.mode = "body")')
    tracker.weigh_in(command.phase, command.athlete)
    return True
