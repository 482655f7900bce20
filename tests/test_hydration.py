"""Hydration analysis: synthetic readings first, then the whole chain against ground truth.

The chain tests run a scenario's mass source through the simulated NAU7802 on a
SimBus, read it with the real driver (tared, then calibrated with a known mass,
as an installer does) and feed the grams to the trackers on a SimClock.
"""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.analysis.hydration import (
    BODY,
    BOTTLE,
    INTAKE_OK,
    KNOCK,
    LIFT,
    LOSS_CAUTION,
    LOSS_WARNING,
    LOW_INTAKE,
    MASS_GAIN,
    PLACED,
    REFILL,
    SIP,
    WEIGH_IN,
    WEIGH_IN_FAILED,
    BodyScaleTracker,
    BottleTracker,
    HydrationConfig,
    HydrationStatus,
    StableDetector,
    make_tracker,
)
from monitor.sim.scenarios.library import bottle_session, hydration_session
from monitor.sim.scenarios.mass import BodyScale, BottleDock
from tests.support.scale import BODY_CELL, run_chain

ROOT = Path(__file__).resolve().parents[1]
SPS = 10.0
DT = 1.0 / SPS


# -- synthetic readings -------------------------------------------------------------
class Trace:
    """Readings at 10 SPS built piece by piece: hold a mass, ramp, wobble, add noise."""

    def __init__(self, seed: int = 0, noise_g: float = 0.0):
        self.t: list[float] = []
        self.g: list[float] = []
        self.rng = np.random.default_rng(seed)
        self.noise = noise_g

    @property
    def now(self) -> float:
        return self.t[-1] + DT if self.t else 0.0

    def _add(self, values) -> Trace:
        start = self.now
        for i, v in enumerate(values):
            self.t.append(start + i * DT)
            self.g.append(float(v) + (self.rng.normal(0.0, self.noise) if self.noise else 0.0))
        return self

    def hold(self, g: float, seconds: float) -> Trace:
        return self._add([g] * round(seconds * SPS))

    def ramp(self, to_g: float, seconds: float) -> Trace:
        start = self.g[-1] if self.g else 0.0
        n = round(seconds * SPS)
        return self._add(start + (to_g - start) * (np.arange(1, n + 1) / n))

    def ring(self, g: float, peak_g: float, seconds: float = 0.6, hz: float = 3.0) -> Trace:
        age = np.arange(round(seconds * SPS)) * DT
        return self._add(g + peak_g * np.exp(-age / 0.15) * np.sin(2 * np.pi * hz * age + 0.5))

    def lift(self, before: float, after: float, seconds: float = 5.0) -> Trace:
        """Off the dock for ``seconds``, put back at ``after`` with a bump."""
        self.ramp(0.0, 0.3).hold(0.0, seconds - 0.3)
        self._add([after * 0.6, after * 1.15])
        return self.ring(after, 0.1 * after)

    def pairs(self) -> list[tuple[float, float]]:
        return list(zip(self.t, self.g, strict=True))


def kinds(events) -> list[str]:
    return [e.kind for e in events]


def test_stable_detector_gives_the_median_once_the_window_is_covered():
    stable = StableDetector(window_s=1.5, tolerance_g=3.0)
    values = [stable.feed(i * DT, 500.0 + (i % 3) * 0.5) for i in range(30)]
    assert values[:15] == [None] * 15  # less than 1.5 s of readings
    assert values[15] == pytest.approx(500.5)
    assert all(v == pytest.approx(500.5) for v in values[15:])


def test_stable_detector_needs_every_reading_within_tolerance():
    stable = StableDetector(window_s=1.5, tolerance_g=3.0)
    for i in range(20):
        stable.feed(i * DT, 500.0)
    assert stable.feed(2.0, 504.0) is None  # one reading out is enough
    for i in range(1, 15):
        assert stable.feed(2.0 + i * DT, 500.0) is None  # ... until it leaves the window
    assert stable.feed(3.6, 500.0) == 500.0


def test_stable_detector_starts_afresh_after_a_gap_or_a_clock_jump():
    stable = StableDetector(window_s=1.5, tolerance_g=3.0, max_gap_s=1.0)
    for i in range(20):
        stable.feed(i * DT, 500.0)
    assert stable.feed(10.0, 500.0) is None  # 8 s without readings
    stable.reset()
    for i in range(20):
        stable.feed(i * DT, 500.0)
    assert stable.feed(0.5, 500.0) is None  # time went backwards


