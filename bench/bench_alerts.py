"""Alert quality and speed: false alarms per hour of ordinary training, onset-to-broker latency.

    .venv/bin/python -m bench.bench_alerts [--seeds 3] [--onsets 10]

False alarms: ordinary training (strength sessions and static holds strapped
on a limb, a bench clip with dropped weights, a bench next to a treadmill, an
athlete resting) through the real station on simulated chips at 1 kHz; then
everyday movement (standing, walking, jogging, body-worn) and a set taken to
failure, whose in-set tremor alert is a true one. Each
alert raised is checked against the scenario's ground truth: a tremor alert
while the true tremor was below the alert's clearing threshold, a hold alert
outside a hold, a fatigue trend the true tremor does not show, any red flag,
fuel or sensor alert in clean training: each is a false alarm.

Onset latency: an athlete mid-set whose tremor jumps from 10 mg to 60 mg at a
random moment, through the real runner publishing to a real Mosquitto: the
station's time from onset to raising the alert (simulated time, which a Pi
spends in real time) plus the measured time from publishing it to a
subscriber receiving it.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from monitor.clock import SimClock
from monitor.config import Config, ImuConfig, MqttConfig, StationConfig
from monitor.runner import StationRunner
from monitor.sim.rig import simulated_bus
from monitor.station import Station
from monitor.units import G

ORDINARY = (
    ("strength_session", "limb"),
    ("static_holds", "limb"),
    ("dropped_weight", "bench"),
    ("neighbour_vibration", "bench"),
    ("rest", "limb"),
)
#: beyond ordinary training: a day of standing, walking and jogging (nothing to alert on), and a
#: set taken to failure whose tremor really grows within it (the in-set alert must come)
MORE = (("everyday", "body"), ("set_to_failure", "limb"))


def truth_ratio(truth, t0: float, t1: float) -> float:
    t = np.linspace(t0, t1, 26)
    _, mg = truth.tremor_at(t)
    return float(np.max(mg) / truth.baseline_mg)


def is_false(alert, t: float, truth, cfg) -> bool:
    code = alert.code
    if code == "tremor.elevated":
        return truth_ratio(truth, t - 4, t) < cfg.elevated_ratio / cfg.clear_factor
    if code == "tremor.high":
        return truth_ratio(truth, t - 4, t) < cfg.high_ratio / cfg.clear_factor
    if code == "hold.fatigue":
        return not any(s.kind == "hold" and s.start - 5 <= t <= s.end + 10 for s in truth.sets)
    if code == "fatigue.trend":
        sets = [s for s in truth.sets if s.end <= t + 5]
        if len(sets) < 2:
            return True
        _, mg = truth.tremor_at(np.array([0.5 * (s.start + s.end) for s in sets]))
        growth = np.polyfit(np.arange(len(sets)), np.log2(mg / truth.baseline_mg), 1)[0]
        return growth < cfg.trend_per_set / 2
    return True  # red flags, fuel, fluid, sensor faults: none happen in clean, ordinary training


def false_alarms(seeds: int, scenarios=ORDINARY) -> tuple[float, int, int, dict]:
    hours = 0.0
    raised = 0
    false = 0
    by_code: dict[str, list[int]] = {}
    for seed in range(1, seeds + 1):
        for scenario, placement in scenarios:
            cfg = Config(
                station=StationConfig(id="t", simulate=True, seed=seed),
                imus=(
                    ImuConfig(
                        "s", "mpu6050", 0x68, rate_hz=1000, placement=placement, scenario=scenario
                    ),
                ),
            )
            clock = SimClock()
            bus = simulated_bus(cfg, clock, loop=False)
            station = Station(cfg, bus=bus, clock=clock)
            station.open()
            truth = bus.chip(0x68).motion.truth
            duration = bus.chip(0x68).motion.duration
            while clock.now() < duration:
                clock.sleep(station.poll_interval)
                for a in station.step().alerts:
                    if a.state != "raised":
                        continue
                    bad = is_false(a, clock.now(), truth, cfg.alerts)
                    raised += 1
                    false += bad
                    by_code.setdefault(a.code, [0, 0])
                    by_code[a.code][0] += 1
                    by_code[a.code][1] += bad
            hours += duration / 3600
    return hours, raised, false, by_code


class OnsetDuringReps:
    """Rest for 15 s (the baseline), then reps at 0.5 Hz; at ``onset`` tremor jumps 10 -> 60 mg."""

    def __init__(self, onset: float, seed: int):
        rng = np.random.default_rng(seed)
        self.onset = onset
        self.up = rng.normal(size=3)
        self.up /= np.linalg.norm(self.up)
        d = rng.normal(size=3)
        self.d = d / np.linalg.norm(d)
        self.duration = onset + 10

    def accel(self, t):
        t = np.asarray(t, dtype=float)
        reps = np.where(t >= 15, 0.35 * G * np.sin(2 * np.pi * 0.5 * (t - 15)), 0.0)
        base = 10e-3 * G * math.sqrt(2) * np.sin(2 * np.pi * 9 * t)
        jump = np.where(
            t >= self.onset,
            60e-3 * G * math.sqrt(2) * np.sin(2 * np.pi * 6 * (t - self.onset)),
            0.0,
        )
        return G * self.up + np.outer(reps, self.up) + np.outer(base + jump, self.d)


def onset_latencies(n: int) -> tuple[list[float], list[float]]:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from tests.support.mosquitto import MosquittoBroker

    station_s, broker_s = [], []
    with tempfile.TemporaryDirectory() as tmp, MosquittoBroker(Path(tmp)) as broker:
        received: dict[str, float] = {}
        sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-sub")
        sub.on_message = lambda c, u, m: received.setdefault(
            json.loads(m.payload)["id"], time.time()
        )
        sub.connect(broker.host, broker.port)
        sub.subscribe("gym/+/alert", qos=1)
        sub.loop_start()
        for trial in range(n):
            rng = np.random.default_rng(100 + trial)
            onset = 40 + float(rng.uniform(0, 1))
            cfg = Config(
                station=StationConfig(
                    id=f"onset-{trial}", simulate=True, state_dir=Path(tmp) / str(trial)
                ),
                imus=(ImuConfig("wrist", "mpu6050", 0x68, rate_hz=1000, scenario="rest"),),
                mqtt=MqttConfig(host=broker.host, port=broker.port),
            )
            clock = SimClock()
            bus = simulated_bus(cfg, clock, loop=False)
            bus.chip(0x68).motion = OnsetDuringReps(onset, trial)
            runner = StationRunner(cfg, simulate=True, clock=clock, bus=bus)
            runner.start()
            while not runner.publisher.connected:
                time.sleep(0.01)
            raised = None
            while clock.now() < onset + 10 and raised is None:
                clock.sleep(runner.station.poll_interval)
                runner.cycle()
                for a in runner.last_step.alerts:
                    if (
                        a.code.startswith("tremor.")
                        and a.state == "raised"
                        and clock.now() >= onset
                    ):
                        raised = (a.id, clock.now() - onset, time.time())
            if raised is not None:
                deadline = time.time() + 5
                while raised[0] not in received and time.time() < deadline:
                    time.sleep(0.001)
                if raised[0] in received:
                    station_s.append(raised[1])
                    broker_s.append(received[raised[0]] - raised[2])
            runner.stop()
        sub.loop_stop()
    return station_s, broker_s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--onsets", type=int, default=10)
    args = ap.parse_args()
    t0 = time.time()
    hours, raised, false, by_code = false_alarms(args.seeds)
    print(
        f"False alarms over {hours:.2f} simulated hours of ordinary training ({args.seeds} seeds x "
        f"{len(ORDINARY)} scenarios, 1 kHz, {time.time() - t0:.0f} s to run)"
    )
    for code, (n, bad) in sorted(by_code.items()):
        print(f"  {code:<18} raised {n:3d}, false {bad}")
    print(
        f"  false alarms: {false} = {false / hours:.2f} per hour (target <= 0.5); "
        f"alerts raised {raised}"
    )
    hours, raised, false, by_code = false_alarms(args.seeds, MORE)
    print(
        f"Everyday movement and a set to failure, {hours:.2f} simulated hours "
        f"({args.seeds} seeds x {', '.join(name for name, _ in MORE)})"
    )
    for code, (n, bad) in sorted(by_code.items()):
        print(f"  {code:<18} raised {n:3d}, false {bad}")
    print(
        f"  false alarms: {false} = {false / hours:.2f} per hour; alerts raised {raised} "
        f"(a tremor alert in each set to failure is right)"
    )
    station_s, broker_s = onset_latencies(args.onsets)
    total = np.array(station_s) + np.array(broker_s)
    print(
        f"Tremor onset (10 -> 60 mg mid-set) to the alert received from Mosquitto, {len(total)} of "
        f"{args.onsets} onsets:"
    )
    print(
        f"  station (analysis + rule): median {np.median(station_s):.2f} s, max "
        f"{np.max(station_s):.2f} s"
    )
    print(
        f"  publish -> subscriber:     median {1e3 * np.median(broker_s):.1f} ms, max "
        f"{1e3 * np.max(broker_s):.1f} ms"
    )
    print(
        f"  total:                     median {np.median(total):.2f} s, max {np.max(total):.2f} s "
        "(target <= 2 s)"
    )


if __name__ == "__main__":
    main()
