"""cluster.endpoint("pod/NAME", port): a port-forward on 127.0.0.1, closed on stop."""

from __future__ import annotations

import socket

import httpx
import pytest

import orchestra as oc
from tests.behaviour._servers import server_container

pytestmark = pytest.mark.anyio


def pod(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "fw"}},
            "spec": {"containers": [server_container()], "terminationGracePeriodSeconds": 1}}


async def test_a_pod_port_forward_reaches_the_pod_and_closes_on_stop() -> None:
    async with oc.Cluster(runtime="process", nodes=1) as cluster:
        await cluster.apply(pod("fw-1"))
        # (Ready as soon as it runs: no readiness probe; the server says when it listens)
        p = await cluster.wait_for("pod/fw-1", oc.LogLine("^listening"), timeout=30)
        host, port = cluster.endpoint("pod/fw-1", 8080)
        assert host == "127.0.0.1" and port != 8080
        assert (host, port) != (p.status.pod_ip, 8080)
        async with httpx.AsyncClient() as client:
            for _ in range(3):  # several connections through one listener
                r = await client.get(f"http://{host}:{port}/")
                assert r.status_code == 200 and r.text == "v1 fw-1"
        # the same pod and port: the same listener; a named port works too
        assert cluster.endpoint("pod/fw-1", "http") == (host, port)
        assert cluster.endpoint("pod/fw-1") == (host, port)
        with pytest.raises(ValueError, match="does not have a named port 'nope'"):
            cluster.endpoint("pod/fw-1", "nope")
    with pytest.raises(OSError):
        socket.create_connection((host, port), timeout=2).close()


async def test_the_fake_network_refuses_a_port_forward() -> None:
    async with oc.Cluster(runtime="fake", nodes=1) as cluster:
        await cluster.apply(pod("fw-1"))
        await cluster.wait_for("pod/fw-1", "Ready", timeout=10)
        with pytest.raises(ValueError, match="data plane"):
            cluster.endpoint("pod/fw-1", 8080)
        # nor does it give a Service's ClusterIP as if this process could reach it
        await cluster.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                             "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}})
        with pytest.raises(ValueError, match=r"the fake network has none, so nothing answers "
                           r"at service/s's ClusterIP 10\.96\.\d+\.\d+: use "
                           r"runtime=\"process\""):
            cluster.endpoint("service/s", 80)
