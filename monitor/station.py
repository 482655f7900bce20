"""One station, wired together: sensors -> analysis -> session -> alerts -> outputs.

This is the only module that knows every part. A :class:`Station` owns the
sensor slots (drivers that survive faults), one analysis per IMU, the
session, the scale and the check-in desk; :meth:`Station.step` is one
acquisition cycle (acquire, analyse, judge) and returns a :class:`StepResult`,
the cycle's whole record, which the outputs (the console, MQTT, Home
Assistant, the LEDs) read without reaching back into the station::

    station = Station(config, bus=bus, clock=clock)
    station.open()
    while running:
        result = station.step()
        clock.sleep(station.poll_interval)

Commands go the other way, through :meth:`Station.submit`, and run inside the
next step on the station's own thread.

The same code runs on a Pi (smbus2, the real clock) and on the simulator
(SimBus, SimClock), which is how the tests and the demo run it.
"""

from __future__ import annotations

import functools
import logging
import queue
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .alerts import AlertConfig, AlertManager, AlertRules, Inputs
from .analysis.activity import SensorStatus
from .analysis.fall import FallDetector, FallEvent
from .analysis.hydration import HydrationStatus, make_tracker
from .analysis.pipeline import AnalysisConfig, SensorAnalysis
from .analysis.session import STARTED, SessionConfig, SessionEvent, SessionStatus, SessionTracker
from .athletes.desk import CheckInDesk
from .athletes.identity import GymSecret
from .clock import Clock, RealClock
from .config import Config
from .errors import ErrorLog
from .i2c import SampleBlock
from .i2c.calibration import CalibrationError, CalibrationStore, ScaleCalibration
from .i2c.nau7802 import ScaleReading
from .mqtt.messages import DEFAULT_GRADES, AlertEvent, CheckIn, Grades, SessionRecord
from .sensors import ImuSlot, NfcSlot, ScaleSlot, SensorFault, open_nfc, open_slots

log = logging.getLogger(__name__)

#: datasheet accelerometer noise, per-axis RMS over 2 to 20 Hz, in mg
NOISE_FLOOR_MG = {"mpu6050": 1.7, "mpu6500": 1.3, "lsm6ds": 0.4}


@dataclass(frozen=True)
class SensorReport:
    """What one IMU did in one step, and how it is doing.

    ``statuses`` are the analysis windows this step finished; ``status`` is the
    newest there is (of this step or an earlier one); ``rate`` the samples per
    second over the last few seconds.
    """

    name: str
    samples: int
    lost: int
    latest: tuple[float, float, float] | None
    fault: SensorFault | None
    statuses: tuple[SensorStatus, ...] = ()
    status: SensorStatus | None = None
    rate: float = 0.0


@dataclass(frozen=True)
class StepResult:
    """One cycle, whole: everything the outputs need, so that none reaches back into the station.

    ``t`` is the station's clock and ``wall`` the Unix time of the same moment
    (:meth:`to_wall` turns any station time into Unix time). ``scale`` is the
    reading this step made, ``last_scale`` the newest there is. ``alerts`` are
    the alert events of this step; ``active`` and ``silenced`` the alerts
    active after it and the acknowledged ones whose condition still holds,
    each the most urgent first. ``grades`` are the tremor grades in force (a
    coach's for the athlete checked in, else the station's). ``athlete`` is
    who is checked in now, ``checkin`` the same when it changed in this step
    (to publish); ``records`` the records of sessions that ended;
    ``session_events`` the starts and ends of sessions in this step.
    """

    t: float
    sensors: tuple[SensorReport, ...]
    scale: ScaleReading | None
    scale_fault: SensorFault | None
    session: SessionStatus | None
    events: tuple[tuple[str, object], ...] = ()
    alerts: tuple[AlertEvent, ...] = ()
    falls: tuple[tuple[str, FallEvent], ...] = ()
    wall: float = 0.0
    session_events: tuple[SessionEvent, ...] = ()
    hydration: HydrationStatus | None = None
    last_scale: ScaleReading | None = None
    active: tuple[AlertEvent, ...] = ()
    silenced: tuple[AlertEvent, ...] = ()
    grades: Grades = DEFAULT_GRADES
    athlete: CheckIn | None = None
    checkin: CheckIn | None = None
    records: tuple[SessionRecord, ...] = ()
    tapped: bool = False  # a tag was read: the panel beeps

    def to_wall(self, t: float | None) -> float | None:
        """A time on the station's clock (``t``, ``started`` ...) as Unix time."""
        return None if t is None else self.wall - (self.t - t)


