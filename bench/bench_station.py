"""The station's footprint: memory over a simulated hour, CPU share in real time.

    .venv/bin/python -m bench.bench_station [--cpu-seconds 60]

Both run `gym-monitor run`'s StationRunner with simulate = true in a child
process (two IMUs at 1 kHz, the scale at 10 SPS, MQTT to a real Mosquitto,
LEDs on mock pins): (1) an hour on the simulated clock, RSS sampled every
simulated 5 minutes; (2) real time for --cpu-seconds, CPU time over wall
time. In (2) the child also runs the simulated chips and scenarios, work a Pi
does not do; the acquisition-only row measures that share on its own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CONFIG = """
[station]
id = "bench-1"
simulate = true
state_dir = "{state}"
[[imu]]
name = "wrist"
scenario = "strength_session"
[[imu]]
name = "other"
address = 0x69
exercised = false
scenario = "companion"
[scale]
mode = "bottle"
[mqtt]
host = "127.0.0.1"
port = {port}
[gpio]
enabled = true
"""


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def child_hour(config_path: str) -> None:
    """Runs in the child: an hour of simulated time, RSS as JSON lines."""
    from monitor.clock import SimClock
    from monitor.config import load
    from monitor.runner import StationRunner

    clock = SimClock()
    runner = StationRunner(load(config_path), simulate=True, clock=clock)
    runner.start()
    next_sample = 0.0
    while clock.now() <= 3600:
        if clock.now() >= next_sample:
            print(json.dumps({"t": round(clock.now()), "rss_kib": rss_kib()}), flush=True)
            next_sample += 300
        clock.sleep(runner.station.poll_interval)
        runner.cycle()
        # Let the MQTT threads keep up with simulated time running ~100x faster than real.
        if runner.cycles % 20 == 0:
            time.sleep(0.002)
    runner.stop()


def cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cpu-seconds", type=float, default=60.0)
    ap.add_argument("--child-hour", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_hour:
        child_hour(args.child_hour)
        return
    from tests.support.mosquitto import MosquittoBroker

    with tempfile.TemporaryDirectory() as tmp, MosquittoBroker(Path(tmp)) as broker:
        cfg = Path(tmp) / "monitor.toml"
        cfg.write_text(CONFIG.format(state=Path(tmp) / "state", port=broker.port))
        t0 = time.time()
        out = subprocess.run(
            [sys.executable, "-m", "bench.bench_station", "--child-hour", str(cfg)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        )
        samples = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        rss = [s["rss_kib"] / 1024 for s in samples]
        settled = rss[2:] if len(rss) > 4 else rss
        print(
            "Memory of a simulated station over one simulated hour "
            f"({time.time() - t0:.0f} s wall), "
            "2 IMUs at 1 kHz + scale, MQTT, mock LEDs"
        )
        print("  RSS MiB every 5 min: " + " ".join(f"{r:.1f}" for r in rss))
        print(
            f"  peak {max(rss):.1f} MiB (target <= 80 MB); growth from 10 min to 60 min "
            f"{settled[-1] - settled[0]:+.1f} MiB"
        )

        state2 = Path(tmp) / "state2"
        cfg.write_text(CONFIG.format(state=state2, port=broker.port))
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", "run", "--config", str(cfg)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(5)  # start-up (imports, scale calibration) is not the steady state
        c0, w0 = cpu_of(proc.pid), time.monotonic()
        time.sleep(args.cpu_seconds)
        c1, w1 = cpu_of(proc.pid), time.monotonic()
        proc.terminate()
        proc.wait(timeout=20)
        share = 100 * (c1 - c0) / (w1 - w0)
        print(
            f"CPU share in real time over {w1 - w0:.0f} s: {share:.2f} % of one core "
            "(station + simulated chips and scenarios; target <= 3 %)"
        )
    from bench.bench_bus import acquisition_hour

    sim = acquisition_hour(600)
    print(
        "  of which acquisition through the simulated chips (same sensors): "
        f"{100 * sim['cpu_s'] / 600:.2f} % "
        "(bench_bus.py's run, scaled): a Pi reading real chips spends only the driver's part of it"
    )


if __name__ == "__main__":
    main()
