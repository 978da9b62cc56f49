"""The Istio traffic suite (tests/traffic/_istio_checks.py) on containerd with the bridge
network: the bookinfo-shaped app in busybox containers (tests/containerd/_bookinfo.py)
behind the built-in Istio ingress gateway, which runs in the host's namespace and reaches
the pods on the bridge. One cluster serves the module; each test starts from Istio's
bookinfo samples as they were applied, with the app's counters reset."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from _bookinfo import bridge_cluster, shell_app  # type: ignore[import-not-found]

import orchestra as oc
from tests.net._http import get
from tests.traffic import _istio_checks as checks
from tests.traffic._istio_checks import PORT, bookinfo, gateway, ready, samples

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
async def shared(containerd_socket: str, busybox_archive: str) -> AsyncIterator[oc.Cluster]:
    async with bridge_cluster(containerd_socket, busybox_archive,
                              [*bookinfo(shell_app), *samples()], ready) as c:
        yield c


@pytest.fixture
async def cluster(shared: oc.Cluster) -> oc.Cluster:
    """The module's cluster with only the samples' VirtualService and DestinationRules
    (what a test applied is deleted) and every pod's counters and failure switch reset."""
    for kind in ("virtualservice", "destinationrule"):
        for obj in await shared.list(kind):
            await shared.delete(f"{kind}/{obj.metadata.name}")
    await shared.apply(samples())
    for pod in await shared.list("pods"):
        status, _, _ = await asyncio.to_thread(get, (pod.status.pod_ip, PORT), "/reset")
        assert status == 200
    # "/" has no route in the sample alone, and every test routes it somewhere
    assert (await gateway(shared, "/", want=404))[0] == 404
    assert (await gateway(shared, "/productpage"))[0] == 200
    return shared


@pytest.mark.parametrize("check", checks.CHECKS, ids=lambda c: c.__name__)
async def test_bookinfo(cluster: oc.Cluster, check: checks.Check) -> None:
    """The suite shared with the process runtime (tests/traffic/_istio_checks.py)."""
    await check(cluster)
