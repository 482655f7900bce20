"""Tremor metrics of one window of three-axis acceleration.

A window becomes numbers the way PHYSIOLOGY.md describes (and PDkit, Luft et al.
2019 and di Biase et al. 2017 do it):

1. **Welch PSD per axis.** The window is cut into Hann-tapered segments with 50%
   overlap (one segment, the whole window, when the window is no longer than
   ``segment_s``). Each segment's mean is removed first. That mean *is* gravity
   (plus whatever slow drift the window holds), whichever way the sensor is
   turned, so no tilt estimate or time-domain high-pass is needed.
2. **Sum of the three axes' PSDs.** The summed power is the power of the
   acceleration *vector*, which a rotation of the sensor does not change: every
   figure below is independent of orientation.
3. **Bands are integrals of that PSD.** Voluntary motion (0.3-3 Hz) and tremor
   (3-18 Hz) are told apart by the band edges alone. The Hann taper's sidelobes
   fall off at 18 dB per octave, so even large slow motion hardly leaks into the
   tremor band (the tests mix in 300 mg of it). Integration is the rectangle
   rule: each bin is a strip ``df`` wide centred on its frequency, and a strip
   cut by a band edge counts in proportion, so adjacent bands add up exactly and
   a band edge need not fall on a bin. The DC bin never counts: it is where
   gravity lives. A rhythm within two bins of an edge (0.8 Hz with a 2.5 s
   window) is shared between the bands it straddles: one at exactly 3.0 Hz
   counts half as voluntary motion, half as tremor.
4. **The peak** is the largest bin whose centre lies in the tremor band, refined
   by fitting a parabola through the logarithm of it and its two neighbours (for
   a Hann lobe this leaves an error of a few hundredths of a bin).
5. **Gates.** A window is ``moving`` when its voluntary-band power exceeds its
   tremor-band power (ParaDigMa drops such windows the same way). On real bodies
   the band edge alone does not keep motion out: a moving wrist puts its reps'
   harmonics (the jerk at each turn) and its steps' strikes in 3-18 Hz, 10-50
   times a rested hand, peaking at the 3 Hz edge. So these figures describe the
   window, not yet the athlete's tremor: :mod:`monitor.analysis.motion` says
   whether the body was still, and :mod:`monitor.analysis.activity` grades a
   moving window only against a reference the motion shares (its set's first
   reps), never against the rested baseline. Numbers that
   describe the tremor itself (``rms_mg``, ``peak_hz``, ``bandwidth_hz``,
   ``regularity``, ``fatigue_ratio``) are ``None`` when the tremor-band RMS is
   no more than twice what the sensor's own noise puts there: below that the
   figures describe the sensor, not the athlete. ``band_power`` and
   ``band_rms_mg`` are always reported: they are what the sensor saw.

Speed: on a Pi this runs every 0.5 s per sensor, and a bench replays hours of
1 kHz data, so the per-window work is one ``rfft`` of the raw segments (Hann
taper and detrend are then applied in the frequency domain, see
:func:`_tapered_spectra`), a few dozen low bins kept, and everything after that
vectorised over windows. Plans (frequencies, band weights, scales) are cached
per window length and sample rate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..units import G

__all__ = [
    "DEFAULT_BANDS",
    "DEFAULT_NOISE_FLOOR_MG",
    "DEFAULT_SEGMENT_S",
    "MIN_WINDOW_S",
    "Bands",
    "G",
    "TremorMetrics",
    "analyze",
    "analyze_many",
    "sliding_windows",
    "welch",
]

DEFAULT_SEGMENT_S = 4.0
"""Longest Welch segment. 2.5-4 s is the literature's range; 4 s gives 0.25 Hz
bins on long windows, and the default 2.5 s window is then one segment."""

DEFAULT_NOISE_FLOOR_MG = 1.7
"""MPU-6050: 400 ug/sqrt(Hz) over the 2-20 Hz reference band, per axis."""

NOISE_FLOOR_REF_BAND_HZ = 18.0
"""Width of the band (2-20 Hz) in which sensor noise floors are quoted."""

MIN_WINDOW_S = 1.0
"""Shortest window analysed: below 1 s a bin is wider than 1 Hz and the 3 Hz
edge between voluntary motion and tremor cannot be resolved."""

DEFAULT_MOVING_RATIO = 1.0
DEFAULT_PEAK_HALFWIDTH_HZ = 1.0

_NUMERIC_FLOOR_MG = 1e-6  # rounding residue of removing 1 g; never called tremor
_TINY_POWER = 1e-300  # keeps log() finite on an all-zero spectrum
_CHUNK = 16  # windows per rfft call: big enough to amortise Python, small enough for cache


@dataclass(frozen=True)
class Bands:
    """The frequency bands, in Hz, as ``(low, high)`` pairs.

    The four roles are fixed because the analysis needs to know which band is
    which; their edges are data, so a config file can move them::

        Bands(tremor=(3.0, 15.0))                       # keep the other defaults
        Bands.from_mapping({"fatigue": [4, 8]})         # as read from TOML
    """

    voluntary: tuple[float, float] = (0.3, 3.0)
    fatigue: tuple[float, float] = (4.0, 7.0)
    physiological: tuple[float, float] = (7.0, 13.0)
    tremor: tuple[float, float] = (3.0, 18.0)
    #: above anything a body does: a dropped weight or a knock rings here (not tremor)
    impact: tuple[float, float] = (25.0, 90.0)

    def __post_init__(self) -> None:
        for name in self.names():
            edges = getattr(self, name)
            try:
                lo, hi = (float(v) for v in edges)
            except (TypeError, ValueError):
                raise ValueError(
                    f"band {name!r} must be a pair (low_hz, high_hz), got {edges!r}"
                ) from None
            if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 <= lo < hi):
                raise ValueError(f"band {name!r} needs 0 <= low < high, got ({lo}, {hi})")
            object.__setattr__(self, name, (lo, hi))  # normalise lists and ints

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> Bands:
        """Bands from a name -> (low, high) mapping; names left out keep their defaults."""
        unknown = set(mapping) - set(cls.names())
        if unknown:
            raise ValueError(f"unknown band(s) {sorted(unknown)}; known: {', '.join(cls.names())}")
        return cls(**{name: tuple(edges) for name, edges in mapping.items()})

    def items(self) -> tuple[tuple[str, tuple[float, float]], ...]:
        return tuple((name, getattr(self, name)) for name in self.names())


DEFAULT_BANDS = Bands()


@dataclass(frozen=True)
class TremorMetrics:
    """What one window says about tremor.

    ``rms_mg``, ``peak_hz``, ``bandwidth_hz``, ``regularity`` and
    ``fatigue_ratio`` are ``None`` when ``measurable`` is False::

        m = analyze(window, fs=1000.0)
        if m.measurable and not m.moving:
            ratio = m.rms_mg / baseline_mg        # the figure alerts are built on
        payload = m.as_dict()                     # JSON-ready; None becomes null

    Attributes:
        rms_mg: RMS of the acceleration vector in the tremor band, milli-g.
            Sensor noise in the band is included, not subtracted (see
            :func:`analyze`).
        peak_hz: dominant frequency in the tremor band.
        bandwidth_hz: width of the peak at half its power. A pure rhythm still
            shows the Hann taper's own width, about 1.3-1.5 bins
            (``resolution_hz`` each).
        regularity: share of tremor-band power within ``peak_halfwidth_hz``
            (default 1 Hz, never less than the Hann main lobe's half-width of
            two bins) of the peak. 1.0 for a pure rhythm; white noise over
            3-18 Hz gives about 2/15 = 0.13. Chosen over spectral flatness
            because it reads directly ("80% of the shaking is at the peak") and
            does not swing on the near-empty bins far from the peak.
        fatigue_ratio: fatigue-band power / physiological-band power
            (4-7 Hz over 7-13 Hz by default); rises as fatigue adds its slower
            component. ``None`` also when the physiological band is empty.
        band_power: band name -> power, (m/s^2)^2.
        band_rms_mg: band name -> RMS, milli-g.
        moving: voluntary-band power exceeds ``moving_ratio`` times the tremor
            band's, and is itself above twice the sensor noise in that band. The
            tremor figures of such a window are not trustworthy: reps and
            repositioning leak into them.
        measurable: tremor-band RMS above twice the sensor's noise in the band.
        floor_mg: RMS that the sensor's noise alone puts in the tremor band
            (the measurability threshold is twice this).
        n, fs: samples and sample rate of the window.
        nperseg, segments: Welch segment length (samples) and count; segments
            overlap by ``nperseg // 2``.
        resolution_hz: Welch bin width, ``fs / nperseg``.
    """

    rms_mg: float | None
    peak_hz: float | None
    bandwidth_hz: float | None
    regularity: float | None
    fatigue_ratio: float | None
    band_power: dict[str, float]
    band_rms_mg: dict[str, float]
    moving: bool
    measurable: bool
    floor_mg: float
    n: int
    fs: float
    nperseg: int
    segments: int
    resolution_hz: float

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (None stays None, i.e. null)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["band_power"] = dict(self.band_power)
        out["band_rms_mg"] = dict(self.band_rms_mg)
        return out


# --------------------------------------------------------------------------- Welch


def _tapered_spectra(segments: np.ndarray, n_bins: int) -> np.ndarray:
    """``rfft(hann * (s - mean(s)))[:n_bins]`` for each segment ``s`` (last axis).

    A periodic Hann window is ``0.5 - 0.25 e^{+i2pi m/n} - 0.25 e^{-i2pi m/n}``,
    so tapering in time is a three-tap filter across neighbouring bins of the
    plain DFT, and a segment's mean lives in bin 0 alone. One rfft of the raw
    samples then gives both, applied only to the few bins we keep, instead of
    two more passes over every sample. The mirror ``X[-k] = conj(X[k])`` of a
    real signal supplies the neighbours beyond either end.
    """
    n = segments.shape[-1]
    spec = np.fft.rfft(segments, axis=-1)
    spec[..., 0] = 0.0  # constant detrend
    out = 0.5 * spec[..., :n_bins]
    out[..., 1:] -= 0.25 * spec[..., : n_bins - 1]
    out[..., 0] -= 0.25 * np.conj(spec[..., 1])
    if n_bins < spec.shape[-1]:
        out -= 0.25 * spec[..., 1 : n_bins + 1]
    else:
        out[..., :-1] -= 0.25 * spec[..., 1:n_bins]
        out[..., -1] -= 0.25 * np.conj(spec[..., n - n_bins])
    return out


@lru_cache(maxsize=64)
def _density_scale(nperseg: int, fs: float, n_bins: int) -> np.ndarray:
    """Per-bin factor turning ``|X|^2`` into a one-sided density, (unit^2)/Hz."""
    m = np.arange(nperseg)
    hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * m / nperseg)  # periodic, as scipy's "hann"
    scale = np.full(n_bins, 1.0 / (fs * float(np.dot(hann, hann))))
    k = np.arange(n_bins)
    # every bin but DC and (for even nperseg) Nyquist stands for its negative twin too
    scale[(k > 0) & (2 * k < nperseg)] *= 2.0
    scale.flags.writeable = False
    return scale


def _segment_view(x: np.ndarray, nperseg: int, step: int, axis: int) -> np.ndarray:
    """Overlapping segments of ``x`` along ``axis``, as a view; the segment axis goes last."""
    view = sliding_window_view(x, nperseg, axis=axis)
    index = [slice(None)] * view.ndim
    index[axis] = slice(None, None, step)
    return view[tuple(index)]


def welch(
    x: np.ndarray,
    fs: float,
    *,
    nperseg: int,
    noverlap: int | None = None,
    n_bins: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One-sided Welch PSD with numpy only, time along axis 0.

    Hann window (periodic), constant detrend, density scaling, mean over
    segments: the numbers ``scipy.signal.welch(x, fs, window="hann",
    nperseg=nperseg, noverlap=noverlap, axis=0)`` gives. ``n_bins`` keeps only
    the lowest bins (all by default).

    Example::

        f, pxx = welch(accel, 1000.0, nperseg=2500)   # accel (N, 3) -> pxx (1251, 3)
        total = pxx.sum(axis=1)                       # PSD of the vector, orientation-free
    """
    x = np.asarray(x, dtype=float)
    if x.ndim not in (1, 2):
        raise ValueError(f"x must be (N,) or (N, C), got shape {x.shape}")
    n = x.shape[0]
    if not 2 <= nperseg <= n:
        raise ValueError(f"nperseg must be between 2 and the {n} samples, got {nperseg}")
    noverlap = nperseg // 2 if noverlap is None else noverlap
    if not 0 <= noverlap < nperseg:
        raise ValueError(f"noverlap must be in [0, nperseg), got {noverlap}")
    total_bins = nperseg // 2 + 1
    n_bins = total_bins if n_bins is None else min(n_bins, total_bins)
    segments = _segment_view(x, nperseg, nperseg - noverlap, axis=0)  # (S, [C,] nperseg)
    spec = _tapered_spectra(segments, n_bins)
    power = (spec.real**2 + spec.imag**2).mean(axis=0) * _density_scale(nperseg, float(fs), n_bins)
    return np.arange(n_bins) * (fs / nperseg), power.T


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True, eq=False)
class _Plan:
    """Everything about a window length and option set that does not depend on the data."""

    nperseg: int
    step: int
    segments: int
    n_bins: int
    df: float
    strip_lo: np.ndarray  # (K,) edges of each bin's strip; the DC strip is empty
    strip_hi: np.ndarray
    scale: np.ndarray  # (K,) |X|^2 -> one-sided density
    weights: np.ndarray  # (K, bands): Hz of each bin's strip inside each band
    tremor_lo: float
    tremor_hi: float
    peak_k0: int  # first and last bin whose centre is in the tremor band
    peak_k1: int
    floor_tremor_mg: float
    floor_voluntary_mg: float


