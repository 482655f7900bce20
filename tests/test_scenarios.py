"""Athlete scenarios: pure functions of time whose signals agree with their ground truth.

The spectra here are computed with plain numpy (a small Welch estimate), independent
of monitor.analysis, so these tests check the simulator and not the thing it tests.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from monitor.sim.scenarios import (
    G0,
    MASS_SCENARIOS,
    MG,
    SCENARIOS,
    BodyScale,
    BottleDock,
    Placement,
    Scenario,
    fall,
    hydration_session,
    neighbour_vibration,
    recovery,
    rest,
    static_holds,
    strength_session,
    unexercised_tremor,
)
from monitor.sim.scenarios.truth import SEGMENT_KINDS

FS = 250.0  # Hz: enough for every tremor band and the 25 Hz motor hum


def times(start: float, end: float, fs: float = FS) -> np.ndarray:
    return np.arange(round(start * fs), round(end * fs)) / fs


def psd(accel: np.ndarray, fs: float = FS, seg_s: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Welch PSD summed over the three axes (orientation independent), (m/s^2)^2/Hz."""
    n = int(seg_s * fs)
    window = np.hanning(n)
    total, count = 0.0, 0
    for i in range(0, len(accel) - n + 1, n // 2):
        x = accel[i : i + n] - accel[i : i + n].mean(axis=0)
        spectrum = np.fft.rfft(x * window[:, None], axis=0)
        total = total + (np.abs(spectrum) ** 2).sum(axis=1)
        count += 1
    return np.fft.rfftfreq(n, 1 / fs), total / count * 2 / (fs * (window**2).sum())


def band_mg(f: np.ndarray, p: np.ndarray, lo: float, hi: float) -> float:
    m = (f >= lo) & (f <= hi)
    return float(np.sqrt(p[m].sum() * (f[1] - f[0])) / MG)


def peak_hz(f: np.ndarray, p: np.ndarray, lo: float, hi: float) -> float:
    m = (f >= lo) & (f <= hi)
    return float(f[m][np.argmax(p[m])])


def tremor_of(source: Scenario, start: float, end: float) -> tuple[float, float]:
    """(peak Hz, 3-18 Hz RMS mg) of the signal between two times."""
    f, p = psd(source.accel(times(start, end)))
    return peak_hz(f, p, 3, 18), band_mg(f, p, 3, 18)


def voluntary_mg(source: Scenario, start: float, end: float) -> float:
    """RMS mg in the voluntary band (0.3-3 Hz): reps and repositioning live there."""
    f, p = psd(source.accel(times(start, end)), seg_s=10.0)
    return band_mg(f, p, 0.3, 3.0)


def everything(seed: int = 5) -> Scenario:
    """A scenario with every kind of block and disturbance, for the purity checks."""
    s = Scenario(seed, placement="limb")
    s.rest(20).reps(6, sets=2, rep_hz=0.8, load=0.8, rest=10).drop().hold(15).rest(10)
    s.treadmill(30, at=5).drop(at=33.3)
    return s.fall(lying=20).rest(5)


def chunked(fn, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    parts, i = [], 0
    while i < len(t):
        n = int(rng.choice([1, 2, 3, 17, 100, 999, 4000, 20_000]))
        parts.append(fn(t[i : i + n]))
        i += n
    return np.concatenate(parts)


# -- purity ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make", [everything, lambda: neighbour_vibration(2), lambda: fall(3), lambda: recovery(4)]
)
def test_any_chunking_gives_the_same_samples(make):
    s = make()
    t = times(-1.0, s.duration + 2.0, 400.0)
    rng = np.random.default_rng(0)
    for method in (s.accel, s.gyro):
        whole = method(t)
        np.testing.assert_allclose(chunked(method, t, rng), whole, rtol=0, atol=1e-12)
        # one sample at a time, in a stretch crossing several boundaries
        some = slice(0, len(t), 997)
        singles = np.concatenate([method(t[i : i + 1]) for i in range(len(t))[some]])
        np.testing.assert_allclose(singles, whole[some], rtol=0, atol=1e-12)


def test_evaluation_does_not_depend_on_call_order():
    s = everything()
    t = times(0, s.duration, 200.0)
    forward = s.accel(t)
    late, early = s.accel(t[len(t) // 2 :]), s.accel(t[: len(t) // 2])
    np.testing.assert_allclose(np.concatenate([early, late]), forward, rtol=0, atol=1e-12)
    assert s.truth.duration == s.duration  # asking for the truth must not change anything
    np.testing.assert_array_equal(s.accel(t), forward)


@pytest.mark.parametrize(
    "source",
    [
        BottleDock(1).sip(10).knock(30).refill(40).sip(120),
        BodyScale(2).weigh_in(5, 70.0).weigh_in(30, 71.0),
    ],
)
def test_mass_sources_are_pure(source):
    t = times(0, 150, 80.0)
    np.testing.assert_allclose(
        chunked(source.mass_g, t, np.random.default_rng(1)), source.mass_g(t), rtol=0, atol=1e-9
    )


def test_shapes_of_scalars_and_empty_chunks():
    s = rest(1)
    assert s.accel(np.array([])).shape == (0, 3)
    assert s.gyro(np.array([])).shape == (0, 3)
    assert s.accel(5.0).shape == (1, 3)
    assert BottleDock(1).mass_g(np.array([])).shape == (0,)


# -- gravity and orientation -------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_gravity_follows_the_orientation(seed):
    s = rest(seed)
    mean = s.accel(times(0, 60)).mean(axis=0)
    assert np.linalg.norm(mean) == pytest.approx(G0, rel=5e-4)
    up = s.truth.orientation @ [0.0, 0.0, 1.0]
    angle = np.degrees(np.arccos(np.clip(mean @ up / np.linalg.norm(mean), -1, 1)))
    assert angle < 0.2


def test_orientations_differ_by_seed_and_can_be_given():
    ups = [rest(seed).accel(times(0, 20)).mean(axis=0) for seed in range(3)]
    assert min(np.linalg.norm(a - b) for a, b in [(ups[0], ups[1]), (ups[1], ups[2])]) > 1.0
    flat = rest(0, orientation="upright").accel(times(0, 20)).mean(axis=0)
    np.testing.assert_allclose(flat, [0, 0, G0], atol=0.01)
    turned = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # z up reads along -y
    side = rest(0, orientation=turned).accel(times(0, 20)).mean(axis=0)
    np.testing.assert_allclose(side, [0, -G0, 0], atol=0.01)


def test_bad_options_say_what_is_wrong():
    with pytest.raises(ValueError, match="placement"):
        Scenario(placement="ankle")
    with pytest.raises(ValueError, match="rotation"):
        Scenario(orientation=np.ones((3, 3)))
    with pytest.raises(ValueError, match="load"):
        Scenario().reps(10, load=1.5)
    with pytest.raises(ValueError, match="bench"):
        Scenario(placement="bench").rest(10).fall()
    with pytest.raises(ValueError, match="empty"):
        Scenario().accel([0.0])


# -- tremor -------------------------------------------------------------------------------


@pytest.mark.parametrize("placement", ["limb", "bench", "body"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rest_tremor_has_the_true_frequency_and_amplitude(placement, seed):
    s = rest(seed, placement=placement)
    hz, mg = s.truth.tremor_at([60.0])
    measured_hz, measured_mg = tremor_of(s, 0, 120)
    assert abs(measured_hz - hz[0]) <= 0.25  # one bin of a 4 s window
    assert measured_mg == pytest.approx(mg[0], rel=0.10)
    assert mg[0] == pytest.approx(s.truth.baseline_mg)


def test_bench_sees_the_body_tremor_attenuated():
    limb, bench = rest(1).truth.baseline_mg, rest(1, placement="bench").truth.baseline_mg
    assert bench == pytest.approx(0.15 * limb)
    custom = rest(1, placement=Placement.bench(tremor_gain=0.1)).truth.baseline_mg
    assert custom == pytest.approx(0.1 * limb)


def test_reps_show_power_at_the_rep_frequency_and_turn_the_limb():
    s = strength_session(2, rep_hz=0.6)
    first = s.truth.sets[0]
    t = times(first.start, first.end)
    f = np.fft.rfftfreq(len(t), 1 / FS)
    spectrum = np.abs(np.fft.rfft(s.accel(t) - s.accel(t).mean(axis=0), axis=0)).sum(axis=1)
    voluntary = (f > 0.1) & (f < 3)
    assert abs(f[voluntary][np.argmax(spectrum[voluntary])] - 0.6) <= f[1]
    peak = np.abs(s.accel(t) - s.accel(times(0, 60)).mean(axis=0)).max()
    assert 0.3 * G0 < peak < 0.9 * G0
    assert np.abs(s.gyro(t)).max() > 1.0  # rad/s while curling
    np.testing.assert_array_equal(s.gyro(times(0, 60)), 0.0)


def test_fatigue_grows_across_sets_in_truth_and_signal():
    s = strength_session(3)
    ends = [one.end for one in s.truth.sets]
    truth_mg = s.truth.tremor_at(np.array(ends))[1]
    assert np.all(np.diff(truth_mg) > 0)
    assert truth_mg[0] > 1.5 * s.truth.baseline_mg
    measured = []
    for one in s.truth.sets:
        # Measured in the seconds after each set: during it, the reps' own jerk fills the
        # band as on real wrists (see test_sim_realism.py), so the tremor is not the band.
        window = times(one.end + 0.5, one.end + 10.5)
        expected = s.truth.tremor_at(window)[1].mean()
        _, got = tremor_of(s, one.end + 0.5, one.end + 10.5)
        assert got == pytest.approx(expected, rel=0.15)
        measured.append(got)
    assert measured[-1] > 1.2 * measured[0]


@pytest.mark.parametrize("tau", [60.0, 200.0])
def test_rest_between_sets_relaxes_tremor_with_the_recovery_time_constant(tau):
    s = strength_session(3, recovery_tau=tau)
    first, second = s.truth.sets[:2]
    base = s.truth.components_at([0.0])[0][0]
    excess = s.truth.components_at([first.end, second.start])[0] / base - 1.0
    assert excess[1] == pytest.approx(excess[0] * np.exp(-(second.start - first.end) / tau))
    _, tired = tremor_of(s, first.end, first.end + 12)
    _, rested = tremor_of(s, second.start - 12, second.start)
    assert rested < tired


def test_tremor_is_continuous_across_block_boundaries():
    s = everything()
    for segment in s.truth.segments[1:]:
        if segment.kind in ("fall", "lying"):
            continue  # lying relaxed drops postural tremor at the impact, on purpose
        before = s.truth.tremor_at([segment.start - 1e-9])[1]
        after = s.truth.tremor_at([segment.start])[1]
        assert after == pytest.approx(before, rel=1e-6)


def test_a_hold_grows_the_fatigue_component_until_it_dominates():
    s = static_holds(4)
    hold = s.truth.sets[0]
    hz, _ = s.truth.tremor_at([hold.start + 1.0, hold.end - 1.0])
    assert hz[0] == s.truth.tremor_hz and hz[1] == s.truth.fatigue_hz
    physiological, fatigue = s.truth.components_at([hold.end])
    assert fatigue[0] > physiological[0]
    measured_hz, measured_mg = tremor_of(s, hold.end - 16, hold.end)
    assert abs(measured_hz - s.truth.fatigue_hz) <= 0.25
    expected = s.truth.tremor_at(times(hold.end - 16, hold.end))[1].mean()
    assert measured_mg == pytest.approx(expected, rel=0.10)


def test_recovery_returns_to_baseline():
    s = recovery(5)
    cool_down = s.truth.segments_of("recovery")[0]
    at_start = s.truth.tremor_at([cool_down.start])[1][0]
    assert at_start > 3 * s.truth.baseline_mg
    late = cool_down.start + 15 * 60
    assert s.truth.tremor_at([late])[1][0] == pytest.approx(s.truth.baseline_mg, rel=0.01)
    assert tremor_of(s, late, late + 60)[1] == pytest.approx(s.truth.baseline_mg, rel=0.10)


def test_persistent_tremor_stays_visible_long_after_the_session():
    s = recovery(5, persistent=True)
    cool_down = s.truth.segments_of("recovery")[0]
    late = cool_down.start + 16 * 60
    _, mg = s.truth.tremor_at([late])
    assert mg[0] >= 7.0 and mg[0] > 3 * s.truth.baseline_mg
    assert tremor_of(s, late, late + 60)[1] == pytest.approx(mg[0], rel=0.10)


# -- a second sensor on the same athlete ---------------------------------------------------


def test_the_default_companion_only_shows_baseline_tremor():
    s = strength_session(6)
    other = s.companion
    assert [x.start for x in other.truth.sets] == [x.start for x in s.truth.sets]
    last = s.truth.sets[-1]
    assert other.truth.tremor_at([last.end])[1][0] == pytest.approx(other.truth.baseline_mg)
    assert voluntary_mg(s, last.start, last.end) > 100
    assert voluntary_mg(other, last.start, last.end) < 5  # no reps, only postural sway
    np.testing.assert_array_equal(other.gyro(times(last.start, last.end)), 0.0)


def test_unexercised_body_part_with_rising_tremor_is_the_red_flag_case():
    s = unexercised_tremor(7)
    other = s.companion
    last = s.truth.sets[-1]
    ratio = s.truth.tremor_at([last.end])[1] / s.truth.baseline_mg
    other_ratio = other.truth.tremor_at([last.end])[1] / other.truth.baseline_mg
    assert other_ratio[0] == pytest.approx(ratio[0], rel=1e-6) and ratio[0] > 2
    _, measured = tremor_of(other, last.end - 10, last.end)
    assert measured > 2 * other.truth.baseline_mg
    assert voluntary_mg(other, last.start, last.end) < 5  # it is not the one working


# -- falls, drops, vibration -----------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_fall_is_free_fall_then_impact_then_stillness(seed):
    s = fall(seed)
    start = s.truth.events_of("fall")[0].t
    impact = s.truth.events_of("impact")[0].t
    assert 0.3 <= impact - start <= 0.5
    t = times(start - 5, impact + 30, 1000.0)
    a = s.accel(t)
    g = np.linalg.norm(a, axis=1) / G0
    falling = (t > start + 0.1) & (t < impact - 0.01)
    assert g[falling].max() < 0.3
    hit = (t >= impact) & (t < impact + 0.1)
    assert g[hit].max() > 3.0
    assert np.all(g[(t > start - 5) & (t < start)] < 1.1)  # nothing like it before
    lying = s.truth.segments_of("lying")[0]
    still = (t > lying.start + 1) & (t < impact + 30)
    assert g[still].std() < 0.005
    standing_up = a[t < start].mean(axis=0)
    lying_up = a[still].mean(axis=0)
    angle = np.degrees(
        np.arccos(standing_up @ lying_up / np.linalg.norm(standing_up) / np.linalg.norm(lying_up))
    )
    assert angle > 45
    assert np.linalg.norm(s.gyro(t[falling]), axis=1).max() > 2.0  # tumbling
    assert s.truth.segment_at(impact + 0.1).kind == "fall"


def test_a_dropped_weight_rings_briefly_and_is_not_tremor():
    s = SCENARIOS["dropped_weight"](8)
    baseline = s.accel(times(10, 40, 1000.0)).mean(axis=0)
    for event in s.truth.events_of("drop"):
        t = times(event.t - 0.5, event.t + 1.0, 1000.0)
        jolt = np.linalg.norm(s.accel(t) - baseline, axis=1) / G0
        assert jolt[(t >= event.t) & (t < event.t + 0.05)].max() > 0.2
        assert jolt[t > event.t + 0.3].max() < 0.1  # rung out within ~0.2 s
        # the athlete's tremor is what it was: a drop is not tremor
        before, after = s.truth.tremor_at([event.t - 0.01, event.t + 0.1])[1]
        assert after == pytest.approx(before, rel=1e-3)


def test_a_treadmill_next_door_is_a_harmonic_comb_not_the_athletes_tremor():
    s = neighbour_vibration(9)
    (vibration,) = s.truth.disturbances
    assert vibration.hz[:3] == pytest.approx((2.8, 5.6, 8.4)) and 25.0 in vibration.hz
    f, before = psd(s.accel(times(0, 55)))
    f, during = psd(s.accel(times(100, 200)))
    for line in (2.8, 5.6, 8.4, 11.2, 25.0):
        i = np.argmin(np.abs(f - line))
        assert during[i] > 20 * before[i]
    # the athlete's tremor itself did not change
    np.testing.assert_allclose(s.truth.tremor_at([30.0, 150.0])[1], s.truth.baseline_mg)
    # a limb-worn sensor barely feels the floor
    limb = neighbour_vibration(9, placement="limb")
    assert tremor_of(limb, 100, 200)[1] == pytest.approx(limb.truth.baseline_mg, rel=0.10)


# -- mass -----------------------------------------------------------------------------------


def test_bottle_dock_trace_matches_its_truth():
    dock = MASS_SCENARIOS["bottle_dock"](seed=3)
    truth = dock.truth
    t = times(0, 3600, 20.0)
    mass = dock.mass_g(t)
    busy = np.zeros(t.shape, dtype=bool)
    for e in truth.events:
        if e.kind in ("lift", "refill", "knock"):
            busy |= (t >= e.t - 0.01) & (t < e.t + e.duration + 0.6)
    settled = ~busy
    expected = truth.bottle_g + truth.water_ml_at(t[settled])
    np.testing.assert_allclose(mass[settled], expected, atol=1e-6)
    for e in truth.events:
        middle = dock.mass_g([e.t + e.duration / 2])[0]
        if e.kind in ("lift", "refill"):
            assert middle == 0.0
            before, after = dock.mass_g([e.t - 1.0, e.t + e.duration + 1.0])
            if e.kind == "refill":
                assert after - before == pytest.approx(e.value)
        elif e.kind == "knock":
            wobble = dock.mass_g(times(e.t, e.t + 0.6, 200.0)) - dock.mass_g([e.t])[0]
            assert np.abs(wobble).max() > 20
            before, after = dock.mass_g([e.t - 1.0, e.t + 1.0])
            assert after == before
    assert truth.events_of("refill") and len(truth.events_of("knock")) == 2
    assert all(0 < e.value < 80 for e in truth.events_of("sip"))
    assert truth.total_intake_ml == pytest.approx(500.0)
    assert truth.intake_ml_at([3600.0])[0] == pytest.approx(500.0)
    # the settled mass went down by exactly what was drunk, refills aside
    refilled = sum(e.value for e in truth.events if e.kind == "refill")
    assert mass[0] - mass[-1] + refilled == pytest.approx(500.0)


def test_a_sip_happens_while_the_bottle_is_lifted():
    dock = BottleDock(1, bottle_g=150, water_ml=600).sip(at=30, ml=40, seconds=5)
    lift, sip = dock.truth.events
    assert lift.kind == "lift" and sip.kind == "sip" and lift.t < sip.t < lift.t + lift.duration
    assert dock.mass_g([0.0, 32.0, 40.0]) == pytest.approx([750.0, 0.0, 710.0])
    assert dock.truth.intake_ml_at([31.0, 33.0]) == pytest.approx([0.0, 40.0])


def test_body_scale_weigh_ins_match_their_truth():
    h = hydration_session(seed=4)
    scale, truth = h.scale, h.truth
    for w in scale.truth.weigh_ins:
        stable = scale.mass_g(times(w.stable_start, w.stable_end, 80.0))
        assert stable.mean() == pytest.approx(w.mass_g, abs=15.0)
        sway = np.abs(stable - w.mass_g).max()
        assert 15 < sway < 80
        assert scale.mass_g([w.start - 1.0, w.end + 1.0]) == pytest.approx([0.0, 0.0])
        assert scale.truth.stable_mass_at((w.stable_start + w.stable_end) / 2) == w.mass_g
    assert [w.mass_g for w in scale.truth.weigh_ins] == [70_000.0, 69_100.0]
    assert truth.intake_ml == pytest.approx(500.0)
    assert truth.sweat_rate_l_per_h == pytest.approx(1.4 / truth.hours)
    assert truth.mass_loss_pct == pytest.approx(0.9 / 70 * 100)


# -- determinism and the registry -----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_named_scenarios_are_deterministic_and_seed_dependent(name):
    make = SCENARIOS[name]
    a, b, c = make(seed=11), make(seed=11), make(seed=12)
    t = np.linspace(0, a.duration, 5001)
    np.testing.assert_array_equal(a.accel(t), b.accel(t))
    np.testing.assert_array_equal(a.gyro(t), b.gyro(t))
    np.testing.assert_array_equal(a.companion.accel(t), b.companion.accel(t))
    assert not np.allclose(a.accel(t), c.accel(t))
    assert a.truth.tremor_hz == b.truth.tremor_hz != c.truth.tremor_hz


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_named_scenarios_have_a_consistent_truth(name):
    s = SCENARIOS[name](seed=1)
    segments = s.truth.segments
    assert segments[0].start == 0.0 and segments[-1].end == pytest.approx(s.duration)
    for one, following in itertools.pairwise(segments):
        assert one.end == following.start and one.kind in SEGMENT_KINDS
    for one in s.truth.sets:
        assert s.truth.segment_at(one.start + 0.01).kind == one.kind
        assert s.truth.segment_at(one.end - 0.01).kind == one.kind
    a = s.accel(times(0, s.duration, 20.0))
    assert np.isfinite(a).all() and np.abs(a).max() < 16 * G0


@pytest.mark.parametrize("name", sorted(MASS_SCENARIOS))
def test_mass_scenarios_are_deterministic_and_seed_dependent(name):
    make = MASS_SCENARIOS[name]
    t = times(0, 3600, 5.0)
    np.testing.assert_array_equal(make(seed=1).mass_g(t), make(seed=1).mass_g(t))
    assert not np.allclose(make(seed=1).mass_g(t), make(seed=2).mass_g(t))
