"""The status panel on gpiozero's own mock pins (its documented way to test without a Pi).

A mock output pin records every change in ``pin.states`` as (seconds spent in
the previous state, new state); the button is pressed by driving its pin low,
as the real switch to ground does.
"""

from __future__ import annotations

import threading
import time

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from monitor.config import GpioConfig
from monitor.gpio import NullPanel, StatusPanel, open_panel

PINS = {"green": 17, "amber": 27, "red": 22, "buzzer": 23, "button": 24}
# The urgent pattern, shortened so a test sees two groups of beeps in a second.
FAST_BEEPS = {"beep_on": 0.05, "beep_off": 0.05, "beeps": 3, "beep_every": 0.6}
HOLD = 0.2


@pytest.fixture
def mock_factory():
    saved = Device.pin_factory
    Device.pin_factory = MockFactory()
    yield Device.pin_factory
    Device.pin_factory.reset()
    Device.pin_factory = saved


@pytest.fixture
def panel(mock_factory):
    with StatusPanel(hold_time=HOLD, **FAST_BEEPS) as p:
        yield p


def lamps(factory: MockFactory) -> dict[str, bool]:
    """What a person would see and hear, read from the pins themselves."""
    return {
        name: bool(factory.pin(PINS[name]).state) for name in ("green", "amber", "red", "buzzer")
    }


def rising_edges(pin) -> int:
    return sum(1 for s in pin.states[1:] if s.state)


@pytest.mark.parametrize(
    "level, lit",
    [
        ("ok", {"green"}),
        ("info", {"green"}),
        ("caution", {"amber"}),
        ("warning", {"amber"}),
        ("urgent", {"red"}),
        ("off", set()),
    ],
)
def test_each_level_lights_its_lamp_only(panel, mock_factory, level, lit):
    panel.show("ok" if level == "off" else "off")  # start from something else
    panel.show(level)
    shown = lamps(mock_factory)
    assert {name for name in ("green", "amber", "red") if shown[name]} == lit
    assert panel.level == ("ok" if level == "info" else level)


def test_unknown_level_is_refused(panel):
    with pytest.raises(ValueError, match="alarm"):
        panel.show("alarm")


def test_fault_blinks_amber(panel, mock_factory):
    panel.show("fault")
    amber = mock_factory.pin(PINS["amber"])
    time.sleep(1.2)
    assert rising_edges(amber) >= 2
    assert not lamps(mock_factory)["green"] and not lamps(mock_factory)["red"]
    panel.show("ok")
    assert lamps(mock_factory) == {"green": True, "amber": False, "red": False, "buzzer": False}


def test_urgent_beeps_in_groups_then_ok_stops_it(panel, mock_factory):
    buzzer = mock_factory.pin(PINS["buzzer"])
    panel.show("urgent")
    time.sleep(1.0)  # two groups: at 0 s and at 0.6 s
    panel.show("ok")
    assert not buzzer.state
    # Each rising edge records how long the buzzer was quiet before it:
    # short gaps inside a group of three, one long gap between groups.
    gaps = [s.timestamp for s in buzzer.states[1:] if s.state][1:]
    assert len(gaps) >= 5
    pattern = ["long" if g > 0.25 else "short" for g in gaps[:5]]
    assert pattern == ["short", "short", "long", "short", "short"]
    edges = rising_edges(buzzer)
    time.sleep(0.8)
    assert rising_edges(buzzer) == edges  # stopped for good, not just paused


def test_showing_urgent_every_step_does_not_restart_the_pattern(panel, mock_factory):
    buzzer = mock_factory.pin(PINS["buzzer"])
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:  # a station loop calling show() each step
        panel.show("urgent")
        time.sleep(0.01)
    panel.show("ok")
    # A restart on every call would beep continuously: more than two groups' worth.
    assert 4 <= rising_edges(buzzer) <= 6


def test_silenced_keeps_red_and_next_urgent_beeps_again(panel, mock_factory):
    buzzer = mock_factory.pin(PINS["buzzer"])
    panel.show("urgent")
    panel.show("silenced")  # staff acknowledged it while it still holds
    edges = rising_edges(buzzer)
    time.sleep(0.8)
    assert rising_edges(buzzer) == edges
    assert lamps(mock_factory)["red"] and not buzzer.state
    panel.show("warning")
    panel.show("urgent")  # a new urgent alert
    time.sleep(0.05)
    assert rising_edges(buzzer) > edges


def test_short_press_calls_the_session_action_once(panel, mock_factory):
    calls = {"short": 0, "long": 0}
    panel.on_short_press = lambda: calls.__setitem__("short", calls["short"] + 1)
    panel.on_long_press = lambda: calls.__setitem__("long", calls["long"] + 1)
    button = mock_factory.pin(PINS["button"])
    button.drive_low()
    button.drive_high()
    assert calls == {"short": 1, "long": 0}
    time.sleep(HOLD * 2)  # the hold timer must not fire after the release
    assert calls == {"short": 1, "long": 0}


def test_long_press_tares_and_does_not_toggle_the_session(panel, mock_factory):
    held = threading.Event()
    calls = {"short": 0, "long": 0}
    panel.on_short_press = lambda: calls.__setitem__("short", calls["short"] + 1)
    panel.on_long_press = lambda: (calls.__setitem__("long", calls["long"] + 1), held.set())
    button = mock_factory.pin(PINS["button"])
    button.drive_low()
    assert held.wait(2), "holding the button should tare while still held"
    button.drive_high()
    time.sleep(HOLD)
    assert calls == {"short": 0, "long": 1}


