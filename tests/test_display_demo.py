"""``gym-monitor demo`` makes a staff login for itself and says how to use it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request

from tests.support.display import REPO

# The fake stations, the service, Chromium and the broker, as fixtures.
pytest_plugins = ["tests.support.display"]


def test_a_newcomer_can_log_in_to_the_demo_wall(mosquitto, tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor.cli",
            "demo",
            "--stations",
            "1",
            "--seconds",
            "20",
            "--broker",
            f"127.0.0.1:{mosquitto.port}",
            "--http-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        lines = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any("PIN" in line for line in lines):
            lines.append(proc.stdout.readline())
        text = "".join(lines)
        url = re.search(r"wall display: (http://\S+)", text).group(1)
        pin = re.search(r"Staff login, name demo, PIN (\d{6})", text).group(1)
        login = urllib.request.Request(
            url + "api/login",
            data=json.dumps({"name": "demo", "pin": pin}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(login, timeout=10) as reply:
            assert reply.status == 200 and json.loads(reply.read())["name"] == "demo"
            assert "HttpOnly" in reply.headers["Set-Cookie"]
    finally:
        proc.terminate()
        proc.wait(20)
    assert "Traceback" not in proc.stderr.read()
