"""Compiling Gateway API objects (Gateways and HTTPRoutes) into routing tables, and the
status each object should have. A pure function of the objects it is given.

Semantics follow the Gateway API specification (standard channel):

- A route attaches to a Gateway's listeners through ``parentRefs`` (``sectionName`` and
  ``port`` narrow them) when the listener's ``allowedRoutes`` admit the route's namespace
  (``Same``, the default; ``All``; ``Selector``) and kind, and their hostnames intersect.
  Wildcard hostnames (``*.example.com``) are suffix matches of any number of labels.
- Within a hostname, matches are ordered by the spec's precedence: Exact path, then the
  longest path prefix (regular expressions last), a method match, more header matches,
  more query matches; then the oldest route, then namespace/name, then rule order.
- Backend references resolve to Services (same namespace, or another one a
  ReferenceGrant allows); weights split traffic (0 takes none). A rule whose references
  all fail answers 500.
- Conditions and reasons are the spec's: GatewayClass ``Accepted``; Gateway ``Accepted``
  and ``Programmed``; listener ``Accepted``, ``Programmed``, ``ResolvedRefs``,
  ``Conflicted``; route parent ``Accepted`` and ``ResolvedRefs``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from orchestra.net._services import ports, ready_backends
from orchestra.net.l7 import (
    Cluster,
    DirectResponse,
    HeaderMatch,
    HeaderMods,
    Match,
    Mirror,
    PathMatch,
    QueryMatch,
    Redirect,
    Retry,
    Rewrite,
    Route,
    RouteTable,
    TlsCert,
    VirtualHost,
    WeightedCluster,
    check_cert,
)
from orchestra.objects._selector import Selector

__all__ = ["CONTROLLER_NAME", "Compiled", "Cond", "compile_gateways", "route_prefix"]

CONTROLLER_NAME = "orchestra.dev/gateway-controller"
GROUP = "gateway.networking.k8s.io"
Lookup = Callable[[str, str | None, str], Any]  # (kind, namespace, name) -> object or None
Cond = tuple[str, str, str, str]  # type, status, reason, message


@dataclass
class PortPlan:
    protocol: str
    routes: dict[str, list[tuple[tuple[Any, ...], Route]]] = field(default_factory=dict)
    certs: list[TlsCert] = field(default_factory=list)

    def table(self) -> RouteTable:
        vhosts = [VirtualHost(host, (host,), tuple(r for _, r in sorted(rs, key=_first)))
                  for host, rs in self.routes.items()]
        return RouteTable(tuple(vhosts), label_wildcards=False)


def _first(item: tuple[tuple[Any, ...], Route]) -> tuple[Any, ...]:
    return item[0]


@dataclass
class GatewayPlan:
    gateway: Any
    ports: dict[int, PortPlan] = field(default_factory=dict)
    listeners: dict[str, list[Cond]] = field(default_factory=dict)
    attached: dict[str, int] = field(default_factory=dict)


@dataclass
class Compiled:
    gateways: dict[tuple[str, str], GatewayPlan] = field(default_factory=dict)
    # (namespace, name) of an HTTPRoute -> [(parentRef dict, conditions)]
    routes: dict[tuple[str, str], list[tuple[dict[str, Any], list[Cond]]]] = \
        field(default_factory=dict)
    services: set[tuple[str, str]] = field(default_factory=set)
    secrets: set[tuple[str, str]] = field(default_factory=set)


def route_prefix(namespace: str, name: str) -> str:
    return f"httproute/{namespace}/{name}/"


def compile_gateways(gateways: Iterable[Any], routes: Iterable[Any], grants: list[Any],
                     lookup: Lookup) -> Compiled:
    """``gateways`` are those of our classes; ``routes`` every HTTPRoute, oldest first."""
    out = Compiled()
    for gw in gateways:
        out.gateways[(gw.metadata.namespace or "default", gw.metadata.name)] = \
            _plan_gateway(gw, grants, lookup, out)
    for route in routes:
        _attach(route, grants, lookup, out)
    return out


def _plan_gateway(gw: Any, grants: list[Any], lookup: Lookup, out: Compiled) -> GatewayPlan:
    ns = gw.metadata.namespace or "default"
    plan = GatewayPlan(gw)
    protocols: dict[int, set[str]] = {}
    for lis in gw.spec.listeners:
        protocols.setdefault(lis.port, set()).add(lis.protocol)
    seen: set[tuple[int, str, str]] = set()
    for lis in gw.spec.listeners:
        conds: list[Cond] = []
        plan.attached[lis.name] = 0
        distinct = (lis.port, lis.protocol, (lis.hostname or "").lower())
        if distinct in seen:  # not distinct from an earlier listener: the first wins
            msg = f"another listener on port {lis.port} has the same hostname"
            plan.listeners[lis.name] = [
                ("Accepted", "False", "HostnameConflict", msg),
                ("Conflicted", "True", "HostnameConflict", msg),
                ("Programmed", "False", "Invalid", "the listener conflicts")]
            continue
        seen.add(distinct)
        if lis.protocol not in ("HTTP", "HTTPS"):
            conds += [("Accepted", "False", "UnsupportedProtocol",
                       f"protocol {lis.protocol} is not supported; use HTTP or HTTPS"),
                      ("Programmed", "False", "Invalid", "the listener is not accepted")]
            plan.listeners[lis.name] = conds
            continue
        if len(protocols[lis.port]) > 1:
            conds += [("Accepted", "False", "ProtocolConflict",
                       f"listeners on port {lis.port} use different protocols"),
                      ("Conflicted", "True", "ProtocolConflict",
                       f"listeners on port {lis.port} use different protocols"),
                      ("Programmed", "False", "Invalid", "the listener conflicts")]
            plan.listeners[lis.name] = conds
            continue
        port = plan.ports.setdefault(lis.port, PortPlan(lis.protocol))
        resolved: Cond = ("ResolvedRefs", "True", "ResolvedRefs",
                          "all references are resolved")
        if lis.protocol == "HTTPS":
            resolved = _certs(lis, ns, grants, lookup, out, port)
        conds += [("Accepted", "True", "Accepted", "the listener is accepted"),
                  ("Conflicted", "False", "NoConflicts", "no conflicts"),
                  resolved]
        if resolved[1] == "True":
            conds.append(("Programmed", "True", "Programmed", "the listener is programmed"))
        else:
            conds.append(("Programmed", "False", "Invalid",
                          "the listener's certificate references are not resolved"))
        plan.listeners[lis.name] = conds
    return plan


def _certs(lis: Any, ns: str, grants: list[Any], lookup: Lookup, out: Compiled,
           port: PortPlan) -> Cond:
    tls = lis.tls
    refs = (tls.certificate_refs or ()) if tls is not None else ()
    if tls is None or (tls.mode or "Terminate") != "Terminate" or not refs:
        return ("ResolvedRefs", "False", "InvalidCertificateRef",
                "an HTTPS listener needs tls.mode Terminate and certificateRefs")
    for ref in refs:
        if (ref.group or "") != "" or (ref.kind or "Secret") != "Secret":
            return ("ResolvedRefs", "False", "InvalidCertificateRef",
                    f"certificate reference {ref.kind}/{ref.name} is not a Secret")
        sns = ref.namespace or ns
        if sns != ns and not _granted(grants, "Gateway", ns, "", "Secret", sns, ref.name):
            return ("ResolvedRefs", "False", "RefNotPermitted",
                    f"no ReferenceGrant allows a reference to secret {sns}/{ref.name}")
        out.secrets.add((sns, ref.name))
        secret = lookup("Secret", sns, ref.name)
        data = dict(secret.data or {}) if secret is not None else {}
        if secret is None or secret.type != "kubernetes.io/tls" or "tls.crt" not in data \
                or "tls.key" not in data:
            return ("ResolvedRefs", "False", "InvalidCertificateRef",
                    f"secret {sns}/{ref.name} is missing or not a kubernetes.io/tls Secret")
        cert = TlsCert((lis.hostname or "*",), base64.b64decode(data["tls.crt"]),
                       base64.b64decode(data["tls.key"]))
        why = check_cert(cert)
        if why is not None:
            return ("ResolvedRefs", "False", "InvalidCertificateRef",
                    f"secret {sns}/{ref.name}: {why}")
        port.certs.append(cert)
    return ("ResolvedRefs", "True", "ResolvedRefs", "all references are resolved")


def _granted(grants: list[Any], from_kind: str, from_ns: str, to_group: str, to_kind: str,
             to_ns: str, to_name: str) -> bool:
    for g in grants:
        if (g.metadata.namespace or "default") != to_ns:
            continue
        if not any(f.group == GROUP and f.kind == from_kind and f.namespace == from_ns
                   for f in g.spec.from_):
            continue
        if any(t.group == to_group and t.kind == to_kind and (t.name in (None, to_name))
               for t in g.spec.to):
            return True
    return False


def _intersect(listener: str | None, route: str) -> str | None:
    """The hostname both match, or None (Gateway API: ``*.`` matches any labels)."""
    if listener is None or listener == route:
        return route
    if listener.startswith("*.") and route.endswith(listener[1:]):
        return route
    if route.startswith("*.") and listener.endswith(route[1:]):
        return listener
    return None


def _attach(route: Any, grants: list[Any], lookup: Lookup, out: Compiled) -> None:
    rns = route.metadata.namespace or "default"
    parents: list[tuple[dict[str, Any], list[Cond]]] = []
    compiled_rules: list[tuple[Any, list[Route], Cond]] | None = None
    for pref in route.spec.parent_refs or ():
        if (pref.group or GROUP) != GROUP or (pref.kind or "Gateway") != "Gateway":
            continue
        plan = out.gateways.get((pref.namespace or rns, pref.name))
        if plan is None:
            continue  # not a Gateway of ours: its controller writes this parent's status
        if compiled_rules is None:
            compiled_rules = _rules(route, grants, lookup, out)
        gw = plan.gateway
        listeners = [lis for lis in gw.spec.listeners
                     if (pref.section_name is None or lis.name == pref.section_name)
                     and (pref.port is None or lis.port == pref.port)]
        accepted: Cond
        if not listeners:
            accepted = ("Accepted", "False", "NoMatchingParent",
                        "no listener of the Gateway matches the parentRef")
        else:
            allowed = [lis for lis in listeners if _allows(lis, gw, rns, lookup)
                       and lis.port in plan.ports and _accepted(plan, lis.name)]
            hosts = route.spec.hostnames or ("*",)
            keyed = _keyed(route, compiled_rules)
            attached = 0
            for lis in allowed:
                names = []
                for r in hosts:
                    h = (lis.hostname or "*") if r == "*" else _intersect(lis.hostname, r)
                    if h is not None:
                        names.append(h.lower())
                if not names:
                    continue
                attached += 1
                plan.attached[lis.name] += 1
                port = plan.ports[lis.port]
                for host in names:
                    port.routes.setdefault(host, []).extend(keyed)
            if not allowed:
                accepted = ("Accepted", "False", "NotAllowedByListeners",
                            "no listener of the Gateway allows this route")
            elif not attached:
                accepted = ("Accepted", "False", "NoMatchingListenerHostname",
                            "no listener hostname matches the route's hostnames")
            else:
                accepted = ("Accepted", "True", "Accepted", "the route is accepted")
        resolved = _worst([c for _, _, c in compiled_rules])
        parents.append((pref.model_dump(by_alias=True, exclude_none=True),
                        [accepted, resolved]))
    if parents:
        out.routes[(rns, route.metadata.name)] = parents


def _accepted(plan: GatewayPlan, listener: str) -> bool:
    return any(c[0] == "Accepted" and c[1] == "True" for c in plan.listeners.get(listener, ()))


def _keyed(route: Any, rules: list[tuple[Any, list[Route], Cond]]
           ) -> list[tuple[tuple[Any, ...], Route]]:
    age = (route.metadata.creation_timestamp or "", route.metadata.namespace or "",
           route.metadata.name)
    out: list[tuple[tuple[Any, ...], Route]] = []
    for i, (_, routes, _) in enumerate(rules):
        for j, r in enumerate(routes):
            out.append(((*_precedence(r.matches[0]), age, i, j), r))
    return out


def _precedence(m: Match) -> tuple[Any, ...]:
    p = m.path
    kind = 0 if p is None or p.kind == "Exact" else 1 if p.kind == "Prefix" else 2
    length = -len(p.value) if p is not None and kind < 2 else 0
    return (kind, length, 0 if m.method else 1, -len(m.headers), -len(m.query))


def _worst(conds: list[Cond]) -> Cond:
    for c in conds:
        if c[1] == "False":
            return c
    return ("ResolvedRefs", "True", "ResolvedRefs", "all references are resolved")


def _allows(lis: Any, gw: Any, rns: str, lookup: Lookup) -> bool:
    ar = lis.allowed_routes
    kinds = ar.kinds if ar is not None else None
    if kinds and not any((k.group or GROUP) == GROUP and k.kind == "HTTPRoute" for k in kinds):
        return False
    frm = (ar.namespaces.from_ if ar is not None and ar.namespaces is not None else None) \
        or "Same"
    gns = gw.metadata.namespace or "default"
    if frm == "All":
        return True
    if frm == "Same":
        return rns == gns
    if frm == "Selector" and ar is not None and ar.namespaces is not None \
            and ar.namespaces.selector is not None:
        ns_obj = lookup("Namespace", None, rns)
        labels = dict(ns_obj.metadata.labels or {}) if ns_obj is not None else {}
        return Selector.from_label_selector(ar.namespaces.selector).matches(labels)
    return False


def _rules(route: Any, grants: list[Any], lookup: Lookup, out: Compiled
           ) -> list[tuple[Any, list[Route], Cond]]:
    """Per rule: the table routes (one per match) and its ResolvedRefs condition."""
    rns = route.metadata.namespace or "default"
    result: list[tuple[Any, list[Route], Cond]] = []
    for i, rule in enumerate(route.spec.rules or ()):
        name = f"{route_prefix(rns, route.metadata.name)}rule{i}"
        dests: list[WeightedCluster] = []
        cond: Cond = ("ResolvedRefs", "True", "ResolvedRefs", "all references are resolved")
        refs = rule.backend_refs or ()
        for ref in refs:
            cluster, c = _backend(ref, rns, grants, lookup, out)
            if c is not None and cond[1] == "True":
                cond = c
            weight = 1 if ref.weight is None else ref.weight
            if cluster is not None and weight > 0:
                dests.append(WeightedCluster(cluster, weight))
        kw: dict[str, Any] = {}
        mirrors: list[Mirror] = []
        for f in rule.filters or ():
            _filter(f, kw, mirrors, rns, grants, lookup, out)
        if refs and not dests and "redirect" not in kw:
            kw["direct"] = DirectResponse(500)
        timeout = _duration(rule.timeouts.request) if rule.timeouts is not None else None
        if rule.retry is not None:  # experimental channel (GEP-1731)
            kw["retry"] = Retry(attempts=1 if rule.retry.attempts is None
                                else rule.retry.attempts,
                                retry_on=("retriable-status-codes", "connect-failure"),
                                codes=tuple(rule.retry.codes or (500, 502, 503, 504)),
                                # the minimum wait between tries: Envoy's base interval
                                backoff_base=_duration(rule.retry.backoff) or 0.025)
        matches = [_match(m) for m in rule.matches or ()] or [Match(PathMatch("Prefix", "/"))]
        routes = [Route(name=name, matches=(m,), destinations=tuple(dests),
                        mirrors=tuple(mirrors), timeout=timeout, **kw) for m in matches]
        result.append((rule, routes, cond))
    return result


def _backend(ref: Any, rns: str, grants: list[Any], lookup: Lookup, out: Compiled
             ) -> tuple[Cluster | None, Cond | None]:
    if (ref.group or "") != "" or (ref.kind or "Service") != "Service":
        return None, ("ResolvedRefs", "False", "InvalidKind",
                      f"backend {ref.kind}/{ref.name} is not a Service")
    sns = ref.namespace or rns
    if sns != rns and not _granted(grants, "HTTPRoute", rns, "", "Service", sns, ref.name):
        return None, ("ResolvedRefs", "False", "RefNotPermitted",
                      f"no ReferenceGrant allows a reference to service {sns}/{ref.name}")
    out.services.add((sns, ref.name))
    svc = lookup("Service", sns, ref.name)
    if svc is None:
        return None, ("ResolvedRefs", "False", "BackendNotFound",
                      f"service {sns}/{ref.name} not found")
    sport = next((sp for sp in ports(svc) if sp.port == ref.port), None)
    if sport is None:
        return None, ("ResolvedRefs", "False", "BackendNotFound",
                      f"service {sns}/{ref.name} has no port {ref.port}")
    backends = ready_backends(lookup("Endpoints", sns, ref.name), sport.name)
    return Cluster(f"{sns}/{ref.name}:{sport.port}", tuple(backends)), None


def _filter(f: Any, kw: dict[str, Any], mirrors: list[Mirror], rns: str,
            grants: list[Any], lookup: Lookup, out: Compiled) -> None:
    if f.type == "RequestHeaderModifier" and f.request_header_modifier is not None:
        kw["request_headers"] = _mods(f.request_header_modifier)
    elif f.type == "ResponseHeaderModifier" and f.response_header_modifier is not None:
        kw["response_headers"] = _mods(f.response_header_modifier)
    elif f.type == "RequestRedirect" and f.request_redirect is not None:
        rd = f.request_redirect
        path, prefix = _path_mod(rd.path)
        kw["redirect"] = Redirect(scheme=rd.scheme, hostname=rd.hostname, port=rd.port,
                                  path=path, prefix=prefix, status=rd.status_code or 302)
    elif f.type == "URLRewrite" and f.url_rewrite is not None:
        path, prefix = _path_mod(f.url_rewrite.path)
        kw["rewrite"] = Rewrite(hostname=f.url_rewrite.hostname, path=path, prefix=prefix)
    elif f.type == "RequestMirror" and f.request_mirror is not None:
        rm = f.request_mirror
        cluster, _ = _backend(rm.backend_ref, rns, grants, lookup, out)
        if cluster is not None:
            percent = float(rm.percent if rm.percent is not None else 100)
            if rm.fraction is not None:
                percent = 100.0 * rm.fraction.numerator / (rm.fraction.denominator or 100)
            mirrors.append(Mirror(cluster, percent))


def _mods(h: Any) -> HeaderMods:
    return HeaderMods(set=tuple((x.name, x.value) for x in h.set or ()),
                      add=tuple((x.name, x.value) for x in h.add or ()),
                      remove=tuple(h.remove or ()))


def _path_mod(p: Any) -> tuple[str | None, str | None]:
    if p is None:
        return None, None
    if p.type == "ReplaceFullPath":
        return p.replace_full_path or "/", None
    return None, p.replace_prefix_match if p.replace_prefix_match is not None else "/"


def _match(m: Any) -> Match:
    p = m.path
    kind = (p.type if p is not None else None) or "PathPrefix"
    value = (p.value if p is not None else None) or "/"
    path = PathMatch({"PathPrefix": "Prefix"}.get(kind, kind), value)
    headers = tuple(HeaderMatch(h.name.lower(), h.value, h.type or "Exact")
                    for h in m.headers or ())
    query = tuple(QueryMatch(q.name, q.value, q.type or "Exact") for q in m.query_params or ())
    return Match(path=path, headers=headers, query=query, method=m.method)


_DURATION = re.compile(r"(\d+)(ms|h|m|s)")


def _duration(text: str | None) -> float | None:
    """A Gateway API duration (``10s``, ``1m30s``, ``500ms``); ``0s`` means none."""
    if not text:
        return None
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    seconds = sum(int(n) * scale[u] for n, u in _DURATION.findall(text))
    return seconds or None
