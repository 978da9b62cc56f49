"""autoscaling/v2: HorizontalPodAutoscaler (autoscaling/v1 manifests are converted to it:
see ``_autoscaling_v1``).

Defaults as the API server sets them: ``minReplicas: 1``; no metrics means one CPU metric
at 80% average utilization; ``behavior`` stays unset when not given (the controller then
uses its built-in rules), but a given ``behavior`` has its missing parts filled in
(scale up: no stabilization window, policies 4 pods or 100% per 15 s, selectPolicy Max;
scale down: policy 100% per 15 s, selectPolicy Max, window left to the controller's
300 s default).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from orchestra.objects._apps import (
    Checked,
    CheckedKind,
    ConditionBase,
    ErrorList,
    Loc,
    fill_defaults,
    get_raw,
    invalid,
    label_selector_errors,
    unsupported,
)
from orchestra.objects._autoscaling_v1 import V1, hpa_v1_to_v2
from orchestra.objects._base import register
from orchestra.objects._meta import LabelSelector
from orchestra.objects._model import Model
from orchestra.objects._quantity import Quantity
from orchestra.objects._scalars import QuantityValue, Time

DEFAULT_CPU_UTILIZATION = 80
MAX_STABILIZATION_WINDOW_SECONDS = 3600
MAX_PERIOD_SECONDS = 1800


class CrossVersionObjectReference(Checked):
    kind: str
    name: str
    api_version: str | None = None


class MetricIdentifier(Checked):
    name: str
    selector: LabelSelector | None = None


class MetricTarget(Checked):
    type: str
    value: QuantityValue | None = None
    average_value: QuantityValue | None = None
    average_utilization: int | None = None


class MetricValueStatus(Checked):
    value: QuantityValue | None = None
    average_value: QuantityValue | None = None
    average_utilization: int | None = None


class ResourceMetricSource(Checked):
    name: str
    target: MetricTarget


class ContainerResourceMetricSource(Checked):
    name: str
    target: MetricTarget
    container: str


class ObjectMetricSource(Checked):
    described_object: CrossVersionObjectReference
    target: MetricTarget
    metric: MetricIdentifier


class PodsMetricSource(Checked):
    metric: MetricIdentifier
    target: MetricTarget


class ExternalMetricSource(Checked):
    metric: MetricIdentifier
    target: MetricTarget


_SOURCE_FIELDS = {
    "Object": "object",
    "Pods": "pods",
    "Resource": "resource",
    "ContainerResource": "containerResource",
    "External": "external",
}
_SOURCE_TYPES = sorted(_SOURCE_FIELDS)


class MetricSpec(Checked):
    type: str
    object: ObjectMetricSource | None = None
    pods: PodsMetricSource | None = None
    resource: ResourceMetricSource | None = None
    container_resource: ContainerResourceMetricSource | None = None
    external: ExternalMetricSource | None = None

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        present = [
            name for name, value in (
                ("object", self.object), ("pods", self.pods), ("resource", self.resource),
                ("containerResource", self.container_resource), ("external", self.external),
            ) if value is not None
        ]
        expected = _SOURCE_FIELDS.get(self.type)
        if not self.type:
            errors.append((("type",), "Required value: must specify a metric source type"))
        elif expected is None:
            errors.append((("type",), unsupported(self.type, _SOURCE_TYPES)))
        elif expected not in present:
            errors.append(((expected,), "Required value: must populate information for the "
                           "given metric source"))
        if len(present) != 1:
            for name in present:
                if name != expected:
                    errors.append(((name,),
                                   "Forbidden: must populate the given metric source only"))
        if len(present) == 1:
            errors += self._source_errors()
        return errors

    def _source_errors(self) -> ErrorList:
        errors: ErrorList = []
        if self.resource is not None:
            errors += _utilization_errors(self.resource.target, ("resource", "target"))
        if self.container_resource is not None:
            errors += _utilization_errors(self.container_resource.target,
                                          ("containerResource", "target"))
        if self.pods is not None:
            errors += _metric_id_errors(self.pods.metric, ("pods", "metric"))
            errors += _target_errors(self.pods.target, ("pods", "target"))
            if self.pods.target.average_value is None:
                errors.append((("pods", "target", "averageValue"),
                               "Required value: must specify a positive target averageValue"))
        for name, src in (("object", self.object), ("external", self.external)):
            if isinstance(src, ObjectMetricSource | ExternalMetricSource):
                errors += _metric_id_errors(src.metric, (name, "metric"))
                errors += _target_errors(src.target, (name, "target"))
                if src.target.value is None and src.target.average_value is None:
                    errors.append(((name, "target"), "Required value: must set either a "
                                   "target value or averageValue"))
        return errors


def _metric_id_errors(metric: MetricIdentifier, loc: Loc) -> ErrorList:
    errors: ErrorList = []
    if not metric.name:
        errors.append(((*loc, "name"), "Required value: must specify a metric name"))
    if metric.selector is not None:
        errors += label_selector_errors(metric.selector, (*loc, "selector"))
    return errors


_TARGET_TYPES = ("Utilization", "Value", "AverageValue")


def _target_errors(target: MetricTarget, loc: Loc) -> ErrorList:
    errors: ErrorList = []
    if not target.type:
        errors.append(((*loc, "type"), "Required value: must specify a metric target type"))
    elif target.type not in _TARGET_TYPES:
        errors.append(((*loc, "type"), invalid(
            target.type, "must be either Utilization, Value, or AverageValue")))
    for name, value in (("value", target.value), ("averageValue", target.average_value)):
        if value is not None and Quantity(value).sign() != 1:
            errors.append(((*loc, name), invalid(value, "must be positive")))
    if target.average_utilization is not None and target.average_utilization < 1:
        errors.append(((*loc, "averageUtilization"),
                       invalid(target.average_utilization, "must be greater than 0")))
    return errors


def _utilization_errors(target: MetricTarget, loc: Loc) -> ErrorList:
    errors = _target_errors(target, loc)
    if target.average_utilization is None and target.average_value is None:
        errors.append(((*loc, "averageUtilization"), "Required value: must set either a "
                       "target raw value or a target utilization"))
    if target.average_utilization is not None and target.average_value is not None:
        errors.append(((*loc, "averageValue"), "Forbidden: may not set both a target raw "
                       "value and a target utilization"))
    return errors


class ResourceMetricStatus(Checked):
    name: str
    current: MetricValueStatus


class ContainerResourceMetricStatus(Checked):
    name: str
    current: MetricValueStatus
    container: str


class ObjectMetricStatus(Checked):
    metric: MetricIdentifier
    current: MetricValueStatus
    described_object: CrossVersionObjectReference


class PodsMetricStatus(Checked):
    metric: MetricIdentifier
    current: MetricValueStatus


class ExternalMetricStatus(Checked):
    metric: MetricIdentifier
    current: MetricValueStatus


class MetricStatus(Checked):
    type: str
    object: ObjectMetricStatus | None = None
    pods: PodsMetricStatus | None = None
    resource: ResourceMetricStatus | None = None
    container_resource: ContainerResourceMetricStatus | None = None
    external: ExternalMetricStatus | None = None


class HPAScalingPolicy(Checked):
    type: str
    value: int
    period_seconds: int

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        if self.type not in ("Pods", "Percent"):
            errors.append((("type",), unsupported(self.type, ["Percent", "Pods"])))
        if self.value <= 0:
            errors.append((("value",), invalid(self.value, "must be greater than zero")))
        if self.period_seconds <= 0:
            errors.append((("periodSeconds",),
                           invalid(self.period_seconds, "must be greater than zero")))
        elif self.period_seconds > MAX_PERIOD_SECONDS:
            errors.append((("periodSeconds",), invalid(
                self.period_seconds, f"must be less than or equal to {MAX_PERIOD_SECONDS}")))
        return errors


class HPAScalingRules(Checked):
    stabilization_window_seconds: int | None = None
    select_policy: str | None = None
    policies: tuple[HPAScalingPolicy, ...] | None = None
    tolerance: QuantityValue | None = None

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        if self.select_policy is not None and self.select_policy not in ("Disabled", "Max",
                                                                         "Min"):
            errors.append((("selectPolicy",),
                           unsupported(self.select_policy, ["Disabled", "Max", "Min"])))
        window = self.stabilization_window_seconds
        if window is not None and not 0 <= window <= MAX_STABILIZATION_WINDOW_SECONDS:
            errors.append((("stabilizationWindowSeconds",), invalid(
                window, f"must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}")))
        if self.policies is not None and not self.policies:
            errors.append((("policies",), "Required value: must specify at least one Policy"))
        if self.tolerance is not None and Quantity(self.tolerance).sign() < 0:
            errors.append((("tolerance",), invalid(
                self.tolerance, "must be greater than or equal to 0")))
        return errors


_SCALE_UP_DEFAULTS: dict[str, Any] = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": lambda: [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ],
}
_SCALE_DOWN_DEFAULTS: dict[str, Any] = {
    "selectPolicy": "Max",
    "policies": lambda: [{"type": "Percent", "value": 100, "periodSeconds": 15}],
}


class HorizontalPodAutoscalerBehavior(Checked):
    """Scaling rules; missing rules and missing parts of rules get Kubernetes' defaults."""

    scale_up: HPAScalingRules | None = None
    scale_down: HPAScalingRules | None = None

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = fill_defaults(data, {"scaleUp": dict, "scaleDown": dict})
        for key, defaults in (("scaleUp", _SCALE_UP_DEFAULTS),
                              ("scaleDown", _SCALE_DOWN_DEFAULTS)):
            rules = get_raw(data, key)
            if isinstance(rules, Model):
                rules = rules.to_dict()
            if isinstance(rules, dict):
                data.pop("scale_up" if key == "scaleUp" else "scale_down", None)
                data[key] = fill_defaults(rules, defaults)
        return data


