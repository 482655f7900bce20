"""Wall display under a full gym: latency to the screen, CPU and memory of the service.

    .venv/bin/python -m bench.bench_display [--stations 50] [--hz 4] [--seconds 30]

Starts a real Mosquitto (tests/support/mosquitto.py), the display service as its own
process (``python -m monitor.display``, so its CPU time is its own), and
headless Chromium (Playwright, Debian's /usr/bin/chromium) on the page with
``?bench=1``. Simulated stations publish realistic ``tremor`` messages at
``--hz`` each, spread evenly over the period, from a few paho clients.

Latency is publish -> painted: every message carries a unique ``rms_mg`` per
station; the publisher notes ``time.time()`` just before ``publish()``, and the
page's bench hook notes the wall time (``performance.timeOrigin +
performance.now()``, same machine, same clock) after the frame that shows the
new text. A value the service coalesced away (a newer one for the same station
went out in the same push) is counted, not timed.

CPU share is the service's (utime + stime) / wall time over the measured
window, from /proc/<pid>/stat (100 % = one core); RSS is VmRSS from
/proc/<pid>/status, sampled each second.
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
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.display import CHROMIUM, CHROMIUM_ARGS
from tests.support.mosquitto import MosquittoBroker
from tests.support.process import cpu_seconds, rss_mib

ROOT = Path(__file__).resolve().parents[1]

BASELINE_MG = 8.0


# --------------------------------------------------------------------------- stations


@dataclass
class Sent:
    station: str
    text: str  # the RMS as the page paints it
    t: float  # wall seconds just before publish()


class StationGroup:
    """One paho client publishing for several stations, evenly spread over each period."""

    def __init__(self, broker: MosquittoBroker, ids: list[str], hz: float, offset: float):
        self.ids, self.hz, self.offset = ids, hz, offset
        self.sent: list[Sent] = []
        self.counter = {sid: 0 for sid in ids}
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:8]}"
        )
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        for sid in ids:
            self._retained(sid)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _retained(self, sid: str) -> None:
        now = time.time()
        pub = self.client.publish
        pub(f"gym/{sid}/status", "online", qos=1, retain=True)
        pub(
            f"gym/{sid}/session",
            json.dumps(
                {
                    "v": 1,
                    "ts": now,
                    "station": sid,
                    "name": f"Station {sid[-2:]}",
                    "state": "reps",
                    "active": True,
                    "started_ts": now - 1200,
                    "ended_ts": None,
                    "set_count": 3,
                    "rep_count": 8,
                    "last_set_end_ts": now - 90,
                    "baseline_mg": BASELINE_MG,
                    "ratio": 1.4,
                    "recovery_s": 35.0,
                    "fatigue_trend": 0.1,
                }
            ),
            qos=1,
            retain=True,
        )
        pub(
            f"gym/{sid}/hydration",
            json.dumps(
                {
                    "v": 1,
                    "ts": now,
                    "station": sid,
                    "mode": "bottle",
                    "mass_g": 540.0,
                    "intake_ml": 320.0,
                    "intake_ml_per_h": 640.0,
                    "pre_mass_g": None,
                    "post_mass_g": None,
                    "body_mass_loss_pct": None,
                    "sweat_rate_l_per_h": None,
                }
            ),
            qos=1,
            retain=True,
        )

    def _payload(self, sid: str) -> tuple[bytes, str]:
        k = self.counter[sid]
        self.counter[sid] = k + 1
        rms = round(10.0 + (k % 900) * 0.1, 1)  # unique per station for 900 messages
        ratio = round(rms / BASELINE_MG, 2)
        level = "normal" if ratio < 2 else "elevated" if ratio < 4 else "high"
        body = {
            "v": 1,
            "ts": time.time(),
            "station": sid,
            "sensor": "wrist",
            "placement": "limb",
            "exercised": True,
            "rms_mg": rms,
            "peak_hz": 8.4,
            "ratio": ratio,
            "level": level,
            "moving": False,
            "measurable": True,
            "band_rms_mg": {
                "voluntary": 42.0,
                "fatigue": rms * 0.4,
                "physiological": rms * 0.8,
                "tremor": rms,
            },
            "fatigue_ratio": 0.5,
            "regularity": 0.6,
            "window_s": 2.5,
        }
        return json.dumps(body).encode(), f"{rms:.1f} mg"

    def _run(self) -> None:
        period = 1.0 / self.hz
        slot = period / len(self.ids)
        start = time.monotonic() + self.offset
        tick = 0
        while not self.stop.is_set():
            for i, sid in enumerate(self.ids):
                due = start + tick * period + i * slot
                delay = due - time.monotonic()
                if delay > 0 and self.stop.wait(delay):
                    return
                payload, text = self._payload(sid)
                t = time.time()
                self.client.publish(f"gym/{sid}/tremor", payload, qos=0)
                self.sent.append(Sent(sid, text, t))
            tick += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.client.disconnect()
        self.client.loop_stop()


# --------------------------------------------------------------------------- main


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stations", type=int, default=50)
    ap.add_argument("--hz", type=float, default=4.0, help="tremor messages per station per s")
    ap.add_argument("--seconds", type=float, default=30.0, help="measured window")
    ap.add_argument("--clients", type=int, default=5, help="paho clients sharing the stations")
    ap.add_argument(
        "--service-root",
        type=Path,
        default=ROOT,
        help="run the display from this checkout (to compare two versions "
        "side by side on a shared machine)",
    )
    args = ap.parse_args()

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("needs the playwright package: .venv/bin/pip install playwright")
        return 2

    # A SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the finally
    # below still stops the broker and the service instead of orphaning them.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    work = Path(tempfile.mkdtemp(prefix="bench-display-"))
    broker = MosquittoBroker(work / "broker").start()
    say(f"mosquitto on port {broker.port}")
    service = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor.display",
            "--mqtt-port",
            str(broker.port),
            "--http-host",
            "127.0.0.1",
            "--http-port",
            "0",
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=args.service_root,
    )
    groups: list[StationGroup] = []
    try:
        url = service.stdout.readline().strip()
        say(f"display service pid {service.pid} at {url}")
        ids = [f"st-{i + 1:02d}" for i in range(args.stations)]
        per = -(-len(ids) // args.clients)
        chunks = [ids[i : i + per] for i in range(0, len(ids), per)]
        groups = [
            StationGroup(broker, chunk, args.hz, offset=n / (args.hz * len(chunks)))
            for n, chunk in enumerate(chunks)
        ]

        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            say("chromium up")
            page.goto(url + "?bench=1")
            page.wait_for_function(
                f"document.querySelectorAll('.tile').length === {len(ids)}", timeout=15000
            )
            say(f"{len(ids)} tiles painted; publishing")
            for group in groups:
                group.thread.start()
            time.sleep(3.0)  # warm up: JIT, first layouts, connection settling
            page.evaluate("window.__displayBench.records.length = 0")
            for group in groups:
                group.sent.clear()

            say(f"measuring for {args.seconds:g} s")
            wall0, cpu0 = time.time(), cpu_seconds(service.pid)
            broker_cpu0 = cpu_seconds(broker.pid)
            rss = []
            while time.time() - wall0 < args.seconds:
                time.sleep(1.0)
                rss.append(rss_mib(service.pid))
            wall1, cpu1 = time.time(), cpu_seconds(service.pid)
            broker_cpu1 = cpu_seconds(broker.pid)
            for group in groups:
                group.stop.set()
            time.sleep(1.0)  # let the last messages reach the screen
            records = page.evaluate("window.__displayBench.records")
            say(f"{len(records)} paint records collected")
            browser.close()
    finally:
        for group in groups:
            group.close()
        service.terminate()
        service.wait(10)
        broker.close()

    painted: dict[tuple[str, str], float] = {}
    for rec in records:
        painted.setdefault((rec["s"], rec["v"]), rec["t"] / 1000.0)
    sent = [s for g in groups for s in g.sent if s.t <= wall1]
    latencies = [
        (painted[(s.station, s.text)] - s.t) * 1000.0
        for s in sent
        if (s.station, s.text) in painted
    ]
    missing = len(sent) - len(latencies)
    window = wall1 - wall0
    cpu_share = (cpu1 - cpu0) / window * 100
    broker_share = (broker_cpu1 - broker_cpu0) / window * 100

    rows = [
        (
            "stations x rate",
            f"{args.stations} x {args.hz:g} Hz ({args.stations * args.hz:g} msg/s)",
        ),
        ("measured window", f"{window:.1f} s"),
        ("tremor messages published", f"{len(sent)}"),
        ("painted in the browser", f"{len(latencies)}"),
        ("coalesced away / not seen", f"{missing} ({missing / max(1, len(sent)) * 100:.1f} %)"),
        ("latency p50", f"{percentile(latencies, 50):.1f} ms"),
        ("latency p95", f"{percentile(latencies, 95):.1f} ms  (target <= 250 ms)"),
        ("latency p99", f"{percentile(latencies, 99):.1f} ms"),
        ("latency max", f"{max(latencies, default=float('nan')):.1f} ms"),
        ("latency mean", f"{statistics.fmean(latencies) if latencies else float('nan'):.1f} ms"),
        ("display service CPU", f"{cpu_share:.1f} % of one core"),
        ("display service RSS", f"{rss[-1]:.1f} MiB (max {max(rss):.1f} MiB)"),
        ("mosquitto CPU (context)", f"{broker_share:.1f} % of one core"),
    ]
    width = max(len(name) for name, _ in rows)
    print(
        f"\nWall display bench ({os.cpu_count()} CPUs, loopback, headless Chromium; "
        f"service from {args.service_root}; load average {os.getloadavg()[0]:.1f})"
    )
    print("-" * (width + 40))
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print("-" * (width + 40))
    ok = latencies and percentile(latencies, 95) <= 250.0
    print("p95 target met" if ok else "p95 target MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