def test_steady_noisy_bottle_gives_no_events():
    trace = Trace(seed=1, noise_g=0.7).hold(612.0, 600.0)
    bottle = BottleTracker(session_start=0.0)
    bottle.feed_many(trace.pairs())
    assert kinds(bottle.events) == [PLACED]
    assert bottle.intake_ml == 0.0
    assert bottle.mass_g == pytest.approx(612.0, abs=0.5)
    assert bottle.on_dock


def test_slow_drift_is_absorbed_not_counted():
    # The load cell creeps 12 g down over an hour, then the bottle is lifted and
    # put back untouched: never a sip.
    t = np.arange(0, 3600, DT)
    g = 612.0 - 12.0 * t / 3600 + np.random.default_rng(2).normal(0, 0.5, t.size)
    bottle = BottleTracker(session_start=0.0)
    bottle.feed_many(zip(t, g, strict=True))
    trace = Trace(noise_g=0.5).lift(600.0, 600.0).hold(600.0, 5.0)
    bottle.feed_many((3600.0 + x, y) for x, y in trace.pairs())
    assert kinds(bottle.events) == [PLACED, LOW_INTAKE, LIFT]
    assert bottle.intake_ml == 0.0


def test_a_lift_with_a_sip_counts_the_drop():
    trace = Trace(noise_g=0.3).hold(600.0, 5.0)
    lift_at = trace.now
    trace.lift(600.0, 558.0, seconds=6.0).hold(558.0, 5.0)
    bottle = BottleTracker(session_start=0.0)
    bottle.feed_many(trace.pairs())
    sip = bottle.events[-1]
    assert kinds(bottle.events) == [PLACED, SIP]
    assert sip.value == pytest.approx(42.0, abs=0.5)
    assert sip.t == pytest.approx(lift_at, abs=0.2)
    assert sip.duration == pytest.approx(6.0, abs=0.4)  # time off the dock
    assert bottle.intake_ml == pytest.approx(42.0, abs=0.5)
    assert bottle.mass_g == pytest.approx(558.0, abs=0.5)


def test_a_lift_without_drinking_is_a_lift():
    trace = Trace(noise_g=0.3).hold(600.0, 5.0).lift(600.0, 600.0).hold(600.0, 5.0)
    bottle = BottleTracker(session_start=0.0)
    bottle.feed_many(trace.pairs())
    assert kinds(bottle.events) == [PLACED, LIFT]
    assert bottle.intake_ml == 0.0


def test_on_dock_follows_the_bottle():
    bottle = BottleTracker()
    trace = Trace().hold(600.0, 3.0)
    bottle.feed_many(trace.pairs())
    assert bottle.on_dock and bottle.mass_g == 600.0
    trace.ramp(0.0, 0.3).hold(0.0, 2.0)
    bottle.feed_many(trace.pairs()[-23:])
    assert not bottle.on_dock and bottle.mass_g is None


def test_a_knock_is_nothing_but_a_knock():
    trace = Trace(noise_g=0.3).hold(600.0, 5.0)
    knock_at = trace.now
    trace.ring(600.0, 120.0).hold(600.0, 5.0)
    bottle = BottleTracker(session_start=0.0)
    bottle.feed_many(trace.pairs())
    assert kinds(bottle.events) == [PLACED, KNOCK]
    assert bottle.events[-1].t == pytest.approx(knock_at, abs=0.2)
    assert bottle.events[-1].value > 50.0
    assert bottle.intake_ml == 0.0


def test_a_knock_that_dips_to_zero_for_an_instant_is_not_a_lift():
    trace = Trace().hold(200.0, 5.0)._add([0.0, 350.0, 120.0]).hold(200.0, 5.0)
    bottle = BottleTracker()
    bottle.feed_many(trace.pairs())
    assert kinds(bottle.events) == [PLACED, KNOCK]


