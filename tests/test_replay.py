"""`gym-monitor record` and `replay`: raw samples to a file and back through the analysis."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from monitor.recorder import RecordingWriter, SensorInfo, read_recording, sensor_rates
from monitor.replay import replay

ROOT = Path(__file__).resolve().parents[1]
PDKIT = Path(os.environ.get("GYM_PDKIT_DATA", ROOT / "tests" / "data" / "pdkit"))


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "monitor.cli", *args], cwd=ROOT, capture_output=True, text=True
    )


def test_recording_round_trip_and_a_torn_last_record(tmp_path):
    path = tmp_path / "r.gtr"
    t = np.arange(1000) / 1000
    with RecordingWriter(
        path, [SensorInfo("wrist", 1000, "mpu6050", "limb"), SensorInfo("bench", 833)]
    ) as rec:
        rec.write(0, t, np.column_stack([t, -t, np.full_like(t, 9.8)]))
        rec.write(1, t[:10], np.zeros((10, 3)))
    with path.open("ab") as f:
        f.write(b"\x01\x02\x03")  # a power cut in the middle of a record
    got = read_recording(path)
    assert set(got) == {"wrist", "bench"}
    assert len(got["wrist"].t) == 1000
    np.testing.assert_allclose(got["wrist"].accel[500], [0.5, -0.5, 9.8], rtol=1e-6)
    assert sensor_rates(path) == {"wrist": 1000.0, "bench": 833.0}


def test_not_a_recording_is_refused(tmp_path):
    bad = tmp_path / "x.gtr"
    bad.write_text("hello\n")
    with pytest.raises(ValueError, match="not a gym-monitor recording"):
        read_recording(bad)


def test_record_the_simulator_then_replay_it(tmp_path):
    cfg = tmp_path / "monitor.toml"
    cfg.write_text('[station]\nsimulate = true\n[[imu]]\nname = "wrist"\nscenario = "rest"\n')
    out = tmp_path / "rest.gtr"
    rec = cli("record", str(out), "--config", str(cfg), "--seconds", "20")
    assert rec.returncode == 0, rec.stderr
    assert "20000 samples" in rec.stdout or "19999 samples" in rec.stdout
    rep = cli("replay", str(out), "--plot", str(tmp_path / "p.png"))
    assert rep.returncode == 0, rep.stderr
    lines = [
        line
        for line in rep.stdout.splitlines()
        if line and not line.startswith("#") and line.split()[0][0].isdigit()
    ]
    assert len(lines) in (
        35,
        36,
    )  # every 0.5 s once 2.5 s are in (the first sample is just after t=0)
    rms = [float(line.split()[2]) for line in lines]
    assert 5 < np.median(rms) < 20  # the scenario's rested tremor is about 10 mg
    assert (tmp_path / "p.png").stat().st_size > 10_000


@pytest.mark.skipif(not PDKIT.exists(), reason=f"the PDkit recordings are not at {PDKIT}")
def test_replay_reads_pdkit_csv_and_finds_its_tremor():
    [result] = replay(PDKIT / "S5_postural_tremor_right_hand.csv")
    assert result.fs == 50
    peaks = [s.peak_hz for s in result.statuses if s.peak_hz is not None]
    assert np.median(peaks) == pytest.approx(5.0, abs=0.25)


def test_replay_of_a_missing_file_is_one_line(tmp_path):
    out = cli("replay", str(tmp_path / "nope.csv"))
    assert out.returncode == 1 and out.stderr.strip() == f"{tmp_path / 'nope.csv'}: no such file"
