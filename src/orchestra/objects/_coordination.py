"""coordination.k8s.io/v1 Lease: node heartbeats live here, as in Kubernetes, so that
a heartbeat is one small write instead of a Node status update."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from orchestra.objects._base import KubeObject, register
from orchestra.objects._model import Model
from orchestra.objects._scalars import Time


class LeaseSpec(Model):
    acquire_time: Time | None = None
    holder_identity: str | None = None
    lease_duration_seconds: int | None = None
    lease_transitions: int | None = None
    renew_time: Time | None = None
    preferred_holder: str | None = None
    strategy: str | None = None


@register(plural="leases", short_names=(), namespaced=True)
class Lease(KubeObject):
    api_version: Literal["coordination.k8s.io/v1"] = Field(
        "coordination.k8s.io/v1", alias="apiVersion")
    kind: Literal["Lease"] = "Lease"
    spec: LeaseSpec = Field(default_factory=LeaseSpec)
