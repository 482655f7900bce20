"""``gym-monitor demo``: athletes take turns at the first station, and a newcomer sees the whole
cycle (check-in, a set, check-out, the session record on the broker, the profile the history
service makes of it) within the demo's first three minutes.

The demo runs as a person starts it, against a real Mosquitto, at 4x so that three simulated
minutes take under a minute.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from monitor.mqtt.messages import Card, Profile, SessionRecord
from tests.support.display import REPO

pytest_plugins = ["tests.support.display"]

SPEED = 4.0


class Listener:
    def __init__(self, broker):
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, *a: c.subscribe("gym/#", qos=1)
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_message(self, client, userdata, m):
        with self.lock:
            self.messages.append((m.topic, bytes(m.payload)))

    def payloads(self, pattern: str) -> list[tuple[str, bytes]]:
        with self.lock:
            return [(t, p) for t, p in self.messages if re.fullmatch(pattern, t) and p]

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def test_the_demos_first_check_out_and_its_record_come_within_three_minutes(mosquitto):
    listen = Listener(mosquitto)
    started = time.time()  # no later than the demo's clock starts: a conservative origin
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor.cli",
            "demo",
            "--stations",
            "1",
            "--speed",
            str(SPEED),
            "--seconds",
            "60",
            "--broker",
            f"127.0.0.1:{mosquitto.port}",
            "--http-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("take turns" in x for x in lines):
            lines.append(proc.stdout.readline())
        text = "".join(lines)
        coach = re.search(r"coach pages \(same login\): (http://\S+)", text).group(1)
        assert "Sam, Alex, Jo take turns at Bench press" in text
        # The history service is up, behind the staff login.
        try:
            with urllib.request.urlopen(coach, timeout=10) as reply:
                assert "/login" in reply.url
        except urllib.error.HTTPError as err:
            assert err.code in (401, 303), err
        deadline = time.monotonic() + 180 / SPEED + 20
        while time.monotonic() < deadline and not listen.payloads(r"gym/bench-1/session_record"):
            time.sleep(0.2)
        records = [
            SessionRecord.from_json(p) for _, p in listen.payloads(r"gym/bench-1/session_record")
        ]
        assert records, "no session record"
        first = records[0]
        # Within the first three minutes of the demo's (4x) clock, ended by the athlete's tap.
        assert first.ended_ts - started <= 180.0, first.ended_ts - started
        assert first.end_reason == "tap" and first.athlete and not first.guest
        # The athlete is one the gym named (the wall shows "Sam"), and the history service
        # merged the record's baseline into their profile and published it.
        cards = {
            Card.from_json(p).athlete: Card.from_json(p).display_name
            for _, p in listen.payloads(r"gym/_athletes/[^/]+/card")
        }
        assert cards.get(first.athlete) == "Sam", cards
        deadline = time.monotonic() + 15
        profile_topic = f"gym/_athletes/{first.athlete}/profile"
        while time.monotonic() < deadline and not listen.payloads(re.escape(profile_topic)):
            time.sleep(0.2)
        profile = Profile.from_json(listen.payloads(re.escape(profile_topic))[-1][1])
        if first.profile_update is not None:
            assert dict(profile.baselines_mg) == dict(first.profile_update.baselines_mg)
        assert profile.updated_ts == first.ended_ts
        # Who is checked in was on the broker all along, and names never are.
        assert any(
            json.loads(p)["athlete"] == first.athlete
            for _, p in listen.payloads(r"gym/bench-1/athlete")
        )
        assert not any(
            b"Sam" in p for t, p in listen.messages if not t.startswith("gym/_athletes/")
        )
    finally:
        proc.terminate()
        proc.wait(30)
        listen.close()
    assert "Traceback" not in proc.stderr.read()
