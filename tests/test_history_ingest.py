"""The history service against a real Mosquitto: persistent session, nothing lost, profiles.

Stations are plain paho clients publishing the contract's payloads (session
records built by monitor.history.synthetic); the service is the real one,
in process, on SQLite in a temporary directory.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from monitor.history import schema, synthetic
from monitor.history.config import HistoryConfig, MqttSettings, WebSettings
from monitor.history.service import HistoryService
from monitor.mqtt.messages import TremorLevel
from monitor.mqtt.messages.homeassistant import SensorSummary

REPO = Path(__file__).resolve().parents[1]
T0 = time.time() - 30 * 86400


def make_config(broker, tmp_path, **kw) -> HistoryConfig:
    return HistoryConfig(
        gym="leeds",
        state_dir=tmp_path / "state",
        mqtt=MqttSettings(
            host=broker.host, port=broker.port, client_id=kw.pop("client_id", "history-test")
        ),
        web=WebSettings(enabled=False),
        **kw,
    )


class Station:
    """A paho client publishing like a station (QoS 1 for records and alerts)."""

    def __init__(self, broker, station="bench-1"):
        self.id = station
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"st-{uuid.uuid4().hex[:8]}"
        )
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def send(self, kind, payload, qos=1, retain=False):
        data = payload if isinstance(payload, bytes) else json.dumps(payload)
        info = self.client.publish(f"gym/{self.id}/{kind}", data, qos=qos, retain=retain)
        if qos:
            info.wait_for_publish(5)

    def record(self, athlete, started, **kw):
        rec = synthetic.session_record(station=self.id, athlete=athlete, started_ts=started, **kw)
        self.send("session_record", rec)
        return rec

    def alert(self, alert_id, state, ts, by=None):
        payload = {
            "v": 1,
            "ts": ts,
            "station": self.id,
            "id": alert_id,
            "code": "tremor.high",
            "level": "warning",
            "state": state,
            "red_flag": False,
            "sensor": "wrist",
            "message": "Tremor is high",
            "advice": "Rest",
            "evidence": {},
            "raised_ts": ts,
        }
        if by:
            payload["by"] = by
        self.send("alert", payload)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


class Watcher:
    """Collects retained messages on a topic filter."""

    def __init__(self, broker, topic):
        self.messages: dict[str, bytes] = {}
        self.event = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"w-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg):
        self.messages[msg.topic] = bytes(msg.payload)
        self.event.set()

    def wait_for(self, topic, predicate, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = self.messages.get(topic)
            if data is not None and predicate(data):
                return data
            self.event.wait(0.1)
            self.event.clear()
        raise AssertionError(f"{topic}: never matched; last {self.messages.get(topic)!r}")

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def wait_until(predicate, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_records_published_while_the_store_is_down_all_arrive(mosquitto, tmp_path):
    config = make_config(mosquitto, tmp_path)
    service = HistoryService(config, reconnect_min_s=1, reconnect_max_s=1)
    service.start()
    assert service.ingest.wait_connected(10)
    station = Station(mosquitto)
    first = station.record("a1", T0)
    wait_until(lambda: service.store.counts()["sessions"] == 1, what="the first record")
    service.stop()

    # Down: records, alert events (one twice, as a re-sending outbox would) and a bad one.
    sent = [station.record(f"a{i % 3}", T0 + 3600 * (i + 1)) for i in range(40)]
    station.record("a1", T0)  # a duplicate of the first
    station.send("session_record", b'{"v":1,"broken":')  # refused, must not block
    for n in range(10):
        station.alert(f"ev-{n}", "raised", T0 + n)
    station.alert("ev-3", "acknowledged", T0 + 50, by="Ana")
    station.alert("ev-3", "acknowledged", T0 + 50, by="Ana")

    again = HistoryService(config, reconnect_min_s=1, reconnect_max_s=1)
    again.start()
    try:

        def events():
            return [a for a in again.store.alert_log("leeds") if a["id"].startswith("ev-")]

        wait_until(
            lambda: (
                again.store.counts()["sessions"] == 41
                and len(events()) == 10
                and again.ingest.idle()
            ),
            what="every record and alert event",
        )
        ids = {s["id"] for s in again.store.export("leeds", "a0")["tables"]["sessions"]}
        assert {r["id"] for r in sent if r["athlete"] == "a0"} == ids
        acked = next(a for a in events() if a["id"] == "ev-3")
        assert acked["acknowledged_by"] == "Ana"
        stats = again.ingest.stats()
        assert stats.refused == 1 and stats.duplicates >= 2
        assert again.store.session("leeds", first["id"]) is not None
    finally:
        again.stop()
        station.close()


def test_a_killed_service_loses_nothing(mosquitto, tmp_path):
    """SIGKILL mid-stream (no clean disconnect, no flush): what was not stored comes again."""
    state = tmp_path / "state"
    toml = tmp_path / "history.toml"
    toml.write_text(
        f'[history]\ngym = "leeds"\nstate_dir = "{state}"\n'
        f'[mqtt]\nport = {mosquitto.port}\nclient_id = "history-kill"\n'
        "[web]\nenabled = false\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "monitor.cli", "history", "--config", str(toml)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    station = Station(mosquitto)
    try:
        assert proc.stdout.readline()  # printed once running
        time.sleep(1.0)
        sent = []
        for i in range(150):
            sent.append(station.record("a1", T0 + 600 * i, sets=3, holds=0))
            if i == 75:
                proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        from monitor.history.store import HistoryStore, sqlite_url

        store = HistoryStore(sqlite_url(state / "history.sqlite3"))
        wait_until(
            lambda: store.counts()["sessions"] == 150,
            timeout=30,
            what="all 150 records after the kill",
        )
        assert store.counts()["sets"] == 450
        store.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        station.close()


def test_profile_is_merged_republished_named_and_forgotten(mosquitto, tmp_path):
    service = HistoryService(make_config(mosquitto, tmp_path, client_id="history-profile"))
    service.start()
    watcher = Watcher(mosquitto, "gym/_athletes/#")
    station = Station(mosquitto)
    try:
        rec = station.record("a1", T0)
        profile = json.loads(watcher.wait_for("gym/_athletes/a1/profile", bool))
        assert profile["athlete"] == "a1" and profile["v"] == 1
        assert profile["baselines_mg"] == rec["profile_update"]["baselines_mg"]
        assert profile["body_mass_g"] == rec["profile_update"]["body_mass_g"]

        update = synthetic.session_record(station="bench-1", athlete="a1", started_ts=T0 + 86400)
        update["profile_update"] = {"baselines_mg": {"body": 3.3}, "body_mass_g": None}
        station.send("session_record", update)
        merged = json.loads(watcher.wait_for("gym/_athletes/a1/profile", lambda d: b'"body"' in d))
        assert merged["baselines_mg"] == {**rec["profile_update"]["baselines_mg"], "body": 3.3}
        assert merged["body_mass_g"] == rec["profile_update"]["body_mass_g"]  # kept

        service.set_display_name("leeds", "a1", "Sam")
        card = json.loads(watcher.wait_for("gym/_athletes/a1/card", bool))
        assert card == {**card, "athlete": "a1", "display_name": "Sam", "v": 1}

        counts = service.forget("leeds", "a1")
        assert counts["sessions"] == 2 and counts["profiles"] == 1 and counts["cards"] == 1
        watcher.wait_for("gym/_athletes/a1/profile", lambda d: d == b"")
        watcher.wait_for("gym/_athletes/a1/card", lambda d: d == b"")
        late = Watcher(mosquitto, "gym/_athletes/#")  # a newcomer sees nothing retained
        time.sleep(0.5)
        assert late.messages == {}
        late.close()
    finally:
        watcher.close()
        station.close()
        service.stop()


def test_retained_profiles_come_back_after_a_broker_restart(mosquitto, tmp_path):
    service = HistoryService(
        make_config(mosquitto, tmp_path, client_id="history-restart"),
        reconnect_min_s=1,
        reconnect_max_s=1,
    )
    service.start()
    # Subscribed before the record goes out: a new client id has no session to keep it.
    assert service.ingest.wait_connected(10)
    station = Station(mosquitto)
    station.record("a9", T0)
    wait_until(lambda: service.store.profile("leeds", "a9") is not None, what="the profile")
    station.close()
    mosquitto.restart()  # persistence off: the broker forgot every retained message
    wait_until(lambda: service.ingest.connected, what="reconnect")
    watcher = Watcher(mosquitto, "gym/_athletes/+/profile")
    try:
        watcher.wait_for("gym/_athletes/a9/profile", bool)
    finally:
        watcher.close()
        service.stop()


def test_tremor_feed_is_kept_as_one_row_per_sensor_and_minute(mosquitto, tmp_path):
    service = HistoryService(make_config(mosquitto, tmp_path, client_id="history-tremor"))
    service.start()
    assert service.ingest.wait_connected(10)
    station = Station(mosquitto)
    station.send(
        "athlete",
        {
            "v": 1,
            "ts": T0,
            "station": "bench-1",
            "athlete": "a5",
            "guest": False,
            "since_ts": T0,
            "source": "tag",
            "profile": "applied",
        },
        retain=True,
    )
    minute0 = (int(T0) // 60 + 1) * 60.0
    ratios = []
    for i in range(240):  # two minutes at 2 Hz
        ratio = 1.0 + (i % 120) / 60
        ratios.append(ratio)
        station.send(
            "tremor",
            {
                "v": 1,
                "ts": minute0 + i / 2,
                "station": "bench-1",
                "sensor": "wrist",
                "placement": "limb",
                "rms_mg": 8 * ratio,
                "ratio": ratio,
                "level": "normal",
            },
            qos=0,
        )
    try:
        wait_until(lambda: service.ingest.stats().tremor_samples == 240, what="the samples")
    finally:
        service.stop()  # a stop writes the minute still open
    rows = service.store.export("leeds", "a5")["tables"]["trace"]
    assert [r["minute_ts"] for r in rows] == [minute0, minute0 + 60]
    assert [r["count"] for r in rows] == [120, 120]
    assert rows[0]["ratio_max"] == pytest.approx(max(ratios[:120]), abs=1e-3)
    assert rows[0]["ratio_p50"] == pytest.approx(sorted(ratios[:120])[59:61][0], abs=0.02)
    assert rows[0]["source"] == "live"
    station.close()


def summary(station, sensor, ts, ratio, ratio_max, rms, windows=10, level="normal"):
    """A Home Assistant summary as the station's feed builds it (the format's own class)."""
    return SensorSummary(
        station=station,
        sensor=sensor,
        ts=ts,
        ratio=ratio,
        ratio_max=ratio_max,
        rms_mg=rms,
        level=TremorLevel(level),
        windows=windows,
    ).to_json()


def tremor(station, sensor, ts, ratio):
    return json.dumps(
        {
            "v": 1,
            "ts": ts,
            "station": station,
            "sensor": sensor,
            "placement": "limb",
            "rms_mg": 8 * ratio,
            "ratio": ratio,
            "level": "normal",
        }
    ).encode()


def test_summaries_make_the_minutes_and_their_stations_tremor_goes_unread(mosquitto, tmp_path):
    """live_trace "auto": a station's Home Assistant summaries, its 2 Hz feed only without them."""
    minute0 = (int(T0) // 60 + 1) * 60.0
    both, bare = Station(mosquitto, "bench-1"), Station(mosquitto, "rack-2")
    # Retained before the service subscribes: the broker hands it over, it is not counted.
    both.send(
        "ha/sensor/wrist", summary("bench-1", "wrist", minute0 + 1, 99.0, 99.0, 9e3), retain=True
    )
    service = HistoryService(make_config(mosquitto, tmp_path, client_id="history-live"))
    service.start()
    assert service.ingest.wait_connected(10)
    medians = [1.0 + 0.1 * k for k in range(12)]
    try:
        for k, ratio in enumerate(medians):  # a minute of summaries, every 5 s
            ts = minute0 + 5 * k + 4.6
            both.send(
                "ha/sensor/wrist",
                summary("bench-1", "wrist", ts, ratio, ratio + 1, 8 * ratio),
                retain=True,
            )
            if k == 3:  # the level changed: the same figures again, a new level
                both.send(
                    "ha/sensor/wrist",
                    summary(
                        "bench-1", "wrist", ts + 1, ratio, ratio + 1, 8 * ratio, level="elevated"
                    ),
                    retain=True,
                )
            for half in range(10):  # its tremor feed: dropped unread, summaries come
                both.send("tremor", tremor("bench-1", "wrist", ts - half / 2, 50.0), qos=0)
                bare.send("tremor", tremor("rack-2", "wrist", ts - half / 2, 2.0), qos=0)
        both.send("ha/sensor/wrist", summary("bench-1", "wrist", minute0 + 64, 1.0, 1.0, 8.0))
        wait_until(
            lambda: (
                service.ingest.stats().tremor_skipped == 120
                and service.ingest.stats().tremor_samples == 12 + 1 + 120
            ),
            what="the live feeds",
        )
    finally:
        service.stop()
    with service.store.engine.connect() as conn:
        rows = {
            (r["station"], r["minute_ts"]): r
            for r in conn.execute(sa.select(schema.trace)).mappings()
        }
    one = rows[("bench-1", minute0)]
    assert one["count"] == 120 and one["source"] == "live"
    assert one["ratio_p50"] == pytest.approx(statistics.median(medians), abs=1e-3)
    assert one["ratio_max"] == pytest.approx(max(medians) + 1, abs=1e-3)
    assert one["rms_mg_p50"] == pytest.approx(8 * statistics.median(medians), abs=0.01)
    two = rows[("rack-2", minute0)]
    assert two["count"] == 120 and two["ratio_p50"] == two["ratio_max"] == 2.0
    both.close()
    bare.close()


def test_the_broker_keeps_no_live_feed_for_the_service_while_it_is_away(mosquitto, tmp_path):
    """Live feeds are read at QoS 0: records wait for the service, 2 Hz readings do not."""
    config = make_config(mosquitto, tmp_path, client_id="history-away")
    service = HistoryService(config)
    service.start()
    assert service.ingest.wait_connected(10)
    service.stop()
    station = Station(mosquitto)
    for i in range(40):
        station.send("tremor", tremor("bench-1", "wrist", T0 + i / 2, 1.5), qos=1)
        station.send("ha/sensor/wrist", summary("bench-1", "wrist", T0 + i, 1.5, 2.0, 12.0))
    rec = station.record("a1", T0)
    again = HistoryService(config)
    again.start()
    try:
        wait_until(lambda: again.store.counts()["sessions"] == 1, what="the record")
        time.sleep(0.5)
        assert again.ingest.stats().tremor_samples == 0
        assert again.store.session("leeds", rec["id"]) is not None
    finally:
        again.stop()
        station.close()
