"""What every FIFO IMU driver shares, so a station does not care which chip it has.

A driver subclass knows its registers; this base knows the rest: sample blocks
with a timestamp per sample, counting samples lost to overflow or faults,
noticing a chip that reset itself, and recovering from faults on the next read::

    imu = Mpu6050(bus, address=0x68, rate_hz=1000, range_g=4)
    while True:
        block = imu.read()        # everything the FIFO held; block.t, block.accel
        clock.sleep(imu.poll_interval)

``read`` never blocks for long: at worst a few bounded retries. When a chip is
gone or stuck it raises a :class:`~monitor.errors.SensorError`; the next call
tries to bring the chip back (probe, reconfigure) before reading again.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..clock import Clock
from ..errors import SensorStuck
from .chip import Chip, ChipStats
from .device import Bus, RetryPolicy


@dataclass(frozen=True, eq=False)
class SampleBlock:
    """Samples drained from a FIFO in one read.

    ``t`` is (N,) seconds on the station clock, ``accel`` (N, 3) m/s^2 with
    gravity, ``gyro`` (N, 3) rad/s or None, ``lost`` the number of samples
    known to be missing just before this block (overflow, resets, faults).
    """

    t: np.ndarray
    accel: np.ndarray
    gyro: np.ndarray | None = None
    lost: int = 0
    sensor: str = ""

    def __len__(self) -> int:
        return len(self.t)

    @classmethod
    def empty(cls, *, gyro: bool = False, lost: int = 0, sensor: str = "") -> SampleBlock:
        return cls(np.empty(0), np.empty((0, 3)), np.empty((0, 3)) if gyro else None, lost, sensor)


@dataclass
class ImuStats(ChipStats):
    samples: int = 0
    lost: int = 0
    fifo_resets: int = 0
    reconfigurations: int = 0


class Imu(Chip, ABC):
    """Base of the FIFO IMU drivers. Subclasses fill in the chip specifics.

    Besides the :class:`~monitor.i2c.chip.Chip` facts, a driver declares the
    ranges it offers (``RANGES_G``, from its register map), the rates it runs
    at (:meth:`rate_for`, described for people by ``RATES``) and its FIFO size.
    """

    CHIP: ClassVar[str] = "IMU"
    ID_REGISTER: ClassVar[str | None] = "WHO_AM_I"
    #: full scales in g, from the register map
    RANGES_G: ClassVar[tuple[int, ...]]
    #: the rates the chip runs at, as a config error says them
    RATES: ClassVar[str]
    #: the FIFO's size in bytes (a driver corrects it once WHO_AM_I names the part)
    FIFO_BYTES: int = 1024
    #: a block this long with no variation at all cannot come from a real sensor
    STUCK_SAMPLES: ClassVar[int] = 64

    stats: ImuStats

    def __init__(
        self,
        bus: Bus,
        address: int,
        *,
        rate_hz: float,
        range_g: int = 4,
        gyro: bool = False,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
        name: str | None = None,
        bus_name: str | int | None = None,
    ):
        super().__init__(bus, address, clock=clock, retry=retry, name=name, bus_name=bus_name)
        if range_g not in self.RANGES_G:
            raise ValueError(f"range_g must be one of {self.RANGES_G}, not {range_g!r}")
        rate = self.rate_for(rate_hz)
        if rate is None:
            raise ValueError(f"rate_hz cannot be {rate_hz!r}: {self.RATES}")
        self.range_g = int(range_g)
        self.gyro_enabled = bool(gyro)
        self.rate_hz = rate
        self.stats = ImuStats()
        self._period = 1.0 / self.rate_hz
        self._next_t: float | None = None
        self._last_t: float | None = None
        self._last_read: float | None = None
        self._recover()
        self._healthy = True

    # -- facts, asked without a chip -----------------------------------------------
    @classmethod
    @abstractmethod
    def rate_for(cls, rate_hz: float) -> float | None:
        """The rate the chip really runs at when asked for ``rate_hz``; None if it cannot."""

    @classmethod
    def check_rate(cls, rate_hz: float) -> str | None:
        """None if the chip can run at ``rate_hz``, else the rates it can (for a config error)."""
        return None if cls.rate_for(rate_hz) is not None else cls.RATES

    # -- what subclasses provide --------------------------------------------
    @abstractmethod
    def _identify(self) -> None:
        """Raise SensorNotFound unless the right chip answers."""

    @abstractmethod
    def _configure(self) -> None:
        """Reset and configure the chip, leaving its FIFO empty and running."""

    @abstractmethod
    def _configured(self) -> bool:
        """True while the chip still holds our configuration (False after a brown-out)."""

    @abstractmethod
    def _drain(self) -> tuple[np.ndarray, np.ndarray | None, int]:
        """Read what the FIFO holds.

        Returns (accel counts (N,3), gyro counts or None, samples discarded).
        """

    @abstractmethod
    def _accel_scale(self) -> float:
        """m/s^2 per count at the configured range."""

    def _gyro_scale(self) -> float:
        raise NotImplementedError

    # -- public ------------------------------------------------------------
    @property
    def datum_bytes(self) -> int:
        """Bytes one sample occupies in the FIFO."""
        return 12 if self.gyro_enabled else 6

    @property
    def fifo_seconds(self) -> float:
        """How long the FIFO takes to fill at the configured rate."""
        return self.FIFO_BYTES / self.datum_bytes / self.rate_hz

    @property
    def poll_interval(self) -> float:
        """A read interval that keeps the FIFO clear of overflow.

        At most 60 % full, at most 10 reads/s.

        Fewer, longer reads cost fewer bytes of addressing per sample; 60 % leaves
        the rest of the FIFO for a late loop iteration.
        """
        return min(0.1, 0.6 * self.fifo_seconds)

    def read(self) -> SampleBlock:
        """Drain the FIFO into a :class:`SampleBlock`; see the module docstring."""
        return self._guarded(self._read_block)

    # -- internals ------------------------------------------------------------
    def _read_block(self) -> SampleBlock:
        accel, gyro, discarded = self._drain()
        now = self.clock.now()
        n = len(accel)
        if n == 0 and self._overdue(now) and not self._configured():
            # FIFO silent and our settings gone: the chip reset itself (or
            # something else answers now, which _identify refuses).
            self.stats.reconfigurations += 1
            self._identify()
            self._configure()
            self._restart_timeline()
            return SampleBlock.empty(gyro=self.gyro_enabled, sensor=self.name)
        if n >= self.STUCK_SAMPLES and not np.ptp(accel, axis=0).any():
            raise SensorStuck(
                f"{self.name} returns constant data: it is stuck; "
                "power-cycle it or check its supply",
                sensor=self.name,
                address=self.address,
            )
        lost = 0
        if discarded:
            # Everything since the last sample delivered is gone: what the FIFO held
            # and what overflowed before. Counted here, at the reset, so a loop that
            # is always too slow (and so never delivers) is still seen losing samples;
            # later gaps are measured from the reset.
            self.stats.fifo_resets += 1
            if (
                self._last_t is not None
            ):  # before the first delivery there was no stream to lose from
                lost = max(discarded, round((now - self._last_t) * self.rate_hz))
            self._restart_timeline()
            self._last_t = now
        if n:
            self._last_read = now
        t, gap_lost = self._timestamps(n, now)
        lost += gap_lost
        self.stats.samples += n
        self.stats.lost += lost
        accel_si = accel * self._accel_scale()
        gyro_si = gyro * self._gyro_scale() if gyro is not None else None
        return SampleBlock(t, accel_si, gyro_si, lost, self.name)

    def _recover(self) -> None:
        self._identify()
        self._configure()
        self._restart_timeline()

    def _after_fault(self) -> None:
        self._restart_timeline()

    def _overdue(self, now: float) -> bool:
        since = self._last_read if self._last_read is not None else None
        return since is not None and now - since > max(4 * self._period, 0.05)

    def _restart_timeline(self) -> None:
        # The next sample's time is unknown until the next read anchors it.
        self._next_t = None
        self._last_read = self.clock.now()

    def _timestamps(self, n: int, now: float) -> tuple[np.ndarray, int]:
        """Times for ``n`` samples read at ``now``; and how many were lost since the last ones.

        The chip's clock runs at the nominal period (within its oscillator's
        tolerance); the last sample in the FIFO is at most one period old when
        read. Timestamps continue the previous block's grid while it agrees with
        ``now``, and re-anchor on ``now`` when it does not (after a reset, an
        overflow, or a stall), counting the gap as lost samples.
        """
        if n == 0:
            return np.empty(0), 0
        p = self._period
        lost = 0
        if self._next_t is not None:
            last = self._next_t + (n - 1) * p
            error = now - last
            if -2 * p <= error <= max(8 * p, 0.02):
                # The newest sample is at most one period old when read. Only when
                # the grid says otherwise (the chip's oscillator is off nominal) is
                # it moved, and only by the excess, so samples stay evenly spaced.
                if error < 0:
                    self._next_t += error
                elif error > p:
                    self._next_t += error - p
                start = self._next_t
            else:
                start = None
        else:
            start = None
        if start is None:
            start = now - (n - 0.5) * p
            if self._last_t is not None:
                lost = max(0, math.floor((start - self._last_t) / p + 0.5) - 1)
        t = start + p * np.arange(n)
        self._next_t = float(t[-1] + p)
        self._last_t = float(t[-1])
        return t, lost
