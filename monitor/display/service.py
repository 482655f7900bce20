"""The wall display service: MQTT in, a live web page out.

Three parts, each a small class:

* :class:`LiveBoard` -- the :class:`~monitor.display.state.Board` behind one
  lock, plus a condition variable so page streams wake when something changes;
* :class:`MqttLink` -- a paho-mqtt 2.x client that subscribes to
  ``<prefix>/#`` (in ``on_connect``, so a reconnect restores it), feeds the
  board, and publishes the one thing the display ever writes: ``cmd/ack``;
* :class:`DisplayHttpServer` -- stdlib ``ThreadingHTTPServer`` serving the page,
  ``/api/state`` (a JSON snapshot), ``/events`` (Server-Sent Events: a full
  snapshot, then coalesced updates) and ``POST /api/ack``.

:class:`DisplayService` wires them together and is what tests start in
process; :func:`run_display` runs it until SIGTERM/SIGINT and :func:`main` is
the command line (``gym-monitor display`` / ``python -m monitor.display``)::

    service = DisplayService(DisplayConfig(mqtt_port=1883, http_host="127.0.0.1",
                                           http_port=0))
    url = service.start()          # "http://127.0.0.1:43127/"
    ...
    service.stop()
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import ssl
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ..clock import Clock, RealClock
from ..errors import ConfigError, MonitorError
from .state import Board

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}

# Everything comes from this server; nothing inline, nothing from elsewhere.
# (Styles set through the CSSOM, e.g. element.style.setProperty, are allowed by
# style-src 'self'; only style attributes written as markup would need 'unsafe-inline'.)
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
MAX_ACK_BODY = 4096


@dataclass(frozen=True)
class DisplayConfig:
    """How to reach the broker and where to serve the page.

    The password is a value here, never an option: :func:`parse_args` reads it
    from ``--password-file`` so it does not show in ``ps`` or shell history.
    """

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls_ca: str | None = None
    prefix: str = "gym"
    http_host: str = "0.0.0.0"
    http_port: int = 8080
    stale_after: float = 30.0
    # Not on the command line: tests shorten them so a broker restart is quick.
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 10.0
    # At most ~10 pushes per second per page: enough for the eye, light on a Pi.
    push_interval_s: float = 0.1
    keepalive_s: float = 15.0
    # Sparkline: minutes of history in small buckets (tests shrink both).
    spark_history_s: float = 300.0
    spark_bucket_s: float = 2.0


# --------------------------------------------------------------------------- shared state


class LiveBoard:
    """A :class:`Board` shared between the MQTT thread and the HTTP threads.

    Writers call :meth:`ingest` / :meth:`refresh`; each page stream waits in
    :meth:`wait_for_change` and then takes :meth:`changes_since` its last seq.
    """

    def __init__(self, board: Board):
        self._board = board
        self._cond = threading.Condition()
        self.closing = False

    def ingest(self, topic: str, payload: bytes) -> None:
        with self._cond:
            if self._board.handle(topic, payload) is not None:
                self._cond.notify_all()

    def refresh(self) -> None:
        with self._cond:
            if self._board.refresh():
                self._cond.notify_all()

    def set_link(self, up: bool) -> None:
        with self._cond:
            if self._board.set_link(up):
                self._cond.notify_all()

    def note_ack(self, station: str, alert_id: str) -> None:
        with self._cond:
            if self._board.note_ack(station, alert_id):
                self._cond.notify_all()

    def is_active(self, station: str, alert_id: str) -> bool:
        with self._cond:
            return self._board.is_active(station, alert_id)

    def snapshot(self) -> dict[str, Any]:
        with self._cond:
            return self._board.snapshot()

    def changes_since(self, seq: int) -> dict[str, Any]:
        with self._cond:
            return self._board.changes_since(seq)

    def wait_for_change(self, seq: int, timeout: float) -> bool:
        """Block until the board moved past ``seq`` (True) or ``timeout`` passed."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self.closing or self._board.seq > seq, timeout=timeout
            ) and not self.closing

    def pause(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` unless shutting down; True if shutting down."""
        with self._cond:
            return self._cond.wait_for(lambda: self.closing, timeout=seconds)

    def close(self) -> None:
        with self._cond:
            self.closing = True
            self._cond.notify_all()


# --------------------------------------------------------------------------- MQTT


class AckError(MonitorError):
    """An acknowledgement could not be sent; ``status`` is the HTTP answer."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


class MqttLink:
    """The display's MQTT client: subscribe to everything under the prefix.

    Malformed messages are the board's problem and never reach paho; an
    unexpected error in the callback is logged rather than allowed to stop
    paho's network loop.
    """

    def __init__(self, config: DisplayConfig, live: LiveBoard):
        self.config = config
        self.live = live
        self.prefix = config.prefix.strip("/")
        client_id = f"gym-display-{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        if config.username:
            self.client.username_pw_set(config.username, config.password)
        if config.tls_ca:
            self.client.tls_set(ca_certs=config.tls_ca, cert_reqs=ssl.CERT_REQUIRED)
        self.client.reconnect_delay_set(
            min_delay=max(1, round(config.reconnect_min_s)),
            max_delay=max(1, round(config.reconnect_max_s)),
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self._connected = threading.Event()
        self._stopping = False

    def start(self) -> None:
        # connect_async + loop_start: the display comes up (and says "broker
        # offline") even when the broker is not there yet; paho keeps retrying.
        self.client.connect_async(self.config.mqtt_host, self.config.mqtt_port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("broker refused the connection: %s", reason_code)
            return
        log.info("connected to %s:%s", self.config.mqtt_host, self.config.mqtt_port)
        client.subscribe(f"{self.prefix}/#", qos=1)
        self._connected.set()
        self.live.set_link(True)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self._connected.is_set() and not self._stopping:
            log.warning("lost the broker (%s); reconnecting", reason_code)
        self._connected.clear()
        self.live.set_link(False)

    def _on_message(self, client, userdata, message) -> None:
        try:
            self.live.ingest(message.topic, message.payload)
        except Exception:  # a bug must not stop the network loop
            log.exception("error handling %r", message.topic)

    def send_ack(self, station: str, alert_id: str, timeout: float = 3.0) -> None:
        """Publish ``<prefix>/<station>/cmd/ack`` (QoS 1) and wait for the broker."""
        if not self.connected:
            raise AckError(HTTPStatus.SERVICE_UNAVAILABLE, "broker not connected")
        payload = json.dumps({"v": 1, "id": alert_id, "by": "display"})
        info = self.client.publish(f"{self.prefix}/{station}/cmd/ack", payload, qos=1)
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError) as err:
            raise AckError(HTTPStatus.SERVICE_UNAVAILABLE, str(err)) from None
        if not info.is_published():
            raise AckError(HTTPStatus.GATEWAY_TIMEOUT, "broker did not confirm the ack")


# --------------------------------------------------------------------------- HTTP


def _load_static() -> dict[str, tuple[bytes, str]]:
    """Read the page's few files once; the page is tiny and never changes at runtime."""
    return {
        route: ((STATIC_DIR / name).read_bytes(), ctype)
        for route, (name, ctype) in STATIC_FILES.items()
    }


class DisplayHttpServer(ThreadingHTTPServer):
    """The page's server. One thread per connection; each open page holds one."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], live: LiveBoard, config: DisplayConfig,
                 send_ack: Callable[[str, str], None]):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.live = live
        self.config = config
        self.send_ack = send_ack
        self.static = _load_static()


class _Handler(BaseHTTPRequestHandler):
    server: DisplayHttpServer
    protocol_version = "HTTP/1.1"

    def version_string(self) -> str:
        return "gym-display"

    # ------------------------------------------------------------ plumbing

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: HTTPStatus, body: bytes, ctype: str, *,
              cache: str = "no-store") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: HTTPStatus, obj: Any) -> None:
        self._send(status, json.dumps(obj, separators=(",", ":")).encode(),
                   "application/json; charset=utf-8")

    def _error(self, status: HTTPStatus, message: str) -> None:
        self._json(status, {"ok": False, "error": message})

    # ------------------------------------------------------------ routes

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path in self.server.static:
            body, ctype = self.server.static[path]
            self._send(HTTPStatus.OK, body, ctype, cache="no-cache")
        elif path == "/api/state":
            self._json(HTTPStatus.OK, self.server.live.snapshot())
        elif path == "/events":
            self._stream()
        elif path == "/healthz":
            self._json(HTTPStatus.OK, {"ok": True})
        else:
            self._error(HTTPStatus.NOT_FOUND, "not found")

    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/api/ack":
            self._error(HTTPStatus.NOT_FOUND, "not found")
            return
        try:
            station, alert_id = self._read_ack()
            if not self.server.live.is_active(station, alert_id):
                raise AckError(HTTPStatus.NOT_FOUND, "no such active alert on that station")
            self.server.send_ack(station, alert_id)
        except AckError as err:
            self._error(err.status, str(err))
            return
        self.server.live.note_ack(station, alert_id)
        log.info("acknowledged %s on %s from %s", alert_id, station, self.address_string())
        self._json(HTTPStatus.OK, {"ok": True})

    def _read_ack(self) -> tuple[str, str]:
        # A JSON content type cannot be sent cross-site without a CORS preflight,
        # which this server never grants: another web page cannot ack for staff.
        if not self.headers.get("Content-Type", "").startswith("application/json"):
            raise AckError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send application/json")
        origin = self.headers.get("Origin")
        if origin and urlsplit(origin).netloc != self.headers.get("Host"):
            raise AckError(HTTPStatus.FORBIDDEN, "cross-origin request refused")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise AckError(HTTPStatus.LENGTH_REQUIRED, "Content-Length required") from None
        if not 0 < length <= MAX_ACK_BODY:
            raise AckError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large or empty")
        try:
            body = json.loads(self.rfile.read(length))
        except ValueError:
            raise AckError(HTTPStatus.BAD_REQUEST, "body is not JSON") from None
        station = body.get("station") if isinstance(body, dict) else None
        alert_id = body.get("id") if isinstance(body, dict) else None
        if not (isinstance(station, str) and isinstance(alert_id, str) and station and alert_id):
            raise AckError(HTTPStatus.BAD_REQUEST, "need {\"station\": str, \"id\": str}")
        return station, alert_id

    # ------------------------------------------------------------ the live stream

    def _stream(self) -> None:
        """Server-Sent Events: a full snapshot, then coalesced updates.

        Each (re)connection starts with a snapshot, so a page that lost the
        stream for a while is whole again without a reload. Updates wait for a
        change, then at most until ``push_interval_s`` after the previous push,
        and carry every station that changed meanwhile.
        """
        live, cfg = self.server.live, self.server.config
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.send_header("X-Accel-Buffering", "no")  # should a proxy sit in front
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        self.close_connection = True
        try:
            snapshot = live.snapshot()
            seq = snapshot["seq"]
            self._event("snapshot", snapshot, retry_ms=1000)
            last_push = time.monotonic()
            while not live.closing:
                if not live.wait_for_change(seq, cfg.keepalive_s):
                    if live.closing:
                        break
                    # An event, not a comment: the page's watchdog sees it and knows
                    # the stream is alive; writing also detects a client that left.
                    self._event("ping", {"now": time.time()})
                    continue
                delay = last_push + cfg.push_interval_s - time.monotonic()
                if delay > 0 and live.pause(delay):
                    break
                update = live.changes_since(seq)
                seq = update["seq"]
                self._event("update", update)
                last_push = time.monotonic()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the page went away; EventSource will come back if it can

    def _event(self, name: str, data: Any, retry_ms: int | None = None) -> None:
        text = json.dumps(data, separators=(",", ":"))  # one line: no "\n" inside
        head = f"retry: {retry_ms}\n" if retry_ms else ""
        self.wfile.write(f"{head}event: {name}\ndata: {text}\n\n".encode())


# --------------------------------------------------------------------------- service


class _SystemdNotifier:
    """Tell systemd we are ready (Type=notify); a no-op when NOTIFY_SOCKET is unset."""

    def __init__(self) -> None:
        self.address = os.environ.get("NOTIFY_SOCKET")

    def notify(self, message: str) -> None:
        if not self.address:
            return
        address = self.address
        if address.startswith("@"):  # abstract namespace socket
            address = "\0" + address[1:]
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message.encode(), address)
        except OSError as err:
            log.debug("sd_notify failed: %s", err)


class DisplayService:
    """The whole display: broker link, board, staleness ticker, web server."""

    def __init__(self, config: DisplayConfig, *, clock: Clock | None = None):
        self.config = config
        self.board = Board(config.prefix, stale_after=config.stale_after,
                           clock=clock or RealClock(), history_s=config.spark_history_s,
                           bucket_s=config.spark_bucket_s)
        self.live = LiveBoard(self.board)
        self.mqtt = MqttLink(config, self.live)
        self.http: DisplayHttpServer | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    @property
    def url(self) -> str:
        if self.http is None:
            raise RuntimeError("not started")
        host, port = self.http.server_address[:2]
        if ":" in str(host):
            host = f"[{host}]"
        return f"http://{host}:{port}/"

    def start(self) -> str:
        """Bind the web server, connect to the broker, start threads; return the URL."""
        self.http = DisplayHttpServer((self.config.http_host, self.config.http_port),
                                      self.live, self.config, self.mqtt.send_ack)
        self.mqtt.start()
        self._spawn("display-http", self.http.serve_forever)
        self._spawn("display-stale", self._tick)
        return self.url

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _tick(self) -> None:
        # Staleness is about time passing without messages, so something has to
        # look at the clock even when nothing arrives.
        interval = min(1.0, self.config.stale_after / 4)
        while not self._stop.wait(interval):
            self.live.refresh()

    def stop(self) -> None:
        self._stop.set()
        self.live.close()  # wakes every page stream so its thread ends
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()
        self.mqtt.stop()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_display(config: DisplayConfig) -> int:
    """Run the display until SIGTERM or SIGINT; print its URL once serving."""
    service = DisplayService(config)
    try:
        url = service.start()
    except OSError as err:
        print(f"gym display: cannot serve on {config.http_host}:{config.http_port}: {err}",
              file=sys.stderr, flush=True)
        return 1
    print(url, flush=True)
    notifier = _SystemdNotifier()
    notifier.notify("READY=1")
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stop.wait(1.0):
            pass
    finally:
        notifier.notify("STOPPING=1")
        service.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


# --------------------------------------------------------------------------- command line


DESCRIPTION = ("Serve the gym wall display: subscribe to the stations over MQTT and show "
               "them live on a web page.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The display's options, for its own parser or a ``display`` subcommand's."""
    p.add_argument("--mqtt-host", default="127.0.0.1", help="broker host (127.0.0.1)")
    p.add_argument("--mqtt-port", type=int, default=1883, help="broker port (1883)")
    p.add_argument("--username", help="broker user name")
    p.add_argument("--password-file", type=Path,
                   help="file holding the broker password (never give it on the command line)")
    p.add_argument("--tls-ca", type=Path, help="CA certificate: connect with TLS and verify")
    p.add_argument("--prefix", default="gym", help="topic prefix (gym)")
    p.add_argument("--http-host", default="0.0.0.0",
                   help="address to serve the page on (0.0.0.0: every interface)")
    p.add_argument("--http-port", type=int, default=8080, help="HTTP port (8080; 0 = any free)")
    p.add_argument("--stale-after", type=float, default=30.0,
                   help="seconds without data before a station shows as stale (30)")
    p.add_argument("--log-level", default="INFO",
                   choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="log level (INFO)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gym-monitor display", description=DESCRIPTION)
    add_arguments(p)
    return p


def config_from_args(args: argparse.Namespace) -> DisplayConfig:
    """Turn parsed options into a :class:`DisplayConfig`.

    Raises :class:`~monitor.errors.ConfigError` naming the option for a value
    that parses but cannot work (an unreadable password file, a bad port).
    """
    password = None
    if args.password_file is not None:
        try:
            password = args.password_file.read_text(encoding="utf-8").strip("\r\n")
        except OSError as err:
            raise ConfigError("--password-file", f"cannot read {args.password_file}: "
                              f"{err.strerror or err}") from None
        if not password:
            raise ConfigError("--password-file", f"{args.password_file} is empty")
        if not args.username:
            raise ConfigError("--username", "is required with --password-file")
    if args.tls_ca is not None and not args.tls_ca.is_file():
        raise ConfigError("--tls-ca", f"{args.tls_ca} is not a readable file")
    for key, port, low in (("--mqtt-port", args.mqtt_port, 1), ("--http-port", args.http_port, 0)):
        if not low <= port <= 65535:
            raise ConfigError(key, f"{port} is not a port number")
    if not args.stale_after > 0:
        raise ConfigError("--stale-after", "must be a positive number of seconds")
    prefix = args.prefix.strip("/")
    if not prefix or any(c in prefix for c in "+#"):
        raise ConfigError("--prefix", f"{args.prefix!r} is not a usable topic prefix")
    return DisplayConfig(
        mqtt_host=args.mqtt_host, mqtt_port=args.mqtt_port, username=args.username,
        password=password, tls_ca=str(args.tls_ca) if args.tls_ca else None, prefix=prefix,
        http_host=args.http_host, http_port=args.http_port, stale_after=args.stale_after,
    )


def run_from_args(args: argparse.Namespace) -> int:
    """Run with parsed options; a bad option is one line on stderr and exit status 2."""
    try:
        config = config_from_args(args)
    except ConfigError as err:
        print(f"gym display: {err}", file=sys.stderr, flush=True)
        return 2
    # force: under `gym-monitor display` the main CLI has configured logging already.
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s",
                        force=True)
    return run_display(config)


def main(argv: list[str] | None = None) -> int:
    """``gym-monitor display [options]`` / ``python -m monitor.display``; the exit status."""
    return run_from_args(build_parser().parse_args(argv))
