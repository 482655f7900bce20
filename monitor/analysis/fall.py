"""Falls and faints on a body-worn sensor: support lost, an impact, then lying there.

A fall is over in well under a second, far shorter than a tremor window, so the
detector works on the raw stream. It looks for what real falls have in common
rather than the textbook free fall::

    falls = FallDetector(site="thigh")          # chest (default), waist or thigh
    for event in falls.feed(block.t, block.accel):
        event.t, event.impact_g, event.turn_deg, event.decided_t

Why not free fall. People falling from standing do not drop like a stone: they
buckle, twist and reach out, so |a| dips only briefly. In the MobiFall falls
(phone in the trouser pocket, 144 falls of 12 people) the longest run under
0.5 g has a median of 0.03 s, yet every fall has an impact of 2 to 3.4 g and
ends with the thigh turned 45 to 150 degrees. Bagala et al. (2012, PLoS One
7:e37062) found the same on real-world falls of older people: thresholds set on
simulated free falls caught about half of them.

The stages, each a figure the fall literature agrees on:

1. **Impact** (Bourke et al. 2007, Gait Posture 26:194; Kangas et al. 2008, Gait
   Posture 28:285): the envelope of |a| (20 ms means, see below) reaches
   ``hard_impact_g``, or reaches ``impact_g`` less than ``pre_s`` after |a| fell
   below ``dip_g`` (support lost: Bourke's lower fall threshold, 0.41 g at the
   trunk and 0.6 g at the thigh; Kangas' start of fall, 0.6 g). Impacts closer
   than ``cluster_s`` are one fall (knees, then hands) and its largest peak is
   the impact.
2. **Posture** (Kangas 2008: posture 2 s after the impact; Karantonis et al.
   2006): over ``settle_s`` to ``judge_s`` after the impact, gravity points at
   least ``turn_deg`` away from where it pointed 2 to 1 s before it. The trunk
   lies down in a fall (60 degrees, Kangas' 0.5 g vertical) but stays upright
   when sitting down hard; the thigh turns horizontal in a fall but also when
   sitting, which is why the thigh needs a harder impact or a dip as well.
3. **Little activity** (the inactivity stage of Karantonis 2006 and Bourke 2010,
   J Biomech 43:3051): over the same window the standard deviation of |a| stays
   below ``active_g``. It tells a fall from a burpee or a run of jumps that goes
   on; a person lying and moving a little (0.02-0.2 g) still counts.

Per-site starting values are in :data:`SITE_PRESETS`. The thigh values were
checked on the MobiFall development split (``bench/bench_falls.py``); chest and
waist follow the trunk figures above, with the lying test doing the work the
thigh cannot.

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

import numpy as np

G = 9.80665

SITES = ("chest", "waist", "thigh")
"""Where on the body a ``placement = "body"`` sensor sits."""

ENVELOPE_HZ = 50.0
"""Bins per second of the envelope the detector works on (20 ms means)."""


@dataclass(frozen=True)
class FallConfig:
    """Thresholds of the three stages; :meth:`for_site` gives the starting values."""

    site: str = "chest"
    impact_g: float = 1.8        # an impact this hard counts after a dip ...
    dip_g: float = 0.6           # ... below this within pre_s before it (support lost)
    hard_impact_g: float = 2.2   # an impact this hard counts on its own
    pre_s: float = 1.0
    cluster_s: float = 1.0       # impacts closer than this belong to one fall
    reference_s: tuple[float, float] = (2.0, 1.0)  # posture before: gravity over this span before
    settle_s: float = 1.0        # rebounds and rolling after the impact are not judged ...
    judge_s: float = 2.5         # ... posture and activity are, from settle_s to judge_s after it
    turn_deg: float = 60.0       # gravity at least this far from where it was before
    active_g: float = 0.3        # the standard deviation of |a| over the judged span, at most
    refractory_s: float = 10.0   # impacts this soon after a reported fall are the same fall

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


SITE_PRESETS: dict[str, dict[str, float]] = {
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

    t: float            # the impact (its largest peak)
    free_fall_s: float
    impact_g: float
    still_s: float
    turn_deg: float
    dip_g: float = math.nan       # the lowest |a| in the second before the impact
    activity_g: float = math.nan  # standard deviation of |a| over the judged span
    decided_t: float = math.nan   # when the detector decided (t + judge_s, and a bin)
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
        self._keep_s = config.reference_s[0] + config.judge_s + config.cluster_s + 0.5
        self._bin: tuple[int, np.ndarray, int] | None = None  # the open bin: key, sum, count
        self._t = np.empty(0)
        self._v = np.empty((0, 3))      # envelope: mean vector per bin, in g
        self._g = np.empty(0)           # its norm
        self._candidates: list[_Candidate] = []
        self._quiet_until = -math.inf   # refractory after a reported fall
        self.events: list[FallEvent] = []

    def feed(self, t: np.ndarray, accel: np.ndarray) -> list[FallEvent]:
        t = np.asarray(t, dtype=float)
        if len(t) == 0:
            return []
        bt, bv = self._envelope(t, np.asarray(accel, dtype=float))
        if len(bt) == 0:
            return []
        bg = np.sqrt(np.einsum("ij,ij->i", bv, bv))
        self._append(bt, bv, bg)
        # Only bins at impact level are looked at one by one; ordinary movement has none.
        for i in np.flatnonzero(bg >= self.cfg.impact_g):
            self._impact(float(bt[i]), float(bg[i]))
        out = []
        newest = float(self._t[-1])
        while self._candidates and newest >= self._candidates[0].t + self.cfg.judge_s:
            event = self._judge(self._candidates.pop(0), newest)
            if event is not None:
                out.append(event)
        self.events += out
        return out

    # -- the envelope ---------------------------------------------------------------------

    def _envelope(self, t: np.ndarray, accel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Close the bins this block completes: (bin centre times, mean vectors in g).

        The last bin stays open for the next block, so any cut of the stream into
        blocks gives the same envelope.
        """
        keys = np.floor(t * ENVELOPE_HZ).astype(np.int64)
        if self._bin is not None and keys[0] < self._bin[0]:
            self._reset()  # the clock went back: a new stream
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        sums = np.add.reduceat(accel, starts, axis=0) / G
        counts = np.diff(np.r_[starts, len(keys)])
        keys = keys[starts]
        if self._bin is not None:
            key, total, n = self._bin
            if keys[0] == key:
                sums[0] += total
                counts[0] += n
            else:
                keys = np.r_[key, keys]
                sums = np.vstack((total, sums))
                counts = np.r_[n, counts]
        self._bin = (int(keys[-1]), sums[-1].copy(), int(counts[-1]))
        return (keys[:-1] + 0.5) / ENVELOPE_HZ, sums[:-1] / counts[:-1, None]

    def _append(self, bt: np.ndarray, bv: np.ndarray, bg: np.ndarray) -> None:
        self._t = np.concatenate((self._t, bt))
        self._v = np.concatenate((self._v, bv))
        self._g = np.concatenate((self._g, bg))
        first = int(np.searchsorted(self._t, self._t[-1] - self._keep_s))
        if first:
            self._t, self._v, self._g = self._t[first:], self._v[first:], self._g[first:]

    def _reset(self) -> None:
        self._bin = None
        self._t, self._v, self._g = np.empty(0), np.empty((0, 3)), np.empty(0)
        self._candidates = []

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

    def _judge(self, c: _Candidate, newest: float) -> FallEvent | None:
        cfg = self.cfg
        if c.t < self._quiet_until:
            return None
        t, v, g = self._t, self._v, self._g
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
        return FallEvent(c.t, free_fall, c.peak_g, cfg.judge_s - cfg.settle_s, turn,
                         dip_g=dip, activity_g=activity, decided_t=newest, site=cfg.site)


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 0.0
    return float(np.degrees(np.arccos(np.clip(np.dot(a, b) / (na * nb), -1, 1))))
