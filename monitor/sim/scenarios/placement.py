"""Where a sensor sits and how it is turned: what reaches it, and in which frame.

A limb-worn sensor sees the athlete's tremor and reps directly; a bench clip sees the
tremor attenuated through the bench but feels the whole floor (dropped weights, a
treadmill next door). Each sensor is also mounted at some angle, a fixed rotation
from the body (or bench) frame to the sensor frame::

    Placement.named("bench")                  # the presets: limb, body, bench
    Placement.bench(tremor_gain=0.1)          # a stiffer bench
    rotation_matrix("upright", q)             # identity: z up reads +1 g
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class Placement:
    """Where a sensor sits, as gains on what reaches it.

    ``tremor_gain`` scales the body's tremor, ``motion_gain`` voluntary motion and sway,
    ``rotation_gain`` the limb's rotation (gyro), ``floor_gain`` floor-borne vibration
    (dropped weights, a treadmill next door; 1 at a bench clip), ``ambient_mg`` the
    bench's own background vibration at 20-24 Hz. ``worn`` sensors fall with the body::

        Placement.bench(tremor_gain=0.1)      # a stiffer bench, less tremor reaches it
        Scenario(placement="bench")           # the presets by name: limb, body, bench
    """

    name: str
    tremor_gain: float = 1.0
    motion_gain: float = 1.0
    rotation_gain: float = 1.0
    floor_gain: float = 0.05
    ambient_mg: float = 0.0
    worn: bool = True

    @classmethod
    def limb(cls) -> Placement:
        """Worn on the working wrist or forearm: sees tremor and reps directly."""
        return cls("limb")

    @classmethod
    def body(cls) -> Placement:
        """Worn on the trunk (chest or hip clip): half the limb's tremor, falls with you."""
        return cls("body", tremor_gain=0.5, motion_gain=0.5, rotation_gain=0.3, floor_gain=0.1)

    @classmethod
    def bench(cls, tremor_gain: float = 0.15) -> Placement:
        """Clipped to the bench: tremor through the bench, little motion, the whole floor."""
        return cls(
            "bench",
            tremor_gain=tremor_gain,
            motion_gain=0.1,
            rotation_gain=0.0,
            floor_gain=1.0,
            ambient_mg=0.3,
            worn=False,
        )

    @classmethod
    def named(cls, value: str | Placement) -> Placement:
        if isinstance(value, Placement):
            return value
        presets = {"limb": cls.limb, "body": cls.body, "bench": cls.bench}
        if value not in presets:
            raise ValueError(f"placement must be one of {sorted(presets)}, not {value!r}")
        return presets[value]()


@dataclass(frozen=True, eq=False)
class Posture:
    """How the body is held: which body-frame direction is up, and how much postural
    tremor and sway there is (lying relaxed, there is little posture to hold)."""

    up: np.ndarray  # body-frame direction gravity's reaction points along
    tremor_gain: float
    sway_gain: float


UPRIGHT = Posture(np.array([0.0, 0.0, 1.0]), 1.0, 1.0)


def rotation_matrix(orientation: str | ArrayLike, quaternion: np.ndarray) -> np.ndarray:
    """The body-to-sensor rotation for ``"random"`` (from four normal draws: uniform over
    rotations), ``"upright"`` (identity) or a given proper 3x3 rotation."""
    if isinstance(orientation, str):
        if orientation == "upright":
            return np.eye(3)
        if orientation != "random":
            raise ValueError(
                f"orientation must be 'random', 'upright' or a 3x3 rotation, not {orientation!r}"
            )
        w, x, y, z = quaternion / np.linalg.norm(quaternion)
        return np.array(
            [
                [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
            ]
        )
    matrix = np.array(orientation, dtype=float)
    if (
        matrix.shape != (3, 3)
        or not np.allclose(matrix @ matrix.T, np.eye(3), atol=1e-6)
        or np.linalg.det(matrix) < 0
    ):
        raise ValueError("orientation must be a proper 3x3 rotation matrix")
    return matrix
