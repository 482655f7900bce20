"""Nuvoton NAU7802: the 24-bit load-cell ADC behind the hydration scale.

Register names and bits follow the NAU7802 datasheet (rev 1.7, section 11),
cross-checked against the SparkFun, Adafruit and Linux (iio/adc/nau7802.c)
drivers. The I2C address is fixed at 0x2A.

    scale = Nau7802(bus, gain=128, rate_sps=10, ldo_v=3.3, clock=clock)
    scale.tare()                          # nothing on the scale
    scale.calibrate(known_mass_g=20_000)  # a 20 kg plate on it
    reading = scale.read()                # ScaleReading(t, raw, mass_g) or None
    store.save("bench-1", scale.calibration)

The chip has no FIFO: ADCO holds only the newest conversion, and PU_CTRL.CR
says it has not been read yet. ``read`` returns that conversion or None, and
never blocks; poll it every :attr:`Nau7802.poll_interval` to see every
conversion (mass changes slowly, so missing one is harmless).

Start-up and recovery follow the datasheet's power-on sequence (9.1): RR=1,
then RR=0 with PUD=1, wait for PUR, program the LDO, gain and rate, PUA=1,
CS=1, let the analog side settle, then the internal offset calibration
(CALMOD=00, CALS=1, wait for CALS to clear, check CAL_ERR). The constructor
waits for all of it; after a brown-out ``read`` runs the same steps without
blocking and returns None until the chip converts again.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from ..clock import Clock
from ..errors import SensorError, SensorGone, SensorNotFound, SensorStuck
from .calibration import ScaleCalibration
from .chip import Chip, ChipStats
from .device import Bus, RetryPolicy
from .registers import Field, Flag, Lookup, Register, RegisterMap

REGISTERS = RegisterMap(
    Register(
        "PU_CTRL",
        0x00,
        fields=(
            Field("avdds", 0b1000_0000, Flag()),  # AVDD source: 1 = internal LDO, 0 = AVDD pin
            Field("oscs", 0b0100_0000, Flag()),  # 1 = external crystal
            Field("cr", 0b0010_0000, Flag()),  # read-only: a conversion is ready (not yet read)
            Field("cs", 0b0001_0000, Flag()),  # cycle start: 1 = convert continuously
            Field("pur", 0b0000_1000, Flag()),  # read-only: power-up ready
            Field("pua", 0b0000_0100, Flag()),  # power up the analog side
            Field("pud", 0b0000_0010, Flag()),  # power up the digital side
            Field(
                "rr", 0b0000_0001, Flag()
            ),  # register reset: 1 holds every register at its reset value
        ),
    ),
    Register(
        "CTRL1",
        0x01,
        fields=(
            Field("crp", 0b1000_0000, Flag()),  # DRDY pin polarity: 1 = active low
            Field("drdy_sel", 0b0100_0000, Flag()),  # DRDY pin: 0 = conversion ready, 1 = clock out
            Field(
                "vldo",
                0b0011_1000,
                Lookup({4.5: 0, 4.2: 1, 3.9: 2, 3.6: 3, 3.3: 4, 3.0: 5, 2.7: 6, 2.4: 7}),
            ),
            Field(
                "gains", 0b0000_0111, Lookup({1: 0, 2: 1, 4: 2, 8: 3, 16: 4, 32: 5, 64: 6, 128: 7})
            ),
        ),
    ),
    Register(
        "CTRL2",
        0x02,
        fields=(
            Field("chs", 0b1000_0000, Flag()),  # channel: 0 = VIN1, 1 = VIN2
            Field(
                "crs", 0b0111_0000, Lookup({10: 0, 20: 1, 40: 2, 80: 3, 320: 7})
            ),  # 4..6 reserved
            Field("cal_err", 0b0000_1000, Flag()),  # read-only: the last calibration failed
            Field("cals", 0b0000_0100, Flag()),  # 1 starts a calibration; clears itself when done
            Field("calmod", 0b0000_0011, Lookup({"internal": 0, "offset": 2, "gain": 3})),
        ),
    ),
    # Calibration registers: ADC output = GCAL * (measurement - OCAL), GCAL 1.0 = 0x00800000.
    Register("OCAL1", 0x03, size=3, signed=True),
    Register("GCAL1", 0x06, size=4, reset=0x0080_0000),
    Register("OCAL2", 0x0A, size=3, signed=True),
    Register("GCAL2", 0x0D, size=4, reset=0x0080_0000),
    Register("I2C_CONTROL", 0x11),
    # The conversion: 24-bit two's complement, MSB first.
    Register("ADCO", 0x12, size=3, signed=True, read_only=True),
    Register(
        "ADC",
        0x15,
        fields=(  # reads back OTP[31:24] when PGA.rd_otp_sel = 1
            Field("reg_chps", 0b0011_0000),  # chopper clock: 3 = off
            Field("adc_vcm", 0b0000_1100),
            Field("reg_chp", 0b0000_0011),
        ),
    ),
    Register(
        "PGA",
        0x1B,
        fields=(
            Field("rd_otp_sel", 0b1000_0000, Flag()),
            Field(
                "ldomode", 0b0100_0000, Flag()
            ),  # 0 = low-ESR capacitor on the LDO (better accuracy)
            Field("pga_out_en", 0b0010_0000, Flag()),
            Field("pga_bypass_en", 0b0001_0000, Flag()),
            Field("pga_inv", 0b0000_1000, Flag()),
            Field("pgachpdis", 0b0000_0001, Flag()),  # 1 disables the PGA chopper
        ),
    ),
    Register(
        "POWER",
        0x1C,
        fields=(
            Field(
                "pga_cap_en", 0b1000_0000, Flag()
            ),  # decoupling capacitor across VIN2 (single-channel use)
            Field("mstr_bias_curr", 0b0111_0000),
            Field("adc_curr", 0b0000_1100),
            Field("pga_curr", 0b0000_0011),
        ),
    ),
    Register("REVISION_ID", 0x1F, reset=0x0F, read_only=True),  # the low nibble is 0xF
)

#: what CTRL1 and CTRL2 offer: PGA gains, LDO voltages, output data rates (samples/s)
GAINS = REGISTERS.choices("CTRL1", "gains")
LDO_VOLTS = REGISTERS.choices("CTRL1", "vldo")
RATES_SPS = REGISTERS.choices("CTRL2", "crs")

CR = REGISTERS["PU_CTRL"].field("cr").mask
PUR = REGISTERS["PU_CTRL"].field("pur").mask
FULL_SCALE = 1 << 23  # counts at +-VREF/gain
CHOPPER_OFF = 3  # ADC REG_CHPS: the chopper clock off (datasheet 9.1)

PUR_FIRST_CHECK_S = 0.0002  # PUR sets "after about 200 microseconds" (datasheet 9.1)
PUR_POLL_S = 0.001
PUR_TIMEOUT_S = 0.1
#: After PUA and CS the analog side needs time before an offset calibration means
#: anything: the LDO ramps in about 200 ms (SparkFun waits 250 ms) and Adafruit
#: waits 600 ms for analog wake-up to data ready. Calibrating earlier bakes a
#: wrong offset into OCAL, so wait the longer.
SETTLE_S = 0.6
CAL_POLL_S = 0.01
#: SparkFun measured about 344 ms for an internal calibration and allows 1 s.
CAL_TIMEOUT_S = 1.0
#: Consecutive identical conversions that mean "stuck": a 24-bit ADC with its
#: input-referred noise of tens of nV shows many counts of noise on every sample.
STUCK_CONVERSIONS = 32


def adc_counts(data: bytes | bytearray | list[int]) -> int:
    """Decode ADCO_B2, ADCO_B1, ADCO_B0 (24-bit two's complement, MSB first).

    adc_counts(b"\\x7f\\xff\\xff")   # -> 8388607
    adc_counts(b"\\x80\\x00\\x00")   # -> -8388608
    adc_counts(b"\\xff\\xff\\xff")   # -> -1
    """
    if len(data) != 3:
        raise ValueError(f"a NAU7802 conversion is 3 bytes, not {len(data)}")
    return REGISTERS["ADCO"].from_bytes(bytes(data))


def checked_gain(gain: Any) -> int:
    """``gain`` if the PGA offers it; ValueError naming the gains it offers otherwise."""
    if gain not in GAINS or isinstance(gain, bool):
        raise ValueError(f"gain must be one of {', '.join(map(str, GAINS))}, not {gain!r}")
    return int(gain)


def checked_ldo(volts: Any) -> float | None:
    """``volts`` as one of the LDO voltages (to 0.1 V), None for an external AVDD.

    Anything else is a ValueError.
    """
    if volts is None:
        return None
    number = (
        isinstance(volts, (int, float)) and not isinstance(volts, bool) and math.isfinite(volts)
    )
    if number and round(float(volts), 1) in LDO_VOLTS:
        return round(float(volts), 1)
    raise ValueError(
        f"ldo_v must be one of {', '.join(map(str, LDO_VOLTS))} V "
        f"or None for an external AVDD, not {volts!r}"
    )


@dataclass(frozen=True)
class ScaleReading:
    """One conversion: ``t`` clock seconds when it was read (it finished at most
    one conversion period earlier), ``raw`` signed counts, ``mass_g`` grams or
    None while the scale is not calibrated, ``sensor`` the scale's name."""

    t: float
    raw: int
    mass_g: float | None
    sensor: str = ""


@dataclass
class ScaleStats(ChipStats):
    conversions: int = 0
    empty_polls: int = 0  # bus polls that found no new conversion
    discarded: int = 0  # conversions straddling a calibration, dropped
    reinitialisations: int = 0  # brown-outs (or resets) noticed and recovered from


class _Phase(enum.Enum):
    SETTLING = "settling"  # powered up and converting; waiting before calibration
    CALIBRATING = "calibrating"  # CALS set, waiting for it to clear
    RUNNING = "running"


class Nau7802(Chip):
    """A NAU7802 load-cell ADC: raw counts, and grams once calibrated.

    ``gain`` is the PGA gain (1..128; 128 for a load cell's millivolts),
    ``rate_sps`` 10, 20, 40, 80 or 320 conversions per second (10 has the least
    noise and rejects mains hum), ``ldo_v`` the internal LDO that powers the
    bridge and is the ADC reference (2.4..4.5 V, no higher than DVDD: 3.3 V or
    less on a Pi's 3.3 V rail), or None when AVDD is supplied on its pin.
    ``calibration`` is a :class:`ScaleCalibration` made at the same gain, e.g.
    from :class:`~monitor.i2c.calibration.CalibrationStore`::

        with Nau7802(bus, clock=clock, calibration=store.load("bench-1")) as scale:
            while True:
                r = scale.read()
                if r is not None and r.mass_g is not None:
                    print(f"{r.mass_g / 1000:.2f} kg")
                clock.sleep(scale.poll_interval)
    """

    CHIP = "NAU7802"
    REGISTERS = REGISTERS
    ADDRESSES = (0x2A,)
    ID_REGISTER = "REVISION_ID"
    IDENTITIES = MappingProxyType({REGISTERS["REVISION_ID"].reset: "NAU7802"})
    ID_MASK = 0x0F
    GAINS = GAINS
    LDO_VOLTS = LDO_VOLTS
    RATES_SPS = RATES_SPS

    stats: ScaleStats

    def __init__(
        self,
        bus: Bus,
        address: int = ADDRESSES[0],
        *,
        gain: int = 128,
        rate_sps: int = 10,
        ldo_v: float | None = 3.3,
        clock: Clock | None = None,
        calibration: ScaleCalibration | None = None,
        name: str | None = None,
        bus_name: str | int | None = None,
        retry: RetryPolicy | None = None,
    ):
        super().__init__(bus, address, clock=clock, retry=retry, name=name, bus_name=bus_name)
        self.gain = checked_gain(gain)
        if rate_sps not in RATES_SPS or isinstance(rate_sps, bool):
            allowed = ", ".join(map(str, RATES_SPS))
            raise ValueError(f"rate_sps must be one of {allowed}, not {rate_sps!r}")
        self.rate_sps = int(rate_sps)
        self.ldo_v = checked_ldo(ldo_v)
        self.stats = ScaleStats()
        self._calibration: ScaleCalibration | None = None
        self.calibration = calibration  # validated by the setter
        self._period = 1.0 / self.rate_sps
        self._phase = _Phase.SETTLING
        self._phase_deadline = 0.0
        self._discard = 0
        self._last_seen: float | None = None
        self._last_raw: int | None = None
        self._same_run = 0
        self._ever_ran = False
        try:
            self._identify()
        except SensorGone as err:
            raise SensorNotFound(
                f"nothing answers as {self.name}: check its wiring (SDA, SCL, 3.3 V, GND), "
                "that `i2cdetect -y 1` shows 2a, and the bus number in the config",
                sensor=self.name,
                address=self.address,
            ) from err
        self._start()
        self._healthy = True
        deadline = self.clock.now() + SETTLE_S + self._cal_timeout + 1.0
        while not self._advance_startup():
            if self.clock.now() > deadline:  # a guard; _advance_startup has its own deadlines
                raise SensorStuck(
                    f"{self.name} did not finish starting up",
                    sensor=self.name,
                    address=self.address,
                )
            self.clock.sleep(CAL_POLL_S)
        self._ever_ran = True

    # -- public ------------------------------------------------------------
    @property
    def period(self) -> float:
        """Seconds between conversions."""
        return self._period

    @property
    def poll_interval(self) -> float:
        """How often to call :meth:`read` to see every conversion (a fifth of a period).

        ``read`` does not touch the bus until 70 % of a period has passed since
        the last conversion it read, so polling this often costs about one empty
        status read per conversion; any poll interval up to 25 % of a period
        sees every conversion even with the chip's oscillator 5 % fast.
        """
        return 0.2 * self._period

    @property
    def calibration(self) -> ScaleCalibration | None:
        return self._calibration

    @calibration.setter
    def calibration(self, calibration: ScaleCalibration | None) -> None:
        if calibration is not None:
            if not isinstance(calibration, ScaleCalibration):
                raise TypeError(
                    f"calibration must be a ScaleCalibration, not {type(calibration).__name__}"
                )
            if calibration.gain != self.gain:
                raise ValueError(
                    f"{self.name}: the calibration was made at gain {calibration.gain} but the "
                    f"scale runs at gain {self.gain}; tare and calibrate again"
                )
        self._calibration = calibration

    def read(self) -> ScaleReading | None:
        """The newest conversion if there is one not yet read, else None. Never blocks.

        Raises :class:`~monitor.errors.SensorGone` when the chip stops answering
        and :class:`~monitor.errors.SensorStuck` when it answers nonsense; the
        next call tries to bring it back.
        """
        return self._guarded(self._next_reading)

    def _next_reading(self) -> ScaleReading | None:
        if self._phase is not _Phase.RUNNING and not self._advance_startup():
            return None
        now = self.clock.now()
        if self._last_seen is not None and now - self._last_seen < 0.7 * self._period:
            return None  # no new conversion can be ready yet: spare the bus
        # Two transactions per conversion: PU_CTRL (1 byte) tells whether a
        # conversion is ready *and* whether the chip still runs our setup
        # (a brown-out clears PUR, PUA and CS); then ADCO in one 3-byte burst.
        # One burst from 0x00 through ADCO_B0 would be a single transaction
        # but 21 bytes, and reading ADCO_B0 when CR was 0 could clear the CR
        # of a conversion finishing mid-burst, losing it.
        status = self.device.read("PU_CTRL")
        if status & ~CR != self._running_status:
            self._reinitialise()  # a brown-out, or a chip reset behind our back
            return None
        if not status & CR:
            self.stats.empty_polls += 1
            return None
        raw = adc_counts(self.device.read_burst("ADCO", 3))
        self._last_seen = now
        if self._discard:
            self._discard -= 1
            self.stats.discarded += 1
            return None
        self._check_stuck(raw)
        self.stats.conversions += 1
        cal = self._calibration
        return ScaleReading(now, raw, cal.mass_g(raw) if cal else None, self.name)

    def tare(self, samples: int = 10) -> ScaleCalibration:
        """Average ``samples`` conversions with the scale empty and make that zero.

        Keeps counts per gram from an earlier :meth:`calibrate`. Waits at most
        a little over ``samples`` conversion periods (plus a recovery, if the
        chip needs one) on the clock.
        """
        offset = self._average(samples)
        cal = self._calibration
        if cal is None:
            cal = ScaleCalibration(
                offset, None, gain=self.gain, ldo_v=self.ldo_v, created=self.clock.wall()
            )
        else:
            cal = replace(cal, offset_counts=offset, created=self.clock.wall())
        self._calibration = cal
        return cal

    def calibrate(self, known_mass_g: float, samples: int = 10) -> ScaleCalibration:
        """Set counts per gram from ``known_mass_g`` on the (tared) scale."""
        if (
            isinstance(known_mass_g, bool)
            or not isinstance(known_mass_g, (int, float))
            or not known_mass_g > 0
        ):
            raise ValueError(
                f"known_mass_g must be a positive number of grams, not {known_mass_g!r}"
            )
        if self._calibration is None:
            raise ValueError(
                f"{self.name}: tare the empty scale before calibrating with a known mass"
            )
        loaded = self._average(samples)
        delta = loaded - self._calibration.offset_counts
        if abs(delta) < 100:
            raise ValueError(
                f"{self.name}: {known_mass_g:g} g moved the reading by only {delta:.0f} counts; "
                "is the mass on the scale, and is the load cell wired to VIN1?"
            )
        cal = replace(
            self._calibration, counts_per_gram=delta / known_mass_g, created=self.clock.wall()
        )
        self._calibration = cal
        return cal

    def _power_down(self) -> None:
        """PUD = PUA = 0: about 200 nA."""
        self.device.set("PU_CTRL", pud=False, pua=False)

    def __repr__(self) -> str:
        return f"<Nau7802 {self.name} gain={self.gain} rate={self.rate_sps} SPS>"

    # -- start-up ------------------------------------------------------------
    @property
    def _running_status(self) -> int:
        """PU_CTRL, less CR, while the chip runs our configuration."""
        return REGISTERS.value(
            "PU_CTRL", pud=True, pua=True, pur=True, cs=True, avdds=self.ldo_v is not None
        )

    def _identify(self) -> None:
        rev = self.device.read("REVISION_ID")
        if self.part(rev):
            return
        if self._ever_ran:
            # It was a NAU7802 a moment ago: bytes like this mean a stuck bus or chip.
            raise SensorStuck(
                f"{self.name} answers REVISION_ID 0x{rev:02X}: its bytes cannot be right; "
                "power-cycle it and check its supply and the I2C pull-ups",
                sensor=self.name,
                address=self.address,
            )
        raise SensorNotFound(
            f"{self.name}: REVISION_ID (0x1F) reads 0x{rev:02X}, not 0x_F as a NAU7802's does: "
            "check that the chip at this address is the load-cell ADC "
            "(a NAU7802 is always at 0x2A) and its wiring",
            sensor=self.name,
            address=self.address,
        )

    def _start(self) -> None:
        """Reset, power up, configure, start converting (datasheet 9.1).

        Calibration follows later.
        """
        d = self.device
        d.set("PU_CTRL", rr=True)
        d.set("PU_CTRL", pud=True)
        self._wait_power_up_ready()
        # VLDO before AVDDS, so the LDO never comes up at its 4.5 V reset value,
        # above a 3.3 V DVDD and the bridge's rating.
        ldo = {"vldo": self.ldo_v} if self.ldo_v is not None else {}
        ctrl1 = d.set("CTRL1", gains=self.gain, **ldo)
        d.set("PU_CTRL", pud=True, pua=True, avdds=bool(ldo))
        ctrl2 = d.set("CTRL2", crs=self.rate_sps, calmod="internal")
        d.set("ADC", reg_chps=CHOPPER_OFF)  # datasheet 9.1
        # A capacitor across VIN2 stabilises the PGA output when only VIN1 is used
        # (datasheet application note; what the SparkFun and Adafruit boards do).
        d.set("POWER", pga_cap_en=True)
        # A chip that drops what it is written (a stuck bus, a dead chip behind a
        # live pull-up) shows here rather than as plausible-looking data later.
        got = d.read_burst("CTRL1", 2)
        if got != bytes((ctrl1, ctrl2)):
            raise SensorStuck(
                f"{self.name} does not keep its settings (wrote CTRL1/CTRL2 "
                f"{ctrl1:02X} {ctrl2:02X}, read {got.hex(' ').upper()}): power-cycle it "
                "and check its supply",
                sensor=self.name,
                address=self.address,
            )
        d.set(
            "PU_CTRL", pud=True, pua=True, cs=True, avdds=bool(ldo)
        )  # CS = 1: convert continuously
        self._phase = _Phase.SETTLING
        self._phase_deadline = self.clock.now() + SETTLE_S
        self._last_seen = None
        self._last_raw = None
        self._same_run = 0

    def _wait_power_up_ready(self) -> None:
        deadline = self.clock.now() + PUR_TIMEOUT_S
        self.clock.sleep(PUR_FIRST_CHECK_S)
        while not self.device.read("PU_CTRL") & PUR:
            if self.clock.now() >= deadline:
                raise SensorStuck(
                    f"{self.name} did not report power-up ready (PUR) within "
                    f"{PUR_TIMEOUT_S * 1000:.0f} ms of PUD: check its supply",
                    sensor=self.name,
                    address=self.address,
                )
            self.clock.sleep(PUR_POLL_S)

    def _advance_startup(self) -> bool:
        """One non-blocking step of settle -> calibrate -> run. True once running."""
        now = self.clock.now()
        if self._phase is _Phase.SETTLING:
            if now < self._phase_deadline:
                return False
            # CALMOD = 00 (internal offset) is already in CTRL2; CALS starts it.
            self.device.set("CTRL2", crs=self.rate_sps, calmod="internal", cals=True)
            self._phase = _Phase.CALIBRATING
            self._phase_deadline = now + self._cal_timeout
            return False
        if self._phase is _Phase.CALIBRATING:
            pu_ctrl, _, ctrl2 = self.device.read_burst("PU_CTRL", 3)  # PU_CTRL..CTRL2, one burst
            if pu_ctrl & ~CR != self._running_status:
                self._reinitialise()  # reset while calibrating
                return False
            status = REGISTERS.decode("CTRL2", ctrl2)
            if status.cals:
                if now > self._phase_deadline:
                    raise SensorStuck(
                        f"{self.name}: offset calibration did not finish within "
                        f"{self._cal_timeout:.1f} s: power-cycle it",
                        sensor=self.name,
                        address=self.address,
                    )
                return False
            if status.cal_err:
                raise SensorError(
                    f"{self.name}: offset calibration failed (CAL_ERR): check the load "
                    "cell's wiring to VIN1",
                    sensor=self.name,
                    address=self.address,
                )
            self._phase = _Phase.RUNNING
            # The conversion in flight when calibration ended mixes both states.
            self._discard = 1
        return True

    @property
    def _cal_timeout(self) -> float:
        return max(CAL_TIMEOUT_S, 12 * self._period)

    def _reinitialise(self) -> None:
        self.stats.reinitialisations += 1
        self._identify()  # a stuck bus reads as a reset chip; this tells them apart
        self._start()

    def _recover(self) -> None:
        """After a fault: same chip? still running our setup? Restart if not."""
        self._identify()
        if self._phase is _Phase.RUNNING:
            if self.device.read("PU_CTRL") & ~CR == self._running_status:
                self._last_seen = None
                return
            self._reinitialise()
        else:
            self._start()

    # -- data ------------------------------------------------------------------
    def _check_stuck(self, raw: int) -> None:
        if raw == self._last_raw:
            self._same_run += 1
        else:
            self._last_raw, self._same_run = raw, 1
        if self._same_run < STUCK_CONVERSIONS:
            return
        if raw in (FULL_SCALE - 1, -FULL_SCALE):
            raise SensorStuck(
                f"{self.name} reads full scale ({raw}) on every conversion: the load cell is "
                "overloaded or a bridge wire is off",
                sensor=self.name,
                address=self.address,
            )
        raise SensorStuck(
            f"{self.name} returned {raw} on {self._same_run} conversions in a row; a real "
            "24-bit ADC always shows noise: it is stuck; power-cycle it",
            sensor=self.name,
            address=self.address,
        )

    def _average(self, samples: int) -> float:
        if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
            raise ValueError(f"samples must be a positive whole number, not {samples!r}")
        # Enough time for the conversions, plus a start-up for each restart the
        # chip needs on the way (at most two: a chip that keeps resetting is broken).
        start = self.clock.now()
        base = (samples + 3) * self._period * 1.5
        startup = SETTLE_S + self._cal_timeout
        starting = self._phase is not _Phase.RUNNING or not self._healthy
        restarts_before = self.stats.reinitialisations - starting
        values: list[int] = []
        while len(values) < samples:
            reading = self.read()
            if reading is not None:
                values.append(reading.raw)
                continue
            restarts = min(self.stats.reinitialisations - restarts_before, 2)
            if self.clock.now() > start + base + restarts * startup:
                raise SensorStuck(
                    f"{self.name} gave {len(values)} of {samples} conversions in "
                    f"{self.clock.now() - start:.1f} s",
                    sensor=self.name,
                    address=self.address,
                )
            self.clock.sleep(self.poll_interval)
        return sum(values) / len(values)
