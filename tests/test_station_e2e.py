"""The station end to end: simulated chips, a real Mosquitto with the repo's ACL, mock GPIO pins.

The runner is the one `gym-monitor run` uses; only the I2C chips are simulated.
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from gpiozero.pins.mock import MockFactory
from paho.mqtt.enums import CallbackAPIVersion

from monitor.alerts import AlertConfig
from monitor.clock import SimClock
from monitor.config import Config, GpioConfig, ImuConfig, MqttConfig, StationConfig
from monitor.notify import SystemdNotifier
from monitor.runner import StationRunner
from tests.support.mosquitto import SHIPPED_ACL as ACL
from tests.support.mosquitto import gym_config, password

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def broker(mosquitto_factory, secrets):
    return mosquitto_factory(gym_config(secrets / "passwd", acl_file=ACL), allow_anonymous=False)


class Listener:
    """A real paho client that records everything under gym/#."""

    def __init__(self, broker, secrets, user="integrator"):
        self.messages: list[tuple[str, bytes, bool]] = []
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"listener-{user}-{time.monotonic_ns()}"
        )
        self.client.username_pw_set(user, password(user))
        self.client.on_message = lambda c, u, m: self.messages.append(
            (m.topic, m.payload, m.retain)
        )
        self.client.on_connect = lambda c, u, f, rc, p=None: c.subscribe("gym/#", qos=1)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def payloads(self, topic: str) -> list[dict]:
        return [json.loads(p) for t, p, _ in self.messages if t == topic and p.startswith(b"{")]

    def wait_for(self, predicate, timeout=30.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(0.05)
        return False

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def station_config(broker, secrets, tmp_path, scenario="fall", placement="body", **alerts):
    return Config(
        station=StationConfig(
            id="bench-1", name="Bench 1", simulate=True, state_dir=tmp_path / "state", seed=1
        ),
        imus=(
            ImuConfig(
                "chest", "mpu6050", 0x68, rate_hz=250, placement=placement, scenario=scenario
            ),
        ),
        mqtt=MqttConfig(
            host=broker.host,
            port=broker.port,
            username="bench-1",
            password_file=str(secrets / "bench-1.pw"),
        ),
        alerts=AlertConfig(**alerts),
        gpio=GpioConfig(enabled=True),
    )


def run_until(runner, clock, done, timeout=30.0, step=0.1):
    """Cycle the runner on simulated time until ``done()`` (real seconds for MQTT to answer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runner.cycle()
        clock.sleep(step)
        if done():
            return True
        time.sleep(0.005)
    return False


def test_a_fall_reaches_the_broker_and_the_leds_is_acknowledged_by_name_and_sounds_again(
    broker, secrets, tmp_path
):
    clock = SimClock()
    runner = StationRunner(
        station_config(broker, secrets, tmp_path, ack_silence_s=60.0),
        simulate=True,
        clock=clock,
        pin_factory=MockFactory(),
    )
    listen = Listener(broker, secrets)
    runner.start()
    try:
        assert listen.wait_for(
            lambda: any(t == "gym/bench-1/status" and p == b"online" for t, p, _ in listen.messages)
        )
        while clock.now() < 120:
            runner.cycle()
            clock.sleep(0.1)
        assert listen.wait_for(
            lambda: any(a["code"] == "redflag.fall" for a in listen.payloads("gym/bench-1/alert"))
        )
        fall = next(a for a in listen.payloads("gym/bench-1/alert") if a["code"] == "redflag.fall")
        assert fall["level"] == "urgent" and fall["red_flag"] and "medical advice" in fall["advice"]
        panel = runner.panel
        assert panel.red.is_lit and not panel.green.is_lit and panel.level == "urgent"
        assert listen.payloads("gym/bench-1/tremor"), "tremor metrics flow too"
        # The wall display acknowledges it with its own credentials, naming the staff member.
        display = Listener(broker, secrets, user="display")
        display.client.publish(
            "gym/bench-1/cmd/ack", json.dumps({"v": 1, "id": fall["id"], "by": "Anna"}), qos=1
        )
        assert run_until(runner, clock, lambda: runner.station.alerts.active() == [])
        acked_at = clock.wall()
        assert listen.wait_for(
            lambda: any(
                a["id"] == fall["id"] and a["state"] == "acknowledged"
                for a in listen.payloads("gym/bench-1/alert")
            )
        )
        ack = next(a for a in listen.payloads("gym/bench-1/alert") if a["state"] == "acknowledged")
        assert ack["by"] == "Anna" and abs(ack["acked_ts"] - acked_at) < 2
        assert abs(ack["silenced_until_ts"] - (ack["acked_ts"] + 60.0)) < 1e-6
        assert listen.wait_for(
            lambda: any(r["ok"] for r in listen.payloads("gym/bench-1/cmd/ack/result"))
        )
        # Silenced, not forgotten: red stays, the buzzer stops; the wall learns who acknowledged it.
        assert panel.level == "silenced" and panel.red.is_lit and not panel.green.is_lit
        assert panel._alarm is None and not panel.buzzer.is_active
        assert listen.wait_for(
            lambda: listen.payloads("gym/bench-1/alerts/active")[-1]["alerts"] == []
        )
        active = listen.payloads("gym/bench-1/alerts/active")[-1]
        assert [a["id"] for a in active["acknowledged"]] == [fall["id"]]
        assert active["acknowledged"][0]["by"] == "Anna"
        # A second ack of the same alert (a double click, a re-sent command) is fine and changes
        # nothing.
        display.client.publish(
            "gym/bench-1/cmd/ack", json.dumps({"v": 1, "id": fall["id"], "by": "Anna"}), qos=1
        )
        assert run_until(
            runner, clock, lambda: len(listen.payloads("gym/bench-1/cmd/ack/result")) >= 2
        )
        assert all(r["ok"] for r in listen.payloads("gym/bench-1/cmd/ack/result"))
        # The fall still holds (fall_keep_s) when the silence ends: it is raised again, the buzzer
        # sounds.
        t_ack = clock.now()
        while clock.now() < t_ack + 61:
            runner.cycle()
            clock.sleep(0.1)
        again = runner.station.alerts.active()
        assert [a.code for a in again] == ["redflag.fall"] and again[0].id != fall["id"]
        assert again[0].follows == fall["id"]
        assert panel.level == "urgent" and panel._alarm is not None
        assert listen.wait_for(
            lambda: any(
                a["id"] == again[0].id and a["state"] == "raised" and a["follows"] == fall["id"]
                for a in listen.payloads("gym/bench-1/alert")
            )
        )
        display.close()
    finally:
        runner.stop()
        listen.close()
    assert any(t == "gym/bench-1/status" and p == b"offline" for t, p, _ in listen.messages)
    assert runner.panel.closed  # close() turns every LED and the buzzer off (tests/test_gpio.py)


def test_bad_commands_are_answered_and_the_station_keeps_going(broker, secrets, tmp_path):
    clock = SimClock()
    runner = StationRunner(
        station_config(broker, secrets, tmp_path, scenario="rest", placement="limb"),
        simulate=True,
        clock=clock,
        pin_factory=MockFactory(),
    )
    listen = Listener(broker, secrets)
    op = Listener(broker, secrets, user="operator")
    runner.start()
    try:
        # The station subscribes to its commands before it says it is online.
        assert listen.wait_for(
            lambda: any(t == "gym/bench-1/status" and p == b"online" for t, p, _ in listen.messages)
        )
        for payload in (
            b"not json",
            b'{"v": 2}',
            json.dumps({"v": 1, "id": "no-such-alert"}).encode(),
        ):
            op.client.publish("gym/bench-1/cmd/ack", payload, qos=1)
        op.client.publish(
            "gym/bench-1/cmd/session",
            json.dumps({"v": 1, "action": "start", "request_id": "r1"}),
            qos=1,
        )
        end = time.monotonic() + 10
        while time.monotonic() < end and (
            len(listen.payloads("gym/bench-1/cmd/session/result")) < 1
            or len(listen.payloads("gym/bench-1/cmd/ack/result")) < 3
        ):
            runner.cycle()
            clock.sleep(0.1)
            time.sleep(0.01)
        results = listen.payloads("gym/bench-1/cmd/ack/result")
        assert len(results) == 3 and not any(r["ok"] for r in results)
        assert any("no active alert" in r["error"] for r in results)
        [started] = listen.payloads("gym/bench-1/cmd/session/result")
        assert started["ok"] and started["request_id"] == "r1"
        assert runner.station.session.active
    finally:
        runner.stop()
        listen.close()
        op.close()


def test_sigterm_publishes_offline_and_leaves_nothing_unsent(broker, secrets, tmp_path):
    state = tmp_path / "state"
    cfg = tmp_path / "monitor.toml"
    cfg.write_text(f"""
[station]
id = "bench-1"
simulate = true
state_dir = "{state}"
[[imu]]
name = "wrist"
rate_hz = 250
[scale]
mode = "bottle"
[mqtt]
host = "{broker.host}"
port = {broker.port}
username = "bench-1"
password_file = "{secrets / "bench-1.pw"}"
[gpio]
enabled = true
""")
    listen = Listener(broker, secrets)
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "run", "--config", str(cfg)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert listen.wait_for(
            lambda: len(listen.payloads("gym/bench-1/tremor")) >= 4, timeout=20
        ), proc.stdout
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert listen.wait_for(
        lambda: any(t == "gym/bench-1/status" and p == b"offline" for t, p, _ in listen.messages)
    )
    listen.close()
    with sqlite3.connect(state / "outbox.sqlite3") as db:
        stored = db.execute("select count(*) from outbox").fetchone()[0]
    assert stored == 0


def test_systemd_hears_ready_and_the_watchdog(tmp_path):
    sock_path = tmp_path / "notify"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(sock_path))
    server.settimeout(2)
    clock = SimClock()
    cfg = Config(
        station=StationConfig(id="bench-1", simulate=True, state_dir=tmp_path / "s"),
        imus=(ImuConfig("wrist", rate_hz=250, scenario="rest"),),
        mqtt=MqttConfig(enabled=False),
    )
    runner = StationRunner(
        cfg, simulate=True, clock=clock, notifier=SystemdNotifier(str(sock_path))
    )
    runner.start()
    for _ in range(3):
        runner.cycle()
        clock.sleep(0.1)
    runner.stop()
    got = []
    try:
        while True:
            got.append(server.recv(256))
    except TimeoutError:
        pass
    server.close()
    assert got[0] == b"READY=1"
    assert got.count(b"WATCHDOG=1") == 3
    assert got[-1] == b"STOPPING=1"
