"""The bridge network's Services: ClusterIPs and NodePorts, kernel NAT programmed per
Service (:mod:`._bridge_nft`), the host aliases the inner proxy serves, and the L7
handoff (mesh routing): part of :class:`~orchestra.net.bridge.BridgeNetwork`.

Service programming (``sync_service``, ``remove_service``, the handoff) is serialized by
``_svc_lock``; the nft table is written under ``_nft_lock``.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from orchestra.net._bridge_nft import NatService, apply_ruleset, render
from orchestra.net._services import (
    affinity_timeout,
    headless,
    port_protocol,
    ports,
    ready_backends,
    service_key,
)

if TYPE_CHECKING:
    from orchestra.net._bridge_netlink import NetlinkWorker
    from orchestra.net._ipam import IPAllocator, LoopbackBlock
    from orchestra.net.loopback import LoopbackNetwork

__all__ = ["NAT_PROTOCOLS"]

NAT_PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}


class _BridgeServices:
    """Services on the bridge: set up by :class:`~orchestra.net.bridge.BridgeNetwork`."""

    table: str
    bridge_name: str
    egress: bool
    _block: LoopbackBlock | None
    _proxy_net: LoopbackNetwork | None
    _pod_ips: IPAllocator | None
    _service_ips: IPAllocator | None
    _nat: dict[tuple[str, str], list[NatService]]
    _nft_lock: asyncio.Lock
    _svc_lock: asyncio.Lock
    _l7: dict[tuple[str, int], tuple[str, int]]  # ClusterIP:port -> its L7 listener
    _closed: bool

    if TYPE_CHECKING:  # the network's own
        @property
        def gateway(self) -> str: ...

        def _ready(self) -> tuple[IPAllocator, IPAllocator, NetlinkWorker,
                                  LoopbackNetwork]: ...

    # -- allocation -------------------------------------------------------------------

    def allocate_cluster_ip(self, requested: str | None = None) -> str:
        return self._ready()[1].allocate(requested)

    def release_cluster_ip(self, ip: str) -> None:
        if self._service_ips is not None:
            self._service_ips.release(ip)

    def allocate_node_port(self, requested: int | None = None) -> int:
        return self._ready()[3].allocate_node_port(requested)

    def release_node_port(self, port: int) -> None:
        if self._proxy_net is not None:
            self._proxy_net.release_node_port(port)

    # -- services ---------------------------------------------------------------------

    def _alias_ip(self, cluster_ip: str) -> str | None:
        """The ``127.X.y.z`` address the host proxy uses for a ClusterIP (same offset in
        the claimed loopback block); None outside the service CIDR."""
        if self._service_ips is None or self._block is None or \
                cluster_ip not in self._service_ips:
            return None
        offset = int(ipaddress.IPv4Address(cluster_ip)) - \
            int(self._service_ips.network.network_address)
        return str(ipaddress.IPv4Address(f"127.{self._block.octet}.0.0") + offset)

    def _alias(self, service: Any) -> Any:
        """``service`` with its ClusterIP replaced by its host alias (:meth:`_alias_ip`;
        headless outside the service CIDR)."""
        if headless(service) or self._service_ips is None or self._block is None:
            return service
        alias = self._alias_ip(str(service.spec.cluster_ip)) or "None"
        return service.model_copy(update={"spec": service.spec.model_copy(
            update={"cluster_ip": alias})})

    def _nat_services(self, service: Any, endpoints: Any | None) -> list[NatService]:
        stype = getattr(service.spec, "type", None) or "ClusterIP"
        if stype == "ExternalName" or self._pod_ips is None:
            return []
        out: list[NatService] = []
        affinity = affinity_timeout(service)
        for sp in ports(service):
            protocol = port_protocol(sp)
            nft_proto = NAT_PROTOCOLS.get(protocol)
            if nft_proto is None:
                continue
            frontends: list[tuple[str, int]] = []
            if not headless(service):
                frontends.append((str(service.spec.cluster_ip), int(sp.port)))
            node_port = getattr(sp, "node_port", None)
            if node_port and stype in ("NodePort", "LoadBalancer"):
                frontends.append((self._pod_ips.gateway, int(node_port)))
            backends = [b for b in ready_backends(endpoints, sp.name, protocol)
                        if b[0] in self._pod_ips]
            if frontends:
                out.append(NatService(tuple(frontends), nft_proto, tuple(backends),
                                      int(affinity) if affinity else None))
        return out

    async def _apply_nat(self) -> None:
        async with self._nft_lock:
            if self._pod_ips is None or self._service_ips is None:
                return
            services = [s for key in sorted(self._nat) for s in self._nat[key]]
            await apply_ruleset(render(self.table, bridge=self.bridge_name,
                                       pod_cidr=self._pod_ips.cidr,
                                       service_cidr=self._service_ips.cidr,
                                       services=services, egress=self.egress,
                                       redirects=sorted(self._l7.items())))

    async def sync_service(self, service: Any, endpoints: Any | None) -> None:
        async with self._svc_lock:
            _, _, _, proxy_net = self._ready()
            await proxy_net.sync_service(self._alias(service), endpoints)
            nat = self._nat_services(service, endpoints)
            key = service_key(service)
            if self._nat.get(key) != nat:
                self._nat[key] = nat
                await self._apply_nat()

    async def reserve_for_l7(self, addresses: frozenset[tuple[str, int]]
                             ) -> dict[tuple[str, int], tuple[tuple[str, int], ...]]:
        """Where the L7 data plane listens to serve each ClusterIP:port: a free port of
        the gateway address (:meth:`redirect_to_l7` DNATs the ClusterIP:port there) and
        the Service's host alias, which the inner proxy gives up (see
        :class:`~orchestra.net.L7Handoff`)."""
        async with self._svc_lock:
            _, _, _, proxy_net = self._ready()
            out: dict[tuple[str, int], tuple[tuple[str, int], ...]] = {}
            aliases: set[tuple[str, int]] = set()
            for ip, port in addresses:
                alias = self._alias_ip(ip)
                out[(ip, port)] = ((self.gateway, 0),) + (
                    ((alias, port),) if alias is not None else ())
                if alias is not None:
                    aliases.add((alias, port))
            await proxy_net.reserve_for_l7(frozenset(aliases))
            return out

    async def redirect_to_l7(self, listening: Mapping[tuple[str, int],
                                                      Sequence[tuple[str, int]]]) -> None:
        """DNAT each ClusterIP:port (TCP, from pods and from the host) to its listener
        on the gateway address; entries left out are kernel NAT to endpoints again."""
        async with self._svc_lock:
            gateway = self.gateway
            wanted = {cluster: addr for cluster, addrs in listening.items()
                      for addr in addrs if addr[0] == gateway}
            if wanted != self._l7:
                self._l7 = wanted
                await self._apply_nat()

    async def remove_service(self, namespace: str, name: str) -> None:
        async with self._svc_lock:
            if self._proxy_net is None or self._closed:
                return
            await self._proxy_net.remove_service(namespace, name)
            if self._nat.pop((namespace, name), None) is not None:
                await self._apply_nat()

    def endpoint(self, service: Any, port: int | str | None = None) -> tuple[str, int]:
        """The host proxy's address for that service port (``127.X.y.z:port``); for a
        headless service the first Ready endpoint's ``(podIP, targetPort)``."""
        return self._ready()[3].endpoint(self._alias(service), port)
