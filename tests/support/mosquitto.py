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

In pytest, the fixtures are there for every test (tests/conftest.py registers this
module as a plugin)::

    def test_something(mosquitto):                 # a started anonymous broker
        ...

    def test_with_auth(mosquitto_factory, secrets):
        broker = mosquitto_factory(gym_config(secrets / "passwd"), allow_anonymous=False)

Both skip the test, saying why, when no ``mosquitto`` binary is installed
(looked up as ``$MOSQUITTO``, then on ``PATH``, then ``/usr/sbin/mosquitto``).
``secrets`` is a password file for :data:`USERS`, each with its :func:`password`.

The broker a gym runs is ``config/mosquitto/``: :func:`gym_config` turns it into
extra configuration for a test broker (the shipped settings, such as client ids
bound to user names and the packet size limit, with the test's own password
file, ACL and, given a :class:`Pki`, a TLS listener)::

    secrets = write_password_files(tmp_path / "secrets", ["bench-1", "display"], pw)
    pki = make_pki(tmp_path / "pki", "localhost")            # the installer's own script
    broker = MosquittoBroker(tmp_path, allow_anonymous=False,
                             extra_config=gym_config(secrets / "passwd", pki=pki))
    broker.tls_port                                           # MQTT over TLS here

With client ids bound to user names, two clients logged in as one user kick
each other off: a test that needs several clients of one kind makes more users
(``write_password_files(..., append=True)``) and, for rights the shipped ACL
does not give them, an ACL with extra blocks (:func:`write_acl`).
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import pytest

from .net import accepts, free_port

SBIN_FALLBACKS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")

BROKER_CONFIG = Path(__file__).resolve().parents[2] / "config" / "mosquitto"
SHIPPED_CONF = BROKER_CONFIG / "mosquitto.conf"
SHIPPED_ACL = BROKER_CONFIG / "acl"
MAKE_CERTS = BROKER_CONFIG / "make-certs.sh"

#: Keys of the shipped mosquitto.conf that a test broker sets for itself: the
#: listeners and their TLS files, paths on an installed system, persistence and
#: anonymous access. Everything else in the file applies to test brokers as shipped.
OWN_KEYS = frozenset(
    {
        "listener",
        "cafile",
        "capath",
        "certfile",
        "keyfile",
        "tls_version",
        "require_certificate",
        "ciphers",
        "password_file",
        "acl_file",
        "persistence",
        "persistence_location",
        "autosave_interval",
        "allow_anonymous",
        "per_listener_settings",
        "user",
        "pid_file",
        "log_dest",
        "include_dir",
    }
)


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
        (
            p
            for p in ("/usr/bin/mosquitto_passwd", "/usr/sbin/mosquitto_passwd")
            if os.access(p, os.X_OK)
        ),
        None,
    )


#: Two stations and the roles of the shipped ACL: whom a broker test usually lets in.
USERS = ("bench-1", "bench-2", "display", "operator", "integrator", "homeassistant")


def password(user: str) -> str:
    """The test password of ``user``: what :func:`write_password_files` is usually given."""
    return f"pw-{user}-secret"


def write_password_files(
    folder: Path, users: Iterable[str], password: Callable[[str], str], *, append: bool = False
) -> Path:
    """A Mosquitto password file ``passwd`` for ``users``, and ``<user>.pw`` holding each password.

    ``append=True`` adds the users to an existing ``passwd`` (a running broker
    reads it again on :meth:`MosquittoBroker.reload`). Raises FileNotFoundError
    when mosquitto_passwd is not installed.
    """
    tool = find_mosquitto_passwd()
    if tool is None:
        raise FileNotFoundError("mosquitto_passwd is not installed (Debian: apt install mosquitto)")
    folder.mkdir(parents=True, exist_ok=True)
    passwd = folder / "passwd"
    for n, user in enumerate(users):
        create = n == 0 and not (append and passwd.exists())
        args = [tool, "-b"] + (["-c"] if create else []) + [str(passwd), user, password(user)]
        subprocess.run(args, check=True, capture_output=True)
        pw = folder / f"{user}.pw"
        pw.write_text(password(user) + "\n")
        pw.chmod(0o600)
    return folder


def write_acl(folder: Path, extra: str, base: Path = SHIPPED_ACL) -> Path:
    """``folder/acl``: the shipped ACL with ``extra`` lines after it (rights for test-only
    users)."""
    folder.mkdir(parents=True, exist_ok=True)
    acl = folder / "acl"
    acl.write_text(base.read_text() + "\n# --- added by the test\n" + extra.strip() + "\n")
    return acl


@dataclass(frozen=True)
class Pki:
    """The gym's CA certificate and the broker's certificate and key, as make-certs.sh makes
    them."""

    ca: Path
    cert: Path
    key: Path
    ca_key: Path


