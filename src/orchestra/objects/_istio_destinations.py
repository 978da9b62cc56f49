"""networking.istio.io's DestinationRule (a destination's subsets and traffic policy),
ServiceEntry (destinations outside the cluster's registry) and Gateway (the mesh's
edge), validated as Istio's webhook does (see ``_istio``)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from orchestra.objects._apps import FrozenJSON
from orchestra.objects._base import register
from orchestra.objects._checks import CheckedKind, ErrorList, unsupported
from orchestra.objects._istio import GROUP, SERVED, VERSIONS, PortSelector, check_duration
from orchestra.objects._model import FrozenDict, Model

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
        check_duration(errors, (*loc, "outlierDetection", "interval"), od.interval)
        check_duration(errors, (*loc, "outlierDetection", "baseEjectionTime"),
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
    SERVED_VERSIONS: ClassVar[tuple[str, ...]] = SERVED
    api_version: VERSIONS = Field("networking.istio.io/v1", alias="apiVersion")
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
    SERVED_VERSIONS: ClassVar[tuple[str, ...]] = SERVED
    api_version: VERSIONS = Field("networking.istio.io/v1", alias="apiVersion")
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
    SERVED_VERSIONS: ClassVar[tuple[str, ...]] = SERVED
    api_version: VERSIONS = Field("networking.istio.io/v1", alias="apiVersion")
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
