"""The history service's TOML file (config/history.toml documents every key).

Read with the station config's :class:`~monitor.config.Table`, so a mistake
stops the service with one line naming the key::

    $ gym-monitor history --config history.toml
    config error: history.toml: retention.trace_days: must be at least 1, not 0
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from ..config import Table
from ..errors import ConfigError, ConfigErrors
from ..mqtt.topics import TopicError, validate_prefix

GYM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
SQLITE_FILE = "history.sqlite3"
#: ``[history] live_trace``: the feeds the per-minute trace is read from (config/history.toml).
LIVE_TRACE = ("auto", "summary", "tremor", "off")


def _gym_id(value: str) -> str | None:
    return None if GYM_ID.fullmatch(value) else "must be 1-64 letters, digits, '-' or '_'"


def _host_names(value: list) -> str | None:
    if not all(isinstance(v, str) and v and len(v) <= 253 for v in value):
        return "must be a list of host names"
    return None


def _prefix(value: str) -> str | None:
    try:
        validate_prefix(value)
    except TopicError as err:
        return str(err)
    return None


@dataclass(frozen=True)
class MqttSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str = ""
    password_file: str = ""
    tls_ca: str = ""
    protocol: str = "v5"
    prefix: str = "gym"
    #: Central store of a chain: topics arrive as <chain_prefix>/<gym>/<prefix>/...
    chain_prefix: str = ""
    client_id: str = "gym-history"
    session_expiry_s: int = 7 * 86400
    keepalive: int = 30


@dataclass(frozen=True)
class RetentionSettings:
    trace_days: float = 90.0
    records_months: float = 24.0
    interval_s: float = 3600.0


@dataclass(frozen=True)
class WebSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8081
    display_url: str = "http://localhost:8080/"
    #: Pages only after a staff login (the display's accounts); false only for a closed LAN test.
    require_login: bool = True
    staff_file: str = ""
    allowed_hosts: tuple[str, ...] = ()
    #: Processes that read and render the pages (0: the service's own threads).
    render_workers: int = 1


@dataclass(frozen=True)
class HistoryConfig:
    gym: str = "local"
    state_dir: Path = Path("/var/lib/gym-history")
    database: str = ""
    database_password_file: str = ""
    publish_profiles: bool = True
    #: What the per-minute trace outside session records is read from (ingest.LIVE_KINDS).
    live_trace: str = "auto"
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    web: WebSettings = field(default_factory=WebSettings)

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL: the configured one, or SQLite in the state directory."""
        if not self.database:
            return f"sqlite:///{(self.state_dir / SQLITE_FILE).resolve()}"
        if not self.database_password_file:
            return self.database
        password = _read_secret(self.database_password_file, "history.database_password_file")
        head, sep, rest = self.database.partition("://")
        if not sep or "@" not in rest:
            raise ConfigError("history.database", "needs user@host to go with a password file")
        user, _, host = rest.partition("@")
        return f"{head}://{user.split(':')[0]}:{quote(password, safe='')}@{host}"


def _read_secret(path: str, key: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8").strip("\r\n")
    except OSError as err:
        raise ConfigError(key, f"cannot read {path}: {err.strerror or err}") from None
    if not text:
        raise ConfigError(key, f"{path} is empty")
    return text


def parse(data: dict, source: str = "") -> HistoryConfig:
    top = Table(data)
    h = top.table("history")
    gym = h.get("gym", str, "local", check=_gym_id)
    state_dir = Path(h.get("state_dir", str, "/var/lib/gym-history"))
    database = h.get("database", str, "")
    if database and not re.match(r"(sqlite|postgresql)(\+\w+)?://", database):
        raise ConfigError(
            "history.database",
            "must be a sqlite:/// or postgresql+psycopg:// URL "
            f"(or empty for SQLite in the state directory), not {database!r}",
        )
    pw_file = h.get("database_password_file", str, "")
    publish = h.get("publish_profiles", bool, True)
    live_trace = h.get("live_trace", str, "auto", choices=LIVE_TRACE)
    h.done()

    m = top.table("mqtt")
    mqtt = MqttSettings(
        host=m.get("host", str, "127.0.0.1"),
        port=m.get("port", int, 1883, min=1, max=65535),
        username=m.get("username", str, ""),
        password_file=m.get("password_file", str, ""),
        tls_ca=m.get("tls_ca", str, ""),
        protocol=m.get("protocol", str, "v5", choices=("v5", "v311")),
        prefix=m.get("prefix", str, "gym", check=_prefix),
        chain_prefix=m.get("chain_prefix", str, "", check=lambda v: _prefix(v) if v else None),
        client_id=m.get(
            "client_id",
            str,
            "gym-history",
            check=lambda v: None if 0 < len(v) <= 64 else "must be 1-64 characters",
        ),
        session_expiry_s=m.get("session_expiry_s", int, 7 * 86400, min=60, max=2**32 - 1),
        keepalive=m.get("keepalive", int, 30, min=5, max=600),
    )
    if mqtt.password_file and not mqtt.username:
        raise ConfigError("mqtt.username", "is required when mqtt.password_file is set")
    m.done()

    r = top.table("retention")
    retention = RetentionSettings(
        trace_days=r.get("trace_days", float, 90.0, min=1),
        records_months=r.get("records_months", float, 24.0, min=1),
        interval_s=r.get("interval_s", float, 3600.0, min=10),
    )
    r.done()

    w = top.table("web")
    web = WebSettings(
        enabled=w.get("enabled", bool, True),
        host=w.get("host", str, "127.0.0.1"),
        port=w.get("port", int, 8081, min=0, max=65535),
        display_url=w.get("display_url", str, "http://localhost:8080/"),
        require_login=w.get("require_login", bool, True),
        staff_file=w.get("staff_file", str, "/etc/gym-monitor/staff.json"),
        allowed_hosts=tuple(w.get("allowed_hosts", list, [], check=_host_names)),
        render_workers=w.get("render_workers", int, 1, min=0, max=8),
    )
    w.done()
    top.done()
    if top.problems:  # every mistake at once, one line each
        raise ConfigErrors(top.problems)
    return HistoryConfig(
        gym=gym,
        state_dir=state_dir,
        database=database,
        database_password_file=pw_file,
        publish_profiles=publish,
        live_trace=live_trace,
        mqtt=mqtt,
        retention=retention,
        web=web,
    )


def load(path: str | Path) -> HistoryConfig:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "no such file") from None
    except PermissionError:
        raise ConfigError(str(path), "cannot be read (permission denied)") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(str(path), f"is not valid TOML: {err}") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), "is not UTF-8 text") from None
    return parse(data, str(path))