_DEFAULT_METRICS = [{
    "type": "Resource",
    "resource": {
        "name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION},
    },
}]


class HorizontalPodAutoscalerSpec(Checked):
    scale_target_ref: CrossVersionObjectReference
    min_replicas: int = 1
    max_replicas: int
    metrics: tuple[MetricSpec, ...] | None = None
    behavior: HorizontalPodAutoscalerBehavior | None = None

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and not get_raw(data, "metrics"):
            data = dict(data)
            data.pop("metrics", None)
            data["metrics"] = [dict(m) for m in _DEFAULT_METRICS]
        return data

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        ref = self.scale_target_ref
        if not ref.kind:
            errors.append((("scaleTargetRef", "kind"), "Required value"))
        if not ref.name:
            errors.append((("scaleTargetRef", "name"), "Required value"))
        elif "/" in ref.name or "%" in ref.name or ref.name in (".", ".."):
            errors.append((("scaleTargetRef", "name"), invalid(
                ref.name, "may not contain '/'" if "/" in ref.name else
                "may not contain '%'" if "%" in ref.name else f"may not be '{ref.name}'")))
        if self.min_replicas < 1:
            errors.append((("minReplicas",), invalid(
                self.min_replicas, "must be greater than or equal to 1")))
        if self.max_replicas < 1:
            errors.append((("maxReplicas",), invalid(self.max_replicas,
                                                     "must be greater than 0")))
        if self.max_replicas < self.min_replicas:
            errors.append((("maxReplicas",), invalid(
                self.max_replicas, "must be greater than or equal to `minReplicas`")))
        return errors


