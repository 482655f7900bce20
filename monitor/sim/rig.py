"""A station's simulated hardware, built from its config.

Each configured IMU gets the matching simulated chip at its address, driven
by the athlete scenario the config names; the scale gets a simulated NAU7802
with a bottle dock or a body scale on it; an NFC reader gets a simulated PN532
with athletes tapping their tags in turns. The real drivers then find exactly
what they would on a Pi::

    bus = simulated_bus(config, clock)
    imu = Mpu6050(bus, 0x68, clock=clock)

Scenarios are finite (a session is about 20 minutes); ``loop=True`` repeats
them so a demo can run for as long as anyone watches.
"""

from __future__ import annotations

import numpy as np

from ..clock import Clock
from ..config import Config
from ..errors import ConfigError
from .bus import SimBus
from .chip import SimChip
from .lsm6ds import Lsm6dsSim
from .mpu6050 import Mpu6050Sim
from .nau7802 import Nau7802Sim
from .pn532 import Pn532Sim, taking_turns
from .scenarios import MASS_SCENARIOS, SCENARIOS

#: a sensor whose scenario is "companion" watches another body part of the athlete
#: that the station's first exercised sensor follows
COMPANION = "companion"

#: the load cells of each build (hardware/load-cells.md): a 5 kg bar under a bottle
#: dock; four 50 kg half bridges under a body scale
LOAD_CELLS = {
    "bottle": {"capacity_g": 5_000.0, "sensitivity_mv_per_v": 1.0},
    "body": {"capacity_g": 200_000.0, "sensitivity_mv_per_v": 1.0},
}
#: the known mass an installer calibrates each build with
CALIBRATION_MASS_G = {"bottle": 1_000.0, "body": 20_000.0}


class Repeating:
    """A motion or mass source played again and again, every ``period`` seconds."""

    def __init__(self, source, period: float):
        self.source = source
        self.period = float(period)
        self.truth = getattr(source, "truth", None)

    def _split(self, t: np.ndarray, fn) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        local = np.mod(t, self.period)
        wraps = np.flatnonzero(np.diff(local) < 0) + 1
        if len(wraps) == 0:
            return fn(local)
        # Each piece must be non-decreasing for the source, so evaluate between wraps.
        return np.concatenate([fn(part) for part in np.split(local, wraps)])

    def accel(self, t):
        return self._split(t, self.source.accel)

    def gyro(self, t):
        return self._split(t, self.source.gyro)

    def mass_g(self, t):
        return self._split(t, self.source.mass_g)


def _motion(config: Config, index: int, loop: bool):
    imu = config.imus[index]
    if imu.scenario == COMPANION:
        worked = [i for i, c in enumerate(config.imus) if c.exercised and c.scenario != COMPANION]
        if not worked:
            raise ConfigError(
                f"imu[{index}].scenario",
                "'companion' needs another sensor with an exercised scenario",
            )
        leader = _scenario(config, worked[0])
        source, period = leader.companion, leader.duration
    else:
        source = _scenario(config, index)
        period = source.duration
    return Repeating(source, period) if loop else source


def _scenario(config: Config, index: int):
    imu = config.imus[index]
    factory = SCENARIOS.get(imu.scenario)
    if factory is None:
        names = ", ".join([*sorted(SCENARIOS), COMPANION])
        raise ConfigError(f"imu[{index}].scenario", f"must be one of {names}, not {imu.scenario!r}")
    options = {} if imu.scenario == "fall" else {"placement": imu.placement}
    return factory(seed=config.station.seed * 100 + index, **options)


def simulated_bus(config: Config, clock: Clock, *, loop: bool = True) -> SimBus:
    """A SimBus carrying the config's chips, driven by its scenarios."""
    bus = SimBus(config.i2c.bus, clock=clock)
    for i, imu in enumerate(config.imus):
        motion = _motion(config, i, loop)
        seed = config.station.seed * 100 + i
        chip: SimChip
        if imu.chip == "lsm6ds":
            chip = Lsm6dsSim(motion, clock=clock, seed=seed)
        else:
            chip = Mpu6050Sim(
                motion,
                clock=clock,
                seed=seed,
                variant="MPU-6500" if imu.chip == "mpu6500" else "MPU-6050",
            )
        bus.attach(imu.address, chip)
    if config.scale is not None:
        factory = MASS_SCENARIOS.get(config.scale.scenario)
        if factory is None:
            choices = ", ".join(sorted(MASS_SCENARIOS))
            raise ConfigError(
                "scale.scenario",
                f"must be one of {choices}, not {config.scale.scenario!r}",
            )
        load = factory(seed=config.station.seed * 100 + 50)
        duration = getattr(load, "duration", None) or 3600.0
        cell = LOAD_CELLS[config.scale.mode]
        bus.attach(
            config.scale.address,
            Nau7802Sim(
                Repeating(load, duration) if loop else load,
                clock=clock,
                seed=config.station.seed,
                capacity_g=cell["capacity_g"],
                sensitivity_mv_per_v=cell["sensitivity_mv_per_v"],
            ),
        )
    if config.nfc is not None:
        # Three athletes taking turns, tapping in and out; bus.chip(0x24).tags takes any other rota.
        bus.attach(
            config.nfc.address,
            Pn532Sim(taking_turns(seed=config.station.seed, repeat=loop), clock=clock),
        )
    return bus


def calibrate_scale(bus: SimBus, config: Config, clock: Clock, known_g: float | None = None):
    """Calibrate the simulated scale the way an installer calibrates a real one.

    The load cell is emptied and tared, a known mass is put on and measured,
    and the scenario's load goes back. Returns the ScaleCalibration to give
    the station; None when the config has no scale.
    """
    from ..i2c.nau7802 import Nau7802

    if config.scale is None:
        return None
    known_g = known_g or CALIBRATION_MASS_G[config.scale.mode]
    chip = bus.chip(config.scale.address)
    if not isinstance(chip, Nau7802Sim):
        raise TypeError(f"the simulated bus has no NAU7802 at 0x{config.scale.address:02X}")
    scenario_load = chip.load
    scale = Nau7802(
        bus,
        config.scale.address,
        gain=config.scale.gain,
        rate_sps=config.scale.rate_sps,
        clock=clock,
    )
    try:
        chip.load = 0.0
        scale.tare(samples=5)
        chip.load = known_g
        return scale.calibrate(known_g, samples=5)
    finally:
        chip.load = scenario_load
