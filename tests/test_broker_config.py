"""The broker as a gym runs it (config/mosquitto/), attacked with valid credentials.

Each test starts a real Mosquitto (tests/support/mosquitto.py) with the shipped settings, the
shipped ACL and a password file made by mosquitto_passwd; TLS certificates come from
config/mosquitto/make-certs.sh, the script the installer runs. The clients are real
paho clients and the station's own :class:`MqttPublisher`.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from monitor.mqtt import MqttPublisher, Outbox, alert_payload, alerts_active_payload
from tests.support import mosquitto as broker_helpers
from tests.support.mosquitto import MosquittoBroker

#: Users of the shipped ACL, two stations, and "auditor": a test-only user that reads
#: everything (the shipped ACL gives nobody "#"), to see what really got through.
USERS = (
    "bench-1",
    "bench-2",
    "display",
    "operator",
    "integrator",
    "homeassistant",
    "history",
    "auditor",
)
AUDITOR_ACL = "user auditor\ntopic read #\n"
TEN_MB = 10 * 1024 * 1024


def password(user: str) -> str:
    return f"pw-{user}-{user[::-1]}"


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    try:
        return broker_helpers.write_password_files(tmp_path / "secrets", USERS, password)
    except FileNotFoundError as err:
        pytest.skip(str(err))


@pytest.fixture
def pki(tmp_path: Path) -> broker_helpers.Pki:
    try:
        return broker_helpers.make_pki(tmp_path / "pki", "localhost")
    except FileNotFoundError as err:
        pytest.skip(str(err))


@pytest.fixture
def acl(tmp_path: Path) -> Path:
    return broker_helpers.write_acl(tmp_path / "acl", AUDITOR_ACL)


@pytest.fixture
def broker(mosquitto_factory, secrets: Path, acl: Path, pki) -> MosquittoBroker:
    return mosquitto_factory(
        broker_helpers.gym_config(secrets / "passwd", acl_file=acl, pki=pki), allow_anonymous=False
    )


# --------------------------------------------------------------------------- clients


class Client:
    """A paho client that records what it receives, its CONNACKs, PUBACKs and disconnects."""

    def __init__(
        self,
        host: str,
        port: int,
        user: str | None,
        *,
        client_id: str = "",
        protocol: int = mqtt.MQTTv5,
        subscribe: tuple[str, ...] = (),
        tls_ca: Path | None = None,
        start: bool = True,
    ):
        self.messages: list[mqtt.MQTTMessage] = []
        self.connacks: list = []
        self.pubacks: dict[int, object] = {}
        self.disconnects: list = []
        self.subscribed = threading.Event()
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol
        )
        if user is not None:
            self.client.username_pw_set(user, password(user))
        if tls_ca is not None:
            self.client.tls_set(ca_certs=str(tls_ca), cert_reqs=ssl.CERT_REQUIRED)
        self.topics = subscribe
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_disconnect = lambda c, u, flags, rc, props=None: self.disconnects.append(rc)
        self.host, self.port = host, port
        if start:
            self.client.connect(host, port, keepalive=10)
            self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.connacks.append(reason_code)
        if not reason_code.is_failure and self.topics:
            client.subscribe([(t, 1) for t in self.topics])

    def _on_message(self, client, userdata, message):
        with self.lock:
            self.messages.append(message)

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        with self.lock:
            self.pubacks[mid] = reason_code

    def topics_seen(self) -> list[str]:
        with self.lock:
            return [m.topic for m in self.messages]

    def wait_connected(self, timeout: float = 5.0) -> Client:
        assert wait_until(lambda: self.client.is_connected(), timeout), f"connacks {self.connacks}"
        if self.topics:
            assert self.subscribed.wait(timeout)
        return self

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def clients() -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(*args, **kwargs) -> Client:
        c = Client(*args, **kwargs)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def station(secrets: Path, tmp_path: Path) -> Iterator[Callable[..., MqttPublisher]]:
    made: list[tuple[MqttPublisher, Outbox]] = []

    def make(host: str, port: int, station_id: str = "bench-1", **kwargs) -> MqttPublisher:
        outbox = Outbox(tmp_path / f"{station_id}-{uuid.uuid4().hex[:6]}.sqlite3")
        pub = MqttPublisher(
            station_id,
            host=host,
            port=port,
            username=station_id,
            password_file=secrets / f"{station_id}.pw",
            outbox=outbox,
            reconnect_min_s=0.2,
            reconnect_max_s=1.0,
            **kwargs,
        )
        made.append((pub, outbox))
        pub.start()
        assert wait_until(lambda: pub.connected), "the station did not connect"
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


def one_connection(
    host: str,
    port: int,
    user: str,
    client_id: str,
    *,
    tls_ca: Path | None = None,
    protocol: int = mqtt.MQTTv311,
) -> list:
    """Connect once, wait for the CONNACK (or a refusal), disconnect; the CONNACK's reason codes."""
    c = Client(host, port, user, client_id=client_id, protocol=protocol, tls_ca=tls_ca, start=False)
    try:
        c.client.connect(host, port, keepalive=10)
    except (OSError, ssl.SSLError):
        return ["connection refused"]
    c.client.loop_start()
    wait_until(lambda: c.connacks or c.disconnects, 3.0)
    c.close()
    return c.connacks


