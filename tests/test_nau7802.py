"""The NAU7802 driver against the simulated chip: bytes, sequences, grams, faults."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.clock import SimClock
from monitor.errors import SensorError, SensorGone, SensorNotFound, SensorStuck
from monitor.i2c import nau7802 as drv
from monitor.i2c.calibration import CalibrationStore, ScaleCalibration
from monitor.i2c.nau7802 import REGISTERS, Nau7802, ScaleReading, adc_counts
from monitor.sim.bus import SimBus
from monitor.sim.nau7802 import Nau7802Sim

ADDR = 0x2A
PU_CTRL, CTRL1, CTRL2, ADC, POWER = 0x00, 0x01, 0x02, 0x15, 0x1C
RR, PUD, PUA, PUR, CS, CR, AVDDS = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x80
CALS = 0x04

#: a 200 kg body-scale load cell, 2 mV/V, with a 4 kg platform on it
BODY_SCALE = dict(capacity_g=200_000.0, sensitivity_mv_per_v=2.0, offset_g=4_000.0)


def make(
    load=1000.0,
    *,
    gain=128,
    rate_sps=10,
    ldo_v=3.3,
    calibration=None,
    sim_cls=Nau7802Sim,
    **sim_kwargs,
):
    clock = SimClock()
    bus = SimBus()
    sim = bus.attach(ADDR, sim_cls(load, clock=clock, **sim_kwargs))
    scale = Nau7802(
        bus, clock=clock, gain=gain, rate_sps=rate_sps, ldo_v=ldo_v, calibration=calibration
    )
    return clock, bus, sim, scale


def poll(scale: Nau7802, clock: SimClock, seconds: float) -> list[ScaleReading]:
    readings = []
    end = clock.now() + seconds
    while clock.now() < end:
        r = scale.read()
        if r is not None:
            readings.append(r)
        clock.sleep(scale.poll_interval)
    return readings


def read_until_raises(scale: Nau7802, clock: SimClock, seconds: float = 10.0) -> SensorError:
    end = clock.now() + seconds
    while clock.now() < end:
        try:
            scale.read()
        except SensorError as err:
            return err
        clock.sleep(scale.poll_interval)
    pytest.fail(f"no SensorError within {seconds} s of simulated time")


# -- power-up ------------------------------------------------------------------
def test_power_up_follows_the_datasheet_sequence():
    _clock, bus, sim, _scale = make()
    writes = [(w.register, w.value) for w in sim.writes]
    assert writes == [
        (PU_CTRL, RR),  # register reset
        (PU_CTRL, PUD),  # RR = 0, PUD = 1
        (CTRL1, (4 << 3) | 7),  # VLDO 3.3 V, gain 128: before the LDO is switched on
        (PU_CTRL, PUD | PUA | AVDDS),  # analog up, AVDD from the LDO
        (CTRL2, 0x00),  # 10 SPS, CALMOD internal
        (ADC, 0x30),  # chopper clock off
        (POWER, 0x80),  # PGA_CAP_EN
        (PU_CTRL, PUD | PUA | CS | AVDDS),  # cycle start
        (CTRL2, CALS),  # internal offset calibration
    ]
    times = {(w.register, w.value): w.t for w in sim.writes}
    # PUR was polled, not assumed: a PU_CTRL read sits between PUD and the rest.
    log = list(bus.log)
    pud_at = next(
        i
        for i, x in enumerate(log)
        if x.kind == "write_byte_data" and x.register == PU_CTRL and x.data == bytes([PUD])
    )
    ctrl1_at = next(
        i for i, x in enumerate(log) if x.kind == "write_byte_data" and x.register == CTRL1
    )
    assert any(x.register == PU_CTRL and x.kind.startswith("read") for x in log[pud_at:ctrl1_at])
    assert times[(CTRL1, 0x27)] - times[(PU_CTRL, PUD)] >= 200e-6
    # The analog side settles before the offset calibration starts.
    assert times[(CTRL2, CALS)] - times[(PU_CTRL, PUD | PUA | CS | AVDDS)] >= drv.SETTLE_S
    # ... and the constructor waited for the calibration to finish.
    assert not sim.calibrating and sim.calibrations == 1
    assert sim.regs[CTRL2] & CALS == 0


def test_external_avdd_leaves_the_ldo_off():
    clock, _bus, sim, scale = make(ldo_v=None)
    assert sim.writes_to(PU_CTRL)[-1] == PUD | PUA | CS
    assert sim.excitation_v == sim.avdd_v
    assert len(poll(scale, clock, 2.0)) >= 18  # the first, straddling calibration, is dropped


def test_identifies_by_revision_id():
    clock = SimClock()
    bus = SimBus()
    sim = bus.attach(ADDR, Nau7802Sim(0.0, clock=clock))
    sim.regs[0x1F] = 0x42  # something else answering at 0x2A
    with pytest.raises(SensorNotFound, match=r"REVISION_ID \(0x1F\) reads 0x42.*wiring"):
        Nau7802(bus, clock=clock)
    assert not sim.writes  # nothing written to a chip that is not ours


def test_nothing_at_the_address_says_what_to_check():
    with pytest.raises(SensorNotFound, match="i2cdetect"):
        Nau7802(SimBus(), clock=SimClock())


# -- bytes ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "data, value",
    [
        (b"\x7f\xff\xff", 8_388_607),
        (b"\x80\x00\x00", -8_388_608),
        (b"\xff\xff\xff", -1),
        (b"\x00\x00\x01", 1),
        (b"\x00\x00\x00", 0),
        (b"\x12\x34\x56", 0x123456),
        (b"\xfe\xdc\xba", 0xFEDCBA - (1 << 24)),
    ],
)
def test_decodes_24_bit_twos_complement(data, value):
    assert adc_counts(data) == value


def test_decoding_wants_three_bytes():
    with pytest.raises(ValueError, match="3 bytes"):
        adc_counts(b"\x00\x01")


@given(st.integers(min_value=-(1 << 23), max_value=(1 << 23) - 1))
def test_decoding_inverts_encoding(value):
    assert adc_counts(value.to_bytes(3, "big", signed=True)) == value


@given(st.binary(min_size=3, max_size=3))
def test_decoding_any_three_bytes(data):
    unsigned = (data[0] << 16) | (data[1] << 8) | data[2]
    expected = unsigned - (1 << 24) if data[0] & 0x80 else unsigned
    assert adc_counts(data) == expected
    assert -(1 << 23) <= adc_counts(list(data)) < (1 << 23)


def test_negative_loads_read_negative():
    # A load cell wired the other way round, or pulled upwards: counts go negative.
    clock, _bus, sim, scale = make(-3000.0, offset_g=0.0, chip_offset_v=0.0)
    raws = [r.raw for r in poll(scale, clock, 1.0)]
    assert raws and max(raws) < 0
    assert statistics.mean(raws) == pytest.approx(-3000 * sim.counts_per_gram, rel=1e-3)
    assert raws[-1] == adc_counts(sim.regs[0x12:0x15])


# -- registers -----------------------------------------------------------------
GAIN_CODES = {1: 0, 2: 1, 4: 2, 8: 3, 16: 4, 32: 5, 64: 6, 128: 7}
RATE_CODES = {10: 0, 20: 1, 40: 2, 80: 3, 320: 7}
LDO_CODES = {4.5: 0, 4.2: 1, 3.9: 2, 3.6: 3, 3.3: 4, 3.0: 5, 2.7: 6, 2.4: 7}


@pytest.mark.parametrize("gain, code", GAIN_CODES.items())
def test_gains_map_to_ctrl1_bits_2_0(gain, code):
    _clock, _bus, sim, _scale = make(gain=gain)
    assert sim.writes_to(CTRL1) == [(4 << 3) | code]
    assert sim.gain == gain


@pytest.mark.parametrize("rate, code", RATE_CODES.items())
def test_rates_map_to_ctrl2_bits_6_4(rate, code):
    _clock, _bus, sim, _scale = make(rate_sps=rate)
    assert sim.writes_to(CTRL2) == [code << 4, (code << 4) | CALS]
    assert sim.rate_sps == rate


@pytest.mark.parametrize("volts, code", LDO_CODES.items())
def test_ldo_voltages_map_to_ctrl1_bits_5_3(volts, code):
    assert REGISTERS.encode("CTRL1", base=0, vldo=volts) == code << 3


def test_invalid_settings_name_the_allowed_values():
    bus = SimBus()
    with pytest.raises(ValueError, match="1, 2, 4, 8, 16, 32, 64, 128"):
        Nau7802(bus, gain=100, clock=SimClock())
    with pytest.raises(ValueError, match="10, 20, 40, 80, 320"):
        Nau7802(bus, rate_sps=100, clock=SimClock())
    with pytest.raises(ValueError, match=r"2\.4, 2\.7, 3\.0, 3\.3, 3\.6, 3\.9, 4\.2, 4\.5"):
        Nau7802(bus, ldo_v=5.0, clock=SimClock())
    with pytest.raises(ValueError, match="10, 20, 40, 80, 320"):
        REGISTERS.encode("CTRL2", base=0, crs=160)
    assert bus.stats.transactions == 0  # refused before touching the bus


@given(
    gain=st.sampled_from(sorted(GAIN_CODES)),
    vldo=st.sampled_from(sorted(LDO_CODES)),
    drdy_sel=st.booleans(),
    crp=st.booleans(),
)
def test_ctrl1_fields_round_trip(gain, vldo, drdy_sel, crp):
    raw = REGISTERS.encode("CTRL1", base=0, gains=gain, vldo=vldo, drdy_sel=drdy_sel, crp=crp)
    assert raw == GAIN_CODES[gain] | LDO_CODES[vldo] << 3 | drdy_sel << 6 | crp << 7
    back = REGISTERS.decode("CTRL1", raw)
    assert (back.gains, back.vldo, back.drdy_sel, back.crp) == (gain, vldo, drdy_sel, crp)


@given(st.integers(min_value=0, max_value=255))
def test_every_ctrl1_byte_decodes_and_re_encodes(raw):
    v = REGISTERS.decode("CTRL1", raw)
    again = REGISTERS.encode(
        "CTRL1", base=0, gains=v.gains, vldo=v.vldo, drdy_sel=v.drdy_sel, crp=v.crp
    )
    assert again == raw


@given(
    rate=st.sampled_from(sorted(RATE_CODES)),
    calmod=st.sampled_from(["internal", "offset", "gain"]),
    cals=st.booleans(),
    cal_err=st.booleans(),
    chs=st.booleans(),
)
def test_ctrl2_fields_round_trip(rate, calmod, cals, cal_err, chs):
    raw = REGISTERS.encode(
        "CTRL2", base=0, crs=rate, calmod=calmod, cals=cals, cal_err=cal_err, chs=chs
    )
    assert (raw >> 4) & 7 == RATE_CODES[rate]
    assert raw & 3 == {"internal": 0, "offset": 2, "gain": 3}[calmod]
    back = REGISTERS.decode("CTRL2", raw)
    assert (back.crs, back.calmod, back.cals, back.cal_err, back.chs) == (
        rate,
        calmod,
        cals,
        cal_err,
        chs,
    )
    assert REGISTERS.covers("CTRL2", ["crs", "calmod", "cals", "cal_err", "chs"])


def test_reserved_ctrl2_codes_decode_to_their_raw_bits():
    v = REGISTERS.decode("CTRL2", 0x51)  # CRS 5 and CALMOD 1 are reserved
    assert (v.crs, v.calmod) == (5, 1)


# -- grams ---------------------------------------------------------------------
def test_tare_then_calibrate_reads_a_known_mass_within_0_1_percent(tmp_path: Path):
    clock, bus, sim, scale = make(0.0, **BODY_SCALE)
    assert poll(scale, clock, 0.5)[-1].mass_g is None  # uncalibrated: no grams
    scale.tare(samples=10)
    assert poll(scale, clock, 0.5)[-1].mass_g is None  # tared only: still no grams
    sim.load = 20_000.0
    cal = scale.calibrate(20_000.0, samples=10)
    assert cal.counts_per_gram == pytest.approx(sim.counts_per_gram, rel=1e-3)

    sim.load = 70_000.0
    readings = poll(scale, clock, 1.0)
    assert len(readings) >= 9
    for r in readings:
        assert r.mass_g == pytest.approx(70_000.0, rel=1e-3)
        assert r.sensor == scale.name

    store = CalibrationStore(tmp_path)
    store.save("bench-1", scale.calibration)
    # A restart: a new driver resets and recalibrates the chip, and takes grams
    # from the stored calibration.
    again = Nau7802(bus, clock=clock, calibration=store.load("bench-1"))
    assert again.calibration == scale.calibration
    sim.load = 55_500.0
    readings = poll(again, clock, 1.0)
    assert readings and all(r.mass_g == pytest.approx(55_500.0, rel=1e-3) for r in readings)


def test_tare_keeps_counts_per_gram():
    clock, _bus, sim, scale = make(0.0)
    scale.tare()
    sim.load = 1000.0
    per_gram = scale.calibrate(1000.0).counts_per_gram
    sim.load = 250.0  # a bottle left on the dock becomes the new zero
    cal = scale.tare()
    assert cal.counts_per_gram == per_gram
    sim.load = 750.0
    assert statistics.mean(r.mass_g for r in poll(scale, clock, 1.0)) == pytest.approx(
        500.0, abs=1.0
    )


def test_calibrate_refuses_nonsense():
    _clock, _bus, _sim, scale = make(0.0)
    with pytest.raises(ValueError, match="tare"):
        scale.calibrate(1000.0)
    scale.tare()
    with pytest.raises(ValueError, match="positive"):
        scale.calibrate(0.0)
    with pytest.raises(ValueError, match="only"):
        scale.calibrate(1000.0)  # the mass never made it onto the scale
    with pytest.raises(ValueError, match="samples"):
        scale.tare(samples=0)


def test_a_calibration_from_another_gain_is_refused():
    with pytest.raises(ValueError, match=r"gain 64.*gain 128"):
        make(calibration=ScaleCalibration(offset_counts=0.0, counts_per_gram=10.0, gain=64))


def test_tare_recovers_a_chip_that_stopped_converting():
    clock, _bus, sim, scale = make(0.0)
    sim.write(PU_CTRL, bytes([PUD | PUA | AVDDS]))  # CS cleared behind the driver's back
    start = clock.now()
    scale.tare(samples=5)
    assert scale.stats.reinitialisations == 1
    assert clock.now() - start < 3.0


def test_no_conversions_at_all_raises_instead_of_hanging():
    class NeverConverts(Nau7802Sim):
        def update(self, now):
            if self._cal_end_t is not None and now >= self._cal_end_t:
                self._finish_calibration(self._cal_end_t)

    clock, _bus, _sim, scale = make(0.0, sim_cls=NeverConverts)
    start = clock.now()
    with pytest.raises(SensorStuck, match="0 of 5 conversions"):
        scale.tare(samples=5)
    assert clock.now() - start < 2.0


# -- timing and bus use ------------------------------------------------------------
@pytest.mark.parametrize("rate", [10, 20, 40, 80, 320])
def test_conversions_arrive_at_the_configured_rate(rate):
    clock, _bus, sim, scale = make(rate_sps=rate)
    poll(scale, clock, 0.5)
    made, missed = sim.conversions, sim.overwritten
    readings = poll(scale, clock, 5.0)
    assert abs(len(readings) - 5 * rate) <= 1
    assert sim.overwritten == missed  # polling at poll_interval sees every conversion
    assert sim.conversions - made == pytest.approx(len(readings), abs=1)
    gaps = [readings[i].t - readings[i - 1].t for i in range(1, len(readings))]
    assert statistics.mean(gaps) == pytest.approx(1 / rate, rel=0.01)


def test_read_never_blocks():
    clock, _bus, _sim, scale = make()
    for _ in range(50):
        before = clock.now()
        scale.read()
        assert clock.now() == before
        clock.sleep(scale.poll_interval)


@pytest.mark.parametrize("rate", [10, 80])
def test_one_status_byte_and_one_burst_per_conversion(rate):
    clock, bus, _sim, scale = make(rate_sps=rate)
    poll(scale, clock, 0.5)
    bus.stats.reset()
    bus.log.clear()
    readings = poll(scale, clock, 2.0)
    per = bus.stats.by_address[ADDR]
    assert (
        per.transactions / len(readings) <= 3.1
    )  # status hit + burst + about one early status read
    assert per.bytes / len(readings) <= 14.5
    bursts = [x for x in bus.log if x.register == 0x12]
    assert len(bursts) == len(readings)
    assert all(x.kind == "i2c_rdwr" and len(x.data) == 3 for x in bursts)
    assert not any(x.register in (0x13, 0x14) for x in bus.log)  # never byte by byte


# -- faults --------------------------------------------------------------------
def test_transient_nacks_are_retried_transparently():
    clock, bus, _sim, scale = make()
    poll(scale, clock, 0.5)
    bus.fail(ADDR, count=2)
    readings = poll(scale, clock, 1.0)
    assert len(readings) >= 9
    assert scale.device.stats.retries == 2
    assert scale.stats.faults == 0


def test_a_vanished_chip_raises_sensor_gone_then_recovers():
    clock, bus, _sim, scale = make()
    poll(scale, clock, 0.5)
    bus.vanish(ADDR)
    start = clock.now()
    err = read_until_raises(scale, clock)
    assert isinstance(err, SensorGone) and "0x2A" in str(err)
    assert clock.now() - start < 0.2  # bounded retries, not a hang
    with pytest.raises(SensorGone):  # still gone: still an error, still quick
        scale.read()
    bus.restore(ADDR)
    readings = poll(scale, clock, 1.0)
    assert len(readings) >= 8
    assert scale.stats.reinitialisations == 0  # the chip kept its settings
    assert scale.stats.faults == 2


def test_a_brownout_is_noticed_and_the_chip_reinitialised():
    clock, bus, sim, scale = make(0.0)
    scale.tare()
    sim.load = 1000.0
    scale.calibrate(1000.0)
    writes_before = len(sim.writes)
    bus.brownout(ADDR)
    readings = poll(scale, clock, 3.0)
    assert scale.stats.reinitialisations == 1
    assert scale.stats.faults == 0
    again = [(w.register, w.value) for w in list(sim.writes)[writes_before:]]
    assert again[0] == (PU_CTRL, RR) and again[-1] == (CTRL2, CALS)
    assert len(readings) >= 15  # back within about a second (settle + calibration)
    assert readings[-1].mass_g == pytest.approx(1000.0, abs=1.0)  # tare and scale still apply


@pytest.mark.parametrize("value", [0x00, 0xFF])
def test_a_stuck_bus_raises_a_sensor_error_without_hanging(value):
    clock, bus, _sim, scale = make()
    poll(scale, clock, 0.5)
    bus.stick(ADDR, value)
    start = clock.now()
    err = read_until_raises(scale, clock)
    assert isinstance(err, SensorStuck)
    assert clock.now() - start < 1.0
    bus.restore(ADDR)
    assert len(poll(scale, clock, 2.0)) >= 15


def test_identical_conversions_mean_stuck():
    clock, _bus, _sim, scale = make(1000.0, noise=False)
    err = read_until_raises(scale, clock)
    assert isinstance(err, SensorStuck) and "in a row" in str(err)
    assert scale.stats.conversions == drv.STUCK_CONVERSIONS - 1


def test_a_saturated_input_says_overload():
    clock, _bus, _sim, scale = make(4000.0, sensitivity_mv_per_v=100.0)
    err = read_until_raises(scale, clock)
    assert isinstance(err, SensorStuck) and "full scale" in str(err)


def test_power_up_ready_is_waited_for_with_a_bound():
    class NeverReady(Nau7802Sim):
        def read_register(self, register):
            value = super().read_register(register)
            return value & ~PUR if register == PU_CTRL else value

    clock = SimClock()
    bus = SimBus()
    bus.attach(ADDR, NeverReady(0.0, clock=clock))
    with pytest.raises(SensorStuck, match="PUR"):
        Nau7802(bus, clock=clock)
    assert clock.now() <= drv.PUR_TIMEOUT_S + 0.01


def test_a_calibration_that_never_ends_is_bounded():
    class NeverCalibrates(Nau7802Sim):
        def _finish_calibration(self, t):
            self._cal_end_t = t + 1.0  # forever busy

    clock = SimClock()
    bus = SimBus()
    bus.attach(ADDR, NeverCalibrates(0.0, clock=clock))
    with pytest.raises(SensorStuck, match="calibration did not finish"):
        Nau7802(bus, clock=clock)
    assert clock.now() <= drv.SETTLE_S + max(drv.CAL_TIMEOUT_S, 12 / 10) + 0.1  # 1 s or 12 periods


def test_a_failed_calibration_is_reported():
    class CalError(Nau7802Sim):
        def _finish_calibration(self, t):
            super()._finish_calibration(t)
            self.regs[CTRL2] |= 0x08

    clock = SimClock()
    bus = SimBus()
    bus.attach(ADDR, CalError(0.0, clock=clock))
    with pytest.raises(SensorError, match="CAL_ERR"):
        Nau7802(bus, clock=clock)


def test_close_powers_the_chip_down():
    _clock, bus, sim, scale = make()
    scale.close()
    assert sim.writes_to(PU_CTRL)[-1] == 0
    bus.vanish(ADDR)
    scale.close()  # a chip that is gone is not an error


def test_a_context_manager_powers_the_chip_down():
    clock = SimClock()
    bus = SimBus()
    sim = bus.attach(ADDR, Nau7802Sim(1000.0, clock=clock))
    with Nau7802(bus, clock=clock) as scale:
        assert poll(scale, clock, 1.0)
    assert sim.writes_to(PU_CTRL)[-1] == 0


def test_the_drivers_facts_are_what_the_config_and_the_calibration_check():
    assert Nau7802.GAINS == (1, 2, 4, 8, 16, 32, 64, 128)
    assert Nau7802.RATES_SPS == (10, 20, 40, 80, 320)
    assert Nau7802.LDO_VOLTS == (2.4, 2.7, 3.0, 3.3, 3.6, 3.9, 4.2, 4.5)
    assert Nau7802.check_address(0x2A) is None
    assert Nau7802.check_address(0x2B) == "the NAU7802 answers only at 0x2A, not 0x2B"
    with pytest.raises(ValueError, match="only at 0x2A"):
        Nau7802(SimBus(), 0x2B, clock=SimClock())
    for bad in (3, True, "128"):
        with pytest.raises(ValueError) as from_driver:
            Nau7802(SimBus(), gain=bad, clock=SimClock())
        with pytest.raises(ValueError) as from_calibration:
            ScaleCalibration(0.0, gain=bad)
        assert str(from_driver.value) == str(from_calibration.value)
    assert ScaleCalibration(0.0, ldo_v=3.31).ldo_v == 3.3


def test_the_sim_answers_the_revision_the_driver_checks():
    clock = SimClock()
    bus = SimBus()
    bus.attach(ADDR, Nau7802Sim(0.0, clock=clock))
    assert Nau7802.read_identity(bus, ADDR) == (0x0F, "NAU7802")


# -- the simulated chip itself ---------------------------------------------------
def test_sim_reset_values_and_register_reset():
    clock = SimClock()
    sim = Nau7802Sim(0.0, clock=clock)
    assert sim.read(0x1F, 1) == b"\x0f"
    assert sim.read(0x06, 4) == b"\x00\x80\x00\x00"  # GCAL1 = 1.0
    sim.write(CTRL1, b"\x27")
    sim.write(PU_CTRL, bytes([RR]))
    assert sim.read(CTRL1, 1) == b"\x00"
    sim.write(CTRL1, b"\x27")  # held in reset while RR = 1
    assert sim.read(CTRL1, 1) == b"\x00"
    sim.write(PU_CTRL, bytes([PUD]))
    assert not sim.read(PU_CTRL, 1)[0] & PUR
    clock.advance(250e-6)
    assert sim.read(PU_CTRL, 1)[0] & PUR


def test_sim_cr_clears_when_adco_b0_is_read():
    clock, _bus, sim, _scale = make()
    clock.advance(0.2)
    assert sim.read(PU_CTRL, 1)[0] & CR
    sim.read(0x12, 2)
    assert sim.read(PU_CTRL, 1)[0] & CR  # B2 and B1 alone leave it set
    sim.read(0x14, 1)
    assert not sim.read(PU_CTRL, 1)[0] & CR


def test_sim_internal_calibration_removes_the_chip_offset():
    clock = SimClock()
    bus = SimBus()
    sim = bus.attach(ADDR, Nau7802Sim(0.0, clock=clock, offset_g=0.0, chip_offset_v=15e-6))
    scale = Nau7802(bus, clock=clock)
    ocal = int.from_bytes(sim.read(0x03, 3), "big", signed=True)
    assert ocal == pytest.approx(15e-6 * 128 / 3.3 * (1 << 23), rel=0.01)
    raws = [r.raw for r in poll(scale, clock, 3.0)]
    assert abs(statistics.mean(raws)) < 20  # the offset is gone, only noise is left


@pytest.mark.parametrize("rate, nv", [(10, 50), (80, 50 * 8**0.5)])
def test_sim_noise_matches_the_model(rate, nv):
    clock, _bus, _sim, scale = make(1000.0, rate_sps=rate)
    raws = [r.raw for r in poll(scale, clock, 200 / rate)]
    counts_per_volt = 128 / 3.3 * (1 << 23)
    expected = ((nv * 1e-9) ** 2 + (1e-6 / 128) ** 2) ** 0.5 * counts_per_volt
    assert statistics.stdev(raws) == pytest.approx(expected, rel=0.2)


def test_sim_accepts_a_load_with_mass_g_or_a_callable():
    class Athlete:
        def mass_g(self, t):
            return 70_000.0 - 100.0 * t  # sweating

    for load in (Athlete(), lambda t: 70_000.0 - 100.0 * t):
        clock, _bus, sim, scale = make(0.0, **BODY_SCALE)
        scale.tare()
        sim.load = 20_000.0
        scale.calibrate(20_000.0)
        sim.load = load
        r = poll(scale, clock, 0.5)[-1]
        assert r.mass_g == pytest.approx(70_000.0 - 100.0 * r.t, abs=30.0)
    with pytest.raises(TypeError):
        Nau7802Sim("heavy")
