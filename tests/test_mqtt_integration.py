"""The station's MQTT layer against a real Mosquitto with the repo's own ACL.

Each test starts Mosquitto (tests/support/mosquitto.py) on a free port with
``config/mosquitto/acl`` and a password file made by ``mosquitto_passwd -b``
in a temporary directory, and talks to it with real paho clients: the
station's :class:`MqttPublisher`, and subscribers logged in as the display,
an operator, an integrator or Home Assistant. Unclean exits are real too: a
station runs as a subprocess and is SIGKILLed.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from monitor.mqtt import (
    MqttPublisher,
    Outbox,
    StationInfo,
    alert_payload,
    alerts_active_payload,
    discovery_messages,
    hydration_payload,
    load_schema,
    session_payload,
    tremor_payload,
)
from monitor.mqtt.commands import Calibrate, Tare
from monitor.mqtt.topics import Topics
from tests.support import mosquitto as broker_helpers
from tests.support.mosquitto import MosquittoBroker, password

ROOT = Path(__file__).resolve().parents[1]
ACL = broker_helpers.SHIPPED_ACL
# ``secrets``: a password file for broker_helpers.USERS (a fixture of tests/support/mosquitto.py).


BrokerMaker = Callable[..., MosquittoBroker]


@pytest.fixture
def make_broker(mosquitto_factory, secrets: Path, tmp_path: Path) -> BrokerMaker:
    def make(*, persistence: bool = False) -> MosquittoBroker:
        extra = broker_helpers.gym_config(secrets / "passwd", acl_file=ACL)  # as shipped
        if persistence:
            store = tmp_path / f"store-{uuid.uuid4().hex[:6]}"
            store.mkdir()
            extra += f"persistence true\npersistence_location {store}/\nautosave_interval 1\n"
        return mosquitto_factory(extra, allow_anonymous=False)

    return make


@pytest.fixture
def broker(make_broker: BrokerMaker) -> MosquittoBroker:
    return make_broker()


@pytest.fixture(scope="module")
def validate() -> Callable[[str, bytes], dict]:
    jsonschema = pytest.importorskip("jsonschema")  # the [test] extra
    referencing = pytest.importorskip("referencing")
    schemas = {
        n: load_schema(n)
        for n in ("tremor", "session", "hydration", "alert", "alerts_active", "cmd_result")
    }
    registry = referencing.Registry().with_resources(
        (s["$id"], referencing.Resource.from_contents(s)) for s in schemas.values()
    )

    def check(name: str, payload: bytes) -> dict:
        data = json.loads(payload)
        jsonschema.Draft202012Validator(schemas[name], registry=registry).validate(data)
        return data

    return check


# --------------------------------------------------------------------------- helpers


class Listener:
    """A paho subscriber that records everything it receives."""

    def __init__(
        self,
        broker: MosquittoBroker,
        user: str | None,
        topics: list[str],
        *,
        persistent: bool = False,
        client_id: str | None = None,
    ):
        self.topics = topics
        self.messages: list[mqtt.MQTTMessage] = []
        self.cond = threading.Condition()
        self.subscribed = threading.Event()
        self.connect_results: list = []
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            protocol=mqtt.MQTTv5,
            client_id=client_id or f"test-{uuid.uuid4().hex[:8]}",
        )
        if user is not None:
            self.client.username_pw_set(user, password(user))
        self.client.reconnect_delay_set(0.2, 1)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        props = None
        if persistent:  # keep the session (and queue QoS 1 for us) while we are away
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
        self.client.connect_async(
            broker.host, broker.port, keepalive=10, clean_start=not persistent, properties=props
        )
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.connect_results.append(reason_code)
        if not reason_code.is_failure and self.topics:
            client.subscribe([(t, 1) for t in self.topics])

    def _on_message(self, client, userdata, message):
        with self.cond:
            self.messages.append(message)
            self.cond.notify_all()

    def wait_subscribed(self, timeout: float = 5.0) -> Listener:
        assert self.subscribed.wait(timeout), (
            f"not subscribed; connect results {self.connect_results}"
        )
        return self

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.1))
        return True

    def on(self, topic: str) -> list[bytes]:
        with self.cond:
            return [m.payload for m in self.messages if m.topic == topic]

    def clear(self) -> None:
        with self.cond:
            self.messages.clear()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def listeners() -> Iterator[Callable[..., Listener]]:
    made: list[Listener] = []

    def make(*args, **kwargs) -> Listener:
        listener = Listener(*args, **kwargs)
        made.append(listener)
        return listener

    yield make
    for listener in made:
        listener.close()


@pytest.fixture
def stations(secrets: Path, tmp_path: Path) -> Iterator[Callable[..., MqttPublisher]]:
    made: list[tuple[MqttPublisher, Outbox]] = []

    def make(
        broker: MosquittoBroker,
        station: str = "bench-1",
        *,
        user: str | None = None,
        outbox_path: Path | None = None,
        connect: bool = True,
        **kwargs,
    ) -> MqttPublisher:
        user = user or station
        outbox = Outbox(outbox_path or tmp_path / f"{station}-{uuid.uuid4().hex[:6]}.sqlite3")
        kwargs.setdefault("reconnect_min_s", 0.2)
        kwargs.setdefault("reconnect_max_s", 1.0)
        pub = MqttPublisher(
            station,
            host=broker.host,
            port=broker.port,
            username=user,
            password_file=secrets / f"{user}.pw",
            outbox=outbox,
            **kwargs,
        )
        made.append((pub, outbox))
        pub.start()
        if connect:
            assert wait_until(lambda: pub.connected), "station did not connect"
        return pub

    yield make
    for pub, outbox in made:
        pub.close(timeout=1.0)
        outbox.close()


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def alert(station: str, i: int, **over) -> dict:
    return (
        alert_payload(
            station,
            id=f"{station}:1732435200:{i:04d}",
            code="tremor.high",
            level="warning",
            state="raised",
            message=f"alert {i}",
            advice="Rest longer",
            evidence={"i": i},
        )
        | over
    )


def alert_ids(listener: Listener, topic: str) -> list[str]:
    return [json.loads(p)["id"] for p in listener.on(topic)]


STATION_SCRIPT = textwrap.dedent("""
    import sys, time
    from monitor.mqtt import MqttPublisher, Outbox, alert_payload
    port, pwfile, outbox_path, mode, first, count = sys.argv[1:7]
    outbox = Outbox(outbox_path)
    pub = MqttPublisher("bench-1", host="127.0.0.1", port=int(port), username="bench-1",
                        password_file=pwfile, outbox=outbox, reconnect_min_s=0.2,
                        reconnect_max_s=1.0).start()
    if mode == "online":
        while not pub.connected:
            time.sleep(0.02)
        print("online", flush=True)
    for i in range(int(first), int(first) + int(count)):
        pub.publish_alert(alert_payload("bench-1", id=f"k{i:04d}", code="c", level="info",
                                        state="raised", message="m"))
        print(f"stored k{i:04d}", flush=True)
        time.sleep(0.005)
    print("done", flush=True)
    time.sleep(60)
