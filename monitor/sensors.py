"""A station's sensors as configured: open each driver, read it, survive its faults.

A :class:`SensorSlot` holds one configured sensor and whatever driver is
currently talking to it. When the chip fails (gone, stuck, wrong chip) the
slot records a :class:`SensorFault` for the alerts to report, drops the driver,
and tries again after ``retry_s`` -- so a sensor that comes back is back
within about a second, and the loop never stops for one bad sensor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from .bus import LateBus as LateBus  # re-exported: it lived here before monitor.bus
from .clock import Clock
from .config import Config, ImuConfig, NfcConfig, ScaleConfig
from .errors import SensorError
from .i2c import Imu, SampleBlock
from .i2c.chips import IMU_DRIVERS
from .i2c.nau7802 import Nau7802, ScaleReading
from .i2c.pn532 import Pn532, Tap

log = logging.getLogger(__name__)


class Driver(Protocol):
    """What a slot needs of a driver: one ``read()`` per loop iteration."""

    def read(self) -> Any: ...


D = TypeVar("D", bound=Driver)


@dataclass(frozen=True)
class SensorFault:
    """Why a sensor is not delivering data, for a sensor-fault alert."""

    sensor: str
    kind: str  # "gone", "stuck", "not_found", "error"
    message: str
    since: float


def _fault_kind(err: SensorError) -> str:
    from .errors import SensorGone, SensorNotFound, SensorStuck

    if isinstance(err, SensorStuck):
        return "stuck"
    if isinstance(err, SensorNotFound):
        return "not_found"
    if isinstance(err, SensorGone):
        return "gone"
    return "error"


class SensorSlot(Generic[D]):
    """One configured sensor; see the module docstring."""

    def __init__(self, name: str, opener: Callable[[], D], clock: Clock, retry_s: float = 1.0):
        self.name = name
        self._open = opener
        self.clock = clock
        self.retry_s = retry_s
        self.driver: D | None = None
        self.fault: SensorFault | None = None
        self.recoveries = 0
        self._next_try = 0.0

    def get(self) -> D | None:
        """The working driver, opening it if it is time to try again; None while faulted."""
        if self.driver is None and self.clock.now() >= self._next_try:
            try:
                self.driver = self._open()
            except SensorError as err:
                self.failed(err)
                return None
            if self.fault is not None:
                log.info("%s is back after %.1f s", self.name, self.clock.now() - self.fault.since)
                self.recoveries += 1
                self.fault = None
        return self.driver

    def failed(self, err: SensorError) -> None:
        now = self.clock.now()
        if self.fault is None:
            log.warning("%s: %s", self.name, err)
            self.fault = SensorFault(self.name, _fault_kind(err), str(err), now)
        self._next_try = now + self.retry_s

    def poll(self, delivered: Callable[[Any], bool]) -> Any:
        """The driver's ``read()``, or None while faulted.

        A SensorError becomes the slot's fault.
        """
        driver = self.get()
        if driver is None:
            return None
        try:
            value = driver.read()
        except SensorError as err:
            self.failed(err)
            return None
        if delivered(value):
            self.ok()
        return value

    def ok(self) -> None:
        """Data flowed: a fault raised by a read (not by opening) is over."""
        if self.fault is not None:
            log.info("%s is back after %.1f s", self.name, self.clock.now() - self.fault.since)
            self.recoveries += 1
            self.fault = None


class ImuSlot(SensorSlot[Imu]):
    def __init__(self, cfg: ImuConfig, bus, clock: Clock, bus_name=None):
        driver = IMU_DRIVERS[cfg.chip]
        super().__init__(
            cfg.name,
            lambda: driver(
                bus,
                cfg.address,
                rate_hz=cfg.rate_hz,
                range_g=cfg.range_g,
                gyro=cfg.gyro,
                clock=clock,
                name=f"{cfg.name} ({cfg.chip} at 0x{cfg.address:02X})",
                bus_name=bus_name,
            ),
            clock,
        )
        self.config = cfg

    def read(self) -> SampleBlock | None:
        return self.poll(lambda block: len(block) > 0)


class ScaleSlot(SensorSlot[Nau7802]):
    def __init__(self, cfg: ScaleConfig, bus, clock: Clock, bus_name=None, calibration=None):
        super().__init__(
            "scale",
            lambda: Nau7802(
                bus,
                cfg.address,
                gain=cfg.gain,
                rate_sps=cfg.rate_sps,
                clock=clock,
                calibration=calibration,
                name=f"scale (nau7802 at 0x{cfg.address:02X})",
                bus_name=bus_name,
            ),
            clock,
        )
        self.config = cfg

    def read(self) -> ScaleReading | None:
        return self.poll(lambda reading: reading is not None)


class NfcSlot(SensorSlot[Pn532]):
    """The tag reader. Each :meth:`read` advances its exchange with the chip by a few
    milliseconds at most and returns a :class:`~monitor.i2c.pn532.Tap` once per tap."""

    def __init__(self, cfg: NfcConfig, bus, clock: Clock, bus_name=None):
        super().__init__(
            "nfc",
            lambda: Pn532(
                bus,
                cfg.address,
                clock=clock,
                poll_interval_s=cfg.poll_interval_s,
                name=f"nfc ({cfg.chip} at 0x{cfg.address:02X})",
                bus_name=bus_name,
            ),
            clock,
        )
        self.config = cfg

    def read(self) -> Tap | None:
        return self.poll(lambda tap: self.driver is not None and self.driver.healthy)


def open_nfc(config: Config, bus, clock: Clock) -> NfcSlot | None:
    return NfcSlot(config.nfc, bus, clock, config.i2c.bus) if config.nfc else None


def open_slots(
    config: Config, bus, clock: Clock, calibration=None
) -> tuple[list[ImuSlot], ScaleSlot | None]:
    bus_name = config.i2c.bus
    imus = [ImuSlot(c, bus, clock, bus_name) for c in config.imus]
    scale = ScaleSlot(config.scale, bus, clock, bus_name, calibration) if config.scale else None
    return imus, scale
