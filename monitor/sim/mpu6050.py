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
from ..i2c.mpu6050 import DLPF_BANDWIDTH_HZ, REGISTERS
from .chip import SampleClock, SimChip

G = 9.80665
ACCEL_NOISE_G_PER_RTHZ = 400e-6   # MPU-6050 datasheet: 400 ug/sqrt(Hz)
GYRO_NOISE_DPS_PER_RTHZ = 0.005   # MPU-6050 datasheet: 0.005 dps/sqrt(Hz)

R = {reg.name: reg.address for reg in REGISTERS}
PWR_MGMT_1, USER_CTRL, FIFO_EN = R["PWR_MGMT_1"], R["USER_CTRL"], R["FIFO_EN"]
FIFO_COUNT_H, FIFO_R_W, INT_STATUS = 0x72, 0x74, R["INT_STATUS"]
ACCEL_XOUT_H, GYRO_XOUT_H = 0x3B, 0x43

VARIANTS = {"MPU-6050": (0x68, 1024), "MPU-6500": (0x70, 512), "MPU-9250": (0x71, 512)}


class Mpu6050Sim(SimChip):
    """See the module docstring. ``seed`` fixes the noise; ``noise=False`` turns it off."""

    name = "MPU-6050"
    READ_ONLY = frozenset({INT_STATUS, *range(0x3B, 0x49), 0x72, 0x73, 0x75})

    def __init__(self, motion, *, clock: Clock | None = None, variant: str = "MPU-6050",
                 seed: int = 0, noise: bool = True, rate_error: float = 0.0):
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}")
        self.variant = self.name = variant
        who, self.fifo_size = VARIANTS[variant]
        self.RESET = {PWR_MGMT_1: 0x40, 0x75: who}
        self.motion = motion
        self.noise = noise
        #: the chip's own oscillator error, e.g. 0.01 = 1 % fast (the datasheet allows +-1 %)
        self.rate_error = rate_error
        self._rng = np.random.default_rng(seed)
        self.fifo = bytearray()
        self.overflows = 0
        self.samples_generated = 0
        self._last_fifo_byte = 0
        self._sampler = SampleClock()
        super().__init__(clock=clock)

    # -- register side effects ----------------------------------------------
    def power_on_reset(self) -> None:
        super().power_on_reset()
        self.fifo = bytearray()
        self._sampler.restart()

    def on_write(self, register: int, value: int, old: int) -> None:
        if register == PWR_MGMT_1:
            if value & 0x80:
                self.power_on_reset()
                return
            if old & 0x40 and not value & 0x40:
                self._sampler.restart()  # waking: the sample clock starts now
        elif register == USER_CTRL:
            if value & 0x04:
                self.fifo = bytearray()
            self.regs[USER_CTRL] = value & ~0x07  # reset bits clear themselves
        elif register in (0x19, 0x1A):
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
        return not self.regs[PWR_MGMT_1] & 0x40

    @property
    def sample_rate(self) -> float:
        dlpf = self.regs[0x1A] & 0x07
        base = 1000.0 if dlpf in DLPF_BANDWIDTH_HZ else 8000.0
        return base / (1 + self.regs[0x19]) * (1 + self.rate_error)

    def update(self, now: float) -> None:
        if not self.awake:
            return
        t, skipped = self._sampler.due(now, self.sample_rate, keep=self.fifo_size // 6 + 2)
        if len(t):
            self._sample(t, skipped)

    def _sample(self, t: np.ndarray, skipped: int) -> None:
        n = len(t)
        self.samples_generated += n + skipped
        rate = self.sample_rate
        afs = 2 << ((self.regs[0x1C] >> 3) & 3)          # 2, 4, 8, 16 g
        accel_g = np.asarray(self.motion.accel(t), dtype=float) * (1.0 / G)
        if self.noise:
            # float32 noise: the samples are quantised to int16 anyway, and it is twice as fast
            accel_g += self._rng.standard_normal(accel_g.shape, dtype=np.float32) * (ACCEL_NOISE_G_PER_RTHZ * math.sqrt(rate / 2))
        accel = _counts(accel_g, 32768.0 / afs)
        enabled = self.regs[FIFO_EN]
        gyro_axes = [axis for bit, axis in ((0x40, 0), (0x20, 1), (0x10, 2)) if enabled & bit]
        # The gyroscope is only simulated when something will read it.
        gyro = self._gyro(t, rate) if gyro_axes else None
        self.regs[ACCEL_XOUT_H:ACCEL_XOUT_H + 6] = accel[-1].astype(">i2").tobytes()
        if gyro is not None:
            self.regs[GYRO_XOUT_H:GYRO_XOUT_H + 6] = gyro[-1].astype(">i2").tobytes()
        self.regs[INT_STATUS] |= 0x01  # DATA_RDY_INT
        if not (self.regs[USER_CTRL] & 0x40) or not enabled & 0b1111_1000:
            return
        columns = []
        if enabled & 0x08:
            columns.append(accel)
        if enabled & 0x80:  # temperature: a constant 25 C is enough here
            columns.append(np.full((n, 1), int((25 - 36.53) * 340), dtype=np.int16))
        if gyro is not None:
            columns.append(gyro[:, gyro_axes])
        words = columns[0] if len(columns) == 1 else np.hstack(columns)
        self._push(words.astype(">i2").tobytes())

    def _gyro(self, t: np.ndarray, rate: float) -> np.ndarray:
        fs_dps = 250 << ((self.regs[0x1B] >> 3) & 3)
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
            self.regs[INT_STATUS] |= 0x10  # FIFO_OFLOW_INT


def _counts(values: np.ndarray, per_unit: float) -> np.ndarray:
    scaled = np.rint(values * per_unit)
    np.clip(scaled, -32768, 32767, out=scaled)
    return scaled.astype(np.int16)
