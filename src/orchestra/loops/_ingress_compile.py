"""Compiling Ingresses (networking.k8s.io/v1) into the L7 data plane's routing table.

A pure function of the objects it is given, so the rules are testable without a
cluster. What Kubernetes' Ingress documentation defines, and how it maps:

- A rule's ``host`` is exact, or a wildcard ``*.foo.com`` matching exactly one DNS label
  (``bar.foo.com``, not ``baz.bar.foo.com`` nor ``foo.com``); no host: every host.
  Rules without a host apply to every host, after that host's own rules.
- Paths: ``Exact``, ``Prefix`` (element-wise: ``/foo`` matches ``/foo``, ``/foo/`` and
  ``/foo/bar``, not ``/foobar``), and ``ImplementationSpecific``, served as ``Prefix``.
  When several paths match, the longest wins, and ``Exact`` wins over ``Prefix`` at equal
  length; between Ingresses, the older one wins a tie.
- ``defaultBackend`` (of the oldest Ingress that has one) serves what no rule matches;
  with none, such requests get 404. A backend whose Service is missing, or has no Ready
  endpoint, answers 503.
- TLS: each ``tls`` entry's Secret (type ``kubernetes.io/tls``, in the Ingress'
  namespace) is served for its ``hosts`` by SNI; the first certificate is the default.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from orchestra.net._services import port_protocol, ports, ready_backends
from orchestra.net.l7 import (
    Cluster,
    Match,
    PathMatch,
    Route,
    RouteTable,
    TlsCert,
    VirtualHost,
    WeightedCluster,
    check_cert,
)

__all__ = ["Compiled", "compile_ingresses", "route_prefix"]

Lookup = Callable[[str, str, str], Any]  # (kind, namespace, name) -> object or None


@dataclass
class Compiled:
    table: RouteTable
    certs: list[TlsCert] = field(default_factory=list)
    # (namespace, name) of an Ingress -> its problems as (reason, message)
    problems: dict[tuple[str, str], list[tuple[str, str]]] = field(default_factory=dict)
    services: set[tuple[str, str]] = field(default_factory=set)  # referenced
    secrets: set[tuple[str, str]] = field(default_factory=set)  # referenced


def route_prefix(namespace: str, name: str) -> str:
    """The prefix of every route name compiled from that Ingress (for statistics)."""
    return f"ingress/{namespace}/{name}/"


def compile_ingresses(ingresses: Iterable[Any], lookup: Lookup) -> Compiled:
    """Compile ``ingresses`` (oldest first) into one routing table."""
    out = Compiled(RouteTable())
    by_host: dict[str, list[tuple[int, int, Route]]] = {}
    default: Route | None = None
    for ing in ingresses:
        ns = ing.metadata.namespace or "default"
        name = ing.metadata.name
        problems = out.problems.setdefault((ns, name), [])
        prefix = route_prefix(ns, name)
        spec = ing.spec
        if spec.default_backend is not None and default is None:
            default = Route(name=prefix + "default-backend", destinations=_destinations(
                spec.default_backend, ns, lookup, out, problems))
        for rule in spec.rules or ():
            if rule.http is None:
                continue
            host = (rule.host or "*").lower()
            for p in rule.http.paths:
                kind = p.path_type or "ImplementationSpecific"
                path = p.path or "/"
                match_kind = "Exact" if kind == "Exact" else "Prefix"
                route = Route(name=f"{prefix}{host}{path}",
                              matches=(Match(path=PathMatch(match_kind, path)),),
                              destinations=_destinations(p.backend, ns, lookup, out, problems))
                length = len(path) if match_kind == "Exact" else len(path.rstrip("/"))
                # longest first; Exact before Prefix; a stable sort keeps age order
                by_host.setdefault(host, []).append(
                    (-length, 0 if match_kind == "Exact" else 1, route))
        for tls in spec.tls or ():
            cert = _cert(tls, ns, lookup, out, problems)
            if cert is not None:
                out.certs.append(cert)
    catch_all = sorted(by_host.get("*", []), key=lambda r: (r[0], r[1]))
    vhosts: list[VirtualHost] = []
    tail = [r[2] for r in catch_all] + ([default] if default is not None else [])
    for host, routes in by_host.items():
        if host == "*":
            continue
        ordered = [r[2] for r in sorted(routes, key=lambda r: (r[0], r[1]))]
        vhosts.append(VirtualHost(host, (host,), tuple(ordered + tail)))
    if tail:
        vhosts.append(VirtualHost("*", ("*",), tuple(tail)))
    out.table = RouteTable(tuple(vhosts), label_wildcards=True)
    return out


def _destinations(backend: Any, ns: str, lookup: Lookup, out: Compiled,
                  problems: list[tuple[str, str]]) -> tuple[WeightedCluster, ...]:
    ref = backend.service
    if ref is None:
        kind = backend.resource.kind if backend.resource is not None else "?"
        problems.append(("UnsupportedBackend",
                         f"backend resource of kind {kind} is not supported; "
                         "only service backends are served"))
        return ()
    out.services.add((ns, ref.name))
    svc = lookup("Service", ns, ref.name)
    if svc is None:
        problems.append(("ServiceNotFound", f'service "{ns}/{ref.name}" not found'))
        return ()
    want = ref.port
    sport = None
    for sp in ports(svc):
        if want is not None and ((want.number is not None and sp.port == want.number) or
                                 (want.name is not None and sp.name == want.name)):
            sport = sp
            break
    if sport is None:
        shown = (want.number if want.number is not None else want.name) if want else None
        problems.append(("ServicePortNotFound",
                         f'service "{ns}/{ref.name}" has no port {shown}'))
        return ()
    endpoints = lookup("Endpoints", ns, ref.name)
    backends = ready_backends(endpoints, sport.name, port_protocol(sport))
    cluster = Cluster(f"{ns}/{ref.name}:{sport.port}", tuple(backends))
    return (WeightedCluster(cluster, 1),)


def _cert(tls: Any, ns: str, lookup: Lookup, out: Compiled,
          problems: list[tuple[str, str]]) -> TlsCert | None:
    name = tls.secret_name
    if not name:
        return None
    out.secrets.add((ns, name))
    secret = lookup("Secret", ns, name)
    if secret is None:
        problems.append(("SecretNotFound", f'secret "{ns}/{name}" not found'))
        return None
    data = dict(secret.data or {})
    if secret.type != "kubernetes.io/tls" or "tls.crt" not in data or "tls.key" not in data:
        problems.append(("InvalidSecret", f'secret "{ns}/{name}" is not of type '
                         '"kubernetes.io/tls" with keys tls.crt and tls.key'))
        return None
    hosts = tuple(h.lower() for h in tls.hosts or ())
    cert = TlsCert(hosts, base64.b64decode(data["tls.crt"]), base64.b64decode(data["tls.key"]))
    why = check_cert(cert)
    if why is not None:
        problems.append(("InvalidSecret", f'secret "{ns}/{name}": {why}'))
        return None
    return cert