def test_a_sip_through_a_straw_on_the_dock_counts_too():
    # A hand steadies the bottle for 4 s while the athlete drinks: never still, never lifted.
    hand = 600.0 - 7.5 * np.arange(40) * DT + 25.0 * np.sin(2 * np.pi * 1.3 * np.arange(40) * DT)
    trace = Trace(noise_g=0.3).hold(600.0, 5.0)._add(hand).hold(570.0, 5.0)
    bottle = BottleTracker()
    bottle.feed_many(trace.pairs())
    assert kinds(bottle.events) == [PLACED, SIP]
    assert bottle.events[-1].duration == 0.0
    assert bottle.intake_ml == pytest.approx(30.0, abs=0.5)


def test_a_refill_is_not_intake_and_later_sips_count_from_the_new_level():
    trace = (
        Trace(noise_g=0.3)
        .hold(250.0, 5.0)
        .lift(250.0, 750.0, seconds=40.0)
        .hold(750.0, 5.0)
        .lift(750.0, 705.0)
        .hold(705.0, 5.0)
    )
    bottle = BottleTracker()
    bottle.feed_many(trace.pairs())
    assert kinds(bottle.events) == [PLACED, REFILL, SIP]
    assert bottle.events[1].value == pytest.approx(500.0, abs=0.5)
    assert bottle.intake_ml == pytest.approx(45.0, abs=0.5)


def test_small_changes_are_neither_sips_nor_refills():
    cfg = HydrationConfig()
    trace = (
        Trace()
        .hold(600.0, 5.0)
        .lift(600.0, 600.0 - cfg.min_sip_ml + 1)
        .hold(596.0, 5.0)
        .lift(596.0, 596.0 + cfg.min_refill_ml - 1)
        .hold(615.0, 5.0)
    )
    bottle = BottleTracker(cfg)
    bottle.feed_many(trace.pairs())
    assert kinds(bottle.events) == [PLACED, LIFT, LIFT]
    assert bottle.intake_ml == 0.0


def test_a_bottle_put_on_an_empty_dock_is_placed_not_drunk():
    trace = Trace(noise_g=0.3).hold(0.0, 10.0).ramp(480.0, 0.3).hold(480.0, 5.0)
    bottle = BottleTracker()
    bottle.feed_many(trace.pairs())
    assert kinds(bottle.events) == [PLACED]
    assert bottle.events[0].value == pytest.approx(480.0, abs=0.5)
    assert bottle.intake_ml == 0.0


def test_readings_lost_while_the_bottle_is_away_do_not_matter():
    bottle = BottleTracker()
    bottle.feed_many(Trace().hold(600.0, 5.0).ramp(0.0, 0.3).pairs())
    # The scale faults for 20 s (no readings) and the bottle comes back lighter.
    bottle.feed_many((25.0 + i * DT, 0.0) for i in range(10))
    bottle.feed_many((26.0 + i * DT, 570.0) for i in range(30))
    assert kinds(bottle.events) == [PLACED, SIP]
    assert bottle.intake_ml == pytest.approx(30.0)


def test_after_a_calibration_the_next_mass_is_a_placement_not_a_sip():
    bottle = BottleTracker()
    trace = Trace().hold(600.0, 5.0).ramp(0.0, 0.3).hold(0.0, 5.0)
    bottle.feed_many(trace.pairs())
    bottle.calibration_changed()  # recalibrated: grams now read 3 % low
    bottle.feed_many((trace.now + i * DT, 582.0) for i in range(30))
    assert kinds(bottle.events) == [PLACED, PLACED]
    assert bottle.intake_ml == 0.0


def test_uncalibrated_and_absurd_readings_are_skipped():
    bottle = BottleTracker()
    assert bottle.feed(0.0, None) == []
    assert bottle.feed(0.1, math.nan) == []
    assert bottle.feed(0.2, 1e12) == []
    assert bottle.session_start is None and not bottle.on_dock


