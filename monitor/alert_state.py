"""The station's alerts on disk, so that a new process knows what the last one raised.

A station that restarts (an upgrade, a crash, SIGKILL by the watchdog, a power
cut) must clear on the wall what it raised and no longer holds, and keep what
is latched (a fall stays until acknowledged). So after every step that made
alert events, the runner saves here the active and acknowledged alerts
(:meth:`~monitor.alerts.AlertManager.snapshot`) together with every alert
event the broker has not acknowledged yet (``pending``: those of this step,
which reach the outbox right after, and those waiting in it). A kill between
this save and the outbox's commit, or an outbox file damaged or lost, then
loses no alert: the next process queues them again (subscribers drop the
repeats by id and state)::

    state = AlertStateFile(state_dir / "alerts.json")
    saved = state.load()            # None the first time, or when the file was damaged
    ...
    state.save(
        manager.snapshot(t, wall),
        pending=unacknowledged + [e.payload() for e in step.alerts],
    )

Saving is atomic (a temporary file, fsync, rename, fsync of the directory):
after a power cut the file is the old one or the new one. A file that cannot
be read back (torn by hand, not JSON, not ours, a directory, too big) is moved
aside with an error in the log and the station starts without it, never stops.
A full disk makes :meth:`save` log once a minute and return False.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .files import fsync_dir, read_small_file

log = logging.getLogger(__name__)

#: A snapshot of a few hundred alerts is well under this; more is not ours.
MAX_BYTES = 4 * 1024 * 1024
ERROR_EVERY_S = 60.0


class AlertStateFile:
    """See the module docstring."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.saves = 0
        self.failures = 0
        self._last_error = float("-inf")

    def load(self) -> dict[str, Any] | None:
        """``{"snapshot": ..., "pending": [...]}`` as saved, or None (none saved, or damaged)."""
        if not self.path.exists() and not self.path.is_symlink():
            return None
        try:
            data = json.loads(
                read_small_file(self.path, str(self.path), limit=MAX_BYTES).decode("utf-8")
            )
            if (
                not isinstance(data, dict)
                or data.get("v") != 1
                or not isinstance(data.get("snapshot"), dict)
                or not isinstance(data.get("pending", []), list)
            ):
                raise ValueError("not a saved alert state (v 1 with a snapshot)")
            return data
        except (ConfigError, ValueError, UnicodeDecodeError) as err:
            self.set_aside(str(err))
            return None

    def set_aside(self, why: str) -> None:
        """Move a file that cannot be used out of the way, for a person to look at."""
        aside = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
        try:
            self.path.replace(aside)
            where = f"moved to {aside.name}"
        except OSError as err:
            where = f"could not be moved aside ({err.strerror or err})"
        log.error(
            "alert state %s cannot be used (%s); %s. Alerts the previous run raised are not "
            "cleared by this one; the wall display expires what no station vouches for",
            self.path,
            why,
            where,
        )

    def save(
        self,
        snapshot: dict[str, Any],
        pending: Sequence[dict[str, Any]] = (),
        *,
        truncated: bool = False,
    ) -> bool:
        """Write atomically; False (logged once a minute) if the disk refused.

        ``truncated``: ``pending`` is only the newest of the unacknowledged events.
        """
        data = json.dumps(
            {
                "v": 1,
                "saved_ts": time.time(),
                "snapshot": snapshot,
                "pending": list(pending),
                "truncated": truncated,
            },
            separators=(",", ":"),
        ).encode("utf-8")
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o640
            )
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            fsync_dir(self.path.parent)
        except OSError as err:
            self.failures += 1
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            now = time.monotonic()
            if now - self._last_error >= ERROR_EVERY_S:
                self._last_error = now
                log.error(
                    "cannot save the alert state to %s (%s; %d failure(s) so far): a restart now "
                    "would not clear what this run raised; alerts themselves still go out",
                    self.path,
                    err.strerror or err,
                    self.failures,
                )
            return False
        self.saves += 1
        return True
