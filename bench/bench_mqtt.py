"""Alerts delivered out of alerts raised, across broker restarts.

    .venv/bin/python -m bench.bench_mqtt [--restarts 20] [--rate 20] [--seed 1]

A station (:class:`monitor.mqtt.MqttPublisher` with its SQLite outbox)
streams alerts at ``--rate`` per second while a real Mosquitto
(tests/support/mosquitto.py, persistence on so sessions survive) is stopped
(SIGTERM) and started again ``--restarts`` times at random moments, down
0.5-3 s each. A subscriber with a persistent session (MQTT 5, clean_start
false, QoS 1) counts unique alert ids, duplicates and missing ones.

Recovery after a restart is timed from the moment the broker accepts TCP
connections again to (a) the first alert the subscriber receives, and
(b) the first alert *raised after* that moment that it receives (which waits
behind the backlog stored while the broker was down).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from monitor.mqtt import MqttPublisher, Outbox, alert_payload
from tests.support.mosquitto import MosquittoBroker
from tests.support.witness import Witness

STATION = "bench-1"


class Counter:
    """A witness with a persistent session: every alert number it sees, with when it saw it."""

    def __init__(self, broker: MosquittoBroker):
        self.lock = threading.Lock()
        self.received: list[tuple[float, int]] = []  # (monotonic time, alert number)
        self.witness = Witness(
            broker,
            [f"gym/{STATION}/alert"],
            client_id="bench-alert-counter",
            on_message=self._on_message,
        )

    def _on_message(self, topic: str, payload: bytes, at: float) -> None:
        number = int(json.loads(payload)["id"].rsplit(":", 1)[1])
        with self.lock:
            self.received.append((at, number))

    def snapshot(self) -> list[tuple[float, int]]:
        with self.lock:
            return list(self.received)

    def close(self) -> None:
        self.witness.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--restarts", type=int, default=20)
    ap.add_argument("--rate", type=float, default=20.0, help="alerts per second (20)")
    ap.add_argument("--min-gap", type=float, default=2.0, help="least time up between restarts (s)")
    ap.add_argument("--max-gap", type=float, default=5.0, help="most time up between restarts (s)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    # The station logs each lost broker as a warning; here that is the point, not news.
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as tmp:
        store = Path(tmp) / "store"
        store.mkdir()
        broker = MosquittoBroker(
            Path(tmp) / "broker",
            extra_config=(
                f"persistence true\npersistence_location {store}/\nautosave_interval 5\n"
                "max_queued_messages 100000\n"
            ),
        ).start()
        counter = Counter(broker)
        outbox = Outbox(Path(tmp) / "outbox.sqlite3")
        pub = MqttPublisher(
            STATION, host=broker.host, port=broker.port, outbox=outbox, ha_discovery=False
        ).start()
        deadline = time.monotonic() + 5
        while not pub.connected and time.monotonic() < deadline:
            time.sleep(0.01)

        raised_at: list[float] = []
        stop = threading.Event()

        def produce() -> None:
            period = 1.0 / args.rate
            next_t = time.monotonic()
            i = 0
            while not stop.is_set():
                pub.publish_alert(
                    alert_payload(
                        STATION,
                        id=f"{STATION}:bench:{i:06d}",
                        code="bench",
                        level="info",
                        state="raised",
                        message=f"alert {i}",
                    )
                )
                raised_at.append(time.monotonic())
                i += 1
                next_t += period
                time.sleep(max(0.0, next_t - time.monotonic()))

        producer = threading.Thread(target=produce, daemon=True)
        t0 = time.monotonic()
        producer.start()
        restarts: list[tuple[float, float]] = []  # (down for, back-up moment)
        for _ in range(args.restarts):
            time.sleep(rng.uniform(args.min_gap, args.max_gap))
            down = rng.uniform(0.5, 3.0)
            broker.stop()
            time.sleep(down)
            broker.start()  # returns once it accepts connections
            restarts.append((down, time.monotonic()))
        time.sleep(rng.uniform(args.min_gap, args.max_gap))
        stop.set()
        producer.join()
        raised = len(raised_at)
        stream_s = time.monotonic() - t0

        drain_deadline = time.monotonic() + 60
        while time.monotonic() < drain_deadline:
            if len({n for _, n in counter.snapshot()}) >= raised and outbox.pending == 0:
                break
            time.sleep(0.1)
        received = counter.snapshot()
        stats = outbox.stats()
        pub.close()
        outbox.close()
        counter.close()
        broker.close()

    numbers = [n for _, n in received]
    unique = set(numbers)
    missing = set(range(raised)) - unique
    first_any, first_new = [], []
    for _, up in restarts:
        after = [(t, n) for t, n in received if t >= up]
        if after:
            first_any.append(after[0][0] - up)
        fresh = [t for t, n in after if raised_at[n] >= up]
        if fresh:
            first_new.append(fresh[0] - up)

    def p50_max(xs: list[float]) -> str:
        if not xs:
            return "n/a"
        return f"p50 {statistics.median(xs):.2f} s, max {max(xs):.2f} s (n={len(xs)})"

    print(
        f"stream: {stream_s:.0f} s at {args.rate:g} alerts/s, {len(restarts)} broker restarts "
        f"(down {min(d for d, _ in restarts):.1f}-{max(d for d, _ in restarts):.1f} s, "
        f"total {sum(d for d, _ in restarts):.0f} s down)"
    )
    print(f"raised:             {raised}")
    print(f"delivered unique:   {len(unique)}")
    print(f"duplicates:         {len(numbers) - len(unique)}")
    print(
        f"missing:            {len(missing)}"
        + (f" (first {sorted(missing)[:10]})" if missing else "")
    )
    print(f"delivered:          {100.0 * len(unique & set(range(raised))) / raised:.2f} %")
    print(f"recovery, broker up -> first alert received:           {p50_max(first_any)}")
    print(f"recovery, broker up -> first alert raised after it:    {p50_max(first_new)}")
    print(
        f"outbox: stored {stats.stored.get('alert', 0)}, acked {stats.acked.get('alert', 0)}, "
        f"resent after a reconnect {stats.resent.get('alert', 0)}, "
        f"dropped {sum(stats.dropped.values())}, left {stats.pending}"
    )
    return 0 if not missing else 1


if __name__ == "__main__":
    sys.exit(main())