# --------------------------------------------------------------------------- the settings


def test_shipped_settings_bind_client_ids_and_cap_the_packet_size():
    settings = dict(line.split(None, 1) for line in broker_helpers.shipped_settings().splitlines())
    assert settings["use_username_as_clientid"] == "true"
    limit = int(settings["max_packet_size"])
    assert 64 * 1024 <= limit < TEN_MB
    # The largest message a station sends must fit with room to spare: every kind of alert
    # active at once, with long text and evidence.
    alerts = [
        alert_payload(
            "bench-1",
            id=f"bench-1:1732435200:{i:04d}",
            code="redflag.unexercised",
            level="urgent",
            state="raised",
            message="m" * 200,
            advice="a" * 400,
            evidence={
                "ratio": 9.99,
                "rms_mg": 123.4,
                "sensor": "left-forearm",
                "windows": list(range(20)),
            },
            sensor="left-forearm",
        )
        for i in range(40)
    ]
    largest = len(json.dumps(alerts_active_payload("bench-1", alerts)).encode())
    assert largest * 4 < limit, (largest, limit)


# --------------------------------------------------------------------------- client ids


def attack(broker: MosquittoBroker, station_client_id: str, attempts: int, pause_s: float) -> int:
    """Connect ``attempts`` times under the station's client id with other users' valid
    credentials; how many connections the broker accepted."""
    accepted = 0
    users = ("bench-2", "integrator", "operator", "homeassistant")
    for n in range(attempts):
        connacks = one_connection(
            broker.host, broker.port, users[n % len(users)], station_client_id
        )
        accepted += bool(connacks) and not getattr(connacks[0], "is_failure", True)
        time.sleep(pause_s)
    return accepted


def test_another_users_credentials_cannot_take_a_stations_client_id(broker, station, clients):
    watcher = clients(
        broker.host, broker.port, "auditor", subscribe=("gym/bench-1/status",)
    ).wait_connected()
    pub = station(broker.host, broker.port)
    assert wait_until(lambda: watcher.topics_seen())  # its retained "online"
    accepted = attack(broker, "gym-station-bench-1", attempts=27, pause_s=0.05)
    time.sleep(0.5)
    assert accepted == 27  # they may connect (as themselves) ...
    statuses = [m.payload for m in watcher.messages]
    assert b"offline" not in statuses, statuses  # ... no false "offline"
    assert pub.connected and pub.stats().connects == 1  # the station never dropped
    assert "already connected, closing old connection" not in broker.log_text()


def test_the_takeover_is_real_where_client_ids_are_not_bound(
    mosquitto_factory, secrets, acl, station, clients
):
    """The same attack against the ACL without the binding: the check above can fail."""
    unbound = broker_helpers.gym_config(secrets / "passwd", acl_file=acl).replace(
        "use_username_as_clientid true\n", ""
    )
    broker = mosquitto_factory(unbound, allow_anonymous=False)
    watcher = clients(
        broker.host, broker.port, "auditor", subscribe=("gym/bench-1/status",)
    ).wait_connected()
    pub = station(broker.host, broker.port)
    attack(broker, "gym-station-bench-1", attempts=3, pause_s=0.6)
    assert wait_until(lambda: b"offline" in [m.payload for m in watcher.messages])
    assert pub.stats().connects > 1


# --------------------------------------------------------------------------- message size


