"""Athlete scenarios: motion and mass sources with ground truth for the simulated chips.

The simulated IMUs sample a motion source (``accel(t)``, ``gyro(t)``) and the simulated
load-cell ADC a mass source (``mass_g(t)``); the sources here describe a gym session
and remember what really happened, so tests can score the analysis against it::

    from monitor.sim.scenarios import Scenario, SCENARIOS, hydration_session

    athlete = (Scenario(seed=1, placement="limb")
               .rest(120).reps(10, sets=4, load=0.7).hold(45).recovery(300))
    athlete.truth.sets                    # where the sets really were
    athlete.truth.tremor_at([130.0])      # (Hz, mg) the sensor really sees
    fall = SCENARIOS["fall"](seed=2)      # ready-made sessions by name
    h = hydration_session(seed=3)         # a body scale and a bottle dock that agree

Modules: :mod:`.athlete` (the session builder), :mod:`.timeline` (the fatigue model),
:mod:`.placement` (limb, body, bench; orientation), :mod:`.disturbances` (drops,
treadmills, falls), :mod:`.mass` (bottle dock, body scale), :mod:`.library` (named
sessions), :mod:`.truth` (the ground-truth values), :mod:`.sources` (the source
protocols), :mod:`.evaluation` (how a timeline is sampled fast).
"""

from .athlete import Placement, Scenario
from .library import (
    MASS_SCENARIOS,
    SCENARIOS,
    Hydration,
    HydrationTruth,
    bottle_session,
    dropped_weight,
    everyday,
    fall,
    hydration_session,
    neighbour_vibration,
    persistent_tremor,
    recovery,
    rest,
    set_to_failure,
    static_holds,
    stationary,
    strength_session,
    unexercised_tremor,
    weigh_ins,
)
from .mass import BodyScale, BottleDock, DockTruth, ScaleTruth, WeighIn
from .sources import G0, MG, MassSource, MotionSource
from .truth import Disturbance, Event, Segment, SetTruth, TremorTruth

__all__ = [
    "G0",
    "MASS_SCENARIOS",
    "MG",
    "SCENARIOS",
    "BodyScale",
    "BottleDock",
    "Disturbance",
    "DockTruth",
    "Event",
    "Hydration",
    "HydrationTruth",
    "MassSource",
    "MotionSource",
    "Placement",
    "ScaleTruth",
    "Scenario",
    "Segment",
    "SetTruth",
    "TremorTruth",
    "WeighIn",
    "bottle_session",
    "dropped_weight",
    "everyday",
    "fall",
    "hydration_session",
    "neighbour_vibration",
    "persistent_tremor",
    "recovery",
    "rest",
    "set_to_failure",
    "static_holds",
    "stationary",
    "strength_session",
    "unexercised_tremor",
    "weigh_ins",
]
