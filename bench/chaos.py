"""Chaos: does every alert reach the wall display through chip faults, outages, crashes and a full disk?

    .venv/bin/python bench/chaos.py [--stations 3] [--minutes 60] [--seed 1] [--speed 12] [--quick]

What runs. Only the I2C chips are simulated; everything else is the real thing:

* ``--stations`` :class:`~monitor.runner.StationRunner` instances (what ``gym-monitor run``
  uses), each in its own thread on its own :class:`~monitor.clock.SimClock`, advanced by the
  poll interval per cycle and paced at ``--speed`` simulated seconds per wall second, so an
  hour of gym takes minutes and MQTT keeps up. Scenarios are chosen to raise alerts: static
  holds, a tremor that persists after the session, a fall on a body-worn sensor, and the
  sensor faults themselves (``sensor.fault``, ``sensor.overrun``). ``[alerts] cooldown_s`` is
  20 s instead of 120 s so that the same fault raises again soon: more alert traffic to lose.
* one more station, ``killed-1``, as a subprocess (this file with ``--child``, the same
  runner on a SimClock, its config read from a TOML file). It is SIGKILLed at random and
  started again on the same state directory, so its SQLite outbox must carry what was not
  yet acknowledged across the crash. It writes each alert event it raises to a journal.
* a real Mosquitto (tests/mosquitto.py) with the repo's ACL (config/mosquitto/acl) and a
  password file made with mosquitto_passwd, as the integration tests do; persistence is on,
  so a restarted broker still holds the witness's session.
* the witness: a persistent-session (MQTT 5, clean_start false) QoS 1 subscriber logged in
  as ``integrator``, connected straight to the broker, that records every alert event by
  (id, state).

Faults, at random from ``--seed``:

* on the chips, per station, in simulated time, one at a time: NACK bursts and EIO bursts
  (``SimBus.fail``), brownouts (``SimBus.brownout``), a chip that vanishes and comes back
  (``SimBus.vanish(duration)``), FIFO overruns from a stalled loop (no cycle runs while the
  clock jumps past the FIFO's capacity), a stuck chip (``SimBus.stick`` then ``restore``);
* on the network, in wall time: broker restarts (``MosquittoBroker.restart(down_for=...)``,
  a graceful stop); the broker's port unreachable for a while. Stations reach the broker
  through :class:`Link`, a TCP relay in this process: "refused" closes its listening socket
  and resets every connection (a port without a listener); "blackhole" keeps the TCP
  connections open but relays nothing (a dead Wi-Fi link: only MQTT keepalive notices,
  so stations here use ``keepalive = 5``). The broker itself stays up, and so does the
  witness's direct connection;
* SIGKILL of the station subprocess, and its restart on the same state directory; some
  restarts find the outbox damaged first (truncated to half, garbage on page 2, zero
  length, a directory in its place, a garbage or unreadable WAL): the station must move it
  aside, salvage what it can, and lose no alert (its alert state file holds every event
  the broker has not acknowledged);
* a full disk under the SIGKILLed station, in a window where the network is up: its state
  directory is a real small filesystem (tmpfs, when this runs as root) filled to the last
  byte, and its outbox cannot grow by a page. Alerts then wait in memory and go to the
  broker directly; SIGKILLs inside the window must lose nothing the broker acknowledged,
  and the report says what any kill lost;
* a full disk under one in-process station's outbox (bench-1, which also gets chip faults
  twice as often): when the first network fault begins, its SQLite file is capped at the
  pages it has (``PRAGMA max_page_count``). From then on a backlog fills the "disk": the
  outbox must say so once a minute, drop the oldest metrics, and hold every alert in
  memory, sending it directly;
* session command floods (start/stop hundreds of times over MQTT, the panel button pressed
  in bursts) at every station, and acknowledgements of urgent alerts by a staff name: no
  loop may end, every reply must be "ok" or "busy";
* the real wall display (:class:`monitor.display.service.DisplayService`), restarted a few
  times: at the end what the wall shows (its ``/api/state``) must equal what each station
  holds, and so must each retained ``alerts/active`` (no ghost alerts, none missing);
* a power cut while the scale's calibration is written: a writer subprocess is SIGKILLed in
  the middle of writing the temporary file, between fsync and rename, just after the
  rename, and at random moments; the file must then hold the old or the new calibration,
  never a torn one.

The report gives alert events raised (recorded at the source: the in-process stations'
AlertManager events, and the killed station's journal, which its runner writes through
the ``monitor.alert`` log *before* storing each event) against delivered (unique by (id,
state)) and duplicates; samples acquired and lost per sensor with ImuStats' reasons;
recovery time per fault kind; station restarts; the full disk, the damaged outboxes, the
floods, the display. Exit status 1 if any alert event was lost, a station loop failed, a
retained active list or the wall disagrees with a station, or a calibration file was torn;
else 0.
"""

from __future__ import annotations

import argparse
import datetime
import errno
import itertools
import json
import logging
import math
import os
import queue
import random
import re
import selectors
import signal
import socket
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "tests"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from monitor.alerts import AlertConfig  # noqa: E402
from monitor.clock import SimClock  # noqa: E402
from monitor.config import (
    Config,
    GpioConfig,
    ImuConfig,
    MqttConfig,
    ScaleConfig,
    StationConfig,
    load,
)
from monitor.i2c.calibration import CalibrationError, CalibrationStore, ScaleCalibration  # noqa: E402
from monitor.runner import StationRunner  # noqa: E402

log = logging.getLogger("chaos")

#: a chip counts as recovered quickly when data flows within this long of it being usable again
RECOVERY_TARGET_S = 2.0
#: how long the alert cooldown is at the chaos stations (the default 120 s would mute repeats)
COOLDOWN_S = 20.0
#: an acknowledged urgent alert sounds again after this long at the chaos stations
ACK_SILENCE_S = 60.0
#: MQTT keepalive at the chaos stations: the least the config allows, so a blackhole is noticed
KEEPALIVE_S = 5
WITNESS_USER = "integrator"
OPERATOR_USER = "operator"
DISPLAY_USER = "display"
KILLED_ID = "killed-1"
#: what is done to the killed station's outbox before some restarts, in turn
DAMAGE = ("half", "page two", "zero length", "directory", "garbage WAL", "WAL directory")
#: session commands per flood, per station; panel button presses per flood
FLOOD_COMMANDS = 120
FLOOD_PRESSES = 6


# =============================================================================== options


@dataclass(frozen=True)
class Options:
    """What one chaos run does. ``quick`` shortens every fault for the test suite."""

    stations: int = 3
    minutes: float = 60.0
    seed: int = 1
    speed: float = 12.0  # simulated seconds per wall second
    quick: bool = False
    kill: bool = True  # run the SIGKILLed subprocess station
    calibration_cuts: int = 24
    chip_gap_s: float = 12.0  # mean simulated time between chip faults, per station
    workdir: Path | None = None  # keep the files here (default: a temporary directory)
    display: bool = True  # the real wall display as a witness

    @property
    def wall_s(self) -> float:
        """Wall time the stations need for ``minutes`` of simulated time."""
        return self.minutes * 60.0 / self.speed


# =============================================================================== the ledger


@dataclass(frozen=True)
class Raised:
    """One alert event as the station's AlertManager made it."""

    station: str
    id: str
    state: str
    level: str
    code: str
    at: float  # time.monotonic() when recorded (comparable across processes on Linux)


class Ledger:
    """Alert events raised at the source against those the witness received.

    An event is identified by (id, state, level): (id, state) is what subscribers dedupe
    on (PAYLOADS.md); the level is added so an escalation (same id, state "raised", a
    higher level) lost behind its first event would still be noticed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.raised: dict[tuple[str, str, str], Raised] = {}
        self.received: Counter[tuple[str, str, str]] = Counter()
        self.first_seen: dict[tuple[str, str, str], float] = {}
        self.station_of: dict[tuple[str, str, str], str] = {}

    @staticmethod
    def key(alert_id: str, state: str, level: str) -> tuple[str, str, str]:
        return (alert_id, state, level)

    def record_raised(
        self,
        station: str,
        alert_id: str,
        state: str,
        level: str,
        code: str,
        at: float | None = None,
    ) -> None:
        key = self.key(alert_id, state, level)
        with self._lock:
            self.raised.setdefault(
                key,
                Raised(
                    station, alert_id, state, level, code, time.monotonic() if at is None else at
                ),
            )

    def record_delivered(self, payload: dict[str, Any], at: float | None = None) -> None:
        key = self.key(str(payload.get("id")), str(payload.get("state")), str(payload.get("level")))
        with self._lock:
            self.received[key] += 1
            self.first_seen.setdefault(key, time.monotonic() if at is None else at)
            self.station_of.setdefault(key, str(payload.get("station")))

    def missing(self, station: str | None = None) -> list[Raised]:
        """Raised and never received (so far)."""
        with self._lock:
            return [
                r
                for k, r in self.raised.items()
                if k not in self.received and (station is None or r.station == station)
            ]

    def delivered_at(self, key: tuple[str, str, str]) -> float | None:
        with self._lock:
            return self.first_seen.get(key)

    def summary(self) -> dict[str, dict[str, int]]:
        """Per station: raised, delivered (unique), received (all copies), duplicates, lost, unrecorded."""
        with self._lock:
            out: dict[str, dict[str, int]] = defaultdict(lambda: Counter())
            for key, r in self.raised.items():
                row = out[r.station]
                row["raised"] += 1
                row["delivered"] += key in self.received
                row["lost"] += key not in self.received
            for key, copies in self.received.items():
                row = out[self.station_of[key]]
                row["received"] += copies
                row["duplicates"] += copies - 1
                row["unrecorded"] += key not in self.raised
            pairs = defaultdict(set)  # (id, state) unique per station, as subscribers count
            for key in self.received:
                pairs[self.station_of[key]].add(key[:2])
            for station, seen in pairs.items():
                out[station]["unique_id_state"] = len(seen)
            return {s: dict(row) for s, row in sorted(out.items())}


# =============================================================================== the broker


def make_secrets(folder: Path, users: Iterable[str]) -> Path:
    """A Mosquitto password file for ``users``, and ``<user>.pw`` for each, as the integration tests make them."""
    from mosquitto import write_password_files
    from test_mqtt_integration import password

    return write_password_files(folder, users, password)


def start_broker(workdir: Path, users: Iterable[str]):
    """Mosquitto with the repo's ACL, a password file, and persistence (sessions survive a restart)."""
    from mosquitto import MosquittoBroker
    from test_mqtt_integration import ACL

    secrets = make_secrets(workdir / "secrets", users)
    store = workdir / "broker-store"
    store.mkdir(parents=True, exist_ok=True)
    extra = (
        f"password_file {secrets / 'passwd'}\nacl_file {ACL}\n"
        f"persistence true\npersistence_location {store}/\nautosave_interval 5\n"
        "max_queued_messages 100000\n"
    )
    return MosquittoBroker(
        workdir / "broker", extra_config=extra, allow_anonymous=False
    ).start(), secrets


