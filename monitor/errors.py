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

    @property
    def errors(self) -> list[ConfigError]:
        """Each mistake (here just this one); :class:`ConfigErrors` has several."""
        return [self]


class ConfigErrors(ConfigError):
    """Several configuration values are wrong: one line per mistake, each naming its key.

    ``key`` and ``problem`` are the first mistake's, so code that expects one
    ConfigError still gets a sensible one::

        try:
            load("monitor.toml")
        except ConfigError as err:
            for each in err.errors:
                print(each)            # "imu[0].rate_hz: must be ...", then the next
    """

    def __init__(self, errors: list[ConfigError]):
        flat = [e for err in errors for e in err.errors]
        MonitorError.__init__(self, "\n".join(str(e) for e in flat))
        self.key = flat[0].key
        self.problem = flat[0].problem
        self._errors = flat

    @property
    def errors(self) -> list[ConfigError]:
        return list(self._errors)

    @classmethod
    def of(cls, errors: list[ConfigError]) -> ConfigError:
        """One ConfigError for one mistake, a ConfigErrors for more."""
        return errors[0] if len(errors) == 1 else cls(errors)


class ErrorLog:
    """Logs an unexpected exception in full the first time, then once a minute with a count.

    For loops that must survive anything (the station's cycle, its outputs):
    the first traceback is what a person needs, and a fault that repeats ten
    times a second must not flood the journal::

        errors = ErrorLog(log)
        try:
            publish(step)
        except Exception:
            errors("publishing a step")      # call inside the except block
    """

    def __init__(self, logger, every_s: float = 60.0):
        import time

        self._log = logger
        self._every_s = every_s
        self._clock = time.monotonic
        self._last: dict[str, float] = {}
        self._since: dict[str, int] = {}
        self.count = 0

    def __call__(self, what: str) -> None:
        self.count += 1
        now = self._clock()
        last = self._last.get(what)
        if last is None:
            self._last[what] = now
            self._since[what] = 0
            self._log.error("%s failed; carrying on", what, exc_info=True)
        elif now - last >= self._every_s:
            self._last[what] = now
            repeats, self._since[what] = self._since[what] + 1, 0
            self._log.error(
                "%s failed again (%d time(s) in the last %.0f s); carrying on",
                what,
                repeats,
                now - last,
                exc_info=True,
            )
        else:
            self._since[what] += 1
