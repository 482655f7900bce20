"""The station's one TOML file, read with tomllib and checked before anything starts.

Every mistake stops the program with one line that names the key and says
what is wrong, never a traceback; a file with several mistakes gets one line
for each, all at once::

    $ gym-monitor check-config monitor.toml
    monitor.toml: imu[0].rate_hz: must be 1000 Hz divided by a whole number ..., not 300
    monitor.toml: mqtt.password_file: /etc/gym-monitor/mqtt-password: no such file

What is checked: each value's type and range (ranges also keep memory bounded:
a window of a million seconds is refused, not allocated), values that must
agree with each other (``hop_s`` within ``window_s``, ``elevated_ratio`` below
``high_ratio``, ...), and what the file names outside itself (the password and
TLS files, a state directory that can be written, scenario names): everything
``gym-monitor run`` would trip over, so ``check-config`` passing means ``run``
starts.

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .alerts import AlertConfig
from .analysis.activity import ActivityConfig
from .analysis.fall import SITES
from .analysis.hydration import HydrationConfig
from .analysis.pipeline import AnalysisConfig
from .analysis.session import SessionConfig
from .errors import ConfigError, ConfigErrors
from .files import read_small_file

_REQUIRED = object()
STATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

IMU_CHIPS = ("mpu6050", "mpu6500", "lsm6ds")
PLACEMENTS = ("limb", "bench", "body")
SCALE_MODES = ("bottle", "body")


class Table:
    """A TOML table being read: typed getters that note a ConfigError naming the key and go on.

    A getter that finds a problem notes it in ``problems`` (one list shared by
    every table of a document) and returns the default, so one pass finds every
    mistake; :func:`parse` raises them together at the end.
    """

    def __init__(
        self, data: dict[str, Any], path: str = "", problems: list[ConfigError] | None = None
    ):
        self.problems: list[ConfigError] = [] if problems is None else problems
        if not isinstance(data, dict):
            self.problems.append(ConfigError(path or "(top level)", "must be a table"))
            data = {}
        self.data = data
        self.path = path
        self._seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def problem(self, name: str, text: str) -> None:
        """Note a problem with key ``name`` of this table."""
        self.problems.append(ConfigError(self.key(name), text))

    def get(
        self,
        name: str,
        kind: type | tuple[type, ...],
        default: Any = _REQUIRED,
        *,
        choices: Iterable[Any] | None = None,
        min: float | None = None,
        max: float | None = None,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        self._seen.add(name)
        fallback = None if default is _REQUIRED else default
        if name not in self.data:
            if default is _REQUIRED:
                self.problem(name, "is required")
            return fallback
        value: Any = self.data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value) if abs(value) < 2**63 else math.inf
        if not _of_kind(value, kinds):
            names = " or ".join(_type_name(k) for k in kinds if not (k is int and float in kinds))
            self.problem(name, f"must be {names}, not {_shown(value)}")
            return fallback
        if isinstance(value, float) and not math.isfinite(value):
            # TOML has nan and inf; NaN passes every < and > check, and then silently
            # disables whatever compares with it (an alert threshold never trips).
            self.problem(name, f"must be a finite number, not {value!r}")
            return fallback
        if choices is not None and value not in choices:
            self.problem(
                name, f"must be one of {', '.join(map(repr, choices))}, not {_shown(value)}"
            )
            return fallback
        if min is not None and value < min:
            self.problem(name, f"must be at least {min}, not {value!r}")
            return fallback
        if max is not None and value > max:
            self.problem(name, f"must be at most {max}, not {_shown(value)}")
            return fallback
        if check is not None:
            problem = check(value)
            if problem:
                self.problem(name, problem)
                return fallback
        return value

    def table(self, name: str, required: bool = False) -> Table:
        self._seen.add(name)
        if name not in self.data and not required:
            return Table({}, self.key(name), self.problems)
        value = self.get(name, dict, {})
        return Table(value, self.key(name), self.problems)

    def tables(self, name: str) -> list[Table]:
        """An array of tables, ``[[name]]`` in TOML; an item that is not a table is noted and
        skipped."""
        value = self.get(name, list, [])
        out = []
        for i, item in enumerate(value):
            if isinstance(item, dict):
                out.append(Table(item, f"{self.key(name)}[{i}]", self.problems))
            else:
                self.problems.append(ConfigError(f"{self.key(name)}[{i}]", "must be a table"))
        return out

    def done(self) -> None:
        """Refuse keys nobody asked for: a typo should not be silently ignored."""
        for name in self.data:
            if name not in self._seen:
                near = difflib.get_close_matches(str(name), self._seen, n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                self.problem(name, f"is not a known key{hint}")


def _shown(value: Any) -> str:
    """A value for an error line: repr, cut short (a config value may be a megabyte of text)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _raise(err: Exception):
    raise err


