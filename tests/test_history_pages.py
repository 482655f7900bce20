"""The coach's pages in real headless Chromium, behind the display's staff login.

The history service is the real one (SQLite, a real Mosquitto, a real staff
file with an argon2 hash); its store is filled with synthetic session records
over twelve weeks. Screenshots go to test-artifacts/history/ (gitignored).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from monitor.display.staff import StaffFile
from monitor.history.config import HistoryConfig, MqttSettings, WebSettings
from monitor.history.service import HistoryService
from tests.support import display as ds  # Chromium and broker fixtures
from tests.test_history_ingest import Station, Watcher, wait_until

# The fixtures, registered in this module by name.
browser, new_page = ds.browser, ds.new_page
expect, REPO = ds.expect, ds.REPO
SHOTS = ds.ARTIFACTS / "history"
NAME, PIN = "Coach Bo", "correct horse 42"
WEEK = 7 * 86400


@pytest.fixture
def history(mosquitto, tmp_path):
    staff = tmp_path / "staff.json"
    StaffFile(staff).add(NAME, PIN)
    config = HistoryConfig(
        gym="leeds",
        state_dir=tmp_path / "state",
        mqtt=MqttSettings(host=mosquitto.host, port=mosquitto.port, client_id="history-pages"),
        web=WebSettings(
            host="127.0.0.1", port=0, staff_file=str(staff), display_url="http://127.0.0.1:8080/"
        ),
    )
    service = HistoryService(config)
    service.start()
    assert service.ingest.wait_connected(10)
    station = Station(mosquitto)
    now = time.time()
    for week in range(12):
        for day in (0, 2, 4):
            station.record("a1", now - (week * WEEK + day * 86400 + 7200), seed=week)
        station.record("b2", now - (week * WEEK + 3 * 86400), fitness=1.6)
    station.send(
        "athlete",
        {
            "v": 1,
            "ts": now - 600,
            "station": "bench-1",
            "athlete": "a1",
            "guest": False,
            "since_ts": now - 600,
            "source": "tag",
            "profile": "applied",
        },
        retain=True,
    )
    for state, by in (("raised", None), ("acknowledged", "Ana"), ("cleared", None)):
        station.send(
            "alert",
            {
                "v": 1,
                "ts": now - 300 + len(state),
                "station": "bench-1",
                "id": "bench-1:live:0001",
                "code": "tremor.persistent",
                "level": "urgent",
                "state": state,
                "red_flag": True,
                "sensor": "wrist",
                "message": "Shaking persists <long> after",
                "advice": "Sit down",
                "evidence": {},
                "raised_ts": now - 300,
                **({"by": by} if by else {}),
            },
        )
    wait_until(
        lambda: (
            service.store.counts()["sessions"] == 48
            and service.ingest.idle()
            and len(service.store.alert_log(athlete="a1", limit=5000)) > 1
        ),
        what="the history to be stored",
    )
    service.set_display_name("leeds", "a1", 'Sam & "Al"')
    yield service
    station.close()
    service.stop()


def login(page) -> None:
    expect(page.locator("#login-form")).to_be_visible()
    page.fill("#login-name", NAME)
    page.fill("#login-pin", PIN)
    page.click(".login-submit")


def test_pages_behind_the_login_charts_timeline_alerts_and_csv(history, new_page, mosquitto):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = new_page(history.url + "athletes", 1280, 900)
    assert "/login?next=/athletes" in page.url  # staff only
    login(page)
    page.wait_for_url("**/athletes")
    expect(page.locator("#who")).to_have_text(f"Logged in as {NAME}")
    rows = page.locator("table.athletes tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text('Sam & "Al"')  # escaped, shown as typed
    page.screenshot(path=str(SHOTS / "athletes.png"), full_page=True)

    page.click("text=Sam")
    page.wait_for_url("**/athletes/leeds/a1")
    for fig in ("ratio", "growth", "recovery", "holds", "sweat", "alerts"):
        expect(page.locator(f"figure.fig-{fig} svg")).to_have_count(1)
    # 12 weeks x 3 sessions x 5 sets, median and peak dots.
    assert page.locator("figure.fig-ratio circle.dot").count() == 2 * 36 * 5
    assert page.locator("figure.fig-alerts rect.bar").count() >= 1
    expect(page.locator("table.weekly tbody tr").first).to_be_visible()
    expect(page.locator("table.sessions tbody tr")).to_have_count(36)
    page.screenshot(path=str(SHOTS / "athlete.png"), full_page=True)

    csv = page.request.get(history.url + "athletes/leeds/a1.csv?weeks=12")
    assert csv.ok and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text().splitlines()
    assert lines[0].startswith("session_id,station,session_start,set,kind")
    assert len(lines) == 1 + 36 * 5

    page.locator("table.sessions tbody tr a").first.click()
    page.wait_for_url("**/sessions/leeds/**")
    svg = page.locator("figure.fig-timeline svg")
    assert svg.locator("rect.block-set").count() == 5
    assert svg.locator("rect.block-hold").count() == 1
    assert svg.locator("rect.state-reps").count() >= 1
    assert svg.locator("polyline.line").count() == 2
    expect(page.locator("table.sets tbody tr")).to_have_count(5)
    page.screenshot(path=str(SHOTS / "session.png"), full_page=True)
    trace_csv = page.request.get(page.url + ".csv")
    assert trace_csv.ok and trace_csv.text().startswith("minute,sensor,state,ratio_p50")

    page.goto(history.url + "alerts?days=365")
    live = page.locator("table.alerts tbody tr", has_text="persists")
    expect(live).to_have_count(1)
    expect(live).to_contain_text("Ana")
    expect(live).to_contain_text("urgent")
    expect(live).to_contain_text("Shaking persists <long> after")  # text, not markup
    page.screenshot(path=str(SHOTS / "alerts.png"), full_page=True)
    alerts_csv = page.request.get(history.url + "alerts.csv?days=365").text()
    assert "bench-1:live:0001" in alerts_csv and ",Ana," in alerts_csv


def test_staff_name_an_athlete_then_forget_them(history, new_page, mosquitto):
    watcher = Watcher(mosquitto, "gym/_athletes/#")
    try:
        page = new_page(history.url + "athletes/leeds/a1")
        login(page)
        page.wait_for_url("**/athletes/leeds/a1")
        page.fill(".card-form input[name=display_name]", "Samira")
        page.click(".card-form button")
        expect(page.locator("h1")).to_contain_text("Samira")
        card = json.loads(watcher.wait_for("gym/_athletes/a1/card", lambda d: b"Samira" in d))
        assert card["display_name"] == "Samira"

        export = page.request.get(history.url + "athletes/leeds/a1/export.json").json()
        assert len(export["tables"]["sessions"]) == 36 and export["tables"]["profiles"]

        page.fill(".forget-form input[name=confirm]", "wrong")
        page.click(".forget-form button")
        expect(page.locator(".forget-form .result")).to_contain_text("confirm")
        page.fill(".forget-form input[name=confirm]", "a1")
        page.click(".forget-form button")
        page.wait_for_url("**/athletes")
        expect(page.locator("table.athletes tbody tr")).to_have_count(1)
        assert not history.store.knows("leeds", "a1")
        watcher.wait_for("gym/_athletes/a1/profile", lambda d: d == b"")
        watcher.wait_for("gym/_athletes/a1/card", lambda d: d == b"")
        assert page.request.get(history.url + "athletes/leeds/a1").status == 404
    finally:
        watcher.close()


def _raw(url: str, method: str, path: str, headers: dict[str, str], body: bytes = b""):
    host, port = url.split("//")[1].rstrip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request(method, path, body=body, headers=headers)
    reply = conn.getresponse()
    data = reply.read()
    conn.close()
    return reply.status, reply.headers, data


def test_the_pages_refuse_strangers_other_hosts_and_forged_posts(history):
    host = history.url.split("//")[1].rstrip("/")
    status, headers, _ = _raw(history.url, "GET", "/athletes", {"Host": host})
    assert status == 303 and headers["Location"].startswith("/login")
    status, _, _ = _raw(history.url, "GET", "/athletes.csv", {"Host": host})
    assert status == 303
    status, _, _ = _raw(history.url, "GET", "/login", {"Host": "evil.example"})
    assert status == 421  # DNS rebinding
    body = json.dumps({"confirm": "a1"}).encode()
    status, _, _ = _raw(
        history.url,
        "POST",
        "/athletes/leeds/a1/forget",
        {"Host": host, "Content-Type": "application/json", "Origin": f"http://{host}"},
        body,
    )
    assert status == 401 and history.store.knows("leeds", "a1")
    status, _, _ = _raw(
        history.url,
        "POST",
        "/athletes/leeds/a1/forget",
        {"Host": host, "Content-Type": "application/json", "Origin": "http://evil.example"},
        body,
    )
    assert status == 403 and history.store.knows("leeds", "a1")
    status, headers, data = _raw(history.url, "GET", "/healthz", {"Host": host})
    health = json.loads(data)
    assert status == 200 and health["connected"] and "a1" not in data.decode()
    assert "default-src 'self'" in headers["Content-Security-Policy"]


# --------------------------------------------------------------------------- the unit and CLI

UNIT = REPO / "systemd" / "gym-history.service"


def test_history_unit_runs_the_cli_with_its_config_as_a_credential():
    from monitor.cli import build_parser
    from tests.test_systemd_units import parse_unit

    service = parse_unit(UNIT.read_text())["Service"]
    argv = service["ExecStart"][0].split()[1:]
    args = build_parser().parse_args(argv)
    assert args.command == "history" and str(args.config).endswith("/history.toml")
    assert service["Type"] == ["notify"] and service["RestartPreventExitStatus"] == ["2"]
    assert service["StateDirectory"] == ["gym-history"] and service["DynamicUser"] == ["yes"]
    assert any(c.startswith("history.toml:") for c in service["LoadCredential"])


def test_history_unit_passes_systemd_analyze(tmp_path):
    import shutil

    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt install systemd)")
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text().replace("/opt/gym-monitor/venv/bin/gym-monitor", "/bin/true"))
    run = subprocess.run(
        [analyze, "verify", "--man=no", str(copy)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    about = [line for line in (run.stdout + run.stderr).splitlines() if UNIT.name in line]
    assert run.returncode == 0 and not about, "\n".join(about)
    sec = subprocess.run(
        [analyze, "security", "--offline=true", str(UNIT)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "--offline" in sec.stderr and sec.returncode != 0:
        pytest.skip("this systemd-analyze has no --offline")
    exposure = float(sec.stdout.split("Overall exposure level for")[1].split(":")[1].split()[0])
    assert exposure <= 1.5, sec.stdout[-400:]


@pytest.mark.parametrize(
    "toml, key",
    [
        ("[retention]\ntrace_days = 0\n", "retention.trace_days"),
        ('[history]\ndatabase = "mysql://x"\n', "history.database"),
        ('[mqtt]\nprefix = "gym/#"\n', "mqtt.prefix"),
        ('[web]\nport = "80"\n', "web.port"),
        ('[histroy]\ngym = "x"\n', "histroy"),
    ],
)
def test_a_bad_config_is_one_line_naming_the_key_and_exit_2(tmp_path, toml, key):
    path = tmp_path / "history.toml"
    path.write_text(toml)
    run = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "history", "--config", str(path), "migrate"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert run.returncode == 2, run.stderr
    assert key in run.stderr and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_the_shipped_config_loads():
    from monitor.history.config import load

    config = load(REPO / "config" / "history.toml")
    assert config.database_url.startswith("sqlite:///") and config.web.require_login


def test_cli_export_and_forget_without_the_service(mosquitto, tmp_path):
    state = tmp_path / "state"
    toml = tmp_path / "history.toml"
    toml.write_text(
        f'[history]\ngym = "leeds"\nstate_dir = "{state}"\n[mqtt]\nport = {mosquitto.port}\n'
    )
    from monitor.history import synthetic
    from monitor.history.incoming import session_record
    from monitor.history.store import HistoryStore, Item, sqlite_url

    state.mkdir()
    store = HistoryStore(sqlite_url(state / "history.sqlite3"), gym="leeds")
    store.migrate()
    rec = synthetic.session_record_message(station="bench-1", athlete="c3", started_ts=1.7e9)
    store.write([Item("leeds", session_record("bench-1", rec.to_json()))])
    store.close()
    cli = [sys.executable, "-m", "monitor.cli", "history", "--config", str(toml)]
    out = subprocess.run(
        [*cli, "export", "c3"], capture_output=True, text=True, timeout=60, cwd=REPO, check=True
    ).stdout
    assert json.loads(out)["tables"]["sessions"][0]["id"] == rec.id
    watcher = Watcher(mosquitto, "gym/_athletes/#")
    subprocess.run(
        [*cli, "name", "c3", "Cleo"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=True,
    )
    watcher.wait_for("gym/_athletes/c3/card", lambda d: b"Cleo" in d)
    done = subprocess.run(
        [*cli, "forget", "c3"], capture_output=True, text=True, timeout=60, cwd=REPO, check=True
    ).stdout
    assert "forgot c3" in done
    watcher.wait_for("gym/_athletes/c3/card", lambda d: d == b"")
    watcher.close()
    again = subprocess.run(
        [*cli, "export", "c3"], capture_output=True, text=True, timeout=60, cwd=REPO, check=True
    ).stdout
    assert all(not rows for rows in json.loads(again)["tables"].values())
    assert Path(state / "history.sqlite3").exists()


# --------------------------------------------------------------------------- the render worker


def _logged_in(url: str) -> dict[str, str]:
    host = url.split("//")[1].rstrip("/")
    body = json.dumps({"name": NAME, "pin": PIN}).encode()
    status, headers, _ = _raw(
        url,
        "POST",
        "/api/login",
        {"Host": host, "Content-Type": "application/json", "Origin": f"http://{host}"},
        body,
    )
    assert status == 200
    return {"Host": host, "Cookie": headers["Set-Cookie"].split(";")[0]}


def test_a_page_shows_what_came_since_it_was_last_rendered(history, mosquitto):
    who = _logged_in(history.url)
    status, _, before = _raw(history.url, "GET", "/athletes/leeds/a1", who)
    assert status == 200
    station = Station(mosquitto, "rack-7")
    try:
        rec = station.record("a1", time.time() - 3600, seed=99)
        wait_until(lambda: history.store.session("leeds", rec["id"]) is not None, what="it")
    finally:
        station.close()
    link = f'href="/sessions/leeds/{quote(rec["id"], safe="")}"'.encode()
    assert link not in before
    status, _, after = _raw(history.url, "GET", "/athletes/leeds/a1", who)
    assert status == 200 and link in after


def test_pages_are_rendered_in_a_worker_process_that_is_replaced_if_killed(history):
    renderer = history._renderer
    assert renderer is not None and not renderer.in_process  # the default: one worker
    who = _logged_in(history.url)
    first = set(renderer._pool._processes)
    assert first and os.getpid() not in first
    for pid in first:
        os.kill(pid, signal.SIGKILL)
    status, _, body = _raw(history.url, "GET", "/athletes/leeds/b2?weeks=12", who)
    assert status == 200 and b"fig-ratio" in body
    again = set(renderer._pool._processes)
    assert again and not again & first
    status, _, body = _raw(history.url, "GET", "/alerts?days=365", who)
    assert status == 200 and b"persists" in body


RENDERER_CHILD = """
import sys, time
from monitor.history.render import Renderer
from monitor.history.store import HistoryStore, sqlite_url
store = HistoryStore(sqlite_url(sys.argv[1]), gym="leeds")
renderer = Renderer(store, workers=1)
print(" ".join(str(p) for p in renderer._pool._processes), flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_render_workers_end_when_the_service_is_killed(tmp_path):
    """A SIGKILLed service (or a demo that exits without closing its pool) leaves no worker
    behind holding the pipes its caller reads."""
    child = subprocess.Popen(
        [sys.executable, "-c", RENDERER_CHILD, str(tmp_path / "h.sqlite3")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        workers = [int(p) for p in child.stdout.readline().split()]
        assert workers and all(_alive(p) for p in workers)
    finally:
        child.kill()
        child.wait(10)
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in workers)
    # and the pipe the caller reads ends: nothing of the service still holds it
    assert child.stdout.read() == ""


def test_the_coach_login_cookie_is_not_the_wall_displays():
    """Both servers run on one host in the demo and often in a gym; cookies ignore ports."""
    from monitor.display.config import DisplayConfig
    from monitor.history.web import display_config

    assert display_config(WebSettings()).session_cookie != DisplayConfig().session_cookie
