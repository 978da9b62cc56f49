"""networking.istio.io: Gateway, VirtualService, DestinationRule, ServiceEntry (v1, also
v1beta1 and v1alpha3, as Istio serves them).

The fields are Istio's (``networking/v1alpha3`` protos, the same in every served
version). Parts the built-in controller does not act on (CORS policies, TLS settings,
locality load balancing, ...) are kept as opaque JSON so that Istio's own samples load
unchanged. Validation follows Istio's webhook for what it rejects outright (no hosts,
negative weights, unknown enum values, malformed durations, duplicate subsets).
Istio's Gateway shares its kind name with the Gateway API's: it is keyed
``Gateway.networking.istio.io`` and named ``gateways.networking.istio.io/NAME``.
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field

from orchestra.objects._apps import FrozenJSON
from orchestra.objects._base import register
from orchestra.objects._checks import CheckedKind, ErrorList, unsupported
from orchestra.objects._model import FrozenDict, Model

GROUP = "networking.istio.io"
_VERSIONS = Literal["networking.istio.io/v1", "networking.istio.io/v1beta1",
                    "networking.istio.io/v1alpha3"]
_SERVED: tuple[str, ...] = ("networking.istio.io/v1", "networking.istio.io/v1beta1",
                            "networking.istio.io/v1alpha3")
_DURATION = re.compile(r"^([0-9]+(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(text: str | None) -> float | None:
    """A protobuf/Go duration (``1.5s``, ``100ms``, ``1m30s``) in seconds."""
    if text is None:
        return None
    if not _DURATION.match(text):
        raise ValueError(f"invalid duration {text!r}")
    total = 0.0
    for num, _, unit in re.findall(r"([0-9]+(\.[0-9]*)?)(ns|us|µs|ms|s|m|h)", text):
        total += float(num) * _UNITS[unit]
    return total


def _duration(errors: ErrorList, loc: tuple[str | int, ...], text: str | None) -> None:
    if text is not None and not _DURATION.match(text):
        errors.append((loc, f'Invalid value: "{text}": invalid duration'))


class Percent(Model):
    value: float


class PortSelector(Model):
    number: int | None = None


class StringMatch(Model):
    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None


class Destination(Model):
    host: str
    subset: str | None = None
    port: PortSelector | None = None


class HeaderOperations(Model):
    set: FrozenDict[str, str] | None = None
    add: FrozenDict[str, str] | None = None
    remove: tuple[str, ...] | None = None


class Headers(Model):
    request: HeaderOperations | None = None
    response: HeaderOperations | None = None


# -- VirtualService ----------------------------------------------------------------------

class HTTPMatchRequest(Model):
    name: str | None = None
    uri: StringMatch | None = None
    scheme: StringMatch | None = None
    method: StringMatch | None = None
    authority: StringMatch | None = None
    headers: FrozenDict[str, StringMatch] | None = None
    port: int | None = None
    source_labels: FrozenDict[str, str] | None = None
    gateways: tuple[str, ...] | None = None
    query_params: FrozenDict[str, StringMatch] | None = None
    ignore_uri_case: bool | None = None
    without_headers: FrozenDict[str, StringMatch] | None = None
    source_namespace: str | None = None
    stat_prefix: str | None = None


class HTTPRouteDestination(Model):
    destination: Destination
    weight: int | None = None
    headers: Headers | None = None


class HTTPRedirect(Model):
    uri: str | None = None
    authority: str | None = None
    port: int | None = None
    derive_port: str | None = None
    scheme: str | None = None
    redirect_code: int | None = None


class RegexRewrite(Model):
    match: str | None = None
    rewrite: str | None = None


class HTTPRewrite(Model):
    uri: str | None = None
    authority: str | None = None
    uri_regex_rewrite: RegexRewrite | None = None


class HTTPRetry(Model):
    attempts: int | None = None
    per_try_timeout: str | None = None
    retry_on: str | None = None
    retry_remote_localities: bool | None = None


class Delay(Model):
    fixed_delay: str | None = None
    exponential_delay: str | None = None
    percentage: Percent | None = None
    percent: int | None = None


class Abort(Model):
    http_status: int | None = None
    grpc_status: str | None = None
    http2_error: str | None = None
    percentage: Percent | None = None
    percent: int | None = None  # deprecated, still in Istio's samples


class HTTPFaultInjection(Model):
    delay: Delay | None = None
    abort: Abort | None = None


class HTTPBody(Model):
    string: str | None = None
    bytes: str | None = None


class HTTPDirectResponse(Model):
    status: int
    body: HTTPBody | None = None


class HTTPMirrorPolicy(Model):
    destination: Destination
    percentage: Percent | None = None


class Delegate(Model):
    name: str | None = None
    namespace: str | None = None


class HTTPRoute(Model):
    name: str | None = None
    match: tuple[HTTPMatchRequest, ...] | None = None
    route: tuple[HTTPRouteDestination, ...] | None = None
    redirect: HTTPRedirect | None = None
    direct_response: HTTPDirectResponse | None = None
    delegate: Delegate | None = None
    rewrite: HTTPRewrite | None = None
    timeout: str | None = None
    retries: HTTPRetry | None = None
    fault: HTTPFaultInjection | None = None
    mirror: Destination | None = None
    mirrors: tuple[HTTPMirrorPolicy, ...] | None = None
    mirror_percent: int | None = None
    mirror_percentage: Percent | None = None
    cors_policy: FrozenJSON | None = None
    headers: Headers | None = None


class L4MatchAttributes(Model):
    destination_subnets: tuple[str, ...] | None = None
    port: int | None = None
    source_labels: FrozenDict[str, str] | None = None
    gateways: tuple[str, ...] | None = None
    source_namespace: str | None = None


class RouteDestination(Model):
    destination: Destination
    weight: int | None = None


class TCPRoute(Model):
    match: tuple[L4MatchAttributes, ...] | None = None
    route: tuple[RouteDestination, ...] | None = None


class TLSMatchAttributes(Model):
    sni_hosts: tuple[str, ...]
    destination_subnets: tuple[str, ...] | None = None
    port: int | None = None
    source_labels: FrozenDict[str, str] | None = None
    gateways: tuple[str, ...] | None = None
    source_namespace: str | None = None


class TLSRoute(Model):
    match: tuple[TLSMatchAttributes, ...]
    route: tuple[RouteDestination, ...] | None = None


class VirtualServiceSpec(Model):
    hosts: tuple[str, ...] | None = None
    gateways: tuple[str, ...] | None = None
    http: tuple[HTTPRoute, ...] | None = None
    tls: tuple[TLSRoute, ...] | None = None
    tcp: tuple[TCPRoute, ...] | None = None
    export_to: tuple[str, ...] | None = None


def _weights(errors: ErrorList, loc: tuple[str | int, ...],
             weights: list[int | None]) -> None:
    for j, w in enumerate(weights):
        if w is not None and w < 0:
            errors.append(((*loc, j, "weight"), f"Invalid value: {w}: weight {w} < 0"))


@register(plural="virtualservices", short_names=("vs",))
class VirtualService(CheckedKind):
    SERVED_VERSIONS: ClassVar[tuple[str, ...]] = _SERVED
    api_version: _VERSIONS = Field("networking.istio.io/v1", alias="apiVersion")
    kind: Literal["VirtualService"] = "VirtualService"
    spec: VirtualServiceSpec
    status: FrozenJSON | None = None

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        spec = self.spec
        if not spec.hosts:
            errors.append((("spec", "hosts"), "Required value: virtual service must have "
                           "at least one host"))
        if not (spec.http or spec.tcp or spec.tls):
            errors.append((("spec",), "Required value: http, tcp or tls must be provided "
                           "in virtual service"))
        for i, r in enumerate(spec.http or ()):
            loc: tuple[str | int, ...] = ("spec", "http", i)
            if not (r.route or r.redirect or r.direct_response or r.delegate):
                errors.append((loc, "Required value: HTTP route, redirect or direct "
                               "response is required"))
            if r.redirect is not None and r.route:
                errors.append((loc, "Invalid value: HTTP route cannot contain both route "
                               "and redirect"))
            _weights(errors, (*loc, "route"), [d.weight for d in r.route or ()])
            _duration(errors, (*loc, "timeout"), r.timeout)
            if r.retries is not None:
                _duration(errors, (*loc, "retries", "perTryTimeout"),
                          r.retries.per_try_timeout)
                if r.retries.attempts is not None and r.retries.attempts < 0:
                    errors.append(((*loc, "retries", "attempts"),
                                   "Invalid value: attempts cannot be negative"))
            if r.fault is not None:
                if r.fault.delay is not None:
                    _duration(errors, (*loc, "fault", "delay", "fixedDelay"),
                              r.fault.delay.fixed_delay)
                    _percent(errors, (*loc, "fault", "delay", "percentage"),
                             r.fault.delay.percentage)
                if r.fault.abort is not None:
                    _percent(errors, (*loc, "fault", "abort", "percentage"),
                             r.fault.abort.percentage)
                    status = r.fault.abort.http_status
                    if status is not None and not 200 <= status <= 599:
                        errors.append(((*loc, "fault", "abort", "httpStatus"),
                                       "Invalid value: httpStatus must be in range 200 - 599"))
            _percent(errors, (*loc, "mirrorPercentage"), r.mirror_percentage)
            for k, m in enumerate(r.match or ()):
                for field, sm in (("uri", m.uri), ("method", m.method)):
                    if sm is not None and sum(x is not None for x in
                                              (sm.exact, sm.prefix, sm.regex)) != 1:
                        errors.append(((*loc, "match", k, field),
                                       "Invalid value: exactly one of exact, prefix or "
                                       "regex is required"))
        for i, t in enumerate(spec.tcp or ()):
            _weights(errors, ("spec", "tcp", i, "route"), [d.weight for d in t.route or ()])
        return errors


def _percent(errors: ErrorList, loc: tuple[str | int, ...], p: Percent | None) -> None:
    if p is not None and not 0 <= p.value <= 100:
        errors.append((loc, f"Invalid value: {p.value}: percentage {p.value} is not in "
                       "range 0..100"))


# -- DestinationRule ---------------------------------------------------------------------

class HTTPCookie(Model):
    name: str
    path: str | None = None
    ttl: str | None = None
    attributes: tuple[FrozenJSON, ...] | None = None


class ConsistentHash(Model):
    http_header_name: str | None = None
    http_cookie: HTTPCookie | None = None
    use_source_ip: bool | None = None
    http_query_parameter_name: str | None = None
    ring_hash: FrozenJSON | None = None
    maglev: FrozenJSON | None = None
    minimum_ring_size: int | None = None


_LB = ("UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST")


class LoadBalancerSettings(Model):
    simple: str | None = None
    consistent_hash: ConsistentHash | None = None
    locality_lb_setting: FrozenJSON | None = None
    warmup_duration_secs: str | None = None
    warmup: FrozenJSON | None = None


class TCPSettings(Model):
    max_connections: int | None = None
    connect_timeout: str | None = None
    tcp_keepalive: FrozenJSON | None = None
    max_connection_duration: str | None = None
    idle_timeout: str | None = None


class HTTPSettings(Model):
    http1_max_pending_requests: int | None = None
    http2_max_requests: int | None = None
    max_requests_per_connection: int | None = None
    max_retries: int | None = None
    idle_timeout: str | None = None
    h2_upgrade_policy: str | None = None
    use_client_protocol: bool | None = None
    max_concurrent_streams: int | None = None


class ConnectionPoolSettings(Model):
    tcp: TCPSettings | None = None
    http: HTTPSettings | None = None


class OutlierDetection(Model):
    split_external_local_origin_errors: bool | None = None
    consecutive_local_origin_failures: int | None = None
    consecutive_gateway_errors: int | None = None
    consecutive5xx_errors: int | None = Field(None, alias="consecutive5xxErrors")
    consecutive_errors: int | None = None
    interval: str | None = None
    base_ejection_time: str | None = None
    max_ejection_percent: int | None = None
    min_health_percent: int | None = None


class PortTrafficPolicy(Model):
    port: PortSelector | None = None
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: FrozenJSON | None = None


class TrafficPolicy(Model):
    load_balancer: LoadBalancerSettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetection | None = None
    tls: FrozenJSON | None = None
    port_level_settings: tuple[PortTrafficPolicy, ...] | None = None
    tunnel: FrozenJSON | None = None
    proxy_protocol: FrozenJSON | None = None
    retry_budget: FrozenJSON | None = None


class Subset(Model):
    name: str
    labels: FrozenDict[str, str] | None = None
    traffic_policy: TrafficPolicy | None = None


class WorkloadSelector(Model):
    match_labels: FrozenDict[str, str] | None = None


class DestinationRuleSpec(Model):
    host: str
    traffic_policy: TrafficPolicy | None = None
    subsets: tuple[Subset, ...] | None = None
    export_to: tuple[str, ...] | None = None
    workload_selector: WorkloadSelector | None = None


def _policy_errors(errors: ErrorList, loc: tuple[str | int, ...],
                   tp: TrafficPolicy | None) -> None:
    if tp is None:
        return
    lb = tp.load_balancer
    if lb is not None:
        if lb.simple is not None and lb.simple not in _LB:
            errors.append(((*loc, "loadBalancer", "simple"), unsupported(lb.simple, _LB)))
        if lb.simple is not None and lb.consistent_hash is not None:
            errors.append(((*loc, "loadBalancer"), "Invalid value: only one of simple or "
                           "consistentHash may be set"))
    od = tp.outlier_detection
    if od is not None:
        _duration(errors, (*loc, "outlierDetection", "interval"), od.interval)
        _duration(errors, (*loc, "outlierDetection", "baseEjectionTime"),
                  od.base_ejection_time)
        if od.max_ejection_percent is not None and not 0 <= od.max_ejection_percent <= 100:
            errors.append(((*loc, "outlierDetection", "maxEjectionPercent"),
                           "Invalid value: outlier detection ejection percent must be in "
                           "range [0, 100]"))
    http = tp.connection_pool.http if tp.connection_pool is not None else None
    if http is not None:
        for name, v in (("http1MaxPendingRequests", http.http1_max_pending_requests),
                        ("maxRequestsPerConnection", http.max_requests_per_connection)):
            if v is not None and v < 0:
                errors.append(((*loc, "connectionPool", "http", name),
                               f"Invalid value: {v}: must be non-negative"))


@register(plural="destinationrules", short_names=("dr",))
class DestinationRule(CheckedKind):
    SERVED_VERSIONS: ClassVar[tuple[str, ...]] = _SERVED
    api_version: _VERSIONS = Field("networking.istio.io/v1", alias="apiVersion")
    kind: Literal["DestinationRule"] = "DestinationRule"
    spec: DestinationRuleSpec
    status: FrozenJSON | None = None

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        if not self.spec.host:
            errors.append((("spec", "host"), "Required value: host is required"))
        _policy_errors(errors, ("spec", "trafficPolicy"), self.spec.traffic_policy)
        seen: set[str] = set()
        for i, s in enumerate(self.spec.subsets or ()):
            if s.name in seen:
                errors.append((("spec", "subsets", i, "name"),
                               f'Duplicate value: "{s.name}"'))
            seen.add(s.name)
            _policy_errors(errors, ("spec", "subsets", i, "trafficPolicy"), s.traffic_policy)
        return errors


# -- Gateway -----------------------------------------------------------------------------

class Port(Model):
    number: int
    protocol: str
    name: str | None = None
    target_port: int | None = None


class Server(Model):
    port: Port
    bind: str | None = None
    hosts: tuple[str, ...]
    tls: FrozenJSON | None = None
    default_endpoint: str | None = None
    name: str | None = None


class GatewaySpec(Model):
    servers: tuple[Server, ...] | None = None
    selector: FrozenDict[str, str] | None = None


_PROTOCOLS = ("HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "MONGO", "TCP", "TLS")


@register(plural="gateways", short_names=("gw",), key=f"Gateway.{GROUP}")
class IstioGateway(CheckedKind):
    SERVED_VERSIONS: ClassVar[tuple[str, ...]] = _SERVED
    api_version: _VERSIONS = Field("networking.istio.io/v1", alias="apiVersion")
    kind: Literal["Gateway"] = "Gateway"
    spec: GatewaySpec
    status: FrozenJSON | None = None

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        if not self.spec.servers:
            errors.append((("spec", "servers"), "Required value: gateway must have at "
                           "least one server"))
        for i, s in enumerate(self.spec.servers or ()):
            if not s.hosts:
                errors.append((("spec", "servers", i, "hosts"),
                               "Required value: server config must contain at least one host"))
            if s.port.protocol.upper() not in _PROTOCOLS:
                errors.append((("spec", "servers", i, "port", "protocol"),
                               unsupported(s.port.protocol, _PROTOCOLS)))
            if not 0 < s.port.number < 65536:
                errors.append((("spec", "servers", i, "port", "number"),
                               f"Invalid value: {s.port.number}: port number "
                               f"{s.port.number} must be in the range 1..65535"))
        return errors


# -- ServiceEntry ------------------------------------------------------------------------

class ServicePort(Model):
    number: int
    protocol: str | None = None
    name: str
    target_port: int | None = None


class WorkloadEntrySpec(Model):
    address: str | None = None
    ports: FrozenDict[str, int] | None = None
    labels: FrozenDict[str, str] | None = None
    network: str | None = None
    locality: str | None = None
    weight: int | None = None
    service_account: str | None = None


class ServiceEntrySpec(Model):
    hosts: tuple[str, ...]
    addresses: tuple[str, ...] | None = None
    ports: tuple[ServicePort, ...] | None = None
    location: str | None = None
    resolution: str | None = None
    endpoints: tuple[WorkloadEntrySpec, ...] | None = None
    workload_selector: WorkloadSelector | None = None
    export_to: tuple[str, ...] | None = None
    subject_alt_names: tuple[str, ...] | None = None


_LOCATIONS = ("MESH_EXTERNAL", "MESH_INTERNAL")
_RESOLUTIONS = ("NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN")


@register(plural="serviceentries", short_names=("se",))
class ServiceEntry(CheckedKind):
    SERVED_VERSIONS: ClassVar[tuple[str, ...]] = _SERVED
    api_version: _VERSIONS = Field("networking.istio.io/v1", alias="apiVersion")
    kind: Literal["ServiceEntry"] = "ServiceEntry"
    spec: ServiceEntrySpec
    status: FrozenJSON | None = None

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        spec = self.spec
        if not spec.hosts:
            errors.append((("spec", "hosts"), "Required value: ServiceEntry must have at "
                           "least one host"))
        if spec.location is not None and spec.location not in _LOCATIONS:
            errors.append((("spec", "location"), unsupported(spec.location, _LOCATIONS)))
        if spec.resolution is not None and spec.resolution not in _RESOLUTIONS:
            errors.append((("spec", "resolution"),
                           unsupported(spec.resolution, _RESOLUTIONS)))
        if spec.resolution == "NONE" and spec.endpoints:
            errors.append((("spec", "endpoints"), "Invalid value: no endpoints should be "
                           "provided for resolution type none"))
        if spec.resolution == "STATIC" and not spec.endpoints and \
                spec.workload_selector is None:
            errors.append((("spec", "endpoints"), "Required value: endpoints must be "
                           "provided if service entry resolution mode is static"))
        seen: set[int] = set()
        for i, p in enumerate(spec.ports or ()):
            if p.number in seen:
                errors.append((("spec", "ports", i, "number"),
                               f"Duplicate value: {p.number}"))
            seen.add(p.number)
        return errors
