"""The in-process stations: StationRunners on simulated clocks, paced, with chip chaos."""

from __future__ import annotations

import logging
import random
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.alerts import AlertConfig
from monitor.clock import SimClock
from monitor.config import Config, GpioConfig, ImuConfig, MqttConfig, ScaleConfig, StationConfig
from monitor.runner import StationRunner
from tests.support.relay import Relay

from .chips import ChipChaos
from .ledger import Ledger
from .options import ACK_SILENCE_S, COOLDOWN_S, KEEPALIVE_S, Options

log = logging.getLogger("chaos")


def station_config(
    index: int,
    state_dir: Path,
    options: Options,
    broker_port: int,
    secrets: Path,
    station_id: str | None = None,
) -> Config:
    """The index-th chaos station: scenarios that raise alerts, two chips or a scale each."""
    sid = station_id or f"bench-{index + 1}"
    kind = index % 3
    if kind == 0:  # static holds on a wrist: tremor, hold fatigue, fatigue trend; a bottle dock
        imus = (ImuConfig("wrist", "mpu6050", 0x68, rate_hz=250, scenario="static_holds"),)
        scale = ScaleConfig()
    elif kind == 1:  # a fall on a body-worn sensor, and an arm that is not being exercised
        imus = (
            ImuConfig("chest", "mpu6500", 0x68, rate_hz=250, placement="body", scenario="fall"),
            ImuConfig("arm", "lsm6ds", 0x6A, rate_hz=208, exercised=False, scenario="companion"),
        )
        scale = None
    else:  # tremor that does not fade after the session: the persistent red flag
        imus = (ImuConfig("forearm", "lsm6ds", 0x6A, rate_hz=208, scenario="persistent_tremor"),)
        scale = ScaleConfig()
    return Config(
        station=StationConfig(
            id=sid,
            name=f"Chaos {sid}",
            simulate=True,
            state_dir=state_dir,
            seed=options.seed * 10 + index,
        ),
        imus=imus,
        scale=scale,
        alerts=AlertConfig(cooldown_s=COOLDOWN_S, ack_silence_s=ACK_SILENCE_S),
        mqtt=MqttConfig(
            host=Relay.host,
            port=broker_port,
            username=sid,
            password_file=str(secrets / f"{sid}.pw"),
            keepalive=KEEPALIVE_S,
        ),
        gpio=GpioConfig(enabled=True),
    )  # the status panel on gpiozero's mock pins: its button is pressed


class Pacer:
    """Keeps a station's simulated time at most ``speed`` times ahead of the wall clock."""

    def __init__(self, speed: float):
        self.speed = speed
        self._origin: tuple[float, float] | None = None  # (simulated, wall) at the first call

    def wait(self, sim_now: float) -> None:
        if self._origin is None:
            self._origin = (sim_now, time.monotonic())
        due = self._origin[1] + (sim_now - self._origin[0]) / self.speed
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)


@dataclass
class SensorTally:
    """ImuStats summed over every driver a sensor had (a slot may open a new one)."""

    rate_hz: float
    samples: int = 0
    lost: int = 0
    fifo_resets: int = 0
    faults: int = 0
    reconfigurations: int = 0
    sim_s: float = 0.0

    def add(self, stats) -> None:
        self.samples += stats.samples
        self.lost += stats.lost
        self.fifo_resets += stats.fifo_resets
        self.faults += stats.faults
        self.reconfigurations += stats.reconfigurations

    @property
    def expected(self) -> int:
        return int(self.rate_hz * self.sim_s)


