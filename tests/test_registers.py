"""The register layer: fields, adapters and maps, exhaustively and by property."""

import pytest
from hypothesis import given, strategies as st

from monitor.i2c.mpu6050 import REGISTERS as MPU
from monitor.i2c.registers import Field, Flag, Lookup, Register, RegisterMap


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


masks = st.integers(1, 255).filter(lambda m: ((m >> ((m & -m).bit_length() - 1)) + 1) & (m >> ((m & -m).bit_length() - 1)) == 0)


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


@given(st.integers(-(2 ** 15), 2 ** 15 - 1))
def test_multibyte_register_round_trip(value):
    reg = Register("OUT", 0x3B, size=2, signed=True)
    assert reg.from_bytes(reg.to_bytes(value)) == value
