"""Athletes at a station, without a broker: ids from tags, the gym's secret, and whose baseline
grades whom when athletes take turns.

The station is the real runner on simulated chips (an MPU-6050 whose motion is each athlete's
own body in their turn, a PN532 with their tags): see monitor/sim/turns.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from monitor.athletes import GymSecret, load_secret, make_secret
from monitor.athletes.identity import MIN_SECRET_BYTES
from monitor.clock import SimClock
from monitor.config import (
    AthletesConfig,
    Config,
    GpioConfig,
    ImuConfig,
    MqttConfig,
    NfcConfig,
    StationConfig,
    parse,
)
from monitor.errors import ConfigError
from monitor.mqtt.messages.values import ATHLETE_PATTERN
from monitor.runner import StationRunner
from monitor.sim.rig import simulated_bus
from monitor.sim.turns import TakingTurns

ROOT = Path(__file__).resolve().parents[1]
UID = bytes.fromhex("04a2243a5e5b80")


# --------------------------------------------------------------------------- ids and the secret


def test_an_athlete_id_is_the_tags_uid_hashed_with_the_gyms_secret():
    secret = GymSecret(b"the gym's own secret, 32 bytes..")
    athlete = secret.athlete_id(UID)
    # The contract, written out again: "a" + base32(HMAC-SHA256(secret, uid)), lower case,
    # no padding, 20 characters in all.
    digest = hmac.new(b"the gym's own secret, 32 bytes..", UID, hashlib.sha256).digest()
    assert athlete == ("a" + base64.b32encode(digest).decode().lower().rstrip("="))[:20]
    assert len(athlete) == 20 and re.fullmatch(ATHLETE_PATTERN, athlete)
    assert secret.athlete_id(UID) == athlete  # the same at every station
    assert GymSecret(b"another gym's secret, 32 bytes.").athlete_id(UID) != athlete
    assert secret.athlete_id(UID[:-1] + b"\x81") != athlete
    assert UID.hex() not in athlete and "04a2" not in repr(secret)  # and the key is never shown
    with pytest.raises(ValueError):
        GymSecret(b"short")


def test_a_missing_short_or_odd_secret_file_is_one_config_line_naming_the_key(tmp_path):
    def nfc_config(**athletes):
        return Config(
            station=StationConfig(id="bench-1", state_dir=tmp_path / "state"),
            nfc=NfcConfig(),
            athletes=AthletesConfig(**athletes),
        )

    for path, words in [(tmp_path / "nope", "no such file"), (tmp_path, "is a directory")]:
        with pytest.raises(ConfigError) as err:
            load_secret(nfc_config(secret_file=str(path)), simulate=False)
        assert err.value.key == "athletes.secret_file" and words in str(err.value)
    short = tmp_path / "short"
    short.write_text("x" * (MIN_SECRET_BYTES - 1) + "\n")
    with pytest.raises(ConfigError, match="needs at least 16"):
        load_secret(nfc_config(secret_file=str(short)), simulate=False)
    # A reader needs a secret; a station without a reader does not.
    with pytest.raises(ConfigError, match="is required with an \\[nfc\\] reader") as err:
        load_secret(nfc_config(), simulate=False)
    assert "\n" not in str(err.value)
    assert load_secret(Config(station=StationConfig(state_dir=tmp_path)), simulate=False) is None
    # check-config and run say so in one line, and exit 2 (a configuration error).
    toml = tmp_path / "monitor.toml"
    toml.write_text(
        f'[station]\nid = "bench-1"\nstate_dir = "{tmp_path / "state"}"\n'
        "[mqtt]\nenabled = false\n[nfc]\n"
    )
    for args in (["check-config", str(toml)], ["run", "--config", str(toml)]):
        done = subprocess.run(
            [sys.executable, "-m", "monitor.cli", *args],
            check=False,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "athletes.secret_file: is required" in lines[0], lines
    with pytest.raises(ConfigError, match=r"athletes\.timeout_s: must be at least 30"):
        parse({"athletes": {"timeout_s": 5}}, environment=False)


def test_a_simulated_station_keeps_a_secret_of_its_own_in_its_state_dir(tmp_path):
    config = Config(
        station=StationConfig(id="bench-1", simulate=True, state_dir=tmp_path / "s"),
        nfc=NfcConfig(),
    )
    first = load_secret(config, simulate=True)
    path = tmp_path / "s" / "gym-secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(config, simulate=True).athlete_id(UID) == first.athlete_id(UID)
    assert make_secret(path).key == first.key  # never overwritten
    other = make_secret(tmp_path / "other")
    assert other.athlete_id(UID) != first.athlete_id(UID)


# --------------------------------------------------------------------------- a station in turns


def turns_station(
    tmp_path, *, tremor=(5.0, 30.0), turn_s=75.0, mqtt=None, pin_factory=None, **athletes
):
    """A simulated station with a reader where ``len(tremor)`` athletes take turns."""
    config = Config(
        station=StationConfig(id="bench-1", simulate=True, state_dir=tmp_path / "state", seed=3),
        imus=(ImuConfig("wrist", rate_hz=250),),
        nfc=NfcConfig(),
        mqtt=mqtt or MqttConfig(enabled=False),
        gpio=GpioConfig(enabled=pin_factory is not None),
        athletes=AthletesConfig(**athletes),
    )
    clock = SimClock()
    bus = simulated_bus(config, clock)
    turns = TakingTurns(len(tremor), seed=3, turn_s=turn_s, tremor_mg=tremor)
    turns.install(bus, config)
    runner = StationRunner(config, simulate=True, clock=clock, bus=bus, pin_factory=pin_factory)
    return runner, clock, turns


class Log:
    """What a station did, step by step: statuses with whose turn it was, records, check-ins."""

    def __init__(self, runner, clock, turns):
        self.runner, self.clock, self.turns = runner, clock, turns
        self.statuses: list[tuple[int, object]] = []
        self.records = []
        self.checkins = []
        self.alerts = []

    def run(self, until: float, step: float = 0.1) -> Log:
        while self.clock.now() < until:
            self.runner.cycle()
            s = self.runner.last_step
            for report in s.sensors:
                for st in report.statuses:
                    self.statuses.append((self.turns.athlete_at(st.t), st))
            self.records.extend(s.records)
            self.alerts.extend(s.alerts)
            if s.checkin is not None:
                self.checkins.append(s.checkin)
            self.clock.sleep(step)
        return self


def test_athlete_b_is_never_graded_against_athlete_as_baseline(tmp_path):
    """Two athletes in turns, rested tremor 5 mg and 30 mg: each learns their own baseline at
    each check-in, and no status of one carries the other's baseline or a ratio to it."""
    runner, clock, turns = turns_station(tmp_path, tremor=(5.0, 30.0))
    runner.start()
    log = Log(runner, clock, turns).run(2 * turns.period + 10)
    runner.stop()
    truth = [turns.baseline_mg(i) for i in range(2)]
    a_id, b_id = (runner.station.athletes.secret.athlete_id(uid) for uid in turns.uids)
    # Four sessions, A B A B, each ended by its own second tap, each with its own baseline.
    assert [(r.athlete, r.end_reason) for r in log.records] == [(a_id, "tap"), (b_id, "tap")] * 2
    for record in log.records:
        who = 0 if record.athlete == a_id else 1
        handed_back = record.profile_update.baselines_mg["limb"]
        assert truth[who] * 0.8 < handed_back < truth[who] * 1.5, (who, handed_back, truth)
        assert len(record.sets) == 1 and record.sets[0].reps == 10
        assert record.sets[0].ratio_median is not None and record.sets[0].ratio_median < 3.5
    # Every status: the baseline is the wearer's own (or none yet: just checked in, learning).
    for who, st in log.statuses:
        if st.baseline_mg is not None and st.t > turns.first_s + 3:
            assert truth[who] * 0.7 < st.baseline_mg < truth[who] * 1.6, (who, st.t, st.baseline_mg)
    # Rested windows are graded about 1x against their own baseline, on both athletes ...
    for who in (0, 1):
        rested = [
            st.ratio
            for w, st in log.statuses
            if w == who and st.state == "idle" and st.graded == "rested" and st.ratio
        ]
        assert len(rested) >= 8 and 0.6 < float(np.median(rested)) < 1.5, (who, rested[:10])
    # ... where A's baseline would have put B's rest at several times "high", and B's A's
    # rest below half: the test would catch a baseline carried over.
    b_rest = [st.rms_mg for w, st in log.statuses if w == 1 and st.state == "idle" and st.rms_mg]
    assert float(np.median(b_rest)) / truth[0] > 4.0


