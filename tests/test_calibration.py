"""Scale calibrations: values, JSON, and atomic persistence across power cuts."""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.errors import MonitorError
from monitor.i2c.calibration import CalibrationError, CalibrationStore, ScaleCalibration

CAL = ScaleCalibration(
    offset_counts=42_939.3, counts_per_gram=10.7376, gain=128, ldo_v=3.3, created=1.7e9
)


def temp_files(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.name.endswith(".tmp")]


# -- values --------------------------------------------------------------------
def test_mass_from_counts():
    cal = ScaleCalibration(offset_counts=1000.0, counts_per_gram=2.0)
    assert cal.mass_g(1000.0 + 2.0 * 500) == 500.0
    assert cal.mass_g(0.0) == -500.0
    assert ScaleCalibration(offset_counts=1000.0).mass_g(5000.0) is None  # tared, not calibrated


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(offset_counts=math.nan), "offset_counts"),
        (dict(offset_counts="12"), "offset_counts"),
        (dict(offset_counts=0.0, counts_per_gram=0.0), "counts_per_gram"),
        (dict(offset_counts=0.0, counts_per_gram=math.inf), "counts_per_gram"),
        (dict(offset_counts=0.0, gain=3), "gain"),
        (dict(offset_counts=0.0, ldo_v=5.0), "ldo_v"),
    ],
)
def test_impossible_values_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ScaleCalibration(**kwargs)


# -- the store ---------------------------------------------------------------------
def test_round_trip(tmp_path: Path):
    store = CalibrationStore(tmp_path / "state")  # created on first save
    path = store.save("bench-1", CAL)
    assert path == tmp_path / "state" / "scale-bench-1.json"
    assert store.load("bench-1") == CAL
    assert json.loads(path.read_text())["v"] == 1
    assert temp_files(path.parent) == []


def test_nothing_saved_is_none(tmp_path: Path):
    assert CalibrationStore(tmp_path).load("bench-1") is None


def test_sensors_are_kept_apart(tmp_path: Path):
    store = CalibrationStore(tmp_path)
    other = ScaleCalibration(offset_counts=-5.0, counts_per_gram=214.7)
    store.save("bench-1", CAL)
    store.save("bottle-dock", other)
    assert store.load("bench-1") == CAL and store.load("bottle-dock") == other


@pytest.mark.parametrize("sensor_id", ["../etc/passwd", "a/b", "", ".hidden", "x" * 65, 7])
def test_sensor_ids_cannot_escape_the_directory(tmp_path: Path, sensor_id):
    with pytest.raises(ValueError, match="sensor id"):
        CalibrationStore(tmp_path).save(sensor_id, CAL)


def test_power_cut_before_the_rename_leaves_the_old_file(tmp_path: Path, monkeypatch):
    store = CalibrationStore(tmp_path)
    store.save("bench-1", CAL)
    before = (tmp_path / "scale-bench-1.json").read_bytes()

    def cut(src, dst):
        raise OSError(5, "Input/output error (power cut)")

    monkeypatch.setattr(os, "replace", cut)
    with pytest.raises(OSError, match="power cut"):
        store.save("bench-1", ScaleCalibration(offset_counts=1.0, counts_per_gram=1.0))
    monkeypatch.undo()
    assert (tmp_path / "scale-bench-1.json").read_bytes() == before
    assert store.load("bench-1") == CAL
    assert temp_files(tmp_path) == []


def test_a_temporary_left_by_a_real_power_cut_is_ignored_then_tidied(tmp_path: Path):
    store = CalibrationStore(tmp_path)
    store.save("bench-1", CAL)
    torn = tmp_path / ".scale-bench-1.json.x1y2z3.tmp"
    torn.write_text('{"v": 1, "offset_coun')  # the process died mid-write
    assert store.load("bench-1") == CAL
    new = ScaleCalibration(offset_counts=2.0, counts_per_gram=3.0)
    store.save("bench-1", new)
    assert not torn.exists() and temp_files(tmp_path) == []
    assert store.load("bench-1") == new


def test_data_reaches_the_disk_before_the_rename_and_the_rename_after(tmp_path: Path, monkeypatch):
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync-dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync-file")
        return real_fsync(fd)

    def replace(src, dst):
        events.append("replace")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    CalibrationStore(tmp_path).save("bench-1", CAL)
    assert events == ["fsync-file", "replace", "fsync-dir"]


@pytest.mark.parametrize(
    "content, match",
    [
        ('{"v": 1, "offset_counts": 42939.3, "counts_per', "not a usable"),  # truncated
        ("", "not a usable"),
        ("\x00\x00\x00\x00", "not a usable"),  # a block of zeros after a bad shutdown
        ("[1, 2, 3]", "not a JSON object"),
        ('{"v": 2, "offset_counts": 1.0}', "format version"),
        ('{"v": 1}', "offset_counts is missing"),
        ('{"v": 1, "offset_counts": 1.0, "counts_per_gram": "ten"}', "counts_per_gram"),
        ('{"v": 1, "offset_counts": 1.0, "gain": 100}', "gain"),
    ],
)
def test_an_unusable_file_is_a_clear_error(tmp_path: Path, content, match):
    path = tmp_path / "scale-bench-1.json"
    path.write_text(content)
    with pytest.raises(CalibrationError, match=match) as info:
        CalibrationStore(tmp_path).load("bench-1")
    assert str(path) in str(info.value) and "calibrate" in str(info.value)
    assert isinstance(info.value, MonitorError) and isinstance(info.value, ValueError)


def test_an_unreadable_file_is_a_clear_error(tmp_path: Path):
    (tmp_path / "scale-bench-1.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CalibrationError, match=r"scale-bench-1\.json"):
        CalibrationStore(tmp_path).load("bench-1")


def test_save_refuses_something_else(tmp_path: Path):
    with pytest.raises(TypeError):
        CalibrationStore(tmp_path).save("bench-1", {"offset_counts": 1.0})


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@given(
    offset=finite,
    per_gram=st.one_of(st.none(), finite.filter(lambda x: x != 0)),
    gain=st.sampled_from([1, 2, 4, 8, 16, 32, 64, 128]),
    ldo=st.sampled_from([None, 2.4, 2.7, 3.0, 3.3, 3.6, 3.9, 4.2, 4.5]),
    created=st.one_of(st.none(), st.floats(min_value=0, max_value=4e9)),
)
def test_json_round_trip_is_exact(offset, per_gram, gain, ldo, created):
    cal = ScaleCalibration(offset, per_gram, gain=gain, ldo_v=ldo, created=created)
    assert ScaleCalibration.from_json(json.loads(json.dumps(cal.to_json()))) == cal
