"""Fall detection: real falls caught, false alarms in everyday movement and gym work, cost.

    .venv/bin/python -m bench.bench_falls [--root ../shared/data/realdata/mobifall] [--seeds 40]

Real recordings (MobiFall, phone in the trouser pocket, so the thigh preset): every trial
through a fresh detector in 0.1 s blocks, as the station feeds it. A fall trial counts
as caught only if the detector decided within the recording; every fall decided in an
everyday trial is a false alarm. The same recordings resampled to 50-1000 Hz show the
verdicts do not hang on the rate.

Simulated (monitor.sim.scenarios.falls, per site): the four MobiFall fall kinds, and jumps,
sitting down hard, lying down on a bench; the library's gym sessions (strength sets,
dropped weights, a treadmill next door) on a body-worn sensor, as false alarms per hour.

Cost: microseconds per 0.1 s block at 1 kHz, quiet and moving, against the block's
0.1 s of real time (one core of this machine; a Pi Zero 2 W core is several times slower).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from monitor.analysis.fall import SITES, FallConfig, FallDetector
from monitor.analysis.fall_eval import Outcome, Report, evaluate, run, trials
from monitor.sim import SCENARIOS
from monitor.sim.scenarios.falls import FALL_KINDS, Movements
from monitor.units import G

ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "realdata" / "mobifall"

EVERYDAY = {
    "jumps (6 in a row)": lambda m: m.stand(3).jumps(6).stand(5),
    "one jump, then standing": lambda m: m.stand(3).jumps(1).stand(5),
    "sitting down hard": lambda m: m.stand(3).sit_down_hard().stand(5).stand_up().stand(3),
    "lying down on a bench": lambda m: (
        m.stand(3).sit_down_hard().stand(2).lie_down().stand(6).stand_up().stand(3)
    ),
}
GYM = ("strength_session", "dropped_weight", "neighbour_vibration")


def real(root: Path) -> None:
    print(f"== MobiFall development split ({root}), site thigh ==")
    report = evaluate(root, site="thigh")
    print(report.table())
    after = [x.duration_s - x.peak_t for x in trials(root) if x.fall and x.peak_t is not None]
    cfg = FallConfig.for_site("thigh")
    print(
        f"recording after the largest |a| in fall trials: min {min(after):.2f} s, "
        f"median {np.median(after):.2f} s; the detector needs {cfg.judge_s:.1f} s "
        f"(+ one 20 ms bin)"
    )
    missed = [o.trial for o in report.outcomes if o.fall and not o.caught]
    print(f"missed: {', '.join(missed) or 'none'}")
    print()
    print("== the same recordings resampled (linear interpolation) ==")
    recs = list(trials(root))
    kinds = sorted({x.activity for x in recs if x.fall})
    print(
        f"{'rate':>8s} {'caught':>7s} " + " ".join(f"{k:>5s}" for k in kinds) + f" {'alarms':>6s}"
    )
    for fs in (50.0, 100.0, 200.0, 1000.0):
        rep = Report()
        for x in recs:
            t = np.arange(x.t[0], x.t[-1], 1.0 / fs)
            a = np.column_stack([np.interp(t, x.t, x.accel[:, i]) for i in range(3)])
            events = run(t, a, FallDetector(site="thigh"))
            rep.outcomes.append(
                Outcome(x.name, x.activity, x.fall, x.duration_s, tuple(events), x.peak_t)
            )
        print(
            f"{fs:6.0f}Hz {100 * rep.sensitivity():6.1f}% "
            + " ".join(f"{100 * rep.sensitivity(k):4.0f}%" for k in rep.kinds(True))
            + f" {rep.false_alarms():6d}"
        )
    print()


def simulated(seeds: int) -> None:
    print(f"== simulated falls, {seeds} per kind and site (200 Hz) ==")
    print(
        f"{'site':6s} "
        + " ".join(f"{k:>9s}" for k in FALL_KINDS)
        + f" {'all':>6s}  decided after impact"
    )
    for site in SITES:
        rates, lat = [], []
        for kind in FALL_KINDS:
            hits = 0
            for seed in range(seeds):
                m = Movements([seed, FALL_KINDS.index(kind)], site=site).stand(5).fall(kind).lie(6)
                t = np.arange(0.0, m.duration, 0.005)
                events = run(t, m.accel(t), FallDetector(site=site))
                hits += bool(events)
                lat += [e.decided_t - e.t for e in events]
            rates.append(hits / seeds)
        print(
            f"{site:6s} "
            + " ".join(f"{100 * r:8.0f}%" for r in rates)
            + f" {100 * np.mean(rates):5.0f}%  {np.median(lat):.2f} s"
        )
    print()
    print(f"== simulated everyday and gym movement, {seeds} each: falls reported ==")
    print(f"{'movement':26s} " + " ".join(f"{s:>6s}" for s in SITES))
    for name, build in EVERYDAY.items():
        counts = []
        for site in SITES:
            n = 0
            for seed in range(seeds):
                m = build(Movements([seed, 7], site=site))
                t = np.arange(0.0, m.duration, 0.005)
                n += len(run(t, m.accel(t), FallDetector(site=site)))
            counts.append(n)
        print(f"{name:26s} " + " ".join(f"{c:6d}" for c in counts))
    print()
    print("== library gym sessions on a body-worn sensor (100 Hz): false alarms ==")
    for name in GYM:
        hours, alarms = 0.0, {s: 0 for s in SITES}
        for seed in range(3):
            s = SCENARIOS[name](seed=seed, placement="body")
            t = np.arange(0.0, s.duration, 0.01)
            a = s.accel(t)
            hours += s.duration / 3600.0
            for site in SITES:
                alarms[site] += len(run(t, a, FallDetector(site=site)))
        print(
            f"{name:20s} {hours:5.2f} h  "
            + "  ".join(f"{k} {v / hours:.2f}/h" for k, v in alarms.items())
        )
    print()


def cost() -> None:
    print("== cost per 0.1 s block at 1 kHz (best of 7) ==")
    rng = np.random.default_rng(0)
    n = 30_000
    t = np.arange(n) / 1000.0
    quiet = np.tile([0.0, 0.0, G], (n, 1)) + rng.normal(0, 0.05, (n, 3))
    m = Movements(1, site="chest").stand(5).jumps(6).stand(3).sit_down_hard().stand(5)
    moving = m.accel(t[t < m.duration])
    for label, accel in (("quiet", quiet), ("jumps and sitting", moving)):
        t = np.arange(len(accel)) / 1000.0
        best = float("inf")
        for _ in range(7):
            detector = FallDetector()
            start = time.perf_counter()
            for i in range(0, len(accel), 100):
                detector.feed(t[i : i + 100], accel[i : i + 100])
            best = min(best, (time.perf_counter() - start) / (len(accel) / 100))
        print(f"{label:18s} {best * 1e6:7.1f} us per block = {100 * best / 0.1:.3f} % of a core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT)
    parser.add_argument("--seeds", type=int, default=40)
    args = parser.parse_args()
    if args.root.is_dir():
        real(args.root)
    else:
        print(f"(no real recordings at {args.root}: skipped)\n")
    simulated(args.seeds)
    cost()


if __name__ == "__main__":
    main()
