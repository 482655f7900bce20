"""Simulated stations on a real broker, cycled by one thread: for tests and benches.

Each station is the runner ``gym-monitor run`` uses, on simulated chips and a
simulated clock; :class:`StationDriver` steps them all from one thread,
``speed`` simulated seconds per real second (1.0: as a gym would run)::

    driver = StationDriver(speed=1.0).start()
    driver.add("bench-a", config)            # StationRunner(config).start(), then cycled
    driver.remove("bench-a")                 # runner.stop(): "offline", a clean disconnect
    driver.close()
"""

from __future__ import annotations

import threading
import time
from typing import Any

from monitor.clock import SimClock
from monitor.runner import StationRunner

#: Simulated seconds per station cycle (the runner's own poll interval is about this).
STEP_S = 0.1


class StationDriver:
    """Runs StationRunners on simulated clocks from one thread."""

    def __init__(self, speed: float = 1.0):
        self.speed = speed
        self.runners: dict[str, StationRunner] = {}
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="stations", daemon=True)

    def start(self) -> StationDriver:
        self._thread.start()
        return self

    def add(self, name: str, config: Any, **kwargs: Any) -> StationRunner:
        from gpiozero.pins.mock import MockFactory

        clock = SimClock()  # its wall() starts at the real time now
        runner = StationRunner(
            config, simulate=True, clock=clock, pin_factory=MockFactory(), **kwargs
        )
        runner.start()
        with self._lock:
            self.runners[name] = runner
        return runner

    def remove(self, name: str) -> None:
        with self._lock:
            runner = self.runners.pop(name, None)
        if runner is not None:
            runner.stop()

    def _loop(self) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            with self._lock:
                runners = list(self.runners.items())
            for name, runner in runners:
                try:
                    runner.cycle()
                    runner.clock.sleep(STEP_S)
                except Exception as err:
                    self.errors.append(f"{name}: {err!r}")
            pause = STEP_S / self.speed - (time.monotonic() - t0)
            self._stop.wait(max(pause, 0.001))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for name in list(self.runners):
            self.remove(name)
