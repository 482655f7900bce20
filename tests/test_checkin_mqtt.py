"""Check-in against a real Mosquitto with the shipped ACL: the retained profile applied at once,
the session record durable through a broker outage, a restart and SIGTERM, cmd/session from the
display's user. Every record read off the broker is checked against its committed JSON Schema.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from monitor.config import MqttConfig
from monitor.mqtt import Outbox, schemas
from monitor.mqtt.messages import MESSAGES, Profile
from monitor.runner import StationRunner
from tests.support import mosquitto as broker_helpers
from tests.test_athletes import Log, turns_station

ROOT = Path(__file__).resolve().parents[1]
USERS = ("bench-1", "display", "integrator", "history")


def password(user: str) -> str:
    return f"pw-{user}-{user[::-1]}"


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    try:
        return broker_helpers.write_password_files(tmp_path / "secrets", USERS, password)
    except FileNotFoundError as err:
        pytest.skip(str(err))


@pytest.fixture
def broker(mosquitto_factory, secrets):
    return mosquitto_factory(broker_helpers.gym_config(secrets / "passwd"), allow_anonymous=False)


@pytest.fixture(scope="module")
def validate():
    """The committed schema of each message (with the others registered for $ref)."""
    jsonschema = pytest.importorskip("jsonschema")
    referencing = pytest.importorskip("referencing")
    loaded = {name: schemas.load(name) for name in MESSAGES}
    registry = referencing.Registry().with_resources(
        (s["$id"], referencing.Resource.from_contents(s)) for s in loaded.values()
    )

    def check(name: str, document: dict) -> dict:
        jsonschema.Draft202012Validator(loaded[name], registry=registry).validate(document)
        return document

    return check


class Client:
    """A paho client as ``user``, recording messages; it subscribes (again) on every connect."""

    def __init__(self, broker, user: str, topics=("gym/#",)):
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}"
        )
        self.client.username_pw_set(user, password(user))
        self.client.reconnect_delay_set(1, 1)
        self.subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p=None: [c.subscribe(t, qos=1) for t in topics]
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_disconnect = lambda *a: self.subscribed.clear()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_message(self, client, userdata, m):
        with self.lock:
            self.messages.append((m.topic, bytes(m.payload), bool(m.retain)))

    def payloads(self, topic: str) -> list[dict]:
        with self.lock:
            return [json.loads(p) for t, p, _ in self.messages if t == topic and p]

    def publish(self, topic: str, payload, retain: bool = False) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.client.publish(topic, data, qos=1, retain=retain).wait_for_publish(5)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def wait_until(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def mqtt_config(broker, secrets) -> MqttConfig:
    return MqttConfig(
        host=broker.host,
        port=broker.port,
        username="bench-1",
        password_file=str(secrets / "bench-1.pw"),
    )


def pace(log: Log, until: float, real_s: float = 0.002) -> Log:
    """Run the simulated station to ``until``, giving the broker real time between steps."""
    while log.clock.now() < until:
        log.run(log.clock.now() + 0.1)
        time.sleep(real_s)
    return log


# --------------------------------------------------------------------------- the profile


def test_a_known_athlete_is_graded_from_the_first_set_with_the_profile_and_its_thresholds(
    broker, secrets, tmp_path, validate
):
    runner, clock, turns = turns_station(
        tmp_path, tremor=(12.0,), mqtt=mqtt_config(broker, secrets)
    )
    athlete = runner.station.athletes.secret.athlete_id(turns.uids[0])
    truth = turns.baseline_mg(0)
    history = Client(broker, "history", topics=())
    profile = Profile(
        athlete=athlete,
        baselines_mg={"limb": truth},
        body_mass_g=71000.0,
        thresholds={"elevated_ratio": 1.5, "high_ratio": 3.0},
        updated_ts=1.0,
    )
    history.publish(f"gym/_athletes/{athlete}/profile", profile.to_json(), retain=True)
    listen = Client(broker, "integrator")
    runner.start()
    try:
        log = pace(Log(runner, clock, turns), turns.first_s + 0.7)
        checked_in = clock.now()
        # Real time for the broker while the station waits its 2 (simulated) seconds.
        pace(log, turns.first_s + 3.0, real_s=0.05)
        pace(log, turns.first_s + 10)
        rules_in_session = runner.station.rules.cfg
        pace(log, turns.first_s + turns.turn_s + 2)
    finally:
        runner.stop()
    states = [c.profile for c in log.checkins if c.athlete == athlete]
    assert states[:2] == ["pending", "applied"], states
    wait_until(
        lambda: any(p.get("profile") == "applied" for p in listen.payloads("gym/bench-1/athlete")),
        what="applied",
    )
    # Graded against the profile from the first windows on: before a fresh baseline could be
    # learnt (20 rested windows after a full window: 12.5 s), long before the first set.
    mine = [st for who, st in log.statuses if st.t > checked_in]
    graded = [st for st in mine if st.ratio is not None]
    assert graded and graded[0].t - checked_in < 4.0, graded[:1]
    assert graded[0].baseline_mg == pytest.approx(truth, rel=1e-3)
    assert all(
        st.baseline_mg == pytest.approx(truth, rel=0.05)
        for st in mine
        if st.baseline_mg is not None
    )
    # The coach's thresholds apply to the alert rules, and the wall is told which ones.
    assert (rules_in_session.elevated_ratio, rules_in_session.high_ratio) == (1.5, 3.0)
    assert runner.station.rules.cfg.elevated_ratio == 2.0  # back to the station's at check-out
    sessions = [p for p in listen.payloads("gym/bench-1/session") if p.get("active")]
    assert sessions and sessions[-1]["thresholds"] == {"elevated_ratio": 1.5, "high_ratio": 3.0}
    # The record hands the baseline back (followed slowly at rest, never jumped to fatigue).
    wait_until(lambda: listen.payloads("gym/bench-1/session_record"), what="the record")
    record = validate("session_record", listen.payloads("gym/bench-1/session_record")[0])
    assert record["athlete"] == athlete and record["end_reason"] == "tap"
    assert record["profile_update"]["baselines_mg"]["limb"] == pytest.approx(truth, rel=0.1)
    assert [s["reps"] for s in record["sets"]] == [10] and record["sets"][0]["ratio_median"]
    listen.close()
    history.close()


def test_an_athlete_without_a_profile_learns_afresh_after_the_wait(broker, secrets, tmp_path):
    runner, clock, turns = turns_station(
        tmp_path, tremor=(12.0,), mqtt=mqtt_config(broker, secrets)
    )
    runner.start()
    try:
        log = pace(Log(runner, clock, turns), turns.first_s + 4.0)
    finally:
        runner.stop()
    assert [c.profile for c in log.checkins if c.athlete] == ["pending", "fresh"]
    fresh = next(c for c in log.checkins if c.profile == "fresh")
    assert 1.9 <= fresh.ts - next(c for c in log.checkins if c.athlete).ts <= 2.6


# --------------------------------------------------------------------------- the record, durable


def test_the_record_survives_a_broker_outage_and_a_station_restart(
    broker, secrets, tmp_path, validate
):
    listen = Client(broker, "integrator", topics=("gym/bench-1/session_record",))
    runner, clock, turns = turns_station(tmp_path, tremor=(8.0,), mqtt=mqtt_config(broker, secrets))
    runner.start()
    log = pace(Log(runner, clock, turns), turns.first_s + 20)
    broker.stop()  # the broker goes away mid-session
    log.run(turns.first_s + turns.turn_s + 2)  # the athlete taps out meanwhile
    assert [r.end_reason for r in log.records] == ["tap"]
    record_id = log.records[0].id
    runner.stop()  # ... and the station is restarted
    with Outbox(runner.outbox.path) as kept:  # the record waits in the outbox's file
        assert [json.loads(m.payload)["id"] for m in kept.messages(kind="session_record")] == [
            record_id
        ]
    broker.start()
    assert listen.subscribed.wait(10)  # the listener is back before the station
    again = StationRunner(runner.config, simulate=True, clock=clock, bus=runner.bus)
    again.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not listen.payloads("gym/bench-1/session_record"):
            again.cycle()
            clock.sleep(0.1)
            time.sleep(0.01)
    finally:
        again.stop()
    records = listen.payloads("gym/bench-1/session_record")
    assert [r["id"] for r in records][:1] == [record_id]
    validate("session_record", records[0])
    assert records[0]["sets"] and records[0]["trace"]
    listen.close()


def test_sigterm_ends_the_session_with_a_shutdown_record(broker, secrets, tmp_path, validate):
    secret = tmp_path / "gym-secret"
    secret.write_text("a secret every station of this gym shares\n")
    toml = tmp_path / "monitor.toml"
    toml.write_text(f"""
