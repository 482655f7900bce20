"""Chip faults: seeded NACKs, EIO, brownouts, vanishing, stalls and stuck chips, one at a time."""

from __future__ import annotations

import errno
import random
from collections.abc import Callable
from dataclasses import dataclass

from monitor.config import Config

CHIP_FAULTS = ("nack", "eio", "brownout", "vanish", "stall", "stuck")


@dataclass
class ChipFault:
    """One injected chip fault and how long the station took to get data again.

    ``back_at`` is when the chip was usable again (the injection itself for a burst or a
    brownout, the end of the outage for a vanish or a stuck chip, the end of the stall);
    ``recovered_at`` the first step after it that got data from the chip. Simulated seconds.
    """

    kind: str
    station: str
    sensor: str
    at: float
    back_at: float
    recovered_at: float | None = None
    detail: str = ""

    @property
    def recovery_s(self) -> float | None:
        return None if self.recovered_at is None else self.recovered_at - self.back_at


@dataclass(frozen=True)
class Target:
    name: str  # the sensor's name, "scale" for the scale
    address: int
    is_scale: bool


class ChipChaos:
    """Seeded chip faults for one station, one at a time, in its simulated time.

    Call :meth:`before_cycle` before each ``runner.cycle()`` and :meth:`after_cycle`
    with the step after it. A fault is over once the target delivered data again;
    the next one comes an exponentially distributed while later (mean ``gap_s``).
    """

    GIVE_UP_S = 30.0

    def __init__(
        self,
        station: str,
        config: Config,
        bus,
        clock,
        rng: random.Random,
        gap_s: float,
        quick: bool = False,
        on_fault: Callable[[ChipFault], None] | None = None,
    ):
        self.station, self.bus, self.clock, self.rng = station, bus, clock, rng
        self.gap_s, self.quick = gap_s, quick
        self.targets = [Target(i.name, i.address, False) for i in config.imus]
        if config.scale is not None:
            self.targets.append(Target("scale", config.scale.address, True))
        self.rates = {i.name: i.rate_hz for i in config.imus}
        self.faults: list[ChipFault] = []
        self.enabled = True
        self.on_fault = on_fault
        self._current: ChipFault | None = None
        self._stuck: tuple[int, float] | None = None  # (address, when to restore it)
        self._next_at = clock.now() + rng.expovariate(1.0 / gap_s)

    def stop(self) -> None:
        """No new faults; a stuck chip is restored at once."""
        self.enabled = False
        if self._stuck is not None:
            self.bus.restore(self._stuck[0])
            self._stuck = None

    def before_cycle(self) -> None:
        now = self.clock.now()
        if self._stuck is not None and now >= self._stuck[1]:
            self.bus.restore(self._stuck[0])
            self._stuck = None
        if self._current is None and self.enabled and now >= self._next_at:
            self._inject(now)

    def after_cycle(self, step) -> None:
        fault = self._current
        if fault is None or step.t < fault.back_at:
            return
        if self._got_data(step, fault.sensor):
            fault.recovered_at = step.t
        elif step.t - fault.back_at < self.GIVE_UP_S:
            return
        self._finish(fault)

    # -- internals -----------------------------------------------------------
    def _finish(self, fault: ChipFault) -> None:
        self._current = None
        self._next_at = self.clock.now() + self.rng.expovariate(1.0 / self.gap_s)
        if self.on_fault is not None:
            self.on_fault(fault)

    @staticmethod
    def _got_data(step, sensor: str) -> bool:
        if sensor == "scale":
            return step.scale is not None
        return any(r.name == sensor and r.samples > 0 for r in step.sensors)

    def _inject(self, now: float) -> None:
        rng = self.rng
        kind = rng.choice(CHIP_FAULTS)
        imus = [t for t in self.targets if not t.is_scale]
        # A stall is the loop's fault, not a chip's: it shows on every IMU; watch the first.
        target = (
            imus[0] if kind == "stall" else rng.choice(imus if kind == "stuck" else self.targets)
        )
        back_at, detail = now, ""
        if kind in ("nack", "eio"):
            count = rng.randint(2, 12)
            code = errno.EREMOTEIO if kind == "nack" else errno.EIO
            self.bus.fail(target.address, count=count, code=code)
            detail = f"{count} transfers"
        elif kind == "brownout":
            self.bus.brownout(target.address)
        elif kind == "vanish":
            duration = rng.uniform(0.3, 3.0 if self.quick else 8.0)
            self.bus.vanish(target.address, duration=duration)
            back_at, detail = now + duration, f"{duration:.1f} s"
        elif kind == "stall":
            duration = rng.uniform(1.0, 4.0)  # the FIFOs hold 0.3-1.2 s here: they overflow
            self.clock.advance(duration)
            back_at, detail = self.clock.now(), f"{duration:.1f} s"
        else:
            duration = rng.uniform(1.0, 3.0 if self.quick else 6.0)
            self.bus.stick(target.address, rng.choice((0x00, 0xFF)))
            back_at = now + duration
            self._stuck = (target.address, back_at)
            detail = f"{duration:.1f} s"
        self._current = ChipFault(kind, self.station, target.name, now, back_at, detail=detail)
        self.faults.append(self._current)
