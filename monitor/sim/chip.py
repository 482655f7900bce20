"""The base of every simulated chip: a register file behind an address pointer.

A chip on I2C is a register pointer and a bank of registers. A write sets the
pointer and stores bytes from there on; a read returns bytes from the pointer
on, the pointer auto-incrementing after each byte. Subclasses model what makes
each chip itself: reset values, read-only status bits, and FIFO registers that
do not increment and pop a queue instead.

Every write is recorded in :attr:`SimChip.writes` (time, register, value) so
tests can assert that a driver configured the chip the way the datasheet says,
the class of bug that lets a ``reset()`` that writes nothing go unnoticed.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from ..clock import Clock, SimClock

_NO_TIMES = np.empty(0)


class SampleClock:
    """A chip's own sample clock: which sample times have passed since it was last asked.

    Sensors sample on their own oscillator, whether anyone reads them or not;
    the simulated chips ask this when the bus touches them::

        times, skipped = clock.due(now, rate_hz, keep=170)

    After a long stall only the newest ``keep`` samples matter (a FIFO holds
    no more), so older ones are counted as ``skipped`` rather than computed.
    """

    def __init__(self) -> None:
        self.next_t: float | None = None

    def restart(self, now: float | None = None, rate: float | None = None) -> None:
        """Stop; or start now, the first sample one period later."""
        self.next_t = now + 1.0 / rate if now is not None and rate else None

    def due(self, now: float, rate: float, keep: int) -> tuple[np.ndarray, int]:
        period = 1.0 / rate
        if self.next_t is None:
            self.next_t = now + period
            return _NO_TIMES, 0
        if now < self.next_t:
            return _NO_TIMES, 0
        n = math.floor((now - self.next_t) / period) + 1
        first = self.next_t
        self.next_t = first + n * period
        k = min(n, keep)
        return first + period * np.arange(n - k, n), n - k


@dataclass(frozen=True)
class Write:
    t: float
    register: int
    value: int


class SimChip:
    """A register-level chip model. Subclasses set ``RESET`` and override hooks."""

    #: register -> value after power-on or reset
    RESET: Mapping[int, int] = MappingProxyType({})
    #: registers a write from the bus must not change
    READ_ONLY: frozenset[int] = frozenset()
    name = "chip"

    def __init__(self, *, clock: Clock | None = None, write_log: int = 4096):
        self.clock = clock or SimClock()
        self.regs = bytearray(256)
        self.pointer = 0
        self.writes: deque[Write] = deque(maxlen=write_log)
        self.resets = 0
        self.power_on_reset()

    # -- what the bus calls ------------------------------------------------
    def read(self, register: int, length: int) -> bytes:
        self.pointer = register & 0xFF
        return self.read_current(length)

    def read_current(self, length: int) -> bytes:
        """Read from where the pointer is (a read with no register write first)."""
        self.update(self.clock.now())
        first = self.read_block(self.pointer, length)
        if len(first) == length:  # a FIFO burst comes back whole
            return first
        out = bytearray(first)
        while len(out) < length:
            chunk = self.read_block(self.pointer, length - len(out))
            out += chunk
        return bytes(out)

    def write(self, register: int, data: bytes) -> None:
        self.update(self.clock.now())
        self.pointer = register & 0xFF
        t = self.clock.now()
        for value in data:
            self.writes.append(Write(t, self.pointer, value))
            if self.pointer not in self.READ_ONLY:
                old = self.regs[self.pointer]
                self.regs[self.pointer] = value
                self.on_write(self.pointer, value, old)
            self.pointer = self.next_pointer(self.pointer)

    # -- hooks for subclasses ----------------------------------------------
    def read_block(self, register: int, length: int) -> bytes:
        """Return 1..length bytes starting at ``register`` and move the pointer.

        The default reads one plain register. FIFO registers override this to
        return many bytes at once, which keeps an hour at 1 kHz fast to simulate.
        """
        value = self.read_register(register)
        self.pointer = self.next_pointer(register)
        return bytes((value,))

    def read_register(self, register: int) -> int:
        return self.regs[register]

    def next_pointer(self, register: int) -> int:
        return (register + 1) & 0xFF

    def on_write(self, register: int, value: int, old: int) -> None:
        """React to a register write (soft reset bits, FIFO reset, mode changes)."""

    def update(self, now: float) -> None:
        """Bring internal state (FIFO, conversions) up to ``now``."""

    def power_on_reset(self) -> None:
        """Everything back to the datasheet's reset values, as after a brown-out."""
        self.regs[:] = bytes(256)
        for reg, value in self.RESET.items():
            self.regs[reg] = value
        self.pointer = 0
        self.resets += 1

    # -- for tests ---------------------------------------------------------
    def writes_to(self, register: int) -> list[int]:
        return [w.value for w in self.writes if w.register == register]

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


class SamplingChip(SimChip):
    """A sensor that samples on its own oscillator, read or not.

    A subclass says how fast its clock runs now (``_running_rate``, 0 while it
    does not sample), how many of the newest samples can still matter
    (``_samples_kept``: what its FIFO holds, a little more), and stores each
    batch of sample times in ``_sample``. Whenever the bus touches the chip,
    this base asks the :class:`SampleClock` which sample times have passed.
    """

    def __init__(self, *, clock: Clock | None = None, write_log: int = 4096):
        self.samples_generated = 0
        self._sampler = SampleClock()
        super().__init__(clock=clock, write_log=write_log)

    def _running_rate(self) -> float:
        raise NotImplementedError

    def _samples_kept(self) -> int:
        raise NotImplementedError

    def _sample(self, t: np.ndarray, skipped: int) -> None:
        raise NotImplementedError

    def update(self, now: float) -> None:
        rate = self._running_rate()
        if not rate:
            # stopped: its first sample comes a period after it starts again
            self._sampler.restart()
            return
        t, skipped = self._sampler.due(now, rate, keep=self._samples_kept())
        if len(t):
            self.samples_generated += len(t) + skipped
            self._sample(t, skipped)
