"""``gym-monitor history``: run the history service, or act on what it keeps.

    gym-monitor history [--config /etc/gym-monitor/history.toml]            # the service
    gym-monitor history --config ... forget a3k7...                         # delete, clear retained
    gym-monitor history --config ... export a3k7... > a3k7.json             # everything kept
    gym-monitor history --config ... name a3k7... "Sam"                     # name on the wall
    gym-monitor history --config ... prune                                  # retention, now
    gym-monitor history --config ... migrate                                # schema only

Heavy imports wait until a subcommand runs, so ``gym-monitor --help`` stays quick.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_CONFIG = Path("/etc/gym-monitor/history.toml")
DESCRIPTION = (
    "The gym's memory: store session records, alerts, hydration and the tremor "
    "trace from MQTT, own the athletes' profiles, and serve the coach's pages."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"history.toml (default {DEFAULT_CONFIG} if it exists, else built-in "
        "defaults: SQLite in /var/lib/gym-history, broker on 127.0.0.1)",
    )
    sub = p.add_subparsers(dest="history_command")
    sub.add_parser("run", help="run the service (the default)")
    f = sub.add_parser(
        "forget",
        help="delete everything kept about an athlete and clear their retained profile and card",
    )
    f.add_argument("athlete")
    f.add_argument("--gym", help="the gym (a chain's central store; default: history.gym)")
    e = sub.add_parser("export", help="print everything kept about an athlete as JSON")
    e.add_argument("athlete")
    e.add_argument("--gym")
    n = sub.add_parser("name", help="set the name the wall shows for an athlete")
    n.add_argument("athlete")
    n.add_argument("display_name")
    sub.add_parser("prune", help="apply the retention rules now")
    sub.add_parser("migrate", help="create or upgrade the database schema, then exit")


def _config(path: Path | None):
    from .config import HistoryConfig, load

    if path is not None:
        return load(path)
    return load(DEFAULT_CONFIG) if DEFAULT_CONFIG.exists() else HistoryConfig()


def run_from_args(args: argparse.Namespace) -> int:
    from .incoming import ATHLETE_ID
    from .service import forget_offline, name_offline, open_store, run_history

    config = _config(args.config)
    command = args.history_command or "run"
    if command == "run":
        return run_history(config)
    athlete = str(getattr(args, "athlete", ""))  # "": a command that names nobody
    if hasattr(args, "athlete") and not ATHLETE_ID.fullmatch(athlete):
        print(f"gym-monitor history: {athlete!r} is not an athlete id", file=sys.stderr)
        return 2
    if command == "forget":
        counts = forget_offline(config, athlete, args.gym)
        print(
            f"forgot {athlete}: {sum(counts.values())} row(s) deleted "
            f"({', '.join(f'{k} {v}' for k, v in counts.items() if v) or 'none kept'}); "
            "retained profile and card cleared"
        )
        return 0
    if command == "name":
        name_offline(config, athlete, args.display_name)
        print(f"{athlete} shows as {args.display_name!r} on the wall")
        return 0
    store = open_store(config)
    try:
        store.migrate()
        if command == "export":
            json.dump(
                store.export(args.gym or config.gym, athlete), sys.stdout, indent=1, default=str
            )
            print()
        elif command == "prune":
            r = config.retention
            counts = store.prune(trace_days=r.trace_days, records_months=r.records_months)
            print(
                "deleted: " + (", ".join(f"{k} {v}" for k, v in counts.items() if v) or "nothing")
            )
        elif command == "migrate":
            print("database schema is up to date")
    finally:
        store.close()
    return 0
