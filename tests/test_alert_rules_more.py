"""The fluid, fuel and equipment rules (the tremor and red-flag rules are in test_alerts.py)."""

from collections import Counter

import pytest

from monitor.alerts import AlertConfig, AlertRules, Inputs
from monitor.analysis.hydration import HydrationStatus
from monitor.analysis.session import SessionStatus
from monitor.clock import SimClock
from monitor.config import Config, ImuConfig, ScaleConfig, StationConfig
from monitor.sim import Scenario
from monitor.sim.rig import calibrate_scale, simulated_bus
from monitor.station import Station


def hydration(**kw):
    base = dict(
        mode="body",
        mass_g=None,
        intake_ml=None,
        intake_ml_per_h=None,
        pre_mass_g=None,
        post_mass_g=None,
        body_mass_loss_pct=None,
        sweat_rate_l_per_h=None,
        events=(),
    )
    return HydrationStatus(**{**base, **kw})


def session(duration_s=4000.0, active=True):
    return SessionStatus(
        t=duration_s,
        active=active,
        started=0.0,
        ended=None,
        state="idle",
        set_count=8,
        reps=0,
        last_set_end=None,
        duration_s=duration_s,
        since_end_s=None,
        elevated_s=None,
        elevated_sensors=(),
        ratio=None,
        baseline_mg=None,
        recovery_s=None,
        fatigue_trend=None,
    )


def codes(h, s=None):
    inputs = Inputs(t=4000.0, sensors={}, exercised={}, session=s, hydration=h)
    return {(c.code, c.level) for c in AlertRules(AlertConfig()).evaluate(inputs)}


@pytest.mark.parametrize(
    "loss,expected",
    [(0.5, set()), (1.2, {("fluid.loss", "caution")}), (2.4, {("fluid.loss", "warning")})],
)
def test_body_mass_loss_in_two_steps(loss, expected):
    assert (
        codes(
            hydration(
                pre_mass_g=70000.0, post_mass_g=70000.0 * (1 - loss / 100), body_mass_loss_pct=loss
            )
        )
        == expected
    )


def test_mass_gained_during_exercise_but_not_scale_noise():
    assert codes(hydration(pre_mass_g=70000.0, post_mass_g=70400.0, body_mass_loss_pct=-0.57)) == {
        ("fluid.gain", "caution")
    }
    assert (
        codes(hydration(pre_mass_g=70000.0, post_mass_g=70050.0, body_mass_loss_pct=-0.07)) == set()
    )


def test_low_intake_only_after_half_an_hour_of_session():
    dock = hydration(mode="bottle", intake_ml=60.0, intake_ml_per_h=90.0)
    assert codes(dock, session(4000.0)) == {("fluid.low_intake", "caution")}
    assert codes(dock, session(1000.0)) == set()
    assert (
        codes(hydration(mode="bottle", intake_ml=600.0, intake_ml_per_h=540.0), session(4000.0))
        == set()
    )


def test_a_body_scale_station_raises_fluid_loss_from_real_weigh_ins(tmp_path):
    # The body_scale scenario weighs the athlete at 70.0 kg before and 69.1 kg after: 1.3 % lost.
    cfg = Config(
        station=StationConfig(id="scale-1", simulate=True, state_dir=tmp_path, seed=1),
        imus=(ImuConfig("w", "mpu6050", 0x68, rate_hz=50, scenario="rest"),),
        scale=ScaleConfig(mode="body", scenario="body_scale"),
    )
    clock = SimClock()
    bus = simulated_bus(cfg, clock, loop=False)
    cal = calibrate_scale(bus, cfg, clock)
    station = Station(cfg, bus=bus, clock=clock)
    station.open(cal)
    events = []
    duration = bus.chip(0x2A).load.duration
    while clock.now() < duration:
        clock.sleep(0.1)
        events += station.step().alerts
    raised = [e for e in events if e.state == "raised"]
    assert [(e.code, e.level, e.sensor, e.evidence) for e in raised if e.code != "fluid.loss"] == []
    assert [(e.code, e.level) for e in raised] == [("fluid.loss", "caution")]
    assert raised[0].evidence["body_mass_loss_pct"] == pytest.approx(1.29, abs=0.15)


def test_a_stalled_loop_reports_overruns():
    cfg = Config(
        station=StationConfig(id="s", simulate=True), imus=(ImuConfig("w", scenario="rest"),)
    )
    clock = SimClock()
    station = Station(cfg, bus=simulated_bus(cfg, clock), clock=clock)
    station.open()
    events = []
    for _ in range(40):
        clock.sleep(0.5)  # a loop five times too slow: the FIFO holds 0.17 s
        events += station.step().alerts
    overrun = [e for e in events if e.code == "sensor.overrun"]
    assert overrun and overrun[0].evidence["lost_per_min"] >= 100


