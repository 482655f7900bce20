"""A chaos run: start the broker, the witnesses and the stations, play the plan, drain, and
collect what happened."""

from __future__ import annotations

import logging
import random
import tempfile
import threading
import time
import traceback
from pathlib import Path

from tests.support.relay import Relay

from .collect import collect
from .killed import KilledStation
from .ledger import Ledger
from .network import NetFault, connects, plan_network, squeeze_disk, watch_reconnects
from .options import DISPLAY_USER, KILLED_ID, OPERATOR_USER, WITNESS_USER, Options
from .report import LogTally, Report
from .staff import Operator
from .stations import StationThread, station_config
from .witness import AlertWitness, DisplayWitness, start_broker


def run_chaos(options: Options) -> Report:
    """Run everything the module docstring describes and return what happened."""
    report = Report(options)
    tally = LogTally()
    root = logging.getLogger("monitor")
    root.addHandler(tally)
    level = root.level
    root.setLevel(logging.WARNING)  # whatever the console shows, the tally sees warnings
    workdir_ctx = tempfile.TemporaryDirectory(prefix="chaos-") if options.workdir is None else None
    workdir = Path(workdir_ctx.name) if workdir_ctx else options.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        _run(options, workdir, report, tally)
    finally:
        root.removeHandler(tally)
        root.setLevel(level)
        report.wall_s = time.monotonic() - started
        if workdir_ctx:
            workdir_ctx.cleanup()
    return report


def _run(options: Options, workdir: Path, report: Report, tally: LogTally) -> None:
    rng = random.Random(options.seed)
    ids = [f"bench-{i + 1}" for i in range(options.stations)]
    broker, secrets = start_broker(
        workdir, [*ids, KILLED_ID, WITNESS_USER, OPERATOR_USER, DISPLAY_USER]
    )
    link = Relay(broker.port)
    ledger = report.ledger
    witness = AlertWitness(broker, ledger)
    operator = Operator(broker, random.Random(rng.random()))
    display = DisplayWitness(broker, [*ids, KILLED_ID]) if options.display else None
    stations: list[StationThread] = []
    killed: KilledStation | None = None
    try:
        if not witness.subscribed.wait(10):
            raise RuntimeError("the witness could not subscribe")
        if display is not None:
            display.start()
        for i, sid in enumerate(ids):
            cfg = station_config(i, workdir / sid, options, link.port, secrets)
            # The first station's disk fills up (see squeeze_disk): twice the chip faults make
            # sure its backlog outgrows the disk while the broker is away.
            gap = options.chip_gap_s / 2 if i == 0 else options.chip_gap_s
            stations.append(StationThread(cfg, ledger, options, random.Random(rng.random()), gap))
        for s in stations:
            s.start()
        for s in stations:
            s.started.wait(30)
        if options.kill:
            kdir = workdir / KILLED_ID
            kdir.mkdir()
            killed = KilledStation(kdir, options, link.port, secrets)
            killed.spawn()
        plan = plan_network(rng, options.wall_s, options)
        report.net_faults = plan
        _play(
            plan,
            broker,
            link,
            stations,
            killed,
            witness,
            report,
            operator,
            display,
            [*ids, KILLED_ID],
        )
        for s in stations:
            s.reached_end.wait(options.wall_s * 3 + 60)
        if killed is not None and killed.disk_full_since is not None:
            killed.free_disk()
        _drain(stations, ledger, report)
    finally:
        for s in stations:
            try:
                s.stop()
            except Exception:
                report.errors.append(f"{s.id}: stopping failed:\n{traceback.format_exc()}")
        if killed is not None:
            killed.stop()
        try:
            collect(stations, killed, witness, report, tally, operator, display)
        finally:
            operator.close()
            if display is not None:
                display.stop()
            if killed is not None:
                killed.unmount()
            witness.close()
            link.close()
            broker.close()


def _play(
    plan: list[NetFault],
    broker,
    link: Relay,
    stations: list[StationThread],
    killed: KilledStation | None,
    witness: AlertWitness,
    report: Report,
    operator: Operator | None = None,
    display: DisplayWitness | None = None,
    ids: list[str] = (),
) -> None:
    """Carry out the plan in wall time, measuring how long reconnecting took."""
    t0 = time.monotonic()
    watchers: list[threading.Thread] = []
    disk_station = stations[0] if stations else None
    for fault in plan:
        delay = t0 + fault.at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if killed is not None:
            killed.check()
        if fault.kind == "SIGKILL":
            fault.down_at = time.monotonic()
            killed.kill(fault.damage)
            fault.up_at = killed.spawns[-1]
            continue
        if fault.kind in ("disk full", "disk room"):
            fault.down_at = time.monotonic()
            if killed is not None:
                killed.fill_disk() if fault.kind == "disk full" else killed.free_disk()
            continue
        if fault.kind == "flood":
            if operator is not None:
                targets = [i for i in ids if killed is not None or i != KILLED_ID]
                operator.flood(targets, stations, witness)
            continue
        if fault.kind == "ack":
            if operator is not None:
                operator.ack(witness)
            continue
        if fault.kind == "display restart":
            if display is not None:
                try:
                    display.restart()
                except Exception:
                    report.errors.append(f"the display did not restart:\n{traceback.format_exc()}")
            continue
        if disk_station is not None and "disk_pages" not in report.disk:
            report.disk["station"] = disk_station.id
            report.disk["disk_pages"] = squeeze_disk(disk_station)
        before = connects(stations)
        fault.down_at = time.monotonic()
        if fault.kind == "broker restart":
            broker.restart(down_for=fault.duration)
        else:
            link.set_mode("refused" if fault.kind == "link refused" else "blackhole")
            time.sleep(fault.duration)
            link.set_mode("up")
        fault.up_at = time.monotonic()
        watchers.append(watch_reconnects(fault, stations, before))
    for w in watchers:
        w.join(70)


def _drain(
    stations: list[StationThread], ledger: Ledger, report: Report, timeout: float = 90.0
) -> None:
    """Let the stations run on without chaos until every event raised so far is delivered."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(s.settled() for s in stations) and not ledger.missing():
            return
        time.sleep(0.2)
    report.errors.append(
        f"not settled {timeout:.0f} s after the chaos ended "
        f"({len(ledger.missing())} event(s) still undelivered)"
    )
