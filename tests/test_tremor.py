"""Tremor analysis against signals whose frequency and amplitude are known.

Synthetic windows are built the way a sensor would see them: a tremor of known
RMS along a random direction, gravity along another, large slow voluntary
motion, the whole thing turned by a random rotation, plus white noise at the
MPU-6050's 400 ug/sqrt(Hz). scipy is the independent reference for the PSD.
"""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from monitor.analysis import tremor
from monitor.analysis.tremor import (
    DEFAULT_BANDS,
    Bands,
    TremorMetrics,
    analyze,
    analyze_many,
    sliding_windows,
    welch,
)
from monitor.units import G
from tests.support.signals import MPU6050_DENSITY_UG, random_direction, random_rotation

LSM6DS3_DENSITY_UG = 94.0  # gives its ~0.4 mg over 2-20 Hz


def tone(fs: float, n: int, hz: float, rms_mg: float, rng: np.random.Generator) -> np.ndarray:
    """A sinusoid of the given RMS (mg) along a random direction, (n, 3) m/s^2."""
    t = np.arange(n) / fs
    wave = np.sin(2 * np.pi * hz * t + rng.uniform(0, 2 * np.pi))
    return np.outer(wave, random_direction(rng)) * (rms_mg * 1e-3 * G * math.sqrt(2))


def sensor_window(
    fs: float,
    seconds: float,
    rng: np.random.Generator,
    *,
    tremor_hz: float = 6.0,
    tremor_mg: float = 0.0,
    voluntary_mg: float = 0.0,
    density_ug: float = MPU6050_DENSITY_UG,
) -> np.ndarray:
    """What a sensor in a random orientation reads, (n, 3) m/s^2 with gravity."""
    n = round(fs * seconds)
    body = tone(fs, n, tremor_hz, tremor_mg, rng)
    body += tone(fs, n, rng.uniform(0.5, 1.5), voluntary_mg, rng)
    body += G * random_direction(rng)
    reading = body @ random_rotation(rng).T
    reading += rng.normal(size=(n, 3)) * (density_ug * 1e-6 * G * math.sqrt(fs / 2))
    return reading


# ----------------------------------------------------------------- known truth


@pytest.mark.parametrize("fs", [1000.0, 100.0, 50.0])
@pytest.mark.parametrize("seed", range(6))
def test_peak_and_rms_of_a_tremor_under_voluntary_motion(fs, seed):
    rng = np.random.default_rng(seed)
    hz = rng.uniform(3.5, 15.0)
    rms_mg = 10 ** rng.uniform(math.log10(30), math.log10(150))
    accel = sensor_window(fs, 2.5, rng, tremor_hz=hz, tremor_mg=rms_mg, voluntary_mg=300.0)

    m = analyze(accel, fs)

    assert m.measurable
    assert m.peak_hz == pytest.approx(hz, abs=0.25)
    assert m.rms_mg == pytest.approx(rms_mg, rel=0.05)
    assert m.moving  # 300 mg of reps outweighs the tremor: figures flagged


@pytest.mark.parametrize("seconds", [1.0, 2.5, 10.0])
@pytest.mark.parametrize("fs", [50.0, 200.0, 1000.0])
def test_window_lengths_and_rates_within_range(seconds, fs):
    rng = np.random.default_rng(int(seconds * 10 + fs))
    accel = sensor_window(fs, seconds, rng, tremor_hz=8.3, tremor_mg=40.0, voluntary_mg=50.0)

    m = analyze(accel, fs)

    assert m.n == accel.shape[0] and m.fs == fs
    assert m.peak_hz == pytest.approx(8.3, abs=0.25)
    assert m.rms_mg == pytest.approx(40.0, rel=0.05)


def test_orientation_does_not_change_any_figure():
    rng = np.random.default_rng(7)
    accel = sensor_window(1000.0, 2.5, rng, tremor_hz=6.7, tremor_mg=25.0, voluntary_mg=200.0)
    m0 = analyze(accel, 1000.0)
    for _ in range(5):
        m = analyze(accel @ random_rotation(rng).T, 1000.0)
        for name in ("rms_mg", "peak_hz", "bandwidth_hz", "regularity", "fatigue_ratio"):
            assert getattr(m, name) == pytest.approx(getattr(m0, name), rel=1e-6), name
        for band, power in m0.band_power.items():
            assert m.band_power[band] == pytest.approx(power, rel=1e-6), band
        assert (m.moving, m.measurable) == (m0.moving, m0.measurable)