def test_a_long_session_with_tremor_that_rest_does_not_explain_suggests_fuel():
    """An hour of sets whose tremor stays raised through the rests: the fuel cue (Felig et al.
    1982)."""
    athlete = (
        Scenario(seed=4, placement="limb")
        .rest(120)
        .reps(10, sets=16, rest=240, load=0.8)
        .recovery(300, persistent=True)
    )
    assert athlete.duration > 3900

    class Fixed:
        def __call__(self, seed=0, **kw):
            return athlete

    from monitor.sim import scenarios

    scenarios.SCENARIOS["_fuel_test"] = Fixed()
    try:
        cfg = Config(
            station=StationConfig(id="f", simulate=True, seed=4),
            imus=(ImuConfig("w", "mpu6050", 0x68, rate_hz=100, scenario="_fuel_test"),),
        )
        clock = SimClock()
        station = Station(cfg, bus=simulated_bus(cfg, clock, loop=False), clock=clock)
        station.open()
        events = []
        while clock.now() < athlete.duration:
            clock.sleep(0.2)
            events += station.step().alerts
    finally:
        del scenarios.SCENARIOS["_fuel_test"]
    raised = Counter(e.code for e in events if e.state == "raised")
    assert raised["fuel.low"] == 1
    fuel = next(e for e in events if e.code == "fuel.low")
    assert fuel.evidence["session_min"] >= 60 and "carbohydrate" in fuel.advice


# -- the tremor rule grades only what can be graded ------------------------------------------


def _status(state, ratio, graded, moving=False, t=10.0):
    import numpy as np

    from monitor.analysis.activity import SensorStatus
    from monitor.analysis.stream import WindowResult
    from monitor.analysis.tremor import analyze
    from monitor.units import G

    window = np.zeros((500, 3))
    window[:, 2] = G
    w = WindowResult(t, "w", analyze(window, 200.0))
    return SensorStatus(
        t=t,
        sensor="w",
        state=state,
        state_since=0.0,
        rms_mg=40.0,
        peak_hz=6.0,
        ratio=ratio,
        level="high",
        baseline_mg=10.0,
        moving=moving,
        set_count=1,
        reps=5,
        set_start=0.0,
        last_set=None,
        recovery_s=None,
        fatigue_trend=None,
        window=w,
        graded=graded,
        reference_mg=80.0 if graded == "set" else None,
    )


def _tremor_codes(statuses):
    rules = AlertRules(AlertConfig())
    out = []
    for st in statuses:
        out.append(
            {
                c.code
                for c in rules.evaluate(Inputs(t=st.t, sensors={"w": st}, exercised={"w": True}))
            }
        )
    return out


def test_moving_windows_that_no_reference_grades_raise_no_tremor_alert():
    # a set's moving window before its reference is ready (or movement outside a set): ungraded
    assert _tremor_codes([_status("reps", None, None, moving=True) for _ in range(5)])[-1] == set()


def test_reps_are_graded_against_their_set_and_say_so():
    codes = _tremor_codes([_status("reps", 5.0, "set", moving=True, t=float(i)) for i in range(5)])
    assert codes[-1] == {"tremor.high"}
    rules = AlertRules(AlertConfig())
    [c] = [
        c
        for c in rules.evaluate(
            Inputs(
                t=1.0,
                sensors={"w": _status("reps", 2.5, "set", moving=True)},
                exercised={"w": True},
            )
        )
        if c.code.startswith("tremor.")
    ]
    assert (
        "first reps" in c.message
        and c.evidence["graded"] == "set"
        and c.evidence["reference_mg"] == 80.0
    )


def test_a_still_pause_within_a_set_is_not_graded_like_the_set():
    # raised tremor in a pause between reps is the expected after-effect, not an alert
    assert (
        _tremor_codes([_status("reps", 5.0, "rested", t=float(i)) for i in range(5)])[-1] == set()
    )
    # in a static hold the rested baseline is the reference
    assert (
        "tremor.high"
        in _tremor_codes([_status("hold", 5.0, "rested", t=float(i)) for i in range(5)])[-1]
    )


def test_ratios_graded_against_different_references_are_never_smoothed_together():
    set_high = [_status("reps", 5.0, "set", moving=True, t=float(i)) for i in range(3)]
    rested_low = [_status("hold", 1.0, "rested", t=3.0 + i) for i in range(2)]
    # a median of three over both would still say 5x; the rested ones alone say 1x
    assert _tremor_codes(set_high + rested_low)[-1] == set()
