"""I2C: the bus protocol, register maps as data, and one driver per chip.

Drivers take a ``bus`` (``smbus2.SMBus(1)`` on a Pi, :class:`monitor.sim.SimBus`
in tests and the demo; :func:`monitor.bus.open_bus` picks one) and know
registers, nothing of tremor::

    from monitor.i2c import Mpu6050
    with Mpu6050(smbus2.SMBus(1), address=0x68, rate_hz=1000, range_g=4) as imu:
        block = imu.read()    # block.t (N,) s, block.accel (N, 3) m/s^2

Every driver is a :class:`Chip` (chip.py: name, address, retries, recovery,
close); each chip's facts (register map, addresses, ID values, rates, ranges,
gains) are written once, in its driver module, and the config check,
``gym-monitor probe`` (chips.py, probe.py) and the simulated chips ask it.
"""

from .calibration import CalibrationError, CalibrationStore, ScaleCalibration
from .chip import Chip
from .device import Bus, I2CDevice, RetryPolicy
from .imu import Imu, SampleBlock
from .lsm6ds import Lsm6ds
from .mpu6050 import Mpu6050
from .nau7802 import Nau7802, ScaleReading
from .pn532 import FirmwareVersion, Pn532, Tap

__all__ = [
    "Bus",
    "CalibrationError",
    "CalibrationStore",
    "Chip",
    "FirmwareVersion",
    "I2CDevice",
    "Imu",
    "Lsm6ds",
    "Mpu6050",
    "Nau7802",
    "Pn532",
    "RetryPolicy",
    "SampleBlock",
    "ScaleCalibration",
    "ScaleReading",
    "Tap",
]
