"""A register-level MPU-6050 / MPU-6500 for tests, benchmarks and the demo.

It keeps the registers the driver uses at their datasheet reset values, runs
its sample clock from the shared clock, and fills a byte FIFO at the
configured rate from a motion source (``accel(t)`` in m/s^2 with gravity,
optionally ``gyro(t)`` in rad/s), adding white noise at the datasheet's noise
density and quantising to int16 at the configured range::

    sim = Mpu6050Sim(motion, clock=clock)          # WHO_AM_I 0x68, 1024-byte FIFO
    sim = Mpu6050Sim(motion, clock=clock, variant="MPU-6500")  # 0x70, 512 bytes

Like the real chip, a full FIFO drops its oldest *bytes* (not whole samples),
sets FIFO_OFLOW_INT, and reading an empty FIFO repeats the last byte read.
"""

from __future__ import annotations

import math

import numpy as np

from ..clock import Clock
from ..i2c.mpu6050 import DLPF_BANDWIDTH_HZ, INTERNAL_RATE_HZ, PARTS, REGISTERS
from ..i2c.registers import Field
from ..units import G
from .chip import SamplingChip

ACCEL_NOISE_G_PER_RTHZ = 400e-6  # MPU-6050 datasheet: 400 ug/sqrt(Hz)
GYRO_NOISE_DPS_PER_RTHZ = 0.005  # MPU-6050 datasheet: 0.005 dps/sqrt(Hz)
#: the gyroscope's internal rate, used when the digital low-pass is off (DLPF_CFG 0 or 7)
GYRO_RATE_NO_DLPF_HZ = 8000.0

R = {reg.name: reg.address for reg in REGISTERS}
PWR_MGMT_1, USER_CTRL, FIFO_EN = R["PWR_MGMT_1"], R["USER_CTRL"], R["FIFO_EN"]
SMPLRT_DIV, CONFIG, GYRO_CONFIG = R["SMPLRT_DIV"], R["CONFIG"], R["GYRO_CONFIG"]
ACCEL_CONFIG, INT_STATUS, WHO_AM_I = R["ACCEL_CONFIG"], R["INT_STATUS"], R["WHO_AM_I"]
FIFO_COUNT_H, FIFO_R_W = R["FIFO_COUNT"], R["FIFO_R_W"]
ACCEL_XOUT_H, GYRO_XOUT_H = R["ACCEL_OUT"], R["GYRO_OUT"]


def _field(register: str, name: str) -> Field:
    return REGISTERS[register].field(name)


def _mask(register: str, *names: str) -> int:
    return sum(_field(register, name).mask for name in names)


DEVICE_RESET, SLEEP = _mask("PWR_MGMT_1", "device_reset"), _mask("PWR_MGMT_1", "sleep")
FIFO_RESET, FIFO_ENABLED = _mask("USER_CTRL", "fifo_reset"), _mask("USER_CTRL", "fifo_en")
#: USER_CTRL's reset bits, which clear themselves
RESET_BITS = _mask("USER_CTRL", "fifo_reset", "i2c_mst_reset", "sig_cond_reset")
DATA_RDY, FIFO_OFLOW = _mask("INT_STATUS", "data_rdy_int"), _mask("INT_STATUS", "fifo_oflow_int")
TEMP_IN_FIFO, ACCEL_IN_FIFO = _mask("FIFO_EN", "temp"), _mask("FIFO_EN", "accel")
GYRO_IN_FIFO = tuple(_mask("FIFO_EN", axis) for axis in ("xg", "yg", "zg"))
#: FIFO_EN bits that put anything but the slaves' data in the FIFO
SENSORS_IN_FIFO = _mask("FIFO_EN", "temp", "accel", "xg", "yg", "zg")
DLPF_CFG, AFS_SEL = _field("CONFIG", "dlpf_cfg"), _field("ACCEL_CONFIG", "afs_sel")
FS_SEL = _field("GYRO_CONFIG", "fs_sel")

VARIANTS = {p.name: p for p in PARTS}


