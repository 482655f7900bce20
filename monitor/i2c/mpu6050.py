"""InvenSense MPU-6050 / MPU-6500 family (MPU-6000, MPU-9250 answer the same way).

Register names and bit fields follow the MPU-6000/MPU-6050 Register Map and
Descriptions, rev 4.2, and the MPU-6500 register map, rev 2.1. Samples are read
from the FIFO, one datum = accelerometer X, Y, Z as big-endian int16 (then the
gyroscope's three when enabled), which is the only way to get every sample at
1 kHz without missing any.

    imu = Mpu6050(bus, address=0x68, rate_hz=1000, range_g=4)
    block = imu.read()

Overflow is handled the way Linux's inv_mpu6050 driver does it: the FIFO is
reset before it can fill, because once it overflows the chip drops the oldest
*bytes*, and with 6- or 12-byte data in a 1024-byte FIFO the reader loses the
datum boundary; the overflow bit alone is not to be trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from ..errors import SensorNotFound
from ..units import G
from .imu import Imu
from .registers import Field, Flag, Lookup, Register, RegisterMap


@dataclass(frozen=True)
class Part:
    """A member of the family, as its WHO_AM_I names it."""

    name: str
    who_am_i: int
    fifo_bytes: int  # the MPU-6500 family's FIFO is 512 bytes by default, the MPU-6050's 1024


PARTS = (
    Part("MPU-6050", 0x68, 1024),
    Part("MPU-6500", 0x70, 512),
    Part("MPU-9250", 0x71, 512),
    Part("MPU-9255", 0x73, 512),
)
BY_WHO_AM_I = {p.who_am_i: p for p in PARTS}

#: the internal sample rate with the digital low-pass on; SMPLRT_DIV divides it by 1..256
INTERNAL_RATE_HZ = 1000.0

#: digital low-pass setting -> accelerometer bandwidth (Hz); internal rate is 1 kHz with any of them
DLPF_BANDWIDTH_HZ = {1: 184, 2: 94, 3: 44, 4: 21, 5: 10, 6: 5}

REGISTERS = RegisterMap(
    Register(
        "SMPLRT_DIV",
        0x19,
        fields=(
            Field("smplrt_div", 0b1111_1111),  # sample rate = internal rate / (1 + SMPLRT_DIV)
        ),
    ),
    Register(
        "CONFIG",
        0x1A,
        fields=(
            Field("fifo_mode", 0b0100_0000, Flag()),  # MPU-6500 only: 1 = stop when full
            Field("ext_sync_set", 0b0011_1000),
            Field("dlpf_cfg", 0b0000_0111),
        ),
    ),
    Register(
        "GYRO_CONFIG",
        0x1B,
        fields=(Field("fs_sel", 0b0001_1000, Lookup({250: 0, 500: 1, 1000: 2, 2000: 3})),),
    ),
    Register(
        "ACCEL_CONFIG",
        0x1C,
        fields=(Field("afs_sel", 0b0001_1000, Lookup({2: 0, 4: 1, 8: 2, 16: 3})),),
    ),
    Register(
        "FIFO_EN",
        0x23,
        fields=(
            Field("temp", 0b1000_0000, Flag()),
            Field("xg", 0b0100_0000, Flag()),
            Field("yg", 0b0010_0000, Flag()),
            Field("zg", 0b0001_0000, Flag()),
            Field("accel", 0b0000_1000, Flag()),
            Field("slv2", 0b0000_0100, Flag()),
            Field("slv1", 0b0000_0010, Flag()),
            Field("slv0", 0b0000_0001, Flag()),
        ),
    ),
    Register(
        "INT_ENABLE",
        0x38,
        fields=(
            Field("fifo_oflow_en", 0b0001_0000, Flag()),
            Field("data_rdy_en", 0b0000_0001, Flag()),
        ),
    ),
    Register(
        "INT_STATUS",
        0x3A,
        read_only=True,
        fields=(
            Field("fifo_oflow_int", 0b0001_0000, Flag()),
            Field("data_rdy_int", 0b0000_0001, Flag()),
        ),
    ),
    Register("ACCEL_OUT", 0x3B, size=6, read_only=True),  # X, Y, Z, big-endian int16
    Register("TEMP_OUT", 0x41, size=2, signed=True, read_only=True),
    Register("GYRO_OUT", 0x43, size=6, read_only=True),
    Register(
        "USER_CTRL",
        0x6A,
        fields=(
            Field("fifo_en", 0b0100_0000, Flag()),
            Field("i2c_mst_en", 0b0010_0000, Flag()),
            Field("i2c_if_dis", 0b0001_0000, Flag()),
            Field("fifo_reset", 0b0000_0100, Flag()),
            Field("i2c_mst_reset", 0b0000_0010, Flag()),
            Field("sig_cond_reset", 0b0000_0001, Flag()),
        ),
    ),
    Register(
        "PWR_MGMT_1",
        0x6B,
        reset=0x40,
        fields=(
            Field("device_reset", 0b1000_0000, Flag()),
            Field("sleep", 0b0100_0000, Flag()),
            Field("cycle", 0b0010_0000, Flag()),
            Field("temp_dis", 0b0000_1000, Flag()),
            Field("clksel", 0b0000_0111),
        ),
    ),
    Register("PWR_MGMT_2", 0x6C),
    Register("FIFO_COUNT", 0x72, size=2, read_only=True),
    Register("FIFO_R_W", 0x74),  # the FIFO's port: a burst read pops byte after byte
    Register("WHO_AM_I", 0x75, reset=PARTS[0].who_am_i, read_only=True),
)

CLKSEL_PLL_X_GYRO = 1  # the datasheet's recommended clock: more stable than the 8 MHz oscillator
RESET_SETTLE_S = 0.1  # PWR_MGMT_1 DEVICE_RESET: the register map asks for 100 ms


class Mpu6050(Imu):
    """An MPU-6050 or MPU-6500 family accelerometer (and gyroscope), read by FIFO.

    ``rate_hz`` must divide the 1 kHz internal rate (1000, 500, 250, 200, 125,
    100, 50 ... 4 Hz). ``range_g`` is 2, 4, 8 or 16. ``gyro=True`` also reads
    the gyroscope (rad/s) at ``gyro_dps`` full scale. The digital low-pass is set
    to the widest bandwidth below the Nyquist frequency, which keeps tremor up
    to 18 Hz untouched at any rate of 50 Hz or more::

        with Mpu6050(smbus2.SMBus(1), 0x68, rate_hz=1000, range_g=4) as imu:
            block = imu.read()
    """

    CHIP = "MPU-6050"
    REGISTERS = REGISTERS
    ADDRESSES = (0x68, 0x69)
    IDENTITIES = MappingProxyType({p.who_am_i: p.name for p in PARTS})
    RANGES_G = REGISTERS.choices("ACCEL_CONFIG", "afs_sel")
    GYRO_DPS = REGISTERS.choices("GYRO_CONFIG", "fs_sel")
    RATES = (
        "the MPU-6050/6500 runs at 1000 Hz divided by a whole number: "
        "1000, 500, 250, 200, 125, 100, 50 ..."
    )
    FIFO_BYTES = PARTS[0].fifo_bytes

    def __init__(
        self,
        bus,
        address: int = ADDRESSES[0],
        *,
        rate_hz: float = 1000,
        range_g: int = 4,
        gyro: bool = False,
        gyro_dps: int = 500,
        **kwargs,
    ):
        if gyro_dps not in self.GYRO_DPS:
            allowed = ", ".join(map(str, self.GYRO_DPS))
            raise ValueError(f"gyro_dps must be one of {allowed}, not {gyro_dps!r}")
        self.gyro_dps = gyro_dps
        self.variant = self.CHIP
        super().__init__(bus, address, rate_hz=rate_hz, range_g=range_g, gyro=gyro, **kwargs)

    @classmethod
    def rate_for(cls, rate_hz: float) -> float | None:
        divider = INTERNAL_RATE_HZ / rate_hz if rate_hz > 0 else 0
        if not (1 <= divider <= 256 and abs(divider - round(divider)) < 1e-9):
            return None
        return INTERNAL_RATE_HZ / round(divider)

    @property
    def dlpf_cfg(self) -> int:
        nyquist = self.rate_hz / 2
        for cfg, bandwidth in DLPF_BANDWIDTH_HZ.items():  # widest first
            if bandwidth < nyquist:
                return cfg
        return 6

    def _identify(self) -> None:
        who = self.device.read("WHO_AM_I")
        part = BY_WHO_AM_I.get(who)
        if part is None:
            raise SensorNotFound(
                f"{self.name}: WHO_AM_I is 0x{who:02X}, not an MPU-6050/6500 (0x68 or 0x70): "
                "check the address (AD0 pin: low 0x68, high 0x69) "
                "and that the chip is what the config says",
                sensor=self.name,
                address=self.address,
            )
        self.variant = part.name
        self.FIFO_BYTES = part.fifo_bytes

    def _configure(self) -> None:
        d = self.device
        d.set("PWR_MGMT_1", device_reset=True)
        self.clock.sleep(RESET_SETTLE_S)
        d.set("PWR_MGMT_1", sleep=False, clksel=CLKSEL_PLL_X_GYRO)
        d.set("SMPLRT_DIV", smplrt_div=round(INTERNAL_RATE_HZ / self.rate_hz) - 1)
        d.set("CONFIG", dlpf_cfg=self.dlpf_cfg)
        d.set("ACCEL_CONFIG", afs_sel=self.range_g)
        if self.gyro_enabled:
            d.set("GYRO_CONFIG", fs_sel=self.gyro_dps)
        d.set("FIFO_EN", **self._fifo_en())
        self._reset_fifo()

    def _fifo_en(self) -> dict[str, bool]:
        g = self.gyro_enabled
        return {"accel": True, "xg": g, "yg": g, "zg": g}

    def _reset_fifo(self) -> None:
        self.device.set("USER_CTRL", fifo_reset=True)
        self.device.set("USER_CTRL", fifo_en=True)

    def _configured(self) -> bool:
        # After a brown-out PWR_MGMT_1 reads 0x40 (asleep) and FIFO_EN 0.
        if self.device.get("PWR_MGMT_1").sleep:
            return False
        return self.device.read("FIFO_EN") == REGISTERS.value("FIFO_EN", **self._fifo_en())

    def _drain(self):
        d = self.device
        count = d.read("FIFO_COUNT")
        datum = self.datum_bytes
        # Reset when three data short of full (as inv_mpu6050 does), or when the
        # count cannot be right (a glitch, or a chip that lost its configuration).
        if count >= self.FIFO_BYTES - 3 * datum or count % datum:
            if count > self.FIFO_BYTES:
                self._identify()  # a stuck or replaced chip shows up here, not as data
            self._reset_fifo()
            return (
                np.empty((0, 3)),
                (np.empty((0, 3)) if self.gyro_enabled else None),
                max(count // datum, 1),
            )
        n = count // datum
        if n == 0:
            return np.empty((0, 3)), (np.empty((0, 3)) if self.gyro_enabled else None), 0
        raw = d.read_burst("FIFO_R_W", n * datum)
        words = np.frombuffer(raw, dtype=">i2").reshape(n, datum // 2).astype(np.float64)
        accel = words[:, :3]
        gyro = words[:, 3:6] if self.gyro_enabled else None
        return accel, gyro, 0

    def _accel_scale(self) -> float:
        return self.range_g * G / 32768.0

    def _gyro_scale(self) -> float:
        return np.deg2rad(self.gyro_dps / 32768.0)

    def _power_down(self) -> None:
        self.device.set("PWR_MGMT_1", sleep=True, clksel=CLKSEL_PLL_X_GYRO)
