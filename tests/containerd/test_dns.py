"""Cluster DNS in busybox pods on containerd with the bridge network: the pod's
resolv.conf names the cluster DNS (on the bridge's gateway), ``nslookup`` and ``wget``
find a Service by name (and reverse), and hostAliases land in /etc/hosts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

import orchestra as oc

pytestmark = pytest.mark.anyio

HTTPD = "exec httpd -f -p 8080 -h /"


def busybox(name: str, script: str, labels: dict[str, str] | None = None,
            **spec: Any) -> dict[str, Any]:
    c = {"name": "main", "image": "busybox", "imagePullPolicy": "IfNotPresent",
         "command": ["sh", "-c", script]}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"containers": [c], "terminationGracePeriodSeconds": 1, **spec}}


@pytest.fixture
async def bridge_cluster(containerd_socket: str, busybox_archive: str
                         ) -> AsyncIterator[oc.Cluster]:
    async with oc.Cluster(runtime="containerd", network="bridge", nodes=1, dns_upstreams=[],
                          runtime_options={"address": containerd_socket,
                                           "image_archives": [busybox_archive]}) as c:
        yield c


async def test_busybox_pod_resolves_services_by_name(bridge_cluster: oc.Cluster) -> None:
    cluster = bridge_cluster
    await cluster.apply([
        busybox("web", HTTPD, {"app": "web"}),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}},
        busybox("client", "sleep 300",
                hostAliases=[{"ip": "10.1.2.3", "hostnames": ["legacy.local"]}])])
    await cluster.wait_for("pod/web", "Ready", timeout=60)
    await cluster.wait_for("pod/client", "Ready", timeout=60)
    ip = (await cluster.get("svc/web")).spec.cluster_ip
    host, port = cluster.dns_address
    assert port == 53
    resolv = await cluster.exec("pod/client", ["cat", "/etc/resolv.conf"])
    assert resolv.stdout.startswith(
        "search default.svc.cluster.local svc.cluster.local cluster.local")
    assert f"nameserver {host}\n" in resolv.stdout and "options ndots:5" in resolv.stdout
    hosts = await cluster.exec("pod/client", ["cat", "/etc/hosts"])
    assert "# Entries added by HostAliases.\n10.1.2.3\tlegacy.local\n" in hosts.stdout
    with anyio.fail_after(30):
        while True:
            r = await cluster.exec("pod/client",
                                   ["nslookup", "web.default.svc.cluster.local"])
            if r.exit_code == 0 and ip in r.stdout:
                break
            await anyio.sleep(0.2)
    # the short name through the search list (busybox nslookup then also reports the
    # other search domains' NXDOMAIN); a reverse lookup of the ClusterIP
    short = await cluster.exec("pod/client", ["nslookup", "web"])
    assert f"Name:\tweb.default.svc.cluster.local\nAddress: {ip}\n" in short.stdout
    ptr = await cluster.exec("pod/client", ["nslookup", ip])
    assert "name = web.default.svc.cluster.local" in ptr.stdout, ptr.stdout
    nx = await cluster.exec("pod/client", ["nslookup", "nope.default.svc.cluster.local"])
    assert nx.exit_code != 0 and "NXDOMAIN" in nx.stdout + nx.stderr
