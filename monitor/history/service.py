"""The history service: store, ingest, retention job and pages, started and stopped together.

``gym-monitor history`` runs it (systemd/gym-history.service); tests start it
in process::

    service = HistoryService(load("history.toml"))
    url = service.start()        # migrates, subscribes, serves the pages
    ...
    service.stop()               # stores and acknowledges what arrived, then disconnects

The same object carries out the staff actions that touch both the database and
the broker (a display name, forgetting an athlete), so the pages and the
command line do them one way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import asdict
from typing import Any, Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ..errors import ConfigError, MonitorError
from ..mqtt import messages
from ..mqtt.publisher import read_password_file
from .config import HistoryConfig
from .ingest import Ingest, TopicMap
from .store import HistoryStore

log = logging.getLogger(__name__)


def open_store(config: HistoryConfig) -> HistoryStore:
    """The configured store (its state directory made for SQLite); not yet migrated."""
    if not config.database:
        try:
            config.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(
                "history.state_dir", f"cannot create {config.state_dir}: {err.strerror or err}"
            ) from None
    return HistoryStore(config.database_url, gym=config.gym)


class HistoryService:
    """Everything of the history service in one process."""

    def __init__(
        self, config: HistoryConfig, *, reconnect_min_s: float = 1.0, reconnect_max_s: float = 10.0
    ):
        self.config = config
        self.store = open_store(config)
        self.ingest = Ingest(
            config, self.store, reconnect_min_s=reconnect_min_s, reconnect_max_s=reconnect_max_s
        )
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: Any = None
        self._renderer: Any = None
        self.url: str | None = None
        self.last_prune: dict[str, int] | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> str | None:
        """Migrate, subscribe, start the retention job and the pages; the pages' URL."""
        try:
            revision = self.store.migrate()
        except Exception as err:
            raise MonitorError(
                f"cannot open the history database "
                f"({self.store.engine.url.render_as_string(hide_password=True)}): "
                f"{err}"
            ) from None
        log.info("history database at revision %s (%s)", revision, self.store.dialect)
        self.ingest.start()
        self._spawn("history-retention", self._retention)
        if self.config.web.enabled:
            self.url = self._start_web()
        return self.url

    def _spawn(self, name: str, target: Any) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _start_web(self) -> str:
        from .render import Renderer
        from .web import HistoryWeb, serve

        self._renderer = Renderer(self.store, self.config.web.render_workers)
        web_app = HistoryWeb(
            self.store, self, self.config.web, stats=self.stats, renderer=self._renderer
        )
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()
        self._loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._runner = loop.run_until_complete(
                    serve(web_app.build(), self.config.web.host, self.config.web.port)
                )
            except BaseException as err:
                failure.append(err)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            if web_app.auth is not None:
                web_app.auth.close()
            loop.close()

        self._spawn("history-web", run)
        ready.wait(30)
        if failure:
            raise MonitorError(
                f"cannot serve the pages on {self.config.web.host}:"
                f"{self.config.web.port}: {failure[0]}"
            )
        sockets = [s for site in self._runner.sites for s in site._server.sockets]
        host, port = sockets[0].getsockname()[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/"

    def stop(self) -> None:
        self._stop.set()
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self.ingest.stop()
        for thread in self._threads:
            thread.join(timeout=10)
        if self._renderer is not None:
            self._renderer.close()
        self.store.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ jobs

    def _retention(self) -> None:
        r = self.config.retention
        while not self._stop.wait(
            min(5.0, r.interval_s) if self.last_prune is None else r.interval_s
        ):
            try:
                self.last_prune = self.store.prune(
                    trace_days=r.trace_days, records_months=r.records_months
                )
                if any(self.last_prune.values()):
                    log.info(
                        "retention: deleted %s", {k: v for k, v in self.last_prune.items() if v}
                    )
            except Exception:
                log.exception("retention job failed; trying again next time")

    def stats(self) -> dict[str, Any]:
        return {**asdict(self.ingest.stats()), "database": self.store.dialect}

    # ------------------------------------------------------------------ staff actions

    def set_display_name(self, gym: str, athlete: str, name: str) -> None:
        self.store.set_card(gym, athlete, name)
        self.ingest.publish_card(gym, athlete, name)

    def forget(self, gym: str, athlete: str) -> dict[str, int]:
        counts = self.store.forget(gym, athlete)
        self.ingest.clear_athlete(gym, athlete)
        return counts


# --------------------------------------------------------------------------- offline actions


def publish_once(
    config: HistoryConfig, messages: list[tuple[str, bytes]], timeout: float = 10.0
) -> None:
    """Publish retained QoS 1 messages with a short-lived client (the command line's way).

    Its own client id, so the service's persistent session is left alone.
    """
    m = config.mqtt
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"{m.client_id}-cli-{os.getpid()}",
        protocol=mqtt.MQTTv5 if m.protocol == "v5" else mqtt.MQTTv311,
    )
    if m.username:
        client.username_pw_set(
            m.username, read_password_file(m.password_file) if m.password_file else None
        )
    if m.tls_ca:
        client.tls_set(ca_certs=m.tls_ca)
    try:
        client.connect(m.host, m.port, keepalive=30)
    except OSError as err:
        raise MonitorError(f"cannot reach the broker at {m.host}:{m.port}: {err}") from None
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=1, retain=True) for topic, payload in messages]
        deadline = time.monotonic() + timeout
        for info in infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            if not info.is_published():
                raise MonitorError("the broker did not confirm the retained messages")
    finally:
        client.disconnect()
        client.loop_stop()


def forget_offline(config: HistoryConfig, athlete: str, gym: str | None = None) -> dict[str, int]:
    """``gym-monitor history forget``: the rows, then the broker's retained profile and card."""
    store = open_store(config)
    try:
        store.migrate()
        counts = store.forget(gym or config.gym, athlete)
    finally:
        store.close()
    if config.publish_profiles and not config.mqtt.chain_prefix:
        topics = TopicMap(config.mqtt.prefix, config.gym)
        publish_once(
            config, [(topics.profile_topic(athlete), b""), (topics.card_topic(athlete), b"")]
        )
    return counts


def name_offline(config: HistoryConfig, athlete: str, display_name: str) -> None:
    store = open_store(config)
    try:
        store.migrate()
        store.set_card(config.gym, athlete, display_name)
    finally:
        store.close()
    topics = TopicMap(config.mqtt.prefix, config.gym)
    publish_once(
        config,
        [
            (
                topics.card_topic(athlete),
                messages.Card(athlete=athlete, display_name=display_name).to_json(),
            )
        ],
    )


# --------------------------------------------------------------------------- running it


def _notify(message: str) -> None:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message.encode(), address)
    except OSError as err:
        log.debug("sd_notify failed: %s", err)


def run_history(config: HistoryConfig) -> int:
    """Run until SIGTERM or SIGINT; print the pages' URL once serving."""
    service = HistoryService(config)
    service.start()
    print(service.url or "history service running (no pages)", flush=True)
    _notify("READY=1")
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        while not stop.wait(1.0):
            pass
    finally:
        _notify("STOPPING=1")
        service.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: gym-monitor history")
