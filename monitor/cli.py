"""``gym-monitor``: the station's command line.

Each subcommand is a small function taking parsed arguments and returning an
exit code. Problems a person can fix (a bad config, a missing chip) end with
one clear line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import __version__
from .config import Config, load
from .errors import ConfigError, MonitorError


def _load_config(path: str | None) -> Config:
    return load(path) if path else Config()


def cmd_check_config(args: argparse.Namespace) -> int:
    config = load(args.config)
    imus = ", ".join(f"{i.name} ({i.chip} at 0x{i.address:02X})" for i in config.imus)
    scale = f"; scale {config.scale.mode} at 0x{config.scale.address:02X}" if config.scale else ""
    print(f"{args.config}: ok: station {config.station.id!r}: {imus}{scale}")
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from .i2c.probe import Expected, probe, report

    config = _load_config(args.config)
    expected = [Expected(f'imu "{i.name}"', i.chip, i.address) for i in config.imus]
    if config.scale:
        expected.append(Expected("scale", config.scale.chip, config.scale.address))
    if args.simulate or config.station.simulate:
        from .clock import SimClock
        from .sim.rig import simulated_bus

        bus = simulated_bus(config, SimClock())
        where = "simulated bus"
    else:
        from smbus2 import SMBus

        number = config.i2c.bus if args.bus is None else args.bus
        try:
            bus = SMBus(number)
        except OSError as err:
            print(f"cannot open /dev/i2c-{number}: {err.strerror}: enable I2C (dtparam=i2c_arm=on) "
                  "and check that this user is in the i2c group", file=sys.stderr)
            return 1
        where = f"/dev/i2c-{number}"
    rows = probe(bus, expected)
    print(f"{where}\n")
    print(report(rows))
    return 0 if all(r.verdict in ("ok", "not in config") for r in rows) else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(stations=args.stations, seconds=args.seconds)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gym-monitor", description="Gym tremor monitor station")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="simulated stations in real time")
    p.add_argument("--stations", type=int, default=3, help="how many stations (default 3)")
    p.add_argument("--seconds", type=float, default=None, help="stop after this long (default: until Ctrl-C)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("probe", help="scan the I2C bus and identify the chips")
    p.add_argument("--bus", type=int, default=None, help="I2C bus number (default: the config's, else 1)")
    p.add_argument("--config", help="config file to compare against")
    p.add_argument("--simulate", action="store_true", help="probe the simulated chips of the config")
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("check-config", help="check a config file and say what is wrong")
    p.add_argument("config", help="path to monitor.toml")
    p.set_defaults(func=cmd_check_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except ConfigError as err:
        source = getattr(args, "config", None)
        prefix = f"{source}: " if source and not str(err).startswith(str(source)) else ""
        print(f"config error: {prefix}{err}", file=sys.stderr)
        return 2
    except MonitorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
