"""Who is training at a station: check-in, check-out, the profile, and a record of each session.

The :class:`CheckInDesk` belongs to a :class:`~monitor.station.Station` and runs
on its thread. People check in by a tag on the reader (:meth:`tap`), the
panel's button (:meth:`button`: an anonymous guest) or ``cmd/session`` with an
athlete id (:meth:`command`, from the wall display or Home Assistant)::

    desk.tap(tap)                     # in: a new athlete; the same tag again: out
    desk.button()                     # a guest in, or whoever is in out
    desk.command("start", "a3k7...")  # that athlete in (whoever was in goes out first)
    desk.after_step(now, reports, alerts, session_events)
    taken = desk.take()               # the check-in if it changed, records of ended sessions

**Whose baseline.** A check-in starts its own session on new analyses, so
nothing of the previous person (baseline, sets, a hold in progress, smoothed
ratios) grades the next: an unknown athlete learns a fresh baseline from their
own first rested windows. A known athlete's profile (``<prefix>/_athletes/<id>/
profile``, retained) is asked for at once; while it comes the check-in is
``pending``; it is ``applied`` when it arrives (each sensor starts from its
placement's baseline, as soon as its first window has shown the sensor's noise
floor, and the alert rules take a coach's thresholds), and ``fresh`` if none
came within ``profile_wait_s``. A profile that arrives later (the broker was
away) still seeds the sensors that have not learnt a baseline yet. The
baseline goes on following the athlete's rested windows (slowly, never their
fatigue: :mod:`monitor.analysis.activity`) and what it is at check-out goes
back to the history service in the record's ``profile_update``.

**How a session ends.** A second tap of the same tag (``tap``), the button
(``button``), ``cmd/session`` stop or checkout (``command``), another athlete
checking in (``superseded``: two athletes taking turns each get their own
session and record), no set begun within ``timeout_s`` of checking in
(``timeout``), the session's own end ``auto_end_s`` after its last set
(``auto``), or the station stopping (``shutdown``). A check-out puts the
analyses back to learning afresh, so whoever comes next is never graded
against the person who left.

**Nobody checked in.** A station nobody checks into (no reader, or people who
do not tap) keeps working as it always has: the first set starts an anonymous
session, and the baseline is the one learnt while the bench was at rest before
it, followed slowly between sessions (without a check-in the station cannot
tell one person from the next; the baseline learnt at rest just before a set
is the best it has). Such a session gets a record too (``athlete`` null,
``guest`` true). A plain ``cmd/session`` start without an athlete starts such
an anonymous session, as it always did.

Tag UIDs are hashed with the gym's secret at once (:mod:`.identity`); the raw
UID is logged at DEBUG only, never sent.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..analysis.activity import HOLD, REPS
from ..analysis.session import ENDED, STARTED, SessionEvent
from ..mqtt import messages as m
from .identity import GymSecret
from .record import SessionRecorder

if TYPE_CHECKING:
    from ..config import AthletesConfig
    from ..i2c.pn532 import Tap
    from ..station import SensorReport, Station

log = logging.getLogger(__name__)

#: ``fetch(athlete, deliver) -> cancel``: ask for the athlete's retained profile;
#: ``deliver(payload)`` is called (on any thread) with each payload that arrives;
#: ``cancel()`` stops asking.
ProfileFetch = Callable[[str, Callable[[bytes], None]], Callable[[], None]]


class CheckInRefused(ValueError):
    """A check-in or check-out command that cannot be carried out; the text says why."""


@dataclass(frozen=True)
class Taken:
    """What the desk hands the step: the check-in state if it changed (to publish), the records
    of sessions that ended, and whether a tag was tapped (the panel beeps)."""

    checkin: m.CheckIn | None
    records: tuple[m.SessionRecord, ...]
    tapped: bool


@dataclass
class CheckedIn:
    """The person checked in now. Times are the station's clock."""

    athlete: str | None  # None: a guest (the button)
    source: str  # "tag", "button" or "command"
    since: float
    since_wall: float
    profile: str  # "pending", "applied" or "fresh"
    wait_until: float
    seeds: dict[str, float] = field(default_factory=dict)  # sensor -> baseline not yet applied
    cancel: Callable[[], None] | None = None
    applied_at: float | None = None
    tag: str | None = None  # the id the tag gave (a second tap of it checks out)

    @property
    def guest(self) -> bool:
        return self.athlete is None


