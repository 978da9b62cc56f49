"""The public names of the traffic kinds (Ingress and IngressClass, NetworkPolicy, the
Gateway API, Istio's networking kinds), re-exported by :mod:`orchestra.objects`."""

from orchestra.objects._gateway import (
    Gateway,
    GatewayClass,
    HTTPRoute,
    ReferenceGrant,
)
from orchestra.objects._istio import VirtualService
from orchestra.objects._istio_destinations import DestinationRule, IstioGateway, ServiceEntry
from orchestra.objects._netpol import (
    IPBlock,
    NetworkPolicy,
    NetworkPolicyEgressRule,
    NetworkPolicyIngressRule,
    NetworkPolicyPeer,
    NetworkPolicyPort,
    NetworkPolicySpec,
)
from orchestra.objects._networking import (
    HTTPIngressPath,
    HTTPIngressRuleValue,
    Ingress,
    IngressBackend,
    IngressClass,
    IngressClassParametersReference,
    IngressClassSpec,
    IngressLoadBalancerIngress,
    IngressLoadBalancerStatus,
    IngressPortStatus,
    IngressRule,
    IngressServiceBackend,
    IngressSpec,
    IngressStatus,
    IngressTLS,
    ServiceBackendPort,
)

__all__ = [
    "DestinationRule",
    "Gateway",
    "GatewayClass",
    "HTTPIngressPath",
    "HTTPIngressRuleValue",
    "HTTPRoute",
    "IPBlock",
    "Ingress",
    "IngressBackend",
    "IngressClass",
    "IngressClassParametersReference",
    "IngressClassSpec",
    "IngressLoadBalancerIngress",
    "IngressLoadBalancerStatus",
    "IngressPortStatus",
    "IngressRule",
    "IngressServiceBackend",
    "IngressSpec",
    "IngressStatus",
    "IngressTLS",
    "IstioGateway",
    "NetworkPolicy",
    "NetworkPolicyEgressRule",
    "NetworkPolicyIngressRule",
    "NetworkPolicyPeer",
    "NetworkPolicyPort",
    "NetworkPolicySpec",
    "ReferenceGrant",
    "ServiceBackendPort",
    "ServiceEntry",
    "VirtualService",
]