class StationThread(threading.Thread):
    """One in-process station: a StationRunner cycled on its own SimClock, paced, with chip chaos.

    Every alert event of every step is written to the ledger as it is made. If a cycle
    raises, the crash is recorded and the runner is started again on the same bus, clock
    and state directory, as systemd's ``Restart=`` would.
    """

    def __init__(
        self,
        config: Config,
        ledger: Ledger,
        options: Options,
        rng: random.Random,
        chip_gap_s: float | None = None,
    ):
        super().__init__(name=f"chaos-{config.station.id}", daemon=True)
        self.config, self.ledger, self.options = config, ledger, options
        self.chip_gap_s = chip_gap_s or options.chip_gap_s
        self.id = config.station.id
        self.clock = SimClock()
        self.pacer = Pacer(options.speed)
        self.rng = rng
        self.crashes: list[str] = []
        self.error: str | None = None
        self.finish = threading.Event()  # set by the harness: stop cycling
        self.reached_end = threading.Event()  # simulated time is up; chaos is off
        self.started = threading.Event()
        self.runner: StationRunner | None = None
        self.chaos: ChipChaos | None = None
        self._drivers: dict[int, tuple[str, Any]] = {}
        self._first_t: float | None = None
        self.cycles = 0

    @property
    def sim_elapsed(self) -> float:
        return 0.0 if self._first_t is None else self.clock.now() - self._first_t

    def run(self) -> None:
        try:
            self._run()
        except BaseException:
            self.error = traceback.format_exc()
            self.started.set()
            self.reached_end.set()

    def _run(self) -> None:
        self.runner = StationRunner(self.config, simulate=True, clock=self.clock)
        self.runner.start()
        self.chaos = ChipChaos(
            self.id,
            self.config,
            self.runner.bus,
            self.clock,
            self.rng,
            self.chip_gap_s,
            self.options.quick,
        )
        self._first_t = self.clock.now()
        self.started.set()
        end = self._first_t + self.options.minutes * 60.0
        while not self.finish.is_set():
            if not self.reached_end.is_set() and self.clock.now() >= end:
                self.chaos.stop()
                self.reached_end.set()
            self.chaos.before_cycle()
            self._cycle()
            self.clock.sleep(self.runner.station.poll_interval)
            self.pacer.wait(self.clock.now())

    def _cycle(self) -> None:
        before = self.runner.last_step
        try:
            self.runner.cycle()
        except Exception:
            self.crashes.append(traceback.format_exc())
            log.error("%s: the station loop crashed; restarting it:\n%s", self.id, self.crashes[-1])
            if self.runner.last_step is not before:  # the step ran: its events were made
                self._record(self.runner.last_step)
            self._restart()
            return
        self.cycles += 1
        step = self.runner.last_step
        self._record(step)
        self.chaos.after_cycle(step)
        for slot in self.runner.station.imus:
            if slot.driver is not None:
                self._drivers[id(slot.driver)] = (slot.name, slot.driver)

    def _record(self, step) -> None:
        for a in step.alerts:
            self.ledger.record_raised(self.id, a.id, a.state, a.level, a.code)

    def _restart(self) -> None:
        old = self.runner
        try:
            old.stop()
        except Exception:
            log.exception("%s: stopping the crashed runner failed", self.id)
        self.runner = StationRunner(self.config, simulate=True, clock=self.clock, bus=old.bus)
        self.runner.start()

    @property
    def loop_errors(self) -> int:
        """Exceptions the runner's loop caught and logged (a step, an output, the panel)."""
        r = self.runner
        if r is None:
            return 0
        return r.errors.count + (r.uplink.errors.count if r.uplink is not None else 0)

    def press(self, times: int) -> None:
        """Press the panel's button ``times`` times, quickly (each press starts or stops a
        session)."""
        panel = self.runner.panel if self.runner is not None else None
        pin = getattr(getattr(panel, "button", None), "pin", None)
        if pin is None:
            return
        for _ in range(times):
            pin.drive_low()
            time.sleep(0.01)
            pin.drive_high()
            time.sleep(0.01)

    def tallies(self) -> dict[str, SensorTally]:
        out = {i.name: SensorTally(i.rate_hz, sim_s=self.sim_elapsed) for i in self.config.imus}
        for name, driver in self._drivers.values():
            out[name].add(driver.stats)
        return out

    def settled(self) -> bool:
        """Nothing of this station's waits: the outbox is empty and no alert is held in memory."""
        r = self.runner
        if r is None or r.outbox is None:
            return True
        return r.outbox.pending == 0 and getattr(r.uplink, "unstored", 0) == 0

    def stop(self) -> None:
        self.finish.set()
        self.join(10.0)
        if self.runner is not None:
            self.runner.stop()