def test_intake_rate_over_the_session_and_the_low_intake_flag():
    cfg = HydrationConfig()
    trace = Trace().hold(600.0, 60.0).lift(600.0, 580.0).hold(580.0, 3600.0)
    bottle = BottleTracker(cfg, session_start=0.0)
    rates = {}
    for t, g in trace.pairs():
        bottle.feed(t, g)
        if round(t * 10) % 1500 == 0:
            rates[round(t)] = bottle.intake_ml_per_h()
    assert rates[0] is None and rates[150] is None  # too early to say
    assert rates[300] == pytest.approx(20.0 / (300 / 3600), rel=1e-3)
    assert rates[600] == pytest.approx(20.0 / (600 / 3600), rel=1e-3)
    low = [e for e in bottle.events if e.kind == LOW_INTAKE]
    assert len(low) == 1 and low[0].t == pytest.approx(cfg.low_intake_after_s, abs=0.2)
    assert bottle.low_intake
    # A big drink brings the rate back up.
    big = Trace().hold(580.0, 3.0).lift(580.0, 80.0).hold(80.0, 5.0)
    bottle.feed_many((t + trace.now, g) for t, g in big.pairs())
    assert kinds(bottle.events)[-2:] == [SIP, INTAKE_OK]
    assert not bottle.low_intake


def test_session_start_and_end_set_the_rate():
    bottle = BottleTracker(session_start=100.0)
    trace = Trace().hold(600.0, 3.0).lift(600.0, 540.0).hold(540.0, 600.0)
    bottle.feed_many((100.0 + t, g) for t, g in trace.pairs())
    assert bottle.intake_ml_per_h() == pytest.approx(60.0 / (trace.t[-1] / 3600), rel=1e-3)
    bottle.end_session(100.0 + 1800.0)
    later = 100.0 + trace.now
    bottle.feed_many((later + i * DT, 540.0) for i in range(100))
    assert bottle.status().intake_ml_per_h == pytest.approx(120.0, abs=0.1)  # 60 mL in half an hour
    bottle.start_session(later + 10.0)
    assert bottle.intake_ml == 0.0 and bottle.events == ()  # all were reported
    assert bottle.mass_g == pytest.approx(540.0)  # the bottle is still known


def test_status_carries_the_payload_figures_and_hands_out_each_event_once():
    trace = Trace().hold(600.0, 5.0).lift(600.0, 560.0).hold(560.0, 400.0)
    bottle = make_tracker(BOTTLE, session_start=0.0)
    bottle.feed_many(trace.pairs())
    first = bottle.status()
    assert kinds(first.events) == [PLACED, SIP]
    assert first.figures() == {
        "mode": "bottle",
        "mass_g": 560.0,
        "intake_ml": 40.0,
        "intake_ml_per_h": pytest.approx(40.0 / (trace.t[-1] / 3600), abs=0.1),
        "pre_mass_g": None,
        "post_mass_g": None,
        "body_mass_loss_pct": None,
        "sweat_rate_l_per_h": None,
    }
    assert bottle.status().events == ()


def test_status_fields_are_exactly_the_hydration_payload():
    text = (ROOT / "monitor/mqtt/PAYLOADS.md").read_text()
    block = text.split("## hydration", 1)[1].split("##", 1)[0]
    keys = set(re.findall(r'"(\w+)":', block)) - {"v", "ts", "station"}
    fields = set(HydrationStatus.__dataclass_fields__) - {"events"}
    assert fields == keys


# -- body scale, synthetic ---------------------------------------------------------------
def stand(trace: Trace, kg: float, seconds: float = 8.0, seed: int = 0) -> Trace:
    """Step on (a ramp with an overshoot), sway about +-50 g, step off."""
    g = kg * 1000.0
    rng = np.random.default_rng(seed)
    trace.ramp(0.5 * g, 0.4).ramp(1.05 * g, 0.7).ramp(g, 0.5)
    n = round((seconds - 1.6) * SPS)
    age = np.arange(n) * DT
    sway = sum(
        a * np.sin(2 * np.pi * f * age + p)
        for a, f, p in zip(
            (25.0, 15.0, 10.0), rng.uniform(0.5, 2.0, 3), rng.uniform(0, 6.3, 3), strict=True
        )
    )
    trace._add(g + sway)
    return trace.ramp(0.0, 0.8)


