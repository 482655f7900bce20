"""Home Assistant discovery and feed: what is announced, removed, sent and allowed.

The real Home Assistant is in tests/test_homeassistant.py; here the configs,
the feed's rate, the removals remembered in the state directory, MQTT v5
request/response and the ACL lines, against a real Mosquitto where a broker
is involved.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import time
import tomllib
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from monitor.config import Config, HomeAssistantConfig, parse
from monitor.mqtt import MqttPublisher, Outbox
from monitor.mqtt.discovery import (
    STATE_FILE,
    HaTopics,
    SensorInfo,
    StationInfo,
    device_topic,
    discovery_messages,
    discovery_plan,
    entities,
    legacy_topics,
)
from monitor.mqtt.homeassistant import HomeAssistantFeed
from monitor.mqtt.messages import SensorSummary, StationSummary
from monitor.mqtt.topics import Topics
from monitor.units import G
from tests.support.mosquitto import gym_config, write_password_files

ROOT = Path(__file__).resolve().parents[1]
T = Topics("gym", "bench-1")
FULL = StationInfo(
    "bench-1",
    name="Bench 1",
    sensors=(SensorInfo("wrist"), SensorInfo("bench clip", "bench")),
    scale="bottle",
    ack_by="Front desk",
)


def configs(info: StationInfo, **kw) -> dict[str, dict]:
    return {t: json.loads(d) for t, d in discovery_messages(T, info, **kw)}


# --------------------------------------------------------------------------- the configs


def test_entities_follow_the_hardware():
    def ids(info):
        return {e.object_id.removeprefix("bench-1_") for e in entities(T, info)}

    full = ids(FULL)
    assert {
        "wrist_tremor",
        "bench_clip_tremor_ratio",
        "intake",
        "tare",
        "acknowledge",
        "start_session",
        "session_control",
        "alert",
    } <= full
    bare = ids(StationInfo("bench-1", sensors=("wrist",)))
    assert not bare & {
        "intake",
        "scale_mass",
        "tare",
        "sweat_rate",
        "acknowledge",
        "bench_clip_tremor",
    }
    body = ids(dataclasses.replace(FULL, scale="body"))
    assert {"pre_mass", "post_mass", "sweat_rate", "body_mass_loss"} <= body
    assert not body & {"intake", "intake_rate"}
    quiet = ids(dataclasses.replace(FULL, commands=False))
    assert not quiet & {"tare", "start_session", "stop_session", "session_control", "acknowledge"}
    assert "acknowledge" not in ids(dataclasses.replace(FULL, ack_by=""))


def test_every_config_reads_a_key_its_topic_always_has_and_never_its_own_state():
    msgs = configs(FULL)
    keys = {f.name for f in dataclasses.fields(SensorSummary)} | {
        f.name for f in dataclasses.fields(StationSummary)
    }
    unique = set()
    for topic, c in msgs.items():
        assert re.fullmatch(r"homeassistant/[a-z_]+/bench-1/bench-1_[A-Za-z0-9_-]+/config", topic)
        assert c["unique_id"] not in unique
        unique.add(c["unique_id"])
        assert c["availability_topic"] == T.status and c["device"]["identifiers"]
        assert c["origin"]["name"] == "gym-tremor-monitor" and c["origin"]["sw_version"]
        text = json.dumps(c)
        assert "this.state" not in text and "this." not in text
        for key in re.findall(r"value_json\.([a-z_0-9]+)", text):
            assert key in keys | {
                "level",
                "state",
                "id",
                "code",
                "sensor",
                "message",
                "red_flag",
                "get",
            }, (topic, key)
        if c.get("state_topic", "").startswith("gym/bench-1/ha/"):
            assert c["state_topic"] in (
                "gym/bench-1/ha/station",
                "gym/bench-1/ha/sensor/wrist",
                "gym/bench-1/ha/sensor/bench_clip",
            )
        assert c.get("unit_of_measurement") != "mg"


def test_state_classes_units_and_enums():
    by_id = {c["object_id"]: c for c in configs(FULL).values()}
    assert by_id["bench-1_sets"]["state_class"] == "total_increasing"
    assert by_id["bench-1_reps"]["state_class"] == "measurement"  # revised as the set goes
    intake = by_id["bench-1_intake"]
    assert (intake["device_class"], intake["unit_of_measurement"], intake["state_class"]) == (
        "volume",
        "mL",
        "total_increasing",
    )
    tremor = by_id["bench-1_wrist_tremor"]
    assert tremor["unit_of_measurement"] == "m/s²" and "device_class" not in tremor
    for enum, first in (
        ("bench-1_activity", "idle"),
        ("bench-1_alert_level", "none"),
        ("bench-1_wrist_tremor_level", "none"),
    ):
        c = by_id[enum]
        assert c["device_class"] == "enum" and c["options"][0] == first
        assert "state_class" not in c and "unit_of_measurement" not in c
    event = by_id["bench-1_alert"]
    assert event["state_topic"] == T.alert
    assert set(event["event_types"]) == {
        "info",
        "caution",
        "warning",
        "urgent",
        "cleared",
        "acknowledged",
    }
    ack = by_id["bench-1_acknowledge"]
    assert ack["command_topic"] == T.cmd("ack") and '"Front desk"' in ack["command_template"]


def test_the_device_form_is_one_config_with_every_component():
    ((topic, c),) = configs(FULL, form="device").items()
    assert topic == device_topic(T) == "homeassistant/device/bench-1/bench-1/config"
    assert re.fullmatch(r"homeassistant/[^/]+/bench-1/[^/]+/config", topic)  # the ACL's pattern
    assert c["origin"]["name"] and c["device"]["name"] == "Bench 1"
    assert {v["platform"] for v in c["components"].values()} == {
        "sensor",
        "binary_sensor",
        "event",
        "button",
        "select",
    }
    assert len(c["components"]) == len(entities(T, FULL))


# --------------------------------------------------------------------------- removals


def test_hardware_removed_from_the_config_is_removed_from_home_assistant(tmp_path):
    first = discovery_plan(T, FULL, state_dir=tmp_path, now=1000.0)
    # The first start clears what the first discovery (one tremor topic for all IMUs) announced.
    assert set(first.removed) == set(legacy_topics(T, FULL)) - {t for t, _ in first.configs}
    assert all(d == b"" for t, d in first.messages[: len(first.removed)])
    assert (tmp_path / STATE_FILE).exists()
    again = discovery_plan(T, FULL, state_dir=tmp_path, now=1001.0)
    assert set(again.removed) == set(first.removed)  # sent again at connects, for a while
    smaller = StationInfo(
        "bench-1", name="Bench 1", sensors=(SensorInfo("wrist"),), ack_by="Front desk"
    )
    plan = discovery_plan(T, smaller, state_dir=tmp_path, now=1002.0)
    gone = {t for t in plan.removed if "legacy" not in t and "bench-1_hydration" not in t}
    assert "homeassistant/sensor/bench-1/bench-1_bench_clip_tremor/config" in gone
    assert "homeassistant/sensor/bench-1/bench-1_intake/config" in gone
    assert "homeassistant/button/bench-1/bench-1_tare/config" in gone
    assert not {t for t, _ in plan.configs} & set(plan.removed)
    # Removals go first, so a unique id moving between topics never meets itself.
    n = len(plan.removed)
    assert [d for _, d in plan.messages[:n]] == [b""] * n and all(d for _, d in plan.messages[n:])
    back = discovery_plan(T, FULL, state_dir=tmp_path, now=1003.0)
    assert "homeassistant/sensor/bench-1/bench-1_intake/config" not in back.removed
    off = discovery_plan(T, FULL, state_dir=tmp_path, enabled=False, now=1004.0)
    assert off.configs == [] and set(off.removed) >= {t for t, _ in back.configs}
    later = discovery_plan(T, FULL, state_dir=tmp_path, now=1004.0 + 31 * 86400)
    assert later.removed == []  # removals are not repeated for ever


def test_the_device_form_removes_components_and_the_per_entity_configs(tmp_path):
    discovery_plan(T, FULL, state_dir=tmp_path, now=1.0)
    # From the per-entity form to the device form: the per-entity configs go first.
    plan = discovery_plan(T, FULL, state_dir=tmp_path, form="device", now=2.0)
    assert "homeassistant/sensor/bench-1/bench-1_wrist_tremor/config" in plan.removed
    assert [t for t, _ in plan.configs] == [device_topic(T)]
    # In the device form, a component whose hardware left stays as {"platform": ...} only.
    smaller = dataclasses.replace(FULL, sensors=(SensorInfo("wrist"),))
    plan = discovery_plan(T, smaller, state_dir=tmp_path, form="device", now=3.0)
    ((_topic, data),) = plan.configs
    components = json.loads(data)["components"]
    assert components["bench-1_bench_clip_tremor"] == {"platform": "sensor"}
    assert components["bench-1_wrist_tremor"]["state_topic"] == "gym/bench-1/ha/sensor/wrist"


def test_a_damaged_state_file_costs_only_the_removals(tmp_path, caplog):
    (tmp_path / STATE_FILE).write_text("{not json")
    plan = discovery_plan(T, FULL, state_dir=tmp_path)
    assert plan.removed == [] and len(plan.configs) == len(entities(T, FULL))
    assert "cannot be read" in caplog.text


# --------------------------------------------------------------------------- the feed


def _feed(interval_s=5.0):
    sent: list[tuple[str, dict]] = []
    feed = HomeAssistantFeed(
        T, FULL, lambda t, d: sent.append((t, json.loads(d))), interval_s=interval_s
    )
    return feed, sent


def test_the_feed_sends_a_summary_every_interval_not_at_the_hop_rate():
    feed, sent = _feed()
    for i in range(240):  # two minutes of 2 Hz windows, a steady normal tremor
        t = i * 0.5
        feed.window("wrist", rms_mg=10.0 + i % 3, ratio=1.2, peak_hz=8.0, level="normal")
        feed.station(state="reps", active=True, set_count=1, rep_count=i // 4, ts=1000 + t)
        feed.flush(t, 1000 + t)
    wrist = [d for topic, d in sent if topic == "gym/bench-1/ha/sensor/wrist"]
    station = [d for topic, d in sent if topic == "gym/bench-1/ha/station"]
    assert 23 <= len(wrist) <= 25 and 23 <= len(station) <= 25  # 120 s / 5 s
    assert wrist[-1]["rms_mg"] == 11.0 and wrist[-1]["windows"] == 10
    assert wrist[-1]["rms_m_s2"] == pytest.approx(11.0 * G / 1000, rel=1e-4)
    # The IMU that never reported reads "not known", never a number it did not measure.
    clip = [d for topic, d in sent if topic == "gym/bench-1/ha/sensor/bench_clip"]
    assert clip and all(d["rms_mg"] is None and d["level"] == "none" for d in clip)
    for d in wrist + clip:
        SensorSummary.from_dict(d)
    for d in station:
        StationSummary.from_dict(d)


def test_a_change_of_level_is_sent_at_once_but_a_single_odd_window_is_not():
    feed, sent = _feed(interval_s=60.0)
    t = 0.0
    levels = ["normal"] * 4 + ["high"] + ["normal"] * 4 + ["high"] * 3

    for level in levels:
        feed.window("wrist", rms_mg=10, ratio=1.0, peak_hz=8, level=level)
        feed.flush(t)
        t += 0.5
    wrist = [d for topic, d in sent if topic.endswith("/wrist")]
    assert [d["level"] for d in wrist] == ["normal", "high"]  # one blip did not count; two did
    # Between summaries only the level changes: the figures' entities keep one state per interval.
    assert {k: v for k, v in wrist[1].items() if k not in ("level", "ts")} == {
        k: v for k, v in wrist[0].items() if k not in ("level", "ts")
    }


def test_the_station_summary_goes_out_at_once_on_news():
    feed, sent = _feed()
    feed.station(state="idle", active=False, set_count=0, rep_count=0, hydration={"mass_g": 500.0})
    feed.flush(0.0)
    feed.station(
        state="idle",
        active=False,
        set_count=0,
        rep_count=0,
        alerts=[{"id": "a1", "code": "tremor.high", "level": "caution"}],
        hydration={"mass_g": 480.0},
    )
    feed.flush(0.5)
    feed.station(
        state="idle",
        active=False,
        set_count=0,
        rep_count=0,
        alerts=[
            {"id": "a2", "code": "redflag.fall", "level": "urgent"},
            {"id": "a1", "code": "tremor.high", "level": "caution"},
        ],
    )
    feed.flush(1.0)
    station = [d for topic, d in sent if topic.endswith("/ha/station")]
    assert [d["alert_level"] for d in station] == ["none", "caution", "urgent"]
    # The mass on the scale is live: it goes out with each interval's summary, not with news.
    assert [d["mass_g"] for d in station] == [500.0, 500.0, 500.0]
    assert station[-1]["ack_id"] == "a2" and station[-1]["alert_count"] == 2


def test_totals_never_go_down_within_a_session_and_start_again_with_the_next():
    feed, sent = _feed()
    for t, (session, sets, intake) in enumerate(
        [(100, 3, 250.0), (100, 2, 240.0), (100, 4, 260.0), (200, 0, 0.0)]
    ):
        feed.station(
            state="rest",
            active=True,
            set_count=sets,
            rep_count=0,
            hydration={"intake_ml": intake, "mass_g": 500.0},
            session=session,
        )
        feed.flush(t * 10.0)
    station = [
        (d["set_count"], d["intake_ml"]) for topic, d in sent if topic.endswith("/ha/station")
    ]
    assert station == [(3, 250.0), (3, 250.0), (4, 260.0), (0, 0.0)]


# --------------------------------------------------------------------------- config


def test_the_example_config_documents_the_homeassistant_table_with_its_defaults():
    example = tomllib.loads((ROOT / "config" / "monitor.toml").read_text())
    table = example["homeassistant"]
    defaults = HomeAssistantConfig()
    assert table == dataclasses.asdict(defaults)
    assert parse(example).homeassistant == defaults
    assert Config().homeassistant == defaults


@pytest.mark.parametrize(
    "table, message",
    [
        ({"discovery": "devices"}, "homeassistant.discovery: must be one of"),
        ({"interval_s": 0.1}, "homeassistant.interval_s: must be at least 1.0"),
        ({"ack_by": "x" * 65}, "homeassistant.ack_by: must be a staff name"),
        ({"discovery_prefix": "home/#"}, "homeassistant.discovery_prefix: must be words"),
        ({"interval": 5}, "homeassistant.interval: is not a known key"),
    ],
)
def test_bad_homeassistant_settings_name_the_key(table, message):
    from monitor.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        parse({"homeassistant": table})
    assert message in str(err.value)


# --------------------------------------------------------------------------- on a broker

USERS = ("bench-1", "operator", "homeassistant", "integrator")


def password(user: str) -> str:
    return f"pw-{user}"


@pytest.fixture
def broker(mosquitto_factory, tmp_path):
    try:
        write_password_files(tmp_path / "secrets", USERS, password)
    except FileNotFoundError as err:
        pytest.skip(str(err))
    return mosquitto_factory(gym_config(tmp_path / "secrets" / "passwd"), allow_anonymous=False)


class Client:
    """A real MQTT v5 client: what it received, and the broker's answer to each QoS 1 publish."""

    def __init__(self, broker, user, subscribe=()):
        self.messages: list[mqtt.MQTTMessage] = []
        self.acks: dict[int, object] = {}
        self.ready = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv5)
        self.c.username_pw_set(user, password(user))
        self.c.on_connect = lambda c, u, f, rc, p: (
            c.subscribe([(t, 1) for t in subscribe]) if subscribe else self.ready.set()
        )
        self.c.on_subscribe = lambda *a: self.ready.set()
        self.c.on_message = lambda c, u, m: self.messages.append(m)
        self.c.on_publish = lambda c, u, mid, rc, p: self.acks.__setitem__(mid, rc)
        self.c.connect(broker.host, broker.port)
        self.c.loop_start()
        assert self.ready.wait(5)

    def publish(self, topic, payload, props=None):
        return self.c.publish(topic, payload, qos=1, properties=props).mid

    def wait(self, predicate, timeout=5.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(0.02)
        return False

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def test_mqtt_v5_response_topic_and_correlation_data_are_honoured(broker, tmp_path):
    seen = []
    pub = MqttPublisher(
        "bench-1",
        host=broker.host,
        port=broker.port,
        username="bench-1",
        password_file=tmp_path / "secrets" / "bench-1.pw",
        outbox=Outbox(tmp_path / "o.sqlite3"),
        on_command=lambda cmd: seen.append(cmd) or None,
    ).start()
    op = Client(broker, "operator", ["gym/bench-1/cmd/+/result/#"])
    try:
        assert op.wait(lambda: pub.connected)
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = "gym/bench-1/cmd/tare/result/op-7"
        props.CorrelationData = b"\x00corr-42"
        op.publish("gym/bench-1/cmd/tare", b'{"v":1,"request_id":"r1"}', props)
        assert op.wait(lambda: any(m.topic.endswith("/op-7") for m in op.messages))
        reply = next(m for m in op.messages if m.topic.endswith("/op-7"))
        assert reply.properties.CorrelationData == b"\x00corr-42"
        assert json.loads(reply.payload)["request_id"] == "r1" and json.loads(reply.payload)["ok"]
        assert any(m.topic == "gym/bench-1/cmd/tare/result" for m in op.messages)
        # A response topic anywhere else (here: the station's own status) is not written to.
        bad = Properties(PacketTypes.PUBLISH)
        bad.ResponseTopic = "gym/bench-1/status"
        bad.CorrelationData = b"x"
        n = len(op.messages)
        op.publish("gym/bench-1/cmd/tare", b'{"v":1}', bad)
        assert op.wait(lambda: len(op.messages) > n)
        time.sleep(0.3)
        assert [m.topic for m in op.messages[n:]] == ["gym/bench-1/cmd/tare/result"]
    finally:
        op.close()
        pub.close(timeout=1)


def test_home_assistant_may_press_exactly_its_buttons(broker, tmp_path):
    station = Client(broker, "bench-1", ["gym/bench-1/cmd/+"])
    ha = Client(broker, "homeassistant", ["gym/#"])
    try:
        allowed = {
            name: ha.publish(f"gym/bench-1/cmd/{name}", b"{}")
            for name in ("session", "tare", "ack")
        }
        denied = {
            name: ha.publish(f"gym/bench-1/cmd/{name}", b"{}") for name in ("calibrate", "weigh_in")
        }
        denied["status"] = ha.publish("gym/bench-1/status", b"offline")
        denied["result"] = ha.publish("gym/bench-1/cmd/tare/result", b"{}")
        assert ha.wait(lambda: len(ha.acks) == len(allowed) + len(denied))
        assert all(not ha.acks[mid].is_failure for mid in allowed.values())
        assert all(ha.acks[mid].is_failure for mid in denied.values()), ha.acks
        assert station.wait(lambda: len(station.messages) == 3)
        assert sorted(m.topic.rsplit("/", 1)[1] for m in station.messages) == [
            "ack",
            "session",
            "tare",
        ]
        # Athletes' profiles and names are not for Home Assistant.
        other = Client(broker, "integrator")
        n = len(ha.messages)
        station.publish("gym/bench-1/session", b'{"v":1}')
        assert ha.wait(lambda: len(ha.messages) > n)
        assert all("_athletes" not in m.topic for m in ha.messages)
        other.close()
    finally:
        station.close()
        ha.close()


# --------------------------------------------------------------------------- Telegraf


def test_the_telegraf_config_reads_the_summaries_the_stations_send():
    """Telegraf is not in Debian bookworm's main archive, so it does not run here: its config
    is checked as TOML against the topics, the ACL and the message classes it relies on."""
    conf = tomllib.loads((ROOT / "config" / "telegraf.conf").read_text())
    (mqtt_in,) = conf["inputs"]["mqtt_consumer"]
    assert mqtt_in["data_format"] == "json" and mqtt_in["json_time_key"] == "ts"
    ha = HaTopics(T)
    for pattern in mqtt_in["topics"]:
        regex = "^" + pattern.replace("+", "[^/]+") + "$"
        assert any(re.match(regex, t) for t in (ha.station, ha.sensor("wrist"))), pattern
    parsed = {p["topic"]: p["measurement"] for p in mqtt_in["topic_parsing"]}
    assert parsed == {
        "gym/+/ha/sensor/+": "_/_/_/measurement/_",
        "gym/+/ha/station": "_/_/_/measurement",
    }
    fields = {f.name for f in dataclasses.fields(SensorSummary)} | {
        f.name for f in dataclasses.fields(StationSummary)
    }
    assert set(mqtt_in["tag_keys"]) <= fields
    # Its broker user may read those topics and nothing is written.
    acl = (ROOT / "config" / "mosquitto" / "acl").read_text()
    block = acl.split(f"user {mqtt_in['username']}\n", 1)[1].split("\n# ---", 1)[0]
    assert "topic read gym/#" in block and "write" not in block
    renames = {r["measurement"]: r["dest"] for r in conf["processors"]["rename"][0]["replace"]}
    assert renames == {"sensor": "gym_sensor", "station": "gym_station"}
    assert conf["outputs"]["influxdb_v2"][0]["bucket"] == "gym"
