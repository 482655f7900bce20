"""SimBus behaves like smbus2.SMBus on a real adapter, and counts what crosses the wire."""

import errno

import pytest
from smbus2 import i2c_msg

from monitor.sim import SimBus, SimChip, SimClock


class Eeprom(SimChip):
    def power_on_reset(self) -> None:
        super().power_on_reset()
        self.regs[0x0F] = 0xA5


@pytest.fixture
def bus():
    b = SimBus()
    b.attach(0x50, Eeprom())
    return b


def test_empty_address_nacks_like_a_real_bus(bus):
    with pytest.raises(OSError) as err:
        bus.read_byte_data(0x51, 0)
    assert err.value.errno == errno.EREMOTEIO
    assert bus.stats.errors == 1


def test_byte_and_word_access(bus):
    assert bus.read_byte_data(0x50, 0x0F) == 0xA5
    bus.write_byte_data(0x50, 0x10, 0x34)
    bus.write_byte_data(0x50, 0x11, 0x12)
    assert bus.read_word_data(0x50, 0x10) == 0x1234  # SMBus words are little-endian


def test_block_limit_is_the_kernels(bus):
    with pytest.raises(ValueError):
        bus.read_i2c_block_data(0x50, 0, 33)
    with pytest.raises(ValueError):
        bus.write_i2c_block_data(0x50, 0, [0] * 33)
    assert len(bus.read_i2c_block_data(0x50, 0, 32)) == 32


def test_i2c_rdwr_write_then_read(bus):
    bus.write_i2c_block_data(0x50, 0x20, [1, 2, 3, 4])
    w, r = i2c_msg.write(0x50, [0x20]), i2c_msg.read(0x50, 4)
    bus.i2c_rdwr(w, r)
    assert list(r) == [1, 2, 3, 4]


def test_wire_bytes_count_address_register_and_data(bus):
    bus.read_byte_data(0x50, 0)  # addr+W, reg, addr+R, data
    assert (bus.stats.transactions, bus.stats.bytes) == (1, 4)
    bus.stats.reset()
    bus.i2c_rdwr(i2c_msg.write(0x50, [0]), i2c_msg.read(0x50, 100))
    assert (bus.stats.transactions, bus.stats.bytes) == (1, 2 + 101)
    bus.stats.reset()
    bus.write_i2c_block_data(0x50, 0, [1, 2, 3])  # addr+W, reg, 3 data
    assert bus.stats.bytes == 5
    assert bus.stats.by_address[0x50].transactions == 1


def test_log_records_transfers(bus):
    bus.write_byte_data(0x50, 0x30, 7)
    last = bus.log[-1]
    assert (last.address, last.kind, last.register, last.data) == (
        0x50,
        "write_byte_data",
        0x30,
        b"\x07",
    )
    assert bus.chip(0x50).writes_to(0x30) == [7]


def test_fail_count_then_recovers(bus):
    bus.fail(0x50, count=2, code=errno.EIO)
    for _ in range(2):
        with pytest.raises(OSError) as err:
            bus.read_byte_data(0x50, 0x0F)
        assert err.value.errno == errno.EIO
    assert bus.read_byte_data(0x50, 0x0F) == 0xA5


def test_vanish_for_a_duration_on_the_chip_clock():
    clock = SimClock()
    bus = SimBus()
    bus.attach(0x50, Eeprom(clock=clock))
    bus.vanish(0x50, duration=2.0)
    with pytest.raises(OSError):
        bus.read_byte_data(0x50, 0x0F)
    clock.advance(2.0)
    assert bus.read_byte_data(0x50, 0x0F) == 0xA5


def test_stuck_chip_returns_constant_data_and_loses_writes(bus):
    bus.stick(0x50, 0xFF)
    bus.write_byte_data(0x50, 0x40, 1)
    assert bus.read_i2c_block_data(0x50, 0x0F, 4) == [0xFF] * 4
    bus.restore(0x50)
    assert bus.read_byte_data(0x50, 0x40) == 0  # the write never landed


def test_brownout_resets_registers(bus):
    bus.write_byte_data(0x50, 0x0F, 0)
    bus.brownout(0x50)
    assert bus.read_byte_data(0x50, 0x0F) == 0xA5


def test_closed_bus_refuses(bus):
    with bus:
        pass
    with pytest.raises(OSError):
        bus.read_byte_data(0x50, 0)


def test_rejects_bad_addresses():
    with pytest.raises(ValueError):
        SimBus().attach(0x80, Eeprom())
