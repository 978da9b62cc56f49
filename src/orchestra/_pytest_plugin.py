"""The pytest plugin installed with orchestra: ``orchestra_cluster`` (an async
``Cluster``) and ``orchestra_sync_cluster``; both stop fully when the test ends, also
when it fails. ``@pytest.mark.orchestra(runtime="process", nodes=3, ...)`` passes its
keyword arguments to the Cluster (fake runtime, one node by default).

When a test using a cluster fails, the report gets a section with every pod's status,
the latest events and the last log lines, so that the failure says why.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from orchestra._cluster import Cluster
from orchestra._sync import SyncCluster


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "orchestra(**options): options for the orchestra_cluster fixture "
        "(runtime=, nodes=, network=, clock=, ...)")


def _options(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker("orchestra")
    options: dict[str, Any] = {"runtime": "fake", "nodes": 1}
    if marker is not None:
        options.update(marker.kwargs)
    return options


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call" and report.failed:
        cluster = getattr(item, "_orchestra_cluster", None)
        if cluster is not None:
            try:
                report.sections.append(("orchestra cluster state", _state(cluster)))
            except Exception as exc:  # diagnostics must never hide the failure
                report.sections.append(("orchestra cluster state", f"unavailable: {exc}"))


def _state(cluster: Cluster) -> str:
    from orchestra._explain import cluster_summary

    return cluster_summary(cluster)


@pytest.fixture
async def orchestra_cluster(request: pytest.FixtureRequest) -> AsyncIterator[Cluster]:
    """An async Cluster started for this test and stopped after it."""
    cluster = Cluster(**_options(request))
    await cluster.start()
    request.node._orchestra_cluster = cluster
    try:
        yield cluster
    finally:
        await cluster.stop()


@pytest.fixture
def orchestra_sync_cluster(request: pytest.FixtureRequest) -> Iterator[SyncCluster]:
    """A SyncCluster started for this test and stopped after it."""
    cluster = SyncCluster(**_options(request))
    cluster.start()
    request.node._orchestra_cluster = cluster.cluster
    try:
        yield cluster
    finally:
        cluster.close()
