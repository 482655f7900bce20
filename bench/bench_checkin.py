"""Check-in: from a tag placed on the reader to the athlete's profile applied on the station.

    .venv/bin/python -m bench.bench_checkin [--taps 40] [--athletes 8] [--every 1.5]

The real station runner (MPU-6050 at 1 kHz and a PN532, both simulated at the
register/frame level, on the real clock) publishes to a real Mosquitto in which
a stand-in for the history service holds a retained profile for every athlete.
Athletes tap their tags in turn, ``--every`` seconds apart (each check-in
supersedes the last). For every tap the station's own timestamps give:

* tap -> checked in: the tag enters the field until the desk checks the athlete
  in (the PN532 listing every 0.2 s, the UID read, hashed with the gym's secret);
* checked in -> applied: the retained profile asked for (SUBSCRIBE) until it is
  applied to the analysis on the station's thread (status ``applied``);
* tap -> applied: the two together, the figure an athlete notices.

Printed: median, p95 and max of each in milliseconds, and taps that did not end
with the profile applied. The chip's timing is modelled (monitor.sim.pn532), the
broker and the network stack are real (loopback).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from monitor.athletes.identity import GymSecret
from monitor.clock import RealClock
from monitor.config import (
    AthletesConfig,
    Config,
    GpioConfig,
    ImuConfig,
    MqttConfig,
    NfcConfig,
    StationConfig,
)
from monitor.mqtt.messages import Profile
from monitor.runner import StationRunner
from monitor.sim.pn532 import Tag, TagSchedule
from monitor.sim.rig import simulated_bus
from monitor.sim.scenarios.athlete import Scenario
from tests.support.mosquitto import MosquittoBroker

HOLD_S = 0.6


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--taps", type=int, default=40)
    ap.add_argument("--athletes", type=int, default=8)
    ap.add_argument("--every", type=float, default=1.5, help="seconds between taps")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-checkin-"))
    broker = MosquittoBroker(work / "broker").start()
    secret_file = work / "gym-secret"
    secret_file.write_text("the bench gym's secret, shared by its stations\n")
    secret = GymSecret.load(secret_file)
    tags = [Tag(bytes((0x04, 0x10, k, 0x3A, 0x5E, 0x5B, 0x80))) for k in range(args.athletes)]
    ids = [secret.athlete_id(t.uid) for t in tags]

    # The history service's part: a retained profile per athlete, before anyone taps.
    history = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-history")
    history.connect(broker.host, broker.port)
    history.loop_start()
    for k, athlete in enumerate(ids):
        profile = Profile(athlete=athlete, baselines_mg={"limb": 6.0 + k}, updated_ts=time.time())
        history.publish(
            f"gym/_athletes/{athlete}/profile", profile.to_json(), qos=1, retain=True
        ).wait_for_publish(5)

    clock = RealClock()
    start = clock.now() + 3.0  # the station has found its sensors by then
    taps = [(start + n * args.every, tags[n % len(tags)]) for n in range(args.taps)]
    config = Config(
        station=StationConfig(id="bench-1", simulate=True, state_dir=work / "state"),
        imus=(ImuConfig("wrist", rate_hz=1000),),
        nfc=NfcConfig(),
        athletes=AthletesConfig(secret_file=str(secret_file)),
        mqtt=MqttConfig(host=broker.host, port=broker.port),
        gpio=GpioConfig(enabled=False),
    )
    bus = simulated_bus(config, clock)
    bus.chip(0x68).motion = Scenario(1, tremor_mg=8.0).rest(3600)
    bus.chip(0x24).tags = TagSchedule([(t, t + HOLD_S, tag) for t, tag in taps])
    runner = StationRunner(config, simulate=True, clock=clock, bus=bus)
    runner.start()
    seen: dict[float, tuple[str, float | None]] = {}  # check-in time -> (athlete, applied at)
    stop = threading.Event()
    end = taps[-1][0] + args.every + 1.0
    try:
        while clock.now() < end and not stop.is_set():
            began = clock.now()
            runner.cycle()
            c = runner.station.athletes.current
            if c is not None and c.athlete is not None:
                seen[c.since] = (c.athlete, c.applied_at)
            spare = runner.station.poll_interval - (clock.now() - began)
            if spare > 0:
                time.sleep(spare)
    finally:
        runner.stop()
        history.loop_stop()
        history.disconnect()
        broker.close()

    to_checkin, to_applied, total, missed = [], [], [], 0
    checkins = sorted(seen.items())
    for t_on, tag in taps:
        athlete = secret.athlete_id(tag.uid)
        match = next(
            (
                (since, a, applied)
                for since, (a, applied) in checkins
                if a == athlete and t_on <= since < t_on + args.every
            ),
            None,
        )
        if match is None or match[2] is None:
            missed += 1
            continue
        since, _, applied = match
        to_checkin.append((since - t_on) * 1000)
        to_applied.append((applied - since) * 1000)
        total.append((applied - t_on) * 1000)
    print(
        f"check-in with a retained profile on a real Mosquitto: {args.taps} taps, "
        f"{args.athletes} athletes, one every {args.every:g} s (PN532 listing every "
        f"{config.nfc.poll_interval_s:g} s, station loop every "
        f"{runner.station.poll_interval * 1000:.0f} ms)"
    )
    if not total:
        print("no tap ended with the profile applied")
        return 1
    print(f"{'':26}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    for name, values in (
        ("tap -> checked in", to_checkin),
        ("checked in -> applied", to_applied),
        ("tap -> profile applied", total),
    ):
        print(
            f"{name:26}{statistics.median(values):9.1f}{pct(values, 0.95):9.1f}{max(values):9.1f}"
        )
    print(f"taps without the profile applied: {missed} of {args.taps}")
    return 0 if missed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
