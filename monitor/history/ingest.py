"""MQTT in, rows out: the history service's subscriber and its writer thread.

Delivery is what makes the store trustworthy, so it is spelt out here:

* A **persistent session**: a fixed client id, ``clean_start`` false and a
  session expiry (MQTT v5; ``clean_session`` false on 3.1.1). While the
  service is down the broker queues every QoS 1 message for it.
* **Manual acknowledgement**: paho would PUBACK as soon as the callback
  returns. Here the callback only parses and queues; the writer thread stores
  a batch in one transaction and only then acknowledges its messages, in the
  order they arrived (MQTT requires that order). A crash before the commit
  means the broker delivers again; the store's writes are idempotent, so a
  second delivery is stored once.
* An acknowledgement belongs to one connection: a message received before a
  reconnect is not acknowledged on the new connection (the broker resends
  it, and that copy is acknowledged), so a recycled packet id is never
  acknowledged for the wrong message.
* The **live trace** (minutes outside a session record, and of a session not
  yet recorded) is folded into one row per sensor and minute in memory and
  written once per minute. ``[history] live_trace`` says what it is read from
  (config/history.toml): by default (``auto``) each station's Home Assistant
  summaries (``ha/sensor/<imu>``: every 5 s, the interval's median and peak
  ratio and median RMS), and its 2 Hz ``tremor`` only while it sends none (a
  station with Home Assistant off, a chain whose bridges forward ``tremor``).
  A summary replaces ten tremor messages, which are dropped on their topic,
  unread. Both feeds are subscribed at QoS 0: the broker keeps nothing of them
  for the service while it is away (a session record carries its own trace),
  so they can never crowd the persistent session's queue of records and alerts.

The writer also publishes what the store decides: the retained athlete
profiles (``<prefix>/_athletes/<id>/profile``) and cards, again after every
connect, since a broker without persistence forgets retained messages.
"""

from __future__ import annotations

import logging
import math
import queue
import ssl
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ..mqtt import messages
from ..mqtt.publisher import read_password_file
from ..mqtt.topics import STATION_ID
from . import incoming
from .config import HistoryConfig
from .incoming import BadMessage
from .store import HistoryStore, Item, Profile, TraceMinute

log = logging.getLogger(__name__)

#: The topics stored, and the parser for each (the live feeds are folded into minutes).
KINDS: dict[str, Callable[[str, bytes], Any]] = {
    "session_record": incoming.session_record,
    "alert": incoming.alert_event,
    "athlete": incoming.presence,
    "hydration": incoming.hydration_sample,
    "tremor": incoming.tremor_sample,
    "ha/sensor": incoming.sensor_summary,
}
#: Kinds read for the live trace only (subscribed at QoS 0), by ``live_trace`` setting.
LIVE_KINDS = {
    "auto": ("ha/sensor", "tremor"),
    "summary": ("ha/sensor",),
    "tremor": ("tremor",),
    "off": (),
}
ATHLETES_LEVEL = "_athletes"
BATCH_MAX = 1000
#: A minute's tremor bucket is written once nothing came for it this long.
BUCKET_IDLE_S = 65.0
#: ``auto``: a station that sent a summary this recently is read from its summaries only.
SUMMARY_FRESH_S = 20.0
#: A refused live message is logged once per station and this many seconds.
REFUSAL_LOG_S = 60.0
RETRY_MAX_S = 10.0
LAG_WINDOW = 20000


@dataclass
class _Entry:
    item: Item | None
    mid: int | None
    qos: int
    generation: int
    sent_ts: float | None = None


@dataclass
class _Bucket:
    minute_ts: float
    ratios: list[float] = field(default_factory=list)
    rms: list[float] = field(default_factory=list)
    ratio_max: float | None = None
    count: int = 0
    touched: float = 0.0


