"""networking.istio.io: Gateway, VirtualService, DestinationRule, ServiceEntry (v1, also
v1beta1 and v1alpha3, as Istio serves them).

The fields are Istio's (``networking/v1alpha3`` protos, the same in every served
version). Parts the built-in controller does not act on (CORS policies, TLS settings,
locality load balancing, ...) are kept as opaque JSON so that Istio's own samples load
unchanged. Validation follows Istio's webhook for what it rejects outright (no hosts,
negative weights, unknown enum values, malformed durations, duplicate subsets).
Istio's Gateway shares its kind name with the Gateway API's: it is keyed
``Gateway.networking.istio.io`` and named ``gateways.networking.istio.io/NAME``.

This module holds what the kinds share and VirtualService; DestinationRule, Gateway and
ServiceEntry are ``_istio_destinations``'.
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field

from orchestra.objects._apps import FrozenJSON
from orchestra.objects._base import register
from orchestra.objects._checks import CheckedKind, ErrorList
from orchestra.objects._model import FrozenDict, Model

GROUP = "networking.istio.io"
VERSIONS = Literal["networking.istio.io/v1", "networking.istio.io/v1beta1",
                   "networking.istio.io/v1alpha3"]
SERVED: tuple[str, ...] = ("networking.istio.io/v1", "networking.istio.io/v1beta1",
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


def check_duration(errors: ErrorList, loc: tuple[str | int, ...], text: str | None) -> None:
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
    SERVED_VERSIONS: ClassVar[tuple[str, ...]] = SERVED
    api_version: VERSIONS = Field("networking.istio.io/v1", alias="apiVersion")
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
            check_duration(errors, (*loc, "timeout"), r.timeout)
            if r.retries is not None:
                check_duration(errors, (*loc, "retries", "perTryTimeout"),
                               r.retries.per_try_timeout)
                if r.retries.attempts is not None and r.retries.attempts < 0:
                    errors.append(((*loc, "retries", "attempts"),
                                   "Invalid value: attempts cannot be negative"))
            if r.fault is not None:
                if r.fault.delay is not None:
                    check_duration(errors, (*loc, "fault", "delay", "fixedDelay"),
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
