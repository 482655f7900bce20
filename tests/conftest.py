"""Fixtures shared by the test modules; the helpers themselves live in :mod:`tests.support`."""

from __future__ import annotations

import pytest

from monitor.sim import SimBus, SimClock
from tests.support.signals import SineMotion

#: A real Mosquitto for any test that asks: ``mosquitto``, ``mosquitto_factory``, ``secrets``.
pytest_plugins = ["tests.support.mosquitto"]


@pytest.fixture
def clock():
    return SimClock()


@pytest.fixture
def bus():
    return SimBus()


@pytest.fixture
def sine():
    return SineMotion()
