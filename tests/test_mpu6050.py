"""The MPU-6050 driver against the register-level simulated chip."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.errors import SensorError, SensorGone, SensorNotFound
from monitor.i2c import Mpu6050
from monitor.i2c.mpu6050 import PARTS
from monitor.sim import Mpu6050Sim, SimBus, SimClock
from monitor.units import G
from tests.support.signals import SineMotion


def make(clock, bus, motion=None, address=0x68, **kwargs):
    sim = bus.attach(
        address,
        Mpu6050Sim(
            motion or SineMotion(),
            clock=clock,
            **{k: kwargs.pop(k) for k in ("variant", "noise", "rate_error") if k in kwargs},
        ),
    )
    return sim, Mpu6050(bus, address, clock=clock, **kwargs)


def run(imu, clock, seconds):
    blocks = []
    for _ in range(round(seconds / imu.poll_interval)):
        clock.sleep(imu.poll_interval)
        blocks.append(imu.read())
    return blocks


def test_configuration_follows_the_register_map(clock, bus):
    sim, _imu = make(clock, bus, rate_hz=500, range_g=8)
    writes = [(w.register, w.value) for w in sim.writes]
    assert writes == [
        (0x6B, 0x80),  # PWR_MGMT_1: DEVICE_RESET
        (0x6B, 0x01),  # awake, clock from the X gyro PLL
        (0x19, 0x01),  # SMPLRT_DIV: 1 kHz / (1 + 1) = 500 Hz
        (0x1A, 0x01),  # CONFIG: DLPF 184 Hz, under the 250 Hz Nyquist
        (0x1C, 0x10),  # ACCEL_CONFIG: +-8 g
        (0x23, 0x08),  # FIFO_EN: accelerometer
        (0x6A, 0x04),  # USER_CTRL: FIFO_RESET
        (0x6A, 0x40),  # USER_CTRL: FIFO_EN
    ]
    # The reset is given its 100 ms before the chip is touched again.
    times = [w.t for w in sim.writes]
    assert times[1] - times[0] == pytest.approx(0.1)


def test_gyro_and_low_rates_configure_accordingly(clock, bus):
    sim, imu = make(clock, bus, rate_hz=100, range_g=2, gyro=True, gyro_dps=1000)
    assert sim.writes_to(0x1A) == [0x03]  # 44 Hz DLPF for a 50 Hz Nyquist
    assert sim.writes_to(0x1B) == [0x10]  # +-1000 dps
    assert sim.writes_to(0x23) == [0x78]  # XG, YG, ZG, ACCEL
    assert imu.datum_bytes == 12


@pytest.mark.parametrize("rate", [0, 3, 300, 2000, -5])
def test_rates_the_chip_cannot_run_are_refused(clock, bus, rate):
    bus.attach(0x68, Mpu6050Sim(SineMotion(), clock=clock))
    with pytest.raises(ValueError, match="rate_hz"):
        Mpu6050(bus, 0x68, rate_hz=rate, clock=clock)


def test_decodes_counts_like_the_datasheet(clock, bus):
    # +-4 g is 8192 LSB/g: gravity alone along z reads ~8192 counts.
    _sim, imu = make(clock, bus, SineMotion(amp_mg=0), noise=False, rate_hz=1000, range_g=4)
    clock.sleep(0.05)
    block = imu.read()
    assert block.accel[:, 2] == pytest.approx(np.full(len(block), 8192 * 4 * G / 32768), abs=1e-9)
    assert np.abs(block.accel[:, :2]).max() == 0


def test_sinusoid_is_recovered_with_its_amplitude_and_frequency(clock, bus):
    _sim, imu = make(clock, bus, SineMotion(hz=8, amp_mg=50), rate_hz=1000, range_g=4, gyro=True)
    blocks = run(imu, clock, 4.0)
    t = np.concatenate([b.t for b in blocks])
    x = np.concatenate([b.accel[:, 0] for b in blocks])
    assert np.all(np.diff(t) > 0)
    dt = np.diff(t)
    # Evenly spaced, but for a few small corrections while the grid settles on the chip's clock.
    assert np.sum(np.abs(dt - 1e-3) > 1e-6) <= 4
    assert np.abs(dt - 1e-3).max() < 0.25e-3
    spectrum = np.abs(np.fft.rfft(x - x.mean()))
    freqs = np.fft.rfftfreq(len(x), 1e-3)
    assert freqs[spectrum.argmax()] == pytest.approx(8.0, abs=0.3)
    amplitude = np.sqrt(2) * np.std(x) / G * 1e3
    assert amplitude == pytest.approx(50, rel=0.05)
    gyro = np.concatenate([b.gyro[:, 1] for b in blocks])
    assert np.sqrt(2) * gyro.std() == pytest.approx(0.5, rel=0.05)


def test_timestamps_sit_on_the_sample_times(clock, bus):
    # The simulated chip samples at k ms after the FIFO starts; the driver's
    # times must match the true sample times of the motion within a period.
    _sim, imu = make(clock, bus, SineMotion(hz=8, amp_mg=500), noise=False, rate_hz=1000, range_g=4)
    blocks = run(imu, clock, 2.0)
    t = np.concatenate([b.t for b in blocks[2:]])
    x = np.concatenate([b.accel[:, 0] for b in blocks[2:]])
    truth = SineMotion(hz=8, amp_mg=500).accel(t)[:, 0]
    lag = np.argmax(np.correlate(x, truth, "full")) - (len(x) - 1)
    assert abs(lag) <= 1


def test_all_samples_arrive_without_loss(clock, bus):
    sim, imu = make(clock, bus, rate_hz=1000, range_g=4)
    blocks = run(imu, clock, 10.0)
    assert sum(len(b) for b in blocks) == pytest.approx(10000, abs=2)
    assert imu.stats.lost == 0 and sim.overflows == 0


def test_overflow_is_prevented_and_lost_samples_counted(clock, bus):
    _sim, imu = make(clock, bus, rate_hz=1000, range_g=4)
    run(imu, clock, 1.0)
    clock.sleep(0.5)  # a stalled loop: 500 samples, FIFO holds 170
    stalled = imu.read()
    assert len(stalled) == 0 and imu.stats.fifo_resets == 1
    # Everything since the last good sample is lost, and counted at the reset.
    assert stalled.lost == pytest.approx(500, abs=3)
    after = run(imu, clock, 1.0)
    got = sum(len(b) for b in after)
    assert got == pytest.approx(1000, abs=2)
    assert imu.stats.lost == pytest.approx(500, abs=3)
    assert sum(b.lost for b in after) <= 1
    # Nothing misaligned was decoded: gravity is still on z in every sample.
    z = np.concatenate([b.accel[:, 2] for b in after])
    assert np.all(np.abs(z - G) < 0.2 * G)


def test_mpu6500_has_a_512_byte_fifo(clock, bus):
    sim, imu = make(clock, bus, variant="MPU-6500", rate_hz=1000)
    assert imu.variant == "MPU-6500" and imu.FIFO_BYTES == 512
    assert imu.poll_interval < 512 / 6 / 1000
    start = clock.now()
    blocks = run(imu, clock, 2.0)
    expected = (clock.now() - start) * 1000
    assert sum(len(b) for b in blocks) == pytest.approx(expected, abs=2) and sim.overflows == 0


def test_wrong_chip_is_reported_with_what_to_check(clock, bus):
    bus.attach(0x68, Mpu6050Sim(SineMotion(), clock=clock))
    bus.chip(0x68).regs[0x75] = 0x12
    with pytest.raises(SensorNotFound, match=r"WHO_AM_I is 0x12.*AD0"):
        Mpu6050(bus, 0x68, rate_hz=1000, clock=clock)


def test_missing_chip_is_gone_not_hung(clock, bus):
    with pytest.raises(SensorGone, match="check its wiring"):
        Mpu6050(bus, 0x69, rate_hz=1000, clock=clock)
    assert clock.now() < 0.05  # bounded backoff


def test_transient_nacks_are_retried(clock, bus):
    _sim, imu = make(clock, bus, rate_hz=1000)
    run(imu, clock, 0.5)
    bus.fail(0x68, count=2)
    block = (clock.sleep(0.1), imu.read())[1]
    assert len(block) == pytest.approx(100, abs=3)
    assert imu.device.stats.retries == 2 and imu.stats.faults == 0


def test_gone_chip_raises_then_recovers(clock, bus):
    _sim, imu = make(clock, bus, rate_hz=1000)
    run(imu, clock, 0.5)
    bus.vanish(0x68, duration=1.0)
    with pytest.raises(SensorGone):
        clock.sleep(0.1)
        imu.read()
    clock.sleep(1.0)
    blocks = run(imu, clock, 1.0)
    assert sum(len(b) for b in blocks) > 800
    assert imu.stats.faults == 1


def test_brownout_is_noticed_and_reconfigured(clock, bus):
    _sim, imu = make(clock, bus, rate_hz=1000)
    run(imu, clock, 0.5)
    bus.brownout(0x68)
    blocks = run(imu, clock, 1.0)
    assert imu.stats.reconfigurations == 1
    assert sum(len(b) for b in blocks[-5:]) == pytest.approx(500, abs=3)


@pytest.mark.parametrize("value", [0x00, 0xFF])
def test_stuck_chip_raises_a_sensor_error(clock, bus, value):
    _sim, imu = make(clock, bus, rate_hz=1000)
    run(imu, clock, 0.5)
    bus.stick(0x68, value)
    with pytest.raises(SensorError):
        for _ in range(20):
            clock.sleep(0.1)
            imu.read()
    bus.restore(0x68)
    clock.sleep(0.1)
    imu.read()  # recovers: identify and configure again
    assert len(run(imu, clock, 0.5)[-1]) > 0


def test_burst_reads_fall_back_to_smbus_blocks(clock):
    class NoRdwrBus(SimBus):
        def i2c_rdwr(self, *msgs):
            raise OSError(95, "Operation not supported")

    bus = NoRdwrBus()
    _sim, imu = make(clock, bus, rate_hz=1000)
    bus.stats.reset()
    blocks = run(imu, clock, 1.0)
    assert sum(len(b) for b in blocks) == pytest.approx(1000, abs=2)
    reads = [t for t in bus.log if t.register == 0x74]
    assert reads and {t.kind for t in reads} == {"read_i2c_block_data"}
    assert max(len(t.data) for t in reads) == 32


def test_bus_efficiency_at_1khz(clock, bus):
    _sim, imu = make(clock, bus, rate_hz=1000, range_g=4)
    run(imu, clock, 1.0)
    bus.stats.reset()
    blocks = run(imu, clock, 60.0)
    samples = sum(len(b) for b in blocks)
    assert bus.stats.bytes / samples <= 6.5
    assert bus.stats.transactions / 60 <= 40


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=1100))
def test_garbage_fifo_bytes_never_crash(data):
    clock = SimClock()
    bus = SimBus()
    sim, imu = make(clock, bus, rate_hz=1000)
    clock.sleep(0.01)
    imu.read()
    sim.fifo = bytearray(data)  # whatever the wire delivers
    try:
        block = imu.read()
    except SensorError:
        return
    assert block.accel.shape == (len(block), 3)
    assert np.all(np.abs(block.accel) <= 4 * G + 1e-9)


# -- one chip, one set of facts: the driver's -------------------------------------------


def test_a_context_manager_leaves_the_chip_asleep(clock, bus):
    sim = bus.attach(0x68, Mpu6050Sim(SineMotion(), clock=clock))
    with Mpu6050(bus, 0x68, rate_hz=1000, clock=clock) as imu:
        clock.sleep(0.05)
        assert len(imu.read()) > 0
    assert sim.writes_to(0x6B)[-1] == 0x41  # PWR_MGMT_1: SLEEP, clock still the PLL
    assert not sim.awake
    bus.vanish(0x68, duration=1.0)
    imu.close()  # a chip that is gone is not an error


def test_the_rate_check_is_the_one_the_config_uses(clock, bus):
    assert Mpu6050.check_rate(250) is None and Mpu6050.rate_for(250) == 250
    problem = Mpu6050.check_rate(300)
    assert problem.startswith("the MPU-6050/6500 runs at 1000 Hz divided")
    bus.attach(0x68, Mpu6050Sim(SineMotion(), clock=clock))
    with pytest.raises(ValueError) as err:
        Mpu6050(bus, 0x68, rate_hz=300, clock=clock)
    assert problem in str(err.value)
    assert not bus.log  # refused before the bus was touched


def test_addresses_and_ranges_are_the_drivers(clock, bus):
    assert Mpu6050.ADDRESSES == (0x68, 0x69) and Mpu6050.RANGES_G == (2, 4, 8, 16)
    assert Mpu6050.check_address(0x6A) == "the MPU-6050 answers at 0x68 or 0x69, not 0x6A"
    with pytest.raises(ValueError, match="answers at 0x68 or 0x69"):
        Mpu6050(bus, 0x6A, clock=clock)


@pytest.mark.parametrize("part", PARTS, ids=lambda p: p.name)
def test_every_part_the_simulator_plays_is_one_the_driver_knows(clock, bus, part):
    # Both take WHO_AM_I and the FIFO size from the same table.
    sim, imu = make(clock, bus, variant=part.name, rate_hz=1000)
    assert sim.regs[0x75] == part.who_am_i
    assert (imu.variant, imu.FIFO_BYTES) == (part.name, part.fifo_bytes)
    assert Mpu6050.read_identity(bus, 0x68) == (part.who_am_i, part.name)


def test_a_brownout_is_told_from_pwr_mgmt_1_alone(clock, bus):
    # Asleep after a brown-out says enough: FIFO_EN is only read from a chip that is awake.
    _sim, imu = make(clock, bus, rate_hz=1000)
    run(imu, clock, 0.5)
    bus.brownout(0x68)
    bus.log.clear()
    run(imu, clock, 0.2)
    first_write = next(i for i, t in enumerate(bus.log) if t.kind.startswith("write"))
    checks = [(t.kind, t.register) for t in list(bus.log)[:first_write] if t.register != 0x72]
    assert checks == [("read_byte_data", 0x6B), ("read_byte_data", 0x75)]  # PWR_MGMT_1, WHO_AM_I
    assert imu.stats.reconfigurations == 1
