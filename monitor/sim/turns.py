"""Athletes taking turns at one station: their tags on the reader, their own bodies on the sensor.

:func:`~monitor.sim.pn532.taking_turns` taps each athlete's tag in and out; a
:class:`TakingTurns` adds what the sensor feels meanwhile: in each turn, that
athlete's own motion (a :class:`~monitor.sim.scenarios.athlete.Scenario` of
their own: rest, a set of reps, recovery), with their own rested tremor. So a
station that grades each athlete against the right baseline shows it, and one
that carries a baseline over from the previous person is caught::

    turns = TakingTurns(3, seed=1, tremor_mg=(6, 14, 28))
    turns.install(bus, config)          # the PN532's tags and the first limb sensor's motion
    turns.athlete_at(100.0)             # 1: whose turn it is at t = 100 s
    turns.baseline_mg(1)                # the rested tremor athlete 1's sensor sees (truth)

Before the first turn, and between rounds, the next athlete warms up at rest.
All athletes share one sensor orientation (the strap or clip stays as it is).
``start_s`` moves the whole rota later on the clock (a station that starts
after its clock did still sees the first tap).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .pn532 import Pn532Sim, Tag, TagSchedule, taking_turns
from .scenarios.athlete import Scenario

#: Three rested tremors well apart (mg at the body): 6 mg is a steady hand, 28 mg a shaky one.
TREMOR_MG = (6.0, 14.0, 28.0)


class TakingTurns:
    """See the module docstring.

    Each turn of ``turn_s``: rest for ``rest_s`` (long enough for a fresh
    baseline), one set of ``reps`` reps at ``rep_hz``, then rest to the end of
    the turn; the tag is tapped at the start and just before the end.
    """

    def __init__(
        self,
        athletes: int = 3,
        *,
        seed: int = 0,
        turn_s: float = 75.0,
        first_s: float = 5.0,
        hold_s: float = 0.6,
        rest_s: float = 20.0,
        reps: int = 10,
        rep_hz: float = 0.5,
        load: float = 0.7,
        tremor_mg: Sequence[float] = TREMOR_MG,
        placement: str = "limb",
        repeat: bool = True,
        start_s: float = 0.0,
    ):
        if len(tremor_mg) < athletes:
            raise ValueError(f"need a rested tremor for each of the {athletes} athletes")
        if rest_s + reps / rep_hz + 10.0 > turn_s:
            raise ValueError("a turn must hold the rest, the set and ten seconds after it")
        self.athletes = athletes
        self.turn_s = float(turn_s)
        self.first_s = float(first_s)
        self.repeat = repeat
        self.start_s = float(start_s)
        self.period = self.first_s + athletes * self.turn_s
        self.schedule: TagSchedule = taking_turns(
            athletes, seed=seed, turn_s=turn_s, hold_s=hold_s, first_s=first_s, repeat=repeat
        )
        self.scenarios: list[Scenario] = []
        orientation: Any = "random"
        for i in range(athletes):
            s = (
                Scenario(
                    (seed, i),
                    placement=placement,
                    orientation=orientation,
                    tremor_mg=float(tremor_mg[i]),
                    name=f"athlete {i + 1}",
                )
                .rest(rest_s)
                .reps(reps, rep_hz=rep_hz, load=load)
                .rest(max(turn_s - rest_s - reps / rep_hz, 1.0))
            )
            orientation = s.orientation  # the same strap for everyone
            self.scenarios.append(s)

    # -- whose turn ---------------------------------------------------------------------
    def tag_at(self, t: float) -> Tag | None:
        """The tag on the reader at ``t`` (the PN532's tag source)."""
        return self.schedule.tag_at(t - self.start_s) if t >= self.start_s else None

    @property
    def uids(self) -> list[bytes]:
        """Each athlete's tag UID, in turn order."""
        return list(dict.fromkeys(tag.uid for _, _, tag in self.schedule.taps if tag is not None))

    def _split(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each time's athlete and the time within their turn (negative: warming up)."""
        t = np.maximum(t - self.start_s, 0.0)
        tt = np.mod(t, self.period) if self.repeat else t
        k = np.floor((tt - self.first_s) / self.turn_s)
        k = np.clip(k, 0, self.athletes - 1).astype(int)
        before = tt < self.first_s
        k[before] = 0
        local = tt - (self.first_s + k * self.turn_s)
        return k, local

    def athlete_at(self, t: float) -> int:
        """Whose turn it is at ``t`` (0-based)."""
        return int(self._split(np.array([float(t)]))[0][0])

    def baseline_mg(self, athlete: int) -> float:
        """The rested tremor athlete ``athlete``'s sensor sees: what their baseline should be."""
        return float(self.scenarios[athlete].truth.baseline_mg)

    # -- the motion source ----------------------------------------------------------------
    def accel(self, t) -> np.ndarray:
        return self._evaluate(t, "accel")

    def gyro(self, t) -> np.ndarray:
        return self._evaluate(t, "gyro")

    def _evaluate(self, t, what: str) -> np.ndarray:
        t = np.atleast_1d(np.asarray(t, dtype=float))
        out = np.empty((len(t), 3))
        if not len(t):
            return out
        k, local = self._split(t)
        # Runs of one athlete with time going forward: each is that athlete's scenario.
        breaks = np.flatnonzero((np.diff(k) != 0) | (np.diff(local) < 0)) + 1
        for part in np.split(np.arange(len(t)), breaks):
            scenario = self.scenarios[k[part[0]]]
            out[part] = getattr(scenario, what)(local[part])
        return out

    # -- on a simulated bus -----------------------------------------------------------------
    def install(self, bus, config, sensors: Sequence[str] | None = None) -> list[str]:
        """Give ``bus``'s PN532 these tags and the named IMUs (default: the config's first
        exercised limb sensor) this motion. Returns the sensors that take turns."""
        names = (
            list(sensors)
            if sensors is not None
            else [
                next(
                    (i.name for i in config.imus if i.exercised and i.placement == "limb"),
                    config.imus[0].name,
                )
            ]
        )
        for imu in config.imus:
            if imu.name in names:
                bus.chip(imu.address).motion = self
        if config.nfc is not None:
            chip = bus.chip(config.nfc.address)
            if isinstance(chip, Pn532Sim):
                chip.tags = self  # its tag_at: the rota, on the station's clock
        return names

    def __repr__(self) -> str:
        return (
            f"<TakingTurns {self.athletes} athletes, turns of {self.turn_s:g} s"
            f"{', repeating' if self.repeat else ''}>"
        )


def first_checkout_s(turns: TakingTurns) -> float:
    """When the first athlete taps out (the end of the first turn), on the station's clock."""
    taps = sorted(t_on for t_on, _, _ in turns.schedule.taps)
    return turns.start_s + taps[1] if len(taps) > 1 else math.inf
