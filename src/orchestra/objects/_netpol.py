"""networking.k8s.io/v1 NetworkPolicy.

Defaulted and validated as the API server does: a port's protocol defaults to TCP;
``policyTypes`` defaults to ``[Ingress]``, plus ``Egress`` when egress rules are given;
ports are numbers (with an optional ``endPort`` not below them) or IANA names; a peer
is a podSelector and/or namespaceSelector, or an ipBlock alone, whose ``except``
entries are strict subsets of its ``cidr``.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, model_validator

from orchestra.objects._base import register
from orchestra.objects._checks import (
    Checked,
    CheckedKind,
    ErrorList,
    label_selector_errors,
)
from orchestra.objects._messages import invalid, port_number_error, unsupported
from orchestra.objects._meta import LabelSelector
from orchestra.objects._networking import port_name_errors
from orchestra.objects._scalars import IntOrString

__all__ = ["IPBlock", "NetworkPolicy", "NetworkPolicyEgressRule",
           "NetworkPolicyIngressRule", "NetworkPolicyPeer", "NetworkPolicyPort",
           "NetworkPolicySpec"]

_CIDR_MSG = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"


def _cidr(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


class IPBlock(Checked):
    cidr: str = ""
    except_: tuple[str, ...] | None = Field(None, alias="except")

    def field_errors(self) -> ErrorList:
        if not self.cidr:
            return [(("cidr",), "Required value")]
        net = _cidr(self.cidr)
        if net is None or "/" not in self.cidr:
            return [(("cidr",), invalid(self.cidr, _CIDR_MSG))]
        errors: ErrorList = []
        for i, text in enumerate(self.except_ or ()):
            sub = _cidr(text) if "/" in text else None
            if sub is None:
                errors.append((("except", i), invalid(text, _CIDR_MSG)))
                continue
            if sub.version != net.version or sub.network_address not in net or \
                    net.prefixlen >= sub.prefixlen:
                errors.append((("except", i), invalid(text, "must be a strict subset of "
                                                            "`cidr`")))
        return errors


class NetworkPolicyPort(Checked):
    protocol: str = "TCP"
    port: IntOrString | None = None
    end_port: int | None = None

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        if self.protocol not in ("TCP", "UDP", "SCTP"):
            errors.append((("protocol",), unsupported(self.protocol, ("SCTP", "TCP", "UDP"))))
        if isinstance(self.port, int):
            err = port_number_error(self.port)
            if err:
                errors.append((("port",), err))
            if self.end_port is not None:
                if self.end_port < self.port:
                    errors.append((("endPort",), invalid(
                        self.port, "must be greater than or equal to `port`")))
                err = port_number_error(self.end_port)
                if err:
                    errors.append((("endPort",), err))
        elif self.port is not None:
            if self.end_port is not None:
                errors.append((("endPort",), invalid(
                    self.end_port, "may not be specified when `port` is non-numeric")))
            for msg in port_name_errors(self.port):
                errors.append((("port",), invalid(self.port, msg)))
        elif self.end_port is not None:
            errors.append((("endPort",), invalid(
                self.end_port, "may not be specified when `port` is not specified")))
        return errors


class NetworkPolicyPeer(Checked):
    pod_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    ip_block: IPBlock | None = None

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        count = 0
        for name, sel in (("podSelector", self.pod_selector),
                          ("namespaceSelector", self.namespace_selector)):
            if sel is not None:
                count += 1
                errors += label_selector_errors(sel, (name,))
        if self.ip_block is not None:
            count += 1
        if count == 0:
            errors.append(((), "Required value: must specify a peer"))
        elif count > 1 and self.ip_block is not None:
            errors.append(((), "Forbidden: may not specify both ipBlock and another peer"))
        return errors


class NetworkPolicyIngressRule(Checked):
    ports: tuple[NetworkPolicyPort, ...] | None = None
    from_: tuple[NetworkPolicyPeer, ...] | None = Field(None, alias="from")


class NetworkPolicyEgressRule(Checked):
    ports: tuple[NetworkPolicyPort, ...] | None = None
    to: tuple[NetworkPolicyPeer, ...] | None = None


class NetworkPolicySpec(Checked):
    pod_selector: LabelSelector = Field(default_factory=LabelSelector)
    ingress: tuple[NetworkPolicyIngressRule, ...] | None = None
    egress: tuple[NetworkPolicyEgressRule, ...] | None = None
    policy_types: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _default_policy_types(self) -> NetworkPolicySpec:
        # SetDefaults_NetworkPolicy: no policyTypes means Ingress, and Egress too when
        # the policy has egress rules.
        if not self.policy_types:
            self.__dict__["policy_types"] = ("Ingress", "Egress") if self.egress \
                else ("Ingress",)
        return self

    def field_errors(self) -> ErrorList:
        errors: ErrorList = label_selector_errors(self.pod_selector, ("podSelector",))
        types = self.policy_types or ()
        if len(types) > 2:
            return [*errors, (("policyTypes",), invalid(
                list(types), "may not specify more than two policyTypes"))]
        for i, t in enumerate(types):
            if t not in ("Ingress", "Egress"):
                errors.append((("policyTypes", i), unsupported(t, ("Ingress", "Egress"))))
        return errors


@register(plural="networkpolicies", short_names=("netpol",), namespaced=True)
class NetworkPolicy(CheckedKind):
    api_version: Literal["networking.k8s.io/v1"] = Field(
        "networking.k8s.io/v1", alias="apiVersion"
    )
    kind: Literal["NetworkPolicy"] = "NetworkPolicy"
    spec: NetworkPolicySpec = Field(default_factory=NetworkPolicySpec)