def test_band_powers_of_two_tones_and_their_ratio():
    fs, n = 1000.0, 10_000
    t = np.arange(n) / fs
    a5, a10 = 0.4, 0.2  # m/s^2 amplitudes: powers a^2 / 2
    accel = np.zeros((n, 3))
    accel[:, 0] = a5 * np.sin(2 * np.pi * 5.0 * t)
    accel[:, 1] = a10 * np.sin(2 * np.pi * 10.0 * t) + G

    m = analyze(accel, fs)

    assert m.band_power["fatigue"] == pytest.approx(a5**2 / 2, rel=1e-3)
    assert m.band_power["physiological"] == pytest.approx(a10**2 / 2, rel=1e-3)
    assert m.band_power["tremor"] == pytest.approx((a5**2 + a10**2) / 2, rel=1e-3)
    assert m.band_power["voluntary"] == pytest.approx(0.0, abs=1e-9)
    assert m.fatigue_ratio == pytest.approx(4.0, rel=2e-3)
    assert m.band_rms_mg["tremor"] == pytest.approx(
        math.sqrt((a5**2 + a10**2) / 2) / G * 1000, rel=1e-3
    )
    assert m.peak_hz == pytest.approx(5.0, abs=0.01)  # the larger tone


def test_regularity_and_bandwidth_tell_a_rhythm_from_noise():
    fs = 1000.0
    rng = np.random.default_rng(3)
    rhythm = analyze(sensor_window(fs, 10.0, rng, tremor_hz=9.1, tremor_mg=50.0), fs)
    # white noise with nothing in it, judged as if the sensor were noiseless
    noise = analyze(sensor_window(fs, 10.0, rng), fs, noise_floor_mg=0.0)

    assert rhythm.regularity > 0.95
    assert rhythm.bandwidth_hz < 2.0 * rhythm.resolution_hz  # only the taper's width
    # noise spreads evenly: about 2 Hz of the 15 Hz band lies within +-1 Hz of any peak
    assert noise.regularity == pytest.approx(2.0 / 15.0, abs=0.08)


def test_peak_refinement_is_well_under_a_bin():
    fs, n = 1000.0, 2500  # 0.4 Hz bins
    rng = np.random.default_rng(11)
    for hz in np.linspace(3.6, 17.4, 40):
        m = analyze(tone(fs, n, hz, 30.0, rng) + np.array([0.0, 0.0, G]), fs, noise_floor_mg=0.0)
        assert m.peak_hz == pytest.approx(hz, abs=0.05 * m.resolution_hz)


def test_welch_segments_tile_a_long_window():
    m = analyze(np.zeros((10_000, 3)) + np.array([0, 0, G]), 1000.0, segment_s=4.0)
    assert (m.nperseg, m.segments) == (4000, 4)  # 0-4, 2-6, 4-8, 6-10 s
    m = analyze(np.zeros((5_000, 3)) + np.array([0, 0, G]), 1000.0, segment_s=4.0)
    assert m.segments == 2 and m.nperseg + m.nperseg // 2 <= 5000 < m.nperseg + m.nperseg // 2 + 2


# ----------------------------------------------------------------- scipy reference


@pytest.mark.parametrize(
    "n, nperseg, noverlap",
    [(2500, 2500, 1250), (3001, 1000, 500), (3001, 999, 400), (1000, 256, None), (777, 777, 0)],
)
def test_welch_matches_scipy(n, nperseg, noverlap):
    signal = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 3)) * 0.05 + [0.3, -2.0, G]  # offsets like gravity

    f, pxx = welch(x, 200.0, nperseg=nperseg, noverlap=noverlap)
    f_ref, pxx_ref = signal.welch(
        x, 200.0, window="hann", nperseg=nperseg, noverlap=noverlap,
        detrend="constant", scaling="density", return_onesided=True, axis=0,
    )  # fmt: skip

    np.testing.assert_allclose(f, f_ref, rtol=1e-12)
    np.testing.assert_allclose(pxx, pxx_ref, rtol=1e-6)


def _integrate(freqs, psd, lo, hi):
    """Rectangle rule, each bin a strip df wide; edge strips count in proportion."""
    df = freqs[1] - freqs[0]
    total = 0.0
    for f, p in zip(freqs[1:], psd[1:], strict=True):  # DC excluded: gravity
        overlap = min(f + df / 2, hi) - max(f - df / 2, lo)
        if overlap > 0:
            total += p * overlap
    return total


