"""Register maps declared as data.

A chip's registers are written down once, the way its datasheet tables them,
and the driver then reads like the datasheet::

    ACCEL_CONFIG = Register("ACCEL_CONFIG", 0x1C, fields=(
        Field("afs_sel", 0b0001_1000, adapter=Lookup({2: 0, 4: 1, 8: 2, 16: 3})),
    ))
    regs = RegisterMap(ACCEL_CONFIG)
    regs.value("ACCEL_CONFIG", afs_sel=4)        # -> 0x08
    regs.decode("ACCEL_CONFIG", 0x08).afs_sel    # -> 4
    regs.choices("ACCEL_CONFIG", "afs_sel")      # -> (2, 4, 8, 16)

Fields are bit masks; adapters turn raw bits into human values and back, and
refuse values the chip cannot take. Nothing here touches a bus, so the same
map serves the driver (which sets fields by name through
:class:`~monitor.i2c.device.I2CDevice`), the config check (which asks the map
what a field accepts) and the simulated chip (which takes its reset values and
read-only registers from it), and is easy to test exhaustively.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, Protocol


class Adapter(Protocol):
    def encode(self, value: Any) -> int: ...
    def decode(self, raw: int) -> Any: ...


@dataclass(frozen=True)
class Lookup:
    """Human value <-> raw bits through a table, e.g. range in g -> AFS_SEL."""

    table: Mapping[Any, int]
    _reverse: Mapping[int, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "table", MappingProxyType(dict(self.table)))
        object.__setattr__(self, "_reverse", {raw: v for v, raw in self.table.items()})

    def encode(self, value: Any) -> int:
        try:
            return self.table[value]
        except (KeyError, TypeError):
            allowed = ", ".join(str(k) for k in self.table)
            raise ValueError(f"{value!r} is not one of {allowed}") from None

    def decode(self, raw: int) -> Any:
        # A reserved bit pattern decodes to itself rather than failing: the
        # driver decides whether an unexpected value means a reset chip.
        return self._reverse.get(raw, raw)

    @property
    def choices(self) -> tuple[Any, ...]:
        """The human values the field takes, smallest first."""
        return tuple(sorted(self.table))


@dataclass(frozen=True)
class Flag:
    """A one-bit field as a bool."""

    def encode(self, value: Any) -> int:
        return 1 if value else 0

    def decode(self, raw: int) -> bool:
        return bool(raw)


@dataclass(frozen=True)
class Field:
    """Named bits of a register. ``mask`` is in place (0b0001_1000 for bits 4:3)."""

    name: str
    mask: int
    adapter: Adapter | None = None

    def __post_init__(self) -> None:
        if self.mask <= 0:
            raise ValueError(f"field {self.name}: mask must be positive")

    @property
    def shift(self) -> int:
        return (self.mask & -self.mask).bit_length() - 1

    @property
    def width(self) -> int:
        return (self.mask >> self.shift).bit_length()

    def raw(self, register_value: int) -> int:
        return (register_value & self.mask) >> self.shift

    def get(self, register_value: int) -> Any:
        raw = self.raw(register_value)
        return self.adapter.decode(raw) if self.adapter else raw

    def put(self, register_value: int, value: Any) -> int:
        raw = self.adapter.encode(value) if self.adapter else int(value)
        if not 0 <= raw <= (self.mask >> self.shift):
            raise ValueError(f"{self.name}: {value!r} does not fit in {self.width} bits")
        return (register_value & ~self.mask) | (raw << self.shift)


@dataclass(frozen=True)
class Register:
    """One register (or a run of ``size`` bytes read as one value)."""

    name: str
    address: int
    fields: tuple[Field, ...] = ()
    size: int = 1
    reset: int = 0
    byteorder: Literal["big", "little"] = "big"
    signed: bool = False
    read_only: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.address <= 0xFF:
            raise ValueError(f"{self.name}: address 0x{self.address:X} is not a register address")
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: duplicate field names")

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}")

    @property
    def addresses(self) -> range:
        """Every byte address the register occupies."""
        return range(self.address, self.address + self.size)

    def to_bytes(self, value: int) -> bytes:
        return int(value).to_bytes(self.size, self.byteorder, signed=self.signed)

    def from_bytes(self, data: bytes) -> int:
        return int.from_bytes(bytes(data[: self.size]), self.byteorder, signed=self.signed)


@dataclass(frozen=True)
class Values:
    """A decoded register: its raw value and each field by name (attribute access)."""

    register: Register
    raw: int
    fields: Mapping[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.fields[name]
        except KeyError:
            raise AttributeError(name) from None


class RegisterMap:
    """A chip's registers by name, with field encoding and decoding."""

    def __init__(self, *registers: Register):
        self._by_name: dict[str, Register] = {}
        for reg in registers:
            if reg.name in self._by_name:
                raise ValueError(f"duplicate register {reg.name}")
            self._by_name[reg.name] = reg

    def __getitem__(self, name: str) -> Register:
        return self._by_name[name]

    def __iter__(self) -> Iterator[Register]:
        return iter(self._by_name.values())

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def encode(self, name: str, base: int | None = None, **fields: Any) -> int:
        """The raw value with ``fields`` set on top of ``base`` (the reset value by default)."""
        reg = self._by_name[name]
        value = reg.reset if base is None else base
        for fname, fvalue in fields.items():
            value = reg.field(fname).put(value, fvalue)
        return value

    def value(self, name: str, **fields: Any) -> int:
        """The raw value with exactly ``fields`` set and every other bit 0.

        What a driver writes to a register that is wholly its own::

            regs.value("USER_CTRL", fifo_en=True)     # -> 0x40
        """
        return self.encode(name, 0, **fields)

    def choices(self, name: str, field: str) -> tuple[Any, ...]:
        """The human values a table-mapped field takes, smallest first (what a config may say)."""
        adapter = self._by_name[name].field(field).adapter
        if not isinstance(adapter, Lookup):
            raise TypeError(f"{name}.{field} is not a table of values")
        return adapter.choices

    def decode(self, name: str, raw: int) -> Values:
        reg = self._by_name[name]
        return Values(reg, raw, {f.name: f.get(raw) for f in reg.fields})

    def reset_bytes(self) -> dict[int, int]:
        """Byte address -> value after power-on, for every byte not reset to 0."""
        out: dict[int, int] = {}
        for reg in self._by_name.values():
            for address, byte in zip(reg.addresses, reg.to_bytes(reg.reset), strict=True):
                if byte:
                    out[address] = byte
        return out

    def read_only_addresses(self) -> frozenset[int]:
        """Every byte address of a read-only register."""
        registers = self._by_name.values()
        return frozenset(a for reg in registers if reg.read_only for a in reg.addresses)

    def covers(self, name: str, fields: Iterable[str]) -> bool:
        """True when ``fields`` set every bit of the register, so no read is needed first."""
        reg = self._by_name[name]
        mask = 0
        for fname in fields:
            mask |= reg.field(fname).mask
        return mask == (1 << (8 * reg.size)) - 1
