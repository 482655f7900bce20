"""Falls shaped like real ones, and the everyday and gym movements that must not pass for one.

The textbook fall (|a| near 0 g for a third of a second, then a spike) is rare in
real recordings. Real falls from standing, as the MobiFall recordings show them
(phone in the trouser pocket, 144 falls of 12 people, 20 ms means), look like this:

* support is lost only briefly: |a| dips to 0.06-0.84 g (median about 0.45 g) and
  the longest run under 0.5 g has a median of 0.03 s;
* the impact peaks at 1.9-3.4 g (median 2.6 g; that phone clips each axis at 2 g),
  often as two hits a few tenths of a second apart (knees then hands, hands then hip);
* the body keeps moving for a second or two (settling, rolling, 0.01-0.3 g), then lies
  with gravity 45-150 degrees from where it was (thigh: lying and sitting both turn it
  about 90 degrees; trunk: lying turns it 60-110, sitting hardly at all).

Everyday movement that a fall detector must let pass has the same ingredients in
other combinations: jumps dip to near 0 g and land at 2.5-4.5 g but leave the posture
as it was; sitting down hard dips to 0.55-0.8 g, lands at 1.4-2.2 g (MobiFall's chair
and car entries) and turns the thigh but not the trunk; lying down on a bench turns
everything with no impact.

:class:`Movements` is a person doing such things one after another, as a motion
source a simulated IMU can sample (a pure function of time, like every source here)::

    m = (Movements(seed=3, site="thigh")
         .stand(5).jumps(3).stand(5).sit_down_hard().stand_up().stand(3)
         .fall("forward").lie(20))
    m.accel(t), m.gyro(t), m.duration, m.truth.events

Falls come in the four MobiFall kinds (:data:`FALL_KINDS`): ``forward`` (FOL, hands
dampen it, ends lying face down), ``knees`` (FKL, the knees hit first), ``backward``
(BSC, backward while trying to sit on a chair) and ``sideways`` (SDL). Each site
(``chest``, ``waist``, ``thigh``) has its own impact and posture ranges
(:data:`IMPACT_G`).

:func:`real_fall` is the named-session form for the scenario library: rest, a set,
then one of these falls in place of the textbook one.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .athlete import Scenario
from .placement import rotation_matrix
from .sources import G0, as_times
from .truth import Event

SITES = ("chest", "waist", "thigh")
FALL_KINDS = ("forward", "knees", "backward", "sideways")

IMPACT_G: dict[str, tuple[float, float]] = {
    # thigh: MobiFall's falls, 20 ms means (2.2-3.0 g for 80 % of them; a pocketed
    # phone's hit shows a little lower in |a| than the pulse drawn here)
    "thigh": (2.1, 3.4),
    # trunk: simulated falls onto mats give 3-6 g (Bourke et al. 2007), real-world falls
    # of older people less (Bagala et al. 2012); a gym floor with a mat in between
    "chest": (2.2, 4.0),
    "waist": (2.2, 4.0),
}
"""Peak |a| of a fall's main impact, g, drawn uniformly."""

UP = np.array([0.0, 0.0, 1.0])  # body frame: x forward, y left, z up (the thigh: along it)
X, Y = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])


def _rotate(v: np.ndarray, axis: np.ndarray, angle: np.ndarray | float) -> np.ndarray:
    """Rodrigues: ``v`` turned by ``angle`` (radians, scalar or (N,)) about unit ``axis``."""
    angle = np.asarray(angle, dtype=float)
    c, s = np.cos(angle)[..., None], np.sin(angle)[..., None]
    return v * c + np.cross(axis, v) * s + axis * (axis @ v) * (1.0 - c)


