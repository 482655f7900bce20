"""Home Assistant MQTT discovery: the retained configs that make a station appear on its own.

A station announces one device with the entities its configuration names,
and nothing else: a tremor sensor set per IMU, the station's activity,
session and alerts, hydration entities for the scale it has (a bottle dock
or a body scale), and buttons and a select for the commands a gym automates::

    >>> from monitor.mqtt.topics import Topics
    >>> info = StationInfo("bench-1", name="Bench 1", sensors=(SensorInfo("wrist"),))
    >>> plan = discovery_plan(Topics("gym", "bench-1"), info)
    >>> plan.messages[0][0]
    'homeassistant/sensor/bench-1/bench-1_wrist_tremor/config'

Each entity reads a state of its own, in the way ESPHome and Zigbee2MQTT do
it: one retained summary topic per IMU (``ha/sensor/<sensor>``) and one per
station (``ha/station``), with every key always present, numbers or null
(:mod:`monitor.mqtt.messages.homeassistant`; :mod:`monitor.mqtt.homeassistant`
sends them every few seconds). No template falls back on the entity's own
state, so a sensor that has not reported yet is simply unknown, and a
station that goes offline makes its entities unavailable (its retained
``status``, the last will).

Choices that Home Assistant's statistics depend on:

* tremor amplitude is in **m/s²** (the RMS of the tremor band): ``mg`` is
  milligrams to Home Assistant, which would file it as a mass; m/s² is SI,
  converts to nothing else and needs no device class. The ratio to the rested
  baseline (its unit the multiplication sign) is the figure the grades and alerts use;
* sets and fluid intake restart at 0 every session: ``total_increasing``,
  whose statistics count a drop as the start of a new cycle, never as a
  negative amount (the feed never lets them go down within a session: Home
  Assistant warns about a small drop and reads a large one as a reset); the
  reps of the set under way are a ``measurement``;
* activity, tremor level and the worst alert level are enums with their options.

Two forms, one switch (``[homeassistant] discovery``): ``entity`` (one config
per entity, ``<prefix>/<component>/<station>/<object_id>/config``, every
Home Assistant since 2023.8) and ``device`` (one config for the device with
its components, ``<prefix>/device/<station>/<station>/config``, Home Assistant
2024.12 and later; older ones log a warning for it). Both carry an ``origin``
block. The station id is the node id, so the ACL lets each station write its
own configs only (``pattern write homeassistant/+/%u/+/config``).

What was announced is remembered in the state directory: an entity whose
hardware left the config (an IMU, the scale) gets an empty retained config,
which removes it from Home Assistant, instead of staying unknown for ever.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from .messages import ActivityState, TremorLevel
from .messages.homeassistant import WorstLevel
from .topics import HA_PREFIX, Topics

log = logging.getLogger(__name__)

_SLUG = re.compile(r"[^A-Za-z0-9_-]+")
FORMS = ("entity", "device")
#: The file in the state directory that remembers what was announced.
STATE_FILE = "ha-discovery.json"
#: Removals are sent again at every connect for this long (a broker down at the first try).
RETIRE_KEEP_S = 30 * 24 * 3600.0
ORIGIN = {
    "name": "gym-tremor-monitor",
    "sw_version": __version__,
    "support_url": "https://github.com/gym-tremor-monitor/gym-tremor-monitor",
}
#: Event types of the alert event entity: a raised alert by its level, then what became of it.
EVENT_TYPES = ("info", "caution", "warning", "urgent", "cleared", "acknowledged")


def slug(text: str) -> str:
    """A piece of an object id or topic level: letters, digits, ``_`` and ``-`` only."""
    return _SLUG.sub("_", text).strip("_") or "x"


@dataclass(frozen=True)
class SensorInfo:
    """One IMU as Home Assistant sees it: its name and where it sits."""

    name: str
    placement: str = "limb"


@dataclass(frozen=True)
class StationInfo:
    """What Home Assistant should show for one station.

    ``sensors`` are the IMUs (names, or :class:`SensorInfo`); ``scale`` is
    ``"bottle"``, ``"body"`` or None (``hydration=True`` alone means a bottle
    dock, as before scales had modes). ``commands`` adds the buttons and the
    select; ``ack_by`` (a staff name) adds an Acknowledge button whose
    acknowledgements record that name.
    """

    station: str
    name: str = ""
    sensors: tuple[SensorInfo | str, ...] = ()
    hydration: bool = False
    scale: str | None = None
    commands: bool = True
    ack_by: str = ""
    model: str = "Gym tremor station"
    manufacturer: str = "gym-tremor-monitor"
    sw_version: str = __version__

    @property
    def imus(self) -> tuple[SensorInfo, ...]:
        return tuple(s if isinstance(s, SensorInfo) else SensorInfo(s) for s in self.sensors)

    @property
    def scale_mode(self) -> str | None:
        return self.scale or ("bottle" if self.hydration else None)

    @classmethod
    def from_config(cls, config: Any) -> StationInfo:
        """The station a :class:`monitor.config.Config` describes."""
        ha = getattr(config, "homeassistant", None)
        return cls(
            config.station.id,
            name=config.station.display_name,
            sensors=tuple(SensorInfo(i.name, i.placement) for i in config.imus),
            scale=config.scale.mode if config.scale is not None else None,
            commands=getattr(ha, "commands", True),
            ack_by=getattr(ha, "ack_by", ""),
        )


def sensor_levels(info: StationInfo) -> dict[str, str]:
    """Each IMU's topic level (its name made safe; a clash gets a number)."""
    out: dict[str, str] = {}
    for imu in info.imus:
        level, n = slug(imu.name), 2
        while level in out.values():
            level, n = f"{slug(imu.name)}_{n}", n + 1
        out[imu.name] = level
    return out


