"""``python -m monitor.mqtt.schemas [--check]``: write (or check) the generated schemas."""

from __future__ import annotations

import argparse
import sys

from . import stale, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m monitor.mqtt.schemas",
        description="Write the JSON Schemas and the PAYLOADS.md "
        "field reference from monitor.mqtt.messages.",
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file is out of date"
    )
    args = parser.parse_args(argv)
    if args.check:
        names = stale()
        for name in names:
            print(f"out of date: {name}")
        return 1 if names else 0
    for name in write():
        print(f"wrote {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
