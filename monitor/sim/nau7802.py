"""A register-level NAU7802 load-cell ADC with a load cell on VIN1.

The load is anything with ``mass_g(t)`` (grams for an array of times), a
plain callable doing the same, or a number for a fixed mass::

    sim = Nau7802Sim(70_000.0, clock=clock, capacity_g=200_000, sensitivity_mv_per_v=2.0)
    bus.attach(0x2A, sim)
    sim.load = 68_500.0          # the athlete after a session

What it models, from the datasheet:

* reset values (GCAL = 1.0, REVISION_ID 0x0F) and RR, which holds every other
  register at reset while set;
* the power-up handshake: PUR sets 200 us after PUD;
* conversions only with PUD, PUA, PUR and CS, at the CTRL2 rate, the first a
  period after CS rises; no FIFO: ADCO keeps the newest, CR says it is unread
  and reading ADCO_B0 clears it;
* the signal chain: the bridge gives excitation x sensitivity x mass/capacity
  (excitation = the LDO voltage with AVDDS, else ``avdd_v``), plus the chip's
  own input offset and noise; the PGA multiplies by the gain and the ADC maps
  +-VREF/gain to +-2^23 counts (VREF = the excitation: ratiometric, as on the
  SparkFun and Adafruit boards), saturating at full scale. Output =
  GCAL x (measurement - OCAL), as datasheet 8.6.1 gives it;
* noise: 50 nV RMS input-referred at 10 SPS, growing with the square root of
  the rate, on top of an ADC floor (1 uV at the ADC input) divided by the gain;
* calibration: CALS starts it, it takes four conversion periods, then CALS
  clears. Internal offset (CALMOD 00) stores the chip's offset in OCAL1;
  system offset (10) the whole input; system gain (11) sets GCAL so the input
  reads full scale, with CAL_ERR when that needs a gain of 256 or more.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Real
from typing import Any

import numpy as np

from ..clock import Clock
from ..i2c.nau7802 import FULL_SCALE, RATES_SPS, REGISTERS
from .chip import SimChip

R = {reg.name: reg.address for reg in REGISTERS}
PU_CTRL, CTRL1, CTRL2 = R["PU_CTRL"], R["CTRL1"], R["CTRL2"]
OCAL1, GCAL1, ADCO_B2 = R["OCAL1"], R["GCAL1"], R["ADCO"]
ADCO_B0 = REGISTERS["ADCO"].addresses[-1]

_PU = {f.name: f.mask for f in REGISTERS["PU_CTRL"].fields}
RR, PUD, PUA, PUR, CS, CR, AVDDS = (
    _PU[n] for n in ("rr", "pud", "pua", "pur", "cs", "cr", "avdds")
)
CALS, CAL_ERR = REGISTERS["CTRL2"].field("cals").mask, REGISTERS["CTRL2"].field("cal_err").mask
CRS, CALMOD = REGISTERS["CTRL2"].field("crs"), REGISTERS["CTRL2"].field("calmod")
GAINS, VLDO = REGISTERS["CTRL1"].field("gains"), REGISTERS["CTRL1"].field("vldo")
GCAL_ONE = REGISTERS["GCAL1"].reset  # a gain calibration of 1.0

PUR_DELAY_S = 200e-6
CAL_PERIODS = 4
INPUT_NOISE_V_10SPS = 50e-9  # input-referred RMS at 10 SPS, gain 128
ADC_NOISE_V = 1e-6  # at the ADC input, i.e. divided by the gain when referred to the input


def _mass_source(load: Any) -> Callable[[np.ndarray], np.ndarray]:
    if isinstance(load, Real) and not isinstance(load, bool):
        value = float(load)
        return lambda t: np.full(np.shape(t), value)
    fn = getattr(load, "mass_g", None)
    if callable(fn):
        return fn
    if callable(load):
        return load
    raise TypeError(
        f"load must be a number of grams, a callable of time or have mass_g(t), not {load!r}"
    )


class Nau7802Sim(SimChip):
    """See the module docstring. ``seed`` fixes the noise and the chip's offset;
    ``noise=False`` gives exact values (the driver will call a long run of
    identical conversions stuck, as it should for a real chip). ``offset_g`` is
    the dead load (platform, bottle cradle) always on the cell, 2 % of capacity
    unless given; ``chip_offset_v`` the PGA's input offset that internal
    calibration removes."""

    name = "NAU7802"
    RESET = REGISTERS.reset_bytes()
    READ_ONLY = REGISTERS.read_only_addresses()

    def __init__(
        self,
        load: Any = 0.0,
        *,
        clock: Clock | None = None,
        seed: int = 0,
        noise: bool = True,
        capacity_g: float = 5000.0,
        sensitivity_mv_per_v: float = 1.0,
        offset_g: float | None = None,
        avdd_v: float = 3.3,
        chip_offset_v: float | None = None,
    ):
        if capacity_g <= 0:
            raise ValueError("capacity_g must be positive")
        self.load = load
        self.noise = noise
        self.capacity_g = float(capacity_g)
        self.sensitivity = float(sensitivity_mv_per_v) * 1e-3  # V/V at full capacity
        self.offset_g = 0.02 * self.capacity_g if offset_g is None else float(offset_g)
        self.avdd_v = float(avdd_v)
        self._rng = np.random.default_rng(seed)
        if chip_offset_v is None:
            chip_offset_v = float(self._rng.uniform(-20e-6, 20e-6))
        self.chip_offset_v = float(chip_offset_v)
        self.conversions = 0  # every conversion the chip made
        self.overwritten = 0  # conversions replaced before anyone read them
        self.calibrations = 0
        self._pur_at: float | None = None
        self._next_conv_t: float | None = None
        self._cal_end_t: float | None = None
        self._cr = False
        super().__init__(clock=clock)

    @property
    def load(self) -> Any:
        return self._load

    @load.setter
    def load(self, load: Any) -> None:
        self._mass = _mass_source(load)
        self._load = load

    # -- state -----------------------------------------------------------------
    def power_on_reset(self) -> None:
        super().power_on_reset()
        self._pur_at = None
        self._next_conv_t = None
        self._cal_end_t = None
        self._cr = False

    @property
    def rate_sps(self) -> int:
        # Reserved CRS codes 4..6 (which decode to themselves) behave as 10 SPS,
        # as Linux's driver assumes.
        sps = CRS.get(self.regs[CTRL2])
        return sps if sps in RATES_SPS else RATES_SPS[0]

    @property
    def gain(self) -> int:
        return GAINS.get(self.regs[CTRL1])

    @property
    def excitation_v(self) -> float:
        """AVDD: the bridge excitation and the ADC reference."""
        if self.regs[PU_CTRL] & AVDDS:
            return VLDO.get(self.regs[CTRL1])
        return self.avdd_v

    def _powered(self, now: float) -> bool:
        pu = self.regs[PU_CTRL]
        ready = self._pur_at is not None and now >= self._pur_at
        return bool(pu & PUD and pu & PUA and not pu & RR and ready)

    @property
    def calibrating(self) -> bool:
        return self._cal_end_t is not None

    # -- register side effects ---------------------------------------------------
    def read_register(self, register: int) -> int:
        if register == PU_CTRL:
            now = self.clock.now()
            pur = PUR if self._pur_at is not None and now >= self._pur_at else 0
            return (self.regs[PU_CTRL] & ~(PUR | CR)) | pur | (CR if self._cr else 0)
        if register == ADCO_B0:
            self._cr = False  # reading the last byte of a conversion marks it read
        return self.regs[register]

    def on_write(self, register: int, value: int, old: int) -> None:
        if register == PU_CTRL:
            self._write_pu_ctrl(value, old)
        elif self.regs[PU_CTRL] & RR:
            self.regs[register] = old  # RR holds every other register at its reset value
        elif register == CTRL2:
            self._write_ctrl2(value, old)

    def _write_pu_ctrl(self, value: int, old: int) -> None:
        now = self.clock.now()
        if value & RR:
            self.power_on_reset()
            self.resets -= 1  # a register reset, not a power cycle
            self.regs[PU_CTRL] = RR
            return
        self.regs[PU_CTRL] = value & ~(PUR | CR)  # status bits are composed on read
        if value & PUD:
            if self._pur_at is None:
                self._pur_at = now + PUR_DELAY_S
        else:
            self._pur_at = None
        if not (value & PUD and value & PUA and value & CS):
            self._next_conv_t = None
            self._cr = False
        elif (not old & CS or self._next_conv_t is None) and not self.calibrating:
            # A rising CS starts a conversion cycle: the first result is a period later.
            self._next_conv_t = max(now, self._pur_at or now) + 1.0 / self.rate_sps

    def _write_ctrl2(self, value: int, old: int) -> None:
        now = self.clock.now()
        cal_err = old & CAL_ERR
        if self.calibrating:
            self.regs[CTRL2] = (
                value | CALS
            ) & ~CAL_ERR | cal_err  # a calibration cannot be stopped
            return
        self.regs[CTRL2] = value & ~(CALS | CAL_ERR) | cal_err
        if (value ^ old) & CRS.mask and self._next_conv_t is not None:
            self._next_conv_t = now + 1.0 / self.rate_sps  # a new rate restarts the filter
        if value & CALS and self._powered(now):
            self.regs[CTRL2] |= CALS
            self._cal_end_t = now + CAL_PERIODS / self.rate_sps
            self._next_conv_t = None
            self._cr = False

    # -- time --------------------------------------------------------------------
    def update(self, now: float) -> None:
        if self._cal_end_t is not None and now >= self._cal_end_t:
            self._finish_calibration(self._cal_end_t)
        if self._next_conv_t is None or not self._powered(now) or not self.regs[PU_CTRL] & CS:
            return
        if now < self._next_conv_t:
            return
        period = 1.0 / self.rate_sps
        n = math.floor((now - self._next_conv_t) / period) + 1
        last_t = self._next_conv_t + (n - 1) * period
        self._next_conv_t += n * period
        # No FIFO: only the newest conversion survives, so only it is computed.
        self.overwritten += n - 1 + (1 if self._cr else 0)
        self.conversions += n
        self._store_adco(self._output_counts(last_t, period))
        self._cr = True

    def _finish_calibration(self, t: float) -> None:
        self._cal_end_t = None
        self.calibrations += 1
        mode = CALMOD.get(self.regs[CTRL2])
        period = 1.0 / self.rate_sps
        error = False
        # The calibration averages its conversions, so its own noise is small.
        residual = self._noise_v(CAL_PERIODS) if self.noise else 0.0
        if mode == "internal":  # internal offset: inputs shorted inside the chip
            self._set_ocal(self._volts_to_counts(self.chip_offset_v + residual))
        elif mode == "offset":  # system offset: whatever is on the inputs now becomes zero
            self._set_ocal(self._measurement(t, noise_v=residual))
        elif mode == "gain":  # system gain: what is on the inputs now becomes full scale
            signal = self._measurement(t, noise_v=residual) - self._ocal()
            if signal <= 0 or (FULL_SCALE - 1) / signal >= 256:
                error = True
            else:
                gcal = round((FULL_SCALE - 1) / signal * GCAL_ONE)
                self.regs[GCAL1 : GCAL1 + 4] = int(gcal).to_bytes(4, "big")
        else:  # CALMOD 01 is reserved
            error = True
        self.regs[CTRL2] &= ~(CALS | CAL_ERR)
        if error:
            self.regs[CTRL2] |= CAL_ERR
        if self.regs[PU_CTRL] & CS:
            self._next_conv_t = t + period

    # -- the signal chain ----------------------------------------------------------
    def _noise_v(self, averaged: int = 1) -> float:
        rms = math.hypot(
            INPUT_NOISE_V_10SPS * math.sqrt(self.rate_sps / 10), ADC_NOISE_V / self.gain
        )
        return float(self._rng.normal(0.0, rms / math.sqrt(averaged)))

    def _volts_to_counts(self, input_v: float) -> float:
        return input_v * self.gain / self.excitation_v * FULL_SCALE

    def _measurement(self, t: float, noise_v: float | None = None) -> float:
        """Counts before OCAL/GCAL: bridge signal plus chip offset plus noise."""
        mass = float(np.asarray(self._mass(np.array([t])), dtype=float).reshape(-1)[0])
        bridge_v = self.excitation_v * self.sensitivity * (mass + self.offset_g) / self.capacity_g
        if noise_v is None:
            noise_v = self._noise_v() if self.noise else 0.0
        return self._volts_to_counts(bridge_v + self.chip_offset_v + noise_v)

    def _ocal(self) -> int:
        return int.from_bytes(bytes(self.regs[OCAL1 : OCAL1 + 3]), "big", signed=True)

    def _set_ocal(self, counts: float) -> None:
        value = max(-FULL_SCALE, min(FULL_SCALE - 1, round(counts)))
        self.regs[OCAL1 : OCAL1 + 3] = int(value).to_bytes(3, "big", signed=True)

    def _output_counts(self, t: float, period: float) -> int:
        gcal = int.from_bytes(bytes(self.regs[GCAL1 : GCAL1 + 4]), "big") / GCAL_ONE
        out = gcal * (self._measurement(t) - self._ocal())
        return int(max(-FULL_SCALE, min(FULL_SCALE - 1, round(out))))

    def _store_adco(self, counts: int) -> None:
        self.regs[ADCO_B2 : ADCO_B2 + 3] = int(counts).to_bytes(3, "big", signed=True)

    # -- for tests ---------------------------------------------------------------
    @property
    def counts_per_gram(self) -> float:
        """The ideal scale factor at the current gain (ratiometric: the excitation cancels)."""
        return self.gain * self.sensitivity / self.capacity_g * FULL_SCALE
