"""Run a real Mosquitto broker for tests and benchmarks.

The project tests against the real thing, not a mock: each broker gets a free
loopback port, its own config file and log in a temporary directory, and is
stopped (and, if it will not stop, killed) at teardown. It can be stopped and
started again on the same port, which is how reconnect behaviour is tested::

    broker = MosquittoBroker(tmp_path)          # anonymous, 127.0.0.1:<free port>
    broker.start()
    client.connect(broker.host, broker.port)
    broker.stop(); broker.start()               # a broker restart, same port
    broker.close()

Extra configuration is appended verbatim, so a test can switch on auth and an
ACL (``allow_anonymous=False`` drops the default ``allow_anonymous true``)::

    broker = MosquittoBroker(tmp_path, allow_anonymous=False,
                             extra_config=f"password_file {pw}\\nacl_file {acl}\\n")

In pytest, use the fixtures (import them into a test module or a conftest)::

    from mosquitto import mosquitto, mosquitto_factory  # noqa: F401

    def test_something(mosquitto):                 # a started anonymous broker
        ...

    def test_with_auth(mosquitto_factory):
        broker = mosquitto_factory(extra_config="...", allow_anonymous=False)

Both skip the test, saying why, when no ``mosquitto`` binary is installed
(looked up as ``$MOSQUITTO``, then on ``PATH``, then ``/usr/sbin/mosquitto``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Self

import pytest

SBIN_FALLBACKS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


class BrokerError(RuntimeError):
    """The broker did not start or stop as asked; the message quotes its log."""


def find_mosquitto() -> str | None:
    """Path of the mosquitto binary, or None. Debian puts it in /usr/sbin."""
    explicit = os.environ.get("MOSQUITTO")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in SBIN_FALLBACKS if os.access(p, os.X_OK)), None)


def find_mosquitto_passwd() -> str | None:
    """Path of mosquitto_passwd (Debian's mosquitto package), or None."""
    return shutil.which("mosquitto_passwd") or next(
        (p for p in ("/usr/bin/mosquitto_passwd", "/usr/sbin/mosquitto_passwd")
         if os.access(p, os.X_OK)), None)


def write_password_files(folder: Path, users, password: Callable[[str], str]) -> Path:
    """A Mosquitto password file ``passwd`` for ``users``, and ``<user>.pw`` holding each password.

    Raises FileNotFoundError when mosquitto_passwd is not installed.
    """
    tool = find_mosquitto_passwd()
    if tool is None:
        raise FileNotFoundError("mosquitto_passwd is not installed (Debian: apt install mosquitto)")
    folder.mkdir(parents=True, exist_ok=True)
    passwd = folder / "passwd"
    for n, user in enumerate(users):
        args = [tool, "-b"] + (["-c"] if n == 0 else []) + [str(passwd), user, password(user)]
        subprocess.run(args, check=True, capture_output=True)
        pw = folder / f"{user}.pw"
        pw.write_text(password(user) + "\n")
        pw.chmod(0o600)
    return folder


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class MosquittoBroker:
    """One Mosquitto process on 127.0.0.1:<port>, restartable on that port.

    ``workdir`` holds ``mosquitto.conf`` and ``mosquitto.log``. The port is
    chosen once, at construction, so :meth:`stop` then :meth:`start` brings
    the broker back where clients expect it. Retained messages do not
    survive a restart (persistence is off), as on a broker that crashed.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        workdir: Path | str,
        *,
        extra_config: str = "",
        allow_anonymous: bool = True,
        port: int | None = None,
        binary: str | None = None,
    ):
        self.binary = binary or find_mosquitto()
        if self.binary is None:
            raise FileNotFoundError("mosquitto binary not found (apt install mosquitto)")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port(self.host)
        self.config_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"
        self.config_path.write_text(self._config(extra_config, allow_anonymous))
        self._proc: subprocess.Popen[bytes] | None = None

    def _config(self, extra: str, allow_anonymous: bool) -> str:
        # When started as root, mosquitto drops to the "mosquitto" user, which
        # cannot read a tmp dir made by root; staying the current user avoids that.
        user = pwd.getpwuid(os.getuid()).pw_name
        lines = [
            f"listener {self.port} {self.host}",
            f"allow_anonymous {'true' if allow_anonymous else 'false'}",
            "persistence false",
            f"user {user}",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "log_timestamp true",
        ]
        if extra and not extra.endswith("\n"):
            extra += "\n"
        return "\n".join(lines) + "\n" + extra

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running else None

    def log_text(self) -> str:
        """The broker's log so far (every start appends to it)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self, timeout: float = 5.0) -> MosquittoBroker:
        """Start the broker and return once it accepts TCP connections."""
        if self.running:
            return self
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [self.binary, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C aimed at pytest should not hit it first
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BrokerError(f"mosquitto exited with {self._proc.returncode} on start:\n"
                                  f"{self.log_text()[-2000:]}")
            if _accepts(self.host, self.port):
                return self
            time.sleep(0.02)
        self.kill()
        raise BrokerError(f"mosquitto did not accept connections on port {self.port} within "
                          f"{timeout} s:\n{self.log_text()[-2000:]}")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop gracefully (SIGTERM); kill if it has not exited within ``timeout``."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
        # The port must be free again before a restart can bind it.
        deadline = time.monotonic() + timeout
        while _accepts(self.host, self.port) and time.monotonic() < deadline:
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL: a crash, not a shutdown (clients get no clean disconnect)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(5)

    def restart(self, *, down_for: float = 0.0) -> None:
        """Stop, stay down ``down_for`` seconds, start again on the same port."""
        self.stop()
        if down_for > 0:
            time.sleep(down_for)
        self.start()

    def close(self) -> None:
        """Teardown: stop, and kill if needed. Safe to call more than once."""
        try:
            self.stop(timeout=3.0)
        finally:
            self.kill()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"MosquittoBroker({self.host}:{self.port}, {state})"


BrokerFactory = Callable[..., MosquittoBroker]


@pytest.fixture
def mosquitto_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerFactory]:
    """Make started brokers: ``factory(extra_config="", allow_anonymous=True, start=True)``.

    Every broker made is closed at teardown. Skips the test when mosquitto is
    not installed.
    """
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (Debian: apt install mosquitto); "
                    "set $MOSQUITTO to its path if it lives elsewhere")
    made: list[MosquittoBroker] = []

    def factory(extra_config: str = "", *, allow_anonymous: bool = True,
                start: bool = True) -> MosquittoBroker:
        broker = MosquittoBroker(tmp_path_factory.mktemp("mosquitto"),
                                 extra_config=extra_config, allow_anonymous=allow_anonymous)
        made.append(broker)
        return broker.start() if start else broker

    yield factory
    for broker in made:
        broker.close()


@pytest.fixture
def mosquitto(mosquitto_factory: BrokerFactory) -> MosquittoBroker:
    """A started anonymous broker on a free loopback port, closed after the test."""
    return mosquitto_factory()
