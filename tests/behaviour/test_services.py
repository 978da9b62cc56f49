"""Services on the process runtime with real HTTP servers: load balancing, a rolling
update under load with zero failed requests, NodePort, headless, service environment
variables, and the EADDRINUSE hint for servers that bind 0.0.0.0."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

import orchestra as oc
from tests.behaviour._servers import eventually, http_probe, server_container
from tests.behaviour._util import ready

pytestmark = pytest.mark.anyio


@pytest.fixture
async def proc() -> AsyncIterator[oc.Cluster]:
    async with oc.Cluster(runtime="process", nodes=2) as c:
        yield c


def web(replicas: int = 3, version: str = "v1", **container: Any) -> dict[str, Any]:
    c = server_container(version=version, env={"READY_AT_START": "1"},
                         readinessProbe=http_probe("/ready", period=1), **container)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [c],
                                           "terminationGracePeriodSeconds": 2}}}}


def service(name: str = "web", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name},
                     "ports": [{"port": 80, "targetPort": "http"}], **spec}}


async def get(host: str, port: int,
              timeout: float = 5.0) -> tuple[int, str]:  # noqa: ASYNC109
    """One HTTP/1.1 request without keep-alive: (status, body)."""
    async def go() -> tuple[int, str]:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(b"GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
            data = await reader.read()
        finally:
            writer.close()
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1]) if head else 0
        return status, body.decode()

    return await asyncio.wait_for(go(), timeout)


async def test_requests_through_the_service_reach_every_replica(proc: oc.Cluster) -> None:
    await proc.apply([service(), web()])
    await proc.wait_for("deployment/web", "Available", timeout=60)
    await eventually(lambda: sum(len(s.addresses or ()) for s in
                                 proc.store.get("Endpoints", "web").subsets or ()) == 3)
    host, port = proc.endpoint("service/web", 80)
    assert host.startswith("127.")
    seen = set()
    for _ in range(30):
        status, body = await get(host, port)
        assert status == 200
        seen.add(body.split()[1])
    pods = {p.metadata.name for p in await proc.list("pods", selector="app=web")}
    assert seen == pods


async def test_rolling_update_under_load_loses_no_request(proc: oc.Cluster) -> None:
    await proc.apply([service(), web(version="v1")])
    await proc.wait_for("deployment/web", "Available", timeout=60)
    await eventually(lambda: sum(len(s.addresses or ()) for s in
                                 proc.store.get("Endpoints", "web").subsets or ()) == 3)
    host, port = proc.endpoint("service/web", 80)
    results = {"ok": 0, "failed": 0, "v1": 0, "v2": 0}
    errors: list[str] = []
    rolled = asyncio.Event()
    min_requests, max_requests = 2000, 20000

    async def client() -> None:
        while True:
            total = results["ok"] + results["failed"]
            if total >= max_requests or (rolled.is_set() and total >= min_requests):
                return
            try:
                status, body = await get(host, port)
            except (OSError, TimeoutError, IndexError, ValueError) as exc:
                results["failed"] += 1
                errors.append(repr(exc))
                continue
            if status != 200:
                results["failed"] += 1
                errors.append(f"status {status}: {body[:80]}")
                continue
            results["ok"] += 1
            results[body.split()[0]] += 1

    async def roll() -> None:
        await asyncio.sleep(0.5)
        await proc.apply(web(version="v2"))
        await proc.wait_for("deployment/web", "Available", timeout=120)
        rolled.set()

    clients = [asyncio.create_task(client()) for _ in range(4)]
    await roll()
    await asyncio.wait_for(asyncio.gather(*clients), timeout=120)
    assert results["failed"] == 0, (results, errors[:5])
    assert results["ok"] >= min_requests
    assert results["v1"] > 0 and results["v2"] > 0
    pods = [p for p in await proc.list("pods", selector="app=web")
            if p.metadata.deletion_timestamp is None]
    assert {p.spec.containers[0].env[0].value for p in pods} == {"v2"}
    status, body = await get(host, port)
    assert status == 200 and body.startswith("v2 ")


async def test_node_port_on_localhost(proc: oc.Cluster) -> None:
    await proc.apply([service(type="NodePort"), web(replicas=1)])
    await proc.wait_for("deployment/web", "Available", timeout=60)
    svc = await proc.get("service/web")
    node_port = svc.spec.ports[0].node_port
    assert 30000 <= node_port <= 32767
    await eventually(lambda: proc.store.get("Endpoints", "web").subsets)
    status, body = await get("127.0.0.1", node_port)
    assert status == 200 and body.startswith("v1 web-")


async def test_headless_service_lists_the_pods(proc: oc.Cluster) -> None:
    await proc.apply([service(clusterIP="None"), web(replicas=2)])
    await proc.wait_for("deployment/web", "Available", timeout=60)
    svc = await proc.get("service/web")
    assert svc.spec.cluster_ip == "None"
    ep = await eventually(lambda: [a for s in proc.store.get("Endpoints", "web").subsets or ()
                                   for a in s.addresses or ()] if len(
        [a for s in proc.store.get("Endpoints", "web").subsets or ()
         for a in s.addresses or ()]) == 2 else None)
    pods = await proc.list("pods", selector="app=web")
    assert sorted(a.ip for a in ep) == sorted(p.status.pod_ip for p in pods)
    for a in ep:  # clients talk to the pods directly
        status, _ = await get(a.ip, 8080)
        assert status == 200


async def test_service_environment_variables(proc: oc.Cluster) -> None:
    await proc.apply(service())
    svc = await proc.get("service/web")
    await proc.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client"},
                      "spec": {"containers": [{"name": "main", "image": "busybox",
                                               "command": ["sleep", "3600"]}],
                               "terminationGracePeriodSeconds": 1}})
    await proc.wait_for("pod/client", "Ready", timeout=30)
    r = await proc.exec("client", ["sh", "-c", "echo $WEB_SERVICE_HOST $WEB_SERVICE_PORT "
                                               "$WEB_PORT $WEB_PORT_80_TCP_PORT "
                                               "$WEB_PORT_80_TCP_PROTO $WEB_PORT_80_TCP_ADDR "
                                               "$POD_IP"])
    ip = svc.spec.cluster_ip
    host, svc_port, port, p80, proto, addr, pod_ip = r.stdout.split()
    assert (host, svc_port, port, p80, proto, addr) == (ip, "80", f"tcp://{ip}:80", "80",
                                                        "tcp", ip)
    assert pod_ip.startswith("127.") and pod_ip != ip


async def test_binding_the_wildcard_address_collides_and_the_event_says_bind_pod_ip(
        proc: oc.Cluster) -> None:
    # a port free on every address now (a random one could be another test's, in the
    # suite's other process, and then both replicas would fail to bind)
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        port = str(s.getsockname()[1])
    d = web(replicas=2)
    c = d["spec"]["template"]["spec"]["containers"][0]
    c["env"] += [{"name": "BIND", "value": "0.0.0.0"}, {"name": "PORT", "value": port}]
    c["readinessProbe"] = {"tcpSocket": {"port": int(port)}, "periodSeconds": 1}
    await proc.apply(d)

    def hint() -> Any:
        return [e for e in proc.events() if e.reason == "AddressInUse"]

    events = await eventually(hint, timeout=30)
    assert events[0].type == "Warning"
    assert events[0].involved_object.kind == "Pod"
    assert "$POD_IP" in events[0].message and "0.0.0.0" in events[0].message
    loser = events[0].involved_object.name
    p = await proc.get(f"pod/{loser}")
    assert p.status.pod_ip in events[0].message
    text = ""
    for previous in (True, False):
        try:
            text += await proc.logs(loser, previous=previous)
        except oc.NotFound:
            pass
    assert "Address already in use" in text
    # exactly one of the two replicas serves (Ready, never restarted); the other, the
    # one the event names, keeps failing (not Ready, restarted)
    def split() -> tuple[list[str], list[str]] | None:
        pods = proc.store.list("pods", selector="app=web")
        assert len(pods) == 2
        serving = [p.name for p in pods if ready(p)
                   and p.status.container_statuses[0].restart_count == 0]
        failing = [p.name for p in pods if not ready(p)
                   and p.status.container_statuses[0].restart_count >= 1]
        return (serving, failing) if len(serving) == 1 and len(failing) == 1 else None

    serving, failing = await eventually(split, timeout=30)
    assert failing == [loser] and serving != [loser]


@pytest.mark.parametrize("runtime", ["fake", "process"])
async def test_address_and_port_conflicts_are_reported_as_kubernetes_reports_them(
        runtime: str) -> None:
    async with oc.Cluster(runtime=runtime, nodes=1) as c:
        await c.apply(service("a", type="NodePort", ports=[{"port": 80, "nodePort": 30080}]))
        taken = (await c.get("service/a")).spec.cluster_ip
        cases = [
            (service("b", type="NodePort", ports=[{"port": 80, "nodePort": 30080}]),
             'Service "b" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided '
             "port is already allocated"),
            (service("c", type="NodePort", ports=[{"port": 80, "nodePort": 40000}]),
             'Service "c" is invalid: spec.ports[0].nodePort: Invalid value: 40000: provided '
             "port is not in the valid range. The range of valid ports is 30000-32767"),
            (service("d", clusterIP=taken),
             f'Service "d" is invalid: spec.clusterIPs: Invalid value: []string{{"{taken}"}}: '
             f"failed to allocate IP {taken}: provided IP is already allocated"),
        ]
        for doc, message in cases:
            with pytest.raises(oc.Invalid) as err:
                await c.apply(doc)
            assert str(err.value) == message
