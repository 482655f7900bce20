"""After the stop: the killed station's journal into the ledger, the final deliveries, and
every figure of the report."""

from __future__ import annotations

import datetime
import math
import re
import time
from collections import Counter, defaultdict

from .chips import ChipChaos
from .killed import KilledStation
from .ledger import Raised
from .network import NETWORK
from .options import KILLED_ID
from .report import LogTally, Report
from .staff import Operator
from .stations import SensorTally, StationThread
from .witness import AlertWitness, DisplayWitness


def collect(
    stations: list[StationThread],
    killed: KilledStation | None,
    witness: AlertWitness,
    report: Report,
    tally: LogTally,
    operator: Operator | None = None,
    display: DisplayWitness | None = None,
) -> None:
    """After the stop: the child's journal into the ledger, final deliveries, and every figure."""
    ledger = report.ledger
    for s in stations:
        # A fault the end of the run cut short (the chip had not had GIVE_UP_S to deliver again)
        # proves nothing either way: left out, as the subprocess station leaves it out.
        end = s.clock.now()
        report.chip_faults += [
            f
            for f in (s.chaos.faults if s.chaos else [])
            if f.recovered_at is not None or end - f.back_at >= ChipChaos.GIVE_UP_S
        ]
        report.samples[s.id] = s.tallies()
        report.sim_s[s.id] = s.sim_elapsed
        report.crashes[s.id] = s.crashes + ([s.error] if s.error else [])
        report.restarts[s.id] = len(s.crashes)
        report.loop_errors[s.id] = s.loop_errors
    journal: list[dict] = []
    if killed is not None:
        journal, stats, faults, notes = killed.read_journal()
        for e in journal:
            ledger.record_raised(KILLED_ID, e["id"], e["state"], e["level"], e["code"], e["at"])
        report.samples[KILLED_ID] = _child_tallies({pid: e["stats"] for pid, e in stats.items()})
        report.sim_s[KILLED_ID] = sum(e["stats"].get("sim_s", 0.0) for e in stats.values())
        report.loop_errors[KILLED_ID] = sum(e.get("loop_errors", 0) for e in stats.values())
        report.child_fault_recoveries = [(f["fault"], f["recovery_s"]) for f in faults]
        report.restarts[KILLED_ID] = killed.kills + len(killed.unexpected_exits)
        report.crashes[KILLED_ID] = killed.unexpected_exits
        outages = [(f.down_at, f.up_at) for f in report.net_faults if f.kind in NETWORK]
        for fault in report.net_faults:
            if fault.kind == "SIGKILL":
                online = witness.online_after(KILLED_ID, fault.up_at)
                fault.reconnect_s[KILLED_ID] = None if online is None else online - fault.up_at
                # A restart while the broker is unreachable waits for it: not the restart's cost.
                end = online if online is not None else math.inf
                fault.overlapped = any(down < end and up > fault.up_at for down, up in outages)
        _collect_killed(killed, stats, notes, report)
    deadline = time.monotonic() + 20  # the last events of the stop are still on their way
    while ledger.missing() and time.monotonic() < deadline:
        time.sleep(0.1)
    report.lost = ledger.missing()
    report.per_station = ledger.summary()
    report.backlog_s = _backlogs(report)
    _collect_disk(stations, report, tally)
    if killed is not None:
        report.lost_by_cause = _lost_by_cause(report.lost, journal, killed)
    if operator is not None:
        with witness.lock:
            report.floods = {
                "floods": operator.floods,
                "commands": operator.commands,
                "presses": operator.presses,
                "acks": operator.acks,
                "replies": dict(witness.replies),
                "sent": dict(operator.sent),
                "answered": dict(witness.answered),
                "skipped": list(operator.skipped),
                "other_replies": list(witness.other_replies),
            }
    # What each station ends up holding, against its retained list and the wall.
    for s in stations:
        if s.runner is not None:
            report.holds[s.id] = sorted(a.id for a in s.runner.station.alerts.active())
    if killed is not None:
        report.holds[KILLED_ID] = killed.holds()
    time.sleep(1.0)
    with witness.lock:
        retained = {
            sid: sorted(a["id"] for a in lst.get("alerts", []))
            for sid, lst in witness.active.items()
        }
    for sid, mine in report.holds.items():
        if mine is None:
            report.errors.append(f"{sid}: its saved alert state could not be read at the end")
            continue
        seen = retained.get(sid, [])
        if mine != seen:
            report.stale_active[sid] = (mine, seen)
    if display is not None:
        report.display_restarts = display.restarts
        wall: dict[str, list[str]] = {}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                wall = display.wall()
            except Exception as err:
                wall = {"?": [f"the display did not answer: {err}"]}
            if all(wall.get(sid, []) == (mine or []) for sid, mine in report.holds.items()):
                break
            time.sleep(0.5)
        report.wall = wall
        for sid in sorted(set(wall) | set(report.holds)):
            mine, shown = report.holds.get(sid) or [], wall.get(sid, [])
            if mine != shown:
                report.wall_mismatch[sid] = (mine, shown)
        held = {i for ids in report.holds.values() for i in (ids or [])}
        report.ghosts = len({i for ids in wall.values() for i in ids} - held) + len(
            {i for ids in retained.values() for i in ids} - held
        )
        report.missing_on_wall = len(held - {i for ids in wall.values() for i in ids})