class Witness:
    """The wall display's view: a persistent-session QoS 1 subscriber that feeds the ledger.

    It connects straight to the broker (not through the :class:`Link`), with
    ``clean_start=False`` and a session that outlives a broker restart, so QoS 1
    alerts published while it was away are queued for it.
    """

    def __init__(self, broker, ledger: Ledger, user: str = WITNESS_USER):
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
        from test_mqtt_integration import password

        self.ledger = ledger
        self.lock = threading.Lock()
        self.status: list[tuple[str, bytes, float]] = []  # (station, payload, monotonic)
        self.active: dict[str, dict] = {}  # station -> last alerts/active
        self.replies: Counter[str] = Counter()  # session command replies: ok/busy/other
        self.other_replies: list[str] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="chaos-witness", protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(user, password(user))
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect_async(
            broker.host, broker.port, keepalive=10, clean_start=False, properties=props
        )
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        client.subscribe(
            [
                ("gym/+/alert", 1),
                ("gym/+/status", 1),
                ("gym/+/alerts/active", 1),
                ("gym/+/cmd/+/result", 1),
            ]
        )

    def _on_message(self, client, userdata, message) -> None:
        now = time.monotonic()
        parts = message.topic.split("/")
        station, kind = parts[1], "/".join(parts[2:])
        try:
            if kind == "alert":
                self.ledger.record_delivered(json.loads(message.payload), now)
            elif kind == "status":
                with self.lock:
                    self.status.append((station, bytes(message.payload), now))
            elif kind == "alerts/active":
                with self.lock:
                    self.active[station] = json.loads(message.payload)
            elif kind.endswith("/result"):
                reply = json.loads(message.payload)
                with self.lock:
                    if reply.get("ok"):
                        outcome = "ok"
                    elif "busy" in str(reply.get("error")):
                        outcome = "busy"
                    else:
                        outcome = "other"
                        self.other_replies.append(f"{station} {kind}: {reply.get('error')}")
                    self.replies[outcome] += 1
                    self.replies[f"{station} {outcome}"] += 1
        except (ValueError, KeyError):
            log.error("witness: unreadable message on %s: %r", message.topic, message.payload[:80])

    def online_after(self, station: str, since: float) -> float | None:
        """When ``station`` next said ``online`` after ``since`` (monotonic), if it did."""
        with self.lock:
            return next(
                (t for s, p, t in self.status if s == station and p == b"online" and t >= since),
                None,
            )

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Operator:
    """Staff and coaches at work, straight to the broker as ``operator``: floods of session
    commands, presses of the panel buttons, and acknowledgements of urgent alerts by name."""

    def __init__(self, broker, rng: random.Random, user: str = OPERATOR_USER):
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        from test_mqtt_integration import password

        self.rng = rng
        self.floods = self.commands = self.presses = self.acks = 0
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

    def flood(self, ids: list[str], stations: list[StationThread]) -> None:
        """Start/stop, start/stop ... as fast as MQTT goes, and the panel buttons pressed in bursts."""
        self.floods += 1
        for sid in ids:
            for i in range(FLOOD_COMMANDS):
                action = "start" if (i + self.rng.randrange(2)) % 2 else "stop"
                self.client.publish(
                    f"gym/{sid}/cmd/session", json.dumps({"v": 1, "action": action}), qos=1
                )
                self.commands += 1
        for st in stations:
            st.press(FLOOD_PRESSES)
            self.presses += FLOOD_PRESSES

    def ack(self, witness: Witness) -> None:
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


class DisplayWitness:
    """The real wall display, through its public entry points: the service and ``GET /api/state``."""

    def __init__(self, broker, ids: list[str]):
        import dataclasses

        from test_mqtt_integration import password

        from monitor.display.service import DisplayConfig

        fields = {f.name for f in dataclasses.fields(DisplayConfig)}
        extra = {
            k: v for k, v in (("reconnect_min_s", 0.2), ("reconnect_max_s", 1.0)) if k in fields
        }
        self.config = DisplayConfig(
            mqtt_host=broker.host,
            mqtt_port=broker.port,
            username=DISPLAY_USER,
            password=password(DISPLAY_USER),
            http_port=0,
            stations=tuple(ids),
            **extra,
        )
        self.service = None
        self.url = ""
        self.restarts = 0

    def start(self) -> None:
        from monitor.display.service import DisplayService

        self.service = DisplayService(self.config)
        self.url = self.service.start()

    def restart(self) -> None:
        self.stop()
        self.restarts += 1
        self.start()

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.service = None

    def wall(self) -> dict[str, list[str]]:
        """Per station, the ids of the alerts the wall shows."""
        import urllib.request

        with urllib.request.urlopen(self.url + "api/state", timeout=10) as response:
            state = json.loads(response.read())
        return {
            st["id"]: sorted(a["id"] for a in st.get("alerts", []))
            for st in state.get("stations", [])
        }


# =============================================================================== the network


def _reset(sock: socket.socket) -> None:
    """Close with a TCP RST, as a dead route or a restarted NAT does, not a polite FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class Link:
    """The network between the stations and the broker: a TCP relay that chaos can cut.

    Modes: ``up`` relays bytes both ways; ``refused`` closes the listening socket
    and resets every connection, so connecting fails at once (a port without a
    listener); ``blackhole`` keeps every TCP connection open and accepts new ones
    but relays nothing, the way a dead Wi-Fi link looks to both ends, so only MQTT
    keepalive can tell. Leaving a blackhole resets the frozen connections, as a
    NAT that forgot them would. One thread does all the relaying::

        link = Link(broker.port)          # stations connect to link.port
        link.set_mode("refused"); ...; link.set_mode("up")
    """

    host = "127.0.0.1"

    def __init__(self, upstream_port: int):
        from mosquitto import free_port

        self.upstream = (self.host, upstream_port)
        self.port = free_port(self.host)
        self.mode = "up"
        self._sel = selectors.DefaultSelector()
        self._peer: dict[socket.socket, socket.socket] = {}
        self._held: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._requests: queue.Queue[tuple[str, threading.Event]] = queue.Queue()
        self._stop = False
        self._listen()
        self._thread = threading.Thread(target=self._loop, name="chaos-link", daemon=True)
        self._thread.start()

    def set_mode(self, mode: str) -> None:
        """Switch mode; returns once the relay thread has done it."""
        if mode not in ("up", "refused", "blackhole"):
            raise ValueError(mode)
        done = threading.Event()
        self._requests.put((mode, done))
        done.wait(5.0)

    def close(self) -> None:
        self._stop = True
        self._thread.join(2.0)
        for sock in [*self._peer, *self._held, *([self._listener] if self._listener else [])]:
            sock.close()

    # -- the relay thread --------------------------------------------------------
    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(16)
        self._listener = sock
        self._sel.register(sock, selectors.EVENT_READ)

    def _loop(self) -> None:
        while not self._stop:
            while not self._requests.empty():
                mode, done = self._requests.get()
                self._switch(mode)
                done.set()
            for key, _ in self._sel.select(0.02):
                sock = key.fileobj
                if sock is self._listener:
                    self._accept()
                elif sock in self._peer:
                    self._relay(sock)

    def _switch(self, mode: str) -> None:
        if mode == self.mode:
            return
        if mode == "refused":
            self._sel.unregister(self._listener)
            self._listener.close()
            self._listener = None
            self._drop_all()
        elif mode == "blackhole":
            for sock in list(self._peer):  # freeze: stop relaying, keep the sockets open
                self._sel.unregister(sock)
                self._held.append(sock)
            self._peer.clear()
        else:
            self._drop_all()
            if self._listener is None:
                self._listen()
        self.mode = mode

    def _drop_all(self) -> None:
        for sock in list(self._peer):
            self._sel.unregister(sock)
            _reset(sock)
        self._peer.clear()
        for sock in self._held:
            _reset(sock)
        self._held.clear()

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        if self.mode == "blackhole":
            self._held.append(client)
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=2.0)
        except OSError:
            _reset(client)
            return
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._peer[client], self._peer[upstream] = upstream, client
        self._sel.register(client, selectors.EVENT_READ)
        self._sel.register(upstream, selectors.EVENT_READ)

    def _relay(self, sock: socket.socket) -> None:
        peer = self._peer[sock]
        try:
            data = sock.recv(65536)
            if data:
                peer.sendall(data)
                return
        except OSError:
            pass
        for s in (sock, peer):  # one side closed: close the other, as a relay must
            self._sel.unregister(s)
            self._peer.pop(s, None)
            s.close()


# =============================================================================== chip faults

CHIP_FAULTS = ("nack", "eio", "brownout", "vanish", "stall", "stuck")


@dataclass
class ChipFault:
    """One injected chip fault and how long the station took to get data again.

    ``back_at`` is when the chip was usable again (the injection itself for a burst or a
    brownout, the end of the outage for a vanish or a stuck chip, the end of the stall);
    ``recovered_at`` the first step after it that got data from the chip. Simulated seconds.
    """

    kind: str
    station: str
    sensor: str
    at: float
    back_at: float
    recovered_at: float | None = None
    detail: str = ""

    @property
    def recovery_s(self) -> float | None:
        return None if self.recovered_at is None else self.recovered_at - self.back_at


@dataclass(frozen=True)
class Target:
    name: str  # the sensor's name, "scale" for the scale
    address: int
    is_scale: bool


class ChipChaos:
    """Seeded chip faults for one station, one at a time, in its simulated time.

    Call :meth:`before_cycle` before each ``runner.cycle()`` and :meth:`after_cycle`
    with the step after it. A fault is over once the target delivered data again;
    the next one comes an exponentially distributed while later (mean ``gap_s``).
    """

    GIVE_UP_S = 30.0

    def __init__(
        self,
        station: str,
        config: Config,
        bus,
        clock,
        rng: random.Random,
        gap_s: float,
        quick: bool = False,
        on_fault: Callable[[ChipFault], None] | None = None,
    ):
        self.station, self.bus, self.clock, self.rng = station, bus, clock, rng
        self.gap_s, self.quick = gap_s, quick
        self.targets = [Target(i.name, i.address, False) for i in config.imus]
        if config.scale is not None:
            self.targets.append(Target("scale", config.scale.address, True))
        self.rates = {i.name: i.rate_hz for i in config.imus}
        self.faults: list[ChipFault] = []
        self.enabled = True
        self.on_fault = on_fault
        self._current: ChipFault | None = None
        self._stuck: tuple[int, float] | None = None  # (address, when to restore it)
        self._next_at = clock.now() + rng.expovariate(1.0 / gap_s)

    def stop(self) -> None:
        """No new faults; a stuck chip is restored at once."""
        self.enabled = False
        if self._stuck is not None:
            self.bus.restore(self._stuck[0])
            self._stuck = None

    def before_cycle(self) -> None:
        now = self.clock.now()
        if self._stuck is not None and now >= self._stuck[1]:
            self.bus.restore(self._stuck[0])
            self._stuck = None
        if self._current is None and self.enabled and now >= self._next_at:
            self._inject(now)

    def after_cycle(self, step) -> None:
        fault = self._current
        if fault is None or step.t < fault.back_at:
            return
        if self._got_data(step, fault.sensor):
            fault.recovered_at = step.t
        elif step.t - fault.back_at < self.GIVE_UP_S:
            return
        self._finish(fault)

    # -- internals -----------------------------------------------------------
    def _finish(self, fault: ChipFault) -> None:
        self._current = None
        self._next_at = self.clock.now() + self.rng.expovariate(1.0 / self.gap_s)
        if self.on_fault is not None:
            self.on_fault(fault)

    @staticmethod
    def _got_data(step, sensor: str) -> bool:
        if sensor == "scale":
            return step.scale is not None
        return any(r.name == sensor and r.samples > 0 for r in step.sensors)

    def _inject(self, now: float) -> None:
        rng = self.rng
        kind = rng.choice(CHIP_FAULTS)
        imus = [t for t in self.targets if not t.is_scale]
        # A stall is the loop's fault, not a chip's: it shows on every IMU; watch the first.
        target = (
            imus[0] if kind == "stall" else rng.choice(imus if kind == "stuck" else self.targets)
        )
        back_at, detail = now, ""
        if kind in ("nack", "eio"):
            count = rng.randint(2, 12)
            code = errno.EREMOTEIO if kind == "nack" else errno.EIO
            self.bus.fail(target.address, count=count, code=code)
            detail = f"{count} transfers"
        elif kind == "brownout":
            self.bus.brownout(target.address)
        elif kind == "vanish":
            duration = rng.uniform(0.3, 3.0 if self.quick else 8.0)
            self.bus.vanish(target.address, duration=duration)
            back_at, detail = now + duration, f"{duration:.1f} s"
        elif kind == "stall":
            duration = rng.uniform(1.0, 4.0)  # the FIFOs hold 0.3-1.2 s here: they overflow
            self.clock.advance(duration)
            back_at, detail = self.clock.now(), f"{duration:.1f} s"
        else:
            duration = rng.uniform(1.0, 3.0 if self.quick else 6.0)
            self.bus.stick(target.address, rng.choice((0x00, 0xFF)))
            back_at = now + duration
            self._stuck = (target.address, back_at)
            detail = f"{duration:.1f} s"
        self._current = ChipFault(kind, self.station, target.name, now, back_at, detail=detail)
        self.faults.append(self._current)


# =============================================================================== stations


def station_config(
    index: int,
    state_dir: Path,
    options: Options,
    broker_port: int,
    secrets: Path,
    station_id: str | None = None,
) -> Config:
    """The index-th chaos station: alternating scenarios that raise alerts, two chips or a scale each."""
    sid = station_id or f"bench-{index + 1}"
    kind = index % 3
    if kind == 0:  # static holds on a wrist: tremor, hold fatigue, fatigue trend; a bottle dock
        imus = (ImuConfig("wrist", "mpu6050", 0x68, rate_hz=250, scenario="static_holds"),)
        scale = ScaleConfig()
    elif kind == 1:  # a fall on a body-worn sensor, and an arm that is not being exercised
        imus = (
            ImuConfig("chest", "mpu6500", 0x68, rate_hz=250, placement="body", scenario="fall"),
            ImuConfig("arm", "lsm6ds", 0x6A, rate_hz=208, exercised=False, scenario="companion"),
        )
        scale = None
    else:  # tremor that does not fade after the session: the persistent red flag
        imus = (ImuConfig("forearm", "lsm6ds", 0x6A, rate_hz=208, scenario="persistent_tremor"),)
        scale = ScaleConfig()
    return Config(
        station=StationConfig(
            id=sid,
            name=f"Chaos {sid}",
            simulate=True,
            state_dir=state_dir,
            seed=options.seed * 10 + index,
        ),
        imus=imus,
        scale=scale,
        alerts=AlertConfig(cooldown_s=COOLDOWN_S, ack_silence_s=ACK_SILENCE_S),
        mqtt=MqttConfig(
            host=Link.host,
            port=broker_port,
            username=sid,
            password_file=str(secrets / f"{sid}.pw"),
            keepalive=KEEPALIVE_S,
        ),
        gpio=GpioConfig(enabled=True),
    )  # the status panel on gpiozero's mock pins: its button is pressed


class Pacer:
    """Keeps a station's simulated time at most ``speed`` times ahead of the wall clock."""

    def __init__(self, speed: float):
        self.speed = speed
        self._origin: tuple[float, float] | None = None  # (simulated, wall) at the first call

    def wait(self, sim_now: float) -> None:
        if self._origin is None:
            self._origin = (sim_now, time.monotonic())
        due = self._origin[1] + (sim_now - self._origin[0]) / self.speed
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)


