"""``gym-monitor record`` and ``gym-monitor replay``: raw samples to a file, and back through the
station.

``replay`` runs the whole station over a recording: the recording drives a
register-level simulated MPU-6050 (no noise of its own, range 16 g), which the
real driver reads in 0.1 s steps of a simulated clock, exactly as a Pi reads
its chip; :class:`~monitor.station.Station` then does what it does live
(tremor windows, activity, sets and reps, the session, fall detection, the
alert rules and the alert manager). So a recording's sets, reps, states,
alerts and falls are the ones a station would have shown, and the bench, users
and outside checks all measure the real pipeline through this one door::

    results = replay(Path("S01_ABD_L.csv"), placement="limb", baseline_mg=5.4)
    r = results[0]
    r.windows, r.sets, r.alerts, r.falls

Formats: the project's own ``.gtr`` (every sensor in it, at most two at a
time), CSV with a ``t_s,ax,ay,az`` header (``shared/data/realdata``), PDkit's
headerless CSV and Apple mPower JSON (see :mod:`monitor.analysis.recordings`).
Irregularly sampled recordings are played at the lowest rate the chip offers
that is not below their median rate; the chip samples the recording by linear
interpolation, as it would sample the world.

``--json`` prints one JSON object per line, each with a ``type``: ``window``
(one per analysis window), ``set`` (each set with its reps and figures),
``alert`` (each alert event, raised or cleared), ``fall`` and, last, one
``summary`` per sensor. Times ``t`` are seconds from the recording's start.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from .analysis.activity import SensorStatus, SetRecord
from .analysis.fall import FallEvent
from .analysis.pipeline import AnalysisConfig, SensorAnalysis
from .analysis.recordings import Recording, load_recording
from .mqtt.messages import AlertEvent
from .recorder import RecordingWriter, SensorInfo, read_recording, sensor_rates

#: placements a replay understands: where the station's config puts a sensor, and for a
#: body-worn one, where on the body (the fall detector's site)
BODY_SITES = ("chest", "waist", "thigh")
PLACEMENTS = ("limb", "bench", "body", *BODY_SITES)

#: the rates the simulated MPU-6050 plays a recording at (1 kHz divided by a whole number)
CHIP_RATES = (
    4.0,
    5.0,
    8.0,
    10.0,
    20.0,
    25.0,
    40.0,
    50.0,
    100.0,
    125.0,
    200.0,
    250.0,
    500.0,
    1000.0,
)

STEP_S = 0.1
"""How often the replayed station reads its chips, as a Pi does."""


@dataclass(frozen=True)
class ReplayResult:
    """One sensor's replay. ``t0`` is the station-clock time of the recording's first sample."""

    sensor: str
    fs: float
    recording: Recording
    statuses: tuple[SensorStatus, ...]
    sets: tuple[SetRecord, ...] = ()
    alerts: tuple[tuple[float, AlertEvent], ...] = ()  # (station time, event)
    falls: tuple[FallEvent, ...] = ()
    t0: float = 0.0
    placement: str = "limb"
    baseline_learned_t: float | None = None

    @property
    def windows(self) -> tuple[SensorStatus, ...]:
        return self.statuses


class RecordingMotion:
    """A recording as a motion source: linear interpolation, held at both ends."""

    def __init__(self, rec: Recording, t0: float = 0.0):
        self.rec = rec
        self.t0 = t0

    def accel(self, t) -> np.ndarray:
        t = np.asarray(t, dtype=float) - self.t0
        if t.size == 0:
            return np.empty((0, 3))
        # only the stretch of the recording these times fall in: a chip asks for 0.1 s at a time
        lo = max(0, int(np.searchsorted(self.rec.t, t[0])) - 1)
        hi = int(np.searchsorted(self.rec.t, t[-1])) + 1
        rt, ra = self.rec.t[lo:hi], self.rec.accel[lo:hi]
        return np.column_stack([np.interp(t, rt, ra[:, k]) for k in range(3)])

    def gyro(self, t) -> np.ndarray:
        return np.zeros((np.asarray(t).size, 3))


def chip_rate(rec: Recording, fs: float | None = None) -> float:
    """The chip rate a recording plays at: ``fs`` rounded up to one the chip offers."""
    want = (
        fs if fs is not None else 1.0 / float(np.median(np.diff(rec.t))) if len(rec) > 1 else 50.0
    )
    if not (math.isfinite(want) and want > 0):
        raise ValueError(f"cannot tell the sample rate (got {want!r})")
    return next((r for r in CHIP_RATES if r >= 0.95 * want), CHIP_RATES[-1])


def load_any(path: Path, fs: float | None = None) -> list[tuple[str, float, Recording, str]]:
    """(sensor, chip rate, recording, placement) for every sensor in a .gtr, .csv or .json file."""
    if path.suffix == ".gtr":
        rates = sensor_rates(path)
        from .recorder import read_header

        header, _ = read_header(path)
        places = {s["name"]: s.get("placement") or "limb" for s in header["sensors"]}
        return [
            (name, chip_rate(rec, fs or rates[name]), rec, places.get(name, "limb"))
            for name, rec in read_recording(path).items()
        ]
    rec = load_recording(path)
    if len(rec) < 2:
        raise ValueError("a recording needs at least two samples")
    return [(path.stem, chip_rate(rec, fs), rec, "limb")]


def _imu_config(name: str, index: int, rate: float, placement: str):
    from .config import ImuConfig

    site = None
    if placement in BODY_SITES:
        placement, site = "body", placement
    options: dict[str, Any] = {
        "name": name,
        "chip": "mpu6050",
        "address": 0x68 + index,
        "rate_hz": rate,
        "range_g": 16,
        "placement": placement,
    }
    if site is not None and "site" in {f.name for f in dataclasses.fields(ImuConfig)}:
        options["site"] = site
    return ImuConfig(**options)


def replay(
    path: Path,
    *,
    fs: float | None = None,
    sensor: str | None = None,
    noise_floor_mg: float = 1.7,
    config: AnalysisConfig | None = None,
    placement: str | None = None,
    baseline_mg: float | None = None,
    chunk_s: float = STEP_S,
) -> list[ReplayResult]:
    """Run the station over the recording at ``path``; one :class:`ReplayResult` per sensor.

    ``placement`` overrides where the sensors sit (limb, bench, body, or a body site:
    chest, waist, thigh); ``baseline_mg`` gives the rested baseline instead of learning
    it; ``noise_floor_mg`` is the recorded sensor's noise (per-axis RMS over 2-20 Hz).
    """
    from .clock import SimClock
    from .config import Config, StationConfig
    from .sim.bus import SimBus
    from .sim.mpu6050 import Mpu6050Sim
    from .station import Station

    if placement is not None and placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {', '.join(PLACEMENTS)}, not {placement!r}")
    found = [x for x in load_any(path, fs) if sensor is None or x[0] == sensor]
    if not found:
        return []
    if len(found) > 2:
        raise ValueError(
            f"{len(found)} sensors in the recording: replay at most two at a time (--sensor)"
        )
    imus = tuple(
        _imu_config(name, i, rate, placement or place)
        for i, (name, rate, _, place) in enumerate(found)
    )
    cfg = Config(
        station=StationConfig(id="replay", simulate=True),
        imus=imus,
        analysis=config or AnalysisConfig(),
    )
    clock = SimClock(epoch=0.0)
    bus = SimBus(log_size=0)
    motions = []
    for (_, _, rec, _), imu in zip(found, imus, strict=True):
        motion = RecordingMotion(rec)
        motions.append(motion)
        bus.attach(imu.address, Mpu6050Sim(motion, clock=clock, noise=False))
    station = Station(cfg, bus=bus, clock=clock)
    for (name, rate, _, _), imu in zip(found, imus, strict=True):
        # The recorded sensor's own noise sets what is measurable, not the chip that plays it.
        station.analyses[name] = SensorAnalysis(
            name,
            rate,
            noise_floor_mg=noise_floor_mg,
            config=cfg.analysis,
            placement=imu.placement,
            baseline_mg=baseline_mg,
        )
    station.open()
    t0 = clock.now()
    for motion in motions:
        motion.t0 = t0
    end = t0 + max(rec.duration_s for _, _, rec, _ in found)
    statuses: dict[str, list[SensorStatus]] = {name: [] for name, *_ in found}
    alerts: list[tuple[float, AlertEvent]] = []
    falls: dict[str, list[FallEvent]] = {name: [] for name, *_ in found}
    step = min(chunk_s, station.poll_interval)
    while clock.now() < end:
        clock.sleep(min(step, max(end - clock.now(), 1e-6)))
        result = station.step()
        for report in result.sensors:
            statuses[report.name] += report.statuses
        alerts += [(clock.now(), a) for a in result.alerts]
        for name, event in result.falls:
            falls[name].append(event)
    out = []
    for (name, rate, rec, _), imu in zip(found, imus, strict=True):
        analysis = station.analyses[name]
        analysis.activity.finish()
        site = getattr(imu, "site", None)
        out.append(
            ReplayResult(
                name,
                rate,
                rec,
                tuple(statuses[name]),
                tuple(analysis.activity.sets),
                tuple((t, a) for t, a in alerts if a.sensor in (None, name)),
                tuple(falls[name]),
                t0,
                site if imu.placement == "body" and site else imu.placement,
                analysis.activity.baseline.learned_at,
            )
        )
    return out


# -- output ------------------------------------------------------------------------------------


def _num(v: Any, nd: int = 3) -> Any:
    if v is None:
        return None
    v = float(v)
    return round(v, nd) if math.isfinite(v) else None


def json_lines(results: list[ReplayResult]) -> list[dict[str, Any]]:
    """The objects ``--json`` prints, in order: windows, sets, alerts, falls, summaries."""
    lines: list[dict[str, Any]] = []
    for r in results:
        for s in r.statuses:
            m = s.window.metrics
            lines.append(
                {
                    "type": "window",
                    "sensor": r.sensor,
                    "t": _num(s.t - r.t0),
                    "state": s.state,
                    "activity": s.activity,
                    "moving": s.moving,
                    "rms_mg": _num(s.rms_mg),
                    "peak_hz": _num(s.peak_hz),
                    "ratio": _num(s.ratio),
                    "graded": s.graded,
                    "level": s.level,
                    "ratio_rested": _num(s.ratio_rested),
                    "reference_mg": _num(s.reference_mg),
                    "baseline_mg": _num(s.baseline_mg),
                    "set_count": s.set_count,
                    "reps": s.reps,
                    "band_rms_mg": {k: _num(v) for k, v in m.band_rms_mg.items()},
                    "fatigue_ratio": _num(m.fatigue_ratio),
                    "disturbed": s.window.disturbed,
                }
            )
    for r in results:
        for sr in r.sets:
            lines.append(
                {
                    "type": "set",
                    "sensor": r.sensor,
                    "index": sr.index,
                    "kind": sr.kind,
                    "start": _num(sr.start - r.t0),
                    "end": _num(sr.end - r.t0),
                    "reps": sr.reps,
                    "ratio_median": _num(sr.ratio_median),
                    "ratio_peak": _num(sr.ratio_peak),
                    "growth_per_min": _num(sr.growth_per_min),
                    "recovery_s": _num(sr.recovery_s),
                    "reference_mg": _num(sr.reference_mg),
                    "period_s": _num(sr.period_s),
                }
            )
    seen = set()
    for r in results:
        for t, a in r.alerts:
            if (a.id, a.state) in seen:
                continue
            seen.add((a.id, a.state))
            lines.append({"type": "alert", "t": _num(t - r.t0), **a.payload()})
    for r in results:
        for e in r.falls:
            fields = dataclasses.asdict(e)
            for k in [
                k for k in fields if k == "t" or k.endswith("_t")
            ]:  # instants: recording time
                fields[k] = None if fields[k] is None else fields[k] - r.t0
            lines.append(
                {
                    "type": "fall",
                    "sensor": r.sensor,
                    **{k: _num(v) if isinstance(v, float) else v for k, v in fields.items()},
                }
            )
    for r in results:
        raised = [a for _, a in r.alerts if a.state == "raised"]
        lines.append(
            {
                "type": "summary",
                "sensor": r.sensor,
                "placement": r.placement,
                "fs": r.fs,
                "duration_s": _num(r.recording.duration_s),
                "windows": len(r.statuses),
                "sets": len(r.sets),
                "reps": sum(s.reps for s in r.sets),
                "alerts_raised": len(raised),
                "alert_codes": sorted({a.code for a in raised}),
                "falls": len(r.falls),
                "baseline_mg": _num(r.statuses[-1].baseline_mg) if r.statuses else None,
                "baseline_learned_t": _num(r.baseline_learned_t - r.t0)
                if r.baseline_learned_t is not None
                else None,
            }
        )
    return lines


def print_json(results: list[ReplayResult], out: TextIO = sys.stdout) -> None:
    for line in json_lines(results):
        print(json.dumps(line, separators=(",", ":")), file=out)


def _fmt(v: float | None, spec: str) -> str:
    return format(v, spec) if v is not None else "-".rjust(len(format(0.0, spec)))


def print_table(results: list[ReplayResult], out: TextIO = sys.stdout) -> None:
    for r in results:
        print(
            f"# {r.sensor} ({r.placement}): {len(r.recording.t)} samples, "
            f"{r.recording.duration_s:.1f} s, "
            f"played at {r.fs:g} Hz",
            file=out,
        )
        print(
            f"{'t_s':>8} {'state':<9} {'rms_mg':>8} {'peak_hz':>7} {'ratio':>6} {'level':<9} "
            f"{'fatigue':>7} "
            f"{'regular':>7} {'moving':<6} {'activity':<8} {'graded':<6} {'reps':>4}",
            file=out,
        )
        for s in r.statuses:
            m = s.window.metrics
            print(
                f"{s.t - r.t0:8.2f} {s.state:<9} {_fmt(s.rms_mg, '8.2f')} "
                f"{_fmt(s.peak_hz, '7.2f')} "
                f"{_fmt(s.ratio, '6.2f')} {s.level:<9} {_fmt(m.fatigue_ratio, '7.2f')} "
                f"{_fmt(m.regularity, '7.2f')} {'yes' if s.moving else 'no':<6} {s.activity:<8} "
                f"{s.graded or '-':<6} {s.reps:>4}",
                file=out,
            )
        measured = [s.rms_mg for s in r.statuses if s.rms_mg is not None]
        if measured:
            print(
                f"# median rms {np.median(measured):.2f} mg over {len(measured)} of "
                f"{len(r.statuses)} windows",
                file=out,
            )
        for sr in r.sets:
            print(
                f"# set {sr.index}: {sr.kind} {sr.start - r.t0:.1f}-{sr.end - r.t0:.1f} s, "
                f"{sr.reps} reps",
                file=out,
            )
        for t, a in r.alerts:
            if a.state == "raised":
                print(f"# alert at {t - r.t0:.1f} s: {a.code} ({a.level}) {a.message}", file=out)
        for e in r.falls:
            print(f"# fall at {e.t - r.t0:.1f} s: impact {e.impact_g:.1f} g", file=out)


def plot(results: list[ReplayResult], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit(
            "--plot needs matplotlib: pip install 'gym-tremor-monitor[plot]'"
        ) from None
    fig, axes = plt.subplots(
        3 * len(results), 1, figsize=(11, 7 * len(results)), sharex=False, squeeze=False
    )
    for k, r in enumerate(results):
        ax_rms, ax_hz, ax_spec = axes[3 * k : 3 * k + 3, 0]
        t = [s.t - r.t0 for s in r.statuses]
        ax_rms.plot(
            t, [s.rms_mg if s.rms_mg is not None else np.nan for s in r.statuses], color="tab:red"
        )
        ax_rms.set_ylabel("tremor RMS (mg)")
        ax_rms.set_title(f"{r.sensor} ({r.fs:g} Hz)")
        for s in r.sets:
            ax_rms.axvspan(s.start - r.t0, s.end - r.t0, color="tab:green", alpha=0.15)
        ax_hz.plot(
            t,
            [s.peak_hz if s.peak_hz is not None else np.nan for s in r.statuses],
            ".",
            color="tab:blue",
        )
        ax_hz.set_ylabel("peak (Hz)")
        ax_hz.set_ylim(0, 20)
        rec = r.recording.resampled(r.fs)
        # Orientation-free: the spectrogram of the magnitude's deviation from its mean.
        mag = np.linalg.norm(rec.accel, axis=1)
        nfft = int(min(len(mag), 2 ** np.ceil(np.log2(2.5 * r.fs))))
        ax_spec.specgram(mag - mag.mean(), NFFT=nfft, Fs=r.fs, noverlap=nfft * 3 // 4, cmap="magma")
        ax_spec.set_ylim(0, min(20, r.fs / 2))
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
