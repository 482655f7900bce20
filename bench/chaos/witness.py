"""The broker the stations publish to, and the witnesses of what reached it: a subscriber
and the real wall display."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from monitor.display.service import DisplayConfig, DisplayService
from tests.support.mosquitto import MosquittoBroker, gym_config, password, write_password_files
from tests.support.witness import Witness

from .ledger import Ledger
from .options import DISPLAY_USER, WITNESS_USER

log = logging.getLogger("chaos")


def start_broker(workdir: Path, users: Iterable[str]) -> tuple[MosquittoBroker, Path]:
    """The gym's Mosquitto as shipped, a password file for ``users`` (each client logs in as its
    own user: client ids are bound to user names), and persistence (sessions survive a restart).
    """
    secrets = write_password_files(workdir / "secrets", users, password)
    store = workdir / "broker-store"
    store.mkdir(parents=True, exist_ok=True)
    extra = gym_config(secrets / "passwd") + (
        f"persistence true\npersistence_location {store}/\nautosave_interval 5\n"
        "max_queued_messages 100000\n"
    )
    return MosquittoBroker(
        workdir / "broker", extra_config=extra, allow_anonymous=False
    ).start(), secrets


class AlertWitness:
    """The wall display's view: a persistent-session QoS 1 subscriber that feeds the ledger.

    It is a :class:`~tests.support.witness.Witness`: it connects straight to the broker (not
    through the relay), with ``clean_start=False`` and a session that outlives a broker
    restart, so QoS 1 alerts published while it was away are queued for it. It also keeps the
    stations' status, their retained active lists and the replies to session commands.
    """

    TOPICS = ("gym/+/alert", "gym/+/status", "gym/+/alerts/active", "gym/+/cmd/+/result")

    def __init__(self, broker: MosquittoBroker, ledger: Ledger, user: str = WITNESS_USER):
        self.ledger = ledger
        self.lock = threading.Lock()
        self.status: list[tuple[str, bytes, float]] = []  # (station, payload, monotonic)
        self.active: dict[str, dict] = {}  # station -> last alerts/active
        self.replies: Counter[str] = Counter()  # command replies: ok/busy/other
        self.answered: Counter[str] = Counter()  # session command replies, by station
        self.other_replies: list[str] = []
        self._mqtt = Witness(
            broker,
            self.TOPICS,
            user=user,
            password=password(user),
            client_id="chaos-witness",
            on_message=self._on_message,
        )
        self.subscribed = self._mqtt.subscribed

    def _on_message(self, topic: str, payload: bytes, now: float) -> None:
        parts = topic.split("/")
        station, kind = parts[1], "/".join(parts[2:])
        try:
            if kind == "alert":
                self.ledger.record_delivered(json.loads(payload), now)
            elif kind == "status":
                with self.lock:
                    self.status.append((station, payload, now))
            elif kind == "alerts/active":
                with self.lock:
                    self.active[station] = json.loads(payload)
            elif kind.endswith("/result"):
                reply = json.loads(payload)
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
                    if kind == "cmd/session/result":
                        self.answered[station] += 1
        except (ValueError, KeyError):
            log.error("witness: unreadable message on %s: %r", topic, payload[:80])

    def online_after(self, station: str, since: float) -> float | None:
        """When ``station`` next said ``online`` after ``since`` (monotonic), if it did."""
        with self.lock:
            return next(
                (t for s, p, t in self.status if s == station and p == b"online" and t >= since),
                None,
            )

    def online(self, station: str) -> bool:
        """Whether ``station``'s last status said ``online`` (its will says otherwise)."""
        with self.lock:
            last = [p for s, p, _ in self.status if s == station]
        return bool(last) and last[-1] == b"online"

    def wait_online(self, stations: Iterable[str], timeout: float) -> list[str]:
        """Wait until every one of ``stations`` is online; those still away after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            away = [s for s in stations if not self.online(s)]
            if not away or time.monotonic() >= deadline:
                return away
            time.sleep(0.05)

    def close(self) -> None:
        self._mqtt.close()


class DisplayWitness:
    """The real wall display, through its public entry points: the service and ``GET
    /api/state``."""

    def __init__(self, broker: MosquittoBroker, ids: list[str]):
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
        self.service: DisplayService | None = None
        self.url = ""
        self.restarts = 0

    def start(self) -> None:
        self.service = DisplayService(self.config)
        self.url = self.service.start()

    def restart(self) -> None:
        self.stop()
        self.restarts += 1
        self.start()

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.service: DisplayService | None = None

    def wall(self) -> dict[str, list[str]]:
        """Per station, the ids of the alerts the wall shows."""
        with urllib.request.urlopen(self.url + "api/state", timeout=10) as response:
            state = json.loads(response.read())
        return {
            st["id"]: sorted(a["id"] for a in st.get("alerts", []))
            for st in state.get("stations", [])
        }
