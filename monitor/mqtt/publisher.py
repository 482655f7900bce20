"""The station's MQTT client: publishes metrics, state and alerts, takes commands.

One object per station. The station loop calls ``publish_*`` from its own
thread; paho's network thread calls back; a sender thread drains the durable
:class:`~monitor.mqtt.outbox.Outbox`; a command thread runs the station's
command callback so a slow command never stalls the network loop::

    outbox = Outbox("/var/lib/gym-monitor/outbox.sqlite3")
    pub = MqttPublisher("bench-1", host="broker.local", username="bench-1",
                        password_file="/etc/gym-monitor/mqtt-password",
                        outbox=outbox, on_command=uplink.handle).start()
    pub.publish_tremor(Tremor(station="bench-1", sensor="wrist", rms_mg=12.3, ...))
    pub.publish_alert(AlertEvent(station="bench-1", id="bench-1:1732435200:0007", ...))
    ...

Everything published is a message of :mod:`monitor.mqtt.messages` (built, and
so checked, by its producer); the publisher checks that it is this station's
and sends its ``to_json()``.
    pub.close()          # flush what it can, retained "offline", clean disconnect
    outbox.close()

Delivery, by kind (see PAYLOADS.md):

* ``tremor`` -- QoS 0, never stored: a live metric is worthless later, so
  it is dropped while the broker is away (and counted).
* ``session``, ``hydration``, ``alerts/active`` -- retained QoS 1 through the
  outbox, coalesced: only the newest unsent one per kind is kept. The latest
  of each is also republished after every connect, because a broker that
  restarted without persistence has forgotten its retained messages.
* ``alert`` -- QoS 1 through the outbox, stored with fsync before it is
  handed to paho, deleted on PUBACK, re-sent after a reconnect or a restart:
  at least once, never lost. Subscribers drop duplicates by (id, state).
* ``session_record`` -- the same, never dropped either (stored by id).
* ``athlete`` -- who is checked in: retained QoS 1 through the outbox, like state.

Athletes' profiles come the other way: :meth:`MqttPublisher.request_profile`
subscribes to one athlete's retained profile and hands each payload that
arrives to a callback (on paho's thread: keep it quick), until cancelled; the
subscription is made again after every reconnect while it is wanted.

Ordering across a reconnect. paho re-sends the messages it still holds
(those in flight when the link dropped) right *after* ``on_connect``
returns. New outbox rows must not overtake them, so the sender waits for the
PUBACK of the ``online`` status published in ``on_connect``: by then paho's
re-sends are on the wire ahead of anything new.
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import ssl
import stat
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ..errors import ConfigError, MonitorError
from ..files import read_small_file, regular_file_problem
from .discovery import StationInfo, discovery_messages
from .messages import (
    ActiveAlerts,
    AlertEvent,
    AnyCommand,
    CheckIn,
    CommandError,
    CommandResult,
    Hydration,
    SessionRecord,
    SessionReport,
    Tremor,
    parse_command,
)
from .messages.telemetry import FromStation
from .outbox import ALERT, SESSION_RECORD, Outbox
from .topics import HA_PREFIX, Topics, validate_station_id

log = logging.getLogger(__name__)

M = TypeVar("M", bound=FromStation)

PROTOCOLS = {"v5": mqtt.MQTTv5, "v311": mqtt.MQTTv311}
STATE_KINDS = ("session", "hydration")
#: If the ``online`` PUBACK never comes (it always should), drain anyway after this long.
READY_FALLBACK_S = 5.0
#: Commands waiting for the command thread; beyond this the sender is told "busy".
COMMAND_QUEUE = 32
MAX_ERROR_TEXT = 200

#: ``on_command(command)`` returns None (or True) for success, or an error string.
CommandHandler = Callable[[AnyCommand], "str | bool | None"]


class MqttError(MonitorError, RuntimeError):
    """The MQTT layer was used wrongly (closed publisher, payload for another station)."""


@dataclass(frozen=True)
class PublisherStats:
    """Counters since start (the outbox has its own: ``outbox.stats()``)."""

    connected: bool
    connects: int
    tremor_sent: int
    tremor_dropped: int
    commands_ok: int
    commands_failed: int
    commands_rejected: int


#: A password file holds one line; anything much bigger is the wrong file.
MAX_PASSWORD_FILE = 4096


def read_password_file(
    path: str | os.PathLike[str], key: str = "mqtt.password_file", *, warn: bool = True
) -> str:
    """The password in ``path`` (trailing newline stripped); ConfigError naming the file if not.

    A directory, a FIFO or a device is refused without reading (monitor.files).
    """
    p = Path(path)
    try:
        data = read_small_file(p, key, limit=MAX_PASSWORD_FILE)
    except ConfigError as err:
        if "permission denied" in err.problem:
            raise ConfigError(
                key,
                f"{p}: cannot be read (permission denied); it should belong to "
                "the user the station runs as, mode 600",
            ) from None
        raise
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(key, f"{p}: is not UTF-8 text") from None
    password = text.rstrip("\r\n")
    if not password:
        raise ConfigError(key, f"{p}: is empty")
    if "\n" in password or "\x00" in password:
        raise ConfigError(key, f"{p}: must hold the password on one line")
    try:
        if warn and p.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("%s is readable by other users; chmod 600 it", p)
    except OSError:
        pass
    return password


def _check_file(key: str, path: str | os.PathLike[str] | None) -> str | None:
    if path is None:
        return None
    problem = regular_file_problem(path)
    if problem:
        raise ConfigError(key, problem)
    return str(path)


class MqttPublisher:
    """Publishes one station's topics and receives its commands. See the module docstring.

    Nothing connects until :meth:`start`; the broker may be down then, paho
    keeps retrying (``reconnect_min_s`` doubling up to ``reconnect_max_s``).
    """

    def __init__(
        self,
        station_id: str,
        *,
        host: str,
        port: int = 1883,
        prefix: str = "gym",
        username: str | None = None,
        password_file: str | os.PathLike[str] | None = None,
        tls_ca: str | os.PathLike[str] | None = None,
        tls_cert: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
        protocol: str = "v5",
        outbox: Outbox,
        client_id: str | None = None,
        keepalive: int = 30,
        on_command: CommandHandler | None = None,
        discovery: StationInfo | None = None,
        ha_discovery: bool = True,
        discovery_prefix: str = HA_PREFIX,
        reconnect_min_s: float = 0.5,
        reconnect_max_s: float = 2.0,
        flush_timeout_s: float = 5.0,
    ):
        self.station = validate_station_id(station_id)
        self.topics = Topics(prefix, station_id)
        if protocol not in PROTOCOLS:
            raise ConfigError(
                "mqtt.protocol", f"must be one of {', '.join(PROTOCOLS)}, not {protocol!r}"
            )
        if password_file is not None and not username:
            raise ConfigError("mqtt.username", "is required when mqtt.password_file is set")
        if (tls_cert is None) != (tls_key is None):
            raise ConfigError("mqtt.tls_cert", "tls_cert and tls_key go together")
        self.host, self.port, self.keepalive = host, port, keepalive
        self.protocol = protocol
        self.outbox = outbox
        self.on_command = on_command
        self.flush_timeout_s = flush_timeout_s
        self.discovery_prefix = discovery_prefix
        self._discovery = (
            discovery_messages(
                self.topics, discovery or StationInfo(station_id), prefix=discovery_prefix
            )
            if ha_discovery
            else []
        )

        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"gym-station-{station_id}",
            protocol=PROTOCOLS[protocol],
            clean_session=True if protocol == "v311" else None,
        )
        if username:
            password = read_password_file(password_file) if password_file is not None else None
            self._client.username_pw_set(username, password)
        if tls_ca or tls_cert:
            try:
                self._client.tls_set(
                    ca_certs=_check_file("mqtt.tls_ca", tls_ca),
                    certfile=_check_file("mqtt.tls_cert", tls_cert),
                    keyfile=_check_file("mqtt.tls_key", tls_key),
                    cert_reqs=ssl.CERT_REQUIRED,
                )
            except ConfigError:
                raise
            except (ssl.SSLError, OSError, ValueError) as err:
                raise ConfigError(
                    "mqtt.tls_ca",
                    f"cannot use the TLS files ({tls_ca}, {tls_cert}, {tls_key}): {err}",
                ) from None
        # The broker says "offline" for us if we vanish without a DISCONNECT.
        self._client.will_set(self.topics.status, "offline", qos=1, retain=True)
        # paho's hints say int; it waits fractions of a second as well (the tests reconnect fast).
        self._client.reconnect_delay_set(
            min_delay=reconnect_min_s,  # type: ignore[arg-type]
            max_delay=reconnect_max_s,  # type: ignore[arg-type]
        )
        # Our window, plus room for what on_connect publishes directly (status,
        # retained state, discovery) and command replies.
        self._client.max_inflight_messages_set(outbox.max_inflight + len(self._discovery) + 16)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message

        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._connected = False
        self._ready = False
        self._connected_at = 0.0
        self._online_mid: int | None = None
        self._last_state: dict[str, bytes] = {}  # topic -> latest retained payload
        self._profiles: dict[str, Callable[[bytes], None]] = {}  # profile topic -> deliver
        self._started = False
        self._closing = False
        self._closed = False
        self._refusal_logged: str | None = None
        self._commands: queue.Queue[tuple[str, bytes, Response] | None] = queue.Queue(COMMAND_QUEUE)
        self._connects = self._tremor_sent = self._tremor_dropped = 0
        self._commands_ok = self._commands_failed = self._commands_rejected = 0
        self._sender = threading.Thread(
            target=self._send_loop, name=f"mqtt-send-{station_id}", daemon=True
        )
        self._command_thread = threading.Thread(
            target=self._command_loop, name=f"mqtt-cmd-{station_id}", daemon=True
        )
        # A fresh client holds none of the outbox's rows: all of them are to be sent.
        outbox.forget_inflight()

    # ------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Connect in the background and return at once (the broker may be down)."""
        if self._started:
            return self
        self._started = True
        if self.protocol == "v5":
            self._client.connect_async(
                self.host, self.port, keepalive=self.keepalive, clean_start=True
            )
        else:
            self._client.connect_async(self.host, self.port, keepalive=self.keepalive)
        self._client.loop_start()
        self._sender.start()
        self._command_thread.start()
        return self

    def close(self, timeout: float | None = None) -> None:
        """Send what can be sent within ``timeout`` s, publish retained ``offline``, disconnect.

        Unacknowledged outbox rows stay in the file for the next start.
        """
        if self._closed:
            return
        self._closed = True
        if not self._started:
            return
        deadline = time.monotonic() + (self.flush_timeout_s if timeout is None else timeout)
        while self.outbox.pending and self.connected and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.02)
        self._closing = True
        if self.connected:
            info = self._client.publish(self.topics.status, "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(max(0.5, deadline - time.monotonic()))
            except (RuntimeError, ValueError) as err:
                log.warning("could not publish offline status: %s", err)
        self._client.disconnect()
        self._client.loop_stop()
        self._wake.set()
        self._commands.put(None)
        self._sender.join(2.0)
        self._command_thread.join(2.0)
        stored = self.outbox.pending - self.outbox.held
        held = self.outbox.held
        if held:
            log.error(
                "MQTT closed; %d message(s) left in the outbox file for the next start, and %d "
                "held in memory (the disk is full) that the broker never acknowledged: those "
                "are lost",
                stored,
                held,
            )
        else:
            log.info("MQTT closed; %d message(s) left in the outbox for the next start", stored)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def alive(self) -> bool:
        """paho's network loop and our sender thread are running: what a watchdog ping vouches for.

        True while disconnected and retrying, which is the loop doing its job;
        False once a thread has died, which only a restart mends.
        """
        if not self._started or self._closed:
            return False
        net = getattr(self._client, "_thread", None)  # paho's loop_start() thread
        return self._sender.is_alive() and net is not None and net.is_alive()

    @property
    def connected(self) -> bool:
        return self._connected

    def stats(self) -> PublisherStats:
        return PublisherStats(
            self._connected,
            self._connects,
            self._tremor_sent,
            self._tremor_dropped,
            self._commands_ok,
            self._commands_failed,
            self._commands_rejected,
        )

    # ------------------------------------------------------------ publishing

    def _data(self, message: M | Mapping[str, Any], kind: type[M]) -> bytes:
        """The bytes of this station's ``message``.

        A message was checked when it was built and goes out as it is. A payload given as a
        dict (the builders of :mod:`monitor.mqtt.payloads`) is read as its message first, so
        that nothing leaves that a reader would refuse; without a station it is this one's.
        """
        if self._closed:
            raise MqttError("publisher is closed")
        if isinstance(message, Mapping):
            message = kind.from_dict({"station": self.station, **message})
        if message.station != self.station:
            raise MqttError(f"payload is for station {message.station!r}, this is {self.station!r}")
        return message.to_json()

    def publish_tremor(self, message: Tremor | Mapping[str, Any]) -> bool:
        """QoS 0, not stored. Returns False (and counts it) when offline: the value is dropped."""
        data = self._data(message, Tremor)
        if not self._connected:
            self._tremor_dropped += 1
            return False
        info = self._client.publish(self.topics.tremor, data, qos=0)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._tremor_dropped += 1
            return False
        self._tremor_sent += 1
        return True

    def publish_state(
        self, kind: str, message: SessionReport | Hydration | Mapping[str, Any]
    ) -> int | None:
        """``session`` or ``hydration``: retained QoS 1 via the outbox, older unsent ones
        coalesced."""
        if kind not in STATE_KINDS:
            raise ValueError(f"kind must be one of {', '.join(STATE_KINDS)}, not {kind!r}")
        cls: type[SessionReport | Hydration] = SessionReport if kind == "session" else Hydration
        return self._retained(kind, getattr(self.topics, kind), self._data(message, cls))

    def publish_active_alerts(self, message: ActiveAlerts | Mapping[str, Any]) -> int | None:
        """``alerts/active``: retained QoS 1 via the outbox, coalesced like state."""
        return self._retained(
            "alerts_active", self.topics.alerts_active, self._data(message, ActiveAlerts)
        )

    def _retained(self, kind: str, topic: str, data: bytes) -> int | None:
        with self._lock:
            self._last_state[topic] = data
        row = self.outbox.add(topic, data, kind=kind, retain=True, coalesce=True)
        self._wake.set()
        return row

    def publish_alert(self, message: AlertEvent | Mapping[str, Any]) -> int:
        """One alert event, QoS 1, durable. Returns the outbox row id.

        A negative id means the disk refused it: the outbox holds it in memory
        and it is published directly while the broker is up (see the outbox).
        """
        row = self.outbox.add(self.topics.alert, self._data(message, AlertEvent), kind=ALERT)
        self._wake.set()
        if row is None:  # the outbox never drops an alert; this would be a bug worth a loud line
            log.critical("the outbox dropped an alert on %s", self.topics.alert)
            return 0
        return row

    def publish_checkin(self, message: CheckIn | Mapping[str, Any]) -> int | None:
        """``athlete``: who is checked in, retained QoS 1 via the outbox, coalesced like state."""
        return self._retained("athlete", self.topics.athlete, self._data(message, CheckIn))

    def publish_session_record(self, message: SessionRecord | Mapping[str, Any]) -> int:
        """One session record, QoS 1, durable and never dropped (like an alert). The row id."""
        data = self._data(message, SessionRecord)
        row = self.outbox.add(self.topics.session_record, data, kind=SESSION_RECORD)
        self._wake.set()
        return row or 0

    def request_profile(self, athlete: str, deliver: Callable[[bytes], None]) -> Callable[[], None]:
        """Subscribe to ``athlete``'s retained profile; ``deliver(payload)`` gets each one that
        arrives (an empty payload: none, or forgotten). Returns the function that stops it."""
        topic = self.topics.profile(athlete)
        with self._lock:
            self._profiles[topic] = deliver
            connected = self._connected
        if connected:
            self._client.subscribe(topic, qos=1)

        def cancel() -> None:
            with self._lock:
                wanted = self._profiles.pop(topic, None) is not None
                connected = self._connected
            if wanted and connected and not self._closed:
                self._client.unsubscribe(topic)

        return cancel

    def republish_discovery(self) -> None:
        """Send the Home Assistant discovery configs again (retained, QoS 1)."""
        for topic, data in self._discovery:
            self._client.publish(topic, data, qos=1, retain=True)

    def set_discovery(self, messages: list[tuple[str, bytes]]) -> None:
        """Replace the discovery messages (an empty payload removes a config); sent at once if
        up."""
        self._discovery = list(messages)
        self._client.max_inflight_messages_set(self.outbox.max_inflight + len(self._discovery) + 16)
        if self._connected:
            self.republish_discovery()

    def publish_live_state(self, topic: str, data: bytes) -> bool:
        """Retained QoS 1 straight to paho, not stored: a feed whose newest value is all that
        matters (Home Assistant's). The latest per topic goes out again after every connect."""
        with self._lock:
            self._last_state[topic] = data
            connected = self._connected
        if connected:
            self._client.publish(topic, data, qos=1, retain=True)
        return connected

    # ------------------------------------------------------------ paho callbacks (paho's thread)

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        if reason_code.is_failure:
            text = str(reason_code)
            if text != self._refusal_logged:  # once per reason, not every retry
                self._refusal_logged = text
                hint = (
                    " (check mqtt.username, the password file and the broker's password_file)"
                    if "authori" in text.lower() or "password" in text.lower()
                    else ""
                )
                log.error(
                    "broker %s:%s refused the connection: %s%s", self.host, self.port, text, hint
                )
            return
        self._refusal_logged = None
        log.info("connected to %s:%s as %s", self.host, self.port, self.station)
        self.outbox.reconnected()
        with self._lock:
            self._connected, self._ready = True, False
            self._connected_at = time.monotonic()
            self._connects += 1
            retained = list(self._last_state.items())
        subscriptions = [(self.topics.cmd_filter, 1)]
        with self._lock:
            subscriptions += [(topic, 1) for topic in self._profiles]
        if self._discovery:
            subscriptions.append((f"{self.discovery_prefix}/status", 1))
        client.subscribe(subscriptions)
        info = client.publish(self.topics.status, "online", qos=1, retain=True)
        self._online_mid = info.mid
        for topic, data in retained:
            client.publish(topic, data, qos=1, retain=True)
        self.republish_discovery()
        self._wake.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        with self._lock:
            was, self._connected, self._ready = self._connected, False, False
        if was and not self._closing:
            log.warning(
                "lost the broker %s:%s (%s); reconnecting, alerts wait in the outbox",
                self.host,
                self.port,
                reason_code,
            )

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason_code: Any, properties: Any
    ) -> None:
        try:
            if mid == self._online_mid:
                self._ready = True
            if getattr(reason_code, "is_failure", False):
                row = self.outbox.refused(mid)
                if row is not None:
                    log.error(
                        "broker refused %s (%s); %s. Check the ACL: the station's broker "
                        "user must be named after its station id",
                        row.topic,
                        reason_code,
                        "the alert is kept and retried after reconnecting"
                        if row.kind == ALERT
                        else "dropped",
                    )
            else:
                self.outbox.acked(mid)
            self._wake.set()
        except Exception:  # a bug here must not stop paho's network loop
            log.exception("error handling PUBACK %s", mid)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            if message.topic == f"{self.discovery_prefix}/status":
                if message.payload == b"online":
                    log.info("Home Assistant is online; republishing discovery")
                    self.republish_discovery()
                return
            with self._lock:
                deliver = self._profiles.get(message.topic)
            if deliver is not None:
                deliver(bytes(message.payload))
                return
            name = self.topics.command_name(message.topic)
            if name is None:
                return
            if message.retain:
                # A retained command would run again on every reconnect.
                log.warning(
                    "ignored retained command on %s; clear it with an empty retained message",
                    message.topic,
                )
                return
            try:
                self._commands.put_nowait((name, bytes(message.payload), _response_to(message)))
            except queue.Full:
                self._reply(
                    name,
                    False,
                    "station busy: too many commands waiting",
                    None,
                    _response_to(message),
                )
        except Exception:
            log.exception("error handling message on %s", message.topic)

    # ------------------------------------------------------------ threads

    def _send_loop(self) -> None:
        while True:
            self._wake.wait(0.5)
            self._wake.clear()
            if self._closed and (self._closing or not self._connected):
                return
            with self._lock:
                if (
                    self._connected
                    and not self._ready
                    and time.monotonic() - self._connected_at > READY_FALLBACK_S
                ):
                    self._ready = True
                ready = self._ready
            if ready:
                try:
                    self._pump()
                except Exception:
                    log.exception("error sending from the outbox")

    def _pump(self) -> None:
        for msg in self.outbox.take():
            if not self._ready:
                self.outbox.release(msg.id)
                continue
            try:
                info = self._client.publish(msg.topic, msg.payload, qos=msg.qos, retain=msg.retain)
            except Exception:  # a message paho will not take must not stop the sender
                log.exception("could not hand %s to paho", msg.topic)
                self.outbox.release(msg.id)
                continue
            # NO_CONN: the link dropped just now; paho keeps the message and sends it on reconnect.
            if info.rc in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                self.outbox.handed(msg.id, info.mid)
            else:
                log.warning("paho did not take %s: %s", msg.topic, mqtt.error_string(info.rc))
                self.outbox.release(msg.id)

    def _command_loop(self) -> None:
        while True:
            item = self._commands.get()
            if item is None:
                return
            name, payload, response = item
            try:
                self._run_command(name, payload, response)
            except Exception:
                log.exception("error handling command %s", name)

    def _run_command(self, name: str, payload: bytes, response: Response = None) -> None:
        reply = functools.partial(self._reply, name, response=response)
        try:
            command = parse_command(name, payload)
        except CommandError as err:
            self._commands_rejected += 1
            log.warning("rejected command %s: %s", name, err)
            reply(False, str(err), err.request_id)
            return
        if self.on_command is None:
            self._commands_failed += 1
            reply(False, "this station does not take commands", command.request_id)
            return
        try:
            result = self.on_command(command)
        except Exception as err:
            self._commands_failed += 1
            log.exception("command %s failed", name)
            reply(
                False, f"{name} failed: {err}" if str(err) else f"{name} failed", command.request_id
            )
            return
        if isinstance(result, str) and result:
            self._commands_failed += 1
            log.info("command %s not done: %s", name, result)
            reply(False, result, command.request_id)
        elif result is False:
            self._commands_failed += 1
            reply(False, f"{name} failed", command.request_id)
        else:
            self._commands_ok += 1
            reply(True, None, command.request_id)

    def _reply(
        self,
        name: str,
        ok: bool,
        error: str | None,
        request_id: str | None,
        response: Response = None,
    ) -> None:
        if error is not None and len(error) > MAX_ERROR_TEXT:
            error = error[: MAX_ERROR_TEXT - 1] + "…"
        data = CommandResult(
            station=self.station,
            ok=bool(ok),
            error=None if ok else (error or "failed"),
            request_id=request_id,
        ).to_json()
        self._client.publish(self.topics.cmd_result(name), data, qos=1)
        if response is not None:
            # MQTT v5 request/response: the reply also goes to the requester's response topic,
            # with its correlation data, if that topic is under cmd/<name>/result (the only
            # replies the ACL lets a station write and that its own subscription never reads).
            topic, correlation = response
            home = self.topics.cmd_result(name)
            if topic != home and not topic.startswith(home + "/"):
                log.warning(
                    "ignored response topic %r of %s: replies go under %s", topic[:100], name, home
                )
                return
            props = Properties(PacketTypes.PUBLISH)
            if correlation is not None:
                props.CorrelationData = correlation
            self._client.publish(topic, data, qos=1, properties=props)


#: An MQTT v5 command's response topic and correlation data, or None.
Response = tuple[str, bytes | None] | None


def _response_to(message: mqtt.MQTTMessage) -> Response:
    props = getattr(message, "properties", None)
    topic = getattr(props, "ResponseTopic", None)
    if not isinstance(topic, str) or not topic or any(c in topic for c in "+#\0"):
        return None
    return topic, getattr(props, "CorrelationData", None)