@dataclass
class _Analysed:
    """What a step's analysis found, on its way into the step's record."""

    reports: list[SensorReport] = field(default_factory=list)
    falls: list[tuple[str, FallEvent]] = field(default_factory=list)
    events: list[tuple[str, object]] = field(default_factory=list)
    session: SessionStatus | None = None


class CommandFailed(Exception):
    """A command could not be carried out; the message says why, for the reply."""


class _ScaleAverage:
    """Averages the scale's next ``samples`` raw readings without stopping acquisition.

    Taring by blocking for a second would let a 1 kHz IMU's FIFO overflow, so
    the station keeps stepping and feeds this its readings instead.
    """

    def __init__(self, samples: int, done: Callable[[float], Any], future: Future, deadline: float):
        self.samples, self.done, self.future, self.deadline = samples, done, future, deadline
        self.raw: list[int] = []

    def add(self, raw: int) -> bool:
        self.raw.append(raw)
        if len(self.raw) < self.samples:
            return False
        try:
            self.future.set_result(self.done(sum(self.raw) / len(self.raw)))
        except Exception as err:  # becomes the command's error reply
            self.future.set_exception(err)
        return True


class _Rate:
    """Samples per second over the last few seconds, for people to read."""

    def __init__(self, span_s: float = 2.0):
        self.span = span_s
        self._hist: deque[tuple[float, int]] = deque()

    def add(self, t: float, n: int) -> None:
        self._hist.append((t, n))
        while self._hist and t - self._hist[0][0] > self.span:
            self._hist.popleft()

    @property
    def per_second(self) -> float:
        if len(self._hist) < 2:
            return 0.0
        dt = self._hist[-1][0] - self._hist[0][0]
        return sum(n for _, n in list(self._hist)[1:]) / dt if dt > 0 else 0.0