@dataclass
class SensorTally:
    """ImuStats summed over every driver a sensor had (a slot may open a new one)."""

    rate_hz: float
    samples: int = 0
    lost: int = 0
    fifo_resets: int = 0
    faults: int = 0
    reconfigurations: int = 0
    sim_s: float = 0.0

    def add(self, stats) -> None:
        self.samples += stats.samples
        self.lost += stats.lost
        self.fifo_resets += stats.fifo_resets
        self.faults += stats.faults
        self.reconfigurations += stats.reconfigurations

    @property
    def expected(self) -> int:
        return int(self.rate_hz * self.sim_s)


class StationThread(threading.Thread):
    """One in-process station: a StationRunner cycled on its own SimClock, paced, with chip chaos.

    Every alert event of every step is written to the ledger as it is made. If a cycle
    raises, the crash is recorded and the runner is started again on the same bus, clock
    and state directory, as systemd's ``Restart=`` would.
    """

    def __init__(
        self,
        config: Config,
        ledger: Ledger,
        options: Options,
        rng: random.Random,
        chip_gap_s: float | None = None,
    ):
        super().__init__(name=f"chaos-{config.station.id}", daemon=True)
        self.config, self.ledger, self.options = config, ledger, options
        self.chip_gap_s = chip_gap_s or options.chip_gap_s
        self.id = config.station.id
        self.clock = SimClock()
        self.pacer = Pacer(options.speed)
        self.rng = rng
        self.crashes: list[str] = []
        self.error: str | None = None
        self.finish = threading.Event()  # set by the harness: stop cycling
        self.reached_end = threading.Event()  # simulated time is up; chaos is off
        self.started = threading.Event()
        self.runner: StationRunner | None = None
        self.chaos: ChipChaos | None = None
        self._drivers: dict[int, tuple[str, Any]] = {}
        self._first_t: float | None = None
        self.cycles = 0

    @property
    def sim_elapsed(self) -> float:
        return 0.0 if self._first_t is None else self.clock.now() - self._first_t

    def run(self) -> None:
        try:
            self._run()
        except BaseException:
            self.error = traceback.format_exc()
            self.started.set()
            self.reached_end.set()

    def _run(self) -> None:
        self.runner = StationRunner(self.config, simulate=True, clock=self.clock)
        self.runner.start()
        self.chaos = ChipChaos(
            self.id,
            self.config,
            self.runner.bus,
            self.clock,
            self.rng,
            self.chip_gap_s,
            self.options.quick,
        )
        self._first_t = self.clock.now()
        self.started.set()
        end = self._first_t + self.options.minutes * 60.0
        while not self.finish.is_set():
            if not self.reached_end.is_set() and self.clock.now() >= end:
                self.chaos.stop()
                self.reached_end.set()
            self.chaos.before_cycle()
            self._cycle()
            self.clock.sleep(self.runner.station.poll_interval)
            self.pacer.wait(self.clock.now())

    def _cycle(self) -> None:
        before = self.runner.last_step
        try:
            self.runner.cycle()
        except Exception:
            self.crashes.append(traceback.format_exc())
            log.error("%s: the station loop crashed; restarting it:\n%s", self.id, self.crashes[-1])
            if self.runner.last_step is not before:  # the step ran: its events were made
                self._record(self.runner.last_step)
            self._restart()
            return
        self.cycles += 1
        step = self.runner.last_step
        self._record(step)
        self.chaos.after_cycle(step)
        for slot in self.runner.station.imus:
            if slot.driver is not None:
                self._drivers[id(slot.driver)] = (slot.name, slot.driver)

    def _record(self, step) -> None:
        for a in step.alerts:
            self.ledger.record_raised(self.id, a.id, a.state, a.level, a.code)

    def _restart(self) -> None:
        old = self.runner
        try:
            old.stop()
        except Exception:
            log.exception("%s: stopping the crashed runner failed", self.id)
        self.runner = StationRunner(self.config, simulate=True, clock=self.clock, bus=old.bus)
        self.runner.start()

    @property
    def loop_errors(self) -> int:
        """Exceptions the runner's loop caught and logged (a step, an output, the panel)."""
        r = self.runner
        if r is None:
            return 0
        return r.errors.count + (r.uplink.errors.count if r.uplink is not None else 0)

    def press(self, times: int) -> None:
        """Press the panel's button ``times`` times, quickly (each press starts or stops a session)."""
        panel = self.runner.panel if self.runner is not None else None
        pin = getattr(getattr(panel, "button", None), "pin", None)
        if pin is None:
            return
        for _ in range(times):
            pin.drive_low()
            time.sleep(0.01)
            pin.drive_high()
            time.sleep(0.01)

    def tallies(self) -> dict[str, SensorTally]:
        out = {i.name: SensorTally(i.rate_hz, sim_s=self.sim_elapsed) for i in self.config.imus}
        for name, driver in self._drivers.values():
            out[name].add(driver.stats)
        return out

    def settled(self) -> bool:
        """Nothing of this station's waits: the outbox is empty and no alert is held in memory."""
        r = self.runner
        if r is None or r.outbox is None:
            return True
        return r.outbox.pending == 0 and getattr(r.uplink, "unstored", 0) == 0

    def stop(self) -> None:
        self.finish.set()
        self.join(10.0)
        if self.runner is not None:
            self.runner.stop()


# =============================================================================== the killed station

CHILD_TOML = """\
[station]
id = "{id}"
simulate = true
state_dir = "{state}"
seed = {seed}

[[imu]]
name = "wrist"
chip = "mpu6050"
rate_hz = 250
scenario = "static_holds"

[[imu]]
name = "chest"
chip = "lsm6ds"
address = 0x6A
rate_hz = 208
placement = "body"
exercised = false
scenario = "companion"

[alerts]
cooldown_s = {cooldown}
ack_silence_s = {ack_silence}

[mqtt]
host = "{host}"
port = {port}
username = "{id}"
password_file = "{password_file}"
keepalive = {keepalive}
"""


class JournalHandler(logging.Handler):
    """Writes each alert event the runner journals (``monitor.alert``, before storing it) as a JSON line."""

    def __init__(self, note: Callable[..., None]):
        super().__init__(logging.INFO)
        self.note = note

    def emit(self, record: logging.LogRecord) -> None:
        alert = getattr(record, "alert", None)
        if isinstance(alert, dict):
            self.note(
                id=alert.get("id"),
                state=alert.get("state"),
                level=alert.get("level"),
                code=alert.get("code"),
            )


