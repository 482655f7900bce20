"""The station on real recordings: reps, sets, tremor and hold alerts, baselines, falls.

    .venv/bin/python -m bench.bench_realdata [--data ../shared/data/realdata] [--jobs 2]

Every figure comes from :func:`monitor.replay.replay`, the same door as
``gym-monitor replay``: each recording drives a simulated chip that the station
reads in 0.1 s steps, through the analysis, the session, the alert rules and
the alert manager, and the fall detector the station's config selects. Nothing
here looks at a recording in any other way.

Recordings (``../shared/data/realdata``, see its README): SPAR, 70 sets of 20
shoulder-exercise reps from a wrist-worn watch at 50 Hz; MobiFall, falls and
everyday movement from a phone in the trouser pocket (a body-worn sensor at the
thigh). The station's sensor is an MPU-6050 (noise floor 1.7 mg), so "the
floor" is twice the noise it puts in the tremor band, the smallest baseline
there is.

Figures:

* reps: mean absolute error per 20-rep set, per exercise; sets found per
  recording (1 is right);
* set start: first set's start minus the recording's first sample (the
  recordings start with the movement);
* tremor and hold alerts per training hour on the SPAR sets, with the rested
  baseline given at 1x, 2x and 4x the floor;
* tremor and hold alerts per hour of MobiFall everyday movement, with the
  baseline learnt (where the trial lets one be learnt) and given at the floor;
* the rested baseline learnt while standing (MobiFall STD): who got one, and when;
* falls: sensitivity per fall kind, specificity per everyday activity (trials
  without a fall alarm), false fall alarms per hour of everyday movement.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from monitor.analysis.tremor import analyze
from monitor.replay import replay
from monitor.units import G

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "realdata"
NOISE_FLOOR_MG = 1.7  # the station's MPU-6050
TREMOR_CODES = ("tremor.", "hold.")
FALL_KINDS = ("FOL", "FKL", "BSC", "SDL")


def floor_mg(fs: float = 50.0) -> float:
    """Twice the noise the sensor puts in the tremor band: the smallest baseline."""
    still = np.zeros((int(2.5 * fs), 3))
    still[:, 2] = G
    return 2 * analyze(still, fs, noise_floor_mg=NOISE_FLOOR_MG).floor_mg


def run_one(job: tuple[str, str, float | None]) -> dict:
    path, placement, baseline = job
    [r] = replay(
        Path(path), placement=placement, baseline_mg=baseline, noise_floor_mg=NOISE_FLOOR_MG
    )
    raised = [a for _, a in r.alerts if a.state == "raised"]
    return {
        "path": path,
        "baseline": baseline,
        "duration_s": r.recording.duration_s,
        "sets": [(s.kind, s.start - r.t0, s.end - r.t0, s.reps) for s in r.sets],
        "alerts": [a.code for a in raised],
        "falls": [e.t - r.t0 for e in r.falls],
        "baseline_learned_t": None if r.baseline_learned_t is None else r.baseline_learned_t - r.t0,
        "still_share": float(np.mean([s.activity == "still" for s in r.statuses]))
        if r.statuses
        else 0.0,
    }


def labels(path: Path) -> dict:
    return json.loads(path.with_suffix(".json").read_text())


def pct(a: int, b: int) -> str:
    return f"{100.0 * a / b:5.1f} % ({a}/{b})" if b else "   -"


def spar(data: Path, pool, limit: int | None) -> None:
    files = sorted((data / "spar").glob("*.csv"))[:limit]
    floor = floor_mg()
    jobs = [(str(f), "limb", k * floor) for k in (1, 2, 4) for f in files]
    results = list(pool.map(run_one, jobs))
    by = {(r["path"], r["baseline"]): r for r in results}
    hours = sum(by[(str(f), floor)]["duration_s"] for f in files) / 3600
    print(
        f"SPAR: {len(files)} sets of 20 reps, wrist, 50 Hz, {hours * 60:.1f} min "
        f"(floor {floor:.2f} mg = twice the MPU-6050 noise in 3-18 Hz)"
    )
    errors: dict[str, list[int]] = defaultdict(list)
    starts, found = [], []
    for f in files:
        r = by[(str(f), floor)]
        sets = [s for s in r["sets"] if s[0] == "reps"]
        found.append(len(sets))
        counted = sum(s[3] for s in sets)
        errors[labels(f)["exercise"]].append(counted - labels(f)["reps"])
        if sets:
            starts.append(sets[0][1])
    print("  rep count per set (all sets found in a recording together), by exercise:")
    print(f"    {'exercise':<9}{'sets':>5}{'MAE':>7}{'bias':>7}{'worst':>7}   target MAE <= 1")
    for ex, e in sorted(errors.items()):
        e = np.array(e)
        worst = int(e[np.argmax(np.abs(e))])
        print(f"    {ex:<9}{len(e):5d}{np.mean(np.abs(e)):7.2f}{np.mean(e):+7.2f}{worst:+7d}")
    every = np.concatenate([np.array(e) for e in errors.values()])
    print(f"    {'all':<9}{len(every):5d}{np.mean(np.abs(every)):7.2f}{np.mean(every):+7.2f}")
    found = np.array(found)
    print(
        f"  sets found per recording: exactly 1 in {pct(int(np.sum(found == 1)), len(found))}, "
        f"none in {int(np.sum(found == 0))}, more in {int(np.sum(found > 1))}"
    )
    if starts:
        s = np.array(starts)
        print(
            f"  set start error (first rep found - recording start): median {np.median(s):+.2f} s, "
            f"mean |err| {np.mean(np.abs(s)):.2f} s, max {np.max(np.abs(s)):.2f} s   target <= 1 s"
        )
    print("  tremor and hold alerts on ordinary reps, rested baseline given:")
    for k in (1, 2, 4):
        n = sum(
            sum(a.startswith(TREMOR_CODES) for a in by[(str(f), k * floor)]["alerts"])
            for f in files
        )
        sets_with = sum(
            any(a.startswith(TREMOR_CODES) for a in by[(str(f), k * floor)]["alerts"])
            for f in files
        )
        print(
            f"    {k}x floor ({k * floor:5.2f} mg): {n} alerts = {n / hours:.2f} per hour; "
            f"sets with one: {sets_with} of {len(files)}   target <= 0.5 per hour"
        )


def mobifall(data: Path, pool, limit: int | None, site: str) -> None:
    files = sorted((data / "mobifall").glob("*.csv"))
    if limit:
        files = files[:: max(1, len(files) // limit)]
    info = {str(f): labels(f) for f in files}
    adl = [f for f in files if not info[str(f)]["fall"]]
    falls = [f for f in files if info[str(f)]["fall"]]
    floor = floor_mg(100.0)
    jobs = [(str(f), site, None) for f in files] + [(str(f), site, floor) for f in adl]
    results = list(pool.map(run_one, jobs))
    learnt = {r["path"]: r for r in results if r["baseline"] is None}
    given = {r["path"]: r for r in results if r["baseline"] is not None}
    hours = sum(learnt[str(f)]["duration_s"] for f in adl) / 3600
    print(
        f"\nMobiFall: {len(falls)} falls, {len(adl)} everyday-movement trials "
        f"({hours * 60:.1f} min), "
        f"phone in the trouser pocket: placement body, site {site}"
    )

    print("  tremor and hold alerts in everyday movement:")
    for name, res in (
        ("baseline learnt", learnt),
        (f"baseline given at the floor ({floor:.2f} mg)", given),
    ):
        n = sum(sum(a.startswith(TREMOR_CODES) for a in res[str(f)]["alerts"]) for f in adl)
        trials = sum(any(a.startswith(TREMOR_CODES) for a in res[str(f)]["alerts"]) for f in adl)
        print(
            f"    {name:<40} {n} alerts = {n / hours:.2f} per hour; trials with one: "
            f"{pct(trials, len(adl))}"
            "   target <= 0.5 per hour"
        )
    kinds = defaultdict(list)
    for f in adl:
        kinds[info[str(f)]["activity"]].append(f)
    print("    by activity (baseline given at the floor): alerts / trials")

    def tremor_alerts(trial) -> int:
        return sum(1 for a in given[str(trial)]["alerts"] if a.startswith(TREMOR_CODES))

    print(
        "     "
        + "  ".join(
            f"{k} {sum(tremor_alerts(f) for f in v)}/{len(v)}" for k, v in sorted(kinds.items())
        )
    )

    print(
        "    sets of reps or holds found in everyday movement (baseline learnt): "
        + "  ".join(
            f"{k} {sum(len(learnt[str(f)]['sets']) for f in v)}" for k, v in sorted(kinds.items())
        )
    )

    std = [f for f in adl if info[str(f)]["activity"] == "STD"]
    if std:
        print("  rested baseline learnt while standing (STD, 5 min each):")
        people = defaultdict(list)
        for f in std:
            people[info[str(f)]["subject"]].append(learnt[str(f)]["baseline_learned_t"])
        got = [min((x for x in v if x is not None), default=None) for v in people.values()]
        times = [x for x in got if x is not None]
        print(
            f"    people with a baseline: {sum(x is not None for x in got)} of {len(got)}; "
            f"within 60 s: {sum(x <= 60 for x in times)}; learnt after (s): "
            + ", ".join(f"{x:.1f}" for x in sorted(times))
            + "   target every person within 60 s"
        )
        shares = [learnt[str(f)]["still_share"] for f in std]
        print(
            f"    windows called still while standing: median {100 * np.median(shares):.0f} %, "
            f"lowest {100 * min(shares):.0f} %"
        )

    print("  falls (a fall alarm during the trial):")
    caught_all = 0
    for kind in FALL_KINDS:
        fs = [f for f in falls if info[str(f)]["activity"] == kind]
        caught = sum(bool(learnt[str(f)]["falls"]) for f in fs)
        caught_all += caught
        print(f"    {kind}: sensitivity {pct(caught, len(fs))}   target >= 80 %")
    print(f"    all falls: sensitivity {pct(caught_all, len(falls))}   target >= 90 %")
    false = 0
    spec = []
    for k, v in sorted(kinds.items()):
        quiet = sum(not learnt[str(f)]["falls"] for f in v)
        false += sum(len(learnt[str(f)]["falls"]) for f in v)
        spec.append(f"{k} {100.0 * quiet / len(v):.0f} %")
    print("    specificity by activity: " + ", ".join(spec))
    print(
        f"    false fall alarms in everyday movement: {false} = {false / hours:.2f} per hour   "
        "target <= 0.1 per hour"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("GYM_REALDATA", DEFAULT_DATA)))
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument(
        "--limit", type=int, default=None, help="use only about this many recordings of each study"
    )
    ap.add_argument(
        "--site", default="thigh", help="body site of the MobiFall phone (default thigh)"
    )
    ap.add_argument("--only", choices=("spar", "mobifall"), default=None)
    args = ap.parse_args()
    if not args.data.is_dir():
        sys.exit(
            f"{args.data}: no such folder (the real recordings live in ../shared/data/realdata)"
        )
    start = time.time()
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        if args.only in (None, "spar"):
            spar(args.data, pool, args.limit)
        if args.only in (None, "mobifall"):
            mobifall(args.data, pool, args.limit, args.site)
    print(f"\n({time.time() - start:.0f} s, {args.jobs} processes)")


if __name__ == "__main__":
    main()
