"""Recording loaders, resampling, and the analysis on real phone recordings.

The real files are PDkit's test data (tests/data/pdkit, README.txt there gives
their origin and the reference figures). Those figures were computed from the
whole recording: uniform resample, 1 Hz high-pass, Welch with 4 s Hann segments,
2-20 Hz band. The tests below analyse the whole recording as one window with the
analysis' defaults (4 s segments, 3-18 Hz band) unless a comment says otherwise.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from monitor.analysis.recordings import (
    Recording,
    load_mpower_json,
    load_pdkit_csv,
    load_recording,
    resample_uniform,
)
from monitor.analysis.tremor import analyze
from monitor.units import G

# --------------------------------------------------------------------- fixtures


def _data_dir() -> Path:
    default = Path(__file__).resolve().parent / "data" / "pdkit"
    return Path(os.environ.get("GYM_PDKIT_DATA", default))


@pytest.fixture(scope="module")
def pdkit_dir() -> Path:
    path = _data_dir()
    if not path.is_dir():
        pytest.skip(
            f"PDkit recordings not found at {path} (they ship in tests/data/pdkit; "
            "GYM_PDKIT_DATA points elsewhere)"
        )
    return path


def _analyse(pdkit_dir: Path, name: str, fs: float, **options):
    rec = load_recording(pdkit_dir / name).resampled(fs)
    return analyze(rec.accel, rec.fs, **options)


# --------------------------------------------------------------------- resampling


def test_resample_reproduces_a_linear_signal_exactly():
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0.0, 2.0, 300))
    accel = np.column_stack([3 * t + 1, -t, np.full_like(t, G)])

    grid, out = resample_uniform(t, accel, 100.0)

    assert grid[0] == t[0] and grid[-1] <= t[-1] < grid[-1] + 0.01
    np.testing.assert_allclose(np.diff(grid), 0.01, rtol=1e-9)
    np.testing.assert_allclose(out, np.column_stack([3 * grid + 1, -grid, np.full_like(grid, G)]))


def test_resample_sorts_and_drops_repeated_timestamps():
    t = np.array([0.2, 0.0, 0.1, 0.1, 0.3])
    accel = np.array([[2.0] * 3, [0.0] * 3, [1.0] * 3, [99.0] * 3, [3.0] * 3])

    grid, out = resample_uniform(t, accel, 20.0)  # 0.05 s steps

    np.testing.assert_allclose(grid, [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3])
    np.testing.assert_allclose(out[:, 0], [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0])


@pytest.mark.parametrize(
    "t, accel, fs, message",
    [
        (np.arange(5.0), np.zeros((5, 3)), 0.0, "positive"),
        (np.arange(5.0), np.zeros((4, 3)), 10.0, "need t"),
        (np.zeros(5), np.zeros((5, 3)), 10.0, "two distinct"),
        (np.array([0, np.nan, 2.0]), np.zeros((3, 3)), 10.0, "finite"),
    ],
)
def test_resample_refuses_what_it_cannot_grid(t, accel, fs, message):
    with pytest.raises(ValueError, match=message):
        resample_uniform(t, accel, fs)


# --------------------------------------------------------------------- loaders


def test_csv_loader_keeps_nanosecond_timing_and_ignores_the_fifth_column(tmp_path):
    path = tmp_path / "take.csv"
    path.write_text(
        "1254165405654372,-0.4,1.45,-9.6,3\n"
        "1254165415657653,-0.5,1.40,-9.7,3\n"
        "1254165425654372,-0.6,1.35,-9.8,0\n"
    )
    rec = load_pdkit_csv(path)
    assert rec.name == "take"
    np.testing.assert_allclose(rec.t, [0.0, 0.010003281, 0.02], rtol=0, atol=1e-12)
    np.testing.assert_allclose(rec.accel[2], [-0.6, 1.35, -9.8])
    assert rec.accel.shape == (3, 3) and rec.fs is None


def test_json_loader_converts_g_to_metres_per_second_squared(tmp_path):
    path = tmp_path / "walk.json"
    samples = [{"timestamp": 100.0 + i / 100, "x": 0.0, "y": 0.5, "z": -1.0} for i in range(5)]
    path.write_text(json.dumps(samples))
    rec = load_recording(path)
    np.testing.assert_allclose(rec.t, [0.0, 0.01, 0.02, 0.03, 0.04], atol=1e-9)
    np.testing.assert_allclose(rec.accel[0], [0.0, 0.5 * G, -G])


def test_loaders_reject_unknown_or_malformed_files(tmp_path):
    with pytest.raises(ValueError, match="unknown recording format"):
        load_recording(tmp_path / "x.txt")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"t": 0, "x": 1}]))
    with pytest.raises(ValueError, match="timestamp"):
        load_mpower_json(bad)


def test_recording_is_immutable_and_resamples_to_a_uniform_grid():
    t = np.array([0.0, 0.013, 0.019, 0.031, 0.04])
    rec = Recording(t, np.ones((5, 3)), "r")
    with pytest.raises(ValueError):
        rec.accel[0, 0] = 5.0  # read-only
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        Recording(t, np.ones((5, 2)))

    uniform = rec.resampled(100.0)

    assert uniform.fs == 100.0 and len(uniform) == 5 and uniform.t[0] == 0.0
    assert rec.mean_fs == pytest.approx(100.0)


def test_real_files_load_with_gravity_in_them(pdkit_dir):
    s5 = load_recording(pdkit_dir / "S5_postural_tremor_right_hand.csv")
    assert len(s5) == 1478 and s5.t[0] == 0.0
    assert s5.duration_s == pytest.approx(30.0, abs=0.5)
    assert np.median(np.linalg.norm(s5.accel, axis=1)) == pytest.approx(G, rel=0.1)

    mpower = load_recording(pdkit_dir / "mpower_tremor.json")
    assert len(mpower) == 1952
    assert mpower.mean_fs == pytest.approx(102.6, abs=0.5)
    assert np.median(np.linalg.norm(mpower.accel, axis=1)) == pytest.approx(G, rel=0.1)


# --------------------------------------------------------------------- reference figures


def test_s5_postural_is_a_clean_5hz_tremor_of_370mg(pdkit_dir):
    m = _analyse(pdkit_dir, "S5_postural_tremor_right_hand.csv", 50.0)
    assert m.measurable and not m.moving
    assert m.peak_hz == pytest.approx(5.0, abs=0.25)
    assert m.rms_mg == pytest.approx(370.0, rel=0.10)
    assert m.regularity > 0.8  # one clean rhythm
    assert m.fatigue_ratio > 5  # 5 Hz sits in the 4-7 Hz band


def test_2458_postural_is_physiological_tremor_near_7_75hz_of_8mg(pdkit_dir):
    m = _analyse(pdkit_dir, "2458_postural_tremor_left_hand.csv", 100.0)
    assert m.measurable
    assert m.peak_hz == pytest.approx(7.75, abs=0.5)
    # 3-18 Hz leaves out the 2-3 Hz the reference counted: 7.5 mg against its 8
    assert m.rms_mg == pytest.approx(8.0, rel=0.25)
    # with the reference's own 2-20 Hz band the figure is reproduced closely
    matched = _analyse(
        pdkit_dir, "2458_postural_tremor_left_hand.csv", 100.0, bands={"tremor": (2, 20)}
    )
    assert matched.rms_mg == pytest.approx(0.080 / G * 1000, rel=0.05)


def test_2458_quiet_leg_is_the_phones_own_noise(pdkit_dir):
    m = _analyse(pdkit_dir, "2458_rest_right_leg_quiet.csv", 100.0)
    assert m.band_rms_mg["tremor"] < 2.0
    assert not m.measurable and m.rms_mg is None  # far under the MPU-6050's floor
    # The reference calls this leg's 1.4 mg (vector, 2-20 Hz) the phone's noise
    # floor: 1.4 / sqrt(3) = 0.8 mg per axis. Told that, the analysis rightly
    # finds nothing to measure: a leg at rest shows the sensor, not a tremor.
    phone = _analyse(pdkit_dir, "2458_rest_right_leg_quiet.csv", 100.0, noise_floor_mg=0.8)
    assert not phone.measurable
    # ...while the same phone's postural hand recording stays well measurable
    hand = _analyse(pdkit_dir, "2458_postural_tremor_left_hand.csv", 100.0, noise_floor_mg=0.8)
    assert hand.measurable


def test_3037_kinetic_task_is_flagged_moving(pdkit_dir):
    m = _analyse(pdkit_dir, "3037_kinetic_tremor_left_hand.csv", 100.0)
    assert m.moving
    assert m.band_rms_mg["voluntary"] > m.band_rms_mg["tremor"]


def test_s5_postural_windows_agree_with_the_whole_recording(pdkit_dir):
    """2.5 s windows, as the station runs, find the same tremor."""
    from monitor.analysis.tremor import analyze_many, sliding_windows

    rec = load_recording(pdkit_dir / "S5_postural_tremor_right_hand.csv").resampled(50.0)
    metrics = analyze_many(sliding_windows(rec.accel, 125, 25), rec.fs)
    peaks = [m.peak_hz for m in metrics if m.measurable and not m.moving]
    assert len(peaks) > 0.9 * len(metrics)
    assert float(np.median(peaks)) == pytest.approx(5.0, abs=0.25)
    rms = np.median([m.rms_mg for m in metrics if m.measurable])
    assert rms == pytest.approx(370.0, rel=0.10)
    assert math.isfinite(rms)


# --------------------------------------------------------------------- the realdata CSV


def test_header_csv_is_read_in_seconds_and_metres_per_second_squared(tmp_path):
    path = tmp_path / "set.csv"
    path.write_text("t_s,ax,ay,az\n0.00,0.1,0.2,9.8\n0.02,0.2,0.3,9.7\n0.04,0.3,0.4,9.6\n")
    rec = load_recording(path)
    np.testing.assert_allclose(rec.t, [0.0, 0.02, 0.04])
    np.testing.assert_allclose(rec.accel[1], [0.2, 0.3, 9.7])
    grams = tmp_path / "g.csv"
    grams.write_text("t_ms,ax_g,ay_g,az_g\n100,0,0,1\n110,0,0,1.5\n")
    rec = load_recording(grams)
    np.testing.assert_allclose(rec.t, [0.0, 0.01])
    np.testing.assert_allclose(rec.accel[1], [0.0, 0.0, 1.5 * G])


def test_a_header_csv_with_a_bad_row_says_so(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("t_s,ax,ay,az\n0.0,1,2,3\n0.1,one,2,3\n")
    with pytest.raises(ValueError, match=r"bad\.csv"):
        load_recording(path)


def test_real_spar_set_loads_with_gravity_in_it():
    spar = Path(__file__).resolve().parent / "data" / "spar" / "S01_ABD_L.csv"
    rec = load_recording(spar)
    assert rec.mean_fs == pytest.approx(50.0, rel=1e-3)
    assert 0.8 * G < np.median(np.linalg.norm(rec.accel, axis=1)) < 1.5 * G  # moving: not just 1 g
