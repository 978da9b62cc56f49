"""The ``fake`` network, for simulated clusters: addresses without sockets.

Pods get addresses from ``pod_cidr`` (10.0.0.0/8 by default: room for millions of
simulated pods), Services from ``service_cidr`` (Kubernetes' default 10.96.0.0/12).
Nothing is reachable: ``endpoint()`` returns the ClusterIP and port for display.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from orchestra._clock import Clock
from orchestra.net._protocol import PodNetwork


class _Pool:
    """Lowest-free allocation from a network, O(1) amortised."""

    def __init__(self, cidr: str, skip: int = 1) -> None:
        self.net = ipaddress.ip_network(cidr)
        self._base = int(self.net.network_address)
        self._next = skip
        self._size = self.net.num_addresses - 1
        self._free: list[int] = []
        self._used: set[int] = set()

    def allocate(self, requested: str | None = None) -> str:
        if requested:
            offset = int(ipaddress.ip_address(requested)) - self._base
            if not 0 < offset < self._size:
                raise ValueError(f"the provided IP ({requested}) is not in the valid range. "
                                 f"The range of valid IPs is {self.net}")
            if offset in self._used:
                raise ValueError("provided IP is already allocated")
            self._used.add(offset)
            return requested
        while self._free:
            offset = self._free.pop()
            if offset not in self._used:
                self._used.add(offset)
                return str(ipaddress.ip_address(self._base + offset))
        while self._next < self._size:
            offset = self._next
            self._next += 1
            if offset not in self._used:
                self._used.add(offset)
                return str(ipaddress.ip_address(self._base + offset))
        raise ValueError(f"range is full: {self.net}")

    def release(self, ip: str) -> None:
        offset = int(ipaddress.ip_address(ip)) - self._base
        if offset in self._used:
            self._used.discard(offset)
            self._free.append(offset)


class FakeNetwork:
    name = "fake"
    isolated = False
    enforces_network_policy = False  # NetworkPolicy: evaluated, not enforced

    def __init__(self, *, clock: Clock, cluster_name: str, state_dir: str,
                 pod_cidr: str = "10.0.0.0/8", service_cidr: str = "10.96.0.0/12",
                 **options: Any) -> None:
        self._pods = _Pool(pod_cidr, skip=2)
        self._services = _Pool(service_cidr, skip=1)
        self._by_uid: dict[str, str] = {}
        self._node_ports: set[int] = set()
        self._next_port = 30000

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._by_uid.clear()

    async def setup_pod(self, uid: str, namespace: str, name: str, hostname: str) -> PodNetwork:
        ip = self._by_uid.get(uid)
        if ip is None:
            ip = self._by_uid[uid] = self._pods.allocate()
        return PodNetwork(ip=ip)

    async def teardown_pod(self, uid: str) -> None:
        ip = self._by_uid.pop(uid, None)
        if ip is not None:
            self._pods.release(ip)

    def allocate_cluster_ip(self, requested: str | None = None) -> str:
        return self._services.allocate(requested)

    def release_cluster_ip(self, ip: str) -> None:
        self._services.release(ip)

    def allocate_node_port(self, requested: int | None = None) -> int:
        if requested is not None:
            if not 30000 <= requested <= 32767:
                raise ValueError("provided port is not in the valid range. "
                                 "The range of valid ports is 30000-32767")
            if requested in self._node_ports:
                raise ValueError("provided port is already allocated")
            self._node_ports.add(requested)
            return requested
        for _ in range(2768):
            port = self._next_port
            self._next_port = 30000 + (self._next_port - 30000 + 1) % 2768
            if port not in self._node_ports:
                self._node_ports.add(port)
                return port
        raise ValueError("range is full: 30000-32767")

    def release_node_port(self, port: int) -> None:
        self._node_ports.discard(port)

    async def sync_service(self, service: Any, endpoints: Any | None) -> None:
        return None

    async def remove_service(self, namespace: str, name: str) -> None:
        return None

    def endpoint(self, service: Any, port: int | str | None = None) -> tuple[str, int]:
        ports = service.spec.ports or ()
        chosen = ports[0] if ports else None
        for p in ports:
            if port in (p.port, p.name):
                chosen = p
        return (service.spec.cluster_ip or "", chosen.port if chosen else 0)
