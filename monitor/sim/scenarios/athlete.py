"""Athlete motion: a session timeline that the simulated IMUs sample.

A :class:`Scenario` is written like a workout card, one call per block, and is then
itself the *motion source* a simulated chip samples::

    from monitor.sim.scenarios import Scenario

    s = (Scenario(seed=1, placement="limb")
         .rest(120)
         .reps(10, sets=4, rep_hz=0.5, load=0.7, rest=90)
         .rest(90)
         .hold(45)
         .recovery(300))
    imu = Mpu6050Sim(s, clock=clock)      # samples s.accel(t) and s.gyro(t)
    s.duration                            # 905.0 s
    s.truth.sets[0]                       # SetTruth(start=120.0, end=140.0, kind='reps', ...)
    hz, mg = s.truth.tremor_at([60.0])    # what the sensor really sees at t = 60 s

What the accelerometer reads is the sum of

* gravity's reaction, 1 g along the body's "up" turned into the sensor frame by a fixed
  ``orientation`` (random from the seed unless given);
* tremor: a physiological component at ``tremor_hz`` (8.5-11 Hz) and a fatigue
  component at ``fatigue_hz`` (5-6.5 Hz), each three close sinusoids in different
  directions, so the tremor waxes and wanes and wanders in direction like the real
  thing, with an RMS set by the fatigue state below;
* voluntary motion during reps: 0.3-0.7 g at the rep frequency with a little 2nd and
  3rd harmonic, and the jerk at every turn that real reps have, ringing at 2-16 Hz
  (see :mod:`~monitor.sim.scenarios.kinetics`); postural sway below 0.6 Hz at rest
  (a few mg);
* walking and jogging (:meth:`Scenario.walk`, :meth:`Scenario.jog`): foot strikes,
  the body's bounce and the swing of the limb, as the real recordings show them;
* disturbances that are not the athlete: dropped weights, a treadmill next door (see
  :mod:`~monitor.sim.scenarios.disturbances`), and a fall.

The fatigue state grows during sets (faster in holds, where the 4-7 Hz component
takes over) and fades in rest with ``recovery_tau``, continuously across blocks; a
*persistent* recovery (the red flag) does not fade. The model and its numbers are in
:mod:`~monitor.sim.scenarios.timeline`.

A sensor's :class:`Placement` scales what reaches it: a limb-worn sensor sees tremor
directly, a bench clip sees it attenuated (x0.15 by default) but feels the floor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .disturbances import DropSpec, FallSpec, TreadmillSpec
from .evaluation import EVEN_WEIGHTS, REP_HARMONICS, TREMOR_WEIGHTS, CompiledMotion, Lines, Piece
from .kinetics import Gait, StandingSpec, TurnsSpec, gait_columns
from .placement import UPRIGHT, Placement, Posture, rotation_matrix
from .sources import G0, MG, OverlayTrack, Timed, as_times, unit
from .timeline import (
    HOLD_Q_GAIN,
    HOLD_Q_TAU,
    HOLD_TAU,
    LYING_TREMOR_GAIN,
    Q_REST,
    REPS_Q_GAIN,
    REPS_TAU,
    SWAY_MG,
    Block,
    approach,
    value_at,
)
from .truth import Event, Segment, SetTruth, TremorEnvelope, TremorTruth

__all__ = ["Placement", "Scenario"]


class Scenario:
    """An athlete's session as a motion source, built block by block.

    Blocks follow one another from t = 0; every builder method returns the scenario, so
    calls chain. Disturbances (:meth:`drop`, :meth:`treadmill`) are placed at an
    absolute time ``at`` or, by default, at the current end of the timeline::

        s = (Scenario(seed=7, placement="bench")
             .rest(60)
             .reps(8, load=0.8).drop()           # the athlete drops the dumbbells
             .rest(90)
             .treadmill(300, at=30))             # someone runs next door from t = 30 s
        s.accel(np.arange(0, 10, 0.001))         # (10000, 3) m/s^2, gravity included
        s.gyro(np.arange(0, 10, 0.001))          # (10000, 3) rad/s
        s.truth.disturbances[0].hz               # (2.8, 5.6, 8.4, ...)

    ``seed`` fixes every random choice (orientation, tremor frequencies and phases, rep
    directions, disturbance details); the same seed and the same calls give the same
    signal, and evaluation is a pure function of time: any chunking of ``t`` gives the
    same samples. Times before 0 read as the first block, times past :attr:`duration`
    continue the last one. ``t`` must be non-decreasing, as a chip's clock is.

    ``tremor_mg`` is the rested tremor RMS at the body (10 mg is typical, visible from
    about 7 mg); ``tremor_hz``/``fatigue_hz`` fix the component frequencies (drawn in
    8.5-11 and 5-6.5 Hz otherwise); ``recovery_tau`` is how fast fatigue fades in rest;
    ``max_fatigue`` the tremor multiplier that maximal effort approaches (about 10 after
    two minutes, Lippold 1981); ``peak_g`` the voluntary acceleration of a rep.
    """

    def __init__(
        self,
        seed: int | Sequence[int] = 0,
        *,
        placement: str | Placement = "limb",
        orientation: str | ArrayLike = "random",
        tremor_mg: float = 10.0,
        tremor_hz: float | None = None,
        fatigue_hz: float | None = None,
        recovery_tau: float = 120.0,
        max_fatigue: float = 10.0,
        peak_g: float = 0.5,
        name: str = "",
    ):
        if tremor_mg < 0 or recovery_tau <= 0 or max_fatigue < 1 or peak_g < 0:
            raise ValueError("tremor_mg >= 0, recovery_tau > 0, max_fatigue >= 1, peak_g >= 0")
        self.seed = seed
        self.name = name
        self.placement = Placement.named(placement)
        self.tremor_mg = float(tremor_mg)
        self.recovery_tau = float(recovery_tau)
        self.max_fatigue = float(max_fatigue)
        self.peak_g = float(peak_g)
        rng = np.random.default_rng(seed)
        self._rng = rng
        # Draw everything, used or not, so one option never shifts the others' values.
        self.orientation = rotation_matrix(orientation, rng.normal(size=4))
        self.orientation.flags.writeable = False  # the truth hands it out
        drawn_hz, drawn_fatigue = rng.uniform(8.5, 11.0), rng.uniform(5.0, 6.5)
        self.tremor_hz = drawn_hz if tremor_hz is None else float(tremor_hz)
        self.fatigue_hz = drawn_fatigue if fatigue_hz is None else float(fatigue_hz)
        spread = rng.uniform(0.25, 0.4, 2)
        self._physiological = Lines.draw(
            rng, self.tremor_hz + spread[0] * np.array([-1.0, 0.0, 1.0]), TREMOR_WEIGHTS
        )
        self._fatigue = Lines.draw(
            rng, self.fatigue_hz + spread[1] * np.array([-1.0, 0.0, 1.0]), TREMOR_WEIGHTS
        )
        self._sway = Lines.draw(rng, rng.uniform(0.1, 0.6, 3), EVEN_WEIGHTS)
        self._ambient = Lines.draw(rng, rng.uniform(20.0, 24.0, 3), EVEN_WEIGHTS)

        self._blocks: list[Block] = []
        self._segments: list[Segment] = []
        self._sets: list[SetTruth] = []
        self._events: list[Event] = []
        self._specs: list[DropSpec | TreadmillSpec | FallSpec | StandingSpec | TurnsSpec] = []
        self._end = 0.0
        self._p, self._q = 1.0, Q_REST
        self._posture = UPRIGHT
        self._compiled: CompiledMotion | None = None
        self._companion: Scenario | None = None
        self._companion_options: dict[str, Any] = {"coupling": 0.0}

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return (
            f"<Scenario{label} seed={self.seed!r} placement={self.placement.name!r} "
            f"duration={self._end:g}s blocks={len(self._blocks)}>"
        )

    # -- the source interface -------------------------------------------------------

    @property
    def duration(self) -> float:
        """Seconds from 0 to the end of the last block."""
        return self._end

    @property
    def truth(self) -> TremorTruth:
        return self._tables().truth

    def accel(self, t: ArrayLike) -> np.ndarray:
        """Specific force in the sensor frame, gravity included: (N, 3) m/s^2."""
        return self._tables().evaluate(as_times(t), "accel")

    def gyro(self, t: ArrayLike) -> np.ndarray:
        """Rotation rate in the sensor frame: (N, 3) rad/s (zero where nothing turns)."""
        return self._tables().evaluate(as_times(t), "gyro")

    # -- the timeline -----------------------------------------------------------------

    def rest(self, seconds: float) -> Scenario:
        """Rest between sets: tremor relaxes toward baseline with ``recovery_tau``."""
        return self._relax("rest", seconds, persistent=False)

    def recovery(self, seconds: float, *, persistent: bool = False) -> Scenario:
        """Cool-down after the session. ``persistent=True`` is the red flag: the tremor
        does not fade but stays at the level the session left it."""
        return self._relax("recovery", seconds, persistent=persistent)

    def reps(
        self,
        reps: int = 10,
        *,
        sets: int = 1,
        rep_hz: float = 0.5,
        load: float = 0.7,
        rest: float = 90.0,
        peak_g: float | None = None,
    ) -> Scenario:
        """``sets`` sets of ``reps`` reps at ``rep_hz``, ``rest`` seconds apart.

        ``load`` is the fraction of one-rep max (0..1]; it sets how high tremor climbs.
        Each set moves along its own, mostly vertical, direction and turns the limb about
        a horizontal axis through about 100 degrees per rep (the gyro sees it).
        """
        if reps < 1 or sets < 1 or not 0 < rep_hz <= 3 or not 0 < load <= 1:
            raise ValueError("reps >= 1, sets >= 1, 0 < rep_hz <= 3 and 0 < load <= 1")
        for n in range(sets):
            if n:
                self.rest(rest)
            self._one_set(
                int(reps),
                float(rep_hz),
                float(load),
                self.peak_g if peak_g is None else float(peak_g),
            )
        return self

    def stand(self, seconds: float) -> Scenario:
        """Standing quietly as people do: rest, with a shift of weight every 5-20 s (a sway
        of 20-80 mg one way and back, and the feet settling). Tremor relaxes as in rest."""
        start = self._end
        self._relax("rest", seconds, persistent=False)
        rng = np.random.default_rng([*np.atleast_1d(self.seed).tolist(), 13, len(self._blocks)])
        self._specs.append(StandingSpec(start, self._end, self._posture.up, rng))
        return self

    def walk(self, seconds: float, *, step_hz: float = 1.8) -> Scenario:
        """Walking (or stairs): foot strikes at ``step_hz``, the body's bounce, the limb's
        swing. Tremor relaxes as in rest. A bench clip does not walk."""
        return self._gait(Gait.walking(step_hz), seconds)

    def jog(self, seconds: float, *, step_hz: float = 2.7) -> Scenario:
        """Jogging: harder strikes and a flight phase each step (``|a|`` near 0 g)."""
        return self._gait(Gait.jogging(step_hz), seconds)

    def _gait(self, gait: Gait, seconds: float) -> Scenario:
        if not self.placement.worn:
            raise ValueError("a bench-clipped sensor does not walk; use placement='limb' or 'body'")
        # drawn from their own stream: adding a walk never changes the rest of a scenario
        rng = np.random.default_rng([*np.atleast_1d(self.seed).tolist(), 11, len(self._blocks)])
        side = unit(np.cross(self._posture.up, rng.normal(size=3)))
        self._add(
            gait.name,
            seconds,
            1.0,
            self.recovery_tau,
            Q_REST,
            self.recovery_tau,
            gait=gait,
            move_dir=side,
        )
        return self

    def hold(self, seconds: float, *, load: float = 0.6) -> Scenario:
        """A static hold (plank, wall sit): no voluntary motion, fast fatigue, and the
        4-7 Hz component grows until it may dominate."""
        if not 0 < load <= 1:
            raise ValueError("load must be in (0, 1]")
        start = self._end
        ceiling = 1.0 + (self.max_fatigue - 1.0) * load
        self._add("hold", seconds, ceiling, HOLD_TAU, Q_REST + HOLD_Q_GAIN * load, HOLD_Q_TAU)
        self._sets.append(SetTruth(start, self._end, "hold", 0, 0.0, load))
        return self

    def fall(
        self,
        *,
        lying: float = 60.0,
        free_fall_s: float | None = None,
        impact_g: float | None = None,
    ) -> Scenario:
        """A fall or faint, then ``lying`` seconds still on the floor.

        Only a worn sensor falls with the athlete, so a bench placement refuses this.
        The timeline stays lying afterwards (later blocks keep the lying posture).
        """
        if not self.placement.worn:
            raise ValueError(
                "a bench-clipped sensor does not fall with the athlete; "
                "use placement='limb' or 'body'"
            )
        start = self._end
        spec = FallSpec.draw(
            self._rng, start, self._posture.up, free_fall_s=free_fall_s, impact_g=impact_g
        )
        self._specs.append(spec)
        self._add(
            "fall",
            spec.impact - start,
            1.0,
            self.recovery_tau,
            Q_REST,
            self.recovery_tau,
            segment=False,
        )
        self._posture = Posture(spec.up_after, LYING_TREMOR_GAIN, 0.1)
        self._add("lying", lying, 1.0, self.recovery_tau, Q_REST, self.recovery_tau, segment=False)
        settled = spec.impact + 0.3  # the impact rings for ~0.3 s
        self._segments += [Segment(start, settled, "fall"), Segment(settled, self._end, "lying")]
        self._events += [
            Event(start, "fall", duration=spec.impact - start),
            Event(spec.impact, "impact", value=spec.impact_g),
        ]
        return self

    # -- disturbances -------------------------------------------------------------------

    def drop(self, *, at: float | None = None, peak_g: float | None = None) -> Scenario:
        """A weight dropped on the floor nearby at ``at`` (default: now). ``peak_g`` is the
        jolt at a bench clip (0.3-1 g when drawn); worn sensors feel ``floor_gain`` of it."""
        at = self._end if at is None else float(at)
        spec = DropSpec.draw(self._rng, at, peak_g)
        self._specs.append(spec)
        self._events.append(Event(at, "drop", value=spec.peak_g, duration=0.25))
        self._changed()
        return self

    def treadmill(
        self,
        seconds: float,
        *,
        at: float | None = None,
        cadence_hz: float = 2.8,
        footfall_mg: float = 6.0,
        motor_hz: float = 25.0,
        motor_mg: float = 2.0,
    ) -> Scenario:
        """Someone runs on the next treadmill for ``seconds`` from ``at`` (default: now).

        Amplitudes are peak mg at a bench clip: footfalls at ``cadence_hz`` and five
        harmonics (decreasing from ``footfall_mg``), and the belt motor's hum.
        """
        at = self._end if at is None else float(at)
        if seconds <= 0:
            raise ValueError("seconds must be positive")
        spec = TreadmillSpec.draw(
            self._rng,
            at,
            at + seconds,
            cadence_hz=cadence_hz,
            footfall_mg=footfall_mg,
            motor_hz=motor_hz,
            motor_mg=motor_mg,
        )
        self._specs.append(spec)
        self._changed()
        return self

    # -- a second sensor on the same athlete -------------------------------------------

    def other_body_part(
        self,
        *,
        coupling: float = 0.0,
        seed: int | Sequence[int] | None = None,
        placement: str | Placement = "limb",
        orientation: str | ArrayLike = "random",
        tremor_mg: float | None = None,
    ) -> Scenario:
        """The source for a sensor on a body part that is *not* exercising.

        It follows the same session (segments, sets, falls, floor vibration) but never
        moves voluntarily. ``coupling`` says how much of the working part's fatigue
        tremor shows up there: 0 (normal) keeps it at baseline; 1 (red flag: tremor in
        a body part not being exercised) makes it rise and fall like the working part::

            arm = strength_session(seed=3)
            leg = arm.other_body_part(coupling=1.0)
        """
        if seed is None:
            seed = (*np.atleast_1d(self.seed).tolist(), 1)
        other = Scenario(
            seed,
            placement=placement,
            orientation=orientation,
            tremor_mg=self.tremor_mg if tremor_mg is None else tremor_mg,
            recovery_tau=self.recovery_tau,
            max_fatigue=self.max_fatigue,
            peak_g=self.peak_g,
            name=f"{self.name or 'scenario'}: other body part",
        )
        other._blocks = [b.unexercised(coupling) for b in self._blocks]
        other._segments = list(self._segments)
        other._sets = list(self._sets)
        other._events = list(self._events)
        other._specs = [spec for spec in self._specs if not isinstance(spec, TurnsSpec)]
        other._end = self._end
        other._p = 1.0 + coupling * (self._p - 1.0)
        other._q = Q_REST + coupling * (self._q - Q_REST)
        other._posture = self._posture
        return other

    @property
    def companion(self) -> Scenario:
        """A second sensor's source (see :meth:`with_companion`): by default another limb
        that only shows baseline tremor."""
        if self._companion is None:
            self._companion = self.other_body_part(**self._companion_options)
        return self._companion

    def with_companion(self, **options: Any) -> Scenario:
        """Set the options :attr:`companion` is built with (those of :meth:`other_body_part`)."""
        self._companion_options = dict(options)
        self._companion = None
        return self

    # -- internals ------------------------------------------------------------------------

    def _changed(self) -> None:
        self._compiled = None
        self._companion = None

    def _relax(self, kind: str, seconds: float, *, persistent: bool) -> Scenario:
        tau = math.inf if persistent else self.recovery_tau
        self._add(kind, seconds, 1.0, tau, Q_REST, tau)
        return self

    def _one_set(self, reps: int, rep_hz: float, load: float, peak_g: float) -> None:
        rng = self._rng
        move_dir = unit(self._posture.up + 0.5 * rng.normal(size=3))
        turn_axis = unit(np.cross(move_dir, rng.normal(size=3)))
        swing = rng.uniform(1.6, 2.0)  # radians per rep
        peak = peak_g * rng.uniform(0.9, 1.1)
        start = self._end
        ceiling = 1.0 + (self.max_fatigue - 1.0) * load
        self._add(
            "reps",
            reps / rep_hz,
            ceiling,
            REPS_TAU,
            Q_REST + REPS_Q_GAIN * load,
            REPS_TAU,
            rep_hz=rep_hz,
            peak_g=peak,
            move_dir=move_dir,
            turn_axis=turn_axis,
            turn_rate=swing * math.pi * rep_hz,
        )
        self._sets.append(SetTruth(start, self._end, "reps", reps, rep_hz, load))
        # The jerk at each turn, from a stream of its own: the rest of the scenario stays as drawn.
        jerk = np.random.default_rng([*np.atleast_1d(self.seed).tolist(), 7, len(self._sets)])
        voluntary = peak * math.sqrt(float(REP_HARMONICS @ REP_HARMONICS) / 2.0)
        self._specs.append(TurnsSpec.draw(jerk, start, rep_hz, reps, voluntary, move_dir))

    def _add(
        self,
        kind: str,
        seconds: float,
        p_target: float,
        p_tau: float,
        q_target: float,
        q_tau: float,
        *,
        segment: bool = True,
        **motion: Any,
    ) -> None:
        if not seconds > 0:
            raise ValueError(f"{kind}: seconds must be positive, not {seconds!r}")
        start, end = self._end, self._end + float(seconds)
        p = approach(self._p, p_target, p_tau)
        q = approach(self._q, q_target, q_tau)
        self._blocks.append(Block(kind, start, end, p, q, self._posture, **motion))
        self._p, self._q = value_at(p, end - start), value_at(q, end - start)
        self._end = end
        if segment:
            self._segments.append(Segment(start, end, kind))
        self._changed()

    def _tables(self) -> CompiledMotion:
        if self._compiled is None:
            self._compiled = self._compile()
        return self._compiled

    def _compile(self) -> CompiledMotion:
        if not self._blocks:
            raise ValueError("an empty scenario: add rest(), reps(), hold() ... first")
        pieces = []
        for i, block in enumerate(self._blocks):
            last = i == len(self._blocks) - 1
            pieces += self._pieces(block, clip=(i == 0), last=last)
        accel_items: list[Timed] = []
        gyro_items: list[Timed] = []
        disturbances = []
        rotation, floor = self.orientation, self.placement.floor_gain
        for spec in self._specs:
            if isinstance(spec, FallSpec):
                if self.placement.worn:
                    parts = spec.build(rotation)
                    accel_items += parts
                    gyro_items += parts
            elif isinstance(spec, StandingSpec):
                if self.placement.worn:  # the whole body sways: a worn sensor feels all of it
                    accel_items += spec.build(rotation, 1.0)
            elif isinstance(spec, TurnsSpec):
                if self.placement.motion_gain > 0:
                    accel_items += spec.build(rotation, self.placement.motion_gain)
            elif isinstance(spec, TreadmillSpec):
                accel_items.append(spec.build(rotation, floor))
                disturbances.append(spec.truth(floor))
            else:
                accel_items.append(spec.build(rotation, floor))
        amp = self._tremor_amplitudes()
        envelope = TremorEnvelope(
            starts=np.array([b.start for b in self._blocks]),
            a=np.array([[b.p[0], b.q[0]] for b in self._blocks]) * amp[:, None],
            b=np.array([[b.p[1], b.q[1]] for b in self._blocks]) * amp[:, None],
            k=np.array([[b.p[2], b.q[2]] for b in self._blocks]),
        )
        truth = TremorTruth(
            duration=self._end,
            placement=self.placement.name,
            orientation=self.orientation,
            tremor_hz=self.tremor_hz,
            fatigue_hz=self.fatigue_hz,
            baseline_mg=self.tremor_mg * self.placement.tremor_gain * math.hypot(1.0, Q_REST),
            segments=tuple(self._segments),
            sets=tuple(self._sets),
            events=tuple(sorted(self._events, key=lambda e: e.t)),
            disturbances=tuple(disturbances),
            envelope=envelope,
        )
        return CompiledMotion(
            pieces, OverlayTrack(accel_items, "accel"), OverlayTrack(gyro_items, "gyro"), truth
        )

    def _posture_of(self, block: Block) -> Posture:
        return block.posture if self.placement.worn else UPRIGHT

    def _tremor_amplitudes(self) -> np.ndarray:
        """Rested tremor RMS at this sensor for each block, mg."""
        gain = self.tremor_mg * self.placement.tremor_gain
        return np.array([gain * self._posture_of(b).tremor_gain for b in self._blocks])

    def _pieces(self, block: Block, *, clip: bool, last: bool) -> list[Piece]:
        """The block compiled; a fading block is cut where its fading has become
        negligible (below 1 micro-g), and the rest evaluated as steady, which is cheaper."""
        amp = self.tremor_mg * self.placement.tremor_gain * self._posture_of(block).tremor_gain
        settle = 0.0
        for _, b, k in (block.p, block.q):
            if b and k:
                settle = max(settle, math.log(max(abs(b) * amp / 1e-3, 1.0)) / k)
        whole = self._piece(block, clip=clip)
        if whole.steady or not (last or block.start + settle < block.end):
            return [whole]
        settled = replace(
            block,
            start=block.start + settle,
            p=(value_at(block.p, settle), 0.0, 0.0),
            q=(value_at(block.q, settle), 0.0, 0.0),
        )
        tail = self._piece(settled, clip=False)
        # The cut must not shift the reps' or the turn's phase: keep the block's origin.
        if block.peak_g > 0 or block.gait is not None:
            tail.cycles = whole.cycles
            tail.turn_cycles = whole.turn_cycles
        return [whole, tail]

    def _piece(self, block: Block, *, clip: bool) -> Piece:
        rotation, placement = self.orientation, self.placement
        posture = self._posture_of(block)
        parts = [self._physiological.columns(rotation, MG), self._fatigue.columns(rotation, MG)]
        sway_mg = SWAY_MG * placement.motion_gain * posture.sway_gain
        if sway_mg > 0:
            parts.append(self._sway.columns(rotation, sway_mg * MG))
        if block.peak_g > 0 and placement.motion_gain > 0 and block.move_dir is not None:
            hz = block.rep_hz * np.arange(1, 4)
            # The phase makes every set start at zero acceleration: no step at its edges.
            vectors = np.outer(REP_HARMONICS, rotation @ block.move_dir)
            parts.append(
                (hz, -hz * block.start, vectors * block.peak_g * G0 * placement.motion_gain)
            )
        if block.gait is not None and placement.worn and block.move_dir is not None:
            # feet strike the whole body: a worn sensor feels its gait in full
            parts.append(
                gait_columns(block.gait, rotation, posture.up, block.move_dir, block.start, 1.0)
            )
        if placement.ambient_mg > 0:
            parts.append(self._ambient.columns(rotation, placement.ambient_mg * MG))
        hz, cycles, vectors = (np.concatenate(column) for column in zip(*parts, strict=True))
        amp = self.tremor_mg * placement.tremor_gain * posture.tremor_gain
        a = amp * np.array([block.p[0], block.q[0]])
        b = amp * np.array([block.p[1], block.q[1]])
        k = np.array([block.p[2], block.q[2]])
        turn = None
        if block.turn_rate > 0 and placement.rotation_gain > 0 and block.turn_axis is not None:
            turn = (
                block.rep_hz,
                -block.rep_hz * block.start,
                block.turn_rate * placement.rotation_gain * (rotation @ block.turn_axis),
            )
        return Piece(
            block.start,
            hz,
            cycles,
            vectors,
            a,
            b,
            k,
            G0 * rotation @ posture.up,
            clip=clip,
            turn=turn,
        )
