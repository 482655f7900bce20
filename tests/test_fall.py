"""The fall detector on falls shaped like real ones, on gym work and everyday movement, and
on the real MobiFall recordings when ../shared is there.

Simulated movements come from monitor.sim.scenarios.falls, whose falls are checked
against MobiFall's (a fresh clone checks them against the figures measured there);
the real recordings themselves never enter the repository (their licence).
"""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from monitor.analysis.fall import SITES, FallConfig, FallDetector
from monitor.analysis.fall_eval import evaluate, run, trials
from monitor.clock import SimClock
from monitor.config import Config, ImuConfig, StationConfig, parse
from monitor.errors import ConfigError
from monitor.sim import SCENARIOS, Mpu6050Sim, SimBus
from monitor.sim.scenarios.falls import FALL_KINDS, Movements
from monitor.station import Station
from monitor.units import G

MOBIFALL = Path(__file__).resolve().parents[2] / "shared" / "data" / "realdata" / "mobifall"
needs_mobifall = pytest.mark.skipif(
    not MOBIFALL.is_dir(), reason="needs ../shared/data/realdata/mobifall"
)


def sampled(source, fs=100.0, start=0.0, end=None):
    t = np.arange(start, source.duration if end is None else end, 1.0 / fs)
    return t, source.accel(t)


def falls_in(source, site, fs=100.0, block_s=0.1, **kw):
    t, a = sampled(source, fs, **kw)
    return run(t, a, FallDetector(site=site), block_s=block_s)


def fall_trial(seed, kind, site, lying=6.0, impact_g=None):
    return (
        Movements([seed, FALL_KINDS.index(kind)], site=site)
        .stand(5)
        .fall(kind, impact_g=impact_g)
        .lie(lying)
    )


# -- falls shaped like real ones ------------------------------------------------------------


@pytest.mark.parametrize("site", SITES)
def test_real_shaped_falls_are_caught_at_every_site(site):
    caught = {
        kind: [bool(falls_in(fall_trial(seed, kind, site), site)) for seed in range(16)]
        for kind in FALL_KINDS
    }
    rates = {kind: np.mean(hits) for kind, hits in caught.items()}
    overall = np.mean([rates[k] for k in FALL_KINDS])
    # The simulated thigh falls are drawn over MobiFall's whole range, its soft end too.
    assert overall >= (0.85 if site == "thigh" else 0.9), rates
    assert min(rates.values()) >= 0.75, rates


def test_a_fall_is_reported_once_with_its_evidence():
    m = fall_trial(2, "forward", "chest", impact_g=3.0)
    impact = m.truth.falls[0]
    [event] = falls_in(m, "chest")
    assert abs(event.t - impact.t) < 0.3
    assert 1.8 <= event.impact_g <= impact.value + 0.3
    assert event.turn_deg >= 60 and event.dip_g < 1.0 and event.activity_g < 0.3
    assert event.site == "chest" and event.still_s == pytest.approx(1.5)
    assert event.decided_t - event.t == pytest.approx(2.5, abs=0.05)


def test_the_textbook_fall_is_still_caught():
    s = SCENARIOS["fall"](seed=4)
    impact = s.truth.events_of("impact")[0].t
    [event] = falls_in(s, "chest", fs=500.0, start=impact - 20, end=impact + 10)
    assert abs(event.t - impact) < 0.1 and event.impact_g >= 2.0


def test_a_fall_needs_its_recording_to_go_on_long_enough_to_be_decided():
    m = fall_trial(5, "sideways", "waist", impact_g=3.0)
    impact = m.truth.falls[0].t
    assert falls_in(m, "waist", end=impact + 2.4) == []  # ends before the decision
    assert len(falls_in(m, "waist", end=impact + 2.7)) == 1  # 2.5 s and a bin is enough


# -- what must not pass for a fall ---------------------------------------------------------------

EVERYDAY = {
    "jumps": lambda m: m.stand(3).jumps(6).stand(5),
    "a jump, then standing": lambda m: m.stand(3).jumps(1).stand(5),
    "sitting down hard": lambda m: m.stand(3).sit_down_hard().stand(5).stand_up().stand(3),
    "lying down on a bench": lambda m: (
        m.stand(3).sit_down_hard().stand(2).lie_down().stand(6).stand_up().stand(3)
    ),
}


@pytest.mark.parametrize("site", SITES)
@pytest.mark.parametrize("movement", sorted(EVERYDAY))
def test_gym_and_everyday_movement_is_not_a_fall(site, movement):
    for seed in range(8):
        m = EVERYDAY[movement](Movements([seed, 7], site=site))
        assert falls_in(m, site) == [], (movement, seed)


@pytest.mark.parametrize("name", ["strength_session", "dropped_weight", "neighbour_vibration"])
def test_library_gym_sessions_are_not_falls_on_a_body_worn_sensor(name):
    s = SCENARIOS[name](seed=3, placement="body")
    for site in SITES:
        # 1 s blocks keep an hour of sessions quick; the cut does not matter (tested below)
        assert falls_in(s, site, fs=50.0, block_s=1.0) == [], site


