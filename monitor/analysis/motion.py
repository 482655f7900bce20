"""What a window says about the wearer's movement: still, reps, walking, running, jumping.

The tremor figures of a window only mean something when the body is still, and a
set only exists when the motion is a repeated voluntary movement. Both questions
are answered from what an accelerometer really holds, the way activity
recognition from body-worn sensors does it (Karantonis et al. 2006, IEEE TITB
10:156; Mathie et al. 2004, Med Biol Eng Comput 42:679; Bao & Intille 2004):

* **gravity and its stability**: the mean of the window is gravity's reaction
  (plus whatever steady acceleration there is); how far it turns between the
  window's first and last third says whether the posture changed;
* **voluntary-band energy** (0.3-3 Hz RMS of the acceleration vector, from the
  tremor analysis): how much the body moves on purpose;
* **impacts**: the largest and smallest ``|a|`` in the window. A foot strike
  lifts ``|a|`` well above 1 g and the fall onto the next step drops it well
  below (MobiFall walks: 0.3-0.7 g), running and jumping have a flight phase
  where it falls near 0 g; a rep's turns lift ``|a|`` too, but a band row keeps
  it above 0.75 g;
* **cadence**: the dominant rhythm of ``|a|`` between 0.3 and 4 Hz. Walking
  and stairs step at 1.4-2.4 Hz (two steps a stride), running at 2.4-3.4 Hz
  (Pachi & Ji 2003), reps are slower (0.2-1.5 Hz);
* **impact share**: tremor-band (3-18 Hz) RMS over voluntary-band RMS. Heel
  strikes put as much in the band above 3 Hz as below it (about 1 on the
  MobiFall walks), a rep puts a quarter (SPAR sets, median 0.24).

On the development recordings (SPAR wrist sets, MobiFall pocket ADL), quiet
standing has a voluntary RMS of 9 mg (95 % below 40 mg) and turns gravity by
under 5 degrees in a window; every exercise set moves at more than 140 mg in
95 % of its windows. The thresholds sit in the gap with room on both sides.

Only the voluntary and impact figures depend on where the sensor sits: a bench
clip feels about a tenth of the athlete's motion (``motion_gain``), and it never
walks, so it is never called walking, running or jumping::

    feats = motion_features(windows, fs=200.0)        # (W, n, 3) -> W MotionFeatures
    kind = classify(feats[0], metrics[0], MotionConfig())
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..units import G
from .tremor import TremorMetrics

__all__ = [
    "JUMPING",
    "KINDS",
    "LOCOMOTION",
    "MOVING",
    "REPS",
    "RUNNING",
    "STILL",
    "WALKING",
    "MotionConfig",
    "MotionFeatures",
    "classify",
    "motion_features",
]

STILL, REPS, WALKING, RUNNING, JUMPING, MOVING = (
    "still",
    "reps",
    "walking",
    "running",
    "jumping",
    "moving",
)
KINDS = (STILL, REPS, WALKING, RUNNING, JUMPING, MOVING)
"""Window kinds. ``moving`` is movement that is none of the others (sitting down,
reaching, a turn of the wrist); ``walking`` includes stairs, which an
accelerometer alone does not tell from level walking."""

LOCOMOTION = frozenset({WALKING, RUNNING, JUMPING})

CADENCE_BAND_HZ = (0.3, 4.0)
CADENCE_RATE_HZ = 50.0


@dataclass(frozen=True)
class MotionFeatures:
    """Movement figures of one window (the same window the tremor metrics describe).

    Attributes:
        gravity: mean acceleration vector of the window, m/s^2 (gravity's reaction).
        tilt_deg: angle between the mean vectors of the window's first and last third.
        mag_max_g, mag_min_g: extremes of ``|a|`` in g.
        cadence_hz: dominant frequency of ``|a|`` in 0.3-4 Hz (None if ``|a|`` is flat).
    """

    gravity: tuple[float, float, float]
    tilt_deg: float
    mag_max_g: float
    mag_min_g: float
    cadence_hz: float | None

    @property
    def mag_range_g(self) -> float:
        return self.mag_max_g - self.mag_min_g


@dataclass(frozen=True)
class MotionConfig:
    """Thresholds of :func:`classify`, for a limb- or body-worn sensor (see ``motion_gain``)."""

    still_mg: float = 30.0  # voluntary-band RMS below this ...
    still_tilt_deg: float = 8.0  # ... and gravity turning less than this in a window: still
    tremor_dominates: float = 0.2  # or voluntary RMS under this share of the tremor band's
    move_mg: float = 60.0  # voluntary-band RMS of a rep
    step_hz: tuple[float, float] = (1.3, 3.6)  # cadence of steps (walking, stairs, running)
    step_share: float = 0.45  # impact share of a step (tremor-band / voluntary-band RMS)
    step_peak_g: float = 1.25  # a foot strike lifts |a| above this ...
    step_dip_g: float = 0.75  # ... and the body's fall onto the next step drops it below this
    flight_g: float = 0.35  # |a| below this: in the air (running, jumping)
    landing_g: float = 1.8  # ... and above this on landing
    run_hz: float = 2.3  # flight at this cadence or faster is running, slower jumping
    motion_gain: float = 1.0  # what reaches the sensor of the athlete's motion (bench 0.1)
    locomotion: bool = True  # can the sensor walk (False on a bench)

    @classmethod
    def for_placement(cls, placement: str, **overrides) -> MotionConfig:
        """A bench clip feels a tenth of the motion and does not walk; worn sensors the whole."""
        if placement == "bench":
            overrides.setdefault("motion_gain", 0.1)
            overrides.setdefault("locomotion", False)
        return cls(**overrides)


@lru_cache(maxsize=32)
def _cadence_plan(n: int, fs: float) -> tuple[np.ndarray, np.ndarray, int]:
    nfft = 1 << max(8, math.ceil(math.log2(4 * n)))
    freqs = np.fft.rfftfreq(nfft, 1.0 / fs)
    band = np.flatnonzero((freqs >= CADENCE_BAND_HZ[0]) & (freqs <= CADENCE_BAND_HZ[1]))
    hann = np.hanning(n)
    hann.flags.writeable = False
    return hann, freqs[band], nfft


def motion_features(windows: np.ndarray, fs: float) -> list[MotionFeatures]:
    """:class:`MotionFeatures` of each window of a ``(W, n, 3)`` stack (m/s^2, gravity in)."""
    windows = np.asarray(windows, dtype=float)
    if windows.ndim != 3 or windows.shape[2] != 3 or windows.shape[1] < 3:
        raise ValueError(f"windows must be (W, n, 3) with n >= 3, got {windows.shape}")
    w, n, _ = windows.shape
    if w == 0:
        return []
    mean = windows.mean(axis=1)
    third = max(1, n // 3)
    a, b = windows[:, :third].mean(axis=1), windows[:, -third:].mean(axis=1)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    cos = np.einsum("ij,ij->i", a, b) / np.maximum(na * nb, 1e-12)
    tilt = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    mag = np.sqrt(np.einsum("wij,wij->wi", windows, windows)) / G
    mag_max, mag_min = mag.max(axis=1), mag.min(axis=1)
    # the cadence lives below 4 Hz: |a| averaged down to about 50 Hz is plenty, and cheap
    q = max(1, int(fs // CADENCE_RATE_HZ))
    slow = mag[:, : n // q * q].reshape(w, -1, q).mean(axis=2) if q > 1 else mag
    rate = fs / q
    hann, band_freqs, nfft = _cadence_plan(slow.shape[1], float(rate))
    if band_freqs.size:
        dev = (slow - slow.mean(axis=1, keepdims=True)) * hann
        power = np.abs(np.fft.rfft(dev, n=nfft, axis=1)) ** 2
        lo = int(np.searchsorted(np.fft.rfftfreq(nfft, 1.0 / rate), band_freqs[0]))
        power = power[:, lo : lo + band_freqs.size]
        peak = power.argmax(axis=1)
        flat = power.max(axis=1) <= 1e-18
        cadence = [None if f else float(band_freqs[k]) for k, f in zip(peak, flat, strict=True)]
    else:
        cadence = [None] * w
    return [
        MotionFeatures((float(g[0]), float(g[1]), float(g[2])), float(t), float(hi), float(lo), c)
        for g, t, hi, lo, c in zip(mean, tilt, mag_max, mag_min, cadence, strict=True)
    ]


def classify(features: MotionFeatures, metrics: TremorMetrics, config: MotionConfig) -> str:
    """The kind of movement one window shows (one of :data:`KINDS`)."""
    c = config
    vol = metrics.band_rms_mg.get("voluntary", 0.0)
    high = metrics.band_rms_mg.get("tremor", 0.0)
    gain = c.motion_gain
    # Gravity's direction is the same at any placement: the tilt threshold does not scale.
    # |a| is not asked: a strong tremor (or a knock, which the stream flags as disturbed)
    # swings it without any voluntary movement. Nor is a strong tremor movement when the
    # posture holds: its beats and leakage put a little below 3 Hz, but far less than in
    # its own band (any gait or rep puts more below 3 Hz than a fifth of what is above).
    quiet = vol < c.still_mg * gain or vol < c.tremor_dominates * high
    if quiet and features.tilt_deg < c.still_tilt_deg:
        return STILL
    cadence = features.cadence_hz
    if c.locomotion and cadence is not None:
        if (
            features.mag_min_g < c.flight_g
            and features.mag_max_g > c.landing_g
            and cadence >= c.step_hz[0]
        ):
            return RUNNING if cadence >= c.run_hz else JUMPING
        if (
            c.step_hz[0] <= cadence <= c.step_hz[1]
            and features.mag_max_g >= c.step_peak_g
            and features.mag_min_g < c.step_dip_g
            and high >= c.step_share * vol
        ):
            return WALKING
    if vol >= c.move_mg * gain:
        return REPS
    return MOVING