[station]
id = "bench-1"
simulate = true
state_dir = "{tmp_path / "state"}"
[[imu]]
name = "wrist"
rate_hz = 250
[nfc]
[athletes]
secret_file = "{secret}"
[mqtt]
host = "{broker.host}"
port = {broker.port}
username = "bench-1"
password_file = "{secrets / "bench-1.pw"}"
""")
    listen = Client(broker, "integrator")
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "run", "--config", str(toml)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The simulated rig taps the first athlete's tag 5 s after the station starts.
        wait_until(
            lambda: any(p["athlete"] for p in listen.payloads("gym/bench-1/athlete")),
            timeout=40,
            what="a check-in",
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    _, err = proc.communicate()
    wait_until(lambda: listen.payloads("gym/bench-1/session_record"), what="the record")
    record = validate("session_record", listen.payloads("gym/bench-1/session_record")[-1])
    assert record["end_reason"] == "shutdown" and record["athlete"]
    assert listen.payloads("gym/bench-1/athlete")[-1]["athlete"] is None
    assert "Traceback" not in err


# --------------------------------------------------------------------------- commands


def test_the_display_user_checks_an_athlete_in_and_out_with_cmd_session(
    broker, secrets, tmp_path, validate
):
    runner, clock, turns = turns_station(tmp_path, tremor=(8.0,), mqtt=mqtt_config(broker, secrets))
    runner.bus.chip(0x24).tags = None
    display = Client(
        broker, "display", topics=("gym/bench-1/cmd/session/result", "gym/bench-1/athlete")
    )
    runner.start()
    try:
        log = pace(Log(runner, clock, turns), 2.0)
        display.publish(
            "gym/bench-1/cmd/session",
            {"v": 1, "action": "start", "athlete": "m-ana", "request_id": "r1"},
        )
        display.publish(
            "gym/bench-1/cmd/session",
            {"v": 1, "action": "start", "athlete": "Not An Id", "request_id": "r2"},
        )
        deadline = time.monotonic() + 20
        while (
            time.monotonic() < deadline
            and len(display.payloads("gym/bench-1/cmd/session/result")) < 2
        ):
            pace(log, clock.now() + 0.5)
        display.publish(
            "gym/bench-1/cmd/session", {"v": 1, "action": "checkout", "request_id": "r3"}
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(log.records) < 1:
            pace(log, clock.now() + 0.5)
    finally:
        runner.stop()
    results = {r["request_id"]: r for r in display.payloads("gym/bench-1/cmd/session/result")}
    assert results["r1"]["ok"] and results["r3"]["ok"]
    assert not results["r2"]["ok"] and "athlete id" in results["r2"]["error"]
    states = display.payloads("gym/bench-1/athlete")
    assert any(s["athlete"] == "m-ana" and s["source"] == "command" for s in states)
    assert states[-1]["athlete"] is None
    assert [(r.athlete, r.end_reason) for r in log.records] == [("m-ana", "command")]
    display.close()


# --------------------------------------------------------------------------- forgetting


def test_forget_clears_what_the_station_added_and_a_session_under_way_goes_on_as_a_guest(
    broker, secrets, tmp_path, validate
):
    from monitor.history.config import HistoryConfig, MqttSettings, WebSettings
    from monitor.history.service import HistoryService

    config = HistoryConfig(
        gym="leeds",
        state_dir=tmp_path / "history",
        web=WebSettings(enabled=False),
        mqtt=MqttSettings(
            host=broker.host,
            port=broker.port,
            username="history",
            password_file=str(secrets / "history.pw"),
        ),
    )
    service = HistoryService(config, reconnect_min_s=1, reconnect_max_s=1)
    service.start()
    runner, clock, turns = turns_station(
        tmp_path, tremor=(10.0,), mqtt=mqtt_config(broker, secrets)
    )
    athlete = runner.station.athletes.secret.athlete_id(turns.uids[0])
    listen = Client(broker, "integrator")
    try:
        assert service.ingest.wait_connected(10)
        service.set_display_name("leeds", athlete, "Sam")
        runner.start()
        log = pace(Log(runner, clock, turns), turns.first_s + turns.turn_s + 2)  # a first session
        wait_until(lambda: service.store.profile("leeds", athlete) is not None, what="a profile")
        pace(log, turns.period + turns.first_s + 10)  # back, profile applied
        assert runner.station.athletes.current.profile == "applied"
        before = Client(broker, "display", topics=(f"gym/_athletes/{athlete}/#",))
        wait_until(
            lambda: (
                before.payloads(f"gym/_athletes/{athlete}/card")
                and before.payloads(f"gym/_athletes/{athlete}/profile")
            ),
            what="retained",
        )
        before.close()
        service.forget("leeds", athlete)  # ... and forgotten now
        pace(log, turns.period + turns.first_s + turns.turn_s + 2)  # taps out
    finally:
        runner.stop()
    first, second = log.records
    assert first.athlete == athlete and first.profile_update is not None
    assert (second.athlete, second.guest, second.profile_update) == (None, True, None)
    assert second.end_reason == "tap"  # the same tag still checked them out
    assert any(c.guest and c.athlete is None and c.source == "tag" for c in log.checkins)
    wait_until(
        lambda: len(listen.payloads("gym/bench-1/session_record")) == 2 and service.ingest.idle(),
        what="both records stored",
    )
    validate("session_record", listen.payloads("gym/bench-1/session_record")[1])
    time.sleep(0.5)
    # Nothing about the athlete is kept: no row in any table, no retained profile or card.
    assert not service.store.knows("leeds", athlete)
    assert all(rows == [] for rows in service.store.export("leeds", athlete)["tables"].values())
    late = Client(broker, "display", topics=(f"gym/_athletes/{athlete}/#",))
    time.sleep(1.0)
    assert late.payloads(f"gym/_athletes/{athlete}/profile") == []
    assert late.payloads(f"gym/_athletes/{athlete}/card") == []
    late.close()
    listen.close()
    service.stop()
