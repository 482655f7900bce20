"""The wall display end to end: real Mosquitto, real service, real headless Chromium.

Test stations are plain paho clients publishing the payloads of
monitor/mqtt/PAYLOADS.md; the page is driven with Playwright and assertions
are about what is painted (text, classes, visibility), never about the model.

Needs the ``playwright`` package (no ``playwright install``: Debian's Chromium
is used through ``executable_path``) and ``/usr/bin/chromium`` (or
``$CHROMIUM``); without them the browser tests are skipped, saying which is
missing. The service-level tests at the end only need Mosquitto.
"""

from __future__ import annotations

import json
import math
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from monitor.display.service import main
from tests.support.display import (
    ARTIFACTS,
    REPO,
    STAFF_NAME,
    AckListener,
    FakeStation,
    expect,
    login,
    tile,
)

# The fake stations, the service, Chromium and the broker, as fixtures.
pytest_plugins = ["tests.support.display"]


def classes(*names: str) -> re.Pattern[str]:
    """Exactly these classes, in any order (a tile may go stale before its first paint)."""
    ahead = "".join(f"(?=.*(^|\\s){re.escape(n)}(\\s|$))" for n in names)
    return re.compile(f"^{ahead}\\s*(\\S+\\s*){{{len(names)}}}$")


RED_FLAG_WORDS = [
    "chest pain",
    "confusion",
    "severe light-headedness",
    "fainting",
    "dark urine",
    "seek medical advice promptly",
]


# --------------------------------------------------------------------------- the page


def test_tiles_appear_for_publishing_stations_and_update(display, stations, new_page):
    bench = stations("bench-1")
    bench.session(name="Bench 1", state="rest", set_count=2)
    bench.hydration(intake_ml=250.0)
    bench.tremor(1.4)
    others = [stations(f"rack-{i}") for i in (2, 10)]
    for st in others:
        st.tremor(1.1)

    page = new_page(display.url)
    expect(page.locator(".tile")).to_have_count(3)
    # Natural order: rack-2 before rack-10.
    assert page.locator(".tile").evaluate_all("t => t.map(e => e.dataset.station)") == [
        "bench-1",
        "rack-2",
        "rack-10",
    ]
    t = tile(page, "bench-1")
    expect(t.locator(".name")).to_have_text("Bench 1")
    expect(t.locator(".ratio")).to_have_text("1.4x")
    expect(t.locator(".level-label")).to_have_text("NORMAL")
    expect(t.locator(".hz")).to_have_text("8.1 Hz")
    expect(t.locator(".state")).to_have_text("Resting \u00b7 set 2")
    expect(t.locator(".hydration")).to_have_text("Drank 250 mL")
    expect(t.locator(".since")).to_contain_text("Last set 1 min ago")
    expect(page.locator(".disclaimer")).to_contain_text("Not a medical device")

    bench.tremor(2.3, hz=6.2)
    expect(t.locator(".ratio")).to_have_text("2.3x")
    expect(t.locator(".level-label")).to_have_text("ELEVATED")
    expect(t.locator(".hz")).to_have_text("6.2 Hz")
    expect(t).to_have_class("tile lv-elevated")

    bench.tremor(5.0)
    expect(t.locator(".ratio")).to_have_text("5.0x")
    expect(t.locator(".level-label")).to_have_text("HIGH")
    bench.session(name="Bench 1", state="reps", set_count=3)
    expect(t.locator(".state")).to_have_text("Reps \u00b7 set 3")
    expect(t.locator(".since")).to_have_text("In a set")
    bench.hydration(mode="body", intake_ml=None, body_mass_loss_pct=2.4)
    expect(t.locator(".hydration")).to_have_text("Mass loss 2.4 %")
    # The sparkline has been drawn from the history.
    assert t.locator(".trace").get_attribute("points") != ""


