"""The behaviour suite runs on every runtime this machine can run: fake, process and
containerd (root, containerd, runc, busybox-static: the session's private containerd from
tests/_containerd_env.py; skipped saying what to install, failing under ``CI=true``)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest

import orchestra as oc
from tests.behaviour._util import MakeCluster

RUNTIMES = ["fake", "process", "containerd"]


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    if request.param == "process" and shutil.which("sleep") is None:
        pytest.skip("needs coreutils' sleep")
    if request.param == "containerd":
        request.getfixturevalue("containerd_options")  # skips (or fails in CI) if missing
    return str(request.param)


@pytest.fixture
def make_cluster(runtime: str, request: pytest.FixtureRequest) -> MakeCluster:
    """``make_cluster(**kwargs)``: an ``oc.Cluster`` on this test's runtime (on containerd
    with the session's daemon and busybox images)."""
    options = request.getfixturevalue("containerd_options") if runtime == "containerd" else None

    def make(**kwargs: Any) -> oc.Cluster:
        if options is not None:
            kwargs.setdefault("runtime_options", options)
        return oc.Cluster(runtime=runtime, **kwargs)

    return make


@pytest.fixture
async def cluster(make_cluster: MakeCluster) -> AsyncIterator[oc.Cluster]:
    async with make_cluster(nodes=3) as c:
        yield c
