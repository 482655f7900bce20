"""Signals whose truth is known, for the simulated chips and the analysis.

A motion is any object with ``accel(t) -> (N, 3)`` in m/s^2, gravity included (and, for an
IMU with a gyroscope, ``gyro(t) -> (N, 3)`` in rad/s), as the simulated chips take it::

    bus.attach(0x68, Mpu6050Sim(SineMotion(hz=8, amp_mg=50), clock=clock))

For the analysis on its own: random orientations, so that a test or a benchmark can turn a
synthetic reading the way a sensor clipped on anyhow would see it.
"""

from __future__ import annotations

import numpy as np

from monitor.units import G

#: The MPU-6050's accelerometer noise density, ug/sqrt(Hz) per axis (datasheet).
MPU6050_DENSITY_UG = 400.0


class SineMotion:
    """Gravity along z plus a sinusoid of ``amp_mg`` peak at ``hz`` along x: a known truth."""

    def __init__(self, hz: float = 8.0, amp_mg: float = 50.0, axis: int = 0):
        self.hz, self.amp, self.axis = hz, amp_mg * 1e-3 * G, axis

    def accel(self, t):
        t = np.asarray(t, dtype=float)
        a = np.zeros((len(t), 3))
        a[:, 2] = G
        a[:, self.axis] += self.amp * np.sin(2 * np.pi * self.hz * t)
        return a

    def gyro(self, t):
        g = np.zeros((len(t), 3))
        g[:, 1] = 0.5 * np.sin(2 * np.pi * self.hz * np.asarray(t, dtype=float))
        return g


class Still:
    """A sensor lying flat: gravity on z, no rotation."""

    def accel(self, t):
        return np.tile([0.0, 0.0, G], (len(t), 1))

    def gyro(self, t):
        return np.zeros((len(t), 3))


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A rotation matrix drawn uniformly (QR of a Gaussian matrix, signs fixed, det +1)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


def random_direction(rng: np.random.Generator) -> np.ndarray:
    """A unit vector drawn uniformly on the sphere."""
    v = rng.normal(size=3)
    return v / np.linalg.norm(v)