""")


def station_process(
    broker: MosquittoBroker, secrets: Path, outbox_path: Path, mode: str, count: int, first: int = 0
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            STATION_SCRIPT,
            str(broker.port),
            str(secrets / "bench-1.pw"),
            str(outbox_path),
            mode,
            str(first),
            str(count),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def read_until(proc: subprocess.Popen[str], last: str, timeout: float = 10.0) -> list[str]:
    """Lines of the station's stdout up to and including ``last``."""
    lines: list[str] = []
    done = threading.Event()

    def reader():
        for line in proc.stdout:
            lines.append(line.strip())
            if line.strip() == last:
                break
        done.set()

    threading.Thread(target=reader, daemon=True).start()
    if not done.wait(timeout):
        proc.kill()
        raise AssertionError(
            f"station never said {last!r}; said {lines[-5:]}, stderr {proc.stderr.read()[-2000:]}"
        )
    return lines


# --------------------------------------------------------------------------- the contract


def test_subscribers_see_retained_state_and_events(broker, stations, listeners, validate):
    t = Topics("gym", "bench-1")
    live = listeners(broker, "display", ["gym/#"]).wait_subscribed()
    pub = stations(broker, discovery=StationInfo("bench-1", sensors=("wrist",)))
    pub.publish_state(
        "session", session_payload("bench-1", state="reps", active=True, set_count=2, rep_count=7)
    )
    pub.publish_state("hydration", hydration_payload("bench-1", mode="bottle", mass_g=612.0))
    pub.publish_active_alerts(alerts_active_payload("bench-1", [alert("bench-1", 1)]))
    pub.publish_alert(alert("bench-1", 1))
    assert wait_until(lambda: pub.outbox.pending == 0), "outbox did not drain"
    assert pub.publish_tremor(
        tremor_payload("bench-1", sensor="wrist", rms_mg=12.0, ratio=1.5, window_s=2.5)
    )
    assert live.wait_for(lambda: live.on(t.tremor))
    assert validate("tremor", live.on(t.tremor)[0])["sensor"] == "wrist"
    assert validate("alert", live.on(t.alert)[0])["id"] == "bench-1:1732435200:0001"

    # A subscriber that arrives later gets the retained picture at once.
    late = listeners(broker, "integrator", ["gym/bench-1/#"]).wait_subscribed()
    assert late.wait_for(
        lambda: all(late.on(x) for x in (t.status, t.session, t.hydration, t.alerts_active))
    )
    retained = {m.topic for m in late.messages if m.retain}
    assert {t.status, t.session, t.hydration, t.alerts_active} <= retained
    assert t.alert not in retained and t.tremor not in retained
    assert late.on(t.status) == [b"online"]
    assert validate("session", late.on(t.session)[0])["set_count"] == 2
    assert validate("hydration", late.on(t.hydration)[0])["mass_g"] == 612.0
    active = validate("alerts_active", late.on(t.alerts_active)[0])
    assert [a["id"] for a in active["alerts"]] == ["bench-1:1732435200:0001"]
    assert pub.outbox.stats().acked == {
        "session": 1,
        "hydration": 1,
        "alerts_active": 1,
        "alert": 1,
    }


