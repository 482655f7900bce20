"""Fixtures shared by the test modules."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.sim import SimBus, SimClock

G = 9.80665


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


@pytest.fixture
def clock():
    return SimClock()


@pytest.fixture
def bus():
    return SimBus()


@pytest.fixture
def sine():
    return SineMotion()
