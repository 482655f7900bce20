"""Topic names for one station, from a prefix and a station id.

Every topic the station uses is spelled here and nowhere else, so the
contract in PAYLOADS.md has one home in code::

    >>> t = Topics("gym", "bench-1")
    >>> t.status, t.alerts_active
    ('gym/bench-1/status', 'gym/bench-1/alerts/active')
    >>> t.cmd("tare"), t.cmd_result("tare"), t.cmd_filter
    ('gym/bench-1/cmd/tare', 'gym/bench-1/cmd/tare/result', 'gym/bench-1/cmd/+')
    >>> t.command_name("gym/bench-1/cmd/tare")
    'tare'

Station ids become one topic level and, with the shipped ACL, the station's
broker user name, so they are restricted to letters, digits, ``-`` and ``_``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import MonitorError

#: The same rule as ``[station] id`` in the config: one safe topic level.
STATION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
#: The commands a station accepts on ``cmd/<name>``.
COMMAND_NAMES = ("tare", "calibrate", "session", "weigh_in", "ack")
#: Home Assistant's default discovery prefix and its birth/last-will topic.
HA_PREFIX = "homeassistant"
#: The level under the prefix where athletes' profiles and cards live
#: (no station id starts with "_").
ATHLETES = "_athletes"
#: The broker users of the gym's services (config/mosquitto/acl's ``user`` blocks). A station's
#: user name is its id, and the ACL denies these users their own subtree, so no station may
#: take one of these ids (tests/test_broker_config.py keeps this equal to the ACL).
SERVICE_USERS = frozenset({"display", "operator", "integrator", "homeassistant", "history"})


class TopicError(MonitorError, ValueError):
    """A station id or prefix cannot be used in a topic."""


def validate_station_id(station: str) -> str:
    """Return ``station`` if it is a usable station id, else raise TopicError."""
    if not isinstance(station, str) or not STATION_ID.fullmatch(station):
        raise TopicError(
            f"station id {station!r} must be 1 to 64 letters, digits, '-' or '_', "
            "starting with a letter or digit (it becomes an MQTT topic level)"
        )
    return station


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` without surrounding slashes if it is usable, else raise TopicError.

    A prefix may have several levels (``chain/gym-a``) but no empty level, no
    wildcard, and must not start with ``$`` (reserved for the broker).
    """
    if not isinstance(prefix, str):
        raise TopicError(f"topic prefix must be a string, not {prefix!r}")
    cleaned = prefix.strip("/")
    levels = cleaned.split("/")
    if (
        not cleaned
        or any(not level for level in levels)
        or any(c in cleaned for c in "+#\0")
        or cleaned.startswith("$")
        or len(cleaned.encode()) > 512
    ):
        raise TopicError(
            f"topic prefix {prefix!r} must be non-empty levels separated by '/', "
            "without '+', '#' or a leading '$'"
        )
    return cleaned


@dataclass(frozen=True)
class Topics:
    """The topics of station ``station`` under ``prefix`` (validated on creation)."""

    prefix: str
    station: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", validate_prefix(self.prefix))
        validate_station_id(self.station)

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.station}"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def tremor(self) -> str:
        return f"{self.base}/tremor"

    @property
    def session(self) -> str:
        return f"{self.base}/session"

    @property
    def hydration(self) -> str:
        return f"{self.base}/hydration"

    @property
    def alert(self) -> str:
        return f"{self.base}/alert"

    @property
    def alerts_active(self) -> str:
        return f"{self.base}/alerts/active"

    @property
    def athlete(self) -> str:
        """Who is checked in at the station now (retained)."""
        return f"{self.base}/athlete"

    @property
    def session_record(self) -> str:
        return f"{self.base}/session_record"

    def profile(self, athlete: str) -> str:
        """An athlete's retained profile, which the history service publishes."""
        if not athlete or any(c in athlete for c in "/+#\0"):
            raise TopicError(f"athlete id {athlete!r} must be one topic level")
        return f"{self.prefix}/{ATHLETES}/{athlete}/profile"

    def cmd(self, name: str) -> str:
        return f"{self.base}/cmd/{_command_level(name)}"

    def cmd_result(self, name: str) -> str:
        return f"{self.cmd(name)}/result"

    @property
    def cmd_filter(self) -> str:
        """What the station subscribes to. ``+`` is one level, so results never match."""
        return f"{self.base}/cmd/+"

    def command_name(self, topic: str) -> str | None:
        """``tare`` for ``<base>/cmd/tare``; None for any other topic (results included)."""
        head = f"{self.base}/cmd/"
        if not topic.startswith(head):
            return None
        name = topic[len(head) :]
        return name if name and "/" not in name else None


def _command_level(name: str) -> str:
    if not name or any(c in name for c in "/+#\0"):
        raise TopicError(f"command name {name!r} must be one topic level")
    return name
