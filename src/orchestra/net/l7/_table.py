"""The L7 routing table: what a controller compiles and the HTTP data plane obeys.

A table is plain immutable data (frozen dataclasses and tuples, no store objects, no
pydantic): virtual hosts by domain -> ordered routes -> weighted clusters of backend
``(ip, port)`` addresses. A controller builds a whole new table and the data plane
swaps it in with one attribute store, so a request sees either the old table or the new
one, never a mix.

Decisions:

- Route order is the controller's: the data plane takes the first route of the virtual
  host whose match accepts the request. Precedence rules (Ingress' longest path, Gateway
  API's tie-breaks, Istio's first-match) are applied when compiling, not here.
- Domains are exact (``foo.example.com``), wildcards (``*.example.com``) or ``*`` (any
  host). An exact domain wins over a wildcard, a longer wildcard over a shorter one, and
  ``*`` is the last resort. ``label_wildcards`` says whether ``*.`` covers exactly one
  DNS label (Ingress' rule) or any number (Gateway API's).
- The fields that only Istio-style routing needs (retries, fault, mirror, regex and
  query matches) are part of the table so that any controller can compile into it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from orchestra.net.l7._policy import ClusterPolicy

__all__ = [
    "Backend",
    "Cluster",
    "DirectResponse",
    "Fault",
    "HeaderMatch",
    "HeaderMods",
    "Match",
    "Mirror",
    "PathMatch",
    "QueryMatch",
    "Redirect",
    "Retry",
    "Rewrite",
    "Route",
    "RouteTable",
    "TlsCert",
    "VirtualHost",
    "WeightedCluster",
]

Backend = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Cluster:
    """A named set of interchangeable backends (one Service port, or a subset of it).
    The name keys the statistics: ``namespace/service:port``. ``policy``: how requests
    are balanced, limited and backends ejected (round robin, no limits when None)."""

    name: str
    backends: tuple[Backend, ...] = ()
    policy: ClusterPolicy | None = None


@dataclass(frozen=True, slots=True)
class WeightedCluster:
    cluster: Cluster
    weight: int = 1


@dataclass(frozen=True, slots=True)
class PathMatch:
    """``Exact``, ``Prefix`` (element-wise: ``/foo`` matches ``/foo`` and ``/foo/bar``,
    not ``/foobar``; a trailing ``/`` in the prefix is ignored), ``StringPrefix`` (the
    path starts with the value: Istio's and Envoy's ``prefix``) or
    ``RegularExpression`` (the whole path must match)."""

    kind: str
    value: str
    pattern: re.Pattern[str] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.kind == "RegularExpression" and self.pattern is None:
            object.__setattr__(self, "pattern", re.compile(self.value))

    def matches(self, path: str) -> bool:
        if self.kind == "Exact":
            return path == self.value
        if self.kind == "Prefix":
            prefix = self.value.rstrip("/")
            return not prefix or path == prefix or path.startswith(prefix + "/")
        if self.kind == "StringPrefix":
            return path.startswith(self.value)
        assert self.pattern is not None
        return self.pattern.fullmatch(path) is not None


@dataclass(frozen=True, slots=True)
class HeaderMatch:
    """A request header (name lower-case) that must be ``Exact`` a value, ``Prefix``ed
    by it, match a ``RegularExpression``, or be ``Present``; ``invert`` negates."""

    name: str
    value: str = ""
    kind: str = "Exact"
    invert: bool = False
    pattern: re.Pattern[str] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.kind == "RegularExpression" and self.pattern is None:
            object.__setattr__(self, "pattern", re.compile(self.value))

    def matches(self, got: str | None) -> bool:
        return _value_matches(self.kind, self.value, self.pattern, got) != self.invert


@dataclass(frozen=True, slots=True)
class QueryMatch:
    name: str
    value: str = ""
    kind: str = "Exact"
    pattern: re.Pattern[str] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.kind == "RegularExpression" and self.pattern is None:
            object.__setattr__(self, "pattern", re.compile(self.value))

    def matches(self, got: str | None) -> bool:
        return _value_matches(self.kind, self.value, self.pattern, got)


def _value_matches(kind: str, value: str, pattern: re.Pattern[str] | None,
                   got: str | None) -> bool:
    if got is None:
        return False
    if kind == "Present":
        return True
    if kind == "Prefix":
        return got.startswith(value)
    if kind == "RegularExpression":
        assert pattern is not None
        return pattern.fullmatch(got) is not None
    return got == value


@dataclass(frozen=True, slots=True)
class Match:
    """All of its conditions must hold (an empty match accepts every request).
    ``sources``: the client addresses it accepts (None: any), e.g. the pods that an
    Istio ``sourceLabels`` match selects."""

    path: PathMatch | None = None
    headers: tuple[HeaderMatch, ...] = ()
    query: tuple[QueryMatch, ...] = ()
    method: str | None = None
    sources: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class HeaderMods:
    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Redirect:
    """Answer with a redirect instead of forwarding; None fields keep the request's."""

    scheme: str | None = None
    hostname: str | None = None
    port: int | None = None
    path: str | None = None  # replaces the whole path
    prefix: str | None = None  # replaces the matched path prefix
    status: int = 302


