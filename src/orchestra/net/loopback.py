"""The ``loopback`` network: the embedded default, no root needed.

Linux routes all of ``127.0.0.0/8`` to ``lo``, so every pod can have its own address
(``127.X.y.z``) in the host's network namespace, and two pods can both listen on port
8080. Services get ClusterIPs from a second ``/16``, where a :class:`ServiceProxy` on the
cluster's event loop listens and forwards to Ready endpoints; NodePorts are listened on
at ``127.0.0.1:<nodePort>``.

Invariants:

- Address ranges never collide between clusters, in this process or another: each
  cluster claims one ``127.X.0.0/16`` for pods and one for services by binding an
  abstract unix socket (see :func:`claim_loopback_block`), held until
  :meth:`LoopbackNetwork.close`.
- A pod keeps its address from ``setup_pod`` to ``teardown_pod`` (idempotent per uid);
  released addresses are reused lowest-first.
- An allocated NodePort is *held*: a socket bound to ``127.0.0.1:<port>`` keeps other
  processes off it until the Service listens there (the proxy takes that socket over)
  or the port is released.
- ``sync_service`` is level-triggered and idempotent: it computes the listeners and
  backends a Service should have now and reconciles the proxy to exactly that.
- Programming is serialized: ``sync_service``, ``remove_service`` and
  ``reserve_for_l7`` hold one lock, so a Service resynced by the endpoints loop while
  mesh routing takes (or gives back) its ClusterIP never ends with a stale listener.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestra.net._ipam import IPAllocator, LoopbackBlock, PortAllocator, claim_loopback_block
from orchestra.net._protocol import PodNetwork
from orchestra.net._services import (
    affinity_timeout,
    headless,
    pick_port,
    port_protocol,
    ports,
    ready_backends,
    service_key,
)
from orchestra.net.l4 import Backend, ServiceProxy

if TYPE_CHECKING:
    from orchestra._clock import Clock

__all__ = ["LoopbackNetwork"]

log = logging.getLogger("orchestra.net.loopback")

NODE_PORT_RANGE = (30000, 32767)


@dataclass(slots=True)
class _ServiceState:
    service: Any
    endpoints: Any | None
    listeners: set[tuple[str, int, str]] = field(default_factory=set)  # ip, port, protocol


def _bind_listener(addr: Backend, protocol: str = "TCP") -> socket.socket:
    """A TCP or UDP socket bound to ``addr``; for a privileged port (< 1024) that this
    process may not bind, one bound to a free port of the same address instead: the
    embedding process still reaches it through :meth:`LoopbackNetwork.endpoint`, but pods
    using the Service's own port will not."""
    s = socket.socket(socket.AF_INET,
                      socket.SOCK_DGRAM if protocol == "UDP" else socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except PermissionError:
            log.warning("cannot listen on privileged port %s:%d without root; the service "
                        "proxy listens on another port of that address (see endpoint())",
                        *addr)
            s.bind((addr[0], 0))
    except OSError:
        s.close()
        raise
    return s


class LoopbackNetwork:
    """Pods on ``127.X.y.z`` addresses of the host's ``lo``; Services through a proxy."""

    name = "loopback"
    isolated = False
    enforces_network_policy = False  # NetworkPolicy: evaluated, not enforced

    def __init__(self, *, clock: Clock, cluster_name: str, state_dir: str,
                 pod_cidr: str | None = None, service_cidr: str | None = None,
                 node_port_range: tuple[int, int] = NODE_PORT_RANGE,
                 **options: Any) -> None:
        self.clock = clock
        self.cluster_name = cluster_name
        self.state_dir = state_dir
        self.options = options
        for cidr in (pod_cidr, service_cidr):
            if cidr is not None and not ipaddress.IPv4Network(cidr, strict=False) \
                    .subnet_of(ipaddress.IPv4Network("127.0.0.0/8")):
                raise ValueError(f"loopback network: {cidr} is not inside 127.0.0.0/8")
        self._pod_cidr = pod_cidr
        self._service_cidr = service_cidr
        self._blocks: list[LoopbackBlock] = []
        self._pod_ips: IPAllocator | None = None
        self._service_ips: IPAllocator | None = None
        self._node_ports = PortAllocator(*node_port_range)
        self._held_ports: dict[int, socket.socket] = {}
        self._pods: dict[str, PodNetwork] = {}
        self._services: dict[tuple[str, str], _ServiceState] = {}
        self._proxy = ServiceProxy(clock=clock)
        self._warned_sctp: set[tuple[str, str, int]] = set()
        self._l7: frozenset[Backend] = frozenset()  # ClusterIP:ports an L7 listener serves
        self._lock = asyncio.Lock()  # one Service programming step at a time
        self._closed = False

    def __repr__(self) -> str:
        return (f"LoopbackNetwork(cluster={self.cluster_name!r}, pods={self.pod_cidr}, "
                f"services={self.service_cidr})")

    # -- ranges -----------------------------------------------------------------------

    def _ensure_ranges(self) -> tuple[IPAllocator, IPAllocator]:
        if self._closed:
            raise RuntimeError("the loopback network is closed")
        if self._pod_ips is None or self._service_ips is None:
            pod_cidr = self._pod_cidr or self._claim()
            service_cidr = self._service_cidr or self._claim()
            self._pod_ips = IPAllocator(pod_cidr)
            self._service_ips = IPAllocator(service_cidr)
        return self._pod_ips, self._service_ips

    def _claim(self) -> str:
        block = claim_loopback_block(prefer=random.randint(16, 250))
        self._blocks.append(block)
        return block.cidr

    @property
    def pod_cidr(self) -> str | None:
        return self._pod_ips.cidr if self._pod_ips is not None else self._pod_cidr

    @property
    def service_cidr(self) -> str | None:
        return self._service_ips.cidr if self._service_ips is not None else self._service_cidr

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        self._ensure_ranges()

    async def close(self) -> None:
        """Close every listener and connection, drop held ports, release the ranges."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._proxy.close()
        finally:
            for s in self._held_ports.values():
                s.close()
            self._held_ports.clear()
            self._services.clear()
            self._pods.clear()
            for block in self._blocks:
                block.release()
            self._blocks.clear()

    # -- pods -------------------------------------------------------------------------

    async def setup_pod(self, uid: str, namespace: str, name: str, hostname: str) -> PodNetwork:
        net = self._pods.get(uid)
        if net is None:
            pod_ips, _ = self._ensure_ranges()
            net = PodNetwork(ip=pod_ips.allocate())
            self._pods[uid] = net
        return net

    async def teardown_pod(self, uid: str) -> None:
        net = self._pods.pop(uid, None)
        if net is not None and self._pod_ips is not None:
            self._pod_ips.release(net.ip)

    def pod_ip(self, uid: str) -> str | None:
        net = self._pods.get(uid)
        return None if net is None else net.ip

    # -- allocation -------------------------------------------------------------------

    def allocate_cluster_ip(self, requested: str | None = None) -> str:
        _, service_ips = self._ensure_ranges()
        return service_ips.allocate(requested)

    def release_cluster_ip(self, ip: str) -> None:
        if self._service_ips is not None:
            self._service_ips.release(ip)

    def allocate_node_port(self, requested: int | None = None) -> int:
        """A free NodePort, held by a bound socket on ``127.0.0.1`` until used or
        released (Kubernetes also picks NodePorts at random)."""
        if self._closed:
            raise RuntimeError("the loopback network is closed")

        def hold(port: int) -> bool:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                return False
            self._held_ports[port] = s
            return True

        lo, hi = self._node_ports.lo, self._node_ports.hi
        return self._node_ports.allocate(requested, check=hold,
                                         start=None if requested else random.randint(lo, hi))

    def release_node_port(self, port: int) -> None:
        s = self._held_ports.pop(port, None)
        if s is not None:
            s.close()
        self._node_ports.release(port)

    # -- services ---------------------------------------------------------------------

    async def sync_service(self, service: Any, endpoints: Any | None) -> None:
        async with self._lock:
            await self._sync(service, endpoints)

    async def _sync(self, service: Any, endpoints: Any | None) -> None:
        key = service_key(service)
        state = self._services.get(key)
        if state is None:
            state = self._services[key] = _ServiceState(service, endpoints)
        state.service, state.endpoints = service, endpoints
        wanted: dict[tuple[str, int, str], tuple[list[Backend], float | None]] = {}
        stype = getattr(service.spec, "type", None) or "ClusterIP"
        if stype != "ExternalName":
            affinity = affinity_timeout(service)
            for sp in ports(service):
                protocol = port_protocol(sp)
                if protocol not in ("TCP", "UDP"):
                    note = (key[0], key[1], int(sp.port))
                    if note not in self._warned_sctp:
                        self._warned_sctp.add(note)
                        log.warning("service %s/%s port %s/%s: only TCP and UDP are proxied "
                                    "by the loopback network", key[0], key[1], sp.port,
                                    protocol)
                    continue
                backends = ready_backends(endpoints, sp.name, protocol)
                if not headless(service):
                    wanted[(str(service.spec.cluster_ip), int(sp.port), protocol)] = (
                        backends, affinity)
                node_port = getattr(sp, "node_port", None)
                if node_port and stype in ("NodePort", "LoadBalancer"):
                    wanted[("127.0.0.1", int(node_port), protocol)] = (backends, affinity)
        for listener in [w for w in wanted if w[2] == "TCP" and (w[0], w[1]) in self._l7]:
            del wanted[listener]  # served at L7 (mesh routing) instead
        for listener in state.listeners - wanted.keys():
            await self._drop_listener(*listener)
        for (ip, port, protocol), (backends, affinity) in wanted.items():
            addr = (ip, port)
            sock = (self._held_ports.pop(port, None)
                    if ip == "127.0.0.1" and protocol == "TCP" else None)
            if sock is None and self._proxy.bound_address(addr, protocol) is None:
                sock = _bind_listener(addr, protocol)
            await self._proxy.set_backends(addr, backends, affinity_timeout=affinity,
                                           sock=sock, protocol=protocol)
        state.listeners = set(wanted)

    async def reserve_for_l7(self, addresses: frozenset[Backend]
                             ) -> dict[Backend, tuple[Backend, ...]]:
        """Stop the L4 proxy listening on these ClusterIP:port (TCP) addresses, so that an
        L7 listener can bind them (mesh routing by a VirtualService); addresses no longer
        in the set are listened on at L4 again (call it after their L7 listeners closed).
        Level-triggered: give the whole set. Returns where to listen for each: here, the
        ClusterIP:port itself (see :class:`~orchestra.net.L7Handoff`)."""
        async with self._lock:
            changed = self._l7 ^ addresses
            self._l7 = addresses
            ips = {ip for ip, _ in changed}
            for state in list(self._services.values()):
                if str(getattr(state.service.spec, "cluster_ip", None)) in ips:
                    await self._sync(state.service, state.endpoints)
        return {addr: (addr,) for addr in addresses}

    async def redirect_to_l7(self, listening: Mapping[Backend, Sequence[Backend]]) -> None:
        """Nothing to do: the L7 listens on the ClusterIP:port itself."""

    async def _drop_listener(self, ip: str, port: int, protocol: str) -> None:
        await self._proxy.remove((ip, port), protocol=protocol)
        if ip == "127.0.0.1" and protocol == "TCP":
            # A node port may still be allocated to the Service: hold it again.
            self._rehold(port)

    def _rehold(self, port: int) -> None:
        if self._node_ports.is_allocated(port) and port not in self._held_ports:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                return
            self._held_ports[port] = s

    async def remove_service(self, namespace: str, name: str) -> None:
        async with self._lock:
            state = self._services.pop((namespace, name), None)
            if state is None:
                return
            for listener in state.listeners:
                await self._drop_listener(*listener)

    def endpoint(self, service: Any, port: int | str | None = None) -> tuple[str, int]:
        """``(clusterIP, port)``; for a headless service the first Ready endpoint's
        ``(ip, targetPort)``. ValueError when the port is unknown or, for a headless
        service, no endpoint is Ready."""
        sp = pick_port(service, port)
        if not headless(service):
            addr = (str(service.spec.cluster_ip), int(sp.port))
            return self._proxy.bound_address(addr, port_protocol(sp)) or addr
        state = self._services.get(service_key(service))
        endpoints = state.endpoints if state is not None else None
        backends = ready_backends(endpoints, sp.name, port_protocol(sp))
        if not backends:
            raise ValueError(
                f'service "{service.metadata.name}" is headless and has no ready endpoints')
        return backends[0]

    @property
    def proxy(self) -> ServiceProxy:
        return self._proxy