class Mpu6050Sim(SamplingChip):
    """See the module docstring. ``seed`` fixes the noise; ``noise=False`` turns it off."""

    name = "MPU-6050"
    READ_ONLY = REGISTERS.read_only_addresses()

    def __init__(
        self,
        motion,
        *,
        clock: Clock | None = None,
        variant: str = "MPU-6050",
        seed: int = 0,
        noise: bool = True,
        rate_error: float = 0.0,
    ):
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}")
        self.variant = self.name = variant
        part = VARIANTS[variant]
        self.fifo_size = part.fifo_bytes
        self.RESET = {**REGISTERS.reset_bytes(), WHO_AM_I: part.who_am_i}
        self.motion = motion
        self.noise = noise
        #: the chip's own oscillator error, e.g. 0.01 = 1 % fast (the datasheet allows +-1 %)
        self.rate_error = rate_error
        self._rng = np.random.default_rng(seed)
        self.fifo = bytearray()
        self.overflows = 0
        self._last_fifo_byte = 0
        super().__init__(clock=clock)

    # -- register side effects ----------------------------------------------
    def power_on_reset(self) -> None:
        super().power_on_reset()
        self.fifo = bytearray()
        self._sampler.restart()

    def on_write(self, register: int, value: int, old: int) -> None:
        if register == PWR_MGMT_1:
            if value & DEVICE_RESET:
                self.power_on_reset()
                return
            if old & SLEEP and not value & SLEEP:
                self._sampler.restart()  # waking: the sample clock starts now
        elif register == USER_CTRL:
            if value & FIFO_RESET:
                self.fifo = bytearray()
            self.regs[USER_CTRL] = value & ~RESET_BITS  # reset bits clear themselves
        elif register in (SMPLRT_DIV, CONFIG):
            self._sampler.restart()

    def read_register(self, register: int) -> int:
        if register == FIFO_COUNT_H:
            return (len(self.fifo) >> 8) & 0xFF
        if register == FIFO_COUNT_H + 1:
            return len(self.fifo) & 0xFF
        if register == INT_STATUS:
            value = self.regs[INT_STATUS]
            self.regs[INT_STATUS] = 0  # cleared by reading (INT_RD_CLEAR = 0)
            return value
        return self.regs[register]

    def read_block(self, register: int, length: int) -> bytes:
        if register != FIFO_R_W:
            return super().read_block(register, length)
        # FIFO_R_W does not auto-increment: a burst keeps popping the FIFO.
        take = bytes(self.fifo[:length])
        del self.fifo[:length]
        if take:
            self._last_fifo_byte = take[-1]
        if len(take) < length:
            take += bytes((self._last_fifo_byte,)) * (length - len(take))
        return take

    # -- the sample clock ----------------------------------------------------
    @property
    def awake(self) -> bool:
        return not self.regs[PWR_MGMT_1] & SLEEP

    @property
    def sample_rate(self) -> float:
        dlpf = DLPF_CFG.get(self.regs[CONFIG])
        base = INTERNAL_RATE_HZ if dlpf in DLPF_BANDWIDTH_HZ else GYRO_RATE_NO_DLPF_HZ
        return base / (1 + self.regs[SMPLRT_DIV]) * (1 + self.rate_error)

    def _running_rate(self) -> float:
        return self.sample_rate if self.awake else 0.0

    def _samples_kept(self) -> int:
        return self.fifo_size // 6 + 2

    def _sample(self, t: np.ndarray, skipped: int) -> None:
        n = len(t)
        rate = self.sample_rate
        afs = AFS_SEL.get(self.regs[ACCEL_CONFIG])  # 2, 4, 8, 16 g
        accel_g = np.asarray(self.motion.accel(t), dtype=float) * (1.0 / G)
        if self.noise:
            # float32 noise: the samples are quantised to int16 anyway, and it is twice as fast
            accel_g += self._rng.standard_normal(accel_g.shape, dtype=np.float32) * (
                ACCEL_NOISE_G_PER_RTHZ * math.sqrt(rate / 2)
            )
        accel = _counts(accel_g, 32768.0 / afs)
        enabled = self.regs[FIFO_EN]
        gyro_axes = [axis for axis, bit in enumerate(GYRO_IN_FIFO) if enabled & bit]
        # The gyroscope is only simulated when something will read it.
        gyro = self._gyro(t, rate) if gyro_axes else None
        self.regs[ACCEL_XOUT_H : ACCEL_XOUT_H + 6] = accel[-1].astype(">i2").tobytes()
        if gyro is not None:
            self.regs[GYRO_XOUT_H : GYRO_XOUT_H + 6] = gyro[-1].astype(">i2").tobytes()
        self.regs[INT_STATUS] |= DATA_RDY
        if not (self.regs[USER_CTRL] & FIFO_ENABLED) or not enabled & SENSORS_IN_FIFO:
            return
        columns = []
        if enabled & ACCEL_IN_FIFO:
            columns.append(accel)
        if enabled & TEMP_IN_FIFO:  # temperature: a constant 25 C is enough here
            columns.append(np.full((n, 1), int((25 - 36.53) * 340), dtype=np.int16))
        if gyro is not None:
            columns.append(gyro[:, gyro_axes])
        words = columns[0] if len(columns) == 1 else np.hstack(columns)
        self._push(words.astype(">i2").tobytes())

    def _gyro(self, t: np.ndarray, rate: float) -> np.ndarray:
        fs_dps = FS_SEL.get(self.regs[GYRO_CONFIG])
        gyro_fn = getattr(self.motion, "gyro", None)
        dps = np.degrees(np.asarray(gyro_fn(t), dtype=float)) if gyro_fn else np.zeros((len(t), 3))
        if self.noise:
            dps += self._rng.normal(0.0, GYRO_NOISE_DPS_PER_RTHZ * math.sqrt(rate / 2), dps.shape)
        return _counts(dps, 32768.0 / fs_dps)

    def _push(self, data: bytes) -> None:
        self.fifo += data
        excess = len(self.fifo) - self.fifo_size
        if excess > 0:
            del self.fifo[:excess]  # the oldest bytes go, whatever sample they belonged to
            self.overflows += 1
            self.regs[INT_STATUS] |= FIFO_OFLOW


def _counts(values: np.ndarray, per_unit: float) -> np.ndarray:
    scaled = np.rint(values * per_unit)
    np.clip(scaled, -32768, 32767, out=scaled)
    return scaled.astype(np.int16)
