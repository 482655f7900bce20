"""The station's I2C bus: the real one on a Pi, the simulated one everywhere else.

Drivers take a ``bus``; this module is the one place that decides which, the
way gpiozero decides its pin factory: an explicit choice wins, then the
config (``[station] simulate = true``), then the environment variable
``GYM_MONITOR_BUS`` (``sim`` or ``smbus``), then the real bus::

    bus = open_bus(config)                 # smbus2.SMBus(config.i2c.bus), or the simulated chips
    bus = open_bus(config, simulate=True)  # the simulated chips, whatever the config says
    bus = open_bus(config, wait=True)      # a station: a missing /dev/i2c-N is retried, not fatal

    $ GYM_MONITOR_BUS=sim gym-monitor probe --config monitor.toml

A real bus that cannot be opened (I2C not enabled, the user not in the
``i2c`` group) raises :class:`BusUnavailable` with one line that says what to
do, or, with ``wait=True``, gives a :class:`LateBus` that opens it when it can.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from .clock import Clock, SimClock
from .config import Config
from .errors import ConfigError, MonitorError, SensorNotFound

log = logging.getLogger(__name__)

#: the environment variable that picks the bus when neither the caller nor the config does
BUS_ENV = "GYM_MONITOR_BUS"
BUS_KINDS = ("sim", "smbus")


class BusUnavailable(MonitorError, OSError):
    """``/dev/i2c-N`` cannot be opened; the message says how to enable it."""


def simulated(config: Config, simulate: bool | None = None) -> bool:
    """Whether :func:`open_bus` gives the simulated bus.

    ``simulate`` if given, else True if the config says so, else $GYM_MONITOR_BUS.
    """
    if simulate is not None:
        return simulate
    if config.station.simulate:
        return True
    kind = os.environ.get(BUS_ENV, "").strip().lower()
    if kind and kind not in BUS_KINDS:
        raise ConfigError(BUS_ENV, f"must be one of {', '.join(BUS_KINDS)}, not {kind!r}")
    return kind == "sim"


def open_bus(
    config: Config,
    *,
    simulate: bool | None = None,
    number: int | None = None,
    clock: Clock | None = None,
    wait: bool = False,
) -> Any:
    """The bus the config's chips are on; see the module docstring.

    ``number`` overrides ``config.i2c.bus``; ``clock`` drives the simulated
    chips (a new :class:`~monitor.clock.SimClock` by default); ``wait`` makes
    a missing real bus a :class:`LateBus` rather than an error.
    """
    if simulated(config, simulate):
        from .sim.rig import simulated_bus

        return simulated_bus(config, clock or SimClock())
    number = config.i2c.bus if number is None else number
    if wait:
        return LateBus(number)
    try:
        return _smbus(number)
    except OSError as err:
        raise BusUnavailable(unavailable(number, err)) from err


def unavailable(number: int, err: OSError) -> str:
    """What to say when ``/dev/i2c-<number>`` cannot be opened."""
    return (
        f"cannot open /dev/i2c-{number} ({err.strerror or err}): enable I2C with "
        "dtparam=i2c_arm=on (raspi-config) and add this user to the i2c group"
    )


class LateBus:
    """``/dev/i2c-N`` that may not be there yet (I2C not enabled, wrong group): opened when it is.

    Every transfer first tries to open the bus (at most once every ``retry_s``);
    until it opens, transfers raise :class:`~monitor.errors.SensorNotFound`, so
    each sensor slot reports a fault and retries as it does for a missing chip.
    The reason is logged once a minute, not once a second::

        bus = LateBus(1)             # never raises
        imu = Mpu6050(bus, ...)      # SensorNotFound until /dev/i2c-1 can be opened
    """

    def __init__(
        self,
        number: int,
        *,
        opener: Callable[[int], Any] | None = None,
        retry_s: float = 1.0,
        log_every_s: float = 60.0,
        monotonic: Callable[[], float] | None = None,
    ):
        self.number = number
        self._opener = opener or _smbus
        self._retry_s = retry_s
        self._log_every_s = log_every_s
        self._monotonic = monotonic or time.monotonic
        self._bus: Any = None
        self._next_try = float("-inf")
        self._last_log = float("-inf")
        self._missing_since: float | None = None
        self.problem: str | None = None
        self._try_open()

    @property
    def is_open(self) -> bool:
        return self._bus is not None

    def _try_open(self) -> Any:
        if self._bus is not None:
            return self._bus
        now = self._monotonic()
        if now >= self._next_try:
            self._next_try = now + self._retry_s
            try:
                self._bus = self._opener(self.number)
            except OSError as err:
                self.problem = unavailable(self.number, err)
                if self._missing_since is None:
                    self._missing_since = now
                if now - self._last_log >= self._log_every_s:
                    self._last_log = now
                    log.error("%s; retrying every %g s", self.problem, self._retry_s)
            else:
                if self._missing_since is not None:
                    log.warning(
                        "/dev/i2c-%d is open after %.0f s", self.number, now - self._missing_since
                    )
                self.problem, self._missing_since = None, None
        return self._bus

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        bus = self._try_open()
        if bus is None:
            if name == "close":
                return lambda: None
            if name not in _TRANSFERS:
                raise AttributeError(name)
            problem = self.problem

            def missing(*args: Any, **kwargs: Any) -> Any:
                raise SensorNotFound(problem or f"/dev/i2c-{self.number} is not open")

            return missing
        return getattr(bus, name)

    def close(self) -> None:
        if self._bus is not None:
            self._bus.close()
            self._bus = None


#: the smbus2.SMBus methods that move bytes (and so fail while the bus is missing)
_TRANSFERS = frozenset(
    {
        "read_byte_data",
        "write_byte_data",
        "read_i2c_block_data",
        "write_i2c_block_data",
        "read_word_data",
        "write_word_data",
        "read_byte",
        "write_byte",
        "i2c_rdwr",
    }
)


def _smbus(number: int) -> Any:
    from smbus2 import SMBus

    return SMBus(number)
