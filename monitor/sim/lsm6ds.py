"""A register-level LSM6DSO / LSM6DSOX / LSM6DS3 / LSM6DSL for tests, benchmarks and the demo.

It answers like the real chip for what :class:`~monitor.i2c.lsm6ds.Lsm6ds`
uses: WHO_AM_I, CTRL3_C at its reset value 0x04 (IF_INC on) with SW_RESET and
BOOT bits that clear themselves after the datasheet's delays, a sample clock at
the configured ODR run from the shared clock, the output registers
(OUTX_L_XL..., OUTX_L_G...) holding the latest sample with STATUS_REG's
XLDA/GDA, and the FIFO of the variant::

    sim = Lsm6dsSim(motion, clock=clock)                     # LSM6DSO, WHO_AM_I 0x6C
    sim = Lsm6dsSim(motion, clock=clock, variant="LSM6DS3")  # 0x69, untagged 8 KB FIFO
    bus.attach(0x6A, sim)

``motion`` has ``accel(t) -> (N, 3)`` m/s^2 with gravity, and optionally
``gyro(t) -> (N, 3)`` rad/s, for an array of times. Samples get white noise at
the datasheet's noise density (sigma = density * sqrt(ODR / 2)), are quantised
at the datasheet sensitivity of the full scale, and saturate at int16.

The FIFO fills in continuous mode at the sample rate: tagged 7-byte words
(LSM6DSO: gyroscope word then accelerometer word per batch slot, TAG_CNT
counting slots) or a pattern of 16-bit words (LSM6DS3: gyroscope X, Y, Z then
accelerometer X, Y, Z). When full, the newest data overwrite the oldest
(whole words on the DSO, whole 3-word data sets on the DS3) and the overrun
flags go up; FIFO mode (stop when full) keeps the oldest instead. Bypass mode
empties it. A burst read from the FIFO output registers pops word after word,
the address rolling back from the last output register to the first.

Simplifications, none of which the driver depends on: batch rates (BDR_XL,
BDR_GY, ODR_FIFO) and decimation only switch batching on or off, everything
being stored at the accelerometer's ODR (the gyroscope runs at it too); the
tag parity bit is left 0; reading the TAG (or FIFO_DATA_OUT_L) register is what
pops the next word, and with IF_INC off the FIFO registers do not pop at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..clock import Clock
from ..i2c.lsm6ds import (
    ACCEL_MG_PER_LSB,
    DS3_REGISTERS,
    DSO_REGISTERS,
    GYRO_MDPS_PER_LSB,
    LSM6DS3,
    LSM6DS3_CHIP_WORDS_MAX,
    LSM6DSL,
    LSM6DSO,
    TAG_GYRO_NC,
    TAG_XL_NC,
    TAGGED_WORD,
    Family,
)
from ..i2c.registers import Field, RegisterMap
from ..units import G
from .chip import SampleClock, SamplingChip

# Register addresses: the same on every variant unless named (DSO_, DS3_).
_DSO = {reg.name: reg.address for reg in DSO_REGISTERS}
_DS3 = {reg.name: reg.address for reg in DS3_REGISTERS}
WHO_AM_I, CTRL1_XL, CTRL2_G = _DSO["WHO_AM_I"], _DSO["CTRL1_XL"], _DSO["CTRL2_G"]
CTRL3_C, STATUS_REG = _DSO["CTRL3_C"], _DSO["STATUS_REG"]
OUT_TEMP_L, OUTX_L_G, OUTX_L_XL = _DSO["OUT_TEMP"], _DSO["OUTX_L_G"], _DSO["OUTX_L_XL"]
FIFO_STATUS1, FIFO_STATUS2 = _DS3["FIFO_STATUS1"], _DS3["FIFO_STATUS2"]
FIFO_STATUS3, FIFO_STATUS4 = _DS3["FIFO_STATUS3"], _DS3["FIFO_STATUS4"]
FIFO_MODE_REG = _DSO["FIFO_CTRL4"]
assert _DS3["FIFO_CTRL5"] == FIFO_MODE_REG  # FIFO_MODE sits at 0x0A on both families
DSO_FIFO_CTRL1, DSO_FIFO_CTRL2, DSO_FIFO_CTRL3 = (_DSO[f"FIFO_CTRL{i}"] for i in (1, 2, 3))
DSO_FIFO_DATA_OUT_TAG = _DSO["FIFO_DATA_OUT_TAG"]
DS3_FIFO_CTRL1, DS3_FIFO_CTRL2, DS3_FIFO_CTRL3 = (_DS3[f"FIFO_CTRL{i}"] for i in (1, 2, 3))
DS3_FIFO_DATA_OUT_L = _DS3["FIFO_DATA_OUT"]


def _fields(registers: RegisterMap, register: str) -> dict[str, Field]:
    return {f.name: f for f in registers[register].fields}


_CTRL3_C = _fields(DSO_REGISTERS, "CTRL3_C")
BOOT, IF_INC, SW_RESET = (_CTRL3_C[n].mask for n in ("boot", "if_inc", "sw_reset"))
_STATUS = _fields(DSO_REGISTERS, "STATUS_REG")
XLDA, GDA = _STATUS["xlda"].mask, _STATUS["gda"].mask
_CTRL1_XL = _fields(DSO_REGISTERS, "CTRL1_XL")
ODR_XL, FS_XL = _CTRL1_XL["odr_xl"], _CTRL1_XL["fs_xl"]
_CTRL2_G = _fields(DSO_REGISTERS, "CTRL2_G")
ODR_G, FS_G, FS_125 = _CTRL2_G["odr_g"], _CTRL2_G["fs_g"], _CTRL2_G["fs_125"]
FIFO_MODE = _fields(DSO_REGISTERS, "FIFO_CTRL4")["fifo_mode"]
_DSO_STATUS2 = _fields(DSO_REGISTERS, "FIFO_STATUS2")
_DS3_STATUS2 = _fields(DS3_REGISTERS, "FIFO_STATUS2")
_DSO_CTRL3, _DS3_CTRL3 = _fields(DSO_REGISTERS, "FIFO_CTRL3"), _fields(DS3_REGISTERS, "FIFO_CTRL3")
ODR_FIFO = _fields(DS3_REGISTERS, "FIFO_CTRL5")["odr_fifo"]
WTM8 = _fields(DSO_REGISTERS, "FIFO_CTRL2")["wtm8"].mask
FTH_H = _fields(DS3_REGISTERS, "FIFO_CTRL2")["fth_h"].mask

SW_RESET_S = 50e-6  # SW_RESET clears itself within tens of microseconds
BOOT_S = 0.010  # BOOT: reloading the trimming values takes about 10 ms


@dataclass(frozen=True)
class Variant:
    family: Family  # what the driver knows: WHO_AM_I, FIFO architecture
    fifo_words: int  # FIFO capacity in words (7-byte tagged / 16-bit)
    accel_noise_ug: dict[int, float]  # noise density, ug/sqrt(Hz), per full scale (g)
    gyro_noise_mdps: float  # rate noise density, mdps/sqrt(Hz)

    @property
    def who_am_i(self) -> int:
        return self.family.who_am_i

    @property
    def tagged(self) -> bool:
        return self.family.tagged


# Noise densities are the datasheets' typical high-performance-mode figures. The
# LSM6DS3 simulated is the 8 KB one; the driver, which cannot tell it from the 4 KB
# LSM6DS3H, assumes the smaller FIFO.
_DSO_VARIANT = Variant(LSM6DSO, LSM6DSO.fifo_words, {2: 70.0, 4: 75.0, 8: 80.0, 16: 110.0}, 3.8)
VARIANTS: dict[str, Variant] = {
    "LSM6DSO": _DSO_VARIANT,
    "LSM6DSOX": _DSO_VARIANT,
    "LSM6DS3": Variant(LSM6DS3, LSM6DS3_CHIP_WORDS_MAX, dict.fromkeys((2, 4, 8, 16), 90.0), 7.0),
    "LSM6DSL": Variant(LSM6DSL, LSM6DSL.fifo_words, dict.fromkeys((2, 4, 8, 16), 80.0), 4.0),
}


class Lsm6dsSim(SamplingChip):
    """See the module docstring. ``seed`` fixes the noise; ``noise=False`` turns it off;
    ``rate_error`` is the chip's oscillator error (0.01 = 1 % fast)."""

    name = "LSM6DSO"

    def __init__(
        self,
        motion,
        *,
        clock: Clock | None = None,
        variant: str = "LSM6DSO",
        seed: int = 0,
        noise: bool = True,
        rate_error: float = 0.0,
    ):
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
        self.variant = self.name = variant
        self.spec = spec = VARIANTS[variant]
        registers = spec.family.registers
        self.RESET = {**registers.reset_bytes(), WHO_AM_I: spec.who_am_i}
        if spec.tagged:
            self.word_bytes, self.out_base = 7, DSO_FIFO_DATA_OUT_TAG
            self.capacity_words = spec.fifo_words
        else:
            # The DS3 stores whole 3-word data sets, so a full FIFO holds a multiple of 3.
            self.word_bytes, self.out_base = 2, DS3_FIFO_DATA_OUT_L
            self.capacity_words = spec.fifo_words // 3 * 3
        # The DSO's status and output bytes past its map (0x3C, 0x3D) are read-only too.
        self.READ_ONLY = registers.read_only_addresses() | {FIFO_STATUS3, FIFO_STATUS4}
        self.motion = motion
        self.noise = noise
        self.rate_error = rate_error
        self._rng = np.random.default_rng(seed)
        self.fifo = bytearray()
        self.overflows = 0  # times the FIFO overwrote (or, in FIFO mode, refused) data
        self.soft_resets = 0
        self._clear_state()
        super().__init__(clock=clock)

    # -- state -------------------------------------------------------------------
    def _clear_state(self) -> None:
        self.fifo = bytearray()
        self._sampler = SampleClock()
        self._slot = 0  # DSO batch slot counter (TAG_CNT is its low 2 bits)
        self._pattern_pos = 0  # DS3: pattern index of the word at the head of the FIFO
        self._ovr = False  # FIFO_OVR_IA / OVER_RUN: full and overwritten
        self._ovr_latched = False  # DSO OVER_RUN_LATCHED: until FIFO_STATUS2 is read
        self._busy_until: dict[int, float] = {}

    def power_on_reset(self) -> None:
        super().power_on_reset()
        self._clear_state()

    def _soft_reset(self) -> None:
        """SW_RESET: every control register back to its reset value, FIFO emptied."""
        self.regs[:] = bytes(256)
        for reg, value in self.RESET.items():
            self.regs[reg] = value
        self._clear_state()
        self.soft_resets += 1

    # -- register side effects ---------------------------------------------------------
    def on_write(self, register: int, value: int, old: int) -> None:
        now = self.clock.now()
        if register == CTRL3_C:
            if value & SW_RESET:
                self._soft_reset()
                self.regs[CTRL3_C] = self.RESET[CTRL3_C] | SW_RESET
                self._busy_until[SW_RESET] = now + SW_RESET_S
            if value & BOOT:
                self._busy_until[BOOT] = now + BOOT_S
        elif register in (CTRL1_XL, CTRL2_G):
            if (value ^ old) & ODR_XL.mask:  # ODR_G is the same bits
                # A new ODR: the sample clock starts again, the first sample one period on.
                rate = self.sample_rate
                self._sampler.restart(now, rate)
        elif register == FIFO_MODE_REG and FIFO_MODE.get(value) == "bypass":
            # Bypass: the FIFO is emptied and stays empty.
            self.fifo = bytearray()
            self._pattern_pos = self._slot = 0
            self._ovr = self._ovr_latched = False

    def read_register(self, register: int) -> int:
        if register == CTRL3_C:
            now = self.clock.now()
            for bit, until in list(self._busy_until.items()):
                if now >= until:
                    self.regs[CTRL3_C] &= ~bit
                    del self._busy_until[bit]
            return self.regs[CTRL3_C]
        if FIFO_STATUS1 <= register <= FIFO_STATUS4:
            return self._fifo_status(register)
        if OUTX_L_XL <= register < OUTX_L_XL + 6:
            self.regs[STATUS_REG] &= ~XLDA
        elif OUTX_L_G <= register < OUTX_L_G + 6:
            self.regs[STATUS_REG] &= ~GDA
        return self.regs[register]

    def next_pointer(self, register: int) -> int:
        if not self.regs[CTRL3_C] & IF_INC:
            return register  # IF_INC off: a burst reads one register over and over
        return (register + 1) & 0xFF

    def read_block(self, register: int, length: int) -> bytes:
        base, wb = self.out_base, self.word_bytes
        if base <= register < base + wb and self.regs[CTRL3_C] & IF_INC:
            return self._read_fifo(register - base, length)
        return super().read_block(register, length)

    # -- the FIFO as the bus sees it ---------------------------------------------------
    @property
    def fifo_count(self) -> int:
        """Unread words (DIFF_FIFO)."""
        return len(self.fifo) // self.word_bytes

    def _read_fifo(self, offset: int, length: int) -> bytes:
        """A burst from inside the FIFO output registers: whole words at a time, rolling over."""
        base, wb = self.out_base, self.word_bytes
        out = bytearray()
        if offset:  # finish the word already in the output registers
            take = min(length, wb - offset)
            out += self.regs[base + offset : base + offset + take]
            offset = (offset + take) % wb
            length -= take
        if length:
            whole, rest = divmod(length, wb)
            words = self._pop(whole + (1 if rest else 0))
            out += words[:length]
            self.regs[base : base + wb] = words[-wb:]
            offset = rest
        self.pointer = base + offset
        return bytes(out)

    def _pop(self, k: int) -> bytes:
        nbytes = k * self.word_bytes
        take = bytes(self.fifo[:nbytes])
        del self.fifo[:nbytes]
        popped = len(take) // self.word_bytes
        if popped:
            self._pattern_pos = (self._pattern_pos + popped) % self._pattern_words()
            self._ovr = False
        return take + bytes(nbytes - len(take))  # an empty FIFO reads as zeros

    def _fifo_status(self, register: int) -> int:
        count = self.fifo_count
        if register == FIFO_STATUS1:
            return count & 0xFF
        if self.spec.tagged:
            if register == FIFO_STATUS2:
                f = _DSO_STATUS2
                wtm = self.regs[DSO_FIFO_CTRL1] | (self.regs[DSO_FIFO_CTRL2] & WTM8) << 8
                value = f["diff_fifo_h"].put(0, (count >> 8) & 0x03)
                value = f["fifo_wtm_ia"].put(value, wtm and count >= wtm)
                value = f["fifo_ovr_ia"].put(value, self._ovr)
                value = f["fifo_full_ia"].put(value, count >= self.capacity_words)
                value = f["over_run_latched"].put(value, self._ovr_latched)
                self._ovr_latched = False  # latched until read
                return value
            return 0
        if register == FIFO_STATUS2:
            f = _DS3_STATUS2
            fth = self.regs[DS3_FIFO_CTRL1] | (self.regs[DS3_FIFO_CTRL2] & FTH_H) << 8
            value = f["diff_fifo_h"].put(0, (count >> 8) & 0x0F)
            value = f["wtm"].put(value, fth and count >= fth)
            value = f["over_run"].put(value, self._ovr)
            value = f["fifo_full"].put(value, count + self._pattern_words() > self.capacity_words)
            value = f["fifo_empty"].put(value, count == 0)
            return value
        pattern = self._pattern_pos if count else 0
        return pattern & 0xFF if register == FIFO_STATUS3 else (pattern >> 8) & 0x03

    def _pattern_words(self) -> int:
        if self.spec.tagged:
            return 1
        sets = self._batch_gyro() + self._batch_accel()
        return 3 * max(sets, 1)

    # -- the sample clock ----------------------------------------------------------------
    @property
    def accel_on(self) -> bool:
        return _hz(ODR_XL.get(self.regs[CTRL1_XL])) > 0

    @property
    def gyro_on(self) -> bool:
        return _hz(ODR_G.get(self.regs[CTRL2_G])) > 0

    @property
    def sample_rate(self) -> float:
        """The ODR the clock runs at: the accelerometer's, else the gyroscope's, else 0."""
        for reg, odr in ((CTRL1_XL, ODR_XL), (CTRL2_G, ODR_G)):
            hz = _hz(odr.get(self.regs[reg]))
            if hz:
                return hz * (1 + self.rate_error)
        return 0.0

    def _running_rate(self) -> float:
        return self.sample_rate

    def _samples_kept(self) -> int:
        return self.capacity_words + 2

    def _sample(self, t: np.ndarray, skipped: int) -> None:
        n = len(t)
        rate = self.sample_rate
        accel = gyro = None
        if self.accel_on:
            fs = FS_XL.get(self.regs[CTRL1_XL])
            per_g = 1000.0 / ACCEL_MG_PER_LSB[fs]  # counts per g at this full scale
            counts = np.asarray(self.motion.accel(t), dtype=float) * (per_g / G)
            if self.noise:
                sigma_g = self.spec.accel_noise_ug[fs] * 1e-6 * math.sqrt(rate / 2)
                counts += self._rng.normal(0.0, sigma_g * per_g, counts.shape)
            accel = _counts(counts)
            self.regs[OUTX_L_XL : OUTX_L_XL + 6] = accel[-1].astype("<i2").tobytes()
            self.regs[STATUS_REG] |= XLDA
        if self.gyro_on:
            ctrl2 = self.regs[CTRL2_G]
            dps_fs = 125 if FS_125.get(ctrl2) else FS_G.get(ctrl2)
            per_dps = 1000.0 / GYRO_MDPS_PER_LSB[dps_fs]
            gyro_fn = getattr(self.motion, "gyro", None)
            if gyro_fn is not None:
                counts = np.degrees(np.asarray(gyro_fn(t), dtype=float)) * per_dps
            else:
                counts = np.zeros((n, 3))
            if self.noise:
                sigma_dps = self.spec.gyro_noise_mdps * 1e-3 * math.sqrt(rate / 2)
                counts += self._rng.normal(0.0, sigma_dps * per_dps, counts.shape)
            gyro = _counts(counts)
            self.regs[OUTX_L_G : OUTX_L_G + 6] = gyro[-1].astype("<i2").tobytes()
            self.regs[STATUS_REG] |= GDA
        if FIFO_MODE.get(self.regs[FIFO_MODE_REG]) == "bypass":
            return  # nothing is stored
        accel = accel if self._batch_accel() else None
        gyro = gyro if self._batch_gyro() else None
        if accel is None and gyro is None:
            return
        if self.spec.tagged:
            self._push(self._tagged_words(accel, gyro, n, skipped))
        else:
            columns = [c for c in (gyro, accel) if c is not None]  # pattern: gyroscope first
            words = columns[0] if len(columns) == 1 else np.hstack(columns)
            self._push(words.astype("<i2").tobytes())

    def _batch_accel(self) -> bool:
        return self.accel_on and self._batched(_DSO_CTRL3["bdr_xl"], _DS3_CTRL3["dec_fifo_xl"])

    def _batch_gyro(self) -> bool:
        return self.gyro_on and self._batched(_DSO_CTRL3["bdr_gy"], _DS3_CTRL3["dec_fifo_gyro"])

    def _batched(self, bdr: Field, dec: Field) -> bool:
        """Whether the FIFO stores a sensor: its batch rate (DSO), decimation and ODR_FIFO (DS3)."""
        if self.spec.tagged:
            return bool(self.regs[DSO_FIFO_CTRL3] & bdr.mask)
        return bool(
            self.regs[DS3_FIFO_CTRL3] & dec.mask and self.regs[FIFO_MODE_REG] & ODR_FIFO.mask
        )

    def _tagged_words(self, accel, gyro, n: int, skipped: int) -> bytes:
        slots = self._slot + skipped + np.arange(n)
        self._slot += skipped + n
        cnt = ((slots & 0b11) << 1).astype(np.uint8)
        present = [
            (tag, data)
            for tag, data in ((TAG_GYRO_NC, gyro), (TAG_XL_NC, accel))
            if data is not None
        ]
        words = np.empty((n, len(present)), TAGGED_WORD)  # one row per batch slot
        for column, (tag, data) in enumerate(present):
            words["tag"][:, column] = (tag << 3) | cnt
            words["xyz"][:, column] = data
        return words.tobytes()

    def _push(self, data: bytes) -> None:
        wb = self.word_bytes
        mode = FIFO_MODE.get(self.regs[FIFO_MODE_REG])
        self.fifo += data
        excess = len(self.fifo) // wb - self.capacity_words
        if excess <= 0:
            return
        self.overflows += 1
        if mode == "fifo":  # stops when full, the newest data are lost
            del self.fifo[self.capacity_words * wb :]
            return
        unit = 1 if self.spec.tagged else 3  # whole words (DSO) or whole data sets (DS3)
        drop = -(-excess // unit) * unit
        del self.fifo[: drop * wb]  # continuous: the newest overwrite the oldest
        self._pattern_pos = (self._pattern_pos + drop) % self._pattern_words()
        self._ovr = self._ovr_latched = True

    def __repr__(self) -> str:
        return f"<Lsm6dsSim {self.variant} fifo={self.fifo_count} words>"


def _hz(odr) -> float:
    """An ODR field's value in Hz; a reserved code (which decodes to itself) is off."""
    return odr if isinstance(odr, float) else 0.0


def _counts(values: np.ndarray) -> np.ndarray:
    scaled = np.rint(values)
    np.clip(scaled, -32768, 32767, out=scaled)
    return scaled.astype(np.int16)