@dataclass(frozen=True, slots=True)
class Rewrite:
    hostname: str | None = None
    path: str | None = None  # replaces the whole path
    prefix: str | None = None  # replaces the matched path prefix


@dataclass(frozen=True, slots=True)
class Mirror:
    cluster: Cluster
    percent: float = 100.0


@dataclass(frozen=True, slots=True)
class Retry:
    """Retries, Envoy's way: ``attempts`` more tries, each cut after
    ``per_try_timeout`` (counted from the whole request sent), on the conditions of
    ``retry_on``: ``5xx`` (and a per-try timeout), ``gateway-error`` (502, 503, 504, and
    a per-try timeout), ``reset`` (the backend closed or timed out before answering),
    ``connect-failure``, ``retriable-4xx`` (409), ``retriable-status-codes`` (the
    statuses in ``codes``). A retry prefers a backend not tried yet and waits first:
    fully jittered exponential back-off from ``backoff_base`` up to ``backoff_max``
    (10 times the base when None). A request body is kept for retries up to the proxy's
    buffer limit; a request whose body outgrew it is not retried."""

    attempts: int = 0
    per_try_timeout: float | None = None
    retry_on: tuple[str, ...] = ("connect-failure",)
    codes: tuple[int, ...] = ()
    backoff_base: float = 0.025
    backoff_max: float | None = None

    def on_status(self, status: int) -> bool:
        on = self.retry_on
        return ("5xx" in on and status >= 500) or \
            ("gateway-error" in on and status in (502, 503, 504)) or \
            ("retriable-4xx" in on and status == 409) or \
            ("retriable-status-codes" in on and status in self.codes)


@dataclass(frozen=True, slots=True)
class Fault:
    delay: float = 0.0
    delay_percent: float = 0.0
    abort_status: int = 0
    abort_percent: float = 0.0


@dataclass(frozen=True, slots=True)
class DirectResponse:
    status: int
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Route:
    """One routing rule. ``name`` keys the statistics (e.g. ``ingress/default/web``).
    A route answers itself (``direct``, ``redirect``) or forwards to one of its
    weighted ``destinations``; with no destination it answers 503."""

    name: str
    matches: tuple[Match, ...] = (Match(),)
    destinations: tuple[WeightedCluster, ...] = ()
    direct: DirectResponse | None = None
    redirect: Redirect | None = None
    rewrite: Rewrite | None = None
    request_headers: HeaderMods | None = None
    response_headers: HeaderMods | None = None
    mirrors: tuple[Mirror, ...] = ()
    timeout: float | None = None
    retry: Retry | None = None
    fault: Fault | None = None


@dataclass(frozen=True, slots=True)
class VirtualHost:
    name: str
    domains: tuple[str, ...]
    routes: tuple[Route, ...]