def test_release_after_hold_time_is_long_even_if_the_hold_thread_is_late(panel, mock_factory):
    # gpiozero fires when_held from a thread; under load the release can be
    # handled first. The press was still long: tare, not the session action.
    panel.button._fire_held = lambda: None  # the hold thread "has not run yet"
    calls = []
    panel.on_short_press = lambda: calls.append("short")
    panel.on_long_press = lambda: calls.append("long")
    button = mock_factory.pin(PINS["button"])
    button.drive_low()
    time.sleep(HOLD * 1.5)
    button.drive_high()
    assert calls == ["long"]


def test_hold_time_must_pass_before_a_long_press(panel, mock_factory):
    held = threading.Event()
    panel.on_long_press = held.set
    button = mock_factory.pin(PINS["button"])
    button.drive_low()
    assert not held.wait(HOLD / 2)
    assert held.wait(2)
    button.drive_high()


def test_a_failing_handler_does_not_break_the_button(panel, mock_factory):
    calls = []

    def broken():
        calls.append(1)
        raise RuntimeError("handler bug")

    panel.on_short_press = broken
    button = mock_factory.pin(PINS["button"])
    for _ in range(2):
        button.drive_low()
        button.drive_high()
    assert calls == [1, 1]


def test_close_turns_everything_off(mock_factory):
    panel = StatusPanel(hold_time=HOLD, **FAST_BEEPS)
    panel.show("urgent")
    time.sleep(0.02)  # mid-beep
    panel.close()
    assert panel.closed
    assert lamps(mock_factory) == dict.fromkeys(("green", "amber", "red", "buzzer"), False)
    panel.close()  # twice is fine


def test_close_during_fault_blink_leaves_amber_off(mock_factory):
    panel = StatusPanel()
    panel.show("fault")
    time.sleep(0.1)  # amber is on for the first half second
    panel.close()
    assert not mock_factory.pin(PINS["amber"]).state


def test_default_pins_are_the_documented_ones(panel, mock_factory):
    for name, number in PINS.items():
        assert getattr(panel, name).pin is mock_factory.pin(number), name
    assert panel.imu_int is None


def test_configured_pins_are_used(mock_factory):
    pins = {"green": 5, "amber": 6, "red": 13, "buzzer": 19, "button": 26, "imu_int": 4}
    with StatusPanel(**pins) as panel:
        for name, number in pins.items():
            assert getattr(panel, name).pin.info.name == f"GPIO{number}", name
        panel.show("ok")
        assert mock_factory.pin(5).state and not mock_factory.pin(17).state
        mock_factory.pin(4).drive_high()
        assert panel.imu_int.is_active


def test_pin_factory_can_be_passed_instead_of_set_globally():
    factory = MockFactory()
    with StatusPanel(pin_factory=factory) as panel:
        assert all(device.pin_factory is factory for device in panel)
        panel.show("caution")
        assert factory.pin(PINS["amber"]).state
    factory.reset()


def test_one_pin_for_two_parts_is_refused_and_nothing_is_left_reserved(mock_factory):
    with pytest.raises(ValueError, match="GPIO17"):
        StatusPanel(green=17, buzzer=17)
    with StatusPanel() as panel:  # every default pin is still free
        assert panel.green.pin is mock_factory.pin(17)


def test_null_panel_has_the_same_api(panel):
    null = NullPanel()
    for name in ("show", "beep", "close", "level", "on_short_press", "on_long_press", "imu_int"):
        assert hasattr(panel, name) and hasattr(null, name), name
    null.on_short_press = lambda: None
    null.on_long_press = lambda: None
    null.show("urgent")
    assert null.level == "urgent"
    null.beep()
    with pytest.raises(ValueError):
        null.show("red")
    assert null.imu_int is None
    null.close()
    assert null.closed and null.level == "off"


def test_open_panel_follows_the_config(mock_factory):
    assert isinstance(open_panel(None), NullPanel)
    assert isinstance(open_panel(GpioConfig(enabled=False)), NullPanel)
    gpio = GpioConfig(
        enabled=True,
        green_pin=5,
        amber_pin=6,
        red_pin=13,
        buzzer_pin=19,
        button_pin=26,
        imu_int_pin=0,
        long_press_s=1.5,
    )
    with open_panel(gpio) as panel:
        assert isinstance(panel, StatusPanel)
        assert panel.button.hold_time == 1.5
        assert panel.imu_int is None  # 0: not wired
        for name, number in (
            ("green", 5),
            ("amber", 6),
            ("red", 13),
            ("buzzer", 19),
            ("button", 26),
        ):
            assert getattr(panel, name).pin is mock_factory.pin(number), name
    with open_panel(GpioConfig(enabled=True, imu_int_pin=4)) as panel:
        assert panel.imu_int.pin is mock_factory.pin(4)


def test_active_low_buzzer_is_silent_with_its_pin_high(mock_factory):
    with StatusPanel(buzzer_active_high=False, **FAST_BEEPS) as panel:
        buzzer = mock_factory.pin(PINS["buzzer"])
        assert buzzer.state and not panel.buzzer.is_active
        panel.show("urgent")
        # the beeps come from gpiozero's background thread: give it time on a busy machine
        deadline = time.monotonic() + 2.0
        while buzzer.state and time.monotonic() < deadline:
            time.sleep(0.005)
        assert not buzzer.state  # sounding
        panel.close()
        assert buzzer.state  # quiet again after close