def _squeeze(outbox, on: bool) -> None:
    """A full disk for the outbox's SQLite (on), or room again (off).

    The file may not grow by a page; and since SQLite would first reuse the pages that
    acknowledged rows freed (a real full disk often lets a WAL database go on for a
    while), every insert meets SQLITE_FULL, as on a disk with no free page left.
    """
    with outbox._lock:
        if outbox._db is None:
            return
        pages = outbox._db.execute("PRAGMA page_count").fetchone()[0]
        outbox._db.execute(f"PRAGMA max_page_count={int(pages) if on else 1073741823}")
        if on:

            def full(*args, **kwargs):
                raise sqlite3.OperationalError("database or disk is full")

            outbox._add_durably = full
        elif "_add_durably" in vars(outbox):
            del outbox._add_durably


def child_main(
    config_path: str,
    journal_path: str,
    speed: float,
    seed: int,
    gap_s: float,
    quick: bool,
    full_flag: str | None = None,
) -> int:
    """The station subprocess: a StationRunner on a SimClock, paced, with chip chaos, until SIGTERM.

    Every alert event is appended to the journal (one JSON line, flushed) by a handler on the
    runner's ``monitor.alert`` log, which the runner writes before it saves or stores the
    event: what a SIGKILL interrupts was journaled. While ``full_flag`` exists the disk is
    full: the outbox may not grow (the state directory is also filled, when it is a tmpfs).
    """
    logging.basicConfig(level=logging.ERROR, format="%(asctime)s child %(name)s: %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    journal = open(journal_path, "a", buffering=1, encoding="utf-8")

    def note(**entry: Any) -> None:
        journal.write(json.dumps({"pid": os.getpid(), "at": time.monotonic(), **entry}) + "\n")

    alerts_log = logging.getLogger("monitor.alert")
    alerts_log.setLevel(logging.INFO)
    alerts_log.propagate = False
    alerts_log.addHandler(JournalHandler(note))
    config = load(config_path)
    clock = SimClock()
    runner = StationRunner(config, simulate=True, clock=clock)
    chaos = ChipChaos(
        config.station.id,
        config,
        runner.bus,
        clock,
        random.Random(seed),
        gap_s,
        quick,
        on_fault=lambda f: note(fault=f.kind, sensor=f.sensor, recovery_s=f.recovery_s),
    )
    pacer = Pacer(speed)
    runner.start()
    note(
        event="started",
        in_memory=bool(runner.outbox and runner.outbox.in_memory),
        salvaged=runner.outbox.salvaged if runner.outbox else 0,
    )
    drivers: dict[int, tuple[str, Any]] = {}
    first = clock.now()
    squeezed = False
    while not stop.is_set():
        if full_flag and runner.cycles % 10 == 0 and runner.outbox is not None:
            full = os.path.exists(full_flag)
            if full != squeezed:
                _squeeze(runner.outbox, full)
                squeezed = full
                note(event="disk full" if full else "disk room")
        chaos.before_cycle()
        runner.cycle()
        step = runner.last_step
        if step is not None:
            chaos.after_cycle(step)
        for slot in runner.station.imus:
            if slot.driver is not None:
                drivers[id(slot.driver)] = (slot.name, slot.driver)
        if runner.cycles % 50 == 0:  # a running tally; the last one before a SIGKILL counts
            held = runner.outbox.stats().held_total.get("alert", 0) if runner.outbox else 0
            note(
                stats=_child_stats(drivers, clock.now() - first),
                held=held,
                loop_errors=runner.errors.count
                + (runner.uplink.errors.count if runner.uplink else 0),
            )
        clock.sleep(runner.station.poll_interval)
        pacer.wait(clock.now())
    runner.stop()
    held = runner.outbox.stats().held_total.get("alert", 0) if runner.outbox else 0
    note(
        stats=_child_stats(drivers, clock.now() - first),
        event="stopped",
        held=held,
        loop_errors=runner.errors.count + (runner.uplink.errors.count if runner.uplink else 0),
        active=[a.id for a in runner.station.alerts.active()],
    )
    return 0


def _child_stats(drivers: dict[int, tuple[str, Any]], sim_s: float) -> dict[str, Any]:
    out: dict[str, Any] = {"sim_s": sim_s}
    for name, d in drivers.values():
        row = out.setdefault(name, Counter())
        for f in ("samples", "lost", "fifo_resets", "faults", "reconfigurations"):
            row[f] += getattr(d.stats, f)
    return out


def mount_tmpfs(folder: Path, size_mb: int = 64) -> bool:
    """A real small filesystem at ``folder`` (needs root); False where that is not allowed."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(folder)],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def damage_outbox(path: Path, kind: str) -> None:
    """Damage an outbox file (and its WAL) the way ``kind`` says: what a power cut or a bad card does."""
    wal = Path(f"{path}-wal")
    if kind in ("half", "page two") and path.is_file():
        # After a SIGKILL the rows may all be in the WAL: fold it into the file first, so
        # that the damage hits pages that hold them.
        try:
            with sqlite3.connect(path) as db:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass
    if kind == "half" and path.is_file():
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "page two" and path.is_file():
        data = bytearray(path.read_bytes())
        if len(data) > 4096:
            data[4096:8192] = bytes(range(256)) * 16
            path.write_bytes(bytes(data))
    elif kind == "zero length":
        path.write_bytes(b"")
        wal.unlink(missing_ok=True)
    elif kind == "directory":
        for p in (path, wal, Path(f"{path}-shm")):
            p.unlink(missing_ok=True)
        path.mkdir()
    elif kind == "garbage WAL":
        wal.write_bytes(b"\x37\x7f\x06\x82" + os.urandom(20000))
    elif kind == "WAL directory":
        wal.unlink(missing_ok=True)
        wal.mkdir()


class KilledStation:
    """The station that gets SIGKILLed: a subprocess of this file, restarted on the same state dir.

    Its state directory is a tmpfs when this runs as root, so that its disk can really be
    filled (:meth:`fill_disk`); some restarts find its outbox damaged (:meth:`kill`).
    """

    def __init__(self, workdir: Path, options: Options, link_port: int, secrets: Path):
        self.workdir = workdir
        self.options = options
        self.state = workdir / "state"
        self.tmpfs = mount_tmpfs(self.state)
        self.journal = workdir / "journal.jsonl"
        self.config = workdir / "monitor.toml"
        self.full_flag = workdir / "disk-full"
        self.config.write_text(
            CHILD_TOML.format(
                id=KILLED_ID,
                state=self.state,
                seed=options.seed * 10 + 9,
                cooldown=COOLDOWN_S,
                ack_silence=ACK_SILENCE_S,
                host=Link.host,
                port=link_port,
                password_file=secrets / f"{KILLED_ID}.pw",
                keepalive=KEEPALIVE_S,
            )
        )
        self.proc: subprocess.Popen | None = None
        self.spawns: list[float] = []  # monotonic time of each start
        self.kills = 0
        self.kill_log: list[
            tuple[int, float, bool, str | None]
        ] = []  # (pid, when, disk full, damage)
        self.kill_walls: list[float] = []  # time.time() of each kill
        self.unexpected_exits: list[str] = []
        self.disk_full_since: float | None = None
        self.full_windows: list[tuple[float, float]] = []
        self._log = open(workdir / "child.log", "ab")

    def spawn(self) -> None:
        args = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            str(self.config),
            "--journal",
            str(self.journal),
            "--speed",
            str(self.options.speed),
            "--seed",
            str(self.options.seed * 1000 + len(self.spawns)),
            "--gap",
            str(self.options.chip_gap_s),
            "--full-flag",
            str(self.full_flag),
        ] + (["--quick"] if self.options.quick else [])
        self.spawns.append(time.monotonic())
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)

    def kill(self, damage: str | None = None) -> None:
        """SIGKILL, as a power cut or the OOM killer would; maybe damage the outbox; start again."""
        self.check()
        pid = self.proc.pid
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.kills += 1
        self.kill_log.append((pid, time.monotonic(), self.disk_full_since is not None, damage))
        self.kill_walls.append(time.time())
        if damage is not None:
            damage_outbox(self.state / "outbox.sqlite3", damage)
        self.spawn()

    def fill_disk(self) -> None:
        """The disk is full from now on: the tmpfs filled to the last byte, the outbox capped."""
        self.disk_full_since = time.monotonic()
        self.full_flag.touch()
        if self.tmpfs:
            _fill(self.state)

    def free_disk(self) -> None:
        for filler in self.state.glob("filler*"):
            filler.unlink(missing_ok=True)
        self.full_flag.unlink(missing_ok=True)
        if self.disk_full_since is not None:
            self.full_windows.append((self.disk_full_since, time.monotonic()))
        self.disk_full_since = None

    def check(self) -> None:
        """A child that died on its own is a crash: record it and start it again (systemd would)."""
        if self.proc is not None and self.proc.poll() is not None:
            self.unexpected_exits.append(f"exit status {self.proc.returncode} (see child.log)")
            self.spawn()

    def stop(self) -> None:
        """SIGTERM: the runner flushes the outbox and says offline."""
        self.check()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.unexpected_exits.append("did not stop on SIGTERM within 30 s")
            self.proc.kill()
            self.proc.wait()
        self._log.close()

    def holds(self) -> list[str] | None:
        """The active alert ids the stopped station saved (its alert state), or None if unreadable."""
        try:
            saved = json.loads((self.state / "alerts.json").read_text())
            return sorted(t["alert"]["id"] for t in saved["snapshot"]["tracks"] if t.get("alert"))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def unmount(self) -> None:
        if self.tmpfs:
            subprocess.run(["umount", "-l", str(self.state)], capture_output=True)

    def read_journal(self) -> tuple[list[dict], dict[int, dict], list[dict], list[dict]]:
        """(alert events, the last stats per process, completed faults, other notes); a torn line is skipped."""
        events, stats, faults, notes = [], {}, [], []
        for line in self.journal.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # SIGKILL in the middle of a line
            if "id" in entry:
                events.append(entry)
            elif "stats" in entry:
                stats[entry["pid"]] = entry
                if "event" in entry:
                    notes.append(entry)
            elif "fault" in entry:
                faults.append(entry)
            else:
                notes.append(entry)
        return events, stats, faults, notes


def _fill(folder: Path) -> None:
    """Write into ``folder`` until its filesystem says ENOSPC, to the last few bytes."""
    try:
        with open(folder / "filler", "ab") as f:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
    except OSError:
        pass
    for i in range(2000):
        try:
            (folder / f"filler-{i}").write_bytes(b"x" * 64)
        except OSError:
            break


# =============================================================================== calibration power cuts

CUT_POINTS = ("mid-write", "before-rename", "after-rename", "random")


def calibration_of(generation: int) -> ScaleCalibration:
    """A calibration that says which generation it is (offset = 1000 x generation)."""
    return ScaleCalibration(
        offset_counts=1000.0 * generation,
        counts_per_gram=100.0 + generation,
        gain=128,
        created=float(generation),
    )


class _Os:
    """``os`` for the calibration module, with one function swapped: where the power cut lands."""

    def __init__(self, **overrides: Callable):
        self._overrides = overrides

    def __getattr__(self, name: str) -> Any:
        return self._overrides.get(name) or getattr(os, name)


def _power_cut_here() -> None:
    print("CUT", flush=True)
    while True:  # wait for the SIGKILL that is the power cut
        time.sleep(1)


class _HalfWriter:
    """A file whose write() puts half the bytes on disk, then the power goes."""

    def __init__(self, f):
        self.f = f

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def write(self, text: str) -> int:
        self.f.write(text[: len(text) // 2])
        self.f.flush()
        os.fsync(self.f.fileno())
        _power_cut_here()
        return 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.f, name)


def calibration_writer_main(state_dir: str, cut: str, naive: bool) -> int:
    """The writer subprocess: save generation after generation; stop dead where ``cut`` says.

    Prints ``SAVE <n>`` before each save, so the parent knows which two files may be there.
    ``naive`` writes the file in place (no temporary, no rename): the writer the check must
    catch.
    """
    import monitor.i2c.calibration as calibration

    store = CalibrationStore(state_dir)
    if cut == "mid-write":
        calibration.os = _Os(fdopen=lambda *a, **k: _HalfWriter(os.fdopen(*a, **k)))
    elif cut == "before-rename":
        calibration.os = _Os(replace=lambda *a: _power_cut_here())
    elif cut == "after-rename":
        calibration.os = _Os(replace=lambda *a: (os.replace(*a), _power_cut_here()))
    generation = 1
    while True:
        print(f"SAVE {generation}", flush=True)
        if naive:
            _save_in_place(store, cut, calibration_of(generation))
        else:
            store.save("scale", calibration_of(generation))
        generation += 1


def _save_in_place(store: CalibrationStore, cut: str, cal: ScaleCalibration) -> None:
    """How not to save: truncate the real file and write it (what the atomic save avoids)."""
    text = json.dumps(cal.to_json(), indent=2, sort_keys=True) + "\n"
    with open(store.path("scale"), "w", encoding="utf-8") as f:
        (_HalfWriter(f) if cut == "mid-write" else f).write(text)


@dataclass
class CutResult:
    point: str
    last_started: int  # the generation being saved when the power went
    found: str  # "old", "new", "torn", "missing" or "wrong"
    detail: str = ""


def calibration_power_cuts(
    workdir: Path, rng: random.Random, cuts: int, *, naive: bool = False
) -> list[CutResult]:
    """Cut the power on a calibration writer ``cuts`` times; say what the file held after each.

    Each cut uses a fresh state dir holding generation 0; the writer then saves 1, 2, ...
    and is SIGKILLed at a point from CUT_POINTS in turn ("random": after 5-60 ms of
    saving in a loop). After the cut the file must load as the generation being saved
    or the one before it. A restart's next save must also work and tidy the leftovers.
    """
    results = []
    for i in range(cuts):
        point = CUT_POINTS[i % len(CUT_POINTS)]
        state = workdir / f"cut-{i:03d}"
        CalibrationStore(state).save("scale", calibration_of(0))
        results.append(_one_cut(state, point, rng, naive))
    return results


def _one_cut(state: Path, point: str, rng: random.Random, naive: bool) -> CutResult:
    args = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--calibration-writer",
        str(state),
        "--cut",
        point,
    ]
    if naive:
        args.append("--naive")
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    lines: list[str] = []
    wait_for = "SAVE 1" if point == "random" else "CUT"
    while True:  # the writer blocks at its cut point, so this ends
        line = proc.stdout.readline()
        if not line or line.strip() == wait_for:
            break
        lines.append(line.strip())
    if point == "random":
        lines.append(wait_for)
        time.sleep(rng.uniform(0.0, 0.03))  # saving runs flat out meanwhile: cut anywhere in it
    proc.kill()
    proc.wait()
    lines += [x.strip() for x in proc.stdout.read().splitlines()]
    proc.stdout.close()
    started = max((int(x.split()[1]) for x in lines if x.startswith("SAVE ")), default=0)
    return CutResult(point, started, *_inspect(state, started))


def _inspect(state: Path, started: int) -> tuple[str, str]:
    store = CalibrationStore(state)
    try:
        cal = store.load("scale")
    except CalibrationError as err:
        return "torn", str(err)[:120]
    if cal is None:
        return "missing", "no calibration file at all"
    generation = int(round(cal.offset_counts / 1000.0))
    if cal != calibration_of(generation) or generation not in (started, started - 1):
        return "wrong", f"generation {generation} while saving {started}"
    # The station restarts and saves again: that must work and leave no temporary behind.
    store.save("scale", calibration_of(started + 1))
    leftovers = sorted(p.name for p in state.glob(".*.tmp"))
    if leftovers or store.load("scale") != calibration_of(started + 1):
        return "wrong", f"the next save left {leftovers}"
    return ("new" if generation == started else "old"), ""


# =============================================================================== network chaos


@dataclass
class NetFault:
    """A planned fault or event in wall time; for network faults, when each station was back.

    Network faults: "broker restart", "link refused", "link blackhole". The killed station:
    "SIGKILL" (``damage`` names what is done to its outbox before the restart, if anything),
    "disk full" and "disk room". Others: "flood", "display restart", "ack".
    """

    kind: str
    at: float  # planned start, seconds after the run began
    duration: float
    down_at: float = 0.0  # monotonic
    up_at: float = 0.0  # monotonic: the broker accepts again / the link relays again / respawn
    reconnect_s: dict[str, float | None] = field(default_factory=dict)
    overlapped: bool = False  # a SIGKILL restart while the network was down
    damage: str | None = None


NETWORK = ("broker restart", "link refused", "link blackhole")


def plan_network(rng: random.Random, wall_s: float, options: Options) -> list[NetFault]:
    """Network faults, SIGKILLs, the full disk, floods, display restarts and acks; none in the last 15 %.

    The killed station's disk is full in one window (40-52 % of the run; 60-80 % in a quick
    run) with two SIGKILLs inside it (one in a quick run) and no network fault near it: with
    the broker reachable a kill may lose nothing the broker acknowledged. Every other SIGKILL
    outside it damages the outbox, in turn through DAMAGE. A quick run has exactly two broker
    restarts and two refused links in its first half and three SIGKILLs, so a short test
    still sees a couple of each.
    """
    quiet_from = wall_s * 0.85
    plan: list[NetFault] = []
    if options.quick:
        faults = [
            NetFault(
                kind,
                0.0,
                rng.uniform(0.3, 1.0) if kind == "broker restart" else rng.uniform(3.5, 4.5),
            )
            for kind in ("broker restart", "link refused", "broker restart", "link refused")
        ]
        # 2.5 s apart: longer than paho's reconnect backoff, so each fault's reconnect is its own
        t = 3.0
        for f in faults:
            f.at = t
            t += f.duration + 2.5
        plan += faults
        net_end = t - 2.5
        window = (net_end + 1.0, max(net_end + 5.0, quiet_from - 0.5))
        kills = [
            NetFault("SIGKILL", 4.0, 0.0, damage=DAMAGE[options.seed % len(DAMAGE)]),
            NetFault(
                "SIGKILL", wall_s * 0.35, 0.0, damage=DAMAGE[(options.seed + 2) % len(DAMAGE)]
            ),
            NetFault("SIGKILL", sum(window) / 2, 0.0),
        ]
        # floods once the network faults are over (a station that is away gets no command)
        others = [
            NetFault("flood", net_end + 0.5, 0.0),
            NetFault("flood", window[0] + 1.0, 0.0),
            NetFault("display restart", wall_s * 0.45, 0.0),
            NetFault("ack", net_end + 2.0, 0.0),
            NetFault("ack", window[1] - 1.0, 0.0),
        ]
    else:
        window = (wall_s * 0.40, wall_s * 0.52)
        kinds = ["broker restart", "link refused", "broker restart", "link blackhole"]
        t = rng.uniform(3.0, 6.0)
        for i in itertools.count():
            if t >= quiet_from:
                break
            kind = kinds[i % len(kinds)]
            if kind == "broker restart":
                # Short outages keep paho's reconnect backoff (0.5 s, doubling) under the 2 s target;
                # longer ones show what the backoff costs.
                duration = rng.uniform(2.0, 6.0) if rng.random() < 0.3 else rng.uniform(0.3, 1.0)
            elif kind == "link refused":
                duration = rng.uniform(4.0, 12.0)  # a backlog that overflows the full disk
            else:
                duration = rng.uniform(8.0, 15.0)
            if t < window[1] + 8.0 and t + duration > window[0] - 8.0:
                t = window[1] + 8.0  # the network stays up around the full disk
                continue
            plan.append(NetFault(kind, t, duration))
            t += duration + rng.uniform(8.0, 20.0)
        kills = [
            NetFault("SIGKILL", window[0] + (window[1] - window[0]) * f, 0.0)
            for f in (1 / 3, 2 / 3)
        ]
        t, n = rng.uniform(4.0, 7.0), 0
        while t < quiet_from:
            if not window[0] - 2.0 <= t <= window[1] + 2.0:
                damage = DAMAGE[(n // 2) % len(DAMAGE)] if n % 2 == 0 else None
                kills.append(NetFault("SIGKILL", t, 0.0, damage=damage))
                n += 1
            t += rng.uniform(8.0, 25.0)
        others = [NetFault("display restart", wall_s * f, 0.0) for f in (0.25, 0.5, 0.75)]
        t = rng.uniform(10.0, 20.0)
        while t < quiet_from:
            others.append(NetFault("flood", t, 0.0))
            t += rng.uniform(30.0, 60.0)
        t = rng.uniform(8.0, 15.0)
        while t < quiet_from:
            others.append(NetFault("ack", t, 0.0))
            t += rng.uniform(15.0, 30.0)
    if options.kill:
        plan += kills
        plan += [
            NetFault("disk full", window[0], window[1] - window[0]),
            NetFault("disk room", window[1], 0.0),
        ]
    if not options.display:
        others = [o for o in others if o.kind != "display restart"]
    return sorted(plan + others, key=lambda f: f.at)


def watch_reconnects(
    fault: NetFault, stations: list[StationThread], before: dict[str, int], timeout: float = 60.0
) -> threading.Thread:
    """In the background: when each station's publisher made a new connection after ``fault.up_at``."""

    def watch() -> None:
        waiting = {s.id: s for s in stations}
        deadline = time.monotonic() + timeout
        while waiting and time.monotonic() < deadline:
            for sid, s in list(waiting.items()):
                pub = s.runner.publisher if s.runner else None
                if pub is not None and pub.connected and pub.stats().connects > before[sid]:
                    fault.reconnect_s[sid] = max(0.0, time.monotonic() - fault.up_at)
                    del waiting[sid]
            time.sleep(0.01)
        for sid in waiting:
            fault.reconnect_s[sid] = None

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _connects(stations: list[StationThread]) -> dict[str, int]:
    return {
        s.id: s.runner.publisher.stats().connects if s.runner and s.runner.publisher else 0
        for s in stations
    }