class Station:
    """See the module docstring."""

    def __init__(
        self,
        config: Config,
        *,
        bus,
        clock: Clock | None = None,
        analysis: AnalysisConfig | None = None,
        session: SessionConfig | None = None,
        alerts: AlertConfig | None = None,
        secret: GymSecret | None = None,
    ):
        self.config = config
        self.bus = bus
        self.clock = clock or RealClock()
        self.analysis_config = analysis or config.analysis
        self._exercised = {i.name: i.exercised for i in config.imus}
        self.session = SessionTracker(session or config.session, exercised=self._exercised)
        self.imus: list[ImuSlot] = []
        self.scale: ScaleSlot | None = None
        self.nfc: NfcSlot | None = None
        self.analyses: dict[str, SensorAnalysis] = {}
        self.rates: dict[str, _Rate] = {i.name: _Rate() for i in config.imus}
        self.latest: dict[str, SensorStatus] = {}
        self.last_scale: ScaleReading | None = None
        self.last_session: SessionStatus | None = None
        self._alert_config = alerts or config.alerts
        self.rules = AlertRules(self._alert_config, config.hydration)
        self.alerts = AlertManager(config.station.id, self._alert_config)
        # Falls are looked for on body-worn sensors only: a bench or limb sees other jolts.
        self.falls = {
            i.name: FallDetector(site=i.site) for i in config.imus if i.placement == "body"
        }
        self._lost: dict[str, deque[tuple[float, int]]] = {i.name: deque() for i in config.imus}
        self.hydration_tracker = (
            make_tracker(config.scale.mode, config.hydration) if config.scale else None
        )
        self.hydration: HydrationStatus | None = None
        self._session_events: list[SessionEvent] = []  # this step's starts and ends
        self._commands: queue.Queue[tuple[Callable[[], Any], Future]] = queue.Queue(maxsize=64)
        self._scale_op: _ScaleAverage | None = None
        self.extra_events: list[AlertEvent] = []  # alert events made by commands (acknowledgements)
        self.store = CalibrationStore(config.station.state_dir) if config.scale else None
        # Who is training: check-in and out, their profile, a record of each session.
        self.athletes = CheckInDesk(self, config.athletes, secret)
        self._athlete_errors = ErrorLog(log)  # a fault there must never stop the sensors

    # -- lifecycle -----------------------------------------------------------
    def open(self, calibration: ScaleCalibration | None = None) -> None:
        """Find the sensors. A missing one is reported as a fault and retried, not fatal.

        The scale's calibration is ``calibration`` if given, else the one saved in
        the state directory; a corrupt file is reported and the scale runs
        uncalibrated (raw counts) until it is calibrated again.
        """
        if calibration is None and self.store is not None:
            try:
                calibration = self.store.load("scale")
            except CalibrationError as err:
                log.error("%s", err)
            except OSError as err:
                log.warning("cannot read the scale calibration: %s", err)
        self.imus, self.scale = open_slots(self.config, self.bus, self.clock, calibration)
        self.nfc = open_nfc(self.config, self.bus, self.clock)
        if self.nfc is not None:
            self.nfc.get()
        # The scale first: its power-up and calibration take about a second, longer
        # than an IMU's FIFO lasts once it is running.
        if self.scale is not None:
            self.scale.get()
        for slot in self.imus:
            slot.get()

    @property
    def sensors_found(self) -> bool:
        return all(s.driver is not None for s in self.imus) and (
            self.scale is None or self.scale.driver is not None
        )

    @property
    def poll_interval(self) -> float:
        intervals = [s.driver.poll_interval for s in self.imus if s.driver is not None]
        return min(intervals, default=0.1)

    def close(self) -> None:
        for slot in [*self.imus, *[s for s in (self.scale, self.nfc) if s is not None]]:
            if slot.driver is not None:
                slot.driver.close()

    # -- commands ------------------------------------------------------------
    def start_session(self, athlete: str | None = None) -> bool:
        """Start a session; True if one started, False if one was already running (nothing changes).

        With ``athlete`` (an athlete id) that athlete checks in, and whoever was in
        checks out first. Starting twice, or stopping twice, is no mistake: a second
        press of the button or a repeated MQTT command leaves the session as the first left it.
        """
        return self.athletes.command("start", athlete)

    def stop_session(self, athlete: str | None = None) -> bool:
        """Stop the session (whoever is checked in checks out); True if one stopped, False if
        none was running. With ``athlete``, only if that athlete is the one checked in."""
        return self.athletes.command("stop", athlete)

    def press_button(self) -> bool:
        """The panel's short press: whoever is in checks out; with nobody in, a guest checks in."""
        return self.athletes.button()

    def reset_analyses(self) -> None:
        """Someone else is on the sensors: new analyses, learning afresh (nothing of the last
        person's baseline, sets or smoothed ratios), from the next block on."""
        self.analyses.clear()
        self.latest.clear()
        self.rules.forget_athlete()
        for slot in self.imus:
            if slot.driver is not None:
                self._analysis(slot)

    @property
    def grades(self) -> Grades:
        """The tremor grades in force: the analyses grade each window by them, the rules judge."""
        return self.rules.cfg.grades

    def use_grades(self, grades: Grades | None) -> None:
        """Grade by ``grades`` from now on (a coach's, from the athlete's profile); None: the
        station's own (``[alerts]``). The wall's level and the alerts change together."""
        base = self._alert_config
        self.rules.cfg = base if grades is None else base.with_grades(grades)

    # -- one cycle -----------------------------------------------------------
    def submit(self, action: Callable[[], Any]) -> Future:
        """Run ``action`` inside the next step, on the station's own thread; the Future has its
        result.

        Commands arrive on the MQTT client's thread, but the station's state is
        the loop's alone: this is the one door between them.
        """
        future: Future = Future()
        try:
            self._commands.put_nowait((action, future))
        except queue.Full:
            future.set_exception(CommandFailed("the station is busy; try again"))
        return future

    def tare(self) -> Future:
        """Zero the scale from its next readings (nothing on it). Done without pausing the IMUs."""

        def done(mean: float) -> ScaleCalibration:
            cal, scale = self._cal(), self.config.scale
            return self._set_calibration(
                ScaleCalibration(
                    mean,
                    None if cal is None else cal.counts_per_gram,
                    gain=scale.gain if scale is not None else ScaleCalibration.gain,
                    created=self.clock.wall(),
                )
            )

        return self._scale_average(done)

    def calibrate(self, mass_g: float) -> Future:
        """Counts per gram from ``mass_g`` now on the (tared) scale."""

        def done(mean: float) -> ScaleCalibration:
            cal = self._cal()
            if cal is None:
                raise CommandFailed("tare the scale empty first")
            per_gram = (mean - cal.offset_counts) / mass_g
            if abs(per_gram) < 1e-6:
                raise CommandFailed(
                    f"the scale did not change with {mass_g:g} g on it: is the mass on the scale?"
                )
            return self._set_calibration(
                replace(cal, counts_per_gram=per_gram, created=self.clock.wall())
            )

        return self._scale_average(done)

    def _cal(self) -> ScaleCalibration | None:
        driver = self.scale.driver if self.scale is not None else None
        return driver.calibration if driver is not None else None

    def _scale_average(self, done: Callable[[float], Any], samples: int = 10) -> Future:
        future: Future = Future()
        scale = self.config.scale
        if self.scale is None or self.scale.driver is None or scale is None:
            future.set_exception(CommandFailed("this station has no working scale"))
        elif self._scale_op is not None:
            future.set_exception(CommandFailed("the scale is already being tared or calibrated"))
        else:
            timeout = samples / scale.rate_sps * 3 + 2
            self._scale_op = _ScaleAverage(samples, done, future, self.clock.now() + timeout)
        return future

    def _set_calibration(self, cal: ScaleCalibration) -> ScaleCalibration:
        driver = self.scale.driver if self.scale is not None else None
        if driver is None:
            raise CommandFailed("the scale stopped answering")
        driver.calibration = cal
        if self.hydration_tracker is not None:
            self.hydration_tracker.calibration_changed()
        if self.store is not None:
            try:
                self.store.save("scale", cal)
            except OSError as err:  # the calibration works now; it will not survive a restart
                log.error("cannot save the scale calibration to %s: %s", self.store, err)
        return cal

    def _run_commands(self) -> None:
        while True:
            try:
                action, future = self._commands.get_nowait()
            except queue.Empty:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = action()
            except Exception as err:  # reported to whoever sent the command
                future.set_exception(err)
                continue
            if isinstance(result, Future):  # a scale operation: finished by later steps
                result.add_done_callback(functools.partial(_chain, target=future))
            else:
                future.set_result(result)

    def step(self) -> StepResult:
        """One cycle: the commands and the tag that came in, then acquire, analyse, judge."""
        self._run_commands()
        self._read_tag()
        now, wall = self.clock.now(), self.clock.wall()
        blocks, reading = self._acquire(now)
        analysed = self._analyse(now, blocks, reading)
        alerts = self._judge(now, wall, analysed.falls)
        return self._result(now, wall, analysed, reading, alerts)

    def _read_tag(self) -> None:
        if self.nfc is None:
            return
        try:
            tap = self.nfc.read()  # a few milliseconds at most
            if tap is not None:
                self.athletes.tap(tap)
        except Exception:
            self._athlete_errors("reading a tag")

    # -- acquire -------------------------------------------------------------
    def _acquire(self, now: float) -> tuple[dict[str, SampleBlock | None], ScaleReading | None]:
        """Every IMU's new samples, then the scale's reading (which a tare may be waiting for)."""
        blocks = {slot.name: slot.read() for slot in self.imus}
        reading = self.scale.read() if self.scale is not None else None
        if self._scale_op is not None:
            if reading is not None and self._scale_op.add(reading.raw):
                self._scale_op = None
            elif now > self._scale_op.deadline:
                self._scale_op.future.set_exception(
                    CommandFailed("the scale gave no readings in time")
                )
                self._scale_op = None
        return blocks, reading

    # -- analyse -------------------------------------------------------------
    def _analyse(
        self, now: float, blocks: Mapping[str, SampleBlock | None], reading: ScaleReading | None
    ) -> _Analysed:
        """Each IMU's windows and falls, the scale's figures, then the session over them all."""
        out = _Analysed()
        for slot in self.imus:
            report, found = self._analyse_imu(slot, blocks[slot.name], now)
            out.reports.append(report)
            out.falls += found
            for status in report.statuses:
                out.events.extend(status.events)
        if reading is not None:
            self.last_scale = reading
            if self.hydration_tracker is not None:
                self.hydration_tracker.feed(reading.t, reading.mass_g)
        self._follow(self.session.take_events())  # asked for: a check-in, the button, a command
        out.session = self.session.update(now, self.latest) if self.latest else None
        self._follow(self.session.take_events())  # made by the session: its first set, its end
        self.last_session = out.session or self.last_session
        if self.hydration_tracker is not None:
            self.hydration = self.hydration_tracker.status(now)
        return out

    def _analyse_imu(
        self, slot: ImuSlot, block: SampleBlock | None, now: float
    ) -> tuple[SensorReport, list[tuple[str, FallEvent]]]:
        statuses: tuple[SensorStatus, ...] = ()
        falls: list[tuple[str, FallEvent]] = []
        latest = None
        n = lost = 0
        if block is not None:
            lost = block.lost  # a block may be all loss: a FIFO reset after a stall
        if block is not None and len(block):
            n = len(block)
            latest = (
                float(block.accel[-1][0]),
                float(block.accel[-1][1]),
                float(block.accel[-1][2]),
            )
            if slot.name in self.falls:
                falls = [(slot.name, e) for e in self.falls[slot.name].feed(block.t, block.accel)]
            analysis = self._analysis(slot)
            statuses = tuple(analysis.feed(block.t, block.accel, block.lost, self.grades))
            if statuses:
                self.latest[slot.name] = statuses[-1]
        rate = self.rates[slot.name]
        rate.add(now, n)
        lost_hist = self._lost[slot.name]
        if lost:
            lost_hist.append((now, lost))
        while lost_hist and now - lost_hist[0][0] > 60:
            lost_hist.popleft()
        report = SensorReport(
            slot.name,
            n,
            lost,
            latest,
            slot.fault,
            statuses,
            status=self.latest.get(slot.name),
            rate=rate.per_second,
        )
        return report, falls

    def _follow(self, events: list[SessionEvent]) -> None:
        """A session started or ended: everything here that follows sessions hears it at once."""
        for event in events:
            if event.kind == STARTED and not event.auto:
                # A session someone started counts sets afresh: the sets in hand, and the
                # statuses made before it, are the last session's. (A session its first set
                # started keeps that set; the session counts from it.)
                for a in self.analyses.values():
                    a.activity.forget_sets()
                self.latest = {
                    name: replace(st, set_count=0, last_set=None)
                    for name, st in self.latest.items()
                }
            tracker = self.hydration_tracker
            if tracker is not None:  # intake is counted per session
                if event.kind == STARTED:
                    tracker.start_session(event.t)
                else:
                    tracker.end_session(event.t)
            self._session_events.append(event)

    # -- judge ---------------------------------------------------------------
    def _judge(
        self, now: float, wall: float, falls: list[tuple[str, FallEvent]]
    ) -> list[AlertEvent]:
        """The alert rules over this step's figures; the events they and the commands made."""
        faults: dict[str, SensorFault | None] = {s.name: s.fault for s in self.imus}
        if self.scale is not None:
            faults["scale"] = self.scale.fault
        if self.nfc is not None:
            faults["nfc"] = self.nfc.fault
        inputs = Inputs(
            t=now,
            sensors=self.latest,
            exercised=self._exercised,
            session=self.last_session,
            faults=faults,
            lost_per_min={name: sum(n for _, n in h) for name, h in self._lost.items()},
            falls=tuple(falls),
            hydration=self.hydration,
        )
        alerts = self.extra_events + self.alerts.update(self.rules.evaluate(inputs), now, wall)
        self.extra_events = []
        return alerts

    # -- the record ----------------------------------------------------------
    def _result(
        self,
        now: float,
        wall: float,
        analysed: _Analysed,
        reading: ScaleReading | None,
        alerts: list[AlertEvent],
    ) -> StepResult:
        session_events, self._session_events = self._session_events, []
        try:
            self.athletes.after_step(now, analysed.reports, alerts, session_events)
        except Exception:
            self._athlete_errors("following who is checked in")
        taken = self.athletes.take()
        return StepResult(
            now,
            tuple(analysed.reports),
            reading,
            self.scale.fault if self.scale else None,
            analysed.session,
            tuple(analysed.events),
            tuple(alerts),
            tuple(analysed.falls),
            wall=wall,
            session_events=tuple(session_events),
            hydration=self.hydration,
            last_scale=self.last_scale,
            active=tuple(self.alerts.active()),
            silenced=tuple(self.alerts.silenced()),
            grades=self.grades,
            athlete=self.athletes.state,
            checkin=taken.checkin,
            records=taken.records,
            tapped=taken.tapped,
        )

    def acknowledge(self, alert_id: str, by: str = "staff") -> AlertEvent | None:
        """Acknowledge an active alert; the event goes out with the next step's alerts.

        Acknowledging an alert that is already acknowledged (a second press, a
        re-sent command) returns that acknowledgement and changes nothing; an
        unknown or cleared id returns None.
        """
        event = self.alerts.acknowledge(alert_id, self.clock.now(), self.clock.wall(), by)
        if event is not None:
            self.extra_events.append(event)
            return event
        return self.alerts.acknowledged_event(alert_id)

    def restore_alerts(self, snapshot: dict, grace_s: float) -> int:
        """Take back the alerts an earlier process saved (see AlertManager.restore)."""
        return self.alerts.restore(snapshot, self.clock.now(), self.clock.wall(), grace_s)

    def _analysis(self, slot: ImuSlot) -> SensorAnalysis:
        analysis = self.analyses.get(slot.name)
        fs = float(slot.driver.rate_hz) if slot.driver is not None else slot.config.rate_hz
        if analysis is None or analysis.stream.fs_in != fs:
            analysis = SensorAnalysis(
                slot.name,
                fs,
                noise_floor_mg=NOISE_FLOOR_MG.get(slot.config.chip, 1.7),
                config=self.analysis_config,
                placement=slot.config.placement,
            )
            self.analyses[slot.name] = analysis
        return analysis


def _chain(source: Future, target: Future) -> None:
    err = source.exception()
    if err is not None:
        target.set_exception(err)
    else:
        target.set_result(source.result())


def latest_accel_text(values: tuple[float, float, float] | None) -> str:
    """An accelerometer reading for a console line, or dashes."""
    if values is None:
        return "(  --    --    --  )"
    return "(" + " ".join(f"{v:+6.2f}" for v in np.asarray(values)) + ")"
