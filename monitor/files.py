"""Small files a person names in the config, read without surprises.

A path in a config file can point anywhere: a directory, a FIFO (``open``
would wait for a writer for ever), ``/dev/zero`` (reading it never ends), a
log file of gigabytes. Before reading, the file is opened non-blocking and
checked with ``fstat``: only a regular file up to ``limit`` bytes is read::

    data = read_small_file("/etc/gym-monitor/mqtt-password", "mqtt.password_file", limit=4096)
    problem = regular_file_problem("/etc/gym-monitor/ca.crt")   # None, or what is wrong

Every problem is a :class:`~monitor.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import ConfigError

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_small_file(
    path: str | os.PathLike[str], key: str, *, limit: int, named: bool = True
) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    A problem (missing, not a regular file, too long) is a ConfigError naming ``key``;
    ``named=False`` leaves the path out of the problem (when ``key`` is the path itself).
    """
    p = Path(path)
    name = f"{p}: " if named else ""
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ConfigError(key, f"{name}no such file") from None
    except PermissionError:
        raise ConfigError(key, f"{name}cannot be read (permission denied)") from None
    except IsADirectoryError:
        raise ConfigError(key, f"{name}is a directory, not a file") from None
    except ValueError:  # a NUL in the path
        raise ConfigError(key, f"{name}is not a usable path") from None
    except OSError as err:
        raise ConfigError(key, f"{name}cannot be opened: {err.strerror or err}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(key, f"{name}is {_kind(st.st_mode)}, not a file")
        if st.st_size > limit:
            raise ConfigError(
                key, f"{name}is {st.st_size} bytes; at most {limit} are expected here"
            )
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, limit + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise ConfigError(key, f"{name}is over {limit} bytes")
        return b"".join(chunks)
    except OSError as err:
        raise ConfigError(key, f"{name}cannot be read: {err.strerror or err}") from None
    finally:
        os.close(fd)


def regular_file_problem(path: str | os.PathLike[str]) -> str | None:
    """What stops ``path`` from being read as a file (None if it can be), without opening it."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        return f"{p}: no such file"
    except ValueError:
        return f"{p!r}: is not a usable path"
    except OSError as err:
        return f"{p}: cannot be examined: {err.strerror or err}"
    if not stat.S_ISREG(st.st_mode):
        return f"{p}: is {_kind(st.st_mode)}, not a file"
    if not os.access(p, os.R_OK):
        return f"{p}: cannot be read (permission denied)"
    return None


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Make a rename in ``folder`` durable (after ``os.replace``); never raises.

    Not every platform can open or fsync a directory: there the rename is as
    durable as the platform makes it.
    """
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
