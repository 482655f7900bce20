"""LSM6DS3 / LSM6DSO driver against its register-level simulator.

Expected register values are written out in hex from the datasheets, not
computed with the driver's own register maps, so a wrong map fails here.
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.clock import SimClock
from monitor.errors import SensorError, SensorGone, SensorNotFound
from monitor.i2c.lsm6ds import Lsm6ds, decode_tagged, decode_untagged
from monitor.sim.bus import SimBus
from monitor.sim.lsm6ds import Lsm6dsSim
from monitor.units import G

ADDR = 0x6A
VARIANTS = ["LSM6DSO", "LSM6DS3"]

# Registers, from the datasheets (LSM6DSO DS12140, LSM6DS3 DocID026899).
WHO_AM_I, CTRL1_XL, CTRL2_G, CTRL3_C, STATUS_REG = 0x0F, 0x10, 0x11, 0x12, 0x1E
OUTX_L_G, OUTX_L_XL = 0x22, 0x28
FIFO_STATUS1 = 0x3A
FIFO_MODE = 0x0A  # FIFO_CTRL4 (DSO), FIFO_CTRL5 (DS3)
DSO_FIFO_CTRL1, DSO_FIFO_CTRL2, DSO_FIFO_CTRL3 = 0x07, 0x08, 0x09
DSO_FIFO_DATA_OUT_TAG = 0x78
DS3_FIFO_CTRL1, DS3_FIFO_CTRL2, DS3_FIFO_CTRL3 = 0x06, 0x07, 0x08
DS3_FIFO_DATA_OUT_L = 0x3E
TAG_GYRO, TAG_XL = 0x01, 0x02


class Tremor:
    """Gravity on z, an ``amp_g`` sinusoid at ``freq`` Hz on x, and a slow roll on the gyroscope."""

    def __init__(
        self,
        freq: float = 8.0,
        amp_g: float = 0.05,
        gravity_g: float = 1.0,
        roll_rad_s: float = 0.5,
    ):
        self.freq, self.amp_g, self.gravity_g, self.roll = freq, amp_g, gravity_g, roll_rad_s

    def accel(self, t):
        a = np.zeros((len(t), 3))
        a[:, 0] = self.amp_g * G * np.sin(2 * np.pi * self.freq * t)
        a[:, 2] = self.gravity_g * G
        return a

    def gyro(self, t):
        g = np.zeros((len(t), 3))
        g[:, 1] = self.roll * np.sin(2 * np.pi * 3.0 * t)
        return g


def make(variant="LSM6DSO", motion=None, *, noise=True, seed=0, **kwargs):
    clock = SimClock()
    bus = SimBus()
    sim = bus.attach(
        ADDR, Lsm6dsSim(motion or Tremor(), clock=clock, variant=variant, noise=noise, seed=seed)
    )
    kwargs.setdefault("rate_hz", 833)
    imu = Lsm6ds(bus, ADDR, clock=clock, **kwargs)
    return clock, bus, sim, imu


def poll(imu, clock, seconds):
    blocks = []
    end = clock.now() + seconds
    while clock.now() < end:
        clock.sleep(imu.poll_interval)
        blocks.append(imu.read())
    return blocks


def poll_through_faults(imu, clock, seconds):
    """Poll like a station does: a SensorError is reported and the next poll tries again."""
    blocks, errors = [], []
    end = clock.now() + seconds
    while clock.now() < end:
        clock.sleep(imu.poll_interval)
        try:
            blocks.append(imu.read())
        except SensorError as err:
            errors.append(err)
    return blocks, errors


def concat(blocks):
    t = np.concatenate([b.t for b in blocks])
    a = np.concatenate([b.accel for b in blocks])
    return t, a


def writes(sim):
    return [(w.register, w.value) for w in sim.writes]


# -- configuration, as the datasheet asks, in order ------------------------------------


def test_dso_configuration_sequence():
    _, bus, sim, imu = make("LSM6DSO", rate_hz=833, range_g=4)
    assert imu.variant == "LSM6DSO/LSM6DSOX"
    assert writes(sim) == [
        (CTRL1_XL, 0x00),
        (CTRL2_G, 0x00),  # both sensors to power-down
        (FIFO_MODE, 0x00),  # FIFO_CTRL4: bypass
        (CTRL3_C, 0x05),  # SW_RESET (IF_INC kept)
        (CTRL3_C, 0x84),  # BOOT (IF_INC kept)
        (CTRL3_C, 0x44),  # BDU | IF_INC
        (DSO_FIFO_CTRL1, 0x54),  # WTM = 84 words = 0.1 s at 833 Hz
        (DSO_FIFO_CTRL2, 0x00),
        (DSO_FIFO_CTRL3, 0x07),  # BDR_XL = 833 Hz, gyroscope not batched
        (CTRL1_XL, 0x78),  # ODR_XL = 833 Hz (0111), FS_XL = 4 g (10)
        (FIFO_MODE, 0x06),  # FIFO_CTRL4: continuous mode
    ]
    # WHO_AM_I is read before anything is written, and SW_RESET and BOOT are
    # each polled until they clear before the next write.
    log = list(bus.log)
    first_write = next(i for i, x in enumerate(log) if x.kind.startswith("write"))
    assert any(x.register == WHO_AM_I and x.kind.startswith("read") for x in log[:first_write])
    kinds = [(x.kind, x.register, x.data) for x in log]
    i_reset = kinds.index(("write_byte_data", CTRL3_C, b"\x05"))
    i_boot = kinds.index(("write_byte_data", CTRL3_C, b"\x84"))
    i_bdu = kinds.index(("write_byte_data", CTRL3_C, b"\x44"))
    assert ("read_byte_data", CTRL3_C, b"\x04") in kinds[i_reset:i_boot]  # SW_RESET seen clear
    assert ("read_byte_data", CTRL3_C, b"\x04") in kinds[i_boot:i_bdu]  # BOOT seen clear
    assert sim.soft_resets == 1
    assert sim.regs[CTRL3_C] == 0x44


def test_ds3_configuration_sequence():
    _, _, sim, imu = make("LSM6DS3", rate_hz=833, range_g=4)
    assert imu.variant == "LSM6DS3/LSM6DS3H"
    assert writes(sim) == [
        (CTRL1_XL, 0x00),
        (CTRL2_G, 0x00),
        (FIFO_MODE, 0x00),  # FIFO_CTRL5: bypass, ODR_FIFO off
        (CTRL3_C, 0x05),
        (CTRL3_C, 0x84),
        (CTRL3_C, 0x44),
        (DS3_FIFO_CTRL1, 0xFC),  # FTH = 252 words = 84 samples of X, Y, Z
        (DS3_FIFO_CTRL2, 0x00),
        (DS3_FIFO_CTRL3, 0x01),  # DEC_FIFO_XL: no decimation; gyroscope not in FIFO
        (CTRL1_XL, 0x78),
        (FIFO_MODE, 0x3E),  # ODR_FIFO = 833 Hz (0111), continuous (110)
    ]


@pytest.mark.parametrize("range_g, ctrl1_xl", [(2, 0x70), (4, 0x78), (8, 0x7C), (16, 0x74)])
def test_full_scale_encoding(range_g, ctrl1_xl):
    # FS_XL is not in order: 2 g = 00, 16 g = 01, 4 g = 10, 8 g = 11.
    _, _, sim, _ = make("LSM6DSO", range_g=range_g)
    assert sim.writes_to(CTRL1_XL)[-1] == ctrl1_xl


@pytest.mark.parametrize(
    "variant, fifo_ctrl3, fifo_mode", [("LSM6DSO", 0x55, 0x06), ("LSM6DS3", 0x09, 0x2E)]
)
def test_gyro_configuration(variant, fifo_ctrl3, fifo_mode):
    _, _, sim, imu = make(variant, rate_hz=208, range_g=8, gyro=True, gyro_dps=500)
    assert sim.writes_to(CTRL1_XL)[-1] == 0x5C  # 208 Hz (0101), 8 g (11)
    assert sim.writes_to(CTRL2_G)[-1] == 0x54  # 208 Hz (0101), 500 dps (01)
    ctrl3 = DSO_FIFO_CTRL3 if variant == "LSM6DSO" else DS3_FIFO_CTRL3
    assert sim.writes_to(ctrl3)[-1] == fifo_ctrl3
    assert sim.writes_to(FIFO_MODE)[-1] == fifo_mode
    assert imu.datum_bytes == (14 if variant == "LSM6DSO" else 12)


def test_gyro_125_dps_uses_its_own_bit():
    _, _, sim, _ = make("LSM6DSO", rate_hz=104, gyro=True, gyro_dps=125)
    assert sim.writes_to(CTRL2_G)[-1] == 0x42  # 104 Hz (0100), FS_125


def test_rate_must_be_an_odr():
    with pytest.raises(ValueError, match="833"):
        make("LSM6DSO", rate_hz=1000)
    assert make("LSM6DSO", rate_hz=417)[3].rate_hz == 416
    assert make("LSM6DSO", rate_hz=1660)[3].rate_hz == 1666


def test_ds3_gyroscope_stops_at_1666_hz():
    with pytest.raises(ValueError, match="1666"):
        make("LSM6DS3", rate_hz=3332, gyro=True)


def test_address_and_identity_are_checked():
    with pytest.raises(ValueError, match="0x6A or 0x6B"):
        Lsm6ds(SimBus(), 0x68, clock=SimClock())
    with pytest.raises(SensorNotFound, match="SA0"):
        Lsm6ds(SimBus(), 0x6B, clock=SimClock())  # nothing there
    clock = SimClock()
    bus = SimBus()
    sim = bus.attach(ADDR, Lsm6dsSim(Tremor(), clock=clock))
    sim.RESET = {**sim.RESET, WHO_AM_I: 0x6B}  # some other ST part
    sim.power_on_reset()
    with pytest.raises(SensorNotFound, match="WHO_AM_I is 0x6B"):
        Lsm6ds(bus, ADDR, clock=clock)


def test_close_powers_down():
    _, bus, sim, imu = make("LSM6DSO", gyro=True)
    imu.close()
    assert writes(sim)[-3:] == [(CTRL1_XL, 0x00), (CTRL2_G, 0x00), (FIFO_MODE, 0x00)]
    bus.vanish(ADDR)
    imu.close()  # a chip that is gone is not an error


def test_a_context_manager_powers_down():
    clock = SimClock()
    bus = SimBus()
    sim = bus.attach(ADDR, Lsm6dsSim(Tremor(), clock=clock, variant="LSM6DS3"))
    with Lsm6ds(bus, ADDR, rate_hz=833, clock=clock) as imu:
        clock.sleep(0.1)
        assert len(imu.read()) > 0
    assert writes(sim)[-3:] == [(CTRL1_XL, 0x00), (CTRL2_G, 0x00), (FIFO_MODE, 0x00)]


def test_the_rate_check_is_the_one_the_config_uses():
    assert Lsm6ds.check_rate(417) is None and Lsm6ds.rate_for(417) == 416
    assert Lsm6ds.check_rate(1000).startswith("the lsm6ds runs at 12.5, 26, 52")
    assert Lsm6ds.RANGES_G == (2, 4, 8, 16) and Lsm6ds.ADDRESSES == (0x6A, 0x6B)


@pytest.mark.parametrize("variant", ["LSM6DSO", "LSM6DSOX", "LSM6DS3", "LSM6DSL"])
def test_every_simulated_variant_answers_a_who_am_i_the_driver_knows(variant):
    # The simulator takes WHO_AM_I (and the FIFO architecture) from the driver's families.
    clock, bus, sim, imu = make(variant)
    assert Lsm6ds.part(sim.regs[WHO_AM_I]) == imu.variant
    assert Lsm6ds.read_identity(bus, ADDR) == (sim.regs[WHO_AM_I], imu.variant)
    fresh = Lsm6dsSim(Tremor(), clock=clock, variant=variant)
    assert fresh.regs[CTRL3_C] == 0x04  # reset value: IF_INC on


# -- decoding against the datasheet's sensitivities ------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("range_g, mg_per_lsb", [(2, 0.061), (4, 0.122), (8, 0.244), (16, 0.488)])
def test_known_counts_give_known_mg(variant, range_g, mg_per_lsb):
    _, _, sim, imu = make(variant, range_g=range_g)
    counts = (16384, -16384, 1)
    if variant == "LSM6DSO":
        sim.fifo += bytes([TAG_XL << 3]) + struct.pack("<3h", *counts)
    else:
        sim.fifo += struct.pack("<3h", *counts)
    block = imu.read()
    mg = block.accel[0] / G * 1000
    assert mg == pytest.approx([c * mg_per_lsb for c in counts], rel=1e-9)


@pytest.mark.parametrize("variant", VARIANTS)
def test_known_gyro_counts_give_known_rate(variant):
    # The LSM6DS3 datasheet's example: 8.75 mdps/LSB at 250 dps, so 0x2CA4 = 11428 is 100 dps.
    _, _, sim, imu = make(variant, rate_hz=104, gyro=True, gyro_dps=250)
    gyro, accel = (0x2CA4, -0x2CA4, 0), (0, 0, 8197)
    if variant == "LSM6DSO":
        sim.fifo += bytes([TAG_GYRO << 3]) + struct.pack("<3h", *gyro)
        sim.fifo += bytes([TAG_XL << 3]) + struct.pack("<3h", *accel)
    else:
        sim.fifo += struct.pack("<6h", *gyro, *accel)
    block = imu.read()
    assert np.degrees(block.gyro[0]) == pytest.approx([99.995, -99.995, 0.0], abs=1e-9)
    assert block.accel[0, 2] / G == pytest.approx(8197 * 0.122e-3)


class Still:
    """A sensor held still at a fixed acceleration, in g per axis."""

    def __init__(self, g_xyz):
        self.a = np.asarray(g_xyz, dtype=float) * G

    def accel(self, t):
        return np.tile(self.a, (len(t), 1))


@pytest.mark.parametrize("variant", VARIANTS)
def test_simulated_quantisation_and_saturation(variant):
    # 1 g at 2 g full scale is 1000 / 0.061 = 16393 counts; 3 g saturates at 32767.
    clock = SimClock()
    bus = SimBus()
    bus.attach(ADDR, Lsm6dsSim(Still((0.0, 3.0, 1.0)), clock=clock, variant=variant, noise=False))
    bus.write_byte_data(ADDR, CTRL1_XL, 0x40)  # 104 Hz, 2 g
    clock.sleep(0.05)
    assert struct.unpack("<3h", bytes(bus.read_i2c_block_data(ADDR, OUTX_L_XL, 6))) == (
        0,
        32767,
        16393,
    )
    # Through the driver (with noise, or it would look stuck): y pinned at full scale.
    clock, _, _, imu = make(variant, Still((0.0, 3.0, 1.0)), range_g=2)
    _, a = concat(poll(imu, clock, 0.5))
    assert np.all(a[:, 1] == pytest.approx(32767 * 0.061e-3 * G))
    assert a[:, 2].mean() / G == pytest.approx(1.0, abs=0.001)


# -- the FIFO, with and without overflow -----------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_fifo_drain_keeps_every_sample(variant):
    clock, _, sim, imu = make(variant)
    started = clock.now()  # the FIFO went to continuous mode just now
    blocks = poll(imu, clock, 5.0)
    t, _ = concat(blocks)
    assert imu.stats.lost == 0 and imu.stats.fifo_resets == 0 and sim.overflows == 0
    assert len(t) == pytest.approx((clock.now() - started) * 833, abs=2)
    # One period apart; the timeline only nudges block starts towards the chip's clock.
    assert np.diff(t) == pytest.approx(1 / 833, rel=0.15)
    assert np.diff(t).mean() == pytest.approx(1 / 833, rel=1e-3)
    assert t[-1] <= clock.now() and clock.now() - t[-1] < 2 / 833
    assert sim.fifo_count < 0.6 * sim.capacity_words


@pytest.mark.parametrize("variant, stall", [("LSM6DSO", 3.0), ("LSM6DS3", 6.0)])
def test_overflow_is_counted_and_recovered(variant, stall):
    clock, _, sim, imu = make(variant)
    before = poll(imu, clock, 1.0)
    clock.advance(stall)  # the reader stalls well past the FIFO's capacity
    after = poll(imu, clock, 2.0)
    assert sim.overflows > 0
    assert imu.stats.fifo_resets == 1
    t0, _ = concat(before)
    t1, a1 = concat(after)
    assert t1[0] > t0[-1] + stall  # the timeline continues after the gap
    assert np.all(np.diff(t1) > 0)
    assert imu.stats.lost == pytest.approx((stall + imu.poll_interval) * 833, rel=0.05)
    # Nothing decoded is garbage: every sample is gravity plus the tremor.
    g = np.linalg.norm(a1, axis=1) / G
    assert g.min() > 0.9 and g.max() < 1.1


def test_ds3_reader_finds_the_pattern_again():
    # Someone reads half a pattern (the gyroscope's 3 words) behind the driver's back.
    clock, bus, _, imu = make("LSM6DS3", rate_hz=104, gyro=True)
    poll(imu, clock, 0.5)
    clock.sleep(0.1)
    bus.read_i2c_block_data(ADDR, DS3_FIFO_DATA_OUT_L, 6)
    assert bus.read_i2c_block_data(ADDR, 0x3C, 1) == [3]  # FIFO_STATUS3: pattern position 3
    block = imu.read()
    assert len(block) > 0
    assert np.linalg.norm(block.accel, axis=1) / G == pytest.approx(1.0, abs=0.06)
    assert np.abs(block.gyro).max() < 0.6  # never an accelerometer word as rate


@pytest.mark.parametrize(
    "variant, name",
    [
        ("LSM6DSO", "LSM6DSO/LSM6DSOX"),
        ("LSM6DSOX", "LSM6DSO/LSM6DSOX"),
        ("LSM6DS3", "LSM6DS3/LSM6DS3H"),
        ("LSM6DSL", "LSM6DSL/LSM6DSM/LSM6DS3TR-C"),
    ],
)
def test_every_variant_streams(variant, name):
    clock, _, _, imu = make(variant, rate_hz=416, gyro=True)
    assert imu.variant == name
    blocks = poll(imu, clock, 1.0)
    assert sum(len(b) for b in blocks) == pytest.approx(416, abs=45)
    assert imu.stats.lost == 0 and all(b.gyro.shape == b.accel.shape for b in blocks)


# -- a known signal in, the same signal out ---------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_8hz_50mg_tremor_is_recovered(variant):
    clock, _, _, imu = make(variant, Tremor(freq=8.0, amp_g=0.05))
    poll(imu, clock, 0.3)  # let the first samples through
    t, a = concat(poll(imu, clock, 10.5))
    n = 8330  # exactly 10 s at 833 Hz: 8 Hz falls on a bin
    t, a = t[:n], a[:n]
    x = a[:, 0] - a[:, 0].mean()
    spectrum = np.abs(np.fft.rfft(x))
    peak_hz = np.argmax(spectrum) * 833 / n
    assert peak_hz == 8.0
    # Amplitude by least squares on the sample times.
    basis = np.column_stack([np.sin(2 * np.pi * 8 * t), np.cos(2 * np.pi * 8 * t)])
    coef, *_ = np.linalg.lstsq(basis, x, rcond=None)
    amplitude_mg = np.hypot(*coef) / G * 1000
    assert amplitude_mg == pytest.approx(50.0, rel=0.03)
    assert np.linalg.norm(a, axis=1).mean() == pytest.approx(G, rel=0.01)


@pytest.mark.parametrize("variant, density_ug", [("LSM6DSO", 75.0), ("LSM6DS3", 90.0)])
def test_noise_is_at_the_datasheet_density(variant, density_ug):
    clock, _, _, imu = make(variant, Tremor(amp_g=0.0), range_g=4)
    _, a = concat(poll(imu, clock, 3.0))
    sigma_mg = a[:, 0].std() / G * 1000
    assert sigma_mg == pytest.approx(density_ug * 1e-3 * math.sqrt(833 / 2), rel=0.1)


def test_gyroscope_follows_the_motion():
    motion = Tremor()
    clock, _, _, imu = make("LSM6DSO", motion, rate_hz=208, gyro=True, gyro_dps=250)
    blocks = poll(imu, clock, 2.0)
    t = np.concatenate([b.t for b in blocks])
    gyro = np.concatenate([b.gyro for b in blocks])
    expected = motion.gyro(t)
    assert len(gyro) == len(t) == pytest.approx(2.0 * 208, abs=3)
    # Timestamps are within a period of the sample instants; 3 Hz moves little in 5 ms.
    assert np.abs(gyro - expected).max() < 0.05


# -- faults ------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_transient_nacks_are_retried(variant):
    clock, bus, _, imu = make(variant)
    poll(imu, clock, 0.5)
    bus.fail(ADDR, count=2)
    clock.sleep(imu.poll_interval)
    block = imu.read()
    assert len(block) > 0
    assert imu.device.stats.retries == 2 and imu.stats.faults == 0


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_chip_that_stops_answering_raises_and_recovers(variant):
    clock, bus, _, imu = make(variant)
    poll(imu, clock, 0.5)
    bus.fail(ADDR, count=100)
    clock.sleep(imu.poll_interval)
    with pytest.raises(SensorGone):
        imu.read()
    bus.restore(ADDR)
    blocks, errors = poll_through_faults(imu, clock, 1.0)
    assert not errors
    assert sum(len(b) for b in blocks) > 0.7 * 833


@pytest.mark.parametrize("variant", VARIANTS)
def test_brownout_is_noticed_and_reconfigured(variant):
    clock, bus, sim, imu = make(variant)
    poll(imu, clock, 0.5)
    bus.brownout(ADDR)
    blocks, errors = poll_through_faults(imu, clock, 1.0)
    assert not errors
    assert imu.stats.reconfigurations == 1
    assert sim.writes_to(CTRL1_XL)[-1] == 0x78 and sim.regs[CTRL3_C] == 0x44
    assert sum(len(b) for b in blocks[-5:]) == pytest.approx(5 * 0.1 * 833, rel=0.05)


@pytest.mark.parametrize("variant", VARIANTS)
def test_vanish_then_return(variant):
    clock, bus, _, imu = make(variant)
    poll(imu, clock, 0.5)
    bus.vanish(ADDR, duration=0.5)
    blocks, errors = poll_through_faults(imu, clock, 1.5)
    assert errors and all(isinstance(e, SensorGone) for e in errors)
    assert sum(len(b) for b in blocks[-5:]) == pytest.approx(5 * 0.1 * 833, rel=0.05)
    first = next(b for b in blocks if len(b) and b.lost)
    assert first.lost == pytest.approx(0.5 * 833, rel=0.3)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("value", [0xFF, 0x00])
def test_a_stuck_bus_raises_instead_of_returning_garbage(variant, value):
    clock, bus, _, imu = make(variant)
    poll(imu, clock, 0.5)
    bus.stick(ADDR, value)
    clock.sleep(imu.poll_interval)
    with pytest.raises(SensorError):  # at once: the FIFO status is impossible or silent
        imu.read()
    blocks, errors = poll_through_faults(imu, clock, 0.5)
    assert errors and all(isinstance(e, SensorError) for e in errors)
    assert all(len(b) == 0 for b in blocks)  # nothing decoded from constant bytes
    bus.restore(ADDR)
    blocks, errors = poll_through_faults(imu, clock, 1.0)
    assert not errors and sum(len(b) for b in blocks) > 0.7 * 833


# -- bus efficiency --------------------------------------------------------------------


@pytest.mark.parametrize("variant, limit", [("LSM6DSO", 7.2), ("LSM6DS3", 6.2)])
def test_bus_efficiency_at_833_hz(variant, limit):
    clock, bus, _, imu = make(variant, rate_hz=833)
    poll(imu, clock, 0.5)
    bus.stats.reset()
    blocks = poll(imu, clock, 60.0)
    samples = sum(len(b) for b in blocks)
    per_sample = bus.stats.bytes / samples
    per_second = bus.stats.transactions / 60.0
    print(f"{variant} at 833 Hz: {per_sample:.3f} bytes/sample, {per_second:.1f} transactions/s")
    assert per_sample <= limit
    assert per_second <= 40


# -- the simulator itself ------------------------------------------------------------


def test_sim_reset_values_and_self_clearing_bits():
    clock = SimClock()
    bus = SimBus()
    bus.attach(ADDR, Lsm6dsSim(Tremor(), clock=clock))
    assert bus.read_byte_data(ADDR, WHO_AM_I) == 0x6C
    assert bus.read_byte_data(ADDR, CTRL3_C) == 0x04  # IF_INC set at reset
    bus.write_byte_data(ADDR, CTRL3_C, 0x05)
    assert bus.read_byte_data(ADDR, CTRL3_C) == 0x05  # SW_RESET still running
    clock.sleep(100e-6)
    assert bus.read_byte_data(ADDR, CTRL3_C) == 0x04
    bus.write_byte_data(ADDR, CTRL3_C, 0x84)
    clock.sleep(0.005)
    assert bus.read_byte_data(ADDR, CTRL3_C) == 0x84  # BOOT takes ~10 ms
    clock.sleep(0.006)
    assert bus.read_byte_data(ADDR, CTRL3_C) == 0x04


def test_sim_output_registers_and_data_ready():
    clock = SimClock()
    bus = SimBus()
    bus.attach(ADDR, Lsm6dsSim(Tremor(amp_g=0.0), clock=clock, noise=False))
    bus.write_byte_data(ADDR, CTRL1_XL, 0x40)  # 104 Hz, 2 g
    clock.sleep(0.05)
    assert bus.read_byte_data(ADDR, STATUS_REG) & 0x01  # XLDA
    raw = bytes(bus.read_i2c_block_data(ADDR, OUTX_L_XL, 6))
    assert struct.unpack("<3h", raw) == (0, 0, 16393)  # 1 g / 0.061 mg
    assert not bus.read_byte_data(ADDR, STATUS_REG) & 0x01  # read: not ready again
    assert not bus.read_byte_data(ADDR, STATUS_REG) & 0x02  # gyroscope off: no GDA


def test_sim_fifo_burst_rolls_over_from_7e_to_78():
    clock = SimClock()
    bus = SimBus()
    sim = bus.attach(ADDR, Lsm6dsSim(Tremor(), clock=clock))
    sim.fifo += bytes([TAG_XL << 3 | 0]) + struct.pack("<3h", 1, 2, 3)
    sim.fifo += bytes([TAG_XL << 3 | 2]) + struct.pack("<3h", 4, 5, 6)
    assert bus.read_i2c_block_data(ADDR, FIFO_STATUS1, 1) == [2]
    raw = bytes(bus.read_i2c_block_data(ADDR, DSO_FIFO_DATA_OUT_TAG, 14))
    assert raw[0] >> 3 == TAG_XL and raw[7] >> 3 == TAG_XL
    assert struct.unpack("<3h", raw[1:7]) == (1, 2, 3) and struct.unpack("<3h", raw[8:14]) == (
        4,
        5,
        6,
    )
    assert sim.fifo_count == 0


def test_sim_continuous_mode_overwrites_the_oldest():
    clock, _, sim, _ = make("LSM6DSO", rate_hz=104)
    clock.advance(20.0)  # 2080 samples into 512 words
    sim.update(clock.now())
    assert sim.fifo_count == 512 and sim.overflows > 0
    status2 = sim.read_register(0x3B)
    assert status2 & 0x40 and status2 & 0x20 and status2 & 0x08  # FIFO_OVR_IA, FULL, LATCHED
    assert not sim.read_register(0x3B) & 0x08  # latched until read
    accel, _, _ = decode_tagged(bytes(sim.fifo), gyro=False)
    assert np.linalg.norm(accel, axis=1).mean() * 0.122e-3 == pytest.approx(1.0, abs=0.01)


# -- decoding of anything at all ---------------------------------------------------------


def test_tagged_pairing_does_not_depend_on_word_order_or_read_boundaries():
    def word(tag, cnt, xyz):
        return bytes([tag << 3 | cnt << 1]) + struct.pack("<3h", *xyz)

    gyro_first = b"".join(
        word(TAG_GYRO, k % 4, (k, 0, 0)) + word(TAG_XL, k % 4, (0, k, 0)) for k in range(6)
    )
    xl_first = b"".join(
        word(TAG_XL, k % 4, (0, k, 0)) + word(TAG_GYRO, k % 4, (k, 0, 0)) for k in range(6)
    )
    for raw in (gyro_first, xl_first):
        accel, gyro, rest = decode_tagged(raw, gyro=True)
        assert (
            rest == b""
            and list(accel[:, 1]) == list(range(6))
            and list(gyro[:, 0]) == list(range(6))
        )
        # Split mid-slot: the half slot waits for its partner.
        a1, g1, rest = decode_tagged(raw[: 7 * 5], gyro=True)
        a2, g2, rest2 = decode_tagged(rest + raw[7 * 5 :], gyro=True)
        assert len(rest) == 7 and rest2 == b""
        assert np.array_equal(np.vstack([a1, a2]), accel) and np.array_equal(
            np.vstack([g1, g2]), gyro
        )
    # Temperature (0x03) and timestamp (0x04) words are skipped.
    accel, _, _ = decode_tagged(
        word(0x03, 0, (9, 9, 9)) + word(TAG_XL, 1, (1, 2, 3)) + word(0x04, 1, (7, 7, 7)), gyro=False
    )
    assert accel.tolist() == [[1, 2, 3]]


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=7 * 40), gyro=st.booleans())
def test_decoding_garbage_never_crashes(raw, gyro):
    try:
        accel, gyro_counts, rest = decode_tagged(raw, gyro=gyro)
    except SensorError:
        return
    for counts in (accel, gyro_counts if gyro else accel):
        assert counts.shape[1] == 3 and len(counts) <= len(raw) // 7
        assert np.all((counts >= -32768) & (counts <= 32767))
    assert len(rest) % 7 == 0 and len(rest) <= len(raw)
    accel, gyro_counts = decode_untagged(raw, gyro=gyro)
    assert np.all(np.abs(accel) <= 32768)


class _GarbageChip:
    """A device that answers every read with bytes from a script: whatever the bus delivers."""

    def __init__(self, data: bytes):
        self.data = data or b"\x00"
        self.i = 0
        self.pointer = 0

    def read_current(self, length):
        out = bytes(self.data[(self.i + k) % len(self.data)] for k in range(length))
        self.i += length
        return out

    def read(self, register, length):
        self.pointer = register
        return self.read_current(length)

    def write(self, register, data):
        return None


@pytest.mark.parametrize("variant", VARIANTS)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(min_size=1, max_size=64))
def test_driver_on_garbage_bytes_raises_or_returns_sane_samples(variant, data):
    clock, bus, _, imu = make(variant, noise=False)
    bus.attach(ADDR, _GarbageChip(data))
    limit = 32768 * 0.122e-3 * G
    for _ in range(3):
        clock.sleep(imu.poll_interval)
        try:
            block = imu.read()
        except SensorError:
            continue
        assert len(block) <= 4096
        assert np.all(np.abs(block.accel) <= limit)
