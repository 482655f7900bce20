"""``gym-monitor demo``: a gym floor of simulated stations, a broker, the wall display and the
history service.

Each station is the real station runner (drivers, analysis, alerts, MQTT with
its durable outbox, the LED panel on gpiozero's mock pins) on simulated chips
that follow an athlete scenario: only the I2C chips are simulated. They
publish to Mosquitto when ``--broker`` names one, else to an embedded broker
on 127.0.0.1:1883; the wall display subscribes and serves its page. The
console shows a live line per station.

The first station has a tag reader: three athletes (Sam, Alex and Jo, each
with their own rested tremor) take turns there, tapping a tag in and out
(:class:`~monitor.sim.turns.TakingTurns`, turns of 75 s: the first check-out
and its session record come 79 s in). The history service runs alongside
(SQLite in the demo's state directory): it stores each session record,
merges the baseline it hands back into the athlete's profile and publishes
it, so from their second turn on each athlete is graded from their profile
at once; it also names them on the wall (their cards), and serves the
coach's pages.
"""

from __future__ import annotations

import logging
import secrets
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from .clock import RealClock
from .config import (
    AthletesConfig,
    Config,
    GpioConfig,
    ImuConfig,
    MqttConfig,
    NfcConfig,
    ScaleConfig,
    StationConfig,
)
from .errors import ConfigError
from .runner import StationRunner
from .station import latest_accel_text

log = logging.getLogger(__name__)

_FLOOR = (
    (
        "bench-1",
        "Bench press",
        (
            ImuConfig("wrist", "mpu6050", 0x68, scenario="strength_session"),
            ImuConfig(
                "bench", "lsm6ds", 0x6A, rate_hz=833, placement="bench", scenario="dropped_weight"
            ),
        ),
        ScaleConfig(mode="bottle", scenario="bottle_dock"),
    ),
    (
        "plank-2",
        "Plank mat",
        (
            ImuConfig("forearm", "mpu6500", 0x68, scenario="static_holds"),
            ImuConfig(
                "other-arm", "lsm6ds", 0x6B, rate_hz=833, exercised=False, scenario="companion"
            ),
        ),
        ScaleConfig(mode="bottle", scenario="bottle_dock"),
    ),
    (
        "rack-3",
        "Squat rack",
        (ImuConfig("thigh", "mpu6050", 0x68, scenario="persistent_tremor"),),
        ScaleConfig(mode="body", scenario="body_scale"),
    ),
    (
        "mat-4",
        "Stretch mat",
        (ImuConfig("chest", "mpu6050", 0x69, placement="body", scenario="fall"),),
        None,
    ),
    (
        "bike-5",
        "Bike",
        (
            ImuConfig(
                "frame",
                "lsm6ds",
                0x6A,
                rate_hz=833,
                placement="bench",
                scenario="neighbour_vibration",
            ),
        ),
        None,
    ),
)


#: The athletes who take turns at the first station, and their rested tremor (mg at the wrist).
ATHLETES = (("Sam", 6.0), ("Alex", 14.0), ("Jo", 28.0))
TURN_S = 75.0
TAP_HOLD_S = 1.5


def demo_configs(count: int, state_dir: Path | None = None) -> list[Config]:
    """``count`` station configs, cycling through the floor plan with new seeds. The first
    has a tag reader where athletes check in (see :func:`demo_turns`)."""
    out = []
    for i in range(count):
        sid, name, imus, scale = _FLOOR[i % len(_FLOOR)]
        if i >= len(_FLOOR):
            sid, name = f"{sid.split('-')[0]}-{i + 1}", f"{name} {i // len(_FLOOR) + 1}"
        out.append(
            Config(
                station=StationConfig(
                    id=sid,
                    name=name,
                    simulate=True,
                    seed=i + 1,
                    state_dir=state_dir or Path("/tmp/gym-monitor-demo"),
                ),
                imus=imus,
                scale=scale,
                nfc=NfcConfig() if i == 0 else None,
            )
        )
    return out


