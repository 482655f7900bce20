"""The fuzzing oracles: one input in, the one property it must satisfy asserted.

tests/test_fuzz.py drives them with Hypothesis, a few hundred examples each; bench/bench_fuzz.py
drives the same oracles with tens of thousands of seeded random inputs. The properties:

* config: whatever bytes are in the file, :func:`monitor.config.load` returns a Config
  or raises :class:`ConfigError` naming a key, never anything else; and what it
  accepts holds only finite numbers (TOML has ``nan`` and ``inf``, and a NaN threshold
  passes every range check, then silently disables the alert it guards);
* commands: any name and payload published to ``gym/<station>/cmd/<name>`` on a real
  broker (the gym's, as shipped) gets exactly one reply on ``cmd/<name>/result``: the
  parser's own CommandError text, or the station's verdict; no exception escapes into the
  log, and the station keeps stepping;
* sensor bytes: garbage in a simulated chip's FIFO, impossible register values, a
  load cell that jumps wildly -> a SensorError subclass or samples within the chip's
  physical range (finite, in order, never more than the FIFO holds);
* analysis: any finite array -> TremorMetrics or ValueError (documented bad input),
  and for any acceleration a sensor can report, finite figures.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import queue
import threading
import time
import tomllib
import uuid
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from monitor.analysis.pipeline import SensorAnalysis
from monitor.analysis.stream import TremorAnalyzer
from monitor.analysis.tremor import analyze
from monitor.clock import SimClock
from monitor.config import Config, ImuConfig, MqttConfig, ScaleConfig, StationConfig, load
from monitor.errors import ConfigError, SensorError
from monitor.i2c import Lsm6ds, Mpu6050, Nau7802
from monitor.i2c.calibration import ScaleCalibration
from monitor.i2c.lsm6ds import ACCEL_MG_PER_LSB
from monitor.mqtt.commands import CommandError, parse_command
from monitor.mqtt.publisher import MAX_ERROR_TEXT
from monitor.sim import Lsm6dsSim, Mpu6050Sim, Nau7802Sim, SimBus
from monitor.units import G

from .mosquitto import MosquittoBroker, gym_config, password, write_password_files
from .signals import Still

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = ROOT / "config" / "monitor.toml"


# =============================================================================== config


def check_config_bytes(path: Path, data: bytes) -> None:
    """Whatever the file holds: a Config with finite numbers, or a ConfigError that names the
    key."""
    path.write_bytes(data)
    try:
        config = load(path)
    except ConfigError as err:
        assert err.key and str(err).startswith(err.key), str(err)
        return
    assert_finite(config, "config")


def assert_finite(value, where: str) -> None:
    """Every float reachable from a (frozen dataclass) config value is finite."""
    if isinstance(value, float):
        assert math.isfinite(value), f"{where} = {value!r} was accepted"
    elif isinstance(value, (tuple, list)):
        for i, v in enumerate(value):
            assert_finite(v, f"{where}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            assert_finite(v, f"{where}.{k}")
    elif hasattr(value, "__dataclass_fields__"):
        for name in value.__dataclass_fields__:
            assert_finite(getattr(value, name), f"{where}.{name}")


def toml_value(value) -> str:
    """A Python value as TOML (inline tables and arrays nest)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value > 0 else "-inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, str):
        # JSON strings are TOML basic strings, once DEL (legal raw in JSON) is escaped.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return (
        "{" + ", ".join(f"{toml_value(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    )


def toml_document(doc: dict) -> str:
    """Top-level tables as [section], a list of tables as [[section]], everything else inline."""
    lines = []
    for key, value in doc.items():
        name = toml_value(str(key))
        if isinstance(value, dict):
            lines.append(f"[{name}]")
            lines += [f"{toml_value(str(k))} = {toml_value(v)}" for k, v in value.items()]
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for table in value:
                lines.append(f"[[{name}]]")
                lines += [f"{toml_value(str(k))} = {toml_value(v)}" for k, v in table.items()]
        else:
            lines.insert(0, f"{name} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def _known_keys() -> dict[str, list[str]]:
    """Section -> the keys the config knows (from its dataclasses), so documents get past
    "is not a known key" to the value checks; ``password`` and ``tls_cert`` have their own."""
    import dataclasses

    from monitor.alerts import AlertConfig
    from monitor.analysis.hydration import HydrationConfig
    from monitor.analysis.pipeline import AnalysisConfig
    from monitor.analysis.session import SessionConfig
    from monitor.config import GpioConfig, I2CConfig

    tables = {
        "station": StationConfig,
        "i2c": I2CConfig,
        "imu": ImuConfig,
        "scale": ScaleConfig,
        "analysis": AnalysisConfig,
        "session": SessionConfig,
        "alerts": AlertConfig,
        "hydration": HydrationConfig,
        "mqtt": MqttConfig,
        "gpio": GpioConfig,
    }
    known = {name: [f.name for f in dataclasses.fields(cls)] for name, cls in tables.items()}
    known["analysis"] += ["bands"]
    known["mqtt"] += ["password"]
    return known


KNOWN = _known_keys()

#: the example config, parsed: a valid document to start changing from
BASE = tomllib.loads(EXAMPLE_CONFIG.read_text(encoding="utf-8"))


# =============================================================================== commands


class CommandRig:
    """A station stepping in its own thread with its MQTT client on a real Mosquitto (the gym's,
    as shipped), and an operator client that sends commands and collects the replies.

    The station is the one ``gym-monitor run`` builds (StationRunner, simulated chips), so a
    command travels the whole way: broker -> paho -> the publisher's command thread ->
    the parser -> Uplink.handle -> the station's step -> the reply on ``cmd/<name>/result``.
    """

    STATION = "bench-1"

    def __init__(self, workdir: Path):
        from monitor.runner import StationRunner

        self.secrets = self._secrets(workdir / "secrets")
        # The gym's broker as shipped: its ACL, client ids bound to user names.
        self.broker = MosquittoBroker(
            workdir / "broker",
            allow_anonymous=False,
            extra_config=gym_config(self.secrets / "passwd"),
        ).start()
        config = Config(
            station=StationConfig(
                id=self.STATION, simulate=True, state_dir=workdir / "state", seed=3
            ),
            imus=(ImuConfig("wrist", rate_hz=250, scenario="rest"),),
            scale=ScaleConfig(),
            mqtt=MqttConfig(
                host=self.broker.host,
                port=self.broker.port,
                username=self.STATION,
                password_file=str(self.secrets / f"{self.STATION}.pw"),
                ha_discovery=False,
            ),
        )
        self.clock = SimClock()
        self.runner = StationRunner(config, simulate=True, clock=self.clock)
        self.errors: list[str] = []
        self.steps = 0
        self._stop = threading.Event()
        self.runner.start()
        self._thread = threading.Thread(target=self._step, daemon=True)
        self._thread.start()
        self.replies: queue.Queue[tuple[str, dict]] = queue.Queue()
        self.operator = self._operator()

    @staticmethod
    def _secrets(folder: Path) -> Path:
        return write_password_files(folder, (CommandRig.STATION, "operator"), password)

    def _step(self) -> None:
        while not self._stop.is_set():
            try:
                self.runner.cycle()
            except Exception as err:  # the property under test: this never happens
                self.errors.append(repr(err))
            self.steps += 1
            self.clock.sleep(self.runner.station.poll_interval)
            time.sleep(0.0005)

    def _operator(self):
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"fuzz-operator-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        client.username_pw_set("operator", password("operator"))
        subscribed = threading.Event()
        client.on_connect = lambda c, *a: c.subscribe(f"gym/{self.STATION}/cmd/+/result", qos=1)
        client.on_subscribe = lambda *a: subscribed.set()
        client.on_message = lambda c, u, m: self.replies.put((m.topic, json.loads(m.payload)))
        client.connect(self.broker.host, self.broker.port)
        client.loop_start()
        assert subscribed.wait(10), "the operator could not subscribe"
        deadline = time.monotonic() + 10
        while not self.runner.publisher.connected and time.monotonic() < deadline:
            time.sleep(0.01)
        return client

    def send(self, name: str, payload: bytes, timeout: float = 15.0) -> tuple[str, dict]:
        """Publish one command and return the one reply it gets."""
        self.operator.publish(f"gym/{self.STATION}/cmd/{name}", payload, qos=1).wait_for_publish(5)
        return self.replies.get(timeout=timeout)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.operator.loop_stop()
        self.operator.disconnect()
        self.runner.stop()
        self.broker.close()


class ExceptionLog(logging.Handler):
    """Records every log record that carries a traceback: an exception something had to catch."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(f"{record.name}: {record.getMessage()}")


def expected_error(err: CommandError) -> str:
    text = str(err)
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 1] + "…"


def check_command(rig: CommandRig, name: str, payload: bytes) -> None:
    """One command through the whole path: one reply, the parser's verdict, nothing thrown."""
    steps = rig.steps
    topic, reply = rig.send(name, payload)
    assert topic == f"gym/{rig.STATION}/cmd/{name}/result"
    try:
        command = parse_command(name, payload)
    except CommandError as err:
        assert reply["ok"] is False and reply["error"] == expected_error(err), reply
        assert reply["request_id"] == err.request_id
    else:
        assert reply["request_id"] == command.request_id
        if not reply["ok"]:  # refused by the station: a reason, not an exception's repr
            assert (
                reply["error"]
                and "failed:" not in reply["error"]
                and "in time" not in reply["error"]
            ), reply
    assert not rig.exceptions.records, rig.exceptions.records
    assert not rig.errors, rig.errors
    deadline = time.monotonic() + 5
    while rig.steps == steps and time.monotonic() < deadline:  # the station keeps going
        time.sleep(0.001)
    assert rig.steps > steps


# =============================================================================== sensor bytes


def check_block(block, limit: float, capacity: int) -> None:
    """Samples a chip could really have delivered."""
    n = len(block)
    assert block.accel.shape == (n, 3) and n <= capacity
    assert np.all(np.isfinite(block.accel)) and np.all(np.abs(block.accel) <= limit * (1 + 1e-9))
    assert np.all(np.isfinite(block.t)) and np.all(np.diff(block.t) > 0)
    assert block.lost >= 0


def check_imu_garbage(
    chip: str, variant: str, range_g: int, fifo: bytes, regs: dict[int, int]
) -> None:
    """A working IMU, then junk in its FIFO and registers: SensorError or sane samples."""
    clock = SimClock()
    bus = SimBus(clock=clock)
    if chip == "mpu6050":
        sim = Mpu6050Sim(Still(), clock=clock, variant=variant, noise=False)
        bus.attach(0x68, sim)
        imu = Mpu6050(bus, 0x68, rate_hz=250, range_g=range_g, clock=clock)
        limit = range_g * G
    else:
        sim = Lsm6dsSim(Still(), clock=clock, variant=variant, noise=False)
        bus.attach(0x6A, sim)
        imu = Lsm6ds(bus, 0x6A, rate_hz=208, range_g=range_g, clock=clock)
        limit = 32768 * ACCEL_MG_PER_LSB[range_g] * 1e-3 * G
    capacity = 8192  # bytes in the largest FIFO here (the LSM6DS3's), so samples at most that
    clock.sleep(imu.poll_interval)
    imu.read()
    sim.fifo = bytearray(fifo)  # whatever the wire delivers
    for register, value in regs.items():  # and registers no working chip would hold
        sim.regs[register] = value
    for _ in range(3):
        clock.sleep(imu.poll_interval)
        try:
            block = imu.read()
        except SensorError:
            continue
        check_block(block, limit, capacity)


class Jumpy:
    """A load that jumps to the next of ``masses`` every ``step_s``: a knocked or kicked scale."""

    def __init__(self, masses: list[float], step_s: float):
        self.masses, self.step_s = np.asarray(masses, dtype=float), step_s

    def mass_g(self, t):
        return self.masses[(np.asarray(t) / self.step_s).astype(np.int64) % len(self.masses)]


def check_scale(masses: list[float], step_s: float, regs: dict[int, int]) -> None:
    """A wildly jumping load, junk in the registers: SensorError, or counts a 24-bit ADC gives."""
    clock = SimClock()
    bus = SimBus(clock=clock)
    sim = Nau7802Sim(Jumpy(masses, step_s), clock=clock)
    bus.attach(0x2A, sim)
    try:
        scale = Nau7802(bus, 0x2A, clock=clock, calibration=ScaleCalibration(1200.0, 10.7))
    except SensorError:
        return
    for register, value in regs.items():
        sim.regs[register] = value
    for _ in range(30):
        clock.sleep(0.05)
        try:
            reading = scale.read()
        except SensorError:
            continue
        if reading is not None:
            assert -(1 << 23) <= reading.raw < (1 << 23)
            assert math.isfinite(reading.mass_g) and abs(reading.mass_g) <= (1 << 24) / 10.7


# =============================================================================== analysis

#: what an accelerometer can report at all: +-16 g full scale, with room to spare
PHYSICAL = 16 * G * 4


def check_analyze(accel: np.ndarray, fs: float) -> None:
    """One window: TremorMetrics or ValueError; finite figures whenever the input is physical."""
    try:
        m = analyze(accel, fs)
    except ValueError:
        return
    if np.all(np.abs(accel) <= PHYSICAL):
        for name in ("rms_mg", "peak_hz", "bandwidth_hz", "regularity", "fatigue_ratio"):
            value = getattr(m, name)
            assert value is None or math.isfinite(value), (name, value)
        assert all(math.isfinite(v) for v in m.band_rms_mg.values()), m.band_rms_mg


def check_stream(fs: float, blocks: list[tuple[np.ndarray, np.ndarray, int]]) -> None:
    """Blocks with odd timestamps and extreme values through the streaming analysis and the
    station's per-sensor pipeline: results in time order; no exception for anything a sensor
    can report. Beyond that (samples near 1e154 m/s^2 overflow the spectrum) ValueError is
    the one refusal allowed, as from :func:`analyze`."""
    analyzer = TremorAnalyzer(fs, window_s=2.5, hop_s=0.5, decimate=1)
    pipeline = SensorAnalysis("wrist", fs)
    physical = all(np.all(np.abs(accel) <= PHYSICAL) for _, accel, _ in blocks)
    try:
        for t, accel, lost in blocks:
            results = analyzer.feed(t, accel, lost)
            assert all(a.t <= b.t for a, b in itertools.pairwise(results))
            pipeline.feed(t, accel, lost)
    except ValueError:
        assert not physical, "the analysis refused samples a sensor can deliver"