@dataclass(frozen=True)
class IngestStats:
    connected: bool
    received: int
    stored: int
    duplicates: int
    refused: int
    pending: int
    tremor_samples: int  # live readings folded into the trace (tremor messages, summaries)
    tremor_skipped: int  # tremor messages dropped unread (their station sends summaries)
    lag_p50_s: float | None
    lag_p95_s: float | None
    lag_max_s: float | None
    write_errors: int
    batches: int
    write_s: float  # time spent in store.write, in all


class TremorMinutes:
    """Folds live readings into one :class:`TraceMinute` per sensor and minute.

    A reading is a tremor message (one window) or a Home Assistant summary (the
    median of ``windows`` windows and their peak): a minute's ``ratio_p50`` and
    ``rms_mg_p50`` are the medians of what came in it, ``ratio_max`` the peak,
    ``count`` the windows. A summary sent again between intervals only because
    the level changed carries the interval's figures unchanged: it is not
    counted twice.
    """

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}
        self._last_summary: dict[tuple[str, str, str], tuple[Any, ...]] = {}
        self._lock = threading.Lock()
        self.samples = 0
        self.late = 0

    def add(self, gym: str, sample: incoming.TremorSample, now: float) -> list[Item]:
        """Fold a tremor message in; the minutes this closed, as items to store."""
        return self._add(gym, sample, now)

    def add_summary(self, gym: str, sample: incoming.TremorSample, now: float) -> list[Item]:
        """Fold a summary in (a level's repeat and an empty interval are left out)."""
        key = (gym, sample.station, sample.sensor)
        figures = (sample.ratio, sample.ratio_max, sample.rms_mg, sample.windows)
        with self._lock:
            if sample.windows == 0 or self._last_summary.get(key) == figures:
                return []
            self._last_summary[key] = figures
        return self._add(gym, sample, now)

    def _add(self, gym: str, sample: incoming.TremorSample, now: float) -> list[Item]:
        minute = math.floor(sample.ts / 60) * 60.0
        key = (gym, sample.station, sample.sensor)
        done: list[Item] = []
        with self._lock:
            self.samples += 1
            bucket = self._buckets.get(key)
            if bucket is not None and minute < bucket.minute_ts:
                self.late += 1
                return done
            if bucket is None or minute > bucket.minute_ts:
                if bucket is not None:
                    done.append(_minute(key, bucket))
                bucket = self._buckets[key] = _Bucket(minute)
            bucket.count += sample.windows
            bucket.touched = now
            if sample.ratio is not None:
                bucket.ratios.append(sample.ratio)
            if sample.rms_mg is not None:
                bucket.rms.append(sample.rms_mg)
            peak = sample.ratio_max
            if peak is not None and (bucket.ratio_max is None or peak > bucket.ratio_max):
                bucket.ratio_max = peak
        return done

    def idle(self, now: float, idle_s: float = BUCKET_IDLE_S) -> list[Item]:
        """Buckets nothing has come for in ``idle_s`` (the station stopped, or went quiet)."""
        with self._lock:
            keys = [k for k, b in self._buckets.items() if now - b.touched >= idle_s]
            return [_minute(k, self._buckets.pop(k)) for k in keys]

    def flush(self) -> list[Item]:
        with self._lock:
            out = [_minute(k, b) for k, b in self._buckets.items()]
            self._buckets.clear()
        return out


def _minute(key: tuple[str, str, str], b: _Bucket) -> Item:
    gym, station, sensor = key
    return Item(
        gym,
        TraceMinute(
            station,
            sensor,
            b.minute_ts,
            b.count,
            round(statistics.median(b.ratios), 3) if b.ratios else None,
            round(b.ratio_max, 3) if b.ratio_max is not None else None,
            round(statistics.median(b.rms), 2) if b.rms else None,
        ),
    )


