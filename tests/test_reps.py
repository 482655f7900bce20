"""Rep counting from the raw stream."""

import numpy as np
import pytest

from monitor.analysis.reps import RepCounter

G = 9.80665


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
        rc.feed(t[i:i + chunk], a[i:i + chunk])
    return rc.count


@pytest.mark.parametrize("hz,n,amp", [(0.3, 6, 0.5), (0.5, 10, 0.4), (0.8, 8, 0.15), (1.2, 12, 0.3), (1.5, 15, 0.2)])
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
