"""What a chaos run found, and the report it prints."""

from __future__ import annotations

import logging
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from .chips import CHIP_FAULTS, ChipFault
from .ledger import Ledger, Raised
from .network import NETWORK, NetFault
from .options import KILLED_ID, RECOVERY_TARGET_S, Options
from .power_cuts import CUT_POINTS, CutResult
from .stations import SensorTally


@dataclass
class Report:
    """Everything a chaos run found; :func:`format_report` prints it."""

    options: Options
    wall_s: float = 0.0
    ledger: Ledger = field(default_factory=Ledger)
    per_station: dict[str, dict[str, int]] = field(default_factory=dict)
    lost: list[Raised] = field(default_factory=list)
    samples: dict[str, dict[str, SensorTally]] = field(default_factory=dict)
    chip_faults: list[ChipFault] = field(default_factory=list)
    child_fault_recoveries: list[tuple[str, float | None]] = field(default_factory=list)
    net_faults: list[NetFault] = field(default_factory=list)
    backlog_s: dict[str, list[float]] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    crashes: dict[str, list[str]] = field(default_factory=dict)
    disk: dict[str, Any] = field(default_factory=dict)
    stale_active: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    holds: dict[str, list[str] | None] = field(
        default_factory=dict
    )  # active alerts each station ended with
    wall: dict[str, list[str]] | None = None  # what the display shows at the end
    wall_mismatch: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    display_restarts: int = 0
    ghosts: int = 0  # alerts shown (wall or retained list) that no station holds
    missing_on_wall: int = 0  # alerts a station holds that the wall does not show
    loop_errors: dict[str, int] = field(default_factory=dict)
    floods: dict[str, Any] = field(default_factory=dict)
    killed_disk: dict[str, Any] = field(default_factory=dict)
    damage: list[dict[str, Any]] = field(default_factory=list)
    lost_by_cause: dict[str, int] = field(default_factory=dict)
    cuts: list[CutResult] = field(default_factory=list)
    sim_s: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def raised(self) -> int:
        return sum(r.get("raised", 0) for r in self.per_station.values())

    @property
    def duplicates(self) -> int:
        return sum(r.get("duplicates", 0) for r in self.per_station.values())

    @property
    def torn(self) -> list[CutResult]:
        return [c for c in self.cuts if c.found not in ("old", "new")]

    @property
    def ok(self) -> bool:
        return (
            not self.lost
            and not any(self.crashes.values())
            and not self.torn
            and not self.errors
            and self.raised > 0
            and not self.stale_active
            and not self.wall_mismatch
            and not any(self.loop_errors.values())
            and not self.floods.get("other_replies")
        )


class LogTally(logging.Handler):
    """Counts the stations' log records by logger and level, keeping the first of each kind sought.

    ``emit`` runs under the handler's own lock (``Handler.handle`` takes it), so it needs none.
    """

    MARKERS = (
        "the disk is full",
        "held in memory now",
        "has room again",
        "could not delete",
        "stored in the file now",
    )

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[tuple[str, str]] = Counter()
        self.first: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.counts[(record.name, record.levelname)] += 1
        for marker in self.MARKERS:
            if marker in message:
                self.first.setdefault(marker, message)

    def matching(self, marker: str) -> str | None:
        return self.first.get(marker)


def _stats(values: list[float | None]) -> str:
    got = [v for v in values if v is not None]
    missing = len(values) - len(got)
    if not got:
        return "n/a" + (f" ({missing} never)" if missing else "")
    text = f"median {statistics.median(got):5.2f}  max {max(got):5.2f}"
    return text + (f"  ({missing} never)" if missing else "")


