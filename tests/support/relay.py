"""A TCP relay between clients and a server, that a test or a benchmark can cut.

Stations reach the broker through it (its :attr:`Relay.port`, not the broker's), so the
network between them can fail the ways a gym's does while the broker itself stays up.
"""

from __future__ import annotations

import contextlib
import queue
import selectors
import socket
import struct
import threading

from .net import free_port


def _reset(sock: socket.socket) -> None:
    """Close with a TCP RST, as a dead route or a restarted NAT does, not a polite FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class Relay:
    """The network between the stations and the broker: a TCP relay that can be cut.

    Modes: ``up`` relays bytes both ways; ``refused`` closes the listening socket
    and resets every connection, so connecting fails at once (a port without a
    listener); ``blackhole`` keeps every TCP connection open and accepts new ones
    but relays nothing, the way a dead Wi-Fi link looks to both ends, so only MQTT
    keepalive can tell. Leaving a blackhole resets the frozen connections, as a
    NAT that forgot them would. One thread does all the relaying::

        relay = Relay(broker.port)        # stations connect to relay.port
        relay.set_mode("refused"); ...; relay.set_mode("up")
    """

    host = "127.0.0.1"

    def __init__(self, upstream_port: int):
        self.upstream = (self.host, upstream_port)
        self.port = free_port(self.host)
        self.mode = "up"
        self._sel = selectors.DefaultSelector()
        self._peer: dict[socket.socket, socket.socket] = {}
        self._held: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._requests: queue.Queue[tuple[str, threading.Event]] = queue.Queue()
        self._stop = False
        self._listen()
        self._thread = threading.Thread(target=self._loop, name="relay", daemon=True)
        self._thread.start()

    def set_mode(self, mode: str) -> None:
        """Switch mode; returns once the relay thread has done it."""
        if mode not in ("up", "refused", "blackhole"):
            raise ValueError(mode)
        done = threading.Event()
        self._requests.put((mode, done))
        done.wait(5.0)

    def close(self) -> None:
        self._stop = True
        self._thread.join(2.0)
        for sock in [*self._peer, *self._held, *([self._listener] if self._listener else [])]:
            sock.close()

    # -- the relay thread --------------------------------------------------------
    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(16)
        self._listener = sock
        self._sel.register(sock, selectors.EVENT_READ)

    def _loop(self) -> None:
        while not self._stop:
            while not self._requests.empty():
                mode, done = self._requests.get()
                self._switch(mode)
                done.set()
            for key, _ in self._sel.select(0.02):
                sock = key.fileobj
                if sock is self._listener:
                    self._accept()
                elif sock in self._peer:
                    self._relay(sock)

    def _switch(self, mode: str) -> None:
        if mode == self.mode:
            return
        if mode == "refused":
            self._sel.unregister(self._listener)
            self._listener.close()
            self._listener = None
            self._drop_all()
        elif mode == "blackhole":
            for sock in list(self._peer):  # freeze: stop relaying, keep the sockets open
                self._sel.unregister(sock)
                self._held.append(sock)
            self._peer.clear()
        else:
            self._drop_all()
            if self._listener is None:
                self._listen()
        self.mode = mode

    def _drop_all(self) -> None:
        for sock in list(self._peer):
            self._sel.unregister(sock)
            _reset(sock)
        self._peer.clear()
        for sock in self._held:
            _reset(sock)
        self._held.clear()

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        if self.mode == "blackhole":
            self._held.append(client)
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=2.0)
        except OSError:
            _reset(client)
            return
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._peer[client], self._peer[upstream] = upstream, client
        self._sel.register(client, selectors.EVENT_READ)
        self._sel.register(upstream, selectors.EVENT_READ)

    def _relay(self, sock: socket.socket) -> None:
        peer = self._peer[sock]
        try:
            data = sock.recv(65536)
            if data:
                peer.sendall(data)
                return
        except OSError:
            pass
        for s in (sock, peer):  # one side closed: close the other, as a relay must
            self._sel.unregister(s)
            self._peer.pop(s, None)
            s.close()