@pytest.mark.parametrize("protocol", [mqtt.MQTTv5, mqtt.MQTTv311], ids=["v5", "v311"])
def test_a_ten_megabyte_message_is_refused(broker, station, clients, protocol):
    watcher = clients(broker.host, broker.port, "auditor", subscribe=("#",)).wait_connected()
    pub = station(broker.host, broker.port)
    sender = clients(broker.host, broker.port, "bench-2", protocol=protocol).wait_connected()
    sender.client.publish("gym/bench-2/alert", b"x" * TEN_MB, qos=1)
    assert wait_until(lambda: sender.disconnects, 10), "the broker kept the sender"
    assert "disconnected due to oversize packet" in broker.log_text()
    # (paho would send it again on every reconnect: that client is done for.)
    sender.close()
    # A message under the limit from the same user still goes through ...
    again = clients(broker.host, broker.port, "bench-2", protocol=protocol).wait_connected()
    again.client.publish("gym/bench-2/alert", b"y" * 100_000, qos=1).wait_for_publish(5)
    # ... and so does the station, which never noticed.
    pub.publish_alert(
        alert_payload(
            "bench-1",
            id="bench-1:1:0001",
            code="c",
            level="info",
            state="raised",
            message="still here",
        )
    )
    assert wait_until(
        lambda: (
            "gym/bench-1/alert" in watcher.topics_seen()
            and "gym/bench-2/alert" in watcher.topics_seen()
        ),
        5,
    )
    sizes = [len(m.payload) for m in watcher.messages if m.topic == "gym/bench-2/alert"]
    assert sizes == [100_000]
    assert pub.stats().connects == 1


# --------------------------------------------------------------------------- the display's user


DISPLAY_MAY_NOT_WRITE = (
    "gym/bench-1/status",
    "gym/bench-1/tremor",
    "gym/bench-1/session",
    "gym/bench-1/hydration",
    "gym/bench-1/alert",
    "gym/bench-1/alerts/active",
    "gym/bench-1/cmd/tare",
    "gym/bench-1/cmd/calibrate",
    "gym/bench-1/cmd/weigh_in",
    "gym/bench-1/athlete",
    "gym/bench-1/session_record",
    "gym/bench-1/cmd/session/result",
    "gym/bench-1/cmd/ack/result",
    "gym/bench-1/cmd/ack/x",
    "gym/display/status",
    "gym/display/cmd/ack",
    "gym/display/alert",
    "homeassistant/status",
    "gym/_athletes/a3k7/profile",
    "gym/_athletes/a3k7/card",
    "homeassistant/sensor/display/x/config",
    "homeassistant/sensor/bench-1/x/config",
    "display/anything",
    "anything",
)


def test_the_display_user_may_publish_only_acknowledgements_and_check_ins(broker, clients):
    auditor = clients(broker.host, broker.port, "auditor", subscribe=("#",)).wait_connected()
    display = clients(broker.host, broker.port, "display").wait_connected()
    refused = {t: display.client.publish(t, b'{"v":1}', qos=1) for t in DISPLAY_MAY_NOT_WRITE}
    allowed = [
        display.client.publish("gym/bench-1/cmd/ack", b'{"v":1,"id":"x"}', qos=1),
        display.client.publish(
            "gym/bench-1/cmd/session", b'{"v":1,"action":"start","athlete":"a3k7"}', qos=1
        ),
    ]
    for info in [*refused.values(), *allowed]:
        info.wait_for_publish(3)
    assert wait_until(lambda: "gym/bench-1/cmd/session" in auditor.topics_seen())
    time.sleep(0.3)
    assert auditor.topics_seen() == ["gym/bench-1/cmd/ack", "gym/bench-1/cmd/session"]
    # MQTT v5 says so to the sender too: "Not authorized" on every refused PUBACK.
    codes = {t: display.pubacks[info.mid] for t, info in refused.items()}
    assert all(code.getName() == "Not authorized" for code in codes.values()), codes
    assert not any(display.pubacks[info.mid].is_failure for info in allowed)