def test_first_weigh_in_is_pre_and_the_last_after_exercise_is_post():
    trace = Trace(noise_g=2.0).hold(0.0, 5.0)
    stand(trace, 70.0).hold(0.0, 60.0)  # pre
    stand(trace, 70.05, seed=1).hold(0.0, 1200.0)  # checks again a minute later: pre again
    stand(trace, 69.6, seed=2).hold(0.0, 1500.0)  # mid-session check
    stand(trace, 69.2, seed=3).hold(0.0, 10.0)  # the final one
    body = BodyScaleTracker(session_start=0.0)
    body.feed_many(trace.pairs())
    phases = [e.phase for e in body.events if e.kind == WEIGH_IN]
    assert phases == ["pre", "pre", "post", "post"]
    assert body.pre.mass_g == pytest.approx(70_050.0, abs=20.0)
    assert body.post.mass_g == pytest.approx(69_200.0, abs=20.0)
    status = body.status(intake_ml=400.0)
    pre, post = body.pre.mass_g, body.post.mass_g
    assert status.body_mass_loss_pct == pytest.approx((pre - post) / pre * 100, abs=0.005)
    assert status.body_mass_loss_pct == pytest.approx(850 / 70_050 * 100, abs=0.05)
    hours = (body.post.t - body.pre.t) / 3600
    assert status.sweat_rate_l_per_h == pytest.approx((0.85 + 0.4) / hours, rel=0.02)
    assert status.intake_ml_per_h == pytest.approx(400.0 / hours, rel=1e-3)
    assert LOSS_CAUTION in kinds(status.events)


def test_weigh_in_is_complete_after_weigh_in_s_while_still_standing():
    cfg = HydrationConfig(weigh_in_s=3.0)
    trace = Trace().hold(0.0, 3.0)
    stand(trace, 80.0, seconds=30.0)
    body = BodyScaleTracker(cfg)
    done_at = None
    for t, g in trace.pairs():
        if body.feed(t, g) and done_at is None:
            done_at = t
    assert done_at is not None and done_at < 3.0 + 1.6 + 1.5 + 3.0 + 0.5  # long before stepping off
    assert kinds(body.events) == [WEIGH_IN]


def test_stepping_off_too_soon_fails_the_weigh_in():
    trace = (
        Trace().hold(0.0, 3.0).ramp(70_000.0, 0.5).hold(70_000.0, 0.8).ramp(0.0, 0.5).hold(0.0, 3.0)
    )
    body = BodyScaleTracker()
    body.feed_many(trace.pairs())
    assert kinds(body.events) == [WEIGH_IN_FAILED]
    assert body.pre is None


def test_marked_weigh_ins_override_the_rule_and_name_the_athlete():
    body = BodyScaleTracker()
    assert body.weigh_in("pre", athlete="A12") is None  # nobody on the scale yet: the next one
    trace = Trace().hold(0.0, 3.0)
    stand(trace, 82.0).hold(0.0, 30.0)
    body.feed_many(trace.pairs())
    assert body.pre.athlete == "A12" and body.pre.mass_g == pytest.approx(82_000, abs=30)
    # Someone stands on the scale now: marking takes their weigh-in at once.
    start = len(trace.t)
    stand(trace, 81.0, seconds=30.0)
    pairs = trace.pairs()[start : start + 60]  # 6 s in: stable, not yet complete
    body.feed_many(pairs)
    w = body.weigh_in("post", athlete="A12")
    assert w is not None and w.phase == "post" and w.mass_g == pytest.approx(81_000, abs=40)
    assert body.status().post_mass_g == pytest.approx(81_000, abs=40)
    with pytest.raises(ValueError, match="pre' or 'post"):
        body.weigh_in("during")


def test_marking_after_an_unmarked_weigh_in_relabels_it():
    body = BodyScaleTracker()
    trace = Trace().hold(0.0, 3.0)
    stand(trace, 70.0).hold(0.0, 3.0)
    stand(trace, 69.0, seconds=30.0)
    body.feed_many(trace.pairs()[:-100])  # the second stand is taken (as pre, a re-check)
    assert [e.phase for e in body.events] == ["pre", "pre"]
    w = body.weigh_in("post")
    assert w.phase == "post"
    assert body.pre.mass_g == pytest.approx(70_000, abs=30)  # the first stand is pre again
    assert body.post.mass_g == pytest.approx(69_000, abs=30)


def test_gaining_mass_is_flagged():
    trace = Trace().hold(0.0, 3.0)
    stand(trace, 70.0).hold(0.0, 600.0)
    stand(trace, 70.4).hold(0.0, 3.0)
    body = BodyScaleTracker()
    body.feed_many(trace.pairs())
    status = body.status(intake_ml=1500.0)
    assert kinds(status.events) == [WEIGH_IN, WEIGH_IN, MASS_GAIN]
    assert status.mass_gain and status.body_mass_loss_pct < 0
    assert status.events[-1].value == pytest.approx(400.0, abs=30)


