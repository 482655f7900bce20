"""Staff and coaches at work: floods of session commands, panel presses, acknowledgements."""

from __future__ import annotations

import json
import random
import threading
from collections import Counter

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.mosquitto import MosquittoBroker, password

from .options import FLOOD_COMMANDS, FLOOD_PRESSES, FLOOD_WAIT_S, OPERATOR_USER
from .stations import StationThread
from .witness import AlertWitness


class Operator:
    """Staff and coaches at work, straight to the broker as ``operator``: floods of session
    commands, presses of the panel buttons, and acknowledgements of urgent alerts by name."""

    def __init__(self, broker: MosquittoBroker, rng: random.Random, user: str = OPERATOR_USER):
        self.rng = rng
        self.floods = self.commands = self.presses = self.acks = 0
        self.sent: Counter[str] = Counter()  # session commands, by station
        self.skipped: list[str] = []  # stations a flood left out: not online when it began
        self.acked: list[tuple[str, str]] = []
        self.connected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="chaos-operator", protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(user, password(user))
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_connect = lambda *a: self.connected.set()
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect_async(broker.host, broker.port, keepalive=10)
        self.client.loop_start()

    def flood(self, ids: list[str], stations: list[StationThread], witness: AlertWitness) -> None:
        """Start/stop, start/stop ... as fast as MQTT goes, and the panel buttons pressed in bursts.

        Only at stations that are online: the session of a station that is away is clean, so
        the broker would drop its commands, and each command sent must be answered. A station
        still away after a few seconds is left out of this flood (and listed in ``skipped``).
        """
        self.floods += 1
        away = witness.wait_online(ids, timeout=FLOOD_WAIT_S)
        self.skipped += away
        for sid in ids:
            if sid in away:
                continue
            for i in range(FLOOD_COMMANDS):
                action = "start" if (i + self.rng.randrange(2)) % 2 else "stop"
                self.client.publish(
                    f"gym/{sid}/cmd/session", json.dumps({"v": 1, "action": action}), qos=1
                )
                self.commands += 1
                self.sent[sid] += 1
        for st in stations:
            st.press(FLOOD_PRESSES)
            self.presses += FLOOD_PRESSES

    def ack(self, witness: AlertWitness) -> None:
        """Acknowledge one urgent alert a station lists as active, as a member of staff would."""
        with witness.lock:
            urgent = [
                (sid, a["id"])
                for sid, lst in witness.active.items()
                for a in lst.get("alerts", [])
                if a.get("level") == "urgent"
            ]
        if not urgent:
            return
        sid, alert_id = self.rng.choice(urgent)
        self.client.publish(
            f"gym/{sid}/cmd/ack", json.dumps({"v": 1, "id": alert_id, "by": "Chaos Staff"}), qos=1
        )
        self.acks += 1
        self.acked.append((sid, alert_id))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
