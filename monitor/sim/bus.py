"""SimBus: an ``smbus2.SMBus`` look-alike with simulated chips on it.

It routes each transfer to the chip attached at the address, answers an empty
address the way a real bus does (``OSError(EREMOTEIO)``, a NACK), enforces the
limits the kernel enforces (32-byte SMBus blocks, 8192-byte I2C_RDWR messages),
counts transactions and bytes on the wire, keeps a log of recent transfers,
and injects faults on demand::

    bus = SimBus()
    bus.attach(0x68, Mpu6050Sim(motion, clock=clock))
    bus.read_byte_data(0x68, 0x75)        # WHO_AM_I -> 0x68
    bus.stats.transactions, bus.stats.bytes
    bus.fail(0x68, count=3)               # the next 3 transfers NACK
    bus.vanish(0x68, duration=2.0)        # gone for 2 s of the chip's clock
    bus.brownout(0x68)                    # the chip resets itself
    bus.stick(0x68, value=0x00)           # reads return constant bytes

Bytes on the wire count what crosses SDA: one address byte per start or
repeated start, then the register and data bytes. An SMBus byte read is thus
4 bytes (address+W, register, address+R, data).
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from smbus2 import i2c_msg
from smbus2.smbus2 import I2C_M_RD

from ..clock import Clock
from .chip import SimChip

SMBUS_BLOCK_MAX = 32
I2C_RDWR_MAX_MSGS = 42
I2C_RDWR_MAX_LEN = 8192


def _oserror(code: int) -> OSError:
    return OSError(code, os.strerror(code))


@dataclass
class AddressStats:
    transactions: int = 0
    bytes: int = 0
    errors: int = 0


@dataclass
class BusStats:
    """Traffic on the bus since creation or the last :meth:`reset`."""

    transactions: int = 0
    bytes: int = 0
    errors: int = 0
    by_address: dict[int, AddressStats] = field(default_factory=dict)

    def count(self, address: int, nbytes: int, error: bool = False) -> None:
        per = self.by_address.get(address)
        if per is None:
            per = self.by_address[address] = AddressStats()
        self.transactions += 1
        per.transactions += 1
        self.bytes += nbytes
        per.bytes += nbytes
        if error:
            self.errors += 1
            per.errors += 1

    def reset(self) -> None:
        self.transactions = self.bytes = self.errors = 0
        self.by_address.clear()


@dataclass(frozen=True)
class Transfer:
    """One transaction as the log keeps it."""

    address: int
    kind: str
    register: int | None
    data: bytes
    wire_bytes: int
    error: int | None = None
    #: an i2c_rdwr transfer's messages as they crossed the wire:
    #: ("w", bytes written) or ("r", bytes read)
    messages: tuple[tuple[str, bytes], ...] = ()


@dataclass
class _Fault:
    kind: str  # "errno", "vanish", "stick"
    code: int = errno.EREMOTEIO
    count: int | None = None  # transfers left, None = no count limit
    until: float | None = None  # chip-clock time it ends, None = until cleared
    value: int = 0


class SimBus:
    """A simulated I2C bus; see the module docstring."""

    def __init__(
        self, bus: int | str | None = None, *, clock: Clock | None = None, log_size: int = 4096
    ):
        self.bus_id = bus
        self.clock = clock
        self.stats = BusStats()
        self.log: deque[Transfer] = deque(maxlen=log_size)
        self._chips: dict[int, SimChip] = {}
        self._faults: dict[int, list[_Fault]] = {}
        self._lock = threading.RLock()
        self.closed = False

    # -- wiring ------------------------------------------------------------
    def attach(self, address: int, chip: SimChip) -> SimChip:
        if not 0x03 <= address <= 0x77:
            raise ValueError(f"0x{address:02X} is not a 7-bit I2C device address")
        with self._lock:
            self._chips[address] = chip
        return chip

    def detach(self, address: int) -> SimChip | None:
        with self._lock:
            return self._chips.pop(address, None)

    def chip(self, address: int) -> SimChip:
        return self._chips[address]

    @property
    def addresses(self) -> list[int]:
        return sorted(self._chips)

    # -- fault injection -----------------------------------------------------
    def fail(self, address: int, *, count: int = 1, code: int = errno.EREMOTEIO) -> None:
        """The next ``count`` transfers to ``address`` fail with ``code`` (NACK by default)."""
        self._add_fault(address, _Fault("errno", code=code, count=count))

    def vanish(self, address: int, duration: float | None = None) -> None:
        """The chip stops answering (NACK).

        For ``duration`` s of clock time, or until :meth:`restore`.
        """
        self._add_fault(address, _Fault("vanish", until=self._until(address, duration)))

    def stick(self, address: int, value: int = 0x00, duration: float | None = None) -> None:
        """The chip ACKs but every byte read is ``value`` and writes are lost."""
        self._add_fault(
            address, _Fault("stick", value=value & 0xFF, until=self._until(address, duration))
        )

    def brownout(self, address: int) -> None:
        """The chip resets itself to power-on values, as after a supply dip."""
        self._chips[address].power_on_reset()

    def restore(self, address: int | None = None) -> None:
        """Clear injected faults (at one address, or everywhere)."""
        with self._lock:
            if address is None:
                self._faults.clear()
            else:
                self._faults.pop(address, None)

    def _until(self, address: int, duration: float | None) -> float | None:
        if duration is None:
            return None
        clock = self.clock or self._chips[address].clock
        return clock.now() + duration

    def _add_fault(self, address: int, fault: _Fault) -> None:
        with self._lock:
            self._faults.setdefault(address, []).append(fault)

    def _active_fault(self, address: int) -> _Fault | None:
        faults = self._faults.get(address)
        if not faults:
            return None
        chip = self._chips.get(address)
        clock = self.clock or (chip.clock if chip else None)
        now = clock.now() if clock else None
        for fault in list(faults):
            if fault.until is not None and now is not None and now >= fault.until:
                faults.remove(fault)
                continue
            if fault.count is not None:
                fault.count -= 1
                if fault.count <= 0:
                    faults.remove(fault)
            return fault
        return None

    # -- the transaction core ----------------------------------------------------
    def _transact(
        self,
        address: int,
        kind: str,
        register: int | None,
        wire_bytes: int,
        op,
        messages: list | None = None,
    ):
        """Run ``op(chip)`` as one transaction at ``address``, with faults and accounting.

        ``messages``, when given, is filled by ``op`` and logged with the transfer."""
        if self.closed:
            raise _oserror(errno.EBADF)
        with self._lock:
            chip = self._chips.get(address)
            fault = self._active_fault(address)
            error = None
            if chip is None or (fault is not None and fault.kind == "vanish"):
                error = errno.EREMOTEIO
            elif fault is not None and fault.kind == "errno":
                error = fault.code
            if error is not None:
                # A NACK ends the transaction after the address byte.
                self.stats.count(address, 1, error=True)
                if self.log.maxlen != 0:
                    self.log.append(Transfer(address, kind, register, b"", 1, error))
                raise _oserror(error)
            if fault is not None and fault.kind == "stick":
                data = op(_StuckChip(fault.value))
            else:
                data = op(chip)
            self.stats.count(address, wire_bytes)
            if self.log.maxlen != 0:  # a benchmark turns the log off (log_size=0)
                self.log.append(
                    Transfer(
                        address,
                        kind,
                        register,
                        bytes(data or b""),
                        wire_bytes,
                        messages=tuple(messages or ()),
                    )
                )
            return data

    # -- smbus2.SMBus interface ----------------------------------------------
    def read_byte_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        return self._transact(
            i2c_addr, "read_byte_data", register, 4, lambda c: c.read(register, 1)
        )[0]

    def write_byte_data(
        self, i2c_addr: int, register: int, value: int, force: bool | None = None
    ) -> None:
        data = bytes((value & 0xFF,))
        self._transact(
            i2c_addr, "write_byte_data", register, 3, lambda c: c.write(register, data) or data
        )

    def read_word_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        data = self._transact(
            i2c_addr, "read_word_data", register, 5, lambda c: c.read(register, 2)
        )
        return data[0] | (data[1] << 8)  # SMBus words are little-endian on the wire

    def write_word_data(
        self, i2c_addr: int, register: int, value: int, force: bool | None = None
    ) -> None:
        data = bytes((value & 0xFF, (value >> 8) & 0xFF))
        self._transact(
            i2c_addr, "write_word_data", register, 4, lambda c: c.write(register, data) or data
        )

    def read_byte(self, i2c_addr: int, force: bool | None = None) -> int:
        return self._transact(i2c_addr, "read_byte", None, 2, lambda c: c.read_current(1))[0]

    def write_byte(self, i2c_addr: int, value: int, force: bool | None = None) -> None:
        # A lone byte sets the register pointer, which is how most chips treat it.
        def op(c):
            c.pointer = value & 0xFF
            return bytes((value & 0xFF,))

        self._transact(i2c_addr, "write_byte", None, 2, op)

    def write_quick(self, i2c_addr: int, force: bool | None = None) -> None:
        self._transact(i2c_addr, "write_quick", None, 1, lambda c: b"")

    def read_i2c_block_data(
        self, i2c_addr: int, register: int, length: int, force: bool | None = None
    ) -> list[int]:
        if length > SMBUS_BLOCK_MAX:
            raise ValueError(f"Desired block length over {SMBUS_BLOCK_MAX} bytes")
        if length < 0:
            raise ValueError("length must not be negative")
        data = self._transact(
            i2c_addr,
            "read_i2c_block_data",
            register,
            3 + length,
            lambda c: c.read(register, length),
        )
        return list(data)

    def write_i2c_block_data(
        self, i2c_addr: int, register: int, data: Iterable[int], force: bool | None = None
    ) -> None:
        payload = bytes(int(b) & 0xFF for b in data)
        if len(payload) > SMBUS_BLOCK_MAX:
            raise ValueError(f"Data length cannot exceed {SMBUS_BLOCK_MAX} bytes")
        self._transact(
            i2c_addr,
            "write_i2c_block_data",
            register,
            2 + len(payload),
            lambda c: c.write(register, payload) or payload,
        )

    def i2c_rdwr(self, *i2c_msgs: i2c_msg) -> None:
        """Combined transfer: messages joined by repeated starts, as one transaction.

        A register chip takes a write's first byte as the register pointer. A chip
        that speaks in frames rather than registers (the PN532) has ``i2c_write(data)``,
        which is handed each written message whole; reads go to ``read_current``.
        """
        if not 1 <= len(i2c_msgs) <= I2C_RDWR_MAX_MSGS:
            raise _oserror(errno.EINVAL)
        addresses = {m.addr for m in i2c_msgs}
        if len(addresses) != 1:
            # Legal on a real bus, but no driver here needs it; refuse loudly.
            raise _oserror(errno.EOPNOTSUPP)
        if any(m.len > I2C_RDWR_MAX_LEN for m in i2c_msgs):
            raise _oserror(errno.EINVAL)
        address = addresses.pop()
        wire = sum(1 + m.len for m in i2c_msgs)
        first = i2c_msgs[0]
        framed = callable(getattr(self._chips.get(address), "i2c_write", None))
        register = (
            first.buf[0][0] if not first.flags & I2C_M_RD and first.len and not framed else None
        )
        messages: list[tuple[str, bytes]] = []

        def op(c):
            got = bytearray()
            raw_write = getattr(c, "i2c_write", None)
            for m in i2c_msgs:
                if m.flags & I2C_M_RD:
                    data = c.read_current(m.len) if m.len else b""
                    ctypes.memmove(m.buf, data, m.len)
                    got += data
                    messages.append(("r", bytes(data)))
                elif m.len:
                    payload = ctypes.string_at(m.buf, m.len)
                    messages.append(("w", payload))
                    if callable(raw_write):
                        raw_write(payload)
                        got += payload
                        continue
                    c.pointer = payload[0]
                    if m.len > 1:
                        c.write(payload[0], payload[1:])
                        got += payload[1:]
                else:
                    messages.append(("w", b""))
            return bytes(got)

        self._transact(address, "i2c_rdwr", register, wire, op, messages)

    # -- lifecycle ---------------------------------------------------------
    def close(self) -> None:
        self.closed = True

    def open(self, bus: int | str | None = None) -> None:
        self.closed = False

    def __enter__(self) -> SimBus:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        chips = ", ".join(f"0x{a:02X}: {type(c).__name__}" for a, c in sorted(self._chips.items()))
        return f"<SimBus {{{chips}}}>"


class _StuckChip:
    """What a stuck chip looks like from the bus: constant bytes, writes lost."""

    def __init__(self, value: int):
        self.value = value
        self.pointer = 0

    def read(self, register: int, length: int) -> bytes:
        return bytes((self.value,)) * length

    def read_current(self, length: int) -> bytes:
        return bytes((self.value,)) * length

    def write(self, register: int, data: bytes) -> None:
        return None
