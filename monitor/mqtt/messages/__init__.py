"""The MQTT message format, in one place: a frozen dataclass per payload.

Every payload a station, the history service or a display sends or reads is
a class here. Build one with keyword arguments (values are checked and
normalised at once: numpy scalars become numbers, NaN and infinities become
null, floats keep 6 significant digits and timestamps milliseconds), send
``to_json()``, and read what arrives with ``from_json(data)``, which raises
:class:`MessageError` (only) for anything that is not right::

    >>> from monitor.mqtt.messages import Tremor, DEFAULT_GRADES, MessageError
    >>> t = Tremor(station="bench-1", sensor="wrist", rms_mg=20.0, ratio=2.5, measurable=True,
    ...            level=DEFAULT_GRADES.level(2.5), window_s=2.5, ts=1732435200.5)
    >>> t.to_json()[:60]
    b'{"v":1,"ts":1732435200.5,"station":"bench-1","sensor":"wrist'
    >>> Tremor.from_json(t.to_json()).level
    <TremorLevel.ELEVATED: 'elevated'>
    >>> Tremor.from_json(b'{"v":1,"sensor":"wrist","level":"purple"}')  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    monitor.mqtt.messages.codec.MessageError: tremor: level must be one of 'none', ..., not 'purple'

Readers ignore keys they do not know (version 1 may gain keys, never lose
them); commands do not (:mod:`.commands`). The JSON Schemas in
``monitor/mqtt/schemas/`` are generated from these classes
(``python -m monitor.mqtt.schemas``), and so is the field reference in
``PAYLOADS.md``. To add a field: add it to the dataclass, run that command,
describe it in ``PAYLOADS.md``.
"""

from __future__ import annotations

from .athletes import (
    AlertEntry,
    Card,
    CheckIn,
    HoldEntry,
    Profile,
    ProfileUpdate,
    RecordHydration,
    SessionRecord,
    SetEntry,
    TraceEntry,
    WeighInEntry,
)
from .base import Command, Entry, Message
from .codec import (
    MAX_BYTES,
    SIGNIFICANT_DIGITS,
    TS_DECIMALS,
    VERSION,
    CommandError,
    MessageError,
    clean,
    dumps,
)
from .commands import (
    COMMANDS,
    Ack,
    AnyCommand,
    Calibrate,
    SessionCommand,
    Tare,
    WeighIn,
    parse_command,
)
from .fields import Spec, spec
from .homeassistant import AlertBrief, SensorSummary, StationSummary, WorstLevel
from .telemetry import ActiveAlerts, AlertEvent, CommandResult, Hydration, SessionReport, Tremor
from .values import (
    DEFAULT_GRADES,
    ActivityState,
    AlertLevel,
    AlertState,
    CheckinSource,
    EndReason,
    Grades,
    HydrationMode,
    Placement,
    ProfileState,
    SessionAction,
    SetKind,
    TremorLevel,
    WeighInPhase,
)

#: Every message with a schema file, by schema name (``schemas/<name>.json``).
MESSAGES: dict[str, type[Message]] = {
    cls.schema_name: cls
    for cls in (
        Tremor,
        SessionReport,
        Hydration,
        AlertEvent,
        ActiveAlerts,
        Tare,
        Calibrate,
        SessionCommand,
        WeighIn,
        Ack,
        CommandResult,
        CheckIn,
        SessionRecord,
        Profile,
        Card,
        SensorSummary,
        StationSummary,
    )
}

__all__ = [
    "COMMANDS",
    "DEFAULT_GRADES",
    "MAX_BYTES",
    "MESSAGES",
    "SIGNIFICANT_DIGITS",
    "TS_DECIMALS",
    "VERSION",
    "Ack",
    "ActiveAlerts",
    "ActivityState",
    "AlertBrief",
    "AlertEntry",
    "AlertEvent",
    "AlertLevel",
    "AlertState",
    "AnyCommand",
    "Calibrate",
    "Card",
    "CheckIn",
    "CheckinSource",
    "Command",
    "CommandError",
    "CommandResult",
    "EndReason",
    "Entry",
    "Grades",
    "HoldEntry",
    "Hydration",
    "HydrationMode",
    "Message",
    "MessageError",
    "Placement",
    "Profile",
    "ProfileState",
    "ProfileUpdate",
    "RecordHydration",
    "SessionAction",
    "SessionCommand",
    "SessionRecord",
    "SessionReport",
    "SetEntry",
    "SetKind",
    "Spec",
    "Tare",
    "TraceEntry",
    "Tremor",
    "TremorLevel",
    "WeighIn",
    "WeighInEntry",
    "WeighInPhase",
    "WorstLevel",
    "clean",
    "dumps",
    "parse_command",
    "spec",
]
