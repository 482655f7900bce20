"""Activity, sets, holds, recovery and the session, scored against the scenarios' ground truth.

Each scenario runs through the real chain: simulated MPU-6050 on a SimBus, the
driver, the streaming analysis and the trackers, on a simulated clock (250 Hz
to keep the suite quick; the tremor bands are far below its Nyquist).
"""

import math

import numpy as np
import pytest

from monitor.analysis.activity import HOLD, IDLE, RECOVERY, REPS
from monitor.analysis.baseline import Baseline
from monitor.analysis.pipeline import SensorAnalysis
from monitor.analysis.session import SessionTracker
from monitor.clock import SimClock
from monitor.grades import grade
from monitor.i2c import Mpu6050
from monitor.sim import SCENARIOS, Mpu6050Sim, SimBus


def run(name, seed=1, rate=250, **options):
    scenario = SCENARIOS[name](seed=seed, **options)
    clock = SimClock()
    bus = SimBus(log_size=0)
    bus.attach(0x68, Mpu6050Sim(scenario, clock=clock, seed=seed))
    imu = Mpu6050(bus, 0x68, rate_hz=rate, clock=clock)
    analysis = SensorAnalysis(
        "s", rate, noise_floor_mg=1.7, placement=options.get("placement", "limb")
    )
    session = SessionTracker()
    statuses, sessions = [], []
    while clock.now() < scenario.duration:
        clock.sleep(imu.poll_interval)
        block = imu.read()
        for st in analysis.feed(block.t, block.accel, block.lost):
            statuses.append(st)
            sessions.append(session.update(st.t, {"s": st}))
    return scenario, analysis, statuses, sessions


@pytest.fixture(scope="module")
def strength():
    return run("strength_session")


@pytest.fixture(scope="module")
def holds():
    return run("static_holds", seed=2)


@pytest.fixture(scope="module")
def persistent():
    return run("persistent_tremor", seed=3)


@pytest.fixture(scope="module")
def recovery():
    return run("recovery", seed=3)


def test_baseline_is_the_rested_tremor(strength):
    scenario, analysis, *_ = strength
    assert analysis.activity.baseline.value_mg == pytest.approx(
        scenario.truth.baseline_mg, rel=0.15
    )


def test_sets_of_reps_are_found_with_their_boundaries_and_reps(strength):
    scenario, analysis, *_ = strength
    found = list(analysis.activity.sets)
    truth = scenario.truth.sets
    assert [s.kind for s in found] == [REPS] * len(truth)
    for f, t in zip(found, truth, strict=True):
        assert f.start == pytest.approx(t.start, abs=1.5)
        assert f.end == pytest.approx(t.end, abs=1.5)
        assert f.reps == t.rep_count


def test_fatigue_grows_across_sets(strength):
    _, analysis, statuses, _ = strength
    medians = [s.ratio_median for s in analysis.activity.sets]
    assert medians[-1] > medians[0] * 1.2
    assert statuses[-1].fatigue_trend > 0


def test_recovery_time_is_measured_after_the_last_set(strength):
    scenario, analysis, statuses, sessions = strength
    last = analysis.activity.sets[-1]
    assert last.recovery_s is not None and 30 < last.recovery_s < 600
    assert statuses[-1].state == IDLE
    assert sessions[-1].set_count == len(scenario.truth.sets)


def test_static_holds_are_found_and_not_confused_with_rest(holds):
    scenario, analysis, statuses, _ = holds
    found = list(analysis.activity.sets)
    truth = scenario.truth.sets
    assert [s.kind for s in found] == [HOLD] * len(truth)
    for f, t in zip(found, truth, strict=True):
        assert f.start == pytest.approx(t.start, abs=7)
        assert f.end == pytest.approx(t.end, abs=7)
    # Nothing during the rests between holds is called a hold, once the hold's end
    # has been seen (tremor falling back, or no longer climbing for 20 s).
    for st in statuses:
        seg = scenario.truth.segment_at(st.t - 2.5)
        if seg.kind == "rest" and st.t - 2.5 - seg.start > 30 and seg.end - st.t > 10:
            assert st.state in (IDLE, RECOVERY), (st.t, st.state)


def test_holds_raise_the_fatigue_band(holds):
    _, _, statuses, _ = holds
    in_hold = [
        s.window.metrics.fatigue_ratio
        for s in statuses
        if s.state == HOLD and s.window.metrics.fatigue_ratio
    ]
    rested = [
        s.window.metrics.fatigue_ratio for s in statuses[:150] if s.window.metrics.fatigue_ratio
    ]
    assert np.median(in_hold) > 2 * np.median(rested)


def test_tremor_that_fades_is_no_red_flag(recovery):
    _, _, _, sessions = recovery
    end = sessions[-1]
    assert end.ended is not None and end.since_end_s > 15 * 60
    assert end.elevated_s is None


def test_tremor_that_persists_after_the_session_is_measured(persistent):
    scenario, _, _, sessions = persistent
    end = sessions[-1]
    assert end.ended == pytest.approx(scenario.truth.sets[-1].end, abs=20)
    assert end.since_end_s > 15 * 60
    assert end.elevated_s is not None and end.elevated_s >= end.since_end_s
    assert end.elevated_sensors == ("s",)


