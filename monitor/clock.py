"""The one clock that acquisition and analysis share.

A station only ever asks a clock for :meth:`~Clock.now` and :meth:`~Clock.sleep`.
On a Pi that is :class:`RealClock`; in tests, benchmarks and the demo a
:class:`SimClock` lets an hour of gym run in seconds, and the simulated chips
fill their FIFOs from the same clock, so "time" is consistent everywhere::

    clock = SimClock()
    clock.sleep(0.1)        # returns at once; now() is 0.1 s later
    clock.advance(3600)     # an hour passes
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def now(self) -> float:
        """Seconds, monotonic. Only differences are meaningful."""

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""

    def wall(self) -> float:
        """Unix time for timestamps people and other systems read."""


class RealClock:
    """The machine's monotonic clock; what a station on a Pi runs on.

    ``speed`` > 1 runs time faster than the wall (a demo that shows a whole
    session in minutes); ``now()`` counts from the clock's creation.
    """

    def __init__(self, speed: float = 1.0):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = float(speed)
        self._origin = time.monotonic()
        self._wall_origin = time.time()

    def now(self) -> float:
        return (time.monotonic() - self._origin) * self.speed

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.speed)

    def wall(self) -> float:
        if self.speed == 1.0:
            return time.time()
        return self._wall_origin + self.now()

    def __repr__(self) -> str:
        return f"RealClock(speed={self.speed:g})" if self.speed != 1 else "RealClock()"


class SimClock:
    """Simulated time that moves only when told to.

    ``sleep(dt)`` advances the clock by ``dt`` and returns immediately, so code
    written for real time runs as fast as the CPU allows. ``start`` sets the
    initial reading; ``epoch`` is the Unix time that reading corresponds to, for
    :meth:`wall`.
    """

    def __init__(self, start: float = 0.0, *, epoch: float | None = None):
        self._t = float(start)
        self._epoch = time.time() - self._t if epoch is None else float(epoch)
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._t

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.advance(seconds)

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._t += seconds
            return self._t

    def wall(self) -> float:
        return self._epoch + self._t

    def __repr__(self) -> str:
        return f"SimClock(t={self._t:.6f})"
