"""One exception root for the whole package.

Like gpiozero, each error also derives from the matching built-in, so callers
that only know Python's exceptions still catch them sensibly::

    try:
        imu = Mpu6050(bus)
    except SensorNotFound as err:   # also an OSError
        print(err)                  # says what to check: wiring, address, bus
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base of every error raised on purpose by this package."""


class SensorError(MonitorError, OSError):
    """A sensor could not be used. ``sensor`` names it for a fault alert."""

    def __init__(self, message: str, *, sensor: str = "", address: int | None = None):
        super().__init__(message)
        self.sensor = sensor
        self.address = address

    def __str__(self) -> str:  # OSError's own __str__ would show args oddly
        return self.args[0] if self.args else ""


class SensorNotFound(SensorError):
    """Nothing answered at the address, or something else did (wrong ID)."""


class SensorGone(SensorError):
    """A sensor that was working stopped answering and retries did not help."""


class SensorStuck(SensorError):
    """A sensor answers, but with data that cannot be real (constant or impossible)."""


class ConfigError(MonitorError, ValueError):
    """A configuration value is wrong. ``key`` names it."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem
