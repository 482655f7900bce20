"""The gym wall display: every station at a glance, live, on a web page.

A service subscribes to the stations' MQTT topics, keeps the board's state
(:mod:`monitor.display.state`, pure Python, payloads read through
:mod:`monitor.mqtt.messages` by :mod:`monitor.display.payloads`) and serves
a page that a screen in the gym shows full screen (:mod:`monitor.display.web`,
static files in ``static/``). It reads only what the stations publish and
writes back only what staff do: a logged-in staff member acknowledging an
alert (``<prefix>/<station>/cmd/ack`` with ``by`` = their name; accounts in
:mod:`monitor.display.staff`) or checking an athlete in or out (``cmd/session``).

Run it with ``gym-monitor display`` or ``python -m monitor.display``.
"""

from .payloads import BadPayload
from .state import Board

__all__ = ["BadPayload", "Board"]
