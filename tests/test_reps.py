"""Rep counting from the raw stream."""

import numpy as np
import pytest

from monitor.analysis.reps import RepCounter
from monitor.units import G


def set_of_reps(hz, n, amp_g, *, axis=2, fs=1000, before=10.0, after=10.0, tremor_g=0.05, seed=1):
    rng = np.random.default_rng(seed)
    t = np.arange(0, before + n / hz + after, 1 / fs)
    a = np.zeros((len(t), 3))
    a[:, 2] = G
    m = (t >= before) & (t < before + n / hz)
    a[m, axis] += amp_g * G * np.sin(2 * np.pi * hz * (t[m] - before))
    a += tremor_g * G * np.sin(2 * np.pi * 9 * t)[:, None] + rng.normal(0, 0.01 * G, a.shape)
    return t, a


def count(t, a, chunk=100):
    rc = RepCounter()
    for i in range(0, len(t), chunk):
        rc.feed(t[i : i + chunk], a[i : i + chunk])
    return rc.count


@pytest.mark.parametrize(
    "hz,n,amp", [(0.3, 6, 0.5), (0.5, 10, 0.4), (0.8, 8, 0.15), (1.2, 12, 0.3), (1.5, 15, 0.2)]
)
def test_counts_reps_across_the_rep_band(hz, n, amp):
    assert count(*set_of_reps(hz, n, amp)) == n


def test_orientation_does_not_matter():
    t, a = set_of_reps(0.5, 10, 0.4)
    rng = np.random.default_rng(7)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    assert count(t, a @ q.T) == 10


def test_tremor_and_noise_alone_count_nothing():
    t, a = set_of_reps(0.5, 0, 0.0, tremor_g=0.1, before=60)
    assert count(t, a) == 0


def test_chunking_does_not_matter():
    t, a = set_of_reps(0.8, 8, 0.3)
    assert count(t, a, chunk=7) == count(t, a, chunk=3000) == 8


# -- counted on the movement, not on |a| ---------------------------------------------------


def rotation_in_a_horizontal_plane(
    hz=0.5, n=12, fs=200, before=8.0, after=8.0, reach_m=0.3, swing_rad=0.8
):
    """A forearm turning in and out about a vertical axis (band rotations): gravity stays on
    the sensor's z, the rep shows as tangential and centripetal acceleration in x and y.
    |a| rises on the way out *and* on the way back: two swings of |a| per rep."""
    t = np.arange(0, before + n / hz + after, 1 / fs)
    active = (t >= before) & (t < before + n / hz)
    w = 2 * np.pi * hz
    theta_d = np.where(active, swing_rad * w * np.cos(w * (t - before)), 0.0)
    theta_dd = np.where(active, -swing_rad * w * w * np.sin(w * (t - before)), 0.0)
    a = np.zeros((len(t), 3))
    a[:, 0] = reach_m * theta_dd
    a[:, 1] = -reach_m * theta_d**2
    a[:, 2] = G
    return t, a


def test_a_rotation_in_a_horizontal_plane_is_one_rep_a_cycle():
    t, a = rotation_in_a_horizontal_plane()
    active = (t >= 8.0) & (t < 32.0)
    mag = np.linalg.norm(a[active], axis=1)
    spectrum = np.abs(np.fft.rfft(mag - mag.mean()))
    f = np.fft.rfftfreq(len(mag), t[1] - t[0])
    assert f[np.argmax(spectrum)] == pytest.approx(1.0, abs=0.05)  # |a| swings twice a rep
    assert count(t, a) == 12


def test_the_first_rep_dates_the_set():
    t, a = set_of_reps(0.5, 10, 0.4, before=20.0)
    rc = RepCounter()
    rc.feed(t, a)
    trace = rc.trace(0.0, t[-1])
    assert trace.count == 10
    assert trace.first_t == pytest.approx(20.0, abs=0.3)
    assert trace.period_s == pytest.approx(2.0, rel=0.02)
    assert trace.swing_mg > 200


def test_a_jolt_in_the_middle_of_a_set_is_no_rep():
    t, a = set_of_reps(0.5, 10, 0.4)
    jolt = (t > 19.0) & (t < 19.15)
    a[jolt, 0] += 0.8 * G
    assert count(t, a) == 10


def test_movement_without_a_rhythm_counts_nothing():
    rng = np.random.default_rng(3)
    t = np.arange(0, 60, 1 / 200)
    # a slow random wander of the limb: large, but with no repeating period
    steps = rng.normal(size=(len(t) // 100 + 2, 3))
    wander = np.column_stack(
        [np.interp(t, np.arange(len(steps)) * 0.5, steps[:, k]) for k in range(3)]
    )
    a = 0.3 * G * wander
    a[:, 2] += G
    assert count(t, a) <= 2