def demo_turns(config: Config, start_s: float = 0.0):
    """The athletes taking turns at the station with the tag reader (None for the others),
    their rota starting at ``start_s`` on the station's clock."""
    if config.nfc is None:
        return None
    from .sim.turns import TakingTurns

    return TakingTurns(
        len(ATHLETES),
        seed=config.station.seed,
        turn_s=TURN_S,
        # A tag held to the reader for 1.5 s, as people do: the demo's speed shortens it in
        # real time, and a busy machine's loop must still see each tap (a check-out it missed
        # would make the next check-in end the session as "superseded").
        hold_s=TAP_HOLD_S,
        tremor_mg=[mg for _, mg in ATHLETES],
        start_s=start_s,
    )


class SimulatedStation:
    """A station on its own thread: the real runner (loop, MQTT, mock LEDs) on simulated chips."""

    def __init__(self, config: Config, clock: RealClock, names: dict[str, str] | None = None):
        self.config = config
        self.clock = clock
        self.names = names or {}  # athlete id -> name, for the console line
        self.runner: StationRunner | None = None
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=config.station.id, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            # The rota starts with the station, whenever the demo's other parts let it start.
            turns = demo_turns(self.config, start_s=self.clock.now())
            bus = None
            if turns is not None:
                from .sim.rig import simulated_bus

                bus = simulated_bus(self.config, self.clock)
                turns.install(bus, self.config)
            self.runner = StationRunner(self.config, simulate=True, clock=self.clock, bus=bus)
            self.runner.run(self._stop)
        except Exception as err:  # the demo shows it rather than dying silently
            self.error = err
            log.exception("%s stopped", self.config.station.id)

    def line(self) -> str:
        cfg = self.config
        head = f"{cfg.station.display_name[:12]:<12}"
        if self.error is not None:
            return f"{head} stopped: {self.error}"
        runner = self.runner
        step = runner.last_step if runner is not None else None
        if runner is None or step is None:
            return f"{head} starting (finding sensors, calibrating the scale)"
        station = runner.station
        parts = []
        if station.nfc is not None:
            c = station.athletes.current
            who = (
                "nobody"
                if c is None
                else self.names.get(c.athlete, "guest")
                if c.athlete
                else "guest"
            )
            parts.append(f"in: {who}" + (f" ({c.profile})" if c is not None else ""))
        for rep in step.sensors:
            status = station.latest.get(rep.name)
            if rep.fault is not None:
                parts.append(f"{rep.name}: FAULT {rep.fault.kind}")
                continue
            tremor = ""
            if status is not None:
                ratio = f" {status.ratio:.1f}x" if status.ratio is not None else ""
                mg = f"{status.rms_mg:5.1f} mg" if status.rms_mg is not None else "   -- mg"
                tremor = f" {status.state:<8} {mg}{ratio}"
            rate = rep.rate
            parts.append(f"{rep.name} {rate:4.0f}/s a={latest_accel_text(rep.latest)}{tremor}")
        sess = station.last_session
        if sess is not None and sess.started is not None:
            parts.append(f"sets {sess.set_count}")
        if station.scale is not None:
            r = station.last_scale
            parts.append(
                f"scale {r.mass_g:7.1f} g"
                if r is not None and r.mass_g is not None
                else "scale   --"
            )
        alerts = station.alerts.active()
        if alerts:
            parts.append(f"ALERT {alerts[0].level}: {alerts[0].code}")
        return head + " | ".join(parts)


