"""The display's MQTT client: everything under the prefix in, ``cmd/ack`` and ``cmd/session`` out.

paho-mqtt runs its network loop on its own thread; the board lives on the
display's asyncio loop. Messages are handed over in batches with
``call_soon_threadsafe`` (one wake-up per burst, not one per message), and the
broker's confirmation of a published ack comes back the same way, so nothing
here needs a lock shared with paho::

    link = MqttLink(config, loop, on_messages=board_feed, on_link=link_changed)
    link.start()
    await link.send("bench-1", Ack(id="bench-1:1732435200:0007", by="Alice", request_id="r1"))

Topics come from :class:`monitor.mqtt.topics.Topics` and payloads from the
command classes of :mod:`monitor.mqtt.messages`, as the station reads them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ..errors import MonitorError
from ..mqtt.messages import Ack, SessionCommand
from ..mqtt.topics import TopicError, Topics
from .config import DisplayConfig

log = logging.getLogger(__name__)

Message = tuple[str, bytes, bool]  # topic, payload, delivered from the retained store
PUBLISH_TIMEOUT_S = 3.0
MAX_EARLY_ACKS = 1024


class AckError(MonitorError):
    """An acknowledgement could not be sent; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class MqttLink:
    """Subscribe to ``<prefix>/#`` (in ``on_connect``, so a reconnect restores it).

    ``on_messages`` gets lists of :data:`Message` on the event loop;
    ``on_link`` gets True/False as the broker comes and goes. An error in a
    callback is logged and never stops paho's network loop.
    """

    def __init__(
        self,
        config: DisplayConfig,
        loop: asyncio.AbstractEventLoop,
        *,
        on_messages: Callable[[list[Message]], None],
        on_link: Callable[[bool], None],
    ):
        self.config = config
        self.loop = loop
        self.on_messages = on_messages
        self.on_link = on_link
        self.prefix = config.prefix.strip("/")
        client_id = f"gym-display-{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        if config.username:
            self.client.username_pw_set(config.username, config.password)
        if config.tls_ca:
            self.client.tls_set(
                ca_certs=config.tls_ca,
                certfile=config.tls_cert,
                keyfile=config.tls_key,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        self.client.reconnect_delay_set(
            min_delay=max(1, round(config.reconnect_min_s)),
            max_delay=max(1, round(config.reconnect_max_s)),
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self._connected = threading.Event()
        self._stopping = False
        self._inbox: deque[Message] = deque()
        self._inbox_lock = threading.Lock()
        self._drain_scheduled = False
        # Broker confirmations (PUBACK) by message id; touched on the event loop only.
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._early: deque[int] = deque(maxlen=MAX_EARLY_ACKS)

    def start(self) -> None:
        # connect_async + loop_start: the display comes up (and says "broker
        # offline") even when the broker is not there yet; paho keeps retrying.
        self.client.connect_async(self.config.mqtt_host, self.config.mqtt_port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # ------------------------------------------------------------ paho's thread

    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: we are stopping
            self.loop.call_soon_threadsafe(fn, *args)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("broker refused the connection: %s", reason_code)
            return
        log.info("connected to %s:%s", self.config.mqtt_host, self.config.mqtt_port)
        client.subscribe(f"{self.prefix}/#", qos=1)
        self._connected.set()
        self._call(self.on_link, True)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self._connected.is_set() and not self._stopping:
            log.warning("lost the broker (%s); reconnecting", reason_code)
        self._connected.clear()
        self._call(self.on_link, False)

    def _on_message(self, client, userdata, message) -> None:
        with self._inbox_lock:
            self._inbox.append((message.topic, message.payload, bool(message.retain)))
            if self._drain_scheduled:
                return
            self._drain_scheduled = True
        self._call(self._drain)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._call(self._published, mid, reason_code.is_failure if reason_code else False)

    # ------------------------------------------------------------ the event loop

    def _drain(self) -> None:
        with self._inbox_lock:
            batch = list(self._inbox)
            self._inbox.clear()
            self._drain_scheduled = False
        try:
            self.on_messages(batch)
        except Exception:  # a bug must not stop the display
            log.exception("error handling %d message(s)", len(batch))

    def _published(self, mid: int, failed: bool) -> None:
        future = self._waiting.pop(mid, None)
        if future is None:
            self._early.append(mid)  # confirmed before publish() returned to us
        elif not future.done():
            if failed:
                future.set_exception(AckError(502, "the broker refused the ack"))
            else:
                future.set_result(None)

    async def send(self, station: str, command: Ack | SessionCommand) -> None:
        """Publish ``command`` on ``<prefix>/<station>/cmd/<name>`` (QoS 1): an ack, or a
        check-in or check-out; wait for the broker's PUBACK."""
        try:
            topic = Topics(self.prefix, station).cmd(command.name)
        except TopicError as err:
            raise AckError(400, str(err)) from None
        if not self.connected:
            raise AckError(503, "the display is not connected to the broker")
        info = self.client.publish(topic, command.to_json(), qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise AckError(503, f"could not send: {mqtt.error_string(info.rc)}")
        if info.mid in self._early:
            self._early.remove(info.mid)
            return
        future = self.loop.create_future()
        self._waiting[info.mid] = future
        try:
            await asyncio.wait_for(future, PUBLISH_TIMEOUT_S)
        except TimeoutError:
            raise AckError(504, f"the broker did not confirm the {command.name} command") from None
        finally:
            self._waiting.pop(info.mid, None)
