"""The wall display service: MQTT in, a live web page out, staff acknowledge.

:class:`DisplayService` wires the parts together and runs them on one asyncio
event loop in a thread of its own (paho keeps its own network thread, argon2
checks a small pool): the board (:mod:`.state`), the broker link
(:mod:`.link`), the web application (:mod:`.web`) with its guards and logins
(:mod:`.guards`, :mod:`.auth`, :mod:`.staff`). Tests start it in process;
:func:`run_display` runs it until SIGTERM/SIGINT and :func:`main` is the
command line (``gym-monitor display`` / ``python -m monitor.display``)::

    service = DisplayService(DisplayConfig(mqtt_port=1883, http_port=0))
    url = service.start()          # "http://127.0.0.1:43127/"
    ...
    service.stop()
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import logging
import resource
import signal
import ssl
import sys
import threading
from collections.abc import Callable
from typing import Any, Self, TypeVar

from aiohttp import web

from ..clock import Clock, RealClock
from ..errors import ConfigError
from ..notify import SystemdNotifier
from .auth import StaffAuth
from .config import (
    DESCRIPTION,
    DisplayConfig,
    add_arguments,
    build_parser,
    config_from_args,
)
from .link import Message, MqttLink
from .staff import StaffDirectory
from .state import Board
from .web import DisplayApp, Streams

__all__ = [
    "DESCRIPTION",
    "DisplayConfig",
    "DisplayService",
    "add_arguments",
    "build_parser",
    "config_from_args",
    "main",
    "run_display",
    "run_from_args",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


class DisplayService:
    """The whole display: broker link, board, ticker, web server, on one event loop."""

    def __init__(self, config: DisplayConfig, *, clock: Clock | None = None):
        self.config = config
        self.board = Board(
            config.prefix,
            stale_after=config.stale_after,
            clock=clock or RealClock(),
            history_s=config.spark_history_s,
            bucket_s=config.spark_bucket_s,
            max_stations=config.max_stations,
            known=config.stations,
            evict_after=config.evict_after_s or None,
            ack_timeout=config.ack_timeout_s,
        )
        self.staff = StaffDirectory(config.staff_file)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.mqtt: MqttLink | None = None
        self.streams: Streams | None = None
        self.auth: StaffAuth | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._port: int | None = None
        self._scheme = "https" if config.http_tls_cert else "http"

    # ------------------------------------------------------------ from other threads

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("not started")
        return self._port

    @property
    def url(self) -> str:
        host = self.config.http_host
        if host in ("0.0.0.0", "", "::"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"{self._scheme}://{host}:{self.port}/"

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the display's loop and return its result (for tests, tools)."""
        assert self.loop is not None

        async def run() -> T:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def start(self) -> str:
        """Bind the web server, connect to the broker; return the URL once serving.

        Raises OSError when the address cannot be bound.
        """
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name="display-loop", daemon=True
        )
        self._thread.start()
        started.result(timeout=30)
        return self.url

    def stop(self) -> None:
        if self.loop is None or self._thread is None:
            return
        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(15)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ on the loop

    def _run(self, started: concurrent.futures.Future[None]) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except BaseException as err:
            started.set_exception(err)
            loop.run_until_complete(self._shutdown())
            loop.close()
            return
        started.set_result(None)
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _startup(self) -> None:
        loop = asyncio.get_running_loop()
        cfg = self.config
        self.streams = Streams(self.board, cfg)
        self.auth = StaffAuth(cfg, self.staff)
        self.mqtt = MqttLink(cfg, loop, on_messages=self._on_messages, on_link=self._on_link)
        app = DisplayApp(cfg, self.board, self.mqtt, self.auth, self.streams).build()
        self._runner = web.AppRunner(
            app,
            access_log=None,
            keepalive_timeout=cfg.idle_timeout_s,
            shutdown_timeout=2.0,
            handle_signals=False,
        )
        await self._runner.setup()
        ssl_context = None
        if cfg.http_tls_cert:
            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_context.load_cert_chain(cfg.http_tls_cert, cfg.http_tls_key)
        site = web.TCPSite(
            self._runner,
            cfg.http_host or None,
            cfg.http_port,
            ssl_context=ssl_context,
            reuse_address=True,
            backlog=512,
        )
        await site.start()
        server = getattr(site, "_server", None)
        sockets = server.sockets if server is not None else []
        self._port = sockets[0].getsockname()[1] if sockets else cfg.http_port
        self.streams.start()
        self._ticker = loop.create_task(self._tick(), name="ticker")
        self.mqtt.start()
        log.info(
            "serving on %s (hosts: %s%s; %d staff account(s))",
            self.url,
            ", ".join(sorted(cfg.host_names())),
            " and IP addresses" if cfg.allow_ip_hosts else "",
            self.staff.count,
        )

    async def _shutdown(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        if self.streams is not None:
            await self.streams.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.mqtt is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.mqtt.stop)
        if self.auth is not None:
            self.auth.close()

    def _on_messages(self, batch: list[Message]) -> None:
        changed = False
        for topic, payload, retained in batch:
            if self.board.handle(topic, payload, retained=retained) is not None:
                changed = True
        if changed and self.streams is not None:
            self.streams.changed()

    def _on_link(self, up: bool) -> None:
        if self.board.set_link(up) and self.streams is not None:
            self.streams.changed()

    async def _tick(self) -> None:
        # Staleness, waiting acks and eviction are about time passing without
        # messages, so something has to look at the clock even when nothing arrives.
        interval = min(1.0, self.config.stale_after / 4, self.config.ack_timeout_s / 4)
        while True:
            await asyncio.sleep(interval)
            try:
                if self.board.refresh() and self.streams is not None:
                    self.streams.changed()
            except Exception:  # a bug must not stop the ticker
                log.exception("board refresh failed")