def format_report(report: Report, command: str = "") -> str:
    o = report.options
    lines = []
    add = lines.append
    add(
        f"chaos: {o.stations} in-process station(s)"
        + (f" + {KILLED_ID} (subprocess, SIGKILLed)" if o.kill else "")
        + f", {o.minutes:g} simulated min at up to {o.speed:g}x, seed {o.seed}; "
        + f"wall {report.wall_s:.0f} s"
    )
    if command:
        add(f"command: {command}")
    add(
        "broker: Mosquitto with config/mosquitto/acl + password file + persistence; stations "
        "reach it "
        "through the chaos link (TCP relay)"
    )
    sims = ", ".join(f"{k} {v / 60:.1f}" for k, v in report.sim_s.items())
    add(f"simulated minutes run: {sims}")
    add("")
    add(
        "ALERT EVENTS (raised = AlertManager events recorded at the source; delivered = seen by "
        "the "
        "persistent QoS 1 witness)"
    )
    add(
        f"  {'station':10} {'raised':>7} {'delivered':>9} {'unique(id,state)':>16} {'copies':>7} "
        f"{'duplicates':>10} {'lost':>5}"
    )
    total = Counter()
    for sid, row in report.per_station.items():
        total.update(row)
        add(
            f"  {sid:10} {row.get('raised', 0):7d} {row.get('delivered', 0):9d} "
            f"{row.get('unique_id_state', 0):16d} {row.get('received', 0):7d} "
            f"{row.get('duplicates', 0):10d} "
            f"{row.get('lost', 0):5d}"
        )
    add(
        f"  {'total':10} {total['raised']:7d} {total['delivered']:9d} "
        f"{total['unique_id_state']:16d} "
        f"{total['received']:7d} {total['duplicates']:10d} {total['lost']:5d}"
    )
    if total["unrecorded"]:
        add(
            f"  ({total['unrecorded']} delivered event(s) with no source record: raised by "
            f"{KILLED_ID} "
            "and stored, then SIGKILLed before its journal line)"
        )
    codes = Counter(r.code for r in report.ledger.raised.values())
    add("  by code: " + ", ".join(f"{c} {n}" for c, n in codes.most_common()))
    for r in report.lost[:20]:
        add(f"  LOST: {r.station} {r.id} {r.state} {r.level} {r.code}")
    add("")
    add("SAMPLES (ImuStats summed over every driver instance; expected = rate x simulated time)")
    add(
        f"  {'station':10} {'sensor':8} {'expected':>9} {'acquired':>9} {'lost':>7} "
        f"{'fifo_resets':>11} "
        f"{'faults':>7} {'reconfig':>8} {'coverage':>8}"
    )
    for sid, sensors in report.samples.items():
        for name, t in sensors.items():
            cover = t.samples / t.expected if t.expected else 0.0
            add(
                f"  {sid:10} {name:8} {t.expected:9d} {t.samples:9d} {t.lost:7d} "
                f"{t.fifo_resets:11d} "
                f"{t.faults:7d} {t.reconfigurations:8d} {cover:8.1%}"
            )
    add(
        "  lost = gaps the driver counted from its timestamps (overflow resets, faults, stalls); "
        "faults = SensorErrors raised by reads"
    )
    add("")
    add(
        f"CHIP FAULTS (simulated seconds from the chip being usable again to the first data; "
        f"target {RECOVERY_TARGET_S:g} s)"
    )
    by_kind: dict[str, list[float | None]] = defaultdict(list)
    for f in report.chip_faults:
        by_kind[f.kind].append(f.recovery_s)
    for kind, rec in report.child_fault_recoveries:
        by_kind[kind].append(rec)
    for kind in CHIP_FAULTS:
        values = by_kind.get(kind, [])
        within = sum(1 for v in values if v is not None and v <= RECOVERY_TARGET_S)
        add(
            f"  {kind:9} n={len(values):4d}  {_stats(values)}  within target {within}/{len(values)}"
        )
    add("")
    add("NETWORK AND PROCESS FAULTS (wall seconds)")
    by_net: dict[str, list[NetFault]] = defaultdict(list)
    for f in report.net_faults:
        by_net[f.kind].append(f)
    for kind, faults in by_net.items():
        if kind not in NETWORK and kind != "SIGKILL":
            continue
        if kind == "SIGKILL":
            clear = [f.reconnect_s.get(KILLED_ID) for f in faults if not f.overlapped]
            during = [f.reconnect_s.get(KILLED_ID) for f in faults if f.overlapped]
            add(
                f"  SIGKILL         n={len(faults):3d}  restart -> 'online' at the broker: "
                f"{_stats(clear)}"
                + (
                    f"; {len(during)} restarted while the network was down: {_stats(during)}"
                    if during
                    else ""
                )
            )
            continue
        downs = [f.duration for f in faults]
        rec = [v for f in faults for v in f.reconnect_s.values()]
        add(
            f"  {kind:15} n={len(faults):3d}  down {min(downs):.1f}-{max(downs):.1f} s; back -> "
            "each "
            f"publisher reconnected: {_stats(rec)}"
        )
        backlog = report.backlog_s.get(kind, [])
        if backlog:
            add(
                f"  {'':15}        alerts raised while down: {len(backlog)}, back -> delivered: "
                f"{_stats(backlog)}"
            )
        for f in faults:
            slow = {k: v for k, v in f.reconnect_s.items() if v is None or v > RECOVERY_TARGET_S}
            if slow:
                add(
                    f"  {'':15}        down {f.duration:.1f} s -> reconnect over "
                    f"{RECOVERY_TARGET_S:g} s: "
                    + ", ".join(
                        f"{k} {'never' if v is None else f'{v:.2f}'}" for k, v in slow.items()
                    )
                )
    restarts = ", ".join(f"{k} {v}" for k, v in report.restarts.items())
    add(f"  station restarts: {restarts}")
    add("")
    d = report.disk
    if d:
        add(
            f"FULL DISK ({d['station']}'s outbox capped at {d['disk_pages']} SQLite pages when the "
            "first "
            "network fault began, for the rest of the run)"
        )
        add(
            f"  stored by kind {d.get('stored')}; dropped by kind {d.get('dropped') or {}}; "
            f"held in memory and sent directly, by kind {d.get('held_total') or {}}"
        )
        dropped_alerts = (d.get("dropped") or {}).get("alert", 0)
        add(
            f"  alerts dropped by the outbox: {dropped_alerts}; "
            f"ERROR lines from the outbox: {d.get('outbox_errors', 0)}"
        )
        for marker, label in (
            ("full_error", "first error"),
            ("held_in_memory", "held"),
            ("room_again", "then"),
        ):
            if d.get(marker):
                add(f"  {label}: {d[marker][:200]}")
        add("")
    k = report.killed_disk
    if k:
        kills = [f for f in report.net_faults if f.kind == "SIGKILL"]
        add(
            f"FULL DISK WITH SIGKILL ({KILLED_ID}: state directory on a "
            f"{'tmpfs filled to the last byte' if k['tmpfs'] else 'plain directory'}"
            f" and its outbox unable to grow)"
        )
        add(
            f"  window(s) {k['windows']} s; SIGKILLs inside: {k['kills_inside']} of {len(kills)}; "
            "alert events held "
            f"in memory and sent directly: {k['held_alerts']} (counted per process until its last "
            "tally)"
        )
        add(
            f"  restarts that found the disk too full to open the outbox file (ran in memory): "
            f"{k['starts_in_memory']}; 'disk is full' lines: {k['full_errors']}; alert state not "
            "saved: "
            f"{k['state_save_errors']} line(s)"
        )
        if report.lost_by_cause:
            add(
                "  lost, by cause: "
                + "; ".join(f"{c}: {n}" for c, n in report.lost_by_cause.items())
            )
        else:
            add("  lost: none (nothing the broker had acknowledged, and nothing it had not)")
        add("")
    if report.damage:
        add(
            f"DAMAGED OUTBOXES ({KILLED_ID}, between a SIGKILL and the restart): "
            f"{len(report.damage)}"
        )
        for dmg in report.damage:
            if dmg["kind"] == "garbage WAL":
                add(
                    f"  {dmg['kind']:14} SQLite ignores a WAL whose checksums fail: the file opens "
                    "as it was"
                )
                continue
            add(
                f"  {dmg['kind'] or '?':14} moved aside with a CRITICAL line: "
                f"{'yes' if dmg['seen'] else 'NO'}; "
                f"rows salvaged: {dmg['salvaged'] if dmg['salvaged'] is not None else '-'}"
            )
        add("")
    f = report.floods
    if f:
        replies = f.get("replies", {})
        add(
            f"SESSION COMMAND FLOODS: {f['floods']} flood(s), {f['commands']} cmd/session "
            "messages, "
            f"{f['presses']} panel button presses; {f['acks']} acknowledgement(s) by a staff name"
        )
        add(
            f"  replies: ok {replies.get('ok', 0)}, busy {replies.get('busy', 0)}, "
            f"other {replies.get('other', 0)} (acknowledgements included)"
        )
        add(
            "  by station: " + ", ".join(f"{k} {v}" for k, v in sorted(replies.items()) if " " in k)
        )
        sent, answered = f.get("sent", {}), f.get("answered", {})
        add(
            "  cmd/session answered / sent: "
            + ", ".join(f"{sid} {answered.get(sid, 0)}/{n}" for sid, n in sorted(sent.items()))
            + " (a flood waits for its stations to be online: an away station's session is "
            "clean, so the broker drops its commands)"
        )
        if f.get("skipped"):
            add(f"  left out of a flood, not online within a wait: {', '.join(f['skipped'])}")
        add("  loop errors caught: " + ", ".join(f"{k} {v}" for k, v in report.loop_errors.items()))
        for line in f.get("other_replies", [])[:5]:
            add(f"  OTHER REPLY: {line}")
        add("")
    if report.holds:
        add(
            "AT THE END: the active alerts each station holds, its retained alerts/active, and "
            "the wall display"
            + (
                f" (restarted {report.display_restarts} time(s) during the run)"
                if report.wall is not None
                else ""
            )
        )
        for sid, mine in report.holds.items():
            shown = (report.wall or {}).get(sid, []) if report.wall is not None else None
            on_wall = "same" if sid not in report.wall_mismatch else "DIFFERENT"
            add(
                f"  {sid:10} holds {len(mine or [])}; retained list "
                f"{'same' if sid not in report.stale_active else 'DIFFERENT'}; wall "
                f"{'-' if shown is None else on_wall}"
            )
        add(
            f"  ghost alerts (shown, held by no station): {report.ghosts}; held but not on the "
            "wall: "
            f"{report.missing_on_wall}"
        )
        add("")
    cuts = Counter((c.point, c.found) for c in report.cuts)
    add(
        "CALIBRATION POWER CUTS (writer SIGKILLed; the file must be the old or the new one): "
        f"{len(report.cuts)}"
    )
    for point in CUT_POINTS:
        found = {f: n for (p, f), n in cuts.items() if p == point}
        add(f"  {point:14} " + ", ".join(f"{k} {v}" for k, v in sorted(found.items())))
    for c in report.torn:
        add(f"  BAD: {c.point} while saving {c.last_started}: {c.found} {c.detail}")
    add("")
    for sid, (mine, seen) in report.stale_active.items():
        add(
            f"STALE: {sid}'s retained alerts/active at the broker lists {seen}, the station holds "
            f"{mine}"
        )
    for sid, (mine, seen) in report.wall_mismatch.items():
        add(f"WALL: {sid}: the wall shows {seen}, the station holds {mine}")
    for sid, crashes in report.crashes.items():
        for c in crashes:
            add(f"CRASH {sid}: {c.strip().splitlines()[-1] if c.strip() else c}")
    for e in report.errors:
        add(f"ERROR: {e}")
    verdict = "PASS" if report.ok else "FAIL"
    add(
        f"{verdict}: {total['lost']} alert event(s) lost of {total['raised']} raised; "
        f"{total['duplicates']} duplicate(s) dropped by (id, state); {report.ghosts} ghost "
        "alert(s); "
        f"{len(report.stale_active)} stale active list(s); {len(report.wall_mismatch)} wall "
        "mismatch(es); "
        f"{sum(report.loop_errors.values())} loop error(s)"
    )
    return "\n".join(lines)