@dataclass(frozen=True)
class HaTopics:
    """The Home Assistant feed's topics, under the station's own: ``<prefix>/<station>/ha/...``."""

    topics: Topics

    @property
    def station(self) -> str:
        return f"{self.topics.base}/ha/station"

    def sensor(self, level: str) -> str:
        return f"{self.topics.base}/ha/sensor/{level}"


# --------------------------------------------------------------------------- the entities


@dataclass(frozen=True)
class Entity:
    """One entity: its component (``sensor``, ``button`` ...), object id and config keys."""

    component: str
    object_id: str
    config: Mapping[str, Any]


def _value(key: str) -> str:
    # Home Assistant renders to native types: null becomes None, shown as unknown.
    return f"{{{{ value_json.{key} }}}}"


def _sensor(
    object_id: str,
    name: str,
    topic: str,
    key: str,
    *,
    unit: str | None = None,
    state_class: str | None = "measurement",
    device_class: str | None = None,
    precision: int | None = None,
    icon: str | None = None,
    options: Iterable[str] | None = None,
    **extra: Any,
) -> Entity:
    config: dict[str, Any] = {
        "name": name,
        "state_topic": topic,
        "value_template": _value(key),
        "unit_of_measurement": unit,
        "state_class": state_class,
        "device_class": device_class,
        "suggested_display_precision": precision,
        "icon": icon,
    }
    if options is not None:
        config |= {
            "device_class": "enum",
            "options": list(options),
            "state_class": None,
            "unit_of_measurement": None,
        }
    return Entity("sensor", object_id, config | extra)


_ACK_TEMPLATE = (
    # The alert to acknowledge is the worst, oldest active one, which the station names in the
    # "ack_id" attribute of its alert level entity. Found through the button's own device, so
    # renaming entities does not break it.
    "{% set ns = namespace(id=none) %}"
    "{% for e in device_entities(device_id(entity_id)) %}"
    "{% if state_attr(e, 'ack_id') %}{% set ns.id = state_attr(e, 'ack_id') %}{% endif %}"
    "{% endfor %}"
    "{{ {'v': 1, 'id': ns.id, 'by': %s} | tojson }}"
)

_EVENT_TEMPLATE = (
    "{{ {'event_type': value_json.level if value_json.state == 'raised' else value_json.state,"
    " 'id': value_json.id, 'code': value_json.code, 'level': value_json.level,"
    " 'sensor': value_json.sensor, 'message': value_json.message,"
    " 'red_flag': value_json.red_flag, 'by': value_json.get('by')} | tojson }}"
)


