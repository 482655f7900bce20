"""Reading the small files the display is pointed at, without hanging or exhausting memory.

A path in a config can name anything: a directory, a FIFO (``open`` would
wait for a writer for ever), ``/dev/zero`` (``read`` would fill memory). This
opens without blocking, insists on a regular file and reads a bounded amount::

    data = read_regular_file(Path("/etc/gym-monitor/display.toml"), limit=256 * 1024)
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class FileProblem(OSError):
    """Why a file could not be read, in words that can follow its name."""


def read_regular_file(path: Path | str, limit: int) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise FileProblem("no such file") from None
    except IsADirectoryError:
        raise FileProblem("is a directory, not a file") from None
    except PermissionError:
        raise FileProblem("cannot be read (permission denied)") from None
    except OSError as err:
        raise FileProblem(f"cannot be read ({err.strerror})") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise FileProblem("is a directory, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise FileProblem("is not a regular file")
        if info.st_size > limit:
            raise FileProblem(f"is {info.st_size} bytes; more than {limit} is not plausible")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise FileProblem(f"is more than {limit} bytes; not plausible")
    return data
