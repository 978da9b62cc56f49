"""Fixtures for the containerd runtime tests. The session's private containerd, the
loopback ``docker-registry`` and the busybox archive come from tests/_containerd_env.py
(shared with the behaviour suite); without root or the binaries they skip, saying what to
install, and fail under ``CI=true``."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest

from orchestra._clock import ManualClock
from orchestra.runtime.containerd import ContainerdRuntime


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Module-scoped, so that a module may share one cluster between its tests (an async
    fixture of module scope needs the backend for as long)."""
    return "asyncio"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def runtime(containerd_socket: str, busybox_archive: str, tmp_path: os.PathLike[str],
                  clock: ManualClock) -> AsyncIterator[ContainerdRuntime]:
    rt = ContainerdRuntime(clock=clock, cluster_name=f"t{uuid.uuid4().hex[:8]}",
                           state_dir=str(tmp_path), address=containerd_socket,
                           image_archives=[busybox_archive])
    await rt.start()
    try:
        yield rt
    finally:
        await rt.close()
