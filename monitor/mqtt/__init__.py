"""The station's MQTT layer: topics, payloads, a durable outbox, the publisher, commands.

The contract (topics, fields, retained/QoS) is ``PAYLOADS.md`` beside this
file. The message format itself lives in :mod:`monitor.mqtt.messages` (a
frozen dataclass per payload with ``to_json``/``from_json``); ``schemas/``
holds the JSON Schemas generated from it, for integrators::

    from monitor.mqtt import MqttPublisher, Outbox, alert_payload

    outbox = Outbox(state_dir / "outbox.sqlite3")
    pub = MqttPublisher("bench-1", host="broker.local", username="bench-1",
                        password_file="/etc/gym-monitor/mqtt-password", outbox=outbox).start()
    pub.publish_alert(alert_payload("bench-1", id="bench-1:1732435200:0007",
                                    code="tremor.high", level="warning", state="raised",
                                    message="Tremor is high", advice="Rest longer"))
    pub.close(); outbox.close()
"""

from .commands import Ack, Calibrate, Command, CommandError, Session, Tare, WeighIn, parse_command
from .discovery import StationInfo, discovery_messages
from .messages import (
    DEFAULT_GRADES,
    ActiveAlerts,
    AlertEvent,
    Card,
    CheckIn,
    CommandResult,
    Grades,
    Hydration,
    MessageError,
    Profile,
    SessionRecord,
    SessionReport,
    Tremor,
)
from .outbox import Outbox, OutboxError, OutboxFull, OutboxMessage, OutboxStats
from .payloads import (
    PayloadError,
    alert_payload,
    alerts_active_payload,
    command_result_payload,
    encode,
    from_values,
    hydration_payload,
    load_schema,
    session_payload,
    tremor_level,
    tremor_payload,
)
from .publisher import MqttError, MqttPublisher, PublisherStats, read_password_file
from .topics import TopicError, Topics, validate_station_id

__all__ = [
    "DEFAULT_GRADES",
    "Ack",
    "ActiveAlerts",
    "AlertEvent",
    "Calibrate",
    "Card",
    "CheckIn",
    "Command",
    "CommandError",
    "CommandResult",
    "Grades",
    "Hydration",
    "MessageError",
    "MqttError",
    "MqttPublisher",
    "Outbox",
    "OutboxError",
    "OutboxFull",
    "OutboxMessage",
    "OutboxStats",
    "PayloadError",
    "Profile",
    "PublisherStats",
    "Session",
    "SessionRecord",
    "SessionReport",
    "StationInfo",
    "Tare",
    "TopicError",
    "Topics",
    "Tremor",
    "WeighIn",
    "alert_payload",
    "alerts_active_payload",
    "command_result_payload",
    "discovery_messages",
    "encode",
    "from_values",
    "hydration_payload",
    "load_schema",
    "parse_command",
    "read_password_file",
    "session_payload",
    "tremor_level",
    "tremor_payload",
    "validate_station_id",
]
