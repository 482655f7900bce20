"""``gym-monitor probe``: what is on the bus, and is it what the config expects?

It scans like ``i2cdetect -y`` (a quick write, or a byte read in the ranges
where a quick write could upset an EEPROM), reads each known chip's ID
register, and lines the result up against the config::

         0  1  2  3  4  5  6  7  8  9  a  b  c  d  e  f
    20: -- -- -- -- 24 -- -- -- -- -- 2a -- -- -- -- --
    60: -- -- -- -- -- -- -- -- 68 -- 6a -- -- -- -- --

    0x68  MPU-6050   WHO_AM_I 0x68   imu "wrist"          ok
    0x6A  LSM6DSO    WHO_AM_I 0x6C   imu "bench"          ok
    0x2A  NAU7802    REV 0x0F        scale                ok
    0x24  PN532 v1.6      ID 0x32  nfc                  ok

Each driver says how its chip is asked (``read_identity``): a read of its ID
register, or for the PN532, which has none, a GetFirmwareVersion frame.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .chips import DRIVERS, PROBE_NAME, candidates

READ_BYTE_RANGES = (
    range(0x30, 0x38),
    range(0x50, 0x60),
)  # what i2cdetect reads rather than quick-writes


@dataclass(frozen=True)
class Found:
    address: int
    chip: str | None = None  # config name of a known chip, or None
    part: str | None = None  # e.g. "MPU-6500"
    id_value: int | None = None


@dataclass(frozen=True)
class Expected:
    role: str  # e.g. 'imu "wrist"' or 'scale'
    chip: str  # config chip name
    address: int


@dataclass(frozen=True)
class Row:
    address: int
    found: Found | None
    expected: Expected | None

    @property
    def verdict(self) -> str:
        if self.expected is None:
            return "not in config"
        if self.found is None:
            return "MISSING: check wiring, power, pull-ups and the address strap"
        if self.found.chip is None or DRIVERS[self.found.chip] is not DRIVERS[self.expected.chip]:
            return f"WRONG CHIP: config says {self.expected.chip}"
        return "ok"


def _present(bus, address: int) -> bool:
    try:
        if any(address in r for r in READ_BYTE_RANGES):
            bus.read_byte(address)
        else:
            bus.write_quick(address)
        return True
    except OSError:
        return False


def scan(bus) -> list[int]:
    """Addresses that answer, 0x03 to 0x77, as i2cdetect finds them."""
    return [a for a in range(0x03, 0x78) if _present(bus, a)]


def identify(bus, address: int) -> Found:
    for driver in candidates(address):
        answer = driver.read_identity(bus, address)
        if answer is not None:
            return Found(address, PROBE_NAME[driver], answer[1], answer[0])
    return Found(address)


def probe(bus, expected: Iterable[Expected] = ()) -> list[Row]:
    found = {a: identify(bus, a) for a in scan(bus)}
    wanted = {e.address: e for e in expected}
    return [Row(a, found.get(a), wanted.get(a)) for a in sorted(set(found) | set(wanted))]


def grid(addresses: Iterable[int]) -> str:
    present = set(addresses)
    lines = ["     " + "  ".join(f"{c:x}" for c in range(16))]
    for row in range(0, 0x80, 0x10):
        cells = []
        for a in range(row, row + 16):
            if a < 0x03 or a > 0x77:
                cells.append("  ")
            else:
                cells.append(f"{a:02x}" if a in present else "--")
        lines.append((f"{row:02x}: " + " ".join(cells)).rstrip())
    return "\n".join(lines)


def report(rows: list[Row]) -> str:
    lines = [grid(r.address for r in rows if r.found), ""]
    for r in rows:
        part = r.found.part if r.found and r.found.part else ("unknown device" if r.found else "-")
        ident = ""
        if r.found and r.found.id_value is not None:
            ident = f"ID 0x{r.found.id_value:02X}"
        role = r.expected.role if r.expected else ""
        lines.append(f"0x{r.address:02X}  {part:<15} {ident:<8} {role:<20} {r.verdict}")
    return "\n".join(lines)
