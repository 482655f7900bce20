"""Wall display with many open pages: does the page still load, and how fast?

    .venv/bin/python -m bench.bench_display_streams [--streams 500] [--stations 50] [--hz 4]

Starts a real Mosquitto, the display as its own process (``python -m
monitor.display``) inside a pids cgroup capped at 64 tasks when the machine
allows one (systemd's ``TasksMax=64`` is that cap), simulated stations
publishing tremor at ``--hz``, and opens ``--streams`` Server-Sent-Events
connections that read everything they are sent. Then it times ``GET /``,
``GET /healthz`` and ``GET /api/state`` while all streams stay open, and
prints the service's tasks, CPU and memory.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.bench_display import StationGroup, percentile, say
from tests.support.display_crowd import (
    StreamCrowd,
    display_command,
    pids_cgroup,
    remove_cgroup,
    tasks_of,
)
from tests.support.mosquitto import MosquittoBroker
from tests.support.process import cpu_seconds, rss_mib

ROOT = Path(__file__).resolve().parents[1]
TASKS_MAX = 64


def timed(url: str) -> float:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=10) as reply:
        reply.read()
    return (time.perf_counter() - t0) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", type=int, default=500)
    ap.add_argument("--stations", type=int, default=50)
    ap.add_argument("--hz", type=float, default=4.0)
    ap.add_argument("--seconds", type=float, default=20.0, help="measured window")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))

    work = Path(tempfile.mkdtemp(prefix="bench-display-streams-"))
    broker = MosquittoBroker(work / "broker").start()
    config = work / "display.toml"
    config.write_text(
        f"[http]\nport = 0\nmax_streams = {args.streams + 100}\n"
        f"max_streams_per_client = {args.streams + 100}\n"
        f'[mqtt]\nport = {broker.port}\n[staff]\nfile = "{work / "staff.json"}"\n'
    )
    cgroup = pids_cgroup(TASKS_MAX)
    service = subprocess.Popen(
        display_command(config, cgroup), stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    groups: list[StationGroup] = []
    crowd = None
    try:
        url = service.stdout.readline().strip()
        port = int(url.rsplit(":", 1)[1].strip("/"))
        say(
            f"display pid {service.pid} at {url} "
            f"({'pids cgroup, max ' + str(TASKS_MAX) if cgroup else 'no cgroup available'})"
        )
        ids = [f"st-{i + 1:02d}" for i in range(args.stations)]
        chunks = [ids[i : i + 10] for i in range(0, len(ids), 10)]
        groups = [
            StationGroup(broker, chunk, args.hz, offset=n / (args.hz * len(chunks)))
            for n, chunk in enumerate(chunks)
        ]
        for group in groups:
            group.thread.start()
        t0 = time.monotonic()
        crowd = StreamCrowd("127.0.0.1", port, args.streams).start()
        all_open = crowd.wait_open(120)
        open_s = time.monotonic() - t0
        say(f"{crowd.opened} streams open after {open_s:.1f} s; measuring {args.seconds:g} s")
        page, health, state, rss, tasks = [], [], [], [], []
        cpu0, wall0 = cpu_seconds(service.pid), time.time()
        bytes0 = crowd.bytes
        while time.time() - wall0 < args.seconds:
            page.append(timed(url))
            health.append(timed(url + "healthz"))
            state.append(timed(url + "api/state"))
            rss.append(rss_mib(service.pid))
            tasks.append(tasks_of(service.pid))
            time.sleep(0.2)
        window = time.time() - wall0
        cpu = (cpu_seconds(service.pid) - cpu0) / window * 100
        streamed = (crowd.bytes - bytes0) / window / 1e6
        health_json = json.loads(urllib.request.urlopen(url + "healthz", timeout=10).read())
        pids_now = int((cgroup / "pids.current").read_text()) if cgroup else None
        dropped = crowd.closed_by_server  # before closing our side counts as a close
    finally:
        if crowd is not None:
            crowd.close()
        for group in groups:
            group.close()
        service.terminate()
        service.wait(10)
        broker.close()
        remove_cgroup(cgroup)

    rows = [
        (
            "streams asked / open",
            f"{args.streams} / {crowd.opened} "
            f"({'all' if all_open else 'NOT all'} in {open_s:.1f} s)",
        ),
        ("streams dropped by server", f"{dropped}"),
        ("server says open", f"{health_json['streams']}"),
        ("stations x rate", f"{args.stations} x {args.hz:g} Hz"),
        ("GET / p50 / p95", f"{percentile(page, 50):.1f} / {percentile(page, 95):.1f} ms"),
        (
            "GET /healthz p50 / p95",
            f"{percentile(health, 50):.1f} / {percentile(health, 95):.1f} ms",
        ),
        (
            "GET /api/state p50 / p95",
            f"{percentile(state, 50):.1f} / {percentile(state, 95):.1f} ms",
        ),
        ("requests timed", f"{len(page) + len(health) + len(state)}"),
        (
            "service tasks (max seen)",
            f"{max(tasks)} (TasksMax {TASKS_MAX})"
            + (f"; cgroup pids.current {pids_now}" if cgroup else ""),
        ),
        ("service CPU", f"{cpu:.1f} % of one core"),
        ("service RSS", f"{rss[-1]:.1f} MiB (max {max(rss):.1f})"),
        ("streamed to all pages", f"{streamed:.2f} MB/s"),
        ("mean GET / (context)", f"{statistics.fmean(page):.1f} ms"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"\nWall display with {args.streams} open pages ({os.cpu_count()} CPUs, loopback)")
    print("-" * (width + 44))
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print("-" * (width + 44))
    ok = all_open and max(tasks) <= TASKS_MAX and percentile(page, 95) < 1000
    print("page served with all streams open" if ok else "target MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
