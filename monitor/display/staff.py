"""Staff accounts: who may acknowledge an alert, with a PIN or password hashed by argon2.

The accounts live in one small JSON file (``/etc/gym-monitor/staff.json`` by
default, mode 0600) that ``gym-monitor staff`` manages and the display reads::

    $ sudo gym-monitor staff add Alice          # asks for the PIN twice, without echo
    $ printf '%s\\n' 'correct horse' | sudo gym-monitor staff add "Coach Bo" --stdin
    $ sudo gym-monitor staff list
    $ sudo gym-monitor staff remove Alice

Only argon2id hashes are stored (argon2-cffi; the parameters travel inside each
hash), never a PIN. In code::

    store = StaffFile(path)
    store.add("Alice", "493817")
    directory = StaffDirectory(path)          # what the display uses
    directory.verify("alice", "493817")       # -> "Alice" (names match case-blind)
    directory.verify("alice", "000000")       # -> None

:class:`StaffDirectory` rereads the file when it changes, so an account added
or removed takes effect without a restart (under systemd the unit hands the
file over as a credential at start: there, restart the display).
"""

from __future__ import annotations

import argparse
import fcntl
import getpass
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..errors import ConfigError, MonitorError
from ..files import read_small_file

log = logging.getLogger(__name__)

DEFAULT_STAFF_FILE = Path("/etc/gym-monitor/staff.json")
# Shown on the wall and sent in cmd/ack as "by" (1-64 printable characters).
NAME = re.compile(r"[^\W_][\w .'-]{0,63}")
MIN_SECRET, MAX_SECRET = 6, 128
MAX_FILE_BYTES = 1 << 20


@cache
def hasher():
    """argon2id as OWASP suggests for a small server: 19 MiB, 2 passes, 1 lane.

    Each check costs a few tens of milliseconds and 19 MiB while it runs.
    Imported here, not at the top, so a station without the display extra
    can still build the command line.
    """
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


class StaffError(MonitorError, ValueError):
    """The staff file or an account request is not usable; the message says why."""


@dataclass(frozen=True)
class StaffMember:
    name: str
    hash: str
    added_ts: float


def check_name(name: str) -> str:
    name = name.strip()
    if not NAME.fullmatch(name):
        raise StaffError(
            f"{name!r:.70} is not a usable name: 1 to 64 letters, digits, "
            "spaces or . ' - (starting with a letter or digit)"
        )
    return name


def check_secret(secret: str) -> str:
    if not MIN_SECRET <= len(secret) <= MAX_SECRET:
        raise StaffError(f"a PIN or password needs {MIN_SECRET} to {MAX_SECRET} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in secret):
        raise StaffError("a PIN or password cannot hold control characters")
    return secret


def read_staff(path: Path) -> dict[str, StaffMember]:
    """The accounts in ``path``, keyed by case-folded name; StaffError if unreadable.

    Opened non-blocking and checked to be a regular file of sane size, so a
    FIFO, a directory or ``/dev/zero`` given by mistake is refused, not hung on.
    """
    try:
        raw = read_small_file(path, "staff file", limit=MAX_FILE_BYTES)
    except ConfigError as err:
        hint = " (add an account: gym-monitor staff add NAME)" if "no such" in err.problem else ""
        raise StaffError(f"{err.problem}{hint}") from None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise StaffError(f"{path}: is not a staff file (not JSON)") from None
    entries = data.get("staff") if isinstance(data, dict) else None
    if not isinstance(entries, list) or data.get("v") != 1:
        raise StaffError(f'{path}: is not a staff file (want {{"v": 1, "staff": [...]}})')
    out: dict[str, StaffMember] = {}
    for i, entry in enumerate(entries):
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("name"), str)
            and isinstance(entry.get("hash"), str)
            and entry["hash"].startswith("$argon2")
        ):
            raise StaffError(f"{path}: staff[{i}] needs a name and an argon2 hash")
        added = entry.get("added_ts")
        added = float(added) if isinstance(added, (int, float)) else 0.0
        out[entry["name"].casefold()] = StaffMember(entry["name"], entry["hash"], added)
    return out


