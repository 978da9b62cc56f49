"""gateway.networking.k8s.io: GatewayClass, Gateway, HTTPRoute (v1, also v1beta1) and
ReferenceGrant (v1beta1).

The fields are the Gateway API's (standard channel); the CRDs' defaults are applied by
the controller when it reads an object (a match without a path is ``PathPrefix /``, a
backendRef's weight is 1, a listener's routes come from its own namespace), so stored
objects keep exactly what the user wrote, as with a CRD without defaulting webhooks.
Named kubectl's way: ``gateways.gateway.networking.k8s.io/NAME``, ``httproute/NAME``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from orchestra.objects._base import KubeObject, register
from orchestra.objects._checks import ConditionBase
from orchestra.objects._meta import LabelSelector
from orchestra.objects._model import FrozenDict, Model

_V1 = Literal["gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1"]
GROUP = "gateway.networking.k8s.io"


class Condition(ConditionBase):
    observed_generation: int | None = None


# -- GatewayClass ------------------------------------------------------------------------

class ParametersReference(Model):
    group: str
    kind: str
    name: str
    namespace: str | None = None


class GatewayClassSpec(Model):
    controller_name: str
    parameters_ref: ParametersReference | None = None
    description: str | None = None


class SupportedFeature(Model):
    name: str


class GatewayClassStatus(Model):
    conditions: tuple[Condition, ...] | None = None
    supported_features: tuple[SupportedFeature, ...] | None = None


@register(plural="gatewayclasses", short_names=("gc",), namespaced=False)
class GatewayClass(KubeObject):
    api_version: _V1 = Field("gateway.networking.k8s.io/v1", alias="apiVersion")
    kind: Literal["GatewayClass"] = "GatewayClass"
    spec: GatewayClassSpec
    status: GatewayClassStatus | None = None


# -- Gateway -----------------------------------------------------------------------------

class SecretObjectReference(Model):
    group: str | None = None
    kind: str | None = None
    name: str
    namespace: str | None = None


class GatewayTLSConfig(Model):
    mode: str | None = None
    certificate_refs: tuple[SecretObjectReference, ...] | None = None
    options: FrozenDict[str, str] | None = None


class RouteNamespaces(Model):
    from_: str | None = Field(None, alias="from")
    selector: LabelSelector | None = None


class RouteGroupKind(Model):
    group: str | None = None
    kind: str


class AllowedRoutes(Model):
    namespaces: RouteNamespaces | None = None
    kinds: tuple[RouteGroupKind, ...] | None = None


class Listener(Model):
    name: str
    hostname: str | None = None
    port: int
    protocol: str
    tls: GatewayTLSConfig | None = None
    allowed_routes: AllowedRoutes | None = None


class GatewayAddress(Model):
    type: str | None = None
    value: str


class GatewayInfrastructure(Model):
    labels: FrozenDict[str, str] | None = None
    annotations: FrozenDict[str, str] | None = None
    parameters_ref: ParametersReference | None = None


class GatewaySpec(Model):
    gateway_class_name: str
    listeners: tuple[Listener, ...]
    addresses: tuple[GatewayAddress, ...] | None = None
    infrastructure: GatewayInfrastructure | None = None


class ListenerStatus(Model):
    name: str
    supported_kinds: tuple[RouteGroupKind, ...]
    attached_routes: int
    conditions: tuple[Condition, ...]


class GatewayStatus(Model):
    addresses: tuple[GatewayAddress, ...] | None = None
    conditions: tuple[Condition, ...] | None = None
    listeners: tuple[ListenerStatus, ...] | None = None


@register(plural="gateways", short_names=("gtw",))
class Gateway(KubeObject):
    api_version: _V1 = Field("gateway.networking.k8s.io/v1", alias="apiVersion")
    kind: Literal["Gateway"] = "Gateway"
    spec: GatewaySpec
    status: GatewayStatus | None = None


# -- HTTPRoute ---------------------------------------------------------------------------

class ParentReference(Model):
    group: str | None = None
    kind: str | None = None
    namespace: str | None = None
    name: str
    section_name: str | None = None
    port: int | None = None


class HTTPPathMatch(Model):
    type: str | None = None
    value: str | None = None


class HTTPHeaderMatch(Model):
    type: str | None = None
    name: str
    value: str


class HTTPQueryParamMatch(Model):
    type: str | None = None
    name: str
    value: str


class HTTPRouteMatch(Model):
    path: HTTPPathMatch | None = None
    headers: tuple[HTTPHeaderMatch, ...] | None = None
    query_params: tuple[HTTPQueryParamMatch, ...] | None = None
    method: str | None = None


class HTTPHeader(Model):
    name: str
    value: str


class HTTPHeaderFilter(Model):
    set: tuple[HTTPHeader, ...] | None = None
    add: tuple[HTTPHeader, ...] | None = None
    remove: tuple[str, ...] | None = None


class HTTPPathModifier(Model):
    type: str
    replace_full_path: str | None = None
    replace_prefix_match: str | None = None


class HTTPRequestRedirectFilter(Model):
    scheme: str | None = None
    hostname: str | None = None
    path: HTTPPathModifier | None = None
    port: int | None = None
    status_code: int | None = None


class HTTPURLRewriteFilter(Model):
    hostname: str | None = None
    path: HTTPPathModifier | None = None


class BackendObjectReference(Model):
    group: str | None = None
    kind: str | None = None
    name: str
    namespace: str | None = None
    port: int | None = None


class Fraction(Model):
    numerator: int
    denominator: int | None = None


class HTTPRequestMirrorFilter(Model):
    backend_ref: BackendObjectReference
    percent: int | None = None
    fraction: Fraction | None = None


class LocalObjectReference(Model):
    group: str
    kind: str
    name: str


class HTTPRouteFilter(Model):
    type: str
    request_header_modifier: HTTPHeaderFilter | None = None
    response_header_modifier: HTTPHeaderFilter | None = None
    request_redirect: HTTPRequestRedirectFilter | None = None
    url_rewrite: HTTPURLRewriteFilter | None = None
    request_mirror: HTTPRequestMirrorFilter | None = None
    extension_ref: LocalObjectReference | None = None


class HTTPBackendRef(Model):
    group: str | None = None
    kind: str | None = None
    name: str
    namespace: str | None = None
    port: int | None = None
    weight: int | None = None
    filters: tuple[HTTPRouteFilter, ...] | None = None


class HTTPRouteTimeouts(Model):
    request: str | None = None
    backend_request: str | None = None


class HTTPRouteRetry(Model):
    codes: tuple[int, ...] | None = None
    attempts: int | None = None
    backoff: str | None = None


class HTTPRouteRule(Model):
    name: str | None = None
    matches: tuple[HTTPRouteMatch, ...] | None = None
    filters: tuple[HTTPRouteFilter, ...] | None = None
    backend_refs: tuple[HTTPBackendRef, ...] | None = None
    timeouts: HTTPRouteTimeouts | None = None
    retry: HTTPRouteRetry | None = None


class HTTPRouteSpec(Model):
    parent_refs: tuple[ParentReference, ...] | None = None
    hostnames: tuple[str, ...] | None = None
    rules: tuple[HTTPRouteRule, ...] | None = None


class RouteParentStatus(Model):
    parent_ref: ParentReference
    controller_name: str
    conditions: tuple[Condition, ...]


class HTTPRouteStatus(Model):
    parents: tuple[RouteParentStatus, ...] = ()


@register(plural="httproutes")
class HTTPRoute(KubeObject):
    api_version: _V1 = Field("gateway.networking.k8s.io/v1", alias="apiVersion")
    kind: Literal["HTTPRoute"] = "HTTPRoute"
    spec: HTTPRouteSpec
    status: HTTPRouteStatus | None = None


# -- ReferenceGrant ----------------------------------------------------------------------

class ReferenceGrantFrom(Model):
    group: str
    kind: str
    namespace: str


class ReferenceGrantTo(Model):
    group: str
    kind: str
    name: str | None = None


class ReferenceGrantSpec(Model):
    from_: tuple[ReferenceGrantFrom, ...] = Field(alias="from")
    to: tuple[ReferenceGrantTo, ...]


@register(plural="referencegrants", short_names=("refgrant",))
class ReferenceGrant(KubeObject):
    api_version: Literal["gateway.networking.k8s.io/v1beta1",
                         "gateway.networking.k8s.io/v1"] = Field(
        "gateway.networking.k8s.io/v1beta1", alias="apiVersion")
    kind: Literal["ReferenceGrant"] = "ReferenceGrant"
    spec: ReferenceGrantSpec


__all__ = [
    "GROUP",
    "Gateway",
    "GatewayClass",
    "HTTPRoute",
    "ReferenceGrant",
]
