"""Ready-made sessions for tests, benchmarks and the demo, by name.

Each motion factory takes a ``seed`` and keyword overrides passed on to
:class:`~monitor.sim.scenarios.athlete.Scenario` (``placement``, ``orientation``,
``tremor_mg`` ...) and returns a :class:`Scenario`: a motion source with ``truth``. Its
:attr:`~Scenario.companion` is the source for a second sensor on an unexercised body
part (baseline tremor, except in ``unexercised_tremor``)::

    from monitor.sim.scenarios import SCENARIOS, MASS_SCENARIOS

    athlete = SCENARIOS["strength_session"](seed=1)
    bus.attach(0x68, Mpu6050Sim(athlete, clock=clock))
    bus.attach(0x6A, Lsm6dsSim(athlete.companion, clock=clock))
    bus.attach(0x2A, Nau7802Sim(MASS_SCENARIOS["bottle_dock"](seed=1), clock=clock))

=================== ========= =========================================================
name                placement what happens
=================== ========= =========================================================
rest                limb      10 min of rest: baseline tremor only
stationary          bench     an hour of an unused bench: baseline through the bench
strength_session    limb      rest, 5 sets of 10 reps (tremor grows set on set), cool-down
static_holds        limb      three planks/wall sits: the 4-7 Hz component takes over
recovery            limb      hard sets and a hold, then 25 min of normal recovery
persistent_tremor   limb      the same, but the tremor does not fade (red flag)
unexercised_tremor  limb      sets on this limb; the companion's tremor rises too (red flag)
dropped_weight      bench     sets ending in dropped dumbbells, and a neighbour's drop
neighbour_vibration bench     resting while a treadmill runs next door (2.8 Hz comb, 25 Hz)
fall                body      rest, a set, then a fall and two minutes lying still
set_to_failure      limb      rest, then one long heavy set of slow reps: tremor grows 5x
everyday            body      standing, walking, standing, jogging, standing: no training
=================== ========= =========================================================

Mass sources: ``MASS_SCENARIOS["bottle_dock"]`` (sips adding up to 500 mL over an hour, a
refill, two knocks) and ``MASS_SCENARIOS["body_scale"]`` (weigh-ins of 70.0 kg at the start
and 69.1 kg at the end); :func:`hydration_session` gives both with a known sweat rate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .athlete import Scenario
from .falls import FALL_SCENARIOS
from .mass import BodyScale, BottleDock

# -- motion ---------------------------------------------------------------------------


def rest(seed: int = 0, *, seconds: float = 600.0, **options: Any) -> Scenario:
    """Rest only: the rested baseline, for calibrating and for the "idle" state."""
    return Scenario(seed, name="rest", **options).rest(seconds)


def stationary(seed: int = 0, *, seconds: float = 3600.0, **options: Any) -> Scenario:
    """A sensor on a bench nobody exercises on: baseline tremor through the bench."""
    options.setdefault("placement", "bench")
    return Scenario(seed, name="stationary", **options).rest(seconds)


def strength_session(
    seed: int = 0,
    *,
    sets: int = 5,
    reps: int = 10,
    rep_hz: float = 0.5,
    load: float = 0.7,
    rest_s: float = 90.0,
    **options: Any,
) -> Scenario:
    """Warm-up rest, ``sets`` sets of reps with short rests (fatigue accumulates), then a
    10 min cool-down in which tremor returns to baseline. About 20 min."""
    return (
        Scenario(seed, name="strength_session", **options)
        .rest(120)
        .reps(reps, sets=sets, rep_hz=rep_hz, load=load, rest=rest_s)
        .recovery(600)
    )


def static_holds(seed: int = 0, **options: Any) -> Scenario:
    """Planks and wall sits: no reps, tremor climbing fast, 4-7 Hz dominant late in a hold."""
    return (
        Scenario(seed, name="static_holds", **options)
        .rest(120)
        .hold(45, load=0.6)
        .rest(90)
        .hold(60, load=0.6)
        .rest(90)
        .hold(45, load=0.7)
        .recovery(600)
    )


def recovery(seed: int = 0, *, persistent: bool = False, **options: Any) -> Scenario:
    """Hard sets and a hold, then 25 min of recovery: the tremor fades within ~10 min,
    or, with ``persistent=True``, stays visible (red flag after 15 min)."""
    name = "persistent_tremor" if persistent else "recovery"
    return (
        Scenario(seed, name=name, **options)
        .rest(120)
        .reps(12, sets=3, rep_hz=0.6, load=0.8, rest=60)
        .hold(60, load=0.8)
        .recovery(1500, persistent=persistent)
    )


def persistent_tremor(seed: int = 0, **options: Any) -> Scenario:
    """:func:`recovery` with a tremor that does not fade (red flag)."""
    return recovery(seed, persistent=True, **options)


def unexercised_tremor(seed: int = 0, **options: Any) -> Scenario:
    """Sets on this limb while the companion (another, resting limb) shakes as much:
    tremor in a body part that is not being exercised (red flag)."""
    session = strength_session(seed, **options)
    session.name = "unexercised_tremor"
    return session.with_companion(coupling=1.0)


def dropped_weight(seed: int = 0, **options: Any) -> Scenario:
    """Bench clip: two heavy sets each ending with the dumbbells dropped next to the
    bench, and a neighbour's drop during the last rest. Drops are not tremor."""
    options.setdefault("placement", "bench")
    s = Scenario(seed, name="dropped_weight", **options)
    s.rest(60).reps(8, load=0.8).drop().rest(90).reps(8, load=0.8).drop().rest(120)
    return s.drop(at=s.duration - 60.0)


