"""The wall shows people: each tile names who is checked in (the card's name, else "guest") and
since when; logged-in staff pick an athlete for a station. The real display service, a real
Mosquitto, headless Chromium; stations and the history service are paho clients publishing
the payloads the station and the history service build (monitor.mqtt.messages).
"""

from __future__ import annotations

import json
import queue
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from monitor.clock import SimClock
from monitor.display.state import Board
from monitor.mqtt.messages import Card, CheckIn
from tests.support.display import HttpClient, expect, login, tile, wait_until

pytest_plugins = ["tests.support.display"]

SAM, JO = "asamsamsamsamsamsams", "m-jo"


def checkin(
    station: str,
    athlete: str | None,
    *,
    guest: bool = False,
    since: float | None = None,
    source: str | None = "tag",
) -> bytes:
    if athlete is None and not guest:
        return CheckIn(station=station, athlete=None, ts=time.time()).to_json()
    return CheckIn(
        station=station,
        athlete=athlete,
        guest=guest,
        since_ts=since or time.time(),
        source=source,
        profile="applied" if athlete else "fresh",
        ts=time.time(),
    ).to_json()


def card(athlete: str, name: str) -> bytes:
    return Card(athlete=athlete, display_name=name, ts=time.time()).to_json()


# --------------------------------------------------------------------------- the board


def test_the_board_names_the_athlete_from_the_card_and_keeps_names_off_the_public_view():
    board = Board("gym", clock=SimClock())
    board.handle("gym/bench-1/status", b"online")
    board.handle("gym/bench-1/athlete", checkin("bench-1", SAM, since=1000.0), retained=True)
    view = board.view("bench-1")["athlete"]
    assert view == {
        "name": None,
        "guest": False,
        "since_ts": 1000.0,
        "source": "tag",
        "profile": "applied",
    }
    assert board.handle(f"gym/_athletes/{SAM}/card", card(SAM, "Sam"), retained=True)
    assert board.handle(f"gym/_athletes/{JO}/card", card(JO, "Jo"), retained=True)
    assert board.view("bench-1")["athlete"]["name"] == "Sam"
    # Every card is for staff (the picker); the public view names only who is checked in,
    # and never carries the pseudonymous id.
    assert board.athletes() == [
        {"id": JO, "name": "Jo", "station": None},
        {"id": SAM, "name": "Sam", "station": "bench-1"},
    ]
    public = json.dumps(board.snapshot())
    assert "Sam" in public and "Jo" not in public and SAM not in public
    # A card that does not match its topic, or an id that is not one, changes nothing.
    board.handle(f"gym/_athletes/{SAM}/card", card(JO, "Mallory"))
    board.handle("gym/_athletes/a+b/card", card(JO, "Mallory"))
    board.handle(f"gym/_athletes/{SAM}/profile", b'{"v":1,"athlete":"x"}')
    assert board.view("bench-1")["athlete"]["name"] == "Sam" and board.ignored == 2
    # Forgotten (an empty retained card): a guest again. A guest, then nobody.
    board.handle(f"gym/_athletes/{SAM}/card", b"", retained=True)
    assert board.view("bench-1")["athlete"]["name"] is None
    board.handle("gym/bench-1/athlete", checkin("bench-1", None, guest=True, source="button"))
    assert board.view("bench-1")["athlete"]["guest"] is True
    board.handle("gym/bench-1/athlete", checkin("bench-1", None))
    assert board.view("bench-1")["athlete"] is None


# --------------------------------------------------------------------------- the page


class Broker:
    """A paho client as the history service: retained cards; and a listener on cmd/session."""

    def __init__(self, broker):
        self.commands: queue.Queue[dict] = queue.Queue()
        ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, *a: c.subscribe("gym/+/cmd/session", qos=1)
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = lambda c, u, m: self.commands.put(json.loads(m.payload))
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert ready.wait(5)

    def card(self, athlete: str, name: str | None) -> None:
        data = card(athlete, name) if name else b""
        self.client.publish(
            f"gym/_athletes/{athlete}/card", data, qos=1, retain=True
        ).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def local_time(page, ts: float) -> str:
    """HH:MM as the page writes it (the browser's own locale)."""
    return page.evaluate(
        "ts => new Date(ts * 1000).toLocaleTimeString([], {hour: '2-digit', minute: '2-digit'})", ts
    )


