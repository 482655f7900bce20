"""Shared parts of the display's tests: fake stations, an ack listener, the service, Chromium.

Test stations are plain paho clients publishing the payloads of
monitor/mqtt/PAYLOADS.md; the display is the real service on a free port with
a real staff file; the browser is Debian's Chromium driven by Playwright (no
``playwright install``), skipped with a reason when missing.

Test modules register the fixtures as a plugin, and import the helpers::

    pytest_plugins = ["tests.support.display"]
    from tests.support.display import STAFF_NAME, AckListener, expect, login, tile

The broker fixtures (``mosquitto``, ``mosquitto_factory``) come from tests/conftest.py.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from monitor.display.service import DisplayConfig, DisplayService
from monitor.display.staff import StaffFile

from .mosquitto import MosquittoBroker

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STAFF_NAME, STAFF_PIN = "Alice", "493817"


# --------------------------------------------------------------------------- stations


class FakeStation:
    """A paho client playing one station: last will, ``online`` on connect, payloads.

    It reconnects on its own (like a real station), so it survives a broker restart.
    """

    def __init__(self, broker: MosquittoBroker, station_id: str, prefix: str = "gym"):
        self.id = station_id
        self.base = f"{prefix}/{station_id}"
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-station-{uuid.uuid4().hex[:10]}"
        )
        self.client.will_set(f"{self.base}/status", "offline", qos=1, retain=True)
        self.client.reconnect_delay_set(1, 1)
        self.connected = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.connect(broker.host, broker.port, keepalive=10)
        self.client.loop_start()
        assert self.connected.wait(5), f"station {station_id} could not connect"

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        client.publish(f"{self.base}/status", "online", qos=1, retain=True)
        self.connected.set()

    def publish(self, kind: str, payload: Any, *, qos: int = 1, retain: bool = False) -> None:
        data = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        info = self.client.publish(f"{self.base}/{kind}", data, qos=qos, retain=retain)
        if qos:
            info.wait_for_publish(5)

    def tremor(
        self,
        ratio: float | None,
        *,
        rms: float | None = None,
        hz: float | None = 8.1,
        level: str | None = None,
        sensor: str = "wrist",
    ) -> None:
        if level is None:
            level = (
                "none"
                if ratio is None
                else "normal"
                if ratio < 2
                else "elevated"
                if ratio < 4
                else "high"
            )
        rms = rms if rms is not None else (None if ratio is None else round(8.0 * ratio, 1))
        self.publish(
            "tremor",
            {
                "v": 1,
                "ts": time.time(),
                "station": self.id,
                "sensor": sensor,
                "placement": "limb",
                "exercised": True,
                "rms_mg": rms,
                "peak_hz": hz if ratio is not None else None,
                "ratio": ratio,
                "level": level,
                "moving": False,
                "measurable": level != "none",
                "band_rms_mg": {
                    "voluntary": 30.0,
                    "fatigue": 4.0,
                    "physiological": 9.0,
                    "tremor": rms or 0.0,
                },
                "fatigue_ratio": 0.3,
                "regularity": 0.6,
                "window_s": 2.5,
            },
            qos=0,
        )

    def session(self, **fields: Any) -> None:
        payload = {
            "v": 1,
            "ts": time.time(),
            "station": self.id,
            "name": None,
            "state": "rest",
            "active": True,
            "started_ts": time.time() - 1800,
            "ended_ts": None,
            "set_count": 2,
            "rep_count": 10,
            "last_set_end_ts": time.time() - 95,
            "baseline_mg": 8.0,
            "ratio": 1.2,
            "recovery_s": 40.0,
            "fatigue_trend": 0.1,
        }
        payload.update(fields)
        self.publish("session", payload, retain=True)

    def hydration(self, **fields: Any) -> None:
        payload = {
            "v": 1,
            "ts": time.time(),
            "station": self.id,
            "mode": "bottle",
            "mass_g": 600.0,
            "intake_ml": 250.0,
            "intake_ml_per_h": 500.0,
            "pre_mass_g": None,
            "post_mass_g": None,
            "body_mass_loss_pct": None,
            "sweat_rate_l_per_h": None,
        }
        payload.update(fields)
        self.publish("hydration", payload, retain=True)

    def alert(
        self,
        alert_id: str,
        level: str,
        message: str,
        *,
        state: str = "raised",
        advice: str = "Rest and breathe slowly.",
        red_flag: bool = False,
        code: str = "tremor.high",
        by: str | None = None,
    ) -> dict[str, Any]:
        """Publish one alert event (``by`` on an acknowledged one); return its payload."""
        alert = {
            "v": 1,
            "ts": time.time(),
            "station": self.id,
            "id": alert_id,
            "code": code,
            "level": level,
            "state": state,
            "red_flag": red_flag,
            "sensor": "wrist",
            "message": message,
            "advice": advice,
            "evidence": {"ratio": 4.2},
            "raised_ts": time.time(),
        }
        if by is not None:
            alert["by"] = by
        self.publish("alert", alert)
        return alert

    def active(self, alerts: list[dict[str, Any]]) -> None:
        self.publish(
            "alerts/active",
            {"v": 1, "ts": time.time(), "station": self.id, "alerts": alerts},
            retain=True,
        )

    def offline(self) -> None:
        self.publish("status", "offline", retain=True)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def stations(mosquitto: MosquittoBroker) -> Iterator[Callable[[str], FakeStation]]:
    """Make FakeStations on the test's broker; all closed at teardown."""
    made: list[FakeStation] = []

    def make(station_id: str) -> FakeStation:
        made.append(FakeStation(mosquitto, station_id))
        return made[-1]

    yield make
    for st in made:
        st.close()