def test_a_tap_checks_in_the_same_tag_checks_out_and_beeps(tmp_path, caplog):
    from gpiozero.pins.mock import MockFactory

    factory = MockFactory()
    runner, clock, turns = turns_station(tmp_path, tremor=(8.0,), pin_factory=factory)
    caplog.set_level(logging.INFO, logger="monitor")
    runner.start()
    log = Log(runner, clock, turns).run(turns.first_s + 3)
    athlete = runner.station.athletes.secret.athlete_id(turns.uids[0])
    c = log.checkins[-1]
    assert (c.athlete, c.guest, c.source, c.profile) == (athlete, False, "tag", "fresh")
    assert c.since_ts is not None and abs(c.since_ts - (clock.wall() - 3)) < 1.0
    buzzer = factory.pin(runner.config.gpio.buzzer_pin)
    assert sum(1 for s in buzzer.states[1:] if s.state) == 1  # one short beep
    log.run(turns.turn_s + 10)
    assert [(r.athlete, r.end_reason) for r in log.records] == [(athlete, "tap")]
    assert log.checkins[-1].athlete is None and not log.checkins[-1].guest
    assert sum(1 for s in buzzer.states[1:] if s.state) == 2
    runner.stop()
    # The raw UID never leaves the station: not in any log line at INFO or above.
    assert turns.uids[0].hex() not in caplog.text and athlete in caplog.text