def test_mqtt_311_station(broker, stations, listeners):
    t = Topics("gym", "bench-2")
    live = listeners(broker, "display", ["gym/bench-2/#"]).wait_subscribed()
    pub = stations(broker, "bench-2", protocol="v311")
    pub.publish_alert(alert("bench-2", 1))
    pub.publish_state("session", session_payload("bench-2", state="idle"))
    assert live.wait_for(lambda: live.on(t.alert) and live.on(t.session))
    assert wait_until(lambda: pub.outbox.pending == 0)
    pub.close()
    assert live.wait_for(lambda: live.on(t.status)[-1:] == [b"offline"])


def test_tremor_is_dropped_not_queued_while_offline(broker, stations, listeners):
    pub = stations(broker)
    broker.stop()
    assert wait_until(lambda: not pub.connected)
    sample = tremor_payload("bench-1", sensor="wrist", rms_mg=5.0, window_s=2.5)
    assert pub.publish_tremor(sample) is False
    assert pub.stats().tremor_dropped == 1 and pub.outbox.pending == 0
    broker.start()
    live = listeners(broker, "display", ["gym/bench-1/tremor"]).wait_subscribed()
    assert wait_until(lambda: pub.connected)
    assert not live.wait_for(lambda: live.messages, timeout=0.5)  # the old value never comes


def test_clean_close_leaves_retained_offline(broker, stations, listeners):
    pub = stations(broker)
    pub.publish_alert(alert("bench-1", 1))
    pub.close()
    assert pub.outbox.pending == 0, "close() should flush the outbox while connected"
    seen = listeners(broker, "display", ["gym/bench-1/status"]).wait_subscribed()
    assert seen.wait_for(lambda: seen.on("gym/bench-1/status") == [b"offline"])
    assert "disconnected" in broker.log_text().lower()


