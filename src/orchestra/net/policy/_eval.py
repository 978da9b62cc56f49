"""NetworkPolicy semantics, as a pure function of pods, namespaces and policies.

Kubernetes' rules (networking.k8s.io/v1):

- A policy selects the pods of its own namespace that match its ``podSelector``. A pod
  selected by some policy with ``Ingress`` in its ``policyTypes`` is isolated for
  ingress: only what one of those policies' ingress rules allows reaches it; likewise
  for egress. A pod no policy selects (for that direction) is open. Policies add up:
  a connection is allowed if any rule of any selecting policy allows it (no policy
  denies).
- A connection from A to B's port is allowed when A's egress allows it *and* B's
  ingress allows it. Replies to an allowed connection are always allowed (the table is
  per connection).
- A rule without ``from``/``to`` peers matches every peer; without ``ports`` every port.
  A peer is a ``podSelector`` (pods of the policy's namespace), a
  ``namespaceSelector`` (every pod of the matching namespaces; namespaces carry the
  ``kubernetes.io/metadata.name`` label), both (matching pods in matching
  namespaces), or an ``ipBlock`` (the peer's address inside ``cidr`` and outside every
  ``except``). A port is a number, a range ``port``..``endPort``, or a name resolved
  against the destination pod's container ports, with a protocol (TCP by default).
- Traffic of a pod to itself never leaves the pod and is always allowed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestra.objects import Selector

__all__ = ["CompiledPolicy", "NamespaceInfo", "PodInfo", "PolicySet", "compile_policy",
           "namespace_info", "pod_info"]

NAMESPACE_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True, slots=True)
class PodInfo:
    namespace: str
    name: str
    labels: Mapping[str, str]
    ips: tuple[str, ...]
    ports: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (name, proto)
    host_network: bool = False

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class NamespaceInfo:
    name: str
    labels: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class PortMatch:
    protocol: str
    port: int | str | None
    end_port: int | None

    def matches(self, port: int, protocol: str, dst: PodInfo | None) -> bool:
        if protocol != self.protocol:
            return False
        if self.port is None:
            return True
        if isinstance(self.port, str):
            return dst is not None and dst.ports.get((self.port, protocol)) == port
        if self.end_port is not None:
            return self.port <= port <= self.end_port
        return port == self.port


@dataclass(frozen=True, slots=True)
class PeerMatch:
    pods: Selector | None
    namespaces: Selector | None
    cidr: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    excepts: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    def matches(self, policy_ns: str, peer: PodInfo | None, ip: str | None,
                namespaces: Mapping[str, NamespaceInfo]) -> bool:
        if self.cidr is not None:
            address = ip or (peer.ips[0] if peer is not None and peer.ips else None)
            if address is None:
                return False
            addr = ipaddress.ip_address(address)
            return addr in self.cidr and not any(addr in e for e in self.excepts)
        if peer is None:
            return False
        if self.namespaces is None:
            if peer.namespace != policy_ns:
                return False
        else:
            ns = namespaces.get(peer.namespace)
            labels = ns.labels if ns is not None else {NAMESPACE_LABEL: peer.namespace}
            if not self.namespaces.matches(labels):
                return False
        return self.pods is None or self.pods.matches(peer.labels)


@dataclass(frozen=True, slots=True)
class RuleMatch:
    peers: tuple[PeerMatch, ...] | None  # None: every peer
    ports: tuple[PortMatch, ...] | None  # None: every port


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    namespace: str
    name: str
    selector: Selector
    ingress: tuple[RuleMatch, ...] | None  # None: the policy does not isolate ingress
    egress: tuple[RuleMatch, ...] | None


def _peer(p: Any) -> PeerMatch:
    if p.ip_block is not None:
        return PeerMatch(None, None, ipaddress.ip_network(p.ip_block.cidr, strict=False),
                     tuple(ipaddress.ip_network(e, strict=False)
                           for e in p.ip_block.except_ or ()))
    return PeerMatch(None if p.pod_selector is None
                 else Selector.from_label_selector(p.pod_selector),
                 None if p.namespace_selector is None
                 else Selector.from_label_selector(p.namespace_selector))


def _rules(rules: Any, peers_attr: str) -> tuple[RuleMatch, ...]:
    out = []
    for r in rules or ():
        peers = getattr(r, peers_attr)
        out.append(RuleMatch(tuple(_peer(p) for p in peers) if peers else None,
                         tuple(PortMatch(p.protocol or "TCP", p.port, p.end_port)
                               for p in r.ports) if r.ports else None))
    return tuple(out)


def compile_policy(policy: Any) -> CompiledPolicy:
    """A NetworkPolicy object as plain data (its defaults already applied)."""
    spec = policy.spec
    types = spec.policy_types or ("Ingress",)
    return CompiledPolicy(
        policy.metadata.namespace or "default", policy.metadata.name,
        Selector.from_label_selector(spec.pod_selector),
        _rules(spec.ingress, "from_") if "Ingress" in types else None,
        _rules(spec.egress, "to") if "Egress" in types else None)


def pod_info(pod: Any) -> PodInfo:
    status = pod.status
    ips = tuple(p.ip for p in (status.pod_ips or ()) if p.ip) if status is not None else ()
    if not ips and status is not None and status.pod_ip:
        ips = (status.pod_ip,)
    ports: dict[tuple[str, str], int] = {}
    for c in (*(pod.spec.init_containers or ()), *pod.spec.containers):
        for p in c.ports or ():
            if p.name:
                ports.setdefault((p.name, p.protocol or "TCP"), int(p.container_port))
    return PodInfo(pod.metadata.namespace or "default", pod.metadata.name,
                   dict(pod.metadata.labels or {}), ips, ports, bool(pod.spec.host_network))


def namespace_info(ns: Any) -> NamespaceInfo:
    labels = dict(ns.metadata.labels or {})
    labels.setdefault(NAMESPACE_LABEL, ns.metadata.name)
    return NamespaceInfo(ns.metadata.name, labels)


class PolicySet:
    """The policies of a cluster, indexed by namespace, with the namespaces."""

    def __init__(self, policies: Iterable[CompiledPolicy],
                 namespaces: Iterable[NamespaceInfo]) -> None:
        self.by_namespace: dict[str, list[CompiledPolicy]] = {}
        for p in policies:
            self.by_namespace.setdefault(p.namespace, []).append(p)
        self.namespaces = {n.name: n for n in namespaces}

    def _selecting(self, pod: PodInfo) -> list[CompiledPolicy]:
        return [p for p in self.by_namespace.get(pod.namespace, ())
                if p.selector.matches(pod.labels)]

    def ingress_allowed(self, dst: PodInfo, src: PodInfo | None, port: int, protocol: str,
                        src_ip: str | None = None) -> bool:
        if dst.host_network:
            return True
        isolating = [p for p in self._selecting(dst) if p.ingress is not None]
        if not isolating:
            return True
        return any(self._rule_allows(r, p.namespace, src, src_ip, port, protocol, dst)
                   for p in isolating for r in p.ingress or ())

    def egress_allowed(self, src: PodInfo, dst: PodInfo | None, port: int, protocol: str,
                       dst_ip: str | None = None) -> bool:
        if src.host_network:
            return True
        isolating = [p for p in self._selecting(src) if p.egress is not None]
        if not isolating:
            return True
        return any(self._rule_allows(r, p.namespace, dst, dst_ip, port, protocol, dst)
                   for p in isolating for r in p.egress or ())

    def _rule_allows(self, rule: RuleMatch, policy_ns: str, peer: PodInfo | None,
                     peer_ip: str | None, port: int, protocol: str,
                     dst: PodInfo | None) -> bool:
        if rule.ports is not None and not any(p.matches(port, protocol, dst)
                                              for p in rule.ports):
            return False
        return rule.peers is None or any(
            p.matches(policy_ns, peer, peer_ip, self.namespaces) for p in rule.peers)

    def allowed(self, src: PodInfo, dst: PodInfo, port: int, protocol: str = "TCP") -> bool:
        """Whether a connection from ``src`` to ``dst``'s port is allowed."""
        if src.key == dst.key:
            return True
        return self.egress_allowed(src, dst, port, protocol) and \
            self.ingress_allowed(dst, src, port, protocol)

    def isolated(self, pod: PodInfo) -> tuple[bool, bool]:
        """(isolated for ingress, isolated for egress)."""
        selecting = self._selecting(pod)
        return (any(p.ingress is not None for p in selecting),
                any(p.egress is not None for p in selecting))