@dataclass(frozen=True, slots=True)
class TlsCert:
    """A certificate (PEM chain and key) served for the SNI names in ``hosts``
    (exact or ``*.`` wildcards); the first cert of a listener is its default."""

    hosts: tuple[str, ...]
    cert_pem: bytes
    key_pem: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class RouteTable:
    """Virtual hosts, looked up by the request's host (see the module doc)."""

    vhosts: tuple[VirtualHost, ...] = ()
    label_wildcards: bool = True
    _exact: dict[str, VirtualHost] = field(default_factory=dict, compare=False, repr=False)
    _wild: tuple[tuple[str, VirtualHost], ...] = field(default=(), compare=False, repr=False)
    _any: VirtualHost | None = field(default=None, compare=False, repr=False)
    # (host, method, path) -> route, for virtual hosts whose matches look at nothing
    # else (no header, query or source match): filled as requests come, cleared when full
    _cache: dict[tuple[str, str, str], tuple[Route, Match] | None] = field(
        default_factory=dict, compare=False, repr=False)
    _path_only: frozenset[int] = field(default=frozenset(), compare=False, repr=False)

    def __post_init__(self) -> None:
        wild: list[tuple[str, VirtualHost]] = []
        object.__setattr__(self, "_path_only", frozenset(
            id(vh) for vh in self.vhosts
            if all(not (m.headers or m.query or m.sources is not None)
                   for r in vh.routes for m in r.matches)))
        for vh in self.vhosts:
            for domain in vh.domains:
                d = domain.lower()
                if d == "*":
                    if self._any is None:
                        object.__setattr__(self, "_any", vh)
                elif d.startswith("*."):
                    wild.append((d[1:], vh))  # ".example.com"
                else:
                    self._exact.setdefault(d, vh)
        wild.sort(key=lambda w: -len(w[0]))
        object.__setattr__(self, "_wild", tuple(wild))

    def vhost(self, host: str) -> VirtualHost | None:
        """The virtual host serving ``host`` (a Host header: port and case ignored)."""
        host = _strip_port(host).lower().rstrip(".")
        vh = self._exact.get(host)
        if vh is not None:
            return vh
        for suffix, wvh in self._wild:
            if host.endswith(suffix) and len(host) > len(suffix):
                label = host[:-len(suffix)]
                if not self.label_wildcards or "." not in label:
                    return wvh
        return self._any

    def route(self, host: str, method: str, path: str, query: str, headers: dict[str, str],
              client_ip: str = "") -> tuple[Route, Match] | None:
        """:func:`select_route` on the virtual host serving ``host``; remembered per
        (host, method, path) when that virtual host matches on nothing else. (Called
        from the data plane's thread only.)"""
        key = (host, method, path)
        try:
            return self._cache[key]
        except KeyError:
            pass
        vh = self.vhost(host)
        if vh is None:
            hit = None
        else:
            hit = select_route(vh, method, path, query, headers, client_ip)
            if id(vh) not in self._path_only:
                return hit
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = hit
        return hit

    def backends(self) -> frozenset[Backend]:
        """Every backend some route may send to (to drain pooled connections to others)."""
        out: set[Backend] = set()
        for vh in self.vhosts:
            for route in vh.routes:
                for wc in route.destinations:
                    out.update(wc.cluster.backends)
                for m in route.mirrors:
                    out.update(m.cluster.backends)
        return frozenset(out)


_CACHE_SIZE = 4096


def _strip_port(host: str) -> str:
    if host.startswith("["):
        end = host.find("]")
        return host[:end + 1] if end > 0 else host
    colon = host.rfind(":")
    return host[:colon] if colon >= 0 else host


def select_route(vh: VirtualHost, method: str, path: str, query: str,
                 headers: dict[str, str], client_ip: str = "") -> tuple[Route, Match] | None:
    """The first route of ``vh`` with a match accepting the request, and that match.
    ``headers`` has lower-case names (repeated headers joined with ``,``)."""
    params: dict[str, str] | None = None
    for route in vh.routes:
        for m in route.matches:
            if m.method is not None and m.method != method:
                continue
            if m.sources is not None and client_ip not in m.sources:
                continue
            if m.path is not None and not m.path.matches(path):
                continue
            if m.headers and not all(h.matches(headers.get(h.name)) for h in m.headers):
                continue
            if m.query:
                if params is None:
                    params = _query_params(query)
                if not all(q.matches(params.get(q.name)) for q in m.query):
                    continue
            return route, m
    return None


def _query_params(query: str) -> dict[str, str]:
    """First value of each query parameter, percent-decoded."""
    from urllib.parse import parse_qsl

    out: dict[str, str] = {}
    for k, v in parse_qsl(query, keep_blank_values=True):
        out.setdefault(k, v)
    return out
