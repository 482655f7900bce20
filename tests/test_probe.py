"""`gym-monitor probe`: the scan, the identification, and the verdict against the config."""

import subprocess
import sys
from pathlib import Path

from monitor.clock import SimClock
from monitor.config import Config, ImuConfig, ScaleConfig, StationConfig
from monitor.i2c import Lsm6ds
from monitor.i2c.probe import Expected, grid, identify, probe, report, scan
from monitor.sim import Lsm6dsSim, Mpu6050Sim, Nau7802Sim, SimBus, SimChip
from monitor.sim.rig import simulated_bus

ROOT = Path(__file__).resolve().parents[1]


class Eeprom(SimChip):
    def power_on_reset(self) -> None:
        super().power_on_reset()
        self.regs[0x00] = 0xAA


def test_scan_finds_what_answers_and_identifies_known_chips():
    clock = SimClock()
    bus = SimBus()
    bus.attach(0x68, Mpu6050Sim(None, clock=clock))
    bus.attach(0x69, Mpu6050Sim(None, clock=clock, variant="MPU-6500"))
    bus.attach(0x6A, Lsm6dsSim(None, clock=clock))
    bus.attach(0x2A, Nau7802Sim(0.0, clock=clock))
    bus.attach(0x50, Eeprom())
    assert scan(bus) == [0x2A, 0x50, 0x68, 0x69, 0x6A]
    assert identify(bus, 0x68).part == "MPU-6050"
    assert identify(bus, 0x69).part == "MPU-6500"
    assert identify(bus, 0x6A).chip == "lsm6ds"
    assert identify(bus, 0x2A).part == "NAU7802"
    assert identify(bus, 0x50).chip is None


def test_report_lines_up_the_bus_against_the_config():
    clock = SimClock()
    bus = SimBus()
    bus.attach(0x68, Mpu6050Sim(None, clock=clock))
    bus.attach(0x6A, Mpu6050Sim(None, clock=clock))  # an MPU where the config wants an LSM6DS
    rows = probe(
        bus,
        [
            Expected('imu "wrist"', "mpu6050", 0x68),
            Expected('imu "bench"', "lsm6ds", 0x6A),
            Expected("scale", "nau7802", 0x2A),
        ],
    )
    verdicts = {r.address: r.verdict for r in rows}
    assert verdicts[0x68] == "ok"
    assert verdicts[0x6A].startswith("WRONG CHIP")
    assert verdicts[0x2A].startswith("MISSING")
    text = report(rows)
    assert "60: -- -- -- -- -- -- -- -- 68 -- 6a" in text
    assert 'imu "wrist"' in text and "MISSING: check wiring" in text


def test_grid_looks_like_i2cdetect():
    lines = grid([0x03, 0x77]).splitlines()
    assert lines[0].split() == [f"{c:x}" for c in range(16)]
    assert lines[1].startswith("00:          03 --")
    assert lines[-1].endswith("77")


def test_probe_command_on_the_simulator(tmp_path):
    cfg = tmp_path / "monitor.toml"
    cfg.write_text(
        '[station]\nsimulate = true\n[[imu]]\nname = "wrist"\n[scale]\nmode = "bottle"\n'
    )
    out = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "probe", "--config", str(cfg)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "simulated bus" in out.stdout
    assert "0x68  MPU-6050" in out.stdout and "0x2A  NAU7802" in out.stdout
    assert out.stdout.count(" ok") == 2


def test_simulated_bus_follows_the_config():
    cfg = Config(
        station=StationConfig(simulate=True),
        imus=(ImuConfig("a", "mpu6500", 0x68), ImuConfig("b", "lsm6ds", 0x6B, rate_hz=833)),
        scale=ScaleConfig(),
    )
    bus = simulated_bus(cfg, SimClock())
    assert bus.addresses == [0x2A, 0x68, 0x6B]
    assert identify(bus, 0x68).part == "MPU-6500"


def test_every_chip_a_config_can_name_has_a_driver():
    from monitor.config import IMU_CHIPS
    from monitor.i2c.chips import DRIVERS, IMU_DRIVERS

    assert set(IMU_DRIVERS) == set(IMU_CHIPS)
    assert {"nau7802", "pn532"} <= set(DRIVERS)


def test_probe_names_parts_as_their_drivers_do():
    clock = SimClock()
    bus = SimBus()
    bus.attach(0x68, Mpu6050Sim(None, clock=clock, variant="MPU-6500"))
    bus.attach(0x6B, Lsm6dsSim(None, clock=clock, variant="LSM6DSL"))
    found = identify(bus, 0x6B)
    assert (found.chip, found.id_value) == ("lsm6ds", 0x6A)
    assert found.part == Lsm6ds.IDENTITIES[0x6A] == "LSM6DSL/LSM6DSM/LSM6DS3TR-C"
    # "mpu6500" in a config is the MPU-6050 driver's chip, found as "mpu6050"
    rows = probe(
        bus,
        [
            Expected('imu "a"', "mpu6500", 0x68),
            Expected('imu "b"', "lsm6ds", 0x6B),
            Expected("scale", "nau7802", 0x2A),
        ],
    )
    verdicts = {r.address: r.verdict.split(":")[0] for r in rows}
    assert verdicts == {0x68: "ok", 0x6B: "ok", 0x2A: "MISSING"}
