"""Home Assistant MQTT discovery: the retained configs that make a station appear on its own.

A pure function turns a station's description into ``(topic, payload)``
pairs; the publisher sends them (retained, QoS 1) after every connect and
whenever Home Assistant announces itself on ``homeassistant/status``::

    >>> from monitor.mqtt.topics import Topics
    >>> info = StationInfo("bench-1", name="Bench 1", sensors=("wrist",), hydration=True)
    >>> msgs = discovery_messages(Topics("gym", "bench-1"), info)
    >>> msgs[0][0]
    'homeassistant/sensor/bench-1/bench-1_wrist_rms_mg/config'

Topics use Home Assistant's ``<prefix>/<component>/<node_id>/<object_id>/config``
form with the station id as node id, so the broker's ACL can let each station
write its own configs only (``pattern write homeassistant/+/%u/+/config``).

Every entity reads the station's ordinary topics (no extra traffic), is
``unavailable`` when the station's retained ``status`` says ``offline``, and
belongs to one device per station.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .. import __version__
from .topics import HA_PREFIX, Topics

_SLUG = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class StationInfo:
    """What Home Assistant should show for one station.

    ``sensors`` are the IMU names (the ``sensor`` field of tremor messages);
    ``hydration`` is whether the station has a scale.
    """

    station: str
    name: str = ""
    sensors: tuple[str, ...] = ()
    hydration: bool = False
    model: str = "Gym tremor station"
    manufacturer: str = "gym-tremor-monitor"
    sw_version: str = __version__


@dataclass(frozen=True)
class _Field:
    key: str
    label: str
    unit: str | None = None
    state_class: str | None = "measurement"
    icon: str | None = None
    device_class: str | None = None


TREMOR_FIELDS = (
    _Field("rms_mg", "tremor", "mg", icon="mdi:vibrate"),
    _Field("ratio", "tremor ratio", "x", icon="mdi:chart-line"),
    _Field("peak_hz", "tremor frequency", "Hz", icon="mdi:sine-wave", device_class="frequency"),
)
SESSION_FIELDS = (
    _Field("state", "activity", None, state_class=None, icon="mdi:dumbbell"),
    _Field("set_count", "sets", None, state_class="total", icon="mdi:counter"),
)
HYDRATION_FIELDS = (
    _Field("mass_g", "scale mass", "g", device_class="weight"),
    _Field("intake_ml", "fluid intake", "mL", state_class="total", icon="mdi:cup-water"),
    _Field("body_mass_loss_pct", "body mass loss", "%", icon="mdi:water-percent"),
    _Field("sweat_rate_l_per_h", "sweat rate", "L/h", icon="mdi:water"),
)


def slug(text: str) -> str:
    """A piece of an object id: letters, digits, ``_`` and ``-`` only."""
    return _SLUG.sub("_", text).strip("_") or "x"


def _device(info: StationInfo) -> dict[str, Any]:
    return {"identifiers": [f"gym_tremor_{info.station}"], "name": info.name or info.station,
            "manufacturer": info.manufacturer, "model": info.model,
            "sw_version": info.sw_version}


def _value(key: str) -> str:
    # Home Assistant renders templates to native types: a JSON null becomes None,
    # which it shows as "unknown" rather than as a number.
    return f"{{{{ value_json.{key} }}}}"


def discovery_messages(topics: Topics, info: StationInfo, *,
                       prefix: str = HA_PREFIX) -> list[tuple[str, bytes]]:
    """Every discovery config for the station, as (topic, JSON payload) pairs."""
    station = topics.station
    device = _device(info)
    common = {"availability_topic": topics.status, "payload_available": "online",
              "payload_not_available": "offline", "device": device}
    out: list[tuple[str, bytes]] = []

    def add(component: str, object_id: str, config: dict[str, Any]) -> None:
        body = {"unique_id": f"gym_{object_id}"} | config | common
        body = {k: v for k, v in body.items() if v is not None}
        out.append((f"{prefix}/{component}/{station}/{object_id}/config",
                    json.dumps(body, separators=(",", ":"), sort_keys=True).encode()))

    def sensor(object_id: str, name: str, state_topic: str, template: str, f: _Field) -> None:
        add("sensor", object_id, {"name": name, "state_topic": state_topic,
                                  "value_template": template, "unit_of_measurement": f.unit,
                                  "state_class": f.state_class, "icon": f.icon,
                                  "device_class": f.device_class})

    for name in info.sensors:
        # Each tremor message is one sensor's: keep this entity's state on other sensors' messages.
        quoted = json.dumps(name)
        for f in TREMOR_FIELDS:
            template = (f"{{% if value_json.sensor == {quoted} %}}{_value(f.key)}"
                        f"{{% else %}}{{{{ this.state }}}}{{% endif %}}")
            sensor(f"{station}_{slug(name)}_{f.key}", f"{name} {f.label}", topics.tremor,
                   template, f)
    for f in SESSION_FIELDS:
        sensor(f"{station}_session_{f.key}", f.label.capitalize(), topics.session,
               _value(f.key), f)
    if info.hydration:
        for f in HYDRATION_FIELDS:
            sensor(f"{station}_hydration_{f.key}", f.label.capitalize(), topics.hydration,
                   _value(f.key), f)
    add("binary_sensor", f"{station}_alert_urgent", {
        "name": "Urgent alert", "state_topic": topics.alerts_active, "device_class": "problem",
        "value_template": ("{{ 'ON' if value_json.alerts | selectattr('level', 'eq', 'urgent')"
                           " | list | count > 0 else 'OFF' }}"),
        "payload_on": "ON", "payload_off": "OFF",
        "json_attributes_topic": topics.alerts_active,
        "json_attributes_template": ("{{ {'count': value_json.alerts | count, 'codes': "
                                     "value_json.alerts | map(attribute='code') | list} "
                                     "| tojson }}"),
    })
    return out
