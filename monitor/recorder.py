"""Raw sample recordings in the project's own format (``.gtr``).

A recording is one JSON header line naming the sensors, then fixed-size
little-endian records, one per sample: time (float64 s), sensor index (uint8)
and acceleration (3 x float32 m/s^2) -- 21 bytes, about 75 MB per hour of one
1 kHz sensor, appendable while the station runs and readable with one numpy
call::

    with RecordingWriter(path, [SensorInfo("wrist", 1000, "mpu6050", "limb")]) as rec:
        rec.write(0, block.t, block.accel)
    recordings = read_recording(path)    # {"wrist": Recording(t, accel, ...)}
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .analysis.recordings import Recording

MAGIC = "gym-monitor recording"
VERSION = 1
RECORD = np.dtype([("t", "<f8"), ("sensor", "u1"), ("accel", "<f4", (3,))])


@dataclass(frozen=True)
class SensorInfo:
    name: str
    fs: float
    chip: str = ""
    placement: str = ""


class RecordingWriter:
    """Appends sample blocks to a .gtr file; see the module docstring."""

    def __init__(self, path: str | Path, sensors: list[SensorInfo], *, station: str = ""):
        if not sensors or len(sensors) > 255:
            raise ValueError("a recording holds 1 to 255 sensors")
        self.path = Path(path)
        self.sensors = sensors
        header = {
            "format": MAGIC,
            "version": VERSION,
            "station": station,
            "sensors": [asdict(s) for s in sensors],
        }
        self._f = self.path.open("wb")
        self._f.write(json.dumps(header).encode() + b"\n")
        self.samples = 0

    def write(self, sensor: int, t: np.ndarray, accel: np.ndarray) -> None:
        if len(t) == 0:
            return
        rec = np.empty(len(t), dtype=RECORD)
        rec["t"], rec["sensor"], rec["accel"] = t, sensor, accel
        self._f.write(rec.tobytes())
        self.samples += len(t)

    def close(self) -> None:
        if not self._f.closed:
            self._f.flush()
            self._f.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_header(path: str | Path) -> tuple[dict, int]:
    with Path(path).open("rb") as f:
        line = f.readline(1 << 20)
    try:
        header = json.loads(line)
    except ValueError:
        raise ValueError(f"{path}: not a gym-monitor recording (no header line)") from None
    if not isinstance(header, dict) or header.get("format") != MAGIC:
        raise ValueError(f"{path}: not a gym-monitor recording")
    if header.get("version") != VERSION:
        raise ValueError(f"{path}: recording version {header.get('version')} is not supported")
    return header, len(line)


def read_recording(path: str | Path) -> dict[str, Recording]:
    """Each sensor's samples, by name. A torn last record (power cut) is ignored."""
    header, offset = read_header(path)
    raw = Path(path).read_bytes()[offset:]
    whole = len(raw) // RECORD.itemsize * RECORD.itemsize
    rec = np.frombuffer(raw[:whole], dtype=RECORD)
    out = {}
    for i, s in enumerate(header["sensors"]):
        mine = rec[rec["sensor"] == i]
        if len(mine) < 2:
            continue
        t = mine["t"] - mine["t"][0]
        out[s["name"]] = Recording(t, mine["accel"].astype(float), name=s["name"])
    return out


def sensor_rates(path: str | Path) -> dict[str, float]:
    header, _ = read_header(path)
    return {s["name"]: float(s["fs"]) for s in header["sensors"]}
