"""Tell systemd how the station is doing: the sd_notify datagram protocol, in a few lines.

With ``Type=notify`` systemd waits for ``READY=1`` before it calls the
service started, and with ``WatchdogSec=`` it restarts the service when the
``WATCHDOG=1`` pings stop. systemd passes the socket to send them to in
``NOTIFY_SOCKET``; outside systemd (a terminal, the tests, the demo) the
variable is unset and every call here does nothing::

    notifier = SystemdNotifier()
    interval = notifier.watchdog_interval()   # None without WatchdogSec=
    station.open()
    notifier.ready()
    while running:
        station.step()
        notifier.watchdog()      # from the main loop, never from a helper thread:
                                 # a hung loop must stop the pings
    notifier.stopping()

Each message is one datagram of ``KEY=value`` lines (see sd_notify(3)).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Self

log = logging.getLogger(__name__)


class SystemdNotifier:
    """Send sd_notify messages to ``$NOTIFY_SOCKET``; a no-op when it is unset.

    The address is a filesystem path (``/run/systemd/notify``) or, starting
    with ``@``, a socket in the abstract namespace. A failed send is logged
    once and otherwise ignored: losing a status message must never stop the
    station (a missed watchdog ping is systemd's business to act on)::

        notifier = SystemdNotifier()
        notifier.enabled            # False outside systemd
        notifier.status("2 sensors, broker connected")
        notifier.ready()            # sends b"READY=1"
    """

    def __init__(self, address: str | None = None):
        if address is None:
            address = os.environ.get("NOTIFY_SOCKET") or None
        self.address = address
        self._target: str | bytes | None = None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._complained = False
        if address is None:
            return
        if address.startswith("@") and len(address) > 1:
            self._target = "\0" + address[1:]  # abstract namespace: leading NUL byte
        elif address.startswith("/"):
            self._target = address
        else:
            log.warning(
                "NOTIFY_SOCKET=%r is neither a path nor @abstract; not notifying systemd", address
            )

    @property
    def enabled(self) -> bool:
        """True when there is a socket to send to."""
        return self._target is not None

    def notify(self, message: str) -> bool:
        """Send one raw message, e.g. ``"READY=1\\nSTATUS=up"``. Returns whether it went."""
        if self._target is None:
            return False
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(
                        socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                    )
                # sendto, not connect: if systemd re-creates its socket the
                # next message still finds it.
                self._sock.sendto(message.encode("utf-8"), self._target)
                return True
            except OSError as err:
                level = logging.DEBUG if self._complained else logging.WARNING
                self._complained = True
                log.log(level, "cannot notify systemd at %s: %s", self.address, err)
                return False

    def ready(self) -> bool:
        """Start-up is complete: systemd now calls the service started."""
        return self.notify("READY=1")

    def stopping(self) -> bool:
        """Shutting down: systemd should not read the exit as a crash in progress."""
        return self.notify("STOPPING=1")

    def watchdog(self) -> bool:
        """Ping the watchdog; call at least every :meth:`watchdog_interval` seconds."""
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        """One line for ``systemctl status`` to show (newlines would end the field)."""
        return self.notify("STATUS=" + " ".join(text.splitlines()))

    @staticmethod
    def watchdog_interval() -> float | None:
        """Seconds between pings to stay safely inside ``WatchdogSec=``, or None.

        Half the period systemd announces in ``WATCHDOG_USEC``, as sd_watchdog_enabled(3)
        advises; None when there is no watchdog, or when ``WATCHDOG_PID``
        names another process (the variables were inherited, not meant for us)::

            WATCHDOG_USEC=10000000  ->  5.0
        """
        usec = os.environ.get("WATCHDOG_USEC")
        if not usec:
            return None
        pid = os.environ.get("WATCHDOG_PID")
        try:
            if pid and int(pid) != os.getpid():
                return None
            period = int(usec)
        except ValueError:
            log.warning(
                "ignoring a malformed systemd watchdog setting: WATCHDOG_USEC=%r WATCHDOG_PID=%r",
                usec,
                pid,
            )
            return None
        if period <= 0:
            return None
        return period / 2 / 1_000_000

    def close(self) -> None:
        """Close the socket (a later message opens a new one)."""
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
