"""Plausible session records, for the tests, the benchmark and a demo's first weeks.

A record is built with the format's own classes (:mod:`monitor.mqtt.messages`):
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

from ..mqtt import messages as m


def session_record_message(
    *,
    station: str,
    athlete: str | None,
    started_ts: float,
    seed: int = 0,
    sets: int = 5,
    holds: int = 1,
    sensor: str = "wrist",
    fitness: float = 1.0,
) -> m.SessionRecord:
    """One ended session's record; the same arguments give the same record."""
    rng = random.Random(f"{station}|{athlete}|{started_ts}|{seed}")
    t = started_ts + rng.uniform(60, 180)
    out_sets, out_holds, alerts, marks = [], [], [], []
    for n in range(sets + holds):
        index = n + 1
        is_hold = n >= sets
        duration = rng.uniform(30, 75) if is_hold else rng.uniform(25, 55)
        # Fatigue: each set shakes a little more than the last; fitter athletes less.
        median = max(1.0, rng.gauss(1.2 + 0.25 * n / fitness, 0.15))
        peak = median * rng.uniform(1.2, 2.2)
        start, end = t, t + duration
        if is_hold:
            out_holds.append(
                m.HoldEntry(
                    index=index,
                    sensor=sensor,
                    start_ts=start,
                    end_ts=end,
                    duration_s=duration,
                    ratio_peak=peak,
                    fatigue_ratio_peak=rng.uniform(0.3, 1.6),
                )
            )
        else:
            out_sets.append(
                m.SetEntry(
                    index=index,
                    kind=m.SetKind.REPS,
                    sensor=sensor,
                    placement=m.Placement.LIMB,
                    start_ts=start,
                    end_ts=end,
                    reps=rng.randint(6, 12),
                    ratio_median=median,
                    ratio_peak=peak,
                    growth_per_min=rng.uniform(0.0, 0.6) * n / sets,
                    recovery_s=rng.uniform(25, 60) * median,
                )
            )
        if peak >= 4.0:
            raised = end - rng.uniform(2, 10)
            acked = rng.random() < 0.6
            alerts.append(
                m.AlertEntry(
                    id=f"{station}:{int(raised)}:{index:04d}",
                    code="tremor.high",
                    level=m.AlertLevel.WARNING,
                    raised_ts=raised,
                    cleared_ts=end + rng.uniform(30, 120),
                    acknowledged_ts=raised + 20 if acked else None,
                    by=rng.choice(["Ana", "Ben"]) if acked else None,
                )
            )
        marks.append(
            (start, end, m.ActivityState.HOLD if is_hold else m.ActivityState.REPS, median, peak)
        )
        t = end + rng.uniform(90, 180)
    ended = t
    trace = []
    minute = math.floor(started_ts / 60) * 60
    while minute <= ended:
        active = [x for x in marks if x[0] < minute + 60 and x[1] > minute]
        p50 = active[0][3] if active else max(0.8, rng.gauss(1.0, 0.08))
        top = active[0][4] if active else p50 * rng.uniform(1.05, 1.4)
        trace.append(
            m.TraceEntry(
                ts=float(minute),
                sensor=sensor,
                state=active[0][2] if active else m.ActivityState.REST,
                ratio_p50=p50,
                ratio_max=top,
                rms_mg_p50=8.0 * p50,
            )
        )
        minute += 60
    mass = round(rng.uniform(55000, 95000), -2)
    loss = rng.uniform(0.15, 0.7)  # % of body mass over a ~20-40 min session
    hours = (ended - started_ts) / 3600
    hydration = m.RecordHydration(
        mode=m.HydrationMode.BODY,
        intake_ml=round(rng.uniform(0, 700), -1),
        weigh_ins=(
            m.WeighInEntry(phase=m.WeighInPhase.PRE, mass_g=mass, ts=started_ts + 5),
            m.WeighInEntry(phase=m.WeighInPhase.POST, mass_g=mass * (1 - loss / 100), ts=ended - 5),
        ),
        sweat_rate_l_per_h=mass * loss / 100 / 1000 / max(hours, 0.1),
        body_mass_loss_pct=loss,
    )
    return m.SessionRecord(
        ts=ended + 1,
        station=station,
        id=f"{station}:{int(started_ts * 1000)}",
        athlete=athlete,
        guest=athlete is None,
        started_ts=started_ts,
        ended_ts=ended,
        end_reason=rng.choice(
            [m.EndReason.TAP, m.EndReason.TAP, m.EndReason.TIMEOUT, m.EndReason.BUTTON]
        ),
        sets=tuple(out_sets),
        holds=tuple(out_holds),
        alerts=tuple(alerts),
        hydration=hydration,
        trace=tuple(trace),
        profile_update=(
            m.ProfileUpdate(
                baselines_mg={m.Placement.LIMB: rng.uniform(6, 10)},
                body_mass_g=mass * (1 - loss / 100),
            )
            if athlete
            else None
        ),
    )


def session_record(**kwargs: Any) -> dict[str, Any]:
    """:func:`session_record_message` as the JSON-ready dict that goes on the wire."""
    return session_record_message(**kwargs).to_dict()