def test_a_phones_random_id_checks_nobody_in(tmp_path):
    from monitor.sim.pn532 import Tag, TagSchedule

    runner, clock, turns = turns_station(tmp_path, tremor=(8.0,))
    runner.start()
    runner.bus.chip(0x24).tags = TagSchedule([(2.0, 2.6, Tag(bytes.fromhex("08a1b2c3")))])
    log = Log(runner, clock, turns).run(6.0)
    runner.stop()
    assert runner.station.athletes.current is None
    assert all(c.athlete is None and not c.guest for c in log.checkins)


def test_supersets_each_athlete_gets_their_own_session_and_record(tmp_path):
    """A taps in, B taps in without A tapping out (A's session ends: superseded), A taps in
    again (B superseded), then A taps out: three records, each with its athlete's baseline."""
    from monitor.sim.pn532 import TagSchedule

    runner, clock, turns = turns_station(tmp_path, tremor=(5.0, 30.0), turn_s=75.0)
    a_tag, b_tag = (t for _, _, t in sorted(turns.schedule.taps)[::2][:2])
    # The motion is A's from 5 s, B's from 80 s, A's again from 155 s (turns.period).
    runner.bus.chip(0x24).tags = TagSchedule(
        [(5.0, 5.6, a_tag), (80.0, 80.6, b_tag), (155.0, 155.6, a_tag), (228.0, 228.6, a_tag)]
    )
    runner.start()
    log = Log(runner, clock, turns).run(232.0)
    runner.stop()
    ids = [runner.station.athletes.secret.athlete_id(t.uid) for t in (a_tag, b_tag)]
    assert [(r.athlete, r.end_reason) for r in log.records] == [
        (ids[0], "superseded"),
        (ids[1], "superseded"),
        (ids[0], "tap"),
    ]
    assert len({r.id for r in log.records}) == 3
    assert [r.ended_ts for r in log.records[:2]] == pytest.approx(
        [r.started_ts for r in log.records[1:]], abs=0.01
    )  # one ends as the next begins
    truth = [turns.baseline_mg(0), turns.baseline_mg(1)]
    for record, who in zip(log.records, (0, 1, 0), strict=True):
        handed_back = record.profile_update.baselines_mg["limb"]
        assert truth[who] * 0.8 < handed_back < truth[who] * 1.5, (who, handed_back)
        assert [s.reps for s in record.sets] == [10]


def test_the_button_checks_a_guest_in_and_out_on_a_fresh_baseline(tmp_path):
    from gpiozero.pins.mock import MockFactory

    factory = MockFactory()
    runner, clock, turns = turns_station(tmp_path, tremor=(8.0,), pin_factory=factory)
    runner.bus.chip(0x24).tags = None
    runner.start()
    log = Log(runner, clock, turns).run(20.0)
    learnt = runner.station.analyses["wrist"].baseline_mg
    assert learnt is not None  # nobody checked in: the bench learns, as it always has
    button = factory.pin(runner.config.gpio.button_pin)
    button.drive_low()
    button.drive_high()
    log.run(21.0)
    c = log.checkins[-1]
    assert (c.athlete, c.guest, c.source, c.profile) == (None, True, "button", "fresh")
    assert runner.station.analyses["wrist"].baseline_mg is None  # a guest learns afresh
    log.run(40.0)
    button.drive_low()
    button.drive_high()
    log.run(41.0)
    runner.stop()
    assert [(r.athlete, r.guest, r.end_reason) for r in log.records] == [(None, True, "button")]
    assert log.records[0].profile_update is None  # a guest has no profile


