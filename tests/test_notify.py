"""sd_notify against a real datagram socket standing in for systemd's."""

from __future__ import annotations

import logging
import os
import socket
import tempfile
from pathlib import Path

import pytest

from monitor.notify import SystemdNotifier


def _listen(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(2)
    return sock


@pytest.fixture
def sock_dir(tmp_path):
    """tmp_path, unless it is too long for a socket address (108 bytes on Linux)."""
    if len(str(tmp_path)) < 90:
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(prefix="gm-") as short:
        yield Path(short)


@pytest.fixture
def systemd(sock_dir, monkeypatch):
    """A bound socket where systemd's would be, announced in NOTIFY_SOCKET."""
    path = str(sock_dir / "notify")
    sock = _listen(path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    yield sock
    sock.close()


@pytest.fixture
def abstract_systemd(tmp_path, monkeypatch):
    name = f"gym-monitor-test-{os.getpid()}-{tmp_path.name}"
    sock = _listen("\0" + name)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    yield sock
    sock.close()


@pytest.mark.parametrize(
    "call, datagram",
    [
        (lambda n: n.ready(), b"READY=1"),
        (lambda n: n.watchdog(), b"WATCHDOG=1"),
        (lambda n: n.stopping(), b"STOPPING=1"),
        (lambda n: n.status("2 sensors, broker connected"), b"STATUS=2 sensors, broker connected"),
    ],
)
def test_each_message_is_one_exact_datagram(systemd, call, datagram):
    with SystemdNotifier() as notifier:
        assert notifier.enabled
        assert call(notifier) is True
        assert systemd.recv(4096) == datagram


def test_messages_arrive_in_order(systemd):
    notifier = SystemdNotifier()
    notifier.ready()
    notifier.watchdog()
    notifier.watchdog()
    notifier.stopping()
    assert [systemd.recv(64) for _ in range(4)] == [
        b"READY=1",
        b"WATCHDOG=1",
        b"WATCHDOG=1",
        b"STOPPING=1",
    ]
    notifier.close()


def test_status_stays_one_field(systemd):
    SystemdNotifier().status("scale fault\nretrying")
    assert systemd.recv(4096) == b"STATUS=scale fault retrying"


def test_abstract_socket(abstract_systemd):
    notifier = SystemdNotifier()
    assert notifier.ready()
    assert abstract_systemd.recv(64) == b"READY=1"


def test_explicit_address_wins(sock_dir, monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    sock = _listen(str(sock_dir / "other"))
    try:
        SystemdNotifier(str(sock_dir / "other")).watchdog()
        assert sock.recv(64) == b"WATCHDOG=1"
    finally:
        sock.close()


def test_no_op_when_unset(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = SystemdNotifier()
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog() is False


@pytest.mark.parametrize("value", ["", "relative/notify", "@"])
def test_unusable_address_is_a_no_op(monkeypatch, value):
    monkeypatch.setenv("NOTIFY_SOCKET", value)
    notifier = SystemdNotifier()
    assert not notifier.enabled
    assert notifier.ready() is False


def test_send_errors_never_raise_and_are_logged_once(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    notifier = SystemdNotifier()
    with caplog.at_level(logging.DEBUG, logger="monitor.notify"):
        for _ in range(5):
            assert notifier.watchdog() is False
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "nobody-listens" in warnings[0].getMessage()


def test_recovers_when_the_socket_appears_later(sock_dir, monkeypatch):
    path = str(sock_dir / "late")
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    notifier = SystemdNotifier()
    assert notifier.ready() is False
    sock = _listen(path)
    try:
        assert notifier.ready() is True
        assert sock.recv(64) == b"READY=1"
    finally:
        sock.close()


@pytest.mark.parametrize(
    "usec, pid, expected",
    [
        ("10000000", None, 5.0),  # WatchdogSec=10 -> ping every 5 s
        ("3000000", "self", 1.5),
        ("500000", None, 0.25),
        ("10000000", "other", None),  # inherited from a parent: not ours
        (None, None, None),  # no WatchdogSec=
        ("", None, None),
        ("0", None, None),
        ("ten", None, None),
        ("10000000", "not-a-pid", None),
    ],
)
def test_watchdog_interval(monkeypatch, usec, pid, expected):
    for name, value in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", pid)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            value = {"self": str(os.getpid()), "other": str(os.getpid() + 1)}.get(value, value)
            monkeypatch.setenv(name, value)
    assert SystemdNotifier.watchdog_interval() == expected


def test_the_wall_display_tells_systemd_through_this_notifier(systemd, tmp_path):
    """``gym-monitor display`` under Type=notify: READY once serving, STOPPING on SIGTERM."""
    import signal
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    broker_port = free.getsockname()[1]  # nobody listens: the display comes up regardless
    free.close()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor.display",
            "--http-port",
            "0",
            "--mqtt-port",
            str(broker_port),
            "--staff-file",
            str(tmp_path / "staff.json"),
        ],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        systemd.settimeout(30)
        assert systemd.recv(64) == b"READY=1"
        assert proc.stdout is not None and proc.stdout.readline().startswith("http://127.0.0.1:")
        proc.send_signal(signal.SIGTERM)
        assert systemd.recv(64) == b"STOPPING=1"
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
