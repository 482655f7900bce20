"""The wall display's picture of the gym: every station and what it last said.

A :class:`Board` is fed raw MQTT messages (topic and payload bytes) and keeps,
per station, the latest of everything a tile needs: status, tremor per sensor,
session, hydration, active alerts, recent alert events and a short sparkline
history. It is pure Python with an injected clock, so staleness can be tested
without waiting::

    from monitor.clock import SimClock
    clock = SimClock()
    board = Board("gym", stale_after=30, clock=clock)
    board.handle("gym/bench-1/status", b"online")      # -> "bench-1" (changed)
    clock.advance(31)
    board.refresh()                                     # -> ["bench-1"] (now stale)
    board.view("bench-1")["stale"]                      # -> True

Anything that arrives from outside is distrusted: a payload that is not JSON,
has a field of the wrong type, an unknown level, a non-finite number, or is
simply too big is ignored with a log line (rate limited, so a misbehaving
client cannot flood the journal) and never raises. Memory is bounded by caps
on stations, sensors, alerts, events and history points.

The board is not thread-safe on purpose: the service owns one lock around it,
which keeps this module free of threading concerns.

Change tracking: every change bumps :attr:`Board.seq` and stamps the station
with it, so a reader that remembers the last ``seq`` it saw can ask
:meth:`Board.changes_since` for just the stations that moved.
"""

from __future__ import annotations

import json
import logging
import math
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..clock import Clock, RealClock
from ..errors import MonitorError

log = logging.getLogger(__name__)

TREMOR_LEVELS = ("none", "normal", "elevated", "high")
ALERT_LEVELS = ("info", "caution", "warning", "urgent")
ALERT_STATES = ("raised", "cleared", "acknowledged")
HYDRATION_MODES = ("bottle", "body")

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_STATION_ID = 64
MAX_SENSORS = 8
MAX_ACTIVE_ALERTS = 32
MAX_SEEN_EVENTS = 256

_LEVEL_RANK = {name: rank for rank, name in enumerate(TREMOR_LEVELS)}
_ALERT_RANK = {name: rank for rank, name in enumerate(ALERT_LEVELS)}


class BadPayload(MonitorError, ValueError):
    """A message the board refuses: what was wrong, for the log line."""


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class TremorReading:
    """The latest tremor figures of one sensor (one ``tremor`` message)."""

    sensor: str
    placement: str | None
    exercised: bool | None
    level: str
    rms_mg: float | None
    peak_hz: float | None
    ratio: float | None
    measurable: bool
    moving: bool
    ts: float | None
    received: float  # board clock (monotonic), to judge which sensors are current

    def view(self) -> dict[str, Any]:
        return {
            "sensor": self.sensor,
            "placement": self.placement,
            "exercised": self.exercised,
            "level": self.level,
            "rms_mg": self.rms_mg,
            "peak_hz": self.peak_hz,
            "ratio": self.ratio,
            "measurable": self.measurable,
            "moving": self.moving,
            "ts": self.ts,
        }


