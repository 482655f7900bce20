"""The real weighing chain on a simulated load cell, for the hydration tests and bench.

A mass source (a scenario's bottle dock or body scale) sits on a simulated NAU7802 behind a
simulated bus; the real driver is tared empty, calibrated with a known mass, then read on a
simulated clock, each reading fed to a tracker::

    log = run_chain(bottle_session(seed=11), 3600.0, BottleTracker(), known_g=1000.0)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from monitor.clock import SimClock
from monitor.i2c.nau7802 import Nau7802
from monitor.sim.bus import SimBus
from monitor.sim.nau7802 import Nau7802Sim

#: a bottle dock's load cell: 5 kg, 1 mV/V
DOCK_CELL = {"capacity_g": 5_000.0, "sensitivity_mv_per_v": 1.0}
#: a body scale's: 200 kg, 2 mV/V, its platform 4 kg
BODY_CELL = {"capacity_g": 200_000.0, "sensitivity_mv_per_v": 2.0, "offset_g": 4_000.0}


def run_chain(
    source: Any,
    seconds: float,
    tracker: Any,
    *,
    known_g: float,
    seed: int = 0,
    cell: dict[str, float] = DOCK_CELL,
) -> np.ndarray:
    """Tare the empty scale, calibrate with ``known_g``, then weigh ``source`` until
    ``seconds`` on the sim clock, feeding each reading to ``tracker``. Returns the
    (t, mass_g) readings and the tracker's intake after each one (bottle only)."""
    clock = SimClock()
    bus = SimBus()
    sim = bus.attach(0x2A, Nau7802Sim(0.0, clock=clock, seed=seed, **cell))
    scale = Nau7802(bus, clock=clock)
    scale.tare()
    sim.load = known_g
    scale.calibrate(known_g)
    sim.load = source
    assert clock.now() < 5.0  # the scenarios' first happenings come later
    log = []
    while clock.now() < seconds:
        r = scale.read()
        if r is not None:
            tracker.feed(r.t, r.mass_g)
            log.append((r.t, r.mass_g, getattr(tracker, "intake_ml", 0.0)))
        clock.sleep(scale.poll_interval)
    return np.array(log)
