"""Ghost alerts, unconfirmed acks, eviction and floods: real broker, service and Chromium.

What the wall shows must be what some station vouches for: an ack that the
station never confirms says so, a station that restarts and no longer holds
an alert takes it off the wall, an offline station's urgent alert stays but is
marked unconfirmed, silent stations leave, and a flood of made-up station ids
cannot hide a real station's urgent alert, even after the display restarts.
"""

from __future__ import annotations

import json
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.display import (
    ARTIFACTS,
    STAFF_NAME,
    AckListener,
    expect,
    login,
    tile,
    wait_active,
    wait_until,
)

# The fake stations, the service, Chromium and the broker, as fixtures.
pytest_plugins = ["tests.support.display"]


def test_an_ack_the_station_never_confirms_says_so(display_factory, stations, new_page, mosquitto):
    display = display_factory(ack_timeout_s=1.5)
    listener = AckListener(mosquitto)
    try:
        st = stations("bench-1")
        st.session(name="Bench 1")
        fall = st.alert(
            "fall-1",
            "urgent",
            "Possible fall or faint",
            red_flag=True,
            code="redflag.fall",
            advice="Go to the athlete now.",
        )
        st.active([fall])
        page = new_page(display.url)
        login(page)
        banner = page.locator(".banner")
        banner.locator("button.ack").click()
        assert listener.get()[1]["by"] == STAFF_NAME
        # Nobody answers (a station process that died without its will yet).
        expect(banner.locator("button.ack")).to_have_text("Sent, waiting\u2026")
        expect(banner.locator(".banner-note")).to_contain_text("waiting for the station")
        expect(banner.locator(".banner-note")).to_contain_text(
            "not confirmed: the station did not confirm within 1.5 s", timeout=5000
        )
        expect(banner.locator("button.ack")).to_have_text("Retry acknowledge")
        expect(banner).to_be_visible()  # the alert itself stays up
    finally:
        listener.close()


def test_a_restarted_station_takes_its_ghosts_off_the_wall(display, stations, new_page):
    st = stations("bench-1")
    st.session(name="Bench 1")
    fall = st.alert(
        "fall-1", "urgent", "Possible fall or faint", red_flag=True, code="redflag.fall"
    )
    st.active([fall])
    page = new_page(display.url)
    banner = page.locator(".banner")
    expect(banner).to_have_count(1)
    expect(banner).not_to_have_class("banner alert-urgent unconfirmed")

    st.offline()  # the station process is gone; its urgent alert must not vanish silently
    expect(banner).to_have_count(1)
    expect(banner.locator(".banner-note")).to_have_text("Station offline: not confirmed")
    expect(tile(page, "bench-1").locator(".alert.unconfirmed")).to_have_count(1)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "display-unconfirmed-alert.png"))

    # It comes back and republishes what it holds: nothing. The ghost goes.
    st.publish("status", "online", retain=True)
    expect(banner.locator(".banner-note")).to_contain_text("waiting for it to confirm")
    st.active([])
    expect(page.locator(".banner")).to_have_count(0)
    expect(tile(page, "bench-1").locator(".alert")).to_have_count(0)


def test_sensor_faults_do_not_look_like_physiology(display, stations, new_page):
    st = stations("bench-1")
    st.tremor(4.6)  # a red HIGH tile
    fault = st.alert(
        "f1",
        "warning",
        "Sensor wrist is not working (gone)",
        code="sensor.fault",
        advice="Check the wiring of the wrist sensor. Readings from it are "
        "missing until it is back; it is retried every second.",
    )
    overrun = st.alert(
        "o1",
        "caution",
        "Sensor wrist is losing samples (40 in the last minute)",
        code="sensor.overrun",
        advice="The station cannot keep up with the sensor: check the Pi's load "
        "and the I2C wiring.",
    )
    elevated = st.alert(
        "t1",
        "caution",
        "Tremor is elevated: 2.6x your rested level, which grows set after set in this session",
        code="tremor.elevated",
        advice="Rest a little longer between sets and drink some water.",
    )
    st.active([fault, overrun, elevated])
    page = new_page(display.url, 1280, 720)
    rows = tile(page, "bench-1").locator(".alert")
    expect(rows).to_have_count(2)  # two rows fit a tile; athletes' alerts come first
    expect(rows.nth(0).locator(".alert-level")).to_have_text("CAUTION")
    expect(rows.nth(1).locator(".alert-level")).to_have_text("SENSOR")
    expect(rows.nth(1)).to_have_class("alert alert-equipment")
    colours = rows.evaluate_all("rs => rs.map(r => getComputedStyle(r).backgroundColor)")
    assert colours[0] != colours[1]
    expect(tile(page, "bench-1")).to_have_class("tile lv-high alert-caution")
    # The header never says "no alerts" beside a red HIGH tile.
    summary = page.locator("#summary")
    expect(summary).to_contain_text("1 HIGH tremor")
    expect(summary).to_contain_text("1 active alert")
    expect(summary).to_contain_text("2 sensor problems")
    assert "no alerts" not in summary.text_content()
    st.active([])
    expect(summary).to_contain_text("1 HIGH tremor")
    assert "no alerts" not in summary.text_content()

    # The whole message shows (wrapped, not cut off); a click shows the advice too.
    st.active([elevated])
    msg = tile(page, "bench-1").locator(".alert-msg")
    expect(msg).to_have_text(elevated["message"])
    clipped = msg.evaluate(
        "m => m.scrollWidth > m.clientWidth + 1 || "
        "m.getBoundingClientRect().bottom > "
        "m.closest('.tile').getBoundingClientRect().bottom + 1"
    )
    assert clipped is False
    msg.click()
    dialog = page.locator("#alert-dialog")
    expect(dialog.locator("#alert-dialog-advice")).to_have_text(elevated["advice"])
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "display-alert-detail.png"))