@dataclass(frozen=True)
class SessionInfo:
    """Activity state and session figures (the retained ``session`` message)."""

    name: str | None
    state: str | None
    active: bool | None
    set_count: int | None
    rep_count: int | None
    started_ts: float | None
    ended_ts: float | None
    last_set_end_ts: float | None
    baseline_mg: float | None
    ratio: float | None
    recovery_s: float | None
    fatigue_trend: float | None
    ts: float | None

    def view(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class HydrationInfo:
    """Scale-derived figures (the retained ``hydration`` message)."""

    mode: str | None
    mass_g: float | None
    intake_ml: float | None
    intake_ml_per_h: float | None
    body_mass_loss_pct: float | None
    sweat_rate_l_per_h: float | None
    ts: float | None

    def view(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class AlertInfo:
    """One alert, as an ``alert`` event or an entry of ``alerts/active``."""

    id: str
    code: str
    level: str
    state: str
    red_flag: bool
    sensor: str | None
    message: str
    advice: str
    raised_ts: float | None
    ts: float | None

    @property
    def rank(self) -> int:
        return _ALERT_RANK[self.level]

    def view(self, *, ack_sent: bool = False) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["ack_sent"] = ack_sent
        return out


# --------------------------------------------------------------------------- parsing


class _Fields:
    """Typed reads from one JSON object; a wrong type raises :class:`BadPayload`.

    Missing keys and JSON ``null`` both read as ``None`` (the contract's
    ``|null``), so only a value that is present *and* wrong is refused.
    """

    def __init__(self, obj: Any, where: str):
        if not isinstance(obj, dict):
            raise BadPayload(f"{where}: expected a JSON object")
        self.obj = obj
        self.where = where

    def _bad(self, key: str, want: str) -> BadPayload:
        return BadPayload(f"{self.where}: {key!r} should be {want}, got {self.obj[key]!r:.40}")

    def num(self, key: str) -> float | None:
        value = self.obj.get(key)
        if value is None:
            return None
        # bool is an int in Python; true/false as a number is a sender bug.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._bad(key, "a number or null")
        try:
            value = float(value)
        except OverflowError:  # an integer too big for a float: 1 followed by 400 zeros
            raise self._bad(key, "a finite number") from None
        if not math.isfinite(value):
            raise self._bad(key, "a finite number")
        return value

    def count(self, key: str) -> int | None:
        value = self.num(key)
        if value is None:
            return None
        if value < 0 or value != int(value):
            raise self._bad(key, "a whole number >= 0")
        return int(value)

    def text(self, key: str, limit: int, *, required: bool = False) -> str | None:
        value = self.obj.get(key)
        if value is None:
            if required:
                raise BadPayload(f"{self.where}: {key!r} is missing")
            return None
        if not isinstance(value, str):
            raise self._bad(key, "a string")
        # Truncate rather than refuse: a long advice text is still worth showing.
        return value if len(value) <= limit else value[: limit - 1] + "\u2026"

    def flag(self, key: str) -> bool | None:
        value = self.obj.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self._bad(key, "true or false")
        return value

    def choice(self, key: str, options: Iterable[str], *, required: bool = True) -> str | None:
        value = self.obj.get(key)
        if value is None and not required:
            return None
        if value not in options:
            raise BadPayload(f"{self.where}: {key!r} should be one of {'/'.join(options)}, "
                             f"got {value!r:.40}")
        return value

    def version(self) -> None:
        v = self.obj.get("v")
        # Newer schema versions only add fields ("extend rather than rename"), so
        # anything >= 1 is read with the fields this board knows.
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise BadPayload(f"{self.where}: 'v' should be a schema version >= 1, got {v!r:.20}")


def _reject_constant(name: str) -> float:
    raise BadPayload(f"non-finite number {name} in JSON")


def decode_json(payload: bytes, where: str) -> _Fields:
    """Parse a payload into typed fields, refusing anything oversized or odd."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise BadPayload(f"{where}: {len(payload)} bytes is over the {MAX_PAYLOAD_BYTES} limit")
    try:
        obj = json.loads(payload, parse_constant=_reject_constant)
    except BadPayload:
        raise
    except (ValueError, RecursionError) as err:  # includes JSON and UTF-8 decode errors
        raise BadPayload(f"{where}: not JSON ({type(err).__name__})") from None
    fields = _Fields(obj, where)
    fields.version()
    return fields


def parse_tremor(f: _Fields, received: float) -> TremorReading:
    level = f.choice("level", TREMOR_LEVELS)
    measurable = f.flag("measurable")
    return TremorReading(
        sensor=f.text("sensor", 32) or "sensor",
        placement=f.text("placement", 32),
        exercised=f.flag("exercised"),
        level=level,
        rms_mg=f.num("rms_mg"),
        peak_hz=f.num("peak_hz"),
        ratio=f.num("ratio"),
        measurable=(level != "none") if measurable is None else measurable,
        moving=bool(f.flag("moving")),
        ts=f.num("ts"),
        received=received,
    )


def parse_session(f: _Fields) -> SessionInfo:
    return SessionInfo(
        name=f.text("name", 48),
        state=f.text("state", 24),
        active=f.flag("active"),
        set_count=f.count("set_count"),
        rep_count=f.count("rep_count"),
        started_ts=f.num("started_ts"),
        ended_ts=f.num("ended_ts"),
        last_set_end_ts=f.num("last_set_end_ts"),
        baseline_mg=f.num("baseline_mg"),
        ratio=f.num("ratio"),
        recovery_s=f.num("recovery_s"),
        fatigue_trend=f.num("fatigue_trend"),
        ts=f.num("ts"),
    )


def parse_hydration(f: _Fields) -> HydrationInfo:
    return HydrationInfo(
        mode=f.choice("mode", HYDRATION_MODES, required=False),
        mass_g=f.num("mass_g"),
        intake_ml=f.num("intake_ml"),
        intake_ml_per_h=f.num("intake_ml_per_h"),
        body_mass_loss_pct=f.num("body_mass_loss_pct"),
        sweat_rate_l_per_h=f.num("sweat_rate_l_per_h"),
        ts=f.num("ts"),
    )


def parse_alert(f: _Fields) -> AlertInfo:
    return AlertInfo(
        id=f.text("id", 128, required=True) or "",
        code=f.text("code", 64) or "",
        level=f.choice("level", ALERT_LEVELS),
        state=f.choice("state", ALERT_STATES, required=False) or "raised",
        red_flag=bool(f.flag("red_flag")),
        sensor=f.text("sensor", 32),
        message=f.text("message", 300) or "",
        advice=f.text("advice", 600) or "",
        raised_ts=f.num("raised_ts"),
        ts=f.num("ts"),
    )


# --------------------------------------------------------------------------- stations


@dataclass
class Station:
    """Everything the board knows about one station. Internal and mutable."""

    id: str
    history_points: int
    max_events: int
    status: str | None = None  # "online" / "offline" / None (never said)
    last_seen: float | None = None  # board clock (monotonic)
    last_seen_wall: float | None = None
    tremor: dict[str, TremorReading] = field(default_factory=dict)
    session: SessionInfo | None = None
    hydration: HydrationInfo | None = None
    active: dict[str, AlertInfo] = field(default_factory=dict)
    acks_sent: set[str] = field(default_factory=set)
    stale: bool = False
    seq: int = 0

    def __post_init__(self) -> None:
        # [bucket start (wall s), max ratio | None, max rms_mg | None]
        self.history: deque[list[Any]] = deque(maxlen=self.history_points)
        self.events: deque[AlertInfo] = deque(maxlen=self.max_events)
        self.seen_events: OrderedDict[tuple[str, str], None] = OrderedDict()


def _worse(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


class Board:
    """The state of every station, fed by :meth:`handle`.

    ``prefix`` is the topic prefix (``gym``); ``stale_after`` the seconds of
    silence after which a station that has not said ``offline`` is shown as
    stale; ``clock`` anything with ``now()`` (monotonic) and ``wall()``
    (Unix time), :class:`~monitor.clock.RealClock` by default. The sparkline
    history keeps ``history_s`` seconds in buckets of ``bucket_s`` seconds,
    each holding the highest ratio and RMS seen in it (spikes matter more than
    averages on a wall display).
    """

    def __init__(
        self,
        prefix: str = "gym",
        *,
        stale_after: float = 30.0,
        clock: Clock | None = None,
        history_s: float = 300.0,
        bucket_s: float = 2.0,
        max_stations: int = 200,
        max_events: int = 20,
        log_budget_per_min: int = 20,
    ):
        if stale_after <= 0:
            raise ValueError("stale_after must be positive")
        if bucket_s <= 0 or history_s < bucket_s:
            raise ValueError("need 0 < bucket_s <= history_s")
        self.prefix = prefix.strip("/")
        self.stale_after = float(stale_after)
        self.clock: Clock = clock or RealClock()
        self.history_s = float(history_s)
        self.bucket_s = float(bucket_s)
        self.max_stations = max_stations
        self.max_events = max_events
        self.seq = 0
        self.link_up = False
        self.ignored = 0
        self._stations: dict[str, Station] = {}
        self._log_budget = log_budget_per_min
        self._log_window = (float("-inf"), 0)  # (window start, lines logged in it)

    # ------------------------------------------------------------------ input

    def handle(self, topic: str, payload: bytes) -> str | None:
        """Take one MQTT message; return the station id if anything changed.

        Never raises on bad input: malformed messages are counted in
        :attr:`ignored`, logged, and otherwise have no effect.
        """
        try:
            return self._handle(topic, bytes(payload))
        except BadPayload as err:
            self._ignore(f"ignored {topic!r:.120}: {err}")
        return None

    def _handle(self, topic: str, payload: bytes) -> str | None:
        parsed = self._split_topic(topic)
        if parsed is None:
            return None
        station_id, kind = parsed
        if kind.startswith("cmd/") or kind not in _HANDLERS:
            return None  # commands (ours included) and topics a newer station may add
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise BadPayload(f"{len(payload)} bytes is over the {MAX_PAYLOAD_BYTES} limit")
        station = self._stations.get(station_id)
        is_new = station is None
        if station is None:
            if not payload:
                return None  # clearing a retained message of a station we never saw
            if len(self._stations) >= self.max_stations:
                raise BadPayload(f"more than {self.max_stations} stations; new one refused")
            station = Station(station_id, self._history_points(), self.max_events)
        changed = _HANDLERS[kind](self, station, payload)
        # Only a message that parsed counts as a sign of life.
        self._stations.setdefault(station_id, station)
        station.last_seen = self.clock.now()
        station.last_seen_wall = self.clock.wall()
        if station.stale:
            station.stale = False
            changed = True
        if changed or is_new:
            self._touch(station)
            return station_id
        return None

    def _split_topic(self, topic: str) -> tuple[str, str] | None:
        head = self.prefix + "/"
        if not topic.startswith(head):
            return None
        station_id, _, kind = topic[len(head):].partition("/")
        if not station_id or not kind:
            return None
        if len(station_id) > MAX_STATION_ID:
            raise BadPayload(f"station id longer than {MAX_STATION_ID} characters")
        return station_id, kind

    def _on_status(self, st: Station, payload: bytes) -> bool:
        text = payload.decode("utf-8", "replace").strip().strip('"').lower()
        if text not in ("online", "offline", ""):
            raise BadPayload(f"status should be online/offline, got {text!r:.20}")
        status = text or None  # an empty retained message clears it
        if status == st.status:
            return False
        st.status = status
        return True

    def _on_tremor(self, st: Station, payload: bytes) -> bool:
        if not payload:
            return False
        reading = parse_tremor(decode_json(payload, "tremor"), self.clock.now())
        if reading.sensor not in st.tremor and len(st.tremor) >= MAX_SENSORS:
            raise BadPayload(f"more than {MAX_SENSORS} sensors on one station")
        st.tremor[reading.sensor] = reading
        self._record_history(st, reading)
        return True

    def _on_session(self, st: Station, payload: bytes) -> bool:
        st.session = parse_session(decode_json(payload, "session")) if payload else None
        return True

    def _on_hydration(self, st: Station, payload: bytes) -> bool:
        st.hydration = parse_hydration(decode_json(payload, "hydration")) if payload else None
        return True

    def _on_alert(self, st: Station, payload: bytes) -> bool:
        if not payload:
            return False
        alert = parse_alert(decode_json(payload, "alert"))
        key = (alert.id, alert.state)
        if key in st.seen_events:
            return False  # the contract: drop duplicates by (id, state)
        st.seen_events[key] = None
        while len(st.seen_events) > MAX_SEEN_EVENTS:
            st.seen_events.popitem(last=False)
        st.events.append(alert)
        if alert.state == "raised":
            if alert.id not in st.active and len(st.active) >= MAX_ACTIVE_ALERTS:
                # Keep the most serious ones when a station floods us.
                weakest = min(st.active.values(), key=lambda a: a.rank)
                if weakest.rank > alert.rank:
                    return True
                del st.active[weakest.id]
            st.active[alert.id] = alert
        else:
            st.active.pop(alert.id, None)
            st.acks_sent.discard(alert.id)
        return True

    def _on_active(self, st: Station, payload: bytes) -> bool:
        if not payload:
            alerts: list[AlertInfo] = []
        else:
            f = decode_json(payload, "alerts/active")
            entries = f.obj.get("alerts")
            if not isinstance(entries, list):
                raise BadPayload("alerts/active: 'alerts' should be a list")
            alerts = []
            for i, entry in enumerate(entries[: MAX_ACTIVE_ALERTS * 4]):
                try:
                    alerts.append(parse_alert(_Fields(entry, f"alerts/active[{i}]")))
                except BadPayload as err:  # one bad entry should not hide the others
                    self._ignore(f"ignored an entry from {st.id!r}: {err}")
            alerts.sort(key=lambda a: -a.rank)
            alerts = alerts[:MAX_ACTIVE_ALERTS]
        st.active = {a.id: a for a in alerts}
        st.acks_sent &= set(st.active)
        return True

    # ------------------------------------------------------------------ history

    def _history_points(self) -> int:
        return math.ceil(self.history_s / self.bucket_s)

    def _record_history(self, st: Station, reading: TremorReading) -> None:
        bucket = math.floor(self.clock.wall() / self.bucket_s) * self.bucket_s
        ratio = reading.ratio if reading.measurable else None
        rms = reading.rms_mg if reading.measurable else None
        if st.history and st.history[-1][0] == bucket:
            last = st.history[-1]
            last[1] = _worse(last[1], ratio)
            last[2] = _worse(last[2], rms)
        else:
            st.history.append([bucket, ratio, rms])

    # ------------------------------------------------------------------ time and acks

    def refresh(self) -> list[str]:
        """Re-judge staleness now; return the stations whose stale flag flipped."""
        now = self.clock.now()
        flipped = []
        for st in self._stations.values():
            stale = (
                st.status != "offline"
                and st.last_seen is not None
                and now - st.last_seen > self.stale_after
            )
            if stale != st.stale:
                st.stale = stale
                self._touch(st)
                flipped.append(st.id)
        return flipped

    def set_link(self, up: bool) -> bool:
        """Record whether the MQTT link is up (shown on the page); True if it changed."""
        if up == self.link_up:
            return False
        self.link_up = up
        self.seq += 1
        return True

    def is_active(self, station_id: str, alert_id: str) -> bool:
        st = self._stations.get(station_id)
        return st is not None and alert_id in st.active

    def note_ack(self, station_id: str, alert_id: str) -> bool:
        """Remember that staff acknowledged an alert from a display.

        The alert stays active until the station confirms (it publishes the
        ``acknowledged`` event); meanwhile every screen shows "ack sent".
        """
        st = self._stations.get(station_id)
        if st is None or alert_id not in st.active:
            return False
        if alert_id not in st.acks_sent:
            st.acks_sent.add(alert_id)
            self._touch(st)
        return True

    def _touch(self, st: Station) -> None:
        self.seq += 1
        st.seq = self.seq

    def _ignore(self, line: str) -> None:
        self.ignored += 1
        start, count = self._log_window
        now = self.clock.now()
        if now - start >= 60.0:
            start, count = now, 0
        if count < self._log_budget:
            log.warning("%s", line)
        elif count == self._log_budget:
            log.warning("more malformed messages; silent for the rest of this minute")
        self._log_window = (start, count + 1)

    # ------------------------------------------------------------------ output

    def station_ids(self) -> list[str]:
        return sorted(self._stations)

    def view(self, station_id: str, *, full: bool = True) -> dict[str, Any]:
        """One station as plain JSON-ready data, with a summary a tile can paint.

        ``full`` includes the whole sparkline history and the recent alert
        events; otherwise only the history's last few points (``spark_tail``),
        which a client merges by bucket time.
        """
        st = self._stations[station_id]
        alerts = sorted(st.active.values(), key=lambda a: (-a.rank, -(a.raised_ts or 0.0)))
        out: dict[str, Any] = {
            "id": st.id,
            "name": (st.session.name if st.session and st.session.name else st.id),
            "status": st.status or "unknown",
            "stale": st.stale,
            "last_seen": st.last_seen_wall,
            "tremor": self._tremor_summary(st),
            "sensors": [r.view() for r in sorted(st.tremor.values(), key=lambda r: r.sensor)],
            "session": st.session.view() if st.session else None,
            "hydration": st.hydration.view() if st.hydration else None,
            "alerts": [a.view(ack_sent=a.id in st.acks_sent) for a in alerts],
        }
        if full:
            out["spark"] = [list(p) for p in st.history]
            out["events"] = [a.view() for a in st.events]
        else:
            # Updates go out ten times a second: only what a tile paints, and the
            # sparkline's newest points for the page to merge.
            out["spark_tail"] = [list(p) for p in list(st.history)[-3:]]
        return out

    def _tremor_summary(self, st: Station) -> dict[str, Any] | None:
        """The reading a tile shows big: the worst sensor among the current ones.

        "Current" means heard within ``stale_after`` of the station's newest
        reading, so a sensor that fell silent stops dominating the tile.
        """
        if not st.tremor:
            return None
        newest = max(r.received for r in st.tremor.values())
        current = [r for r in st.tremor.values() if newest - r.received <= self.stale_after]
        worst = max(
            current,
            key=lambda r: (_LEVEL_RANK[r.level], r.ratio or 0.0, r.rms_mg or 0.0),
        )
        return worst.view()

    def snapshot(self) -> dict[str, Any]:
        """Everything, for a client that just connected."""
        return {
            "seq": self.seq,
            "now": self.clock.wall(),
            "link_up": self.link_up,
            "stale_after": self.stale_after,
            "history_s": self.history_s,
            "bucket_s": self.bucket_s,
            "ignored": self.ignored,
            "stations": [self.view(sid) for sid in self.station_ids()],
        }

    def changes_since(self, seq: int) -> dict[str, Any]:
        """The stations changed after ``seq``, for a client that saw up to it."""
        changed = [sid for sid, st in self._stations.items() if st.seq > seq]
        return {
            "seq": self.seq,
            "now": self.clock.wall(),
            "link_up": self.link_up,
            "stations": [self.view(sid, full=False) for sid in sorted(changed)],
        }


_HANDLERS = {
    "status": Board._on_status,
    "tremor": Board._on_tremor,
    "session": Board._on_session,
    "hydration": Board._on_hydration,
    "alert": Board._on_alert,
    "alerts/active": Board._on_active,
}
