"""Home Assistant against three stations: its log, its recorder, and what got a value.

A real Mosquitto (tests/support/mosquitto.py, the shipped settings and ACL), a real
Home Assistant core (``.ha-venv``, tests/support/homeassistant.py) and three
simulated stations running in real time (tests/support/stations.py):
``station-1`` with two IMUs and a bottle dock, ``station-2`` worn on the body
with a body scale (it falls; the alert is acknowledged from Home Assistant),
``station-3`` with one IMU and no scale, which goes offline for a while half
way and comes back. Near the end every button is pressed once. Printed:

* warnings and errors in Home Assistant's log over the run (target 0), besides
  the two lines it writes at every start here (pip skipped, Python 3.11);
* state rows its recorder wrote per entity per hour (target <= 720), read from
  its SQLite file, with the wall display's tremor rate measured alongside;
* entities announced vs entities that ever got a value (target equal).

    python -m bench.bench_homeassistant              # 10 minutes
    python -m bench.bench_homeassistant --minutes 2
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from collections import Counter
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

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
from tests.support.homeassistant import STARTUP_NOTICES, HomeAssistant, MqttLogin
from tests.support.mosquitto import MosquittoBroker, gym_config, password, write_password_files
from tests.support.stations import StationDriver

STAFF = "Front desk"


def config(tmp: Path, broker: MosquittoBroker, station: str, imus, scale=None) -> Config:
    return Config(
        station=StationConfig(id=station, simulate=True, state_dir=tmp / station, seed=3),
        imus=tuple(imus),
        scale=scale,
        mqtt=MqttConfig(
            host=broker.host,
            port=broker.port,
            username=station,
            password_file=str(tmp / "secrets" / f"{station}.pw"),
        ),
        homeassistant=HomeAssistantConfig(ack_by=STAFF),
    )


def entity_ids(cfg: Config) -> dict[str, str]:
    info = StationInfo.from_config(cfg)
    return {
        f"{e.component}.{e.object_id.replace('-', '_')}": e.component
        for e in entities(Topics("gym", cfg.station.id), info)
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    args = ap.parse_args()
    run_s = args.minutes * 60
    tmp = Path(tempfile.mkdtemp(prefix="bench-ha-"))
    users = ["station-1", "station-2", "station-3", "homeassistant", "integrator"]
    write_password_files(tmp / "secrets", users, password)
    broker = MosquittoBroker(
        tmp / "broker", allow_anonymous=False, extra_config=gym_config(tmp / "secrets" / "passwd")
    ).start()
    configs = {
        "station-1": config(
            tmp,
            broker,
            "station-1",
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
            ScaleConfig(mode="bottle", scenario="bottle_dock"),
        ),
        "station-2": config(
            tmp,
            broker,
            "station-2",
            [ImuConfig("chest", "mpu6050", 0x68, rate_hz=250, placement="body", scenario="fall")],
            ScaleConfig(mode="body", scenario="body_scale"),
        ),
        "station-3": config(
            tmp,
            broker,
            "station-3",
            [ImuConfig("wrist", "mpu6050", 0x68, rate_hz=250, scenario="strength_session")],
        ),
    }
    wall = Counter()
    witness = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="integrator")
    witness.username_pw_set("integrator", password("integrator"))
    witness.on_connect = lambda c, u, f, rc, p: c.subscribe("gym/+/tremor")
    witness.on_message = lambda c, u, m: wall.update(
        [(m.topic.split("/")[1], json.loads(m.payload)["sensor"])]
    )
    witness.connect(broker.host, broker.port)
    witness.loop_start()

    driver = StationDriver(speed=1.0).start()
    ha = HomeAssistant(
        tmp / "ha",
        mqtt=MqttLogin(broker.host, broker.port, "homeassistant", password("homeassistant")),
    )
    t0 = time.monotonic()
    try:
        ha.start()
        started_s = time.monotonic() - t0
        for name, cfg in configs.items():
            driver.add(name, cfg)
        run_start = time.monotonic()
        sim_start = driver.runners["station-1"].clock.now()
        offline_at, back_at = run_s * 0.5, run_s * 0.5 + 30
        pressed = False
        state = "up"
        while (elapsed := time.monotonic() - run_start) < run_s:
            if state == "up" and elapsed >= offline_at:
                driver.remove("station-3")
                state = "down"
            elif state == "down" and elapsed >= back_at:
                driver.add("station-3", configs["station-3"])
                state = "back"
            if not pressed and elapsed >= run_s - 45:
                # Every button once (an Acknowledge with no alert active is refused by the
                # station, which is right; the press is still the button's value).
                for button in (
                    "station_1_tare",
                    "station_2_acknowledge",
                    "station_1_acknowledge",
                    "station_3_acknowledge",
                    "station_3_start_session",
                    "station_3_stop_session",
                    "station_1_start_session",
                    "station_1_stop_session",
                    "station_2_tare",
                    "station_2_start_session",
                    "station_2_stop_session",
                ):
                    ha.call("button", "press", entity_id=f"button.{button}")
                    time.sleep(2)
                ha.call(
                    "select",
                    "select_option",
                    entity_id="select.station_3_session_control",
                    option="running",
                )
                pressed = True
            time.sleep(1)
        time.sleep(5)  # the recorder commits every second
        hours = (time.monotonic() - run_start) / 3600
        # The stations' own time: the feed's interval is in it, as on a Pi in a gym.
        station_hours = (driver.runners["station-1"].clock.now() - sim_start) / 3600
        problems = [p for p in ha.problems() if not any(x in p for x in STARTUP_NOTICES)]
        announced = {}
        for cfg in configs.values():
            announced |= entity_ids(cfg)
        with sqlite3.connect(f"file:{ha.db_path}?mode=ro", uri=True) as db:
            rows = dict(
                db.execute(
                    "SELECT m.entity_id, COUNT(*) FROM states s JOIN states_meta m "
                    "ON s.metadata_id = m.metadata_id GROUP BY m.entity_id"
                ).fetchall()
            )
            valued = {
                e
                for (e,) in db.execute(
                    "SELECT DISTINCT m.entity_id FROM states s JOIN states_meta m "
                    "ON s.metadata_id = m.metadata_id "
                    "WHERE s.state NOT IN ('unknown', 'unavailable', '')"
                ).fetchall()
            }
        registry = set(ha.registry())
    finally:
        ha.stop()
        driver.close()
        witness.loop_stop()
        broker.close()

    ours = {e: n for e, n in rows.items() if e in announced}
    per_hour = {e: n / station_hours for e, n in ours.items()}
    top = sorted(per_hour.items(), key=lambda kv: -kv[1])[:5]
    never = sorted(set(announced) - valued)
    wall_hz = {f"{s}/{n}": c / (station_hours * 3600) for (s, n), c in wall.items()}
    print(
        f"Home Assistant 2024.3.3 up in {started_s:.0f} s; run {hours * 60:.1f} min with "
        f"{len(configs)} stations (station-3 offline for 30 s half way, back after)"
    )
    print(f"HA log warnings+errors over the run: {len(problems)} (target 0)")
    for p in problems[:10]:
        print("   ", p.splitlines()[0][:200])
    print(
        f"stations ran {station_hours / hours:.2f}x real time; rates below are per hour "
        "(per second) of station time, as on a Pi"
    )
    print(
        f"recorder state rows per entity per hour: max {max(per_hour.values()):.0f}, "
        f"median {sorted(per_hour.values())[len(per_hour) // 2]:.0f} (target <= 720)"
    )
    # The row Home Assistant writes when it creates an entity counts six times over in a
    # ten-minute run; without it, the rate an hour of a gym settles at.
    steady = {e: (n - 1) / station_hours for e, n in ours.items()}
    print(f"    without each entity's creation row: max {max(steady.values()):.0f}/h")
    for e, r in top:
        print(f"    {e}: {r:.0f}/h ({ours[e]} rows)")
    print(
        "wall display feed alongside: "
        + ", ".join(f"{k} {v:.2f} Hz" for k, v in sorted(wall_hz.items()))
    )
    print(
        f"entities announced: {len(announced)}; in HA's registry: "
        f"{len(registry & set(announced))}; ever got a value: "
        f"{len(set(announced) & valued)} (target equal)"
    )
    if never:
        print("    never got a value: " + ", ".join(never))
    print(f"driver errors: {len(driver.errors)}")


if __name__ == "__main__":
    main()
