"""Compiling Istio's VirtualServices and DestinationRules (with the Services, Endpoints
and pod labels they name) into L7 routing tables. A pure function of what it is given.

Semantics follow Istio's reference for ``networking.istio.io``:

- A VirtualService binds to the gateways in ``spec.gateways`` (``name`` in its own
  namespace or ``namespace/name``); ``mesh`` (the default when the list is empty) means
  the Services named by its hosts. Hosts are short names (resolved in the
  VirtualService's namespace), ``name.namespace``, FQDNs
  (``name.namespace.svc.cluster.local``), other host names and ``*`` wildcards.
- Routes are tried in order; the first whose match (any of ``match``) accepts the request
  is taken. A ``prefix`` uri is a plain string prefix (``/static`` matches
  ``/staticfoo``), as in Envoy. A match's ``gateways`` narrows it to those gateways.
- A destination names a Service by host and a ``subset`` of a DestinationRule for that
  host (pods with the subset's labels). Weights are relative; a missing weight of a single
  destination is 100.
- Retries default to Istio's: 2 attempts on ``connect-failure,refused-stream,unavailable,
  cancelled,retriable-status-codes`` with 503 retriable; a ``retryOn`` of its own may
  name status codes (``503,reset``); faults default to every request when no percentage is
  given; a redirect defaults to 301; mirrors to 100 %.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestra.net._services import ports
from orchestra.net.l7 import (
    Cluster,
    ClusterPolicy,
    DirectResponse,
    Fault,
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
from orchestra.objects._istio import duration_seconds

__all__ = ["INGRESS_LABELS", "Compiled", "compile_istio", "route_prefix", "serves"]

# Istio's default retry policy (pilot's route/retry DefaultPolicy)
_RETRY_ON = ("connect-failure", "refused-stream", "unavailable", "cancelled",
             "retriable-status-codes")
_UNLIMITED = 2**32 - 1

# (kind, namespace, name) -> object or None; ("Pods", namespace, "") -> that namespace's pods
Lookup = Callable[[str, str | None, str], Any]
DOMAIN = "svc.cluster.local"
INGRESS_LABELS = {"istio": "ingressgateway", "app": "istio-ingressgateway"}
"""The labels of the built-in ingress gateway: an Istio Gateway whose selector is a
subset of them is served by it (Istio's default ``istio: ingressgateway`` is)."""


def route_prefix(namespace: str, name: str) -> str:
    return f"virtualservice/{namespace}/{name}/"


def serves(gateway: Any) -> bool:
    """Whether the built-in ingress gateway serves this Istio Gateway."""
    selector = dict(gateway.spec.selector or {})
    return bool(selector) and all(INGRESS_LABELS.get(k) == v for k, v in selector.items())


@dataclass
class Compiled:
    # built-in ingress gateway: port -> (host -> routes, in order)
    ports: dict[int, dict[str, list[Route]]] = field(default_factory=dict)
    # mesh: (service namespace, name, port) -> routes, in order
    mesh: dict[tuple[str, str, int], list[Route]] = field(default_factory=dict)
    # mesh tcp routes: (service namespace, name, port) -> backends, repeated by weight
    # (round robin over them splits connections by the weights)
    tcp: dict[tuple[str, str, int], tuple[tuple[str, int], ...]] = field(
        default_factory=dict)
    warnings: list[tuple[Any, str, str]] = field(default_factory=list)  # object, reason, msg
    services: set[tuple[str, str]] = field(default_factory=set)
    # HTTPS servers: port -> certificates (SNI by the servers' hosts); the Secrets read
    certs: dict[int, list[TlsCert]] = field(default_factory=dict)
    secrets: set[tuple[str, str]] = field(default_factory=set)

    def table(self, port: int) -> RouteTable:
        hosts = self.ports.get(port, {})
        return RouteTable(tuple(VirtualHost(h, (h,), tuple(rs)) for h, rs in hosts.items()),
                          label_wildcards=False)


def resolve_host(host: str, namespace: str) -> tuple[str, str] | None:
    """The Service (namespace, name) a VirtualService or DestinationRule host names, or
    None for a host that is not a cluster Service name."""
    if "*" in host:
        return None
    if host.endswith("." + DOMAIN):
        host = host[:-len(DOMAIN) - 1]
    elif host.endswith(".svc"):
        host = host[:-4]
    parts = host.split(".")
    if len(parts) == 1:
        return namespace, parts[0]
    if len(parts) == 2:
        return parts[1], parts[0]
    return None


def _gateway_refs(vs: Any) -> list[str]:
    ns = vs.metadata.namespace or "default"
    out = []
    for g in vs.spec.gateways or ("mesh",):
        out.append(g if g == "mesh" or "/" in g else f"{ns}/{g}")
    return out


def compile_istio(vss: list[Any], drs: list[Any], gateways: list[Any],
                  lookup: Lookup) -> Compiled:
    """``vss`` and ``drs`` oldest first; ``gateways`` the Istio Gateways."""
    out = Compiled()
    served: dict[str, list[tuple[int, tuple[str, ...]]]] = {}
    known = {f"{gw.metadata.namespace or 'default'}/{gw.metadata.name}" for gw in gateways}
    for gw in gateways:
        if not serves(gw):
            continue
        key = f"{gw.metadata.namespace or 'default'}/{gw.metadata.name}"
        ns = gw.metadata.namespace or "default"
        servers = [(s.port.number, tuple(s.hosts)) for s in gw.spec.servers or ()
                   if s.port.protocol.upper() in ("HTTP", "HTTP2", "GRPC")
                   or (s.port.protocol.upper() == "HTTPS" and _cert(s, ns, lookup, out))]
        served[key] = servers
        for port, _ in servers:
            out.ports.setdefault(port, {})
    rules: dict[tuple[str, str], Any] = {}
    for dr in drs:
        target = resolve_host(dr.spec.host, dr.metadata.namespace or "default")
        if target is not None:
            rules.setdefault(target, dr)
    for vs in vss:
        ns = vs.metadata.namespace or "default"
        refs = _gateway_refs(vs)
        written = list(vs.spec.gateways or ())
        for gref, as_written in zip(refs, written, strict=False):
            if gref == "mesh" or gref in known:
                continue
            out.warnings.append((vs, "ReferencedResourceNotFound",
                                 f'Referenced gateway not found: "{as_written}"'))
        for i, http in enumerate(vs.spec.http or ()):
            for gref in refs:
                route = _route(vs, i, http, gref, rules, lookup, out)
                if route is None:
                    continue
                if gref == "mesh":
                    for host in vs.spec.hosts or ():
                        target = resolve_host(host, ns)
                        svc = lookup("Service", target[0], target[1]) if target else None
                        if svc is None:
                            continue
                        for sp in ports(svc):
                            out.mesh.setdefault((*target, sp.port), []).append(route)  # type: ignore[misc]
                    continue
                for port, hosts in served.get(gref, ()):
                    for host in vs.spec.hosts or ():
                        if _host_allowed(host, hosts):
                            out.ports[port].setdefault(host, []).append(route)
        if "mesh" in refs:
            _tcp(vs, rules, lookup, out)
        for host in vs.spec.hosts or ():
            target = resolve_host(host, ns)
            if "mesh" in refs and target is not None and \
                    lookup("Service", *target) is None and "." not in host:
                out.warnings.append((vs, "ReferencedResourceNotFound",
                                     f'Referenced host not found: "{host}"'))
    return out


def _tcp(vs: Any, rules: dict[tuple[str, str], Any], lookup: Lookup, out: Compiled) -> None:
    """Mesh tcp routes: per port of each host's Service, the first route whose match
    (any; none matches every port) takes that port; its destinations' backends are
    repeated by weight for connection-level round robin."""
    ns = vs.metadata.namespace or "default"
    for host in vs.spec.hosts or ():
        target = resolve_host(host, ns)
        svc = lookup("Service", *target) if target is not None else None
        if svc is None or target is None:
            continue
        for sp in ports(svc):
            key = (target[0], target[1], int(sp.port))
            if key in out.tcp:
                continue
            for t in vs.spec.tcp or ():
                if t.match and not any(m.port in (None, sp.port) and
                                       not (m.gateways and "mesh" not in m.gateways)
                                       for m in t.match):
                    continue
                weighted: list[tuple[int, tuple[tuple[str, int], ...]]] = []
                for d in t.route or ():
                    cluster = _cluster(d.destination, ns, rules, lookup, out, vs)
                    w = d.weight if d.weight is not None else (100 if len(t.route) == 1 else 0)
                    if cluster is not None and w > 0 and cluster.backends:
                        weighted.append((w, cluster.backends))
                g = 0
                for w, _ in weighted:
                    g = math.gcd(g, w)
                out.tcp[key] = tuple(b for w, bs in weighted for _ in range(w // g)
                                     for b in bs) if weighted else ()
                break


def _cert(server: Any, ns: str, lookup: Lookup, out: Compiled) -> bool:
    """An HTTPS server terminating TLS (``mode: SIMPLE``, the default) with the
    ``kubernetes.io/tls`` Secret named by ``credentialName`` (in the Gateway's
    namespace): its certificate is added for the port, True; else False (not served)."""
    tls = dict(server.tls or {})
    name = tls.get("credentialName")
    if tls.get("mode", "SIMPLE") != "SIMPLE" or not name:
        return False
    out.secrets.add((ns, name))
    secret = lookup("Secret", ns, name)
    data = dict(secret.data or {}) if secret is not None else {}
    if secret is None or "tls.crt" not in data or "tls.key" not in data:
        return False
    cert = TlsCert(tuple(h.split("/", 1)[-1] for h in server.hosts),
                   base64.b64decode(data["tls.crt"]), base64.b64decode(data["tls.key"]))
    if check_cert(cert) is not None:
        return False
    out.certs.setdefault(server.port.number, []).append(cert)
    return True


def _host_allowed(host: str, server_hosts: tuple[str, ...]) -> bool:
    for sh in server_hosts:
        sh = sh.split("/", 1)[1] if "/" in sh else sh
        if sh == "*" or sh == host or (sh.startswith("*.") and host.endswith(sh[1:])):
            return True
        if host == "*" or (host.startswith("*.") and sh.endswith(host[1:])):
            return True
    return False


def _string(sm: Any) -> tuple[str, str]:
    """A StringMatch as the table's kind and value."""
    if sm.exact is not None:
        return "Exact", sm.exact
    if sm.prefix is not None:
        return "Prefix", sm.prefix
    if sm.regex is not None:
        return "RegularExpression", sm.regex
    return "Present", ""


def _header(name: str, sm: Any, invert: bool = False) -> HeaderMatch:
    kind, value = _string(sm)
    return HeaderMatch(name.lower(), value, kind, invert)


def _query(name: str, sm: Any) -> QueryMatch:
    kind, value = _string(sm)
    return QueryMatch(name, value, kind)


def _match(m: Any, gref: str, ns: str, lookup: Lookup) -> Match | None:
    if m.gateways and gref not in m.gateways and gref.split("/", 1)[-1] not in m.gateways:
        return None
    sources = None
    if m.source_labels:
        want = dict(m.source_labels)
        if gref != "mesh":  # the caller is the gateway: its labels decide
            if any(INGRESS_LABELS.get(k) != v for k, v in want.items()):
                return None
        else:  # the caller is a pod: by its address
            pods = lookup("Pods", m.source_namespace or ns, "") or ()
            sources = frozenset(
                p.status.pod_ip for p in pods if p.status is not None and p.status.pod_ip
                and all((p.metadata.labels or {}).get(k) == v for k, v in want.items()))
    path = None
    if m.uri is not None:
        kind, value = _string(m.uri)
        if m.ignore_uri_case and kind != "RegularExpression":
            kind, value = "RegularExpression", "(?i)" + re.escape(value) + \
                ("" if kind == "Exact" else ".*")
        path = PathMatch({"Prefix": "StringPrefix"}.get(kind, kind), value)
    headers = [_header(k, v) for k, v in (m.headers or {}).items()]
    headers += [_header(k, v, invert=True)
                for k, v in (m.without_headers or {}).items()]
    if m.authority is not None:
        headers.append(_header("host", m.authority))
    if m.scheme is not None:
        headers.append(_header("x-forwarded-proto", m.scheme))
    query = tuple(_query(k, v) for k, v in (m.query_params or {}).items())
    method = m.method.exact if m.method is not None else None
    return Match(path=path, headers=tuple(headers), query=query, method=method,
                 sources=sources)


def _cluster(dest: Any, ns: str, rules: dict[tuple[str, str], Any], lookup: Lookup,
             out: Compiled, vs: Any) -> Cluster | None:
    target = resolve_host(dest.host, ns)
    svc = lookup("Service", *target) if target is not None else None
    if target is None or svc is None:
        entry = _service_entry(dest, lookup)
        if entry is not None:
            return entry
        out.warnings.append((vs, "ReferencedResourceNotFound",
                             f'Referenced host not found: "{dest.host}"'))
        return None
    out.services.add(target)
    sports = ports(svc)
    want = dest.port.number if dest.port is not None else None
    sport = next((p for p in sports if want is None or p.port == want), None)
    if sport is None:
        out.warnings.append((vs, "ReferencedResourceNotFound",
                             f"service {target[0]}/{target[1]} has no port {want}"))
        return None
    labels: dict[str, str] | None = None
    dr = rules.get(target)
    subset = None
    if dest.subset:
        subset = next((s for s in (dr.spec.subsets or ()) if s.name == dest.subset),
                      None) if dr is not None else None
        if subset is None:
            out.warnings.append((vs, "ReferencedResourceNotFound",
                                 "Referenced host+subset in destinationrule not found: "
                                 f'"{dest.host}+{dest.subset}"'))
            return None
        labels = dict(subset.labels or {})
    backends = _backends(lookup("Endpoints", *target), sport.name, target[0], labels, lookup)
    name = f"{target[0]}/{target[1]}:{sport.port}" + (f"/{dest.subset}" if dest.subset else "")
    policies = [] if dr is None else [dr.spec.traffic_policy,
                                       subset.traffic_policy if subset is not None else None]
    return Cluster(name, tuple(backends), _policy(policies, sport.port))


def _policy(policies: list[Any], port: int) -> ClusterPolicy | None:
    """A DestinationRule's trafficPolicy for one port of one subset: the subset's policy
    over the rule's, port-level settings over both (Istio does not merge within them:
    each of loadBalancer, connectionPool and outlierDetection is taken whole)."""
    lb = pool = od = None
    for tp in policies:
        if tp is None:
            continue
        for level in (tp, *(p for p in tp.port_level_settings or ()
                            if p.port is not None and p.port.number == port)):
            lb = level.load_balancer or lb
            pool = level.connection_pool or pool
            od = level.outlier_detection or od
    if lb is None and pool is None and od is None:
        return None
    kw: dict[str, Any] = {}
    if lb is not None and lb.consistent_hash is not None:
        ch = lb.consistent_hash
        kw.update(lb="HASH", hash_header=ch.http_header_name.lower()
                  if ch.http_header_name else None,
                  hash_cookie=ch.http_cookie.name if ch.http_cookie is not None else None,
                  hash_source_ip=bool(ch.use_source_ip))
    elif lb is not None and lb.simple in ("RANDOM", "LEAST_REQUEST", "LEAST_CONN"):
        kw["lb"] = "RANDOM" if lb.simple == "RANDOM" else "LEAST_REQUEST"
    if pool is not None:
        # Istio leaves every limit it is not given at 2^32-1 (Envoy's own would be 1024)
        tcp, http = pool.tcp, pool.http
        if tcp is not None and tcp.max_connections is not None:
            kw["max_connections"] = tcp.max_connections
            kw["max_pending"] = _UNLIMITED
        if tcp is not None and tcp.connect_timeout is not None:
            kw["connect_timeout"] = duration_seconds(tcp.connect_timeout)
        if http is not None:
            if http.http1_max_pending_requests is not None:
                kw["max_pending"] = http.http1_max_pending_requests
            if http.http2_max_requests is not None:
                kw["max_requests"] = http.http2_max_requests
            if http.max_retries is not None:
                kw["max_retries"] = http.max_retries
            if http.max_requests_per_connection:
                kw["max_requests_per_connection"] = http.max_requests_per_connection
    if od is not None:
        # Istio's defaults: 5 consecutive 5xx (0 turns it off), a 10s sweep, 30s
        # ejection, 10 % of the hosts at most, no panic threshold (minHealthPercent 0)
        five = od.consecutive5xx_errors if od.consecutive5xx_errors is not None else \
            od.consecutive_errors
        kw["consecutive_5xx"] = five if five is not None else 5
        kw["consecutive_gateway"] = od.consecutive_gateway_errors
        kw["interval"] = duration_seconds(od.interval) or 10.0
        kw["base_ejection"] = duration_seconds(od.base_ejection_time) or 30.0
        kw["max_ejection_percent"] = od.max_ejection_percent \
            if od.max_ejection_percent is not None else 10
        kw["min_health_percent"] = od.min_health_percent or 0
    return ClusterPolicy(**kw)


def _service_entry(dest: Any, lookup: Lookup) -> Cluster | None:
    """A destination naming a ServiceEntry's host: its ``STATIC`` endpoints (an
    endpoint's ``ports`` entry for the port's name overrides the number), or for ``DNS``
    without endpoints the host itself at the port."""
    for se in sorted(lookup("ServiceEntries", None, "") or (), key=_created):
        if dest.host not in se.spec.hosts:
            continue
        want = dest.port.number if dest.port is not None else None
        sp = next((p for p in se.spec.ports or () if want is None or p.number == want), None)
        if sp is None:
            return None
        backends: list[tuple[str, int]] = []
        for ep in se.spec.endpoints or ():
            if ep.address:
                port = dict(ep.ports or {}).get(sp.name, sp.target_port or sp.number)
                backends.append((ep.address, port))
        if not se.spec.endpoints and se.spec.resolution in ("DNS", "DNS_ROUND_ROBIN"):
            backends.append((dest.host, sp.target_port or sp.number))
        name = f"{se.metadata.namespace or 'default'}/{dest.host}:{sp.number}"
        return Cluster(name, tuple(backends))
    return None


def _created(obj: Any) -> tuple[str, str]:
    return (obj.metadata.creation_timestamp or "", obj.metadata.name)


def _backends(endpoints: Any, port_name: str | None, ns: str,
              labels: dict[str, str] | None, lookup: Lookup) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for subset in (endpoints.subsets or ()) if endpoints is not None else ():
        port = next((p for p in subset.ports or () if (p.name or "") == (port_name or "")),
                    None)
        if port is None:
            continue
        for addr in subset.addresses or ():
            if labels:
                ref = addr.target_ref
                pod = lookup("Pod", ns, ref.name) if ref is not None and ref.name else None
                have = (pod.metadata.labels or {}) if pod is not None else {}
                if any(have.get(k) != v for k, v in labels.items()):
                    continue
            if (addr.ip, port.port) not in out:
                out.append((addr.ip, port.port))
    return out


def _mods(h: Any) -> HeaderMods | None:
    if h is None:
        return None
    return HeaderMods(set=tuple((k, v) for k, v in (h.set or {}).items()),
                      add=tuple((k, v) for k, v in (h.add or {}).items()),
                      remove=tuple(h.remove or ()))


def _percent(p: Any, legacy: int | None) -> float:
    if p is not None:
        return float(p.value)
    return float(legacy) if legacy is not None else 100.0


def _route(vs: Any, i: int, http: Any, gref: str, rules: dict[tuple[str, str], Any],
           lookup: Lookup, out: Compiled) -> Route | None:
    ns = vs.metadata.namespace or "default"
    matches: list[Match] = []
    for m in http.match or ():
        cm = _match(m, gref, ns, lookup)
        if cm is not None:
            matches.append(cm)
    if http.match and not matches:
        return None  # every match is for other gateways
    kw: dict[str, Any] = {}
    dests = []
    for d in http.route or ():
        cluster = _cluster(d.destination, ns, rules, lookup, out, vs)
        weight = d.weight if d.weight is not None else (100 if len(http.route) == 1 else 0)
        if cluster is not None and weight > 0:
            dests.append(WeightedCluster(cluster, weight))
    if http.route and not dests:
        kw["direct"] = DirectResponse(503, b"no healthy upstream")
    if http.redirect is not None:
        rd = http.redirect
        kw["redirect"] = Redirect(scheme=rd.scheme, hostname=rd.authority, port=rd.port,
                                  path=rd.uri, status=rd.redirect_code or 301)
    if http.direct_response is not None:
        body = http.direct_response.body
        kw["direct"] = DirectResponse(http.direct_response.status,
                                      (body.string or "").encode() if body else b"")
    if http.rewrite is not None and (http.rewrite.uri is not None or http.rewrite.authority):
        uri = http.rewrite.uri
        prefixed = bool(matches) and all(m.path is not None and m.path.kind == "StringPrefix"
                                         for m in matches)
        kw["rewrite"] = Rewrite(hostname=http.rewrite.authority,
                                prefix=uri if prefixed else None,
                                path=None if prefixed else uri)
    if http.headers is not None:
        kw["request_headers"] = _mods(http.headers.request)
        kw["response_headers"] = _mods(http.headers.response)
    kw["timeout"] = duration_seconds(http.timeout)
    r = http.retries
    if r is None:
        kw["retry"] = Retry(attempts=2, retry_on=_RETRY_ON, codes=(503,))
    elif r.attempts:
        on = tuple(x.strip() for x in (r.retry_on or "").split(",") if x.strip())
        codes = tuple(int(x) for x in on if x.isdigit())
        on = tuple(x for x in on if not x.isdigit()) + \
            (("retriable-status-codes",) if codes else ())
        if not on:
            on, codes = _RETRY_ON, (503,)
        kw["retry"] = Retry(attempts=r.attempts, per_try_timeout=duration_seconds(
            r.per_try_timeout), retry_on=on, codes=codes)
    f = http.fault
    if f is not None:
        delay = f.delay
        abort = f.abort
        kw["fault"] = Fault(
            delay=(duration_seconds(delay.fixed_delay) or 0.0) if delay is not None else 0.0,
            delay_percent=_percent(delay.percentage, delay.percent) if delay else 0.0,
            abort_status=(abort.http_status or 0) if abort is not None else 0,
            abort_percent=_percent(abort.percentage, abort.percent) if abort else 0.0)
    mirrors = []
    if http.mirror is not None:
        cluster = _cluster(http.mirror, ns, rules, lookup, out, vs)
        if cluster is not None:
            mirrors.append(Mirror(cluster, _percent(http.mirror_percentage,
                                                    http.mirror_percent)))
    for mp in http.mirrors or ():
        cluster = _cluster(mp.destination, ns, rules, lookup, out, vs)
        if cluster is not None:
            mirrors.append(Mirror(cluster, _percent(mp.percentage, None)))
    kw["mirrors"] = tuple(mirrors)
    name = route_prefix(ns, vs.metadata.name) + (http.name or str(i))
    return Route(name=name, matches=tuple(matches) or (Match(),),
                 destinations=tuple(dests), **kw)
