"""Run a real Home Assistant core for tests and benchmarks.

Home Assistant lives in a venv of its own (its pins clash with ours):
``.ci/setup test`` makes ``.ha-venv`` with ``homeassistant`` and the packages of
the integrations used here (MQTT, HTTP, the recorder), so it starts with
``--skip-pip`` and never reaches the network. Its MQTT integration is configured
without the UI: a config entry is written into ``.storage`` before the start,
and so is an owner with a long-lived access token for the REST and websocket
APIs (the token is a JWT signed with the refresh token's key, as Home
Assistant makes them)::

    ha = HomeAssistant(tmp_path / "ha", mqtt=MqttLogin(broker.host, broker.port,
                                                       "homeassistant", "secret"))
    ha.start()                       # returns once Home Assistant says RUNNING
    ha.state("sensor.bench_1_activity")
    ha.registry()                    # the entity registry, over the websocket API
    ha.problems()                    # WARNING and ERROR lines of its log
    ha.stop()

:func:`find_hass` says where the ``hass`` program is (``$HASS``, else
``.ha-venv/bin/hass``), or None; the fixtures skip then.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import signal
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from .net import free_port

ROOT = Path(__file__).resolve().parents[2]
HA_VENV = ROOT / ".ha-venv"
#: What Home Assistant 2024.3 itself says at every start here: not about anything of ours.
STARTUP_NOTICES = (
    "Skipping pip installation of required modules",
    "Support for the running Python version 3.11",
)
#: Log lines at these levels count as problems.
PROBLEM = re.compile(r"^\S+ \S+ (WARNING|ERROR|CRITICAL) ")


def find_hass() -> str | None:
    """The ``hass`` program: ``$HASS``, else the repo's ``.ha-venv``; None when neither exists."""
    explicit = os.environ.get("HASS")
    for candidate in (explicit, str(HA_VENV / "bin" / "hass")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@dataclass(frozen=True)
class MqttLogin:
    host: str
    port: int
    username: str
    password: str
    protocol: str = "5"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def access_token(refresh_id: str, jwt_key: str, days: int = 3650) -> str:
    """An HS256 JWT as Home Assistant issues for a long-lived token (``iss`` = refresh token id)."""
    now = int(time.time())
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = _b64(
        json.dumps(
            {"iss": refresh_id, "iat": now, "exp": now + days * 86400}, separators=(",", ":")
        ).encode()
    )
    signing = f"{header}.{claims}".encode()
    signature = hmac.new(jwt_key.encode(), signing, hashlib.sha256).digest()
    return f"{header}.{claims}.{_b64(signature)}"


class HomeAssistant:
    """One Home Assistant process with its own config directory, HTTP port and recorder file."""

    def __init__(
        self,
        config_dir: Path,
        *,
        mqtt: MqttLogin,
        hass: str | None = None,
        port: int | None = None,
        log_level: str = "warning",
        recorder_commit_s: int = 1,
    ):
        self.hass = hass or find_hass()
        if self.hass is None:
            raise FileNotFoundError("Home Assistant is not installed (bash .ci/setup test)")
        self.dir = Path(config_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.mqtt = mqtt
        self.log_path = self.dir / "home-assistant.log"
        self.db_path = self.dir / "recorder.db"
        self._proc: subprocess.Popen[bytes] | None = None
        self.token = self._write_config(log_level, recorder_commit_s)

    def http(
        self, method: str, path: str, body: Any = None, timeout: float = 10.0
    ) -> tuple[int, bytes]:
        """One request to its HTTP API with the token: (status, body)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def _json(self, method: str, path: str, body: Any = None) -> Any:
        status, data = self.http(method, path, body)
        if status >= 400:
            raise RuntimeError(f"{method} {path}: HTTP {status} {data[:300]!r}")
        return json.loads(data) if data else None

    # -- configuration ---------------------------------------------------------
    def _write_config(self, log_level: str, commit_s: int) -> str:
        (self.dir / "configuration.yaml").write_text(
            "homeassistant:\n  name: Gym\n  latitude: 52.0\n  longitude: 4.0\n  elevation: 0\n"
            "  unit_system: metric\n  time_zone: UTC\n  currency: EUR\n  country: NL\n"
            f"http:\n  server_host: 127.0.0.1\n  server_port: {self.port}\n"
            "api:\n"
            "websocket_api:\n"
            f"recorder:\n  db_url: sqlite:///{self.db_path}\n  commit_interval: {commit_s}\n"
            f"logger:\n  default: {log_level}\n"
        )
        storage = self.dir / ".storage"
        storage.mkdir(exist_ok=True)
        now = datetime.now(UTC).isoformat()
        user_id, _cred_id, refresh_id = (uuid.uuid4().hex for _ in range(3))
        jwt_key = secrets.token_hex(64)
        auth = {
            "version": 1,
            "minor_version": 1,
            "key": "auth",
            "data": {
                "users": [
                    {
                        "id": user_id,
                        "group_ids": ["system-admin"],
                        "is_owner": True,
                        "is_active": True,
                        "name": "Test",
                        "system_generated": False,
                        "local_only": False,
                    }
                ],
                "groups": [
                    {"id": "system-admin", "name": "Administrators"},
                    {"id": "system-users", "name": "Users"},
                    {"id": "system-read-only", "name": "Read Only"},
                ],
                "credentials": [],
                "refresh_tokens": [
                    {
                        "id": refresh_id,
                        "user_id": user_id,
                        "client_id": None,
                        "client_name": "tests",
                        "client_icon": None,
                        "token_type": "long_lived_access_token",
                        "created_at": now,
                        "access_token_expiration": 3650 * 86400,
                        "token": secrets.token_hex(64),
                        "jwt_key": jwt_key,
                        "last_used_at": None,
                        "last_used_ip": None,
                        "expire_at": None,
                        "credential_id": None,
                        "version": None,
                    }
                ],
            },
        }
        entries = {
            "version": 1,
            "minor_version": 1,
            "key": "core.config_entries",
            "data": {
                "entries": [
                    {
                        "entry_id": uuid.uuid4().hex,
                        "version": 1,
                        "minor_version": 1,
                        "domain": "mqtt",
                        "title": "Mosquitto",
                        "data": {
                            "broker": self.mqtt.host,
                            "port": self.mqtt.port,
                            "username": self.mqtt.username,
                            "password": self.mqtt.password,
                            "protocol": self.mqtt.protocol,
                            "discovery": True,
                            "discovery_prefix": "homeassistant",
                        },
                        "options": {},
                        "pref_disable_new_entities": False,
                        "pref_disable_polling": False,
                        "source": "user",
                        "unique_id": None,
                        "disabled_by": None,
                    }
                ]
            },
        }
        for name, data in (("auth", auth), ("core.config_entries", entries)):
            path = storage / name
            path.write_text(json.dumps(data, indent=1))
            path.chmod(0o600)
        return access_token(refresh_id, jwt_key)

    # -- life ----------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 180.0) -> HomeAssistant:
        """Start and return once the core is RUNNING and the MQTT integration is loaded."""
        if self.running:
            return self
        with open(self.dir / "stdout.log", "ab") as out:
            self._proc = subprocess.Popen(
                [self.hass, "-c", str(self.dir), "--skip-pip", "--log-file", str(self.log_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"hass exited with {self._proc.returncode}:\n{self._tail()}")
            try:
                status, data = self.http("GET", "/api/config", timeout=2)
                config = json.loads(data) if status == 200 else {}
                if config.get("state") == "RUNNING" and "mqtt" in config.get("components", []):
                    return self
            except (OSError, ValueError):
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"Home Assistant did not start within {timeout} s:\n{self._tail()}")

    def _tail(self) -> str:
        text = ""
        for p in (self.dir / "stdout.log", self.log_path):
            if p.exists():
                text += p.read_text(errors="replace")[-3000:]
        return text

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM (Home Assistant saves its storage and closes the recorder); kill if stuck."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- looking at it ---------------------------------------------------------------
    def states(self) -> dict[str, dict[str, Any]]:
        return {s["entity_id"]: s for s in self._json("GET", "/api/states")}

    def state(self, entity_id: str) -> dict[str, Any] | None:
        status, data = self.http("GET", f"/api/states/{entity_id}")
        if status == 404:
            return None
        if status >= 400:
            raise RuntimeError(f"GET state {entity_id}: HTTP {status}")
        return json.loads(data)

    def call(self, domain: str, service: str, **data: Any) -> None:
        self._json("POST", f"/api/services/{domain}/{service}", data)

    def template(self, text: str) -> str:
        status, data = self.http("POST", "/api/template", {"template": text})
        if status >= 400:
            raise RuntimeError(f"template: HTTP {status} {data[:300]!r}")
        return data.decode()

    def ws(self, message: dict[str, Any]) -> Any:
        """One websocket API command (``{"type": ...}``); its ``result``."""
        import aiohttp

        async def call() -> Any:
            async with (
                aiohttp.ClientSession() as s,
                s.ws_connect(f"{self.url}/api/websocket") as ws,
            ):
                await ws.receive_json()
                await ws.send_json({"type": "auth", "access_token": self.token})
                ok = await ws.receive_json()
                if ok.get("type") != "auth_ok":
                    raise RuntimeError(f"websocket auth failed: {ok}")
                await ws.send_json({"id": 1, **message})
                while True:
                    reply = await ws.receive_json()
                    if reply.get("id") == 1:
                        break
                if not reply.get("success"):
                    raise RuntimeError(f"{message['type']} failed: {reply}")
                return reply.get("result")

        return asyncio.run(call())

    def registry(self, platform: str = "mqtt") -> dict[str, dict[str, Any]]:
        """The entity registry's entries of ``platform``, by entity id."""
        return {
            e["entity_id"]: e
            for e in self.ws({"type": "config/entity_registry/list"})
            if e.get("platform") == platform
        }

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def problems(self, since: int = 0) -> list[str]:
        """WARNING, ERROR and CRITICAL records of the log (from character ``since``) with their
        continuation lines (a traceback belongs to its record)."""
        out: list[str] = []
        for line in self.log_text()[since:].splitlines():
            if PROBLEM.match(line):
                out.append(line)
            elif out and line and not re.match(r"^\d{4}-\d\d-\d\d ", line):
                out[-1] += "\n" + line
        return out

    def recorder_rows(self) -> dict[str, int]:
        """State rows the recorder wrote, per entity (read from its SQLite file)."""
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10) as db:
            rows = db.execute(
                "SELECT m.entity_id, COUNT(*) FROM states s JOIN states_meta m "
                "ON s.metadata_id = m.metadata_id GROUP BY m.entity_id"
            ).fetchall()
        return dict(rows)