def squeeze_disk(station: StationThread) -> int:
    """Cap the station's outbox file at the pages it has now: the disk is full from here on.

    This is what ``Outbox(page_limit=...)`` does when it opens a file; the runner opens
    its outbox itself, so the same PRAGMA goes to that connection. Returns the cap.
    """
    outbox = station.runner.outbox
    with outbox._lock:  # the outbox's own lock: no insert runs while the cap is set
        pages = outbox._db.execute("PRAGMA page_count").fetchone()[0]
        outbox._db.execute(f"PRAGMA max_page_count={int(pages)}")
    return int(pages)


# =============================================================================== the run


@dataclass
class Report:
    """Everything a chaos run found; :func:`format_report` prints it."""

    options: Options
    wall_s: float = 0.0
    ledger: Ledger = field(default_factory=Ledger)
    per_station: dict[str, dict[str, int]] = field(default_factory=dict)
    lost: list[Raised] = field(default_factory=list)
    samples: dict[str, dict[str, SensorTally]] = field(default_factory=dict)
    chip_faults: list[ChipFault] = field(default_factory=list)
    child_fault_recoveries: list[tuple[str, float | None]] = field(default_factory=list)
    net_faults: list[NetFault] = field(default_factory=list)
    backlog_s: dict[str, list[float]] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    crashes: dict[str, list[str]] = field(default_factory=dict)
    disk: dict[str, Any] = field(default_factory=dict)
    stale_active: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    holds: dict[str, list[str] | None] = field(
        default_factory=dict
    )  # active alerts each station ended with
    wall: dict[str, list[str]] | None = None  # what the display shows at the end
    wall_mismatch: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    display_restarts: int = 0
    ghosts: int = 0  # alerts shown (wall or retained list) that no station holds
    missing_on_wall: int = 0  # alerts a station holds that the wall does not show
    loop_errors: dict[str, int] = field(default_factory=dict)
    floods: dict[str, Any] = field(default_factory=dict)
    killed_disk: dict[str, Any] = field(default_factory=dict)
    damage: list[dict[str, Any]] = field(default_factory=list)
    lost_by_cause: dict[str, int] = field(default_factory=dict)
    cuts: list[CutResult] = field(default_factory=list)
    sim_s: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def raised(self) -> int:
        return sum(r.get("raised", 0) for r in self.per_station.values())

    @property
    def duplicates(self) -> int:
        return sum(r.get("duplicates", 0) for r in self.per_station.values())

    @property
    def torn(self) -> list[CutResult]:
        return [c for c in self.cuts if c.found not in ("old", "new")]

    @property
    def ok(self) -> bool:
        return (
            not self.lost
            and not any(self.crashes.values())
            and not self.torn
            and not self.errors
            and self.raised > 0
            and not self.stale_active
            and not self.wall_mismatch
            and not any(self.loop_errors.values())
            and not self.floods.get("other_replies")
        )


