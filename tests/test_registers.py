"""The register layer: fields, adapters and maps, exhaustively and by property; and on a bus."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.i2c.device import I2CDevice
from monitor.i2c.mpu6050 import REGISTERS as MPU
from monitor.i2c.registers import Field, Flag, Lookup, Register, RegisterMap
from monitor.sim import SimBus, SimChip, SimClock


def test_field_shift_and_width():
    f = Field("afs_sel", 0b0001_1000)
    assert (f.shift, f.width) == (3, 2)
    assert f.get(0b1111_0111) == 0b10
    assert f.put(0xFF, 0) == 0b1110_0111


def test_lookup_maps_human_values_and_refuses_others():
    f = Field("afs_sel", 0b0001_1000, Lookup({2: 0, 4: 1, 8: 2, 16: 3}))
    assert f.put(0, 8) == 0b0001_0000
    assert f.get(0b0001_1000) == 16
    with pytest.raises(ValueError, match="not one of 2, 4, 8, 16"):
        f.put(0, 3)


def test_value_too_wide_for_field_is_refused():
    with pytest.raises(ValueError, match="does not fit in 3 bits"):
        Field("dlpf_cfg", 0b111).put(0, 8)


def test_mpu_map_reads_like_the_datasheet():
    # Register Map rev 4.2: ACCEL_CONFIG 0x1C AFS_SEL bits 4:3; +-4 g is 0x08.
    assert MPU.encode("ACCEL_CONFIG", afs_sel=4) == 0x08
    assert MPU.decode("PWR_MGMT_1", 0x40).sleep is True  # reset value: asleep
    assert MPU.encode("PWR_MGMT_1", base=0, clksel=1) == 0x01
    assert MPU.encode("USER_CTRL", base=0, fifo_en=True) == 0x40
    assert MPU.encode("FIFO_EN", base=0, accel=True) == 0x08
    assert MPU["WHO_AM_I"].address == 0x75


def test_covers_knows_when_a_read_is_not_needed():
    regs = RegisterMap(Register("R", 0x10, fields=(Field("hi", 0xF0), Field("lo", 0x0F))))
    assert regs.covers("R", ["hi", "lo"])
    assert not regs.covers("R", ["hi"])


def test_duplicate_names_are_refused():
    with pytest.raises(ValueError):
        RegisterMap(Register("A", 1), Register("A", 2))
    with pytest.raises(ValueError):
        Register("B", 1, fields=(Field("x", 1), Field("x", 2)))


masks = st.integers(1, 255).filter(
    lambda m: ((m >> ((m & -m).bit_length() - 1)) + 1) & (m >> ((m & -m).bit_length() - 1)) == 0
)


@given(mask=masks, base=st.integers(0, 255), data=st.data())
def test_put_then_get_round_trips_and_leaves_other_bits(mask, base, data):
    f = Field("f", mask)
    value = data.draw(st.integers(0, mask >> f.shift))
    out = f.put(base, value)
    assert f.get(out) == value
    assert out & ~mask & 0xFF == base & ~mask & 0xFF


@given(st.booleans(), st.integers(0, 255))
def test_flag_round_trip(value, base):
    f = Field("bit", 0b0010_0000, Flag())
    assert f.get(f.put(base, value)) is value


@given(st.integers(-(2**15), 2**15 - 1))
def test_multibyte_register_round_trip(value):
    reg = Register("OUT", 0x3B, size=2, signed=True)
    assert reg.from_bytes(reg.to_bytes(value)) == value


# -- what the drivers, the config check and the simulated chips ask of a map ---------


def test_value_is_the_named_fields_on_zero():
    assert MPU.value("USER_CTRL", fifo_en=True) == 0x40
    assert MPU.value("PWR_MGMT_1", sleep=False, clksel=1) == 0x01  # not from the 0x40 reset value
    assert MPU.value("FIFO_EN") == 0


def test_choices_are_a_tables_values_smallest_first():
    assert MPU.choices("ACCEL_CONFIG", "afs_sel") == (2, 4, 8, 16)
    assert MPU.choices("GYRO_CONFIG", "fs_sel") == (250, 500, 1000, 2000)
    with pytest.raises(TypeError):
        MPU.choices("CONFIG", "dlpf_cfg")  # a plain number, not a table


def test_reset_bytes_and_read_only_addresses_come_from_the_map():
    regs = RegisterMap(
        Register("GCAL", 0x06, size=4, reset=0x0080_0000),
        Register("ADCO", 0x12, size=3, read_only=True),
        Register("REV", 0x1F, reset=0x0F, read_only=True),
    )
    assert regs.reset_bytes() == {0x07: 0x80, 0x1F: 0x0F}
    assert regs.read_only_addresses() == {0x12, 0x13, 0x14, 0x1F}


# -- registers by name on a bus -----------------------------------------------------

CTRL = Register(
    "CTRL",
    0x10,
    reset=0x15,
    fields=(
        Field("mode", 0xF0, Lookup({"off": 0, "slow": 1, "fast": 2})),
        Field("rate", 0x0F),
    ),
)
REGS = RegisterMap(
    CTRL,
    Register("OUT", 0x20, size=2, read_only=True),
    Register("ID", 0x0F, reset=0x42, read_only=True),
)


class Chip(SimChip):
    RESET = REGS.reset_bytes()
    READ_ONLY = REGS.read_only_addresses()


@pytest.fixture
def wired():
    clock = SimClock()
    bus = SimBus()
    chip = bus.attach(0x50, Chip(clock=clock))
    return bus, chip, I2CDevice(bus, 0x50, REGS, name="test chip", clock=clock)


def test_set_writes_the_whole_register_without_reading_it(wired):
    bus, chip, dev = wired
    assert dev.set("CTRL", mode="fast") == 0x20  # rate, not named, is written 0
    assert [t.kind for t in bus.log] == ["write_byte_data"]
    assert chip.writes_to(0x10) == [0x20]


def test_update_reads_first_and_keeps_the_other_bits(wired):
    bus, _, dev = wired
    assert dev.update("CTRL", mode="fast") == 0x25  # rate 5 kept from the reset value
    assert [t.kind for t in bus.log] == ["read_byte_data", "write_byte_data"]
    bus.log.clear()
    assert dev.update("CTRL", mode="off", rate=3) == 0x03  # every bit named: no read
    assert [t.kind for t in bus.log] == ["write_byte_data"]


def test_whole_registers_and_bursts_by_name(wired):
    _, chip, dev = wired
    chip.regs[0x20:0x22] = b"\x12\x34"
    assert dev.read("OUT") == 0x1234 and dev.read_burst("OUT", 2) == b"\x12\x34"
    assert dev.read("ID") == 0x42
    assert (dev.get("CTRL").mode, dev.get("CTRL").rate) == ("slow", 5)


def test_read_only_registers_are_never_written(wired):
    bus, _, dev = wired
    for write in (lambda: dev.write("OUT", 1), lambda: dev.set("ID"), lambda: dev.update("ID")):
        with pytest.raises(ValueError, match="read-only"):
            write()
    assert not [t for t in bus.log if t.kind.startswith("write")]
