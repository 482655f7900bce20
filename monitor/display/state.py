"""The wall display's picture of the gym: every station and what it last said.

A :class:`Board` is fed raw MQTT messages (topic and payload bytes) and keeps,
per station, the latest of everything a tile needs: status, tremor per sensor,
session, hydration, active alerts, recent alert events, staff acknowledgements
on their way and a short sparkline history. It is pure Python with an injected
clock, so time can be tested without waiting::

    from monitor.clock import SimClock
    clock = SimClock()
    board = Board("gym", stale_after=30, clock=clock)
    board.handle("gym/bench-1/status", b"online")      # -> "bench-1" (changed)
    clock.advance(31)
    board.refresh()                                     # -> ["bench-1"] (now stale)
    board.view("bench-1")["stale"]                      # -> True

Payloads are read through the message format (:mod:`monitor.mqtt.messages`,
by way of :mod:`monitor.display.payloads`, which keeps what a tile shows); a malformed one is
ignored with a log line (rate limited, so a misbehaving client cannot flood
the journal) and never raises. Memory is bounded by caps on stations,
sensors, alerts, events and history points.

Which stations the board keeps, and which alerts it believes:

* a station listed in the display's config always has a place; one the broker
  vouches for (a retained message, or its ``status`` saying ``online``) can
  take the place of one nobody vouches for; an unknown id takes a free place,
  or that of another unknown one holding less serious alerts, so a flood of
  made-up ids cannot push a real station (or its urgent alert) off the wall,
  however often the display restarts;
* a station that is offline (or never said online) and silent for
  ``evict_after`` seconds leaves the board, unless the config lists it or it
  still holds an urgent or red-flag alert: that one stays, marked as not
  confirmed, never silently dropped;
* an alert is *confirmed* while its station is online and talking; after the
  station was seen offline, its alerts stay unconfirmed until it republishes
  ``alerts/active`` (which replaces the set: what it no longer holds goes);
* an acknowledgement sent from a display waits for the station's
  ``acknowledged`` event (or its ``cmd/ack/result``) and fails visibly after
  ``ack_timeout`` seconds without one.

Who trains where: each station's retained ``athlete`` says who is checked in
(a pseudonymous id, or a guest); the athletes' cards
(``<prefix>/_athletes/<id>/card``, retained, written by the history service
only) give the names the tiles show. The view of a station carries the name
(or none: a guest, or an athlete without a card), never the id; the list of
every card is for staff (:meth:`Board.athletes`), not for the public wall.

The board is not thread-safe on purpose: the service calls it from one event
loop, which keeps this module free of threading concerns.

Change tracking: every change bumps :attr:`Board.seq` and stamps the station
with it, so a reader that remembers the last ``seq`` it saw can ask
:meth:`Board.changes_since` for just the stations that moved (and those that
left).
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..clock import Clock, RealClock
from ..mqtt.messages import DEFAULT_GRADES, AlertLevel, AlertState, CheckIn
from ..mqtt.topics import ATHLETES
from .payloads import (
    ATHLETE_ID,
    MAX_PAYLOAD_BYTES,
    AlertInfo,
    BadPayload,
    SessionInfo,
    Shown,
    TremorReading,
    clip,
    parse_ack_result,
    parse_active,
    parse_alert,
    parse_card,
    parse_checkin,
    parse_hydration,
    parse_session,
    parse_status,
    parse_tremor,
)

log = logging.getLogger(__name__)

MAX_STATION_ID = 64
MAX_SENSORS = 8
MAX_ACTIVE_ALERTS = 32
MAX_SEEN_EVENTS = 256
MAX_REMOVALS_KEPT = 1024
MAX_RECENT_ACKS = 20
MAX_CARDS = 5000
#: The topic level under the prefix where athletes' profiles and cards live.
ATHLETES_LEVEL = ATHLETES

__all__ = ["MAX_SENSORS", "MAX_STATION_ID", "BadPayload", "Board"]

# How far the board trusts a station's id (higher keeps its place).
UNKNOWN, VOUCHED, LISTED = 0, 1, 2


# --------------------------------------------------------------------------- stations


@dataclass
class PendingAck:
    """An acknowledgement a display sent, until the station answers or time runs out."""

    by: str
    request_id: str
    sent: float  # board clock
    sent_wall: float
    state: str = "waiting"  # "waiting" / "failed"
    error: str | None = None

    def view(self) -> dict[str, Any]:
        return {"state": self.state, "by": self.by, "ts": self.sent_wall, "error": self.error}


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
    hydration: Shown | None = None
    checkin: CheckIn | None = None
    active: dict[str, AlertInfo] = field(default_factory=dict)
    acks: dict[str, PendingAck] = field(default_factory=dict)
    stale: bool = False
    vouched: bool = False
    # Seen offline, then back: its alerts wait for a fresh alerts/active list.
    awaiting_list: bool = False
    seq: int = 0

    def __post_init__(self) -> None:
        # [bucket start (wall s), max ratio | None, max rms_mg | None]
        self.history: deque[list[Any]] = deque(maxlen=self.history_points)
        self.events: deque[AlertInfo] = deque(maxlen=self.max_events)
        self.seen_events: OrderedDict[tuple[str, str], None] = OrderedDict()

    @property
    def confirmed(self) -> bool:
        """Whether its active alerts are vouched for by a live station right now."""
        return self.status == "online" and not self.stale and not self.awaiting_list

    def holds_serious_alert(self) -> bool:
        return any(a.level is AlertLevel.URGENT or a.red_flag for a in self.active.values())

    def alert_rank(self) -> int:
        """0 with no active alert, else 1 + the worst level's rank."""
        return 1 + max((a.rank for a in self.active.values()), default=-1)


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
    averages on a wall display). ``known`` lists the station ids that always
    have a place; ``evict_after`` is how long an offline or silent station
    stays (None: for ever); ``ack_timeout`` how long an acknowledgement waits
    for the station before the page is told it failed.
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
        known: Iterable[str] = (),
        evict_after: float | None = 3600.0,
        ack_timeout: float = 8.0,
    ):
        if stale_after <= 0:
            raise ValueError("stale_after must be positive")
        if bucket_s <= 0 or history_s < bucket_s:
            raise ValueError("need 0 < bucket_s <= history_s")
        self.known = frozenset(known)
        if max_stations <= len(self.known):
            raise ValueError("max_stations must leave room beyond the known stations")
        if ack_timeout <= 0 or (evict_after is not None and evict_after <= 0):
            raise ValueError("ack_timeout and evict_after must be positive")
        self.prefix = prefix.strip("/")
        self.stale_after = float(stale_after)
        self.clock: Clock = clock or RealClock()
        self.history_s = float(history_s)
        self.bucket_s = float(bucket_s)
        self.max_stations = max_stations
        self.max_events = max_events
        self.evict_after = evict_after
        self.ack_timeout = float(ack_timeout)
        self.seq = 0
        self.link_up = False
        self.ignored = 0
        self.refused = 0  # messages from stations the board had no room for
        self._stations: dict[str, Station] = {}
        self._removed: deque[tuple[int, str]] = deque(maxlen=MAX_REMOVALS_KEPT)
        self._recent_acks: deque[dict[str, Any]] = deque(maxlen=MAX_RECENT_ACKS)
        self._acks_seq = 0
        self._cards: OrderedDict[str, str] = OrderedDict()  # athlete id -> display name
        self._log_budget = log_budget_per_min
        self._log_window = (float("-inf"), 0)  # (window start, lines logged in it)

    # ------------------------------------------------------------------ input

    def handle(self, topic: str, payload: bytes, *, retained: bool = False) -> str | None:
        """Take one MQTT message; return the station id if anything changed.

        ``retained`` says the broker delivered it from its retained store (the
        station published it and the broker kept it): that vouches for the id.
        Never raises on bad input: malformed messages are counted in
        :attr:`ignored`, logged, and otherwise have no effect.
        """
        try:
            return self._handle(topic, bytes(payload), retained)
        except BadPayload as err:
            self._ignore(f"ignored {topic!r:.120}: {err}")
        return None

    def _handle(self, topic: str, payload: bytes, retained: bool) -> str | None:
        parsed = self._split_topic(topic)
        if parsed is None:
            return None
        station_id, kind = parsed
        if station_id == ATHLETES_LEVEL:
            return self._on_athletes_topic(kind, payload)
        if kind == "cmd/ack/result":
            return self._on_ack_result(station_id, payload)
        if kind.startswith("cmd/") or kind not in _HANDLERS:
            return None  # commands (ours included) and topics a newer station may add
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise BadPayload(f"{len(payload)} bytes is over the {MAX_PAYLOAD_BYTES} limit")
        station = self._stations.get(station_id)
        is_new = station is None
        if station is None:
            if not payload:
                return None  # clearing a retained message of a station we never saw
            station = Station(station_id, self._history_points(), self.max_events)
        changed = _HANDLERS[kind](self, station, payload)
        # Only a message that parsed counts as a sign of life (and as a voucher).
        if retained or (kind == "status" and station.status == "online"):
            station.vouched = True
        if is_new and not self._admit(station):
            return None
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
        station_id, _, kind = topic[len(head) :].partition("/")
        if not station_id or not kind:
            return None
        if len(station_id) > MAX_STATION_ID:
            raise BadPayload(f"station id longer than {MAX_STATION_ID} characters")
        return station_id, kind

    # ------------------------------------------------------------------ who keeps a place

    def standing(self, st: Station) -> int:
        if st.id in self.known:
            return LISTED
        return VOUCHED if st.vouched else UNKNOWN

    def _worth(self, st: Station) -> tuple[int, bool, int]:
        return (self.standing(st), st.holds_serious_alert(), st.alert_rank())

    def _admit(self, newcomer: Station) -> bool:
        """Give a new station a place, evicting a less trusted one if the board is full."""
        if len(self._stations) >= self.max_stations:
            candidates = [st for st in self._stations.values() if st.id not in self.known]
            # The least worthy, and among equals the one silent longest.
            victim = min(candidates, key=lambda st: (self._worth(st), st.last_seen or 0.0))
            # Ties go to the station already there: a flood cannot churn the board.
            wins = self._worth(victim) < self._worth(newcomer)
            if not (self.standing(newcomer) == LISTED or wins):
                self.refused += 1
                self._log_limited(
                    f"board full ({self.max_stations} stations): {newcomer.id!r:.70} not shown"
                )
                return False
            self._log_limited(f"board full: {victim.id!r:.70} makes way for {newcomer.id!r:.70}")
            self._remove(victim.id)
        self._stations[newcomer.id] = newcomer
        return True

    def _remove(self, station_id: str) -> None:
        del self._stations[station_id]
        self.seq += 1
        self._removed.append((self.seq, station_id))

    # ------------------------------------------------------------------ topics

    def _on_status(self, st: Station, payload: bytes) -> bool:
        status = parse_status(payload)
        if status == st.status:
            return False
        if status == "online" and st.status == "offline":
            # A station that comes back republishes what it holds; until then
            # nothing it showed before is vouched for.
            st.awaiting_list = bool(st.active)
        st.status = status
        return True

    def _on_tremor(self, st: Station, payload: bytes) -> bool:
        if not payload:
            return False
        reading = parse_tremor(payload, self.clock.now())
        if reading.sensor not in st.tremor and len(st.tremor) >= MAX_SENSORS:
            raise BadPayload(f"more than {MAX_SENSORS} sensors on one station")
        st.tremor[reading.sensor] = reading
        self._record_history(st, reading)
        return True

    def _on_session(self, st: Station, payload: bytes) -> bool:
        st.session = parse_session(payload) if payload else None
        return True

    def _on_hydration(self, st: Station, payload: bytes) -> bool:
        st.hydration = parse_hydration(payload) if payload else None
        return True

    def _on_athlete(self, st: Station, payload: bytes) -> bool:
        checkin = parse_checkin(payload) if payload else None
        st.checkin = None if checkin is None or checkin.nobody else checkin
        return True

    def _on_athletes_topic(self, kind: str, payload: bytes) -> str | None:
        """``_athletes/<id>/card``: a name for the wall (empty: forgotten); profiles are not
        for the wall."""
        athlete, _, leaf = kind.partition("/")
        if leaf != "card":
            return None
        if not ATHLETE_ID.fullmatch(athlete):
            raise BadPayload("a card for something that is not an athlete id")
        if payload:
            name = parse_card(payload, athlete)
            if self._cards.get(athlete) == name:
                return None
            self._cards[athlete] = name
            self._cards.move_to_end(athlete)
            while len(self._cards) > MAX_CARDS:
                self._cards.popitem(last=False)
        elif self._cards.pop(athlete, None) is None:
            return None
        self.seq += 1
        for st in self._stations.values():
            if st.checkin is not None and st.checkin.athlete == athlete:
                self._touch(st)
        return ATHLETES_LEVEL

    def _on_alert(self, st: Station, payload: bytes) -> bool:
        if not payload:
            return False
        alert = parse_alert(payload)
        key = (alert.id, alert.state)
        if key in st.seen_events:
            return False  # the contract: drop duplicates by (id, state)
        st.seen_events[key] = None
        while len(st.seen_events) > MAX_SEEN_EVENTS:
            st.seen_events.popitem(last=False)
        st.events.append(alert)
        if alert.state is AlertState.RAISED:
            if alert.id not in st.active and len(st.active) >= MAX_ACTIVE_ALERTS:
                # Keep the most serious ones when a station floods us.
                weakest = min(st.active.values(), key=lambda a: a.rank)
                if weakest.rank > alert.rank:
                    return True
                del st.active[weakest.id]
            st.active[alert.id] = alert
            return True
        before = st.active.pop(alert.id, None)
        st.acks.pop(alert.id, None)
        if alert.state is AlertState.ACKNOWLEDGED:
            self._note_acknowledged(st, alert, before)
        return True

    def _on_active(self, st: Station, payload: bytes) -> bool:
        alerts: list[AlertInfo] = []
        if payload:
            for entry in parse_active(payload)[: MAX_ACTIVE_ALERTS * 4]:
                if isinstance(entry, BadPayload):  # one bad entry should not hide the others
                    self._ignore(f"ignored an entry from {st.id!r}: {entry}")
                else:
                    alerts.append(entry)
            alerts.sort(key=lambda a: -a.rank)
            alerts = alerts[:MAX_ACTIVE_ALERTS]
        st.active = {a.id: a for a in alerts}
        st.acks = {k: v for k, v in st.acks.items() if k in st.active}
        st.awaiting_list = False
        return True

    def _on_ack_result(self, station_id: str, payload: bytes) -> str | None:
        st = self._stations.get(station_id)
        if st is None or not payload:
            return None
        result = parse_ack_result(payload)
        for pending in st.acks.values():
            if pending.request_id == result.request_id and pending.state == "waiting":
                if result.ok:
                    return None  # the acknowledged event follows and settles it
                pending.state = "failed"
                pending.error = (
                    f"the station refused: {clip(result.error, 200) or 'no reason given'}"
                )
                self._touch(st)
                return station_id
        return None

    def _note_acknowledged(self, st: Station, alert: AlertInfo, before: AlertInfo | None) -> None:
        shown = before or alert
        self._recent_acks.append(
            {
                "station": st.id,
                "name": st.session.name if st.session and st.session.name else st.id,
                "id": alert.id,
                "code": shown.code,
                "level": shown.level,
                "kind": shown.kind,
                "message": shown.message,
                "by": alert.by,
                "ts": alert.ts,
            }
        )
        self._acks_seq = self.seq + 1  # _touch follows and makes it the current seq

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
        """Re-judge time now: staleness, waiting acks, eviction; return the stations that moved."""
        now = self.clock.now()
        moved = []
        for st in list(self._stations.values()):
            changed = False
            stale = (
                st.status != "offline"
                and st.last_seen is not None
                and now - st.last_seen > self.stale_after
            )
            if stale != st.stale:
                st.stale = stale
                changed = True
            for pending in st.acks.values():
                if pending.state == "waiting" and now - pending.sent > self.ack_timeout:
                    pending.state = "failed"
                    pending.error = f"the station did not confirm within {self.ack_timeout:g} s" + (
                        "" if st.confirmed else " (it is offline or silent)"
                    )
                    changed = True
            if self._evictable(st, now):
                log.info(
                    "%r offline or silent for %.0f s: off the board",
                    st.id,
                    now - (st.last_seen or now),
                )
                self._remove(st.id)
                moved.append(st.id)
                continue
            if changed:
                self._touch(st)
                moved.append(st.id)
        return moved

    def _evictable(self, st: Station, now: float) -> bool:
        if self.evict_after is None or st.id in self.known or st.holds_serious_alert():
            return False
        # Offline (its will, or it said so) or never said: a station that only went
        # quiet still says "online", and its will tells us when it is really gone.
        return (
            st.status != "online"
            and st.last_seen is not None
            and now - st.last_seen > self.evict_after
        )

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

    def note_ack(
        self, station_id: str, alert_id: str, by: str = "display", request_id: str = ""
    ) -> bool:
        """Remember that ``by`` acknowledged an alert from a display.

        The alert stays active until the station confirms (it publishes the
        ``acknowledged`` event); meanwhile every screen shows who sent it and
        that it waits for the station, and after ``ack_timeout`` that it failed.
        """
        st = self._stations.get(station_id)
        if st is None or alert_id not in st.active:
            return False
        st.acks[alert_id] = PendingAck(by, request_id, self.clock.now(), self.clock.wall())
        self._touch(st)
        return True

    def _touch(self, st: Station) -> None:
        self.seq += 1
        st.seq = self.seq

    def _ignore(self, line: str) -> None:
        self.ignored += 1
        self._log_limited(line)

    def _log_limited(self, line: str) -> None:
        start, count = self._log_window
        now = self.clock.now()
        if now - start >= 60.0:
            start, count = now, 0
        if count < self._log_budget:
            log.warning("%s", line)
        elif count == self._log_budget:
            log.warning("more such messages; silent for the rest of this minute")
        self._log_window = (start, count + 1)

    # ------------------------------------------------------------------ output

    def station_ids(self) -> list[str]:
        return sorted(self._stations)

    def view(self, station_id: str, *, full: bool = True) -> dict[str, Any]:
        """One station as plain JSON-ready data, with a summary a tile can paint.

        ``full`` includes each sensor's reading, the whole sparkline history
        and the recent alert events; otherwise only the history's last few
        points (``spark_tail``), which a client merges by bucket time.
        """
        st = self._stations[station_id]
        alerts = sorted(st.active.values(), key=lambda a: (-a.rank, -(a.raised_ts or 0.0)))
        confirmed = st.confirmed
        out: dict[str, Any] = {
            "id": st.id,
            "name": (st.session.name if st.session and st.session.name else st.id),
            "status": st.status or "unknown",
            "stale": st.stale,
            "listed": st.id in self.known,
            "last_seen": st.last_seen_wall,
            "tremor": self._tremor_summary(st),
            "session": st.session.view() if st.session else None,
            "hydration": st.hydration.view() if st.hydration else None,
            "athlete": self._athlete_view(st),
            "alerts": [self._alert_view(st, a, confirmed) for a in alerts],
        }
        if full:
            out["sensors"] = [r.view() for r in sorted(st.tremor.values(), key=lambda r: r.sensor)]
            out["spark"] = [list(p) for p in st.history]
            out["events"] = [a.view() for a in st.events]
        else:
            # Updates go out ten times a second: only what a tile paints (the worst
            # sensor, not each one), and the sparkline's newest points for the page to merge.
            out["spark_tail"] = [list(p) for p in list(st.history)[-3:]]
        return out

    def _athlete_view(self, st: Station) -> dict[str, Any] | None:
        """Who is checked in, for the tile: the card's name (None: a guest, or no card)."""
        c = st.checkin
        if c is None:
            return None
        return {
            "name": self._cards.get(c.athlete) if c.athlete else None,
            "guest": c.guest,
            "since_ts": c.since_ts,
            "source": c.source,
            "profile": c.profile,
        }

    def athletes(self) -> list[dict[str, Any]]:
        """Every athlete with a card, by name, and the station each is checked in at (for staff)."""
        where = {
            st.checkin.athlete: st.id
            for st in self._stations.values()
            if st.checkin is not None and st.checkin.athlete
        }
        named = ({"id": a, "name": n, "station": where.get(a)} for a, n in self._cards.items())
        return sorted(named, key=lambda x: (x["name"].casefold(), x["id"]))

    def knows_athlete(self, athlete: str) -> bool:
        return athlete in self._cards

    def has_station(self, station_id: str) -> bool:
        return station_id in self._stations

    @staticmethod
    def _alert_view(st: Station, alert: AlertInfo, confirmed: bool) -> dict[str, Any]:
        pending = st.acks.get(alert.id)
        return alert.view(
            confirmed=confirmed,
            ack=pending.view() if pending else None,
            ack_sent=pending is not None and pending.state == "waiting",
        )

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
            key=lambda r: (r.level.rank, r.ratio or 0.0, r.rms_mg or 0.0),
        )
        return worst.view()

    def recent_acks(self) -> list[dict[str, Any]]:
        """The latest acknowledgements the stations confirmed, newest first."""
        return list(reversed(self._recent_acks))

    def snapshot(self) -> dict[str, Any]:
        """Everything, for a client that just connected."""
        return {
            "seq": self.seq,
            "now": self.clock.wall(),
            "link_up": self.link_up,
            "stale_after": self.stale_after,
            "history_s": self.history_s,
            "bucket_s": self.bucket_s,
            # The grades a station applies unless its session says others (the guides).
            "grades": DEFAULT_GRADES.to_dict(),
            "ignored": self.ignored,
            "refused": self.refused,
            "max_stations": self.max_stations,
            "acks": self.recent_acks(),
            "stations": [self.view(sid) for sid in self.station_ids()],
        }

    def changes_since(self, seq: int) -> dict[str, Any]:
        """The stations changed (or removed) after ``seq``, for a client that saw up to it."""
        changed = [sid for sid, st in self._stations.items() if st.seq > seq]
        out: dict[str, Any] = {
            "seq": self.seq,
            "now": self.clock.wall(),
            "link_up": self.link_up,
            "refused": self.refused,
            "stations": [self.view(sid, full=False) for sid in sorted(changed)],
            "removed": [sid for s, sid in self._removed if s > seq and sid not in self._stations],
        }
        if self._acks_seq > seq:
            out["acks"] = self.recent_acks()
        return out


_HANDLERS = {
    "status": Board._on_status,
    "tremor": Board._on_tremor,
    "session": Board._on_session,
    "hydration": Board._on_hydration,
    "alert": Board._on_alert,
    "alerts/active": Board._on_active,
    "athlete": Board._on_athlete,
}
