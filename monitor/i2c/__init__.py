"""I2C: the bus protocol, register maps as data, and one driver per chip.

Drivers take a ``bus`` (``smbus2.SMBus(1)`` on a Pi, :class:`monitor.sim.SimBus`
in tests and the demo) and know registers, nothing of tremor::

    from monitor.i2c import Mpu6050
    imu = Mpu6050(smbus2.SMBus(1), address=0x68, rate_hz=1000, range_g=4)
    block = imu.read()    # block.t (N,) s, block.accel (N, 3) m/s^2
"""

from .device import Bus, I2CDevice, RetryPolicy
from .imu import Imu, SampleBlock
from .lsm6ds import Lsm6ds
from .mpu6050 import Mpu6050
from .nau7802 import Nau7802, ScaleReading
from .pn532 import FirmwareVersion, Pn532, Tap
from .calibration import CalibrationError, CalibrationStore, ScaleCalibration

__all__ = ["Bus", "I2CDevice", "RetryPolicy", "Imu", "SampleBlock", "Mpu6050", "Lsm6ds",
           "Nau7802", "ScaleReading", "Pn532", "Tap", "FirmwareVersion",
           "CalibrationError", "CalibrationStore", "ScaleCalibration"]
