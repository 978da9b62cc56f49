"""The cluster's DNS server: where it listens, and resolving names as a pod does.

On the bridge network it listens on the bridge's gateway address, port 53, which every
pod reaches; on the loopback network on an address of the service range (like
kube-dns' ``10.96.0.10``), port 53 when the process may bind it (root, or
``net.ipv4.ip_unprivileged_port_start`` permitting) and a free port otherwise; on the
fake network on ``127.0.0.1`` at a free port.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from typing import Any

from orchestra.loops._dns import DEFAULT_ZONE
from orchestra.net import Network
from orchestra.net.dns import DnsIndex, DnsServer, resolve, search_list

log = logging.getLogger("orchestra.dns")

__all__ = ["cluster_resolve", "start_dns", "zone_of"]


def zone_of(options: Mapping[str, Any]) -> str:
    return str(options.get("cluster_domain") or DEFAULT_ZONE).rstrip(".")


def _listen_on(network: Network) -> tuple[str, tuple[int, ...]]:
    gateway = getattr(network, "gateway", None)
    if network.isolated and isinstance(gateway, str):
        return gateway, (53, 0)
    try:
        ip = network.allocate_cluster_ip()
    except ValueError:
        return "127.0.0.1", (0,)
    if ipaddress.ip_address(ip) in ipaddress.ip_network("127.0.0.0/8"):
        return ip, (53, 0)
    network.release_cluster_ip(ip)
    return "127.0.0.1", (0,)


async def start_dns(network: Network, options: Mapping[str, Any]) -> DnsServer:
    upstreams = options.get("dns_upstreams")
    server = DnsServer(DnsIndex(zone_of(options) + "."),
                       upstreams=None if upstreams is None else
                       [(str(h), int(p)) for h, p in upstreams])
    host, ports = _listen_on(network)
    await server.start(host, ports)
    return server


async def cluster_resolve(server: DnsServer, options: Mapping[str, Any], name: str,
                          namespace: str, rdtype: str) -> list[str]:
    assert server.address is not None
    return await resolve(server.address, name, search_list(namespace, zone_of(options)),
                         rdtype)
