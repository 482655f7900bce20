"""``gym-monitor demo``: simulated stations on a gym floor, in real time.

Each station is the real station loop (drivers, analysis, session) running on
simulated chips that follow an athlete scenario; nothing but the I2C chips is
simulated. The console shows a live line per station.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

from .clock import RealClock
from .config import Config, ImuConfig, ScaleConfig, StationConfig
from .sim.rig import calibrate_scale, simulated_bus
from .station import Station, StepResult, latest_accel_text

log = logging.getLogger(__name__)

_FLOOR = (
    ("bench-1", "Bench press", (ImuConfig("wrist", "mpu6050", 0x68, scenario="strength_session"),
                                ImuConfig("bench", "lsm6ds", 0x6A, rate_hz=833, placement="bench", scenario="dropped_weight")),
     ScaleConfig(mode="bottle", scenario="bottle_dock")),
    ("plank-2", "Plank mat", (ImuConfig("forearm", "mpu6500", 0x68, scenario="static_holds"),
                              ImuConfig("other-arm", "lsm6ds", 0x6B, rate_hz=833, exercised=False, scenario="companion")),
     ScaleConfig(mode="bottle", scenario="bottle_dock")),
    ("rack-3", "Squat rack", (ImuConfig("thigh", "mpu6050", 0x68, scenario="persistent_tremor"),),
     ScaleConfig(mode="body", scenario="body_scale")),
    ("mat-4", "Stretch mat", (ImuConfig("chest", "mpu6050", 0x69, placement="body", scenario="fall"),), None),
    ("bike-5", "Bike", (ImuConfig("frame", "lsm6ds", 0x6A, rate_hz=833, placement="bench", scenario="neighbour_vibration"),), None),
)


def demo_configs(count: int, state_dir: Path | None = None) -> list[Config]:
    """``count`` station configs, cycling through the floor plan with new seeds."""
    out = []
    for i in range(count):
        sid, name, imus, scale = _FLOOR[i % len(_FLOOR)]
        if i >= len(_FLOOR):
            sid, name = f"{sid.split('-')[0]}-{i + 1}", f"{name} {i // len(_FLOOR) + 1}"
        out.append(Config(station=StationConfig(id=sid, name=name, simulate=True, seed=i + 1,
                                                state_dir=state_dir or Path("/tmp/gym-monitor-demo")),
                          imus=imus, scale=scale))
    return out


class SimulatedStation:
    """A station on its own thread, running the real loop on simulated chips."""

    def __init__(self, config: Config, clock: RealClock):
        self.config = config
        self.clock = clock
        self.bus = simulated_bus(config, clock)
        self.station = Station(config, bus=self.bus, clock=clock)
        self.last: StepResult | None = None
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=config.station.id, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            calibration = calibrate_scale(self.bus, self.config, self.clock)
            self.station.open(calibration)
            while not self._stop.is_set():
                began = self.clock.now()
                self.last = self.station.step()
                spare = self.station.poll_interval - (self.clock.now() - began)
                self._stop.wait(max(0.0, spare) / self.clock.speed)
        except Exception as err:  # the demo shows it rather than dying silently
            self.error = err
            log.exception("%s stopped", self.config.station.id)
        finally:
            self.station.close()

    def line(self) -> str:
        cfg = self.config
        head = f"{cfg.station.display_name[:12]:<12}"
        if self.error is not None:
            return f"{head} stopped: {self.error}"
        if self.last is None:
            return f"{head} starting (finding sensors, calibrating the scale)"
        parts = []
        for rep in self.last.sensors:
            status = self.station.latest.get(rep.name)
            if rep.fault is not None:
                parts.append(f"{rep.name}: FAULT {rep.fault.kind}")
                continue
            rate = self.station.rate(rep.name)
            tremor = ""
            if status is not None:
                ratio = f" {status.ratio:.1f}x" if status.ratio is not None else ""
                mg = f"{status.rms_mg:5.1f} mg" if status.rms_mg is not None else "   -- mg"
                tremor = f" {status.state:<8} {mg}{ratio}"
            parts.append(f"{rep.name} {rate:4.0f}/s a={latest_accel_text(rep.latest)}{tremor}")
        sess = self.last.session
        if sess is not None and sess.started is not None:
            parts.append(f"sets {sess.set_count}")
        if self.station.scale is not None:
            r = self.station.last_scale
            parts.append(f"scale {r.mass_g:7.1f} g" if r is not None and r.mass_g is not None else "scale   --")
        return head + " | ".join(parts)


def run_demo(stations: int = 3, seconds: float | None = None, speed: float = 1.0, out=None) -> int:
    out = out or sys.stdout
    clock = RealClock(speed)
    sims = [SimulatedStation(cfg, clock) for cfg in demo_configs(stations)]
    for s in sims:
        s.start()
    print(f"{stations} simulated stations running{f' at {speed:g}x' if speed != 1 else ''}; Ctrl-C to stop.", file=out)
    tty = out.isatty()
    began = time.monotonic()
    shown = 0
    try:
        while seconds is None or time.monotonic() - began < seconds:
            time.sleep(1.0)
            lines = [s.line() for s in sims]
            if tty and shown:
                out.write(f"\x1b[{shown}F")  # back to the first line and redraw in place
            for line in lines:
                out.write(("\x1b[2K" if tty else "") + line + "\n")
            if not tty:
                out.write("\n")
            out.flush()
            shown = len(lines)
    except KeyboardInterrupt:
        pass
    finally:
        for s in sims:
            s.stop()
    return 0 if all(s.error is None for s in sims) else 1