def test_sigkilled_station_gets_its_will(broker, secrets, listeners, tmp_path):
    status = listeners(broker, "display", ["gym/bench-1/status"]).wait_subscribed()
    proc = station_process(broker, secrets, tmp_path / "outbox.sqlite3", "online", 0)
    try:
        read_until(proc, "online")
        assert status.wait_for(lambda: status.on("gym/bench-1/status")[-1:] == [b"online"])
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        assert status.wait_for(
            lambda: status.on("gym/bench-1/status")[-1:] == [b"offline"], timeout=5
        ), status.on("gym/bench-1/status")
    finally:
        proc.kill()
        proc.wait(5)
    # and it is retained, for whoever looks next
    later = listeners(broker, "integrator", ["gym/bench-1/status"]).wait_subscribed()
    assert later.wait_for(lambda: later.on("gym/bench-1/status") == [b"offline"])


# --------------------------------------------------------------------------- never lose an alert


def test_no_alert_lost_across_broker_restarts(make_broker, stations, listeners):
    broker = make_broker(persistence=True)  # keeps the subscriber's session over a restart
    topic = "gym/bench-1/alert"
    sub = listeners(
        broker, "display", [topic], persistent=True, client_id="test-alert-counter"
    ).wait_subscribed()
    pub = stations(broker)
    n = 150
    restarts = {40: 0.6, 90: 1.0}  # after alert i, the broker goes down for s seconds
    for i in range(n):
        pub.publish_alert(alert("bench-1", i))
        if i in restarts:
            broker.stop()
        if i - 10 in restarts:  # some alerts are raised while it is down
            time.sleep(restarts[i - 10])
            broker.start()
        time.sleep(0.01)
    expected = {f"bench-1:1732435200:{i:04d}" for i in range(n)}
    got_all = sub.wait_for(lambda: set(alert_ids(sub, topic)) >= expected, timeout=20)
    ids = alert_ids(sub, topic)
    missing = expected - set(ids)
    assert got_all and not missing, f"missing {len(missing)}: {sorted(missing)[:10]}"
    duplicates = len(ids) - len(set(ids))
    assert duplicates <= 2 * pub.outbox.max_inflight, duplicates
    assert wait_until(lambda: pub.outbox.pending == 0)
    first_seen = sorted(set(ids), key=ids.index)
    assert first_seen == sorted(expected), "alerts arrived out of order"


def test_reconnect_republishes_retained_state(broker, stations, listeners):
    """A broker restarted without persistence has forgotten retained messages."""
    pub = stations(broker)
    pub.publish_state("session", session_payload("bench-1", state="hold", set_count=4))
    assert wait_until(lambda: pub.outbox.pending == 0)
    broker.stop()
    broker.start()
    assert wait_until(lambda: pub.connected, timeout=5)
    late = listeners(broker, "display", ["gym/bench-1/session", "gym/bench-1/status"])
    late.wait_subscribed()
    assert late.wait_for(lambda: late.on("gym/bench-1/session") and late.on("gym/bench-1/status"))
    assert json.loads(late.on("gym/bench-1/session")[0])["set_count"] == 4
    assert late.on("gym/bench-1/status") == [b"online"]