@pytest.mark.parametrize("fs, seconds", [(1000.0, 2.5), (200.0, 10.0), (100.0, 3.3)])
def test_band_power_matches_scipy_welch(fs, seconds):
    signal = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(int(fs))
    accel = sensor_window(fs, seconds, rng, tremor_hz=7.2, tremor_mg=20.0, voluntary_mg=100.0)

    m = analyze(accel, fs, segment_s=2.5)
    f, pxx = signal.welch(
        accel, fs, window="hann", nperseg=m.nperseg, noverlap=m.nperseg // 2, axis=0
    )
    psd = pxx.sum(axis=1)

    assert m.segments == (accel.shape[0] - m.nperseg // 2) // (m.nperseg - m.nperseg // 2)
    for name, (lo, hi) in DEFAULT_BANDS.items():
        expected = _integrate(f, psd, lo, min(hi, fs / 2))
        assert m.band_power[name] == pytest.approx(expected, rel=1e-6), name
    peak_bin = f[np.argmax(np.where((f >= 3) & (f <= 18), psd, 0))]
    assert abs(m.peak_hz - peak_bin) <= m.resolution_hz / 2


# ----------------------------------------------------------------- floors and gates


def test_below_twice_the_noise_floor_there_is_no_measurable_tremor():
    rng = np.random.default_rng(5)
    accel = sensor_window(1000.0, 2.5, rng, tremor_hz=6.0, tremor_mg=1.0)

    m = analyze(accel, 1000.0)

    # MPU-6050 noise over 3-18 Hz, three axes: 1.7 mg * sqrt(3 * 15 / 18) = 2.69 mg
    assert m.floor_mg == pytest.approx(2.688, rel=1e-3)
    assert m.band_rms_mg["tremor"] == pytest.approx(math.hypot(2.69, 1.0), rel=0.15)
    assert not m.measurable
    assert m.rms_mg is None and m.peak_hz is None
    assert m.bandwidth_hz is None and m.regularity is None and m.fatigue_ratio is None
    assert m.as_dict()["rms_mg"] is None


def test_a_quieter_sensor_measures_what_the_mpu6050_cannot():
    rng = np.random.default_rng(6)
    accel = sensor_window(
        1000.0, 2.5, rng, tremor_hz=9.0, tremor_mg=3.0, density_ug=LSM6DS3_DENSITY_UG
    )

    assert not analyze(accel, 1000.0).measurable  # MPU-6050 floor: 3 mg is lost in it
    m = analyze(accel, 1000.0, noise_floor_mg=0.4)  # LSM6DS3
    assert m.measurable
    assert m.peak_hz == pytest.approx(9.0, abs=0.25)
    assert m.rms_mg == pytest.approx(3.0, rel=0.1)  # its own 0.63 mg of noise adds ~2%


def test_pure_voluntary_motion_is_moving_and_not_tremor():
    rng = np.random.default_rng(8)
    m = analyze(sensor_window(1000.0, 2.5, rng, voluntary_mg=300.0), 1000.0)
    assert m.moving
    assert m.band_rms_mg["voluntary"] == pytest.approx(300.0, rel=0.25)  # DC bin takes some
    assert not m.measurable  # its leakage into 3-18 Hz stays under the floor


def test_a_still_sensor_or_a_clear_tremor_is_not_moving():
    rng = np.random.default_rng(9)
    assert not analyze(sensor_window(1000.0, 2.5, rng), 1000.0).moving
    held = analyze(
        sensor_window(1000.0, 2.5, rng, tremor_hz=5.5, tremor_mg=40.0, voluntary_mg=10.0), 1000.0
    )
    assert not held.moving and held.measurable


# ----------------------------------------------------------------- API


def test_docstring_example_runs():
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner()
    for test in finder.find(tremor.analyze, globs=vars(tremor)):
        runner.run(test)
    assert runner.failures == 0 and runner.tries > 0


def test_analyze_many_gives_the_same_numbers_as_analyze():
    rng = np.random.default_rng(12)
    stream = np.concatenate(
        [sensor_window(1000.0, 2.0, rng, tremor_hz=hz, tremor_mg=30.0) for hz in (5, 8, 11)]
    )
    windows = sliding_windows(stream, 2500, 500)
    assert windows.shape == (8, 2500, 3)
    assert np.shares_memory(windows, stream)  # a view, not a copy

    batch = analyze_many(windows, 1000.0)

    assert len(batch) == 8
    for window, m in zip(windows, batch, strict=True):
        single = analyze(window, 1000.0).as_dict()
        many = m.as_dict()
        for bands in ("band_power", "band_rms_mg"):  # approx() compares flat mappings only
            assert many.pop(bands) == pytest.approx(single.pop(bands), rel=1e-12)
        assert many == pytest.approx(single, rel=1e-12)  # batching only reorders rounding
    assert analyze_many(np.empty((0, 2500, 3)), 1000.0) == []


def test_bands_are_data_a_config_can_override():
    assert Bands.from_mapping({"tremor": [3, 15]}) == Bands(tremor=(3.0, 15.0))
    with pytest.raises(ValueError, match="unknown band"):
        Bands.from_mapping({"tremble": (3, 18)})
    with pytest.raises(ValueError, match="low < high"):
        Bands(fatigue=(7.0, 4.0))

    rng = np.random.default_rng(13)
    accel = sensor_window(1000.0, 2.5, rng, tremor_hz=16.0, tremor_mg=50.0)
    assert analyze(accel, 1000.0).rms_mg == pytest.approx(50.0, rel=0.05)
    narrow = analyze(accel, 1000.0, bands={"tremor": (3.0, 12.0)})
    assert narrow.band_rms_mg["tremor"] < 5.0  # the 16 Hz tone is outside now


def test_metrics_are_frozen_and_json_ready():
    m = analyze(sensor_window(100.0, 2.5, np.random.default_rng(1), tremor_mg=30.0), 100.0)
    with pytest.raises(AttributeError):
        m.rms_mg = 0.0  # type: ignore[misc]
    d = m.as_dict()
    assert set(d["band_power"]) == {"voluntary", "fatigue", "physiological", "tremor", "impact"}
    assert isinstance(d["rms_mg"], float) and isinstance(d["moving"], bool)


@pytest.mark.parametrize(
    "accel, fs, message",
    [
        (np.zeros((2500, 2)), 1000.0, r"\(N, 3\)"),
        (np.zeros(2500), 1000.0, r"\(N, 3\)"),
        (np.zeros((3, 2500)), 1000.0, r"\(N, 3\)"),
        (np.zeros((2500, 3)), 0.0, "positive"),
        (np.zeros((2500, 3)), -100.0, "positive"),
        (np.zeros((2500, 3)), float("nan"), "positive"),
        (np.zeros((999, 3)), 1000.0, "at least 1 s"),
        (np.zeros((5, 3)), 5.0, "at least"),
        (np.zeros((60, 3)), 6.0, "tremor band"),  # Nyquist 3 Hz: no room for 3-18 Hz
    ],
)
def test_bad_input_raises_a_clear_value_error(accel, fs, message):
    with pytest.raises(ValueError, match=message):
        analyze(accel, fs)


def test_nan_samples_are_refused():
    accel = np.zeros((500, 3))
    accel[100, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        analyze(accel, 200.0)


# ----------------------------------------------------------------- properties

_FINITE_FIELDS = ("rms_mg", "peak_hz", "bandwidth_hz", "regularity", "fatigue_ratio")


@st.composite
def windows(draw):
    fs = draw(st.sampled_from([50.0, 100.0, 200.0]))
    n = draw(st.integers(int(fs), int(3 * fs)))
    if draw(st.booleans()):
        value = draw(hnp.arrays(float, 3, elements=st.floats(-200, 200)))
        return np.broadcast_to(value, (n, 3)).copy(), fs  # a sensor stuck on one reading
    elements = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
    return draw(hnp.arrays(float, (n, 3), elements=elements)), fs


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(windows())
def test_any_finite_window_gives_finite_figures_or_none(window):
    accel, fs = window
    m = analyze(accel, fs)
    assert isinstance(m, TremorMetrics)
    for name in _FINITE_FIELDS:
        value = getattr(m, name)
        assert value is None or math.isfinite(value), name
        assert (value is None) or m.measurable, name
    assert all(math.isfinite(p) and p >= 0 for p in m.band_power.values())
    assert all(math.isfinite(r) and r >= 0 for r in m.band_rms_mg.values())
    if m.measurable:
        assert 3.0 <= m.peak_hz <= 18.0
        assert 0.0 <= m.regularity <= 1.0
        assert m.bandwidth_hz >= 0.0
    else:
        assert m.rms_mg is None and m.peak_hz is None


@settings(max_examples=100, deadline=None)
@given(
    shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=400),
    fs=st.floats(50, 1000),
)
def test_wrong_shapes_or_too_short_windows_raise_value_error(shape, fs):
    valid = len(shape) == 2 and shape[1] == 3 and shape[0] >= fs
    if valid:
        return
    with pytest.raises(ValueError):
        analyze(np.zeros(shape), fs)


@given(fs=st.one_of(st.floats(max_value=0.0), st.just(float("inf")), st.just(float("nan"))))
def test_non_positive_or_non_finite_rates_raise_value_error(fs):
    with pytest.raises(ValueError, match="sample rate"):
        analyze(np.zeros((2500, 3)), fs)