def test_the_display_user_reads_what_the_wall_shows_and_no_other_commands(broker, clients):
    display = clients(broker.host, broker.port, "display", subscribe=("#",)).wait_connected()
    bench = clients(broker.host, broker.port, "bench-1").wait_connected()
    operator = clients(broker.host, broker.port, "operator").wait_connected()
    history = clients(broker.host, broker.port, "history").wait_connected()
    shown = [
        "gym/bench-1/status",
        "gym/bench-1/tremor",
        "gym/bench-1/session",
        "gym/bench-1/hydration",
        "gym/bench-1/alert",
        "gym/bench-1/alerts/active",
        "gym/bench-1/athlete",
        "gym/bench-1/cmd/ack/result",
        "gym/bench-1/cmd/session/result",
    ]
    for t in [
        *shown,
        "gym/bench-1/cmd/tare/result",
        "gym/bench-1/session_record",
        "homeassistant/sensor/bench-1/x/config",
    ]:
        bench.client.publish(t, b"{}", qos=1).wait_for_publish(3)
    cards = ["gym/_athletes/a3k7/card", "gym/_athletes/a3k7/profile"]
    for t in cards:
        history.client.publish(t, b"{}", qos=1).wait_for_publish(3)
    operator.client.publish("gym/bench-1/cmd/tare", b'{"v":1}', qos=1).wait_for_publish(3)
    assert wait_until(lambda: len(display.topics_seen()) >= len(shown) + len(cards))
    time.sleep(0.3)
    assert sorted(display.topics_seen()) == sorted(shown + cards)


# --------------------------------------------------------------------------- TLS


def test_tls_with_the_generated_ca(broker, station, clients, pki, tmp_path):
    assert broker.tls_port
    # The station checks the broker against the gym's CA and the name it dials.
    live = clients(broker.host, broker.port, "display", subscribe=("gym/bench-1/alert",))
    live.wait_connected()
    pub = station("localhost", broker.tls_port, tls_ca=str(pki.ca))
    pub.publish_alert(
        alert_payload(
            "bench-1",
            id="bench-1:1:0001",
            code="c",
            level="info",
            state="raised",
            message="over TLS",
        )
    )
    assert wait_until(lambda: live.topics_seen() == ["gym/bench-1/alert"])
    assert "over TLS" in live.messages[0].payload.decode()


def test_plain_mqtt_on_the_tls_port_gets_nowhere(broker):
    assert one_connection(broker.host, broker.tls_port, "bench-2", "plain") == []


def test_tls_clients_refuse_a_broker_their_ca_did_not_sign_or_a_name_it_does_not_cover(
    broker, pki, tmp_path
):
    other = broker_helpers.make_pki(tmp_path / "other", "localhost")
    assert one_connection("localhost", broker.tls_port, "bench-2", "x", tls_ca=other.ca) == [
        "connection refused"
    ]
    # The certificate names "localhost" only: dialling the address is a name mismatch.
    assert one_connection("127.0.0.1", broker.tls_port, "bench-2", "x", tls_ca=pki.ca) == [
        "connection refused"
    ]
    ok = one_connection("localhost", broker.tls_port, "bench-2", "x", tls_ca=pki.ca)
    assert ok and not ok[0].is_failure


def test_the_shipped_mosquitto_conf_runs_as_installed(secrets, tmp_path):
    """config/mosquitto/mosquitto.conf itself, its /etc/mosquitto paths laid out under a folder."""
    if broker_helpers.find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    etc = tmp_path / "root" / "etc" / "mosquitto"
    pki = broker_helpers.make_pki(etc, "localhost")
    assert pki.cert == etc / "certs" / "broker.crt"
    (etc / "gym.passwd").write_bytes((secrets / "passwd").read_bytes())
    (etc / "gym.acl").write_bytes(broker_helpers.SHIPPED_ACL.read_bytes())
    port, tls_port = broker_helpers.free_port(), broker_helpers.free_port()
    text = broker_helpers.localize(
        broker_helpers.SHIPPED_CONF.read_text(),
        root=tmp_path / "root",
        port=port,
        tls_port=tls_port,
    )
    with MosquittoBroker(tmp_path / "run", config=text, port=port) as broker:
        assert broker.tls_port == tls_port
        assert (
            one_connection(broker.host, port, None, "anon") != []
            and one_connection(broker.host, port, None, "anon")[0].is_failure
        )
        ok = one_connection("localhost", tls_port, "display", "x", tls_ca=pki.ca)
        assert ok and not ok[0].is_failure
        assert one_connection(broker.host, tls_port, "display", "x") == []


# ------------------------------------------------------------------ athletes' profiles and cards


ATHLETE_TOPICS = ("gym/_athletes/a3k7/profile", "gym/_athletes/a3k7/card")


