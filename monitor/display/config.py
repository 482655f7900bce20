"""The display's settings: one TOML file, command-line options on top.

Every mistake stops the display with one line that names the key (or the
option) and says what is wrong, never a traceback, as the station's
``monitor.toml`` does::

    $ gym-monitor display --config display.toml
    gym display: display.toml: http.port: must be at most 65535, not 80800

``config/display.toml`` documents every key with its default. Options given on
the command line win over the file (the systemd unit uses that to point at
files systemd hands over as credentials)::

    config = load_config(Path("display.toml"))                 # file only
    config = config_from_args(build_parser().parse_args(argv))  # file + options
"""

from __future__ import annotations

import argparse
import difflib
import ipaddress
import math
import re
import socket
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..files import read_small_file
from ..mqtt.publisher import read_password_file
from ..mqtt.topics import TopicError, validate_prefix, validate_station_id
from .staff import DEFAULT_STAFF_FILE

MAX_CONFIG_BYTES = 256 * 1024
#: The session cookie of the wall display; another server using its login names its own.
SESSION_COOKIE = "gym_staff"
COOKIE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
HOSTNAME = re.compile(
    r"(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
    r"(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?"
)
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class DisplayConfig:
    """Everything the display needs to know; the defaults are safe for one screen.

    The broker password is a value here, never an option: it is read from
    ``password_file`` so it does not show in ``ps`` or shell history.
    """

    # The broker.
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    prefix: str = "gym"
    # The web page. Loopback unless the config says otherwise.
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Host names the page may be asked for (besides IP literals); () = this machine's names.
    allowed_hosts: tuple[str, ...] = ()
    allow_ip_hosts: bool = True
    http_tls_cert: str | None = None
    http_tls_key: str | None = None
    idle_timeout_s: float = 15.0
    max_streams: int = 512
    max_streams_per_client: int = 64
    # Staff logins.
    staff_file: str | None = None
    session_idle_s: float = 900.0
    session_max_s: float = 12 * 3600.0
    secure_cookies: str = "auto"  # "auto" (when served over TLS), "always", "never"
    # Cookies ignore ports: two servers on one host sharing this login need two names.
    session_cookie: str = SESSION_COOKIE
    login_failures_per_client: int = 5
    login_failures_per_name: int = 10
    login_window_s: float = 300.0
    # The board.
    stations: tuple[str, ...] = ()
    max_stations: int = 200
    evict_after_s: float = 3600.0  # 0: never
    ack_timeout_s: float = 8.0
    stale_after: float = 30.0
    # Not in the file: tests shorten them.
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 10.0
    # At most ~10 pushes per second per page: enough for the eye, light on a Pi.
    push_interval_s: float = 0.1
    keepalive_s: float = 15.0
    # Sparkline: minutes of history in small buckets (tests shrink both).
    spark_history_s: float = 300.0
    spark_bucket_s: float = 2.0

    def host_names(self) -> frozenset[str]:
        """The names a request's Host may carry (lower case, no port)."""
        if self.allowed_hosts:
            names = set(self.allowed_hosts)
        else:
            host = socket.gethostname().lower()
            names = {"localhost", host, f"{host}.local"}
        if self.http_host not in WILDCARD_HOSTS:
            names.add(self.http_host.lower())
        return frozenset(normalise_host(n) for n in names)


def normalise_host(name: str) -> str:
    return name.strip().lower().rstrip(".").strip("[]")


# --------------------------------------------------------------------------- the TOML file


