"""I2C bus efficiency and acquisition cost, measured on the simulated chips.

    .venv/bin/python -m bench.bench_bus [--minutes 10] [--hour-seconds 3600]

Prints, per driver: bytes on the wire per accelerometer sample and
transactions per second, polled as a station polls (at ``imu.poll_interval``),
and, side by side on the same SimBus, the peer package ``mpu6050-raspberrypi``
(``pip install mpu6050-raspberrypi``; its ``get_accel_data()`` per sample). Then the
CPU time to acquire one simulated hour from two IMUs at 1 kHz plus the scale,
through the real drivers and simulated chips.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import types

from monitor.clock import SimClock
from monitor.i2c import Mpu6050
from monitor.i2c.lsm6ds import Lsm6ds
from monitor.i2c.nau7802 import Nau7802
from monitor.sim import Lsm6dsSim, Mpu6050Sim, Nau7802Sim, SimBus
from monitor.sim.scenarios import SCENARIOS, BottleDock


def poll(imu, clock, seconds: float) -> int:
    samples = 0
    steps = round(seconds / imu.poll_interval)
    for _ in range(steps):
        clock.sleep(imu.poll_interval)
        samples += len(imu.read())
    return samples


def efficiency(name: str, make_sim, make_driver, seconds: float) -> tuple[str, float, float, int]:
    clock = SimClock()
    bus = SimBus()
    bus.attach(make_sim.address, make_sim(clock))
    imu = make_driver(bus, clock)
    poll(imu, clock, 1.0)
    bus.stats.reset()
    start = clock.now()
    n = poll(imu, clock, seconds)
    elapsed = clock.now() - start
    return name, bus.stats.bytes / n, bus.stats.transactions / elapsed, round(n / elapsed)


def peer_efficiency(seconds: float):
    """mpu6050-raspberrypi reading one sample per call, on the same simulated chip."""
    clock = SimClock()
    bus = SimBus()
    motion = SCENARIOS["rest"](seed=1)
    bus.attach(0x68, Mpu6050Sim(motion, clock=clock))
    shim = types.ModuleType("smbus")
    shim.SMBus = lambda number: bus  # the peer opens smbus.SMBus(1); hand it our bus
    sys.modules["smbus"] = shim
    try:
        peer = importlib.import_module("mpu6050").mpu6050(0x68)
    except ImportError as err:
        return None, f"mpu6050-raspberrypi not installed ({err}); pip install mpu6050-raspberrypi"
    bus.stats.reset()
    n = int(seconds * 1000)
    t0 = time.process_time()
    for _ in range(n):
        clock.sleep(0.001)
        peer.get_accel_data()
    cpu = time.process_time() - t0
    return (
        "mpu6050-raspberrypi 1.2, get_accel_data() per sample",
        bus.stats.bytes / n,
        bus.stats.transactions / seconds,
        1000,
    ), cpu / n


def acquisition_hour(hour_s: float) -> dict[str, float]:
    """CPU seconds to acquire ``hour_s`` simulated seconds from two IMUs at 1 kHz and the scale."""
    clock = SimClock()
    bus = SimBus(log_size=0)
    wrist = SCENARIOS["strength_session"](seed=1)
    other = SCENARIOS["rest"](seed=2)
    bus.attach(0x68, Mpu6050Sim(wrist, clock=clock, seed=1))
    bus.attach(0x69, Mpu6050Sim(other, clock=clock, seed=2))
    bus.attach(0x2A, Nau7802Sim(BottleDock(seed=3), clock=clock, seed=3))
    imus = [
        Mpu6050(bus, 0x68, rate_hz=1000, clock=clock),
        Mpu6050(bus, 0x69, rate_hz=1000, clock=clock),
    ]
    scale = Nau7802(bus, 0x2A, rate_sps=10, clock=clock)
    interval = min(i.poll_interval for i in imus)
    samples = readings = 0
    t0 = time.process_time()
    for _ in range(round(hour_s / interval)):
        clock.sleep(interval)
        for imu in imus:
            samples += len(imu.read())
        if scale.read() is not None:
            readings += 1
    cpu = time.process_time() - t0
    return {
        "cpu_s": cpu,
        "samples": samples,
        "scale_readings": readings,
        "simulated_s": hour_s,
        "lost": sum(i.stats.lost for i in imus),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--minutes", type=float, default=10.0, help="simulated minutes per efficiency row"
    )
    ap.add_argument(
        "--hour-seconds", type=float, default=3600.0, help="length of the acquisition run"
    )
    ap.add_argument("--peer-seconds", type=float, default=10.0)
    args = ap.parse_args()
    seconds = args.minutes * 60
    motion = lambda seed: SCENARIOS["rest"](seed=seed)  # noqa: E731

    def sim(cls, address, **kw):
        f = lambda clock: cls(motion(1), clock=clock, **kw)  # noqa: E731
        f.address = address
        return f

    rows = [
        efficiency(
            "MPU-6050, FIFO burst, 1 kHz accel",
            sim(Mpu6050Sim, 0x68),
            lambda b, c: Mpu6050(b, 0x68, rate_hz=1000, range_g=4, clock=c),
            seconds,
        ),
        efficiency(
            "MPU-6050, FIFO burst, 1 kHz accel+gyro",
            sim(Mpu6050Sim, 0x68),
            lambda b, c: Mpu6050(b, 0x68, rate_hz=1000, range_g=4, gyro=True, clock=c),
            seconds,
        ),
        efficiency(
            "MPU-6500, FIFO burst, 1 kHz accel",
            sim(Mpu6050Sim, 0x68, variant="MPU-6500"),
            lambda b, c: Mpu6050(b, 0x68, rate_hz=1000, range_g=4, clock=c),
            seconds,
        ),
        efficiency(
            "LSM6DSO, FIFO burst, 833 Hz accel",
            sim(Lsm6dsSim, 0x6A, variant="LSM6DSO"),
            lambda b, c: Lsm6ds(b, 0x6A, rate_hz=833, range_g=4, clock=c),
            seconds,
        ),
        efficiency(
            "LSM6DS3, FIFO burst, 833 Hz accel",
            sim(Lsm6dsSim, 0x6A, variant="LSM6DS3"),
            lambda b, c: Lsm6ds(b, 0x6A, rate_hz=833, range_g=4, clock=c),
            seconds,
        ),
    ]
    peer, peer_cpu = peer_efficiency(args.peer_seconds)
    print(
        f"Bus efficiency ({args.minutes:g} simulated minutes per row, polled at the driver's "
        "poll_interval)"
    )
    print(f"{'driver':<55} {'bytes/sample':>12} {'transactions/s':>15} {'samples/s':>10}")
    for name, bps, tps, sps in rows + ([peer] if peer else []):
        print(f"{name:<55} {bps:>12.3f} {tps:>15.1f} {sps:>10}")
    if peer:
        ours = rows[0]
        print(
            f"ratio, peer / ours at 1 kHz: {peer[1] / ours[1]:.2f}x the bytes, "
            f"{peer[2] / ours[2]:.0f}x the transactions"
            f" (peer CPU {peer_cpu * 1e6:.0f} us per sample on the simulator)"
        )
    else:
        print(peer_cpu)
    print(
        "floors: 6 bytes/sample (three int16); LSM6DSO 7 (tag byte); targets MPU-6050 <= 6.5 "
        "B/sample, <= 40 tx/s"
    )
    r = acquisition_hour(args.hour_seconds)
    print(
        f"\nAcquisition of {r['simulated_s'] / 3600:g} simulated hour: 2 x MPU-6050 at 1 kHz + "
        "NAU7802 at 10 SPS,"
        f" drivers + simulated chips + scenarios"
    )
    print(
        f"  CPU {r['cpu_s']:.2f} s for {r['samples']} IMU samples and "
        f"{r['scale_readings']} scale readings,"
        f" {r['lost']} samples lost (target: under 10 s)"
    )


if __name__ == "__main__":
    main()