class CheckInDesk:
    """See the module docstring. ``secret`` turns tags into ids (None: tags are refused)."""

    def __init__(self, station: Station, config: AthletesConfig, secret: GymSecret | None):
        self.station = station
        self.cfg = config
        self.secret = secret
        self.current: CheckedIn | None = None
        self.recorder: SessionRecorder | None = None
        #: set by whoever talks to the broker (the uplink); None: profiles are never asked for
        self.fetch_profile: ProfileFetch | None = None
        self._records: list[m.SessionRecord] = []
        #: who is checked in now, as the retained ``athlete`` message says it
        self.state: m.CheckIn = self._checkin_message()
        self._announce: m.CheckIn | None = self.state  # "nobody", at start
        self._tapped = False
        self._warned_secret = False

    # -- ways in and out ------------------------------------------------------------------
    def tap(self, tap: Tap) -> str | None:
        """A tag on the reader: the athlete it belongs to checks in, or out if already in.
        Returns the athlete id (None for a tag that cannot identify anyone)."""
        self._tapped = True
        if tap.random_id:
            log.info(
                "a tag with a random id (a phone) was tapped: it cannot identify anyone; ignored"
            )
            return None
        if self.secret is None:
            if not self._warned_secret:
                log.error(
                    "a tag was tapped but no gym secret is configured ([athletes] secret_file)"
                )
                self._warned_secret = True
            return None
        athlete = self.secret.athlete_id(tap.uid)
        log.debug("tag %s is athlete %s", tap.uid_hex, athlete)
        if self._is_in(athlete):
            self.check_out("tap")
        else:
            self.check_in(athlete, "tag")
        return athlete

    def button(self) -> bool:
        """The panel's short press: whoever is in goes out; with nobody in, a guest comes in
        (a running anonymous session is stopped instead). True if someone came in."""
        if self.current is not None or self.station.session.active:
            self.check_out("button")
            return False
        self.check_in(None, "button")
        return True

    def command(self, action: str, athlete: str | None = None) -> bool:
        """``cmd/session``: "start" (with ``athlete``: check them in), "stop" or "checkout".
        True if something changed; a repeated command changes nothing (and is no error)."""
        if action == "start":
            if athlete is None:
                if self.station.session.active:
                    return False
                self._start(self.station.clock.now(), athlete=None, guest=True)
                return True
            if self._is_in(athlete):
                return False
            self.check_in(athlete, "command")
            return True
        if athlete is not None and not self._is_in(athlete):
            raise CheckInRefused(f"athlete {athlete} is not checked in at this station")
        if self.current is None and not self.station.session.active:
            return False
        self.check_out("command")
        return True

    def _is_in(self, athlete: str) -> bool:
        c = self.current
        return c is not None and athlete in (c.athlete, c.tag)

    def check_in(self, athlete: str | None, source: str) -> None:
        """``athlete`` (None: a guest) checks in; whoever was in before is checked out first."""
        st = self.station
        if self.current is not None or self.recorder is not None or st.session.active:
            self.check_out("superseded")
        now = st.clock.now()
        st.reset_analyses()
        st.use_grades(None)
        c = CheckedIn(
            athlete,
            source,
            now,
            st.clock.wall(),
            "fresh",
            now + self.cfg.profile_wait_s,
            tag=athlete,
        )
        self.current = c
        if athlete is not None and self.fetch_profile is not None:
            c.profile = "pending"

            def deliver(payload: bytes, c: CheckedIn = c) -> None:
                st.submit(lambda: self.profile_arrived(c, payload))

            try:
                c.cancel = self.fetch_profile(athlete, deliver)
            except Exception:  # the athlete trains with a fresh baseline rather than not at all
                log.exception("could not ask for the profile of %s", athlete)
                c.profile = "fresh"
        self._start(now, athlete=athlete, guest=athlete is None)
        self._announce_state()
        log.info(
            "%s checked in by %s at %s (profile %s)",
            athlete or "a guest",
            source,
            st.config.station.id,
            c.profile,
        )

    def check_out(self, reason: str) -> m.SessionRecord | None:
        """End the session of whoever is in (or the anonymous one running) for ``reason``."""
        st = self.station
        c = self.current
        record = None
        if self.recorder is not None or st.session.active:
            if c is not None:
                for analysis in st.analyses.values():
                    analysis.activity.finish()  # the set or hold under way ends with the session
            now = st.clock.now()
            st.session.stop(now)
            record = self._finish(reason, now, checked_in=c is not None)
        if c is not None:
            if c.cancel is not None:
                c.cancel()
            self.current = None
            st.reset_analyses()  # whoever comes next learns afresh
            st.use_grades(None)
            self._announce_state()
            log.info(
                "%s checked out at %s (%s)", c.athlete or "a guest", st.config.station.id, reason
            )
        return record

    def shutdown(self) -> m.SessionRecord | None:
        """The station stops: the session under way ends with a record ("shutdown")."""
        return self.check_out("shutdown")

    # -- the profile ------------------------------------------------------------------------
    def profile_arrived(self, checkin: CheckedIn, payload: bytes) -> None:
        """The retained profile of ``checkin``'s athlete (on the station's thread)."""
        if checkin is not self.current:
            return  # that check-in is over
        if not payload:
            # Deleted while they train: the athlete was forgotten (the history service clears
            # the retained profile). The rest of the session is a guest's, recorded as one.
            self._forget(checkin)
            return
        try:
            profile = m.Profile.from_json(payload)
        except m.MessageError as err:
            log.warning("ignored the profile of %s: %s", checkin.athlete, err)
            self._profile_state("fresh")
            return
        if profile.athlete != checkin.athlete:
            log.warning("ignored a profile of %s sent for %s", profile.athlete, checkin.athlete)
            return
        placements = {i.name: i.placement for i in self.station.config.imus}
        checkin.seeds = {
            sensor: float(profile.baselines_mg[m.Placement(placement)])
            for sensor, placement in placements.items()
            if placement in profile.baselines_mg
        }
        self.station.use_grades(profile.thresholds)
        checkin.applied_at = self.station.clock.now()
        self._apply_seeds()
        self._profile_state("applied")

    def _forget(self, checkin: CheckedIn) -> None:
        if checkin.athlete is None:
            return
        log.info(
            "%s was forgotten while checked in: the session goes on as a guest's", checkin.athlete
        )
        checkin.athlete = None
        checkin.seeds = {}
        checkin.profile = "fresh"
        self.station.use_grades(None)
        if self.recorder is not None:
            self.recorder.athlete, self.recorder.guest = None, True
        self._announce_state()

    def _apply_seeds(self) -> None:
        c = self.current
        if c is None or not c.seeds:
            return
        for sensor, mg in list(c.seeds.items()):
            analysis = self.station.analyses.get(sensor)
            # After its first window: the sensor's noise floor is known, and bounds the seed.
            if analysis is None or analysis.last is None:
                continue
            if analysis.baseline_mg is None:  # a baseline learnt already today stays
                analysis.use_baseline(mg)
                log.debug("%s starts from the profile's %.2f mg", sensor, mg)
            del c.seeds[sensor]

    def _profile_state(self, state: str) -> None:
        c = self.current
        if c is not None and c.profile != state:
            c.profile = state
            self._announce_state()
            log.info("profile of %s: %s", c.athlete, state)

    # -- every step ----------------------------------------------------------------------
    def after_step(
        self,
        now: float,
        reports: Iterable[SensorReport],
        alerts: Iterable[m.AlertEvent],
        session_events: Iterable[SessionEvent] = (),
    ) -> None:
        """Follow the step just made: statuses and alerts into the record, seeds into new
        analyses, the profile's wait, the timeout, and the sessions that began or ended by
        themselves (``session_events``: the step's starts and ends)."""
        st = self.station
        self._apply_seeds()
        c = self.current
        if c is not None and c.profile == "pending" and now >= c.wait_until:
            self._profile_state("fresh")
        made = [e for e in session_events if e.auto]
        if self.recorder is not None:
            for report in reports:
                for status in report.statuses:
                    self.recorder.observe(status, self._wall(status.t))
            self.recorder.alerts(alerts)
            ended = next((e for e in made if e.kind == ENDED), None)
            if ended is not None:
                # The session ended by itself, auto_end_s after its last set.
                self._finish(
                    "auto" if self._any_sets() else "timeout", ended.t, checked_in=c is not None
                )
                if c is not None:
                    self.current = None
                    st.reset_analyses()
                    st.use_grades(None)
                    self._announce_state()
                    log.info(
                        "%s checked out at %s (the session ended)",
                        c.athlete or "a guest",
                        st.config.station.id,
                    )
                return
        started = next((e for e in made if e.kind == STARTED), None)
        if c is not None and now - c.since >= self.cfg.timeout_s and not self._any_sets():
            log.info(
                "%s checked in %.0f s ago and has not started a set",
                c.athlete or "a guest",
                now - c.since,
            )
            self.check_out("timeout")
        elif self.recorder is None and started is not None and st.session.active:
            # The first set started a session by itself: nobody checked in.
            self._start(started.t, athlete=None, guest=True, already=True)

    def take(self) -> Taken:
        """What changed since the last call: the check-in state to publish (if it changed),
        the records of sessions that ended, whether a tag was tapped."""
        out = Taken(self._announce, tuple(self._records), self._tapped)
        self._announce, self._records, self._tapped = None, [], False
        return out

    def announce_again(self) -> None:
        """Publish the check-in state again with the next step (a restarted uplink)."""
        self._announce_state()

    def _announce_state(self) -> None:
        """Who is checked in changed: the new state, to publish with the next step."""
        self.state = self._announce = self._checkin_message()

    # -- sessions ---------------------------------------------------------------------------
    def _start(self, t: float, *, athlete: str | None, guest: bool, already: bool = False) -> None:
        st = self.station
        if not already:
            st.session.start(t)
        placements = {i.name: i.placement for i in st.config.imus}
        self.recorder = SessionRecorder(
            st.config.station.id,
            started=t,
            started_wall=self._wall(t),
            athlete=athlete,
            guest=guest,
            placements=placements,
        )

    def _finish(self, reason: str, ended: float, *, checked_in: bool) -> m.SessionRecord | None:
        rec, self.recorder = self.recorder, None
        if rec is None:
            return None
        st = self.station
        sets = {
            name: [s for s in a.activity.sets if s.end >= rec.started - 1e-6]
            for name, a in st.analyses.items()
        }
        try:
            record = rec.record(
                ended_wall=self._wall(ended),
                reason=reason,
                sets=sets,
                to_wall=self._wall,
                hydration=self._hydration(),
                profile_update=self._profile_update() if checked_in else None,
                now_wall=st.clock.wall(),
            )
        except m.MessageError:  # a bug: the session's figures are lost, the station goes on
            log.exception("could not build the record of session %s", rec.id)
            return None
        self._records.append(record)
        log.info(
            "session %s ended (%s): %d set(s), %d alert(s)",
            record.id,
            reason,
            len(record.sets),
            len(record.alerts),
        )
        return record

    def _any_sets(self) -> bool:
        analyses = self.station.analyses.values()
        return any(a.activity.set_count or a.activity.state in (REPS, HOLD) for a in analyses)

    def _hydration(self) -> m.RecordHydration | None:
        st = self.station
        cfg = st.config.scale
        if cfg is None:
            return None
        h = st.hydration
        tracker = st.hydration_tracker
        weigh_ins = []
        if cfg.mode == "body" and tracker is not None:
            for phase in m.WeighInPhase:
                w = getattr(tracker, phase.value, None)
                if w is not None:
                    weigh_ins.append(
                        m.WeighInEntry(phase=phase, mass_g=w.mass_g, ts=self._wall(w.t))
                    )
        return m.RecordHydration(
            mode=m.HydrationMode(cfg.mode),
            intake_ml=h.intake_ml if h is not None else None,
            weigh_ins=tuple(weigh_ins),
            sweat_rate_l_per_h=h.sweat_rate_l_per_h if h is not None else None,
            body_mass_loss_pct=h.body_mass_loss_pct if h is not None else None,
        )

    def _profile_update(self) -> m.ProfileUpdate | None:
        """The athlete's rested baseline per placement as it is now, and their body mass."""
        c = self.current
        if c is None or c.athlete is None:
            return None
        st = self.station
        by_placement: dict[str, list[tuple[bool, float]]] = {}
        for imu in st.config.imus:
            analysis = st.analyses.get(imu.name)
            mg = analysis.baseline_mg if analysis is not None else None
            if mg is not None and mg > 0:
                by_placement.setdefault(imu.placement, []).append((imu.exercised, mg))
        baselines = {}
        for placement, values in by_placement.items():
            worked = [mg for exercised, mg in values if exercised] or [mg for _, mg in values]
            baselines[placement] = statistics.median(worked)
        mass = None
        tracker = st.hydration_tracker
        if st.config.scale is not None and st.config.scale.mode == "body" and tracker is not None:
            last = getattr(tracker, "post", None) or getattr(tracker, "pre", None)
            mass = last.mass_g if last is not None else None
        if not baselines and mass is None:
            return None
        return m.ProfileUpdate(
            baselines_mg={m.Placement(p): mg for p, mg in baselines.items()}, body_mass_g=mass
        )

    # -- helpers --------------------------------------------------------------------------
    def _wall(self, t: float) -> float:
        clock = self.station.clock
        return clock.wall() - (clock.now() - t)

    def _checkin_message(self) -> m.CheckIn:
        st = self.station
        c = self.current
        if c is None:
            return m.CheckIn(station=st.config.station.id, ts=st.clock.wall(), athlete=None)
        return m.CheckIn(
            station=st.config.station.id,
            ts=st.clock.wall(),
            athlete=c.athlete,
            guest=c.guest,
            since_ts=c.since_wall,
            source=m.CheckinSource(c.source),
            profile=m.ProfileState(c.profile),
        )