def neighbour_vibration(seed: int = 0, **options: Any) -> Scenario:
    """Bench clip, athlete resting: someone runs on the next treadmill from 60 s to 480 s.
    Footfalls at 2.8 Hz with harmonics through the tremor bands, motor hum at 25 Hz."""
    options.setdefault("placement", "bench")
    return Scenario(seed, name="neighbour_vibration", **options).rest(600).treadmill(420, at=60)


def fall(seed: int = 0, **options: Any) -> Scenario:
    """Body-worn: rest, a set, a short rest, then a fall and two minutes lying still."""
    options.setdefault("placement", "body")
    return (
        Scenario(seed, name="fall", **options).rest(60).reps(10, load=0.7).rest(30).fall(lying=120)
    )


def set_to_failure(seed: int = 0, **options: Any) -> Scenario:
    """A long, heavy set taken to failure: 24 slow reps (0.4 Hz, 0.25 g) at full load after a
    rest. Tremor grows about fivefold within the set (Lippold 1981: up to tenfold after two
    minutes of maximal effort), far beyond what the reps' own jerk puts in the band."""
    return (
        Scenario(seed, name="set_to_failure", **options)
        .rest(120)
        .reps(24, rep_hz=0.4, load=1.0, peak_g=0.25)
        .recovery(300)
    )


def everyday(seed: int = 0, **options: Any) -> Scenario:
    """Body-worn, no training at all: standing with shifts of weight, a walk, standing, a
    jog, standing. Nothing here is a set, a hold or tremor to alert on."""
    options.setdefault("placement", "body")
    return (
        Scenario(seed, name="everyday", **options).stand(120).walk(90).stand(60).jog(40).stand(120)
    )


SCENARIOS: dict[str, Callable[..., Scenario]] = {
    "rest": rest,
    "stationary": stationary,
    "strength_session": strength_session,
    "static_holds": static_holds,
    "recovery": recovery,
    "persistent_tremor": persistent_tremor,
    "unexercised_tremor": unexercised_tremor,
    "dropped_weight": dropped_weight,
    "neighbour_vibration": neighbour_vibration,
    "fall": fall,
    "set_to_failure": set_to_failure,
    "everyday": everyday,
    # real_fall_forward, _knees, _backward, _sideways: falls shaped like real ones
    **FALL_SCENARIOS,
}
"""Motion scenarios by name: ``SCENARIOS[name](seed=..., **options) -> Scenario``."""


# -- mass -----------------------------------------------------------------------------