def _smoothstep(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """0 -> 1 with zero slope at both ends, and its derivative."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x), 6.0 * x * (1.0 - x)


@dataclass(frozen=True)
class Pulse:
    """A half-sine push of ``vector`` g (body frame) centred at ``t``, ``width`` s long,
    ringing down after it at ``ring_hz`` (soft tissue and the sensor's mount)."""

    t: float
    vector: np.ndarray
    width: float
    ring_hz: float = 0.0
    ring: float = 0.0

    def at(self, t: np.ndarray) -> np.ndarray:
        x = (t - self.t) / self.width + 0.5
        shape = np.where((x > 0) & (x < 1), np.sin(np.pi * np.clip(x, 0, 1)), 0.0)
        if self.ring:
            age = np.maximum(t - self.t - self.width / 2, 0.0)
            shape = shape + np.where(
                age > 0,
                self.ring * np.exp(-age / 0.04) * np.sin(2 * np.pi * self.ring_hz * age),
                0.0,
            )
        return shape[:, None] * self.vector


@dataclass(frozen=True)
class Dip:
    """Support lost: the reading of gravity scaled down by up to ``depth`` around ``t``
    (a Gaussian of ``sigma`` s), or held down flat over ``flat`` s (a jump's flight)."""

    t: float
    depth: float
    sigma: float
    flat: float = 0.0

    def at(self, t: np.ndarray) -> np.ndarray:
        d = np.maximum(np.abs(t - self.t) - self.flat / 2, 0.0)
        return self.depth * np.exp(-0.5 * (d / self.sigma) ** 2)


@dataclass(frozen=True)
class Wobble:
    """Movement that dies away: ``vector`` g at ``hz`` from ``t``, decaying with ``tau``."""

    t: float
    vector: np.ndarray
    hz: float
    tau: float

    def at(self, t: np.ndarray) -> np.ndarray:
        age = t - self.t
        shape = np.where(
            age > 0,
            np.exp(-np.maximum(age, 0) / self.tau)
            * np.sin(2 * np.pi * self.hz * np.maximum(age, 0)),
            0.0,
        )
        return shape[:, None] * self.vector


@dataclass(frozen=True, eq=False)
class Motion:
    """One movement from ``start`` to ``end``: the posture turns from ``up_from`` about
    ``axis`` through the angles of ``keys`` [(time, radians), ...] (smoothly between
    them), while dips, pulses and wobbles shape what the accelerometer reads."""

    kind: str
    start: float
    end: float
    up_from: np.ndarray
    axis: np.ndarray
    keys: tuple[tuple[float, float], ...]
    dips: tuple[Dip, ...] = ()
    pulses: tuple[Pulse, ...] = ()
    wobbles: tuple[Wobble, ...] = ()
    events: tuple[Event, ...] = ()

    @property
    def up_to(self) -> np.ndarray:
        return _rotate(self.up_from, self.axis, self.keys[-1][1])

    def angle(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Angle turned (rad) and its rate (rad/s) at ``t``."""
        angle = np.full(len(t), self.keys[0][1])
        rate = np.zeros(len(t))
        for (t0, a0), (t1, a1) in itertools.pairwise(self.keys):
            x, dx = _smoothstep((t - t0) / (t1 - t0))
            inside = t >= t0
            angle = np.where(inside, a0 + (a1 - a0) * x, angle)
            rate = np.where(inside & (t < t1), (a1 - a0) * dx / (t1 - t0), rate)
        return angle, rate

    def body(self, t: np.ndarray) -> np.ndarray:
        """Specific force in the body frame, g."""
        angle, _ = self.angle(t)
        support = np.ones(len(t))
        for dip in self.dips:
            support -= dip.at(t)
        f = np.maximum(support, 0.02)[:, None] * _rotate(self.up_from, self.axis, angle)
        parts: tuple[Pulse | Wobble, ...] = (*self.pulses, *self.wobbles)
        for part in parts:
            f += part.at(t)
        # Whatever is still moving fades out over the last 0.3 s: no step at the end.
        fade = np.clip((self.end - t) / 0.3, 0.0, 1.0)[:, None]
        steady = self.up_to
        return steady + (f - steady) * fade

    def spin(self, t: np.ndarray) -> np.ndarray:
        """Rotation rate in the body frame, rad/s."""
        _, rate = self.angle(t)
        return rate[:, None] * self.axis


@dataclass(frozen=True)
class MovementTruth:
    """What the person did: ``events`` (``fall`` at the loss of balance with the time to
    impact as ``duration``, ``impact`` with its peak g, ``jump``, ``landing``, ``sit``,
    ``stand_up``, ``lie_down``), ``motions`` (each with start and end)."""

    duration: float
    site: str
    orientation: np.ndarray
    events: tuple[Event, ...]
    motions: tuple[tuple[str, float, float], ...]

    def events_of(self, kind: str) -> tuple[Event, ...]:
        return tuple(e for e in self.events if e.kind == kind)

    @property
    def falls(self) -> tuple[Event, ...]:
        return self.events_of("impact")


class Movements:
    """A person standing, moving and maybe falling: a motion source built step by step.

    ``site`` is where the sensor sits (chest, waist, thigh), ``orientation`` how it is
    turned on the body ("random" from the seed, "upright", or a 3x3 rotation). Steps
    follow one another from t = 0; each returns the source, so calls chain. The
    person sways a little throughout (a few mg below 0.6 Hz, a little tremor).
    """

    def __init__(
        self,
        seed: int | Sequence[int] = 0,
        *,
        site: str = "chest",
        orientation: str | ArrayLike = "random",
    ):
        if site not in SITES:
            raise ValueError(f"site must be one of {', '.join(SITES)}, not {site!r}")
        self.seed = seed
        self.site = site
        self._rng = np.random.default_rng([*np.atleast_1d(seed).tolist(), 0xFA11])
        self.orientation = rotation_matrix(orientation, self._rng.normal(size=4))
        self._sway_hz = self._rng.uniform(0.15, 0.6, 3)
        self._sway_phase = self._rng.uniform(0, 2 * np.pi, 3)
        self._sway_dirs = self._rng.normal(size=(3, 3)) * 0.004  # about 4 mg
        self._tremor_hz = self._rng.uniform(8.0, 11.0)
        self._tremor_dir = self._rng.normal(size=3) * 0.002
        self._motions: list[Motion] = []
        self._end = 0.0
        self._up = UP.copy()

    # -- the source interface -------------------------------------------------------

    @property
    def duration(self) -> float:
        return self._end

    @property
    def truth(self) -> MovementTruth:
        events = tuple(sorted((e for m in self._motions for e in m.events), key=lambda e: e.t))
        return MovementTruth(
            self._end,
            self.site,
            self.orientation,
            events,
            tuple((m.kind, m.start, m.end) for m in self._motions),
        )

    def accel(self, t: ArrayLike) -> np.ndarray:
        """Specific force in the sensor frame, gravity included: (N, 3) m/s^2."""
        t = as_times(t)
        body = self._steady(t)
        for m, a, b in self._touching(t):
            body[a:b] = m.body(t[a:b])
        body += self._sway(t)
        return (body @ self.orientation.T) * G0

    def gyro(self, t: ArrayLike) -> np.ndarray:
        """Rotation rate in the sensor frame: (N, 3) rad/s."""
        t = as_times(t)
        out = np.zeros((len(t), 3))
        for m, a, b in self._touching(t):
            out[a:b] = m.spin(t[a:b])
        return out @ self.orientation.T

    # -- the steps ------------------------------------------------------------------

    def stand(self, seconds: float) -> Movements:
        """Stand (or stay in whatever posture the last step left) for ``seconds``."""
        return self._wait(seconds)

    def lie(self, seconds: float) -> Movements:
        """Stay where the last step left the person (lying after a fall) for ``seconds``."""
        return self._wait(seconds)

    def fall(
        self,
        kind: str = "forward",
        *,
        impact_g: float | None = None,
        drop_s: float | None = None,
        ends_up: ArrayLike | None = None,
    ) -> Movements:
        """A fall of one of :data:`FALL_KINDS`, from the current (standing) posture.

        ``impact_g`` (the main hit's peak |a|) and ``drop_s`` (loss of balance to the
        first hit, 0.5-0.9 s) are drawn unless given; ``ends_up`` is the body-frame
        direction of "up" when lying, drawn for the kind unless given. The step lasts
        until the body has settled (about 4 s after the impact); add :meth:`lie` for
        the time on the floor.
        """
        if kind not in FALL_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FALL_KINDS)}, not {kind!r}")
        rng, t0 = self._rng, self._end
        drop = rng.uniform(0.5, 0.9) if drop_s is None else float(drop_s)
        hit = t0 + drop
        low, high = IMPACT_G[self.site]
        peak = rng.uniform(low, high) if impact_g is None else float(impact_g)
        axis, turn = self._fall_turn(kind) if ends_up is None else _turn_to(self._up, ends_up)
        # How far the body has turned when it first hits: knees hit nearly upright.
        at_hit = rng.uniform(0.15, 0.3) if kind == "knees" else rng.uniform(0.55, 0.85)
        settle = hit + rng.uniform(0.35, 0.7)
        keys = [(t0, 0.0), (hit, at_hit * turn)]
        second = hit + rng.uniform(0.1, 0.25) if kind != "knees" else hit + rng.uniform(0.25, 0.5)
        if kind == "knees":
            keys.append((second, 0.8 * turn))
            settle = second + rng.uniform(0.3, 0.6)
        keys.append((settle, turn))
        up_hit = _rotate(self._up, axis, at_hit * turn)
        up_end = _rotate(self._up, axis, turn)
        depth = 1.0 - rng.uniform(0.15, 0.75)  # the lowest |a|, as in MobiFall
        dips = (
            Dip(t0 + drop / 2, rng.uniform(0.1, 0.2), drop / 3),
            Dip(hit - rng.uniform(0.08, 0.25), depth - 0.15, rng.uniform(0.03, 0.07)),
        )
        # Two hits: knees then trunk or hands, or hands then hip; the first is the larger.
        other = rng.uniform(1.3, max(1.4, peak - 0.3))
        pulses = (self._hit(hit, up_hit, peak), self._hit(second, up_end, other))
        # Settling and rolling on the floor: MobiFall's |a| varies by 0.01-0.12 g (std)
        # from 1 to 2.5 s after the impact.
        wobble = Wobble(
            second + 0.1,
            self._direction(up_end, 1.0) * rng.uniform(0.05, 0.45),
            rng.uniform(0.8, 2.5),
            rng.uniform(0.6, 1.5),
        )
        end = second + 4.0
        events = (Event(t0, "fall", duration=drop), Event(hit, "impact", value=peak))
        self._add(
            Motion(
                f"fall_{kind}",
                t0,
                end,
                self._up,
                axis,
                tuple(keys),
                dips,
                pulses,
                (wobble,),
                events,
            )
        )
        return self

    def jumps(
        self, count: int = 5, *, landing_g: float | None = None, gap: float | None = None
    ) -> Movements:
        """``count`` countermovement jumps: squat, push off, fly 0.25-0.4 s at near 0 g,
        land at 2.5-4.5 g (trunk) or 2.2-3.5 g (thigh) and absorb it, ``gap`` s apart."""
        rng = self._rng
        for _ in range(int(count)):
            t0 = self._end
            thigh = self.site == "thigh"
            flex = math.radians(rng.uniform(40, 60) if thigh else rng.uniform(10, 25))
            axis = Y if self.site == "thigh" else -Y
            push = t0 + rng.uniform(0.3, 0.4)
            flight = rng.uniform(0.25, 0.4)
            land = push + 0.1 + flight
            low, high = (2.2, 3.5) if self.site == "thigh" else (2.5, 4.5)
            peak = rng.uniform(low, high) if landing_g is None else float(landing_g)
            keys = (
                (t0, 0.0),
                (push - 0.1, flex),
                (push + 0.1, 0.0),
                (land, 0.0),
                (land + 0.2, 0.7 * flex),
                (land + 0.6, 0.0),
            )
            dips = (
                Dip(t0 + 0.12, rng.uniform(0.2, 0.35), 0.06),
                Dip(
                    push + 0.1 + flight / 2 - 0.03,
                    1.0 - rng.uniform(0.03, 0.15),
                    0.02,
                    flat=flight - 0.06,
                ),
            )
            pulses = (
                Pulse(push, self._up * rng.uniform(0.8, 1.4), 0.2),
                self._hit(land, self._up, peak, width=(0.05, 0.09)),
            )
            end = land + 0.9
            events = (
                Event(push + 0.1, "jump", duration=flight),
                Event(land, "landing", value=peak),
            )
            self._add(Motion("jump", t0, end, self._up, axis, keys, dips, pulses, (), events))
            self._wait(rng.uniform(0.3, 1.0) if gap is None else float(gap))
        return self

    def sit_down_hard(self, *, impact_g: float | None = None) -> Movements:
        """Drop onto a bench or chair: the thigh turns horizontal, the trunk leans and
        comes back; support dips to 0.55-0.8 g and the seat hits at 1.4-2.1 g (thigh;
        MobiFall's chairs and car seats reach 2.2 g) or 1.5-2.5 g (trunk)."""
        rng, t0 = self._rng, self._end
        contact = t0 + rng.uniform(0.6, 0.9)
        low, high = (1.4, 2.1) if self.site == "thigh" else (1.5, 2.5)
        peak = rng.uniform(low, high) if impact_g is None else float(impact_g)
        if self.site == "thigh":
            axis, turn = Y, math.radians(rng.uniform(80, 100))
            keys = ((t0 + 0.1, 0.0), (contact, 0.95 * turn), (contact + 0.3, turn))
        else:
            axis, lean = -Y, math.radians(rng.uniform(15, 30))
            turn = math.radians(rng.uniform(5, 20))
            keys = ((t0 + 0.1, 0.0), (contact - 0.2, lean), (contact + 0.5, turn))
        up_end = _rotate(self._up, axis, turn)
        dips = (
            Dip(contact - rng.uniform(0.12, 0.25), rng.uniform(0.2, 0.45), rng.uniform(0.06, 0.1)),
        )
        pulses = (self._hit(contact, up_end, peak, width=(0.08, 0.12)),)
        wobble = Wobble(
            contact + 0.1,
            self._direction(up_end, 1.0) * rng.uniform(0.01, 0.04),
            rng.uniform(1.5, 3.0),
            0.3,
        )
        events = (Event(contact, "sit", value=peak),)
        self._add(
            Motion(
                "sit_down_hard",
                t0,
                contact + 1.5,
                self._up,
                axis,
                keys,
                dips,
                pulses,
                (wobble,),
                events,
            )
        )
        return self

    def stand_up(self) -> Movements:
        """Back to standing from sitting or lying, unhurried (no impact)."""
        t0 = self._end
        cross = np.cross(self._up, UP)
        if np.linalg.norm(cross) < 1e-9:
            return self._wait(1.0)
        axis = cross / np.linalg.norm(cross)
        turn = math.acos(float(np.clip(self._up @ UP, -1, 1)))
        keys = ((t0, 0.0), (t0 + 1.2, turn))
        pulses = (Pulse(t0 + 0.6, self._up * 0.2, 0.5),)
        self._add(
            Motion(
                "stand_up",
                t0,
                t0 + 1.5,
                self._up,
                axis,
                keys,
                (),
                pulses,
                (),
                (Event(t0, "stand_up"),),
            )
        )
        return self

    def lie_down(self) -> Movements:
        """Lie back on a bench (to press) or a mat (to stretch): the trunk turns 80-95
        degrees over 1.2-2 s and the back meets the bench gently (1.1-1.4 g). A thigh
        sensor, seated already, hardly turns."""
        rng, t0 = self._rng, self._end
        slow = rng.uniform(1.2, 2.0)
        if self.site == "thigh":  # seated already: a little more; standing: to horizontal
            seated = self._up @ UP < 0.5
            axis = _turn_to(UP, self._up)[0] if seated else Y
            turn = math.radians(rng.uniform(5, 15) if seated else rng.uniform(80, 90))
        else:
            axis, turn = -Y, math.radians(rng.uniform(80, 95))
        keys = ((t0, 0.0), (t0 + slow, turn))
        up_end = _rotate(self._up, axis, turn)
        pulses = (self._hit(t0 + slow, up_end, rng.uniform(1.1, 1.4), width=(0.1, 0.15)),)
        self._add(
            Motion(
                "lie_down",
                t0,
                t0 + slow + 1.0,
                self._up,
                axis,
                keys,
                (),
                pulses,
                (),
                (Event(t0, "lie_down"),),
            )
        )
        return self

    # -- internals ------------------------------------------------------------------

    def _wait(self, seconds: float) -> Movements:
        if not seconds > 0:
            raise ValueError("seconds must be positive")
        self._end += float(seconds)
        return self

    def _add(self, motion: Motion) -> None:
        self._motions.append(motion)
        self._up = motion.up_to
        self._end = motion.end

    def _fall_turn(self, kind: str) -> tuple[np.ndarray, float]:
        """The axis the body turns about and how far, for a fall of ``kind`` at this site."""
        rng = self._rng
        yaw = math.radians(rng.uniform(-20, 20))  # falls are never quite straight
        if kind in ("forward", "knees"):  # ends face down: up is the back
            axis, turn = -Y, rng.uniform(70, 100)
        elif kind == "backward":  # ends on the back (legs may go up)
            axis = Y
            turn = rng.uniform(80, 150) if self.site == "thigh" else rng.uniform(65, 100)
        else:  # ends on one side
            axis, turn = (X if rng.random() < 0.5 else -X), rng.uniform(60, 95)
        axis = _rotate(axis, UP, yaw)
        return axis / np.linalg.norm(axis), math.radians(turn)

    def _direction(self, around: np.ndarray, spread: float) -> np.ndarray:
        v = around + spread * self._rng.normal(size=3)
        return v / np.linalg.norm(v)

    def _hit(
        self, t: float, up: np.ndarray, peak_g: float, width: tuple[float, float] = (0.04, 0.08)
    ) -> Pulse:
        """An impact whose |a| peaks near ``peak_g``: the floor pushes mostly along ``up``."""
        rng = self._rng
        direction = self._direction(up, 0.3)
        # |up + k d| = peak  ->  k = -(u.d) + sqrt((u.d)^2 + peak^2 - 1)
        ud = float(up @ direction)
        k = -ud + math.sqrt(ud * ud + peak_g * peak_g - 1.0)
        return Pulse(
            t,
            direction * k,
            rng.uniform(*width),
            ring_hz=rng.uniform(10, 20),
            ring=rng.uniform(0.05, 0.2),
        )

    def _steady(self, t: np.ndarray) -> np.ndarray:
        """The posture between motions (each motion's end posture holds until the next)."""
        ups = [UP] + [m.up_to for m in self._motions]
        starts = np.array([m.start for m in self._motions])
        index = np.searchsorted(starts, t, side="right")  # motions begun by t
        return np.asarray(ups)[index].copy()

    def _touching(self, t: np.ndarray):
        for m in self._motions:
            a = int(np.searchsorted(t, m.start, "left"))
            b = int(np.searchsorted(t, m.end, "left"))
            if a < b:
                yield m, a, b

    def _sway(self, t: np.ndarray) -> np.ndarray:
        sway = np.sin(2 * np.pi * np.multiply.outer(t, self._sway_hz) + self._sway_phase)
        out = sway @ self._sway_dirs
        out += np.sin(2 * np.pi * self._tremor_hz * t)[:, None] * self._tremor_dir
        return out


# -- a named session for the scenario library -------------------------------------------


class RealFall:
    """A library session (rest, a set, a short rest, a fall, two minutes lying) whose
    fall is shaped like a real one instead of the textbook free fall.

    It is the :class:`~monitor.sim.scenarios.athlete.Scenario` of the same session with
    the stretch from the loss of balance until the body has settled replaced by a
    :class:`Movements` fall of ``kind`` ending in the scenario's own lying posture; the
    truth, the companion and everything else are the scenario's.
    """

    def __init__(self, session: Scenario, movements: Movements, start: float, end: float):
        self.session = session
        self.movements = movements
        self.start, self.end = start, end

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)

    def __repr__(self) -> str:
        return f"<RealFall of {self.session!r}>"

    def accel(self, t: ArrayLike) -> np.ndarray:
        return self._splice(as_times(t), "accel")

    def gyro(self, t: ArrayLike) -> np.ndarray:
        return self._splice(as_times(t), "gyro")

    def _splice(self, t: np.ndarray, what: str) -> np.ndarray:
        out = getattr(self.session, what)(t)
        a = int(np.searchsorted(t, self.start, "left"))
        b = int(np.searchsorted(t, self.end, "left"))
        if a < b:
            out[a:b] = getattr(self.movements, what)(t[a:b] - self.start)
        return out


def real_fall(
    seed: int = 0, *, kind: str | None = None, lying: float = 120.0, **options: Any
) -> RealFall:
    """Body-worn: rest, a set, a short rest, then a real-shaped fall of ``kind`` (drawn
    from :data:`FALL_KINDS` by the seed if not given) and ``lying`` seconds on the floor.
    ``site`` (chest, waist, thigh) shapes the fall; other options go to the Scenario."""
    site = options.pop("site", "chest")
    options.setdefault("placement", "body")
    rng = np.random.default_rng([*np.atleast_1d(seed).tolist(), 0xFA12])
    kind = kind or FALL_KINDS[int(rng.integers(len(FALL_KINDS)))]
    low, high = IMPACT_G[site]
    drop, peak = float(rng.uniform(0.5, 0.9)), float(rng.uniform(low, high))
    session = (
        Scenario(seed, name=f"real_fall_{kind}", **options).rest(60).reps(10, load=0.7).rest(30)
    )
    start = session.duration
    session.fall(lying=lying, free_fall_s=drop, impact_g=peak)
    # The lying posture is the session's: read it back, and let the fall end there.
    t = np.linspace(start + 20.0, start + 21.0, 201)
    lying_up = session.accel(t).mean(axis=0) @ session.orientation
    movements = Movements(
        [*np.atleast_1d(seed).tolist(), 1], site=site, orientation=session.orientation
    )
    movements.fall(kind, impact_g=peak, drop_s=drop, ends_up=lying_up)
    return RealFall(session, movements, start, start + movements.duration)


def _turn_to(up: np.ndarray, target: ArrayLike) -> tuple[np.ndarray, float]:
    """The axis and angle that turn ``up`` onto the direction of ``target``."""
    direction = np.asarray(target, dtype=float) / np.linalg.norm(target)
    axis = np.cross(up, direction)
    norm = np.linalg.norm(axis)
    if norm < 1e-9:
        return X, 0.0
    return axis / norm, math.acos(float(np.clip(up @ direction, -1.0, 1.0)))


def _named(kind: str):
    def make(seed: int = 0, **options: Any) -> RealFall:
        return real_fall(seed, kind=kind, **options)

    summary = (real_fall.__doc__ or "A fall shaped like a real one.").splitlines()[0]
    make.__doc__ = f"{summary} (kind {kind!r})"
    return make


FALL_SCENARIOS = {f"real_fall_{kind}": _named(kind) for kind in FALL_KINDS}
"""Real-shaped falls by name for the scenario library: ``real_fall_forward`` ..."""