class StaffFile:
    """The staff file as ``gym-monitor staff`` edits it: locked, written atomically, mode 0600."""

    def __init__(self, path: Path | str = DEFAULT_STAFF_FILE):
        self.path = Path(path)

    @contextmanager
    def _locked(self) -> Iterator[dict[str, StaffMember]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield read_staff(self.path) if self.path.exists() else {}
        finally:
            os.close(fd)

    def _write(self, members: dict[str, StaffMember]) -> None:
        data = {
            "v": 1,
            "staff": [
                {"name": m.name, "hash": m.hash, "added_ts": m.added_ts}
                for m in sorted(members.values(), key=lambda m: m.name)
            ],
        }
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def add(self, name: str, secret: str, *, replace: bool = False) -> StaffMember:
        """Add an account (or, with ``replace``, set a new PIN for an existing one)."""
        name, secret = check_name(name), check_secret(secret)
        with self._locked() as members:
            key = name.casefold()
            if key in members and not replace:
                raise StaffError(
                    f"{members[key].name!r} already has an account (use --replace to set a new PIN)"
                )
            member = StaffMember(name, hasher().hash(secret), round(time.time(), 3))
            members[key] = member
            self._write(members)
        return member

    def remove(self, name: str) -> StaffMember:
        with self._locked() as members:
            member = members.pop(name.strip().casefold(), None)
            if member is None:
                raise StaffError(f"no account named {name!r:.70}")
            self._write(members)
        return member

    def members(self) -> list[StaffMember]:
        if not self.path.exists():
            return []
        return sorted(read_staff(self.path).values(), key=lambda m: m.name.casefold())


class StaffDirectory:
    """The display's read-only view of the staff file, reread when the file changes.

    A missing or broken file means nobody can log in (logged once), never a
    crash: the wall keeps showing alerts either way. Thread-safe, because
    :meth:`verify` runs in worker threads (argon2 is deliberately slow).
    """

    RECHECK_S = 2.0

    def __init__(self, path: Path | str | None):
        self.path = Path(path) if path else None
        self._members: dict[str, StaffMember] = {}
        self._signature: tuple[int, int, int] | None = None
        self._checked = float("-inf")
        self._lock = threading.Lock()
        self._told: str | None = None
        self._dummy = hasher().hash("not a real account")
        self._refresh(force=True)

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.path is None or (not force and now - self._checked < self.RECHECK_S):
            return
        self._checked = now
        try:
            info = os.stat(self.path)
            signature = (info.st_mtime_ns, info.st_size, info.st_ino)
            if signature == self._signature:
                return
            self._members = read_staff(self.path)
            self._signature = signature
            if info.st_mode & 0o077:
                log.warning("%s can be read by other users; chmod 600 it", self.path)
            log.info("%d staff account(s) from %s", len(self._members), self.path)
            self._told = None
        except (OSError, StaffError) as err:
            problem = str(err) if isinstance(err, StaffError) else f"{self.path}: {err.strerror}"
            self._members, self._signature = {}, None
            if problem != self._told:
                log.warning("no staff can log in: %s", problem)
                self._told = problem

    @property
    def count(self) -> int:
        with self._lock:
            self._refresh()
            return len(self._members)

    def exists(self, name: str) -> bool:
        with self._lock:
            self._refresh()
            return name.casefold() in self._members

    def verify(self, name: str, secret: str) -> str | None:
        """The account's name if ``secret`` is its PIN, else None (same cost either way)."""
        with self._lock:
            self._refresh()
            member = self._members.get(name.strip().casefold())
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            hasher().verify(member.hash if member else self._dummy, secret)
        except (VerificationError, InvalidHashError):  # a mismatch is a VerificationError
            return None
        return member.name if member else None


# --------------------------------------------------------------------------- command line


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``gym-monitor staff add|remove|list``."""
    p.add_argument(
        "--file",
        type=Path,
        default=DEFAULT_STAFF_FILE,
        help=f"the staff file ({DEFAULT_STAFF_FILE})",
    )
    sub = p.add_subparsers(dest="staff_command", required=True)
    a = sub.add_parser("add", help="add a staff account (asks for a PIN or password)")
    a.add_argument("name", help="the name shown on the wall when this person acknowledges")
    a.add_argument(
        "--stdin",
        action="store_true",
        help="read the PIN from the first line of standard input (for scripts)",
    )
    a.add_argument("--replace", action="store_true", help="set a new PIN for an existing account")
    r = sub.add_parser("remove", help="remove a staff account")
    r.add_argument("name")
    sub.add_parser("list", help="list the staff accounts")


def _read_secret(from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        line = sys.stdin.readline(MAX_SECRET + 2)
        return line.rstrip("\r\n")
    first = getpass.getpass(f"PIN or password ({MIN_SECRET}+ characters): ")
    check_secret(first)
    if getpass.getpass("again: ") != first:
        raise StaffError("the two entries differ; nothing changed")
    return first


def run_from_args(args: argparse.Namespace) -> int:
    """Carry out a staff subcommand; a problem is one line on stderr and exit status 1."""
    store = StaffFile(args.file)
    try:
        if args.staff_command == "list":
            members = store.members()
            for m in members:
                added = time.strftime("%Y-%m-%d", time.localtime(m.added_ts)) if m.added_ts else "?"
                print(f"{m.name}\t(added {added})")
            if not members:
                print(f"{args.file}: no staff accounts", file=sys.stderr)
            return 0
        if args.staff_command == "add":
            name = check_name(args.name)
            member = store.add(name, _read_secret(args.stdin), replace=args.replace)
            print(
                f"{args.file}: {member.name} can now log in to the wall display and acknowledge "
                "alerts (under systemd: systemctl restart gym-display)"
            )
            return 0
        member = store.remove(args.name)
        print(f"{args.file}: removed {member.name} (under systemd: systemctl restart gym-display)")
        return 0
    except StaffError as err:
        print(f"gym-monitor staff: {err}", file=sys.stderr)
        return 1
    except PermissionError as err:
        print(
            f"gym-monitor staff: {err.filename}: permission denied (run it with sudo)",
            file=sys.stderr,
        )
        return 1
    except (EOFError, KeyboardInterrupt):
        print("gym-monitor staff: cancelled; nothing changed", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"gym-monitor staff: {err.filename or args.file}: {err.strerror}", file=sys.stderr)
        return 1
    except ImportError as err:
        print(
            f"gym-monitor staff: needs the display extra ({err.name} is missing): "
            "pip install 'gym-tremor-monitor[display]'",
            file=sys.stderr,
        )
        return 1
