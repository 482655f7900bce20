"""Accuracy and speed of the tremor analysis, and a side-by-side with PDkit.

Run from the repository root::

    .venv/bin/python -m bench.bench_tremor

Prints three sections:

1. accuracy over a grid of synthetic tremors (3-15 Hz, 2-500 mg) in MPU-6050
   noise, each in a random orientation, at 1 kHz and 100 Hz;
2. throughput: one hour of 1 kHz three-axis data in 2.5 s windows every 0.5 s;
3. PDkit's TremorProcessor Welch path on the same 200 windows: speed and
   agreement of the peak frequency. Needs ``pip install pdkit`` (it brings
   pandas); skipped with a note when it cannot be imported.

Only numpy is needed for sections 1 and 2. Timings cover the analysis only; the
synthetic data is made outside the timed region.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import time
import types
from pathlib import Path

import numpy as np

from monitor.analysis.tremor import analyze, analyze_many, sliding_windows
from monitor.units import G
from tests.support.signals import MPU6050_DENSITY_UG, random_direction, random_rotation

SEED = 2024


# ------------------------------------------------------------------ synthetic sensor


def sensor_window(fs, n, rng, hz, rms_mg, *, voluntary_mg=0.0, t0=0.0):
    """What a randomly turned sensor reads: tremor, slow motion, gravity, noise.

    Returns the (n, 3) reading and the tremor's direction relative to gravity
    (|cos|), which matters to methods that look at the magnitude only.
    """
    t = t0 + np.arange(n) / fs
    tremor_dir, gravity_dir = random_direction(rng), random_direction(rng)
    amp = math.sqrt(2) * 1e-3 * G
    body = np.outer(np.sin(2 * np.pi * hz * t + rng.uniform(0, 2 * np.pi)), tremor_dir) * (
        amp * rms_mg
    )
    if voluntary_mg:
        slow = np.sin(2 * np.pi * rng.uniform(0.5, 1.5) * t + rng.uniform(0, 2 * np.pi))
        body += np.outer(slow, random_direction(rng)) * (amp * voluntary_mg)
    body += G * gravity_dir
    reading = body @ random_rotation(rng).T
    reading += rng.normal(size=(n, 3)) * (MPU6050_DENSITY_UG * 1e-6 * G * math.sqrt(fs / 2))
    return reading, abs(float(tremor_dir @ gravity_dir))


# ------------------------------------------------------------------ 1. accuracy


def _p95_max(values: np.ndarray, width: int) -> str:
    """p95 and max, the first right-aligned in ``width`` columns, the second in 9."""
    if values.size == 0:
        return f"{'-':>{width}}{'-':>9}"
    return f"{np.percentile(values, 95):{width}.3f}{values.max():9.3f}"


def accuracy() -> None:
    print("1. Accuracy: 2.5 s windows, MPU-6050 noise 400 ug/sqrt(Hz), random orientation")
    print("   grid: 3.0-15.0 Hz every 0.5 Hz x 12 amplitudes 2-500 mg (log) x 4 draws")
    rng = np.random.default_rng(SEED)
    freqs = np.arange(3.0, 15.01, 0.5)
    amps = np.geomspace(2.0, 500.0, 12)
    header = (
        f"   {'fs':>5}  {'cases':<44}{'n':>5}{'found':>7}"
        f"{'|dpeak| Hz p95':>15}{'max':>9}{'|dRMS| % p95':>13}{'max':>9}"
    )
    for fs in (1000.0, 100.0):
        n = int(2.5 * fs)
        truth, stack = [], []
        for hz in freqs:
            for mg in amps:
                for _ in range(4):
                    window, _ = sensor_window(fs, n, rng, hz, mg)
                    stack.append(window)
                    truth.append((hz, mg))
        metrics = analyze_many(np.stack(stack), fs)
        hz_true, mg_true = np.array(truth).T
        floor = metrics[0].floor_mg
        found = np.array([m.measurable for m in metrics])
        peak = np.array([m.peak_hz if m.measurable else np.nan for m in metrics])
        rms = np.array([m.band_rms_mg["tremor"] for m in metrics])
        if fs == 1000.0:
            print(
                f"   noise alone in 3-18 Hz: {floor:.2f} mg; "
                f"measurable above 2x = {2 * floor:.2f} mg"
            )
            print(header)
        snr = mg_true / floor
        rows = [
            ("all measurable, 3.0-15 Hz", np.ones_like(found)),
            ("true >= 2x floor, 3.5-15 Hz", (snr >= 2) & (hz_true >= 3.5)),
            ("true >= 5x floor, 3.5-15 Hz", (snr >= 5) & (hz_true >= 3.5)),
            ("true >= 10x floor, 3.5-15 Hz", (snr >= 10) & (hz_true >= 3.5)),
            ("true >= 5x floor, 3.0 Hz (on the band edge)", (snr >= 5) & (hz_true < 3.5)),
        ]
        for label, sel in rows:
            counted = sel & found
            dpeak = np.abs(peak[counted] - hz_true[counted])
            drms = np.abs(rms[counted] / mg_true[counted] - 1) * 100
            print(
                f"   {fs:5.0f}  {label:<44}{sel.sum():5d}{counted.sum() / max(sel.sum(), 1):7.0%}"
                f"{_p95_max(dpeak, 15)}{_p95_max(drms, 13)}"
            )
        # what subtracting the nominal noise power would give (analyze does not; see its docstring)
        sel = (snr >= 2) & (hz_true >= 3.5) & found
        corrected = np.sqrt(np.maximum(rms[sel] ** 2 - floor**2, 0.0))
        drms = np.abs(corrected / mg_true[sel] - 1) * 100
        print(
            f"   {fs:5.0f}  {'>= 2x floor, nominal noise power subtracted':<44}{sel.sum():5d}"
            f"{'':7}{'':24}{_p95_max(drms, 13)}"
        )
    # reps mixed in: the case the voluntary band and the 'moving' flag exist for
    fs, n = 1000.0, 2500
    stack, truth = [], []
    for _ in range(300):
        hz, mg = rng.uniform(3.5, 15.0), 10 ** rng.uniform(math.log10(13.4), math.log10(500))
        stack.append(sensor_window(fs, n, rng, hz, mg, voluntary_mg=300.0)[0])
        truth.append((hz, mg))
    metrics = analyze_many(np.stack(stack), fs)
    hz_true, mg_true = np.array(truth).T
    dpeak = np.abs(np.array([m.peak_hz for m in metrics]) - hz_true)
    drms = np.abs(np.array([m.rms_mg for m in metrics]) / mg_true - 1) * 100
    label = "+300 mg reps 0.5-1.5 Hz, >= 5x floor"
    print(
        f"   {fs:5.0f}  {label:<44}{300:5d}{'':7}{_p95_max(dpeak, 15)}{_p95_max(drms, 13)}"
        f"   moving flagged: {np.mean([m.moving for m in metrics]):.0%}"
    )
    print("   targets: |dpeak| <= 0.25 Hz, |dRMS| <= 5%")
    print()


# ------------------------------------------------------------------ 2. throughput


def _one_hour(rng: np.random.Generator, fs: float, n: int, hop: int):
    """The hour as a series of window stacks, made a minute at a time.

    A minute's windows are a view into that minute plus the previous minute's
    tail, so consecutive windows overlap across minute boundaries as they would
    on a station.
    """
    tail = np.empty((0, 3))
    for start in range(0, 3600, 60):
        hz, mg = rng.uniform(4, 12), 10 ** rng.uniform(0.5, 2.5)
        chunk, _ = sensor_window(fs, int(60 * fs), rng, hz, mg, voluntary_mg=50.0, t0=start)
        stream = np.concatenate((tail, chunk))
        windows = sliding_windows(stream, n, hop)
        tail = stream[len(windows) * hop :]  # the samples the next window starts from
        yield windows


def throughput(repeats: int = 3) -> None:
    fs, n, hop = 1000.0, 2500, 500
    print("2. Throughput: 1 h of 1 kHz 3-axis data, 2.5 s windows every 0.5 s")
    print(f"   (best and median of {repeats} runs of the whole hour; synthesis not timed)")
    runs = {"analyze_many (batched)": [], "analyze (one window a call)": []}
    for _ in range(repeats):
        t_batch = t_single = 0.0
        count = 0
        for windows in _one_hour(np.random.default_rng(SEED + 1), fs, n, hop):
            t0 = time.perf_counter()
            batch = analyze_many(windows, fs)
            t1 = time.perf_counter()
            singles = [analyze(w, fs) for w in windows]
            t2 = time.perf_counter()
            t_batch += t1 - t0
            t_single += t2 - t1
            count += len(windows)
            # both paths must give the same numbers, or the timing compares nothing
            assert math.isclose(
                batch[-1].band_power["tremor"], singles[-1].band_power["tremor"], rel_tol=1e-9
            )
        runs["analyze_many (batched)"].append(t_batch)
        runs["analyze (one window a call)"].append(t_single)
    for label, walls in runs.items():
        best, median = min(walls), float(np.median(walls))
        print(
            f"   {label:<28} {count} windows  best {best:6.3f} s = {3600 / best:5.0f}x real time"
            f"  ({best / count * 1e6:4.0f} us/window); median {median:6.3f} s = "
            f"{3600 / median:5.0f}x"
        )
    print("   target: >= 3000x (1 h in <= 1.2 s)")
    print()


# ------------------------------------------------------------------ 3. PDkit


def _load_pdkit():
    """PDkit's TremorProcessor class, or raise ImportError saying why not.

    ``import pdkit`` runs a package __init__ that imports every processor and
    with them undeclared packages (``future``, ``tsfresh``...). The tremor
    processor alone needs only numpy, pandas, scipy and -- at module level, though
    its Welch path never calls it -- tsfresh, which is stubbed when absent.
    """
    spec = importlib.util.find_spec("pdkit")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("package 'pdkit' is not installed (pip install pdkit)")
    notes = []
    if importlib.util.find_spec("tsfresh") is None:
        stub = types.ModuleType("tsfresh")
        stub.feature_extraction = types.ModuleType("tsfresh.feature_extraction")
        stub.feature_extraction.feature_calculators = types.ModuleType("feature_calculators")
        sys.modules["tsfresh"] = stub
        sys.modules["tsfresh.feature_extraction"] = stub.feature_extraction
        sys.modules["tsfresh.feature_extraction.feature_calculators"] = (
            stub.feature_extraction.feature_calculators
        )
        notes.append("tsfresh (imported, unused by the Welch path) stubbed")
    path = Path(spec.submodule_search_locations[0]) / "tremor_processor.py"
    module_spec = importlib.util.spec_from_file_location("pdkit_tremor_processor", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.TremorProcessor, notes


def versus_pdkit() -> None:
    print("3. PDkit TremorProcessor, same 200 windows (1 kHz, 2.5 s, 3.5-15 Hz, 10-300 mg)")
    try:
        TremorProcessor, notes = _load_pdkit()
        from importlib.metadata import version

        import pandas as pd
    except Exception as err:
        print(f"   PDkit not available: {err}")
        return
    print(
        f"   pdkit {version('pdkit')}, pandas {pd.__version__}" + "".join(f"; {n}" for n in notes)
    )

    fs, n = 1000.0, 2500
    rng = np.random.default_rng(SEED + 2)
    stack, truth, along_gravity = [], [], []
    for _ in range(200):
        hz, mg = rng.uniform(3.5, 15.0), 10 ** rng.uniform(1, math.log10(300))
        window, cos = sensor_window(fs, n, rng, hz, mg)
        stack.append(window)
        truth.append(hz)
        along_gravity.append(cos)
    windows, truth, along_gravity = np.stack(stack), np.array(truth), np.array(along_gravity)

    # PDkit's own parameters for this data: whole window as one Welch segment, 3-18 Hz
    processor = TremorProcessor(
        sampling_frequency=fs, window=n, lower_frequency=3.0, upper_frequency=18.0
    )
    t = np.arange(n) / fs
    index = pd.to_datetime(t, unit="s")
    try:  # its full entry point resamples first; check whether that still runs
        frame = pd.DataFrame({"td": t, "mag_sum_acc": np.linalg.norm(windows[0], axis=1)}, index)
        processor.resample_signal(frame)
        print("   TremorProcessor.amplitude() runs here; timing its Welch path as below")
    except Exception as err:
        print(
            f"   TremorProcessor.amplitude() fails here in resample_signal"
            f" ({type(err).__name__}: {str(err).split('. ')[0]});\n"
            "   the windows are uniform already, so its Welch path"
            " (filter_signal + amplitude_by_welch) is what is timed"
        )

    theirs = np.empty(len(windows))
    t0 = time.perf_counter()
    for i, w in enumerate(windows):
        frame = pd.DataFrame(
            {
                "td": t,
                "x": w[:, 0],
                "y": w[:, 1],
                "z": w[:, 2],
                "mag_sum_acc": np.linalg.norm(w, axis=1),
            },
            index=index,
        )
        _, theirs[i] = processor.amplitude_by_welch(processor.filter_signal(frame))
    their_s = (time.perf_counter() - t0) / len(windows)

    t0 = time.perf_counter()
    single = [analyze(w, fs) for w in windows]
    ours_single_s = (time.perf_counter() - t0) / len(windows)
    t0 = time.perf_counter()
    ours = analyze_many(windows, fs)
    ours_batch_s = (time.perf_counter() - t0) / len(windows)
    assert all(
        math.isclose(a.band_power["tremor"], b.band_power["tremor"], rel_tol=1e-9)
        for a, b in zip(single, ours, strict=True)
    )

    print(
        f"   time per window: PDkit {their_s * 1e6:7.0f} us | ours analyze "
        f"{ours_single_s * 1e6:5.0f} us"
        f" ({their_s / ours_single_s:4.0f}x faster) | analyze_many {ours_batch_s * 1e6:4.0f} us"
        f" ({their_s / ours_batch_s:4.0f}x faster)"
    )
    our_peak = np.array([m.peak_hz if m.measurable else np.nan for m in ours])
    diff = np.abs(our_peak - theirs)
    bin_hz = fs / n
    print(
        f"   peak, ours vs PDkit: median |diff| {np.nanmedian(diff):.3f} Hz, p95 "
        f"{np.nanpercentile(diff, 95):.2f},"
        f" max {np.nanmax(diff):.2f}; within one bin ({bin_hz:.1f} Hz): "
        f"{np.mean(diff <= bin_hz):.0%}"
    )
    ours_ok = np.abs(our_peak - truth) <= 0.25
    theirs_ok = np.abs(theirs - truth) <= bin_hz / 2 + 1e-9
    print(
        f"   peak vs truth: ours within 0.25 Hz {ours_ok.mean():.0%}; PDkit within half a bin"
        f" ({bin_hz / 2:.1f} Hz, its resolution) {theirs_ok.mean():.0%}"
    )
    blind = along_gravity < 0.3
    print(
        f"   PDkit analyses |a|, which sees a tremor only along gravity: where the tremor is"
        f" within ~17 deg of perpendicular to it ({blind.sum()} windows) PDkit is right"
        f" {theirs_ok[blind].mean():.0%}, elsewhere {theirs_ok[~blind].mean():.0%}"
    )
    print()


def main() -> None:
    print(f"numpy {np.__version__}, Python {sys.version.split()[0]}")
    print()
    accuracy()
    throughput()
    versus_pdkit()


if __name__ == "__main__":
    argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0]).parse_args()
    main()
