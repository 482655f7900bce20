"""A power cut while the scale's calibration is written: the old file or the new, never a
torn one."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.i2c.calibration import CalibrationError, CalibrationStore, ScaleCalibration

from .options import ROOT

CUT_POINTS = ("mid-write", "before-rename", "after-rename", "random")


def calibration_of(generation: int) -> ScaleCalibration:
    """A calibration that says which generation it is (offset = 1000 x generation)."""
    return ScaleCalibration(
        offset_counts=1000.0 * generation,
        counts_per_gram=100.0 + generation,
        gain=128,
        created=float(generation),
    )


class _Os:
    """``os`` for the calibration module, with one function swapped: where the power cut lands."""

    def __init__(self, **overrides: Callable):
        self._overrides = overrides

    def __getattr__(self, name: str) -> Any:
        return self._overrides.get(name) or getattr(os, name)


def _power_cut_here() -> None:
    print("CUT", flush=True)
    while True:  # wait for the SIGKILL that is the power cut
        time.sleep(1)


class _HalfWriter:
    """A file whose write() puts half the bytes on disk, then the power goes."""

    def __init__(self, f):
        self.f = f

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def write(self, text: str) -> int:
        self.f.write(text[: len(text) // 2])
        self.f.flush()
        os.fsync(self.f.fileno())
        _power_cut_here()
        return 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.f, name)


def calibration_writer_main(state_dir: str, cut: str, naive: bool) -> int:
    """The writer subprocess: save generation after generation; stop dead where ``cut`` says.

    Prints ``SAVE <n>`` before each save, so the parent knows which two files may be there.
    ``naive`` writes the file in place (no temporary, no rename): the writer the check must
    catch.
    """
    import monitor.i2c.calibration as calibration

    store = CalibrationStore(state_dir)
    if cut == "mid-write":
        calibration.os = _Os(fdopen=lambda *a, **k: _HalfWriter(os.fdopen(*a, **k)))
    elif cut == "before-rename":
        calibration.os = _Os(replace=lambda *a: _power_cut_here())
    elif cut == "after-rename":
        calibration.os = _Os(replace=lambda *a: (os.replace(*a), _power_cut_here()))
    generation = 1
    while True:
        print(f"SAVE {generation}", flush=True)
        if naive:
            _save_in_place(store, cut, calibration_of(generation))
        else:
            store.save("scale", calibration_of(generation))
        generation += 1


def _save_in_place(store: CalibrationStore, cut: str, cal: ScaleCalibration) -> None:
    """How not to save: truncate the real file and write it (what the atomic save avoids)."""
    text = json.dumps(cal.to_json(), indent=2, sort_keys=True) + "\n"
    with open(store.path("scale"), "w", encoding="utf-8") as f:
        (_HalfWriter(f) if cut == "mid-write" else f).write(text)


@dataclass
class CutResult:
    point: str
    last_started: int  # the generation being saved when the power went
    found: str  # "old", "new", "torn", "missing" or "wrong"
    detail: str = ""


def calibration_power_cuts(
    workdir: Path, rng: random.Random, cuts: int, *, naive: bool = False
) -> list[CutResult]:
    """Cut the power on a calibration writer ``cuts`` times; say what the file held after each.

    Each cut uses a fresh state dir holding generation 0; the writer then saves 1, 2, ...
    and is SIGKILLed at a point from CUT_POINTS in turn ("random": after 5-60 ms of
    saving in a loop). After the cut the file must load as the generation being saved
    or the one before it. A restart's next save must also work and tidy the leftovers.
    """
    results = []
    for i in range(cuts):
        point = CUT_POINTS[i % len(CUT_POINTS)]
        state = workdir / f"cut-{i:03d}"
        CalibrationStore(state).save("scale", calibration_of(0))
        results.append(_one_cut(state, point, rng, naive))
    return results


def _one_cut(state: Path, point: str, rng: random.Random, naive: bool) -> CutResult:
    args = [
        sys.executable,
        "-m",
        "bench.chaos",
        "--calibration-writer",
        str(state),
        "--cut",
        point,
    ]
    if naive:
        args.append("--naive")
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    lines: list[str] = []
    wait_for = "SAVE 1" if point == "random" else "CUT"
    while True:  # the writer blocks at its cut point, so this ends
        line = proc.stdout.readline()
        if not line or line.strip() == wait_for:
            break
        lines.append(line.strip())
    if point == "random":
        lines.append(wait_for)
        time.sleep(rng.uniform(0.0, 0.03))  # saving runs flat out meanwhile: cut anywhere in it
    proc.kill()
    proc.wait()
    lines += [x.strip() for x in proc.stdout.read().splitlines()]
    proc.stdout.close()
    started = max((int(x.split()[1]) for x in lines if x.startswith("SAVE ")), default=0)
    return CutResult(point, started, *_inspect(state, started))


def _inspect(state: Path, started: int) -> tuple[str, str]:
    store = CalibrationStore(state)
    try:
        cal = store.load("scale")
    except CalibrationError as err:
        return "torn", str(err)[:120]
    if cal is None:
        return "missing", "no calibration file at all"
    generation = round(cal.offset_counts / 1000.0)
    if cal != calibration_of(generation) or generation not in (started, started - 1):
        return "wrong", f"generation {generation} while saving {started}"
    # The station restarts and saves again: that must work and leave no temporary behind.
    store.save("scale", calibration_of(started + 1))
    leftovers = sorted(p.name for p in state.glob(".*.tmp"))
    if leftovers or store.load("scale") != calibration_of(started + 1):
        return "wrong", f"the next save left {leftovers}"
    return ("new" if generation == started else "old"), ""
