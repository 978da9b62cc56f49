"""NetworkPolicy as nftables rules: per pod, the match expressions that allow traffic.

:func:`pod_rules` turns a :class:`~orchestra.net.policy.PolicySet` and the pods into,
for each pod address, ``ingress`` and ``egress`` tuples of rule bodies (each one ends
in ``return``: allowed, go on to the other direction's check), or None where the pod
is not isolated in that direction. The bridge network loads them into per-pod chains
of its own table and changes only the chains whose rules changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from orchestra.net.policy._eval import PeerMatch, PodInfo, PolicySet, PortMatch, RuleMatch

__all__ = ["PodRules", "pod_rules"]

PodRules = tuple[tuple[str, ...] | None, tuple[str, ...] | None]  # (ingress, egress)
_PROTO = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}


def _port_expr(port: PortMatch, dst: PodInfo | None) -> str | None:
    proto = _PROTO[port.protocol]
    if port.port is None:
        return f"meta l4proto {proto}"
    if isinstance(port.port, str):
        number = dst.ports.get((port.port, port.protocol)) if dst is not None else None
        return None if number is None else f"meta l4proto {proto} th dport {number}"
    if port.end_port is not None:
        return f"meta l4proto {proto} th dport {port.port}-{port.end_port}"
    return f"meta l4proto {proto} th dport {port.port}"


def _peer_exprs(peer: PeerMatch, policy_ns: str, pods: Sequence[PodInfo], policies: PolicySet,
                field: str) -> list[tuple[str, PodInfo | None]]:
    """(address match, the peer pod when one) for each address the peer allows."""
    if peer.cidr is not None:
        expr = f"ip {field} {peer.cidr}"
        if peer.excepts:
            expr += f" ip {field} != {{ {', '.join(str(e) for e in peer.excepts)} }}"
        return [(expr, None)] if peer.cidr.version == 4 else []
    return [(f"ip {field} {ip}", p) for p in pods
            if peer.matches(policy_ns, p, None, policies.namespaces) and not p.host_network
            for ip in p.ips if ":" not in ip]


def _rule_lines(rule: RuleMatch, policy_ns: str, pod: PodInfo, pods: Sequence[PodInfo],
                policies: PolicySet, ingress: bool) -> list[str]:
    field = "saddr" if ingress else "daddr"
    peers: list[tuple[str | None, PodInfo | None]]
    if rule.peers is None:
        peers = [(None, None)]
    else:
        peers = [e for peer in rule.peers
                 for e in _peer_exprs(peer, policy_ns, pods, policies, field)]
    out = []
    for addr, peer_pod in peers:
        dst = pod if ingress else peer_pod
        ports: Iterable[str | None]
        if rule.ports is None:
            ports = [None]
        elif not ingress and peer_pod is None and any(isinstance(p.port, str)
                                                      for p in rule.ports):
            # a named port to any destination: resolved against every pod we know
            ports = {_port_expr(p, d) for p in rule.ports for d in pods}
        else:
            ports = [_port_expr(p, dst) for p in rule.ports]
        for port in ports:
            if rule.ports is not None and port is None:
                continue
            out.append(" ".join(x for x in (addr, port, "return") if x))
    return out


def pod_rules(policies: PolicySet, pods: Sequence[PodInfo]) -> dict[str, PodRules]:
    """Every isolated pod's (ingress, egress) rules, keyed by its IPv4 address."""
    out: dict[str, PodRules] = {}
    for pod in pods:
        if pod.host_network:
            continue
        ips = [ip for ip in pod.ips if ":" not in ip]
        if not ips:
            continue
        selecting = [p for p in policies.by_namespace.get(pod.namespace, ())
                     if p.selector.matches(pod.labels)]
        directions: list[tuple[str, ...] | None] = []
        for ingress in (True, False):
            isolating = [p for p in selecting
                         if (p.ingress if ingress else p.egress) is not None]
            if not isolating:
                directions.append(None)
                continue
            lines: list[str] = []
            for p in isolating:
                for rule in (p.ingress if ingress else p.egress) or ():
                    lines += _rule_lines(rule, p.namespace, pod, pods, policies, ingress)
            directions.append(tuple(dict.fromkeys(lines)))
        if directions[0] is not None or directions[1] is not None:
            for ip in ips:
                out[ip] = (directions[0], directions[1])
    return out
