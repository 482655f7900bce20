"""The gym wall display: every station at a glance, live, on a web page.

A service subscribes to the stations' MQTT topics, keeps the board's state
(:mod:`monitor.display.state`, pure Python) and serves a page that a screen in
the gym shows full screen (:mod:`monitor.display.service`, static files in
``static/``). It reads only what the stations publish and writes only one
thing back: staff acknowledging an alert (``<prefix>/<station>/cmd/ack``).

Run it with ``gym-monitor display`` or ``python -m monitor.display``.
"""

from .state import BadPayload, Board

__all__ = ["BadPayload", "Board"]