def entities(topics: Topics, info: StationInfo) -> list[Entity]:
    """Every entity of the station, in a stable order."""
    st = topics.station
    ha = HaTopics(topics)
    out: list[Entity] = []
    for imu in info.imus:
        level = sensor_levels(info)[imu.name]
        topic = ha.sensor(level)
        base = f"{st}_{level}"
        out += [
            _sensor(
                f"{base}_tremor",
                f"{imu.name} tremor",
                topic,
                "rms_m_s2",
                unit="m/s²",
                precision=3,
                icon="mdi:vibrate",
            ),
            _sensor(
                f"{base}_tremor_ratio",
                f"{imu.name} tremor ratio",
                topic,
                "ratio",
                unit="\N{MULTIPLICATION SIGN}",
                precision=2,
                icon="mdi:chart-line",
            ),
            _sensor(
                f"{base}_tremor_frequency",
                f"{imu.name} tremor frequency",
                topic,
                "peak_hz",
                unit="Hz",
                device_class="frequency",
                precision=1,
                icon="mdi:sine-wave",
            ),
            _sensor(
                f"{base}_tremor_level",
                f"{imu.name} tremor level",
                topic,
                "level",
                options=[x.value for x in TremorLevel],
                icon="mdi:speedometer",
            ),
        ]
    station = ha.station
    out += [
        _sensor(
            f"{st}_activity",
            "Activity",
            station,
            "state",
            options=[x.value for x in ActivityState],
            icon="mdi:dumbbell",
        ),
        Entity(
            "binary_sensor",
            f"{st}_session",
            {
                "name": "Session",
                "state_topic": station,
                "device_class": "running",
                "value_template": "{{ 'ON' if value_json.active else 'OFF' }}",
            },
        ),
        _sensor(
            f"{st}_sets",
            "Sets",
            station,
            "set_count",
            state_class="total_increasing",
            icon="mdi:counter",
        ),
        # The reps of the set under way: counted live and refined, so they may go down.
        _sensor(f"{st}_reps", "Reps in set", station, "rep_count", icon="mdi:repeat"),
        _sensor(
            f"{st}_alert_level",
            "Alert level",
            station,
            "alert_level",
            options=[x.value for x in WorstLevel],
            icon="mdi:alert",
            json_attributes_topic=station,
            json_attributes_template=(
                "{{ {'count': value_json.alert_count, "
                "'ack_id': value_json.ack_id, "
                "'alerts': value_json.alerts} | tojson }}"
            ),
        ),
        Entity(
            "binary_sensor",
            f"{st}_urgent_alert",
            {
                "name": "Urgent alert",
                "state_topic": station,
                "device_class": "problem",
                "value_template": "{{ 'ON' if value_json.alert_level == 'urgent' else 'OFF' }}",
            },
        ),
        Entity(
            "event",
            f"{st}_alert",
            {
                "name": "Alert",
                "state_topic": topics.alert,
                "event_types": list(EVENT_TYPES),
                "value_template": _EVENT_TEMPLATE,
                "icon": "mdi:bell-alert",
            },
        ),
    ]
    mode = info.scale_mode
    if mode == "bottle":
        out += [
            _sensor(
                f"{st}_scale_mass",
                "Bottle mass",
                station,
                "mass_g",
                unit="g",
                device_class="weight",
                precision=0,
            ),
            _sensor(
                f"{st}_intake",
                "Fluid intake",
                station,
                "intake_ml",
                unit="mL",
                device_class="volume",
                state_class="total_increasing",
                precision=0,
                icon="mdi:cup-water",
            ),
            _sensor(
                f"{st}_intake_rate",
                "Fluid intake rate",
                station,
                "intake_ml_per_h",
                unit="mL/h",
                precision=0,
                icon="mdi:cup-water",
            ),
        ]
    elif mode == "body":
        out += [
            _sensor(
                f"{st}_scale_mass",
                "Scale mass",
                station,
                "mass_g",
                unit="g",
                device_class="weight",
                precision=0,
            ),
            _sensor(
                f"{st}_pre_mass",
                "Body mass before",
                station,
                "pre_mass_g",
                unit="g",
                device_class="weight",
                precision=0,
            ),
            _sensor(
                f"{st}_post_mass",
                "Body mass after",
                station,
                "post_mass_g",
                unit="g",
                device_class="weight",
                precision=0,
            ),
            _sensor(
                f"{st}_body_mass_loss",
                "Body mass loss",
                station,
                "body_mass_loss_pct",
                unit="%",
                precision=1,
                icon="mdi:water-percent",
            ),
            _sensor(
                f"{st}_sweat_rate",
                "Sweat rate",
                station,
                "sweat_rate_l_per_h",
                unit="L/h",
                precision=2,
                icon="mdi:water",
            ),
        ]
    if info.commands:
        session_cmd = topics.cmd("session")
        out += [
            Entity(
                "button",
                f"{st}_start_session",
                {
                    "name": "Start session",
                    "command_topic": session_cmd,
                    "payload_press": '{"v":1,"action":"start"}',
                    "icon": "mdi:play",
                },
            ),
            Entity(
                "button",
                f"{st}_stop_session",
                {
                    "name": "Stop session",
                    "command_topic": session_cmd,
                    "payload_press": '{"v":1,"action":"stop"}',
                    "icon": "mdi:stop",
                },
            ),
            Entity(
                "select",
                f"{st}_session_control",
                {
                    "name": "Session control",
                    "options": ["stopped", "running"],
                    "state_topic": station,
                    "command_topic": session_cmd,
                    "value_template": "{{ 'running' if value_json.active else 'stopped' }}",
                    "command_template": (
                        "{\"v\":1,\"action\":\"{{ 'start' if value == 'running' else 'stop' }}\"}"
                    ),
                    "icon": "mdi:dumbbell",
                },
            ),
        ]
        if mode is not None:
            out.append(
                Entity(
                    "button",
                    f"{st}_tare",
                    {
                        "name": "Tare scale",
                        "command_topic": topics.cmd("tare"),
                        "payload_press": '{"v":1}',
                        "entity_category": "config",
                        "icon": "mdi:scale-balance",
                    },
                )
            )
        if info.ack_by:
            out.append(
                Entity(
                    "button",
                    f"{st}_acknowledge",
                    {
                        "name": "Acknowledge alert",
                        "command_topic": topics.cmd("ack"),
                        "command_template": _ACK_TEMPLATE.replace("%s", json.dumps(info.ack_by)),
                        "icon": "mdi:check-circle",
                    },
                )
            )
    return out