def test_jumps_that_land_harder_than_any_fall_are_still_not_falls():
    for site in SITES:
        m = Movements(11, site=site).stand(3).jumps(4, landing_g=4.5).stand(5)
        assert falls_in(m, site) == []


# -- the stream: blocks, rates, irregular timing -----------------------------------------------


def test_any_cut_of_the_stream_into_blocks_gives_the_same_falls():
    t, a = sampled(fall_trial(3, "knees", "thigh", impact_g=2.8), 250.0)
    whole = FallDetector(site="thigh").feed(t, a)
    assert len(whole) == 1
    for block in (1, 7, 25, 1000):
        detector = FallDetector(site="thigh")
        events = [
            e
            for i in range(0, len(t), block)
            for e in detector.feed(t[i : i + block], a[i : i + block])
        ]
        # the same events; sums of a bin added in another order may differ in the last bit
        assert len(events) == 1 and events[0].t == whole[0].t, block
        got, want = dataclasses.astuple(events[0]), dataclasses.astuple(whole[0])
        assert got[1:-1] == pytest.approx(want[1:-1])


@pytest.mark.parametrize("fs", [50.0, 100.0, 250.0, 1000.0])
def test_the_sampling_rate_does_not_change_the_verdict(fs):
    m = fall_trial(6, "forward", "chest", impact_g=3.0)
    reference = falls_in(m, "chest", fs=1000.0)
    events = falls_in(m, "chest", fs=fs)
    assert len(events) == len(reference) == 1
    assert events[0].impact_g == pytest.approx(reference[0].impact_g, rel=0.2)
    assert abs(events[0].t - reference[0].t) < 0.05


def test_irregular_phone_timing_with_gaps_is_read_as_it_comes():
    m = fall_trial(6, "backward", "thigh", impact_g=2.8)
    rng = np.random.default_rng(1)
    # ~90 Hz with jitter, the first samples 200 ms apart, as MobiFall's phones record
    steps = rng.uniform(0.008, 0.014, int(m.duration / 0.011))
    t = np.r_[0.0, 0.2, 0.4, 0.6, 0.6 + np.cumsum(steps)]
    t = t[t < m.duration]
    assert len(run(t, m.accel(t), FallDetector(site="thigh"))) == 1


def test_a_clock_that_goes_back_starts_a_new_stream():
    detector = FallDetector()
    t = np.arange(0.0, 5.0, 0.01)
    a = np.tile([0.0, 0.0, G], (len(t), 1))
    detector.feed(t, a)
    detector.feed(t, a)  # the same times again: no crash, no fall
    assert detector.events == []


def test_nothing_and_quiet_cost_nothing():
    detector = FallDetector()
    assert detector.feed(np.empty(0), np.empty((0, 3))) == []
    t = np.arange(0.0, 600.0, 0.001)
    a = np.tile([0.0, 0.0, G], (len(t), 1))
    assert run(t, a, detector) == []
    assert len(detector._envelope.t) <= 12 * 50 + 2  # memory stays a few seconds of envelope


# -- configuration and the station ---------------------------------------------------------------


def test_sites_have_their_own_starting_values():
    assert FallDetector(site="thigh").cfg == FallConfig.for_site("thigh")
    assert FallConfig.for_site("thigh").turn_deg < FallConfig.for_site("chest").turn_deg
    assert FallDetector().cfg.site == "chest"
    assert FallConfig.for_site("waist", judge_s=3.0).judge_s == 3.0
    with pytest.raises(ValueError, match="site must be one of"):
        FallConfig.for_site("knee")
    with pytest.raises(ValueError):
        FallConfig(dip_g=1.2)
    with pytest.raises(ValueError, match="disagree"):
        FallDetector(FallConfig.for_site("thigh"), site="chest")


def test_the_config_says_where_a_body_worn_sensor_sits():
    cfg = parse({"imu": [{"name": "p", "placement": "body", "site": "thigh"}]})
    assert cfg.imus[0].site == "thigh"
    assert parse({"imu": [{"name": "c", "placement": "body"}]}).imus[0].site == "chest"
    with pytest.raises(ConfigError, match=r"imu\[0\]\.site: must be one of"):
        parse({"imu": [{"name": "p", "placement": "body", "site": "knee"}]})


def run_station(motion, site, rate_hz=250.0):
    imu = ImuConfig("pocket", "mpu6050", 0x68, rate_hz=rate_hz, placement="body", site=site)
    cfg = Config(station=StationConfig(id="t-fall", simulate=True, seed=1), imus=(imu,))
    clock = SimClock()
    bus = SimBus(log_size=0)
    bus.attach(0x68, Mpu6050Sim(motion, clock=clock, seed=1))
    station = Station(cfg, bus=bus, clock=clock)
    station.open()
    falls, alerts = [], []
    while clock.now() < motion.duration:
        clock.sleep(0.1)
        result = station.step()
        falls += result.falls
        alerts += result.alerts
    return station, falls, alerts


