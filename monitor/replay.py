"""``gym-monitor record`` and ``gym-monitor replay``: raw samples to a file, and back through the analysis.

``replay`` reads the project's own ``.gtr`` recordings and the CSV/JSON of
other tools (PDkit's smartphone recordings, irregularly sampled), runs the
same streaming analysis a station runs, and prints one line per window; with
``--plot`` it draws amplitude, peak frequency and a spectrogram over time.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from .analysis.activity import SensorStatus
from .analysis.pipeline import AnalysisConfig, SensorAnalysis
from .analysis.recordings import Recording, load_recording
from .recorder import RecordingWriter, SensorInfo, read_recording, sensor_rates


@dataclass(frozen=True)
class ReplayResult:
    sensor: str
    fs: float
    recording: Recording
    statuses: tuple[SensorStatus, ...]


def load_any(path: Path, fs: float | None = None) -> list[tuple[str, float, Recording]]:
    """(sensor, rate, recording) for every sensor in a .gtr, .csv or .json file."""
    if path.suffix == ".gtr":
        rates = sensor_rates(path)
        return [(name, fs or rates[name], rec) for name, rec in read_recording(path).items()]
    rec = load_recording(path)
    if fs is None:
        # Phones sample irregularly: analyse on a grid at the rate they nearly keep.
        fs = float(max(10, round(1.0 / float(np.median(np.diff(rec.t))))))
    return [(path.stem, fs, rec)]


def replay(path: Path, *, fs: float | None = None, sensor: str | None = None, noise_floor_mg: float = 1.7,
           config: AnalysisConfig | None = None, chunk_s: float = 0.1) -> list[ReplayResult]:
    out = []
    for name, rate, rec in load_any(path, fs):
        if sensor is not None and name != sensor:
            continue
        analysis = SensorAnalysis(name, rate, noise_floor_mg=noise_floor_mg, config=config)
        statuses: list[SensorStatus] = []
        edges = np.searchsorted(rec.t, np.arange(rec.t[0], rec.t[-1] + chunk_s, chunk_s))
        for a, b in zip(edges[:-1], edges[1:]):
            if b > a:
                statuses += analysis.feed(rec.t[a:b], rec.accel[a:b])
        out.append(ReplayResult(name, rate, rec, tuple(statuses)))
    return out


def _fmt(v: float | None, spec: str) -> str:
    return format(v, spec) if v is not None else "-".rjust(len(format(0.0, spec)))


def print_table(results: list[ReplayResult], out: TextIO = sys.stdout) -> None:
    for r in results:
        print(f"# {r.sensor}: {len(r.recording.t)} samples, {r.recording.t[-1]:.1f} s, analysed at {r.fs:g} Hz", file=out)
        print(f"{'t_s':>8} {'state':<9} {'rms_mg':>8} {'peak_hz':>7} {'ratio':>6} {'level':<9} {'fatigue':>7} "
              f"{'regular':>7} {'moving':<6}", file=out)
        for s in r.statuses:
            m = s.window.metrics
            print(f"{s.t:8.2f} {s.state:<9} {_fmt(s.rms_mg, '8.2f')} {_fmt(s.peak_hz, '7.2f')} "
                  f"{_fmt(s.ratio, '6.2f')} {s.level:<9} {_fmt(m.fatigue_ratio, '7.2f')} "
                  f"{_fmt(m.regularity, '7.2f')} {'yes' if m.moving else 'no':<6}", file=out)
        measured = [s.rms_mg for s in r.statuses if s.rms_mg is not None]
        if measured:
            print(f"# median rms {np.median(measured):.2f} mg over {len(measured)} of {len(r.statuses)} windows", file=out)


def plot(results: list[ReplayResult], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install 'gym-tremor-monitor[plot]'") from None
    fig, axes = plt.subplots(3 * len(results), 1, figsize=(11, 7 * len(results)), sharex=False, squeeze=False)
    for k, r in enumerate(results):
        ax_rms, ax_hz, ax_spec = axes[3 * k:3 * k + 3, 0]
        t = [s.t for s in r.statuses]
        ax_rms.plot(t, [s.rms_mg if s.rms_mg is not None else np.nan for s in r.statuses], color="tab:red")
        ax_rms.set_ylabel("tremor RMS (mg)")
        ax_rms.set_title(f"{r.sensor} ({r.fs:g} Hz)")
        ax_hz.plot(t, [s.peak_hz if s.peak_hz is not None else np.nan for s in r.statuses], ".", color="tab:blue")
        ax_hz.set_ylabel("peak (Hz)")
        ax_hz.set_ylim(0, 20)
        rec = r.recording.resampled(r.fs)
        # Orientation-free: the spectrogram of the magnitude's deviation from its mean.
        mag = np.linalg.norm(rec.accel, axis=1)
        nfft = int(min(len(mag), 2 ** np.ceil(np.log2(2.5 * r.fs))))
        ax_spec.specgram(mag - mag.mean(), NFFT=nfft, Fs=r.fs, noverlap=nfft * 3 // 4, cmap="magma")
        ax_spec.set_ylim(0, 20)
        ax_spec.set_ylabel("Hz")
        ax_spec.set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def record(path: Path, imus, clock, seconds: float, *, station: str = "") -> int:
    """Drain each IMU into ``path`` for ``seconds`` of the clock; returns samples written."""
    infos = [SensorInfo(name, imu.rate_hz, chip, placement) for name, imu, chip, placement in imus]
    with RecordingWriter(path, infos, station=station) as rec:
        end = clock.now() + seconds
        interval = min(imu.poll_interval for _, imu, _, _ in imus)
        while clock.now() < end:
            clock.sleep(interval)
            for i, (_, imu, _, _) in enumerate(imus):
                block = imu.read()
                rec.write(i, block.t, block.accel)
        return rec.samples