def test_offline_and_stale_stations_are_shown_as_such(display_factory, stations, new_page):
    display = display_factory(stale_after=1.0)
    gone = stations("gone-1")
    quiet = stations("quiet-2")
    gone.tremor(1.2)
    quiet.tremor(1.3)
    page = new_page(display.url)
    expect(page.locator(".tile")).to_have_count(2)

    gone.offline()
    expect(tile(page, "gone-1").locator(".badge")).to_have_text("OFFLINE")
    expect(tile(page, "gone-1")).to_have_class(classes("tile", "lv-normal", "is-offline"))

    # quiet-2 says nothing more: after stale_after it is greyed with a label.
    expect(tile(page, "quiet-2").locator(".badge")).to_contain_text("NO DATA", timeout=5000)
    expect(tile(page, "quiet-2")).to_have_class(classes("tile", "lv-normal", "is-stale"))
    expect(page.locator(".summary")).to_contain_text("1 offline \u00b7 1 no data")

    quiet.tremor(1.5)
    expect(tile(page, "quiet-2").locator(".badge")).to_be_hidden()
    expect(tile(page, "quiet-2")).to_have_class(classes("tile", "lv-normal"))
    expect(tile(page, "quiet-2").locator(".ratio")).to_have_text("1.5x")


def test_urgent_alert_banner_with_advice_is_acknowledged_by_click(
    display, stations, new_page, mosquitto
):
    listener = AckListener(mosquitto)
    try:
        st = stations("bench-9")
        st.session(name="Bench 9")
        st.tremor(1.1)
        page = new_page(display.url)
        expect(tile(page, "bench-9")).to_be_visible()
        expect(page.locator("#banners")).to_be_hidden()

        alert = st.alert(
            "bench-9:1732435200:0007",
            "urgent",
            "Possible fall or faint: impact, then stillness",
            advice="Go to the athlete now. Do not let them get up quickly.",
            red_flag=True,
            code="fall",
        )
        st.active([alert])
        banner = page.locator(".banner")
        expect(banner).to_have_count(1)
        expect(banner.locator(".alert-level")).to_have_text("URGENT")
        expect(banner.locator(".banner-station")).to_have_text("Bench 9")
        expect(banner.locator(".banner-msg")).to_have_text(
            "Possible fall or faint: impact, then stillness"
        )
        expect(banner.locator(".banner-advice")).to_have_text(
            "Go to the athlete now. Do not let them get up quickly."
        )
        for words in RED_FLAG_WORDS:
            expect(page.locator(".redflag-note")).to_contain_text(words)
        expect(tile(page, "bench-9")).to_have_class("tile lv-normal alert-urgent")

        # Logged out, Acknowledge asks who you are first, then sends.
        banner.locator("button.ack").click()
        login(page)
        topic, payload, qos = listener.get()
        assert topic == "gym/bench-9/cmd/ack"
        assert payload.pop("request_id")
        assert payload == {"v": 1, "id": "bench-9:1732435200:0007", "by": STAFF_NAME}
        assert qos == 1
        expect(banner.locator("button.ack")).to_have_text("Sent, waiting\u2026")
        expect(banner.locator(".banner-note")).to_contain_text(f"Sent by {STAFF_NAME} at")
        expect(banner.locator(".banner-note")).to_contain_text("waiting for the station")

        # The station confirms: the banner goes away everywhere, and the wall says who.
        st.alert(
            "bench-9:1732435200:0007",
            "urgent",
            "Possible fall or faint",
            state="acknowledged",
            red_flag=True,
            code="fall",
            by=STAFF_NAME,
        )
        st.active([])
        expect(page.locator("#banners")).to_be_hidden()
        expect(page.locator("#acks .ack-line")).to_contain_text(
            f"Bench 9: Possible fall or faint: impact, then stillness \u2014 acknowledged by "
            f"{STAFF_NAME} at"
        )
        expect(tile(page, "bench-9").locator(".tile-alerts .alert")).to_have_count(0)

        # Alerts on tiles carry their level as text and have their own ack button.
        caution = st.alert("bench-9:c1", "caution", "Tremor elevated: 2.4x your rested level")
        info = st.alert(
            "bench-9:i1", "info", "Session over 60 min: consider a snack", code="fuel.long_session"
        )
        st.active([caution, info])
        rows = tile(page, "bench-9").locator(".tile-alerts .alert")
        expect(rows).to_have_count(2)
        expect(rows.nth(0).locator(".alert-level")).to_have_text("CAUTION")
        expect(rows.nth(1).locator(".alert-level")).to_have_text("INFO")
        expect(page.locator("#banners")).to_be_hidden()  # caution is not a red flag
        rows.nth(0).locator("button.ack").click()  # still logged in: straight out
        topic, payload, _ = listener.get()
        assert (topic, payload["id"], payload["by"]) == (
            "gym/bench-9/cmd/ack",
            "bench-9:c1",
            STAFF_NAME,
        )
    finally:
        listener.close()