class _Table:
    """A table being read: typed getters that raise ConfigError naming the key."""

    def __init__(self, data: Any, path: str):
        if not isinstance(data, dict):
            raise ConfigError(path or "(top level)", "must be a table")
        self.data, self.path = data, path
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def table(self, name: str) -> _Table:
        self.seen.add(name)
        return _Table(self.data.get(name, {}), self.key(name))

    def get(
        self,
        name: str,
        kind: type,
        default: Any,
        *,
        low: float | None = None,
        high: float | None = None,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        self.seen.add(name)
        if name not in self.data:
            return default
        value = self.data[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            want = {
                str: "a string",
                int: "a whole number",
                float: "a number",
                bool: "true or false",
                list: "a list",
            }[kind]
            raise ConfigError(self.key(name), f"must be {want}, not {value!r:.60}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(self.key(name), f"must be a finite number, not {value!r}")
        number: Any = value  # checked to be a number wherever bounds are given
        if low is not None and number < low:
            raise ConfigError(self.key(name), f"must be at least {low:g}, not {value!r}")
        if high is not None and number > high:
            raise ConfigError(self.key(name), f"must be at most {high:g}, not {value!r}")
        problem = check(value) if check else None
        if problem:
            raise ConfigError(self.key(name), problem)
        return value

    def strings(self, name: str, check: Callable[[str], str | None]) -> tuple[str, ...] | None:
        items = self.get(name, list, None)
        if items is None:
            return None
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise ConfigError(f"{self.key(name)}[{i}]", f"must be a string, not {item!r:.40}")
            problem = check(item)
            if problem:
                raise ConfigError(f"{self.key(name)}[{i}]", problem)
        return tuple(items)

    def done(self) -> None:
        """Refuse keys nobody asked for: a typo should not be silently ignored."""
        for name in self.data:
            if name not in self.seen:
                near = difflib.get_close_matches(name, self.seen, n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise ConfigError(self.key(name), f"is not a known key{hint}")


def _host_name(value: str) -> str | None:
    name = normalise_host(value)
    try:
        ipaddress.ip_address(name)
        return None
    except ValueError:
        pass
    return None if HOSTNAME.fullmatch(name) else f"{value!r} is not a host name or address"


def _station_id(value: str) -> str | None:
    try:
        validate_station_id(value)
    except TopicError as err:
        return str(err)
    return None


def _not_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def _prefix(value: str) -> str | None:
    try:
        validate_prefix(value)
    except TopicError as err:
        return str(err)
    return None


def _cookie_name(value: str) -> str | None:
    return None if COOKIE_NAME.fullmatch(value) else "must be 1 to 64 of A-Z, a-z, 0-9, - and _"


def parse(data: dict[str, Any]) -> dict[str, Any]:
    """Check a parsed TOML document; return the DisplayConfig fields it sets."""
    top = _Table(data, "")
    out: dict[str, Any] = {}
    d = DisplayConfig()

    m = top.table("mqtt")
    out["mqtt_host"] = m.get("host", str, d.mqtt_host, check=_not_empty)
    out["mqtt_port"] = m.get("port", int, d.mqtt_port, low=1, high=65535)
    prefix = m.get("prefix", str, None, check=_prefix)
    out["prefix"] = validate_prefix(prefix) if prefix is not None else d.prefix
    out["username"] = m.get("username", str, None, check=_not_empty)
    out["password_file"] = m.get("password_file", str, None, check=_not_empty)
    for key in ("tls_ca", "tls_cert", "tls_key"):
        out[key] = m.get(key, str, None, check=_not_empty)
    if "password" in m.data:
        raise ConfigError(
            m.key("password"), "is not read from the TOML: put it in a file and set password_file"
        )
    m.done()

    h = top.table("http")
    out["http_host"] = h.get(
        "host", str, d.http_host, check=lambda v: None if v in WILDCARD_HOSTS else _host_name(v)
    )
    out["http_port"] = h.get("port", int, d.http_port, low=0, high=65535)
    hosts = h.strings("allowed_hosts", _host_name)
    if hosts is not None:
        out["allowed_hosts"] = tuple(normalise_host(x) for x in hosts)
    out["allow_ip_hosts"] = h.get("allow_ip_hosts", bool, d.allow_ip_hosts)
    out["http_tls_cert"] = h.get("tls_cert", str, None, check=_not_empty)
    out["http_tls_key"] = h.get("tls_key", str, None, check=_not_empty)
    out["idle_timeout_s"] = h.get("idle_timeout_s", float, d.idle_timeout_s, low=1, high=3600)
    out["max_streams"] = h.get("max_streams", int, d.max_streams, low=1, high=5000)
    out["max_streams_per_client"] = h.get(
        "max_streams_per_client", int, d.max_streams_per_client, low=1, high=5000
    )
    h.done()

    s = top.table("staff")
    out["staff_file"] = s.get("file", str, str(DEFAULT_STAFF_FILE), check=_not_empty)
    out["session_idle_s"] = s.get("session_idle_s", float, d.session_idle_s, low=30, high=7 * 86400)
    out["session_max_s"] = s.get("session_max_s", float, d.session_max_s, low=60, high=30 * 86400)
    out["secure_cookies"] = s.get(
        "secure_cookies",
        str,
        d.secure_cookies,
        check=lambda v: (
            None if v in ("auto", "always", "never") else "must be 'auto', 'always' or 'never'"
        ),
    )
    out["login_failures_per_client"] = s.get(
        "login_failures_per_client", int, d.login_failures_per_client, low=1, high=1000
    )
    out["login_failures_per_name"] = s.get(
        "login_failures_per_name", int, d.login_failures_per_name, low=1, high=1000
    )
    out["login_window_s"] = s.get("login_window_s", float, d.login_window_s, low=1, high=86400)
    out["session_cookie"] = s.get("cookie_name", str, d.session_cookie, check=_cookie_name)
    s.done()

    b = top.table("board")
    stations = b.strings("stations", _station_id)
    if stations is not None:
        out["stations"] = tuple(dict.fromkeys(stations))
    out["max_stations"] = b.get("max_stations", int, d.max_stations, low=1, high=5000)
    out["evict_after_s"] = b.get("evict_after_s", float, d.evict_after_s, low=0, high=365 * 86400)
    out["ack_timeout_s"] = b.get("ack_timeout_s", float, d.ack_timeout_s, low=1, high=600)
    out["stale_after"] = b.get("stale_after_s", float, d.stale_after, low=1, high=86400)
    b.done()
    top.done()
    return {k: v for k, v in out.items() if v is not None}


def read_toml(path: Path) -> dict[str, Any]:
    raw = read_small_file(path, "--config", limit=MAX_CONFIG_BYTES)
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(str(path), "is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(str(path), f"is not valid TOML: {err}") from None


def load_config(path: Path | str) -> DisplayConfig:
    """Read and check a display config file (no command-line options)."""
    return finish(parse(read_toml(Path(path))), source=str(path))


def finish(
    values: dict[str, Any], source: str = "", from_options: frozenset[str] = frozenset()
) -> DisplayConfig:
    """Read the files the values point at and check what spans keys; ConfigError names the key.

    ``from_options`` are the fields set on the command line: a problem with one
    of them names the option, anything else names the file and its key.
    """

    def key(toml_key: str, option: str) -> str:
        field_name = _FIELD_OF_OPTION.get(option, "")
        if source and field_name not in from_options:
            return f"{source}: {toml_key}"
        return option

    values = dict(values)
    password_file = values.pop("password_file", None)
    if password_file:
        password = read_password_file(password_file, key("mqtt.password_file", "--password-file"))
        if not values.get("username"):
            raise ConfigError(
                key("mqtt.username", "--username"), "is required with a password file"
            )
        values["password"] = password
    for name, toml_key, option in (
        ("tls_ca", "mqtt.tls_ca", "--tls-ca"),
        ("tls_cert", "mqtt.tls_cert", "--tls-cert"),
        ("tls_key", "mqtt.tls_key", "--tls-key"),
        ("http_tls_cert", "http.tls_cert", "--http-tls-cert"),
        ("http_tls_key", "http.tls_key", "--http-tls-key"),
    ):
        path = values.get(name)
        if path and not Path(path).is_file():
            raise ConfigError(key(toml_key, option), f"{path} is not a readable file")
    if bool(values.get("tls_cert")) != bool(values.get("tls_key")):
        raise ConfigError(key("mqtt.tls_cert", "--tls-cert"), "tls_cert and tls_key go together")
    if bool(values.get("http_tls_cert")) != bool(values.get("http_tls_key")):
        raise ConfigError(
            key("http.tls_cert", "--http-tls-cert"), "tls_cert and tls_key go together"
        )
    stations = values.get("stations", ())
    if values.get("max_stations", DisplayConfig.max_stations) <= len(stations):
        raise ConfigError(
            key("board.max_stations", "--max-stations"),
            f"must be more than the {len(stations)} stations listed",
        )
    if values.get("session_idle_s", DisplayConfig.session_idle_s) > values.get(
        "session_max_s", DisplayConfig.session_max_s
    ):
        raise ConfigError(
            key("staff.session_idle_s", "--session-idle-s"),
            "must not be longer than staff.session_max_s",
        )
    known = {f.name for f in fields(DisplayConfig)}
    return DisplayConfig(**{k: v for k, v in values.items() if k in known})


# --------------------------------------------------------------------------- command line


DESCRIPTION = (
    "Serve the gym wall display: subscribe to the stations over MQTT and show "
    "them live on a web page; staff log in to acknowledge alerts."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The display's options, for its own parser or a ``display`` subcommand's.

    Every default is None, meaning "the config file's value, else the built-in
    default", so an option given wins over the file and one not given does not.
    """
    p.add_argument("--config", type=Path, help="display.toml (see config/display.toml)")
    p.add_argument("--mqtt-host", help="broker host (127.0.0.1)")
    p.add_argument("--mqtt-port", type=int, help="broker port (1883)")
    p.add_argument("--username", help="broker user name")
    p.add_argument(
        "--password-file",
        type=Path,
        help="file holding the broker password (never give it on the command line)",
    )
    p.add_argument("--tls-ca", type=Path, help="CA certificate: connect with TLS and verify")
    p.add_argument(
        "--tls-cert", type=Path, help="client certificate for the broker (with --tls-key)"
    )
    p.add_argument("--tls-key", type=Path, help="client key for the broker")
    p.add_argument("--prefix", help="topic prefix (gym)")
    p.add_argument(
        "--http-host", help="address to serve the page on (127.0.0.1; 0.0.0.0 for every interface)"
    )
    p.add_argument("--http-port", type=int, help="HTTP port (8080; 0 = any free)")
    p.add_argument(
        "--allowed-host",
        action="append",
        dest="allowed_hosts",
        metavar="NAME",
        help="a host name screens use to reach the page (repeatable)",
    )
    p.add_argument("--staff-file", type=Path, help=f"staff accounts ({DEFAULT_STAFF_FILE})")
    p.add_argument(
        "--stale-after",
        type=float,
        help="seconds without data before a station shows as stale (30)",
    )
    p.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level (INFO)",
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gym-monitor display", description=DESCRIPTION)
    add_arguments(p)
    return p


def config_from_args(args: argparse.Namespace) -> DisplayConfig:
    """The config file named by ``--config`` (if any) with the options on top.

    Raises :class:`~monitor.errors.ConfigError` naming the key or option.
    """
    source = str(args.config) if getattr(args, "config", None) else ""
    values = parse(read_toml(args.config)) if source else {"staff_file": str(DEFAULT_STAFF_FILE)}
    options = {
        "mqtt_host": args.mqtt_host,
        "mqtt_port": args.mqtt_port,
        "username": args.username,
        "password_file": args.password_file,
        "tls_ca": args.tls_ca,
        "tls_cert": args.tls_cert,
        "tls_key": args.tls_key,
        "prefix": args.prefix,
        "http_host": args.http_host,
        "http_port": args.http_port,
        "staff_file": args.staff_file,
        "stale_after": args.stale_after,
        "allowed_hosts": tuple(args.allowed_hosts) if args.allowed_hosts else None,
    }
    for option, value, problem in (
        (
            "--mqtt-port",
            args.mqtt_port,
            args.mqtt_port is not None and not 1 <= args.mqtt_port <= 65535,
        ),
        (
            "--http-port",
            args.http_port,
            args.http_port is not None and not 0 <= args.http_port <= 65535,
        ),
        (
            "--stale-after",
            args.stale_after,
            args.stale_after is not None
            and not (math.isfinite(args.stale_after) and args.stale_after > 0),
        ),
    ):
        if problem:
            raise ConfigError(option, f"{value} is out of range")
    if args.prefix is not None:
        try:
            options["prefix"] = validate_prefix(args.prefix)
        except TopicError:
            raise ConfigError("--prefix", f"{args.prefix!r} is not a usable topic prefix") from None
    for name in args.allowed_hosts or ():
        host_problem = _host_name(name)
        if host_problem:
            raise ConfigError("--allowed-host", host_problem)
    given = {k: str(v) if isinstance(v, Path) else v for k, v in options.items() if v is not None}
    return finish({**values, **given}, source=source, from_options=frozenset(given))


_FIELD_OF_OPTION = {
    "--password-file": "password_file",
    "--username": "username",
    "--tls-ca": "tls_ca",
    "--tls-cert": "tls_cert",
    "--tls-key": "tls_key",
    "--http-tls-cert": "http_tls_cert",
    "--max-stations": "max_stations",
    "--session-idle-s": "session_idle_s",
}


def run_from_args(args: argparse.Namespace) -> int:
    """``gym-monitor display``: the server and its dependencies are imported only now."""
    try:
        from .service import run_from_args as run
    except ImportError as err:
        print(
            f"gym display: needs the display extra ({err.name} is missing): "
            "pip install 'gym-tremor-monitor[display]'",
            file=sys.stderr,
            flush=True,
        )
        return 2
    return run(args)
