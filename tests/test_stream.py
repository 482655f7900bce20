"""Streaming analysis: any block size, gaps, bounded memory, one result per hop."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.analysis.stream import TremorAnalyzer
from monitor.units import G

FS = 1000


def signal(seconds, hz=8.0, rms_mg=20.0, fs=FS):
    t = np.arange(0, seconds, 1 / fs)
    a = np.zeros((len(t), 3))
    a[:, 2] = G
    a[:, 0] = rms_mg * 1e-3 * G * np.sqrt(2) * np.sin(2 * np.pi * hz * t)
    return t, a


def feed_in_chunks(analyzer, t, a, sizes):
    out, i = [], 0
    for n in sizes:
        if i >= len(t):
            break
        out += analyzer.feed(t[i : i + n], a[i : i + n])
        i += n
    return out


def test_one_result_per_hop_once_a_window_is_full():
    t, a = signal(20)
    res = TremorAnalyzer(FS, window_s=2.5, hop_s=0.5).feed(t, a)
    assert len(res) == int((20 - 2.5) / 0.5) + 1
    assert res[0].t == pytest.approx(2.499)
    assert np.diff([r.t for r in res]) == pytest.approx(np.full(len(res) - 1, 0.5))
    assert res[-1].metrics.rms_mg == pytest.approx(20.0, rel=0.02)
    assert res[-1].metrics.peak_hz == pytest.approx(8.0, abs=0.1)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 4000), min_size=5, max_size=200))
def test_block_size_does_not_change_the_results(sizes):
    t, a = signal(8)
    whole = TremorAnalyzer(FS).feed(t, a)
    chunked = feed_in_chunks(TremorAnalyzer(FS), t, a, sizes * 50)
    assert [r.t for r in chunked] == pytest.approx([r.t for r in whole][: len(chunked)])
    for x, y in zip(whole, chunked, strict=False):  # chunked may stop short
        assert x.metrics.rms_mg == pytest.approx(y.metrics.rms_mg, rel=1e-9)


def test_short_gap_is_bridged_and_flagged():
    t, a = signal(10)
    an = TremorAnalyzer(FS, max_gap_s=0.05)
    an.feed(t[:5000], a[:5000])
    res = an.feed(t[5020:], a[5020:])  # 20 samples lost
    assert an.restarts == 0
    assert res[0].bridged == pytest.approx(20, abs=1)
    assert not res[0].reliable or res[0].bridged <= 0.02 * res[0].metrics.n
    assert res[-1].bridged == 0  # the gap has left the window


def test_long_gap_restarts_the_window():
    t, a = signal(20)
    an = TremorAnalyzer(FS, max_gap_s=0.05)
    an.feed(t[:5000], a[:5000])
    res = an.feed(t[7000:], a[7000:])  # 2 s lost
    assert an.restarts == 1
    assert res[0].t == pytest.approx(7.0 + 2.499)  # a full fresh window first
    assert all(r.bridged == 0 for r in res)


def test_irregular_timestamps_are_resampled():
    rng = np.random.default_rng(3)
    dt = rng.uniform(0.004, 0.016, 3000)  # ~100 Hz with jitter, like a phone
    t = np.cumsum(dt)
    a = np.zeros((len(t), 3))
    a[:, 2] = G
    a[:, 1] = 0.05 * G * np.sqrt(2) * np.sin(2 * np.pi * 6 * t)
    res = TremorAnalyzer(100, window_s=4, hop_s=1, max_gap_s=0.05).feed(t, a)
    assert res and res[-1].metrics.peak_hz == pytest.approx(6.0, abs=0.25)
    assert res[-1].metrics.rms_mg == pytest.approx(50, rel=0.1)


def test_memory_is_bounded():
    t, a = signal(60)
    an = TremorAnalyzer(FS)
    an.feed(t, a)
    assert an._buf.shape[0] == 2 * an.window


def test_wrong_shapes_are_refused():
    an = TremorAnalyzer(FS)
    with pytest.raises(ValueError):
        an.feed(np.arange(10.0), np.zeros((10, 2)))
    with pytest.raises(ValueError):
        TremorAnalyzer(0)
    with pytest.raises(ValueError):
        TremorAnalyzer(FS, window_s=1, hop_s=2)


@pytest.mark.parametrize("hz", [4.0, 8.0, 12.0, 17.0])
def test_decimation_keeps_tremor_figures(hz):
    t, a = signal(12, hz=hz, rms_mg=30.0)
    full = TremorAnalyzer(FS).feed(t, a)[-1].metrics
    fifth = TremorAnalyzer(FS, decimate=5)
    res = []
    for i in range(0, len(t), 100):
        res += fifth.feed(t[i : i + 100], a[i : i + 100])
    dec = res[-1].metrics
    assert fifth.fs == 200 and dec.fs == 200
    assert res[-1].t == pytest.approx(11.999, abs=1e-9)
    assert dec.peak_hz == pytest.approx(full.peak_hz, abs=0.05)
    # The boxcar costs sinc(f q / fs): 1.3 % of amplitude at 18 Hz, less below.
    assert dec.rms_mg == pytest.approx(full.rms_mg * np.sinc(hz * 5 / FS), rel=0.01)
