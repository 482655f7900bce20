"""One chip at one address: retried transfers and register access by name.

smbus2 does no retries, and a gym is electrically noisy (long leads, motors),
so every transfer goes through :meth:`I2CDevice.transfer`, which retries the
errors a flaky bus produces with a short, bounded backoff and then gives up
with a :class:`~monitor.errors.SensorGone` that names the chip. Nothing here
can hang: the worst case is ``attempts`` tries and a few milliseconds of sleep.

Several chips share one bus, possibly from several threads, so transfers on a
bus are serialised by one lock per bus object.
"""

from __future__ import annotations

import errno
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from smbus2 import i2c_msg

from ..clock import Clock, RealClock
from ..errors import SensorGone
from .registers import RegisterMap, Values

T = TypeVar("T")

#: What a NACK, a stretched clock or a glitch looks like from i2c-dev.
TRANSIENT_ERRNOS = frozenset(
    {errno.EREMOTEIO, errno.ETIMEDOUT, errno.EIO, errno.EAGAIN, errno.ENXIO}
)

#: What an adapter says when it cannot do combined (I2C_RDWR) transfers.
UNSUPPORTED_ERRNOS = frozenset({errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL})

#: The kernel's i2c-dev limit on one message of an I2C_RDWR transfer.
I2C_RDWR_MAX_LEN = 8192
SMBUS_BLOCK_MAX = 32


class Bus(Protocol):
    """What drivers need of a bus: the subset of ``smbus2.SMBus`` they use."""

    def read_byte_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int: ...
    def write_byte_data(
        self, i2c_addr: int, register: int, value: int, force: bool | None = None
    ) -> None: ...
    def read_i2c_block_data(
        self, i2c_addr: int, register: int, length: int, force: bool | None = None
    ) -> list[int]: ...
    def write_i2c_block_data(
        self, i2c_addr: int, register: int, data: list[int], force: bool | None = None
    ) -> None: ...
    def i2c_rdwr(self, *i2c_msgs: i2c_msg) -> None: ...


_bus_locks: weakref.WeakKeyDictionary[Any, threading.RLock] = weakref.WeakKeyDictionary()
_bus_locks_guard = threading.Lock()