def test_level_follows_log_steps():
    assert [grade(r, r is not None) for r in (None, 1.0, 1.99, 2.0, 3.9, 4.0, 12)] == [
        "none",
        "normal",
        "normal",
        "elevated",
        "elevated",
        "high",
        "high",
    ]


def test_baseline_is_robust_to_outliers():
    b = Baseline(floor_mg=3.0, learn_windows=20)
    for v in [10.0] * 17 + [300.0, 250.0, 0.1]:
        b.offer(v)
    assert b.value_mg == pytest.approx(10.0)
    assert b.ratio(40.0) == pytest.approx(4.0)
    assert math.isclose(b.log2_ratio(20.0), 1.0)
    assert b.ratio(None) is None


def test_baseline_never_below_the_floor():
    b = Baseline(floor_mg=5.0, learn_windows=5)
    for _ in range(5):
        b.offer(None)
    assert b.value_mg == 5.0


def test_session_starts_with_the_first_set_and_ends_after_a_long_rest(strength):
    scenario, _, _, sessions = strength
    started = next(s for s in sessions if s.active)
    assert started.started == pytest.approx(scenario.truth.sets[0].start, abs=1.5)
    assert sessions[-1].active  # 15 min have not passed since the last set


def test_explicit_session_start_and_stop():
    tracker = SessionTracker()
    assert tracker.start(10.0) and not tracker.start(11.0)
    assert tracker.active
    assert tracker.stop(20.0) and not tracker.stop(21.0)
    assert tracker.ended == 20.0


# -- what people really do: stand, walk, jog; and real movement is not graded -------------


@pytest.fixture(scope="module")
def everyday_run():
    return run("everyday", seed=2, placement="body")


def test_standing_quietly_is_still_and_makes_a_baseline_within_a_minute(everyday_run):
    scenario, analysis, statuses, _ = everyday_run
    baseline = analysis.activity.baseline
    assert baseline.value_mg is not None and baseline.learned_at <= 60.0
    stand = scenario.truth.segments[0]
    during = [s for s in statuses if stand.start + 3 <= s.t <= stand.end]
    assert np.mean([s.activity == "still" for s in during]) > 0.9


def test_walking_and_jogging_are_movement_not_sets_or_holds(everyday_run):
    scenario, analysis, statuses, sessions = everyday_run
    assert list(analysis.activity.sets) == []
    assert all(s.state in (IDLE, RECOVERY) for s in statuses)
    for kind, names in (("walk", {"walking"}), ("jog", {"running", "jumping"})):
        seg = scenario.truth.segments_of(kind)[0]
        inside = [s for s in statuses if seg.start + 3 <= s.t <= seg.end]
        assert np.mean([s.activity in names for s in inside]) > 0.8, kind
        # moving windows are never graded against the rested baseline
        assert all(s.ratio is None and s.graded is None for s in inside if s.moving)
    assert not any(s.active for s in sessions)


def test_reps_are_graded_against_the_sets_own_first_reps():
    scenario, analysis, statuses, _ = run("set_to_failure")
    [one] = analysis.activity.sets
    [truth] = scenario.truth.sets
    assert one.start == pytest.approx(truth.start, abs=1.0) and one.reps == truth.rep_count
    graded = [s for s in statuses if s.graded == "set"]
    assert graded and all(truth.start <= s.t <= truth.end + 3 for s in graded)
    assert graded[0].t <= truth.start + 2.5 + analysis.activity.cfg.reference_s + 6.0
    # the reps' own jerk put far more in the band than a rested hand: the reference holds it
    assert one.reference_mg > 1.3 * analysis.activity.baseline.value_mg
    # and tremor that grows fivefold through the set shows against it
    assert max(s.ratio for s in graded) >= 2.0
    assert one.growth_per_min > 0


def test_a_fixed_baseline_is_never_learnt_over():
    b = Baseline(floor_mg=5.0)
    b.fix(8.0)
    for _ in range(40):
        b.offer(20.0)
    assert b.value_mg == 8.0 and b.fixed
    with pytest.raises(ValueError):
        b.fix(-1.0)


def test_a_set_that_was_not_one_takes_back_the_session_it_started():
    tracker = SessionTracker()

    class Status:
        def __init__(self, events, set_start=None):
            self.sensor, self.events, self.set_start = "s", events, set_start
            self.last_set, self.state, self.set_count, self.ratio, self.rms_mg = (
                None,
                IDLE,
                0,
                None,
                None,
            )
            self.reps, self.baseline_mg, self.recovery_s, self.fatigue_trend, self.graded = (
                0,
                None,
                None,
                None,
                None,
            )

    tracker.update(10.0, {"s": Status((("set_started", (REPS, 8.0)),), set_start=8.0)})
    assert tracker.active and tracker.started == 8.0
    tracker.update(14.0, {"s": Status((("set_cancelled", (REPS, 8.0)),))})
    assert not tracker.active and tracker.started is None
