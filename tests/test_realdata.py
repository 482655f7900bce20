"""The station on real recordings that ship with the repository (tests/data, see its README).

Everything goes through :func:`monitor.replay.replay`, the same door as
``gym-monitor replay``: a simulated chip plays the recording to the real driver, and
the station's analysis, session, alert rules and alert manager do the rest.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from monitor.analysis.tremor import analyze
from monitor.replay import replay
from monitor.units import G

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
SPAR = sorted((DATA / "spar").glob("*.csv"))
TREMOR_CODES = ("tremor.", "hold.")


def floor_mg(fs: float = 50.0) -> float:
    """Twice the MPU-6050's noise in the tremor band: the smallest rested baseline there is."""
    still = np.zeros((int(2.5 * fs), 3))
    still[:, 2] = G
    return 2 * analyze(still, fs).floor_mg


@pytest.fixture(scope="module")
def spar_runs():
    """Each SPAR set replayed with the rested baseline at the sensor floor (the harshest)."""
    floor = floor_mg()
    return {
        path.stem: (
            json.loads(path.with_suffix(".json").read_text()),
            replay(path, placement="limb", baseline_mg=floor)[0],
        )
        for path in SPAR
    }


def test_the_data_is_in_the_repository():
    assert len(SPAR) >= 10
    assert (DATA / "spar" / "LICENSE_seglearn_BSD3.txt").exists()
    assert (DATA / "pdkit" / "LICENSE_pdkit_MIT.txt").exists()


def test_each_real_set_is_one_set_dated_from_its_first_rep(spar_runs):
    for name, (_, r) in spar_runs.items():
        sets = [s for s in r.sets if s.kind == "reps"]
        assert len(sets) == 1, (name, [(s.start, s.end, s.reps) for s in r.sets])
        # the recordings start with the movement
        assert abs(sets[0].start - r.t0) <= 1.0, (name, sets[0].start - r.t0)


def test_reps_are_counted_on_the_movement(spar_runs):
    errors = {}
    for name, (labels, r) in spar_runs.items():
        errors[name] = sum(s.reps for s in r.sets) - labels["reps"]
    assert all(abs(e) <= 2 for e in errors.values()), errors
    assert np.mean(np.abs(list(errors.values()))) <= 1.0, errors


def test_ordinary_reps_raise_no_tremor_or_hold_alert(spar_runs):
    for name, (_, r) in spar_runs.items():
        codes = [a.code for _, a in r.alerts if a.state == "raised"]
        assert not [c for c in codes if c.startswith(TREMOR_CODES)], (name, codes)
        # the reps' band is far above the rested baseline, and is never graded against it
        moving = [s for s in r.statuses if s.moving]
        assert moving and all(s.graded != "rested" for s in moving)


def test_real_reps_fill_the_tremor_band_with_their_own_harmonics(spar_runs):
    """Why grading reps against the rested baseline was wrong: 10-50x the floor, peak at 3 Hz."""
    floor = floor_mg()
    for name, (_, r) in spar_runs.items():
        band = np.median([s.window.metrics.band_rms_mg["tremor"] for s in r.statuses if s.moving])
        peak = np.median([s.peak_hz for s in r.statuses if s.moving and s.peak_hz])
        assert band > 3 * floor, name
        assert peak < 5.0, name


def test_replay_json_has_windows_sets_alerts_and_a_summary(tmp_path):
    path = DATA / "spar" / "S01_ABD_L.csv"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor.cli",
            "replay",
            str(path),
            "--json",
            "--placement",
            "limb",
            "--baseline-mg",
            "5.4",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    kinds = {line["type"] for line in lines}
    assert {"window", "set", "summary"} <= kinds
    windows = [x for x in lines if x["type"] == "window"]
    assert len(windows) > 80 and all(x["t"] >= 0 for x in windows)
    [one] = [x for x in lines if x["type"] == "set"]
    assert one["kind"] == "reps" and abs(one["reps"] - 20) <= 1 and abs(one["start"]) <= 1.0
    [summary] = [x for x in lines if x["type"] == "summary"]
    assert (
        summary["placement"] == "limb"
        and summary["sets"] == 1
        and summary["baseline_mg"] == pytest.approx(5.4)
    )
    assert summary["alerts_raised"] == len(
        [x for x in lines if x["type"] == "alert" and x["state"] == "raised"]
    )


def test_pdkit_tremor_is_found_through_the_station():
    """A real 5 Hz postural tremor of ~370 mg (PDkit S5), replayed: the analysis finds it."""
    [r] = replay(DATA / "pdkit" / "S5_postural_tremor_right_hand.csv")
    still = [s for s in r.statuses if not s.moving]
    assert len(still) > 0.8 * len(r.statuses)
    assert np.median([s.peak_hz for s in still]) == pytest.approx(5.0, abs=0.25)
    assert np.median([s.rms_mg for s in still]) == pytest.approx(370.0, rel=0.15)
