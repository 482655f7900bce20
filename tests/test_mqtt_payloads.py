"""Payload builders against their JSON Schemas, the encoding, topics and discovery configs."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pytest

from monitor.mqtt import discovery
from monitor.mqtt.payloads import (
    SCHEMA_NAMES,
    PayloadError,
    alert_payload,
    alerts_active_payload,
    command_result_payload,
    encode,
    from_values,
    hydration_payload,
    load_schema,
    session_payload,
    tremor_payload,
)
from monitor.mqtt.topics import TopicError, Topics

TS = 1732435200.5


@pytest.fixture(scope="module")
def validator():
    """name -> Draft 2020-12 validator, with every schema registered for $ref."""
    jsonschema = pytest.importorskip("jsonschema")  # the [test] extra
    referencing = pytest.importorskip("referencing")
    schemas = {name: load_schema(name) for name in SCHEMA_NAMES}
    registry = referencing.Registry().with_resources(
        (s["$id"], referencing.Resource.from_contents(s)) for s in schemas.values()
    )
    for s in schemas.values():
        jsonschema.Draft202012Validator.check_schema(s)

    def make(name):
        return jsonschema.Draft202012Validator(
            schemas[name], registry=registry, format_checker=jsonschema.FormatChecker()
        )

    return make


def valid(validator, name, payload) -> bool:
    return validator(name).is_valid(json.loads(encode(payload)))


def sample_alert(**over):
    fields = {
        "id": "bench-1:1732435200:0007",
        "code": "tremor.high",
        "level": "warning",
        "state": "raised",
        "message": "Tremor is high: 4.2x your rested level",
        "advice": "Rest longer before the next set",
        "evidence": {"ratio": 4.2, "rms_mg": 34.5},
        "sensor": "wrist",
        "ts": TS,
    }
    return alert_payload("bench-1", **(fields | over))


SAMPLES = {
    "tremor": lambda: tremor_payload(
        "bench-1",
        sensor="wrist",
        placement="limb",
        rms_mg=12.3,
        peak_hz=8.1,
        ratio=1.4,
        band_rms_mg={"voluntary": 40.1, "fatigue": 5.2, "physiological": 10.9, "tremor": 12.3},
        fatigue_ratio=0.23,
        regularity=0.62,
        window_s=2.5,
        ts=TS,
    ),
    "session": lambda: session_payload(
        "bench-1",
        name="Bench 1",
        state="rest",
        active=True,
        started_ts=TS - 600,
        set_count=3,
        rep_count=10,
        last_set_end_ts=TS - 30,
        baseline_mg=8.2,
        ratio=1.7,
        recovery_s=42.0,
        fatigue_trend=0.12,
        ts=TS,
    ),
    "hydration": lambda: hydration_payload(
        "bench-1", mode="bottle", mass_g=612.0, intake_ml=250.0, intake_ml_per_h=500.0, ts=TS
    ),
    "alert": sample_alert,
    "alerts_active": lambda: alerts_active_payload("bench-1", [sample_alert()], ts=TS),
    "cmd_result": lambda: command_result_payload(
        "bench-1", ok=False, error="bad", request_id="r1", ts=TS
    ),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_builder_output_validates(validator, name):
    payload = SAMPLES[name]()
    assert payload["v"] == 1 and payload["ts"] == TS and payload["station"] == "bench-1"
    errors = list(validator(name).iter_errors(json.loads(encode(payload))))
    assert not errors, errors


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_builder_writes_exactly_the_schema_keys(name):
    # Catches a field added to a builder but not to the schema (or a typo in either).
    schema = load_schema(name)
    keys = set(SAMPLES[name]())
    assert set(schema["required"]) <= keys <= set(schema["properties"])
    optional = set(schema["properties"]) - set(schema["required"])
    assert optional <= {"by", "acked_ts", "silenced_until_ts", "follows"}, (
        "optional keys are the exception; list them here"
    )


def test_acknowledged_alert_says_by_whom(validator):
    p = sample_alert(state="acknowledged", by="display")
    assert p["by"] == "display" and valid(validator, "alert", p)
    assert "by" not in sample_alert()


def test_alerts_module_payloads_pass_through(validator):
    """monitor.alerts.Alert.payload() is what the station publishes; it must fit the schema."""
    from monitor.alerts import Alert

    a = Alert(
        id="bench-1:1732435200:0001",
        station="bench-1",
        code="fall",
        level="urgent",
        state="acknowledged",
        message="A fall was detected",
        advice="Check on them",
        evidence={"peak_g": 3.1},
        sensor="wrist",
        red_flag=True,
        raised_ts=TS,
        ts=TS + 9,
        by="display",
    )
    assert valid(validator, "alert", a.payload())
    assert from_values("alert", "bench-1", a) == json.loads(encode(a.payload()))


@pytest.mark.parametrize(
    "name, key, bad",
    [
        ("tremor", "rms_mg", "12"),
        ("tremor", "level", "extreme"),
        ("tremor", "exercised", 1),
        ("tremor", "regularity", 1.5),
        ("tremor", "band_rms_mg", [1, 2]),
        ("session", "set_count", 2.5),
        ("session", "set_count", -1),
        ("session", "state", "lifting"),
        ("hydration", "mode", "cup"),
        ("hydration", "mass_g", "612"),
        ("alert", "level", "critical"),
        ("alert", "state", "open"),
        ("alert", "red_flag", "no"),
        ("alert", "id", ""),
        ("alert", "evidence", None),
        ("alerts_active", "alerts", {}),
        ("cmd_result", "ok", "yes"),
        ("tremor", "v", 2),
        ("session", "ts", "now"),
        ("hydration", "station", "bench 1"),
    ],
)
def test_schema_rejects_wrong_types(validator, name, key, bad):
    payload = json.loads(encode(SAMPLES[name]()))
    payload[key] = bad
    assert not validator(name).is_valid(payload)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_schema_rejects_missing_fields(validator, name):
    payload = json.loads(encode(SAMPLES[name]()))
    for key in list(payload):
        broken = {k: v for k, v in payload.items() if k != key}
        assert not validator(name).is_valid(broken), f"{name} accepted a payload without {key}"


def test_alerts_active_entries_are_checked_by_the_alert_schema(validator):
    payload = json.loads(encode(SAMPLES["alerts_active"]()))
    payload["alerts"][0]["level"] = "critical"
    assert not validator("alerts_active").is_valid(payload)


def test_cmd_result_error_must_match_ok(validator):
    ok = json.loads(encode(command_result_payload("bench-1", ok=True, ts=TS)))
    assert ok["error"] is None and validator("cmd_result").is_valid(ok)
    ok["error"] = "oops"
    assert not validator("cmd_result").is_valid(ok)


def test_nan_and_inf_become_null_and_stay_valid(validator):
    p = tremor_payload(
        "bench-1",
        sensor="wrist",
        rms_mg=float("nan"),
        peak_hz=float("inf"),
        ratio=float("-inf"),
        regularity=float("nan"),
        band_rms_mg={"tremor": float("nan")},
        window_s=2.5,
        ts=TS,
    )
    assert p["rms_mg"] is None and p["peak_hz"] is None and p["ratio"] is None
    assert p["measurable"] is False and p["level"] == "none"
    assert p["band_rms_mg"] == {"tremor": None}
    data = encode(p)
    assert b"NaN" not in data and b"Infinity" not in data
    assert valid(validator, "tremor", p)


def test_encode_never_emits_nan():
    assert (
        encode({"a": float("nan"), "b": [float("inf"), 1.0], "c": {"d": -math.inf}})
        == b'{"a":null,"b":[null,1.0],"c":{"d":null}}'
    )


def test_floats_round_sensibly():
    p = tremor_payload(
        "bench-1",
        sensor="wrist",
        rms_mg=12.3456789123,
        peak_hz=8.0000000001,
        ratio=0.000123456789,
        window_s=2.5,
        ts=1732435200.123456789,
    )
    assert p["rms_mg"] == 12.3457
    assert p["peak_hz"] == 8.0
    assert p["ratio"] == 0.000123457  # significant digits, not decimal places
    assert p["ts"] == 1732435200.123  # timestamps keep milliseconds
    s = session_payload("bench-1", state="idle", started_ts=1732435100.98765, ts=TS)
    assert s["started_ts"] == 1732435100.988
    h = hydration_payload("bench-1", mode="body", mass_g=81234.56, ts=TS)
    assert h["mass_g"] == 81234.6


def test_numpy_values_are_accepted(validator):
    p = tremor_payload(
        "bench-1",
        sensor="wrist",
        rms_mg=np.float32(12.5),
        peak_hz=np.float64(8.0),
        ratio=np.float64(np.nan),
        moving=np.bool_(True),
        band_rms_mg={"tremor": np.float32(12.5)},
        window_s=np.float64(2.5),
        ts=TS,
    )
    assert p["rms_mg"] == 12.5 and p["ratio"] is None and p["moving"] is True
    s = session_payload("bench-1", state="reps", set_count=np.int64(3), ts=TS)
    assert s["set_count"] == 3 and type(s["set_count"]) is int
    assert valid(validator, "tremor", p) and valid(validator, "session", s)


def test_tremor_level_follows_ratio():
    def level(ratio):
        return tremor_payload("b", sensor="s", rms_mg=10.0, ratio=ratio, window_s=1, ts=TS)["level"]

    assert [level(r) for r in (None, 1.0, 1.99, 2.0, 3.9, 4.0, 9.0)] == [
        "normal",
        "normal",
        "normal",
        "elevated",
        "elevated",
        "high",
        "high",
    ]


@pytest.mark.parametrize(
    "build",
    [
        lambda: tremor_payload("bench-1", sensor="wrist", placement="arm", window_s=1, ts=TS),
        lambda: tremor_payload("bench-1", sensor="", window_s=1, ts=TS),
        lambda: session_payload("bench-1", state="lifting", ts=TS),
        lambda: session_payload("bench-1", state="idle", set_count=-1, ts=TS),
        lambda: session_payload("bench-1", state="idle", set_count=True, ts=TS),
        lambda: hydration_payload("bench-1", mode="cup", ts=TS),
        lambda: sample_alert(level="critical"),
        lambda: sample_alert(id=""),
        lambda: sample_alert(ts=float("nan")),
        lambda: tremor_payload("bench 1", sensor="wrist", window_s=1, ts=TS),
        lambda: encode({"x": object()}),
    ],
)
def test_builders_refuse_bad_values(build):
    with pytest.raises((PayloadError, TopicError)):
        build()


def test_from_values_takes_dicts_and_dataclasses(validator):
    @dataclass
    class Alert:
        id: str
        code: str
        level: str
        state: str
        message: str
        advice: str
        evidence: dict

    a = Alert("x:1", "fall", "urgent", "raised", "A fall was detected", "Check on the athlete", {})
    p = from_values("alert", "bench-1", a, ts=TS)
    assert p["id"] == "x:1" and p["raised_ts"] == TS and valid(validator, "alert", p)
    # an alert dict that already carries v/ts/station round-trips through alerts/active
    again = alerts_active_payload("bench-1", [p], ts=TS + 5)
    assert again["alerts"][0] == p
    with pytest.raises(PayloadError, match="unexpected keyword"):
        from_values("session", "bench-1", {"state": "idle", "sets": 3})


def test_default_timestamp_is_now():
    import time

    before = time.time()
    p = session_payload("bench-1", state="idle")
    assert before - 0.01 <= p["ts"] <= time.time() + 0.01


# --------------------------------------------------------------------------- topics


def test_topics_follow_the_contract():
    t = Topics("gym", "bench-1")
    assert (t.status, t.tremor, t.session, t.hydration, t.alert, t.alerts_active) == (
        "gym/bench-1/status",
        "gym/bench-1/tremor",
        "gym/bench-1/session",
        "gym/bench-1/hydration",
        "gym/bench-1/alert",
        "gym/bench-1/alerts/active",
    )
    assert t.cmd("ack") == "gym/bench-1/cmd/ack"
    assert t.cmd_result("ack") == "gym/bench-1/cmd/ack/result"
    assert t.cmd_filter == "gym/bench-1/cmd/+"
    assert Topics("/chain/gym-a/", "b").status == "chain/gym-a/b/status"


def test_command_name_ignores_results_and_other_stations():
    t = Topics("gym", "bench-1")
    assert t.command_name("gym/bench-1/cmd/tare") == "tare"
    assert t.command_name("gym/bench-1/cmd/tare/result") is None
    assert t.command_name("gym/bench-2/cmd/tare") is None
    assert t.command_name("gym/bench-1/cmd/") is None


@pytest.mark.parametrize("station", ["", "bench 1", "a/b", "a+b", "#", "-lead", "x" * 65, "é"])
def test_bad_station_ids_are_refused(station):
    with pytest.raises(TopicError, match="station id"):
        Topics("gym", station)


@pytest.mark.parametrize("prefix", ["", "/", "gym/+", "gym/#", "$SYS", "a//b"])
def test_bad_prefixes_are_refused(prefix):
    with pytest.raises(TopicError, match="prefix"):
        Topics(prefix, "bench-1")


# --------------------------------------------------------------------------- discovery


def test_discovery_configs_cover_the_station():
    t = Topics("gym", "bench-1")
    info = discovery.StationInfo(
        "bench-1", name="Bench 1", sensors=("wrist", "bar bell"), hydration=True
    )
    msgs = dict(discovery.discovery_messages(t, info))
    configs = {topic: json.loads(data) for topic, data in msgs.items()}
    # One state topic per IMU and one per station (tests/test_discovery.py has the rest).
    for field in ("tremor", "tremor_ratio", "tremor_frequency", "tremor_level"):
        assert f"homeassistant/sensor/bench-1/bench-1_wrist_{field}/config" in configs
        assert f"homeassistant/sensor/bench-1/bench-1_bar_bell_{field}/config" in configs
    assert "homeassistant/sensor/bench-1/bench-1_activity/config" in configs
    assert "homeassistant/sensor/bench-1/bench-1_sets/config" in configs
    assert "homeassistant/sensor/bench-1/bench-1_intake/config" in configs
    urgent = configs["homeassistant/binary_sensor/bench-1/bench-1_urgent_alert/config"]
    assert urgent["state_topic"] == "gym/bench-1/ha/station"
    unique = [c["unique_id"] for c in configs.values()]
    assert len(unique) == len(set(unique))
    for c in configs.values():
        assert c["availability_topic"] == t.status
        assert (c["payload_available"], c["payload_not_available"]) == ("online", "offline")
        assert c["device"]["identifiers"] == ["gym_tremor_bench-1"]
        assert c["device"]["name"] == "Bench 1"
    wrist = configs["homeassistant/sensor/bench-1/bench-1_wrist_tremor/config"]
    assert wrist["state_topic"] == "gym/bench-1/ha/sensor/wrist"
    assert wrist["unit_of_measurement"] == "m/s²"  # "mg" is milligrams to Home Assistant


def test_discovery_without_scale_has_no_hydration():
    msgs = discovery.discovery_messages(Topics("gym", "b1"), discovery.StationInfo("b1"))
    assert not any("hydration" in topic for topic, _ in msgs)
    assert all(
        topic.startswith("homeassistant/") and topic.endswith("/config") for topic, _ in msgs
    )


def test_schemas_ship_with_the_package():
    assert set(SCHEMA_NAMES) <= {
        p.stem for p in resources.files("monitor.mqtt").joinpath("schemas").iterdir()
    }
