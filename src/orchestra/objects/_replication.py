"""v1 ReplicationController: ReplicaSet's predecessor, with an equality-only selector.

It loads and validates as the API server does (the selector defaults to the template's
labels, must match them, and the template's restartPolicy must be Always). The
ReplicaSet controller's code manages it (``loops/_replication``), as in Kubernetes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from orchestra.objects._apps import (
    Checked,
    CheckedKind,
    ConditionBase,
    ErrorList,
    nonnegative,
    template_errors,
)
from orchestra.objects._base import register
from orchestra.objects._meta import LabelSelector
from orchestra.objects._model import FrozenDict
from orchestra.objects._pod import PodTemplateSpec


class ReplicationControllerSpec(Checked):
    replicas: int = 1
    min_ready_seconds: int | None = None
    selector: FrozenDict[str, str] | None = None
    template: PodTemplateSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_selector(cls, data: Any) -> Any:
        """``SetDefaults_ReplicationController``: no selector means the template's labels."""
        if isinstance(data, dict) and not data.get("selector"):
            template = data.get("template")
            meta = template.get("metadata") if isinstance(template, dict) else None
            labels = meta.get("labels") if isinstance(meta, dict) else None
            if isinstance(labels, dict) and labels:
                data = {**data, "selector": dict(labels)}
        return data

    def field_errors(self) -> ErrorList:
        errors: ErrorList = []
        nonnegative(errors, ("replicas",), self.replicas)
        nonnegative(errors, ("minReadySeconds",), self.min_ready_seconds)
        if not self.selector:
            errors.append((("selector",), "Required value"))
        if self.template is None:
            errors.append((("template",), "Required value"))
        else:
            selector = LabelSelector(match_labels=self.selector or None)
            errors += template_errors(self.template, selector, ("template",),
                                      "ReplicationController")
        return errors


class ReplicationControllerCondition(ConditionBase):
    pass


class ReplicationControllerStatus(Checked):
    replicas: int = 0
    fully_labeled_replicas: int | None = None
    ready_replicas: int | None = None
    available_replicas: int | None = None
    observed_generation: int | None = None
    conditions: tuple[ReplicationControllerCondition, ...] | None = None


@register(plural="replicationcontrollers", short_names=("rc",), namespaced=True)
class ReplicationController(CheckedKind):
    api_version: Literal["v1"] = Field("v1", alias="apiVersion")
    kind: Literal["ReplicationController"] = "ReplicationController"
    spec: ReplicationControllerSpec = Field(default_factory=ReplicationControllerSpec)
    status: ReplicationControllerStatus | None = None


__all__ = [
    "ReplicationController",
    "ReplicationControllerCondition",
    "ReplicationControllerSpec",
    "ReplicationControllerStatus",
]
