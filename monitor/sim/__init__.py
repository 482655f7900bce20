"""Simulated I2C chips at register level, the simulated bus, and athlete scenarios.

Shipped inside the package, like gpiozero's mock pin factory, so tests, the
benchmarks and the demo all run the real drivers against chips that behave
like the datasheets say::

    from monitor.sim import SimBus, SimClock, Mpu6050Sim
    clock = SimClock()
    bus = SimBus()
    bus.attach(0x68, Mpu6050Sim(motion, clock=clock))
"""

from ..clock import SimClock
from .bus import BusStats, SimBus, Transfer
from .chip import SimChip
from .lsm6ds import Lsm6dsSim
from .mpu6050 import Mpu6050Sim
from .nau7802 import Nau7802Sim
from .pn532 import Pn532Sim, Tag, TagSchedule
from .scenarios import MASS_SCENARIOS, SCENARIOS, BodyScale, BottleDock, Placement, Scenario

__all__ = [
    "MASS_SCENARIOS",
    "SCENARIOS",
    "BodyScale",
    "BottleDock",
    "BusStats",
    "Lsm6dsSim",
    "Mpu6050Sim",
    "Nau7802Sim",
    "Placement",
    "Pn532Sim",
    "Scenario",
    "SimBus",
    "SimChip",
    "SimClock",
    "Tag",
    "TagSchedule",
    "Transfer",
]