def bus_lock(bus: Any) -> threading.RLock:
    """The lock shared by every device on ``bus``."""
    with _bus_locks_guard:
        lock = _bus_locks.get(bus)
        if lock is None:
            lock = _bus_locks[bus] = threading.RLock()
        return lock


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before calling a chip gone.

    The defaults give up after 4 tries and at most 1+2+4 = 7 ms of backoff,
    short enough that a 1 kHz FIFO never overflows while we wait.
    """

    attempts: int = 4
    first_delay_s: float = 0.001
    max_delay_s: float = 0.010

    def delays(self):
        delay = self.first_delay_s
        for _ in range(self.attempts - 1):
            yield delay
            delay = min(delay * 2, self.max_delay_s)


@dataclass
class DeviceStats:
    transfers: int = 0
    retries: int = 0
    failures: int = 0


class I2CDevice:
    """A chip at ``address`` on ``bus``, its registers known by name.

    ``name`` is what error messages and alerts call the chip, e.g. "MPU-6050 at
    0x68 on bus 1". ``clock`` is used for backoff sleeps so simulated time stays
    consistent.
    """

    def __init__(
        self,
        bus: Bus,
        address: int,
        registers: RegisterMap,
        *,
        name: str,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
    ):
        if not 0x03 <= address <= 0x77:
            raise ValueError(f"0x{address:02X} is not a 7-bit I2C device address")
        self.bus = bus
        self.address = address
        self.registers = registers
        self.name = name
        self.clock = clock or RealClock()
        self.retry = retry or RetryPolicy()
        self.stats = DeviceStats()
        self._lock = bus_lock(bus)
        self._rdwr = hasattr(bus, "i2c_rdwr")

    # -- transfers -------------------------------------------------------
    def transfer(self, fn: Callable[..., T], *args: Any) -> T:
        """Call ``fn(*args)`` on the bus, retrying transient errors with backoff."""
        delays = self.retry.delays()
        while True:
            try:
                with self._lock:
                    self.stats.transfers += 1
                    return fn(*args)
            except OSError as err:
                if err.errno not in TRANSIENT_ERRNOS:
                    raise
                delay = next(delays, None)
                if delay is None:
                    self.stats.failures += 1
                    raise SensorGone(
                        f"{self.name} stopped answering ({err.strerror or err}) after "
                        f"{self.retry.attempts} tries: check its wiring and power",
                        sensor=self.name,
                        address=self.address,
                    ) from err
                self.stats.retries += 1
                self.clock.sleep(delay)

    def read_bytes(self, register: int, length: int) -> bytes:
        """``length`` bytes from ``register`` on, in as few transactions as the bus allows.

        One combined I2C_RDWR transfer (register write, repeated start, read)
        when the adapter supports it; otherwise SMBus block reads of up to 32
        bytes, which is all the SMBus protocol allows.
        """
        if length <= 0:
            return b""
        if self._rdwr and length <= I2C_RDWR_MAX_LEN:
            try:
                return self.transfer(self._rdwr_read, register, length)
            except OSError as err:
                if err.errno not in UNSUPPORTED_ERRNOS:
                    raise
                self._rdwr = False  # this adapter cannot; stop asking
        out = bytearray()
        while len(out) < length:
            n = min(SMBUS_BLOCK_MAX, length - len(out))
            out += bytes(self.transfer(self.bus.read_i2c_block_data, self.address, register, n))
        return bytes(out)

    def _rdwr_read(self, register: int, length: int) -> bytes:
        write = i2c_msg.write(self.address, [register])
        read = i2c_msg.read(self.address, length)
        self.bus.i2c_rdwr(write, read)
        return bytes(read)

    def read_byte(self, register: int) -> int:
        return self.transfer(self.bus.read_byte_data, self.address, register)

    def write_byte(self, register: int, value: int) -> None:
        self.transfer(self.bus.write_byte_data, self.address, register, value & 0xFF)

    # -- registers by name -------------------------------------------------
    # Whole registers are read() and write()n as raw values; fields are get() and
    # set() by name, the way the datasheet tables them. set() writes the register
    # whole (bits not named are written 0), which is right for a register the
    # driver owns and costs no read; update() reads first and keeps the other bits.

    def read(self, name: str) -> int:
        """A register's raw value (a multi-byte register in one burst)."""
        reg = self.registers[name]
        if reg.size == 1:
            return self.read_byte(reg.address)
        return reg.from_bytes(self.read_bytes(reg.address, reg.size))

    def write(self, name: str, value: int) -> None:
        """Write a whole register's raw value."""
        reg = self.registers[name]
        if reg.read_only:
            raise ValueError(f"{reg.name} is read-only")
        if reg.size == 1:
            self.write_byte(reg.address, value)
        else:
            self.transfer(
                self.bus.write_i2c_block_data, self.address, reg.address, list(reg.to_bytes(value))
            )

    def read_burst(self, name: str, length: int) -> bytes:
        """``length`` bytes from register ``name`` on.

        A run of registers, or a FIFO port drained.
        """
        return self.read_bytes(self.registers[name].address, length)

    def get(self, name: str) -> Values:
        """Read and decode a register: ``dev.get("PWR_MGMT_1").sleep``."""
        return self.registers.decode(name, self.read(name))

    def set(self, name: str, **fields: Any) -> int:
        """Write the register with exactly ``fields`` set, every other bit 0; returns the value.

        dev.set("USER_CTRL", fifo_en=True)          # one write of 0x40
        """
        value = self.registers.value(name, **fields)
        self.write(name, value)
        return value

    def update(self, name: str, **fields: Any) -> int:
        """Change ``fields``, keep the register's other bits (read-modify-write); return the value.

        The read is skipped when ``fields`` cover every bit of the register.
        """
        base = 0 if self.registers.covers(name, fields) else self.read(name)
        value = self.registers.encode(name, base, **fields)
        self.write(name, value)
        return value

    def __repr__(self) -> str:
        return f"<I2CDevice {self.name}>"
