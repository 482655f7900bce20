"""The Home Assistant feed: summaries every few seconds, each entity's value on its own.

The wall display gets tremor at the hop rate (2 Hz); a home automation
recorder wants far less: one summary per sensor and one per station every
few seconds, and at once when a level changes. Every key is always present,
so each entity reads its own value with ``{{ value_json.<key> }}`` and never
needs a fallback; a figure that is not known is ``null`` (Home Assistant shows
it as unknown), never a string::

    >>> s = SensorSummary(station="bench-1", sensor="wrist", rms_mg=12.5, ratio=1.4,
    ...                   level=TremorLevel.NORMAL, windows=10, ts=1732435200.0)
    >>> s.rms_m_s2
    0.122583
    >>> SensorSummary.from_json(s.to_json()).level
    <TremorLevel.NORMAL: 'normal'>

Tremor amplitude goes out in m/s^2 as well as milli-g: Home Assistant reads
the unit ``mg`` as milligrams and would file the statistics as a mass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from ...units import G
from .base import Entry
from .codec import _Invalid
from .fields import spec
from .telemetry import AlertEvent, FromStation
from .values import ActivityState, AlertLevel, HydrationMode, Placement, TremorLevel


class WorstLevel(StrEnum):
    """The worst level among a station's active alerts; ``none`` when nothing is active."""

    NONE = "none"
    INFO = "info"
    CAUTION = "caution"
    WARNING = "warning"
    URGENT = "urgent"

    @classmethod
    def of(cls, levels: list[str] | tuple[str, ...]) -> WorstLevel:
        """The worst of ``levels`` (alert level strings), ``none`` for none."""
        ranks = [AlertLevel(x).rank for x in levels]
        return cls(tuple(AlertLevel)[max(ranks)].value) if ranks else cls.NONE


@dataclass(frozen=True, kw_only=True)
class SensorSummary(FromStation):
    """One IMU's tremor over the last few seconds (``ha/sensor/<sensor>``, retained, QoS 1).

    Figures are medians of the windows in the interval (``windows`` of them);
    all null when none was measurable. ``level`` is the grade now (the median
    of the last three windows' grades), so a one-window blip does not flip it.
    """

    schema_name: ClassVar[str] = "ha_sensor"
    title: ClassVar[str] = (
        "gym/<station>/ha/sensor/<sensor>: one sensor's tremor summary "
        "for Home Assistant (retained, QoS 1)"
    )

    sensor: str = spec(min_length=1)
    placement: Placement | None = spec(Placement.LIMB, nullable=False)
    rms_mg: float | None = spec(None, minimum=0, doc="median tremor-band RMS, milli-g")
    rms_m_s2: float | None = spec(None, minimum=0, doc="the same in m/s^2")
    ratio: float | None = spec(None, minimum=0, doc="median ratio to the rested baseline")
    ratio_max: float | None = spec(None, minimum=0, doc="highest ratio in the interval")
    peak_hz: float | None = spec(None, minimum=0, doc="median dominant tremor frequency")
    level: TremorLevel = spec(TremorLevel.NONE)
    windows: int = spec(0, minimum=0, doc="analysis windows summarised")

    def __post_init__(self) -> None:
        if self.rms_mg is not None and self.rms_m_s2 is None:
            object.__setattr__(self, "rms_m_s2", self.rms_mg * G / 1000.0)
        super().__post_init__()


@dataclass(frozen=True, kw_only=True)
class AlertBrief(Entry):
    """An active alert as Home Assistant shows it in attributes."""

    schema_name: ClassVar[str] = "ha_alert"
    title: ClassVar[str] = "an active alert, briefly"

    id: str = spec(min_length=1)
    code: str = spec(min_length=1)
    level: AlertLevel
    sensor: str | None = None
    message: str = ""
    red_flag: bool = False


@dataclass(frozen=True, kw_only=True)
class StationSummary(FromStation):
    """The station for Home Assistant (``ha/station``, retained, QoS 1).

    Sent every few seconds and at once when the activity, the session, a set,
    the worst alert level or a hydration figure changes. Hydration keys are
    null on a station without a scale (and those entities are not announced).
    ``ack_id`` is the alert an acknowledgement from Home Assistant applies to:
    the worst, oldest active one.
    """

    schema_name: ClassVar[str] = "ha_station"
    title: ClassVar[str] = (
        "gym/<station>/ha/station: the station's summary for Home Assistant (retained, QoS 1)"
    )

    state: ActivityState = spec(ActivityState.IDLE)
    active: bool = False
    set_count: int = spec(0, minimum=0, doc="sets this session; never goes down within one")
    rep_count: int = spec(0, minimum=0, doc="reps of the set under way (revised as it goes)")
    alert_level: WorstLevel = spec(WorstLevel.NONE)
    alert_count: int = spec(0, minimum=0)
    ack_id: str | None = spec(
        None, min_length=1, doc="the alert Home Assistant's Acknowledge button acknowledges"
    )
    alerts: tuple[AlertBrief, ...] = ()
    scale: HydrationMode | None = None
    mass_g: float | None = None
    intake_ml: float | None = spec(
        None, minimum=0, doc="drunk this session; never goes down within one"
    )
    intake_ml_per_h: float | None = None
    pre_mass_g: float | None = None
    post_mass_g: float | None = None
    body_mass_loss_pct: float | None = None
    sweat_rate_l_per_h: float | None = None

    def _check(self) -> None:
        if self.alert_count != len(self.alerts):
            raise _Invalid("alert_count must be the number of alerts")

    @staticmethod
    def brief(alert: AlertEvent | Mapping[str, Any]) -> AlertBrief:
        """An :class:`AlertBrief` from an alert event (or its payload, as a dict)."""
        if isinstance(alert, AlertEvent):
            return AlertBrief(
                id=alert.id,
                code=alert.code,
                level=alert.level,
                sensor=alert.sensor,
                message=alert.message,
                red_flag=alert.red_flag,
            )
        return AlertBrief(
            id=alert["id"],
            code=alert["code"],
            level=alert["level"],
            sensor=alert.get("sensor"),
            message=alert.get("message", ""),
            red_flag=bool(alert.get("red_flag", False)),
        )