def test_cmd_session_checks_an_athlete_in_out_and_supersedes_idempotently(tmp_path):
    from monitor.athletes import CheckInRefused

    runner, clock, turns = turns_station(tmp_path, tremor=(8.0,))
    runner.bus.chip(0x24).tags = None
    runner.start()
    st = runner.station
    log = Log(runner, clock, turns).run(3.0)
    assert st.start_session("m-ana") is True
    assert st.start_session("m-ana") is False  # a repeated command changes nothing
    log.run(10.0)
    c = log.checkins[-1]
    assert (c.athlete, c.source, c.profile) == ("m-ana", "command", "fresh")
    assert st.start_session("m-ben") is True  # Ben takes over: Ana's record
    with pytest.raises(CheckInRefused, match="m-ana is not checked in"):
        st.stop_session("m-ana")
    log.run(20.0)
    assert st.stop_session("m-ben") is True
    assert st.stop_session() is False  # nobody in, no session: no change
    log.run(21.0)
    runner.stop()
    assert [(r.athlete, r.end_reason) for r in log.records] == [
        ("m-ana", "superseded"),
        ("m-ben", "command"),
    ]


def test_a_check_in_without_a_set_times_out(tmp_path):
    runner, clock, turns = turns_station(tmp_path, tremor=(8.0,), timeout_s=30.0)
    runner.bus.chip(0x24).tags = None
    runner.bus.chip(0x68).motion = turns.scenarios[0].__class__(1, tremor_mg=8.0).rest(100)
    runner.start()
    log = Log(runner, clock, turns).run(2.0)
    runner.station.start_session("m-ana")
    log.run(40.0)
    runner.stop()
    assert [(r.athlete, r.end_reason, len(r.sets)) for r in log.records] == [
        ("m-ana", "timeout", 0)
    ]
    assert log.records[0].ended_ts - log.records[0].started_ts == pytest.approx(30.0, abs=0.5)


def test_the_sessions_own_end_checks_out_and_a_bench_nobody_checks_into_keeps_its_baseline(
    tmp_path,
):
    from dataclasses import replace

    from monitor.analysis.session import SessionConfig
    from monitor.sim.scenarios.athlete import Scenario

    runner, clock, turns = turns_station(tmp_path, tremor=(8.0,))
    runner.config = replace(runner.config, session=SessionConfig(auto_end_s=30.0))
    runner.station.session.cfg = runner.config.session
    runner.bus.chip(0x24).tags = None
    runner.bus.chip(0x68).motion = (
        Scenario(5, tremor_mg=8.0).rest(20).reps(10).rest(60).reps(10).rest(80)
    )
    runner.start()
    log = Log(runner, clock, turns).run(2.0)
    # Nobody checked in: the first set starts an anonymous session; the baseline learnt at
    # rest before it stays through the session and after it (the bench cannot tell people apart).
    log.run(19.0)
    before = runner.station.analyses["wrist"]
    log.run(85.0)
    assert [(r.athlete, r.guest, r.end_reason, len(r.sets)) for r in log.records] == [
        (None, True, "auto", 1)
    ]
    assert runner.station.analyses["wrist"] is before and before.baseline_mg is not None
    # An athlete checked in: their session ends by itself 30 s after their set, and so does
    # their check-in; the next person starts afresh.
    runner.station.start_session("m-ana")
    log.run(200.0)
    runner.stop()
    assert [(r.athlete, r.end_reason, len(r.sets)) for r in log.records[1:]] == [
        ("m-ana", "auto", 1)
    ]
    assert runner.station.athletes.current is None and log.checkins[-1].athlete is None
    assert runner.station.analyses["wrist"] is not before