def test_mqtt_text_is_never_html(display, stations, new_page):
    dialogs: list[str] = []
    evil_id = "<svg onload=alert(3)>"
    evil_name = "<img src=x onerror=alert(1)>"
    st = stations(evil_id)
    st.session(name=evil_name, state="<b>reps</b>")
    st.tremor(4.5, sensor="<i>wrist</i>")
    warning = st.alert("x1", "warning", "<script>alert(2)</script>")
    urgent = st.alert(
        "x2",
        "urgent",
        "<img src=y onerror=alert(4)>",
        advice="<a href=javascript:alert(5)>click</a>",
    )
    st.active([warning, urgent])

    page = new_page("about:blank")
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    response = page.goto(display.url)
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp

    card = page.locator(".tile")
    expect(card.locator(".name")).to_have_text(evil_name)
    expect(card.locator(".state")).to_contain_text("<b>reps</b>")
    expect(card.locator(".sensor")).to_have_text("<i>wrist</i>")
    expect(page.locator(".banner-msg")).to_have_text("<img src=y onerror=alert(4)>")
    expect(page.locator(".banner-advice")).to_have_text("<a href=javascript:alert(5)>click</a>")
    expect(card.locator(".alert-msg").first).to_have_text("<img src=y onerror=alert(4)>")
    expect(card.locator(".alert-msg").nth(1)).to_have_text("<script>alert(2)</script>")
    assert card.evaluate("e => e.dataset.station") == evil_id
    # Nothing was parsed into elements: no images, links or extra scripts exist.
    assert page.locator("img").count() == 0
    assert page.locator("a").count() == 0
    assert page.locator("script").count() == 2  # staff.js and app.js
    assert page.locator("svg[onload]").count() == 0
    page.wait_for_timeout(300)
    assert dialogs == []


def test_malformed_messages_are_ignored_and_the_board_lives_on(display, stations, new_page):
    st = stations("bench-1")
    st.tremor(1.2)
    page = new_page(display.url)
    expect(tile(page, "bench-1").locator(".ratio")).to_have_text("1.2x")
    garbage: list[tuple[str, Any]] = [
        ("tremor", b"\xff\xfe not utf-8"),
        ("tremor", "not json"),
        ("tremor", "[1, 2, 3]"),
        ("tremor", {"v": 1, "level": "elevated", "rms_mg": "big"}),
        ("tremor", '{"v": 1, "level": "high", "ratio": NaN}'),
        ("tremor", {"v": 1, "level": "purple"}),
        ("session", {"v": 1, "set_count": "three"}),
        ("hydration", {"v": "1"}),
        ("alert", {"v": 1, "id": 7, "level": "urgent"}),
        ("alerts/active", {"v": 1, "alerts": "none"}),
        ("status", "maybe"),
        ("tremor", "x" * 200_000),
        ("tremor", "[" * 100_000),
    ]
    for kind, payload in garbage:
        st.publish(kind, payload)
    st.tremor(3.1)
    expect(tile(page, "bench-1").locator(".ratio")).to_have_text("3.1x")
    state = json.loads(urllib.request.urlopen(display.url + "api/state").read())
    assert state["ignored"] == len(garbage)
    assert [s["id"] for s in state["stations"]] == ["bench-1"]
    assert state["stations"][0]["alerts"] == []


