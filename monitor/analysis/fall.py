"""Falls and faints on a body-worn sensor: support lost, an impact, then lying there.

A fall is over in well under a second, far shorter than a tremor window, so the
detector works on the raw stream. It looks for what real falls have in common
rather than the textbook free fall::

    falls = FallDetector(site="thigh")          # chest (default), waist or thigh
    for event in falls.feed(block.t, block.accel):
        event.t, event.impact_g, event.turn_deg, event.decided_t

Why not free fall. People falling from standing do not drop like a stone: they
buckle, twist and reach out, so |a| dips only briefly. In the MobiFall falls
(Vavoulas et al. 2013, IEEE BIBE; phone in the trouser pocket, 144 falls of 12
people) the longest run under 0.5 g has a median of 0.03 s, yet every fall has an
impact of 1.9 to 3.4 g (the phone clips each axis at 2 g) and ends with the thigh
turned about 45 to 150 degrees. On real-world falls of older people the published
threshold detectors caught on average little more than half (Bagala et al. 2012,
PLoS One 7:e37062).

The stages, each one the fall literature uses:

1. **Impact** (Bourke, O'Brien & Lyons 2007, Gait Posture 26:194; Kangas et al.
   2008, Gait Posture 28:285): the envelope of |a| (20 ms means, see below)
   reaches ``hard_impact_g``, or reaches ``impact_g`` less than ``pre_s`` after
   |a| fell below ``dip_g`` (support lost: Bourke's lower fall thresholds are
   0.41 g at the trunk and 0.6 g at the thigh). Impacts closer than ``cluster_s``
   are one fall (knees, then hands) and its largest peak is the impact.
2. **Posture** (Kangas 2008 judge it 2 s after the impact; Karantonis et al.
   2006, IEEE TITB 10:156): over ``settle_s`` to ``judge_s`` after the impact,
   gravity points at least ``turn_deg`` away from where it pointed 2 to 1 s
   before. The trunk lies down in a fall (60 degrees from upright) but stays
   upright when sitting down hard; the thigh turns horizontal in a fall but also
   when sitting, which is why the thigh also needs a harder impact or a dip.
3. **Little activity** (the inactivity stage of Karantonis 2006): over the same
   span the standard deviation of |a| stays below ``active_g``. It tells a fall
   from a burpee or a run of jumps that goes on; a person lying and moving a
   little (0.02-0.2 g) still counts.

No single stage is enough: impacts alone cannot tell a fall from a jump's landing
(2.5-4.5 g), posture alone not from lying down on a bench; Bourke et al. (2010,
J Biomech 43:3051) found the combination of a pre-impact stage, the impact and
the posture after it what keeps false alarms away in unscripted daily life.

Per-site starting values are in :data:`SITE_PRESETS`. The thigh values were
checked on the MobiFall development split (``bench/bench_falls.py``): 94 % of
falls caught, none in 1.1 h of everyday movement. Its margins are thin where a
pocket cannot tell falling onto a chair from sitting down hard: a hard impact of
2.1 g instead of 2.2 g, or a dip of 0.6 g instead of 0.5 g, lets one car entry
or exit through. Chest and waist follow the trunk figures above, with the lying
test doing the work the thigh cannot; no real trunk recording was at hand.

**Rate and cost.** The detector first reduces the stream to a 50 Hz envelope:
the mean acceleration vector of each 20 ms bin of time. That makes a 1 kHz
station and a 50-100 Hz phone see the same peaks and dips (a 20 ms mean is
about the bandwidth of the fall literature's 50-100 Hz recordings), copes with
irregular sampling (an empty bin is simply missing), and keeps the work per
block to a dozen numpy calls. Python looks at single bins only where the
envelope crosses ``impact_g``, which quiet and ordinary movement never does.

**How long after the impact.** A fall is decided ``judge_s`` (2.5 s by default)
after its impact, plus up to one 20 ms bin; a recording that ends sooner is
never decided. :attr:`FallEvent.decided_t` says when it was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..units import G

SITES = ("chest", "waist", "thigh")
"""Where on the body a ``placement = "body"`` sensor sits."""

ENVELOPE_HZ = 50.0
"""Bins per second of the envelope the detector works on (20 ms means)."""


@dataclass(frozen=True)
class FallConfig:
    """Thresholds of the three stages; :meth:`for_site` gives the starting values."""

    site: str = "chest"
    impact_g: float = 1.8  # an impact this hard counts after a dip ...
    dip_g: float = 0.6  # ... below this within pre_s before it (support lost)
    hard_impact_g: float = 2.2  # an impact this hard counts on its own
    pre_s: float = 1.0
    cluster_s: float = 1.0  # impacts closer than this belong to one fall
    reference_s: tuple[float, float] = (2.0, 1.0)  # posture before: gravity over this span before
    settle_s: float = 1.0  # rebounds and rolling after the impact are not judged ...
    judge_s: float = 2.5  # ... posture and activity are, from settle_s to judge_s after it
    turn_deg: float = 60.0  # gravity at least this far from where it was before
    active_g: float = 0.3  # the standard deviation of |a| over the judged span, at most
    refractory_s: float = 10.0  # impacts this soon after a reported fall are the same fall

    def __post_init__(self):
        if self.site not in SITES:
            raise ValueError(f"site must be one of {', '.join(SITES)}, not {self.site!r}")
        if not 0 < self.dip_g < 1 < self.impact_g <= self.hard_impact_g:
            raise ValueError("need 0 < dip_g < 1 < impact_g <= hard_impact_g")
        if not 0 < self.cluster_s <= self.settle_s < self.judge_s:
            raise ValueError("need 0 < cluster_s <= settle_s < judge_s")
        if not self.reference_s[0] > self.reference_s[1] >= 0:
            raise ValueError("reference_s is (start, end) seconds before the impact, start > end")

    @classmethod
    def for_site(cls, site: str, **overrides) -> FallConfig:
        """The starting values for ``site`` (chest, waist or thigh), with ``overrides``."""
        if site not in SITE_PRESETS:
            raise ValueError(f"site must be one of {', '.join(SITES)}, not {site!r}")
        return replace(cls(site=site, **SITE_PRESETS[site]), **overrides)


SITE_PRESETS: dict[str, dict[str, Any]] = {
    # The trunk: a fall leaves it lying (60 degrees from where it stood), which sitting
    # down hard, jumps and squats never do, so the impact can be moderate: trunk-worn
    # sensors see 2-6 g in falls. Chest and waist share these values.
    "chest": {"impact_g": 1.8, "dip_g": 0.6, "hard_impact_g": 2.2, "turn_deg": 60.0},
    "waist": {"impact_g": 1.8, "dip_g": 0.6, "hard_impact_g": 2.2, "turn_deg": 60.0},
    # The thigh turns horizontal when sitting too, so the impact must be harder than
    # sitting down gives (up to 2.2 g in MobiFall's car entries, 1.9 g on chairs) unless
    # support was clearly lost first (Bourke's 0.6 g, made stricter: getting into a car
    # dips to 0.55 g).
    "thigh": {"impact_g": 1.9, "dip_g": 0.5, "hard_impact_g": 2.2, "turn_deg": 45.0},
}


@dataclass(frozen=True)
class FallEvent:
    """A fall: its impact at ``t`` and the evidence for it.

    ``free_fall_s`` is how long |a| stayed below ``dip_g`` in the second before the
    impact (support lost; rarely a true free fall), ``still_s`` the span after the
    impact over which posture and activity were judged.
    """

    t: float  # the impact (its largest peak)
    free_fall_s: float
    impact_g: float
    still_s: float
    turn_deg: float
    dip_g: float = math.nan  # the lowest |a| in the second before the impact
    activity_g: float = math.nan  # standard deviation of |a| over the judged span
    decided_t: float = math.nan  # when it could be decided: the first bin after t + judge_s
    site: str = ""


@dataclass
class _Candidate:
    t: float
    peak_g: float


class FallDetector:
    """See the module docstring. Memory is bounded: about 6 s of 50 Hz envelope.

    ``feed`` takes consecutive blocks of samples (times in s, increasing; acceleration
    (N, 3) in m/s^2 with gravity) of any size, and returns the falls decided in that
    block; ``events`` keeps them all.
    """

    def __init__(self, config: FallConfig | None = None, *, site: str | None = None):
        if config is None:
            config = FallConfig.for_site(site or "chest")
        elif site is not None and site != config.site:
            raise ValueError(f"site {site!r} and config.site {config.site!r} disagree")
        self.cfg = config
        keep_s = config.reference_s[0] + config.judge_s + config.cluster_s + 0.5
        self._envelope = _Envelope(int(keep_s * ENVELOPE_HZ) + 1)
        self._candidates: list[_Candidate] = []
        self._quiet_until = -math.inf  # refractory after a reported fall
        self.events: list[FallEvent] = []

    def feed(self, t: np.ndarray, accel: np.ndarray) -> list[FallEvent]:
        t = np.asarray(t, dtype=float)
        accel = np.asarray(accel, dtype=float)
        if accel.shape != (len(t), 3):
            raise ValueError(f"accel must be ({len(t)}, 3) for {len(t)} times, not {accel.shape}")
        if len(t) and not (np.isfinite(accel).all() and np.isfinite(t).all()):
            keep = np.isfinite(accel).all(axis=1) & np.isfinite(t)  # a garbled read
            t, accel = t[keep], accel[keep]
        if len(t) == 0:
            return []
        if len(t) > 1 and (np.diff(t) < 0).any():
            order = np.argsort(t, kind="stable")
            t, accel = t[order], accel[order]
        if self._envelope.went_back(t[0]):
            # A new stream: what was pending or quiet belonged to the old one.
            self._candidates, self._quiet_until = [], -math.inf
        bt, bg = self._envelope.add(t, accel)
        # Only bins at impact level are looked at one by one; ordinary movement has none.
        for i in np.flatnonzero(bg >= self.cfg.impact_g):
            self._impact(float(bt[i]), float(bg[i]))
        out = []
        newest = self._envelope.newest
        while self._candidates and newest >= self._candidates[0].t + self.cfg.judge_s:
            event = self._judge(self._candidates.pop(0))
            if event is not None:
                out.append(event)
        self.events += out
        return out

    # -- the stages -----------------------------------------------------------------------

    def _impact(self, t: float, g: float) -> None:
        if t < self._quiet_until:
            return
        last = self._candidates[-1] if self._candidates else None
        if last is not None and t - last.t < self.cfg.cluster_s:
            if g > last.peak_g:  # the same fall hitting harder: that is its impact
                last.t, last.peak_g = t, g
            return
        self._candidates.append(_Candidate(t, g))

    def _judge(self, c: _Candidate) -> FallEvent | None:
        cfg = self.cfg
        if c.t < self._quiet_until:
            return None
        t, v, g = self._envelope.t, self._envelope.v, self._envelope.g
        pre = (t >= c.t - cfg.pre_s) & (t < c.t)
        dip = float(g[pre].min()) if pre.any() else 1.0
        if c.peak_g < cfg.hard_impact_g and dip > cfg.dip_g:
            return None
        before = (t >= c.t - cfg.reference_s[0]) & (t < c.t - cfg.reference_s[1])
        if not before.any():  # a stream younger than the reference span: its oldest part
            before = t < c.t - min(cfg.reference_s[1], 0.5)
        after = (t >= c.t + cfg.settle_s) & (t <= c.t + cfg.judge_s)
        if not before.any() or after.sum() < 3:
            return None  # nothing to compare with (a gap in the stream)
        turn = _angle(v[before].mean(axis=0), v[after].mean(axis=0))
        activity = float(g[after].std())
        if turn < cfg.turn_deg or activity > cfg.active_g:
            return None
        below = pre & (g < cfg.dip_g)
        free_fall = float(below.sum()) / ENVELOPE_HZ
        self._quiet_until = c.t + cfg.refractory_s
        # Decided as soon as the judged span was complete: the first bin after it.
        decided = float(t[np.searchsorted(t, c.t + cfg.judge_s)])
        return FallEvent(
            c.t,
            free_fall,
            c.peak_g,
            cfg.judge_s - cfg.settle_s,
            turn,
            dip_g=dip,
            activity_g=activity,
            decided_t=decided,
            site=cfg.site,
        )


class _Envelope:
    """The 50 Hz envelope of the last few seconds: bin times, mean vectors (g), norms.

    A bin is closed when a later sample arrives; the samples of the last, open bin
    are carried to the next block and binned with it, so any cut of the stream into
    blocks gives the same envelope. The store is a buffer twice the span kept,
    shifted down when full: nothing is allocated per block but the block's own bins.
    """

    def __init__(self, keep: int):
        self._keep = keep
        self._t = np.empty(2 * keep)
        self._v = np.empty((2 * keep, 3))
        self._g = np.empty(2 * keep)
        self._n = 0
        self._open_t = np.empty(0)  # the open bin's samples
        self._open_a = np.empty((0, 3))

    @property
    def t(self) -> np.ndarray:
        return self._t[: self._n]

    @property
    def v(self) -> np.ndarray:
        return self._v[: self._n]

    @property
    def g(self) -> np.ndarray:
        return self._g[: self._n]

    @property
    def newest(self) -> float:
        return float(self._t[self._n - 1]) if self._n else -math.inf

    def went_back(self, t0: float) -> bool:
        """True (and the envelope emptied) if ``t0`` is before the open bin: a new clock."""
        open_key = math.floor(self._open_t[0] * ENVELOPE_HZ) if len(self._open_t) else None
        if open_key is not None and math.floor(t0 * ENVELOPE_HZ) < open_key:
            self._n = 0
            self._open_t, self._open_a = np.empty(0), np.empty((0, 3))
            return True
        return False

    def add(self, t: np.ndarray, accel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bin a block; the bins it closed: (centre times, norms in g)."""
        if len(self._open_t):
            t = np.concatenate((self._open_t, t))
            accel = np.concatenate((self._open_a, accel))
        keys = np.floor(t * ENVELOPE_HZ).astype(np.int64)
        bounds = np.flatnonzero(keys[1:] != keys[:-1]) + 1
        last = int(bounds[-1]) if len(bounds) else 0
        self._open_t, self._open_a = t[last:].copy(), accel[last:].copy()
        if not last:
            return np.empty(0), np.empty(0)
        starts = np.concatenate(([0], bounds[:-1]))
        counts = np.diff(np.concatenate((starts, [last])))
        bv = np.add.reduceat(accel[:last], starts, axis=0) / (counts[:, None] * G)
        bt = (keys[starts] + 0.5) * (1.0 / ENVELOPE_HZ)
        bg = np.sqrt(np.einsum("ij,ij->i", bv, bv))
        self._store(bt, bv, bg)
        return bt, bg

    def _store(self, bt: np.ndarray, bv: np.ndarray, bg: np.ndarray) -> None:
        m = len(bt)
        if self._n + m > len(self._t):
            keep = min(self._n, self._keep)
            size = max(len(self._t), keep + m)
            for name in ("_t", "_v", "_g"):
                old = getattr(self, name)
                new = old if size == len(old) else np.empty((size, *old.shape[1:]))
                new[:keep] = old[self._n - keep : self._n]
                setattr(self, name, new)
            self._n = keep
        self._t[self._n : self._n + m] = bt
        self._v[self._n : self._n + m] = bv
        self._g[self._n : self._n + m] = bg
        self._n += m


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 0.0
    return float(np.degrees(np.arccos(np.clip(np.dot(a, b) / (na * nb), -1, 1))))
