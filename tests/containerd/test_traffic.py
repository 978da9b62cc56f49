"""The Ingress and Gateway API suite (tests/traffic/_route_checks.py) on containerd with
the bridge network: the versioned app in busybox containers (tests/containerd/_bookinfo.py)
behind the built-in Ingress controller and a Gateway, whose L7 data plane runs in the
host's namespace and reaches the pods on the bridge. One cluster serves the module; each
test starts with no Ingress, HTTPRoute, ReferenceGrant or TLS Secret and the Gateway
``web`` alone."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from _bookinfo import bridge_cluster, shell_app  # type: ignore[import-not-found]

import orchestra as oc
from tests.traffic import _route_checks as checks
from tests.traffic._ingress_checks import INGRESS_CHECKS
from tests.traffic._route_checks import GATEWAY_REF, ready, reviews, web_gateway

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
async def shared(containerd_socket: str, busybox_archive: str) -> AsyncIterator[oc.Cluster]:
    async with bridge_cluster(containerd_socket, busybox_archive,
                              [*reviews(shell_app), web_gateway()], ready) as c:
        yield c


@pytest.fixture
async def cluster(shared: oc.Cluster) -> oc.Cluster:
    """The module's cluster without what earlier tests applied."""
    for kind in ("ingress", "httproute", "referencegrant", "secret"):
        for obj in await shared.list(kind):
            if kind != "secret" or obj.type == "kubernetes.io/tls":
                await shared.delete(f"{kind}/{obj.metadata.name}",
                                    namespace=obj.metadata.namespace)
    for gw in await shared.list("gateways.gateway.networking.k8s.io"):
        if gw.metadata.name != "web":
            await shared.delete(f"gateways.gateway.networking.k8s.io/{gw.metadata.name}")
    await shared.wait_for(GATEWAY_REF, lambda g: bool(g.status and g.status.listeners) and all(
        ls.attached_routes == 0 for ls in g.status.listeners), timeout=10)
    return shared


@pytest.mark.parametrize("check", INGRESS_CHECKS + checks.GATEWAY_CHECKS,
                         ids=lambda c: c.__name__)
async def test_routes(cluster: oc.Cluster, check: checks.Check) -> None:
    """The suite shared with the process runtime (tests/traffic/_ingress_checks.py and
    _route_checks.py)."""
    await check(cluster)