class TopicMap:
    """Topic filters to subscribe, and (gym, station, kind) from a topic.

    A gym's own store reads ``<prefix>/<station>/<kind>``; a chain's central
    store reads ``<chain_prefix>/<gym>/<prefix>/<station>/<kind>``, as the
    gyms' bridges republish them, and takes the gym from the topic.
    """

    def __init__(self, prefix: str, gym: str, chain_prefix: str = "", live_trace: str = "auto"):
        self.prefix = prefix.strip("/")
        self.gym = gym
        self.chain = chain_prefix.strip("/")
        self._chain_levels = len(self.chain.split("/")) if self.chain else 0
        self._prefix_levels = self.prefix.split("/")
        self.live = LIVE_KINDS[live_trace]
        self.kinds = {k for k in KINDS if k not in LIVE_KINDS["auto"]} | set(self.live)

    def filters(self) -> list[tuple[str, int]]:
        """(topic filter, QoS): the stored kinds at QoS 1, the live feeds at QoS 0."""
        head = f"{self.chain}/+/{self.prefix}" if self.chain else self.prefix
        out = [(f"{head}/+/{kind}", 1) for kind in KINDS if kind not in LIVE_KINDS["auto"]]
        if "tremor" in self.live:
            out.append((f"{head}/+/tremor", 0))
        if "ha/sensor" in self.live:
            out.append((f"{head}/+/ha/sensor/+", 0))
        return out

    def parse(self, topic: str) -> tuple[str, str, str] | None:
        levels = topic.split("/")
        gym = self.gym
        if self.chain:
            if levels[: self._chain_levels] != self.chain.split("/"):
                return None
            gym = levels[self._chain_levels] if len(levels) > self._chain_levels else ""
            levels = levels[self._chain_levels + 1 :]
            if not incoming.ATHLETE_ID.fullmatch(gym.lower()):
                return None
        n = len(self._prefix_levels)
        if levels[:n] != self._prefix_levels:
            return None
        if len(levels) == n + 2:
            kind = levels[n + 1]
        elif len(levels) == n + 4 and levels[n + 1 : n + 3] == ["ha", "sensor"]:
            kind = "ha/sensor"  # the IMU's level is a slug: the payload names the sensor
        else:
            return None
        station = levels[n]
        if kind not in self.kinds or station == ATHLETES_LEVEL or not STATION_ID.fullmatch(station):
            return None  # a station id longer than a column holds would fail every write
        return gym, station, kind

    def profile_topic(self, athlete: str) -> str:
        return f"{self.prefix}/{ATHLETES_LEVEL}/{athlete}/profile"

    def card_topic(self, athlete: str) -> str:
        return f"{self.prefix}/{ATHLETES_LEVEL}/{athlete}/card"


