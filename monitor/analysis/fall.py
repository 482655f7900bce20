"""Falls and faints on a body-worn sensor: near free fall, an impact, then stillness.

A fall is over in well under a second, far shorter than a tremor window, so
the detector works on the raw stream. It looks for the sequence that fall
detection research agrees on: |a| well below 1 g for a fraction of a second
(the body is falling), a spike of several g within a second after (hitting the
floor), then little movement for seconds with gravity in a new direction
(lying there)::

    falls = FallDetector()
    for event in falls.feed(block.t, block.accel):
        event.t, event.impact_g, event.still_s
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

G = 9.80665


@dataclass(frozen=True)
class FallConfig:
    free_fall_g: float = 0.5        # |a| below this is "falling"
    free_fall_min_s: float = 0.15
    impact_g: float = 2.0           # a spike above this within impact_window_s of the fall
    impact_window_s: float = 1.0
    still_s: float = 3.0            # then this long with little movement ...
    still_mg: float = 100.0         # ... the deviation of |a| from 1 g staying below this (RMS)
    turn_deg: float = 30.0          # ... and gravity at least this far from before the fall


@dataclass(frozen=True)
class FallEvent:
    t: float            # the impact
    free_fall_s: float
    impact_g: float
    still_s: float
    turn_deg: float


class FallDetector:
    """See the module docstring. Memory is bounded: a few seconds of 50 Hz envelope."""

    RATE_HZ = 100.0

    def __init__(self, config: FallConfig | None = None):
        self.cfg = config or FallConfig()
        self._ff_start: float | None = None
        self._ff_len = 0.0
        self._pre_dir: np.ndarray | None = None   # gravity before the fall
        self._gravity = None                      # slow estimate of gravity's direction
        self._impact: tuple[float, float, float] | None = None  # (t, g, free fall s)
        self._still: list[np.ndarray] = []
        self._still_t0: float | None = None
        self.events: list[FallEvent] = []

    def feed(self, t: np.ndarray, accel: np.ndarray) -> list[FallEvent]:
        if len(t) == 0:
            return []
        out: list[FallEvent] = []
        mag = np.sqrt(np.einsum("ij,ij->i", accel, accel)) / G
        # Free fall and impacts are judged sample by sample, but only where something
        # is happening; the quiet majority of samples is skipped in bulk.
        interesting = (mag < self.cfg.free_fall_g) | (mag > self.cfg.impact_g)
        if self._ff_start is None and self._impact is None and not interesting.any():
            self._track_gravity(accel)
            return out
        for i in range(len(t)):
            ti, m = float(t[i]), float(mag[i])
            if self._impact is None:
                if m < self.cfg.free_fall_g:
                    if self._ff_start is None:
                        self._ff_start = ti
                        self._pre_dir = self._gravity
                    self._ff_len = ti - self._ff_start
                elif self._ff_start is not None:
                    if m > self.cfg.impact_g and self._ff_len >= self.cfg.free_fall_min_s:
                        self._impact = (ti, m, self._ff_len)
                        self._still, self._still_t0 = [], None
                        self._ff_start = None
                    elif ti - self._ff_start > self._ff_len + self.cfg.impact_window_s:
                        self._ff_start = None  # a fall with no impact: a jump, a dropped phone
                continue
            # After the impact: wait for the ringing to die away, then judge stillness.
            impact_t, impact_g, ff = self._impact
            if ti - impact_t < 0.5:
                if m > impact_g:  # report the impact's peak, not its first sample over threshold
                    self._impact = (impact_t, m, ff)
                continue
            if self._still_t0 is None:
                self._still_t0 = ti
            self._still.append(accel[i])
            if ti - self._still_t0 >= self.cfg.still_s:
                block = np.asarray(self._still)
                dev = (np.linalg.norm(block, axis=1) / G - 1.0) * 1e3
                still = float(np.sqrt(np.mean(dev ** 2))) <= self.cfg.still_mg
                now_dir = block.mean(axis=0)
                turn = _angle(self._pre_dir, now_dir) if self._pre_dir is not None else 180.0
                if still and turn >= self.cfg.turn_deg:
                    event = FallEvent(impact_t, ff, impact_g, ti - self._still_t0, turn)
                    out.append(event)
                    self.events.append(event)
                self._impact = None
                self._still = []
        self._track_gravity(accel)
        return out

    def _track_gravity(self, accel: np.ndarray) -> None:
        mean = accel[-min(len(accel), 50):].mean(axis=0)
        if self._ff_start is None and self._impact is None:
            self._gravity = mean if self._gravity is None else 0.9 * self._gravity + 0.1 * mean


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 0.0
    return float(np.degrees(np.arccos(np.clip(np.dot(a, b) / (na * nb), -1, 1))))
