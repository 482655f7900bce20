"""A load cell's calibration, and keeping it safe across power cuts.

A scale reads raw ADC counts; two numbers turn them into grams::

    mass_g = (raw - offset_counts) / counts_per_gram

``offset_counts`` comes from taring (nothing on the scale) and
``counts_per_gram`` from a known mass. Both belong to one load cell wired to
one ADC at one gain, so they are stored per sensor and checked against the
gain the driver runs at.

The store writes each sensor's calibration to its own small JSON file,
atomically, because a gym Pi loses power whenever someone trips over its
lead::

    store = CalibrationStore(Path("/var/lib/gym-monitor"))
    store.save("bench-1-scale", scale.calibration)
    scale = Nau7802(bus, calibration=store.load("bench-1-scale"))

Atomic means: write a temporary file in the same directory, flush and fsync
it, ``os.replace`` it onto the real name (a rename, atomic on POSIX), then
fsync the directory so the rename itself is on disk. After a power cut the
file holds either the old calibration or the new one, never half of each.

A file that exists but cannot be used (truncated by a failing SD card, edited
by hand) raises :class:`CalibrationError` naming the file and the problem,
rather than returning None: silently dropping a calibration would make a scale
that reads plausible but wrong masses after a restart, and a missing
calibration is already what None means. The caller (the station) decides
whether to run uncalibrated and tell the staff.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import MonitorError
from ..files import fsync_dir

FORMAT_VERSION = 1
_SENSOR_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class CalibrationError(MonitorError, ValueError):
    """A stored calibration exists but cannot be used; the message says which file and why."""


@dataclass(frozen=True)
class ScaleCalibration:
    """What turns a scale's raw counts into grams.

    ``offset_counts`` is the reading with nothing on the scale; ``counts_per_gram``
    is None until a known mass has been weighed (a tared but uncalibrated scale
    cannot give grams). ``gain`` and ``ldo_v`` record the ADC settings it was
    made at, since counts per gram scale with the gain. ``created`` is Unix time.

        cal = ScaleCalibration(offset_counts=41_210.4, counts_per_gram=214.7)
        cal.mass_g(41_210.4 + 214.7 * 500)   # -> 500.0
    """

    offset_counts: float
    counts_per_gram: float | None = None
    gain: int = 128
    ldo_v: float | None = 3.3
    created: float | None = None

    def __post_init__(self) -> None:
        if not _finite(self.offset_counts):
            raise ValueError(f"offset_counts must be a finite number, not {self.offset_counts!r}")
        object.__setattr__(self, "offset_counts", float(self.offset_counts))
        if self.counts_per_gram is not None:
            if not _finite(self.counts_per_gram) or self.counts_per_gram == 0:
                raise ValueError(
                    f"counts_per_gram must be a finite non-zero number, "
                    f"not {self.counts_per_gram!r}"
                )
            object.__setattr__(self, "counts_per_gram", float(self.counts_per_gram))
        # The gains and LDO voltages are the chip's, checked where its register map is
        # (imported here: the driver module imports this one).
        from .nau7802 import checked_gain, checked_ldo

        object.__setattr__(self, "gain", checked_gain(self.gain))
        object.__setattr__(self, "ldo_v", checked_ldo(self.ldo_v))
        if self.created is not None and not _finite(self.created):
            raise ValueError(f"created must be a Unix time or None, not {self.created!r}")

    @property
    def calibrated(self) -> bool:
        """True once a known mass has set counts per gram."""
        return self.counts_per_gram is not None

    def mass_g(self, counts: float) -> float | None:
        """Grams for a raw reading, or None while counts per gram is unknown."""
        if self.counts_per_gram is None:
            return None
        return (counts - self.offset_counts) / self.counts_per_gram

    def to_json(self) -> dict[str, Any]:
        return {"v": FORMAT_VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, data: Any) -> ScaleCalibration:
        """Parse what :meth:`to_json` wrote; ValueError says what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if data.get("v") != FORMAT_VERSION:
            raise ValueError(f"format version {data.get('v')!r} is not {FORMAT_VERSION}")
        if "offset_counts" not in data:
            raise ValueError("offset_counts is missing")
        known = {"offset_counts", "counts_per_gram", "gain", "ldo_v", "created"}
        return cls(**{k: v for k, v in data.items() if k in known})


class CalibrationStore:
    """Scale calibrations as one JSON file per sensor under ``state_dir``.

    ``sensor_id`` names the file (``scale-<sensor_id>.json``), so it is limited
    to letters, digits, ``.``, ``_`` and ``-``.

        store = CalibrationStore(Path("/var/lib/gym-monitor"))
        store.save("bench-1", ScaleCalibration(offset_counts=1200.0, counts_per_gram=10.7))
        store.load("bench-1").counts_per_gram   # -> 10.7
        store.load("never-saved")               # -> None
    """

    def __init__(self, state_dir: Path | str):
        self.state_dir = Path(state_dir)

    def path(self, sensor_id: str) -> Path:
        if not isinstance(sensor_id, str) or not _SENSOR_ID.fullmatch(sensor_id):
            raise ValueError(
                f"sensor id {sensor_id!r} must be 1-64 letters, digits, '.', '_' or '-'"
            )
        return self.state_dir / f"scale-{sensor_id}.json"

    def load(self, sensor_id: str) -> ScaleCalibration | None:
        """The saved calibration, None if there is none.

        CalibrationError if the file is unusable.
        """
        path = self.path(sensor_id)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as err:
            raise CalibrationError(
                f"{path}: cannot be read ({err}); tare and calibrate the scale again"
            ) from err
        try:
            return ScaleCalibration.from_json(json.loads(text))
        except (ValueError, TypeError) as err:  # JSONDecodeError is a ValueError
            raise CalibrationError(
                f"{path}: not a usable scale calibration ({err}); "
                "tare and calibrate the scale again, or delete the file"
            ) from err

    def save(self, sensor_id: str, calibration: ScaleCalibration) -> Path:
        """Write ``calibration`` atomically (see the module docstring); returns the file's path."""
        if not isinstance(calibration, ScaleCalibration):
            raise TypeError(f"expected a ScaleCalibration, not {type(calibration).__name__}")
        path = self.path(sensor_id)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._remove_leftovers(path)
        payload = json.dumps(calibration.to_json(), indent=2, sort_keys=True) + "\n"
        fd, tmp = tempfile.mkstemp(dir=self.state_dir, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            # Whatever went wrong, the old file is untouched; do not leave the
            # half-done temporary behind to pile up.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        fsync_dir(self.state_dir)
        return path

    def _remove_leftovers(self, path: Path) -> None:
        # A power cut between mkstemp and os.replace leaves a temporary file.
        # load() never reads them; tidy them up the next time we write.
        for stale in self.state_dir.glob(f".{path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()


def _finite(value: Any) -> bool:
    """A real number (not a bool, not NaN or infinite)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