def test_only_the_history_user_writes_athletes_profiles_and_cards(broker, clients):
    auditor = clients(broker.host, broker.port, "auditor", subscribe=("#",)).wait_connected()
    refused = {}
    for user in ("bench-1", "display", "operator", "integrator", "homeassistant"):
        c = clients(broker.host, broker.port, user).wait_connected()
        for topic in (*ATHLETE_TOPICS, "gym/_athletes/cmd/ack", "gym/_athletes/cmd/session"):
            refused[(user, topic)] = (c, c.client.publish(topic, b'{"v":1}', qos=1, retain=True))
    history = clients(broker.host, broker.port, "history").wait_connected()
    allowed = [history.client.publish(t, b'{"v":1}', qos=1, retain=True) for t in ATHLETE_TOPICS]
    for _, info in refused.values():
        info.wait_for_publish(3)
    for info in allowed:
        info.wait_for_publish(3)
    assert wait_until(lambda: len(auditor.topics_seen()) >= 2)
    time.sleep(0.3)
    # The display and Home Assistant may send cmd/<name> to any "+": a made-up station "_athletes"
    # that nobody listens to; never a profile or a card.
    written = [t for t in auditor.topics_seen() if t in ATHLETE_TOPICS]
    assert sorted(written) == sorted(ATHLETE_TOPICS)
    assert not any(
        t.endswith(("/profile", "/card")) and t.count("/") != 3 for t in auditor.topics_seen()
    )
    for (user, topic), (c, info) in refused.items():
        if topic in ATHLETE_TOPICS:
            assert c.pubacks[info.mid].getName() == "Not authorized", (user, topic)
    assert not any(history.pubacks[info.mid].is_failure for info in allowed)


def test_stations_read_profiles_the_display_reads_cards_integrators_and_ha_read_neither(
    broker, clients
):
    history = clients(broker.host, broker.port, "history").wait_connected()
    for topic in ATHLETE_TOPICS:
        history.client.publish(topic, b'{"v":1}', qos=1, retain=True).wait_for_publish(3)
    readers = {
        user: clients(
            broker.host, broker.port, user, subscribe=("gym/#", "gym/_athletes/+/profile")
        ).wait_connected()
        for user in ("bench-1", "display", "operator", "integrator", "homeassistant", "history")
    }
    assert wait_until(lambda: len(readers["display"].topics_seen()) >= 2)
    time.sleep(0.5)  # retained messages come at once on subscribing: anything else is not coming
    seen = {
        user: sorted({t for t in c.topics_seen() if t.startswith("gym/_athletes/")})
        for user, c in readers.items()
    }
    assert seen == {
        "bench-1": ["gym/_athletes/a3k7/profile"],
        "display": sorted(ATHLETE_TOPICS),
        "operator": [],
        "integrator": [],
        "homeassistant": [],
        "history": sorted(ATHLETE_TOPICS),
    }


def test_the_history_user_reads_what_stations_publish_and_writes_nothing_of_theirs(broker, clients):
    history = clients(broker.host, broker.port, "history", subscribe=("gym/#",)).wait_connected()
    bench = clients(broker.host, broker.port, "bench-1").wait_connected()
    station_topics = [
        "gym/bench-1/session_record",
        "gym/bench-1/athlete",
        "gym/bench-1/alert",
        "gym/bench-1/tremor",
    ]
    for t in station_topics:
        bench.client.publish(t, b"{}", qos=1).wait_for_publish(3)
    infos = {
        t: history.client.publish(t, b"{}", qos=1)
        for t in (
            "gym/bench-1/session_record",
            "gym/bench-1/cmd/session",
            "gym/history/status",
            "homeassistant/status",
        )
    }
    for info in infos.values():
        info.wait_for_publish(3)
    assert wait_until(lambda: len(history.topics_seen()) >= len(station_topics))
    time.sleep(0.3)
    assert sorted(history.topics_seen()) == sorted(station_topics)
    assert all(history.pubacks[i.mid].getName() == "Not authorized" for i in infos.values())


def test_the_ids_no_station_may_take_are_the_acls_service_users():
    """config.py refuses these station ids; the ACL is where they are given their rights."""
    from monitor.mqtt.topics import SERVICE_USERS
    from tests.support.mosquitto import SHIPPED_ACL

    users = {
        line.split()[1] for line in SHIPPED_ACL.read_text().splitlines() if line.startswith("user ")
    }
    assert users == SERVICE_USERS