def _segmenting(n: int, fs: float, segment_s: float) -> tuple[int, int]:
    """Segment length and step so that 50%-overlapping segments tile the window.

    A fixed segment length would drop the window's tail whenever the window is
    not a whole number of half-segments long -- and the tail is the newest data.
    So the count is chosen first (the fewest segments no longer than
    ``segment_s``) and the length follows from it.
    """
    longest = max(8, round(segment_s * fs))
    if n <= longest:
        return n, n
    count = math.ceil(2.0 * n / longest - 1.0)
    nperseg = (2 * n) // (count + 1)
    while nperseg + (count - 1) * (nperseg - nperseg // 2) > n:
        nperseg -= 1
    return nperseg, nperseg - nperseg // 2


def _overlap(strip_lo, strip_hi, lo, hi):
    """Hz of each bin's strip ``[strip_lo, strip_hi]`` that lies inside ``[lo, hi]``."""
    return np.maximum(np.minimum(strip_hi, hi) - np.maximum(strip_lo, lo), 0.0)


def _noise_rms_mg(noise_floor_mg: float, width_hz: float) -> float:
    """RMS that white sensor noise puts in a band of the 3-axis vector.

    ``noise_floor_mg`` is quoted per axis over the 18 Hz-wide 2-20 Hz band, as
    datasheets and PHYSIOLOGY.md give it; three axes of it add in power.
    """
    return noise_floor_mg * math.sqrt(3.0 * max(width_hz, 0.0) / NOISE_FLOOR_REF_BAND_HZ)


@lru_cache(maxsize=64)
def _plan(n: int, fs: float, bands: Bands, segment_s: float, noise_floor_mg: float) -> _Plan:
    if not (math.isfinite(segment_s) and segment_s > 0):
        raise ValueError(f"segment_s must be a positive number of seconds, got {segment_s}")
    if not (math.isfinite(noise_floor_mg) and noise_floor_mg >= 0):
        raise ValueError(f"noise_floor_mg must be >= 0, got {noise_floor_mg}")
    nperseg, step = _segmenting(n, fs, segment_s)
    segments = (n - nperseg) // step + 1
    df = fs / nperseg
    nyquist = fs / 2.0
    top = min(max(hi for _, (_, hi) in bands.items()), nyquist)
    # a few bins past the top band edge: the peak's right neighbour and half-power point
    n_bins = min(nperseg // 2 + 1, int(top / df) + 4)
    freqs = np.arange(n_bins) * df
    strip_lo, strip_hi = freqs - df / 2, freqs + df / 2
    strip_lo[0] = strip_hi[0] = 0.0  # DC holds gravity's residue: never part of a band

    weights = np.empty((n_bins, len(_BAND_NAMES)))
    for j, (_, (lo, hi)) in enumerate(bands.items()):
        weights[:, j] = _overlap(strip_lo, strip_hi, lo, min(hi, nyquist))

    tremor_lo, tremor_hi = bands.tremor[0], min(bands.tremor[1], nyquist)
    peak_k0 = max(1, math.ceil(tremor_lo / df - 1e-9))
    # the peak bin needs a right neighbour for its parabola
    peak_k1 = min(n_bins - 2, math.floor(tremor_hi / df + 1e-9))
    if peak_k1 - peak_k0 < 2:
        raise ValueError(
            f"the tremor band {bands.tremor} Hz holds fewer than 3 frequency bins at "
            f"fs={fs:g} Hz with {nperseg}-sample segments ({df:.3g} Hz apart); "
            "use a higher sample rate or a longer window"
        )
    for array in (strip_lo, strip_hi, weights):
        array.flags.writeable = False
    return _Plan(
        nperseg=nperseg,
        step=step,
        segments=segments,
        n_bins=n_bins,
        df=df,
        strip_lo=strip_lo,
        strip_hi=strip_hi,
        scale=_density_scale(nperseg, fs, n_bins),
        weights=weights,
        tremor_lo=tremor_lo,
        tremor_hi=tremor_hi,
        peak_k0=peak_k0,
        peak_k1=peak_k1,
        floor_tremor_mg=_noise_rms_mg(noise_floor_mg, tremor_hi - tremor_lo),
        floor_voluntary_mg=_noise_rms_mg(
            noise_floor_mg, min(bands.voluntary[1], nyquist) - bands.voluntary[0]
        ),
    )


# --------------------------------------------------------------------------- analysis
#
# Everything below works on a (W, K) stack of spectra at once, one row per
# window: a few dozen numpy calls per batch whatever its size, which is what
# keeps both the single window and the hour-long replay fast.


def _check_fs(fs: float) -> float:
    try:
        fs = float(fs)
    except (TypeError, ValueError):
        raise ValueError(f"fs must be a number of Hz, got {fs!r}") from None
    if not (math.isfinite(fs) and fs > 0):
        raise ValueError(f"fs must be a positive sample rate in Hz, got {fs}")
    return fs


def _check_length(n: int, fs: float) -> None:
    if n < 8 or n < MIN_WINDOW_S * fs * (1 - 1e-9):
        raise ValueError(
            f"a window needs at least {MIN_WINDOW_S:g} s of samples "
            f"({max(8, math.ceil(MIN_WINDOW_S * fs))} at fs={fs:g} Hz), got {n}"
        )


def _vector_psd(windows: np.ndarray, plan: _Plan) -> np.ndarray:
    """(W, n, 3) windows -> (W, K) PSD of the acceleration vector (sum of the axes)."""
    psd = np.empty((windows.shape[0], plan.n_bins))
    for start in range(0, windows.shape[0], _CHUNK):
        chunk = windows[start : start + _CHUNK]
        if plan.segments == 1:
            segs = chunk[:, None, : plan.nperseg].transpose(0, 1, 3, 2)
        else:
            segs = _segment_view(chunk, plan.nperseg, plan.step, axis=1)[:, : plan.segments]
        spec = _tapered_spectra(segs, plan.n_bins)  # (w, S, 3, K) complex
        power = spec.real**2 + spec.imag**2
        psd[start : start + _CHUNK] = power.sum(axis=2).mean(axis=1)
    psd *= plan.scale
    return psd


def _peaks(psd: np.ndarray, plan: _Plan):
    """Interpolated peak frequency, peak power and peak bin of each row."""
    rows = np.arange(psd.shape[0])[:, None]
    idx = plan.peak_k0 + psd[:, plan.peak_k0 : plan.peak_k1 + 1].argmax(axis=1)
    a, b, c = np.log(np.maximum(psd[rows, idx[:, None] + _NEIGHBOURS], _TINY_POWER)).T
    curvature = a - 2.0 * b + c
    # only a true local maximum is refined (then |delta| <= 0.5 bin); a band-edge
    # bin that keeps rising outside the band is not a tremor peak and stays put
    local = (b >= a) & (b >= c) & (curvature < 0)
    delta = 0.5 * (a - c) / np.where(local, curvature, -np.inf)
    peak_hz = np.minimum(np.maximum((idx + delta) * plan.df, plan.tremor_lo), plan.tremor_hi)
    peak_power = np.exp(b - 0.25 * (a - c) * delta)
    return peak_hz, peak_power, idx


def _half_power_width(psd: np.ndarray, plan: _Plan, idx: np.ndarray, peak_power: np.ndarray):
    """Distance between the points either side of the peak where the PSD falls to half.

    Linear interpolation between the last bin above half power and the first
    below it; if the PSD never falls that far, the analysed range's end counts.
    """
    k = plan.n_bins
    bins = np.arange(k)
    half = 0.5 * peak_power[:, None]
    below = psd < half
    left = np.where(below & (bins < idx[:, None]), bins, -1).max(axis=1)
    right = np.where(below & (bins > idx[:, None]), bins, k).min(axis=1)
    # (W, 2): the bin below half and its neighbour toward the peak, left and right
    low = np.stack((left, right), axis=1)
    found = (low >= 0) & (low < k)
    low = np.minimum(np.maximum(low, 0), k - 1)
    high = np.minimum(np.maximum(low + _TOWARD_PEAK, 0), k - 1)
    rows = np.arange(psd.shape[0])[:, None]
    p_low, p_high = psd[rows, low], psd[rows, high]
    rise = p_high - p_low
    # a share of the step between the two bins, kept within it (and overflow-free)
    frac = np.minimum(half - p_low, rise) / np.where(rise > 0, rise, np.inf)
    edge = np.where(found, low + _TOWARD_PEAK * np.maximum(frac, 0.0), low) * plan.df
    return np.maximum(edge[:, 1] - edge[:, 0], 0.0)


def _regularity(psd, plan: _Plan, peak_hz, tremor_power, halfwidth_hz: float) -> np.ndarray:
    h = max(halfwidth_hz, 2.0 * plan.df)  # never narrower than the Hann main lobe
    lo = np.maximum(peak_hz - h, plan.tremor_lo)[:, None]
    hi = np.minimum(peak_hz + h, plan.tremor_hi)[:, None]
    near = (psd * _overlap(plan.strip_lo, plan.strip_hi, lo, hi)).sum(axis=1)
    return np.minimum(near / np.maximum(tremor_power, _TINY_POWER), 1.0)


_NEIGHBOURS = np.array([-1, 0, 1])
_TOWARD_PEAK = np.array([1, -1])  # from the left crossing rightwards, from the right leftwards
_BAND_NAMES = Bands.names()
_COL = {name: j for j, name in enumerate(_BAND_NAMES)}


def _metrics(psd: np.ndarray, plan: _Plan, n: int, fs: float, options: dict) -> list[TremorMetrics]:
    band_power = psd @ plan.weights  # (W, bands)
    band_rms_mg = np.sqrt(band_power) * (1000.0 / G)
    tremor_power = band_power[:, _COL["tremor"]]
    rms = band_rms_mg[:, _COL["tremor"]]

    measurable = rms > max(2.0 * plan.floor_tremor_mg, _NUMERIC_FLOOR_MG)
    moving = (band_power[:, _COL["voluntary"]] > options["moving_ratio"] * tremor_power) & (
        band_rms_mg[:, _COL["voluntary"]] > max(2.0 * plan.floor_voluntary_mg, _NUMERIC_FLOOR_MG)
    )
    peak_hz, peak_power, idx = _peaks(psd, plan)
    width = _half_power_width(psd, plan, idx, peak_power)
    regular = _regularity(psd, plan, peak_hz, tremor_power, options["peak_halfwidth_hz"])
    has_physio = band_rms_mg[:, _COL["physiological"]] > _NUMERIC_FLOOR_MG
    fatigue = band_power[:, _COL["fatigue"]] / np.where(
        has_physio, band_power[:, _COL["physiological"]], np.inf
    )

    rows = zip(
        band_power.tolist(), band_rms_mg.tolist(), measurable.tolist(), moving.tolist(),
        rms.tolist(), peak_hz.tolist(), width.tolist(), regular.tolist(),
        fatigue.tolist(), has_physio.tolist(), strict=True,
    )  # fmt: skip
    return [
        TremorMetrics(
            rms_mg=r if meas else None,
            peak_hz=pk if meas else None,
            bandwidth_hz=bw if meas else None,
            regularity=rg if meas else None,
            fatigue_ratio=fr if meas and physio else None,
            band_power=dict(zip(_BAND_NAMES, bp, strict=True)),
            band_rms_mg=dict(zip(_BAND_NAMES, br, strict=True)),
            moving=mov,
            measurable=meas,
            floor_mg=plan.floor_tremor_mg,
            n=n,
            fs=fs,
            nperseg=plan.nperseg,
            segments=plan.segments,
            resolution_hz=plan.df,
        )
        for bp, br, meas, mov, r, pk, bw, rg, fr, physio in rows
    ]


def _options(
    bands: Bands | Mapping[str, Any],
    segment_s: float,
    noise_floor_mg: float,
    moving_ratio: float,
    peak_halfwidth_hz: float,
) -> tuple[Bands, dict]:
    if not isinstance(bands, Bands):
        bands = Bands.from_mapping(bands)
    opts = {}
    for name, value in (
        ("segment_s", segment_s),
        ("noise_floor_mg", noise_floor_mg),
        ("moving_ratio", moving_ratio),
        ("peak_halfwidth_hz", peak_halfwidth_hz),
    ):
        try:
            opts[name] = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number, got {value!r}") from None
    for name in ("moving_ratio", "peak_halfwidth_hz"):
        if not (math.isfinite(opts[name]) and opts[name] > 0):
            raise ValueError(f"{name} must be > 0, got {opts[name]}")
    return bands, opts  # segment_s and noise_floor_mg are checked where the plan is made


def _run(windows: np.ndarray, fs: float, bands: Bands, opts: dict) -> list[TremorMetrics]:
    """The analysis proper, on validated ``(W, N, 3)`` windows."""
    plan = _plan(windows.shape[1], fs, bands, opts["segment_s"], opts["noise_floor_mg"])
    psd = _vector_psd(windows, plan)
    # NaN and inf propagate into the spectrum: checking its few bins is cheaper
    # than scanning every sample, and catches the same windows
    bad = ~np.isfinite(psd).all(axis=1)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        if not np.isfinite(windows[first]).all():
            raise ValueError(f"window {first} contains NaN or infinite samples")
        raise ValueError(f"window {first} holds values too large to analyse")
    return _metrics(psd, plan, windows.shape[1], fs, opts)


def analyze_many(
    windows: np.ndarray,
    fs: float,
    *,
    bands: Bands | Mapping[str, Any] = DEFAULT_BANDS,
    segment_s: float = DEFAULT_SEGMENT_S,
    noise_floor_mg: float = DEFAULT_NOISE_FLOOR_MG,
    moving_ratio: float = DEFAULT_MOVING_RATIO,
    peak_halfwidth_hz: float = DEFAULT_PEAK_HALFWIDTH_HZ,
) -> list[TremorMetrics]:
    """:func:`analyze` for a stack of equally long windows, ``(W, N, 3)``.

    The same numbers as calling :func:`analyze` on each window, several times
    faster: the spectra of many windows are computed together. Overlapping
    windows of a stream can be passed as a view (:func:`sliding_windows`)
    without copying::

        windows = sliding_windows(samples, n=2500, hop=500)   # 2.5 s every 0.5 s at 1 kHz
        for m in analyze_many(windows, 1000.0):
            print(m.rms_mg, m.peak_hz)
    """
    fs = _check_fs(fs)
    windows = np.asarray(windows, dtype=float)
    if windows.ndim != 3 or windows.shape[2] != 3:
        raise ValueError(
            f"windows must be a (W, N, 3) array of acceleration, got shape {windows.shape}"
        )
    _check_length(windows.shape[1], fs)
    bands, opts = _options(bands, segment_s, noise_floor_mg, moving_ratio, peak_halfwidth_hz)
    if windows.shape[0] == 0:
        return []
    return _run(windows, fs, bands, opts)


def analyze(
    accel: np.ndarray,
    fs: float,
    *,
    bands: Bands | Mapping[str, Any] = DEFAULT_BANDS,
    segment_s: float = DEFAULT_SEGMENT_S,
    noise_floor_mg: float = DEFAULT_NOISE_FLOOR_MG,
    moving_ratio: float = DEFAULT_MOVING_RATIO,
    peak_halfwidth_hz: float = DEFAULT_PEAK_HALFWIDTH_HZ,
) -> TremorMetrics:
    """Tremor metrics of one window of acceleration.

    Args:
        accel: ``(N, 3)`` m/s^2 with gravity still in it, sampled uniformly;
            at least 1 s long (2.5 s is the usual window).
        fs: sample rate in Hz.
        bands: band edges (:class:`Bands`, or a mapping of the ones to change).
        segment_s: longest Welch segment; a window up to this long is one segment.
        noise_floor_mg: the sensor's noise, RMS per axis over 2-20 Hz (MPU-6050
            1.7, ICM-20948 about 1, LSM6DS3 about 0.4). Tremor is measurable
            above twice what this noise puts in the tremor band. The noise is
            not subtracted from ``rms_mg``: the datasheet figure is nominal and
            varies from part to part, so subtracting it could bias exactly the
            small amplitudes a baseline is made of; at 5x the floor it adds
            under 2%.
        moving_ratio: the window is ``moving`` when voluntary-band power exceeds
            this times the tremor band's.
        peak_halfwidth_hz: half-width around the peak for ``regularity``.

    Returns:
        :class:`TremorMetrics`.

    Raises:
        ValueError: wrong shape, ``fs`` not positive, window shorter than
            :data:`MIN_WINDOW_S`, NaN/inf samples, or bad options.

    Example::

        >>> t = np.arange(2500) / 1000.0
        >>> accel = np.zeros((2500, 3))
        >>> accel[:, 2] = G                                          # lying flat
        >>> accel[:, 0] += 0.05 * G * np.sqrt(2) * np.sin(2 * np.pi * 6.0 * t)  # 50 mg at 6 Hz
        >>> m = analyze(accel, fs=1000.0)
        >>> round(m.peak_hz, 2), round(m.rms_mg)
        (6.0, 50)
    """
    fs = _check_fs(fs)
    accel = np.asarray(accel, dtype=float)
    if accel.ndim != 2 or accel.shape[1] != 3:
        raise ValueError(
            f"accel must be an (N, 3) array of x, y, z acceleration, got shape {accel.shape}"
        )
    _check_length(accel.shape[0], fs)
    bands, opts = _options(bands, segment_s, noise_floor_mg, moving_ratio, peak_halfwidth_hz)
    return _run(accel[None], fs, bands, opts)[0]


def sliding_windows(samples: np.ndarray, n: int, hop: int) -> np.ndarray:
    """``(W, n, 3)`` view of the windows of an ``(N, 3)`` stream, one every ``hop`` samples.

    No data is copied, so an hour at 1 kHz costs nothing to window::

        windows = sliding_windows(samples, n=2500, hop=500)
    """
    samples = np.asarray(samples)
    if samples.ndim != 2:
        raise ValueError(f"samples must be (N, channels), got shape {samples.shape}")
    if n < 1 or hop < 1:
        raise ValueError(f"n and hop must be >= 1, got n={n}, hop={hop}")
    if samples.shape[0] < n:
        return np.empty((0, n, samples.shape[1]), dtype=samples.dtype)
    return sliding_window_view(samples, (n, samples.shape[1]))[::hop, 0]
