"""The chips this project knows, and how each one says who it is.

One table serves ``gym-monitor probe`` and the config check: the addresses a
chip can be strapped to and the ID register that names it. A chip with no ID
register (the PN532 speaks in frames) names a ``reader`` instead: a function
of (bus, address) that asks the chip and returns its ID value and part name.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Mapping


def _pn532(bus: Any, address: int) -> tuple[int, str] | None:
    from .pn532 import read_firmware

    # A simulated bus carries the simulated chips' clock; a real one is read in real time.
    firmware = read_firmware(bus, address, clock=getattr(bus, "clock", None))
    return (firmware.ic, str(firmware)) if firmware is not None else None


@dataclass(frozen=True)
class ChipId:
    chip: str                    # the name used in config files
    addresses: tuple[int, ...]
    id_register: int | None
    id_values: Mapping[int, str]  # ID register value -> part name
    id_mask: int = 0xFF
    what: str = ""
    #: for a chip without an ID register: (bus, address) -> (ID value, part name) or None
    reader: Callable[[Any, int], tuple[int, str] | None] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "id_values", MappingProxyType(dict(self.id_values)))

    def part(self, id_value: int) -> str | None:
        return self.id_values.get(id_value & self.id_mask)


KNOWN_CHIPS: tuple[ChipId, ...] = (
    ChipId("mpu6050", (0x68, 0x69), 0x75,
           {0x68: "MPU-6050", 0x70: "MPU-6500", 0x71: "MPU-9250", 0x73: "MPU-9255"},
           what="accelerometer/gyroscope (AD0 low 0x68, high 0x69)"),
    ChipId("lsm6ds", (0x6A, 0x6B), 0x0F,
           {0x69: "LSM6DS3/LSM6DS3H", 0x6A: "LSM6DSL/LSM6DSM", 0x6C: "LSM6DSO/LSM6DSOX"},
           what="accelerometer/gyroscope (SA0 low 0x6A, high 0x6B)"),
    ChipId("nau7802", (0x2A,), 0x1F, {0x0F: "NAU7802"}, id_mask=0x0F,
           what="24-bit load-cell ADC"),
    ChipId("pn532", (0x24,), None, {0x32: "PN532"},
           what="NFC tag reader (no ID register: GetFirmwareVersion names it)", reader=_pn532),
)

#: config chip name -> the entry that identifies it ("mpu6500" is the same family)
BY_CONFIG_NAME = {c.chip: c for c in KNOWN_CHIPS} | {"mpu6500": KNOWN_CHIPS[0]}


def candidates(address: int) -> list[ChipId]:
    return [c for c in KNOWN_CHIPS if address in c.addresses]
