"""apps/v1 workload kinds: ReplicaSet, Deployment, DaemonSet, StatefulSet, and the
ControllerRevision their controllers record template history in.

The validation helpers the workload groups share (:class:`Checked`, Kubernetes' messages,
and :func:`resolve_int_or_percent`, which the controllers use to turn ``maxSurge: 25%``
into a pod count) live in ``_checks``, the update strategies in ``_strategies``; both are
re-exported here.

Invariants:

- Defaults are applied at validation, exactly where Kubernetes' API server applies them
  (``SetDefaults_Deployment`` and friends), so a stored object reads like
  ``kubectl get -o yaml``: ``replicas: 1``, ``strategy.rollingUpdate.maxSurge: 25%`` ...
- A semantic error (selector does not match the template labels, negative replicas, ...)
  is reported at the path Kubernetes names with Kubernetes' message. Nested models
  (:class:`Checked`) only *describe* their errors; the kind (:class:`CheckedKind`)
  collects and raises them all at once, so several errors in one object are reported
  together, as the API server does.
- ``null`` in a manifest means "not set", as it does to the API server.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from orchestra.objects._base import register

# The shared helpers stay importable from here (_policy, _autoscaling and
# _networking import them from _apps).
from orchestra.objects._checks import Checked as Checked
from orchestra.objects._checks import CheckedKind as CheckedKind
from orchestra.objects._checks import ConditionBase as ConditionBase
from orchestra.objects._checks import ErrorList as ErrorList
from orchestra.objects._checks import Loc as Loc
from orchestra.objects._checks import check as check
from orchestra.objects._checks import collect_errors as collect_errors
from orchestra.objects._checks import drop_nulls as drop_nulls
from orchestra.objects._checks import fill_defaults as fill_defaults
from orchestra.objects._checks import get_raw as get_raw
from orchestra.objects._checks import go_value as go_value
from orchestra.objects._checks import int_or_percent_value as int_or_percent_value
from orchestra.objects._checks import invalid as invalid
from orchestra.objects._checks import label_selector_errors as label_selector_errors
from orchestra.objects._checks import nonnegative as nonnegative
from orchestra.objects._checks import positive_int_or_percent as positive_int_or_percent
from orchestra.objects._checks import resolve_int_or_percent
from orchestra.objects._checks import selector_errors as selector_errors
from orchestra.objects._checks import selector_is_empty as selector_is_empty
from orchestra.objects._checks import selector_matches as selector_matches
from orchestra.objects._checks import template_errors as template_errors
from orchestra.objects._checks import unsupported as unsupported
from orchestra.objects._core import PersistentVolumeClaim
from orchestra.objects._meta import LabelSelector
from orchestra.objects._model import FrozenDict, json_object
from orchestra.objects._pod import Container, PodSpec, PodTemplateSpec, check_unique_names
from orchestra.objects._scalars import Time
from orchestra.objects._strategies import (
    DaemonSetUpdateStrategy,
    DeploymentStrategy,
    RollingUpdateDaemonSet,
    RollingUpdateDeployment,
    RollingUpdateStatefulSetStrategy,
    StatefulSetUpdateStrategy,
)

# ---------------------------------------------------------------------------
# ReplicaSet


class ReplicaSetCondition(ConditionBase):
    pass


class ReplicaSetSpec(Checked):
    replicas: int = 1
    min_ready_seconds: int | None = None
    selector: LabelSelector
    template: PodTemplateSpec

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        nonnegative(errors, ("replicas",), self.replicas)
        nonnegative(errors, ("minReadySeconds",), self.min_ready_seconds)
        # Kubernetes really says "deployment" here.
        errors += selector_errors(self.selector, ("selector",), "deployment")
        errors += template_errors(self.template, self.selector, ("template",), "ReplicaSet")
        return errors


class ReplicaSetStatus(Checked):
    replicas: int = 0
    fully_labeled_replicas: int | None = None
    ready_replicas: int | None = None
    available_replicas: int | None = None
    terminating_replicas: int | None = None
    observed_generation: int | None = None
    conditions: tuple[ReplicaSetCondition, ...] | None = None


@register(plural="replicasets", short_names=("rs",), namespaced=True)
class ReplicaSet(CheckedKind):
    api_version: Literal["apps/v1"] = Field("apps/v1", alias="apiVersion")
    kind: Literal["ReplicaSet"] = "ReplicaSet"
    spec: ReplicaSetSpec
    status: ReplicaSetStatus | None = None


# ---------------------------------------------------------------------------
# Deployment


class DeploymentCondition(ConditionBase):
    last_update_time: Time | None = None


class DeploymentSpec(Checked):
    replicas: int = 1
    selector: LabelSelector
    template: PodTemplateSpec
    strategy: DeploymentStrategy = Field(default_factory=DeploymentStrategy)
    min_ready_seconds: int | None = None
    revision_history_limit: int = 10
    paused: bool | None = None
    progress_deadline_seconds: int = 600

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        nonnegative(errors, ("replicas",), self.replicas)
        errors += selector_errors(self.selector, ("selector",), "deployment")
        errors += template_errors(self.template, self.selector, ("template",), "Deployment")
        nonnegative(errors, ("minReadySeconds",), self.min_ready_seconds)
        nonnegative(errors, ("revisionHistoryLimit",), self.revision_history_limit)
        nonnegative(errors, ("progressDeadlineSeconds",), self.progress_deadline_seconds)
        if self.progress_deadline_seconds <= (self.min_ready_seconds or 0):
            errors.append((("progressDeadlineSeconds",),
                           invalid(self.progress_deadline_seconds,
                                   "must be greater than minReadySeconds")))
        return errors


class DeploymentStatus(Checked):
    observed_generation: int | None = None
    replicas: int | None = None
    updated_replicas: int | None = None
    ready_replicas: int | None = None
    available_replicas: int | None = None
    unavailable_replicas: int | None = None
    terminating_replicas: int | None = None
    conditions: tuple[DeploymentCondition, ...] | None = None
    collision_count: int | None = None


@register(plural="deployments", short_names=("deploy",), namespaced=True)
class Deployment(CheckedKind):
    api_version: Literal["apps/v1"] = Field("apps/v1", alias="apiVersion")
    kind: Literal["Deployment"] = "Deployment"
    spec: DeploymentSpec
    status: DeploymentStatus | None = None


# ---------------------------------------------------------------------------
# DaemonSet


class DaemonSetCondition(ConditionBase):
    pass


class DaemonSetSpec(Checked):
    selector: LabelSelector
    template: PodTemplateSpec
    update_strategy: DaemonSetUpdateStrategy = Field(default_factory=DaemonSetUpdateStrategy)
    min_ready_seconds: int | None = None
    revision_history_limit: int = 10

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        errors += selector_errors(self.selector, ("selector",), "daemonset")
        errors += template_errors(self.template, self.selector, ("template",), "DaemonSet")
        nonnegative(errors, ("minReadySeconds",), self.min_ready_seconds)
        nonnegative(errors, ("revisionHistoryLimit",), self.revision_history_limit)
        return errors


class DaemonSetStatus(Checked):
    current_number_scheduled: int = 0
    number_misscheduled: int = 0
    desired_number_scheduled: int = 0
    number_ready: int = 0
    observed_generation: int | None = None
    updated_number_scheduled: int | None = None
    number_available: int | None = None
    number_unavailable: int | None = None
    collision_count: int | None = None
    conditions: tuple[DaemonSetCondition, ...] | None = None


@register(plural="daemonsets", short_names=("ds",), namespaced=True)
class DaemonSet(CheckedKind):
    api_version: Literal["apps/v1"] = Field("apps/v1", alias="apiVersion")
    kind: Literal["DaemonSet"] = "DaemonSet"
    spec: DaemonSetSpec
    status: DaemonSetStatus | None = None


# ---------------------------------------------------------------------------
# StatefulSet


class StatefulSetCondition(ConditionBase):
    pass


_RETENTION = ("Retain", "Delete")


class StatefulSetPersistentVolumeClaimRetentionPolicy(Checked):
    when_deleted: str = "Retain"
    when_scaled: str = "Retain"

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        if self.when_deleted not in _RETENTION:
            errors.append((("whenDeleted",), unsupported(self.when_deleted, _RETENTION)))
        if self.when_scaled not in _RETENTION:
            errors.append((("whenScaled",), unsupported(self.when_scaled, _RETENTION)))
        return errors


class StatefulSetOrdinals(Checked):
    start: int = 0


class StatefulSetPodSpec(PodSpec):
    """A StatefulSet's pod spec: volume mounts may name ``volumeClaimTemplates``.

    Kubernetes does not check a StatefulSet template's mounts against its volumes
    (``ValidatePodTemplateSpecForStatefulSet``): the controller adds one volume per claim
    template to each pod. These validators replace PodSpec's of the same name.
    """

    @field_validator("containers")
    @classmethod
    def _check_containers(cls, v: tuple[Container, ...], info: Any) -> tuple[Container, ...]:
        if not v:
            raise ValueError("Required value")
        init = info.data.get("init_containers")
        if len(v) > 1 or init:
            check_unique_names(v, {c.name for c in init} if init else set())
        return v

    @field_validator("init_containers")
    @classmethod
    def _check_init_containers(
        cls, v: tuple[Container, ...] | None, info: Any
    ) -> tuple[Container, ...] | None:
        if v and len(v) > 1:
            check_unique_names(v)
        return v


class StatefulSetPodTemplateSpec(PodTemplateSpec):
    spec: StatefulSetPodSpec


class StatefulSetSpec(Checked):
    replicas: int = 1
    selector: LabelSelector
    template: StatefulSetPodTemplateSpec
    volume_claim_templates: tuple[PersistentVolumeClaim, ...] | None = None
    service_name: str | None = None
    pod_management_policy: str = "OrderedReady"
    update_strategy: StatefulSetUpdateStrategy = Field(
        default_factory=StatefulSetUpdateStrategy
    )
    revision_history_limit: int = 10
    min_ready_seconds: int | None = None
    persistent_volume_claim_retention_policy: StatefulSetPersistentVolumeClaimRetentionPolicy = (
        Field(default_factory=StatefulSetPersistentVolumeClaimRetentionPolicy)
    )
    ordinals: StatefulSetOrdinals | None = None

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        if not self.pod_management_policy:
            errors.append((("podManagementPolicy",), "Required value"))
        elif self.pod_management_policy not in ("OrderedReady", "Parallel"):
            errors.append((("podManagementPolicy",), invalid(
                self.pod_management_policy, "must be 'OrderedReady' or 'Parallel'")))
        nonnegative(errors, ("replicas",), self.replicas)
        nonnegative(errors, ("minReadySeconds",), self.min_ready_seconds)
        nonnegative(errors, ("revisionHistoryLimit",), self.revision_history_limit)
        if self.ordinals is not None:
            nonnegative(errors, ("ordinals", "start"), self.ordinals.start)
        errors += selector_errors(self.selector, ("selector",), "statefulset")
        errors += template_errors(self.template, self.selector, ("template",), "StatefulSet")
        return errors


class StatefulSetStatus(Checked):
    observed_generation: int | None = None
    replicas: int = 0
    ready_replicas: int | None = None
    current_replicas: int | None = None
    updated_replicas: int | None = None
    available_replicas: int | None = None
    current_revision: str | None = None
    update_revision: str | None = None
    collision_count: int | None = None
    conditions: tuple[StatefulSetCondition, ...] | None = None


@register(plural="statefulsets", short_names=("sts",), namespaced=True)
class StatefulSet(CheckedKind):
    api_version: Literal["apps/v1"] = Field("apps/v1", alias="apiVersion")
    kind: Literal["StatefulSet"] = "StatefulSet"
    spec: StatefulSetSpec
    status: StatefulSetStatus | None = None


# ControllerRevision is what Deployment-like controllers of DaemonSets and StatefulSets
# record their template history in.


def freeze_json(value: Any) -> Any:
    """Arbitrary JSON made deeply immutable: dicts become FrozenDicts, lists tuples."""
    if isinstance(value, dict):
        return FrozenDict({k: freeze_json(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze_json(v) for v in value)
    return value


FrozenJSON = Annotated[FrozenDict[str, Any], json_object(freeze_json)]
"""A JSON object (RawExtension) that is immutable all the way down."""


@register(plural="controllerrevisions", namespaced=True)
class ControllerRevision(CheckedKind):
    api_version: Literal["apps/v1"] = Field("apps/v1", alias="apiVersion")
    kind: Literal["ControllerRevision"] = "ControllerRevision"
    data: FrozenJSON | None = None
    revision: int

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        nonnegative(errors, ("revision",), self.revision)
        return errors


__all__ = [
    "ControllerRevision",
    "DaemonSet",
    "DaemonSetCondition",
    "DaemonSetSpec",
    "DaemonSetStatus",
    "DaemonSetUpdateStrategy",
    "Deployment",
    "DeploymentCondition",
    "DeploymentSpec",
    "DeploymentStatus",
    "DeploymentStrategy",
    "ReplicaSet",
    "ReplicaSetCondition",
    "ReplicaSetSpec",
    "ReplicaSetStatus",
    "RollingUpdateDaemonSet",
    "RollingUpdateDeployment",
    "RollingUpdateStatefulSetStrategy",
    "StatefulSet",
    "StatefulSetCondition",
    "StatefulSetOrdinals",
    "StatefulSetPersistentVolumeClaimRetentionPolicy",
    "StatefulSetPodSpec",
    "StatefulSetPodTemplateSpec",
    "StatefulSetSpec",
    "StatefulSetStatus",
    "StatefulSetUpdateStrategy",
    "resolve_int_or_percent",
]
