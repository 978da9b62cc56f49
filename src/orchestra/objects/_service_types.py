"""core/v1 Service and Endpoints parts (the kinds themselves are in ``_core``): ports,
session affinity, the ServiceSpec, load balancer status, and endpoint subsets.

The Service defaults of Kubernetes' API server (``SetDefaults_Service``) are applied at
validation: ``targetPort`` from ``port``, protocol TCP, traffic policies, the ClientIP
affinity timeout. Values the system allocates (``clusterIP``, ``nodePort``) stay ``None``
until the store sets them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from orchestra.objects._core_shared import ObjectReference, check_unique_names
from orchestra.objects._field_errors import fail
from orchestra.objects._messages import port_number_error, unsupported
from orchestra.objects._model import FrozenDict, Model
from orchestra.objects._scalars import IntOrString, Time

# ---------------------------------------------------------------------------
# Service


class ServicePort(Model):
    """One service port; ``targetPort`` defaults to ``port``, ``protocol`` to TCP."""

    name: str | None = None
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    app_protocol: str | None = None
    port: int
    target_port: IntOrString | None = None
    node_port: int | None = None

    @field_validator("port", "node_port")
    @classmethod
    def _check_port(cls, v: int | None) -> int | None:
        if v is not None:
            err = port_number_error(v)
            if err:
                raise ValueError(err)
        return v

    @field_validator("target_port")
    @classmethod
    def _check_target_port(cls, v: int | str | None) -> int | str | None:
        if isinstance(v, int):
            err = port_number_error(v)
            if err:
                raise ValueError(err)
        return v

    @model_validator(mode="after")
    def _default_target_port(self) -> ServicePort:
        d = self.__dict__
        if d["target_port"] is None:
            d["target_port"] = d["port"]
        return self


class ClientIPConfig(Model):
    timeout_seconds: int | None = None


class SessionAffinityConfig(Model):
    client_ip: ClientIPConfig | None = Field(None, alias="clientIP")


_DEFAULT_AFFINITY_CONFIG = SessionAffinityConfig.model_validate(
    {"clientIP": {"timeoutSeconds": 10800}}
)
_SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")


class ServiceSpec(Model):
    ports: tuple[ServicePort, ...] | None = None
    selector: FrozenDict[str, str] | None = None
    cluster_ip: str | None = Field(None, alias="clusterIP")
    cluster_ips: tuple[str, ...] | None = Field(None, alias="clusterIPs")
    type: str = "ClusterIP"
    external_ips: tuple[str, ...] | None = Field(None, alias="externalIPs")
    session_affinity: Literal["None", "ClientIP"] = "None"
    load_balancer_ip: str | None = Field(None, alias="loadBalancerIP")
    load_balancer_source_ranges: tuple[str, ...] | None = None
    external_name: str | None = None
    external_traffic_policy: Literal["Cluster", "Local"] | None = None
    health_check_node_port: int | None = None
    publish_not_ready_addresses: bool | None = None
    session_affinity_config: SessionAffinityConfig | None = None
    ip_families: tuple[str, ...] | None = None
    ip_family_policy: Literal["SingleStack", "PreferDualStack", "RequireDualStack"] | None = None
    allocate_load_balancer_node_ports: bool | None = None
    load_balancer_class: str | None = None
    internal_traffic_policy: Literal["Cluster", "Local"] | None = None
    traffic_distribution: str | None = None

    @field_validator("type")
    @classmethod
    def _check_type(cls, v: str) -> str:
        if v not in _SERVICE_TYPES:
            raise ValueError(unsupported(v, sorted(_SERVICE_TYPES)))
        return v

    @field_validator("ports")
    @classmethod
    def _check_ports(cls, v: tuple[ServicePort, ...] | None) -> tuple[ServicePort, ...] | None:
        if v and len(v) > 1:
            missing = [((i, "name"), "Required value") for i, p in enumerate(v) if not p.name]
            if missing:
                fail(missing)
            check_unique_names(v)
        return v

    @model_validator(mode="after")
    def _defaults(self) -> ServiceSpec:
        # SetDefaults_Service, plus the required-ports and externalName rules of validation.
        d = self.__dict__
        kind = d["type"]
        if kind == "ExternalName":
            if not d["external_name"]:
                fail([(("externalName",), "Required value")])
        else:
            if not d["ports"] and d["cluster_ip"] != "None":
                fail([(("ports",), "Required value")])
            if d["internal_traffic_policy"] is None:
                d["internal_traffic_policy"] = "Cluster"
        if kind in ("NodePort", "LoadBalancer") and d["external_traffic_policy"] is None:
            d["external_traffic_policy"] = "Cluster"
        if kind == "LoadBalancer" and d["allocate_load_balancer_node_ports"] is None:
            d["allocate_load_balancer_node_ports"] = True
        if d["session_affinity"] == "ClientIP":
            cfg = d["session_affinity_config"]
            if cfg is None or cfg.client_ip is None or cfg.client_ip.timeout_seconds is None:
                d["session_affinity_config"] = _DEFAULT_AFFINITY_CONFIG
        return self

    @property
    def is_headless(self) -> bool:
        return self.cluster_ip == "None"


class PortStatus(Model):
    port: int
    protocol: str
    error: str | None = None


class LoadBalancerIngress(Model):
    ip: str | None = None
    hostname: str | None = None
    ip_mode: str | None = None
    ports: tuple[PortStatus, ...] | None = None


class LoadBalancerStatus(Model):
    ingress: tuple[LoadBalancerIngress, ...] | None = None


class ServiceCondition(Model):
    type: str
    status: str
    observed_generation: int | None = None
    last_transition_time: Time
    reason: str
    message: str


class ServiceStatus(Model):
    load_balancer: LoadBalancerStatus | None = None
    conditions: tuple[ServiceCondition, ...] | None = None


# ---------------------------------------------------------------------------
# Endpoints


class EndpointAddress(Model):
    ip: str
    hostname: str | None = None
    node_name: str | None = None
    target_ref: ObjectReference | None = None


class EndpointPort(Model):
    name: str | None = None
    port: int
    protocol: str = "TCP"
    app_protocol: str | None = None


class EndpointSubset(Model):
    addresses: tuple[EndpointAddress, ...] | None = None
    not_ready_addresses: tuple[EndpointAddress, ...] | None = None
    ports: tuple[EndpointPort, ...] | None = None
