"""The loopback network: pod addresses, service ClusterIPs/NodePorts, proxying."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from orchestra._clock import RealClock
from orchestra.net import Network, load_network
from orchestra.net.loopback import LoopbackNetwork
from orchestra.objects._core import Endpoints, Service

from ._helpers import UdpClient, ask, servers, udp_servers

pytestmark = pytest.mark.anyio

PORT = 8080


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[LoopbackNetwork]:
    n = LoopbackNetwork(clock=RealClock(), cluster_name="t", state_dir=str(tmp_path))
    await n.start()
    try:
        yield n
    finally:
        await n.close()


def service(name: str, cluster_ip: str, ports: list[dict[str, Any]], **spec: Any) -> Service:
    return Service.model_validate({"metadata": {"name": name, "namespace": "default"},
                                   "spec": {"clusterIP": cluster_ip, "ports": ports, **spec}})


def endpoints(name: str, ready: list[str], not_ready: list[str] = (),  # type: ignore[assignment]
              ports: list[dict[str, Any]] | None = None) -> Endpoints:
    subset: dict[str, Any] = {"ports": ports or [{"name": "http", "port": PORT}]}
    if ready:
        subset["addresses"] = [{"ip": ip} for ip in ready]
    if not_ready:
        subset["notReadyAddresses"] = [{"ip": ip} for ip in not_ready]
    return Endpoints.model_validate({"metadata": {"name": name, "namespace": "default"},
                                     "subsets": [subset]})


async def pods(net: LoopbackNetwork, n: int) -> list[str]:
    return [(await net.setup_pod(f"uid-{i}", "default", f"p{i}", f"p{i}")).ip
            for i in range(n)]


def test_it_is_a_network(tmp_path: Path) -> None:
    n = load_network("loopback", clock=RealClock(), cluster_name="t", state_dir=str(tmp_path))
    assert isinstance(n, Network) and isinstance(n, LoopbackNetwork)
    assert n.name == "loopback" and n.isolated is False


async def test_pods_get_distinct_addresses_that_share_a_port(net: LoopbackNetwork) -> None:
    a, b = await pods(net, 2)
    assert a != b and a.startswith("127.") and b.startswith("127.")
    assert a not in ("127.0.0.1", "127.0.0.53", "127.0.1.1")
    assert (await net.setup_pod("uid-0", "default", "p0", "p0")).ip == a  # idempotent
    async with servers([a, b], PORT):  # both listen on 8080 at once
        assert await ask(a, PORT) == a
        assert await ask(b, PORT) == b


async def test_addresses_are_released_and_reused(net: LoopbackNetwork) -> None:
    _, b, _ = await pods(net, 3)
    await net.teardown_pod("uid-1")
    await net.teardown_pod("uid-1")  # idempotent
    assert net.pod_ip("uid-1") is None
    assert (await net.setup_pod("uid-9", "default", "p9", "p9")).ip == b


async def test_two_networks_never_collide(net: LoopbackNetwork, tmp_path: Path) -> None:
    other = LoopbackNetwork(clock=RealClock(), cluster_name="u", state_dir=str(tmp_path))
    await other.start()
    try:
        cidrs = {net.pod_cidr, net.service_cidr, other.pod_cidr, other.service_cidr}
        assert len(cidrs) == 4
        ours = set(await pods(net, 3)) | {net.allocate_cluster_ip() for _ in range(3)}
        theirs = set(await pods(other, 3)) | {other.allocate_cluster_ip() for _ in range(3)}
        assert not ours & theirs
    finally:
        await other.close()


async def test_cluster_ips_and_node_ports(net: LoopbackNetwork) -> None:
    ip = net.allocate_cluster_ip()
    assert net.service_cidr is not None and ip.startswith(net.service_cidr.rsplit(".", 2)[0])
    with pytest.raises(ValueError, match="already allocated"):
        net.allocate_cluster_ip(ip)
    net.release_cluster_ip(ip)
    assert net.allocate_cluster_ip(ip) == ip
    with pytest.raises(ValueError, match="not in the valid range"):
        net.allocate_cluster_ip("127.0.0.1")
    port = net.allocate_node_port()
    assert 30000 <= port <= 32767
    with pytest.raises(ValueError, match="already allocated"):
        net.allocate_node_port(port)
    with pytest.raises(ValueError, match="valid range"):
        net.allocate_node_port(80)
    net.release_node_port(port)
    assert net.allocate_node_port(port) == port


async def test_service_balances_over_ready_endpoints_only(net: LoopbackNetwork) -> None:
    a, b, c, d = await pods(net, 4)
    ip = net.allocate_cluster_ip()
    svc = service("web", ip, [{"name": "http", "port": 80, "targetPort": "http"}])
    async with servers([a, b, c, d], PORT):
        await net.sync_service(svc, endpoints("web", [a, b, c], not_ready=[d]))
        assert net.endpoint(svc, 80) == net.endpoint(svc, "http") == net.endpoint(svc) \
            == (ip, 80)
        got = [await ask(*net.endpoint(svc)) for _ in range(6)]
        assert sorted(got) == sorted([a, b, c] * 2) and d not in got
        # Endpoints change: reprogrammed live.
        await net.sync_service(svc, endpoints("web", [d]))
        assert {await ask(ip, 80) for _ in range(3)} == {d}
        await net.sync_service(svc, endpoints("web", [a, d]))  # idempotent re-sync
        await net.sync_service(svc, endpoints("web", [a, d]))
        assert {await ask(ip, 80) for _ in range(4)} == {a, d}


async def test_endpoint_port_is_matched_by_name(net: LoopbackNetwork) -> None:
    a, = await pods(net, 1)
    ip = net.allocate_cluster_ip()
    svc = service("multi", ip, [{"name": "web", "port": 80, "targetPort": 9},
                                {"name": "alt", "port": 81, "targetPort": 9}])
    eps = endpoints("multi", [a], ports=[{"name": "alt", "port": PORT},
                                          {"name": "web", "port": 9999}])
    async with servers([a], PORT):
        await net.sync_service(svc, eps)
        assert await ask(ip, 81) == a  # "alt" -> 8080, where the pod listens
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError, AssertionError)):
            assert await ask(ip, 80) == a  # "web" -> 9999: nothing there, reset


async def test_client_ip_affinity(net: LoopbackNetwork) -> None:
    hosts = await pods(net, 3)
    ip = net.allocate_cluster_ip()
    svc = service("sticky", ip, [{"name": "http", "port": 80}], sessionAffinity="ClientIP")
    async with servers(hosts, PORT):
        await net.sync_service(svc, endpoints("sticky", hosts))
        assert len({await ask(ip, 80) for _ in range(5)}) == 1


async def test_node_port_listens_on_localhost(net: LoopbackNetwork) -> None:
    a, = await pods(net, 1)
    ip, node_port = net.allocate_cluster_ip(), net.allocate_node_port()
    svc = service("np", ip, [{"name": "http", "port": 80, "nodePort": node_port}],
                  type="NodePort")
    async with servers([a], PORT):
        await net.sync_service(svc, endpoints("np", [a]))
        assert await ask("127.0.0.1", node_port) == a
        assert await ask(ip, 80) == a
        # Back to ClusterIP: the node port listener goes, the ClusterIP one stays.
        await net.sync_service(service("np", ip, [{"name": "http", "port": 80}]),
                               endpoints("np", [a]))
        with pytest.raises(ConnectionRefusedError):
            await ask("127.0.0.1", node_port)
        assert await ask(ip, 80) == a
        await net.remove_service("default", "np")
        with pytest.raises(ConnectionRefusedError):
            await ask(ip, 80)


async def test_a_service_with_tcp_and_udp_ports_proxies_both(net: LoopbackNetwork) -> None:
    """A DNS-like Service: port 53 over UDP and TCP to the pods' 5353, and a UDP NodePort.
    (Port 53 may be privileged here: ``endpoint`` gives where the proxy really listens.)"""
    a, b = await pods(net, 2)
    ip, node_port = net.allocate_cluster_ip(), net.allocate_node_port()
    svc = service("dns", ip, [
        {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353,
         "nodePort": node_port},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 5353}],
        type="NodePort")
    eps = endpoints("dns", [a, b], ports=[{"name": "dns", "port": 5353, "protocol": "UDP"},
                                          {"name": "dns-tcp", "port": 5353}])
    async with servers([a, b], 5353), udp_servers([a, b], 5353):
        await net.sync_service(svc, eps)
        assert await ask(*net.endpoint(svc, "dns-tcp")) in (a, b)
        seen = set()
        for _ in range(4):  # one flow per client socket, round robin
            client = await UdpClient.open(*net.endpoint(svc, "dns"))
            answer = await client.ask(b"q")
            client.close()
            assert answer is not None and answer.endswith(b":q")
            seen.add(answer.split(b":")[0].decode())
        assert seen == {a, b}
        client = await UdpClient.open("127.0.0.1", node_port)
        assert await client.ask(b"n") in (f"{a}:n".encode(), f"{b}:n".encode())
        client.close()
        await net.remove_service("default", "dns")
        assert net.proxy.listening("UDP") == [] and net.proxy.listening() == []


async def test_headless_endpoint_is_a_ready_pod(net: LoopbackNetwork) -> None:
    a, b = await pods(net, 2)
    svc = service("db", "None", [{"name": "http", "port": 80, "targetPort": PORT}])
    await net.sync_service(svc, endpoints("db", [b], not_ready=[a]))
    assert net.endpoint(svc, 80) == (b, PORT)
    assert net.proxy.listening() == []
    await net.sync_service(svc, endpoints("db", [], not_ready=[a]))
    with pytest.raises(ValueError, match="no ready endpoints"):
        net.endpoint(svc)
    with pytest.raises(ValueError, match="no port"):
        net.endpoint(svc, 5432)


async def test_close_releases_everything(tmp_path: Path) -> None:
    n = LoopbackNetwork(clock=RealClock(), cluster_name="t", state_dir=str(tmp_path))
    await n.start()
    a, = await pods(n, 1)
    ip, node_port = n.allocate_cluster_ip(), n.allocate_node_port()
    svc = service("np", ip, [{"name": "http", "port": 80, "nodePort": node_port}],
                  type="NodePort")
    async with servers([a], PORT):
        await n.sync_service(svc, endpoints("np", [a]))
        async with asyncio.timeout(5):
            reader, writer = await asyncio.open_connection(ip, 80)
            await reader.readline()
            blocks = list(n._blocks)
            await n.close()
            await n.close()
            assert await reader.read() == b""
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
    assert blocks and not any(b.held for b in blocks)
    with pytest.raises(ConnectionRefusedError):
        await ask("127.0.0.1", node_port)


async def test_handing_a_cluster_ip_to_l7_waits_for_a_sync_in_progress(
        net: LoopbackNetwork, monkeypatch: pytest.MonkeyPatch) -> None:
    """The endpoints loop's ``sync_service`` and mesh routing's ``reserve_for_l7`` are
    serialized: a reservation made while a sync is half done still frees the address
    (without the lock, the sync finished after it and bound the address again)."""
    (ip,) = await pods(net, 1)
    svc = service("web", net.allocate_cluster_ip(), [{"name": "http", "port": 9080}])
    addr = (str(svc.spec.cluster_ip), 9080)
    gate = asyncio.Event()
    original = net.proxy.set_backends

    async def slow(*args: Any, **kwargs: Any) -> None:
        await gate.wait()  # a sync step that yields to the loop half way
        await original(*args, **kwargs)

    monkeypatch.setattr(net.proxy, "set_backends", slow)
    syncing = asyncio.create_task(net.sync_service(svc, endpoints("web", [ip])))
    await asyncio.sleep(0.01)
    reserving = asyncio.create_task(net.reserve_for_l7(frozenset({addr})))
    await asyncio.sleep(0.01)
    gate.set()
    await syncing
    assert await reserving == {addr: (addr,)}
    assert net.proxy.bound_address(addr) is None
    assert net.endpoint(svc) == addr
    with contextlib.closing(socket.socket()) as s:
        s.bind(addr)  # free for the L7 listener
    await net.reserve_for_l7(frozenset())
    assert net.proxy.bound_address(addr) == addr  # back at L4