@dataclass(frozen=True)
class HydrationTruth:
    """The numbers a weigh-in pair and a bottle dock should yield (1 kg = 1 L).

    ``hours`` runs from the pre to the post weigh-in. No urine is lost in these sessions.
    """

    pre_g: float
    post_g: float
    intake_ml: float
    hours: float

    @property
    def sweat_l(self) -> float:
        return (self.pre_g - self.post_g + self.intake_ml) / 1000.0

    @property
    def sweat_rate_l_per_h(self) -> float:
        return self.sweat_l / self.hours

    @property
    def mass_loss_pct(self) -> float:
        return (self.pre_g - self.post_g) / self.pre_g * 100.0


@dataclass(frozen=True, eq=False)
class Hydration:
    """A body scale and a bottle dock for the same session, and what they should show."""

    scale: BodyScale
    dock: BottleDock
    truth: HydrationTruth


def bottle_session(
    seed: int = 0,
    *,
    seconds: float = 3600.0,
    intake_ml: float = 500.0,
    knocks: int = 2,
    start: float = 120.0,
    **options: Any,
) -> BottleDock:
    """A dock through a session: sips adding up to ``intake_ml`` spread over it, a
    refill when the bottle runs low, and ``knocks`` bumps. The bottle starts part-full
    (250-400 mL of 600) unless ``water_ml`` is given; ``options`` go to BottleDock."""
    rng = np.random.default_rng([*np.atleast_1d(seed if seed is not None else 0), 2])
    options.setdefault("water_ml", float(rng.uniform(250.0, 400.0)))
    dock = BottleDock(seed, **options)
    count = max(1, round(intake_ml / 40.0))
    sips = rng.uniform(20.0, 60.0, count)
    sips *= intake_ml / sips.sum()
    kinds = ["sip"] * count + ["knock"] * knocks
    rng.shuffle(kinds)
    # One slot per happening, each placed in the first half of its slot so a refill
    # (up to a minute) still fits before the next one.
    slot = (seconds - start - 120.0) / len(kinds)
    sip_sizes = iter(sips)
    for i, kind in enumerate(kinds):
        at = start + slot * (i + rng.uniform(0.05, 0.35))
        if kind == "knock":
            dock.knock(at)
            continue
        ml = float(next(sip_sizes))
        if ml > dock.water_ml:
            dock.refill(at)
            at += slot * 0.5
        dock.sip(at, ml)
    return dock


def weigh_ins(
    seed: int = 0, *, seconds: float = 3600.0, pre_kg: float = 70.0, post_kg: float = 69.1
) -> BodyScale:
    """A body scale with a weigh-in at the start (20 s) and at the end of a session."""
    return (
        BodyScale(seed)
        .weigh_in(20.0, pre_kg, label="pre")
        .weigh_in(seconds - 40.0, post_kg, label="post")
    )


def hydration_session(
    seed: int = 0,
    *,
    seconds: float = 3600.0,
    pre_kg: float = 70.0,
    post_kg: float = 69.1,
    intake_ml: float = 500.0,
) -> Hydration:
    """Weigh-ins and a bottle dock that agree: 70.0 kg before, 69.1 kg after, 0.5 L
    drunk, so 1.4 L of sweat over the session (about 1.4 L/h for an hour)::

        h = hydration_session(seed=1)
        h.truth.sweat_rate_l_per_h
        h.scale.mass_g(t), h.dock.mass_g(t)
    """
    scale = weigh_ins(seed, seconds=seconds, pre_kg=pre_kg, post_kg=post_kg)
    dock = bottle_session(seed, seconds=seconds, intake_ml=intake_ml)
    pre, post = scale.truth.weigh_ins
    truth = HydrationTruth(
        pre.mass_g, post.mass_g, dock.truth.total_intake_ml, (post.start - pre.start) / 3600.0
    )
    return Hydration(scale, dock, truth)


MASS_SCENARIOS: dict[str, Callable[..., BottleDock | BodyScale]] = {
    "bottle_dock": bottle_session,
    "body_scale": weigh_ins,
}
"""Mass sources by name: ``MASS_SCENARIOS[name](seed=..., seconds=...)``."""
