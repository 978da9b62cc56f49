"""The pytest plugin installed with orchestra.

Fixtures:

- ``orchestra_cluster``: a started async ``Cluster`` for one test, configured by
  ``@pytest.mark.orchestra(runtime="process", nodes=3, ...)`` (fake runtime, one node by
  default);
- ``orchestra_module_cluster``: one cluster shared by a module's tests, configured by the
  module's ``pytestmark = pytest.mark.orchestra(...)``;
- ``orchestra_session_cluster``: one cluster for the whole run, configured by overriding
  the ``orchestra_session_options`` fixture (a dict) in a ``conftest.py``;
- ``orchestra_sync_cluster``: a ``SyncCluster`` for one test.

Each cluster runs on an event loop of its own, in a thread, and its methods hop there
from whatever loop awaits them. So the fixtures are plain (synchronous) fixtures that
work the same under anyio, pytest-asyncio (strict or auto mode) and pytest-xdist, can be
shared across tests that each get a new loop, and need no marker: an ``async def`` test
that uses one and that no other plugin runs is run here, on a new asyncio loop.

All stop their cluster fully, also when a test fails. A failed test's report gets a
section with the cluster's pods as a ``kubectl get`` table (healthy ones collapsed into
one line), each unhealthy container's state, exit code and last termination, the latest
warning events and the last log lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from orchestra._cluster import Cluster
from orchestra._loopthread import LoopThread
from orchestra._sync import SyncCluster
from orchestra.loops._options import check_options

_ASYNC_FIXTURES = {"orchestra_cluster", "orchestra_module_cluster",
                   "orchestra_session_cluster"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "orchestra(**options): options for the orchestra_cluster fixture "
        "(runtime=, nodes=, network=, clock=, ...)")


def _marker_options(node: pytest.Item | pytest.Collector | None) -> dict[str, Any]:
    options: dict[str, Any] = {"runtime": "fake", "nodes": 1}
    marker = node.get_closest_marker("orchestra") if node is not None else None
    if marker is not None:
        if marker.args:
            pytest.fail("@pytest.mark.orchestra takes keyword arguments only "
                        f"(runtime=..., nodes=...), not {marker.args!r}", pytrace=False)
        # A misspelt option fails the test at once, in the marker's words and without
        # orchestra's frames: the mistake is on the test's own line.
        named = [n for n, p in inspect.signature(Cluster).parameters.items()
                 if p.kind is not inspect.Parameter.VAR_KEYWORD]
        try:
            check_options({k: v for k, v in marker.kwargs.items() if k not in named},
                          accepted=named, caller="@pytest.mark.orchestra()")
        except TypeError as exc:
            pytest.fail(str(exc), pytrace=False)
        options.update(marker.kwargs)
    return options


@contextlib.contextmanager
def _running_cluster(options: Mapping[str, Any]) -> Iterator[Cluster]:
    """A Cluster started on a loop thread of its own, stopped (fully) on exit."""
    thread = LoopThread("orchestra-fixture")

    async def make() -> Cluster:
        return Cluster(**options)

    try:
        cluster = thread.run(make())
        thread.run(cluster.start())
        try:
            yield cluster
        finally:
            thread.run(cluster.stop())
    finally:
        thread.close()


@pytest.fixture
def orchestra_cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """An async Cluster started for this test and stopped after it."""
    with _running_cluster(_marker_options(request.node)) as cluster:
        request.node._orchestra_cluster = cluster
        yield cluster


@pytest.fixture(scope="module")
def orchestra_module_cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """One async Cluster for every test of a module (the module's orchestra marker)."""
    with _running_cluster(_marker_options(request.node)) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def orchestra_session_options() -> dict[str, Any]:
    """The options of ``orchestra_session_cluster``: override it in a conftest.py."""
    return {}


@pytest.fixture(scope="session")
def orchestra_session_cluster(orchestra_session_options: dict[str, Any]
                              ) -> Iterator[Cluster]:
    """One async Cluster for the whole test session."""
    with _running_cluster({"runtime": "fake", "nodes": 1, **orchestra_session_options}
                          ) as cluster:
        yield cluster


@pytest.fixture
def orchestra_sync_cluster(request: pytest.FixtureRequest) -> Iterator[SyncCluster]:
    """A SyncCluster started for this test and stopped after it."""
    cluster = SyncCluster(**_marker_options(request.node))
    cluster.start()
    request.node._orchestra_cluster = cluster.cluster
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.hookimpl
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run an ``async def`` test that uses an orchestra fixture when no other plugin
    (anyio, pytest-asyncio) claimed it: on a new asyncio loop, as ``asyncio.run``."""
    fn = pyfuncitem.obj
    if not inspect.iscoroutinefunction(fn) or not _ASYNC_FIXTURES & set(
            pyfuncitem.fixturenames):
        return None
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(fn(**args))
    return True


def _clusters_of(item: pytest.Item) -> list[Cluster]:
    found: list[Cluster] = []
    own = getattr(item, "_orchestra_cluster", None)
    if isinstance(own, Cluster):
        found.append(own)
    for value in getattr(item, "funcargs", {}).values():
        cluster = value.cluster if isinstance(value, SyncCluster) else value
        if isinstance(cluster, Cluster) and cluster not in found:
            found.append(cluster)
    return found


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call" and report.failed:
        for cluster in _clusters_of(item):
            try:
                report.sections.append((f"orchestra cluster {cluster.name}",
                                        _state(cluster)))
            except Exception as exc:  # diagnostics must never hide the failure
                report.sections.append((f"orchestra cluster {cluster.name}",
                                        f"unavailable: {exc}"))


def _state(cluster: Cluster) -> str:
    from orchestra.present import cluster_summary

    summary: str = cluster._on_home(lambda: cluster_summary(cluster))
    return summary
