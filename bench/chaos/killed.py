"""The station that is SIGKILLed: a subprocess with its own journal, full disks and damaged
outboxes between a kill and its restart."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from monitor.clock import SimClock
from monitor.config import load
from monitor.runner import StationRunner
from tests.support.disk import fill, mount_tmpfs, unmount
from tests.support.relay import Relay

from .chips import ChipChaos
from .options import ACK_SILENCE_S, COOLDOWN_S, KEEPALIVE_S, KILLED_ID, ROOT, Options
from .stations import Pacer

CHILD_TOML = """\
[station]
id = "{id}"
simulate = true
state_dir = "{state}"
seed = {seed}

[[imu]]
name = "wrist"
chip = "mpu6050"
rate_hz = 250
scenario = "static_holds"

[[imu]]
name = "chest"
chip = "lsm6ds"
address = 0x6A
rate_hz = 208
placement = "body"
exercised = false
scenario = "companion"

[alerts]
cooldown_s = {cooldown}
ack_silence_s = {ack_silence}

[mqtt]
host = "{host}"
port = {port}
username = "{id}"
password_file = "{password_file}"
keepalive = {keepalive}
"""


class JournalHandler(logging.Handler):
    """Writes every alert event the runner journals (``monitor.alert``, before storing) as JSON."""

    def __init__(self, note: Callable[..., None]):
        super().__init__(logging.INFO)
        self.note = note

    def emit(self, record: logging.LogRecord) -> None:
        alert = getattr(record, "alert", None)
        if isinstance(alert, dict):
            self.note(
                id=alert.get("id"),
                state=alert.get("state"),
                level=alert.get("level"),
                code=alert.get("code"),
            )


def squeeze(outbox, on: bool) -> None:
    """A full disk for the outbox's SQLite (on), or room again (off).

    The file may not grow by a page; and since SQLite would first reuse the pages that
    acknowledged rows freed (a real full disk often lets a WAL database go on for a
    while), every insert meets SQLITE_FULL, as on a disk with no free page left.
    """
    with outbox._lock:
        if outbox._db is None:
            return
        pages = outbox._db.execute("PRAGMA page_count").fetchone()[0]
        outbox._db.execute(f"PRAGMA max_page_count={int(pages) if on else 1073741823}")
        if on:

            def full(*args, **kwargs):
                raise sqlite3.OperationalError("database or disk is full")

            outbox._add_durably = full
        elif "_add_durably" in vars(outbox):
            del outbox._add_durably


def child_main(
    config_path: str,
    journal_path: str,
    speed: float,
    seed: int,
    gap_s: float,
    quick: bool,
    full_flag: str | None = None,
) -> int:
    """The station subprocess: a StationRunner on a SimClock, paced, with chip chaos, until SIGTERM.

    Every alert event is appended to the journal (one JSON line, flushed) by a handler on the
    runner's ``monitor.alert`` log, which the runner writes before it saves or stores the
    event: what a SIGKILL interrupts was journaled. While ``full_flag`` exists the disk is
    full: the outbox may not grow (the state directory is also filled, when it is a tmpfs).
    """
    logging.basicConfig(level=logging.ERROR, format="%(asctime)s child %(name)s: %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with open(journal_path, "a", buffering=1, encoding="utf-8") as journal:

        def note(**entry: Any) -> None:
            journal.write(json.dumps({"pid": os.getpid(), "at": time.monotonic(), **entry}) + "\n")

        alerts_log = logging.getLogger("monitor.alert")
        alerts_log.setLevel(logging.INFO)
        alerts_log.propagate = False
        alerts_log.addHandler(JournalHandler(note))
        config = load(config_path)
        clock = SimClock()
        runner = StationRunner(config, simulate=True, clock=clock)
        chaos = ChipChaos(
            config.station.id,
            config,
            runner.bus,
            clock,
            random.Random(seed),
            gap_s,
            quick,
            on_fault=lambda f: note(fault=f.kind, sensor=f.sensor, recovery_s=f.recovery_s),
        )
        pacer = Pacer(speed)
        runner.start()
        note(
            event="started",
            in_memory=bool(runner.outbox and runner.outbox.in_memory),
            salvaged=runner.outbox.salvaged if runner.outbox else 0,
        )
        drivers: dict[int, tuple[str, Any]] = {}
        first = clock.now()
        squeezed = False
        while not stop.is_set():
            if full_flag and runner.cycles % 10 == 0 and runner.outbox is not None:
                full = os.path.exists(full_flag)
                if full != squeezed:
                    squeeze(runner.outbox, full)
                    squeezed = full
                    note(event="disk full" if full else "disk room")
            chaos.before_cycle()
            runner.cycle()
            step = runner.last_step
            if step is not None:
                chaos.after_cycle(step)
            for slot in runner.station.imus:
                if slot.driver is not None:
                    drivers[id(slot.driver)] = (slot.name, slot.driver)
            if runner.cycles % 50 == 0:  # a running tally; the last one before a SIGKILL counts
                held = runner.outbox.stats().held_total.get("alert", 0) if runner.outbox else 0
                note(
                    stats=_child_stats(drivers, clock.now() - first),
                    held=held,
                    loop_errors=runner.errors.count
                    + (runner.uplink.errors.count if runner.uplink else 0),
                )
            clock.sleep(runner.station.poll_interval)
            pacer.wait(clock.now())
        runner.stop()
        held = runner.outbox.stats().held_total.get("alert", 0) if runner.outbox else 0
        note(
            stats=_child_stats(drivers, clock.now() - first),
            event="stopped",
            held=held,
            loop_errors=runner.errors.count + (runner.uplink.errors.count if runner.uplink else 0),
            active=[a.id for a in runner.station.alerts.active()],
        )
        return 0


def _child_stats(drivers: dict[int, tuple[str, Any]], sim_s: float) -> dict[str, Any]:
    out: dict[str, Any] = {"sim_s": sim_s}
    for name, d in drivers.values():
        row = out.setdefault(name, Counter())
        for f in ("samples", "lost", "fifo_resets", "faults", "reconfigurations"):
            row[f] += getattr(d.stats, f)
    return out


def damage_outbox(path: Path, kind: str) -> None:
    """Damage an outbox file (and its WAL) as ``kind`` says, as a power cut or a bad card does."""
    wal = Path(f"{path}-wal")
    if kind in ("half", "page two") and path.is_file():
        # After a SIGKILL the rows may all be in the WAL: fold it into the file first, so
        # that the damage hits pages that hold them.
        try:
            with sqlite3.connect(path) as db:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass
    if kind == "half" and path.is_file():
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "page two" and path.is_file():
        data = bytearray(path.read_bytes())
        if len(data) > 4096:
            data[4096:8192] = bytes(range(256)) * 16
            path.write_bytes(bytes(data))
    elif kind == "zero length":
        path.write_bytes(b"")
        wal.unlink(missing_ok=True)
    elif kind == "directory":
        for p in (path, wal, Path(f"{path}-shm")):
            p.unlink(missing_ok=True)
        path.mkdir()
    elif kind == "garbage WAL":
        wal.write_bytes(b"\x37\x7f\x06\x82" + os.urandom(20000))
    elif kind == "WAL directory":
        wal.unlink(missing_ok=True)
        wal.mkdir()


class KilledStation:
    """The station that gets SIGKILLed: ``python -m bench.chaos --child``, restarted on the same
    state directory.

    Its state directory is a tmpfs when this runs as root, so that its disk can really be
    filled (:meth:`fill_disk`); some restarts find its outbox damaged (:meth:`kill`).
    """

    def __init__(self, workdir: Path, options: Options, link_port: int, secrets: Path):
        self.workdir = workdir
        self.options = options
        self.state = workdir / "state"
        self.tmpfs = mount_tmpfs(self.state) is None
        self.journal = workdir / "journal.jsonl"
        self.config = workdir / "monitor.toml"
        self.full_flag = workdir / "disk-full"
        self.config.write_text(
            CHILD_TOML.format(
                id=KILLED_ID,
                state=self.state,
                seed=options.seed * 10 + 9,
                cooldown=COOLDOWN_S,
                ack_silence=ACK_SILENCE_S,
                host=Relay.host,
                port=link_port,
                password_file=secrets / f"{KILLED_ID}.pw",
                keepalive=KEEPALIVE_S,
            )
        )
        self.proc: subprocess.Popen | None = None
        self.spawns: list[float] = []  # monotonic time of each start
        self.kills = 0
        # (pid, when, disk full, damage)
        self.kill_log: list[tuple[int, float, bool, str | None]] = []
        self.kill_walls: list[float] = []  # time.time() of each kill
        self.unexpected_exits: list[str] = []
        self.disk_full_since: float | None = None
        self.full_windows: list[tuple[float, float]] = []
        self.log_path = workdir / "child.log"

    def spawn(self) -> None:
        args = [
            sys.executable,
            "-m",
            "bench.chaos",
            "--child",
            str(self.config),
            "--journal",
            str(self.journal),
            "--speed",
            str(self.options.speed),
            "--seed",
            str(self.options.seed * 1000 + len(self.spawns)),
            "--gap",
            str(self.options.chip_gap_s),
            "--full-flag",
            str(self.full_flag),
            *(["--quick"] if self.options.quick else []),
        ]
        self.spawns.append(time.monotonic())
        # The child keeps its own copy of the file: ours is closed once it has started.
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)

    def kill(self, damage: str | None = None) -> None:
        """SIGKILL, as a power cut or the OOM killer would; maybe damage the outbox; start again."""
        self.check()
        pid = self.proc.pid
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.kills += 1
        self.kill_log.append((pid, time.monotonic(), self.disk_full_since is not None, damage))
        self.kill_walls.append(time.time())
        if damage is not None:
            damage_outbox(self.state / "outbox.sqlite3", damage)
        self.spawn()

    def fill_disk(self) -> None:
        """The disk is full from now on: the tmpfs filled to the last byte, the outbox capped."""
        self.disk_full_since = time.monotonic()
        self.full_flag.touch()
        if self.tmpfs:
            fill(self.state)

    def free_disk(self) -> None:
        for filler in self.state.glob("filler*"):
            filler.unlink(missing_ok=True)
        self.full_flag.unlink(missing_ok=True)
        if self.disk_full_since is not None:
            self.full_windows.append((self.disk_full_since, time.monotonic()))
        self.disk_full_since = None

    def check(self) -> None:
        """A child that died on its own is a crash: record it and start it again (systemd would)."""
        if self.proc is not None and self.proc.poll() is not None:
            self.unexpected_exits.append(f"exit status {self.proc.returncode} (see child.log)")
            self.spawn()

    def stop(self) -> None:
        """SIGTERM: the runner flushes the outbox and says offline."""
        self.check()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.unexpected_exits.append("did not stop on SIGTERM within 30 s")
            self.proc.kill()
            self.proc.wait()

    def holds(self) -> list[str] | None:
        """The active alert ids the stopped station saved (its alert state), or None if
        unreadable."""
        try:
            saved = json.loads((self.state / "alerts.json").read_text())
            return sorted(t["alert"]["id"] for t in saved["snapshot"]["tracks"] if t.get("alert"))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def unmount(self) -> None:
        if self.tmpfs:
            unmount(self.state)

    def read_journal(self) -> tuple[list[dict], dict[int, dict], list[dict], list[dict]]:
        """(alert events, last stats per process, finished faults, notes); torn lines skipped."""
        events, stats, faults, notes = [], {}, [], []
        for line in self.journal.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # SIGKILL in the middle of a line
            if "id" in entry:
                events.append(entry)
            elif "stats" in entry:
                stats[entry["pid"]] = entry
                if "event" in entry:
                    notes.append(entry)
            elif "fault" in entry:
                faults.append(entry)
            else:
                notes.append(entry)
        return events, stats, faults, notes