def _device(info: StationInfo) -> dict[str, Any]:
    return {
        "identifiers": [f"gym_tremor_{info.station}"],
        "name": info.name or info.station,
        "manufacturer": info.manufacturer,
        "model": info.model,
        "sw_version": info.sw_version,
    }


def _clean(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if v is not None}


def _dump(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode(
        "utf-8"
    )


def _availability(topics: Topics) -> dict[str, Any]:
    return {
        "availability_topic": topics.status,
        "payload_available": "online",
        "payload_not_available": "offline",
    }


def entity_configs(
    topics: Topics, info: StationInfo, *, prefix: str = HA_PREFIX
) -> dict[str, tuple[str, bytes]]:
    """The per-entity form: ``{topic: (component, payload)}``."""
    common = _availability(topics) | {"device": _device(info), "origin": ORIGIN}
    out: dict[str, tuple[str, bytes]] = {}
    for e in entities(topics, info):
        body = (
            {"unique_id": f"gym_{e.object_id}", "object_id": e.object_id, "qos": 1}
            | _clean(e.config)
            | common
        )
        out[f"{prefix}/{e.component}/{topics.station}/{e.object_id}/config"] = (
            e.component,
            _dump(body),
        )
    return out


def device_topic(topics: Topics, prefix: str = HA_PREFIX) -> str:
    return f"{prefix}/device/{topics.station}/{topics.station}/config"


def device_config(
    topics: Topics, info: StationInfo, *, removed: Mapping[str, str] = {}, prefix: str = HA_PREFIX
) -> tuple[str, bytes]:
    """The device form: one config with every component (Home Assistant >= 2024.12).

    ``removed`` (object id -> component) are left in as ``{"platform": ...}``
    only, which is how that form removes a component.
    """
    components: dict[str, Any] = {
        e.object_id: {
            "platform": e.component,
            "unique_id": f"gym_{e.object_id}",
            "object_id": e.object_id,
        }
        | _clean(e.config)
        for e in entities(topics, info)
    }
    for object_id, component in removed.items():
        components.setdefault(object_id, {"platform": component})
    body = {
        "device": _device(info),
        "origin": ORIGIN,
        "qos": 1,
        "components": components,
    } | _availability(topics)
    return device_topic(topics, prefix), _dump(body)


def discovery_messages(
    topics: Topics, info: StationInfo, *, prefix: str = HA_PREFIX, form: str = "entity"
) -> list[tuple[str, bytes]]:
    """Every discovery config for the station, as (topic, JSON payload) pairs (no removals)."""
    if form == "device":
        return [device_config(topics, info, prefix=prefix)]
    return [
        (topic, data) for topic, (_, data) in entity_configs(topics, info, prefix=prefix).items()
    ]


# --------------------------------------------------------------------------- what was announced


def legacy_topics(topics: Topics, info: StationInfo, prefix: str = HA_PREFIX) -> list[str]:
    """The configs the first discovery (one JSON topic for all IMUs) announced: all retired now."""
    st = topics.station
    ids = [f"{st}_{slug(s.name)}_{k}" for s in info.imus for k in ("rms_mg", "ratio", "peak_hz")]
    ids += [f"{st}_session_{k}" for k in ("state", "set_count")]
    ids += [
        f"{st}_hydration_{k}"
        for k in ("mass_g", "intake_ml", "body_mass_loss_pct", "sweat_rate_l_per_h")
    ]
    return [f"{prefix}/sensor/{st}/{i}/config" for i in ids] + [
        f"{prefix}/binary_sensor/{st}/{st}_alert_urgent/config"
    ]


@dataclass
class DiscoveryPlan:
    """What to send at every connect: removals first (empty retained), then the configs."""

    messages: list[tuple[str, bytes]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def configs(self) -> list[tuple[str, bytes]]:
        return [(t, d) for t, d in self.messages if d]


def _read_state(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        log.warning(
            "%s cannot be read (%s); entities of hardware removed from the config may "
            "stay in Home Assistant until deleted there",
            path,
            err,
        )
        return {}
    return data if isinstance(data, dict) else {}


def _write_state(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as err:
        log.warning("could not record the Home Assistant entities announced in %s: %s", path, err)


def discovery_plan(
    topics: Topics,
    info: StationInfo,
    *,
    prefix: str = HA_PREFIX,
    form: str = "entity",
    state_dir: str | os.PathLike[str] | None = None,
    enabled: bool = True,
    now: float | None = None,
) -> DiscoveryPlan:
    """The configs to announce and the ones to remove, remembering them in ``state_dir``.

    Without ``state_dir`` nothing is remembered and nothing removed. With
    ``enabled=False`` every config announced before is removed.
    """
    if form not in FORMS:
        raise ValueError(f"discovery form must be one of {', '.join(FORMS)}, not {form!r}")
    now = time.time() if now is None else now
    current: dict[str, str] = {}  # topic -> component
    components: dict[str, str] = {}  # object id -> component (the device form's)
    if enabled:
        if form == "entity":
            current = {t: c for t, (c, _) in entity_configs(topics, info, prefix=prefix).items()}
        else:
            current = {device_topic(topics, prefix): "device"}
            components = {e.object_id: e.component for e in entities(topics, info)}
    if state_dir is None:
        return DiscoveryPlan(
            discovery_messages(topics, info, prefix=prefix, form=form) if enabled else []
        )
    path = Path(state_dir) / STATE_FILE
    state = _read_state(path)
    retired: dict[str, float] = {}
    retired_components: dict[str, list[Any]] = {}
    if state is None:  # first start with this file: the first discovery's configs go
        retired = {t: now for t in legacy_topics(topics, info, prefix)}
    else:
        for t, since in dict(state.get("retired", {})).items():
            if isinstance(since, (int, float)) and now - since < RETIRE_KEEP_S:
                retired[t] = since
        for t in state.get("topics", {}):
            retired.setdefault(t, now)
        for oid, value in dict(state.get("retired_components", {})).items():
            if (
                isinstance(value, list)
                and len(value) == 2
                and isinstance(value[1], (int, float))
                and now - value[1] < RETIRE_KEEP_S
            ):
                retired_components[oid] = value
        for oid, comp in dict(state.get("components", {})).items():
            retired_components.setdefault(oid, [comp, now])
    for t in current:
        retired.pop(t, None)
    for oid in components:
        retired_components.pop(oid, None)
    removed = sorted(retired)
    msgs: list[tuple[str, bytes]] = [(t, b"") for t in removed]
    if enabled and form == "device":
        msgs.append(
            device_config(
                topics,
                info,
                prefix=prefix,
                removed={oid: v[0] for oid, v in retired_components.items()},
            )
        )
    elif enabled:
        msgs += discovery_messages(topics, info, prefix=prefix, form=form)
    _write_state(
        path,
        {
            "v": 1,
            "form": form,
            "topics": current,
            "components": components,
            "retired": retired,
            "retired_components": retired_components,
        },
    )
    return DiscoveryPlan(msgs, removed)
