"""``python -m bench.chaos``: the arguments, the run, the report; and the entry points of
the subprocesses a run starts (the killed station, the calibration writer)."""

from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
from pathlib import Path

from .options import Options


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    package = sys.modules[__package__]  # its docstring says what a run does
    ap = argparse.ArgumentParser(
        prog="python -m bench.chaos", description=(package.__doc__ or "").splitlines()[0]
    )
    ap.add_argument("--stations", type=int, default=None, help="in-process stations (3; --quick 2)")
    ap.add_argument("--minutes", type=float, default=None, help="simulated minutes (60; --quick 4)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--speed",
        type=float,
        default=None,
        help="simulated seconds per wall second (12; --quick 10)",
    )
    ap.add_argument("--quick", action="store_true", help="a short run with short faults")
    ap.add_argument(
        "--no-kill", action="store_true", help="without the SIGKILLed subprocess station"
    )
    ap.add_argument(
        "--no-display", action="store_true", help="without the wall display as a witness"
    )
    ap.add_argument("--workdir", type=Path, default=None, help="keep the run's files here")
    ap.add_argument("--verbose", action="store_true", help="the stations' warnings too")
    # the subprocesses a run starts
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--journal", help=argparse.SUPPRESS)
    ap.add_argument("--gap", type=float, default=12.0, help=argparse.SUPPRESS)
    ap.add_argument("--full-flag", help=argparse.SUPPRESS)
    ap.add_argument("--calibration-writer", help=argparse.SUPPRESS)
    ap.add_argument("--cut", default="random", help=argparse.SUPPRESS)
    ap.add_argument("--naive", action="store_true", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def options_from(args: argparse.Namespace) -> Options:
    quick = args.quick
    return Options(
        stations=args.stations if args.stations is not None else (2 if quick else 3),
        minutes=args.minutes if args.minutes is not None else (4.0 if quick else 60.0),
        seed=args.seed,
        speed=args.speed if args.speed is not None else (10.0 if quick else 12.0),
        quick=quick,
        kill=not args.no_kill,
        workdir=args.workdir,
        display=not args.no_display,
        calibration_cuts=8 if quick else 24,
        chip_gap_s=8.0 if quick else 12.0,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Each entry point imports what it needs: a subprocess station should start as fast as one.
    if args.child:
        from .killed import child_main

        return child_main(
            args.child,
            args.journal,
            args.speed or 12.0,
            args.seed,
            args.gap,
            args.quick,
            args.full_flag,
        )
    if args.calibration_writer:
        from .power_cuts import calibration_writer_main

        return calibration_writer_main(args.calibration_writer, args.cut, args.naive)
    from .power_cuts import calibration_power_cuts
    from .report import format_report
    from .run import run_chaos

    # The stations log every fault they survive as a warning; here that is the point, not news.
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING if args.verbose else logging.CRITICAL)
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(console)
    options = options_from(args)
    report = run_chaos(options)
    with tempfile.TemporaryDirectory(prefix="chaos-cuts-") as tmp:
        report.cuts = calibration_power_cuts(
            Path(tmp), random.Random(options.seed), options.calibration_cuts
        )
    command = [Path(sys.executable).name, "-m", "bench.chaos", *sys.argv[1:]]
    print(format_report(report, " ".join(command)))
    return 0 if report.ok else 1
