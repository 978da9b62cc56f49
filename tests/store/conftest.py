from __future__ import annotations

import pytest

import orchestra.objects  # noqa: F401  (registers every kind)
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
