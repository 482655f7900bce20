"""``gym-monitor``: the station's command line.

Each subcommand is a small function taking parsed arguments and returning an
exit code. Problems a person can fix (a bad config, a missing chip) end with
one clear line on stderr and a non-zero exit, never a traceback.

Exit codes: 0 done (``run``: stopped by SIGTERM or SIGINT); 1 an error that is
not the configuration's (a chip not found by ``probe``, a file that cannot be
written); 2 the configuration is wrong (one ``config error:`` line per
mistake), which systemd should not restart (RestartPreventExitStatus=2), and
argparse's usage errors; 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from . import __version__
from .config import Config, load
from .errors import ConfigError, MonitorError


def _load_config(path: str | None) -> Config:
    return load(path) if path else Config()


def _positive(text: str) -> float:
    """argparse type: a finite number above 0.

    ``--seconds -5`` or ``--speed 0`` is a mistake, and the error says so.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a number above 0, not {text}")
    return value


def cmd_check_config(args: argparse.Namespace) -> int:
    config = load(args.config)
    imus = ", ".join(f"{i.name} ({i.chip} at 0x{i.address:02X})" for i in config.imus)
    scale = f"; scale {config.scale.mode} at 0x{config.scale.address:02X}" if config.scale else ""
    print(f"{args.config}: ok: station {config.station.id!r}: {imus}{scale}")
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from .bus import open_bus, simulated
    from .i2c.probe import Expected, probe, report

    config = _load_config(args.config)
    expected = [Expected(f'imu "{i.name}"', i.chip, i.address) for i in config.imus]
    if config.scale:
        expected.append(Expected("scale", config.scale.chip, config.scale.address))
    if config.nfc:
        expected.append(Expected("nfc", config.nfc.chip, config.nfc.address))
    simulate = simulated(config, True if args.simulate else None)
    number = config.i2c.bus if args.bus is None else args.bus
    bus = open_bus(config, simulate=simulate, number=number)  # BusUnavailable: one line, exit 1
    where = "simulated bus" if simulate else f"/dev/i2c-{number}"
    rows = probe(bus, expected)
    print(f"{where}\n")
    print(report(rows))
    return 0 if all(r.verdict in ("ok", "not in config") for r in rows) else 1


def cmd_run(args: argparse.Namespace) -> int:
    from .runner import StationRunner

    config = load(args.config)
    runner = StationRunner(config, simulate=True if args.simulate else None)
    return runner.run(seconds=args.seconds, handle_signals=True)


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(
        stations=args.stations,
        seconds=args.seconds,
        speed=args.speed,
        broker=args.broker,
        broker_port=args.broker_port,
        http_port=args.http_port,
    )


def cmd_record(args: argparse.Namespace) -> int:
    from .bus import open_bus, simulated
    from .clock import RealClock, SimClock
    from .i2c.chips import IMU_DRIVERS
    from .replay import record

    config = _load_config(args.config)
    simulate = simulated(config, True if args.simulate else None)
    clock = SimClock() if simulate else RealClock()
    bus = open_bus(config, simulate=simulate, clock=clock)  # BusUnavailable: one line, exit 1
    imus = [
        (
            c.name,
            IMU_DRIVERS[c.chip](bus, c.address, rate_hz=c.rate_hz, range_g=c.range_g, clock=clock),
            c.chip,
            c.placement,
        )
        for c in config.imus
    ]
    n = record(Path(args.out), imus, clock, args.seconds, station=config.station.id)
    print(f"{args.out}: {n} samples from {len(imus)} sensor(s) over {args.seconds:g} s")
    return 0


def _positive_mg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of mg, not {text!r}") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number of mg, not {text!r}")
    return value


def cmd_replay(args: argparse.Namespace) -> int:
    from .replay import plot, print_json, print_table, replay

    path = Path(args.file)
    if not path.exists():
        print(f"{path}: no such file", file=sys.stderr)
        return 1
    if args.plot and not Path(args.plot).resolve().parent.is_dir():
        print(
            f"--plot {args.plot}: the folder {Path(args.plot).parent} does not exist",
            file=sys.stderr,
        )
        return 1
    try:
        results = replay(
            path,
            fs=args.fs,
            sensor=args.sensor,
            noise_floor_mg=args.noise_floor_mg,
            placement=args.placement,
            baseline_mg=args.baseline_mg,
        )
    except ValueError as err:
        print(f"{path}: {err}", file=sys.stderr)
        return 1
    if not results:
        print(f"{path}: nothing to replay (no such sensor?)", file=sys.stderr)
        return 1
    if args.json:
        print_json(results)
    else:
        print_table(results)
    if args.plot:
        try:
            plot(results, Path(args.plot))
        except OSError as err:
            print(f"--plot {args.plot}: cannot write it: {err.strerror or err}", file=sys.stderr)
            return 1
        print(f"# plot written to {args.plot}", file=sys.stderr if args.json else sys.stdout)
    return 0


def cmd_display(args: argparse.Namespace) -> int:
    from .display.config import run_from_args

    return run_from_args(args)