def test_a_two_percent_loss_is_a_warning():
    trace = Trace().hold(0.0, 3.0)
    stand(trace, 70.0).hold(0.0, 600.0)
    stand(trace, 68.5).hold(0.0, 3.0)
    body = BodyScaleTracker()
    body.feed_many(trace.pairs())
    loss = [e for e in body.events if e.kind in (LOSS_CAUTION, LOSS_WARNING)]
    assert [e.kind for e in loss] == [LOSS_WARNING]
    assert loss[0].value == pytest.approx(1500 / 70_000 * 100, abs=0.05)
    assert HydrationConfig().loss_level(loss[0].value) == "warning"


def test_sweat_rate_formula_with_urine_hours_and_no_intake():
    trace = Trace().hold(0.0, 3.0)
    stand(trace, 70.0).hold(0.0, 600.0)
    stand(trace, 69.0).hold(0.0, 3.0)
    body = make_tracker(BODY)
    body.feed_many(trace.pairs())
    loss_kg = (body.pre.mass_g - body.post.mass_g) / 1000
    s = body.status(intake_ml=600.0, urine_ml=200.0, hours=0.5)
    assert s.sweat_rate_l_per_h == pytest.approx((loss_kg + 0.6 - 0.2) / 0.5, abs=1e-3)
    s = body.status()  # nothing known about drinking
    assert s.intake_ml is None and s.intake_ml_per_h is None
    assert s.sweat_rate_l_per_h == pytest.approx(
        loss_kg / ((body.post.t - body.pre.t) / 3600), abs=1e-3
    )


def test_a_pre_weigh_in_before_the_session_starts_still_counts():
    cfg = HydrationConfig()
    trace = Trace().hold(0.0, 3.0)
    stand(trace, 75.0).hold(0.0, 600.0)  # weighs in, warms up for 10 min
    body = BodyScaleTracker(cfg)
    body.feed_many(trace.pairs())
    body.start_session(trace.now)  # the first set starts the session
    assert body.pre.mass_g == pytest.approx(75_000, abs=30)
    assert kinds(body.status().events) == [WEIGH_IN]  # not lost to the new session
    start = len(trace.t)
    stand(trace.hold(0.0, 1800.0), 74.2)
    body.feed_many(trace.pairs()[start:])
    assert body.post.mass_g == pytest.approx(74_200, abs=30)
    # The next session, hours later: that pre is stale, the next weigh-in is a new pre.
    body.start_session(trace.now + 3 * 3600)
    assert body.pre is None and body.post is None


def test_config_checks_its_values():
    with pytest.raises(ValueError, match="min_sip_ml"):
        HydrationConfig(min_sip_ml=0.0)
    with pytest.raises(ValueError, match="warning_loss_pct"):
        HydrationConfig(caution_loss_pct=3.0)
    with pytest.raises(ValueError, match="stable_s"):
        HydrationConfig(stable_s=math.nan)
    with pytest.raises(ValueError, match="mode"):
        make_tracker("kettlebell")
    cfg = HydrationConfig()
    assert (cfg.tolerance_g("bottle"), cfg.tolerance_g("body")) == (3.0, 100.0)
    assert [cfg.loss_level(x) for x in (None, 0.5, 1.0, 1.99, 2.0)] == [
        "none",
        "none",
        "caution",
        "caution",
        "warning",
    ]


# -- properties -----------------------------------------------------------------------
readings = st.lists(
    st.tuples(
        st.floats(min_value=-0.5, max_value=3.0),  # time step, sometimes backwards
        st.one_of(
            st.floats(allow_nan=False, allow_infinity=False),
            st.floats(min_value=-50.0, max_value=2_000.0),
            st.sampled_from([0.0, 600.0, 560.0, 70_000.0]),
        ),
    ),
    max_size=300,
)


def _timeline(steps):
    t, out = 0.0, []
    for dt, g in steps:
        t += dt
        out.append((t, g))
    return out


