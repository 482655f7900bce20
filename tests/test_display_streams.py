"""Many open pages: the display keeps serving under the unit's TasksMax=64.

The service is started as its own process (as systemd starts it), inside a
pids cgroup capped at 64 tasks where this machine allows one (systemd's
``TasksMax=`` is that cap), and 500 ``/events`` streams are opened against
it; the page still loads in Chromium and ``/healthz`` answers. Beyond the
configured bound a stream gets a clear 503; idle connections are closed.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.support.display import ARTIFACTS, REPO, expect
from tests.support.display_crowd import StreamCrowd, pids_cgroup, remove_cgroup, tasks_of

# The fake stations, the service, Chromium and the broker, as fixtures.
pytest_plugins = ["tests.support.display"]

STREAMS = 500
TASKS_MAX = 64


def _start_process(mosquitto, tmp_path, cgroup):
    config = tmp_path / "display.toml"
    config.write_text(
        f'[http]\nhost = "127.0.0.1"\nport = 0\nmax_streams = 600\n'
        f"max_streams_per_client = 600\n[mqtt]\nport = {mosquitto.port}\n"
        f'[staff]\nfile = "{tmp_path / "staff.json"}"\n'
    )
    command = [
        sys.executable,
        "-m",
        "monitor.display",
        "--config",
        str(config),
        "--log-level",
        "WARNING",
    ]
    if cgroup is not None:
        # Join the cgroup before Python starts, so every thread it makes counts.
        command = [
            "sh",
            "-c",
            f'echo $$ > "{cgroup / "cgroup.procs"}" && exec "$@"',
            "sh",
            *command,
        ]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
    )
    url = proc.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:"), proc.stderr.read()
    return proc, url


def _timed_get(url: str) -> tuple[int, float, bytes]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=10) as reply:
        body = reply.read()
        return reply.status, time.perf_counter() - t0, body


def test_500_open_streams_and_the_page_still_loads(mosquitto, tmp_path, stations, new_page):
    cgroup = pids_cgroup(TASKS_MAX)
    proc, url = _start_process(mosquitto, tmp_path, cgroup)
    crowd = None
    try:
        feeds = [stations(f"st-{i}") for i in range(5)]
        for st in feeds:
            st.tremor(1.5)
        port = int(url.rsplit(":", 1)[1].strip("/"))
        crowd = StreamCrowd("127.0.0.1", port, STREAMS).start()
        assert crowd.wait_open(60), f"only {crowd.opened} of {STREAMS} streams opened"
        # Data keeps flowing to all of them.
        for st in feeds:
            st.tremor(2.5)
        status, health_s, body = _timed_get(url + "healthz")
        health = json.loads(body)
        assert status == 200 and health["streams"] == STREAMS
        status, page_s, body = _timed_get(url)
        assert status == 200 and b"Not a medical device" in body
        page = new_page(url)
        expect(page.locator(".tile")).to_have_count(5)
        expect(page.locator("#link")).to_have_text("Live")
        feeds[0].tremor(3.3)
        expect(page.locator('.tile[data-station="st-0"] .ratio')).to_have_text("3.3x")
        tasks = tasks_of(proc.pid)
        assert tasks <= TASKS_MAX
        if cgroup is not None:
            assert int((cgroup / "pids.current").read_text()) <= TASKS_MAX
        assert crowd.closed_by_server == 0 and crowd.opened == STREAMS
        print(
            f"\n{STREAMS} streams open: /healthz {health_s * 1000:.1f} ms, page "
            f"{page_s * 1000:.1f} ms, {tasks} tasks "
            f"({'pids cgroup max ' + str(TASKS_MAX) if cgroup else 'no cgroup here'})"
        )
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "display-with-500-streams.png"))
    finally:
        if crowd is not None:
            crowd.close()
        proc.terminate()
        assert proc.wait(10) == 0
        assert "Traceback" not in proc.stderr.read()
        remove_cgroup(cgroup)


def test_beyond_the_bound_a_stream_gets_a_clear_503(display_factory):
    display = display_factory(max_streams=6, max_streams_per_client=4)
    crowd = StreamCrowd("127.0.0.1", display.port, 4).start()
    other = None
    try:
        assert crowd.wait_open(10)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(display.url + "events", timeout=5)
        assert err.value.code == 503 and err.value.headers["Retry-After"] == "10"
        assert "too many live pages" in json.loads(err.value.read())["error"]
        # More from the same address wait outside: the per-client bound holds.
        other = StreamCrowd("127.0.0.1", display.port, 2).start()
        assert not other.wait_open(2) and other.statuses.count(503) == 2
        health = json.loads(urllib.request.urlopen(display.url + "healthz", timeout=5).read())
        assert health["streams"] == 4 and health["streams_refused"] >= 3
    finally:
        crowd.close()
        if other is not None:
            other.close()


def test_idle_and_slow_connections_are_closed(display_factory):
    display = display_factory(idle_timeout_s=1.0)
    silent = socket.create_connection(("127.0.0.1", display.port))
    slow = socket.create_connection(("127.0.0.1", display.port))
    slow.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finishes its headers
    t0 = time.monotonic()
    for sock in (silent, slow):
        sock.settimeout(5)
        assert sock.recv(1024) == b""  # closed by the server
    assert time.monotonic() - t0 < 4
    silent.close()
    slow.close()
