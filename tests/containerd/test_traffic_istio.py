"""The Istio traffic suite (tests/traffic/_istio_checks.py) on containerd with the bridge
network: the bookinfo-shaped app in busybox containers (tests/containerd/_bookinfo.py)
behind the built-in Istio ingress gateway, which runs in the host's namespace and reaches
the pods on the bridge. One cluster serves the module; each test starts from Istio's
bookinfo samples as they were applied, with the app's counters reset."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from _bookinfo import bridge_cluster, shell_app  # type: ignore[import-not-found]

import orchestra as oc
from tests.net._http import get
from tests.traffic import _istio_checks as checks
from tests.traffic._istio_checks import PORT, bookinfo, gateway, ready, samples
from tests.traffic._policy_checks import POLICY_CHECKS

pytestmark = pytest.mark.anyio

ROOT = str(Path(__file__).resolve().parent.parent.parent)
# run by the host's Python inside a pod's network namespace: a Caller's batch to host:port
BATCH = """
import json, sys
sys.path.insert(0, sys.argv[1])
from tests.net._http import get, version_of
host, port, headers = json.loads(sys.argv[2])
answers = [get((host, port), "/", headers=headers)[::2] for _ in range(30)]
print(json.dumps([version_of(b) if s == 200 else str(s) for s, b in answers]))
"""


@pytest.fixture(scope="module")
async def shared(containerd_socket: str, busybox_archive: str) -> AsyncIterator[oc.Cluster]:
    async with bridge_cluster(containerd_socket, busybox_archive,
                              [*bookinfo(shell_app), *samples()], ready) as c:
        yield c


@pytest.fixture
async def cluster(shared: oc.Cluster) -> oc.Cluster:
    """The module's cluster with only the samples' objects (the VirtualServices,
    DestinationRules, ServiceEntries, Istio Gateways and TLS Secrets a test applied are
    deleted) and every pod's counters and failure switch reset."""
    for kind in ("virtualservice", "destinationrule", "serviceentry",
                 "gateways.networking.istio.io", "secret"):
        for obj in await shared.list(kind):
            if kind != "secret" or obj.type == "kubernetes.io/tls":
                await shared.delete(f"{kind}/{obj.metadata.name}")
    await shared.apply(samples())
    for pod in await shared.list("pods"):
        status, _, _ = await asyncio.to_thread(get, (pod.status.pod_ip, PORT), "/reset")
        assert status == 200
    # "/" has no route in the sample alone, and every test routes it somewhere
    assert (await gateway(shared, "/", want=404))[0] == 404
    assert (await gateway(shared, "/productpage"))[0] == 200
    return shared


@pytest.mark.parametrize("check", checks.CHECKS + POLICY_CHECKS, ids=lambda c: c.__name__)
async def test_bookinfo(cluster: oc.Cluster, check: checks.Check) -> None:
    """The suite shared with the process runtime (tests/traffic/_istio_checks.py and
    _policy_checks.py)."""
    await check(cluster)


async def from_productpage(cluster: oc.Cluster, svc: str,
                           headers: dict[str, str] | None) -> list[str]:
    """A :data:`checks.Caller` from inside the productpage pod's network namespace to the
    Service's ClusterIP (what the bridge's nft table hands to the mesh's L7)."""
    (pod,) = await cluster.list("pods", selector="app=productpage")
    ip = (await cluster.get(f"service/{svc}")).spec.cluster_ip
    net: Any = cluster.network
    proc = await asyncio.create_subprocess_exec(
        "nsenter", f"--net={net._netns_path(pod.metadata.uid)}", sys.executable, "-c", BATCH,
        ROOT, json.dumps([ip, PORT, headers]),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise OSError(err.decode())
    got: list[str] = json.loads(out)
    return got


async def test_mesh_samples_from_a_pod_to_the_cluster_ip(cluster: oc.Cluster) -> None:
    await checks.mesh_header_route_and_fault_samples(cluster, from_productpage)