def test_sigkilled_station_replays_its_outbox(broker, secrets, stations, listeners, tmp_path):
    topic = "gym/bench-1/alert"
    sub = listeners(broker, "display", [topic]).wait_subscribed()
    path = tmp_path / "outbox.sqlite3"
    # Part 1: killed mid-stream while connected (some alerts in flight, unacknowledged).
    proc = station_process(broker, secrets, path, "online", 400)
    try:
        lines = read_until(proc, "stored k0080")
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
    finally:
        proc.kill()
        proc.wait(5)
    raised = {line.split()[1] for line in lines if line.startswith("stored ")}
    # Part 2: the broker is down; the station stores alerts, then is killed.
    broker.stop()
    proc = station_process(broker, secrets, path, "offline", 30, first=1000)
    try:
        lines = read_until(proc, "done")
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
    finally:
        proc.kill()
        proc.wait(5)
    raised |= {line.split()[1] for line in lines if line.startswith("stored ")}
    assert len(raised) >= 80 + 30
    with Outbox(path) as leftover:
        assert leftover.pending >= 30  # part 2's alerts at least, waiting in the file

    sub.subscribed.clear()
    broker.start()
    sub.wait_subscribed()  # (no persistence: it must subscribe again)
    pub = stations(broker, outbox_path=path)  # the restarted station, same outbox file
    assert sub.wait_for(lambda: set(alert_ids(sub, topic)) >= raised, timeout=10), (
        f"missing {sorted(raised - set(alert_ids(sub, topic)))[:10]}"
    )
    assert wait_until(lambda: pub.outbox.pending == 0)
    assert sum(pub.outbox.stats().resent.values()) >= 30


# --------------------------------------------------------------------------- access control


def test_acl_keeps_a_station_to_its_own_topics(broker, listeners):
    # (one connection per user: the display below logs in too)
    seen = listeners(broker, "operator", ["gym/#"]).wait_subscribed()
    rogue = listeners(broker, "bench-1", [])
    assert wait_until(lambda: rogue.client.is_connected())
    refused = rogue.client.publish("gym/bench-2/alert", b'{"fake":true}', qos=1)
    own = rogue.client.publish("gym/bench-1/alert", b'{"real":true}', qos=1)
    refused.wait_for_publish(3)
    own.wait_for_publish(3)
    assert seen.wait_for(lambda: seen.on("gym/bench-1/alert"))
    time.sleep(0.2)
    assert seen.on("gym/bench-2/alert") == []
    # the integrator is read-only, the display may only acknowledge
    integrator = listeners(broker, "integrator", [])
    display = listeners(broker, "display", [])
    assert wait_until(lambda: integrator.client.is_connected() and display.client.is_connected())
    integrator.client.publish("gym/bench-1/cmd/tare", b'{"v":1}', qos=1).wait_for_publish(3)
    display.client.publish("gym/bench-1/cmd/tare", b'{"v":1}', qos=1).wait_for_publish(3)
    display.client.publish("gym/display/status", b"online", qos=1).wait_for_publish(3)
    display.client.publish("gym/bench-1/cmd/ack", b'{"v":1,"id":"x"}', qos=1).wait_for_publish(3)
    assert seen.wait_for(lambda: seen.on("gym/bench-1/cmd/ack"))
    time.sleep(0.2)
    assert seen.on("gym/bench-1/cmd/tare") == [] and seen.on("gym/display/status") == []


def test_station_logged_in_as_another_keeps_its_refused_alert(broker, stations, caplog):
    pub = stations(broker, "bench-1", user="bench-2")  # misconfigured: wrong user name
    pub.publish_alert(alert("bench-1", 1))
    assert wait_until(
        lambda: any("refused gym/bench-1/alert" in r.getMessage() for r in caplog.records)
    )
    assert pub.outbox.pending == 1  # never lose an alert


@pytest.mark.parametrize("user, secret", [(None, None), ("bench-1", "wrong"), ("nobody", "x")])
def test_broker_refuses_unknown_clients(broker, user, secret):
    results: list = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if user:
        client.username_pw_set(user, secret)
    client.on_connect = lambda c, u, f, rc, p: results.append(rc)
    client.connect(broker.host, broker.port, keepalive=10)
    deadline = time.monotonic() + 3
    while not results and time.monotonic() < deadline:
        client.loop(0.1)
    client.disconnect()
    assert results and results[0].is_failure
    assert results[0].getName() in ("Not authorized", "Bad user name or password")


