"""``gym-monitor run``: one station, for as long as systemd (or the demo) wants it.

Everything comes together here: the config, the bus (smbus2 on a Pi, the
simulator otherwise), the station, its durable MQTT outbox and publisher, the
status panel and systemd's notify socket::

    runner = StationRunner(config, simulate=True)
    runner.run(stop_event)       # returns after stop_event is set, or SIGTERM

A clean start is sensors found and the outbox open (READY=1 to systemd); a
clean stop, on SIGTERM, flushes the outbox, publishes ``offline`` and turns
the LEDs off. The watchdog is pinged only after a full acquisition cycle while
the MQTT client is alive, so a hung loop gets the station restarted.

Nothing a command, a button or an output does ends the loop: an exception
from a step, the uplink or the panel is logged (in full once, then once a
minute) and the next cycle runs. The station's alerts survive a restart: every
event is written to the log (the journal) first, then the active alerts are
saved in the state directory (:mod:`monitor.alert_state`), then the event goes
to the outbox. A new process takes the saved alerts back, republishes the
retained active list, keeps a latched alert (a fall) until it is acknowledged
and clears, through the outbox, what is no longer so (``RESTORED_GRACE_S``).

Exit codes of ``gym-monitor run``: 0 after SIGTERM/SIGINT, 2 for a
configuration error (systemd should not restart: RestartPreventExitStatus=2),
1 for anything else. A missing I2C bus is not an exit: the station runs,
reports the sensors as faults and opens the bus when it appears.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .alert_state import AlertStateFile
from .athletes.identity import load_secret
from .bus import open_bus, simulated
from .clock import Clock, RealClock
from .config import Config
from .errors import ConfigError, ErrorLog
from .gpio import open_panel
from .mqtt.messages import AlertEvent
from .notify import SystemdNotifier
from .station import Station, StepResult

if TYPE_CHECKING:
    from .mqtt.outbox import Outbox
    from .mqtt.publisher import MqttPublisher
    from .uplink import Uplink

log = logging.getLogger(__name__)
#: every alert event, one line each, written before it is stored: a kill leaves a trace in the
#: journal
journal = logging.getLogger("monitor.alert")

#: how long to wait for missing sensors before telling systemd we are up anyway
#: (then the missing ones are reported as fault alerts and retried)
SENSOR_GRACE_S = 30.0
#: station seconds a restored alert waits for its condition to be seen again before it clears
#: (long enough for the analysis to have a first window and a baseline)
RESTORED_GRACE_S = 20.0
ALERT_STATE_FILE = "alerts.json"


def panel_level(active: Sequence[AlertEvent], silenced: Sequence[AlertEvent]) -> str:
    """What the LEDs should show for the active alerts (faults among them) and the silenced
    ones (acknowledged while their condition holds)."""
    levels = {a.level for a in active}
    if "urgent" in levels:
        return "urgent"
    if any(a.level == "urgent" for a in silenced):
        return "silenced"  # acknowledged, still holding: red without the buzzer
    if any(a.code == "sensor.fault" for a in active):
        return "fault"
    if "warning" in levels:
        return "warning"
    if "caution" in levels:
        return "caution"
    return "ok"


class StationRunner:
    """See the module docstring."""

    def __init__(
        self,
        config: Config,
        *,
        simulate: bool | None = None,
        clock: Clock | None = None,
        bus: Any = None,
        pin_factory: Any = None,
        notifier: SystemdNotifier | None = None,
        calibration: Any = None,
    ):
        self.config = config
        self.simulate = simulated(config, simulate)
        self.clock = clock or RealClock()
        self.notifier = notifier or SystemdNotifier()
        self.bus = bus if bus is not None else self._open_bus()
        self.station = Station(
            config,
            bus=self.bus,
            clock=self.clock,
            secret=load_secret(config, simulate=self.simulate),
        )
        self.calibration = calibration
        if calibration is None and self.simulate and config.scale is not None:
            self.calibration = self._simulated_calibration()
        self.panel = self._open_panel(pin_factory)
        self.publisher: MqttPublisher | None = None
        self.uplink: Uplink | None = None
        self.outbox: Outbox | None = None
        self.cycles = 0
        self.last_step: StepResult | None = None
        self.alert_state = AlertStateFile(Path(config.station.state_dir) / ALERT_STATE_FILE)
        self.errors = ErrorLog(log)
        self._pending: list[dict] = []  # events a previous process saved but may not have stored
        self._pending_truncated = False  # ... and more than it could keep

    # -- parts ---------------------------------------------------------------
    def _open_bus(self):
        # A real bus not there yet (I2C not enabled, the user not in the i2c group): the station
        # runs, reports its sensors as faults, logs why once a minute and opens the bus when it can.
        return open_bus(self.config, simulate=self.simulate, clock=self.clock, wait=True)

    def _simulated_calibration(self):
        # A simulated scale is calibrated like a real one, unless a calibration is saved.
        from .sim.rig import calibrate_scale

        if self.station.store is not None:
            try:
                saved = self.station.store.load("scale")
            except Exception:  # a corrupt file: calibrate afresh
                saved = None
            if saved is not None:
                return saved
        return calibrate_scale(self.bus, self.config, self.clock)

    def _open_panel(self, pin_factory):
        panel = open_panel(self.config.gpio, simulate=self.simulate, pin_factory=pin_factory)
        # The button acts through the station's command queue, like MQTT commands: a guest
        # checks in (or whoever is in checks out).
        panel.on_short_press = lambda: self.station.submit(self.station.press_button)
        panel.on_long_press = lambda: (
            self.station.submit(self.station.tare) if self.config.scale else None
        )
        return panel

    def _open_mqtt(self) -> None:
        m = self.config.mqtt
        if not m.enabled:
            return
        from .mqtt.discovery import StationInfo
        from .mqtt.outbox import Outbox
        from .mqtt.publisher import MqttPublisher
        from .uplink import Uplink

        state = Path(self.config.station.state_dir)
        try:
            state.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(
                "station.state_dir", f"cannot create {state}: {err.strerror}"
            ) from None
        self.outbox = outbox = Outbox(
            state / "outbox.sqlite3",
            max_rows=m.outbox_max_rows,
            max_bytes=int(m.outbox_max_mb * 1024 * 1024),
        )
        self._reconcile_alert_rows(outbox, f"{m.prefix}/{self.config.station.id}/alert")
        info = StationInfo(
            self.config.station.id,
            name=self.config.station.display_name,
            sensors=tuple(i.name for i in self.config.imus),
            hydration=self.config.scale is not None,
        )
        self.publisher = publisher = MqttPublisher(
            self.config.station.id,
            host=m.host,
            port=m.port,
            prefix=m.prefix,
            username=m.username or None,
            password_file=m.password_file or None,
            tls_ca=m.tls_ca or None,
            tls_cert=m.tls_cert or None,
            tls_key=m.tls_key or None,
            protocol=m.protocol,
            keepalive=m.keepalive,
            outbox=outbox,
            discovery=info,
            ha_discovery=m.ha_discovery,
        )
        self.uplink = uplink = Uplink(self.station, publisher)
        publisher.on_command = uplink.handle
        publisher.start()

    # -- alerts across restarts ------------------------------------------------
    def _restore_alerts(self) -> None:
        saved = self.alert_state.load()
        if saved is None:
            return
        try:
            n = self.station.restore_alerts(saved["snapshot"], RESTORED_GRACE_S)
        except (ValueError, TypeError, KeyError) as err:
            self.alert_state.set_aside(str(err))
            return
        self._pending = [e for e in saved.get("pending", []) if isinstance(e, dict)]
        self._pending_truncated = bool(saved.get("truncated", False))
        if n or self._pending:
            log.info(
                "took back %d alert(s) of the previous run (they clear within %g s unless their "
                "condition holds; latched ones stay until acknowledged) and %d alert event(s) the "
                "broker had not acknowledged, to send",
                n,
                RESTORED_GRACE_S,
                len(self._pending),
            )

    def _reconcile_alert_rows(self, outbox: Outbox, topic: str) -> None:
        """Put the saved unacknowledged alert events and the outbox's own back in one ordered queue.

        Every alert event is in the state file's ``pending`` before it reaches the
        outbox, so the saved list is the order they were raised in; rows the file
        holds beyond it (stored while the state could not be saved) follow it. This
        is what makes a damaged, salvaged or lost outbox lose no alert: the state
        file has them too. Subscribers drop the repeats by (id, state).
        """
        pending, self._pending = self._pending, []
        if not pending:
            return
        key = lambda e: (e.get("id"), e.get("state"))  # noqa: E731
        saved = {key(e) for e in pending}
        extra = []
        for m in outbox.messages(kind="alert"):
            try:
                event = json.loads(m.payload)
            except ValueError:
                continue
            if key(event) not in saved:
                extra.append(event)
        ordered = [*extra, *pending] if self._pending_truncated else [*pending, *extra]
        from .mqtt.payloads import encode

        try:
            outbox.replace_kind("alert", [(topic, encode(e)) for e in ordered])
        except Exception as err:  # a full disk: send what the file lacks, in memory if need be
            log.error(
                "cannot rewrite the outbox's alert queue (%s); adding the %d saved event(s) it "
                "lacks instead",
                err,
                len(pending),
            )
            have = {key(json.loads(m.payload)) for m in outbox.messages(kind="alert")}
            for e in pending:
                if key(e) not in have:
                    outbox.add(topic, encode(e), kind="alert")

    #: the newest this many unacknowledged alert events go into the state file
    MAX_PENDING = 2000

    def _unacked_alerts(self) -> list[dict]:
        """Alert events the broker has not acknowledged: in the outbox's file or held in memory."""
        if self.outbox is None:
            return []
        out = []
        for m in self.outbox.messages(kind="alert"):
            with contextlib.suppress(ValueError):  # a row that is not JSON is no alert to resend
                out.append(json.loads(m.payload))
        return out

    def _save_alerts(self, new: list[dict]) -> bool:
        """Save the alert state: the snapshot, and every alert event not yet acknowledged by the
        broker."""
        snapshot = self.station.alerts.snapshot(self.clock.now(), self.clock.wall())
        pending = [*self._unacked_alerts(), *new]
        truncated = len(pending) > self.MAX_PENDING
        return self.alert_state.save(
            snapshot, pending=pending[-self.MAX_PENDING :], truncated=truncated
        )

    def _journal(self, payloads: list[dict]) -> None:
        for p in payloads:
            by = f" by {p['by']}" if p.get("by") else ""
            journal.info(
                "alert %s %s %s %s%s: %s",
                p.get("state"),
                p.get("level"),
                p.get("code"),
                p.get("id"),
                by,
                p.get("message"),
                extra={"alert": p},
            )

    # -- the loop --------------------------------------------------------------
    def start(self) -> None:
        self._restore_alerts()
        self._open_mqtt()
        if self.uplink is not None and self.publisher is not None:
            self.uplink.start(self.station.alerts.active_alerts(self.clock.wall()))
            # From now on a check-in asks the broker for the athlete's retained profile.
            self.station.athletes.fetch_profile = self.publisher.request_profile
        self.station.open(self.calibration)
        self.panel.show(panel_level(self.station.alerts.active(), self.station.alerts.silenced()))
        self._ready_sent = False
        self._started_at = self.clock.now()

    def cycle(self) -> None:
        """One full acquisition cycle, then what it means for MQTT, the LEDs and systemd.

        Never raises for what a step, the uplink or the panel does: each is logged
        (ErrorLog) and the loop goes on. The watchdog is pinged only after a good step.
        """
        try:
            step = self.station.step()
        except Exception:
            self.errors("a station step")
            return
        self.last_step = step
        if step.alerts:
            try:
                payloads = [a.payload() for a in step.alerts]
                self._journal(payloads)  # first the journal: a kill leaves a trace
                self._save_alerts(payloads)  # then the state a restart needs
            except Exception:
                self.errors("recording alert events")
        if self.uplink is not None:
            try:
                self.uplink.publish(step)
            except Exception:
                self.errors("publishing a step")
        try:
            self.panel.show(panel_level(step.active, step.silenced))
            if step.tapped:
                self.panel.beep()  # the reader saw the tag
        except Exception:
            self.errors("showing the panel")
        self.cycles += 1
        if not self._ready_sent and (
            self.station.sensors_found or self.clock.now() - self._started_at >= SENSOR_GRACE_S
        ):
            self.notifier.ready()
            self._ready_sent = True
            missing = [s.name for s in self.station.imus if s.driver is None]
            self.notifier.status(
                "running" + (f"; sensors missing: {', '.join(missing)}" if missing else "")
            )
        if self.publisher is None or self.publisher.alive:
            self.notifier.watchdog()

    def stop(self) -> None:
        """End the session under way, flush what the broker can take, keep what it did not,
        say honestly what is left."""
        self.notifier.stopping()
        try:
            # Its record ("shutdown") goes into the outbox, stored before this returns.
            self.station.athletes.shutdown()
            taken = self.station.athletes.take()
            if self.uplink is not None:
                self.uplink.publish_athletes(taken.checkin, taken.records)
        except Exception:
            self.errors("ending the session at shutdown")
        try:
            self.station.close()
        except Exception:
            self.errors("closing the sensors")
        try:
            if self.publisher is not None:
                self.publisher.close()
        except Exception:
            self.errors("closing MQTT")
        held = [
            json.loads(m.payload)
            for m in (self.outbox.held_messages() if self.outbox else [])
            if m.kind == "alert"
        ]
        try:
            saved = self._save_alerts([])
        except Exception:
            self.errors("saving the alert state")
            saved = False
        if held:
            if saved:
                log.warning(
                    "%d alert event(s) the broker never acknowledged (the outbox's disk was full) "
                    "are saved in %s and sent again at the next start",
                    len(held),
                    self.alert_state.path,
                )
            else:
                log.error(
                    "%d alert event(s) the broker never acknowledged (the disk is full) are lost "
                    "with this stop: %s",
                    len(held),
                    ", ".join(f"{e.get('id')} {e.get('state')}" for e in held),
                )
        if self.outbox is not None:
            self.outbox.close(report_held=False)
        self.panel.close()

    def run(
        self,
        stop: threading.Event | None = None,
        *,
        seconds: float | None = None,
        handle_signals: bool = False,
    ) -> int:
        stop = stop or threading.Event()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
        self.start()
        end = None if seconds is None else self.clock.now() + seconds
        try:
            while not stop.is_set() and (end is None or self.clock.now() < end):
                began = self.clock.now()
                self.cycle()
                spare = self.station.poll_interval - (self.clock.now() - began)
                if spare > 0:
                    if isinstance(self.clock, RealClock):
                        stop.wait(spare / self.clock.speed)
                    else:
                        self.clock.sleep(spare)
        finally:
            self.stop()
        return 0
