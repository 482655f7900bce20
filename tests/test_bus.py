"""open_bus: the bus a station, probe and record get, chosen in one place like a pin factory."""

from __future__ import annotations

import pytest

from monitor.bus import BUS_ENV, BusUnavailable, LateBus, open_bus, simulated
from monitor.clock import SimClock
from monitor.config import Config, I2CConfig, ImuConfig, StationConfig
from monitor.errors import ConfigError, MonitorError, SensorNotFound
from monitor.i2c import Mpu6050
from monitor.sim import SimBus

#: no Pi has this many I2C adapters, so /dev/i2c-250 is never there
MISSING = 250

REAL = Config(i2c=I2CConfig(bus=MISSING), imus=(ImuConfig("wrist"),))
SIMULATED = Config(
    station=StationConfig(simulate=True), i2c=I2CConfig(bus=MISSING), imus=(ImuConfig("wrist"),)
)


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    monkeypatch.delenv(BUS_ENV, raising=False)


def test_an_explicit_choice_wins_over_the_config_and_the_environment(monkeypatch):
    monkeypatch.setenv(BUS_ENV, "smbus")
    assert simulated(REAL, True) and not simulated(SIMULATED, False)
    assert isinstance(open_bus(REAL, simulate=True), SimBus)


def test_the_config_then_the_environment_then_the_real_bus(monkeypatch):
    assert simulated(SIMULATED) and not simulated(REAL)
    monkeypatch.setenv(BUS_ENV, "sim")
    assert simulated(REAL)
    monkeypatch.setenv(BUS_ENV, "smbus")
    assert not simulated(REAL) and simulated(SIMULATED)


def test_a_bad_environment_value_is_a_config_error_naming_it(monkeypatch):
    monkeypatch.setenv(BUS_ENV, "spi")
    with pytest.raises(ConfigError, match="GYM_MONITOR_BUS: must be one of sim, smbus, not 'spi'"):
        open_bus(REAL)


def test_the_simulated_bus_carries_the_configs_chips_on_the_given_clock():
    clock = SimClock()
    bus = open_bus(SIMULATED, clock=clock)
    assert bus.addresses == [0x68] and bus.clock is clock
    imu = Mpu6050(bus, 0x68, rate_hz=1000, clock=clock)
    clock.sleep(0.1)
    assert len(imu.read()) == pytest.approx(100, abs=2)


def test_a_missing_real_bus_says_what_to_do_in_one_line():
    with pytest.raises(BusUnavailable) as err:
        open_bus(REAL)
    text = str(err.value)
    assert isinstance(err.value, MonitorError) and isinstance(err.value, OSError)
    assert text.startswith(f"cannot open /dev/i2c-{MISSING} (") and "enable I2C" in text
    assert "\n" not in text
    with pytest.raises(BusUnavailable, match="/dev/i2c-251"):
        open_bus(REAL, number=251)


def test_a_station_waits_for_a_missing_bus():
    bus = open_bus(REAL, wait=True)
    assert isinstance(bus, LateBus) and not bus.is_open
    with pytest.raises(SensorNotFound, match=f"cannot open /dev/i2c-{MISSING}.*enable I2C"):
        bus.read_byte_data(0x68, 0x75)
    bus.close()
