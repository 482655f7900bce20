"""Plausible session records, for the tests, the benchmark and a demo's first weeks.

A record follows the contract (``session_record`` in the athletes contract):
sets whose tremor ratio grows over a session as the muscles tire, a static
hold or two, alerts when a set's peak crosses the high band, a bottle or a
body scale, a per-minute trace per sensor, and the baseline the station
learnt. Numbers are drawn from the bands in shared/PHYSIOLOGY.md (rested
ratio 1, elevated from 2, high from 4; sweat 0.5-1.5 l/h), so charts and
alert logs built from them look like a gym's. Nothing here is measured.
"""

from __future__ import annotations

import math
import random
from typing import Any


def session_record(*, station: str, athlete: str | None, started_ts: float, seed: int = 0,
                   sets: int = 5, holds: int = 1, sensor: str = "wrist",
                   fitness: float = 1.0) -> dict[str, Any]:
    """One ended session's record; the same arguments give the same record."""
    rng = random.Random(f"{station}|{athlete}|{started_ts}|{seed}")
    t = started_ts + rng.uniform(60, 180)
    out_sets, out_holds, alerts, trace_marks = [], [], [], []
    for n in range(sets + holds):
        index = n + 1
        is_hold = n >= sets
        duration = rng.uniform(30, 75) if is_hold else rng.uniform(25, 55)
        # Fatigue: each set shakes a little more than the last; fitter athletes less.
        median = max(1.0, rng.gauss(1.2 + 0.25 * n / fitness, 0.15))
        peak = median * rng.uniform(1.2, 2.2)
        start, end = t, t + duration
        if is_hold:
            out_holds.append({"index": index, "sensor": sensor, "start_ts": round(start, 3),
                              "end_ts": round(end, 3), "duration_s": round(duration, 1),
                              "ratio_peak": round(peak, 2),
                              "fatigue_ratio_peak": round(rng.uniform(0.3, 1.6), 2)})
        else:
            out_sets.append({"index": index, "kind": "reps", "sensor": sensor,
                             "placement": "limb", "start_ts": round(start, 3),
                             "end_ts": round(end, 3), "reps": rng.randint(6, 12),
                             "ratio_median": round(median, 2), "ratio_peak": round(peak, 2),
                             "growth_per_min": round(rng.uniform(0.0, 0.6) * n / sets, 3),
                             "recovery_s": round(rng.uniform(25, 60) * median, 1)})
        if peak >= 4.0:
            raised = end - rng.uniform(2, 10)
            acked = rng.random() < 0.6
            alerts.append({"id": f"{station}:{int(raised)}:{index:04d}", "code": "tremor.high",
                           "level": "warning", "raised_ts": round(raised, 3),
                           "cleared_ts": round(end + rng.uniform(30, 120), 3),
                           "acknowledged_ts": round(raised + 20, 3) if acked else None,
                           "by": rng.choice(["Ana", "Ben"]) if acked else None})
        trace_marks.append((start, end, "hold" if is_hold else "reps", median, peak))
        t = end + rng.uniform(90, 180)
    ended = t
    trace = []
    minute = math.floor(started_ts / 60) * 60
    while minute <= ended:
        active = [m for m in trace_marks if m[0] < minute + 60 and m[1] > minute]
        state = active[0][2] if active else "rest"
        p50 = active[0][3] if active else max(0.8, rng.gauss(1.0, 0.08))
        top = active[0][4] if active else p50 * rng.uniform(1.05, 1.4)
        trace.append({"ts": float(minute), "sensor": sensor, "state": state,
                      "ratio_p50": round(p50, 2), "ratio_max": round(top, 2),
                      "rms_mg_p50": round(8.0 * p50, 1)})
        minute += 60
    mass = round(rng.uniform(55000, 95000), -2)
    loss = rng.uniform(0.3, 1.6)
    hours = (ended - started_ts) / 3600
    hydration = {"mode": "body", "intake_ml": round(rng.uniform(0, 700), -1),
                 "weigh_ins": [{"phase": "pre", "mass_g": mass, "ts": round(started_ts + 5, 3)},
                               {"phase": "post", "mass_g": round(mass * (1 - loss / 100), 1),
                                "ts": round(ended - 5, 3)}],
                 "sweat_rate_l_per_h": round(mass * loss / 100 / 1000 / max(hours, 0.1), 2),
                 "body_mass_loss_pct": round(loss, 2)}
    return {
        "v": 1, "ts": round(ended + 1, 3), "station": station,
        "id": f"{station}:{int(started_ts * 1000)}", "athlete": athlete,
        "guest": athlete is None, "started_ts": round(started_ts, 3), "ended_ts": round(ended, 3),
        "end_reason": rng.choice(["tap", "tap", "timeout", "button"]),
        "sets": out_sets, "holds": out_holds, "alerts": alerts, "hydration": hydration,
        "trace": trace,
        "profile_update": ({"baselines_mg": {"limb": round(rng.uniform(6, 10), 2)},
                            "body_mass_g": round(mass * (1 - loss / 100), 1)}
                           if athlete else None),
    }
