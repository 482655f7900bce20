"""A chain of gyms: two gym brokers bridged to a central one, a central store on PostgreSQL.

Each gym's Mosquitto runs config/mosquitto/bridge.conf.example as shipped,
with only its placeholders filled in and the TLS lines dropped (the test
bridges over loopback); the central broker requires passwords and applies the
ACL the example documents for bridge users, plus a ``history`` user that reads
``chain/#``. The central history store tells the gyms apart by the topic
prefix the bridges add (``chain/<gym>/gym/...``).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from monitor.history.config import HistoryConfig, MqttSettings, WebSettings
from monitor.history.service import HistoryService
from tests.support.mosquitto import gym_config, write_password_files
from tests.support.postgres import postgres_fixture
from tests.test_history_ingest import Station, wait_until

postgres = postgres_fixture()
EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "mosquitto" / "bridge.conf.example"
GYMS = ("leeds", "york")
T0 = time.time() - 86400


def password(user: str) -> str:
    return f"pw-{user}-0123456789"


def bridge_config(gym: str, central_port: int) -> str:
    """The shipped example for ``gym``, pointed at the test's central broker without TLS."""
    text = EXAMPLE.read_text().replace("<gym-id>", gym)
    text = text.replace("central.example.org:8883", f"127.0.0.1:{central_port}")
    text = text.replace("remote_password CHANGE-ME", f"remote_password {password('bridge-' + gym)}")
    text = re.sub(r"(?m)^(bridge_cafile|bridge_insecure) .*$", "", text)
    assert "topic gym/+/session_record out 1" in text and "topic gym/+/alert out 1" in text
    return text


@pytest.fixture
def chain(mosquitto_factory, tmp_path):
    users = [f"bridge-{g}" for g in GYMS] + ["history"]
    secrets = write_password_files(tmp_path / "secrets", users, password)
    acl = tmp_path / "central.acl"
    acl.write_text(
        "".join(
            f"user bridge-{g}\ntopic write chain/{g}/#\ntopic read chain/{g}/gym/+/cmd/ack\n\n"
            for g in GYMS
        )
        + "user history\ntopic read chain/#\n"
    )
    central = mosquitto_factory(gym_config(secrets / "passwd", acl_file=acl), allow_anonymous=False)
    gyms = {g: mosquitto_factory(bridge_config(g, central.port)) for g in GYMS}
    return central, gyms, secrets


def wait_for_bridges(central, gyms, timeout=15.0):
    """Each bridge announces itself on chain/<gym>/bridge/state (notifications true)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = central.log_text()
        if all(f"bridge-{g}" in text for g in gyms):
            time.sleep(0.5)
            return
        time.sleep(0.1)
    raise AssertionError("bridges did not connect:\n" + central.log_text()[-2000:])


def test_two_gyms_bridged_into_one_central_store(chain, postgres, tmp_path):
    central, gyms, secrets = chain
    wait_for_bridges(central, gyms)
    config = HistoryConfig(
        gym="central",
        database=postgres.create_database(),
        publish_profiles=False,
        mqtt=MqttSettings(
            host=central.host,
            port=central.port,
            username="history",
            password_file=str(secrets / "history.pw"),
            chain_prefix="chain",
            client_id="history-central",
        ),
        web=WebSettings(enabled=False),
    )
    service = HistoryService(config, reconnect_min_s=1, reconnect_max_s=1)
    service.start()
    assert service.ingest.wait_connected(10)
    stations = {g: Station(gyms[g]) for g in GYMS}
    try:
        # The same station name and start time in both gyms: ids collide, gyms keep them apart.
        same = {g: stations[g].record("a1", T0) for g in GYMS}
        stations["york"].alert("bench-1:1:0001", "raised", T0 + 60)
        wait_until(lambda: service.store.counts()["sessions"] == 2, what="both gyms' records")

        service.stop()  # the central store is away; the gyms keep training
        for i in range(1, 11):
            for g in GYMS:
                stations[g].record(f"{g[0]}{i % 3}", T0 + 3600 * i)
        stations["leeds"].alert("bench-1:2:0001", "raised", T0 + 7200)
        stations["leeds"].alert("bench-1:2:0001", "acknowledged", T0 + 7300, by="Ana")

        service = HistoryService(config, reconnect_min_s=1, reconnect_max_s=1)
        service.start()
        wait_until(
            lambda: service.store.counts()["sessions"] == 22 and service.ingest.idle(),
            timeout=20,
            what="every record from both gyms",
        )
        assert service.store.gyms() == ["central", "leeds", "york"]
        for g in GYMS:
            kept = service.store.session(g, same[g]["id"])
            assert kept is not None and kept["session"]["record"] == same[g]
        per_gym = {a["gym"] for a in service.store.athletes()}
        assert per_gym == {"leeds", "york"}
        log = {(a["gym"], a["id"]): a for a in service.store.alert_log()}
        assert log[("leeds", "bench-1:2:0001")]["acknowledged_by"] == "Ana"
        assert ("york", "bench-1:1:0001") in log
        assert service.store.profiles() and service.ingest.stats().refused == 0
    finally:
        for s in stations.values():
            s.close()
        service.stop()


def test_a_bridge_may_not_write_under_another_gym(chain):
    """The central ACL from the example: leeds's bridge user cannot pose as york."""
    central, _gyms, _secrets = chain
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    got = []
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="w-chain")
    watcher.username_pw_set("history", password("history"))
    watcher.on_message = lambda c, u, m: got.append(m.topic)
    watcher.connect(central.host, central.port)
    watcher.subscribe("chain/#", qos=1)
    watcher.loop_start()
    forger = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="forger")
    forger.username_pw_set("bridge-leeds", password("bridge-leeds"))
    forger.connect(central.host, central.port)
    forger.loop_start()
    forger.publish("chain/york/gym/bench-1/session_record", b"{}", qos=1).wait_for_publish(5)
    forger.publish("chain/leeds/gym/bench-1/status", b"online", qos=1).wait_for_publish(5)
    wait_until(lambda: "chain/leeds/gym/bench-1/status" in got, what="the allowed message")
    assert "chain/york/gym/bench-1/session_record" not in got
    for c in (forger, watcher):
        c.disconnect()
        c.loop_stop()