def _flood(mosquitto, count: int, *, urgent_every: int = 0) -> None:
    """``count`` made-up station ids from one client (no status, nothing retained)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"flood-{uuid.uuid4().hex[:6]}")
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    try:
        for i in range(count):
            payload = {
                "v": 1,
                "ts": time.time(),
                "sensor": "wrist",
                "level": "high",
                "rms_mg": 50.0,
                "peak_hz": 8.0,
                "ratio": 6.0,
                "measurable": True,
            }
            client.publish(f"gym/fake-{i:04d}/tremor", json.dumps(payload), qos=0)
            if urgent_every and i % urgent_every == 0:
                client.publish(
                    f"gym/fake-{i:04d}/alert",
                    json.dumps(
                        {
                            "v": 1,
                            "id": f"x{i}",
                            "level": "urgent",
                            "code": "redflag.fall",
                            "message": "Fake fall",
                            "red_flag": True,
                        }
                    ),
                    qos=1,
                ).wait_for_publish(5)
        client.publish("gym/flood-done/ignored", b"", qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def test_a_flood_of_fake_ids_cannot_hide_a_real_urgent_alert(
    display_factory, stations, new_page, mosquitto
):
    config = {"max_stations": 12, "stations": ("listed-1",)}
    display = display_factory(**config)
    real = stations("real-1")  # retained status "online" (its will says offline)
    real.session(name="Real bench")
    fall = real.alert(
        "fall-1", "urgent", "Possible fall or faint", red_flag=True, code="redflag.fall"
    )
    real.active([fall])  # retained: the broker vouches for it after a restart too
    wait_active(display, "real-1", "fall-1")

    _flood(mosquitto, 400, urgent_every=40)
    wait_until(lambda: display.call(lambda: display.board.refused) > 350, 10, "the flood")
    page = new_page(display.url)
    expect(page.locator(".banner-station", has_text="Real bench")).to_have_count(1)
    expect(page.locator("#board-full")).to_be_visible()
    # A station the config lists still gets its place on the full board.
    listed = stations("listed-1")
    listed.tremor(1.3)
    expect(tile(page, "listed-1")).to_be_visible()

    # The display restarts while the flood goes on: the real station is still on the wall.
    port = display.port
    display.stop()
    again = display_factory(http_port=port, **config)
    _flood(mosquitto, 400, urgent_every=40)
    listed.tremor(1.4)
    page = new_page(again.url)
    expect(page.locator(".banner-station", has_text="Real bench")).to_have_count(1)
    expect(tile(page, "real-1")).to_be_visible()
    expect(tile(page, "listed-1")).to_be_visible()
    assert again.call(lambda: len(again.board.station_ids())) == 12
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "display-after-flood.png"))


def test_offline_silent_stations_leave_the_wall(display_factory, stations, new_page):
    display = display_factory(evict_after_s=1.0, stations=("listed-1",))
    gone = stations("gone-1")
    listed = stations("listed-1")
    gone.tremor(1.2)
    listed.tremor(1.3)
    page = new_page(display.url)
    expect(page.locator(".tile")).to_have_count(2)
    gone.offline()
    listed.offline()
    expect(tile(page, "gone-1")).to_have_count(0, timeout=6000)
    expect(tile(page, "listed-1")).to_be_visible()  # listed: it keeps its place
    gone.publish("status", "online", retain=True)  # back: simply shown again
    expect(tile(page, "gone-1")).to_be_visible()
