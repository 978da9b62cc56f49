from __future__ import annotations

import pytest

import orchestra.objects._apps
import orchestra.objects._core
import orchestra.objects._pod  # noqa: F401  (register the kinds the tests use)
from orchestra._clock import ManualClock
from orchestra._store import Store


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(clock: ManualClock) -> Store:
    return Store(clock=clock)
