"""Accuracy of the hydration analysis against ground truth, over several seeds.

Run from the repository root::

    .venv/bin/python -m bench.bench_hydration [seeds]

Each seed is an hour of :func:`~monitor.sim.scenarios.library.hydration_session`
(a pre weigh-in of 70.0 kg, a post of 69.1 kg, 500 mL drunk from a bottle dock
with a refill and two knocks) run through the whole chain: the mass source on a
simulated NAU7802, the real driver (tared, then calibrated with a known mass),
the trackers, on a simulated clock. Prints, per seed, the bottle's intake and
sip count against the truth, and the weigh-ins, loss percent and sweat rate
against the truth; then the worst of each.
"""

from __future__ import annotations

import argparse
import time

from monitor.analysis.hydration import KNOCK, REFILL, SIP, BodyScaleTracker, BottleTracker
from monitor.sim.scenarios.library import hydration_session
from tests.support.scale import BODY_CELL, DOCK_CELL, run_chain


def run(source, seconds, tracker, *, known_g, seed, cell) -> int:
    """Tare, calibrate with ``known_g``, then weigh ``source`` into ``tracker``; readings made."""
    return len(run_chain(source, seconds, tracker, known_g=known_g, seed=seed, cell=cell))


def main(seeds: int = 10) -> None:
    print(
        f"{'seed':>4} | {'intake mL':>9} {'truth':>6} {'err':>5} | {'sips':>4} {'truth':>5} "
        f"{'refill':>6} {'knock':>5}/{'t':<1} | {'pre err g':>9} {'post err g':>10} | "
        f"{'loss %':>6} {'err':>6} | {'sweat L/h':>9} {'truth':>6} {'err %':>6}"
    )
    worst = {"intake": 0.0, "sips": 0, "weigh": 0.0, "loss": 0.0, "sweat": 0.0}
    readings = 0
    start = time.perf_counter()
    for seed in range(seeds):
        h = hydration_session(seed)
        truth = h.truth
        bottle = BottleTracker(session_start=0.0)
        readings += run(h.dock, 3600.0, bottle, known_g=1000.0, seed=seed, cell=DOCK_CELL)
        body = BodyScaleTracker(session_start=0.0)
        readings += run(h.scale, 3600.0, body, known_g=20_000.0, seed=seed + 100, cell=BODY_CELL)
        s = body.status(intake_ml=bottle.intake_ml)
        kinds = [e.kind for e in bottle.events]
        sips, sips_truth = kinds.count(SIP), len(h.dock.truth.events_of("sip"))
        intake_err = bottle.intake_ml - truth.intake_ml
        pre_err, post_err = s.pre_mass_g - truth.pre_g, s.post_mass_g - truth.post_g
        loss_err = s.body_mass_loss_pct - truth.mass_loss_pct
        sweat_err = (s.sweat_rate_l_per_h / truth.sweat_rate_l_per_h - 1) * 100
        print(
            f"{seed:>4} | {bottle.intake_ml:9.1f} {truth.intake_ml:6.1f} {intake_err:+5.1f} | "
            f"{sips:>4} {sips_truth:>5} {kinds.count(REFILL):>6} {kinds.count(KNOCK):>5}/"
            f"{len(h.dock.truth.events_of('knock')):<1} | {pre_err:+9.1f} {post_err:+10.1f} | "
            f"{s.body_mass_loss_pct:6.2f} {loss_err:+6.3f} | {s.sweat_rate_l_per_h:9.3f} "
            f"{truth.sweat_rate_l_per_h:6.3f} {sweat_err:+6.2f}"
        )
        worst["intake"] = max(worst["intake"], abs(intake_err))
        worst["sips"] = max(worst["sips"], abs(sips - sips_truth))
        worst["weigh"] = max(worst["weigh"], abs(pre_err), abs(post_err))
        worst["loss"] = max(worst["loss"], abs(loss_err))
        worst["sweat"] = max(worst["sweat"], abs(sweat_err))
    elapsed = time.perf_counter() - start
    print()
    print(
        f"worst over {seeds} seeds: intake {worst['intake']:.1f} mL, sip count {worst['sips']}, "
        f"weigh-in {worst['weigh']:.1f} g, loss {worst['loss']:.3f} points, sweat rate "
        f"{worst['sweat']:.2f} %"
    )
    print(
        f"{2 * seeds} simulated hours ({readings} readings, driver and simulator included) "
        f"in {elapsed:.1f} s"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("seeds", type=int, nargs="?", default=10, help="one simulated hour each (10)")
    main(ap.parse_args().seeds)