class HorizontalPodAutoscalerCondition(ConditionBase):
    pass


class HorizontalPodAutoscalerStatus(Checked):
    observed_generation: int | None = None
    last_scale_time: Time | None = None
    current_replicas: int | None = None
    desired_replicas: int = 0
    current_metrics: tuple[MetricStatus, ...] | None = None
    conditions: tuple[HorizontalPodAutoscalerCondition, ...] | None = None


@register(plural="horizontalpodautoscalers", short_names=("hpa",), namespaced=True)
class HorizontalPodAutoscaler(CheckedKind):
    api_version: Literal["autoscaling/v2"] = Field("autoscaling/v2", alias="apiVersion")
    kind: Literal["HorizontalPodAutoscaler"] = "HorizontalPodAutoscaler"
    spec: HorizontalPodAutoscalerSpec
    status: HorizontalPodAutoscalerStatus | None = None

    # Also served as autoscaling/v1, converted on the way in (see _autoscaling_v1).
    SERVED_VERSIONS: ClassVar[tuple[str, ...]] = (V1,)

    @model_validator(mode="before")
    @classmethod
    def _from_v1(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("apiVersion") == V1:
            return hpa_v1_to_v2(data)
        return data


__all__ = [
    "ContainerResourceMetricSource",
    "ContainerResourceMetricStatus",
    "CrossVersionObjectReference",
    "ExternalMetricSource",
    "ExternalMetricStatus",
    "HPAScalingPolicy",
    "HPAScalingRules",
    "HorizontalPodAutoscaler",
    "HorizontalPodAutoscalerBehavior",
    "HorizontalPodAutoscalerCondition",
    "HorizontalPodAutoscalerSpec",
    "HorizontalPodAutoscalerStatus",
    "MetricIdentifier",
    "MetricSpec",
    "MetricStatus",
    "MetricTarget",
    "MetricValueStatus",
    "ObjectMetricSource",
    "ObjectMetricStatus",
    "PodsMetricSource",
    "PodsMetricStatus",
    "ResourceMetricSource",
    "ResourceMetricStatus",
]