class LogTally(logging.Handler):
    """Counts the stations' log records by logger and level, keeping the first of each kind we look for.

    ``emit`` runs under the handler's own lock (``Handler.handle`` takes it), so it needs none.
    """

    MARKERS = (
        "the disk is full",
        "held in memory now",
        "has room again",
        "could not delete",
        "stored in the file now",
    )

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[tuple[str, str]] = Counter()
        self.first: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.counts[(record.name, record.levelname)] += 1
        for marker in self.MARKERS:
            if marker in message:
                self.first.setdefault(marker, message)

    def matching(self, marker: str) -> str | None:
        return self.first.get(marker)


def run_chaos(options: Options) -> Report:
    """Run everything the module docstring describes and return what happened."""
    report = Report(options)
    tally = LogTally()
    root = logging.getLogger("monitor")
    root.addHandler(tally)
    level = root.level
    root.setLevel(logging.WARNING)  # whatever the console shows, the tally sees warnings
    workdir_ctx = tempfile.TemporaryDirectory(prefix="chaos-") if options.workdir is None else None
    workdir = Path(workdir_ctx.name) if workdir_ctx else options.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        _run(options, workdir, report, tally)
    finally:
        root.removeHandler(tally)
        root.setLevel(level)
        report.wall_s = time.monotonic() - started
        if workdir_ctx:
            workdir_ctx.cleanup()
    return report


def _run(options: Options, workdir: Path, report: Report, tally: LogTally) -> None:
    rng = random.Random(options.seed)
    ids = [f"bench-{i + 1}" for i in range(options.stations)]
    broker, secrets = start_broker(
        workdir, [*ids, KILLED_ID, WITNESS_USER, OPERATOR_USER, DISPLAY_USER]
    )
    link = Link(broker.port)
    ledger = report.ledger
    witness = Witness(broker, ledger)
    operator = Operator(broker, random.Random(rng.random()))
    display = DisplayWitness(broker, [*ids, KILLED_ID]) if options.display else None
    stations: list[StationThread] = []
    killed: KilledStation | None = None
    try:
        if not witness.subscribed.wait(10):
            raise RuntimeError("the witness could not subscribe")
        if display is not None:
            display.start()
        for i, sid in enumerate(ids):
            cfg = station_config(i, workdir / sid, options, link.port, secrets)
            # The first station's disk fills up (see squeeze_disk): twice the chip faults make
            # sure its backlog outgrows the disk while the broker is away.
            gap = options.chip_gap_s / 2 if i == 0 else options.chip_gap_s
            stations.append(StationThread(cfg, ledger, options, random.Random(rng.random()), gap))
        for s in stations:
            s.start()
        for s in stations:
            s.started.wait(30)
        if options.kill:
            kdir = workdir / KILLED_ID
            kdir.mkdir()
            killed = KilledStation(kdir, options, link.port, secrets)
            killed.spawn()
        plan = plan_network(rng, options.wall_s, options)
        report.net_faults = plan
        _play(
            plan,
            broker,
            link,
            stations,
            killed,
            witness,
            report,
            operator,
            display,
            [*ids, KILLED_ID],
        )
        for s in stations:
            s.reached_end.wait(options.wall_s * 3 + 60)
        if killed is not None and killed.disk_full_since is not None:
            killed.free_disk()
        _drain(stations, ledger, report)
    finally:
        for s in stations:
            try:
                s.stop()
            except Exception:
                report.errors.append(f"{s.id}: stopping failed:\n{traceback.format_exc()}")
        if killed is not None:
            killed.stop()
        try:
            _collect(stations, killed, witness, report, tally, operator, display)
        finally:
            operator.close()
            if display is not None:
                display.stop()
            if killed is not None:
                killed.unmount()
            witness.close()
            link.close()
            broker.close()


def _play(
    plan: list[NetFault],
    broker,
    link: Link,
    stations: list[StationThread],
    killed: KilledStation | None,
    witness: Witness,
    report: Report,
    operator: Operator | None = None,
    display: DisplayWitness | None = None,
    ids: list[str] = (),
) -> None:
    """Carry out the plan in wall time, measuring how long reconnecting took."""
    t0 = time.monotonic()
    watchers: list[threading.Thread] = []
    disk_station = stations[0] if stations else None
    for fault in plan:
        delay = t0 + fault.at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if killed is not None:
            killed.check()
        if fault.kind == "SIGKILL":
            fault.down_at = time.monotonic()
            killed.kill(fault.damage)
            fault.up_at = killed.spawns[-1]
            continue
        if fault.kind in ("disk full", "disk room"):
            fault.down_at = time.monotonic()
            if killed is not None:
                killed.fill_disk() if fault.kind == "disk full" else killed.free_disk()
            continue
        if fault.kind == "flood":
            if operator is not None:
                operator.flood([i for i in ids if killed is not None or i != KILLED_ID], stations)
            continue
        if fault.kind == "ack":
            if operator is not None:
                operator.ack(witness)
            continue
        if fault.kind == "display restart":
            if display is not None:
                try:
                    display.restart()
                except Exception:
                    report.errors.append(f"the display did not restart:\n{traceback.format_exc()}")
            continue
        if disk_station is not None and "disk_pages" not in report.disk:
            report.disk["station"] = disk_station.id
            report.disk["disk_pages"] = squeeze_disk(disk_station)
        before = _connects(stations)
        fault.down_at = time.monotonic()
        if fault.kind == "broker restart":
            broker.restart(down_for=fault.duration)
        else:
            link.set_mode("refused" if fault.kind == "link refused" else "blackhole")
            time.sleep(fault.duration)
            link.set_mode("up")
        fault.up_at = time.monotonic()
        watchers.append(watch_reconnects(fault, stations, before))
    for w in watchers:
        w.join(70)


