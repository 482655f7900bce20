"""The chips this project knows, by the names a config file gives them.

Each name leads to its driver class, which holds every fact about the chip
(addresses, ID register and values, ranges, rates, gains); ``gym-monitor
probe``, the config check and the station's sensor slots all ask the driver::

    DRIVERS["lsm6ds"].ADDRESSES                       # (0x6A, 0x6B)
    DRIVERS["mpu6050"].check_rate(300)                # "the MPU-6050/6500 runs at ..."
    DRIVERS["pn532"].read_identity(bus, 0x24)         # (0x32, "PN532 v1.6") or None
"""

from __future__ import annotations

from .chip import Chip
from .imu import Imu
from .lsm6ds import Lsm6ds
from .mpu6050 import Mpu6050
from .nau7802 import Nau7802
from .pn532 import Pn532

#: config chip name -> driver ("mpu6500" is the same family as "mpu6050", one driver)
DRIVERS: dict[str, type[Chip]] = {
    "mpu6050": Mpu6050,
    "mpu6500": Mpu6050,
    "lsm6ds": Lsm6ds,
    "nau7802": Nau7802,
    "pn532": Pn532,
}
IMU_DRIVERS: dict[str, type[Imu]] = {name: d for name, d in DRIVERS.items() if issubclass(d, Imu)}


def _first_names() -> dict[type[Chip], str]:
    names: dict[type[Chip], str] = {}
    for name, driver in DRIVERS.items():
        names.setdefault(driver, name)
    return names


#: driver -> the name a chip found on a bus is reported by (its driver's first config name)
PROBE_NAME = _first_names()


def candidates(address: int) -> list[type[Chip]]:
    """The drivers of the chips that can answer at ``address``."""
    return [d for d in PROBE_NAME if address in d.ADDRESSES]