def test_the_tile_names_the_athlete_and_staff_check_one_in_from_the_picker(
    display, stations, new_page, mosquitto
):
    history = Broker(mosquitto)
    bench = stations("bench-1")
    bench.session(name="Bench 1", state="idle", set_count=0)
    since = time.time() - 120
    bench.publish(
        "athlete", checkin("bench-1", None, guest=True, since=since, source="button"), retain=True
    )
    page = new_page(display.url)
    t = tile(page, "bench-1")
    hhmm = local_time(page, since)
    expect(t.locator(".who")).to_have_text(f"guest \u00b7 checked in {hhmm}")
    expect(t.locator(".pick")).to_be_hidden()  # checking in is for staff
    # Sam taps in: no card yet, so "guest"; the history service names Sam, and the tile follows.
    bench.publish("athlete", checkin("bench-1", SAM, since=since), retain=True)
    history.card(SAM, "Sam")
    history.card(JO, "Jo")
    expect(t.locator(".who")).to_have_text(f"Sam \u00b7 checked in {hhmm}")
    # Staff pick Jo: the display sends cmd/session start with Jo's id, with its own user.
    login(page)
    expect(t.locator(".pick")).to_be_visible()
    t.locator(".pick").click()
    dialog = page.locator("#checkin-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#checkin-now")).to_contain_text("Checked in now: Sam")
    expect(dialog.locator(".checkin-athlete")).to_have_count(2)
    dialog.locator("#checkin-filter").fill("j")
    expect(dialog.locator(".checkin-athlete")).to_have_count(1)
    dialog.locator(".checkin-athlete", has_text="Jo").click()
    command = history.commands.get(timeout=5)
    assert command["action"] == "start" and command["athlete"] == JO and command["v"] == 1
    expect(dialog).to_be_hidden()
    # The station checks Jo in (superseding Sam): every screen shows Jo.
    now = time.time()
    bench.publish("athlete", checkin("bench-1", JO, since=now, source="command"), retain=True)
    expect(t.locator(".who")).to_have_text(f"Jo \u00b7 checked in {local_time(page, now)}")
    # ... and checks out whoever is in.
    t.locator(".pick").click()
    dialog.locator("#checkin-checkout").click()
    assert history.commands.get(timeout=5)["action"] == "checkout"
    bench.publish("athlete", checkin("bench-1", None), retain=True)
    expect(t.locator(".who")).to_have_text("")
    # Forgetting Jo takes the name off the wall.
    bench.publish("athlete", checkin("bench-1", JO, since=now), retain=True)
    expect(t.locator(".who")).to_contain_text("Jo")
    history.card(JO, None)
    expect(t.locator(".who")).to_contain_text("guest")
    history.close()


def test_the_picker_is_staff_only_csrf_protected_and_checks_its_input(display, stations, mosquitto):
    history = Broker(mosquitto)
    bench = stations("bench-1")
    bench.session(name="Bench 1", state="idle")
    history.card(SAM, "Sam")
    wait_until(lambda: display.call(display.board.knows_athlete, SAM), 5, "the card")
    http = HttpClient(display)
    assert http.request("GET", "/api/athletes")[0] == 401
    body = {"station": "bench-1", "athlete": SAM}
    assert http.request("POST", "/api/session", body)[0] == 401
    http.login()
    assert http.request("POST", "/api/session", body)[0] == 403  # no CSRF token
    csrf = {"X-CSRF-Token": http.csrf}
    status, _, data = http.request("GET", "/api/athletes")
    assert status == 200 and data["athletes"] == [{"id": SAM, "name": "Sam", "station": None}]
    for bad, code in [
        ({"station": "bench-1", "athlete": "Not An Id"}, 400),
        ({"station": "bench-1"}, 400),
        ({"station": "bench-1", "action": "checkout", "athlete": SAM}, 400),
        ({"station": "nowhere", "athlete": SAM}, 404),
        ({"station": "bench-1", "athlete": "m-nobody"}, 404),
    ]:
        assert http.request("POST", "/api/session", bad, csrf)[0] == code, bad
    assert history.commands.empty()
    status, _, data = http.request("POST", "/api/session", body, csrf)
    assert status == 202 and data["ok"]
    assert history.commands.get(timeout=5)["athlete"] == SAM
    http.close()
    history.close()