class Ingest:
    """Subscribe, store, acknowledge; publish profiles and cards. See the module docstring."""

    def __init__(
        self,
        config: HistoryConfig,
        store: HistoryStore,
        *,
        reconnect_min_s: float = 1.0,
        reconnect_max_s: float = 10.0,
    ):
        self.config = config
        self.store = store
        m = config.mqtt
        self.topics = TopicMap(m.prefix, config.gym, m.chain_prefix, config.live_trace)
        self.publish_profiles = config.publish_profiles and not m.chain_prefix
        v5 = m.protocol == "v5"
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=m.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        if m.username:
            password = (
                read_password_file(m.password_file, "mqtt.password_file")
                if m.password_file
                else None
            )
            self.client.username_pw_set(m.username, password)
        if m.tls_ca:
            self.client.tls_set(ca_certs=m.tls_ca, cert_reqs=ssl.CERT_REQUIRED)
        self.client.reconnect_delay_set(
            max(1, round(reconnect_min_s)), max(1, round(reconnect_max_s))
        )
        self.client.max_inflight_messages_set(100)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.tremor = TremorMinutes()
        self._queue: queue.Queue[_Entry] = queue.Queue()
        self._generation = 0
        self._connected = threading.Event()
        self._republish = threading.Event()
        self._closing = False
        self._stop = threading.Event()
        self._lags: deque[float] = deque(maxlen=LAG_WINDOW)
        self._lock = threading.Lock()
        self._received = self._stored = self._duplicates = self._refused = 0
        self._write_errors = self._batches = 0
        self._tremor_skipped = 0
        # auto: (gym, station) -> monotonic time of its latest summary.
        self._summaries: dict[tuple[str, str], float] = {}
        self._refusals_logged: dict[tuple[str, str], float] = {}
        self._write_s = 0.0
        self._writer = threading.Thread(target=self._write_loop, name="history-writer", daemon=True)
        self._started = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Ingest:
        if self._started:
            return self
        self._started = True
        m = self.config.mqtt
        kwargs: dict[str, Any] = {}
        if m.protocol == "v5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = m.session_expiry_s
            # How many unacknowledged QoS 1 messages the broker may send us: enough
            # to fill a batch while the previous one commits.
            props.ReceiveMaximum = 2000
            kwargs = {"clean_start": False, "properties": props}
        self._writer.start()
        self.client.connect_async(m.host, m.port, keepalive=m.keepalive, **kwargs)
        self.client.loop_start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Store what has arrived, acknowledge it, disconnect (the session stays on the broker)."""
        if not self._started:
            return
        self._closing = True  # later messages stay unacknowledged: redelivered next time
        for item in self.tremor.flush():
            self._queue.put(_Entry(item, None, 0, self._generation))
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        self._stop.set()
        self._writer.join(timeout=5)
        self.client.disconnect()
        self.client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def idle(self) -> bool:
        """Nothing queued or being written."""
        return self._queue.unfinished_tasks == 0

    def stats(self) -> IngestStats:
        with self._lock:
            lags = sorted(self._lags)

        def q(p: float) -> float | None:
            return round(lags[min(len(lags) - 1, int(p * len(lags)))], 4) if lags else None

        return IngestStats(
            self.connected,
            self._received,
            self._stored,
            self._duplicates,
            self._refused,
            self._queue.unfinished_tasks,
            self.tremor.samples,
            self._tremor_skipped,
            q(0.5),
            q(0.95),
            round(lags[-1], 4) if lags else None,
            self._write_errors,
            self._batches,
            round(self._write_s, 3),
        )

    def reset_lags(self) -> None:
        with self._lock:
            self._lags.clear()

    # ------------------------------------------------------------------ publishing

    def _publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1, retain=True)

    def publish_profile(self, profile: Profile) -> None:
        if self.publish_profiles and profile.gym == self.config.gym:
            self._publish(self.topics.profile_topic(profile.athlete), profile.message().to_json())

    def publish_card(self, gym: str, athlete: str, display_name: str) -> None:
        if self.publish_profiles and gym == self.config.gym:
            self._publish(
                self.topics.card_topic(athlete),
                messages.Card(athlete=athlete, display_name=display_name).to_json(),
            )

    def clear_athlete(self, gym: str, athlete: str) -> None:
        """Empty retained profile and card: the broker forgets them too."""
        if self.publish_profiles and gym == self.config.gym:
            self._publish(self.topics.profile_topic(athlete), b"")
            self._publish(self.topics.card_topic(athlete), b"")

    def _republish_all(self) -> None:
        if not self.publish_profiles:
            return
        for profile in self.store.profiles(self.config.gym):
            self.publish_profile(profile)
        for (gym, athlete), name in self.store.cards(self.config.gym).items():
            self.publish_card(gym, athlete, name)

    # ------------------------------------------------------------------ paho callbacks

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error(
                "broker %s:%s refused the history service: %s",
                self.config.mqtt.host,
                self.config.mqtt.port,
                reason_code,
            )
            return
        self._generation += 1
        log.info(
            "connected to %s:%s (session %s)",
            self.config.mqtt.host,
            self.config.mqtt.port,
            "resumed" if flags.session_present else "new",
        )
        client.subscribe(self.topics.filters())
        self._connected.set()
        self._republish.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self._connected.is_set() and not self._closing:
            log.warning(
                "lost the broker (%s); the broker keeps our messages meanwhile", reason_code
            )
        self._connected.clear()

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        try:
            if self._closing:
                return  # not acknowledged: the broker sends it again at the next start
            self._received += 1
            entry = _Entry(
                None, message.mid if message.qos else None, message.qos, self._generation
            )
            where = self.topics.parse(message.topic)
            if where is None or (message.retain and not message.payload):
                if entry.mid is not None:
                    self._queue.put(entry)
                return
            gym, station, kind = where
            if kind in LIVE_KINDS["auto"]:
                self._on_live(entry, gym, station, kind, message)
                return
            try:
                parsed = KINDS[kind](station, bytes(message.payload))
            except BadMessage as err:
                self._refused += 1
                log.warning("refused %s: %s", message.topic, err)
                self._queue.put(entry)  # still acknowledged, in order: it would fail again
                return
            entry.item = Item(gym, parsed)
            entry.sent_ts = parsed.record.get("ts") if kind == "session_record" else parsed.ts
            self._queue.put(entry)
        except Exception:  # a bug here must not stop paho's network loop
            log.exception("error handling %s", message.topic)

    def _on_live(
        self, entry: _Entry, gym: str, station: str, kind: str, message: mqtt.MQTTMessage
    ) -> None:
        """A tremor message or a summary: into its minute (nothing to store yet)."""
        now = time.monotonic()
        payload: bytes | None = bytes(message.payload)
        if kind == "tremor":
            fresh = self._summaries.get((gym, station))
            if fresh is not None and now - fresh < SUMMARY_FRESH_S:
                self._tremor_skipped += 1  # its summaries carry this minute
                payload = None
        elif message.retain:
            payload = None  # the broker's copy from before we subscribed: already counted
        if payload is not None:
            try:
                sample = KINDS[kind](station, payload)
            except BadMessage as err:
                self._refused += 1
                last = self._refusals_logged.get((station, kind))
                if last is None or now - last >= REFUSAL_LOG_S:  # a 2 Hz feed: not every one
                    self._refusals_logged[(station, kind)] = now
                    log.warning("refused %s (again within a minute: not logged): %s", kind, err)
            else:
                wall = time.time()
                if kind == "tremor":
                    done = self.tremor.add(gym, sample, wall)
                else:
                    self._summaries[(gym, station)] = now
                    done = self.tremor.add_summary(gym, sample, wall)
                for item in done:
                    self._queue.put(_Entry(item, None, 0, entry.generation))
        if entry.mid is not None:  # delivered at QoS 1 (amqtt may): acknowledged in turn
            self._queue.put(entry)

    # ------------------------------------------------------------------ the writer

    def _take(self) -> list[_Entry]:
        try:
            batch = [self._queue.get(timeout=0.2)]
        except queue.Empty:
            return []
        while len(batch) < BATCH_MAX:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _write_loop(self) -> None:
        retry = 0.2
        while not self._stop.is_set():
            if self._republish.is_set() and self.connected:
                self._republish.clear()
                try:
                    self._republish_all()
                except Exception:
                    log.exception("could not republish profiles")
            for item in self.tremor.idle(time.time()):
                self._queue.put(_Entry(item, None, 0, self._generation))
            batch = self._take()
            if not batch:
                continue
            items = [e.item for e in batch if e.item is not None]
            while True:
                try:
                    began = time.perf_counter()
                    result = self.store.write(items) if items else None
                    self._write_s += time.perf_counter() - began
                    self._batches += 1
                    retry = 0.2
                    break
                except Exception as err:
                    self._write_errors += 1
                    log.error(
                        "could not store %d message(s), retrying in %.1f s: %s",
                        len(items),
                        retry,
                        err,
                    )
                    if self._stop.wait(retry):
                        # Unacknowledged: the broker still holds them for the next start.
                        for _ in batch:
                            self._queue.task_done()
                        return
                    retry = min(RETRY_MAX_S, retry * 2)
            now = time.time()
            with self._lock:
                if result is not None:
                    self._stored += result.stored
                    self._duplicates += result.duplicates
                self._lags.extend(now - e.sent_ts for e in batch if e.sent_ts is not None)
            for e in batch:
                if e.mid is not None and e.generation == self._generation:
                    self.client.ack(e.mid, e.qos)
                self._queue.task_done()
            if result is not None:
                for profile in result.profiles:
                    self.publish_profile(profile)
