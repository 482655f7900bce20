"""The station's one TOML file, read with tomllib and checked before anything starts.

Every mistake stops the program with one line that names the key and says
what is wrong, never a traceback::

    $ gym-monitor check-config monitor.toml
    monitor.toml: imu[0].rate_hz: must be 1000 Hz divided by a whole number ..., not 300

Values are frozen dataclasses, so the rest of the program cannot change them
by accident. config/monitor.toml documents every key with its default.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from .alerts import AlertConfig
from .analysis.activity import ActivityConfig
from .analysis.fall import SITES
from .analysis.hydration import HydrationConfig
from .analysis.pipeline import AnalysisConfig
from .analysis.session import SessionConfig
from .errors import ConfigError

_REQUIRED = object()
STATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

IMU_CHIPS = ("mpu6050", "mpu6500", "lsm6ds")
PLACEMENTS = ("limb", "bench", "body")
SCALE_MODES = ("bottle", "body")


class Table:
    """A TOML table being read: typed getters that raise ConfigError naming the key."""

    def __init__(self, data: dict[str, Any], path: str = ""):
        if not isinstance(data, dict):
            raise ConfigError(path or "(top level)", "must be a table")
        self.data = data
        self.path = path
        self._seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = _REQUIRED, *,
            choices: Iterable[Any] | None = None, min: float | None = None, max: float | None = None,
            check: Callable[[Any], str | None] | None = None) -> Any:
        self._seen.add(name)
        if name not in self.data:
            if default is _REQUIRED:
                raise ConfigError(self.key(name), "is required")
            return default
        value = self.data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(_type_name(k) for k in kinds if not (k is int and float in kinds))
            raise ConfigError(self.key(name), f"must be {names}, not {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            # TOML has nan and inf; NaN passes every < and > check, and then silently
            # disables whatever compares with it (an alert threshold never trips).
            raise ConfigError(self.key(name), f"must be a finite number, not {value!r}")
        if choices is not None and value not in choices:
            raise ConfigError(self.key(name), f"must be one of {', '.join(map(repr, choices))}, not {value!r}")
        if min is not None and value < min:
            raise ConfigError(self.key(name), f"must be at least {min}, not {value!r}")
        if max is not None and value > max:
            raise ConfigError(self.key(name), f"must be at most {max}, not {value!r}")
        if check is not None:
            problem = check(value)
            if problem:
                raise ConfigError(self.key(name), problem)
        return value

    def table(self, name: str, required: bool = False) -> "Table":
        self._seen.add(name)
        if name not in self.data and not required:
            return Table({}, self.key(name))
        value = self.get(name, dict)
        return Table(value, self.key(name))

    def tables(self, name: str) -> list["Table"]:
        """An array of tables, ``[[name]]`` in TOML."""
        value = self.get(name, list, [])
        return [Table(item, f"{self.key(name)}[{i}]") if isinstance(item, dict)
                else _raise(ConfigError(f"{self.key(name)}[{i}]", "must be a table")) for i, item in enumerate(value)]

    def done(self) -> None:
        """Refuse keys nobody asked for: a typo should not be silently ignored."""
        for name in self.data:
            if name not in self._seen:
                near = difflib.get_close_matches(name, self._seen, n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise ConfigError(self.key(name), f"is not a known key{hint}")


def _raise(err: Exception):
    raise err


def _type_name(kind: type) -> str:
    return {str: "a string", int: "a whole number", float: "a number", bool: "true or false",
            dict: "a table", list: "a list"}.get(kind, kind.__name__)


@dataclass(frozen=True)
class ImuConfig:
    name: str
    chip: str = "mpu6050"
    address: int = 0x68
    rate_hz: float = 1000.0
    range_g: int = 4
    gyro: bool = False
    placement: str = "limb"
    #: where on the body a placement = "body" sensor sits (chest, waist, thigh): fall detection
    site: str = "chest"
    exercised: bool = True
    #: which athlete scenario drives this sensor when the station is simulated
    scenario: str = "strength_session"


@dataclass(frozen=True)
class ScaleConfig:
    chip: str = "nau7802"
    address: int = 0x2A
    mode: str = "bottle"
    rate_sps: int = 10
    gain: int = 128
    scenario: str = "bottle_dock"


@dataclass(frozen=True)
class NfcConfig:
    chip: str = "pn532"
    address: int = 0x24
    poll_interval_s: float = 0.2


@dataclass(frozen=True)
class StationConfig:
    id: str = "station-1"
    name: str = ""
    simulate: bool = False
    state_dir: Path = Path("/var/lib/gym-monitor")
    seed: int = 0

    @property
    def display_name(self) -> str:
        return self.name or self.id


@dataclass(frozen=True)
class I2CConfig:
    bus: int = 1


@dataclass(frozen=True)
class MqttConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 1883
    prefix: str = "gym"
    username: str = ""           # empty: anonymous (only for a broker on loopback)
    password_file: str = ""      # the password lives in this file, never in the TOML
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    protocol: str = "v5"
    keepalive: int = 30
    ha_discovery: bool = True
    outbox_max_rows: int = 10_000
    outbox_max_mb: float = 16.0


@dataclass(frozen=True)
class GpioConfig:
    enabled: bool = False
    green_pin: int = 17
    amber_pin: int = 27
    red_pin: int = 22
    buzzer_pin: int = 23
    button_pin: int = 24
    imu_int_pin: int = 0         # 0: not wired
    long_press_s: float = 2.0
    buzzer_active_high: bool = True

    # StatusPanel.from_config reads these names
    @property
    def green(self) -> int:
        return self.green_pin

    @property
    def amber(self) -> int:
        return self.amber_pin

    @property
    def red(self) -> int:
        return self.red_pin

    @property
    def buzzer(self) -> int:
        return self.buzzer_pin

    @property
    def button(self) -> int:
        return self.button_pin

    @property
    def imu_int(self) -> int | None:
        return self.imu_int_pin or None

    @property
    def hold_time(self) -> float:
        return self.long_press_s


@dataclass(frozen=True)
class Config:
    station: StationConfig = field(default_factory=StationConfig)
    i2c: I2CConfig = field(default_factory=I2CConfig)
    imus: tuple[ImuConfig, ...] = (ImuConfig("wrist"),)
    scale: ScaleConfig | None = None
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    session: SessionConfig = field(default_factory=SessionConfig)
    alerts: AlertConfig = field(default_factory=AlertConfig)
    hydration: HydrationConfig = field(default_factory=HydrationConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    gpio: GpioConfig = field(default_factory=GpioConfig)
    nfc: NfcConfig | None = None
    source: Path | None = None


def _tuning(t: Table, cls: type, skip: Iterable[str] = ()) -> Any:
    """A table of tuning values onto the frozen dataclass that holds their defaults.

    Each key is one of the dataclass's fields, of the same type; numbers must
    be positive unless the default is zero or negative.
    """
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        t._seen.add(f.name)  # a known key, given or not: done() suggests from these
        if f.name not in t.data:
            continue
        kind = hints[f.name]
        default = getattr(cls(), f.name)
        if kind is bool:
            values[f.name] = t.get(f.name, bool)
        elif kind in (int, float):
            lo = 0 if isinstance(default, (int, float)) and default <= 0 else None
            value = t.get(f.name, (int, float) if kind is float else int)
            if lo is None and value <= 0:
                raise ConfigError(t.key(f.name), f"must be positive, not {value!r}")
            values[f.name] = float(value) if kind is float else value
        elif kind is str:
            values[f.name] = t.get(f.name, str)
        elif typing.get_origin(kind) is tuple:
            value = t.get(f.name, list)
            if len(value) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                          and math.isfinite(v) for v in value):
                raise ConfigError(t.key(f.name), f"must be a pair of numbers like [400, 800], not {value!r}")
            values[f.name] = (float(value[0]), float(value[1]))
        else:  # nested tables are read by the caller
            t._seen.add(f.name)
    try:
        return cls(**values)
    except ValueError as err:  # the dataclass's own checks (e.g. hydration) name what is wrong
        raise ConfigError(t.path, str(err)) from None


def _read_analysis(t: Table) -> AnalysisConfig:
    activity_table = t.table("activity")
    activity = _tuning(activity_table, ActivityConfig)
    activity_table.done()
    bands = t.table("bands")  # band names are checked by Bands.from_mapping
    options: dict[str, Any] = {}
    if bands.data:
        from .analysis.tremor import Bands

        for name in bands.data:
            bands.get(name, list)
        try:
            options["bands"] = Bands.from_mapping({k: tuple(v) for k, v in bands.data.items()})
        except (ValueError, TypeError) as err:
            raise ConfigError(bands.path, str(err)) from None
    cfg = _tuning(t, AnalysisConfig, skip=("activity", "analysis_options"))
    return dataclasses.replace(cfg, activity=activity, analysis_options=options)


def _address(lo: int, hi: int = 0x77) -> Callable[[int], str | None]:
    return lambda v: None if lo <= v <= hi else f"must be an I2C address from 0x{lo:02X} to 0x{hi:02X}, not 0x{v:X}"


def _station_id(value: str) -> str | None:
    if STATION_ID.match(value):
        return None
    return "must be 1 to 64 letters, digits, '-' or '_' (it becomes part of MQTT topics)"


def _mpu_rate(hz: float) -> str | None:
    divider = 1000.0 / hz
    if 1 <= divider <= 256 and abs(divider - round(divider)) < 1e-9:
        return None
    return "the MPU-6050/6500 runs at 1000 Hz divided by a whole number: 1000, 500, 250, 200, 125, 100, 50 ..."


def _lsm6ds_rate(hz: float) -> str | None:
    from .i2c.lsm6ds import RATES_HZ

    if any(abs(hz - r) <= 0.05 * r for r in RATES_HZ):
        return None
    return "the lsm6ds runs at " + ", ".join(f"{r:g}" for r in RATES_HZ) + " Hz"


def _read_imu(t: Table) -> ImuConfig:
    chip = t.get("chip", str, "mpu6050", choices=IMU_CHIPS)
    default_addr = 0x6A if chip == "lsm6ds" else 0x68
    default_rate = 833.0 if chip == "lsm6ds" else 1000.0
    allowed = (0x6A, 0x6B) if chip == "lsm6ds" else (0x68, 0x69)
    cfg = ImuConfig(
        name=t.get("name", str, check=lambda v: None if v.strip() else "must not be empty"),
        chip=chip,
        address=t.get("address", int, default_addr,
                      check=lambda v: None if v in allowed else f"the {chip} answers at "
                      + " or ".join(f"0x{a:02X}" for a in allowed) + f", not 0x{v:X}"),
        rate_hz=t.get("rate_hz", float, default_rate, min=4.0, max=6664.0,
                      check=_lsm6ds_rate if chip == "lsm6ds" else _mpu_rate),
        range_g=t.get("range_g", int, 4, choices=(2, 4, 8, 16)),
        gyro=t.get("gyro", bool, False),
        placement=t.get("placement", str, "limb", choices=PLACEMENTS),
        site=t.get("site", str, "chest", choices=SITES),
        exercised=t.get("exercised", bool, True),
        scenario=t.get("scenario", str, "strength_session"),
    )
    t.done()
    return cfg


def _read_scale(t: Table) -> ScaleConfig:
    cfg = ScaleConfig(
        chip=t.get("chip", str, "nau7802", choices=("nau7802",)),
        address=t.get("address", int, 0x2A, check=lambda v: None if v == 0x2A else "the NAU7802 answers only at 0x2A"),
        mode=t.get("mode", str, "bottle", choices=SCALE_MODES),
        rate_sps=t.get("rate_sps", int, 10, choices=(10, 20, 40, 80, 320)),
        gain=t.get("gain", int, 128, choices=(1, 2, 4, 8, 16, 32, 64, 128)),
        scenario=t.get("scenario", str, "bottle_dock"),
    )
    t.done()
    return cfg


def _read_nfc(t: Table) -> NfcConfig:
    cfg = NfcConfig(
        chip=t.get("chip", str, "pn532", choices=("pn532",)),
        address=t.get("address", int, 0x24, check=lambda v: None if v == 0x24 else "the PN532 answers only at 0x24 on I2C"),
        poll_interval_s=t.get("poll_interval_s", float, 0.2, min=0.05, max=5.0),
    )
    t.done()
    return cfg


def parse(data: dict[str, Any], source: Path | None = None) -> Config:
    """Check a parsed TOML document and build the Config, or raise ConfigError."""
    top = Table(data)
    s = top.table("station")
    station = StationConfig(
        id=s.get("id", str, "station-1", check=_station_id),
        name=s.get("name", str, ""),
        simulate=s.get("simulate", bool, False),
        state_dir=Path(s.get("state_dir", str, "/var/lib/gym-monitor")),
        seed=s.get("seed", int, 0),
    )
    s.done()
    b = top.table("i2c")
    i2c = I2CConfig(bus=b.get("bus", int, 1, min=0, max=255))
    b.done()
    imus = tuple(_read_imu(t) for t in top.tables("imu")) if "imu" in data else Config().imus
    names = [i.name for i in imus]
    for i, name in enumerate(names):
        if names.index(name) != i:
            raise ConfigError(f"imu[{i}].name", f"{name!r} is used by imu[{names.index(name)}] too")
    addresses = [i.address for i in imus]
    for i, addr in enumerate(addresses):
        if addresses.index(addr) != i:
            raise ConfigError(f"imu[{i}].address", f"0x{addr:02X} is taken by imu[{addresses.index(addr)}]; strap AD0/SA0 differently")
    scale = _read_scale(top.table("scale")) if "scale" in data else None
    nfc = _read_nfc(top.table("nfc")) if "nfc" in data else None
    analysis_table = top.table("analysis")
    analysis = _read_analysis(analysis_table)
    analysis_table.done()
    sections = {}
    for name, cls in (("session", SessionConfig), ("alerts", AlertConfig), ("hydration", HydrationConfig)):
        table = top.table(name)
        sections[name] = _tuning(table, cls)
        table.done()
    mqtt = _read_mqtt(top.table("mqtt"))
    gpio = _read_gpio(top.table("gpio"))
    top.done()
    return Config(station=station, i2c=i2c, imus=imus, scale=scale, analysis=analysis, mqtt=mqtt, gpio=gpio,
                  nfc=nfc, source=source, **sections)


def _read_mqtt(t: Table) -> MqttConfig:
    d = MqttConfig()
    cfg = MqttConfig(
        enabled=t.get("enabled", bool, d.enabled),
        host=t.get("host", str, d.host, check=lambda v: None if v.strip() else "must not be empty"),
        port=t.get("port", int, d.port, min=1, max=65535),
        prefix=t.get("prefix", str, d.prefix,
                     check=lambda v: None if re.fullmatch(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*", v)
                     else "must be words joined by '/', without '+', '#' or a leading '/'"),
        username=t.get("username", str, d.username),
        password_file=t.get("password_file", str, d.password_file),
        tls_ca=t.get("tls_ca", str, d.tls_ca),
        tls_cert=t.get("tls_cert", str, d.tls_cert),
        tls_key=t.get("tls_key", str, d.tls_key),
        protocol=t.get("protocol", str, d.protocol, choices=("v5", "v311")),
        keepalive=t.get("keepalive", int, d.keepalive, min=5, max=3600),
        ha_discovery=t.get("ha_discovery", bool, d.ha_discovery),
        outbox_max_rows=t.get("outbox_max_rows", int, d.outbox_max_rows, min=100),
        outbox_max_mb=t.get("outbox_max_mb", float, d.outbox_max_mb, min=0.1),
    )
    if "password" in t.data:
        raise ConfigError(t.key("password"), "is not read from the TOML: put it in a file and set password_file")
    if cfg.password_file and not cfg.username:
        raise ConfigError(t.key("username"), "is required when password_file is set")
    if bool(cfg.tls_cert) != bool(cfg.tls_key):
        raise ConfigError(t.key("tls_cert"), "tls_cert and tls_key go together")
    t.done()
    return cfg


def _read_gpio(t: Table) -> GpioConfig:
    d = GpioConfig()
    pin = {"min": 0, "max": 27}
    cfg = GpioConfig(
        enabled=t.get("enabled", bool, d.enabled),
        green_pin=t.get("green_pin", int, d.green_pin, **pin),
        amber_pin=t.get("amber_pin", int, d.amber_pin, **pin),
        red_pin=t.get("red_pin", int, d.red_pin, **pin),
        buzzer_pin=t.get("buzzer_pin", int, d.buzzer_pin, **pin),
        button_pin=t.get("button_pin", int, d.button_pin, **pin),
        imu_int_pin=t.get("imu_int_pin", int, d.imu_int_pin, **pin),
        long_press_s=t.get("long_press_s", float, d.long_press_s, min=0.5, max=10.0),
        buzzer_active_high=t.get("buzzer_active_high", bool, d.buzzer_active_high),
    )
    used = [(k, getattr(cfg, k)) for k in ("green_pin", "amber_pin", "red_pin", "buzzer_pin", "button_pin", "imu_int_pin")]
    seen: dict[int, str] = {}
    for key, value in used:
        if key == "imu_int_pin" and value == 0:
            continue
        if value in (2, 3):
            raise ConfigError(t.key(key), f"BCM {value} is I2C ({'SDA' if value == 2 else 'SCL'}); pick another pin")
        if value in seen:
            raise ConfigError(t.key(key), f"BCM {value} is already {seen[value]}")
        seen[value] = key
    t.done()
    return cfg


def load(path: str | Path) -> Config:
    """Read and check a config file. Raises ConfigError naming the key on any problem."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(str(path), "no such file") from None
    except PermissionError:
        raise ConfigError(str(path), "cannot be read (permission denied)") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(str(path), f"is not valid TOML: {err}") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), "is not UTF-8 text") from None
    return parse(data, source=path)
