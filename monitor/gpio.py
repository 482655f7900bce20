"""The station's status panel: three LEDs, a buzzer and one button, via gpiozero.

Staff read a station from across the gym by its lights, and the athlete
drives it with one button:

=========  ==========================================================
green      all well (no alert above ``info``)
amber      a ``caution`` or ``warning`` alert is active; *blinking*
           amber means a sensor fault (the station cannot see)
red        an ``urgent`` alert is active; the buzzer beeps three
           times every ten seconds until the alert is acknowledged
           or cleared. Red without the buzzer (level ``silenced``):
           staff acknowledged an urgent alert whose condition still
           holds; if it still holds when the silence ends, the alert
           is raised again and the buzzer sounds again
button     short press: start / stop a session;
           hold for two seconds: tare the scale
=========  ==========================================================

The panel is a gpiozero :class:`~gpiozero.CompositeDevice` of gpiozero's own
devices (:class:`~gpiozero.TrafficLights`, :class:`~gpiozero.Buzzer`,
:class:`~gpiozero.Button`), and is tested with gpiozero's own mock pins::

    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    Device.pin_factory = MockFactory()        # on a Pi, leave this out
    panel = StatusPanel(green=17, amber=27, red=22, buzzer=23, button=24)
    panel.on_short_press = session.toggle
    panel.on_long_press = scale.tare
    panel.show("urgent")                      # red on, buzzer pattern starts
    panel.show("ok")                          # green on, buzzer stops
    panel.close()                             # everything off, pins released

:func:`open_panel` builds the panel a config's ``[gpio]`` table asks for; a
station configured without GPIO gets a :class:`NullPanel`, which has the same
API and touches no hardware.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Self

from gpiozero import Button, Buzzer, CompositeDevice, DigitalInputDevice, TrafficLights

from .config import GpioConfig
from .errors import ConfigError

log = logging.getLogger(__name__)

#: what :meth:`StatusPanel.show` accepts; ``info`` shows as ``ok`` (an info
#: alert is no reason to turn the green light off), so a station can pass the
#: level of its worst active alert straight in
LEVELS = ("off", "ok", "info", "caution", "warning", "urgent", "silenced", "fault")

#: the lamp each level lights (none for ``off``; ``fault`` blinks amber)
LAMP = {"ok": "green", "caution": "amber", "warning": "amber", "urgent": "red", "silenced": "red"}

Callback = Callable[[], Any]


def _check_level(level: str) -> str:
    if level not in LEVELS:
        raise ValueError(f"panel level must be one of {', '.join(LEVELS)}, not {level!r}")
    return "ok" if level == "info" else level


class StatusPanel(CompositeDevice):
    """Traffic lights, a buzzer and a button, as one gpiozero device.

    Pins are BCM numbers (``17`` is GPIO17, header pin 11). Every LED is
    wired from the pin through a resistor to ground; the button from the pin
    to ground (the Pi's internal pull-up holds it high until pressed)::

        panel = StatusPanel(green=17, amber=27, red=22, buzzer=23, button=24)
        panel.on_short_press = lambda: print("session start/stop")
        panel.on_long_press = lambda: print("tare")
        panel.show("caution")          # amber on
        panel.lights.green.is_lit      # False: each part is a gpiozero device
        panel.close()

    The children are :attr:`lights` (a :class:`~gpiozero.TrafficLights`; its
    LEDs are also :attr:`green`, :attr:`amber` and :attr:`red`), :attr:`buzzer`
    and :attr:`button`.

    A short press calls :attr:`on_short_press` on release. Holding the button
    for *hold_time* seconds calls :attr:`on_long_press` once, as soon as the
    time is up (the button still held: gpiozero's ``when_held``), and then not
    the short-press action on release. Handlers run in gpiozero's threads: keep
    them quick, or hand the work to the main loop.

    *imu_int*, if given, is exposed as :attr:`imu_int`, a
    :class:`~gpiozero.DigitalInputDevice` (active high, like the MPU-6050's
    INT pin by default) the station may wait on; it is :data:`None` when not
    wired.

    The buzzer pattern for ``urgent`` is *beeps* beeps of *beep_on* seconds
    separated by *beep_off* seconds, repeated every *beep_every* seconds.
    Set *buzzer_active_high* to :data:`False` for the buzzer modules that
    sound when their input is pulled low.
    """

    def __init__(
        self,
        *,
        green: int = 17,
        amber: int = 27,
        red: int = 22,
        buzzer: int = 23,
        button: int = 24,
        imu_int: int | None = None,
        hold_time: float = 2.0,
        bounce_time: float | None = 0.05,
        buzzer_active_high: bool = True,
        beep_on: float = 0.2,
        beep_off: float = 0.2,
        beeps: int = 3,
        beep_every: float = 10.0,
        pin_factory: Any = None,
    ):
        pins = {"green": green, "amber": amber, "red": red, "buzzer": buzzer, "button": button}
        if imu_int is not None:
            pins["imu_int"] = imu_int
        _check_distinct(pins)
        if hold_time <= 0:
            raise ValueError(f"hold_time must be more than 0 s, not {hold_time!r}")
        if beeps < 1 or beep_on <= 0 or beep_off <= 0 or beep_every < beeps * (beep_on + beep_off):
            raise ValueError("buzzer pattern: beeps x (beep_on + beep_off) must fit in beep_every")

        # The mutable state is set before CompositeDevice.__init__: gpiozero
        # freezes an instance's attribute names once construction finishes.
        self.on_short_press: Callback | None = None
        self.on_long_press: Callback | None = None
        self._lock = threading.RLock()
        self._level = "off"
        self._pattern = (beep_on, beep_off, beeps, beep_every)
        self._alarm: threading.Thread | None = None
        self._alarm_stop = threading.Event()
        self._press_state = "idle"  # idle -> pressed -> (held) -> idle
        self._pressed_at = 0.0

        devices = _build(
            pins,
            pin_factory=pin_factory,
            hold_time=hold_time,
            bounce_time=bounce_time,
            buzzer_active_high=buzzer_active_high,
        )
        super().__init__(_order=tuple(devices), pin_factory=pin_factory, **devices)
        btn = devices["button"]
        btn.when_pressed = self._pressed
        btn.when_held = self._held
        btn.when_released = self._released

    @classmethod
    def from_config(cls, gpio: GpioConfig, *, pin_factory: Any = None) -> StatusPanel:
        """Build from the config's ``[gpio]`` table::

            panel = StatusPanel.from_config(config.gpio)

        ``imu_int_pin = 0`` means the interrupt is not wired.
        """
        return cls(
            green=gpio.green_pin,
            amber=gpio.amber_pin,
            red=gpio.red_pin,
            buzzer=gpio.buzzer_pin,
            button=gpio.button_pin,
            imu_int=gpio.imu_int_pin or None,
            hold_time=gpio.long_press_s,
            buzzer_active_high=gpio.buzzer_active_high,
            pin_factory=pin_factory,
        )

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            # A CompositeDevice cannot hold None, so an unwired interrupt is
            # simply absent; answer None so callers need no hasattr dance.
            if name == "imu_int":
                return None
            raise

    @property
    def green(self) -> Any:
        """The green :class:`~gpiozero.LED` of :attr:`lights`."""
        return self.lights.green

    @property
    def amber(self) -> Any:
        """The amber :class:`~gpiozero.LED` of :attr:`lights`."""
        return self.lights.amber

    @property
    def red(self) -> Any:
        """The red :class:`~gpiozero.LED` of :attr:`lights`."""
        return self.lights.red

    # ------------------------------------------------------------------ lights

    @property
    def level(self) -> str:
        """The level last shown."""
        return self._level

    def show(self, level: str) -> None:
        """Show *level*: ``"ok"``, ``"caution"``, ``"warning"``, ``"urgent"``, ``"silenced"``
        (red, no buzzer), ``"fault"`` or ``"off"``.

        Call it as often as you like (every station step, say): only a change
        of level touches the outputs, so the buzzer pattern and the fault
        blink run on undisturbed::

            panel.show("fault")   # amber blinks: a sensor stopped answering
            panel.show("fault")   # nothing changes
        """
        level = _check_level(level)
        with self._lock:
            self._check_open()
            if level == self._level:
                return
            self._level = level
            self._stop_alarm()
            lit = LAMP.get(level)
            # TrafficLights' value is (red, amber, green); setting it stops a blink.
            self.lights.value = (lit == "red", lit == "amber", lit == "green")
            if level == "fault":
                self.amber.blink(on_time=0.5, off_time=0.5, background=True)
            elif level == "urgent":
                self._start_alarm()

    def beep(self, seconds: float = 0.08) -> None:
        """One short beep (a tag was read), unless the urgent pattern is sounding."""
        with self._lock:
            self._check_open()
            if self._alarm is None:
                self.buzzer.beep(on_time=seconds, off_time=0.01, n=1, background=True)

    def _start_alarm(self) -> None:
        self._alarm_stop.clear()
        self._alarm = threading.Thread(target=self._alarm_loop, name="panel-buzzer", daemon=True)
        self._alarm.start()

    def _alarm_loop(self) -> None:
        on, off, beeps, every = self._pattern
        # gpiozero beeps one group in its own thread; this loop only starts a
        # group every `every` seconds until told to stop.
        while True:
            self.buzzer.beep(on_time=on, off_time=off, n=beeps, background=True)
            if self._alarm_stop.wait(every):
                return

    def _stop_alarm(self) -> None:
        if self._alarm is not None:
            self._alarm_stop.set()
            self._alarm.join()
            self._alarm = None
        self.buzzer.off()  # also stops a group of beeps half way through

    # ------------------------------------------------------------------ button

    def _pressed(self) -> None:
        with self._lock:
            self._press_state = "pressed"
            self._pressed_at = self.button.pin_factory.ticks()

    def _held(self) -> None:
        with self._lock:
            if self._press_state != "pressed":
                return
            self._press_state = "held"
        self._call(self.on_long_press, "long press")

    def _released(self) -> None:
        with self._lock:
            state, self._press_state = self._press_state, "idle"
            if state != "pressed":
                return  # already handled as a long press (or a release without a press)
            factory = self.button.pin_factory
            held_for = factory.ticks_diff(factory.ticks(), self._pressed_at)
        # Released after hold_time but before gpiozero's hold thread got to
        # run: it was still a long press, and the hold thread will now not fire.
        if held_for >= self.button.hold_time:
            self._call(self.on_long_press, "long press")
        else:
            self._call(self.on_short_press, "short press")

    @staticmethod
    def _call(callback: Callback | None, what: str) -> None:
        if callback is None:
            return
        try:
            callback()
        except Exception:  # the button must keep working after a bad handler
            log.exception("the %s handler failed", what)

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Turn every output off, then release the pins. Safe to call twice.

        gpiozero's own close releases a pin without driving it low, which
        would leave a lamp (or the buzzer) on after the program ends.
        """
        lock = self.__dict__.get("_lock")
        if lock is None:  # construction failed before the devices existed
            super().close()
            return
        with lock:
            if getattr(self, "_all", None):
                self._stop_alarm()
                self.lights.off()
                self.buzzer.off()
                self._level = "off"
            super().close()


def _check_distinct(pins: dict[str, int]) -> None:
    seen: dict[int, str] = {}
    for role, pin in pins.items():
        if pin in seen:
            raise ValueError(f"the {seen[pin]} and the {role} are both on GPIO{pin}")
        seen[pin] = role


def _build(
    pins: dict[str, int],
    *,
    pin_factory: Any,
    hold_time: float,
    bounce_time: float | None,
    buzzer_active_high: bool,
) -> dict[str, Any]:
    """Construct the child devices; if one fails, release those already made."""
    makers: dict[str, Callable[[], Any]] = {
        "lights": lambda: TrafficLights(
            red=pins["red"], amber=pins["amber"], green=pins["green"], pin_factory=pin_factory
        ),
        "buzzer": lambda: Buzzer(
            pins["buzzer"], active_high=buzzer_active_high, pin_factory=pin_factory
        ),
        # The button switches to ground; debounce so contact chatter on
        # release is not read as a second press (which would stop the session).
        "button": lambda: Button(
            pins["button"],
            pull_up=True,
            bounce_time=bounce_time,
            hold_time=hold_time,
            pin_factory=pin_factory,
        ),
    }
    if "imu_int" in pins:
        makers["imu_int"] = lambda: DigitalInputDevice(
            pins["imu_int"], pull_up=False, pin_factory=pin_factory
        )
    made: dict[str, Any] = {}
    try:
        for role, make in makers.items():
            made[role] = make()
    except BaseException:
        for device in made.values():
            device.close()
        raise
    return made


class NullPanel:
    """A panel with no hardware, for stations configured without GPIO.

    It checks levels like :class:`StatusPanel` (so a typo fails in the
    simulator, not first on a Pi) and remembers the last one::

        panel = NullPanel()
        panel.show("warning")
        panel.level              # 'warning'
        panel.close()
    """

    imu_int = None

    def __init__(self) -> None:
        self.on_short_press: Callback | None = None
        self.on_long_press: Callback | None = None
        self._level = "off"
        self.closed = False

    @property
    def level(self) -> str:
        return self._level

    def show(self, level: str) -> None:
        self._level = _check_level(level)

    def beep(self, seconds: float = 0.08) -> None:
        pass

    def close(self) -> None:
        self._level = "off"
        self.closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_panel(
    gpio: GpioConfig | None, *, simulate: bool = False, pin_factory: Any = None
) -> StatusPanel | NullPanel:
    """The panel the config's ``[gpio]`` table asks for: a :class:`NullPanel` when it is absent
    or disabled, else a :class:`StatusPanel` on its pins::

        panel = open_panel(config.gpio, simulate=runner.simulate)

    A simulated station with no *pin_factory* given gets gpiozero's mock pins (it has no
    header either). No GPIO library, or a pin another program holds, is a
    :class:`~monitor.errors.ConfigError` naming the key.
    """
    if gpio is None or not gpio.enabled:
        return NullPanel()
    if pin_factory is None and simulate:
        from gpiozero.pins.mock import MockFactory

        pin_factory = MockFactory()
    from gpiozero.exc import BadPinFactory, GPIOPinInUse

    try:
        return StatusPanel.from_config(gpio, pin_factory=pin_factory)
    except BadPinFactory:
        raise ConfigError(
            "gpio.enabled",
            "no GPIO library found: install python3-lgpio, or set enabled = false "
            "on a machine without GPIO",
        ) from None
    except GPIOPinInUse as err:
        raise ConfigError("gpio", str(err)) from None