# --------------------------------------------------------------------------- process


def _enough_file_descriptors(config: DisplayConfig) -> None:
    """Each open page is a socket: lift the soft limit so max_streams pages fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = config.max_streams + 256
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        except (ValueError, OSError) as err:
            log.warning("cannot raise the open-file limit to %d: %s", new, err)
        if new < want:
            log.warning("open-file limit %d is below max_streams + 256 = %d", new, want)


def run_display(config: DisplayConfig) -> int:
    """Run the display until SIGTERM or SIGINT; print its URL once serving."""
    _enough_file_descriptors(config)
    service = DisplayService(config)
    try:
        url = service.start()
    except OSError as err:
        print(
            f"gym display: cannot serve on {config.http_host}:{config.http_port}: "
            f"{err.strerror or err}",
            file=sys.stderr,
            flush=True,
        )
        return 1
    except ssl.SSLError as err:
        print(
            f"gym display: http.tls_cert/tls_key: cannot be used: {err}",
            file=sys.stderr,
            flush=True,
        )
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    # The handlers before READY and the URL: a SIGTERM sent as soon as the display says it is
    # up must stop it cleanly, not kill it.
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    print(url, flush=True)
    notifier = SystemdNotifier()  # Type=notify: systemd calls the display started now
    notifier.ready()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        notifier.stopping()
        service.stop()
        notifier.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def run_from_args(args: argparse.Namespace) -> int:
    """Run with parsed options; a bad option or file is one line on stderr and exit status 2."""
    try:
        config = config_from_args(args)
    except ConfigError as err:
        source = str(args.config) if getattr(args, "config", None) else ""
        text = str(err)
        prefix = (
            f"{source}: "
            if source and not text.startswith(source) and not text.startswith("--")
            else ""
        )
        print(f"gym display: {prefix}{text}", file=sys.stderr, flush=True)
        return 2
    # force: under `gym-monitor display` the main CLI has configured logging already.
    logging.basicConfig(
        level=args.log_level, format="%(levelname)s %(name)s: %(message)s", force=True
    )
    return run_display(config)


def main(argv: list[str] | None = None) -> int:
    """``gym-monitor display [options]`` / ``python -m monitor.display``; the exit status."""
    return run_from_args(build_parser().parse_args(argv))