def test_the_station_runs_the_detector_for_the_configured_site():
    m = fall_trial(8, "forward", "thigh", lying=10.0, impact_g=2.8)
    station, falls, alerts = run_station(m, "thigh")
    assert station.falls["pocket"].cfg.site == "thigh"
    [(sensor, event)] = falls
    assert sensor == "pocket" and event.site == "thigh"
    raised = [a for a in alerts if a.code == "redflag.fall" and a.state == "raised"]
    assert len(raised) == 1 and raised[0].evidence["turn_deg"] >= 45


def test_the_station_stays_quiet_through_sitting_down_hard_and_jumps():
    m = Movements(9, site="thigh").stand(5).jumps(3).stand(4).sit_down_hard().stand(6)
    _, falls, alerts = run_station(m, "thigh")
    assert falls == [] and not [a for a in alerts if a.code == "redflag.fall"]


def test_a_library_session_with_a_real_shaped_fall_raises_one_alert():
    s = SCENARIOS["real_fall_sideways"](seed=2)
    impact = s.truth.events_of("impact")[0].t
    start = impact - 15.0
    t = np.arange(start, impact + 15.0, 0.004)
    [event] = run(t, s.accel(t), FallDetector(site="chest"))
    assert abs(event.t - impact) < 0.3


# -- the real recordings (development split, outside the repository) ----------------------------


@needs_mobifall
def test_mobifall_falls_are_caught_and_everyday_movement_is_not():
    report = evaluate(MOBIFALL, site="thigh", block_s=1.0)  # the station's 0.1 s: bench_falls
    assert report.sensitivity() >= 0.90
    for kind in report.kinds(True):
        assert report.sensitivity(kind) >= 0.80, kind
    assert report.false_alarms_per_hour() <= 0.1
    assert report.latencies().max() <= 2.6
    near, caught = report.near_peak()
    assert near == caught  # the falls reported are the trials' impacts, not something else


def fall_features(t, accel):
    """(peak g, lowest g in the second before it, turn degrees) on 20 ms means."""
    keys = np.floor(t * 50).astype(int)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    v = np.add.reduceat(accel, starts, axis=0) / np.diff(np.r_[starts, len(keys)])[:, None] / G
    tb = (keys[starts] + 0.5) / 50
    g = np.linalg.norm(v, axis=1)
    i = int(np.argmax(g))
    dip = g[(tb >= tb[i] - 1) & (tb < tb[i])].min()
    before = v[(tb >= tb[i] - 2) & (tb < tb[i] - 1)].mean(axis=0)
    after = v[(tb >= tb[i] + 1) & (tb <= tb[i] + 2.5)].mean(axis=0)
    cos = before @ after / np.linalg.norm(before) / np.linalg.norm(after)
    return g[i], dip, np.degrees(np.arccos(np.clip(cos, -1, 1)))


def simulated_thigh_features():
    rows = []
    for seed in range(40):
        m = fall_trial(seed, FALL_KINDS[seed % 4], "thigh")
        rows.append(fall_features(*sampled(m, 90.0)))
    return np.array(rows)


def test_simulated_thigh_falls_have_the_figures_of_real_ones():
    # MobiFall's 144 falls, 20 ms means: peak median 2.56 g (10-90 %: 2.16-2.96),
    # lowest |a| before it median 0.49 g (0.20-0.68), turn median 85 degrees (69-100)
    peak, dip, turn = np.median(simulated_thigh_features(), axis=0)
    assert 2.3 <= peak <= 2.8 and 0.35 <= dip <= 0.6 and 70 <= turn <= 105


@needs_mobifall
def test_simulated_thigh_falls_look_like_mobifall():
    real = np.array([fall_features(x.t, x.accel) for x in trials(MOBIFALL) if x.fall])
    sim = simulated_thigh_features()
    for column, tolerance in ((0, 0.25), (1, 0.12), (2, 15.0)):
        assert abs(np.median(sim[:, column]) - np.median(real[:, column])) <= tolerance, column
        # neither tighter nor much wider than the real spread
        real_iqr = np.subtract(*np.percentile(real[:, column], [90, 10]))
        sim_iqr = np.subtract(*np.percentile(sim[:, column], [90, 10]))
        assert 0.5 * real_iqr <= sim_iqr <= 2.5 * real_iqr, column


def test_times_and_samples_that_do_not_match_are_refused():
    with pytest.raises(ValueError, match="accel must be"):
        FallDetector().feed(np.arange(5.0), np.zeros((4, 3)))


def test_garbled_samples_are_dropped_not_believed():
    m = fall_trial(2, "forward", "chest", impact_g=3.0)
    t, a = sampled(m)
    impact = m.truth.falls[0].t
    a = a.copy()
    a[(t > impact + 1.0) & (t < impact + 1.2)] = np.nan  # a bad read while lying
    a[(t > 2.0) & (t < 2.05)] = np.inf
    [event] = run(t, a, FallDetector(site="chest"))
    assert np.isfinite([event.turn_deg, event.activity_g, event.impact_g]).all()
    quiet = np.tile([0.0, 0.0, G], (500, 1))
    quiet[100:400] = np.nan  # nothing but garbage after an impact
    quiet[50] = [0.0, 0.0, 4 * G]
    assert run(np.arange(500) / 100.0, quiet, FallDetector()) == []