def _type_name(kind: type) -> str:
    return {
        str: "a string",
        int: "a whole number",
        float: "a number",
        bool: "true or false",
        dict: "a table",
        list: "a list",
    }.get(kind, kind.__name__)


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
class AthletesConfig:
    """Check-in, profiles and session records (:mod:`monitor.athletes`)."""

    secret_file: str = ""  # the gym's secret that turns a tag's UID into an athlete id
    profile_wait_s: float = 2.0  # a check-in waits this long for the athlete's profile
    timeout_s: float = 600.0  # a check-in with no set this long after it ends ("timeout")


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
    username: str = ""  # empty: anonymous (only for a broker on loopback)
    password_file: str = ""  # the password lives in this file, never in the TOML
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    protocol: str = "v5"
    keepalive: int = 30
    ha_discovery: bool = True
    outbox_max_rows: int = 10_000
    outbox_max_mb: float = 16.0


@dataclass(frozen=True)
class HomeAssistantConfig:
    """How the station appears in Home Assistant (``mqtt.ha_discovery`` switches it on)."""

    discovery: str = "entity"  # entity: one config per entity; device: HA >= 2024.12
    discovery_prefix: str = "homeassistant"
    interval_s: float = 5.0  # a summary this often, and at once on a change of level
    commands: bool = True  # buttons and a select: start/stop a session, tare
    ack_by: str = ""  # the staff name acks from HA record; empty: no ack button


@dataclass(frozen=True)
class GpioConfig:
    enabled: bool = False
    green_pin: int = 17
    amber_pin: int = 27
    red_pin: int = 22
    buzzer_pin: int = 23
    button_pin: int = 24
    imu_int_pin: int = 0  # 0: not wired
    long_press_s: float = 2.0
    buzzer_active_high: bool = True


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
    homeassistant: HomeAssistantConfig = field(default_factory=HomeAssistantConfig)
    nfc: NfcConfig | None = None
    athletes: AthletesConfig = field(default_factory=AthletesConfig)
    source: Path | None = None


#: Ranges beyond "positive" for tuning values, by dotted key. Some keep memory bounded (a
#: window's samples, the windows a baseline learns from, smoothing lengths); the rest refuse
#: values that cannot mean anything.
LIMITS: dict[str, tuple[float, float]] = {
    "analysis.window_s": (0.5, 30.0),
    "analysis.hop_s": (0.05, 30.0),
    "analysis.analysis_hz": (40.0, 2000.0),
    "analysis.activity.smooth_windows": (1, 100),
    "analysis.activity.learn_windows": (1, 2000),
    "analysis.activity.set_min_reps": (1, 100),
    "analysis.activity.reference_s": (0.5, 600.0),
    "analysis.activity.after_s": (0.5, 3600.0),
    "alerts.smooth_windows": (1, 100),
    "alerts.trend_min_sets": (1, 1000),
    "alerts.overrun_lost_per_min": (1, 10_000_000),
    "alerts.ack_silence_s": (10.0, 86_400.0),
    "hydration.stable_s": (0.1, 600.0),
}
#: Any other duration (``*_s``) at most a week; any other whole number at most a million.
MAX_SECONDS = 7 * 86_400.0
MAX_COUNT = 1_000_000


