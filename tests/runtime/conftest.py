"""Fixtures for the runtime tests: a virtual clock and a simulated device on it."""

from __future__ import annotations

import pytest

from hal import VirtualClock
from hal.sim import SimDevice


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def device(clock: VirtualClock) -> SimDevice:
    return SimDevice.local(clock)
