"""A long fuzz run: the oracles of tests/test_fuzz.py against thousands of seeded random inputs.

    .venv/bin/python -m bench.bench_fuzz [--seed 1] [--scale 1.0] [--only config_bytes,commands,...]

Each target is an input generator (plain ``random.Random``, seeded, so a crash can be
replayed) and the oracle from tests/test_fuzz.py that says what must hold:

=============== ====================================================================
config_bytes    bytes in monitor.toml: random, and the example file spliced/damaged
config_docs     TOML documents: the example with keys set to odd values (nan, inf, huge
                integers, wrong types, nested tables), written out and loaded
commands        a name and payload published to gym/bench-1/cmd/<name> on a real
                Mosquitto (repo ACL), answered by a running station
mpu6050         junk in a simulated MPU-6050/6500's FIFO and registers
lsm6ds          junk in a simulated LSM6DSO/DS3/DSL's FIFO and registers
scale           a load cell that jumps wildly, junk in the NAU7802's registers
analyze         windows of extreme, constant, spiky or tiny values at the usual rates
stream          blocks with odd timestamps, gaps and extreme values through the
                streaming analysis and the station's per-sensor pipeline
=============== ====================================================================

A crash is an oracle failing: an assertion, or an exception other than the ones the
target may raise (ConfigError, CommandError's reply, SensorError, ValueError). The
run prints inputs tried and crashes per target, with the first crashes' inputs.
Exit status 1 if anything crashed.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import random
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from monitor.units import G
from tests.support import fuzz as oracles  # the properties, as tests/test_fuzz.py checks them

#: inputs per target at --scale 1 (10,900 in all)
COUNTS = {
    "config_bytes": 2500,
    "config_docs": 2000,
    "commands": 600,
    "mpu6050": 1500,
    "lsm6ds": 1500,
    "scale": 800,
    "analyze": 1500,
    "stream": 500,
}


# =============================================================================== generators


def random_bytes(rng: random.Random, n: int) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(n))


def damaged_example(rng: random.Random) -> bytes:
    """The example config with a few splices: bytes cut out, junk put in, lines swapped."""
    data = bytearray(oracles.EXAMPLE_CONFIG.read_bytes())
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(data) + 1)
        kind = rng.random()
        if kind < 0.4:
            del data[at : at + rng.randint(1, 40)]
        elif kind < 0.8:
            data[at:at] = random_bytes(rng, rng.randint(1, 8))
        else:
            data[at:at] = rng.choice(
                [b"=", b"[", b"]]", b'"', b"\n[[imu]]\n", b"nan", b"\\u", b"0x"]
            )
    return bytes(data)


def config_bytes(rng: random.Random) -> tuple:
    if rng.random() < 0.3:
        return (random_bytes(rng, rng.randint(0, 600)),)
    return (damaged_example(rng),)


def odd_value(rng: random.Random, depth: int = 0) -> Any:
    """A TOML value a person (or a broken editor) might put anywhere."""
    kind = rng.randrange(12 if depth < 2 else 10)
    if kind == 0:
        return rng.randint(-(2**63), 2**63 - 1)
    if kind == 1:
        return rng.randint(-300, 7000)
    if kind == 2:
        return rng.choice([math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324])
    if kind == 3:
        return rng.uniform(-1e4, 1e4)
    if kind == 4:
        return rng.random() < 0.5
    if kind == 5:
        return "".join(chr(rng.randint(1, 0x2FF)) for _ in range(rng.randint(0, 10)))
    if kind == 6:
        return rng.choice(
            [
                "mpu6050",
                "mpu6500",
                "lsm6ds",
                "nau7802",
                "limb",
                "bench",
                "body",
                "bottle",
                "v5",
                "v311",
                "rest",
                "fall",
                "",
                " ",
                "0x68",
            ]
        )
    if kind == 7:
        return rng.choice(
            [0, 1, 2, 4, 8, 16, 10, 104, 208, 250, 833, 1000, 0x2A, 0x68, 0x6A, 65535, 65536]
        )
    if kind in (8, 9):
        return rng.choice([0.5, 1.0, 2.5, 3.0, 100.0, 0.001])
    if kind == 10:
        return [odd_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {str(odd_value(rng, 2)): odd_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def config_docs(rng: random.Random) -> tuple:
    """The example with one to three keys set to odd values (or removed), as TOML text."""
    doc = copy.deepcopy(oracles.BASE) if rng.random() < 0.85 else {}
    for _ in range(rng.randint(1, 3)):
        section = rng.choice([*oracles.KNOWN, "x"])
        if section == "imu":
            tables = doc.setdefault("imu", [{"name": "wrist"}])
            if rng.random() < 0.2:
                tables.append({"name": rng.choice(["wrist", "arm", "chest"])})
            table = rng.choice(tables)
        else:
            table = doc.setdefault(section, {})
            if not isinstance(table, dict):
                continue
        key = rng.choice([*oracles.KNOWN.get(section, ["y"]), "typo", "ratee_hz"])
        if rng.random() < 0.15:
            table.pop(key, None)
        else:
            table[key] = odd_value(rng)
    return (oracles.toml_document(doc).encode("utf-8"),)


TOPIC_CHARS = [chr(c) for c in range(0x21, 0x7F) if chr(c) not in "/+#"] + list("äé€☃日本")


def commands(rng: random.Random) -> tuple:
    names = ("tare", "calibrate", "session", "weigh_in", "ack")
    name = (
        rng.choice(names)
        if rng.random() < 0.8
        else "".join(rng.choice(TOPIC_CHARS) for _ in range(rng.randint(1, 12)))
    )
    kind = rng.random()
    if kind < 0.25:
        payload = random_bytes(rng, rng.randint(0, 120))
    elif kind < 0.3:
        payload = b"{" * rng.randint(1, 5000)
    elif kind < 0.35:
        payload = json.dumps({"v": 1, "id": "x" * rng.randint(4000, 4200)}).encode()
    else:
        body: dict[str, Any] = {"v": rng.choice([1, 1, 1, 2, "1", 1.0, True, None])}
        for key in ("mass_g", "action", "phase", "athlete", "id", "by", "request_id", "extra"):
            if rng.random() < 0.3:
                body[key] = rng.choice(
                    [
                        odd_value(rng, 2),
                        rng.uniform(-10, 6e5),
                        rng.choice(["start", "stop", "pre", "post"]),
                        "A12",
                        "x" * rng.randint(60, 140),
                        "\u0007bell",
                        rng.randint(-(2**70), 2**70),
                    ]
                )
        text = json.dumps(body, allow_nan=True)
        payload = (
            text.encode() if rng.random() < 0.9 else text.replace("{", '{"v": 1, ', 1).encode()
        )
    return name, payload


def mpu6050(rng: random.Random) -> tuple:
    return (
        "mpu6050",
        rng.choice(["MPU-6050", "MPU-6500"]),
        rng.choice([2, 4, 8, 16]),
        random_bytes(rng, rng.choice([0, 6, 60, 600, 1020, 1024, 1100, rng.randint(0, 1100)])),
        _register_junk(rng, 256),
    )


def lsm6ds(rng: random.Random) -> tuple:
    return (
        "lsm6ds",
        rng.choice(["LSM6DSO", "LSM6DS3", "LSM6DSL"]),
        rng.choice([2, 4, 8, 16]),
        random_bytes(rng, rng.choice([0, 7, 14, 6, 12, 700, rng.randint(0, 700)])),
        _register_junk(rng, 256),
    )


def _register_junk(rng: random.Random, top: int) -> dict[int, int]:
    return {rng.randrange(top): rng.getrandbits(8) for _ in range(rng.randint(0, 6))}


def scale(rng: random.Random) -> tuple:
    masses = [
        rng.choice([rng.uniform(-1e7, 1e7), -1e15, 1e15, 0.0, 2e5])
        for _ in range(rng.randint(1, 30))
    ]
    return masses, rng.uniform(0.01, 2.0), _register_junk(rng, 0x20)


def analyze(rng: random.Random) -> tuple:
    fs = rng.choice([50.0, 100.0, 200.0, 208.0, 250.0, 1000.0])
    n = rng.randint(0, int(3 * fs))
    nprng = np.random.default_rng(rng.getrandbits(32))
    kind = rng.random()
    if kind < 0.2:
        accel = np.full((n, 3), rng.choice([0.0, G, -1e308, 1e308, 5e-324, rng.uniform(-1e6, 1e6)]))
    else:
        scale_ = rng.choice([1e-300, 1e-3, 1.0, G, 1e3, 1e150, 1e300])
        accel = nprng.standard_normal((n, 3)) * scale_
        if kind > 0.7 and n:
            accel[nprng.integers(0, n, size=3)] = rng.choice([1e308, -1e308, 1e200, 0.0])
    return np.clip(accel, -1.7e308, 1.7e308), fs


def stream(rng: random.Random) -> tuple:
    fs = rng.choice([50.0, 100.0, 200.0, 208.0, 250.0, 1000.0])
    nprng = np.random.default_rng(rng.getrandbits(32))
    blocks, t = [], rng.uniform(-1e6, 1e6)
    for _ in range(rng.randint(1, 8)):
        n = rng.randint(0, int(fs))
        jump = rng.choice([0.0, 0.0, 0.02, 1.0, -0.5, 100.0])
        jitter = rng.choice([0.0, 1e-4, 0.3])
        ts = t + jump + (np.arange(1, n + 1) + nprng.uniform(-jitter, jitter, n)) / fs
        scale_ = rng.choice([0.0, 1.0, G, 1e6, 1e200])
        accel = np.clip(nprng.standard_normal((n, 3)) * scale_ + [0, 0, G], -1.7e308, 1.7e308)
        blocks.append((ts, accel, rng.randint(0, 10_000)))
        t = float(ts[-1]) if n else t + jump
    return fs, blocks


# =============================================================================== running


@dataclass
class Target:
    name: str
    generate: Callable[[random.Random], tuple]
    check: Callable[..., None]
    tried: int = 0
    crashes: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


def run_target(target: Target, count: int, rng: random.Random, keep: int = 3) -> None:
    """Try ``count`` inputs; a failing oracle is a crash (the first ``keep`` are kept to show)."""
    started = time.monotonic()
    for _ in range(count):
        args = target.generate(rng)
        target.tried += 1
        try:
            target.check(*args)
        except Exception:
            if len(target.crashes) < keep:
                target.crashes.append((_short(args), traceback.format_exc(limit=3)))
            else:
                target.crashes.append(("", ""))
    target.seconds = time.monotonic() - started


def _short(args: tuple) -> str:
    text = repr(args)
    return text if len(text) < 300 else text[:300] + f"... ({len(text)} chars)"


def make_targets(workdir: Path, only: set[str] | None) -> tuple[list[Target], Callable[[], None]]:
    """The targets, and a function that tears down what they started (the command rig)."""
    config_path = workdir / "monitor.toml"
    targets = [
        Target(
            "config_bytes", config_bytes, lambda data: oracles.check_config_bytes(config_path, data)
        ),
        Target(
            "config_docs", config_docs, lambda data: oracles.check_config_bytes(config_path, data)
        ),
        Target("mpu6050", mpu6050, oracles.check_imu_garbage),
        Target("lsm6ds", lsm6ds, oracles.check_imu_garbage),
        Target("scale", scale, oracles.check_scale),
        Target("analyze", analyze, oracles.check_analyze),
        Target("stream", stream, oracles.check_stream),
    ]
    close = lambda: None  # noqa: E731
    if only is None or "commands" in only:
        rig = oracles.CommandRig(workdir / "commands")
        rig.exceptions = oracles.ExceptionLog()
        logging.getLogger("monitor").addHandler(rig.exceptions)
        targets.insert(
            2,
            Target("commands", commands, lambda name, payload: _check_command(rig, name, payload)),
        )

        def close() -> None:
            logging.getLogger("monitor").removeHandler(rig.exceptions)
            rig.close()

    return [t for t in targets if only is None or t.name in only], close


def _check_command(rig, name: str, payload: bytes) -> None:
    try:
        oracles.check_command(rig, name, payload)
    finally:  # one crash must not be blamed on every input after it
        rig.exceptions.records.clear()
        rig.errors.clear()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every target's input count")
    ap.add_argument("--only", help="comma-separated targets (default: all)")
    args = ap.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    # The stations log what they survive (bad commands, sensor faults); the oracles judge it.
    logging.getLogger("monitor").setLevel(logging.CRITICAL + 1)
    logging.getLogger("monitor").propagate = False
    warnings.simplefilter("ignore", RuntimeWarning)  # overflow in the spectra of 1e300 m/s^2
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-fuzz-") as tmp:
        targets, close = make_targets(Path(tmp), only)
        try:
            for i, target in enumerate(targets):
                run_target(
                    target,
                    int(COUNTS[target.name] * args.scale),
                    random.Random(args.seed * 100 + i),
                )
        finally:
            close()
    print(f"fuzz: seed {args.seed}, scale {args.scale:g}; wall {time.monotonic() - started:.0f} s")
    print(f"  {'target':14} {'inputs':>7} {'crashes':>8} {'inputs/s':>9}")
    for t in targets:
        print(
            f"  {t.name:14} {t.tried:7d} {len(t.crashes):8d} {t.tried / max(t.seconds, 1e-9):9.0f}"
        )
    total, crashes = sum(t.tried for t in targets), sum(len(t.crashes) for t in targets)
    print(f"  {'total':14} {total:7d} {crashes:8d}")
    for t in targets:
        for shown, trace in [c for c in t.crashes if c[0]]:
            print(f"\nCRASH in {t.name}: {shown}\n{trace}")
    print(f"{'PASS' if not crashes else 'FAIL'}: {crashes} crash(es) in {total} inputs")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
