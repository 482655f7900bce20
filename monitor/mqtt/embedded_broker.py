"""A broker for the demo: amqtt in a background thread, anonymous, on loopback only.

A gym runs Mosquitto (config/mosquitto/); this exists so that the demo needs
nothing installed. It listens on 127.0.0.1 only, so anonymous access never
reaches the network::

    with EmbeddedBroker(port=1883) as broker:
        ...  # stations and the display connect to 127.0.0.1:1883
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import threading
import warnings
from typing import Any

from ..errors import MonitorError


class BrokerUnavailable(MonitorError, RuntimeError):
    """The embedded broker cannot start (the port is taken, or amqtt is missing)."""


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as err:
            return err.errno == errno.EADDRINUSE
    return False


#: amqtt's names for "send this session the retained messages that match this filter"
#: (0.12 made it private).
_RETAINED_FOR_SUBSCRIPTION = (
    "_publish_retained_messages_for_subscription",
    "publish_retained_messages_for_subscription",
)


def _broker_class():
    """amqtt's Broker, sending retained messages only to sessions whose subscriptions match.

    amqtt (0.12.1 and before) sends a client that connects the retained messages
    matching *every* filter any session on the broker has subscribed to, not just
    its own: a display subscribed to one station would be handed every other
    station's state, and a client subscribed to nothing gets them all. The wrapper
    keeps the broker's own step but lets it through only for a filter this session
    holds, which is what MQTT asks (retained messages go to matching subscriptions).
    """
    from amqtt.broker import Broker

    name = next((n for n in _RETAINED_FOR_SUBSCRIPTION if hasattr(Broker, n)), None)
    if name is None:
        raise BrokerUnavailable(
            "this amqtt version is not one the demo's broker knows "
            "(pip install 'amqtt>=0.11'), or use --broker HOST:PORT"
        )
    original = getattr(Broker, name)

    async def only_own_subscriptions(self, subscription, session):
        holders = self._subscriptions.get(subscription[0], ())
        if any(held.client_id == session.client_id for held, _qos in holders):
            await original(self, subscription, session)

    return type("FilteredRetainBroker", (Broker,), {name: only_own_subscriptions})


class EmbeddedBroker:
    """See the module docstring. ``port=0`` picks a free port."""

    def __init__(self, port: int = 1883, host: str = "127.0.0.1"):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the embedded broker is anonymous, so it listens on loopback only")
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker: Any = None  # amqtt's Broker (amqtt ships no type information)
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> EmbeddedBroker:
        try:
            Broker = _broker_class()
        except ImportError:
            raise BrokerUnavailable(
                "the demo's broker needs amqtt: pip install 'gym-tremor-monitor[demo]', "
                "or point the demo at Mosquitto with --broker HOST:PORT"
            ) from None
        if self.port == 0:
            with socket.socket() as s:
                s.bind((self.host, 0))
                self.port = s.getsockname()[1]
        elif port_in_use(self.host, self.port):
            raise BrokerUnavailable(
                f"port {self.port} on {self.host} is taken: if that is Mosquitto, run the demo "
                f"with --broker {self.host}:{self.port}; otherwise free the port or pick another "
                "with --broker-port"
            )
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.ERROR)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "auth": {"allow-anonymous": True, "plugins": ["auth_anonymous"]},
            "topic-check": {"enabled": False},
        }
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    broker = self._broker = Broker(config, loop=loop)
                loop.run_until_complete(broker.start())
            except BaseException as err:  # reported to start()'s caller
                failure.append(err)
                ready.set()
                return
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="embedded-broker", daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or failure:
            raise BrokerUnavailable(
                f"the embedded broker did not start: {failure[0] if failure else 'timed out'}"
            )
        return self

    def stop(self) -> None:
        if self._loop is None or self._broker is None:
            return
        with contextlib.suppress(Exception):  # already stopping; nothing left to save
            asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._loop = self._broker = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
