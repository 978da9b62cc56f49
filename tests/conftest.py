"""Shared fixtures: anyio on asyncio, and a watchdog that fails any test whose event
loop was blocked (STYLE.md: nothing blocks the loop)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator

import pytest

pytest_plugins = ["tests._containerd_env"]  # the session containerd, registry, images

BLOCK_LIMIT = float(os.environ.get("ORCHESTRA_TEST_BLOCK_LIMIT", "5.0"))

# scripts/test runs two pytest processes at once: the tests marked ``host`` here, which
# use the host's shared pieces (the session's containerd and registry, bridges, network
# namespaces, nftables tables; the docs' examples include a containerd + bridge
# cluster), one after another as always, and every other test beside them. The suite
# mostly waits (containers starting, grace periods, probes), so the two overlap well.
_HOST_BOUND = ("tests/containerd/", "tests/net/test_bridge", "tests/netpol/test_nft",
               "tests/docs/")


def _host_bound(nodeid: str) -> bool:
    return nodeid.startswith(_HOST_BOUND) or "[containerd" in nodeid or "containerd]" in nodeid


@pytest.hookimpl(tryfirst=True)  # before ``-m`` selects by the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _host_bound(item.nodeid):
            item.add_marker(pytest.mark.host)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class _Watchdog:
    """A thread that notices when the event loop stops answering for BLOCK_LIMIT s."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.last = time.monotonic()
        self.worst = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _beat(self) -> None:
        self.last = time.monotonic()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.loop.call_soon_threadsafe(self._beat)
            except RuntimeError:
                return
            self.worst = max(self.worst, time.monotonic() - self.last)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
async def _loop_watchdog_async() -> AsyncIterator[None]:
    dog = _Watchdog(asyncio.get_running_loop())
    dog.start()
    yield
    dog.stop()
    if dog.worst > BLOCK_LIMIT:
        pytest.fail(f"the event loop was blocked for {dog.worst:.1f}s (limit {BLOCK_LIMIT}s)")


@pytest.fixture(autouse=True)
def _loop_watchdog(request: pytest.FixtureRequest) -> None:
    if "anyio_backend" in request.fixturenames:
        request.getfixturevalue("_loop_watchdog_async")
