"""Full disks for real: a small tmpfs, filled to the last byte.

A test that wants to know what the station does when its disk is full needs a filesystem that
really says ENOSPC; a tmpfs of a few MiB is one (mounting it needs root)::

    reason = mount_tmpfs(folder, size_mb=16)     # None: mounted
    fill(folder)                                 # every write now fails with ENOSPC
    unmount(folder)
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def mount_tmpfs(folder: Path, size_mb: int = 64) -> str | None:
    """Mount a tmpfs of ``size_mb`` MiB at ``folder``: None when done, else why not."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(folder)],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return str(err)
    return None if done.returncode == 0 else done.stderr.strip() or f"exit {done.returncode}"


def unmount(folder: Path) -> None:
    """Lazily unmount ``folder`` (files still open there do not hold it up)."""
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path) -> None:
    """Write into ``folder`` until its filesystem says ENOSPC, to the last few bytes.

    The files are ``filler`` and ``filler-<n>``; deleting ``filler*`` makes room again.
    """
    try:
        with open(folder / "filler", "ab") as f:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
    except OSError:
        pass
    for i in range(2000):  # the last few bytes too
        try:
            (folder / f"filler-{i}").write_bytes(b"x" * 64)
        except OSError:
            break