def make_pki(folder: Path, *names: str) -> Pki:
    """Run ``config/mosquitto/make-certs.sh`` (as the installer does) for ``names`` into ``folder``.

    Raises FileNotFoundError when openssl is not installed.
    """
    if shutil.which("openssl") is None:
        raise FileNotFoundError("openssl is not installed (Debian: apt install openssl)")
    certs, ca = folder / "certs", folder / "ca"
    subprocess.run(
        [
            "bash",
            str(MAKE_CERTS),
            "--cert-dir",
            str(certs),
            "--ca-dir",
            str(ca),
            "--group",
            "",
            *names,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return Pki(certs / "gym-ca.crt", certs / "broker.crt", certs / "broker.key", ca / "gym-ca.key")


def shipped_settings(conf: Path = SHIPPED_CONF) -> str:
    """The lines of the shipped mosquitto.conf that apply to a test broker as they are.

    That is every setting except :data:`OWN_KEYS` (comments and blank lines dropped).
    """
    kept = []
    for line in conf.read_text().splitlines():
        words = line.split()
        if words and not words[0].startswith("#") and words[0] not in OWN_KEYS:
            kept.append(line.strip())
    return "\n".join(kept) + "\n"


def gym_config(
    password_file: Path,
    *,
    acl_file: Path = SHIPPED_ACL,
    pki: Pki | None = None,
    tls_port: int | None = None,
) -> str:
    """Extra configuration for a test broker that is the gym's broker as shipped.

    The shipped settings, ``password_file`` and ``acl_file`` (the shipped ACL by
    default) and, given ``pki``, a TLS listener on 127.0.0.1:``tls_port`` (a free
    port when None; :attr:`MosquittoBroker.tls_port` finds it again). Pass it with
    ``allow_anonymous=False``.
    """
    text = shipped_settings() + f"password_file {password_file}\nacl_file {acl_file}\n"
    if pki is not None:
        text += (
            f"listener {tls_port or free_port()} 127.0.0.1\ncafile {pki.ca}\n"
            f"certfile {pki.cert}\nkeyfile {pki.key}\ntls_version tlsv1.2\n"
        )
    return text


def localize(conf_text: str, *, root: Path, port: int, tls_port: int) -> str:
    """An installed mosquitto.conf (the shipped one, or the installer's copy) made runnable here.

    Its plain listener moves to 127.0.0.1:``port`` and its TLS listener to
    127.0.0.1:``tls_port``; paths under /etc/mosquitto/ are looked up under
    ``root`` instead (``root/etc/mosquitto/...``); persistence is off; the broker
    runs as the current user and logs to stderr. Raises ValueError if the file
    does not have the two listeners the shipped one has.
    """
    plain, tls = "\nlistener 1883 127.0.0.1\n", "\nlistener 8883\n"
    if plain not in conf_text or tls not in conf_text:
        raise ValueError(
            "expected the shipped listeners: 'listener 1883 127.0.0.1' and 'listener 8883'"
        )
    user = pwd.getpwuid(os.getuid()).pw_name
    text = (
        conf_text.replace(plain, f"\nlistener {port} 127.0.0.1\n")
        .replace(tls, f"\nlistener {tls_port} 127.0.0.1\n")
        .replace(" /etc/mosquitto/", f" {root}/etc/mosquitto/")
        .replace("\npersistence true\n", "\npersistence false\n")
    )
    return text + f"\nuser {user}\nlog_dest stderr\nlog_type all\nlog_timestamp true\n"


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
        config: str | None = None,
    ):
        self.binary = binary or find_mosquitto()
        if self.binary is None:
            raise FileNotFoundError("mosquitto binary not found (apt install mosquitto)")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port(self.host)
        self.config_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"
        # ``config``: a whole configuration instead (see localize()); it listens on ``port``.
        self.config_path.write_text(
            config if config is not None else self._config(extra_config, allow_anonymous)
        )
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
    def tls_port(self) -> int | None:
        """The port of the TLS listener that :func:`gym_config` added, or None."""
        lines = self.config_path.read_text().splitlines()
        for line, after in itertools.pairwise(lines):
            if line.startswith("listener ") and after.startswith("cafile "):
                return int(line.split()[1])
        return None

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
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C aimed at pytest should not hit it first
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BrokerError(
                    f"mosquitto exited with {self._proc.returncode} on start:\n"
                    f"{self.log_text()[-2000:]}"
                )
            if accepts(self.host, self.port):
                return self
            time.sleep(0.02)
        self.kill()
        raise BrokerError(
            f"mosquitto did not accept connections on port {self.port} within "
            f"{timeout} s:\n{self.log_text()[-2000:]}"
        )

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
        while accepts(self.host, self.port) and time.monotonic() < deadline:
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL: a crash, not a shutdown (clients get no clean disconnect)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(5)

    def reload(self) -> None:
        """SIGHUP: Mosquitto reads its password file and ACL again, keeping its clients."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGHUP)

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
        pytest.skip(
            "mosquitto is not installed (Debian: apt install mosquitto); "
            "set $MOSQUITTO to its path if it lives elsewhere"
        )
    made: list[MosquittoBroker] = []

    def factory(
        extra_config: str = "", *, allow_anonymous: bool = True, start: bool = True
    ) -> MosquittoBroker:
        broker = MosquittoBroker(
            tmp_path_factory.mktemp("mosquitto"),
            extra_config=extra_config,
            allow_anonymous=allow_anonymous,
        )
        made.append(broker)
        return broker.start() if start else broker

    yield factory
    for broker in made:
        broker.close()


@pytest.fixture
def mosquitto(mosquitto_factory: BrokerFactory) -> MosquittoBroker:
    """A started anonymous broker on a free loopback port, closed after the test."""
    return mosquitto_factory()


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    """A password file for :data:`USERS`, and ``<user>.pw`` holding each one's :func:`password`."""
    try:
        return write_password_files(tmp_path / "secrets", USERS, password)
    except FileNotFoundError as err:
        pytest.skip(str(err))