def test_station_reports_a_refused_login(broker, secrets, tmp_path, caplog):
    bad = tmp_path / "wrong.pw"
    bad.write_text("not-the-password\n")
    with Outbox(tmp_path / "o.sqlite3") as outbox:
        pub = MqttPublisher(
            "bench-1",
            host=broker.host,
            port=broker.port,
            username="bench-1",
            password_file=bad,
            outbox=outbox,
        ).start()
        try:
            assert wait_until(
                lambda: any("refused the connection" in r.getMessage() for r in caplog.records)
            )
            assert not pub.connected
        finally:
            pub.close(timeout=0.5)


def test_missing_password_file_names_it(tmp_path):
    from monitor.errors import ConfigError

    with (
        Outbox(tmp_path / "o.sqlite3") as outbox,
        pytest.raises(ConfigError, match=r"nope\.pw: no such file"),
    ):
        MqttPublisher(
            "bench-1",
            host="127.0.0.1",
            username="bench-1",
            password_file=tmp_path / "nope.pw",
            outbox=outbox,
        )


# --------------------------------------------------------------------------- commands


def test_commands_are_answered_and_bad_ones_do_not_hurt(broker, stations, listeners, validate):
    t = Topics("gym", "bench-1")
    calls: list = []

    def on_command(command):
        calls.append(command)
        if isinstance(command, Calibrate) and command.mass_g > 10_000:
            return "no such mass fits on this scale"
        if isinstance(command, Tare) and command.request_id == "boom":
            raise RuntimeError("scale not answering")
        return None

    results = listeners(broker, "integrator", ["gym/bench-1/cmd/#", t.alert]).wait_subscribed()
    pub = stations(broker, on_command=on_command)
    op = listeners(broker, "operator", [])
    assert wait_until(lambda: op.client.is_connected())

    def send(name: str, payload: bytes) -> dict:
        before = len(results.on(t.cmd_result(name)))
        op.client.publish(t.cmd(name), payload, qos=1)
        assert results.wait_for(lambda: len(results.on(t.cmd_result(name))) > before), name
        return validate("cmd_result", results.on(t.cmd_result(name))[-1])

    bad = send("calibrate", b'{"v":1,"mass_g":"heavy","request_id":"r1"}')
    assert bad["ok"] is False and "mass_g" in bad["error"] and bad["request_id"] == "r1"
    assert send("tare", b"\xff not json")["ok"] is False
    assert send("session", b'{"v":1,"action":"start","sudo":true}')["error"].startswith(
        "unknown key"
    )
    assert "unknown command" in send("reboot", b'{"v":1}')["error"]
    assert calls == []

    good = send("calibrate", b'{"v":1,"mass_g":1000,"request_id":"r2"}')
    assert good == good | {"ok": True, "error": None, "request_id": "r2", "station": "bench-1"}
    refused = send("calibrate", b'{"v":1,"mass_g":20000}')
    assert refused["ok"] is False and refused["error"] == "no such mass fits on this scale"
    crashed = send("tare", b'{"v":1,"request_id":"boom"}')
    assert crashed["ok"] is False and "scale not answering" in crashed["error"]
    assert [type(c).__name__ for c in calls] == ["Calibrate", "Calibrate", "Tare"]

    # The display's acknowledgement arrives as a command too.
    display = listeners(broker, "display", [])
    assert wait_until(lambda: display.client.is_connected())
    display.client.publish(t.cmd("ack"), b'{"v":1,"id":"bench-1:1:0001","by":"display"}', qos=1)
    assert results.wait_for(lambda: results.on(t.cmd_result("ack")))
    assert calls[-1].id == "bench-1:1:0001" and calls[-1].by == "display"

    # Our own replies (cmd/<name>/result) are not taken for commands: cmd/+ is one level.
    time.sleep(0.3)
    assert len(calls) == 4
    assert not any(m.topic.endswith("/result/result") for m in results.messages)
    # ... and the station carries on.
    pub.publish_alert(alert("bench-1", 9))
    assert results.wait_for(lambda: results.on(t.alert))
    assert pub.stats().commands_rejected == 4