def test_a_reader_fault_is_reported_and_the_loop_goes_on(tmp_path):
    runner, clock, turns = turns_station(tmp_path, tremor=(8.0,))
    runner.start()
    log = Log(runner, clock, turns).run(10.0)
    runner.bus.vanish(0x24, 5.0)
    n = len(log.statuses)
    log.run(25.0)
    runner.stop()
    nfc = [(a.code, a.state) for a in log.alerts if a.sensor == "nfc"]
    assert nfc == [("sensor.fault", "raised"), ("sensor.fault", "cleared")]
    assert len(log.statuses) - n > 25  # tremor went on, two windows a second
    assert runner.station.nfc.recoveries == 1


# --------------------------------------------------------------------------- the record


def test_session_records_are_kept_like_alerts_in_the_outbox(tmp_path):
    """Over the bound and on a full disk: metrics go, records stay (and go out before them)."""
    from monitor.mqtt import Outbox

    with Outbox(tmp_path / "outbox.sqlite3", max_rows=5) as ob:
        for i in range(3):
            ob.add("gym/b/session_record", b"record %d" % i, kind="session_record")
            ob.add("gym/b/x", b"m%d" % i, kind="metric")
        for i in range(3, 10):
            ob.add("gym/b/x", b"m%d" % i, kind="metric")
        kept = [m.payload for m in ob.messages()]
        assert kept[:3] == [b"record 0", b"record 1", b"record 2"] and len(kept) == 5
        assert "session_record" not in ob.stats().dropped
        assert [m.payload for m in ob.take(3)] == kept[:3]  # sent before the metrics
    with Outbox(tmp_path / "full.sqlite3", page_limit=60) as ob:
        for n in range(10_000):  # records until the file is full: the next is held, not dropped
            row = ob.add("gym/b/session_record", b"r%d" % n + b"r" * 2000, kind="session_record")
            if row < 0:
                break
        assert n > 5 and ob.held == 1 and "session_record" not in ob.stats().dropped
        assert ob.add("gym/b/x", b"z" * 2000, kind="metric") is None  # a metric just goes


def test_the_record_has_every_alert_with_who_acknowledged_it_and_the_hydration(tmp_path):
    from dataclasses import replace

    from monitor.config import ScaleConfig
    from monitor.sim.rig import calibrate_scale

    runner, clock, turns = turns_station(tmp_path, tremor=(8.0,))
    config = replace(runner.config, scale=ScaleConfig(mode="bottle", scenario="bottle_dock"))
    bus = simulated_bus(config, clock)
    turns.install(bus, config)
    bus.chip(0x24).tags = None
    runner = StationRunner(
        config, simulate=True, clock=clock, bus=bus, calibration=calibrate_scale(bus, config, clock)
    )
    runner.start()
    log = Log(runner, clock, turns).run(3.0)
    runner.station.start_session("m-ana")
    log.run(10.0)
    bus.vanish(0x68, 10.0)  # the wrist strap's sensor drops out for 10 s
    log.run(14.0)
    fault = next(a for a in log.alerts if a.code == "sensor.fault" and a.state == "raised")
    assert runner.station.acknowledge(fault.id, by="Ana") is not None
    log.run(40.0)
    runner.station.stop_session()
    log.run(41.0)
    runner.stop()
    record = log.records[-1]
    entry = next(a for a in record.alerts if a.id == fault.id)
    assert (entry.code, entry.level, entry.by) == ("sensor.fault", "warning", "Ana")
    assert entry.raised_ts == pytest.approx(fault.raised_ts)
    assert entry.acknowledged_ts is not None and entry.acknowledged_ts >= entry.raised_ts
    assert record.hydration is not None and record.hydration.mode == "bottle"
    assert record.hydration.intake_ml is not None
    assert [t.sensor for t in record.trace] and all(t.ts % 60 == 0 for t in record.trace)


def test_a_bug_in_the_reader_or_the_desk_never_stops_the_sensors(tmp_path, monkeypatch, caplog):
    runner, clock, turns = turns_station(tmp_path, tremor=(8.0,))
    runner.start()
    log = Log(runner, clock, turns).run(4.0)

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(runner.station.nfc, "read", broken)
    monkeypatch.setattr(runner.station.athletes, "after_step", broken)
    n = len(log.statuses)
    with caplog.at_level(logging.ERROR, logger="monitor.station"):
        log.run(14.0)
    runner.stop()
    assert len(log.statuses) - n >= 18  # two windows a second, as before
    assert sum("a bug" in r.getMessage() or r.exc_info is not None for r in caplog.records) == 2
