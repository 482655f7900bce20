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
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

from .clock import Clock, RealClock
from .config import Config
from .errors import ConfigError
from .gpio import NullPanel, StatusPanel
from .notify import SystemdNotifier
from .station import Station

log = logging.getLogger(__name__)

#: how long to wait for missing sensors before telling systemd we are up anyway
#: (then the missing ones are reported as fault alerts and retried)
SENSOR_GRACE_S = 30.0


def panel_level(station: Station) -> str:
    """What the LEDs should show for the station's active alerts and faults."""
    active = station.alerts.active()
    levels = {a.level for a in active}
    if "urgent" in levels:
        return "urgent"
    if any(a.code == "sensor.fault" for a in active):
        return "fault"
    if "warning" in levels:
        return "warning"
    if "caution" in levels:
        return "caution"
    return "ok"


class StationRunner:
    """See the module docstring."""

    def __init__(self, config: Config, *, simulate: bool | None = None, clock: Clock | None = None,
                 bus: Any = None, pin_factory: Any = None, notifier: SystemdNotifier | None = None,
                 calibration: Any = None):
        self.config = config
        self.simulate = config.station.simulate if simulate is None else simulate
        self.clock = clock or RealClock()
        self.notifier = notifier or SystemdNotifier()
        self.bus = bus if bus is not None else self._open_bus()
        self.station = Station(config, bus=self.bus, clock=self.clock)
        self.calibration = calibration
        if calibration is None and self.simulate and config.scale is not None:
            self.calibration = self._simulated_calibration()
        self.panel = self._open_panel(pin_factory)
        self.publisher = None
        self.uplink = None
        self.outbox = None
        self.cycles = 0
        self.last_step = None

    # -- parts ---------------------------------------------------------------
    def _open_bus(self):
        if self.simulate:
            from .sim.rig import simulated_bus

            return simulated_bus(self.config, self.clock)
        from smbus2 import SMBus

        number = self.config.i2c.bus
        try:
            return SMBus(number)
        except (FileNotFoundError, PermissionError) as err:
            raise ConfigError("i2c.bus", f"cannot open /dev/i2c-{number} ({err.strerror}): enable I2C with "
                              "dtparam=i2c_arm=on and add this user to the i2c group") from None

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
        g = self.config.gpio
        if not g.enabled:
            return NullPanel()
        if pin_factory is None and self.simulate:
            from gpiozero.pins.mock import MockFactory

            pin_factory = MockFactory()  # a simulated station has no header either
        from gpiozero.exc import BadPinFactory, GPIOPinInUse

        try:
            panel = StatusPanel.from_config(g, pin_factory=pin_factory)
        except BadPinFactory:
            raise ConfigError("gpio.enabled", "no GPIO library found: install python3-lgpio, or set enabled = false "
                              "on a machine without GPIO") from None
        except GPIOPinInUse as err:
            raise ConfigError("gpio", str(err)) from None
        # The button acts through the station's command queue, like MQTT commands.
        panel.on_short_press = lambda: self.station.submit(self._toggle_session)
        panel.on_long_press = lambda: self.station.submit(self.station.tare) if self.config.scale else None
        return panel

    def _toggle_session(self):
        return self.station.stop_session() if self.station.session.active else self.station.start_session()

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
            raise ConfigError("station.state_dir", f"cannot create {state}: {err.strerror}") from None
        self.outbox = Outbox(state / "outbox.sqlite3", max_rows=m.outbox_max_rows,
                             max_bytes=int(m.outbox_max_mb * 1024 * 1024))
        info = StationInfo(self.config.station.id, name=self.config.station.display_name,
                           sensors=tuple(i.name for i in self.config.imus),
                           hydration=self.config.scale is not None)
        self.publisher = MqttPublisher(
            self.config.station.id, host=m.host, port=m.port, prefix=m.prefix, username=m.username or None,
            password_file=m.password_file or None, tls_ca=m.tls_ca or None, tls_cert=m.tls_cert or None,
            tls_key=m.tls_key or None, protocol=m.protocol, keepalive=m.keepalive, outbox=self.outbox,
            discovery=info, ha_discovery=m.ha_discovery)
        self.uplink = Uplink(self.station, self.publisher)
        self.publisher.on_command = self.uplink.handle
        self.publisher.start()

    # -- the loop --------------------------------------------------------------
    def start(self) -> None:
        self._open_mqtt()
        self.station.open(self.calibration)
        self.panel.show("ok")
        self._ready_sent = False
        self._started_at = self.clock.now()

    def cycle(self) -> None:
        """One full acquisition cycle, then what it means for MQTT, the LEDs and systemd."""
        step = self.station.step()
        self.last_step = step
        if self.uplink is not None:
            self.uplink.publish(step)
        self.panel.show(panel_level(self.station))
        self.cycles += 1
        if not self._ready_sent and (self.station.sensors_found or self.clock.now() - self._started_at >= SENSOR_GRACE_S):
            self.notifier.ready()
            self._ready_sent = True
            missing = [s.name for s in self.station.imus if s.driver is None]
            self.notifier.status("running" + (f"; sensors missing: {', '.join(missing)}" if missing else ""))
        if self.publisher is None or self.publisher.alive:
            self.notifier.watchdog()

    def stop(self) -> None:
        self.notifier.stopping()
        try:
            self.station.close()
        finally:
            if self.publisher is not None:
                self.publisher.close()
            if self.outbox is not None:
                self.outbox.close()
            self.panel.close()

    def run(self, stop: threading.Event | None = None, *, seconds: float | None = None,
            handle_signals: bool = False) -> int:
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