@settings(max_examples=200, deadline=None)
@given(readings)
def test_any_readings_never_raise_and_intake_is_never_negative(steps):
    pairs = _timeline(steps)
    bottle, body = BottleTracker(), BodyScaleTracker()
    bottle.feed_many(pairs)
    body.feed_many(pairs)
    s = bottle.status()
    assert s.intake_ml >= 0 and math.isfinite(s.intake_ml)
    assert all(e.value >= 0 for e in s.events if e.kind in (SIP, REFILL))
    b = body.status(intake_ml=bottle.intake_ml)
    for v in b.figures().values():
        assert v is None or isinstance(v, str) or math.isfinite(v)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(min_value=100, max_value=1500), min_size=1, max_size=12),
    st.lists(st.floats(min_value=1.0, max_value=20.0), min_size=12, max_size=12),
)
def test_intake_is_the_sum_of_the_drops_between_lifts(levels, away):
    cfg = HydrationConfig()
    trace = Trace().hold(float(levels[0]), 3.0)
    for prev, nxt, off in zip(levels, levels[1:], away, strict=False):
        trace.lift(prev, nxt, seconds=off).hold(float(nxt), 2.0)
    bottle = BottleTracker(cfg)
    bottle.feed_many(trace.pairs())
    drops = [a - b for a, b in itertools.pairwise(levels)]
    assert bottle.intake_ml == pytest.approx(sum(d for d in drops if d >= cfg.min_sip_ml))
    assert kinds(bottle.events).count(SIP) == sum(d >= cfg.min_sip_ml for d in drops)


# -- the real chain (tests.support.scale): scenario -> Nau7802Sim -> Nau7802 -> tracker ---


@pytest.fixture(scope="module")
def bottle_hour():
    dock = bottle_session(seed=11)
    tracker = BottleTracker(session_start=0.0)
    log = run_chain(dock, 3600.0, tracker, known_g=1000.0, seed=11)
    return dock, tracker, log


@pytest.fixture(scope="module")
def session_hour():
    h = hydration_session(seed=5)
    bottle = BottleTracker(session_start=0.0)
    run_chain(h.dock, 3600.0, bottle, known_g=1000.0, seed=5)
    body = BodyScaleTracker(session_start=0.0)
    run_chain(h.scale, 3600.0, body, known_g=20_000.0, seed=6, cell=BODY_CELL)
    return h, bottle, body


def test_chain_bottle_intake_matches_truth_over_an_hour(bottle_hour):
    dock, tracker, _ = bottle_hour
    truth = dock.truth
    assert truth.total_intake_ml > 300
    assert tracker.intake_ml == pytest.approx(
        truth.total_intake_ml, abs=max(10.0, 0.05 * truth.total_intake_ml)
    )
    assert abs(kinds(tracker.events).count(SIP) - len(truth.events_of("sip"))) <= 1
    assert tracker.status().intake_ml_per_h == pytest.approx(truth.total_intake_ml, rel=0.05)
    assert not tracker.low_intake


def test_chain_bottle_intake_follows_truth_through_the_hour(bottle_hour):
    dock, _, log = bottle_hour
    # Check after each happening has settled (the tracker counts a sip once the
    # bottle is back and still; the truth counts it mid-lift).
    for e in dock.truth.events:
        if e.kind == "sip":
            continue  # its lift comes with it
        t = e.t + e.duration + 3.0
        i = np.searchsorted(log[:, 0], t)
        assert log[i, 2] == pytest.approx(dock.truth.intake_ml_at(t)[0], abs=2.0), e


def test_chain_bottle_sips_match_truth_one_by_one(bottle_hour):
    dock, tracker, _ = bottle_hour
    lifts = {round(e.t, 1): e for e in dock.truth.events_of("lift")}
    sips = dock.truth.events_of("sip")
    found = [e for e in tracker.events if e.kind == SIP]
    assert len(found) == len(sips)
    for got, want in zip(found, sips, strict=True):
        lift = min(lifts.values(), key=lambda e: abs(e.t - got.t))
        assert got.t == pytest.approx(lift.t, abs=0.5)
        assert got.value == pytest.approx(want.value, abs=1.0)


