"""The commands a station takes, by the names they had before the message format had a home.

Commands are messages like any other: :mod:`monitor.mqtt.messages.commands` defines
them and reads them (strictly: see :func:`~monitor.mqtt.messages.parse_command`).
This module only re-exports them under their earlier names.
"""

from __future__ import annotations

from .messages import Ack, Calibrate, CommandError, Tare, WeighIn, parse_command
from .messages import AnyCommand as Command
from .messages import SessionCommand as Session
from .messages.base import Command as _Command

#: Commands are tiny; anything bigger is a mistake or an attack.
MAX_PAYLOAD_BYTES = _Command.max_bytes

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "Ack",
    "Calibrate",
    "Command",
    "CommandError",
    "Session",
    "Tare",
    "WeighIn",
    "parse_command",
]
