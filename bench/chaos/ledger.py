"""Alert events raised at the source against those the witness received."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any


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
        """Per station: raised, delivered (unique), received (all copies), duplicates, lost,
        unrecorded."""
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