def _drain(
    stations: list[StationThread], ledger: Ledger, report: Report, timeout: float = 90.0
) -> None:
    """Let the stations run on without chaos until every event raised so far is delivered."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(s.settled() for s in stations) and not ledger.missing():
            return
        time.sleep(0.2)
    report.errors.append(
        f"not settled {timeout:.0f} s after the chaos ended "
        f"({len(ledger.missing())} event(s) still undelivered)"
    )


def _collect(
    stations: list[StationThread],
    killed: KilledStation | None,
    witness: Witness,
    report: Report,
    tally: LogTally,
    operator: Operator | None = None,
    display: DisplayWitness | None = None,
) -> None:
    """After the stop: the child's journal into the ledger, final deliveries, and every figure."""
    ledger = report.ledger
    for s in stations:
        # A fault the end of the run cut short (the chip had not had GIVE_UP_S to deliver again)
        # proves nothing either way: left out, as the subprocess station leaves it out.
        end = s.clock.now()
        report.chip_faults += [
            f
            for f in (s.chaos.faults if s.chaos else [])
            if f.recovered_at is not None or end - f.back_at >= ChipChaos.GIVE_UP_S
        ]
        report.samples[s.id] = s.tallies()
        report.sim_s[s.id] = s.sim_elapsed
        report.crashes[s.id] = s.crashes + ([s.error] if s.error else [])
        report.restarts[s.id] = len(s.crashes)
        report.loop_errors[s.id] = s.loop_errors
    journal: list[dict] = []
    if killed is not None:
        journal, stats, faults, notes = killed.read_journal()
        for e in journal:
            ledger.record_raised(KILLED_ID, e["id"], e["state"], e["level"], e["code"], e["at"])
        report.samples[KILLED_ID] = _child_tallies({pid: e["stats"] for pid, e in stats.items()})
        report.sim_s[KILLED_ID] = sum(e["stats"].get("sim_s", 0.0) for e in stats.values())
        report.loop_errors[KILLED_ID] = sum(e.get("loop_errors", 0) for e in stats.values())
        report.child_fault_recoveries = [(f["fault"], f["recovery_s"]) for f in faults]
        report.restarts[KILLED_ID] = killed.kills + len(killed.unexpected_exits)
        report.crashes[KILLED_ID] = killed.unexpected_exits
        outages = [(f.down_at, f.up_at) for f in report.net_faults if f.kind in NETWORK]
        for fault in report.net_faults:
            if fault.kind == "SIGKILL":
                online = witness.online_after(KILLED_ID, fault.up_at)
                fault.reconnect_s[KILLED_ID] = None if online is None else online - fault.up_at
                # A restart while the broker is unreachable waits for it: not the restart's cost.
                end = online if online is not None else math.inf
                fault.overlapped = any(down < end and up > fault.up_at for down, up in outages)
        _collect_killed(killed, stats, notes, report)
    deadline = time.monotonic() + 20  # the last events of the stop are still on their way
    while ledger.missing() and time.monotonic() < deadline:
        time.sleep(0.1)
    report.lost = ledger.missing()
    report.per_station = ledger.summary()
    report.backlog_s = _backlogs(report)
    _collect_disk(stations, report, tally)
    if killed is not None:
        report.lost_by_cause = _lost_by_cause(report.lost, journal, killed)
    if operator is not None:
        with witness.lock:
            report.floods = {
                "floods": operator.floods,
                "commands": operator.commands,
                "presses": operator.presses,
                "acks": operator.acks,
                "replies": dict(witness.replies),
                "other_replies": list(witness.other_replies),
            }
    # What each station ends up holding, against its retained list and the wall.
    for s in stations:
        if s.runner is not None:
            report.holds[s.id] = sorted(a.id for a in s.runner.station.alerts.active())
    if killed is not None:
        report.holds[KILLED_ID] = killed.holds()
    time.sleep(1.0)
    with witness.lock:
        retained = {
            sid: sorted(a["id"] for a in lst.get("alerts", []))
            for sid, lst in witness.active.items()
        }
    for sid, mine in report.holds.items():
        if mine is None:
            report.errors.append(f"{sid}: its saved alert state could not be read at the end")
            continue
        seen = retained.get(sid, [])
        if mine != seen:
            report.stale_active[sid] = (mine, seen)
    if display is not None:
        report.display_restarts = display.restarts
        wall: dict[str, list[str]] = {}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                wall = display.wall()
            except Exception as err:
                wall = {"?": [f"the display did not answer: {err}"]}
            if all(wall.get(sid, []) == (mine or []) for sid, mine in report.holds.items()):
                break
            time.sleep(0.5)
        report.wall = wall
        for sid in sorted(set(wall) | set(report.holds)):
            mine, shown = report.holds.get(sid) or [], wall.get(sid, [])
            if mine != shown:
                report.wall_mismatch[sid] = (mine, shown)
        held = {i for ids in report.holds.values() for i in (ids or [])}
        report.ghosts = len({i for ids in wall.values() for i in ids} - held) + len(
            {i for ids in retained.values() for i in ids} - held
        )
        report.missing_on_wall = len(held - {i for ids in wall.values() for i in ids})


def _collect_killed(
    killed: KilledStation, stats: dict[int, dict], notes: list[dict], report: Report
) -> None:
    """The killed station's full disk and damaged outboxes, from its journal and its log."""
    d = report.killed_disk
    d["tmpfs"] = killed.tmpfs
    d["windows"] = [round(b - a, 1) for a, b in killed.full_windows]
    d["kills_inside"] = sum(1 for _, _, full, _ in killed.kill_log if full)
    d["held_alerts"] = sum(e.get("held", 0) for e in stats.values())
    d["starts_in_memory"] = sum(
        1 for n in notes if n.get("event") == "started" and n.get("in_memory")
    )
    log_text = (killed.workdir / "child.log").read_text(errors="replace")
    d["full_errors"] = log_text.count("the disk is full")
    d["state_save_errors"] = log_text.count("cannot save the alert state")
    damaged = []
    for line in log_text.splitlines():
        if "monitor.mqtt.outbox" in line and "is damaged (" in line:
            try:
                when = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            except ValueError:
                continue
            damaged.append((when, line))
    kinds = [damage for _, _, _, damage in killed.kill_log if damage]
    walls = killed.kill_walls + [math.inf]
    for i, (_, _, _, kind) in enumerate(killed.kill_log):
        if not kind:
            continue
        # the line the restart after this kill wrote (before the next kill)
        line = next((text for when, text in damaged if walls[i] - 1.0 <= when < walls[i + 1]), None)
        salvaged = None
        if line:
            m = re.search(r"(\d+) message\(s\) salvaged", line)
            salvaged = int(m.group(1)) if m else None
        report.damage.append({"kind": kind, "seen": line is not None, "salvaged": salvaged})
    if len(damaged) < len(kinds):
        # "garbage WAL" is not damage to SQLite (it ignores a WAL whose checksums fail): no line is due
        due = sum(1 for k in kinds if k != "garbage WAL")
        if sum(1 for d in report.damage if d["seen"]) < due:
            report.errors.append(
                f"{due} damaged outbox(es), {len(damaged)} CRITICAL 'is damaged' line(s) "
                "in the killed station's log"
            )


def _lost_by_cause(
    lost: list[Raised], journal: list[dict], killed: KilledStation
) -> dict[str, int]:
    """Lost events of the killed station by what happened to the process that journaled them."""
    pid_of = {(e["id"], e["state"], e["level"]): e["pid"] for e in journal}
    kills = {pid: (full, damage) for pid, _, full, damage in killed.kill_log}
    out: Counter[str] = Counter()
    for r in lost:
        if r.station != KILLED_ID:
            out["lost otherwise"] += 1
            continue
        full, damage = kills.get(pid_of.get((r.id, r.state, r.level)), (False, None))
        if full:
            out["journaled, SIGKILLed on a full disk before the broker acknowledged it"] += 1
        elif damage:
            out[f"journaled, SIGKILLed, outbox then damaged ({damage})"] += 1
        else:
            out["journaled, SIGKILLed"] += 1
    return dict(out)


def _child_tallies(stats: dict[int, dict]) -> dict[str, SensorTally]:
    rates = {"wrist": 250.0, "chest": 208.0}
    out = {name: SensorTally(rate) for name, rate in rates.items()}
    for st in stats.values():
        for name, tally in out.items():
            row = st.get(name, {})
            tally.samples += row.get("samples", 0)
            tally.lost += row.get("lost", 0)
            tally.fifo_resets += row.get("fifo_resets", 0)
            tally.faults += row.get("faults", 0)
            tally.reconfigurations += row.get("reconfigurations", 0)
            tally.sim_s += st.get("sim_s", 0.0)
    return out


def _backlogs(report: Report) -> dict[str, list[float]]:
    """Per network fault kind: for events raised while it lasted, delivery time after it ended."""
    out: dict[str, list[float]] = defaultdict(list)
    for fault in report.net_faults:
        if fault.kind not in NETWORK:
            continue
        for key, r in report.ledger.raised.items():
            if r.station == KILLED_ID or not fault.down_at <= r.at <= fault.up_at:
                continue
            got = report.ledger.delivered_at(key)
            if got is not None:
                out[fault.kind].append(max(0.0, got - fault.up_at))
    return dict(out)


def _collect_disk(stations: list[StationThread], report: Report, tally: LogTally) -> None:
    disk = report.disk
    station = next((s for s in stations if s.id == disk.get("station")), None)
    if station is None or station.runner is None or station.runner.outbox is None:
        return
    stats = station.runner.outbox.stats()
    disk["stored"] = dict(stats.stored)
    disk["dropped"] = dict(stats.dropped)
    disk["held_total"] = dict(stats.held_total)
    disk["full_error"] = tally.matching("the disk is full")
    disk["held_in_memory"] = tally.matching("held in memory now")
    disk["room_again"] = tally.matching("has room again") or tally.matching(
        "stored in the file now"
    )
    disk["outbox_errors"] = tally.counts[("monitor.mqtt.outbox", "ERROR")]


# =============================================================================== the report


def _stats(values: list[float | None]) -> str:
    got = [v for v in values if v is not None]
    missing = len(values) - len(got)
    if not got:
        return "n/a" + (f" ({missing} never)" if missing else "")
    text = f"median {statistics.median(got):5.2f}  max {max(got):5.2f}"
    return text + (f"  ({missing} never)" if missing else "")


