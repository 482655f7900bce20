"""The demo's embedded broker (amqtt) hands out retained messages as Mosquitto does.

The same clients run against the embedded broker and a real Mosquitto; what each
subscriber receives must be the same, and exactly the retained messages its own
filter matches (paho's topic_matches_sub says which), each once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

pytest.importorskip("amqtt")

RETAINED = (
    "gym/a/status",
    "gym/b/status",
    "gym/a/alerts/active",
    "gym/b/session",
    "gym/a/cmd/ack",
    "homeassistant/sensor/a/x/config",
    "other/x",
)
FILTERS = (
    "gym/a/status",
    "gym/+/status",
    "gym/a/#",
    "gym/#",
    "#",
    "x/y",
    "gym/+/session",
    "homeassistant/#",
)


def _client(host: str, port: int, client_id: str, **kwargs) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, **kwargs)
    c.connect(host, port, keepalive=10)
    c.loop_start()
    return c


def received_per_filter(host: str, port: int) -> dict[str, list[str]]:
    """Publish RETAINED, then give each filter a fresh subscriber; the topics each got."""
    pub = _client(host, port, "retainer")
    for topic in RETAINED:
        pub.publish(topic, topic.encode(), qos=1, retain=True).wait_for_publish(3)
    # Someone who stays subscribed to everything: other sessions' filters must not leak.
    bystander = _client(host, port, "bystander")
    bystander.subscribe("#", 1)
    time.sleep(0.2)
    got: dict[str, list[str]] = {}
    for n, flt in enumerate(FILTERS):
        topics: list[str] = []
        subscribed = threading.Event()
        sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sub-{n}")
        sub.on_message = lambda c, u, m, topics=topics: topics.append(m.topic)
        sub.on_subscribe = lambda *a, ev=subscribed: ev.set()
        sub.on_connect = lambda c, u, f, rc, p, flt=flt: c.subscribe(flt, 1)
        sub.connect(host, port, keepalive=10)
        sub.loop_start()
        assert subscribed.wait(5), flt
        time.sleep(0.25)  # retained messages follow the SUBACK
        sub.disconnect()
        sub.loop_stop()
        got[flt] = sorted(topics)
    for c in (pub, bystander):
        c.disconnect()
        c.loop_stop()
    return got


def expected() -> dict[str, list[str]]:
    return {f: sorted(t for t in RETAINED if mqtt.topic_matches_sub(f, t)) for f in FILTERS}


@pytest.fixture
def embedded() -> Callable[[], tuple[str, int]]:
    from monitor.mqtt.embedded_broker import EmbeddedBroker

    broker = EmbeddedBroker(port=0).start()
    yield broker.host, broker.port
    broker.stop()


def test_a_subscriber_gets_only_the_retained_messages_its_filter_matches(embedded):
    assert received_per_filter(*embedded) == expected()


def test_the_embedded_broker_agrees_with_mosquitto(embedded, mosquitto_factory):
    mosquitto = mosquitto_factory()
    assert received_per_filter(*embedded) == received_per_filter(mosquitto.host, mosquitto.port)


def test_a_client_that_subscribes_to_nothing_gets_nothing(embedded):
    host, port = embedded
    pub = _client(host, port, "retainer")
    pub.publish("gym/a/status", b"online", qos=1, retain=True).wait_for_publish(3)
    watcher = _client(host, port, "watcher")
    watcher.subscribe("gym/#", 1)
    time.sleep(0.2)
    got: list[str] = []
    quiet = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="quiet")
    quiet.on_message = lambda c, u, m: got.append(m.topic)
    quiet.connect(host, port, keepalive=10)
    quiet.loop_start()
    time.sleep(0.5)
    for c in (pub, watcher, quiet):
        c.disconnect()
        c.loop_stop()
    assert got == []
