"""NFC check-in: from a tag placed on the reader to its UID delivered by Pn532.poll().

    .venv/bin/python -m bench.bench_nfc [--taps 300] [--seed 1]

Runs the real driver against the simulated PN532 on a simulated clock, polled
as the station polls (every ``imu.poll_interval`` of an MPU-6050 at 1 kHz, and
faster and slower loops for comparison). Prints, per loop cadence and listing
interval: the time from tag present to UID delivered (median, p95, max), taps
missed, bytes and transactions on the bus per poll and per second, and the
longest time spent inside one poll(). Then how short a tap is still caught,
and what a damaged answer (NACK, retransmission) or a command lost on the way
(resend after the ACK timeout) adds.

The chip's own timing (ACK in 0.5 ms, 5 ms per empty activation attempt,
3.5 to 6.5 ms to select a card) is modelled in monitor.sim.pn532, not measured
on a PN532: the figures show the driver's scheduling, not the silicon.
"""

from __future__ import annotations

import argparse
import random
import statistics

from monitor.clock import SimClock
from monitor.i2c import Mpu6050, Pn532
from monitor.sim import Mpu6050Sim, Pn532Sim, SimBus, Tag

UIDS = [Tag(bytes.fromhex("deadbeef")), Tag(bytes.fromhex("04a2243a5e5b80"))]


def station_cadence() -> float:
    """The station loop's period: it polls as often as its IMU needs draining."""
    clock = SimClock()
    bus = SimBus()
    bus.attach(0x68, Mpu6050Sim(None, clock=clock))
    return Mpu6050(bus, 0x68, rate_hz=1000, range_g=4, clock=clock).poll_interval


def session(
    taps: int, cadence: float, interval: float, hold_s: float, seed: int, fault: str | None = None
):
    """``taps`` taps at random phases against the loop; returns latencies, misses and bus
    figures."""
    rng = random.Random(seed)
    schedule, t = [], 1.0
    for k in range(taps):
        t_on = t + rng.uniform(0.0, 1.0)
        schedule.append((t_on, t_on + hold_s, UIDS[k % 2]))
        t = t_on + hold_s + 1.5  # long enough away that the next tap is a new one
    clock = SimClock()
    bus = SimBus(log_size=0)
    sim = bus.attach(0x24, Pn532Sim(schedule, clock=clock))
    reader = Pn532(bus, clock=clock, poll_interval_s=interval)
    bus.stats.reset()
    start = clock.now()
    delivered: list[tuple[float, bytes]] = []
    longest = 0.0
    polls = 0
    armed = -1
    end = schedule[-1][1] + 2.0
    while clock.now() < end:
        if fault is not None:
            k = next((i for i, (a, b, _) in enumerate(schedule) if a <= clock.now() < b), -1)
            if k >= 0 and k != armed:  # once per tap, as the card arrives
                armed = k
                getattr(sim, fault)(1)
        before = clock.now()
        tap = reader.poll()
        longest = max(longest, clock.now() - before)
        polls += 1
        if tap is not None:
            delivered.append((tap.t, tap.uid))
        clock.sleep(max(0.0, cadence - (clock.now() - before)))
    elapsed = clock.now() - start
    latencies, missed = [], 0
    for t_on, t_off, tag in schedule:
        hit = [t for t, uid in delivered if uid == tag.uid and t_on <= t <= t_off + 0.5]
        if hit:
            latencies.append(hit[0] - t_on)
        else:
            missed += 1
    return {
        "latencies": latencies,
        "missed": missed,
        "extra": len(delivered) - (taps - missed),
        "bytes_per_poll": bus.stats.bytes / polls,
        "tx_per_poll": bus.stats.transactions / polls,
        "bytes_per_s": bus.stats.bytes / elapsed,
        "tx_per_s": bus.stats.transactions / elapsed,
        "longest_poll": longest,
        "listings_per_s": reader.stats.listings / elapsed,
        "stats": reader.stats,
    }


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def line(label: str, r: dict) -> str:
    lat = r["latencies"]
    return (
        f"{label:<34} {statistics.median(lat) * 1e3:7.0f} {pct(lat, 0.95) * 1e3:6.0f} "
        f"{max(lat) * 1e3:6.0f}"
        f" {r['missed']:5d} {r['extra']:5d} {r['bytes_per_poll']:7.1f} {r['tx_per_poll']:5.2f}"
        f" {r['bytes_per_s']:7.0f} {r['tx_per_s']:5.1f} {r['longest_poll'] * 1e3:6.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--taps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    station = station_cadence()
    print(
        f"station loop: every {station * 1e3:.0f} ms (the MPU-6050 poll interval at 1 kHz); "
        f"{args.taps} taps held 1 s at random phases; simulated clock\n"
    )
    header = (
        f"{'loop / listing interval':<34} {'p50 ms':>7} {'p95':>6} {'max':>6}"
        f" {'miss':>5} {'extra':>5}"
        f" {'B/poll':>7} {'tx/p':>5} {'B/s':>7} {'tx/s':>5} {'poll ms':>6}"
    )
    print("tag present -> UID delivered by poll()")
    print(header)
    for cadence, interval in [
        (station, 0.2),
        (station, 0.1),
        (station, 0.5),
        (0.02, 0.2),
        (0.05, 0.2),
    ]:
        r = session(args.taps, cadence, interval, 1.0, args.seed)
        tag = " (default)" if (cadence, interval) == (station, 0.2) else ""
        print(line(f"{cadence * 1e3:.0f} ms loop / {interval * 1e3:.0f} ms{tag}", r))

    print("\nshort taps, station loop, 200 ms listing interval: caught of", args.taps)
    for hold in (0.05, 0.1, 0.15, 0.2, 0.3):
        r = session(args.taps, station, 0.2, hold, args.seed)
        print(
            f"  held {hold * 1e3:4.0f} ms: {args.taps - r['missed']:4d} caught "
            f"({100 * (1 - r['missed'] / args.taps):5.1f} %)"
        )

    print("\nwith a fault on every tap, station loop / 200 ms")
    print(header)
    base = session(args.taps, station, 0.2, 1.0, args.seed)
    print(line("no fault", base))
    for fault, label in [
        ("garble_answers", "answer damaged once (NACK)"),
        ("corrupt_commands", "command damaged once (resend)"),
    ]:
        r = session(args.taps, station, 0.2, 1.0, args.seed, fault=fault)
        s = r["stats"]
        print(line(label, r) + f"   nacks {s.nacks} resends {s.resends} faults {s.faults}")


if __name__ == "__main__":
    main()
