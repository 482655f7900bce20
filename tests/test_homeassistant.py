"""The stations against a real Home Assistant core, over a real Mosquitto with the shipped ACL.

One Home Assistant (2024.3.3 from PyPI, in ``.ha-venv``: ``bash .ci/setup test``)
for the module. Three simulated stations: ``bench-a`` with two IMUs and a bottle
dock, ``bench-b`` worn on the body with a body scale (it falls), ``bench-c`` with
one IMU and no scale. Two are up before Home Assistant starts, one comes after.
The tests look at what Home Assistant itself made of it: its entity registry,
its states, what its buttons do, and its log, which must hold no warning or
error from any of it (start-up, a sensor that has not reported, a station going
offline and back, hardware taken out of a config).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.config import (
    Config,
    HomeAssistantConfig,
    ImuConfig,
    MqttConfig,
    ScaleConfig,
    StationConfig,
)
from monitor.mqtt.discovery import StationInfo, entities
from monitor.mqtt.topics import Topics
from tests.support.homeassistant import STARTUP_NOTICES as EXPECTED
from tests.support.homeassistant import HomeAssistant, MqttLogin, find_hass
from tests.support.mosquitto import (
    MosquittoBroker,
    find_mosquitto,
    gym_config,
    password,
    write_password_files,
)
from tests.support.stations import StationDriver

USERS = ("bench-a", "bench-b", "bench-c", "homeassistant", "integrator")
STAFF = "Front desk"


def station_config(
    tmp: Path, broker: MosquittoBroker, station: str, imus, scale=None, **ha
) -> Config:
    return Config(
        station=StationConfig(
            id=station,
            name=station.replace("-", " ").title(),
            simulate=True,
            state_dir=tmp / station,
            seed=1,
        ),
        imus=tuple(imus),
        scale=scale,
        mqtt=MqttConfig(
            host=broker.host,
            port=broker.port,
            username=station,
            password_file=str(tmp / "secrets" / f"{station}.pw"),
        ),
        homeassistant=HomeAssistantConfig(ack_by=STAFF, **ha),
    )


def configs(tmp: Path, broker: MosquittoBroker) -> dict[str, Config]:
    return {
        "bench-a": station_config(
            tmp,
            broker,
            "bench-a",
            [
                ImuConfig("wrist", "mpu6050", 0x68, rate_hz=250, scenario="strength_session"),
                ImuConfig(
                    "bench clip",
                    "mpu6050",
                    0x69,
                    rate_hz=250,
                    placement="bench",
                    scenario="strength_session",
                ),
            ],
            scale=ScaleConfig(mode="bottle", scenario="bottle_dock"),
        ),
        "bench-b": station_config(
            tmp,
            broker,
            "bench-b",
            [ImuConfig("chest", "mpu6050", 0x68, rate_hz=250, placement="body", scenario="fall")],
            scale=ScaleConfig(mode="body", scenario="body_scale"),
        ),
        "bench-c": station_config(
            tmp,
            broker,
            "bench-c",
            [ImuConfig("wrist", "mpu6050", 0x68, rate_hz=250, scenario="rest")],
        ),
    }


def entity_ids(config: Config) -> set[str]:
    """The entity ids Home Assistant gives the entities discovery announces for ``config``."""
    info = StationInfo.from_config(config)
    return {
        f"{e.component}.{e.object_id.replace('-', '_')}"
        for e in entities(Topics("gym", config.station.id), info)
    }


def wait_for(predicate: Callable[[], object], timeout: float = 60.0, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what or predicate}: last {last!r}")


class Rig:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        write_password_files(tmp / "secrets", USERS, password)
        self.broker = MosquittoBroker(
            tmp / "broker",
            allow_anonymous=False,
            extra_config=gym_config(tmp / "secrets" / "passwd"),
        )
        self.broker.start()
        self.configs = configs(tmp, self.broker)
        self.driver = StationDriver(speed=4.0).start()
        self.ha = HomeAssistant(
            tmp / "ha",
            mqtt=MqttLogin(
                self.broker.host, self.broker.port, "homeassistant", password("homeassistant")
            ),
        )

    def close(self) -> None:
        try:
            self.ha.stop()
        finally:
            self.driver.close()
            self.broker.close()


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (Debian: apt install mosquitto)")
    if find_hass() is None:
        pytest.skip("Home Assistant is not installed: bash .ci/setup test makes .ha-venv")
    rig = Rig(tmp_path_factory.mktemp("ha-rig"))
    try:
        # Two stations are up before Home Assistant starts; the third comes after.
        rig.driver.add("bench-a", rig.configs["bench-a"])
        rig.driver.add("bench-b", rig.configs["bench-b"])
        time.sleep(1.0)
        rig.ha.start()
        rig.driver.add("bench-c", rig.configs["bench-c"])
        yield rig
    finally:
        rig.close()


def test_home_assistant_has_the_entities_of_the_hardware_and_no_others(rig):
    want = set().union(*(entity_ids(c) for c in rig.configs.values()))
    wait_for(lambda: want <= set(rig.ha.registry()), what="every entity in the registry")
    registry = rig.ha.registry()
    assert set(registry) == want
    # Each station is one device; ids are unique and stable.
    devices = {}
    for entity_id, entry in registry.items():
        devices.setdefault(entity_id.split(".")[1].split("_")[1], set()).add(entry["device_id"])
        assert entry["unique_id"] == "gym_" + entity_id.split(".", 1)[1].replace(
            "bench_", "bench-", 1
        )
    assert all(len(ids) == 1 for ids in devices.values()), devices
    # A scale only where there is one, of the kind there is.
    assert "sensor.bench_a_intake" in registry and "sensor.bench_b_intake" not in registry
    assert "sensor.bench_b_sweat_rate" in registry and "sensor.bench_a_sweat_rate" not in registry
    assert not any(e.startswith(("sensor.bench_c_scale", "button.bench_c_tare")) for e in registry)
    assert "sensor.bench_a_bench_clip_tremor" in registry  # the second IMU of bench-a


def test_states_are_numbers_or_unknown_with_units_home_assistant_reads_right(rig):
    wait_for(
        lambda: (
            rig.ha.state("sensor.bench_a_wrist_tremor_ratio")["state"]
            not in ("unknown", "unavailable")
        ),
        what="a tremor ratio",
    )
    states = rig.ha.states()
    ours = {k: v for k, v in states.items() if k.split(".")[1].startswith("bench_")}
    assert ours
    for entity_id, s in ours.items():
        attrs = s["attributes"]
        if "options" in attrs:
            assert s["state"] in (*attrs["options"], "unknown", "unavailable"), entity_id
        elif attrs.get("state_class") and s["state"] not in ("unknown", "unavailable"):
            float(s["state"])  # a number, or Home Assistant would have logged an error
    tremor = states["sensor.bench_a_wrist_tremor"]["attributes"]
    assert tremor["unit_of_measurement"] == "m/s²" and "device_class" not in tremor
    assert states["sensor.bench_a_sets"]["attributes"]["state_class"] == "total_increasing"
    intake = states["sensor.bench_a_intake"]["attributes"]
    assert (intake["device_class"], intake["unit_of_measurement"], intake["state_class"]) == (
        "volume",
        "mL",
        "total_increasing",
    )
    # Enums: MQTT sensors of Home Assistant 2024.3 drop the "options" key (later ones read it);
    # every value sent is one of the options the discovery config lists.
    for name in ("alert_level", "activity", "wrist_tremor_level"):
        attrs = states[f"sensor.bench_a_{name}"]["attributes"]
        assert attrs["device_class"] == "enum" and "unit_of_measurement" not in attrs, name
        assert "state_class" not in attrs, name


def test_buttons_start_a_session_tare_and_acknowledge_recording_the_staff_name(rig):
    ha = rig.ha
    wait_for(
        lambda: ha.state("button.bench_c_start_session")["state"] != "unavailable",
        what="bench-c available",
    )
    ha.call("button", "press", entity_id="button.bench_c_start_session")
    wait_for(
        lambda: ha.state("binary_sensor.bench_c_session")["state"] == "on",
        what="bench-c's session on",
    )
    assert ha.state("select.bench_c_session_control")["state"] == "running"
    ha.call("select", "select_option", entity_id="select.bench_c_session_control", option="stopped")
    wait_for(
        lambda: ha.state("binary_sensor.bench_c_session")["state"] == "off",
        what="bench-c's session off",
    )
    ha.call("button", "press", entity_id="button.bench_a_tare")
    # bench-b falls (its scenario): the urgent alert shows, then staff acknowledge it from HA.
    wait_for(
        lambda: ha.state("sensor.bench_b_alert_level")["state"] == "urgent",
        timeout=120,
        what="bench-b's fall",
    )
    alert = ha.state("sensor.bench_b_alert_level")["attributes"]
    assert alert["ack_id"] and alert["alerts"][0]["code"] == "redflag.fall"
    assert ha.state("binary_sensor.bench_b_urgent_alert")["state"] == "on"
    assert ha.state("event.bench_b_alert")["attributes"]["event_type"] in (
        "urgent",
        "info",
        "caution",
        "warning",
        "cleared",
    )
    ha.call("button", "press", entity_id="button.bench_b_acknowledge")
    event = wait_for(
        lambda: (
            (s := ha.state("event.bench_b_alert"))["attributes"].get("event_type") == "acknowledged"
            and s
        ),
        what="the acknowledged event",
    )
    assert event["attributes"]["by"] == STAFF and event["attributes"]["id"] == alert["ack_id"]
    runner = rig.driver.runners["bench-b"]
    assert not any(a.id == alert["ack_id"] for a in runner.station.alerts.active())


def test_a_station_going_offline_and_back(rig):
    ha = rig.ha
    rig.driver.remove("bench-c")
    wait_for(
        lambda: ha.state("sensor.bench_c_wrist_tremor")["state"] == "unavailable",
        what="bench-c unavailable",
    )
    assert ha.state("sensor.bench_c_activity")["state"] == "unavailable"
    rig.driver.add("bench-c", rig.configs["bench-c"])
    wait_for(
        lambda: ha.state("sensor.bench_c_activity")["state"] not in ("unavailable", "unknown"),
        what="bench-c back",
    )


def test_hardware_taken_out_of_the_config_leaves_home_assistant(rig):
    ha = rig.ha
    before = entity_ids(rig.configs["bench-a"])
    rig.driver.remove("bench-a")
    smaller = station_config(
        rig.tmp,
        rig.broker,
        "bench-a",
        [ImuConfig("wrist", "mpu6050", 0x68, rate_hz=250, scenario="strength_session")],
    )
    rig.configs["bench-a"] = smaller
    rig.driver.add("bench-a", smaller)
    after = entity_ids(smaller)
    assert after < before
    wait_for(lambda: not (before - after) & set(ha.registry()), what="removed entities gone")
    assert after <= set(ha.registry())
    state = json.loads((rig.tmp / "bench-a" / "ha-discovery.json").read_text())
    assert all("bench_clip" not in t and "intake" not in t for t in state["topics"])


def test_home_assistant_logged_no_warning_or_error(rig):
    time.sleep(3)  # the last messages of the tests above
    problems = [p for p in rig.ha.problems() if not any(x in p for x in EXPECTED)]
    assert problems == [], "\n".join(problems)
    assert rig.driver.errors == []
