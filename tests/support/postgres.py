"""A real PostgreSQL server for tests and benchmarks, as tests/support/mosquitto.py runs Mosquitto.

Debian's ``postgresql`` package provides the binaries (``/usr/lib/postgresql/<v>/bin``);
each server gets its own data directory made by ``initdb`` in a temporary
folder, a free loopback port, and is stopped (fast shutdown, then kill) at
teardown. PostgreSQL refuses to run as root, so when the tests run as root
the server runs as the ``postgres`` user that the package creates (or
``$PG_USER``), switched to with ``setpriv``::

    server = PostgresServer().start()
    url = server.create_database("history")   # postgresql+psycopg://gym@127.0.0.1:<port>/history
    ...
    server.close()

In pytest, the ``postgres`` fixture gives a started server shared by a test
module and skips, saying why, when PostgreSQL is not installed.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Self

from .net import free_port

SUPERUSER = "gym"


class PostgresError(RuntimeError):
    """The server did not start or stop; the message quotes its log."""


def find_bindir() -> Path | None:
    """The newest installed PostgreSQL's bin directory (``$PG_BINDIR`` first), or None."""
    explicit = os.environ.get("PG_BINDIR")
    if explicit:
        return Path(explicit) if (Path(explicit) / "initdb").exists() else None
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(os.path.realpath(initdb)).parent if initdb else None


class PostgresServer:
    """One PostgreSQL server on 127.0.0.1:<port> with a throwaway data directory.

    ``durable=False`` (the tests) turns off fsync: the server behaves the same,
    only a power cut would lose data. Benchmarks keep it on.
    """

    host = "127.0.0.1"

    def __init__(self, *, durable: bool = False, bindir: Path | None = None):
        self.bindir = bindir or find_bindir()
        if self.bindir is None:
            raise FileNotFoundError("PostgreSQL is not installed (Debian: apt install postgresql)")
        self.durable = durable
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="gym-pg-"))
        self.datadir = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            name = os.environ.get("PG_USER", "postgres")
            try:
                self._user = pwd.getpwnam(name)
            except KeyError:
                raise FileNotFoundError(
                    f"running as root and there is no {name!r} user to run "
                    "PostgreSQL as (set $PG_USER)"
                ) from None
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
        self._initdb()

    def _as_user(self, argv: list[str]) -> list[str]:
        if self._user is None:
            return argv
        return [
            "setpriv",
            f"--reuid={self._user.pw_uid}",
            f"--regid={self._user.pw_gid}",
            "--init-groups",
            "--",
            *argv,
        ]

    def _initdb(self) -> None:
        run = subprocess.run(
            self._as_user(
                [
                    str(self.bindir / "initdb"),
                    "-D",
                    str(self.datadir),
                    "-U",
                    SUPERUSER,
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                ]
            ),
            check=False,
            capture_output=True,
            text=True,
            cwd=self.root,
        )
        if run.returncode != 0:
            raise PostgresError(f"initdb failed:\n{run.stdout[-1500:]}\n{run.stderr[-1500:]}")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running else None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self, timeout: float = 30.0) -> Self:
        if self.running:
            return self
        options = [
            "-c",
            f"listen_addresses={self.host}",
            "-p",
            str(self.port),
            "-c",
            f"unix_socket_directories={self.root}",
            "-c",
            "max_connections=60",
        ]
        if not self.durable:
            options += [
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
        with open(self.log_path, "ab") as log:
            if self._user is not None:
                os.chown(self.log_path, self._user.pw_uid, self._user.pw_gid)
            self._proc = subprocess.Popen(
                self._as_user([str(self.bindir / "postgres"), "-D", str(self.datadir), *options]),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.root,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise PostgresError(
                    f"postgres exited with {self._proc.returncode}:\n{self.log_text()[-2000:]}"
                )
            if self._ready():
                return self
            time.sleep(0.1)
        self.kill()
        raise PostgresError(f"postgres not ready within {timeout} s:\n{self.log_text()[-2000:]}")

    def _ready(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(
                host=self.host, port=self.port, user=SUPERUSER, dbname="postgres", connect_timeout=1
            ):
                return True
        except psycopg.OperationalError:
            return False

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(
            host=self.host, port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self, timeout: float = 15.0) -> None:
        """Fast shutdown (SIGINT: roll back open transactions, checkpoint, exit)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self.kill()
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def postgres_fixture():
    """A module-scoped pytest fixture: ``postgres = postgres_fixture()`` in a test module."""
    import pytest

    @pytest.fixture(scope="module")
    def postgres():
        if find_bindir() is None:
            pytest.skip("PostgreSQL is not installed (Debian: apt install postgresql)")
        if os.geteuid() == 0 and shutil.which("setpriv") is None:
            pytest.skip("running as root needs setpriv (util-linux) to start PostgreSQL")
        server = PostgresServer().start()
        try:
            yield server
        finally:
            server.close()

    return postgres