def _populate_mixed_board(mosquitto, count: int) -> tuple[list[FakeStation], Callable[[], None]]:
    """``count`` stations in every state a gym sees; returns them and a 'keep alive' step."""
    kinds = [
        "normal",
        "elevated",
        "high",
        "offline",
        "stale",
        "urgent",
        "caution",
        "warning",
        "none",
        "normal",
    ]
    made, live = [], []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        st = FakeStation(mosquitto, f"st-{i + 1:02d}")
        made.append(st)
        ratio = {
            "normal": 1.3 + (i % 3) * 0.2,
            "elevated": 2.6,
            "high": 4.8,
            "offline": 1.4,
            "stale": 1.8,
            "urgent": 5.6,
            "caution": 2.2,
            "warning": 3.4,
            "none": None,
        }[kind]
        names = [
            "Bench press",
            "Squat rack",
            "Deadlift",
            "Cable row",
            "Plank mat",
            "Leg press",
            "Pull-up bar",
            "Rower",
            "Dumbbells",
            "Wall sit",
        ]
        st.session(
            name=f"{names[i % len(names)]} {i // len(names) + 1}",
            state=["reps", "rest", "hold", "recovery", "idle"][i % 5],
            set_count=i % 6 + 1,
            last_set_end_ts=time.time() - 30 - 17 * i,
        )
        if i % 2:
            st.hydration(mode="body", intake_ml=None, body_mass_loss_pct=0.4 + (i % 7) * 0.4)
        else:
            st.hydration(intake_ml=150.0 + 50 * i)
        if kind == "urgent":
            a = st.alert(
                f"{st.id}:u",
                "urgent",
                "Shaking persists 20 min after the session",
                advice="Sit the athlete down, give water and a snack, stay with them.",
                red_flag=True,
                code="tremor.persistent",
            )
            st.active([a])
        elif kind in ("caution", "warning"):
            a = st.alert(
                f"{st.id}:{kind}", kind, f"Tremor {ratio:.1f}x rested level in set {i % 6 + 1}"
            )
            st.active([a])
        live.append((st, kind, ratio))

    def step(t: float) -> None:
        for st, kind, ratio in live:
            if kind in ("offline", "stale"):
                continue
            phase = (hash(st.id) % 628) / 100
            swing = 1 + 0.3 * math.sin(4 * t + phase)  # a set's rise and fall, sped up
            wobble = None if ratio is None else round(ratio * swing, 2)
            st.tremor(wobble, hz=7.5 + (hash(st.id) % 40) / 10)

    for st, kind, ratio in live:
        if kind in ("offline", "stale"):
            st.tremor(ratio)
        if kind == "offline":
            st.offline()
    return made, step


def test_twenty_station_board_screenshot(display_factory, mosquitto, new_page):
    display = display_factory(stale_after=2.0, spark_history_s=6.0, spark_bucket_s=0.05)
    made, step = _populate_mixed_board(mosquitto, 20)
    try:
        page = new_page(display.url, 1920, 1080)
        expect(page.locator(".tile")).to_have_count(20)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 4.0:  # fill the sparklines, let st-05 go stale
            step(time.monotonic())
            time.sleep(0.05)
        expect(page.locator(".tile.is-stale")).to_have_count(2)
        expect(page.locator(".tile.is-offline")).to_have_count(2)
        expect(page.locator(".banner")).to_have_count(2)
        page.wait_for_timeout(300)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "display-20-stations.png"))
        _assert_tiles_fit(page, 1920, 1080, min_name_px=18, min_ratio_px=36)
    finally:
        for st in made:
            st.close()


@pytest.mark.parametrize(
    "width,height,min_name,min_ratio", [(1920, 1080, 13, 24), (3840, 2160, 26, 48)]
)
def test_fifty_stations_fit_one_screen(
    display_factory, mosquitto, new_page, width, height, min_name, min_ratio
):
    display = display_factory(stale_after=60.0)
    made, step = _populate_mixed_board(mosquitto, 50)
    try:
        step(0.0)
        page = new_page(display.url, width, height)
        expect(page.locator(".tile")).to_have_count(50)
        expect(page.locator(".tile .ratio").last).not_to_have_text("\u2014")
        page.wait_for_timeout(200)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"display-50-stations-{height}p.png"))
        _assert_tiles_fit(page, width, height, min_name_px=min_name, min_ratio_px=min_ratio)
    finally:
        for st in made:
            st.close()


def _assert_tiles_fit(
    page, width: int, height: int, *, min_name_px: float, min_ratio_px: float
) -> None:
    """Every tile fully on screen, nothing scrolls, and the type is big enough to read."""
    boxes = page.locator(".tile").evaluate_all(
        "ts => ts.map(t => { const r = t.getBoundingClientRect();"
        " return [r.left, r.top, r.right, r.bottom]; })"
    )
    for left, top, right, bottom in boxes:
        assert left >= 0 and top >= 0 and right <= width + 0.5 and bottom <= height + 0.5
    assert page.evaluate("document.documentElement.scrollHeight") <= height
    sizes = page.evaluate(
        "() => ['.name', '.ratio'].map(s => parseFloat(getComputedStyle("
        "document.querySelector(s)).fontSize))"
    )
    assert sizes[0] >= min_name_px, f"station names are only {sizes[0]} px"
    assert sizes[1] >= min_ratio_px, f"ratios are only {sizes[1]} px"
    # Text is not clipped inside the main figure.
    clipped = page.locator(".tile .ratio").evaluate_all(
        "rs => rs.filter(r => r.scrollWidth > r.parentElement.clientWidth + 1).length"
    )
    assert clipped == 0
    footer = page.locator(".footer").bounding_box()
    assert footer["y"] + footer["height"] <= height + 0.5