def _tuning(t: Table, cls: type, skip: Iterable[str] = ()) -> Any:
    """A table of tuning values onto the frozen dataclass that holds their defaults.

    Each key is one of the dataclass's fields, of the same type; numbers must
    be positive unless the default is zero or negative, and within LIMITS.
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
            low, high = LIMITS.get(
                t.key(f.name),
                (
                    None,
                    MAX_SECONDS if f.name.endswith("_s") else None if kind is float else MAX_COUNT,
                ),
            )
            value = t.get(f.name, (int, float) if kind is float else int, min=low, max=high)
            if value is None:
                continue
            if lo is None and value <= 0:
                t.problem(f.name, f"must be positive, not {value!r}")
                continue
            values[f.name] = float(value) if kind is float else value
        elif kind is str:
            value = t.get(f.name, str)
            if value is not None:
                values[f.name] = value
        elif typing.get_origin(kind) is tuple:
            value = t.get(f.name, list)
            if value is None:
                continue
            if len(value) != 2 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for v in value
            ):
                t.problem(f.name, f"must be a pair of numbers like [400, 800], not {_shown(value)}")
                continue
            values[f.name] = (float(value[0]), float(value[1]))
        else:  # nested tables are read by the caller
            t._seen.add(f.name)
    try:
        return cls(**values)
    except (
        ValueError,
        TypeError,
    ) as err:  # the dataclass's own checks (e.g. hydration) name what is wrong
        t.problems.append(ConfigError(t.path, str(err)))
        return cls()


#: ``[alerts]`` keys that name fluid thresholds, and the ``[hydration]`` field each one is: the
#: hydration thresholds judge the scale's events and the fluid alerts alike (one judge), and
#: these older names still read.
FLUID_ALERT_KEYS = {
    "loss_caution_pct": "caution_loss_pct",
    "loss_warning_pct": "warning_loss_pct",
    "low_intake_ml_per_h": "min_intake_ml_per_h",
    "low_intake_after_s": "low_intake_after_s",
}


def _fluid_names(t: Table) -> dict[str, tuple[str, float]]:
    """The fluid thresholds ``[alerts]`` gives: hydration field -> (the key given, its value)."""
    out = {}
    for key, field_name in FLUID_ALERT_KEYS.items():
        high = MAX_SECONDS if key.endswith("_s") else None
        value = t.get(key, (int, float), None, max=high)
        if value is None:
            continue
        if value <= 0:
            t.problem(key, f"must be positive, not {value!r}")
            continue
        out[field_name] = (t.key(key), float(value))
    return out


def _of_kind(value: Any, kinds: tuple[type, ...]) -> bool:
    """``value`` is one of ``kinds`` (a TOML boolean is no number)."""
    return isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool))


def _read_hydration(t: Table, fluid: dict[str, tuple[str, float]]) -> HydrationConfig:
    """``[hydration]``, with the fluid thresholds ``[alerts]`` names (see FLUID_ALERT_KEYS)."""
    data = dict(t.data)
    named: dict[str, str] = {}  # field -> the key the file set it with
    for field_name, (key, value) in fluid.items():
        if field_name in data and data[field_name] != value:
            t.problems.append(
                ConfigError(key, f"names {t.key(field_name)}, which the file sets apart: keep one")
            )
            continue
        data[field_name] = value
        named[field_name] = key
    limits = ("caution_loss_pct", "warning_loss_pct")
    caution, warning = (data.get(n, getattr(HydrationConfig, n)) for n in limits)
    numbers = all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in (caution, warning)
    )
    if numbers and caution >= warning:
        given = [n for n in limits if n in data]
        t.problems.append(
            ConfigError(
                named.get(given[0], t.key(given[0])) if given else t.key(limits[0]),
                f"the caution loss ({caution:g} %) must be below the warning loss ({warning:g} %)",
            )
        )
        for n in limits:
            data.pop(n, None)
    table = Table(data, t.path, t.problems)
    config = _tuning(table, HydrationConfig)
    t._seen |= table._seen
    return config


def _read_analysis(t: Table) -> AnalysisConfig:
    activity_table = t.table("activity")
    activity = _tuning(activity_table, ActivityConfig)
    activity_table.done()
    bands = t.table("bands")  # band names are checked by Bands.from_mapping
    options: dict[str, Any] = {}
    if bands.data:
        from .analysis.tremor import Bands

        if all(bands.get(name, list) is not None for name in bands.data):
            try:
                options["bands"] = Bands.from_mapping({k: tuple(v) for k, v in bands.data.items()})
            except (ValueError, TypeError) as err:
                bands.problems.append(ConfigError(bands.path, str(err)))
    cfg = _tuning(t, AnalysisConfig, skip=("activity", "analysis_options"))
    return dataclasses.replace(cfg, activity=activity, analysis_options=options)


def _address(lo: int, hi: int = 0x77) -> Callable[[int], str | None]:
    return lambda v: (
        None
        if lo <= v <= hi
        else f"must be an I2C address from 0x{lo:02X} to 0x{hi:02X}, not 0x{v:X}"
    )


def _station_id(value: str) -> str | None:
    from .mqtt.topics import SERVICE_USERS

    if value in SERVICE_USERS:
        return (
            f"{value!r} is the broker's {value} user (config/mosquitto/acl), not a station: "
            "give this station an id of its own"
        )
    if STATION_ID.match(value):
        return None
    return "must be 1 to 64 letters, digits, '-' or '_' (it becomes part of MQTT topics)"


def _read_imu(t: Table) -> ImuConfig:
    from .i2c.chips import IMU_DRIVERS  # addresses, rates and ranges are the drivers' facts

    chip = t.get("chip", str, "mpu6050", choices=IMU_CHIPS)
    driver = IMU_DRIVERS[chip]
    default_rate = 833.0 if chip == "lsm6ds" else 1000.0
    cfg = ImuConfig(
        name=t.get("name", str, check=lambda v: None if v.strip() else "must not be empty"),
        chip=chip,
        address=t.get(
            "address", int, driver.ADDRESSES[0], check=lambda v: driver.check_address(v, chip)
        ),
        rate_hz=t.get("rate_hz", float, default_rate, min=4.0, max=6664.0, check=driver.check_rate),
        range_g=t.get("range_g", int, 4, choices=driver.RANGES_G),
        gyro=t.get("gyro", bool, False),
        placement=t.get("placement", str, "limb", choices=PLACEMENTS),
        site=t.get("site", str, "chest", choices=SITES),
        exercised=t.get("exercised", bool, True),
        scenario=t.get("scenario", str, "strength_session"),
    )
    t.done()
    return cfg


def _read_scale(t: Table) -> ScaleConfig:
    from .i2c.nau7802 import Nau7802  # its address, rates and gains

    cfg = ScaleConfig(
        chip=t.get("chip", str, "nau7802", choices=("nau7802",)),
        address=t.get("address", int, Nau7802.ADDRESSES[0], check=Nau7802.check_address),
        mode=t.get("mode", str, "bottle", choices=SCALE_MODES),
        rate_sps=t.get("rate_sps", int, 10, choices=Nau7802.RATES_SPS),
        gain=t.get("gain", int, 128, choices=Nau7802.GAINS),
        scenario=t.get("scenario", str, "bottle_dock"),
    )
    t.done()
    return cfg


def _read_nfc(t: Table) -> NfcConfig:
    from .i2c.pn532 import Pn532  # its address

    cfg = NfcConfig(
        chip=t.get("chip", str, "pn532", choices=("pn532",)),
        address=t.get("address", int, Pn532.ADDRESSES[0], check=Pn532.check_address),
        poll_interval_s=t.get("poll_interval_s", float, 0.2, min=0.05, max=5.0),
    )
    t.done()
    return cfg


def _read_athletes(t: Table) -> AthletesConfig:
    d = AthletesConfig()
    cfg = AthletesConfig(
        secret_file=t.get("secret_file", str, d.secret_file),
        profile_wait_s=t.get("profile_wait_s", float, d.profile_wait_s, min=0.1, max=60.0),
        timeout_s=t.get("timeout_s", float, d.timeout_s, min=30.0, max=MAX_SECONDS),
    )
    t.done()
    return cfg


def parse(data: dict[str, Any], source: Path | None = None, *, environment: bool = True) -> Config:
    """Check a parsed TOML document and build the Config, or raise every mistake at once.

    Raises a ConfigError for one mistake, ConfigErrors (one line per key) for
    several. ``environment`` also checks what the document names outside itself
    (files, the state directory, scenario names), as ``gym-monitor run`` needs them.
    """
    top = Table(data)
    problems = top.problems
    s = top.table("station")
    station = StationConfig(
        id=s.get("id", str, "station-1", check=_station_id),
        name=s.get(
            "name",
            str,
            "",
            check=lambda v: None if len(v) <= 100 else "must be at most 100 characters",
        ),
        simulate=s.get("simulate", bool, False),
        state_dir=Path(
            s.get(
                "state_dir",
                str,
                "/var/lib/gym-monitor",
                check=lambda v: None if v.strip() and "\x00" not in v else "must be a path",
            )
        ),
        seed=s.get("seed", int, 0, min=0, max=2**32 - 1),
    )
    s.done()
    b = top.table("i2c")
    i2c = I2CConfig(bus=b.get("bus", int, 1, min=0, max=255))
    b.done()
    imus = tuple(_read_imu(t) for t in top.tables("imu")) if "imu" in data else Config().imus
    if data.get("imu") == []:
        problems.append(
            ConfigError(
                "imu",
                "needs at least one [[imu]] table: a station without an IMU has "
                "nothing to watch (leave the key out for one MPU-6050 at 0x68)",
            )
        )
    names = [i.name for i in imus]
    for i, name in enumerate(names):
        if name is not None and names.index(name) != i:
            problems.append(
                ConfigError(f"imu[{i}].name", f"{name!r} is used by imu[{names.index(name)}] too")
            )
    addresses = [i.address for i in imus]
    for i, addr in enumerate(addresses):
        if addresses.index(addr) != i:
            problems.append(
                ConfigError(
                    f"imu[{i}].address",
                    f"0x{addr:02X} is taken by imu[{addresses.index(addr)}]; "
                    "strap AD0/SA0 differently",
                )
            )
    scale = _read_scale(top.table("scale")) if "scale" in data else None
    nfc = _read_nfc(top.table("nfc")) if "nfc" in data else None
    athletes = _read_athletes(top.table("athletes"))
    analysis_table = top.table("analysis")
    analysis = _read_analysis(analysis_table)
    analysis_table.done()
    table = top.table("session")
    session = _tuning(table, SessionConfig)
    table.done()
    table = top.table("alerts")
    alerts = _tuning(table, AlertConfig)
    fluid = _fluid_names(table)
    table.done()
    table = top.table("hydration")
    hydration = _read_hydration(table, fluid)
    table.done()
    mqtt = _read_mqtt(top.table("mqtt"))
    gpio = _read_gpio(top.table("gpio"))
    homeassistant = _read_homeassistant(top.table("homeassistant"))
    top.done()
    config = Config(
        station=station,
        i2c=i2c,
        imus=imus,
        scale=scale,
        analysis=analysis,
        mqtt=mqtt,
        gpio=gpio,
        nfc=nfc,
        athletes=athletes,
        source=source,
        homeassistant=homeassistant,
        session=session,
        alerts=alerts,
        hydration=hydration,
    )
    _relations(config, data, problems)
    if environment:
        _environment(config, data, problems)
    if problems:
        raise ConfigErrors.of(_unique(problems))
    return config


def _unique(problems: list[ConfigError]) -> list[ConfigError]:
    seen, out = set(), []
    for p in problems:
        if str(p) not in seen:
            seen.add(str(p))
            out.append(p)
    return out


def _given(data: dict[str, Any], dotted: str) -> bool:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _relations(c: Config, data: dict[str, Any], problems: list[ConfigError]) -> None:
    """Values that must agree. The key named is one the file sets (else the first of the pair)."""
    bad = {p.key for p in problems}  # a value already refused is not compared again

    def pick(*keys: str) -> str:
        return next((k for k in keys if _given(data, k)), keys[0])

    def need(ok: bool, keys: tuple[str, ...], text: str) -> None:
        if not ok and not bad.intersection(keys):
            problems.append(ConfigError(pick(*keys), text))

    a, al, act = c.analysis, c.alerts, c.analysis.activity
    need(
        a.hop_s <= a.window_s,
        ("analysis.hop_s", "analysis.window_s"),
        f"hop_s ({a.hop_s:g} s) must be at most window_s ({a.window_s:g} s): windows may "
        "overlap, not leave gaps",
    )
    need(
        al.elevated_ratio < al.high_ratio,
        ("alerts.elevated_ratio", "alerts.high_ratio"),
        f"elevated_ratio ({al.elevated_ratio:g}) must be below high_ratio ({al.high_ratio:g})",
    )
    need(
        al.clear_factor >= 1.0,
        ("alerts.clear_factor",),
        "must be at least 1 (an alert clears below its threshold divided by it), not "
        f"{al.clear_factor:g}",
    )
    for key in ("elevated_ratio", "unexercised_ratio", "fuel_rest_ratio", "hold_ratio"):
        need(
            getattr(al, key) > 1.0,
            (f"alerts.{key}",),
            f"must be above 1 (a ratio to the rested level), not {getattr(al, key):g}",
        )
    need(
        c.session.persist_ratio > 1.0,
        ("session.persist_ratio",),
        f"must be above 1 (a ratio to the rested level), not {c.session.persist_ratio:g}",
    )
    for key in ("hold_rise", "hold_release", "recovered_ratio", "hold_ratio"):
        value = getattr(act, key, None)
        if value is not None:
            need(
                value >= 1.0,
                (f"analysis.activity.{key}",),
                f"must be at least 1 (a ratio), not {value:g}",
            )
    still, move = getattr(act, "still_mg", None), getattr(act, "move_mg", None)
    if still is not None and move is not None:
        need(
            still < move,
            ("analysis.activity.still_mg", "analysis.activity.move_mg"),
            f"still_mg ({still:g}) must be below move_mg ({move:g})",
        )
    bench = getattr(act, "bench_move_mg", None)
    if bench is not None and move is not None:
        need(
            bench <= move,
            ("analysis.activity.bench_move_mg", "analysis.activity.move_mg"),
            f"bench_move_mg ({bench:g}) must be at most move_mg ({move:g}): a bench clip feels "
            "less than a limb",
        )


def _environment(c: Config, data: dict[str, Any], problems: list[ConfigError]) -> None:
    """What ``run`` needs outside the file: a state directory, the MQTT files, known scenarios."""
    problem = _state_dir_problem(c.station.state_dir)
    if problem:
        problems.append(ConfigError("station.state_dir", problem))
    if c.mqtt.enabled:
        problems.extend(_mqtt_file_problems(c.mqtt))
    if c.athletes.secret_file or (c.nfc is not None and not c.station.simulate):
        from .athletes.identity import load_secret

        try:
            load_secret(c, simulate=c.station.simulate, create=False)
        except ConfigError as err:
            problems.append(err)
    imus = data.get("imu")
    imu_tables: list[Any] = imus if isinstance(imus, list) else []
    if (
        c.station.simulate
        or _given(data, "scale.scenario")
        or any(isinstance(t, dict) and "scenario" in t for t in imu_tables)
    ):
        from .sim.rig import COMPANION
        from .sim.scenarios.library import MASS_SCENARIOS, SCENARIOS

        for i, imu in enumerate(c.imus):
            if imu.scenario not in SCENARIOS and imu.scenario != COMPANION:
                names = ", ".join([*sorted(SCENARIOS), COMPANION])
                problems.append(
                    ConfigError(
                        f"imu[{i}].scenario", f"must be one of {names}, not {_shown(imu.scenario)}"
                    )
                )
        if c.scale is not None and c.scale.scenario not in MASS_SCENARIOS:
            problems.append(
                ConfigError(
                    "scale.scenario",
                    f"must be one of {', '.join(sorted(MASS_SCENARIOS))}, "
                    f"not {_shown(c.scale.scenario)}",
                )
            )


#: systemd's StateDirectory= makes this one for the service, so it may be missing at check time
DEFAULT_STATE_DIR = Path("/var/lib/gym-monitor")


def _state_dir_problem(path: Path) -> str | None:
    """None if ``path`` is a directory this user can write, or can be created; else why not."""
    import os

    try:
        if path.exists():
            if not path.is_dir():
                return f"{path} is not a directory"
            if not os.access(path, os.W_OK | os.X_OK):
                return (
                    f"{path} cannot be written by this user (the station keeps its outbox and "
                    "alerts there)"
                )
            return None
        if path == DEFAULT_STATE_DIR:
            return None
        parent = path.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            return f"{path} cannot be created: {parent} is not a directory"
        if not os.access(parent, os.W_OK | os.X_OK):
            return (
                f"{path} does not exist and cannot be created by this user ({parent} is not "
                "writable)"
            )
    except (OSError, ValueError) as err:
        return f"{path} cannot be examined: {err}"
    return None


def _mqtt_file_problems(m: MqttConfig) -> list[ConfigError]:
    from .files import read_small_file

    out: list[ConfigError] = []
    if m.password_file and m.username:
        from .mqtt.publisher import read_password_file

        try:
            read_password_file(m.password_file, "mqtt.password_file", warn=False)
        except ConfigError as err:
            out.append(err)
    files = {"tls_ca": m.tls_ca, "tls_cert": m.tls_cert, "tls_key": m.tls_key}
    usable = {}
    for key, path in files.items():
        if not path:
            continue
        try:
            read_small_file(
                path, f"mqtt.{key}", limit=1024 * 1024
            )  # a FIFO or /dev/zero is refused here
            usable[key] = path
        except ConfigError as err:
            out.append(err)
    if out:
        return out
    import ssl

    try:
        context = (
            ssl.create_default_context(cafile=usable.get("tls_ca") or None)
            if "tls_ca" in usable
            else None
        )
    except (ssl.SSLError, OSError, ValueError) as err:
        return [
            ConfigError("mqtt.tls_ca", f"{m.tls_ca}: is not a CA certificate TLS can use ({err})")
        ]
    if "tls_cert" in usable and "tls_key" in usable:
        try:
            (context or ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)).load_cert_chain(
                m.tls_cert, m.tls_key
            )
        except (ssl.SSLError, OSError, ValueError) as err:
            out.append(
                ConfigError(
                    "mqtt.tls_cert",
                    f"{m.tls_cert} with {m.tls_key}: not a certificate and "
                    f"its key that TLS can use ({err})",
                )
            )
    return out


def _read_mqtt(t: Table) -> MqttConfig:
    d = MqttConfig()
    cfg = MqttConfig(
        enabled=t.get("enabled", bool, d.enabled),
        host=t.get("host", str, d.host, check=lambda v: None if v.strip() else "must not be empty"),
        port=t.get("port", int, d.port, min=1, max=65535),
        prefix=t.get(
            "prefix",
            str,
            d.prefix,
            check=lambda v: (
                None
                if re.fullmatch(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*", v)
                else "must be words joined by '/', without '+', '#' or a leading '/'"
            ),
        ),
        username=t.get("username", str, d.username),
        password_file=t.get("password_file", str, d.password_file),
        tls_ca=t.get("tls_ca", str, d.tls_ca),
        tls_cert=t.get("tls_cert", str, d.tls_cert),
        tls_key=t.get("tls_key", str, d.tls_key),
        protocol=t.get("protocol", str, d.protocol, choices=("v5", "v311")),
        keepalive=t.get("keepalive", int, d.keepalive, min=5, max=3600),
        ha_discovery=t.get("ha_discovery", bool, d.ha_discovery),
        outbox_max_rows=t.get("outbox_max_rows", int, d.outbox_max_rows, min=100, max=1_000_000),
        outbox_max_mb=t.get("outbox_max_mb", float, d.outbox_max_mb, min=0.1, max=4096.0),
    )
    if "password" in t.data:
        t._seen.add("password")
        t.problem("password", "is not read from the TOML: put it in a file and set password_file")
    if cfg.password_file and not cfg.username:
        t.problem("username", "is required when password_file is set")
    if bool(cfg.tls_cert) != bool(cfg.tls_key):
        t.problem("tls_cert", "tls_cert and tls_key go together")
    t.done()
    return cfg


def _read_homeassistant(t: Table) -> HomeAssistantConfig:
    d = HomeAssistantConfig()
    cfg = HomeAssistantConfig(
        discovery=t.get("discovery", str, d.discovery, choices=("entity", "device")),
        discovery_prefix=t.get(
            "discovery_prefix",
            str,
            d.discovery_prefix,
            check=lambda v: (
                None
                if re.fullmatch(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*", v)
                else "must be words joined by '/', without '+', '#' or a leading '/'"
            ),
        ),
        interval_s=t.get("interval_s", float, d.interval_s, min=1.0, max=3600.0),
        commands=t.get("commands", bool, d.commands),
        ack_by=t.get(
            "ack_by",
            str,
            d.ack_by,
            check=lambda v: (
                None
                if len(v) <= 64 and v == v.strip() and v.isprintable()
                else "must be a staff name of at most 64 printable characters"
            ),
        ),
    )
    t.done()
    return cfg


def _read_gpio(t: Table) -> GpioConfig:
    d = GpioConfig()

    def pin(name: str, default: int) -> int:
        return t.get(name, int, default, min=0, max=27)  # the header's BCM numbers

    cfg = GpioConfig(
        enabled=t.get("enabled", bool, d.enabled),
        green_pin=pin("green_pin", d.green_pin),
        amber_pin=pin("amber_pin", d.amber_pin),
        red_pin=pin("red_pin", d.red_pin),
        buzzer_pin=pin("buzzer_pin", d.buzzer_pin),
        button_pin=pin("button_pin", d.button_pin),
        imu_int_pin=pin("imu_int_pin", d.imu_int_pin),
        long_press_s=t.get("long_press_s", float, d.long_press_s, min=0.5, max=10.0),
        buzzer_active_high=t.get("buzzer_active_high", bool, d.buzzer_active_high),
    )
    used = [
        (k, getattr(cfg, k))
        for k in ("green_pin", "amber_pin", "red_pin", "buzzer_pin", "button_pin", "imu_int_pin")
    ]
    seen: dict[int, str] = {}
    for key, value in used:
        if key == "imu_int_pin" and value == 0:
            continue
        if value in (2, 3):
            t.problem(
                key, f"BCM {value} is I2C ({'SDA' if value == 2 else 'SCL'}); pick another pin"
            )
        elif value in seen:
            t.problem(key, f"BCM {value} is already {seen[value]}")
        else:
            seen[value] = key
    t.done()
    return cfg


#: A station's config is a few kilobytes; a file of megabytes is the wrong file.
MAX_CONFIG_BYTES = 1024 * 1024


def load(path: str | Path, *, environment: bool = True) -> Config:
    """Read and check a config file. Raises ConfigError (ConfigErrors for several) naming each key.

    The file is opened non-blocking and must be a regular file of at most
    MAX_CONFIG_BYTES: a FIFO, a directory or ``/dev/zero`` is refused, not read.
    """
    path = Path(path)
    raw = read_small_file(path, str(path), limit=MAX_CONFIG_BYTES, named=False)
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(str(path), "is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(str(path), f"is not valid TOML: {err}") from None
    except RecursionError:
        raise ConfigError(str(path), "is not valid TOML: nested too deeply") from None
    try:
        return parse(data, source=path, environment=environment)
    except ConfigError:
        raise
    except Exception as err:  # a bug in a check must still end in one line, not a traceback
        raise ConfigError(
            str(path), f"cannot be checked ({type(err).__name__}: {err}); please report this"
        ) from None