def test_retained_commands_are_not_run(broker, stations, listeners):
    calls: list = []
    op = listeners(broker, "operator", [])
    assert wait_until(lambda: op.client.is_connected())
    op.client.publish("gym/bench-1/cmd/tare", b'{"v":1}', qos=1, retain=True).wait_for_publish(3)
    stations(broker, on_command=calls.append)
    time.sleep(0.5)
    assert calls == []


# --------------------------------------------------------------------------- Home Assistant


def test_discovery_configs_appear_and_are_republished(broker, stations, listeners):
    info = StationInfo("bench-1", name="Bench 1", sensors=("wrist",), hydration=True)
    expected = dict(discovery_messages(Topics("gym", "bench-1"), info))
    ha = listeners(broker, "homeassistant", ["homeassistant/+/bench-1/+/config"]).wait_subscribed()
    stations(broker, discovery=info)
    assert ha.wait_for(lambda: len({m.topic for m in ha.messages}) == len(expected))
    assert {m.topic: m.payload for m in ha.messages} == expected

    # Home Assistant restarts and announces itself: the configs come again.
    ha.clear()
    ha.client.publish("homeassistant/status", b"online", qos=1).wait_for_publish(3)
    assert ha.wait_for(lambda: len({m.topic for m in ha.messages}) == len(expected))
    # and a newcomer finds them retained (after the first is gone: one connection per user)
    ha.close()
    late = listeners(broker, "homeassistant", ["homeassistant/#"]).wait_subscribed()
    assert late.wait_for(lambda: {m.topic for m in late.messages if m.retain} >= set(expected))


def test_station_cannot_write_another_stations_discovery(broker, listeners):
    ha = listeners(broker, "homeassistant", ["homeassistant/#"]).wait_subscribed()
    rogue = listeners(broker, "bench-1", [])
    assert wait_until(lambda: rogue.client.is_connected())
    rogue.client.publish("homeassistant/sensor/bench-2/x/config", b"{}", qos=1).wait_for_publish(3)
    rogue.client.publish("homeassistant/status", b"offline", qos=1).wait_for_publish(3)
    rogue.client.publish("homeassistant/sensor/bench-1/x/config", b"{}", qos=1).wait_for_publish(3)
    assert ha.wait_for(lambda: ha.on("homeassistant/sensor/bench-1/x/config"))
    time.sleep(0.2)
    assert [m.topic for m in ha.messages] == ["homeassistant/sensor/bench-1/x/config"]


# --------------------------------------------------------------------------- shipped config


# The shipped mosquitto.conf itself (TLS listener included) is started by
# tests/test_broker_config.py::test_the_shipped_mosquitto_conf_runs_as_installed.


def test_station_over_tls_with_the_gyms_own_ca(
    mosquitto_factory, secrets, stations, tmp_path, listeners
):
    """The README's TLS recipe: a gym CA, a broker certificate, stations given only the CA."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    pki = tmp_path / "pki"
    pki.mkdir()

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, cwd=pki)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=Test gym CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "broker.key",
        "-out",
        "broker.csr",
    )
    (pki / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run(
        "x509",
        "-req",
        "-in",
        "broker.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "broker.crt",
    )
    tls_port = broker_helpers.free_port()
    broker = mosquitto_factory(
        f"password_file {secrets / 'passwd'}\nacl_file {ACL}\n"
        f"listener {tls_port} 127.0.0.1\ncafile {pki / 'ca.crt'}\n"
        f"certfile {pki / 'broker.crt'}\nkeyfile {pki / 'broker.key'}\n",
        allow_anonymous=False,
    )
    live = listeners(broker, "display", ["gym/bench-1/alert"]).wait_subscribed()  # plain port

    class TlsBroker:
        host, port = broker.host, tls_port

    pub = stations(TlsBroker, tls_ca=str(pki / "ca.crt"))
    pub.publish_alert(alert("bench-1", 1))
    assert live.wait_for(lambda: live.on("gym/bench-1/alert"))