def test_page_keeps_updating_across_a_broker_restart(display, stations, new_page, mosquitto):
    st = stations("bench-1")
    st.tremor(1.5)
    page = new_page(display.url)
    expect(tile(page, "bench-1").locator(".ratio")).to_have_text("1.5x")
    expect(page.locator("#link")).to_have_text("Live")
    page.evaluate("window.__sameDocument = true")

    mosquitto.stop()
    expect(page.locator("#link")).to_have_text("Broker offline \u2014 retrying")
    mosquitto.start()

    # QoS 0 tremor is dropped while the station is still reconnecting: repeat it.
    ratio = tile(page, "bench-1").locator(".ratio")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and ratio.text_content() != "3.3x":
        st.tremor(3.3)
        page.wait_for_timeout(200)
    expect(ratio).to_have_text("3.3x", timeout=1000)
    expect(page.locator("#link")).to_have_text("Live")
    assert page.evaluate("window.__sameDocument") is True  # never reloaded


def test_page_reconnects_to_a_restarted_display(display_factory, stations, new_page):
    first = display_factory()
    port = first.port
    st = stations("bench-1")
    st.tremor(1.5)
    page = new_page(first.url)
    expect(tile(page, "bench-1").locator(".ratio")).to_have_text("1.5x")
    page.evaluate("window.__sameDocument = true")

    first.stop()
    expect(page.locator("#link")).to_contain_text("reconnecting")
    second = display_factory(http_port=port)
    st.tremor(2.5)  # retained state comes back with the snapshot; this is new data
    expect(page.locator("#link")).to_have_text("Live", timeout=10000)
    expect(tile(page, "bench-1").locator(".ratio")).to_have_text("2.5x")
    assert second.url == first.url
    assert page.evaluate("window.__sameDocument") is True


# --------------------------------------------------------------------------- service, no browser


def test_service_process_prints_url_serves_and_stops_on_sigterm(mosquitto, tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor.display",
            "--mqtt-port",
            str(mosquitto.port),
            "--http-host",
            "127.0.0.1",
            "--http-port",
            "0",
            "--stale-after",
            "5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        deadline = time.monotonic() + 5
        state = {}
        while time.monotonic() < deadline and not state.get("link_up"):
            state = json.loads(urllib.request.urlopen(url + "api/state").read())
            time.sleep(0.05)
        assert state["link_up"] and state["stale_after"] == 5.0
        with urllib.request.urlopen(url) as reply:
            assert b"Not a medical device" in reply.read()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=8) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_unreadable_password_file_is_one_clear_line(tmp_path, capsys):
    missing = tmp_path / "nope.txt"
    assert main(["--username", "display", "--password-file", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--password-file" in err and "nope.txt" in err


def test_options_become_a_config_and_bad_ones_are_named(tmp_path):
    from monitor.display.service import build_parser, config_from_args
    from monitor.errors import ConfigError

    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    config = config_from_args(
        build_parser().parse_args(
            [
                "--mqtt-host",
                "broker.lan",
                "--username",
                "display",
                "--password-file",
                str(secret),
                "--prefix",
                "site/gym/",
                "--http-port",
                "0",
                "--stale-after",
                "12.5",
            ]
        )
    )
    assert (config.mqtt_host, config.username, config.password) == (
        "broker.lan",
        "display",
        "s3cret",
    )
    assert (config.prefix, config.http_port, config.stale_after) == ("site/gym", 0, 12.5)
    assert config.http_host == "127.0.0.1" and "s3cret" not in repr(config)
    for argv, key in (
        [["--http-port", "70000"], "--http-port"],
        [["--prefix", "gym/#"], "--prefix"],
        [["--stale-after", "0"], "--stale-after"],
        [["--password-file", str(secret)], "--username"],
        [["--tls-ca", str(tmp_path / "none.pem")], "--tls-ca"],
    ):
        with pytest.raises(ConfigError) as err:
            config_from_args(build_parser().parse_args(argv))
        assert err.value.key == key
