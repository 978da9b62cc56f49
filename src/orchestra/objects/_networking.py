"""networking.k8s.io/v1: Ingress and IngressClass.

Validated as the API server validates them: each path has a ``pathType``; Exact and
Prefix paths are absolute; a backend is a service (with a port name *or* number) or a
resource, never both; hosts are DNS names (``*.`` wildcards allowed), not IP addresses.
Kubernetes sets no defaults on an Ingress.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field

from orchestra.objects._apps import Checked, CheckedKind, ErrorList, Loc, invalid, unsupported
from orchestra.objects._base import register
from orchestra.objects._messages import port_number_error
from orchestra.objects._names import dns1035_label_error, dns1123_subdomain_error
from orchestra.objects._pod import TypedLocalObjectReference

_WILDCARD = re.compile(r"^\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_WILDCARD_MSG = (
    "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, "
    "which must consist of lower case alphanumeric characters, '-' or '.' and end with an "
    "alphanumeric character (e.g. '*.example.com', regex used for validation is "
    "'\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
_BAD_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
_BAD_PATH_SUFFIXES = ("/..", "/.")


def host_errors(host: str, loc: Loc, *, ip_allowed: bool = False) -> ErrorList:
    """A rule or TLS host: a DNS subdomain, or ``*.`` and one."""
    errors: ErrorList = []
    if not ip_allowed:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            errors.append((loc, invalid(host, "must be a DNS name, not an IP address")))
    if "*" in host:
        if len(host) > 253:
            errors.append((loc, invalid(host, "must be no more than 253 characters")))
        if not _WILDCARD.match(host):
            errors.append((loc, invalid(host, _WILDCARD_MSG)))
    else:
        err = dns1123_subdomain_error(host)
        if err:
            errors.append((loc, invalid(host, err)))
    return errors


def port_name_errors(name: str) -> list[str]:
    """Kubernetes' ``IsValidPortName`` (an IANA service name)."""
    msgs = []
    if len(name) > 15:
        msgs.append("must be no more than 15 characters")
    if not re.fullmatch(r"[-a-z0-9]+", name):
        msgs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search(r"[a-z]", name):
        msgs.append("must contain at least one letter (a-z)")
    if "--" in name:
        msgs.append("must not contain consecutive hyphens")
    if name.startswith("-") or name.endswith("-"):
        msgs.append("must not begin or end with a hyphen")
    return msgs


class ServiceBackendPort(Checked):
    name: str | None = None
    number: int | None = None


class IngressServiceBackend(Checked):
    name: str
    port: ServiceBackendPort | None = None


class IngressBackend(Checked):
    service: IngressServiceBackend | None = None
    resource: TypedLocalObjectReference | None = None

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        if self.service is not None and self.resource is not None:
            errors.append(((), invalid("", "cannot set both resource and service backends")))
        elif self.resource is not None:
            if not self.resource.kind:
                errors.append((("resource", "kind"), "Required value"))
            if not self.resource.name:
                errors.append((("resource", "name"), "Required value"))
        elif self.service is not None:
            svc = self.service
            if not svc.name:
                errors.append((("service", "name"), "Required value"))
            else:
                err = dns1035_label_error(svc.name)
                if err:
                    errors.append((("service", "name"), invalid(svc.name, err)))
            port = svc.port or ServiceBackendPort()
            if port.name and port.number:
                errors.append(((), invalid("", "cannot set both port name & port number")))
            elif port.name:
                for msg in port_name_errors(port.name):
                    errors.append((("service", "port", "name"), invalid(port.name, msg)))
            elif port.number:
                err = port_number_error(port.number)
                if err:
                    errors.append((("service", "port", "number"), err))
            else:
                errors.append(((), "Required value: port name or number is required"))
        else:
            errors.append(((), invalid("", "resource or service backend is required")))
        return errors


class HTTPIngressPath(Checked):
    path: str | None = None
    path_type: str | None = None
    backend: IngressBackend

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        path = self.path or ""
        if self.path_type is None:
            errors.append((("pathType",), "Required value: pathType must be specified"))
        elif self.path_type in ("Exact", "Prefix"):
            if not path.startswith("/"):
                errors.append((("path",), invalid(path, "must be an absolute path")))
            for seq in _BAD_PATH_SEQUENCES:
                if seq in path:
                    errors.append((("path",), invalid(path, f"must not contain '{seq}'")))
            for suffix in _BAD_PATH_SUFFIXES:
                if path.endswith(suffix):
                    errors.append((("path",), invalid(path, f"cannot end with '{suffix}'")))
        elif self.path_type == "ImplementationSpecific":
            if path and not path.startswith("/"):
                errors.append((("path",), invalid(path, "must be an absolute path")))
        else:
            errors.append((("pathType",), unsupported(self.path_type, _PATH_TYPES)))
        return errors