def test_chain_bottle_refills_and_knocks_are_not_intake(bottle_hour):
    dock, tracker, log = bottle_hour
    refills = dock.truth.events_of("refill")
    assert refills, "the scenario should hold a refill"
    got = [e for e in tracker.events if e.kind == REFILL]
    assert len(got) == len(refills)
    for g, want in zip(got, refills, strict=True):
        assert g.value == pytest.approx(want.value, abs=1.0)
    assert kinds(tracker.events).count(KNOCK) <= len(dock.truth.events_of("knock"))
    # Intake never jumps at a refill or a knock.
    for e in (*refills, *dock.truth.events_of("knock")):
        before = log[np.searchsorted(log[:, 0], e.t) - 1, 2]
        after = log[np.searchsorted(log[:, 0], e.t + e.duration + 3.0), 2]
        assert after == before


def test_chain_lifts_knocks_and_refills_on_a_busy_dock():
    dock = (
        BottleDock(seed=21, water_ml=300.0)
        .knock(60, peak_g=150.0)
        .lift(100, 5.0)
        .sip(150, 35.0)
        .knock(200, peak_g=80.0)
        .lift(240, 3.0)
        .refill(300, away_s=40.0)
        .knock(400, peak_g=120.0)
        .sip(450, 50.0)
        .lift(500, 8.0)
        .sip(560, 25.0, seconds=2.0)
    )
    tracker = BottleTracker(session_start=0.0)
    run_chain(dock, 620.0, tracker, known_g=1000.0, seed=21)
    got = kinds(tracker.events)
    assert got.count(SIP) == 3 and got.count(LIFT) == 3 and got.count(REFILL) == 1
    # A knock rings at 6-12 Hz and the scale samples at 10 SPS: one may slip between
    # samples unseen, but none may become anything else.
    assert 1 <= got.count(KNOCK) <= 3
    assert len(got) == 1 + 3 + 3 + 1 + got.count(KNOCK)  # placed, sips, lifts, refill, knocks
    assert tracker.intake_ml == pytest.approx(110.0, abs=1.0)


def test_chain_low_intake_is_flagged_when_nobody_drinks():
    dock = BottleDock(seed=4, water_ml=500.0).sip(400, 15.0).lift(2000, 4.0)
    tracker = BottleTracker(session_start=0.0)
    run_chain(dock, 3600.0, tracker, known_g=1000.0, seed=4)
    low = [e for e in tracker.events if e.kind == LOW_INTAKE]
    assert len(low) == 1 and low[0].t == pytest.approx(1800.0, abs=1.0)
    assert tracker.low_intake
    assert tracker.status().intake_ml_per_h == pytest.approx(15.0, abs=1.0)


def test_chain_weigh_ins_match_truth(session_hour):
    h, bottle, body = session_hour
    truth = h.truth
    pre, post = h.scale.truth.weigh_ins
    s = body.status(intake_ml=bottle.intake_ml)
    assert s.pre_mass_g == pytest.approx(truth.pre_g, abs=100.0)
    assert s.post_mass_g == pytest.approx(truth.post_g, abs=100.0)
    assert body.pre.t == pytest.approx(pre.start, abs=0.5) and body.post.t == pytest.approx(
        post.start, abs=0.5
    )
    assert s.body_mass_loss_pct == pytest.approx(truth.mass_loss_pct, abs=0.15)
    assert bottle.intake_ml == pytest.approx(truth.intake_ml, abs=10.0)
    assert s.sweat_rate_l_per_h == pytest.approx(truth.sweat_rate_l_per_h, rel=0.10)
    assert [(e.kind, e.phase) for e in s.events] == [
        (WEIGH_IN, "pre"),
        (WEIGH_IN, "post"),
        (LOSS_CAUTION, None),
    ]


def test_chain_mass_gain_is_flagged():
    scale = BodyScale(seed=9).weigh_in(20.0, 64.0).weigh_in(900.0, 64.8)
    body = BodyScaleTracker(session_start=0.0)
    run_chain(scale, 920.0, body, known_g=20_000.0, seed=9, cell=BODY_CELL)
    s = body.status(intake_ml=1200.0)
    assert s.mass_gain
    gain = [e for e in s.events if e.kind == MASS_GAIN]
    assert len(gain) == 1 and gain[0].value == pytest.approx(800.0, abs=100.0)
    assert s.body_mass_loss_pct == pytest.approx(-800 / 64_000 * 100, abs=0.15)