def _parse_broker(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError("--broker", f"must be HOST:PORT, not {text!r}")
    return host, int(port)


def run_demo(
    stations: int = 3,
    seconds: float | None = None,
    speed: float = 1.0,
    out=None,
    *,
    broker: str | None = None,
    broker_port: int = 1883,
    http_port: int = 8080,
    state_dir: Path | None = None,
) -> int:
    """Simulated stations, a broker and the wall display; a live line per station."""
    from .display.service import DisplayConfig, DisplayService
    from .mqtt.embedded_broker import EmbeddedBroker, port_in_use

    out = out or sys.stdout
    clock = RealClock(speed)
    embedded = None
    if broker:
        host, port = _parse_broker(broker)
        protocol = "v5"
        where = f"the broker at {host}:{port}"
    else:
        embedded = EmbeddedBroker(port=broker_port).start()
        host, port, protocol = embedded.host, embedded.port, "v311"  # amqtt speaks MQTT 3.1.1
        where = f"the embedded broker at {host}:{port}"
    state = state_dir or Path(tempfile.mkdtemp(prefix="gym-monitor-demo-"))
    from .athletes.identity import make_secret

    secret_file = state / "gym-secret"  # every station of the gym shares it
    secret = make_secret(secret_file)
    configs = [
        replace(
            c,
            mqtt=MqttConfig(host=host, port=port, protocol=protocol),
            gpio=GpioConfig(enabled=True),
            station=replace(c.station, state_dir=state / c.station.id),
            athletes=AthletesConfig(secret_file=str(secret_file)),
        )
        for c in demo_configs(stations)
    ]
    # The athletes' ids, from their tags and the gym's secret, and the names the gym gives them.
    names = {}
    turns = demo_turns(configs[0]) if configs else None
    if turns is not None:
        names = {
            secret.athlete_id(uid): name
            for uid, (name, _) in zip(turns.uids, ATHLETES, strict=True)
        }
    if port_in_use("127.0.0.1", http_port):
        http_port = 0  # another page is being served there; take any free port
    # A staff account of its own, so a newcomer can acknowledge alerts on the wall.
    from .display.staff import StaffFile

    demo_pin = f"{secrets.randbelow(10**6):06d}"
    StaffFile(state / "staff.json").add("demo", demo_pin, replace=True)
    display = DisplayService(
        DisplayConfig(
            mqtt_host=host,
            mqtt_port=port,
            http_host="127.0.0.1",
            http_port=http_port,
            staff_file=str(state / "staff.json"),
        )
    )
    url = display.start()
    history = _start_history(host, port, protocol, state, url, names, out)
    sims = [SimulatedStation(cfg, clock, names) for cfg in configs]
    for s in sims:
        s.start()
    pace = f" at {speed:g}x" if speed != 1 else ""
    print(f"{stations} simulated stations{pace} publishing to {where}", file=out)
    print(f"wall display: {url}", file=out)
    print(f"to acknowledge alerts there: Staff login, name demo, PIN {demo_pin}", file=out)
    if history is not None and history.url:
        print(f"coach pages (same login): {history.url}athletes", file=out)
    if names:
        print(
            f"{', '.join(names.values())} take turns at {configs[0].station.display_name}, "
            f"tapping their tags in and out every {TURN_S:g} s",
            file=out,
        )
    print(f"watch the traffic: mosquitto_sub -h {host} -p {port} -t 'gym/#' -v", file=out)
    print("not a medical device; Ctrl-C to stop", file=out)
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
        if history is not None:
            history.stop()
        display.stop()
        if embedded is not None:
            embedded.stop()
    return 0 if all(s.error is None for s in sims) else 1


def _start_history(
    host: str, port: int, protocol: str, state: Path, display_url: str, names: dict[str, str], out
):
    """The history service, embedded: SQLite in the state directory, the demo's staff login,
    the athletes named. None (said on the console) when it cannot run here."""
    try:
        from .history.config import HistoryConfig, MqttSettings, WebSettings
        from .history.service import HistoryService
        from .mqtt.embedded_broker import port_in_use
    except ImportError as err:
        print(
            f"history service not started ({err}): pip install 'gym-tremor-monitor[demo]'", file=out
        )
        return None
    web_port = 8081 if not port_in_use("127.0.0.1", 8081) else 0
    config = HistoryConfig(
        gym="demo",
        state_dir=state / "history",
        mqtt=MqttSettings(host=host, port=port, protocol=protocol, client_id="gym-history-demo"),
        web=WebSettings(
            host="127.0.0.1",
            port=web_port,
            display_url=display_url,
            staff_file=str(state / "staff.json"),
        ),
    )
    try:
        service = HistoryService(config)
        service.start()
    except Exception as err:  # the stations and the wall run on without it
        log.exception("the history service did not start")
        print(f"history service not started: {err}", file=out)
        return None
    for athlete, name in names.items():
        try:
            service.set_display_name(config.gym, athlete, name)
        except Exception:
            log.exception("could not name %s", name)
    return service