class HTTPIngressRuleValue(Checked):
    paths: tuple[HTTPIngressPath, ...]

    def field_errors(self) -> ErrorList:
        return [(("paths",), "Required value")] if not self.paths else []


class IngressRule(Checked):
    host: str | None = None
    http: HTTPIngressRuleValue | None = None

    def field_errors(self) -> ErrorList:
        return host_errors(self.host, ("host",)) if self.host else []


class IngressTLS(Checked):
    hosts: tuple[str, ...] | None = None
    secret_name: str | None = None

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        for i, host in enumerate(self.hosts or ()):
            errors += host_errors(host, ("hosts", i), ip_allowed=True)
        if self.secret_name:
            err = dns1123_subdomain_error(self.secret_name)
            if err:
                errors.append((("secretName",), invalid(self.secret_name, err)))
        return errors


class IngressSpec(Checked):
    ingress_class_name: str | None = None
    default_backend: IngressBackend | None = None
    tls: tuple[IngressTLS, ...] | None = None
    rules: tuple[IngressRule, ...] | None = None

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        if not self.rules and self.default_backend is None:
            errors.append(((), invalid(
                None if self.rules is None else [],
                "either `defaultBackend` or `rules` must be specified")))
        if self.ingress_class_name is not None:
            err = dns1123_subdomain_error(self.ingress_class_name)
            if err:
                errors.append((("ingressClassName",), invalid(self.ingress_class_name, err)))
        return errors


class IngressPortStatus(Checked):
    port: int
    protocol: str
    error: str | None = None


class IngressLoadBalancerIngress(Checked):
    ip: str | None = None
    hostname: str | None = None
    ports: tuple[IngressPortStatus, ...] | None = None


class IngressLoadBalancerStatus(Checked):
    ingress: tuple[IngressLoadBalancerIngress, ...] | None = None


class IngressStatus(Checked):
    load_balancer: IngressLoadBalancerStatus | None = None


@register(plural="ingresses", short_names=("ing",), namespaced=True)
class Ingress(CheckedKind):
    api_version: Literal["networking.k8s.io/v1"] = Field(
        "networking.k8s.io/v1", alias="apiVersion"
    )
    kind: Literal["Ingress"] = "Ingress"
    spec: IngressSpec
    status: IngressStatus | None = None


# ---------------------------------------------------------------------------
# IngressClass


class IngressClassParametersReference(Checked):
    api_group: str | None = None
    kind: str
    name: str
    namespace: str | None = None
    scope: str | None = None

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        if self.scope is not None and self.scope not in ("Cluster", "Namespace"):
            errors.append((("scope",), unsupported(self.scope, ["Cluster", "Namespace"])))
        if self.scope == "Namespace" and not self.namespace:
            errors.append((("namespace",),
                           "Required value: `parameters.scope` is set to 'Namespace'"))
        if self.scope == "Cluster" and self.namespace:
            errors.append((("namespace",),
                           "Forbidden: `parameters.scope` is set to 'Cluster'"))
        return errors


class IngressClassSpec(Checked):
    controller: str
    parameters: IngressClassParametersReference | None = None

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        host, slash, rest = self.controller.partition("/")
        if not self.controller:
            errors.append((("controller",), "Required value"))
        elif len(self.controller) > 250:
            errors.append((("controller",), "Too long: may not be more than 250 bytes"))
        elif not slash or not host or not rest:
            errors.append((("controller",), invalid(
                self.controller, 'must be a domain-prefixed path (such as "acme.io/foo")')))
        else:
            err = dns1123_subdomain_error(host)
            if err:
                errors.append((("controller",), invalid(host, err)))
            if not re.fullmatch(r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+", rest):
                errors.append((("controller",), invalid(
                    rest, "Invalid path: must consist of the characters "
                          "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]")))
        return errors


@register(plural="ingressclasses", namespaced=False)
class IngressClass(CheckedKind):
    api_version: Literal["networking.k8s.io/v1"] = Field(
        "networking.k8s.io/v1", alias="apiVersion"
    )
    kind: Literal["IngressClass"] = "IngressClass"
    spec: IngressClassSpec


DEFAULT_INGRESS_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
"""An IngressClass with this annotation ``"true"`` is given to Ingresses without a class."""


__all__ = [
    "DEFAULT_INGRESS_CLASS_ANNOTATION",
    "HTTPIngressPath",
    "HTTPIngressRuleValue",
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
    "ServiceBackendPort",
]