def _collect_killed(
    killed: KilledStation, stats: dict[int, dict], notes: list[dict], report: Report
) -> None:
    """The killed station's full disk and damaged outboxes, from its journal and its log."""
    d = report.killed_disk
    d["tmpfs"] = killed.tmpfs
    d["windows"] = [round(b - a, 1) for a, b in killed.full_windows]
    d["kills_inside"] = sum(1 for _, _, full, _ in killed.kill_log if full)
    d["held_alerts"] = sum(e.get("held", 0) for e in stats.values())
    d["starts_in_memory"] = sum(
        1 for n in notes if n.get("event") == "started" and n.get("in_memory")
    )
    log_text = killed.log_path.read_text(errors="replace")
    d["full_errors"] = log_text.count("the disk is full")
    d["state_save_errors"] = log_text.count("cannot save the alert state")
    damaged = []
    for line in log_text.splitlines():
        if "monitor.mqtt.outbox" in line and "is damaged (" in line:
            try:
                when = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            except ValueError:
                continue
            damaged.append((when, line))
    kinds = [damage for _, _, _, damage in killed.kill_log if damage]
    walls = [*killed.kill_walls, math.inf]
    for i, (_, _, _, kind) in enumerate(killed.kill_log):
        if not kind:
            continue
        # the line the restart after this kill wrote (before the next kill)
        line = next((text for when, text in damaged if walls[i] - 1.0 <= when < walls[i + 1]), None)
        salvaged = None
        if line:
            m = re.search(r"(\d+) message\(s\) salvaged", line)
            salvaged = int(m.group(1)) if m else None
        report.damage.append({"kind": kind, "seen": line is not None, "salvaged": salvaged})
    if len(damaged) < len(kinds):
        # "garbage WAL" is not damage to SQLite (it ignores a WAL whose checksums fail): no line is
        # due
        due = sum(1 for k in kinds if k != "garbage WAL")
        if sum(1 for d in report.damage if d["seen"]) < due:
            report.errors.append(
                f"{due} damaged outbox(es), {len(damaged)} CRITICAL 'is damaged' line(s) "
                "in the killed station's log"
            )


def _lost_by_cause(
    lost: list[Raised], journal: list[dict], killed: KilledStation
) -> dict[str, int]:
    """Lost events of the killed station by what happened to the process that journaled them."""
    pid_of = {(e["id"], e["state"], e["level"]): e["pid"] for e in journal}
    kills = {pid: (full, damage) for pid, _, full, damage in killed.kill_log}
    out: Counter[str] = Counter()
    for r in lost:
        if r.station != KILLED_ID:
            out["lost otherwise"] += 1
            continue
        full, damage = kills.get(pid_of.get((r.id, r.state, r.level)), (False, None))
        if full:
            out["journaled, SIGKILLed on a full disk before the broker acknowledged it"] += 1
        elif damage:
            out[f"journaled, SIGKILLed, outbox then damaged ({damage})"] += 1
        else:
            out["journaled, SIGKILLed"] += 1
    return dict(out)


def _child_tallies(stats: dict[int, dict]) -> dict[str, SensorTally]:
    rates = {"wrist": 250.0, "chest": 208.0}
    out = {name: SensorTally(rate) for name, rate in rates.items()}
    for st in stats.values():
        for name, tally in out.items():
            row = st.get(name, {})
            tally.samples += row.get("samples", 0)
            tally.lost += row.get("lost", 0)
            tally.fifo_resets += row.get("fifo_resets", 0)
            tally.faults += row.get("faults", 0)
            tally.reconfigurations += row.get("reconfigurations", 0)
            tally.sim_s += st.get("sim_s", 0.0)
    return out


def _backlogs(report: Report) -> dict[str, list[float]]:
    """Per network fault kind: for events raised while it lasted, delivery time after it ended."""
    out: dict[str, list[float]] = defaultdict(list)
    for fault in report.net_faults:
        if fault.kind not in NETWORK:
            continue
        for key, r in report.ledger.raised.items():
            if r.station == KILLED_ID or not fault.down_at <= r.at <= fault.up_at:
                continue
            got = report.ledger.delivered_at(key)
            if got is not None:
                out[fault.kind].append(max(0.0, got - fault.up_at))
    return dict(out)


def _collect_disk(stations: list[StationThread], report: Report, tally: LogTally) -> None:
    disk = report.disk
    station = next((s for s in stations if s.id == disk.get("station")), None)
    if station is None or station.runner is None or station.runner.outbox is None:
        return
    stats = station.runner.outbox.stats()
    disk["stored"] = dict(stats.stored)
    disk["dropped"] = dict(stats.dropped)
    disk["held_total"] = dict(stats.held_total)
    disk["full_error"] = tally.matching("the disk is full")
    disk["held_in_memory"] = tally.matching("held in memory now")
    disk["room_again"] = tally.matching("has room again") or tally.matching(
        "stored in the file now"
    )
    disk["outbox_errors"] = tally.counts[("monitor.mqtt.outbox", "ERROR")]