def cmd_staff(args: argparse.Namespace) -> int:
    from .display.staff import run_from_args

    return run_from_args(args)


def cmd_history(args: argparse.Namespace) -> int:
    from .history.cli import run_from_args

    return run_from_args(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gym-monitor", description="Gym tremor monitor station")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="simulated stations in real time")
    p.add_argument("--stations", type=int, default=3, help="how many stations (default 3)")
    p.add_argument(
        "--seconds",
        type=_positive,
        default=None,
        help="stop after this long (default: until Ctrl-C)",
    )
    p.add_argument(
        "--speed",
        type=_positive,
        default=1.0,
        help="run simulated time this many times faster (default 1)",
    )
    p.add_argument(
        "--broker", help="HOST:PORT of a running Mosquitto (default: an embedded broker)"
    )
    p.add_argument(
        "--broker-port", type=int, default=1883, help="port of the embedded broker (default 1883)"
    )
    p.add_argument(
        "--http-port", type=int, default=8080, help="port of the wall display (default 8080)"
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="run a station (what the systemd unit starts)")
    p.add_argument("--config", required=True, help="path to monitor.toml")
    p.add_argument(
        "--simulate", action="store_true", help="simulated chips and mock GPIO pins, same loop"
    )
    p.add_argument(
        "--seconds",
        type=_positive,
        default=None,
        help="stop after this long (default: until SIGTERM)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("probe", help="scan the I2C bus and identify the chips")
    p.add_argument(
        "--bus", type=int, default=None, help="I2C bus number (default: the config's, else 1)"
    )
    p.add_argument("--config", help="config file to compare against")
    p.add_argument(
        "--simulate", action="store_true", help="probe the simulated chips of the config"
    )
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("record", help="write raw samples from the station's IMUs to a .gtr file")
    p.add_argument("out", help="output file, e.g. session.gtr")
    p.add_argument("--config", help="config file (default: one MPU-6050 at 0x68)")
    p.add_argument(
        "--simulate", action="store_true", help="record the simulated chips (simulated time, fast)"
    )
    p.add_argument(
        "--seconds", type=_positive, default=60.0, help="how long to record (default 60)"
    )
    p.set_defaults(func=cmd_record)

    p = sub.add_parser(
        "replay",
        help="run the whole station over a recording (.gtr, t_s,ax,ay,az CSV, "
        "PDkit CSV, mPower JSON): windows, sets and reps, alerts, falls",
    )
    p.add_argument("file")
    p.add_argument(
        "--placement",
        help="where the sensor sat: limb, bench, body, or a body site (chest, "
        "waist, thigh); default: the recording's, else limb",
    )
    p.add_argument(
        "--baseline-mg",
        type=_positive_mg,
        help="the rested baseline, mg (default: learnt from the first still windows)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per line: windows, sets with their "
        "reps, alerts, falls, and a summary per sensor",
    )
    p.add_argument("--sensor", help="only this sensor of a .gtr recording")
    p.add_argument("--fs", type=float, help="analysis rate (default: the recording's)")
    p.add_argument(
        "--noise-floor-mg",
        type=float,
        default=1.7,
        help="sensor noise, per-axis RMS 2-20 Hz (default 1.7)",
    )
    p.add_argument(
        "--plot", help="also draw amplitude, peak frequency and a spectrogram to this PNG"
    )
    p.set_defaults(func=cmd_replay)

    from .display.config import DESCRIPTION
    from .display.config import add_arguments as add_display_arguments
    from .display.staff import add_arguments as add_staff_arguments

    p = sub.add_parser(
        "display",
        help="serve the gym wall display (MQTT in, web page out)",
        description=DESCRIPTION,
    )
    add_display_arguments(p)
    p.set_defaults(func=cmd_display)

    p = sub.add_parser(
        "staff", help="staff accounts that may acknowledge alerts on the wall display"
    )
    add_staff_arguments(p)
    p.set_defaults(func=cmd_staff)

    from .history.cli import DESCRIPTION as HISTORY
    from .history.cli import add_arguments as add_history_arguments

    p = sub.add_parser(
        "history", help="the history store and the coach's pages", description=HISTORY
    )
    add_history_arguments(p)
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("check-config", help="check a config file and say what is wrong")
    p.add_argument("config", help="path to monitor.toml")
    p.set_defaults(func=cmd_check_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except ConfigError as err:
        # Exit status 2 is a configuration error only: systemd does not restart on it
        # (RestartPreventExitStatus=2), since the same file would fail the same way.
        source = getattr(args, "config", None)
        for each in err.errors:
            prefix = f"{source}: " if source and not str(each).startswith(str(source)) else ""
            print(f"config error: {prefix}{each}", file=sys.stderr)
        return 2
    except MonitorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `gym-monitor replay x.gtr | head`: the reader has what it wanted. Point stdout at
        # /dev/null so that the interpreter's last flush does not complain either.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0
    except Exception as err:  # one line, never a traceback; -v shows where it came from
        logging.getLogger("monitor.cli").debug("unexpected error", exc_info=True)
        print(f"error: {type(err).__name__}: {err} (run with -v for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
