"""Many open ``/events`` streams against a display, for the streams test and bench.

A :class:`StreamCrowd` runs its own asyncio loop on a thread and opens N
Server-Sent-Events connections, each reading everything the display sends
(as a browser would, so none of them lags and gets dropped)::

    crowd = StreamCrowd("127.0.0.1", port, count=500).start()
    crowd.wait_open(timeout=30)       # all 500 answered 200 and sent their snapshot
    ...
    crowd.close()

Also :func:`pids_cgroup`, a cgroup that caps a process's tasks the way
systemd's ``TasksMax=`` does (``pids.max``), when this machine lets us make one, and
:func:`display_command`, the display service as systemd starts it, inside that cgroup.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
import uuid
from pathlib import Path


class StreamCrowd:
    def __init__(self, host: str, port: int, count: int, hostname: str | None = None):
        self.host, self.port, self.count = host, port, count
        self.hostname = hostname or f"{host}:{port}"
        self.statuses: list[int] = []
        self.opened = 0  # answered 200 and delivered the first snapshot
        self.bytes = 0
        self.closed_by_server = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._writers: list[asyncio.StreamWriter] = []

    def start(self) -> StreamCrowd:
        self._thread.start()
        for _ in range(self.count):
            asyncio.run_coroutine_threadsafe(self._one(), self._loop)
        return self

    async def _one(self) -> None:
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            self.statuses.append(0)
            return
        self._writers.append(writer)
        writer.write(
            f"GET /events HTTP/1.1\r\nHost: {self.hostname}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        try:
            status_line = await reader.readline()
            status = int(status_line.split()[1]) if status_line else 0
            self.statuses.append(status)
            if status != 200:
                return
            counted = False
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    self.closed_by_server += 1
                    return
                self.bytes += len(chunk)
                if not counted and b"event: snapshot" in chunk:
                    counted = True
                    self.opened += 1
        except (OSError, ValueError, IndexError):
            self.statuses.append(-1)

    def wait_open(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.opened >= self.count:
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        def shut() -> None:
            for writer in self._writers:
                writer.close()

        self._loop.call_soon_threadsafe(shut)
        time.sleep(0.2)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def pids_cgroup(limit: int) -> Path | None:
    """A new cgroup whose processes may have at most ``limit`` tasks, or None if not allowed.

    systemd implements ``TasksMax=`` with exactly this controller. Remove it
    with :func:`remove_cgroup` once its processes have exited.
    """
    for base in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup")):
        if not (base / "cgroup.procs").exists():
            continue
        group = base / f"gym-display-test-{uuid.uuid4().hex[:8]}"
        try:
            group.mkdir()
            (group / "pids.max").write_text(f"{limit}\n")
            return group
        except OSError:
            with contextlib.suppress(OSError):
                group.rmdir()
    return None


def remove_cgroup(group: Path | None) -> None:
    if group is None:
        return
    for _ in range(50):
        try:
            group.rmdir()
            return
        except OSError:
            time.sleep(0.1)


def tasks_of(pid: int) -> int:
    """Threads of a process right now (what TasksMax counts for a one-process service)."""
    return len(os.listdir(f"/proc/{pid}/task"))


def display_command(config: Path, cgroup: Path | None) -> list[str]:
    """``python -m monitor.display --config <config>``, joining ``cgroup`` first if given.

    The shell joins the cgroup before Python starts, so every thread it makes counts.
    """
    command = [
        sys.executable,
        "-m",
        "monitor.display",
        "--config",
        str(config),
        "--log-level",
        "WARNING",
    ]
    if cgroup is None:
        return command
    return ["sh", "-c", f'echo $$ > "{cgroup / "cgroup.procs"}" && exec "$@"', "sh", *command]