class AckListener:
    """A paho subscriber on ``gym/+/cmd/ack``: what staff acknowledgements reach the broker."""

    def __init__(self, broker: MosquittoBroker):
        self.messages: queue.Queue[tuple[str, dict[str, Any], int]] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        ready = threading.Event()
        self.client.on_connect = lambda c, *a: c.subscribe("gym/+/cmd/ack", qos=1)
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = lambda c, u, m: self.messages.put(
            (m.topic, json.loads(m.payload), m.qos)
        )
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert ready.wait(5)

    def get(self, timeout: float = 5.0) -> tuple[str, dict[str, Any], int]:
        return self.messages.get(timeout=timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# --------------------------------------------------------------------------- service and browser


@pytest.fixture
def staff_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A staff file holding one account, STAFF_NAME with STAFF_PIN."""
    path = tmp_path_factory.mktemp("staff") / "staff.json"
    StaffFile(path).add(STAFF_NAME, STAFF_PIN)
    return path


@pytest.fixture
def display_factory(
    mosquitto: MosquittoBroker, staff_file: Path
) -> Iterator[Callable[..., DisplayService]]:
    """Start DisplayServices against the test broker; ``factory(**DisplayConfig fields)``."""
    made: list[DisplayService] = []

    def make(**overrides: Any) -> DisplayService:
        fields: dict[str, Any] = {
            "mqtt_port": mosquitto.port,
            "http_host": "127.0.0.1",
            "http_port": 0,
            "reconnect_min_s": 1,
            "reconnect_max_s": 1,
            "staff_file": str(staff_file),
        }
        fields.update(overrides)
        service = DisplayService(DisplayConfig(**fields))
        service.start()
        made.append(service)
        deadline = time.monotonic() + 5
        while not service.mqtt.connected and time.monotonic() < deadline:
            time.sleep(0.02)
        assert service.mqtt.connected, "display did not connect to the broker"
        return service

    yield make
    for service in made:
        service.stop()


def wait_until(condition: Callable[[], Any], timeout: float = 5.0, what: str = "") -> Any:
    """Poll ``condition`` until it is truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or condition}")
        time.sleep(0.02)


def wait_active(service: DisplayService, station: str, alert_id: str) -> None:
    wait_until(
        lambda: service.call(service.board.is_active, station, alert_id),
        5,
        f"{alert_id} active on {station}",
    )


@pytest.fixture
def display(display_factory) -> DisplayService:
    return display_factory()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api",
        reason="the playwright package is not installed (pip install playwright; "
        "no 'playwright install' needed: Debian's chromium is used)",
    )
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt install chromium, or set $CHROMIUM)")
    pw = sync_api.sync_playwright().start()
    # Playwright gives every launch a fresh temporary --user-data-dir.
    browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()
    pw.stop()


@pytest.fixture
def new_page(browser):
    """``new_page(url, width, height)``: a page in a fresh context, closed after the test."""
    contexts = []

    def make(url: str, width: int = 1920, height: int = 1080):
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(8000)
        page.goto(url)
        return page

    yield make
    for context in contexts:
        context.close()


def expect(locator):
    from playwright.sync_api import expect as pw_expect

    return pw_expect(locator)


def tile(page, station_id: str):
    return page.locator(f'.tile[data-station="{station_id}"]')


def login(page, name: str = STAFF_NAME, pin: str = STAFF_PIN) -> None:
    """Log in through the wall page's own login dialog."""
    dialog = page.locator("#login-dialog")
    if not dialog.is_visible():
        page.locator("#staff-login").click()
    dialog.locator("#login-name").fill(name)
    dialog.locator("#login-pin").fill(pin)
    dialog.locator(".login-submit").click()
    expect(page.locator("#staff-name")).to_have_text(f"Staff: {name}")


class HttpClient:
    """One kept-alive HTTP/1.1 connection with a cookie, as a script (not a browser) talks.

    ``request()`` returns (status, headers, parsed JSON or raw bytes).
    """

    def __init__(self, service: DisplayService, host: str | None = None):
        self.conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
        self.host = host or f"127.0.0.1:{service.port}"
        self.cookie: str | None = None
        self.csrf: str | None = None

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, Any]:
        h = {"Host": self.host}
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if self.cookie:
            h["Cookie"] = self.cookie
        h.update(headers or {})
        self.conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in h.items():
            self.conn.putheader(k, v)
        if body is not None:
            self.conn.putheader("Content-Length", str(len(body)))
        self.conn.endheaders(body)
        reply = self.conn.getresponse()
        raw = reply.read()
        cookie = reply.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        try:
            data = json.loads(raw)
        except ValueError:
            data = raw
        return reply.status, reply.headers, data

    def login(self, name: str = STAFF_NAME, pin: str = STAFF_PIN) -> None:
        status, _, data = self.request("POST", "/api/login", {"name": name, "pin": pin})
        assert status == 200, data
        self.csrf = data["csrf"]

    def ack(self, station: str, alert_id: str, **headers: str) -> tuple[int, Any, Any]:
        h = {"X-CSRF-Token": self.csrf or ""}
        h.update(headers)
        return self.request("POST", "/api/ack", {"station": station, "id": alert_id}, h)

    def close(self) -> None:
        self.conn.close()
