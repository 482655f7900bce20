"""What every chip driver shares: where it is, what it is called, how it fails and comes back.

A driver is a :class:`Chip` subclass that declares its facts as class data and
fills in a few steps; the base does the rest::

    class Nau7802(Chip):
        CHIP = "NAU7802"
        REGISTERS = REGISTERS                 # the register map, as the datasheet tables it
        ADDRESSES = (0x2A,)                   # where it can be strapped
        ID_REGISTER = "REVISION_ID"           # the register that says what it is ...
        IDENTITIES = {0x0F: "NAU7802"}        # ... and what its values mean

    with Nau7802(bus, clock=clock) as scale:  # close() powers it down, even after an error
        reading = scale.read()

The same class data answer questions that need no chip: the config check asks
``Nau7802.check_address(0x2B)``, ``gym-monitor probe`` asks
``Mpu6050.read_identity(bus, 0x68)``.

Faults: a driver's ``read`` runs its step through :meth:`Chip._guarded`, which
turns a :class:`~monitor.errors.SensorError` into an unhealthy chip (counted in
``stats.faults``) and, on the next read, calls the driver's ``_recover`` before
trying again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Self, TypeVar

from ..clock import Clock, RealClock
from ..errors import SensorError
from .device import Bus, I2CDevice, RetryPolicy
from .registers import RegisterMap

T = TypeVar("T")


@dataclass
class ChipStats:
    #: SensorErrors raised by read()
    faults: int = 0


class Chip:
    """A chip on an I2C bus; see the module docstring.

    ``name`` is what logs and alerts call it (default "<CHIP> at 0x<address>",
    plus "on bus <bus_name>" when given); ``clock`` paces waits and retries
    (simulated time in tests); ``retry`` is how hard each transfer tries.
    """

    #: the part family, as messages name it
    CHIP: ClassVar[str] = "chip"
    #: its registers (empty for a chip that speaks in frames)
    REGISTERS: ClassVar[RegisterMap] = RegisterMap()
    #: the addresses it can be strapped to; the first is its default
    ADDRESSES: ClassVar[tuple[int, ...]] = ()
    #: the register whose value says which part answers, None when it has none
    ID_REGISTER: ClassVar[str | None] = None
    #: ID value (after ID_MASK) -> part name
    IDENTITIES: ClassVar[Mapping[int, str]] = MappingProxyType({})
    ID_MASK: ClassVar[int] = 0xFF

    stats: ChipStats

    def __init__(
        self,
        bus: Bus,
        address: int,
        *,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
        name: str | None = None,
        bus_name: str | int | None = None,
    ):
        problem = self.check_address(address)
        if problem:
            raise ValueError(problem)
        self.clock = clock or RealClock()
        where = f" on bus {bus_name}" if bus_name is not None else ""
        self.name = name or f"{self.CHIP} at 0x{address:02X}{where}"
        self.device = I2CDevice(
            bus, address, self.REGISTERS, name=self.name, clock=self.clock, retry=retry
        )
        self._healthy = False

    # -- facts, asked without a chip ------------------------------------------------
    @classmethod
    def check_address(cls, address: int, chip: str | None = None) -> str | None:
        """None if the chip can answer at ``address``, else what is wrong (naming it ``chip``)."""
        if not cls.ADDRESSES or address in cls.ADDRESSES:
            return None
        who = chip or cls.CHIP
        if len(cls.ADDRESSES) == 1:
            return f"the {who} answers only at 0x{cls.ADDRESSES[0]:02X}, not 0x{address:02X}"
        allowed = " or ".join(f"0x{a:02X}" for a in cls.ADDRESSES)
        return f"the {who} answers at {allowed}, not 0x{address:02X}"

    @classmethod
    def part(cls, id_value: int) -> str | None:
        """The part an ID value names, None if it names none of this driver's."""
        return cls.IDENTITIES.get(id_value & cls.ID_MASK)

    @classmethod
    def read_identity(cls, bus: Any, address: int) -> tuple[int, str] | None:
        """Ask whatever answers at ``address`` what it is, changing nothing: (ID, part) or None.

        One plain read of the ID register, no retries: a probe of a bus with
        unknown devices on it must be quick and must not upset them.
        """
        if cls.ID_REGISTER is None:
            return None
        try:
            value = bus.read_byte_data(address, cls.REGISTERS[cls.ID_REGISTER].address)
        except OSError:
            return None
        part = cls.part(value)
        return (value, part) if part else None

    # -- public ------------------------------------------------------------------
    @property
    def address(self) -> int:
        return self.device.address

    @property
    def healthy(self) -> bool:
        """False from a fault until the chip has been brought back."""
        return self._healthy

    def close(self) -> None:
        """Leave the chip in its lowest-power state; safe twice, or on a chip that is gone."""
        with contextlib.suppress(OSError):  # closing a chip that is gone is not an error
            self._power_down()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    # -- what subclasses provide ----------------------------------------------------
    def _recover(self) -> None:
        """Bring the chip back after a fault: identify it and configure it (or start doing so)."""
        raise NotImplementedError

    def _after_fault(self) -> None:
        """Forget what a fault made stale (timelines, exchanges in progress)."""

    def _power_down(self) -> None:
        """Put the chip in its lowest-power state."""

    # -- the fault skeleton -------------------------------------------------------
    def _guarded(self, step: Callable[[], T]) -> T:
        """Run one read ``step``, recovering first if a fault left the chip down.

        A :class:`~monitor.errors.SensorError` marks the chip unhealthy, is
        counted, and goes to the caller; the next call recovers.
        """
        try:
            if not self._healthy:
                self._recover()
                self._healthy = True
            return step()
        except SensorError:
            self._healthy = False
            self.stats.faults += 1
            self._after_fault()
            raise