def format_report(report: Report, command: str = "") -> str:
    o = report.options
    lines = []
    add = lines.append
    add(
        f"chaos: {o.stations} in-process station(s)"
        + (f" + {KILLED_ID} (subprocess, SIGKILLed)" if o.kill else "")
        + f", {o.minutes:g} simulated min at up to {o.speed:g}x, seed {o.seed}; wall {report.wall_s:.0f} s"
    )
    if command:
        add(f"command: {command}")
    add(
        "broker: Mosquitto with config/mosquitto/acl + password file + persistence; stations reach it "
        "through the chaos link (TCP relay)"
    )
    sims = ", ".join(f"{k} {v / 60:.1f}" for k, v in report.sim_s.items())
    add(f"simulated minutes run: {sims}")
    add("")
    add(
        "ALERT EVENTS (raised = AlertManager events recorded at the source; delivered = seen by the "
        "persistent QoS 1 witness)"
    )
    add(
        f"  {'station':10} {'raised':>7} {'delivered':>9} {'unique(id,state)':>16} {'copies':>7} "
        f"{'duplicates':>10} {'lost':>5}"
    )
    total = Counter()
    for sid, row in report.per_station.items():
        total.update(row)
        add(
            f"  {sid:10} {row.get('raised', 0):7d} {row.get('delivered', 0):9d} "
            f"{row.get('unique_id_state', 0):16d} {row.get('received', 0):7d} {row.get('duplicates', 0):10d} "
            f"{row.get('lost', 0):5d}"
        )
    add(
        f"  {'total':10} {total['raised']:7d} {total['delivered']:9d} {total['unique_id_state']:16d} "
        f"{total['received']:7d} {total['duplicates']:10d} {total['lost']:5d}"
    )
    if total["unrecorded"]:
        add(
            f"  ({total['unrecorded']} delivered event(s) with no source record: raised by {KILLED_ID} "
            "and stored, then SIGKILLed before its journal line)"
        )
    codes = Counter(r.code for r in report.ledger.raised.values())
    add("  by code: " + ", ".join(f"{c} {n}" for c, n in codes.most_common()))
    for r in report.lost[:20]:
        add(f"  LOST: {r.station} {r.id} {r.state} {r.level} {r.code}")
    add("")
    add("SAMPLES (ImuStats summed over every driver instance; expected = rate x simulated time)")
    add(
        f"  {'station':10} {'sensor':8} {'expected':>9} {'acquired':>9} {'lost':>7} {'fifo_resets':>11} "
        f"{'faults':>7} {'reconfig':>8} {'coverage':>8}"
    )
    for sid, sensors in report.samples.items():
        for name, t in sensors.items():
            cover = t.samples / t.expected if t.expected else 0.0
            add(
                f"  {sid:10} {name:8} {t.expected:9d} {t.samples:9d} {t.lost:7d} {t.fifo_resets:11d} "
                f"{t.faults:7d} {t.reconfigurations:8d} {cover:8.1%}"
            )
    add(
        "  lost = gaps the driver counted from its timestamps (overflow resets, faults, stalls); "
        "faults = SensorErrors raised by reads"
    )
    add("")
    add(
        f"CHIP FAULTS (simulated seconds from the chip being usable again to the first data; "
        f"target {RECOVERY_TARGET_S:g} s)"
    )
    by_kind: dict[str, list[float | None]] = defaultdict(list)
    for f in report.chip_faults:
        by_kind[f.kind].append(f.recovery_s)
    for kind, rec in report.child_fault_recoveries:
        by_kind[kind].append(rec)
    for kind in CHIP_FAULTS:
        values = by_kind.get(kind, [])
        within = sum(1 for v in values if v is not None and v <= RECOVERY_TARGET_S)
        add(
            f"  {kind:9} n={len(values):4d}  {_stats(values)}  within target {within}/{len(values)}"
        )
    add("")
    add("NETWORK AND PROCESS FAULTS (wall seconds)")
    by_net: dict[str, list[NetFault]] = defaultdict(list)
    for f in report.net_faults:
        by_net[f.kind].append(f)
    for kind, faults in by_net.items():
        if kind not in NETWORK and kind != "SIGKILL":
            continue
        if kind == "SIGKILL":
            clear = [f.reconnect_s.get(KILLED_ID) for f in faults if not f.overlapped]
            during = [f.reconnect_s.get(KILLED_ID) for f in faults if f.overlapped]
            add(
                f"  SIGKILL         n={len(faults):3d}  restart -> 'online' at the broker: {_stats(clear)}"
                + (
                    f"; {len(during)} restarted while the network was down: {_stats(during)}"
                    if during
                    else ""
                )
            )
            continue
        downs = [f.duration for f in faults]
        rec = [v for f in faults for v in f.reconnect_s.values()]
        add(
            f"  {kind:15} n={len(faults):3d}  down {min(downs):.1f}-{max(downs):.1f} s; back -> each "
            f"publisher reconnected: {_stats(rec)}"
        )
        backlog = report.backlog_s.get(kind, [])
        if backlog:
            add(
                f"  {'':15}        alerts raised while down: {len(backlog)}, back -> delivered: {_stats(backlog)}"
            )
        for f in faults:
            slow = {k: v for k, v in f.reconnect_s.items() if v is None or v > RECOVERY_TARGET_S}
            if slow:
                add(
                    f"  {'':15}        down {f.duration:.1f} s -> reconnect over {RECOVERY_TARGET_S:g} s: "
                    + ", ".join(
                        f"{k} {'never' if v is None else f'{v:.2f}'}" for k, v in slow.items()
                    )
                )
    restarts = ", ".join(f"{k} {v}" for k, v in report.restarts.items())
    add(f"  station restarts: {restarts}")
    add("")
    d = report.disk
    if d:
        add(
            f"FULL DISK ({d['station']}'s outbox capped at {d['disk_pages']} SQLite pages when the first "
            "network fault began, for the rest of the run)"
        )
        add(
            f"  stored by kind {d.get('stored')}; dropped by kind {d.get('dropped') or {}}; "
            f"held in memory and sent directly, by kind {d.get('held_total') or {}}"
        )
        dropped_alerts = (d.get("dropped") or {}).get("alert", 0)
        add(
            f"  alerts dropped by the outbox: {dropped_alerts}; "
            f"ERROR lines from the outbox: {d.get('outbox_errors', 0)}"
        )
        for marker, label in (
            ("full_error", "first error"),
            ("held_in_memory", "held"),
            ("room_again", "then"),
        ):
            if d.get(marker):
                add(f"  {label}: {d[marker][:200]}")
        add("")
    k = report.killed_disk
    if k:
        kills = [f for f in report.net_faults if f.kind == "SIGKILL"]
        add(
            f"FULL DISK WITH SIGKILL ({KILLED_ID}: state directory on a {'tmpfs filled to the last byte' if k['tmpfs'] else 'plain directory'}"
            f" and its outbox unable to grow)"
        )
        add(
            f"  window(s) {k['windows']} s; SIGKILLs inside: {k['kills_inside']} of {len(kills)}; alert events held "
            f"in memory and sent directly: {k['held_alerts']} (counted per process until its last tally)"
        )
        add(
            f"  restarts that found the disk too full to open the outbox file (ran in memory): "
            f"{k['starts_in_memory']}; 'disk is full' lines: {k['full_errors']}; alert state not saved: "
            f"{k['state_save_errors']} line(s)"
        )
        if report.lost_by_cause:
            add(
                "  lost, by cause: "
                + "; ".join(f"{c}: {n}" for c, n in report.lost_by_cause.items())
            )
        else:
            add("  lost: none (nothing the broker had acknowledged, and nothing it had not)")
        add("")
    if report.damage:
        add(
            f"DAMAGED OUTBOXES ({KILLED_ID}, between a SIGKILL and the restart): {len(report.damage)}"
        )
        for dmg in report.damage:
            if dmg["kind"] == "garbage WAL":
                add(
                    f"  {dmg['kind']:14} SQLite ignores a WAL whose checksums fail: the file opens as it was"
                )
                continue
            add(
                f"  {dmg['kind'] or '?':14} moved aside with a CRITICAL line: {'yes' if dmg['seen'] else 'NO'}; "
                f"rows salvaged: {dmg['salvaged'] if dmg['salvaged'] is not None else '-'}"
            )
        add("")
    f = report.floods
    if f:
        replies = f.get("replies", {})
        add(
            f"SESSION COMMAND FLOODS: {f['floods']} flood(s), {f['commands']} cmd/session messages, "
            f"{f['presses']} panel button presses; {f['acks']} acknowledgement(s) by a staff name"
        )
        add(
            f"  replies: ok {replies.get('ok', 0)}, busy {replies.get('busy', 0)}, other {replies.get('other', 0)} "
            "(a station that is away gets no command: its MQTT session is clean)"
        )
        add(
            "  by station: " + ", ".join(f"{k} {v}" for k, v in sorted(replies.items()) if " " in k)
        )
        add("  loop errors caught: " + ", ".join(f"{k} {v}" for k, v in report.loop_errors.items()))
        for line in f.get("other_replies", [])[:5]:
            add(f"  OTHER REPLY: {line}")
        add("")
    if report.holds:
        add(
            "AT THE END: the active alerts each station holds, its retained alerts/active, and the wall display"
            + (
                f" (restarted {report.display_restarts} time(s) during the run)"
                if report.wall is not None
                else ""
            )
        )
        for sid, mine in report.holds.items():
            shown = (report.wall or {}).get(sid, []) if report.wall is not None else None
            add(
                f"  {sid:10} holds {len(mine or [])}; retained list "
                f"{'same' if sid not in report.stale_active else 'DIFFERENT'}; wall "
                f"{'-' if shown is None else ('same' if sid not in report.wall_mismatch else 'DIFFERENT')}"
            )
        add(
            f"  ghost alerts (shown, held by no station): {report.ghosts}; held but not on the wall: "
            f"{report.missing_on_wall}"
        )
        add("")
    cuts = Counter((c.point, c.found) for c in report.cuts)
    add(
        f"CALIBRATION POWER CUTS (writer SIGKILLed; the file must be the old or the new one): {len(report.cuts)}"
    )
    for point in CUT_POINTS:
        found = {f: n for (p, f), n in cuts.items() if p == point}
        add(f"  {point:14} " + ", ".join(f"{k} {v}" for k, v in sorted(found.items())))
    for c in report.torn:
        add(f"  BAD: {c.point} while saving {c.last_started}: {c.found} {c.detail}")
    add("")
    for sid, (mine, seen) in report.stale_active.items():
        add(
            f"STALE: {sid}'s retained alerts/active at the broker lists {seen}, the station holds {mine}"
        )
    for sid, (mine, seen) in report.wall_mismatch.items():
        add(f"WALL: {sid}: the wall shows {seen}, the station holds {mine}")
    for sid, crashes in report.crashes.items():
        for c in crashes:
            add(f"CRASH {sid}: {c.strip().splitlines()[-1] if c.strip() else c}")
    for e in report.errors:
        add(f"ERROR: {e}")
    verdict = "PASS" if report.ok else "FAIL"
    add(
        f"{verdict}: {total['lost']} alert event(s) lost of {total['raised']} raised; "
        f"{total['duplicates']} duplicate(s) dropped by (id, state); {report.ghosts} ghost alert(s); "
        f"{len(report.stale_active)} stale active list(s); {len(report.wall_mismatch)} wall mismatch(es); "
        f"{sum(report.loop_errors.values())} loop error(s)"
    )
    return "\n".join(lines)


# =============================================================================== main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stations", type=int, default=None, help="in-process stations (3; --quick 2)")
    ap.add_argument("--minutes", type=float, default=None, help="simulated minutes (60; --quick 4)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--speed",
        type=float,
        default=None,
        help="simulated seconds per wall second (12; --quick 10)",
    )
    ap.add_argument("--quick", action="store_true", help="a short run with short faults")
    ap.add_argument(
        "--no-kill", action="store_true", help="without the SIGKILLed subprocess station"
    )
    ap.add_argument(
        "--no-display", action="store_true", help="without the wall display as a witness"
    )
    ap.add_argument("--workdir", type=Path, default=None, help="keep the run's files here")
    ap.add_argument("--verbose", action="store_true", help="the stations' warnings too")
    # the subprocesses this file starts
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--journal", help=argparse.SUPPRESS)
    ap.add_argument("--gap", type=float, default=12.0, help=argparse.SUPPRESS)
    ap.add_argument("--full-flag", help=argparse.SUPPRESS)
    ap.add_argument("--calibration-writer", help=argparse.SUPPRESS)
    ap.add_argument("--cut", default="random", help=argparse.SUPPRESS)
    ap.add_argument("--naive", action="store_true", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def options_from(args: argparse.Namespace) -> Options:
    quick = args.quick
    return Options(
        stations=args.stations if args.stations is not None else (2 if quick else 3),
        minutes=args.minutes if args.minutes is not None else (4.0 if quick else 60.0),
        seed=args.seed,
        speed=args.speed if args.speed is not None else (10.0 if quick else 12.0),
        quick=quick,
        kill=not args.no_kill,
        workdir=args.workdir,
        display=not args.no_display,
        calibration_cuts=8 if quick else 24,
        chip_gap_s=8.0 if quick else 12.0,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(
            args.child,
            args.journal,
            args.speed or 12.0,
            args.seed,
            args.gap,
            args.quick,
            args.full_flag,
        )
    if args.calibration_writer:
        return calibration_writer_main(args.calibration_writer, args.cut, args.naive)
    # The stations log every fault they survive as a warning; here that is the point, not news.
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING if args.verbose else logging.CRITICAL)
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(console)
    options = options_from(args)
    report = run_chaos(options)
    with tempfile.TemporaryDirectory(prefix="chaos-cuts-") as tmp:
        report.cuts = calibration_power_cuts(
            Path(tmp), random.Random(options.seed), options.calibration_cuts
        )
    print(format_report(report, " ".join([Path(sys.executable).name, *sys.argv])))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
