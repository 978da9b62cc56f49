from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest

import orchestra as oc

RUNTIMES = ["fake", "process"]


def make_cluster(runtime: str, **kwargs: Any) -> oc.Cluster:
    return oc.Cluster(runtime=runtime, **kwargs)


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    if request.param == "process" and shutil.which("sleep") is None:
        pytest.skip("needs coreutils' sleep")
    return str(request.param)


@pytest.fixture
async def cluster(runtime: str) -> AsyncIterator[oc.Cluster]:
    async with oc.Cluster(runtime=runtime, nodes=3) as c:
        yield c
