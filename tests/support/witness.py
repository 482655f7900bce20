"""A witness: a real MQTT subscriber that sees what the wall display or an integrator sees.

It is paho with MQTT 5 and QoS 1 and, by default, a persistent session (``clean_start``
false and a session that outlives a broker restart), so QoS 1 messages published while it
was away are queued for it and nothing it should have seen is missed. It connects straight
to the broker, reconnects quickly, and subscribes in ``on_connect`` so a reconnect restores
its subscriptions::

    witness = Witness(broker, ["gym/+/alert"], user="integrator", password=password("integrator"))
    assert witness.subscribed.wait(10)
    ...
    witness.messages                  # every message, as (topic, payload, monotonic time)
    witness.close()

Given ``on_message(topic, payload, at)``, each message goes there instead of
:attr:`messages` (in paho's thread: keep it quick).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

Handler = Callable[[str, bytes, float], None]


class Witness:
    """A QoS 1 subscriber to ``topics`` on ``broker`` (anything with ``host`` and ``port``)."""

    def __init__(
        self,
        broker: Any,
        topics: Iterable[str],
        *,
        user: str | None = None,
        password: str | None = None,
        client_id: str = "witness",
        persistent: bool = True,
        on_message: Handler | None = None,
        keepalive: int = 10,
    ):
        self.topics = list(topics)
        self.lock = threading.Lock()
        self.messages: list[tuple[str, bytes, float]] = []
        self.subscribed = threading.Event()
        self._handler = on_message
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        if user is not None:
            self.client.username_pw_set(user, password)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        props = None
        if persistent:  # queue QoS 1 for us while we are away, across a broker restart too
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
        self.client.connect_async(
            broker.host,
            broker.port,
            keepalive=keepalive,
            clean_start=not persistent,
            properties=props,
        )
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            client.subscribe([(topic, 1) for topic in self.topics])

    def _on_message(self, client, userdata, message) -> None:
        now = time.monotonic()
        if self._handler is not None:
            self._handler(message.topic, bytes(message.payload), now)
            return
        with self.lock:
            self.messages.append((message.topic, bytes(message.payload), now))

    def snapshot(self) -> list[tuple[str, bytes, float]]:
        """The messages so far (when there is no ``on_message``)."""
        with self.lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
