"""The cluster DNS controller: Services, Endpoints and Pods -> the DNS server's index.

Kubernetes' DNS-based service discovery specification, as CoreDNS' ``kubernetes``
plugin serves it (zone ``cluster.local`` unless ``Cluster(cluster_domain=...)``):

- a Service with a ClusterIP: ``<svc>.<ns>.svc.<zone>`` A/AAAA of its ClusterIPs, an
  SRV ``_<port>._<proto>.<svc>.<ns>.svc.<zone>`` per named port (target the Service's
  name), PTR from each ClusterIP back to the name;
- a headless Service (``clusterIP: None``): A/AAAA of every address in its Endpoints'
  ``addresses`` (the endpoints controller already moves not-ready pods there when
  ``publishNotReadyAddresses`` is set), ``<hostname>.<svc>.<ns>.svc.<zone>`` for each
  address (the endpoint's hostname, or its dashed IP), SRV per named port and endpoint,
  PTR from each address to its hostname name;
- an ExternalName Service: CNAME to ``spec.externalName``;
- each pod IP (not host-network) a PTR to ``a-b-c-d.<ns>.pod.<zone>`` unless a headless
  Service already names that address.

Each object's records are compiled into a fragment once per change (keys ``svc:ns/name``
and ``pod:ns/name``); the ``publish`` key merges the fragments and swaps the new index
into the server. Bursts of changes coalesce into one publish, because the work queue
holds a key at most once.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from typing import TYPE_CHECKING, Any

import anyio.lowlevel

from orchestra.loops._context import Context, Runnable
from orchestra.loops._engine import Controller, Result
from orchestra.net.dns import Fragment, Record, fragment, merge, pod_ip_name, reverse_name

if TYPE_CHECKING:
    from orchestra.net.dns import DnsServer

__all__ = ["DEFAULT_ZONE", "pod_records", "service_records", "setup"]

DEFAULT_ZONE = "cluster.local"
_PUBLISH = "publish"


def _ip_type(ip: str) -> str:
    return "AAAA" if ipaddress.ip_address(ip).version == 6 else "A"


def service_records(svc: Any, endpoints: Any | None, zone: str) -> list[Record]:
    """The records of one Service (and its Endpoints, when headless)."""
    ns = svc.metadata.namespace or "default"
    base = f"{svc.metadata.name}.{ns}.svc.{zone}."
    spec = svc.spec
    out: list[Record] = []
    if spec.type == "ExternalName":
        if spec.external_name:
            out.append(Record(base, "CNAME", spec.external_name.rstrip(".") + "."))
        return out
    named = [p for p in spec.ports or () if p.name]
    if spec.cluster_ip and spec.cluster_ip != "None":
        for ip in spec.cluster_ips or (spec.cluster_ip,):
            out.append(Record(base, _ip_type(ip), ip))
            out.append(Record(reverse_name(ip), "PTR", base))
        for p in named:
            out.append(Record(f"_{p.name}._{p.protocol.lower()}.{base}", "SRV",
                              f"0 100 {p.port} {base}"))
        return out
    srv: list[tuple[str, int, str]] = []
    for subset in (endpoints.subsets or ()) if endpoints is not None else ():
        for addr in subset.addresses or ():
            host = f"{addr.hostname or pod_ip_name(addr.ip)}.{base}"
            out.append(Record(base, _ip_type(addr.ip), addr.ip))
            out.append(Record(host, _ip_type(addr.ip), addr.ip))
            out.append(Record(reverse_name(addr.ip), "PTR", host))
            for port in subset.ports or ():
                if port.name:
                    srv.append((f"_{port.name}._{port.protocol.lower()}.{base}", port.port,
                                host))
    # CoreDNS shares weight 100 among the records of one priority
    counts = Counter(name for name, _, _ in srv)
    for name, port_number, host in srv:
        out.append(Record(name, "SRV", f"0 {100 // counts[name]} {port_number} {host}"))
    return out


def pod_records(pod: Any, zone: str) -> list[Record]:
    """PTR records from a pod's addresses to ``<dashed-ip>.<ns>.pod.<zone>``."""
    if pod.spec.host_network or pod.status is None:
        return []
    ns = pod.metadata.namespace or "default"
    ips = [p.ip for p in pod.status.pod_ips or ()] or \
        ([pod.status.pod_ip] if pod.status.pod_ip else [])
    return [Record(reverse_name(ip), "PTR", f"{pod_ip_name(ip)}.{ns}.pod.{zone}.")
            for ip in ips]


class DnsController:
    def __init__(self, ctx: Context, server: DnsServer) -> None:
        self.ctx = ctx
        self.server = server
        self.zone = str(ctx.options.get("cluster_domain") or DEFAULT_ZONE).rstrip(".")
        self.controller = Controller("dns", self.reconcile, ctx.clock)
        self._services: dict[str, tuple[tuple[Record, ...], Fragment]] = {}
        self._pods: dict[str, tuple[tuple[Record, ...], Fragment]] = {}
        ctx.informers["Service"].add_handler(self._on_service)
        ctx.informers["Endpoints"].add_handler(self._on_service)
        ctx.informers["Pod"].add_handler(self._on_pod)

    def _on_service(self, typ: str, obj: Any, old: Any) -> None:
        self.controller.enqueue(f"svc:{obj.metadata.namespace or 'default'}/{obj.metadata.name}")

    def _on_pod(self, typ: str, obj: Any, old: Any) -> None:
        self.controller.enqueue(f"pod:{obj.metadata.namespace or 'default'}/{obj.metadata.name}")

    async def run(self) -> None:
        self.controller.enqueue(_PUBLISH)
        await self.controller.run()

    async def reconcile(self, key: str) -> Result | None:
        if key == _PUBLISH:
            self.server.swap(merge(self.zone, (f for _, f in self._services.values()),
                                   fallback=(f for _, f in self._pods.values())))
            return None
        await anyio.lowlevel.checkpoint()  # a burst of keys must not starve the server
        kind, _, ref = key.partition(":")
        ns, _, name = ref.partition("/")
        store = self.ctx.store
        table = self._services if kind == "svc" else self._pods
        if kind == "svc":
            svc = store.get_or_none("Service", name, namespace=ns)
            records = service_records(svc, store.get_or_none("Endpoints", name, namespace=ns),
                                      self.zone) if svc is not None else []
        else:
            pod = store.get_or_none("Pod", name, namespace=ns)
            records = pod_records(pod, self.zone) if pod is not None else []
        have = table.get(key)
        if have is not None and have[0] == tuple(records):
            return None
        if records:
            table[key] = (tuple(records), fragment(records, self.zone))
        elif have is None:
            return None
        else:
            del table[key]
        self.controller.enqueue(_PUBLISH)
        return None


def setup(ctx: Context) -> list[Runnable]:
    if ctx.dns is None:
        return []
    c = DnsController(ctx, ctx.dns)
    ctx.controllers["dns"] = c.controller
    return [c.run]
